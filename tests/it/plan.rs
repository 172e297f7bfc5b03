//! `imagelock plan`: golden JSON for the corpus and the examples, located
//! errors for malformed files.

use std::path::{Path, PathBuf};

use crate::common::{fixture, imagelock, repo_root, run, tempdir};

/// Definition files directly in a fixture folder, sorted (empty if the
/// folder does not exist yet).
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.is_file());
    files.sort();
    files
}

fn rel(path: &Path) -> PathBuf {
    path.strip_prefix(repo_root()).unwrap().to_path_buf()
}

fn plan(args: &[&str]) -> (i32, String, String) {
    run(imagelock().current_dir(repo_root()).arg("plan").args(args))
}

/// Expansion bombs in ARG and shell variables end in a located error
/// quickly and in little memory (issue 15): measured here.
#[test]
fn expansion_bombs_end_in_a_bounded_error() {
    for name in [
        "billion-laughs-arg",
        "billion-laughs-shell",
        "deep-nesting-arg",
    ] {
        let file = format!("fixtures/bad/expansion/{name}.Dockerfile");
        let start = std::time::Instant::now();
        let out = std::process::Command::new("/usr/bin/time")
            .args(["-f", "maxrss-kb %M"])
            .arg(env!("CARGO_BIN_EXE_imagelock"))
            .args(["plan", &file])
            .current_dir(repo_root())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(&format!("error: {file}:")), "{name}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        let rss: u64 = err
            .lines()
            .find_map(|l| l.strip_prefix("maxrss-kb "))
            .and_then(|v| v.trim().parse().ok())
            .expect("time reports the peak");
        // The bound is 1 MiB per value; the whole run stays far below
        // the gigabytes an unbounded expansion takes.
        assert!(rss < 200 * 1024, "{name}: {rss} KB");
        assert!(start.elapsed().as_secs() < 20, "{name}");
    }
}

/// Every corpus Dockerfile parses; its plan is a golden snapshot.
#[test]
fn corpus_dockerfiles_plan_as_snapshotted() {
    let files = files_in(&fixture("corpus/dockerfile"));
    for file in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "Dockerfile"))
    {
        let rel = rel(file);
        let (code, out, err) = plan(&["--format", "json", rel.to_str().unwrap()]);
        assert_eq!(code, 0, "{}: {err}", rel.display());
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        insta::assert_snapshot!(format!("corpus_{name}"), out);
    }
}

/// The minimal real-shaped cases of issue 17 (one file per item): human
/// and JSON plans as snapshotted, so each step's manager, action, target,
/// channels or indexes, specs, condition and unresolved parts are seen.
#[test]
fn minimal_step_cases_plan_as_snapshotted() {
    let mut files = files_in(&fixture("corpus/minimal"));
    files.retain(|f| f.extension().is_some_and(|e| e != "md"));
    assert!(files.len() >= 9, "{files:?}");
    for file in &files {
        let rel = rel(file);
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        for format in ["human", "json"] {
            let (code, out, err) = plan(&["--format", format, rel.to_str().unwrap()]);
            assert_eq!(code, 0, "{}: {err}", rel.display());
            insta::assert_snapshot!(format!("minimal_{name}_{format}"), out);
        }
    }
}

/// Each example image: JSON and human output as snapshotted.
#[test]
fn examples_plan_as_snapshotted() {
    let root = fixture("examples");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .map(|rd| rd.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    dirs.retain(|p| p.is_dir());
    dirs.sort();
    for dir in dirs {
        let rel = rel(&dir);
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        for format in ["json", "human"] {
            let (code, out, err) = plan(&["--format", format, rel.to_str().unwrap()]);
            insta::assert_snapshot!(
                format!("example_{name}_{format}"),
                format!("exit: {code}\n--- stdout\n{out}--- stderr\n{err}")
            );
        }
    }
}

/// Each file in `fixtures/bad/dockerfile/` fails with exit 2 and a message
/// located at file:line:col; never a panic.
#[test]
fn bad_dockerfiles_fail_with_located_messages() {
    let files = files_in(&fixture("bad/dockerfile"));
    assert!(files.len() >= 10);
    for file in files {
        let rel = rel(&file);
        let (code, out, err) = plan(&[rel.to_str().unwrap()]);
        assert_eq!(code, 2, "{}: {err}", rel.display());
        assert!(out.is_empty(), "{}: {out}", rel.display());
        assert!(
            err.contains(&format!("error: {}:", rel.display())),
            "{}: not located: {err}",
            rel.display()
        );
        assert!(!err.contains("panicked"), "{err}");
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        insta::assert_snapshot!(format!("bad_dockerfile_{name}"), err);
    }
}

/// A 50 MB file is refused before it is parsed, with a location.
#[test]
fn huge_file_is_refused() {
    let dir = tempdir();
    let path = dir.path().join("Dockerfile");
    let line = "RUN echo aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n";
    let mut text = String::from("FROM ubuntu\n");
    while text.len() < 50 * 1024 * 1024 {
        text.push_str(line);
    }
    std::fs::write(&path, text).unwrap();
    let (code, _, err) = run(imagelock()
        .current_dir(dir.path())
        .args(["plan", "Dockerfile"]));
    assert_eq!(code, 2);
    insta::assert_snapshot!(err);
}

/// Good and bad files together: the good ones are printed, exit 2.
#[test]
fn one_bad_file_does_not_hide_the_others() {
    let (code, out, err) = plan(&[
        "--format",
        "json",
        "fixtures/examples/driver/Dockerfile",
        "fixtures/bad/dockerfile/empty.Dockerfile",
    ]);
    assert_eq!(code, 2);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["images"][0]["definition"]["stages"][0]["index"], 0);
    assert!(json["images"][1]["error"]["line"].is_number());
    assert!(err.contains("1 of 2 definition files"), "{err}");
}

/// Without paths, the images of the configuration; an image built FROM
/// another configured image's `ref` is named as such; build args apply.
#[test]
fn configured_images_and_repository_bases() {
    let dir = tempdir();
    let root = dir.path();
    std::fs::create_dir_all(root.join("base")).unwrap();
    std::fs::create_dir_all(root.join("app")).unwrap();
    std::fs::write(
        root.join("base/Dockerfile"),
        "ARG PY=3.11\nFROM python:${PY}-slim\n",
    )
    .unwrap();
    std::fs::write(
        root.join("app/Dockerfile"),
        "FROM ghcr.io/lab/base:1 AS b\nFROM b\n",
    )
    .unwrap();
    std::fs::write(
        root.join("imagelock.toml"),
        "[images.base]\nfile = \"base/Dockerfile\"\nref = \"ghcr.io/lab/base:1\"\nbuild-args = { PY = \"3.12\" }\n\n[images.app]\nfile = \"app/Dockerfile\"\n",
    )
    .unwrap();
    let (code, out, err) = run(imagelock().current_dir(root).arg("plan"));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("image of this repository: base"), "{out}");
    assert!(out.contains("python:3.12-slim"), "{out}");
    assert!(out.contains("internal stage 0"), "{out}");
    let (code, out, _) = run(imagelock().current_dir(root).args([
        "plan",
        "--build-arg",
        "PY=3.13",
        "--format",
        "json",
    ]));
    assert_eq!(code, 0);
    assert!(out.contains("python:3.13-slim"), "{out}");
    assert!(out.contains("\"repository_bases\""), "{out}");
}

/// Regression (issue 16): a COPY'd requirements file that is not UTF-8 is
/// said to be unreadable, not brought by no COPY.
#[test]
fn a_copied_file_that_is_not_utf8_is_said_so() {
    let dir = crate::common::tempdir();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM python:3.11-slim\nCOPY requirements.txt /tmp/\nRUN pip install -r /tmp/requirements.txt\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("requirements.txt"),
        b"six==1.16.0 # caf\xe9\n",
    )
    .unwrap();
    let path = dir.path().join("Dockerfile");
    let (code, out, err) = plan(&[path.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("is not UTF-8 text"), "{out}");
    assert!(!out.contains("no COPY brings it"), "{out}");
}

/// Issue 15: control characters from a definition file reach stdout
/// reports escaped (every report goes through one printer), so a line with
/// `ESC[2J` cannot clear the terminal; JSON escapes them its own way.
#[test]
fn control_characters_in_a_definition_are_escaped_in_the_report() {
    let dir = crate::common::tempdir();
    let path = dir.path().join("Dockerfile");
    std::fs::write(
        &path,
        "FROM python:3.11-slim\nRUN pip install 'six==1.16.0' \"\x1b[2Jdemo\"\nLABEL note=\"\x1b]0;title\x07\"\n",
    )
    .unwrap();
    for format in ["human", "json"] {
        let (code, out, err) = plan(&["--format", format, path.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
        assert!(!out.contains('\x1b') && !out.contains('\x07'), "{out}");
        assert!(!err.contains('\x1b'), "{err}");
        if format == "human" {
            assert!(out.contains("\\x1b[2Jdemo"), "{out}");
        }
    }
}

//! Apptainer/Singularity definition files: the real-world corpus parses,
//! and malformed files fail with a located message.

use std::collections::BTreeMap;
use std::path::PathBuf;

use imagelock::source::apptainer::{DefFile, parse_bytes};

use crate::common::{fixture, repo_root};

fn def_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(fixture(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "def"))
        .collect();
    files.sort();
    files
}

/// Build arguments the corpus needs (`From: {{ DEVEL_IMAGE }}` has no default).
fn corpus_build_args() -> BTreeMap<String, String> {
    BTreeMap::from([("DEVEL_IMAGE".to_string(), "golang:1.22".to_string())])
}

/// Every corpus file parses; the parsed model is snapshotted, and the
/// lossless layer prints each file back byte for byte.
#[test]
fn corpus_definitions_parse() {
    let files = def_files("corpus/apptainer");
    assert!(files.len() >= 18, "corpus has {} files", files.len());
    for file in files {
        let rel = file.strip_prefix(repo_root()).unwrap();
        let bytes = std::fs::read(&file).unwrap();
        let def = parse_bytes(rel, &bytes, &corpus_build_args())
            .unwrap_or_else(|e| panic!("{e}\nhint: {:?}", e.diagnostic.hint));
        let text = std::str::from_utf8(&bytes).unwrap();
        assert_eq!(DefFile::parse(text).print(text), text, "{}", rel.display());
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        insta::assert_json_snapshot!(format!("apptainer_corpus_{name}"), def);
    }
}

/// Each file in `fixtures/bad/apptainer/` fails with file:line:col and a hint.
#[test]
fn bad_definitions_fail_with_located_messages() {
    let files = def_files("bad/apptainer");
    assert!(files.len() >= 5);
    for file in files {
        let rel = file.strip_prefix(repo_root()).unwrap();
        let bytes = std::fs::read(&file).unwrap();
        let err = parse_bytes(rel, &bytes, &BTreeMap::new())
            .expect_err(&format!("{} should fail", rel.display()));
        let d = &err.diagnostic;
        let shown = match &d.hint {
            Some(h) => format!("{err}\nhint: {h}"),
            None => err.to_string(),
        };
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        insta::assert_snapshot!(format!("bad_apptainer_{name}"), shown);
    }
}

/// The bootstrap agents imagelock does not pin yet (or, for `shub`,
/// cannot): freeze records the stage without a registry pin, never looking
/// the name up on Docker Hub, and says why with the line. (`oras` and
/// `library` are pinned where they live: see `sif_agents`.)
#[test]
fn bootstrap_agents_other_than_docker_are_reported_not_locked_with_why() {
    let dir = crate::common::tempdir();
    let agents = [
        (
            "shub",
            "vsoch/hello-world",
            "Singularity Hub, which is gone",
        ),
        ("docker-daemon", "alpine:3.18", "local Docker daemon"),
        ("docker-archive", "alpine.tar", "local archive"),
        ("oci-archive", "alpine-oci.tar", "local archive"),
        ("oci", "layout:latest", "local OCI layout"),
        ("localimage", "base.sif", "local image"),
    ];
    let mut config = String::from("lock-dir = \"lockfiles\"\n");
    for (agent, from, _) in &agents {
        std::fs::write(
            dir.path().join(format!("{agent}.def")),
            format!("Bootstrap: {agent}\nFrom: {from}\n\n%post\n    echo hi\n"),
        )
        .unwrap();
        config.push_str(&format!("[images.{agent}]\nfile = \"{agent}.def\"\n"));
    }
    std::fs::write(dir.path().join("imagelock.toml"), config).unwrap();
    let (code, out, err) = crate::common::run(
        crate::common::imagelock()
            .current_dir(dir.path())
            .env("IMAGELOCK_CACHE_DIR", dir.path().join("cache"))
            .args(["freeze", "--offline"]),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    for (agent, from, why) in &agents {
        let line = err
            .lines()
            .find(|l| l.starts_with(&format!("image `{agent}`: coverage")))
            .unwrap_or_else(|| panic!("{agent}: {err}"));
        assert!(
            line.contains(&format!("line 2 `Bootstrap: {agent}`"))
                && line.contains(from)
                && line.contains(why),
            "{agent}: {line}"
        );
        let lock =
            std::fs::read_to_string(dir.path().join(format!("lockfiles/{agent}.lock"))).unwrap();
        assert!(!lock.contains("docker.io"), "{agent}: {lock}");
        assert!(!lock.contains("[[bases]]"), "{agent}: {lock}");
    }
}

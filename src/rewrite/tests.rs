use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::*;
use crate::config::Config;
use crate::source::inputs::load_inputs;
use crate::source::load::load_definition;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Parses `path` (with steps), loads its inputs from `context`.
fn load(
    path: &Path,
    context: &Path,
    build_args: &BTreeMap<String, String>,
) -> (Definition, Inputs) {
    let def = load_definition(path, build_args).expect("definition parses");
    let text = fs_err::read_to_string(path).expect("reads");
    let inputs = load_inputs(&def, &text, context, build_args).expect("inputs load");
    (def, inputs)
}

fn copy_dir(from: &Path, to: &Path) {
    fs_err::create_dir_all(to).expect("mkdir");
    for entry in fs_err::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs_err::copy(entry.path(), &target).expect("copy");
        }
    }
}

fn update() -> bool {
    std::env::var_os("IMAGELOCK_UPDATE_FIXTURES").is_some()
}

/// Rewrites one example image in a copy of the examples, compares every
/// changed file with `fixtures/rewrite/expected/`, then rewrites again and
/// expects nothing to change.
fn golden(image: &str) -> Vec<String> {
    let examples = repo().join("fixtures/examples");
    let config = Config::load(&examples.join("imagelock.toml")).expect("config");
    let ic = config
        .images
        .iter()
        .find(|i| i.name == image)
        .expect("image configured");
    let rel_dir = ic
        .context
        .strip_prefix(&config.root)
        .expect("context under root")
        .to_path_buf();
    let rel_file = ic.file.strip_prefix(&config.root).expect("file under root");
    let tmp = tempfile::tempdir().expect("tempdir");
    copy_dir(&ic.context, &tmp.path().join(&rel_dir));
    let file = tmp.path().join(rel_file);
    let context = tmp.path().join(&rel_dir);

    let lock_path = repo().join(format!("fixtures/rewrite/locks/{image}.lock"));
    let mut lock = LockedImage::read(&lock_path).expect("lock reads");
    let (def, inputs) = load(&file, &context, &ic.build_args);
    if update() {
        lock.image.input_hash = inputs.hash();
        lock.write(&lock_path).expect("lock writes");
    }
    assert_eq!(
        lock.image.input_hash,
        inputs.hash(),
        "{image}: fixture lock's input hash is out of date (IMAGELOCK_UPDATE_FIXTURES=1)"
    );
    let out =
        rewrite_image(&def, &inputs, &lock, &context, RewriteOptions::default()).expect("rewrites");
    assert!(!out.files.is_empty(), "{image}: something to pin");
    let expected_dir = repo().join("fixtures/rewrite/expected").join(image);
    for f in &out.files {
        let rel = f.path.strip_prefix(tmp.path()).expect("inside the copy");
        let name = rel
            .strip_prefix(&rel_dir)
            .unwrap_or(rel)
            .to_string_lossy()
            .replace('\\', "/");
        let expected = expected_dir.join(&name);
        if update() {
            fs_err::create_dir_all(expected.parent().expect("parent")).expect("mkdir");
            fs_err::write(&expected, &f.after).expect("write expected");
        }
        let want = fs_err::read_to_string(&expected).unwrap_or_default();
        assert_eq!(
            f.after,
            want,
            "{image}: {name} differs from {}",
            expected.display()
        );
        crate::lock::write_atomic(&f.path, f.after.as_bytes()).expect("writes");
    }
    // Second run: the rewritten files with the relocked lock change nothing.
    let (def2, inputs2) = load(&file, &context, &ic.build_args);
    assert_eq!(
        inputs2.hash(),
        out.lock.image.input_hash,
        "{image}: relocked hash"
    );
    let again = rewrite_image(
        &def2,
        &inputs2,
        &out.lock,
        &context,
        RewriteOptions::default(),
    )
    .expect("again");
    assert!(
        again.files.is_empty(),
        "{image}: second rewrite changed {:?}",
        again.files
    );
    assert_eq!(again.lock, out.lock);
    // Same stages and steps after rewriting.
    assert_eq!(def.stages.len(), def2.stages.len());
    for (a, b) in def.stages.iter().zip(&def2.stages) {
        assert_eq!(a.name, b.name);
        assert_eq!(
            a.steps.len(),
            b.steps.len(),
            "{image}: steps of stage {}",
            a.index
        );
    }
    out.warnings
        .iter()
        .map(|w| {
            let rel = w
                .location
                .path
                .strip_prefix(tmp.path())
                .unwrap_or(&w.location.path);
            format!("{}:{}: {}", rel.display(), w.location.line, w.message)
        })
        .collect()
}

#[test]
fn golden_driver() {
    insta::assert_snapshot!(golden("driver").join("\n"), @"");
}

#[test]
fn golden_longqc() {
    insta::assert_snapshot!(golden("longqc").join("\n"), @"");
}

#[test]
fn golden_base_notebook() {
    insta::assert_snapshot!(golden("base-notebook").join("\n"), @"");
}

#[test]
fn golden_scipy_ml_notebook() {
    insta::assert_snapshot!(golden("scipy-ml-notebook").join("\n"), @"notebook-stack/scipy-ml-notebook/Dockerfile:4: `ghcr.io/example-lab/base-notebook:2026.11-d02157a` is built from image `base-notebook` of this repository; it is not pinned");
}

#[test]
fn golden_workbench() {
    insta::assert_snapshot!(golden("workbench").join("\n"), @"");
}

#[test]
fn golden_summation() {
    insta::assert_snapshot!(golden("summation").join("\n"), @"");
}

// ---- synthetic locks ----------------------------------------------------

use crate::lock::{ImageMeta, LockedBase, LockedStep, PypiPackage, PypiSource};
use crate::source::model::BaseTarget;
use sha2::Digest as _;

fn fake_digest(s: &str) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(s.as_bytes())))
}

/// A lock pinning every image `def` pulls (fake digests) and every pip
/// step to its specs' names plus one dependency.
fn synthetic_lock(def: &Definition, inputs: &Inputs, platforms: &[&str]) -> LockedImage {
    let mut bases: Vec<LockedBase> = Vec::new();
    let mut add = |r: &crate::source::model::Expanded| {
        let name = r.value.clone().unwrap_or_else(|| r.written.clone());
        let plain = name
            .split_once('@')
            .map_or(name.as_str(), |(n, _)| n)
            .to_string();
        if !bases.iter().any(|b| b.name == plain) {
            bases.push(LockedBase {
                digest: (fake_digest(&plain)).parse().unwrap(),
                name: plain.clone().parse().unwrap(),
                references: vec![plain.parse().unwrap()],
                media_type: "application/vnd.oci.image.index.v1+json".parse().unwrap(),
                built_from: None,
                agent: None,
                pinned: None,
                platforms: vec![],
            });
        }
    };
    if let Some(s) = &def.syntax {
        add(s);
    }
    let mut steps = Vec::new();
    for stage in &def.stages {
        if matches!(stage.base.target, BaseTarget::Image { .. }) {
            add(&stage.base.reference);
        }
        for u in &stage.image_uses {
            if matches!(u.target, BaseTarget::Image { .. }) {
                add(&u.reference);
            }
        }
        for step in &stage.steps {
            if step.command.manager.ecosystem() != Ecosystem::Python {
                continue;
            }
            let mut names: Vec<String> = step
                .command
                .specs
                .iter()
                .filter_map(|s| s.value.as_deref().and_then(pins::requirement_name))
                .collect();
            names.push("dep-of-all".into());
            let pypi = names
                .iter()
                .map(|n| PypiPackage {
                    name: n.clone().parse().unwrap(),
                    version: Some("1.0".parse().unwrap()),
                    requested: None,
                    file: Some(format!("{n}-1.0-py3-none-any.whl").parse().unwrap()),
                    url: "https://files.example.org/f".parse().unwrap(),
                    sha256: Some(fake_digest(n)[7..].to_string().parse().unwrap()),
                    source: PypiSource::Index,
                    revision: None,
                    commit: None,
                    required_by: Vec::new(),
                    platforms: platforms.iter().map(|p| p.parse().unwrap()).collect(),
                })
                .collect();
            steps.push(LockedStep {
                stage: u32::try_from(stage.index).expect("small"),
                file: "Dockerfile".parse().unwrap(),
                line: u32::try_from(step.line).expect("small"),
                command: step.command.text.clone(),
                manager: step.command.manager.as_str().parse().unwrap(),
                action: "install".parse().unwrap(),
                target: None,
                requested: vec![],
                channels: vec![],
                indexes: vec![],
                find_links: vec![],
                locked: true,
                reason: None,
                conda: vec![],
                pypi,
                apt_sources: vec![],
                apt: vec![],
                rpm_repos: vec![],
                apk_repos: vec![],
                apk: vec![],
                rpm: vec![],
            });
        }
    }
    LockedImage {
        version: crate::lock::LOCK_VERSION,
        image: ImageMeta {
            name: "x".parse().unwrap(),
            definition: "Dockerfile".parse().unwrap(),
            input_hash: inputs.hash(),
            content_hash: None,
            platforms: platforms.iter().map(|p| p.parse().unwrap()).collect(),
        },
        stages: vec![],
        bases,
        steps,
    }
}

fn parse_text(path: &Path, text: &str) -> (Definition, Inputs) {
    parse_text_with(path, text, &BTreeMap::new())
}

fn parse_text_with(
    path: &Path,
    text: &str,
    args: &BTreeMap<String, String>,
) -> (Definition, Inputs) {
    let def = parse_definition(
        crate::source::load::detect_kind(path, text),
        path,
        text,
        args,
        &Default::default(),
    )
    .expect("parses");
    let inputs = load_inputs(&def, text, Path::new("/nonexistent-context"), args).expect("inputs");
    (def, inputs)
}

fn plain(r: &crate::source::model::Expanded) -> String {
    let v = r.value.clone().unwrap_or_else(|| r.written.clone());
    v.split_once('@').map_or(v.clone(), |(n, _)| n.to_string())
}

/// Rewrites `text` against a synthetic lock, checks that stages, names,
/// bases (modulo digest) and steps are the same after, and that a second
/// rewrite changes nothing. Returns the rewritten text.
fn round_trip(path: &Path, text: &str) -> String {
    round_trip_with(path, text, &BTreeMap::new()).0
}

/// [`round_trip`] with build args; also returns the warnings.
fn round_trip_with(
    path: &Path,
    text: &str,
    args: &BTreeMap<String, String>,
) -> (String, Vec<String>) {
    let (def, inputs) = parse_text_with(path, text, args);
    let lock = synthetic_lock(&def, &inputs, &["linux/amd64"]);
    let out = rewrite_image(
        &def,
        &inputs,
        &lock,
        Path::new("/nonexistent-context"),
        RewriteOptions::default(),
    )
    .expect("rewrites");
    let warnings = out.warnings.iter().map(|w| w.message.clone()).collect();
    let Some(f) = out.files.first() else {
        return (text.to_string(), warnings);
    };
    let (def2, inputs2) = parse_text_with(path, &f.after, args);
    assert_eq!(def.stages.len(), def2.stages.len());
    for (a, b) in def.stages.iter().zip(&def2.stages) {
        assert_eq!(a.name, b.name);
        assert_eq!(a.base.target, b.base.target);
        assert_eq!(plain(&a.base.reference), plain(&b.base.reference));
        assert_eq!(a.steps.len(), b.steps.len());
        assert_eq!(a.image_uses.len(), b.image_uses.len());
    }
    let again = rewrite_image(
        &def2,
        &inputs2,
        &out.lock,
        Path::new("/nonexistent-context"),
        RewriteOptions::default(),
    )
    .expect("rewrites again");
    assert!(
        again.files.is_empty(),
        "second rewrite changed:\n{}",
        again.files[0].after
    );
    (f.after.clone(), warnings)
}

#[test]
fn corpus_bases_all_get_digests() {
    let dir = repo().join("fixtures/corpus/dockerfile");
    let mut files: Vec<_> = fs_err::read_dir(&dir)
        .expect("corpus")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "Dockerfile"))
        .collect();
    files.sort();
    assert!(files.len() > 40);
    let mut pinned = 0;
    let mut via_arg = 0;
    for path in files {
        let text = fs_err::read_to_string(&path).expect("reads");
        let args = BTreeMap::new();
        let Ok(def) = dockerfile::parse(&path, &text, &args) else {
            continue;
        };
        let after = round_trip(&path, &text);
        let (def2, _) = parse_text(&path, &after);
        for (a, b) in def.stages.iter().zip(&def2.stages) {
            // A stage the build skips is neither locked nor pinned.
            if !matches!(a.base.target, BaseTarget::Image { .. }) || a.unused {
                continue;
            }
            if a.base.reference.written.contains('$') {
                if b.base
                    .reference
                    .value
                    .as_deref()
                    .is_some_and(|v| v.contains("@sha256:"))
                {
                    via_arg += 1;
                }
            } else {
                assert!(
                    b.base.reference.written.contains("@sha256:"),
                    "{}: stage {} `{}` not pinned",
                    path.display(),
                    a.index,
                    b.base.reference.written
                );
                pinned += 1;
            }
        }
    }
    // 36 literal bases and 13 given by ARGs in the corpus as committed.
    assert!(pinned >= 36, "only {pinned} literal bases pinned");
    assert!(via_arg >= 1, "no base pinned through its ARG");
}

#[test]
fn crlf_and_backtick_escape_are_kept() {
    let text = "# escape=`\r\nFROM python:3.11 AS build\r\n# a comment\r\nRUN pip install --no-cache-dir requests rich httpx pydantic typer fastapi uvicorn `\r\n && echo done\r\n";
    let after = round_trip(Path::new("Dockerfile"), text);
    assert!(after.contains("FROM python:3.11@sha256:"));
    assert!(after.contains(" `\r\n    fastapi==1.0 `\r\n"), "{after}");
    assert!(
        !after.replace("\r\n", "").contains('\n'),
        "a bare LF slipped in: {after:?}"
    );
    assert!(after.contains("\r\n# a comment\r\n"));
    assert!(after.ends_with(" `\r\n && echo done\r\n"));
}

#[test]
fn heredoc_bodies_and_arg_bases() {
    let text = "ARG BASE=python:3.12\nFROM ${BASE}\nRUN <<EOF\npip install numpy\necho $HOME\nEOF\nCOPY --from=busybox:1.36 /bin/sh /sh\n";
    let after = round_trip(Path::new("Dockerfile"), text);
    let digest = fake_digest("python:3.12");
    assert!(
        after.starts_with(&format!("ARG BASE=python:3.12@{digest}\nFROM ${{BASE}}\n")),
        "{after}"
    );
    assert!(
        after.contains("\npip install dep-of-all==1.0 numpy==1.0\necho $HOME\nEOF\n"),
        "{after}"
    );
    assert!(after.contains(&format!(
        "COPY --from=busybox:1.36@{} ",
        fake_digest("busybox:1.36")
    )));
}

#[test]
fn a_variable_inside_a_reference_keeps_it_and_gets_the_digest_after() {
    let text = "ARG PYTHON_VERSION=3.11\nFROM python:${PYTHON_VERSION}-slim AS s\nARG PYTHON_VERSION\nCOPY --from=busybox:${PYTHON_VERSION}-musl /a /b\n";
    let (after, warnings) = round_trip_with(Path::new("Dockerfile"), text, &BTreeMap::new());
    assert_eq!(
        after,
        format!(
            "ARG PYTHON_VERSION=3.11\nFROM python:${{PYTHON_VERSION}}-slim@{} AS s\nARG PYTHON_VERSION\nCOPY --from=busybox:${{PYTHON_VERSION}}-musl@{} /a /b\n",
            fake_digest("python:3.11-slim"),
            fake_digest("busybox:3.11-musl")
        )
    );
    assert!(warnings.is_empty(), "{warnings:?}");
    // The digest is the one for the configured build args.
    let args = BTreeMap::from([("PYTHON_VERSION".to_string(), "3.12".to_string())]);
    let (after, _) = round_trip_with(Path::new("Dockerfile"), text, &args);
    assert!(
        after.contains(&format!(
            "FROM python:${{PYTHON_VERSION}}-slim@{} AS s",
            fake_digest("python:3.12-slim")
        )),
        "{after}"
    );
}

#[test]
fn a_trailing_variable_is_pinned_at_its_arg_unless_that_is_unsound() {
    // Sound: the ARG default gets the digest, as for `FROM ${BASE}`.
    let text = "ARG TAG=3.11\nFROM python:${TAG}\n";
    let (after, _) = round_trip_with(Path::new("Dockerfile"), text, &BTreeMap::new());
    assert_eq!(
        after,
        format!(
            "ARG TAG=3.11@{}\nFROM python:${{TAG}}\n",
            fake_digest("python:3.11")
        )
    );
    // Set by a build arg: the digest goes after the reference.
    let args = BTreeMap::from([("TAG".to_string(), "3.12".to_string())]);
    let (after, warnings) = round_trip_with(Path::new("Dockerfile"), text, &args);
    assert_eq!(
        after,
        format!(
            "ARG TAG=3.11\nFROM python:${{TAG}}@{}\n",
            fake_digest("python:3.12")
        )
    );
    assert!(warnings.is_empty(), "{warnings:?}");
    // One ARG, two images: each reference gets its own digest, the ARG stays.
    let text = "ARG TAG=3.11\nFROM python:${TAG} AS a\nFROM pypy:${TAG}\nCOPY --from=a /x /x\n";
    let (after, warnings) = round_trip_with(Path::new("Dockerfile"), text, &BTreeMap::new());
    assert_eq!(
        after,
        format!(
            "ARG TAG=3.11\nFROM python:${{TAG}}@{} AS a\nFROM pypy:${{TAG}}@{}\nCOPY --from=a /x /x\n",
            fake_digest("python:3.11"),
            fake_digest("pypy:3.11")
        )
    );
    assert!(warnings.is_empty(), "{warnings:?}");
    // The whole reference from a build arg: not pinned, with a warning.
    let text = "ARG BASE=python:3.11\nFROM ${BASE}\n";
    let args = BTreeMap::from([("BASE".to_string(), "python:3.12".to_string())]);
    let (after, warnings) = round_trip_with(Path::new("Dockerfile"), text, &args);
    assert_eq!(after, text);
    assert_eq!(
        warnings,
        ["`${BASE}` cannot be pinned: `BASE` is set by a build arg"]
    );
}

#[test]
fn an_empty_lock_changes_nothing() {
    let text = "FROM python:3.11\nRUN pip install numpy\n";
    let (def, inputs) = parse_text(Path::new("Dockerfile"), text);
    let mut lock = synthetic_lock(&def, &inputs, &["linux/amd64"]);
    lock.bases.clear();
    lock.steps.clear();
    let out = rewrite_image(
        &def,
        &inputs,
        &lock,
        Path::new("/x"),
        RewriteOptions::default(),
    )
    .expect("rewrites");
    assert!(out.files.is_empty());
    assert_eq!(out.lock, lock);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    #[test]
    fn generated_dockerfiles_round_trip(
        lines in proptest::collection::vec(0usize..9, 1..12),
        crlf in proptest::bool::ANY,
        backtick in proptest::bool::ANY,
    ) {
        let esc = if backtick { '`' } else { '\\' };
        let eol = if crlf { "\r\n" } else { "\n" };
        let mut text = String::new();
        if backtick {
            text.push_str("# escape=`");
            text.push_str(eol);
        }
        text.push_str("FROM python:3.11-slim AS s0");
        text.push_str(eol);
        for (i, l) in lines.iter().enumerate() {
            let line = match l {
                0 => "# comment".to_string(),
                1 => String::new(),
                2 => format!("FROM debian:12 AS s{}", i + 1),
                3 => "RUN pip install numpy pandas".to_string(),
                4 => format!("RUN pip install --no-cache-dir a-package-with-a-long-name {esc}{eol}    another-long-name third-package-name {esc}{eol} && echo ok"),
                5 => "RUN apt-get install -y curl".to_string(),
                6 => "COPY --from=alpine:3.20 /etc/os-release /x".to_string(),
                7 => "ENV A=1".to_string(),
                _ => format!("RUN echo hi {esc}{eol}  there"),
            };
            text.push_str(&line);
            text.push_str(eol);
        }
        let after = round_trip(Path::new("Dockerfile"), &text);
        if crlf {
            proptest::prop_assert!(!after.replace("\r\n", "").contains('\n'));
        }
    }
}

#[test]
fn requirements_file_pinned_in_place_with_hashes_and_markers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dockerfile = dir.path().join("Dockerfile");
    let text = "FROM python:3.11\nCOPY requirements.txt /r.txt\nRUN pip install --no-cache-dir -r /r.txt Rich\n";
    fs_err::write(&dockerfile, text).expect("write");
    fs_err::write(
        dir.path().join("requirements.txt"),
        "# tools\npandas>=2  # core\ngit+https://example.org/x.git\n\nPyYAML",
    )
    .expect("write");
    let (def, inputs) = load(&dockerfile, dir.path(), &BTreeMap::new());
    let both = ["linux/amd64", "linux/arm64"];
    let mut lock = synthetic_lock(&def, &inputs, &both);
    let step = &mut lock.steps[0];
    let pkg = |name: &str, version: &str, platforms: &[&str]| PypiPackage {
        name: name.parse().unwrap(),
        version: Some(version.parse().unwrap()),
        requested: None,
        file: Some(format!("{name}-{version}.whl").parse().unwrap()),
        url: "https://files.example.org/f".parse().unwrap(),
        sha256: Some(
            (fake_digest(&format!("{name}{version}{platforms:?}"))[7..].to_string())
                .parse()
                .unwrap(),
        ),
        source: PypiSource::Index,
        revision: None,
        commit: None,
        required_by: Vec::new(),
        platforms: platforms.iter().map(|p| p.parse().unwrap()).collect(),
    };
    step.pypi = vec![
        pkg("pandas", "2.2.3", &both[..1]),
        pkg("pandas", "2.2.3", &both[1..]),
        pkg("numpy", "2.1.3", &both),
        pkg("rich", "13.9.4", &both),
        pkg("pyyaml", "6.0.2", &both),
        pkg("nvidia-cuda", "12.4", &both[..1]),
    ];
    let out = rewrite_image(
        &def,
        &inputs,
        &lock,
        dir.path(),
        RewriteOptions {
            hashes: true,
            ..RewriteOptions::default()
        },
    )
    .expect("rewrites");
    let shown: Vec<String> = out
        .files
        .iter()
        .map(|f| {
            format!(
                "== {}\n{}",
                f.path.file_name().expect("name").to_string_lossy(),
                f.after
            )
        })
        .collect();
    insta::assert_snapshot!("requirements_hashes", shown.join("\n"));
    // Twice is once.
    for f in &out.files {
        fs_err::write(&f.path, &f.after).expect("write");
    }
    let (def2, inputs2) = load(&dockerfile, dir.path(), &BTreeMap::new());
    let again = rewrite_image(
        &def2,
        &inputs2,
        &out.lock,
        dir.path(),
        RewriteOptions {
            hashes: true,
            ..RewriteOptions::default()
        },
    )
    .expect("rewrites again");
    assert!(again.files.is_empty(), "{:?}", again.files);
}

// ---- conda environment and spec files -----------------------------------

use crate::lock::CondaPackage;

fn conda_pkg(name: &str, version: &str, build: &str, channel: &str) -> CondaPackage {
    CondaPackage {
        name: name.parse().unwrap(),
        version: version.parse().unwrap(),
        build: build.parse().unwrap(),
        build_number: 0,
        channel: format!("https://conda.anaconda.org/{channel}")
            .parse()
            .unwrap(),
        subdir: "linux-64".parse().unwrap(),
        url: format!(
            "https://conda.anaconda.org/{channel}/linux-64/{name}-{version}-{build}.conda"
        )
        .parse()
        .unwrap(),
        sha256: fake_digest(name)[7..].to_string().parse().unwrap(),
        md5: None,
        size: None,
        requested: None,
        platforms: vec!["linux/amd64".parse().unwrap()],
    }
}

fn pypi_pkg(name: &str, version: &str) -> PypiPackage {
    PypiPackage {
        name: name.parse().unwrap(),
        version: Some(version.parse().unwrap()),
        requested: None,
        source: PypiSource::Index,
        file: Some(
            format!("{name}-{version}-py3-none-any.whl")
                .parse()
                .unwrap(),
        ),
        url: "https://files.example.org/f".parse().unwrap(),
        sha256: Some(fake_digest(name)[7..].to_string().parse().unwrap()),
        revision: None,
        commit: None,
        required_by: vec![],
        platforms: vec!["linux/amd64".parse().unwrap()],
    }
}

const CONDA_DOCKERFILE: &str = "FROM condaforge/miniforge3:24.3.0-0\nCOPY environment.yml /tmp/env.yml\nCOPY specs.txt /tmp/\nRUN mamba env update -n base -f /tmp/env.yml\nRUN conda install -y --file /tmp/specs.txt zlib \\\n && conda clean -afy\n";

const ENVIRONMENT_YML: &str = "# The analysis environment.\nname: analysis   # kept as is\nchannels:\n  - conda-forge\n  - bioconda\nvariables:\n  OMP_NUM_THREADS: \"1\"\ndependencies:\n  - python=3.12   # the interpreter\n  - \"numpy>=1.26\"\n  - bioconda::pysam\n  - pip\n  - pip:\n      - requests>=2\n      - -r extra.txt\nprefix: /opt/env\n";

const SPECS_TXT: &str = "# tools\nsamtools>=1.19\n\njq  # json\n";

/// A context with the conda Dockerfile and its files (`eol` line ends),
/// and a lock for its two conda steps.
fn conda_context(eol: &str) -> (tempfile::TempDir, PathBuf, LockedImage) {
    let dir = tempfile::tempdir().expect("tempdir");
    let dockerfile = dir.path().join("Dockerfile");
    let crlf = |t: &str| t.replace('\n', eol);
    fs_err::write(&dockerfile, crlf(CONDA_DOCKERFILE)).expect("write");
    fs_err::write(dir.path().join("environment.yml"), crlf(ENVIRONMENT_YML)).expect("write");
    fs_err::write(dir.path().join("specs.txt"), crlf(SPECS_TXT)).expect("write");
    let (def, inputs) = load(&dockerfile, dir.path(), &BTreeMap::new());
    let mut lock = synthetic_lock(&def, &inputs, &["linux/amd64"]);
    let steps: Vec<&InstallStep> = def.stages[0].steps.iter().collect();
    assert_eq!(steps.len(), 2, "two conda steps");
    let locked =
        |step: &InstallStep, conda: Vec<CondaPackage>, pypi: Vec<PypiPackage>| LockedStep {
            stage: 0,
            file: "Dockerfile".parse().unwrap(),
            line: u32::try_from(step.line).expect("small"),
            command: step.command.text.clone(),
            manager: step.command.manager.as_str().parse().unwrap(),
            action: "install".parse().unwrap(),
            target: Some("/opt/conda".into()),
            requested: vec![],
            channels: vec![
                "https://conda.anaconda.org/conda-forge".parse().unwrap(),
                "https://conda.anaconda.org/bioconda".parse().unwrap(),
            ],
            indexes: vec![],
            find_links: vec![],
            locked: true,
            reason: None,
            conda,
            pypi,
            apt_sources: vec![],
            apt: vec![],
            rpm_repos: vec![],
            apk_repos: vec![],
            apk: vec![],
            rpm: vec![],
        };
    lock.steps = vec![
        locked(
            steps[0],
            vec![
                conda_pkg("python", "3.12.4", "h194c7f8_0_cpython", "conda-forge"),
                conda_pkg("numpy", "1.26.4", "py312heda63a1_0", "conda-forge"),
                conda_pkg("pysam", "0.22.1", "py312hcfdcdd7_0", "bioconda"),
                conda_pkg("pip", "24.0", "pyhd8ed1ab_0", "conda-forge"),
                conda_pkg("libzlib", "1.3.1", "h4ab18f5_1", "conda-forge"),
                conda_pkg("htslib", "1.20", "h81da01d_0", "bioconda"),
            ],
            vec![
                pypi_pkg("requests", "2.32.3"),
                pypi_pkg("urllib3", "2.2.2"),
                pypi_pkg("charset-normalizer", "3.3.2"),
            ],
        ),
        locked(
            steps[1],
            vec![
                conda_pkg("samtools", "1.20", "h50ea8bc_0", "bioconda"),
                conda_pkg("jq", "1.7.1", "hd590300_0", "conda-forge"),
                conda_pkg("zlib", "1.3.1", "h4ab18f5_1", "conda-forge"),
                conda_pkg("oniguruma", "6.9.9", "hd590300_0", "conda-forge"),
            ],
            vec![],
        ),
    ];
    lock.image.input_hash = inputs.hash();
    (dir, dockerfile, lock)
}

/// Rewrites the conda context, writes the files, and checks a second
/// rewrite changes nothing and the relocked hash is the files'.
fn rewrite_conda_context(eol: &str) -> Vec<FileChange> {
    let (dir, dockerfile, lock) = conda_context(eol);
    let (def, inputs) = load(&dockerfile, dir.path(), &BTreeMap::new());
    let out = rewrite_image(&def, &inputs, &lock, dir.path(), RewriteOptions::default())
        .expect("rewrites");
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    for f in &out.files {
        fs_err::write(&f.path, &f.after).expect("write");
    }
    let (def2, inputs2) = load(&dockerfile, dir.path(), &BTreeMap::new());
    assert_eq!(inputs2.hash(), out.lock.image.input_hash, "relocked hash");
    let again = rewrite_image(
        &def2,
        &inputs2,
        &out.lock,
        dir.path(),
        RewriteOptions::default(),
    )
    .expect("rewrites again");
    assert!(again.files.is_empty(), "{:?}", again.files);
    // The rewritten environment file still reads as one.
    let env_file = dir.path().join("environment.yml");
    let env = crate::source::environment::EnvironmentFile::parse(
        &env_file,
        &fs_err::read_to_string(&env_file).expect("reads"),
    )
    .expect("valid environment file");
    assert_eq!(env.dependencies.len(), 6);
    assert_eq!(env.pip.len(), 4);
    out.files
}

fn show(files: &[FileChange]) -> String {
    files
        .iter()
        .map(|f| {
            format!(
                "== {}\n{}",
                f.path.file_name().expect("name").to_string_lossy(),
                f.after
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn environment_and_spec_files_pinned_in_place() {
    let files = rewrite_conda_context("\n");
    insta::assert_snapshot!("conda_files", show(&files));
    // Outside the pinned scalars and the added lines, every byte is kept.
    let env = files
        .iter()
        .find(|f| f.path.ends_with("environment.yml"))
        .expect("environment.yml rewritten");
    for kept in [
        "# The analysis environment.\nname: analysis   # kept as is\nchannels:\n  - conda-forge\n  - bioconda\nvariables:\n  OMP_NUM_THREADS: \"1\"\ndependencies:\n  - python==",
        "   # the interpreter\n  - \"numpy==",
        "\n      - -r extra.txt\n",
        "\nprefix: /opt/env\n",
    ] {
        assert!(env.after.contains(kept), "{kept:?} in {}", env.after);
    }
}

#[test]
fn environment_and_spec_files_keep_crlf() {
    let lf = rewrite_conda_context("\n");
    let crlf = rewrite_conda_context("\r\n");
    assert_eq!(lf.len(), crlf.len());
    for (a, b) in lf.iter().zip(&crlf) {
        assert!(!b.after.replace("\r\n", "").contains('\n'), "{:?}", b.after);
        assert_eq!(a.after.replace('\n', "\r\n"), b.after);
    }
}

/// Conda and pip package names of a generated environment file's entries.
const GEN_CONDA: [(&str, &str); 5] = [
    ("python=3.12", "python"),
    ("\"numpy>=1.26\"", "numpy"),
    ("'scipy'", "scipy"),
    ("bioconda::pysam", "pysam"),
    ("pip", "pip"),
];
const GEN_PIP: [(&str, &str); 3] = [
    ("requests>=2", "requests"),
    ("Rich", "rich"),
    ("\"httpx[http2]\"", "httpx"),
];

/// An environment file from generated choices.
fn generated_environment(
    eol: &str,
    flow: bool,
    indent: usize,
    conda: &[usize],
    pip: &[usize],
    comments: bool,
    final_eol: bool,
) -> String {
    let pad = " ".repeat(indent);
    let c = |s: &str| {
        if comments {
            format!("  # {s}")
        } else {
            String::new()
        }
    };
    let mut t = format!(
        "# generated{eol}name: gen{}{eol}channels:{eol}{pad}- conda-forge{eol}{pad}- bioconda{eol}",
        c("name")
    );
    let conda_items: Vec<&str> = conda.iter().map(|&i| GEN_CONDA[i].0).collect();
    let pip_items: Vec<&str> = pip.iter().map(|&i| GEN_PIP[i].0).collect();
    if flow {
        let mut items: Vec<String> = conda_items.iter().map(|s| (*s).to_string()).collect();
        if !pip_items.is_empty() {
            items.push(format!("{{pip: [{}]}}", pip_items.join(", ")));
        }
        t.push_str(&format!("dependencies: [{}]{eol}", items.join(", ")));
    } else {
        t.push_str(&format!("dependencies:{eol}"));
        for (n, item) in conda_items.iter().enumerate() {
            t.push_str(&format!("{pad}- {item}{}{eol}", c(&n.to_string())));
            if comments && n == 0 {
                t.push_str(&format!("{eol}{pad}# between{eol}"));
            }
        }
        if !pip_items.is_empty() {
            t.push_str(&format!("{pad}- pip:{eol}"));
            for item in &pip_items {
                t.push_str(&format!("{pad}    - {item}{}{eol}", c("pip")));
            }
        }
    }
    t.push_str("prefix: /opt/env");
    if final_eol {
        t.push_str(eol);
    }
    t
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// Parse → rewrite → parse keeps the file's name, channels and lists;
    /// every locked package ends up pinned; a second rewrite changes
    /// nothing; CRLF stays CRLF.
    #[test]
    fn generated_environment_files_round_trip(
        crlf in proptest::bool::ANY,
        flow in proptest::bool::ANY,
        indent in 0usize..3,
        conda in proptest::collection::btree_set(0usize..5, 1..5),
        pip in proptest::collection::btree_set(0usize..3, 0..3),
        comments in proptest::bool::ANY,
        final_eol in proptest::bool::ANY,
        with_specs in proptest::bool::ANY,
    ) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let conda: Vec<usize> = conda.into_iter().collect();
        let pip: Vec<usize> = pip.into_iter().collect();
        let env_text = generated_environment(eol, flow, indent, &conda, &pip, comments, final_eol);
        let dir = tempfile::tempdir().expect("tempdir");
        let dockerfile = dir.path().join("Dockerfile");
        let mut df = "FROM condaforge/miniforge3:24.3.0-0\nCOPY environment.yml /tmp/env.yml\nRUN micromamba install -y -f /tmp/env.yml\n".to_string();
        if with_specs {
            df.push_str("COPY specs.txt /tmp/specs.txt\nRUN conda install --file /tmp/specs.txt\n");
            fs_err::write(dir.path().join("specs.txt"), format!("jq{eol}# c{eol}samtools>=1")).expect("write");
        }
        fs_err::write(&dockerfile, df.replace('\n', eol)).expect("write");
        let env_path = dir.path().join("environment.yml");
        fs_err::write(&env_path, &env_text).expect("write");
        let before = crate::source::environment::EnvironmentFile::parse(&env_path, &env_text).expect("generated file is valid");

        let (def, inputs) = load(&dockerfile, dir.path(), &BTreeMap::new());
        let mut lock = synthetic_lock(&def, &inputs, &["linux/amd64"]);
        let step_of = |i: usize, conda: Vec<CondaPackage>, pypi: Vec<PypiPackage>| {
            let step = &def.stages[0].steps[i];
            LockedStep {
                stage: 0,
                file: "Dockerfile".parse().unwrap(),
                line: u32::try_from(step.line).expect("small"),
                command: step.command.text.clone(),
                manager: step.command.manager.as_str().parse().unwrap(),
                action: "install".parse().unwrap(),
                target: None,
                requested: vec![],
                channels: vec!["https://conda.anaconda.org/conda-forge".parse().unwrap()],
                indexes: vec![],
                find_links: vec![],
                locked: true,
                reason: None,
                conda,
                pypi,
                apt_sources: vec![],
                apt: vec![],
                rpm_repos: vec![],
                apk_repos: vec![],
                apk: vec![],
                rpm: vec![],
            }
        };
        let mut conda_pkgs: Vec<CondaPackage> = conda
            .iter()
            .map(|&i| conda_pkg(GEN_CONDA[i].1, "1.0", "h0_0", if i == 3 { "bioconda" } else { "conda-forge" }))
            .collect();
        conda_pkgs.push(conda_pkg("libzlib", "1.3.1", "h4ab18f5_1", "conda-forge"));
        let mut pypi_pkgs: Vec<PypiPackage> = pip.iter().map(|&i| pypi_pkg(GEN_PIP[i].1, "2.0")).collect();
        if !pip.is_empty() {
            pypi_pkgs.push(pypi_pkg("urllib3", "2.2.2"));
        }
        lock.steps = vec![step_of(0, conda_pkgs, pypi_pkgs)];
        if with_specs {
            lock.steps.push(step_of(1, vec![
                conda_pkg("jq", "1.7.1", "hd590300_0", "conda-forge"),
                conda_pkg("samtools", "1.20", "h50ea8bc_0", "bioconda"),
                conda_pkg("oniguruma", "6.9.9", "hd590300_0", "conda-forge"),
            ], vec![]));
        }
        let out = rewrite_image(&def, &inputs, &lock, dir.path(), RewriteOptions::default()).expect("rewrites");
        proptest::prop_assert!(out.warnings.is_empty(), "{:?}", out.warnings);
        for f in &out.files {
            if crlf {
                proptest::prop_assert!(!f.after.replace("\r\n", "").contains('\n'), "bare LF in {:?}", f.after);
            }
            fs_err::write(&f.path, &f.after).expect("write");
        }
        let after_text = fs_err::read_to_string(&env_path).expect("reads");
        let after = crate::source::environment::EnvironmentFile::parse(&env_path, &after_text).expect("still valid");
        let values = |v: &[crate::source::environment::SpannedValue]| v.iter().map(|s| s.value.clone()).collect::<Vec<_>>();
        proptest::prop_assert_eq!(&before.name.map(|n| n.value), &after.name.map(|n| n.value));
        proptest::prop_assert_eq!(values(&before.channels), values(&after.channels));
        proptest::prop_assert_eq!(after.dependencies.len(), conda.len() + 1);
        proptest::prop_assert_eq!(after.pip.len(), if pip.is_empty() { 0 } else { pip.len() + 1 });
        for d in &after.dependencies {
            proptest::prop_assert!(d.value.contains("=="), "{} not pinned", d.value);
        }
        for p in &after.pip {
            proptest::prop_assert!(p.value.contains("=="), "{} not pinned", p.value);
        }
        let tail = format!("prefix: /opt/env{eol}");
        let ends = after_text.ends_with("prefix: /opt/env") || after_text.ends_with(&tail);
        proptest::prop_assert!(ends, "{:?}", after_text);
        // Every comment is kept.
        for comment in env_text.lines().filter_map(|l| l.split_once('#').map(|(_, c)| c)) {
            proptest::prop_assert!(after_text.contains(comment), "lost `{}`: {:?}", comment, after_text);
        }
        if comments && !flow {
            let between = format!("{eol}{}# between{eol}", " ".repeat(indent));
            proptest::prop_assert!(after_text.contains(&between), "{:?}", after_text);
        }
        // The stages and steps of the definition are the same; twice is once.
        let (def2, inputs2) = load(&dockerfile, dir.path(), &BTreeMap::new());
        proptest::prop_assert_eq!(def.stages.len(), def2.stages.len());
        proptest::prop_assert_eq!(def.stages[0].steps.len(), def2.stages[0].steps.len());
        proptest::prop_assert_eq!(inputs2.hash(), out.lock.image.input_hash.clone());
        let again = rewrite_image(&def2, &inputs2, &out.lock, dir.path(), RewriteOptions::default()).expect("again");
        proptest::prop_assert!(again.files.is_empty(), "second rewrite changed {:?}", again.files);
    }
}

/// Regression: a requirement pinned to one version per platform used to
/// get every pin on each of its lines again on the next run.
#[test]
fn per_platform_pins_in_a_requirements_file_are_stable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dockerfile = dir.path().join("Dockerfile");
    fs_err::write(
        &dockerfile,
        "FROM python:3.11\nCOPY requirements.txt /r.txt\nRUN pip install -r /r.txt\n",
    )
    .expect("write");
    fs_err::write(
        dir.path().join("requirements.txt"),
        "# ml\ntorch>=2\nrich\n",
    )
    .expect("write");
    let both = ["linux/amd64", "linux/arm64"];
    for hashes in [false, true] {
        fs_err::write(
            dir.path().join("requirements.txt"),
            "# ml\ntorch>=2\nrich\n",
        )
        .expect("write");
        let (def, inputs) = load(&dockerfile, dir.path(), &BTreeMap::new());
        let mut lock = synthetic_lock(&def, &inputs, &both);
        let pkg = |name: &str, version: &str, platforms: &[&str]| PypiPackage {
            platforms: platforms.iter().map(|p| p.parse().unwrap()).collect(),
            ..pypi_pkg(name, version)
        };
        lock.steps[0].pypi = vec![
            pkg("torch", "2.4.0", &both[..1]),
            pkg("torch", "2.4.1", &both[1..]),
            pkg("rich", "13.9.4", &both),
        ];
        let opts = RewriteOptions {
            hashes,
            ..RewriteOptions::default()
        };
        let out = rewrite_image(&def, &inputs, &lock, dir.path(), opts).expect("rewrites");
        for f in &out.files {
            fs_err::write(&f.path, &f.after).expect("write");
        }
        let req = fs_err::read_to_string(dir.path().join("requirements.txt")).expect("reads");
        assert_eq!(req.matches("torch==").count(), 2, "{req}");
        let (def2, inputs2) = load(&dockerfile, dir.path(), &BTreeMap::new());
        let again =
            rewrite_image(&def2, &inputs2, &out.lock, dir.path(), opts).expect("rewrites again");
        assert!(again.files.is_empty(), "{:?}", again.files);
    }
}

/// One word holding several specs (`${PKGS}`) is pinned as one list, and
/// an unquoted `scipy>=1.8` (a redirect to the shell) is replaced whole:
/// no panic, no `scipy==X>=1.8`.
#[test]
fn a_word_of_several_specs_and_a_redirected_spec_are_pinned() {
    let text = "FROM python:3.11\nARG PKGS=\"numpy scipy\"\nRUN pip install ${PKGS}\nRUN pip install scipy>=1.8 six\n";
    let out = round_trip(Path::new("Dockerfile"), text);
    assert!(!out.contains(">=1.8"), "{out}");
    assert!(!out.contains("${PKGS}"), "{out}");
    assert!(out.contains("RUN pip install "), "{out}");
    insta::assert_snapshot!(out);
}

/// `pins+snapshot`: the archives each pinned apt install read, at the
/// lock's snapshot, written before the step's `apt-get update` (or with an
/// update of its own); an archive without a known snapshot is named; a
/// second rewrite changes nothing, and a newer snapshot replaces the list.
#[test]
fn apt_pins_with_the_snapshot_archives() {
    let text = "FROM debian:bookworm\nRUN apt-get update \\\n && apt-get install -y curl\nRUN apt-get install -y hello\n";
    let path = Path::new("Dockerfile");
    let (def, inputs) = parse_text(path, text);
    let mut lock = synthetic_lock(&def, &inputs, &["linux/amd64"]);
    let source = |uri: &str, suite: &str, snapshot: &str| crate::lock::AptSource {
        uri: uri.parse().unwrap(),
        suite: suite.parse().unwrap(),
        components: vec!["main".parse().unwrap()],
        vendor: None,
        codename: None,
        date: "Sat, 10 Aug 2024 09:04:53 UTC".parse().unwrap(),
        release_sha256: fake_digest(uri)[7..].parse().unwrap(),
        snapshot: snapshot.parse().unwrap(),
        platforms: vec!["linux/amd64".parse().unwrap()],
    };
    let package = |name: &str| crate::lock::AptPackage {
        name: name.parse().unwrap(),
        version: "1.0-1".parse().unwrap(),
        architecture: "amd64".parse().unwrap(),
        action: "install".parse().unwrap(),
        source: name.parse().unwrap(),
        source_version: None,
        uri: Some("http://deb.debian.org/debian".parse().unwrap()),
        suite: Some("bookworm".parse().unwrap()),
        filename: None,
        size: None,
        sha256: None,
        required_by: vec!["requested".into()],
        in_base: false,
        platforms: vec!["linux/amd64".parse().unwrap()],
    };
    let lock_at = |lock: &mut LockedImage, snapshot: &str| {
        lock.steps.clear();
        for stage in &def.stages {
            for step in &stage.steps {
                let name = step.command.specs[0].value.clone().unwrap();
                lock.steps.push(LockedStep {
                    stage: 0,
                    file: "Dockerfile".parse().unwrap(),
                    line: u32::try_from(step.line).unwrap(),
                    command: step.command.text.clone(),
                    manager: "apt-get".parse().unwrap(),
                    action: "install".parse().unwrap(),
                    target: None,
                    requested: vec![],
                    channels: vec![],
                    indexes: vec![],
                    find_links: vec![],
                    locked: true,
                    reason: None,
                    conda: vec![],
                    pypi: vec![],
                    apt_sources: vec![
                        source("http://deb.debian.org/debian", "bookworm", snapshot),
                        source(
                            "http://deb.debian.org/debian-security",
                            "bookworm-security",
                            snapshot,
                        ),
                        source("https://apt.example.org/repo", "stable", snapshot),
                    ],
                    apt: vec![package(&name)],
                    rpm_repos: vec![],
                    apk_repos: vec![],
                    apk: vec![],
                    rpm: vec![],
                });
            }
        }
    };
    lock_at(&mut lock, "20240810T090453Z");
    let opts = RewriteOptions {
        apt_snapshot: true,
        ..RewriteOptions::default()
    };
    let context = Path::new("/nonexistent-context");
    let out = rewrite_image(&def, &inputs, &lock, context, opts).expect("rewrites");
    let after = &out.files[0].after;
    insta::assert_snapshot!(after);
    let warnings: Vec<&str> = out.warnings.iter().map(|w| w.message.as_str()).collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].contains("`https://apt.example.org/repo` keeps no snapshot"),
        "{warnings:?}"
    );
    // Again: nothing to change.
    let (def2, inputs2) = parse_text(path, after);
    let again = rewrite_image(&def2, &inputs2, &out.lock, context, opts).expect("again");
    assert!(again.files.is_empty(), "{}", again.files[0].after);
    // A newer lock: the lists are replaced, nothing is added.
    let mut newer = out.lock.clone();
    for s in newer
        .steps
        .iter_mut()
        .flat_map(|s| s.apt_sources.iter_mut())
    {
        s.snapshot = "20250101T000000Z".parse().unwrap();
    }
    let third = rewrite_image(&def2, &inputs2, &newer, context, opts).expect("newer");
    let t = &third.files[0].after;
    assert_eq!(t.matches("imagelock-snapshot.list").count(), 2, "{t}");
    assert_eq!(t.matches("20250101T000000Z").count(), 4, "{t}");
    assert!(!t.contains("20240810T090453Z"), "{t}");
}

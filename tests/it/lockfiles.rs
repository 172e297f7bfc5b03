//! Committed lockfiles: valid against the JSON Schema, readable, canonical.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use imagelock::lock::{LockedBase, LockedImage, LockedStage};
use imagelock::source::inputs::load_inputs;
use imagelock::source::load::load_definition;

use crate::common::{fixture, imagelock, repo_root, run};

fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(repo_root().join("lockfiles/imagelock.schema.json"))
        .expect("the schema is committed");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("the schema is JSON");
    jsonschema::validator_for(&schema).expect("the schema compiles")
}

fn as_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap();
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `*.lock` under `lockfiles/`, plus the format sample.
fn lockfiles() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join("lockfiles"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "lock"))
        .collect();
    files.sort();
    files.push(fixture("lock/sample.lock"));
    files
}

#[test]
fn committed_lockfiles_match_the_schema() {
    let validator = schema();
    for path in lockfiles() {
        let json = as_json(&path);
        let errors: Vec<String> = validator
            .iter_errors(&json)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
    }
}

#[test]
fn committed_lockfiles_are_canonical() {
    for path in lockfiles() {
        let text = std::fs::read_to_string(&path).unwrap();
        let lock = LockedImage::from_toml(&path, &text).unwrap();
        assert_eq!(
            lock.to_toml(),
            text,
            "{} is not in canonical form",
            path.display()
        );
    }
}

/// The schema is not vacuous: it rejects what the reader rejects.
#[test]
fn schema_rejects_broken_locks() {
    let validator = schema();
    let mut json = as_json(&fixture("lock/sample.lock"));
    json["steps"][2]["pypi"][0]["sha256"] = serde_json::Value::from(7);
    assert!(!validator.is_valid(&json));
    let mut json = as_json(&fixture("lock/sample.lock"));
    json["image"]["surprise"] = serde_json::Value::from("x");
    assert!(!validator.is_valid(&json));
    let mut json = as_json(&fixture("lock/sample.lock"));
    json.as_object_mut().unwrap().remove("version");
    assert!(!validator.is_valid(&json));
    // What the reader refuses by value, the schema refuses too.
    let sample = as_json(&fixture("lock/sample.lock"));
    type Edit = fn(&mut serde_json::Value);
    let edits: [(&str, Edit); 4] = [
        ("version = 7", |j| j["version"] = 7.into()),
        ("a digest that is a tag", |j| {
            j["bases"][0]["digest"] = "latest".into()
        }),
        ("platform = amiga/68k", |j| {
            j["bases"][0]["platforms"][0]["platform"] = "amiga/68k".into()
        }),
        ("an image platform amiga/68k", |j| {
            j["image"]["platforms"][0] = "amiga/68k".into()
        }),
    ];
    for (what, edit) in edits {
        let mut json = sample.clone();
        edit(&mut json);
        assert!(!validator.is_valid(&json), "the schema takes {what}");
    }
    // Every lock of fixtures/bad/lock/ (which imagelock refuses, below).
    let dir = repo_root().join("fixtures/bad/lock");
    for path in crate::common::sorted_files(&dir) {
        let json = as_json(&path);
        assert!(
            !validator.is_valid(&json),
            "the schema takes {}, which imagelock refuses",
            path.display()
        );
    }
}

/// Each lock in `fixtures/bad/lock/` (injected lines, short or non-hex
/// digests, an index option in a version, a name with a space, an unknown
/// platform, a path out of the repository) is refused before use: exit 2,
/// naming the key and line.
#[test]
fn bad_locks_fail_naming_key_and_line() {
    let dir = fixture("bad/lock");
    let files = crate::common::sorted_files(&dir);
    assert!(files.len() >= 8);
    for file in files {
        let rel = file.strip_prefix(repo_root()).unwrap();
        let (code, out, err) = run(imagelock()
            .current_dir(repo_root())
            .args([
                "export",
                "--to",
                "requirements",
                "--platform",
                "linux/amd64",
            ])
            .arg(rel));
        assert_eq!(code, 2, "{}: {err}", rel.display());
        assert!(out.is_empty(), "{out}");
        assert!(!err.contains("panicked"), "{err}");
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        insta::assert_snapshot!(format!("bad_lock_{name}"), err);
    }
}

/// A lock whose base digest was changed by one hex digit is flagged by
/// `verify` as edited by hand (exit 1), offline.
#[test]
fn verify_flags_a_hand_edited_lock() {
    let tmp = crate::common::tempdir();
    let dockerfile = tmp.path().join("tool/Dockerfile");
    std::fs::create_dir_all(dockerfile.parent().unwrap()).unwrap();
    std::fs::write(&dockerfile, "FROM python:3.11-slim\n").unwrap();
    let def = load_definition(&dockerfile, &BTreeMap::new()).unwrap();
    let text = std::fs::read_to_string(&dockerfile).unwrap();
    let inputs = load_inputs(&def, &text, dockerfile.parent().unwrap(), &BTreeMap::new()).unwrap();
    let name = "docker.io/library/python:3.11-slim";
    let stage = LockedStage::new(0, None, "python:3.11-slim", Some(name)).unwrap();
    let mut lock = LockedImage::skeleton(
        "tool",
        "tool/Dockerfile",
        inputs.hash(),
        &["linux/amd64".to_string()],
        vec![stage],
    )
    .unwrap();
    lock.bases.push(LockedBase {
        name: name.parse().unwrap(),
        references: vec!["python:3.11-slim".parse().unwrap()],
        digest: format!("sha256:{}", "1".repeat(64)).parse().unwrap(),
        media_type: "application/vnd.oci.image.index.v1+json".parse().unwrap(),
        built_from: None,
        agent: None,
        pinned: None,
        platforms: Vec::new(),
    });
    let path = tmp.path().join("lockfiles/tool.lock");
    lock.write(&path).unwrap();
    let verify = || {
        run(imagelock()
            .current_dir(tmp.path())
            .args(["verify", "tool/Dockerfile"]))
    };
    let (code, out, err) = verify();
    assert_eq!(
        (code, out.as_str()),
        (
            0,
            "tool: the lock is current\ntool: coverage: 1 of 1 step locked\n"
        ),
        "{err}"
    );

    let written = std::fs::read_to_string(&path).unwrap();
    let edited = written.replacen("sha256:1111", "sha256:2111", 1);
    assert_ne!(written, edited);
    std::fs::write(&path, edited).unwrap();
    let (code, out, err) = verify();
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("tool: the lock was edited by hand"), "{out}");
    assert!(out.contains("imagelock freeze"), "{out}");
}

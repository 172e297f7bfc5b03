//! Committed lockfiles: valid against the JSON Schema, readable, canonical.

use std::path::{Path, PathBuf};

use imagelock::lock::LockedImage;

use crate::common::{fixture, repo_root};

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
}

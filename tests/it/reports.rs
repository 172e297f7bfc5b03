//! The reports CI reads, checked by real validators against the official
//! schemas vendored under `tests/schemas/` (their sources are in its
//! README): SARIF 2.1.0 with check-jsonschema, JUnit with xmllint against
//! the strict Ant schema and the Jenkins xUnit one. The commands that make
//! reports call these on their real outputs (`verify.rs`, `drift.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common;

fn schema(name: &str) -> PathBuf {
    common::repo_root().join("tests/schemas").join(name)
}

/// Whether the validators are here (under `CI=true` they must be).
pub fn validators() -> bool {
    common::require_tool("check-jsonschema", "pip install check-jsonschema")
        & common::require_tool("xmllint", "apt-get install libxml2-utils")
}

/// The SARIF file is valid under the official SARIF 2.1.0 schema.
pub fn assert_sarif(path: &Path) -> Value {
    let (code, out, err) = common::run(
        Command::new("check-jsonschema")
            .arg("--schemafile")
            .arg(schema("sarif-schema-2.1.0.json"))
            .arg(path),
    );
    assert_eq!(code, 0, "{}: {out}{err}", path.display());
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// `json` is valid under the published schema `lockfiles/NAME.schema.json`.
pub fn assert_output_schema(name: &str, json: &str) {
    let dir = common::tempdir();
    let file = dir.path().join("output.json");
    std::fs::write(&file, json).unwrap();
    let (code, out, err) = common::run(
        Command::new("check-jsonschema")
            .arg("--schemafile")
            .arg(common::repo_root().join(format!("lockfiles/{name}.schema.json")))
            .arg(&file),
    );
    assert_eq!(code, 0, "{name}: {out}{err}\n{json}");
}

fn xmllint(xsd: &str, path: &Path) -> (i32, String) {
    let (code, out, err) = common::run(
        Command::new("xmllint")
            .args(["--noout", "--schema"])
            .arg(schema(xsd))
            .arg(path),
    );
    (code, format!("{out}{err}"))
}

/// A `--format junit-strict` report is valid under both schemas.
pub fn assert_junit_strict(path: &Path) {
    for xsd in ["junit-ant.xsd", "junit-jenkins-10.xsd"] {
        let (code, out) = xmllint(xsd, path);
        assert_eq!(code, 0, "{xsd}: {out}\n{}", read(path));
    }
}

/// A `--format junit` report differs from a valid Jenkins document only
/// by the testcases' `file` and `line`; the strict Ant schema refuses it
/// for exactly those and the counts on `testsuites`.
pub fn assert_junit_common(path: &Path) {
    let text = read(path);
    let stripped = strip_attributes(&text, &["file", "line"]);
    let copy = path.with_extension("stripped.xml");
    std::fs::write(&copy, &stripped).unwrap();
    let (code, out) = xmllint("junit-jenkins-10.xsd", &copy);
    assert_eq!(code, 0, "{out}\n{stripped}");
    let (code, out) = xmllint("junit-ant.xsd", path);
    assert_ne!(code, 0, "{out}");
    for line in out.lines().filter(|l| l.contains("validity error")) {
        assert!(
            line.contains("attribute 'file'")
                || line.contains("attribute 'line'")
                || line.contains("Element 'testsuites'"),
            "{line}"
        );
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// `text` without the attributes `names` of `testcase` elements.
fn strip_attributes(text: &str, names: &[&str]) -> String {
    text.lines()
        .map(|line| {
            if !line.trim_start().starts_with("<testcase ") {
                return line.to_string();
            }
            let mut line = line.to_string();
            for name in names {
                let key = format!(" {name}=\"");
                if let Some(i) = line.find(&key) {
                    let end = line[i + key.len()..].find('"').unwrap() + i + key.len() + 1;
                    line.replace_range(i..end, "");
                }
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `partialFingerprints` of each result, by rule.
pub fn fingerprints(sarif: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["ruleId"].as_str().unwrap().to_string(),
                r["partialFingerprints"]["imagelockFinding/v1"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// JUnit text with the run's time, host and durations made stable for
/// snapshots.
pub fn stable_junit(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let mut line = line.to_string();
        for (key, to) in [
            ("timestamp", "[timestamp]"),
            ("hostname", "[host]"),
            ("time", "[time]"),
        ] {
            let pat = format!(" {key}=\"");
            let mut from = 0;
            while let Some(i) = line[from..].find(&pat).map(|i| i + from) {
                let start = i + pat.len();
                let end = line[start..].find('"').unwrap() + start;
                line.replace_range(start..end, to);
                from = start + to.len();
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The published output schemas are themselves valid JSON Schemas.
#[test]
fn published_schemas_are_schemas() {
    if !validators() {
        return;
    }
    let dir = common::repo_root().join("lockfiles");
    for name in [
        "verify-report",
        "drift-report",
        "freeze-changes",
        "imagelock-config",
    ] {
        let (code, out, err) = common::run(
            Command::new("check-jsonschema")
                .arg("--check-metaschema")
                .arg(dir.join(format!("{name}.schema.json"))),
        );
        assert_eq!(code, 0, "{name}: {out}{err}");
    }
}

/// The configuration's schema takes what imagelock takes and refuses what
/// it refuses: the examples' `imagelock.toml`, and edits of it.
#[test]
fn config_schema_agrees_with_the_reader() {
    let text =
        std::fs::read_to_string(common::repo_root().join("lockfiles/imagelock-config.schema.json"))
            .unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let example = std::fs::read_to_string(common::fixture("examples/imagelock.toml")).unwrap();
    let dir = common::tempdir();
    common::copy_dir(&common::fixture("examples"), dir.path());
    let reads = |toml_text: &str| -> (bool, bool, String) {
        let json: Value = toml::from_str(toml_text).unwrap();
        std::fs::write(dir.path().join("imagelock.toml"), toml_text).unwrap();
        let (code, _, err) = common::run(common::imagelock().current_dir(dir.path()).args([
            "--config",
            "imagelock.toml",
            "plan",
            "--format",
            "json",
        ]));
        (validator.is_valid(&json), code == 0, err)
    };
    let (schema_ok, reader_ok, err) = reads(&example);
    assert!(schema_ok && reader_ok, "the examples' configuration: {err}");
    // The configuration with every key.
    let full = std::fs::read_to_string(common::fixture("config/full.toml")).unwrap();
    let json: Value = toml::from_str(&full).unwrap();
    assert!(validator.is_valid(&json), "fixtures/config/full.toml");
    for (what, edited) in [
        ("an unknown key", format!("surprise = 1\n{example}")),
        (
            "timeout = 0",
            format!("{example}\n[network]\ntimeout = 0\n"),
        ),
        (
            "a platform that is not os/arch",
            example.replacen(
                "platforms = [\"linux/amd64\", \"linux/arm64\"]",
                "platforms = [\"amiga\"]",
                1,
            ),
        ),
        (
            "an image without its file",
            format!("{example}\n[images.nofile]\ncontext = \".\"\n"),
        ),
        (
            "an unknown key of a registry",
            format!("{example}\n[registries.\"x.example\"]\nsurprise = true\n"),
        ),
    ] {
        let (schema_ok, reader_ok, _) = reads(&edited);
        assert!(!reader_ok, "imagelock takes {what}");
        assert!(
            !schema_ok,
            "the schema takes {what}, which imagelock refuses"
        );
    }
}

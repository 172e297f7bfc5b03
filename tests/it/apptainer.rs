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

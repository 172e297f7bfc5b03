//! `imagelock rewrite` through the real binary: exit codes of `--check` and
//! `--diff`, writing, idempotence and stale locks.

use std::collections::BTreeMap;
use std::path::Path;

use imagelock::lock::LockedImage;
use imagelock::source::inputs::load_inputs;
use imagelock::source::load::load_definition;

use crate::common::{fixture, imagelock, run, tempdir};

/// A repository with the summation example and its lock (input hash
/// computed for the files as they are).
fn summation_repo(dir: &Path) {
    let src = fixture("examples/summation");
    let dst = dir.join("summation");
    fs_err::create_dir_all(&dst).unwrap();
    for name in ["summation.def", "summation.py"] {
        fs_err::copy(src.join(name), dst.join(name)).unwrap();
    }
    fs_err::write(
        dir.join("imagelock.toml"),
        "platforms = [\"linux/amd64\", \"linux/arm64\"]\n\n[images.summation]\nfile = \"summation/summation.def\"\n",
    )
    .unwrap();
    let file = dst.join("summation.def");
    let args = BTreeMap::new();
    let def = load_definition(&file, &args).unwrap();
    let text = fs_err::read_to_string(&file).unwrap();
    let inputs = load_inputs(&def, &text, &dst, &args).unwrap();
    let mut lock = LockedImage::read(&fixture("rewrite/locks/summation.lock")).unwrap();
    lock.image.input_hash = inputs.hash();
    lock.write(&dir.join("lockfiles/summation.lock")).unwrap();
}

#[test]
fn check_diff_write_then_clean() {
    let tmp = tempdir();
    summation_repo(tmp.path());
    let def = tmp.path().join("summation/summation.def");
    let original = fs_err::read_to_string(&def).unwrap();

    let (code, out, err) = run(imagelock()
        .current_dir(tmp.path())
        .args(["rewrite", "--check"]));
    assert_eq!(code, 1, "{err}");
    assert!(out.contains("--- a/summation/summation.def"), "{out}");
    assert!(out.contains("+From: python:latest@sha256:"), "{out}");
    assert!(out.contains("+    pip install numpy==2.3.4"), "{out}");
    assert_eq!(fs_err::read_to_string(&def).unwrap(), original);

    let (code, diff, err) = run(imagelock()
        .current_dir(tmp.path())
        .args(["rewrite", "--diff"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(diff, out);
    assert_eq!(fs_err::read_to_string(&def).unwrap(), original);

    let (code, _, err) = run(imagelock().current_dir(tmp.path()).arg("rewrite"));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("summation: pinned 1 file"), "{err}");
    let pinned = fs_err::read_to_string(&def).unwrap();
    assert!(pinned.contains("From: python:latest@sha256:"));
    // Sections other than the edited lines are byte for byte the same.
    assert_eq!(
        pinned.split("%runscript").nth(1),
        original.split("%runscript").nth(1)
    );

    let (code, out, err) = run(imagelock()
        .current_dir(tmp.path())
        .args(["rewrite", "--check"]));
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    let (code, _, err) = run(imagelock().current_dir(tmp.path()).arg("rewrite"));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("already pinned"), "{err}");
    assert_eq!(fs_err::read_to_string(&def).unwrap(), pinned);
}

#[test]
fn a_stale_lock_is_refused() {
    let tmp = tempdir();
    summation_repo(tmp.path());
    let def = tmp.path().join("summation/summation.def");
    let mut text = fs_err::read_to_string(&def).unwrap();
    text.push_str("\n%test\n    true\n");
    fs_err::write(&def, &text).unwrap();
    let (code, out, err) = run(imagelock()
        .current_dir(tmp.path())
        .args(["rewrite", "--check"]));
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("stale"), "{err}");
    assert!(err.contains("imagelock freeze"), "{err}");
    assert_eq!(fs_err::read_to_string(&def).unwrap(), text);
}

#[test]
fn a_missing_lock_is_an_error_with_a_hint() {
    let tmp = tempdir();
    summation_repo(tmp.path());
    fs_err::remove_file(tmp.path().join("lockfiles/summation.lock")).unwrap();
    let (code, _, err) = run(imagelock().current_dir(tmp.path()).arg("rewrite"));
    assert_eq!(code, 2);
    assert!(err.contains("has no lock"), "{err}");
}

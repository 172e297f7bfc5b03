//! freeze reads install steps the way each platform's build runs them,
//! against the embedded world (its python image and package index).

use std::path::Path;

use crate::common::{fixture, run};

/// A project in a temporary directory whose configuration resolves
/// against the embedded world, with `dockerfile` as image `app`.
fn project(dockerfile: &str, extra: &str) -> tempfile::TempDir {
    let dir = crate::common::tempdir();
    std::fs::create_dir_all(dir.path().join("app")).unwrap();
    std::fs::write(dir.path().join("app/Dockerfile"), dockerfile).unwrap();
    std::fs::write(
        dir.path().join("imagelock.toml"),
        format!(
            "platforms = [\"linux/amd64\", \"linux/arm64\"]\n[images.app]\nfile = \"app/Dockerfile\"\n[pypi]\nindex-url = \"{}\"\n[registries.\"docker.io\"]\nlocation = \"oci:{}\"\n{extra}",
            fixture("world/pypi/simple").display(),
            fixture("world/images/docker.io").display(),
        ),
    )
    .unwrap();
    dir
}

fn imagelock(dir: &Path, args: &[&str]) -> (i32, String, String) {
    run(crate::common::imagelock()
        .current_dir(dir)
        .env("IMAGELOCK_CACHE_DIR", dir.join("cache"))
        .args(args))
}

fn lock(dir: &Path) -> imagelock::lock::LockedImage {
    imagelock::lock::LockedImage::read(&dir.join("lockfiles/app.lock")).unwrap()
}

/// The platforms a package of the lock is locked for, by name.
fn platforms_of(lock: &imagelock::lock::LockedImage, name: &str) -> Vec<String> {
    let mut out: Vec<String> = lock
        .steps
        .iter()
        .flat_map(|s| &s.pypi)
        .filter(|p| p.name == name)
        .flat_map(|p| p.platforms.iter().map(ToString::to_string))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// `if [ "$TARGETARCH" = arm64 ]` and `case $(uname -m)` are decided for
/// each platform: each locks what its own build installs, and rewrite pins
/// each branch for the platform that takes it.
#[test]
fn steps_that_depend_on_the_platform_are_locked_per_platform() {
    let dockerfile = "FROM python:3.11-slim\nARG TARGETARCH\nRUN if [ \"$TARGETARCH\" = arm64 ]; then pip install idna; else pip install certifi; fi\nRUN case \"$(uname -m)\" in aarch64) pip install six ;; *) pip install attrs ;; esac\n";
    let dir = project(dockerfile, "");
    let (code, out, err) = imagelock(dir.path(), &["plan"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("per platform: reads TARGETARCH"), "{out}");
    let (code, _, err) = imagelock(dir.path(), &["freeze"]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("is not locked"), "{err}");
    let lock = lock(dir.path());
    assert_eq!(platforms_of(&lock, "idna"), ["linux/arm64"]);
    assert_eq!(platforms_of(&lock, "certifi"), ["linux/amd64"]);
    assert_eq!(platforms_of(&lock, "six"), ["linux/arm64"]);
    assert_eq!(platforms_of(&lock, "attrs"), ["linux/amd64"]);
    for s in &lock.steps {
        assert!(s.locked, "{s:?}");
    }

    let (code, _, err) = imagelock(dir.path(), &["rewrite"]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(dir.path().join("app/Dockerfile")).unwrap();
    let line = |needle: &str| {
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} in {text}"))
            .to_string()
    };
    // Each branch keeps its package, pinned for the platform that runs it.
    let run1 = line("TARGETARCH\" = arm64");
    let (then, otherwise) = run1.split_once("else").unwrap();
    assert!(
        then.contains("idna==") && then.contains("aarch64"),
        "{run1}"
    );
    assert!(
        otherwise.contains("certifi==") && otherwise.contains("x86_64"),
        "{run1}"
    );
    let run2 = line("uname -m");
    let (arm, other) = run2.split_once("*)").unwrap();
    assert!(arm.contains("six==") && !arm.contains("attrs"), "{run2}");
    assert!(
        other.contains("attrs==") && !other.contains("six"),
        "{run2}"
    );
    // The pinned file locks the same per platform; a second rewrite is a
    // no-op.
    let (code, _, err) = imagelock(dir.path(), &["freeze"]);
    assert_eq!(code, 0, "{err}");
    let again = super::steps_e2e::lock(dir.path());
    for name in ["idna", "certifi", "six", "attrs"] {
        assert_eq!(
            platforms_of(&again, name),
            platforms_of(&lock, name),
            "{name}"
        );
    }
    let (code, _, err) = imagelock(dir.path(), &["rewrite", "--check"]);
    assert_eq!(code, 0, "{err}");
}

//! One image, one truth through its life: variants of one definition,
//! image names, platforms a lock does not cover (issue 22).

use std::path::Path;

use imagelock::lock::LockedImage;

use crate::common::registry::{AuthKind, LayoutBuilder, RegistryServer, server};
use crate::common::{imagelock, run, tempdir};

fn cli(dir: &Path, args: &[&str]) -> (i32, String, String) {
    run(imagelock()
        .current_dir(dir)
        .env("IMAGELOCK_CACHE_DIR", dir.join("cache"))
        .args(args))
}

/// Pushes one single-platform image per tag of `repo`; returns the
/// manifest digests in order.
fn push_tags(registry: &RegistryServer, dir: &Path, repo: &str, tags: &[&str]) -> Vec<String> {
    let mut digests = Vec::new();
    for tag in tags {
        let mut layout = LayoutBuilder::new(&dir.join(format!("layout-{tag}")));
        let m = layout.manifest("amd64", None, &format!("{repo}:{tag}"));
        layout.tag_manifest(&m, tag);
        registry.push(&layout.dir, tag, &format!("{repo}:{tag}"), false);
        digests.push(m.digest);
    }
    digests
}

fn write(path: &Path, text: &str) {
    fs_err::create_dir_all(path.parent().unwrap()).unwrap();
    fs_err::write(path, text).unwrap();
}

/// One Dockerfile configured as two images with different build args:
/// each is locked on its own base, and `rewrite` gives each variant a
/// stage pinned to its own digest, chosen by the same variable; every lock
/// stays current (for `verify` and `freeze --check` alike), a moved base
/// moves only its own stage, and a variable part that cannot name a stage
/// is refused with nothing written.
#[test]
fn variants_of_one_definition_are_pinned_each_to_its_own_digest() {
    let Some(registry) = server(AuthKind::Open) else {
        return;
    };
    let tmp = tempdir();
    let dir = tmp.path();
    let digests = push_tags(registry, dir, "life/python", &["3.10-slim", "3.11-slim"]);
    let dockerfile = format!(
        "ARG PYTHON_VERSION=3.10\nFROM {}/life/python:${{PYTHON_VERSION}}-slim AS app\nRUN true\n",
        registry.addr
    );
    write(&dir.join("app/Dockerfile"), &dockerfile);
    write(
        &dir.join("imagelock.toml"),
        "[images.py310]\nfile = \"app/Dockerfile\"\nbuild-args = { PYTHON_VERSION = \"3.10\" }\n\n\
         [images.py311]\nfile = \"app/Dockerfile\"\nbuild-args = { PYTHON_VERSION = \"3.11\" }\n",
    );
    let (code, _, err) = cli(dir, &["freeze"]);
    assert_eq!(code, 0, "{err}");
    for (name, digest) in [("py310", &digests[0]), ("py311", &digests[1])] {
        let lock = LockedImage::read(&dir.join(format!("lockfiles/{name}.lock"))).unwrap();
        assert_eq!(lock.bases[0].digest.to_string(), *digest, "{name}");
    }

    // One of them, or the file: both variants are rewritten together.
    let (code, out, err) = cli(dir, &["rewrite", "--diff", "py310"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.matches("+++ ").count(),
        1,
        "one diff for the shared file: {out}"
    );
    let (code, _, err) = cli(dir, &["rewrite", "app/Dockerfile"]);
    assert_eq!(code, 0, "{err}");
    let pinned = fs_err::read_to_string(dir.join("app/Dockerfile")).unwrap();
    let addr = &registry.addr;
    assert_eq!(
        pinned,
        format!(
            "ARG PYTHON_VERSION=3.10\n\
             # imagelock: one stage per build-arg set of `{addr}/life/python:${{PYTHON_VERSION}}-slim`; a set not listed here fails the build\n\
             FROM {addr}/life/python:3.10-slim@{} AS imagelock-python-3.10\n\
             FROM {addr}/life/python:3.11-slim@{} AS imagelock-python-3.11\n\
             FROM imagelock-python-${{PYTHON_VERSION}} AS app\nRUN true\n",
            digests[0], digests[1]
        )
    );
    let current = |why: &str| {
        let (code, out, err) = cli(dir, &["verify"]);
        assert_eq!(code, 0, "{why}: {out}\n{err}");
        let (code, out, err) = cli(dir, &["freeze", "--check"]);
        assert_eq!(code, 0, "{why}: {out}\n{err}");
        let (code, out, err) = cli(dir, &["rewrite", "--check"]);
        assert_eq!(code, 0, "{why}: {out}\n{err}");
    };
    current("after the split");
    // A fresh freeze of the split file writes the locks rewrite wrote.
    let before: Vec<String> = ["py310", "py311"]
        .iter()
        .map(|n| fs_err::read_to_string(dir.join(format!("lockfiles/{n}.lock"))).unwrap())
        .collect();
    let (code, _, err) = cli(dir, &["freeze", "--update-base"]);
    assert_eq!(code, 0, "{err}");
    for (n, text) in ["py310", "py311"].iter().zip(&before) {
        let now = fs_err::read_to_string(dir.join(format!("lockfiles/{n}.lock"))).unwrap();
        assert_eq!(&now, text, "{n}");
    }
    // Each variant builds its own base and no other.
    let lock = LockedImage::read(&dir.join("lockfiles/py311.lock")).unwrap();
    assert_eq!(lock.bases.len(), 1);
    assert_eq!(lock.bases[0].digest.to_string(), digests[1]);
    assert_eq!(lock.stages[2].base.as_str(), "stage:1");

    // The 3.11 tag moves: only its stage is pinned again.
    let mut layout = LayoutBuilder::new(&dir.join("layout-3.11-moved"));
    let m = layout.manifest("amd64", None, "life/python:3.11-slim, rebuilt");
    layout.tag_manifest(&m, "3.11-slim");
    registry.push(&layout.dir, "3.11-slim", "life/python:3.11-slim", false);
    // `freeze --update-base` keeps what the file pins (the build pulls
    // that); drift names the moved tag; `update --update-base` of one
    // variant moves the pin and its lock, and the other's stays.
    let (code, _, err) = cli(dir, &["freeze", "--update-base"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cli(dir, &["drift", "--format", "json", "--fail-on", "base"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains(&digests[1]) && out.contains(&m.digest) && !out.contains(&digests[0]),
        "{out}"
    );
    let (code, _, err) = cli(dir, &["update", "--update-base", "--path", "py310"]);
    assert_eq!(code, 0, "{err}");
    let repinned = fs_err::read_to_string(dir.join("app/Dockerfile")).unwrap();
    assert_eq!(
        repinned,
        pinned.replace(&digests[1], &m.digest),
        "only the 3.11 stage moves"
    );
    current("after the 3.11 base moved");

    // A whole reference in one variable cannot name a stage: refused,
    // naming both images and why, and nothing written.
    let whole = format!("ARG BASE={addr}/life/python:3.10-slim\nFROM ${{BASE}}\nRUN true\n");
    write(&dir.join("app/Dockerfile"), &whole);
    write(
        &dir.join("imagelock.toml"),
        &format!(
            "[images.py310]\nfile = \"app/Dockerfile\"\n\n\
             [images.py311]\nfile = \"app/Dockerfile\"\nbuild-args = {{ BASE = \"{addr}/life/python:3.11-slim\" }}\n"
        ),
    );
    let (code, _, err) = cli(dir, &["freeze"]);
    assert_eq!(code, 0, "{err}");
    for args in [
        &["rewrite"][..],
        &["rewrite", "py310"],
        &["rewrite", "--diff"],
    ] {
        let (code, _, err) = cli(dir, args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            err.contains("is built as 2 images with different build args")
                && err.contains("`py310` (no build args)")
                && err.contains("not a valid stage name")
                && err.contains("nothing was written"),
            "{args:?}: {err}"
        );
        assert_eq!(
            fs_err::read_to_string(dir.join("app/Dockerfile")).unwrap(),
            whole
        );
    }
    let (code, out, err) = cli(dir, &["verify"]);
    assert_eq!(code, 0, "{out}\n{err}");

    write(&dir.join("app/Dockerfile"), &dockerfile);
    // Variants whose pins agree are rewritten together, and every lock
    // stays current.
    write(
        &dir.join("imagelock.toml"),
        "[images.py310]\nfile = \"app/Dockerfile\"\nbuild-args = { PYTHON_VERSION = \"3.10\" }\n\n\
         [images.again]\nfile = \"app/Dockerfile\"\nbuild-args = { PYTHON_VERSION = \"3.10\", OTHER = \"x\" }\n",
    );
    let (code, _, err) = cli(dir, &["freeze"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = cli(dir, &["rewrite", "py310"]);
    assert_eq!(code, 0, "{err}");
    let pinned = fs_err::read_to_string(dir.join("app/Dockerfile")).unwrap();
    assert!(
        pinned.contains(&format!("-slim@{}", digests[0])),
        "{pinned}"
    );
    let (code, out, err) = cli(dir, &["verify"]);
    assert_eq!(code, 0, "{out}\n{err}");
}

/// `svc/Dockerfile` and `svc/Dockerfile.gpu` are two images, each with its
/// own lock, without any configuration.
#[test]
fn dockerfile_and_dockerfile_gpu_are_two_images() {
    let Some(registry) = server(AuthKind::Open) else {
        return;
    };
    let tmp = tempdir();
    let dir = tmp.path();
    let digests = push_tags(registry, dir, "life/svc-base", &["cpu", "gpu"]);
    write(
        &dir.join("svc/Dockerfile"),
        &format!("FROM {}/life/svc-base:cpu\n", registry.addr),
    );
    write(
        &dir.join("svc/Dockerfile.gpu"),
        &format!("FROM {}/life/svc-base:gpu\n", registry.addr),
    );
    let (code, _, err) = cli(dir, &["freeze", "svc"]);
    assert_eq!(code, 0, "{err}");
    let cpu = LockedImage::read(&dir.join("lockfiles/svc.lock")).unwrap();
    let gpu = LockedImage::read(&dir.join("lockfiles/svc-gpu.lock")).unwrap();
    assert_eq!(cpu.bases[0].digest.to_string(), digests[0]);
    assert_eq!(gpu.bases[0].digest.to_string(), digests[1]);
    let (code, out, err) = cli(dir, &["verify", "svc"]);
    assert_eq!(code, 0, "{out}\n{err}");
}

/// A child of an in-repo parent published under git-hash tags (`ref` a tag
/// pattern): `freeze child/Dockerfile` locks it on the parent's lock (the
/// parent is never looked up in the registry, where it is not even
/// published); after the parent is locked again, offline `verify`, `drift`
/// and `freeze --check` all call the child stale.
#[test]
fn a_child_follows_its_in_repo_parent_lock() {
    let Some(registry) = server(AuthKind::Open) else {
        return;
    };
    let tmp = tempdir();
    let dir = tmp.path();
    let digests = push_tags(registry, dir, "life/ubuntu", &["22.04", "24.04"]);
    let addr = &registry.addr;
    write(
        &dir.join("base/Dockerfile"),
        &format!("FROM {addr}/life/ubuntu:22.04\n"),
    );
    write(
        &dir.join("child/Dockerfile"),
        &format!(
            "ARG BASE_CONTAINER={addr}/life/base-notebook:2021.3-d02157\nFROM $BASE_CONTAINER\n"
        ),
    );
    write(
        &dir.join("imagelock.toml"),
        &format!(
            "[images.base-notebook]\nfile = \"base/Dockerfile\"\nref = \"{addr}/life/base-notebook:*\"\n\n\
             [images.child]\nfile = \"child/Dockerfile\"\n"
        ),
    );
    let (code, _, err) = cli(dir, &["freeze", "child/Dockerfile"]);
    assert_eq!(code, 0, "{err}");
    let child = LockedImage::read(&dir.join("lockfiles/child.lock")).unwrap();
    let parent = LockedImage::read(&dir.join("lockfiles/base-notebook.lock")).unwrap();
    assert_eq!(parent.bases[0].digest.to_string(), digests[0]);
    let base = &child.bases[0];
    assert_eq!(base.built_from.as_deref(), Some("base-notebook"));
    assert_eq!(
        base.digest,
        imagelock::oci::Digest::sha256_of(parent.to_toml().as_bytes())
    );
    let (code, out, err) = cli(dir, &["verify"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = cli(dir, &["freeze", "--check"]);
    assert_eq!(code, 0, "{out}\n{err}");

    // The parent moves to another base and is locked again, alone.
    write(
        &dir.join("base/Dockerfile"),
        &format!("FROM {addr}/life/ubuntu:24.04\n"),
    );
    let (code, _, err) = cli(dir, &["freeze", "base/Dockerfile"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cli(dir, &["verify", "--offline"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains("child: image `base-notebook` of this repository, which it builds FROM, was locked again"),
        "{out}"
    );
    assert!(out.contains("base-notebook: the lock is current"), "{out}");
    let (code, out, err) = cli(dir, &["freeze", "--check"]);
    assert_eq!(code, 1, "{out}\n{err}");
    let (_, out, err) = cli(dir, &["drift"]);
    assert!(
        out.contains("child  stale") && out.contains("was locked again"),
        "{out}\n{err}"
    );
    // Freezing the child makes everything agree again.
    let (code, _, err) = cli(dir, &["freeze", "child"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cli(dir, &["verify"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = cli(dir, &["freeze", "--check"]);
    assert_eq!(code, 0, "{out}\n{err}");

    // Rewriting the parent alone changes none of its packages: the child's
    // lock follows the parent's rewritten lock, and verify and freeze
    // --check agree that everything is current.
    let (code, _, err) = cli(dir, &["rewrite", "base/Dockerfile"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        fs_err::read_to_string(dir.join("base/Dockerfile"))
            .unwrap()
            .contains(&digests[1])
    );
    let (code, out, err) = cli(dir, &["verify"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = cli(dir, &["freeze", "--check"]);
    assert_eq!(code, 0, "{out}\n{err}");
}

/// The example notebook base is configured twice, for CPython 3.11 and
/// 3.12 (`PYTHON_VERSION`, as the stack builds its Python variants): each
/// variant is locked on its own base from the embedded world
/// (`python:3.11-slim`, `python:3.12-slim`) with its own wheels; `rewrite`
/// gives each its own pinned stage in the one Dockerfile, and every lock
/// stays current for `verify` and `freeze --check`.
#[test]
fn the_example_base_notebook_for_python_3_12_is_locked_on_its_own_base() {
    use crate::common::{copy_dir, fixture, repo_root};
    let tmp = tempdir();
    let dir = tmp.path();
    for sub in ["examples", "world"] {
        copy_dir(&fixture(sub), &dir.join("fixtures").join(sub));
    }
    copy_dir(&repo_root().join("lockfiles"), &dir.join("lockfiles"));
    let examples = |args: &[&str]| {
        let mut all = vec!["--config", "fixtures/examples/imagelock.toml"];
        all.extend_from_slice(args);
        cli(dir, &all)
    };
    let (code, _, err) = examples(&["freeze"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("8 images locked, 0 lockfiles changed"),
        "{err}"
    );
    let py311 = LockedImage::read(&dir.join("lockfiles/base-notebook.lock")).unwrap();
    let py312 = LockedImage::read(&dir.join("lockfiles/base-notebook-py312.lock")).unwrap();
    // The digests of the world's tags (fixtures/world/README.md).
    let digest311 = "sha256:b0bac9e435e7c26d0740198916fd9c8f34e946db179d7aaf1b27bffce47a6655";
    let digest312 = "sha256:8d145fd3415bd6b24664be96973aab97fa741cb4b163c69be215b17c4d8e01fc";
    assert_eq!(py311.bases[0].digest.to_string(), digest311);
    assert_eq!(py312.bases[0].name, "docker.io/library/python:3.12-slim");
    assert_eq!(py312.bases[0].digest.to_string(), digest312);
    assert_eq!(py312.image.platforms.len(), 2);
    // Each variant's wheels are for its own Python.
    let files = |lock: &LockedImage| -> Vec<String> {
        lock.steps
            .iter()
            .flat_map(|s| &s.pypi)
            .filter_map(|p| p.file.as_ref().map(ToString::to_string))
            .collect()
    };
    assert!(
        files(&py312).iter().any(|f| f.contains("-cp312-cp312-")),
        "{:?}",
        files(&py312)
    );
    assert!(!files(&py312).iter().any(|f| f.contains("-cp311-cp311-")));
    assert!(files(&py311).iter().any(|f| f.contains("-cp311-cp311-")));

    let (code, out, err) = examples(&["verify"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("base-notebook-py312: the lock is current"),
        "{out}"
    );

    let dockerfile = dir.join("fixtures/examples/notebook-stack/base-notebook/Dockerfile");
    let before = fs_err::read_to_string(&dockerfile).unwrap();
    let (code, out, err) = examples(&["rewrite", "--diff"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(fs_err::read_to_string(&dockerfile).unwrap(), before);
    let (code, out, err) = examples(&["rewrite"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let pinned = fs_err::read_to_string(&dockerfile).unwrap();
    for line in [
        format!("FROM python:3.11-slim@{digest311} AS imagelock-python-3.11\n"),
        format!("FROM python:3.12-slim@{digest312} AS imagelock-python-3.12\n"),
        "FROM imagelock-python-${PYTHON_VERSION}\n".to_string(),
    ] {
        assert!(pinned.contains(&line), "{line}: {pinned}");
    }
    for args in [
        &["verify"][..],
        &["freeze", "--check"],
        &["rewrite", "--check"],
    ] {
        let (code, out, err) = examples(args);
        assert_eq!(code, 0, "{args:?}: {out}\n{err}");
    }
}

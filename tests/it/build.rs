//! The main job on real parts: two example images (the notebook stack's
//! `base-notebook` and `scipy-ml-notebook`, which builds FROM it) are frozen
//! against the tests' registry holding a real Debian 12 base with a real
//! Python, and a local index serving the recorded PyPI pages with the real
//! wheels; their Dockerfiles are rewritten; buildah builds the rewritten
//! files (pip inside the build installs from the local index); verify
//! accepts both images, and the catalogue equals what `pip list` says inside
//! the running image. A tampered image is refused. The summation example
//! (Apptainer) is built the same way, packed into a SIF and verified.
//!
//! The Debian root filesystem and the wheels come from
//! `tests/e2e/prepare.py` (network, once; `.ci/test` runs it).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::buildah::{Buildah, ok, prepared};
use crate::common::http::StaticServer;
use crate::common::registry::{AuthKind, server};
use crate::common::{self, copy_dir, fixture, imagelock, repo_root, run};

fn normalized(name: &str) -> String {
    name.to_ascii_lowercase().replace(['_', '.'], "-")
}

/// (name, version) of the pip packages of `image`'s lock on linux/amd64.
fn locked_pip(lock: &Path) -> Vec<(String, String)> {
    let lock = imagelock::lock::LockedImage::read(lock).unwrap();
    let mut v: Vec<(String, String)> = lock
        .final_pypi("linux/amd64")
        .into_iter()
        .map(|p| (p.name.to_string(), p.version_or_unknown().to_string()))
        .collect();
    v.sort();
    v
}

/// What both end-to-end tests build on: a local index of the recorded pages
/// with the real wheels, the registries the definitions name as one
/// namespace of the tests' registry, and buildah with the real Debian base
/// committed as `localhost/e2e-python`.
struct World {
    /// Serves the index while the test runs.
    index: StaticServer,
    index_url: String,
    mirror: String,
    buildah: Buildah,
}

impl World {
    fn new(dir: &Path, prepared: &Path, registry: &common::registry::RegistryServer) -> World {
        let path = |rel: &str| dir.join(rel);
        // The package index: the recorded pages, their metadata files and
        // the real wheels side by side, as PyPI serves them.
        let packages = path("index/packages");
        std::fs::create_dir_all(&packages).unwrap();
        std::os::unix::fs::symlink(fixture("world/pypi/simple"), path("index/simple")).unwrap();
        for dir in [fixture("world/pypi/packages"), prepared.join("wheels")] {
            for e in std::fs::read_dir(dir).unwrap() {
                let e = e.unwrap();
                std::os::unix::fs::symlink(e.path(), packages.join(e.file_name())).unwrap();
            }
        }
        let index = StaticServer::start(path("index"));
        let index_url = format!("{}/simple/", index.url());

        // The registries the definitions name, as one namespace of the
        // tests' registry, for imagelock and for buildah alike.
        let mirror = format!("{}/e2e", registry.addr);
        std::fs::write(
            path("registries.conf"),
            format!(
                "unqualified-search-registries = [\"docker.io\"]\nshort-name-mode = \"permissive\"\n\
                 [[registry]]\nprefix = \"docker.io\"\nlocation = \"{mirror}\"\ninsecure = true\n\
                 [[registry]]\nprefix = \"ghcr.io\"\nlocation = \"{mirror}\"\ninsecure = true\n"
            ),
        )
        .unwrap();
        let buildah = Buildah::new(path("buildah"), path("registries.conf"));

        // Debian 12's own Python 3.11 and pip, pointed at the index the way
        // an image's environment points pip at a mirror.
        let index_env = format!("PIP_INDEX_URL={index_url}");
        buildah.debian_base(
            prepared,
            "localhost/e2e-python",
            &[
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "LANG=C.UTF-8",
                &index_env,
                "PIP_DISABLE_PIP_VERSION_CHECK=1",
            ],
        );
        World {
            index,
            index_url,
            mirror,
            buildah,
        }
    }
}

#[test]
fn examples_freeze_rewrite_build_and_verify() {
    let Some(prepared) = prepared() else { return };
    if !(common::require_tool("buildah", "apt-get install -y buildah")
        && common::require_tool("skopeo", "apt-get install -y skopeo"))
    {
        return;
    }
    let Some(registry) = server(AuthKind::Open) else {
        return;
    };
    let tmp = common::tempdir();
    let path = |rel: &str| tmp.path().join(rel);

    let World {
        index: _index,
        index_url,
        mirror,
        buildah,
    } = World::new(tmp.path(), &prepared, registry);
    // python:3.11-slim: the Debian base pushed as a one-platform index, as
    // Docker Hub serves it.
    buildah.ok(&["manifest", "create", "localhost/e2e-python-list"]);
    buildah.ok(&[
        "manifest",
        "add",
        "localhost/e2e-python-list",
        "localhost/e2e-python",
    ]);
    let python = format!("docker://{mirror}/library/python:3.11-slim");
    buildah.ok(&[
        "manifest",
        "push",
        "-q",
        "--all",
        "--tls-verify=false",
        "localhost/e2e-python-list",
        &python,
    ]);
    let raw = ok(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false", &python]));
    let python_digest = common::registry::sha256(raw.as_bytes());
    // python:3.12-slim: the same base with one more layer, so a build from
    // the wrong variant's base shows in its layers.
    let c = buildah.ok(&["from", "--pull-never", "localhost/e2e-python"]);
    buildah.ok(&["run", c.trim(), "--", "touch", "/python-3.12-variant"]);
    // Squashed: its layers differ from the first, not only by one on top.
    buildah.ok(&[
        "commit",
        "-q",
        "--squash",
        c.trim(),
        "localhost/e2e-python312",
    ]);
    buildah.ok(&["manifest", "create", "localhost/e2e-python312-list"]);
    buildah.ok(&[
        "manifest",
        "add",
        "localhost/e2e-python312-list",
        "localhost/e2e-python312",
    ]);
    let python312 = format!("docker://{mirror}/library/python:3.12-slim");
    buildah.ok(&[
        "manifest",
        "push",
        "-q",
        "--all",
        "--tls-verify=false",
        "localhost/e2e-python312-list",
        &python312,
    ]);
    let raw =
        ok(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false", &python312]));
    let python312_digest = common::registry::sha256(raw.as_bytes());

    // The examples, frozen here.
    let ex = path("examples");
    copy_dir(
        &fixture("examples/notebook-stack"),
        &ex.join("notebook-stack"),
    );
    std::fs::write(
        ex.join("imagelock.toml"),
        format!(
            "lock-dir = \"lockfiles\"\nplatforms = [\"linux/amd64\"]\n\n\
             [images.base-notebook]\nfile = \"notebook-stack/base-notebook/Dockerfile\"\n\
             build-args = {{ PYTHON_VERSION = \"3.11\" }}\nref = \"ghcr.io/example-lab/base-notebook:*\"\n\n\
             [images.base-notebook-py312]\nfile = \"notebook-stack/base-notebook/Dockerfile\"\n\
             build-args = {{ PYTHON_VERSION = \"3.12\" }}\n\n\
             [images.scipy-ml-notebook]\nfile = \"notebook-stack/scipy-ml-notebook/Dockerfile\"\n\n\
             [pypi]\nindex-url = \"{index_url}\"\n\n\
             [registries.\"docker.io\"]\nlocation = \"{mirror}\"\n"
        ),
    )
    .unwrap();
    let cli = |args: &[&str]| {
        let mut cmd = imagelock();
        cmd.current_dir(&ex)
            .env("XDG_CACHE_HOME", path("cache"))
            .args(args);
        run(&mut cmd)
    };

    let (code, out, err) = cli(&["freeze"]);
    assert_eq!(code, 0, "freeze failed:\n{out}\n{err}");
    let base_lock = ex.join("lockfiles/base-notebook.lock");
    let text = std::fs::read_to_string(&base_lock).unwrap();
    assert!(
        text.contains(&format!("digest = \"{python_digest}\"")),
        "the lock pins the pushed base {python_digest}:\n{text}"
    );
    // The embedded world (a marker image of python:3.11-slim and the same
    // recorded index) predicted this real world's resolution exactly.
    for image in ["base-notebook", "scipy-ml-notebook"] {
        assert_eq!(
            locked_pip(&ex.join(format!("lockfiles/{image}.lock"))),
            locked_pip(&repo_root().join(format!("lockfiles/{image}.lock"))),
            "{image}: the real base resolves as the committed lock says"
        );
    }

    // Pinned form, and the lock is still current for it.
    let (code, out, err) = cli(&["rewrite", "--hashes"]);
    assert_eq!(code, 0, "rewrite failed:\n{out}\n{err}");
    let dockerfile =
        std::fs::read_to_string(ex.join("notebook-stack/base-notebook/Dockerfile")).unwrap();
    // Each variant builds from its own pinned base, chosen by the same
    // build arg.
    for line in [
        format!("FROM python:3.11-slim@{python_digest} AS imagelock-python-3.11\n"),
        format!("FROM python:3.12-slim@{python312_digest} AS imagelock-python-3.12\n"),
        "FROM imagelock-python-${PYTHON_VERSION}\n".to_string(),
    ] {
        assert!(dockerfile.contains(&line), "{line}: {dockerfile}");
    }
    assert!(dockerfile.contains("ipykernel=="), "{dockerfile}");
    let (code, out, err) = cli(&["verify"]);
    assert_eq!(code, 0, "verify after rewrite:\n{out}\n{err}");

    // Real builds of the rewritten files.
    buildah.bud(
        &ex.join("notebook-stack/base-notebook"),
        "ghcr.io/example-lab/base-notebook:2026.11-d02157a",
        &["--build-arg", "PYTHON_VERSION=3.11"],
    );
    buildah.bud(
        &ex.join("notebook-stack/scipy-ml-notebook"),
        "ghcr.io/example-lab/scipy-ml-notebook:latest",
        &[],
    );
    let base_oci = buildah.to_layout(
        "ghcr.io/example-lab/base-notebook:2026.11-d02157a",
        &path("oci/base"),
    );
    let scipy = format!("{mirror}/example-lab/scipy-ml-notebook:latest");
    buildah.ok(&[
        "push",
        "-q",
        "--tls-verify=false",
        "ghcr.io/example-lab/scipy-ml-notebook:latest",
        &format!("docker://{scipy}"),
    ]);

    let (code, out, err) = cli(&["verify", "--image", &base_oci, "base-notebook"]);
    assert_eq!(code, 0, "verify base-notebook:\n{out}\n{err}");
    assert!(
        out.contains("matches its lock (base, 0 conda, 37 pip packages)"),
        "{out}"
    );
    // The other variant, built from the same rewritten file with its build
    // arg, is on its own base: it matches its own lock and not the other's.
    buildah.bud(
        &ex.join("notebook-stack/base-notebook"),
        "localhost/e2e-base-notebook-py312",
        &["--build-arg", "PYTHON_VERSION=3.12"],
    );
    let py312_oci = buildah.to_layout("localhost/e2e-base-notebook-py312", &path("oci/py312"));
    let (code, out, err) = cli(&["verify", "--image", &py312_oci, "base-notebook-py312"]);
    assert_eq!(code, 0, "verify base-notebook-py312:\n{out}\n{err}");
    let (code, out, err) = cli(&["verify", "--image", &py312_oci, "base-notebook"]);
    assert_eq!(
        code, 1,
        "the 3.12 build is not on the 3.11 base:\n{out}\n{err}"
    );
    // A build arg no lock knows names no stage: the build fails rather
    // than pull an unpinned base.
    let (code, out, err) = run(buildah
        .cmd()
        .args(["bud", "--isolation", "chroot", "-q", "--pull-never"])
        .args([
            "--build-arg",
            "PYTHON_VERSION=3.13",
            "-t",
            "localhost/e2e-unknown",
        ])
        .arg(ex.join("notebook-stack/base-notebook")));
    assert_ne!(code, 0, "an unknown variant must not build:\n{out}\n{err}");
    // The image built FROM base-notebook is checked against both locks.
    let (code, out, err) = cli(&[
        "verify",
        "--image",
        &format!("docker://{scipy}"),
        "scipy-ml-notebook",
    ]);
    assert_eq!(code, 0, "verify scipy-ml-notebook:\n{out}\n{err}");
    assert!(
        out.contains("matches its lock (base, 0 conda, 44 pip packages)"),
        "{out}"
    );

    // Ground truth: pip inside the running image lists what the catalogue
    // found.
    let c = buildah.ok(&[
        "from",
        "--pull-never",
        "ghcr.io/example-lab/scipy-ml-notebook:latest",
    ]);
    let pip_list: Value = serde_json::from_str(&buildah.ok(&[
        "run",
        c.trim(),
        "--",
        "python",
        "-m",
        "pip",
        "list",
        "--format",
        "json",
    ]))
    .unwrap();
    let mut theirs: Vec<(String, String)> = pip_list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                normalized(p["name"].as_str().unwrap()),
                p["version"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    theirs.sort();
    let location: imagelock::image::ImageLocation = buildah
        .to_layout(
            "ghcr.io/example-lab/scipy-ml-notebook:latest",
            &path("oci/scipy"),
        )
        .parse()
        .unwrap();
    let catalogue = imagelock::image::read_catalogue(
        imagelock::image::open_local(&location).unwrap().as_ref(),
        &imagelock::image::Platform::linux_amd64(),
        &imagelock::image::ReadOptions::default(),
    )
    .unwrap();
    let mut ours: Vec<(String, String)> = catalogue
        .python_dists
        .iter()
        .map(|d| (normalized(&d.name), d.version.clone()))
        .collect();
    ours.sort();
    ours.dedup();
    assert_eq!(ours, theirs, "the catalogue lists what pip lists");

    // Tampered: a package the lock has is gone.
    std::fs::create_dir_all(path("tampered")).unwrap();
    std::fs::write(
        path("tampered/Dockerfile"),
        "FROM ghcr.io/example-lab/scipy-ml-notebook:latest\nUSER root\nRUN python -m pip uninstall -y -q threadpoolctl\n",
    )
    .unwrap();
    buildah.bud(&path("tampered"), "localhost/e2e-tampered", &[]);
    let tampered = buildah.to_layout("localhost/e2e-tampered", &path("oci/tampered"));
    let (code, out, _) = cli(&["verify", "--image", &tampered, "scipy-ml-notebook"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("threadpoolctl: lock has 3.8.0 (step notebook-stack/scipy-ml-notebook/Dockerfile:7), image has none"),
        "the missing package is named:\n{out}"
    );
}

/// The summation example (Apptainer) on real parts: frozen against the
/// tests' registry holding the real Debian base as `python:latest` and the
/// index with the real wheels, rewritten, built for real by buildah from
/// the rewritten definition (its `From:`, `%files` and `%post` as
/// instructions, since no Apptainer binary runs here), the built root
/// filesystem packed by Debian's mksquashfs into a SIF with the rewritten
/// definition, and verified; the same root with a package removed is
/// refused, naming it.
#[test]
fn summation_built_for_real_and_packed_into_a_sif_verifies() {
    let Some(prepared) = prepared() else { return };
    if !(common::require_tool("buildah", "apt-get install -y buildah")
        && common::require_tool("mksquashfs", "apt-get install -y squashfs-tools"))
    {
        return;
    }
    let Some(registry) = server(AuthKind::Open) else {
        return;
    };
    let tmp = common::tempdir();
    let path = |rel: &str| tmp.path().join(rel);

    let World {
        index: _index,
        index_url,
        mirror,
        buildah,
    } = World::new(tmp.path(), &prepared, registry);
    buildah.ok(&[
        "push",
        "-q",
        "--tls-verify=false",
        "localhost/e2e-python",
        &format!("docker://{mirror}/library/python:latest"),
    ]);

    let ex = path("examples");
    copy_dir(&fixture("examples/summation"), &ex.join("summation"));
    std::fs::write(
        ex.join("imagelock.toml"),
        format!(
            "lock-dir = \"lockfiles\"\nplatforms = [\"linux/amd64\"]\n\n\
             [images.summation]\nfile = \"summation/summation.def\"\n\n\
             [pypi]\nindex-url = \"{index_url}\"\n\n\
             [registries.\"docker.io\"]\nlocation = \"{mirror}\"\n"
        ),
    )
    .unwrap();
    let cli = |args: &[&str]| {
        let mut cmd = imagelock();
        cmd.current_dir(&ex)
            .env("XDG_CACHE_HOME", path("cache"))
            .args(args);
        run(&mut cmd)
    };
    let (code, out, err) = cli(&["freeze"]);
    assert_eq!(code, 0, "freeze failed:\n{out}\n{err}");
    let (code, out, err) = cli(&["rewrite"]);
    assert_eq!(code, 0, "rewrite failed:\n{out}\n{err}");
    let (code, out, err) = cli(&["verify"]);
    assert_eq!(code, 0, "verify after rewrite:\n{out}\n{err}");
    let definition = std::fs::read_to_string(ex.join("summation/summation.def")).unwrap();
    assert!(
        definition.contains("From: python:latest@sha256:"),
        "{definition}"
    );
    assert!(definition.contains("pip install numpy=="), "{definition}");

    // The build Apptainer would run, as buildah instructions.
    let from = definition
        .lines()
        .find_map(|l| l.strip_prefix("From:"))
        .unwrap()
        .trim();
    let post: Vec<&str> = definition
        .lines()
        .skip_while(|l| l.trim() != "%post")
        .skip(1)
        .take_while(|l| !l.starts_with('%'))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert!(!post.is_empty(), "{definition}");
    let mut containerfile = format!("FROM {from}\nCOPY summation.py /opt/summation.py\n");
    for line in &post {
        containerfile.push_str(&format!("RUN {line}\n"));
    }
    let context = path("build");
    std::fs::create_dir_all(&context).unwrap();
    std::fs::copy(
        ex.join("summation/summation.py"),
        context.join("summation.py"),
    )
    .unwrap();
    std::fs::write(context.join("Containerfile"), containerfile).unwrap();
    buildah.bud(&context, "localhost/e2e-summation", &[]);
    let container = buildah.ok(&["from", "-q", "localhost/e2e-summation"]);
    let container = container.trim();
    let root = buildah.ok(&["mount", container]);
    let root = Path::new(root.trim());

    let squashfs = crate::sif::mksquashfs(root, &path("root.sqfs"));
    crate::sif::write_sif(&ex.join("summation.sif"), definition.as_bytes(), &squashfs);
    let (code, out, err) = cli(&[
        "verify",
        "--image",
        "summation.sif",
        "summation/summation.def",
    ]);
    assert_eq!(code, 0, "verify of the built SIF:\n{out}\n{err}");
    assert!(
        out.contains("summation: sif definition the same as"),
        "{out}"
    );
    assert!(
        out.contains("summation linux/amd64: matches its lock (0 conda, 1 pip package)"),
        "{out}"
    );

    // Tampered: numpy removed from the built root.
    let dist_info = ok(Command::new("find").arg(root).args([
        "-maxdepth",
        "7",
        "-type",
        "d",
        "-name",
        "numpy-*.dist-info",
    ]));
    let dist_info = dist_info.lines().next().expect("numpy is installed");
    std::fs::remove_dir_all(dist_info).unwrap();
    let squashfs = crate::sif::mksquashfs(root, &path("tampered.sqfs"));
    crate::sif::write_sif(&ex.join("tampered.sif"), definition.as_bytes(), &squashfs);
    let (code, out, _) = cli(&[
        "verify",
        "--image",
        "sif:tampered.sif",
        "summation/summation.def",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("numpy: lock has") && out.contains("image has none"),
        "the missing package is named:\n{out}"
    );
    buildah.ok(&["umount", container]);
}

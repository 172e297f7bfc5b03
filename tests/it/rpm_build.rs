//! A dnf step locked end to end, on real parts: the base root the real
//! `dnf --installroot` made from the fixture repository
//! (`tests/rpm/prepare.py`) as a base image in the tests' registry;
//! `freeze` resolves the Dockerfile's `dnf install` from the base's own rpm
//! database and repository file against the repository served on
//! 127.0.0.1; `rewrite` pins every package and the base; then the image is
//! built for real the way buildah documents building from scratch with
//! dnf: `buildah from` the pinned base, `buildah mount`, and the host's
//! real dnf `--installroot <mount> install <the pinned specs>` (the base
//! has no dnf of its own: no rpm-based image with dnf can be made from
//! Debian's packages, so the Dockerfile's own `RUN dnf` cannot run here;
//! this is its stand-in). `rpm -qa --root` of the built image equals base
//! plus lock, `verify --image` accepts it, and an image with a locked
//! package erased by `rpm -e --root` is refused, naming it.

use std::collections::BTreeSet;
use std::path::Path;

use crate::common::buildah::Buildah;
use crate::common::http::StaticServer;
use crate::common::registry::{AuthKind, server};
use crate::common::{imagelock, require_tool, run, tempdir};
use crate::rpm::{expected_qa, prepared};

const FIXTURE_HOST: &str = "http://rpm.fixture.invalid/";

/// `rpm -qa --root root` (without gpg-pubkey), with rpm's database where
/// RHEL keeps it.
fn rpm_qa(root: &Path, home: &Path) -> BTreeSet<String> {
    let out = std::process::Command::new("rpm")
        .args(["-qa", "--qf", "%{NEVRA}\n", "--root"])
        .arg(root)
        .env("HOME", home)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("gpg-pubkey"))
        .map(str::to_string)
        .collect()
}

/// The pinned specs of the rewritten Dockerfile's `dnf install` line: its
/// words after `install` that are neither options nor the next command.
fn pinned_specs(dockerfile: &str) -> Vec<String> {
    let joined = dockerfile.replace("\\\n", " ");
    let line = joined
        .lines()
        .find(|l| l.starts_with("RUN dnf install"))
        .unwrap_or_else(|| panic!("no dnf line in:\n{dockerfile}"));
    line.split_whitespace()
        .skip_while(|w| *w != "install")
        .skip(1)
        .take_while(|w| *w != "&&")
        .filter(|w| !w.starts_with('-'))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_dnf_step_is_frozen_rewritten_built_by_dnf_and_verified() {
    let Some(dir) = prepared() else { return };
    if !(require_tool("buildah", "apt-get install buildah")
        && require_tool("skopeo", "apt-get install skopeo")
        && require_tool("dnf", "apt-get install dnf"))
    {
        return;
    }
    let Some(registry) = server(AuthKind::Open) else {
        return;
    };
    let tmp = tempdir();
    let path = |rel: &str| tmp.path().join(rel);
    std::fs::write(
        path("registries.conf"),
        format!(
            "[[registry]]\nlocation = \"{}\"\ninsecure = true\n",
            registry.addr
        ),
    )
    .unwrap();
    let b = Buildah::new(path("buildah"), path("registries.conf"));

    // The base: the root dnf installed, as an image in the registry.
    let c = b.ok(&["from", "scratch"]);
    let c = c.trim();
    b.ok(&["add", "-q", c, dir.join("base.tar").to_str().unwrap(), "/"]);
    b.ok(&["config", "--os", "linux", "--arch", "amd64", c]);
    b.ok(&["commit", "-q", c, "rpm-build-base"]);
    b.ok(&["rm", c]);
    let base = format!("{}/rpm/build-base:9", registry.addr);
    b.ok(&[
        "push",
        "-q",
        "--tls-verify=false",
        "rpm-build-base",
        &format!("docker://{base}"),
    ]);
    b.ok(&["rmi", "rpm-build-base"]);
    let server = StaticServer::start(&dir);

    let ex = path("image");
    std::fs::create_dir_all(&ex).unwrap();
    std::fs::write(
        ex.join("Dockerfile"),
        format!(
            "FROM {base}\n\
             RUN dnf install -y --setopt=install_weak_deps=False app needs-file \\\n && dnf clean all\n"
        ),
    )
    .unwrap();
    std::fs::write(
        ex.join("imagelock.toml"),
        format!(
            "lock-dir = \"lockfiles\"\nplatforms = [\"linux/amd64\"]\n\n\
             [images.tool]\nfile = \"Dockerfile\"\n\n\
             [apt.mirrors]\n\"{FIXTURE_HOST}\" = \"{}/\"\n",
            server.url()
        ),
    )
    .unwrap();
    let cli = |args: &[&str]| {
        run(imagelock()
            .current_dir(&ex)
            .env("XDG_CACHE_HOME", path("cache"))
            .args(args))
    };
    let (code, out, err) = cli(&["freeze"]);
    assert_eq!(code, 0, "freeze failed:\n{out}\n{err}");
    let lock = imagelock::lock::LockedImage::read(&ex.join("lockfiles/tool.lock")).unwrap();
    let step = lock
        .steps
        .iter()
        .find(|s| s.manager.as_str() == "dnf")
        .unwrap();
    assert!(step.locked, "{:?}", step.reason);
    let locked: BTreeSet<String> = step
        .rpm
        .iter()
        .filter(|p| p.installed_after())
        .map(|p| p.nevra())
        .collect();
    assert_eq!(
        locked,
        [
            "app-1.0-1.noarch",
            "helper-3.0-1.noarch",
            "needs-file-1.0-1.noarch",
            "tool-1.0-1.x86_64"
        ]
        .map(String::from)
        .into()
    );

    let (code, out, err) = cli(&["rewrite"]);
    assert_eq!(code, 0, "rewrite failed:\n{out}\n{err}");
    // The pinned file freezes to the same lock (the original request kept).
    let (code, out, err) = cli(&["freeze", "--check"]);
    assert_eq!(code, 0, "freeze --check after rewrite:\n{out}\n{err}");
    let dockerfile = std::fs::read_to_string(ex.join("Dockerfile")).unwrap();
    let specs = pinned_specs(&dockerfile);
    assert_eq!(
        specs.iter().cloned().collect::<BTreeSet<_>>(),
        locked,
        "{dockerfile}"
    );
    let pinned_base = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("FROM "))
        .unwrap()
        .trim()
        .to_string();
    assert!(
        pinned_base.starts_with(&format!("{base}@sha256:")),
        "{dockerfile}"
    );

    // The build: the pinned base, mounted, and dnf installing into it.
    // buildah's `docker://` takes a digest without the tag beside it; the
    // digest is what the pin means.
    let (name, digest) = pinned_base.split_once('@').unwrap();
    let (repo, _tag) = name.rsplit_once(':').unwrap();
    let c = b.ok(&[
        "from",
        "--tls-verify=false",
        &format!("docker://{repo}@{digest}"),
    ]);
    let c = c.trim().to_string();
    let mount = std::path::PathBuf::from(b.ok(&["mount", &c]).trim());
    let home = path("home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join(".rpmmacros"), "%_dbpath /var/lib/rpm\n").unwrap();
    // The image's own repository file, its host mapped to the server as
    // the lock's mirror maps it, its key read from the image.
    let repo_file = std::fs::read_to_string(mount.join("etc/yum.repos.d/fixture.repo")).unwrap();
    let repos = path("repos");
    std::fs::create_dir_all(&repos).unwrap();
    std::fs::write(
        repos.join("fixture.repo"),
        repo_file
            .replace(FIXTURE_HOST, &format!("{}/", server.url()))
            .replace("file:///", &format!("file://{}/", mount.display())),
    )
    .unwrap();
    std::fs::create_dir_all(path("dnf-log")).unwrap();
    let dnf = std::process::Command::new("dnf")
        .args(["-y", "--installroot"])
        .arg(&mount)
        .args(["--releasever", "9", "--forcearch", "x86_64"])
        .arg(format!("--setopt=reposdir={}", repos.display()))
        .arg(format!("--setopt=cachedir={}", path("dnf-cache").display()))
        .arg(format!("--setopt=logdir={}", path("dnf-log").display()))
        .args(["install", "--setopt=install_weak_deps=False"])
        .args(&specs)
        .env("HOME", &home)
        .env("LC_ALL", "C.UTF-8")
        .output()
        .unwrap();
    assert!(
        dnf.status.success(),
        "dnf install {specs:?}:\n{}{}",
        String::from_utf8_lossy(&dnf.stdout),
        String::from_utf8_lossy(&dnf.stderr)
    );
    let qa = rpm_qa(&mount, &home);
    let expected: BTreeSet<String> = expected_qa(&dir).into_iter().chain(locked).collect();
    assert_eq!(qa, expected, "rpm -qa --root of the image is base + lock");
    b.ok(&["umount", &c]);
    b.ok(&["commit", "-q", &c, "rpm-built"]);
    b.ok(&["rm", &c]);
    let built = b.to_layout("rpm-built", &path("oci-built"));
    let (code, out, err) = cli(&["verify", "--image", &built]);
    assert_eq!(code, 0, "verify --image:\n{out}\n{err}");
    assert!(out.contains("4 rpm packages"), "{out}");

    // Tampered: a locked package erased from the built image by rpm.
    let c = b.ok(&["from", "--pull-never", "rpm-built"]);
    let c = c.trim().to_string();
    let mount = std::path::PathBuf::from(b.ok(&["mount", &c]).trim());
    let erase = std::process::Command::new("rpm")
        .args(["-e", "--root"])
        .arg(&mount)
        .arg("needs-file")
        .env("HOME", &home)
        .output()
        .unwrap();
    assert!(
        erase.status.success(),
        "{}",
        String::from_utf8_lossy(&erase.stderr)
    );
    assert!(!rpm_qa(&mount, &home).contains("needs-file-1.0-1.noarch"));
    b.ok(&["umount", &c]);
    b.ok(&["commit", "-q", &c, "rpm-tampered"]);
    b.ok(&["rm", &c]);
    let tampered = b.to_layout("rpm-tampered", &path("oci-tampered"));
    let (code, out, _) = cli(&["verify", "--image", &tampered]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("needs-file: lock has 1.0-1 (noarch)")
                && l.ends_with("image has none")),
        "the erased package is named:\n{out}"
    );
}

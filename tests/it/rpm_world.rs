//! The test world's UBI-like base and its UBI 9 repositories
//! (`fixtures/world/rpm/`, made by `rpmbuild`, `createrepo_c` and
//! `dnf --installroot`): the committed workbench lock's dnf step is what
//! the real `dnf --installroot … --assumeno` says for the same command on a
//! root holding the image's own rpm database, `ubi.repo` and `dnf.conf`.

use std::collections::{BTreeMap, BTreeSet};

use imagelock::image::rpmdb::is_rpm_state_file;

use crate::common::{repo_root, require_tool, tempdir};
use crate::rpm::dnf_outcome;

const UBI: &str = "https://cdn-ubi.redhat.com/content/public/ubi/dist/ubi9/9";
const WORKBENCH: &str = "fixtures/world/images/quay.io/opendatahub/workbench-images";
const TAG: &str = "jupyter-minimal-ubi9-python-3.11-2024a";

/// The rpm state files of the world's workbench base, read from its layers.
fn workbench_rpm_state() -> BTreeMap<String, Vec<u8>> {
    let reference = format!("oci:{}:{TAG}", repo_root().join(WORKBENCH).display());
    let location: imagelock::image::ImageLocation = reference.parse().unwrap();
    let catalogue = imagelock::image::read_catalogue(
        imagelock::image::open_local(&location).unwrap().as_ref(),
        &imagelock::image::Platform::linux_amd64(),
        &imagelock::image::ReadOptions::default(),
    )
    .unwrap();
    assert!(catalogue.warnings.is_empty(), "{:?}", catalogue.warnings);
    catalogue
        .apt_files
        .into_iter()
        .filter(|(p, _)| is_rpm_state_file(p))
        .collect()
}

#[test]
fn the_workbench_lock_is_what_dnf_assumeno_says_on_the_world() {
    if !require_tool("dnf", "apt-get install dnf") {
        return;
    }
    let files = workbench_rpm_state();
    for f in [
        "/var/lib/rpm/rpmdb.sqlite",
        "/etc/yum.repos.d/ubi.repo",
        "/etc/dnf/dnf.conf",
    ] {
        assert!(
            files.contains_key(f),
            "{f} is in the base: {:?}",
            files.keys()
        );
    }

    // A root holding the image's rpm state; its repositories pointed at the
    // world's copies exactly as `[apt] mirrors` of the examples maps them.
    let tmp = tempdir();
    let root = tmp.path().join("root");
    let world = repo_root().join("fixtures/world/rpm/ubi9/9");
    let world_url = format!("file://{}", world.canonicalize().unwrap().display());
    for (path, bytes) in &files {
        let dest = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(dest, bytes).unwrap();
    }
    let repos = tmp.path().join("repos");
    std::fs::create_dir_all(&repos).unwrap();
    let ubi_repo = String::from_utf8(files["/etc/yum.repos.d/ubi.repo"].clone()).unwrap();
    assert!(ubi_repo.contains(UBI), "{ubi_repo}");
    std::fs::write(repos.join("ubi.repo"), ubi_repo.replace(UBI, &world_url)).unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join(".rpmmacros"), "%_dbpath /var/lib/rpm\n").unwrap();
    std::fs::create_dir_all(tmp.path().join("log")).unwrap();

    let lock =
        imagelock::lock::LockedImage::read(&repo_root().join("lockfiles/workbench.lock")).unwrap();
    let step = lock
        .steps
        .iter()
        .find(|s| s.manager.as_str() == "dnf")
        .expect("the workbench has a dnf step");
    assert!(step.locked, "{:?}", step.reason);
    assert_eq!(step.requested, ["zlib-devel", "bzip2"]);

    let out = std::process::Command::new("dnf")
        .args(["--assumeno", "--installroot"])
        .arg(&root)
        .arg("--config")
        .arg(root.join("etc/dnf/dnf.conf"))
        .args(["--releasever", "9", "--forcearch", "x86_64"])
        .arg(format!("--setopt=reposdir={}", repos.display()))
        .arg(format!(
            "--setopt=cachedir={}",
            tmp.path().join("cache").display()
        ))
        .arg(format!(
            "--setopt=logdir={}",
            tmp.path().join("log").display()
        ))
        // The step as the Dockerfile writes it.
        .args([
            "install",
            "-y",
            "--setopt=install_weak_deps=False",
            "zlib-devel",
            "bzip2",
        ])
        .env("HOME", &home)
        .env("LC_ALL", "C.UTF-8")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let base: BTreeSet<String> =
        std::fs::read_to_string(repo_root().join("fixtures/world/rpm/ubi9-base/rpm-qa.txt"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
    let theirs = dnf_outcome(&base, &text).unwrap_or_else(|e| panic!("dnf refused: {e}"));
    let ours: BTreeSet<String> = base
        .iter()
        .cloned()
        .chain(
            step.rpm
                .iter()
                .filter(|p| p.installed_after())
                .map(|p| p.nevra()),
        )
        .collect();
    assert_eq!(ours, theirs, "dnf said:\n{text}");
    assert!(
        step.rpm.iter().all(|p| p.action.as_str() == "install"),
        "{:?}",
        step.rpm
    );

    // And each package from the repository dnf took it from.
    let mut dnf_repos = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with(' ')) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() >= 5 && f[3].starts_with("ubi-9-") {
            dnf_repos.insert(format!("{}-{}.{}", f[0], f[2], f[1]), f[3].to_string());
        }
    }
    let lock_repos: BTreeMap<String, String> = step
        .rpm
        .iter()
        .map(|p| (p.nevra(), p.repo.as_ref().unwrap().as_str().to_string()))
        .collect();
    assert_eq!(lock_repos, dnf_repos, "dnf said:\n{text}");
    assert_eq!(
        lock_repos["zlib-devel-1.2.11-40.el9.x86_64"],
        "ubi-9-appstream-rpms"
    );
    assert_eq!(lock_repos["bzip2-1.0.8-8.el9.x86_64"], "ubi-9-baseos-rpms");
    // The lock names UBI's URLs, never the world's directory.
    for r in &step.rpm_repos {
        assert!(
            r.baseurl.as_str().starts_with(UBI),
            "{}",
            r.baseurl.as_str()
        );
    }
}

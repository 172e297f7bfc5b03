//! conda's installer inside a built image agrees with imagelock's conda
//! locks (issue 18), on a sample of the conda comparison sets of
//! `benches/conda_vs_rattler.py`: conda-forge python+numpy, pytorch over
//! conda-forge under conda's flexible and under disabled channel priority,
//! ffmpeg with `ENV CONDA_OVERRIDE_CUDA`, and LongQC's two steps (bioconda
//! over conda-forge into the prefix the first step filled).
//!
//! The channels are the real repodata, whole; `tests/conda/installer.py
//! prepare` (cached under `target/conda-install`) writes genuine package
//! files for the records the solutions need and patches those records'
//! hashes and sizes in the served repodata. No conda or mamba binary can
//! run here, so py-rattler's `solve` + `install` with the defaults each
//! command uses stands in for the image's installer, the way buildah
//! documents building when the tool is not in the image: `buildah from` the
//! pinned base, `buildah mount`, install from the host into the mount.
//! Then, per image: what the installer installed in each step equals the
//! lock's step package by package (name, version, build, URL, sha256),
//! `conda-meta` equals the lock's final prefix, and `verify --image` of the
//! committed image passes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::buildah::Buildah;
use crate::common::http::StaticServer;
use crate::common::registry::{AuthKind, server};
use crate::common::{imagelock, repo_root, require_tool, run, tempdir};
use crate::freeze::conda_e2e::{layout, rattler_available};

/// (name, version, build, url, sha256) of a conda package.
type Record = (String, String, String, String, String);

/// `tests/conda/installer.py prepare` into `target/conda-install` (does
/// nothing when the script and the repodata did not change).
fn prepared() -> PathBuf {
    let out = repo_root().join("target/conda-install");
    let (code, stdout, stderr) = run(Command::new("python3")
        .arg(repo_root().join("tests/conda/installer.py"))
        .arg("prepare")
        .arg(&out));
    assert_eq!(code, 0, "installer.py prepare:\n{stdout}\n{stderr}");
    out
}

/// The base: busybox, Debian's os-release, glibc's banner (the version the
/// installer's `__glibc` and imagelock's both read), an empty `/opt/conda`.
fn base_rootfs(dir: &Path, glibc: &str, prefix: &str) -> PathBuf {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(
        root.join("etc/os-release"),
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n",
    )
    .unwrap();
    let lib = root.join("lib/x86_64-linux-gnu");
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::write(
        lib.join("libc.so.6"),
        format!("\x7fELF GNU C Library (Debian GLIBC {glibc}-9+deb12u4) stable release version {glibc}.\n"),
    )
    .unwrap();
    std::fs::create_dir_all(root.join(prefix.trim_start_matches('/')).join("conda-meta")).unwrap();
    root
}

fn conda_meta(prefix: &Path) -> BTreeMap<String, Record> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(prefix.join("conda-meta")).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        out.insert(
            s("name"),
            (s("name"), s("version"), s("build"), s("url"), s("sha256")),
        );
    }
    out
}

fn lock_record(p: &imagelock::lock::CondaPackage) -> Record {
    (
        p.name.to_string(),
        p.version.to_string(),
        p.build.to_string(),
        p.url.to_string(),
        p.sha256.to_string(),
    )
}

#[test]
fn conda_installer_in_a_built_image_agrees_with_the_locks() {
    if !(require_tool("buildah", "apt-get install buildah")
        && require_tool("skopeo", "apt-get install skopeo")
        && require_tool("busybox", "apt-get install -y busybox-static")
        && rattler_available())
    {
        return;
    }
    let Some(registry) = server(AuthKind::Open) else {
        return;
    };
    let fixture = prepared();
    let cases: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture.join("cases.json")).unwrap()).unwrap();
    let prefix = cases["prefix"].as_str().unwrap();
    let glibc = cases["glibc"].as_str().unwrap();
    let sets = cases["sets"].as_array().unwrap();
    let channels = StaticServer::start(fixture.join("channels"));
    let urls: BTreeMap<&str, String> = ["conda-forge", "pytorch", "defaults", "world-conda-forge", "bioconda"]
        .into_iter()
        .map(|c| (c, format!("{}/{c}", channels.url())))
        .collect();

    // `{name}` in the sets' lines and files is the channel's URL.
    let fill = |text: &str| {
        let mut text = text.to_string();
        for (name, url) in &urls {
            text = text.replace(&format!("{{{name}}}"), url);
        }
        text
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
    let root = base_rootfs(tmp.path(), glibc, prefix);
    let env = [
        "PATH=/opt/conda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            .to_string(),
        format!("CONDA_DIR={prefix}"),
    ];
    let env: Vec<&str> = env.iter().map(String::as_str).collect();
    let pushed = layout(&path("base-layout"), &root, &env, "1");
    registry.push(&path("base-layout"), "1", "conda-install/base:1", false);
    let base = format!("{}/conda-install/base", registry.addr);

    // One image per set, all frozen in one run.
    let project = path("project");
    let mut toml = String::from("platforms = [\"linux/amd64\"]\n");
    for set in sets {
        let image = set["image"].as_str().unwrap();
        let mut dockerfile = format!("FROM {base}:1\n");
        for (k, v) in set["env"].as_object().into_iter().flatten() {
            dockerfile.push_str(&format!("ENV {k}={}\n", v.as_str().unwrap()));
        }
        std::fs::create_dir_all(project.join(image)).unwrap();
        for f in set["files"].as_array().into_iter().flatten() {
            let src = f["src"].as_str().unwrap();
            std::fs::write(project.join(image).join(src), fill(f["text"].as_str().unwrap())).unwrap();
            dockerfile.push_str(&format!("COPY {src} {}\n", f["dest"].as_str().unwrap()));
        }
        let runs: Vec<String> = set["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| fill(s["run"].as_str().unwrap()))
            .collect();
        dockerfile.push_str(&format!("RUN {}\n", runs.join(" \\\n && ")));
        std::fs::write(project.join(image).join("Dockerfile"), dockerfile).unwrap();
        toml.push_str(&format!(
            "\n[images.{image}]\nfile = \"{image}/Dockerfile\"\n"
        ));
    }
    std::fs::write(project.join("imagelock.toml"), toml).unwrap();
    let cli = |args: &[&str]| {
        run(imagelock()
            .current_dir(&project)
            .env("HOME", &project)
            .env_remove("CONDARC")
            .env("IMAGELOCK_CACHE_DIR", path("cache"))
            .args(args))
    };
    let started = std::time::Instant::now();
    let (code, out, err) = cli(&["freeze"]);
    assert_eq!(code, 0, "freeze:\n{out}\n{err}");
    eprintln!("freeze of {} images: {:.1?}", sets.len(), started.elapsed());

    let urls_json = serde_json::to_string(&urls).unwrap();
    let mut agreed = Vec::new();
    for set in sets {
        let image = set["image"].as_str().unwrap();
        let t_set = std::time::Instant::now();
        let lock_path = project.join(format!("lockfiles/{image}.lock"));
        let lock = imagelock::lock::LockedImage::read(&lock_path).unwrap();
        assert_eq!(lock.bases[0].digest, pushed.parse().unwrap());
        let steps: Vec<_> = lock.steps.iter().filter(|s| !s.conda.is_empty()).collect();
        assert_eq!(
            steps.len(),
            set["steps"].as_array().unwrap().len(),
            "{image}: one locked conda step per installer step"
        );

        // The build: the pinned base, mounted; the installer writes the prefix.
        let c = b.ok(&[
            "from",
            "--tls-verify=false",
            &format!("docker://{base}@{}", lock.bases[0].digest),
        ]);
        let c = c.trim().to_string();
        let mount = PathBuf::from(b.ok(&["mount", &c]).trim());
        // The Dockerfile's COPY lines.
        for f in set["files"].as_array().into_iter().flatten() {
            let dest = mount.join(f["dest"].as_str().unwrap().trim_start_matches('/'));
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::write(dest, fill(f["text"].as_str().unwrap())).unwrap();
        }
        let report = path(&format!("{image}.installed.json"));
        let t_install = std::time::Instant::now();
        let (code, stdout, stderr) = run(Command::new("python3")
            .arg(repo_root().join("tests/conda/installer.py"))
            .arg("install")
            .arg(fixture.join("cases.json"))
            .arg(image)
            .arg(&mount)
            .arg(&urls_json)
            .arg(&report));
        assert_eq!(code, 0, "{image}: installer.py install:\n{stdout}\n{stderr}");
        let t_install = t_install.elapsed();
        let installed: Vec<Vec<serde_json::Value>> =
            serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();

        // Step by step, what the installer installed is what the lock names.
        for (i, (step, ours)) in steps.iter().zip(&installed).enumerate() {
            let theirs: BTreeMap<String, Record> = ours
                .iter()
                .map(|r| {
                    let s = |k: &str| r[k].as_str().unwrap().to_string();
                    (
                        s("name"),
                        (s("name"), s("version"), s("build"), s("url"), s("sha256")),
                    )
                })
                .collect();
            let locked: BTreeMap<String, Record> = step
                .conda
                .iter()
                .map(|p| (p.name.to_string(), lock_record(p)))
                .collect();
            assert_eq!(
                locked, theirs,
                "{image} step {}: the lock vs what the installer installed",
                i + 1
            );
        }
        // Each prefix's conda-meta is the lock's final state of it.
        let prefixes: BTreeSet<&str> = set["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["prefix"].as_str().unwrap_or(prefix))
            .collect();
        let mut packages = 0;
        for p in prefixes {
            let meta = conda_meta(&mount.join(p.trim_start_matches('/')));
            let final_lock: BTreeMap<String, Record> = lock
                .final_conda("linux/amd64")
                .into_iter()
                .filter(|(step, _)| step.target.as_deref() == Some(p))
                .map(|(_, p)| (p.name.to_string(), lock_record(p)))
                .collect();
            assert_eq!(meta, final_lock, "{image}: conda-meta of {p} vs the lock");
            packages += meta.len();
        }
        b.ok(&["umount", &c]);
        let mut config = vec!["config".to_string()];
        for (k, v) in set["env"].as_object().into_iter().flatten() {
            config.extend(["--env".to_string(), format!("{k}={}", v.as_str().unwrap())]);
        }
        config.push(c.clone());
        let config: Vec<&str> = config.iter().map(String::as_str).collect();
        b.ok(&config);
        b.ok(&["commit", "-q", &c, image]);
        b.ok(&["rm", &c]);
        let built = b.to_layout(image, &path(&format!("oci/{image}")));
        let t_verify = std::time::Instant::now();
        let (code, out, err) = cli(&["verify", "--image", &format!("{image}={built}")]);
        let t_verify = t_verify.elapsed();
        assert_eq!(code, 0, "{image}: verify --image:\n{out}\n{err}");
        assert!(
            out.contains(&format!("matches its lock (base, {} conda, 0 pip packages)", packages)),
            "{image}: {out}"
        );
        b.ok(&["rmi", image]);
        agreed.push(format!("{image}: {} packages", packages));
        eprintln!(
            "{image}: {} packages; installer {t_install:.1?}, verify {t_verify:.1?}, set {:.1?}",
            packages,
            t_set.elapsed()
        );
    }
    eprintln!("the installer agrees with the lock on {} sets: {agreed:?}", agreed.len());
}

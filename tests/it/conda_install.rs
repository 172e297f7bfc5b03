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
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
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
    // `.conda` files are zstd tars: Python's zstandard, else the zstd tool.
    let zstandard = Command::new("python3")
        .args(["-c", "import zstandard"])
        .status()
        .is_ok_and(|s| s.success());
    if !zstandard && !require_tool("zstd", "apt-get install zstd (or pip install zstandard)") {
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
    // The sets marked for the test suite; `IMAGELOCK_CONDA_SETS=all` (what
    // `benches/conda_install.sh` sets) or a comma-separated list of names
    // for others.
    let chosen = std::env::var("IMAGELOCK_CONDA_SETS").unwrap_or_default();
    let sets: Vec<&serde_json::Value> = cases["sets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| match chosen.as_str() {
            "" => s["test"].as_bool() == Some(true),
            "all" => true,
            list => list
                .split(',')
                .any(|n| Some(n.trim()) == s["image"].as_str()),
        })
        .collect();
    assert!(!sets.is_empty(), "no set is named `{chosen}`");
    let channels = StaticServer::start(fixture.join("channels"));
    let urls: BTreeMap<&str, String> = [
        "conda-forge",
        "pytorch",
        "defaults",
        "world-conda-forge",
        "bioconda",
    ]
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
    for set in &sets {
        let image = set["image"].as_str().unwrap();
        let mut dockerfile = format!("FROM {base}:1\n");
        for (k, v) in set["env"].as_object().into_iter().flatten() {
            dockerfile.push_str(&format!("ENV {k}={}\n", v.as_str().unwrap()));
        }
        std::fs::create_dir_all(project.join(image)).unwrap();
        for f in set["files"].as_array().into_iter().flatten() {
            let src = f["src"].as_str().unwrap();
            std::fs::write(
                project.join(image).join(src),
                fill(f["text"].as_str().unwrap()),
            )
            .unwrap();
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
    // A set imagelock cannot lock is a disagreement, named below.
    let (_, _, freeze_err) = cli(&["freeze"]);
    let urls_json = serde_json::to_string(&urls).unwrap();
    let mut rows = Vec::new();
    let mut disagreements = Vec::new();
    for set in &sets {
        let image = set["image"].as_str().unwrap();
        let (verdict, row) = build_and_compare(&Build {
            set,
            b: &b,
            base: &base,
            pushed: &pushed,
            prefix,
            project: &project,
            tmp: tmp.path(),
            fixture: &fixture,
            urls_json: &urls_json,
            fill: &fill,
            cli: &cli,
            freeze_err: &freeze_err,
        });
        if let Err(why) = &verdict {
            disagreements.push(format!("{image}: {why}"));
        }
        rows.push(format!(
            "| {image} | {} | {row} | {} |",
            set["what"].as_str().unwrap(),
            match &verdict {
                Ok(()) => "same".to_string(),
                Err(why) => format!("DIFFERENT: {}", why.replace('\n', " ").replace('|', "/")),
            }
        ));
    }
    eprintln!(
        "| set | what | packages (per step) | installer s | verify s | verdict |\n|---|---|---|---:|---:|---|"
    );
    for row in &rows {
        eprintln!("{row}");
    }
    eprintln!(
        "the installer agrees with the lock on {} of {} sets",
        sets.len() - disagreements.len(),
        sets.len()
    );
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n\n"));

    // Pinned in place, every Dockerfile freezes to the lock it was pinned
    // from (x264's epoch version is a pin too).
    let (code, out, err) = cli(&["rewrite"]);
    assert_eq!(code, 0, "rewrite:\n{out}\n{err}");
    let (code, out, err) = cli(&["freeze", "--check"]);
    assert_eq!(code, 0, "freeze --check after rewrite:\n{out}\n{err}");
}

/// Runs imagelock in the project: (exit code, stdout, stderr).
type Cli<'a> = dyn Fn(&[&str]) -> (i32, String, String) + 'a;

/// What one set's build needs.
struct Build<'a> {
    set: &'a serde_json::Value,
    b: &'a Buildah,
    base: &'a str,
    pushed: &'a str,
    prefix: &'a str,
    project: &'a Path,
    tmp: &'a Path,
    fixture: &'a Path,
    urls_json: &'a str,
    fill: &'a dyn Fn(&str) -> String,
    cli: &'a Cli<'a>,
    freeze_err: &'a str,
}

/// The differences between what the lock says and what the installer did,
/// by package name.
fn differences(
    lock: &BTreeMap<String, Record>,
    installer: &BTreeMap<String, Record>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (name, l) in lock {
        match installer.get(name) {
            None => out.push(format!("only the lock has {} {} {}", l.0, l.1, l.2)),
            Some(i) if i != l => out.push(format!(
                "{name}: lock {} {} {} {}, installer {} {} {} {}",
                l.1, l.2, l.3, l.4, i.1, i.2, i.3, i.4
            )),
            Some(_) => {}
        }
    }
    for (name, i) in installer {
        if !lock.contains_key(name) {
            out.push(format!(
                "only the installer installed {} {} {}",
                i.0, i.1, i.2
            ));
        }
    }
    out
}

/// Builds one set's image with the installer and compares it with the
/// lock; the table row's middle columns, and the verdict.
fn build_and_compare(x: &Build) -> (Result<(), String>, String) {
    let image = x.set["image"].as_str().unwrap();
    let lock_path = x.project.join(format!("lockfiles/{image}.lock"));
    if !lock_path.is_file() {
        let said: Vec<&str> = x.freeze_err.lines().filter(|l| l.contains(image)).collect();
        return (
            Err(format!("imagelock wrote no lock: {}", said.join(" "))),
            " | | ".to_string(),
        );
    }
    let lock = imagelock::lock::LockedImage::read(&lock_path).unwrap();
    assert_eq!(lock.bases[0].digest, x.pushed.parse().unwrap());
    let steps: Vec<_> = lock.steps.iter().filter(|s| !s.conda.is_empty()).collect();
    let wanted = x.set["steps"].as_array().unwrap();

    // The build: the pinned base, mounted; the installer writes the prefix.
    let b = x.b;
    let c = b.ok(&[
        "from",
        "--tls-verify=false",
        &format!("docker://{}@{}", x.base, lock.bases[0].digest),
    ]);
    let c = c.trim().to_string();
    let mount = PathBuf::from(b.ok(&["mount", &c]).trim());
    // The Dockerfile's COPY lines.
    for f in x.set["files"].as_array().into_iter().flatten() {
        let dest = mount.join(f["dest"].as_str().unwrap().trim_start_matches('/'));
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(dest, (x.fill)(f["text"].as_str().unwrap())).unwrap();
    }
    let report = x.tmp.join(format!("{image}.installed.json"));
    let started = std::time::Instant::now();
    let (code, stdout, stderr) = run(Command::new("python3")
        .arg(repo_root().join("tests/conda/installer.py"))
        .arg("install")
        .arg(x.fixture.join("cases.json"))
        .arg(image)
        .arg(&mount)
        .arg(x.urls_json)
        .arg(&report));
    let t_install = started.elapsed().as_secs_f64();
    let finish = |verdict: Result<(), String>, row: String| {
        b.ok(&["umount", &c]);
        b.ok(&["rm", &c]);
        (verdict, row)
    };
    if code != 0 {
        let last = stderr.lines().last().unwrap_or_default().to_string();
        return finish(
            Err(format!("the installer failed: {last}\n{stdout}")),
            format!(" | {t_install:.2} | "),
        );
    }
    let installed: Vec<Vec<serde_json::Value>> =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let counts: Vec<String> = installed.iter().map(|s| s.len().to_string()).collect();
    let row = |verify: &str| format!("{} | {t_install:.2} | {verify}", counts.join(" + "));
    let mut problems = Vec::new();
    if steps.len() != wanted.len() {
        problems.push(format!(
            "the lock has {} conda steps with packages, the installer ran {}",
            steps.len(),
            wanted.len()
        ));
    }
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
        for d in differences(&locked, &theirs) {
            problems.push(format!("step {}: {d}", i + 1));
        }
    }
    // Each prefix's conda-meta is the lock's final state of it.
    let prefixes: BTreeSet<&str> = wanted
        .iter()
        .map(|s| s["prefix"].as_str().unwrap_or(x.prefix))
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
        for d in differences(&final_lock, &meta) {
            problems.push(format!("conda-meta of {p}: {d}"));
        }
        packages += meta.len();
    }
    if !problems.is_empty() {
        return finish(Err(problems.join("\n")), row(""));
    }
    b.ok(&["umount", &c]);
    let mut config = vec!["config".to_string()];
    for (k, v) in x.set["env"].as_object().into_iter().flatten() {
        config.extend(["--env".to_string(), format!("{k}={}", v.as_str().unwrap())]);
    }
    config.push(c.clone());
    let config: Vec<&str> = config.iter().map(String::as_str).collect();
    b.ok(&config);
    b.ok(&["commit", "-q", &c, image]);
    b.ok(&["rm", &c]);
    let built = b.to_layout(image, &x.tmp.join(format!("oci/{image}")));
    let started = std::time::Instant::now();
    let (code, out, err) = (x.cli)(&["verify", "--image", &format!("{image}={built}")]);
    let t_verify = started.elapsed().as_secs_f64();
    b.ok(&["rmi", image]);
    let row = row(&format!("{t_verify:.2}"));
    if code != 0 {
        return (
            Err(format!("verify --image exited {code}:\n{out}\n{err}")),
            row,
        );
    }
    let expected = format!("matches its lock (base, {packages} conda, 0 pip packages)");
    if !out.contains(&expected) {
        return (
            Err(format!("verify --image did not say `{expected}`:\n{out}")),
            row,
        );
    }
    (Ok(()), row)
}

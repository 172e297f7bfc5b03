//! `imagelock verify` end to end on images really built with buildah (chroot
//! isolation, own storage): a base from scratch with busybox and a pip
//! installed distribution, an image that installs a wheel with real pip and
//! a conda package with real rattler. The lock is derived from what the
//! installers wrote; verify passes; each tampering fails with its message;
//! every image source gives the same answer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use imagelock::lock::{
    CondaPackage, ImageMeta, LOCK_VERSION, LockedBase, LockedImage, LockedPlatformImage,
    LockedStage, LockedStep, PypiPackage,
};
use imagelock::source::inputs::load_inputs;
use imagelock::source::load::load_definition;
use serde_json::Value;

use crate::{common, reports};

const PREP: &str = include_str!("verify/prep.py");
const SITE: &str = "usr/lib/python3.11/site-packages";

struct World {
    dir: tempfile::TempDir,
}

impl World {
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn buildah(&self) -> Command {
        let mut c = Command::new("buildah");
        c.arg("--root")
            .arg(self.path("storage"))
            .arg("--runroot")
            .arg(self.path("run"))
            .args(["--storage-driver", "vfs"]);
        c
    }

    fn prep(&self, args: &[&str]) -> String {
        out(Command::new("python3")
            .arg(self.path("prep.py"))
            .args(args)
            .current_dir(self.dir.path()))
    }

    /// `buildah bud` of `dir` (its Dockerfile) tagged `tag`, pushed to an
    /// OCI layout; returns the `oci:` reference.
    fn build(&self, dir: &str, tag: &str) -> String {
        out(self
            .buildah()
            .args([
                "bud",
                "--isolation",
                "chroot",
                "--pull-never",
                "-q",
                "-t",
                tag,
            ])
            .arg(self.path(dir)));
        std::fs::create_dir_all(self.path("layouts")).unwrap();
        let oci = format!("oci:{}:{}", self.path("layouts").join(dir).display(), "t");
        out(self.buildah().args(["push", "-q", tag, &oci]));
        oci
    }
}

fn out(cmd: &mut Command) -> String {
    let o = cmd.output().expect("the tool runs");
    assert!(
        o.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn tools() -> bool {
    common::require_tool("buildah", "apt-get install -y buildah")
        && common::require_tool("skopeo", "apt-get install -y skopeo")
        && common::require_tool("busybox", "apt-get install -y busybox-static")
        && common::require_tool("python3", "apt-get install -y python3 python3-pip")
        && {
            let ok = Command::new("python3")
                .args(["-c", "import rattler"])
                .output()
                .is_ok_and(|o| o.status.success());
            assert!(
                ok || std::env::var("CI").as_deref() != Ok("true"),
                "py-rattler is required under CI: pip install py-rattler"
            );
            if !ok {
                eprintln!("skipping: py-rattler is not installed (pip install py-rattler)");
            }
            ok
        }
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A context whose install steps put `stage/` into the image: the packages
/// were installed into `stage/` on the host by the real installers, and the
/// base's `conda` and `pip` stand-ins copy what they wrote.
fn app_dir(w: &World, dir: &str, from: &str) {
    write(
        &w.path(dir).join("Dockerfile"),
        &format!(
            "FROM {from}\nCOPY stage/ /tmp/stage/\nRUN conda install -p /opt/conda tinyconda && pip install tinypkg==1.0 && /bin/busybox rm -rf /tmp/stage\n"
        ),
    );
}

/// The base's stand-ins for `conda` and `pip` (see [`app_dir`]).
const STAND_INS: [(&str, &str); 2] = [
    (
        "bin/conda",
        "#!/bin/sh\n[ ! -d /tmp/stage/opt ] || /bin/busybox cp -a /tmp/stage/opt/. /opt/\n",
    ),
    (
        "bin/pip",
        "#!/bin/sh\n[ ! -d /tmp/stage/usr ] || /bin/busybox cp -a /tmp/stage/usr/. /usr/\n",
    ),
];

/// Installs the wheel `name-version` with real pip into `dir/stage`.
fn pip_into(w: &World, dir: &str, name: &str, version: &str) {
    let wheel = w.prep(&["wheel", name, version, "."]);
    let target = w.path(dir).join("stage").join(SITE);
    w.prep(&["pip-install", target.to_str().unwrap(), wheel.trim()]);
}

fn conda_into(w: &World, dir: &str, spec: &str) {
    let prefix = w.path(dir).join("stage/opt/conda");
    let args = ["conda-install", "chan", prefix.to_str().unwrap(), spec];
    // The installer has been seen to exit without a word on a loaded
    // machine; a second try is cheap and keeps the test about verify.
    let first = Command::new("python3")
        .arg(w.path("prep.py"))
        .args(args)
        .current_dir(w.dir.path())
        .output()
        .expect("python3 runs");
    if !first.status.success() {
        let _ = std::fs::remove_dir_all(&prefix);
        w.prep(&args);
    }
}

/// `skopeo inspect` of an `oci:` reference: (manifest digest, config
/// digest, diff_ids).
fn inspect(oci: &str) -> (String, String, Vec<String>) {
    let raw: Value =
        serde_json::from_str(&out(Command::new("skopeo").args(["inspect", "--raw", oci]))).unwrap();
    let raw_bytes = out(Command::new("skopeo").args(["inspect", "--raw", oci]));
    let manifest = format!("sha256:{}", {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(raw_bytes.as_bytes()))
    });
    let config: Value = serde_json::from_str(&out(
        Command::new("skopeo").args(["inspect", "--config", "--raw", oci])
    ))
    .unwrap();
    let diff_ids = config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect();
    (
        manifest,
        raw["config"]["digest"].as_str().unwrap().to_string(),
        diff_ids,
    )
}

/// The lock, derived from what the installers wrote into `dir/stage`.
fn derive_lock(w: &World, dir: &str, base_oci: &str) -> LockedImage {
    let (digest, config, diff_ids) = inspect(base_oci);
    let base_name = "localhost/verify-base:1".to_string();
    let mut conda = Vec::new();
    let meta = w.path(dir).join("stage/opt/conda/conda-meta");
    for e in std::fs::read_dir(&meta).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "json") {
            let r: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            let s = |k: &str| r[k].as_str().unwrap().to_string();
            conda.push(CondaPackage {
                name: s("name").parse().unwrap(),
                version: s("version").parse().unwrap(),
                build: s("build").parse().unwrap(),
                build_number: r["build_number"].as_u64().unwrap(),
                channel: s("channel").parse().unwrap(),
                subdir: s("subdir").parse().unwrap(),
                url: s("url").parse().unwrap(),
                sha256: s("sha256").parse().unwrap(),
                md5: Some(s("md5").parse().unwrap()),
                size: r["size"].as_u64(),
                requested: Some(s("name")),
                platforms: vec!["linux/amd64".parse().unwrap()],
            });
        }
    }
    let mut pypi = Vec::new();
    for e in std::fs::read_dir(w.path(dir).join("stage").join(SITE)).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".dist-info") {
            let (n, v) = stem.split_once('-').unwrap();
            let file = format!("{n}-{v}-py3-none-any.whl");
            let bytes = std::fs::read(w.path(&file)).unwrap();
            pypi.push(PypiPackage {
                name: n.to_string().parse().unwrap(),
                version: Some(v.to_string().parse().unwrap()),
                requested: Some(format!("{n}=={v}")),
                url: format!("file:///wheels/{file}").parse().unwrap(),
                sha256: {
                    use sha2::Digest as _;
                    Some((hex::encode(sha2::Sha256::digest(&bytes))).parse().unwrap())
                },
                file: Some(file.parse().unwrap()),
                source: imagelock::lock::PypiSource::Index,
                revision: None,
                commit: None,
                required_by: Vec::new(),
                platforms: vec!["linux/amd64".parse().unwrap()],
            });
        }
    }
    // The lock is current for the Dockerfile: its hash and its steps.
    let dockerfile = w.path(dir).join("Dockerfile");
    let definition = load_definition(&dockerfile, &BTreeMap::new()).unwrap();
    let text = std::fs::read_to_string(&dockerfile).unwrap();
    let inputs = load_inputs(&definition, &text, &w.path(dir), &BTreeMap::new()).unwrap();
    let written = |manager: &str| {
        definition.stages[0]
            .steps
            .iter()
            .find(|s| s.command.manager.as_str() == manager)
            .map(|s| (u32::try_from(s.line).unwrap(), s.command.text.clone()))
            .unwrap()
    };
    let step = |manager: &str| LockedStep {
        stage: 0,
        file: format!("{dir}/Dockerfile").parse().unwrap(),
        line: written(manager).0,
        command: written(manager).1,
        manager: manager.parse().unwrap(),
        action: "install".parse().unwrap(),
        target: (manager == "conda").then(|| "/opt/conda".to_string()),
        requested: vec![],
        channels: vec![],
        indexes: vec![],
        find_links: vec![],
        locked: true,
        reason: None,
        conda: vec![],
        pypi: vec![],
        apt_sources: vec![],
        apt: vec![],
        rpm_repos: vec![],
        apk_repos: vec![],
        apk: vec![],
        rpm: vec![],
    };
    let mut conda_step = step("conda");
    conda_step.conda = conda;
    let mut pip_step = step("pip");
    pip_step.pypi = pypi;
    let mut lock = LockedImage {
        version: LOCK_VERSION,
        image: ImageMeta {
            name: "app".parse().unwrap(),
            definition: "app/Dockerfile".parse().unwrap(),
            input_hash: inputs.hash(),
            content_hash: None,
            platforms: vec!["linux/amd64".parse().unwrap()],
        },
        stages: vec![LockedStage {
            index: 0,
            name: None,
            base: base_name.clone().parse().unwrap(),
            base_name: Some(base_name.clone().parse().unwrap()),
            downloads: Vec::new(),
            git: Vec::new(),
        }],
        bases: vec![LockedBase {
            name: base_name.clone().parse().unwrap(),
            references: vec![base_name.parse().unwrap()],
            digest: digest.clone().parse().unwrap(),
            media_type: "application/vnd.oci.image.manifest.v1+json"
                .parse()
                .unwrap(),
            built_from: None,
            agent: None,
            pinned: None,
            platforms: vec![LockedPlatformImage {
                platform: "linux/amd64".parse().unwrap(),
                digest: digest.parse().unwrap(),
                config: config.parse().unwrap(),
                diff_ids: diff_ids.iter().map(|d| d.parse().unwrap()).collect(),
            }],
        }],
        steps: vec![conda_step, pip_step],
    };
    lock.normalize();
    lock
}

/// `imagelock verify --image REF app/Dockerfile` in the world.
fn verify(w: &World, reference: &str, extra: &[&str]) -> (i32, String, String) {
    common::run(
        common::imagelock()
            .current_dir(w.dir.path())
            .args(["verify", "--image", reference, "app/Dockerfile"])
            .args(extra),
    )
}

fn filtered(w: &World, s: &str) -> String {
    let mut s = s.replace(&w.dir.path().display().to_string(), "[world]");
    let re = |s: &str, from: &str, to: &str| {
        // A tiny regex-free filter: replace every `sha256:<64 hex>`.
        let mut out = String::new();
        let mut rest = s;
        while let Some(i) = rest.find(from) {
            out.push_str(&rest[..i]);
            let after = &rest[i + from.len()..];
            let n = after.chars().take_while(char::is_ascii_hexdigit).count();
            if n >= 12 {
                out.push_str(to);
                rest = &after[n..];
            } else {
                out.push_str(from);
                rest = after;
            }
        }
        out.push_str(rest);
        out
    };
    s = re(&s, "sha256:", "[digest]");
    s = re(&s, "sha256 ", "[sha256]");
    s = re(&s, "md5 ", "[md5]");
    s
}

#[test]
fn verify_images_built_with_buildah() {
    if !tools() {
        return;
    }
    let w = World {
        dir: common::tempdir(),
    };
    write(&w.path("prep.py"), PREP);
    w.prep(&["conda", "tinyconda", "1.0", "h0_0", "0", "chan"]);
    w.prep(&["conda", "tinyconda", "1.0", "h1_1", "1", "chan"]);

    // The base: busybox, os-release and one pip-installed distribution.
    for (dir, marker) in [("base", "1"), ("base2", "2")] {
        let root = w.path(dir).join("rootfs");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
        std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
        for (path, script) in STAND_INS {
            write(&root.join(path), script);
            std::fs::set_permissions(
                root.join(path),
                std::os::unix::fs::PermissionsExt::from_mode(0o755),
            )
            .unwrap();
        }
        write(
            &root.join("etc/os-release"),
            &format!("ID=verifytest\nBUILD={marker}\n"),
        );
        let wheel = w.prep(&["wheel", "basepkg", "1.0", "."]);
        w.prep(&[
            "pip-install",
            root.join(SITE).to_str().unwrap(),
            wheel.trim(),
        ]);
        write(
            &w.path(dir).join("Dockerfile"),
            "FROM scratch\nCOPY rootfs/ /\n",
        );
    }
    let base = w.build("base", "localhost/verify-base:1");
    w.build("base2", "localhost/verify-base:2");

    // The image as locked, and its lock.
    app_dir(&w, "app", "localhost/verify-base:1");
    pip_into(&w, "app", "tinypkg", "1.0");
    conda_into(&w, "app", "tinyconda=1.0=h0_0");
    let good = w.build("app", "localhost/verify-app:good");
    let lock = derive_lock(&w, "app", &base);
    lock.write(&w.path("lockfiles/app.lock")).unwrap();

    // Ground truth: the catalogue says what pip and conda-meta say in the
    // built image's filesystem.
    let container = out(w
        .buildah()
        .args(["from", "--pull-never", "localhost/verify-app:good"]));
    let mount = out(w.buildah().args(["mount", container.trim()]));
    let mount = PathBuf::from(mount.trim());
    let pip_list: Value = serde_json::from_str(&out(Command::new("python3")
        .args(["-m", "pip", "list", "--format", "json", "--path"])
        .arg(mount.join(SITE))))
    .unwrap();
    let mut conda_meta = Vec::new();
    for e in std::fs::read_dir(mount.join("opt/conda/conda-meta")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "json") {
            let r: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            conda_meta.push((
                r["name"].as_str().unwrap().to_string(),
                r["version"].as_str().unwrap().to_string(),
                r["build"].as_str().unwrap().to_string(),
                r["sha256"].as_str().unwrap().to_string(),
            ));
        }
    }
    let _ = w.buildah().args(["umount", container.trim()]).output();
    let _ = w.buildah().args(["rm", container.trim()]).output();
    let image: imagelock::image::ImageLocation = good.parse().unwrap();
    let catalogue = imagelock::image::read_catalogue(
        imagelock::image::open_local(&image).unwrap().as_ref(),
        &imagelock::image::Platform::linux_amd64(),
        &imagelock::image::ReadOptions::default(),
    )
    .unwrap();
    let mut ours: Vec<(String, String)> = catalogue
        .python_dists
        .iter()
        .map(|d| (d.name.clone(), d.version.clone()))
        .collect();
    ours.sort();
    let mut theirs: Vec<(String, String)> = pip_list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["version"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    theirs.sort();
    assert_eq!(ours, theirs);
    let records: Vec<(String, String, String, String)> = catalogue.conda_prefixes[0]
        .records
        .iter()
        .map(|r| {
            (
                r.name.clone(),
                r.version.clone(),
                r.build.clone(),
                r.sha256.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(records, conda_meta);

    // Verify passes, and every source says so the same way.
    let (code, stdout, stderr) = verify(&w, &good, &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    insta::assert_snapshot!("clean", stdout);
    let sources = other_sources(&w, &good, "good");
    for s in &sources {
        let (c, o, e) = verify(&w, s, &[]);
        assert_eq!((c, o.as_str()), (0, stdout.as_str()), "{s}: {e}");
    }

    // Tampering: each fails with exactly its message.
    let mut cases = Vec::new();
    // An extra pip install layer.
    app_dir(&w, "extra", "localhost/verify-app:good");
    pip_into(&w, "extra", "extrapkg", "0.1");
    cases.push((
        "extra-pip-layer",
        w.build("extra", "localhost/verify-app:extra"),
    ));
    // Another version of the locked wheel.
    app_dir(&w, "version", "localhost/verify-base:1");
    pip_into(&w, "version", "tinypkg", "1.1");
    conda_into(&w, "version", "tinyconda=1.0=h0_0");
    cases.push((
        "other-version",
        w.build("version", "localhost/verify-app:version"),
    ));
    // The same steps on a rebuilt base.
    app_dir(&w, "rebased", "localhost/verify-base:2");
    pip_into(&w, "rebased", "tinypkg", "1.0");
    conda_into(&w, "rebased", "tinyconda=1.0=h0_0");
    cases.push((
        "rebuilt-base",
        w.build("rebased", "localhost/verify-app:rebased"),
    ));
    // A removed package.
    write(
        &w.path("removed/Dockerfile"),
        &format!(
            "FROM localhost/verify-app:good\nRUN /bin/busybox rm -rf /{SITE}/tinypkg /{SITE}/tinypkg-1.0.dist-info\n"
        ),
    );
    cases.push((
        "removed-package",
        w.build("removed", "localhost/verify-app:removed"),
    ));
    // Another conda build.
    app_dir(&w, "build", "localhost/verify-base:1");
    pip_into(&w, "build", "tinypkg", "1.0");
    conda_into(&w, "build", "tinyconda=1.0=h1_1");
    cases.push((
        "other-conda-build",
        w.build("build", "localhost/verify-app:build"),
    ));

    for (name, reference) in &cases {
        let (code, stdout, stderr) = verify(&w, reference, &[]);
        assert_eq!(code, 1, "{name}: {stdout}{stderr}");
        insta::assert_snapshot!(name.to_string(), filtered(&w, &stdout));
    }

    // The formats for CI, on one failing image.
    let (_, json, _) = verify(&w, &cases[1].1, &["--format", "json"]);
    insta::assert_snapshot!("json", filtered(&w, &json));
    let (_, junit, _) = verify(&w, &cases[1].1, &["--format", "junit"]);
    insta::assert_snapshot!("junit", reports::stable_junit(&filtered(&w, &junit)));
    ci_reports(&w, &cases[1].1);

    // The other sources agree on a failing image too.
    for s in other_sources(&w, &cases[0].1, "extra") {
        let (c, o, e) = verify(&w, &s, &[]);
        let (_, want, _) = verify(&w, &cases[0].1, &[]);
        assert_eq!((c, o), (1, want), "{s}: {e}");
    }
}

/// One run writes every report (`--output`), each valid under its official
/// schema, located at the definition line, with fingerprints that stay the
/// same from run to run; a run that ends in trouble still writes JUnit and
/// SARIF saying why.
fn ci_reports(w: &World, reference: &str) {
    if !reports::validators() {
        return;
    }
    let dir = w.path("reports");
    std::fs::create_dir_all(&dir).unwrap();
    let at = |name: &str| dir.join(name).display().to_string();
    let outputs = |tag: &str| -> Vec<String> {
        ["sarif", "junit", "junit-strict", "markdown", "json"]
            .iter()
            .flat_map(|f| {
                [
                    "--output".to_string(),
                    format!("{f}={}", at(&format!("{tag}.{f}"))),
                ]
            })
            .collect()
    };
    let (_, plain, _) = verify(w, reference, &[]);
    let (_, json, _) = verify(w, reference, &["--format", "json"]);
    let first = outputs("first");
    let first: Vec<&str> = first.iter().map(String::as_str).collect();
    let (code, human, err) = verify(w, reference, &first);
    assert_eq!((code, &human), (1, &plain), "{err}");
    assert_eq!(std::fs::read_to_string(at("first.json")).unwrap(), json);
    reports::assert_output_schema("verify-report", &json);

    let sarif = reports::assert_sarif(Path::new(&at("first.sarif")));
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{sarif:#}");
    let r = &results[0];
    assert_eq!(r["ruleId"], "version-differs");
    assert_eq!(r["level"], "error");
    let place = &r["locations"][0]["physicalLocation"];
    assert_eq!(place["artifactLocation"]["uri"], "app/Dockerfile");
    assert_eq!(place["region"]["startLine"], 3);
    let rules: Vec<&str> = sarif["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"version-differs") && rules.contains(&"outdated"));

    reports::assert_junit_strict(Path::new(&at("first.junit-strict")));
    reports::assert_junit_common(Path::new(&at("first.junit")));
    let junit = std::fs::read_to_string(at("first.junit")).unwrap();
    assert!(
        junit.contains(
            "file=\"app/Dockerfile\" line=\"3\">\n      <failure type=\"version-differs\""
        ),
        "{junit}"
    );
    let markdown = std::fs::read_to_string(at("first.markdown")).unwrap();
    assert!(
        markdown.contains("| linux/amd64 | version-differs | pip tinypkg: lock has 1.0"),
        "{markdown}"
    );

    // Several images in one run: each is checked and reported.
    let (code, out, err) = verify(w, reference, &["--image", reference, "--format", "json"]);
    assert_eq!(code, 1, "{err}");
    let both: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(both["images"].as_array().unwrap().len(), 2, "{both:#}");
    reports::assert_output_schema("verify-report", &out);

    // Another run: the same finding has the same fingerprint.
    let second = outputs("second");
    let second: Vec<&str> = second.iter().map(String::as_str).collect();
    verify(w, reference, &second);
    let again = reports::assert_sarif(Path::new(&at("second.sarif")));
    assert_eq!(reports::fingerprints(&sarif), reports::fingerprints(&again));

    // Trouble: an image that is not there. Exit 2, and the reports say why.
    let missing = format!("oci:{}:t", w.path("no-such-layout").display());
    let (code, out, err) = verify(
        w,
        &missing,
        &[
            "--output",
            &format!("junit={}", at("trouble.junit")),
            "--output",
            &format!("junit-strict={}", at("trouble.junit-strict")),
            "--output",
            &format!("sarif={}", at("trouble.sarif")),
        ],
    );
    assert_eq!(code, 2, "{out}{err}");
    reports::assert_junit_strict(Path::new(&at("trouble.junit-strict")));
    reports::assert_junit_common(Path::new(&at("trouble.junit")));
    let junit = std::fs::read_to_string(at("trouble.junit")).unwrap();
    assert!(
        junit.contains("errors=\"1\"") && junit.contains("<error type=\"trouble\" message=\""),
        "{junit}"
    );
    let first_line = err.lines().next().unwrap().trim_start_matches("error: ");
    assert!(
        junit.contains(&first_line[..first_line.len().min(30)]),
        "{junit}\n{err}"
    );
    let sarif = reports::assert_sarif(Path::new(&at("trouble.sarif")));
    assert_eq!(
        sarif["runs"][0]["invocations"][0]["executionSuccessful"],
        false
    );
    // `--format junit` on stdout says it too.
    let (code, out, _) = verify(w, &missing, &["--format", "junit"]);
    assert_eq!(code, 2);
    assert!(out.contains("<error type=\"trouble\""), "{out}");
}

/// The same image through `oci-archive:`, `docker-archive:`, `docker://`
/// (the tests' registry) and `docker-daemon:` when an engine answers.
fn other_sources(w: &World, oci: &str, name: &str) -> Vec<String> {
    let mut out_refs = Vec::new();
    let archive = w.path(&format!("{name}.oci.tar"));
    out(Command::new("skopeo").args([
        "copy",
        "-q",
        oci,
        &format!("oci-archive:{}:t", archive.display()),
    ]));
    out_refs.push(format!("oci-archive:{}", archive.display()));
    let docker = w.path(&format!("{name}.docker.tar"));
    out(Command::new("skopeo").args([
        "copy",
        "-q",
        oci,
        &format!("docker-archive:{}:verify/{name}:t", docker.display()),
    ]));
    out_refs.push(format!("docker-archive:{}", docker.display()));
    if let Some(server) = common::registry::server(common::registry::AuthKind::Open) {
        let dest = format!("docker://{}/verify/{name}:t", server.addr);
        out(Command::new("skopeo").args(["copy", "-q", "--dest-tls-verify=false", oci, &dest]));
        out_refs.push(dest);
    }
    let engine = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    if engine {
        out(Command::new("docker").arg("load").arg("-i").arg(&docker));
        out_refs.push(format!("docker-daemon:verify/{name}:t"));
    } else {
        // .ci/test starts one as root; elsewhere the source is skipped.
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "no Docker Engine answers under CI: .ci/test starts dockerd as root"
        );
        eprintln!("skipping docker-daemon: no Docker Engine answers");
    }
    out_refs
}

/// Without `--image`: a lock made for a definition is current; editing the
/// definition, or only its steps under an unchanged hash, makes it stale.
#[test]
fn verify_without_an_image_finds_stale_locks() {
    let tmp = common::tempdir();
    let dockerfile = tmp.path().join("tool/Dockerfile");
    write(
        &dockerfile,
        "FROM python:3.11-slim\nRUN pip install tinypkg==1.0\n",
    );
    let lock_for = |text_path: &Path| {
        let def = load_definition(text_path, &BTreeMap::new()).unwrap();
        let text = std::fs::read_to_string(text_path).unwrap();
        let inputs =
            load_inputs(&def, &text, text_path.parent().unwrap(), &BTreeMap::new()).unwrap();
        LockedImage {
            version: LOCK_VERSION,
            image: ImageMeta {
                name: "tool".parse().unwrap(),
                definition: "tool/Dockerfile".parse().unwrap(),
                input_hash: inputs.hash(),
                content_hash: None,
                platforms: vec!["linux/amd64".parse().unwrap()],
            },
            stages: def
                .stages
                .iter()
                .map(|s| LockedStage {
                    index: u32::try_from(s.index).unwrap(),
                    name: None,
                    base: s.base.reference.value.clone().unwrap().parse().unwrap(),
                    base_name: None,
                    downloads: Vec::new(),
                    git: Vec::new(),
                })
                .collect(),
            bases: vec![],
            steps: def
                .stages
                .iter()
                .flat_map(|s| {
                    s.steps.iter().map(|st| LockedStep {
                        stage: u32::try_from(s.index).unwrap(),
                        file: "tool/Dockerfile".parse().unwrap(),
                        line: u32::try_from(st.line).unwrap(),
                        command: st.command.text.clone(),
                        manager: st.command.manager.as_str().parse().unwrap(),
                        action: "install".parse().unwrap(),
                        target: None,
                        requested: vec![],
                        channels: vec![],
                        indexes: vec![],
                        find_links: vec![],
                        locked: true,
                        reason: None,
                        conda: vec![],
                        pypi: vec![],
                        apt_sources: vec![],
                        apt: vec![],
                        rpm_repos: vec![],
                        apk_repos: vec![],
                        apk: vec![],
                        rpm: vec![],
                    })
                })
                .collect(),
        }
    };
    let run = |args: &[&str]| {
        common::run(
            common::imagelock()
                .current_dir(tmp.path())
                .arg("verify")
                .args(args)
                .arg("tool/Dockerfile"),
        )
    };
    let (code, stdout, stderr) = run(&[]);
    assert_eq!(code, 1, "{stderr}");
    insta::assert_snapshot!(stdout, @r"
    tool: there is no lock at `lockfiles/tool.lock`
    hint: re-run `imagelock freeze tool/Dockerfile` to update `lockfiles/tool.lock`
    1 problem in 1 of 1 image
    ");

    let lock = lock_for(&dockerfile);
    lock.write(&tmp.path().join("lockfiles/tool.lock")).unwrap();
    let (code, stdout, stderr) = run(&[]);
    assert_eq!(
        (code, stdout.as_str()),
        (
            0,
            "tool: the lock is current\ntool: coverage: 1 of 2 steps locked; not locked: line 1 `FROM python:3.11-slim` (the lock has no digest for `python:3.11-slim`)\n"
        ),
        "{stderr}"
    );

    // An edited definition: new hash, changed step, changed base.
    write(
        &dockerfile,
        "FROM python:3.12-slim\nRUN pip install tinypkg==1.1\n",
    );
    let (code, stdout, _) = run(&[]);
    assert_eq!(code, 1);
    insta::assert_snapshot!(filtered_hash(&stdout), @r"
    tool: the inputs changed since the lock was made (lock has input-hash [hash], the inputs now hash to [hash])
    tool: install steps changed (not in the lock: tool/Dockerfile:2 `pip install tinypkg==1.1`, locked but gone: tool/Dockerfile:2 `pip install tinypkg==1.0`)
    tool: stage 0 starts from `python:3.12-slim`, the lock has `python:3.11-slim`
    hint: re-run `imagelock freeze tool/Dockerfile` to update `lockfiles/tool.lock`
    tool: coverage: 0 of 2 steps locked; not locked: line 1 `FROM python:3.12-slim` (the lock has no digest for `python:3.12-slim`), line 2 `pip install tinypkg==1.1` (not in the lock, which is stale)
    3 problems in 1 of 1 image
    ");

    // The hash edited by hand to match: the steps still tell.
    let mut forged = lock.clone();
    forged.image.input_hash = lock_for(&dockerfile).image.input_hash;
    forged
        .write(&tmp.path().join("lockfiles/tool.lock"))
        .unwrap();
    let (code, stdout, _) = run(&["--format", "json"]);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&stdout).unwrap();
    let kinds: Vec<&str> = v["images"][0]["stale"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["steps-changed", "base-changed"]);
    if reports::validators() {
        reports::assert_output_schema("verify-report", &stdout);
        // SARIF: each reason a result at the definition, without a line.
        let sarif = tmp.path().join("stale.sarif");
        let (code, _, err) = run(&["--output", &format!("sarif={}", sarif.display())]);
        assert_eq!(code, 1, "{err}");
        let sarif = reports::assert_sarif(&sarif);
        let results = sarif["runs"][0]["results"].as_array().unwrap();
        assert_eq!(results.len(), 2, "{sarif:#}");
        for r in results {
            assert_eq!(r["ruleId"], "stale");
            let place = &r["locations"][0]["physicalLocation"];
            assert_eq!(place["artifactLocation"]["uri"], "tool/Dockerfile");
        }
    }
}

fn filtered_hash(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("sha256:") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 7..];
        let n = after.chars().take_while(char::is_ascii_hexdigit).count();
        out.push_str("[hash]");
        rest = &after[n..];
    }
    out.push_str(rest);
    out
}

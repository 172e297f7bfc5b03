//! `imagelock export` describes the final image (issue 22): the SBOMs of
//! the example images' locks, validated with `check-jsonschema` against
//! the official CycloneDX 1.6 and SPDX 2.3 schemas vendored under
//! `tests/schemas/` (see its README).

use std::collections::BTreeSet;
use std::process::Command;

use imagelock::lock::{LockedImage, PypiPackage, PypiSource};
use serde_json::Value;

use crate::common::{self, imagelock, repo_root, run, tempdir};

fn export(args: &[&str]) -> String {
    let (code, out, err) = run(imagelock()
        .current_dir(repo_root())
        .env("SOURCE_DATE_EPOCH", "1767225600")
        .args(["--config", "fixtures/examples/imagelock.toml", "export"])
        .args(args));
    assert_eq!(code, 0, "{args:?}: {err}");
    out
}

/// Validates `json` with check-jsonschema against the vendored schema;
/// the CycloneDX schema's `$ref`s to its sibling schemas resolve offline.
fn assert_valid(json: &str, cyclonedx: bool) -> Value {
    let schemas = repo_root().join("tests/schemas");
    let dir = tempdir();
    let file = dir.path().join("sbom.json");
    std::fs::write(&file, json).unwrap();
    let mut cmd = Command::new("check-jsonschema");
    if cyclonedx {
        let schema = schemas.join("cyclonedx-1.6/bom-1.6.schema.json");
        cmd.arg("--schemafile")
            .arg(&schema)
            .arg("--base-uri")
            .arg(format!("file://{}", schema.display()));
    } else {
        cmd.arg("--schemafile")
            .arg(schemas.join("spdx-2.3-schema.json"));
    }
    let (code, out, err) = run(cmd.arg(&file));
    assert_eq!(code, 0, "{out}{err}\n{json}");
    serde_json::from_str(json).unwrap()
}

fn validators() -> bool {
    common::require_tool("check-jsonschema", "pip install check-jsonschema")
}

fn components<'a>(bom: &'a Value, name: &str) -> Vec<&'a Value> {
    bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == name)
        .collect()
}

/// Every `ref` and `dependsOn` of the dependency graph names a component
/// (or the image), and every component has an entry.
fn assert_graph(bom: &Value) {
    let root = bom["metadata"]["component"]["bom-ref"].as_str().unwrap();
    let mut refs: BTreeSet<&str> = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["bom-ref"].as_str().unwrap())
        .collect();
    assert_eq!(
        refs.len(),
        bom["components"].as_array().unwrap().len(),
        "bom-refs are unique"
    );
    refs.insert(root);
    let deps = bom["dependencies"].as_array().unwrap();
    let entries: BTreeSet<&str> = deps.iter().map(|d| d["ref"].as_str().unwrap()).collect();
    assert_eq!(entries, refs);
    for d in deps {
        for on in d["dependsOn"].as_array().unwrap() {
            assert!(refs.contains(on.as_str().unwrap()), "{on}");
        }
    }
}

/// The driver installs python-dateutil 4.0.0 and a later step replaces it
/// with 2.9.0.post0: the SBOMs list what the image has, once.
#[test]
fn sboms_list_what_the_last_step_left() {
    if !validators() {
        return;
    }
    let bom = assert_valid(&export(&["--to", "sbom", "driver"]), true);
    assert_eq!(bom["specVersion"], "1.6");
    let dateutil = components(&bom, "python-dateutil");
    assert_eq!(dateutil.len(), 1, "{dateutil:?}");
    assert_eq!(dateutil[0]["version"], "2.9.0.post0");
    assert_graph(&bom);
    // pip's required-by edges are in the graph: something depends on
    // python-dateutil, so the image does not list it at the top.
    let dref = dateutil[0]["bom-ref"].as_str().unwrap();
    let deps = bom["dependencies"].as_array().unwrap();
    assert!(
        deps.iter().any(|d| d["ref"] != "image:driver"
            && d["dependsOn"].as_array().unwrap().iter().any(|o| o == dref)),
        "{deps:?}"
    );

    let spdx = assert_valid(&export(&["--to", "spdx", "driver"]), false);
    assert_eq!(spdx["spdxVersion"], "SPDX-2.3");
    assert_eq!(spdx["creationInfo"]["created"], "2026-01-01T00:00:00Z");
    let dateutil: Vec<&Value> = spdx["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "python-dateutil")
        .collect();
    assert_eq!(dateutil.len(), 1);
    assert_eq!(dateutil[0]["versionInfo"], "2.9.0.post0");
}

/// scipy-ml-notebook builds FROM base-notebook of this repository: its SBOM
/// includes the packages it inherits, the parent's own base with its real
/// digest, and the parent named without a made-up image digest.
#[test]
fn a_child_sbom_includes_its_in_repo_parent() {
    if !validators() {
        return;
    }
    let bom = assert_valid(&export(&["--to", "sbom", "scipy-ml-notebook"]), true);
    assert_graph(&bom);
    let parent = LockedImage::read(&repo_root().join("lockfiles/base-notebook.lock")).unwrap();
    let child = LockedImage::read(&repo_root().join("lockfiles/scipy-ml-notebook.lock")).unwrap();
    let child_names: BTreeSet<String> = child
        .steps
        .iter()
        .flat_map(|s| s.pypi.iter().map(|p| p.name.to_string()))
        .collect();
    let inherited: Vec<String> = parent
        .steps
        .iter()
        .flat_map(|s| s.pypi.iter().map(|p| p.name.to_string()))
        .filter(|n| !child_names.contains(n))
        .collect();
    assert!(!inherited.is_empty());
    for name in &inherited {
        assert!(!components(&bom, name).is_empty(), "{name} is inherited");
    }
    let containers: Vec<&Value> = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["type"] == "container")
        .collect();
    let in_repo = containers
        .iter()
        .find(|c| c["bom-ref"] == "image:base-notebook")
        .expect("the parent is a component");
    assert!(in_repo["hashes"].is_null() && in_repo["version"].is_null());
    let fake = child.bases[0].digest.to_string();
    // The parent's lock digest is said to be one (a property), never given
    // as the digest or purl of an image.
    for c in bom["components"].as_array().unwrap() {
        assert_ne!(c["hashes"][0]["content"], &fake[7..], "{c}");
        assert!(
            !c["purl"].as_str().unwrap_or_default().contains(&fake[7..]),
            "{c}"
        );
        assert!(
            !c["version"]
                .as_str()
                .unwrap_or_default()
                .contains(&fake[7..]),
            "{c}"
        );
    }
    let real = parent.bases[0].digest.hex().to_string();
    assert!(
        containers
            .iter()
            .any(|c| c["hashes"][0]["content"] == real.as_str()),
        "{containers:?}"
    );
    assert_valid(&export(&["--to", "spdx", "scipy-ml-notebook"]), false);
}

/// VCS and path packages have valid purls (no `@?`) and the SBOMs stay
/// schema-valid.
#[test]
fn vcs_and_path_packages_have_valid_purls() {
    if !validators() {
        return;
    }
    let dir = tempdir();
    let mut lock = LockedImage::read(&repo_root().join("lockfiles/driver.lock")).unwrap();
    let template = lock
        .steps
        .iter()
        .find_map(|s| s.pypi.first())
        .unwrap()
        .clone();
    let vcs = PypiPackage {
        name: "tool".parse().unwrap(),
        version: None,
        requested: Some("tool @ git+https://example.org/tool.git@v1".into()),
        source: PypiSource::Vcs,
        file: None,
        url: "git+https://example.org/tool.git".parse().unwrap(),
        sha256: None,
        revision: Some("v1".parse().unwrap()),
        commit: None,
        required_by: Vec::new(),
        ..template.clone()
    };
    let path = PypiPackage {
        name: "local-pkg".parse().unwrap(),
        version: None,
        requested: Some("./src".into()),
        source: PypiSource::Path,
        file: None,
        url: "./src".parse().unwrap(),
        sha256: None,
        required_by: Vec::new(),
        ..template
    };
    lock.steps.last_mut().unwrap().pypi.extend([vcs, path]);
    let file = dir.path().join("x.lock");
    lock.write(&file).unwrap();
    let out = |to: &str| {
        let (code, out, err) = run(imagelock()
            .current_dir(dir.path())
            .args(["export", "--to", to])
            .arg(&file));
        assert_eq!(code, 0, "{err}");
        out
    };
    let bom = assert_valid(&out("sbom"), true);
    assert!(!bom.to_string().contains("@?"));
    let tool = components(&bom, "tool");
    assert_eq!(
        tool[0]["purl"],
        "pkg:pypi/tool?vcs_url=git%2Bhttps%3A%2F%2Fexample.org%2Ftool.git%40v1"
    );
    assert_eq!(
        components(&bom, "local-pkg")[0]["purl"],
        "pkg:pypi/local-pkg"
    );
    assert_graph(&bom);
    assert_valid(&out("spdx"), false);
}

/// The requirements export lists every locked file's hash of each release,
/// so the file for another locked platform passes `--require-hashes`.
#[test]
fn requirements_list_every_locked_hash() {
    let text = export(&[
        "--to",
        "requirements",
        "driver",
        "--platform",
        "linux/amd64",
    ]);
    let lock = LockedImage::read(&repo_root().join("lockfiles/driver.lock")).unwrap();
    // A package with a different wheel per platform.
    let (name, hashes) = lock
        .final_pypi("linux/arm64")
        .into_iter()
        .find_map(|p| {
            let hashes: BTreeSet<String> = lock
                .steps
                .iter()
                .flat_map(|s| &s.pypi)
                .filter(|q| q.name == p.name && q.version == p.version)
                .filter_map(|q| q.sha256.as_ref().map(ToString::to_string))
                .collect();
            (hashes.len() > 1).then(|| (p.name.to_string(), hashes))
        })
        .expect("a package with a wheel per platform");
    let block: String = text
        .split("\n")
        .skip_while(|l| !l.starts_with(&format!("{name}==")))
        .take_while(|l| l.starts_with(&format!("{name}==")) || l.starts_with("    --hash"))
        .collect::<Vec<_>>()
        .join("\n");
    for h in &hashes {
        assert!(block.contains(h.as_str()), "{name}: {h}\n{block}");
    }
}

/// conda-explicit: local channels' URLs are absolute (the lock keeps them
/// relative to the configuration); one file is one environment, so an
/// image with two asks which, and never merges them.
#[test]
fn conda_explicit_is_one_environment_with_absolute_urls() {
    let text = export(&["--to", "conda-explicit", "longqc"]);
    let world = repo_root().join("fixtures/world/conda");
    let world = world.canonicalize().unwrap();
    let urls: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with(['#', '@']))
        .collect();
    assert!(!urls.is_empty());
    for url in &urls {
        assert!(
            url.starts_with(&format!("file://{}/", world.display())),
            "{url}"
        );
        assert!(!url.contains("/../"), "{url}");
    }

    // A second environment (`-n qc`) in the same image.
    let dir = tempdir();
    let mut lock = LockedImage::read(&repo_root().join("lockfiles/longqc.lock")).unwrap();
    let mut second = lock
        .steps
        .iter()
        .find(|s| !s.conda.is_empty())
        .unwrap()
        .clone();
    second.target = Some("/opt/conda/envs/qc".into());
    second.conda.truncate(1);
    second.line += 1000;
    let only = second.conda[0].url.to_string();
    lock.steps.push(second);
    let file = dir.path().join("two.lock");
    lock.write(&file).unwrap();
    let export_env = |extra: &[&str]| {
        run(imagelock()
            .current_dir(dir.path())
            .args(["export", "--to", "conda-explicit"])
            .arg(&file)
            .args(extra))
    };
    let (code, _, err) = export_env(&[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(
            "has conda packages in several environments (`/opt/conda`, `/opt/conda/envs/qc`)"
        ) && err.contains("--env"),
        "{err}"
    );
    // Its URLs are relative and there is no configuration here to make
    // them absolute: said, not written relative.
    let (code, _, err) = export_env(&["--env", "qc"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("relative to its configuration"), "{err}");
    std::fs::write(
        dir.path().join("imagelock.toml"),
        format!(
            "lock-dir = \".\"\n[images.longqc]\nfile = \"{}\"\n",
            repo_root()
                .join("fixtures/examples/longqc/Dockerfile")
                .display()
        ),
    )
    .unwrap();
    let (code, out, err) = export_env(&["--env", "qc"]);
    assert_eq!(code, 0, "{err}");
    let urls: Vec<&str> = out.lines().filter(|l| !l.starts_with(['#', '@'])).collect();
    assert_eq!(urls.len(), 1, "{out}");
    assert!(urls[0].starts_with("file:///"), "{out}");
    assert!(urls[0].contains(&only[only.rfind('/').unwrap()..]), "{out}");
    assert!(out.contains("# environment: /opt/conda/envs/qc\n"), "{out}");
}

// The exports installed by their real consumers: pip and uv install the
// requirements and pylock exports for a platform other than the host's,
// py-rattler installs the conda-explicit export. The inputs are real and
// hermetic: a small project frozen against an index and a channel the test
// writes (genuine wheels and conda packages on the local disk), on the
// world's base images.

const CONDA_CONSUMER: &str = include_str!("export/conda_consumer.py");

/// A command without the host's pip and uv settings (find-links, index
/// URLs, configuration files), so only what the test gives is used.
fn clean(mut cmd: Command) -> Command {
    for (key, _) in std::env::vars() {
        if key.starts_with("PIP_") || key.starts_with("UV_") || key == "CONDARC" {
            cmd.env_remove(key);
        }
    }
    cmd.env("PIP_CONFIG_FILE", "/dev/null")
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("UV_NO_CONFIG", "1")
        .env("UV_PYTHON_DOWNLOADS", "never")
        .env("NO_COLOR", "1");
    cmd
}

/// Freezes the project in `dir` with the world's registries; returns its
/// lock.
fn freeze_project(dir: &std::path::Path) -> LockedImage {
    let mut cmd = clean(imagelock());
    cmd.current_dir(dir)
        .env("HOME", dir)
        .env("IMAGELOCK_CACHE_DIR", dir.join("cache"))
        .arg("freeze");
    let (code, out, err) = run(&mut cmd);
    assert_eq!(code, 0, "{out}{err}");
    LockedImage::read(&dir.join("lockfiles/app.lock")).unwrap()
}

fn export_project(dir: &std::path::Path, args: &[&str]) -> String {
    let mut cmd = clean(imagelock());
    cmd.current_dir(dir).args(["export", "app"]).args(args);
    let (code, out, err) = run(&mut cmd);
    assert_eq!(code, 0, "{args:?}: {err}");
    out
}

fn world_registry() -> String {
    format!(
        "[registries.\"docker.io\"]\nlocation = \"oci:{}\"\n",
        repo_root()
            .join("fixtures/world/images/docker.io")
            .display()
    )
}

fn sha256_file(path: &std::path::Path) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// A project on the world's `python:3.11-slim` (amd64 and arm64) that pip
/// installs `fastcalc` into: a compiled-style package with one stable-ABI
/// wheel per machine (`cp38-abi3`, as many packages ship), and its pure
/// dependency `helper`. The index is a local
/// directory the test writes, so the lock keeps its files relative to the
/// configuration. Returns the project directory and the index's files.
fn python_project(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let mut ix = common::pyindex::PyIndex::new(&dir.join("index"));
    ix.wheel("helper", "1.0", &[]);
    for arch in ["x86_64", "aarch64"] {
        let init = format!("ARCH = {arch:?}\n");
        ix.wheel_tagged(
            "fastcalc",
            "1.0",
            &["helper>=1"],
            &format!("cp38-abi3-manylinux_2_17_{arch}.manylinux2014_{arch}"),
            &[("fastcalc/__init__.py", init.as_bytes())],
        );
    }
    let project = dir.join("project");
    std::fs::create_dir_all(project.join("app")).unwrap();
    std::fs::write(
        project.join("app/Dockerfile"),
        "FROM python:3.11-slim\nRUN pip install --no-cache-dir fastcalc\n",
    )
    .unwrap();
    std::fs::write(
        project.join("imagelock.toml"),
        format!(
            "platforms = [\"linux/amd64\", \"linux/arm64\"]\n\n[images.app]\nfile = \"app/Dockerfile\"\n\n\
             [pypi]\nindex-url = \"../index/simple\"\n\n{}",
            world_registry()
        ),
    )
    .unwrap();
    (project, dir.join("index/files"))
}

/// What pip or uv installed into `target` for the machine `arch`: its
/// wheel of fastcalc and the pure helper, each at its locked version.
fn assert_install(target: &std::path::Path, arch: &str) {
    assert_eq!(
        std::fs::read_to_string(target.join("fastcalc/__init__.py")).unwrap(),
        format!("ARCH = {arch:?}\n")
    );
    let wheel = std::fs::read_to_string(target.join("fastcalc-1.0.dist-info/WHEEL")).unwrap();
    assert!(
        wheel.contains(&format!("Tag: cp38-abi3-manylinux2014_{arch}")),
        "{wheel}"
    );
    let metadata = std::fs::read_to_string(target.join("helper-1.0.dist-info/METADATA")).unwrap();
    assert!(metadata.contains("Version: 1.0"), "{metadata}");
    assert!(target.join("helper_mod.py").is_file());
}

/// The requirements export for linux/arm64 is installed by pip (`pip
/// install --platform … --require-hashes`) and by uv (`uv pip install
/// --python-platform …`) into a target directory, choosing the aarch64
/// wheel whatever the host is (CI runs on x86_64); the pylock.toml export
/// is installed by uv for linux/arm64, and by pip (26.1 and later, which
/// installs pylock.toml for the running interpreter only) for the host. A
/// tampered
/// hash makes each refuse and install nothing.
#[test]
fn requirements_and_pylock_are_installed_by_pip_and_uv_for_another_platform() {
    let pip_ok = common::require_tool("python3", "apt-get install -y python3 python3-pip")
        && clean(Command::new("python3"))
            .args(["-m", "pip", "--version"])
            .output()
            .is_ok_and(|o| o.status.success());
    assert!(
        pip_ok || std::env::var("CI").as_deref() != Ok("true"),
        "pip is required under CI"
    );
    if !pip_ok || !common::require_tool("uv", "pip install uv") {
        return;
    }
    let tmp = tempdir();
    let dir = tmp.path();
    let (project, files) = python_project(dir);
    let lock = freeze_project(&project);
    let fastcalc: Vec<&PypiPackage> = lock.steps[0]
        .pypi
        .iter()
        .filter(|p| p.name.as_str() == "fastcalc")
        .collect();
    assert_eq!(fastcalc.len(), 2, "one wheel per machine: {fastcalc:?}");
    let wheel_sha = |arch: &str| {
        sha256_file(&files.join(format!(
            "fastcalc-1.0-cp38-abi3-manylinux_2_17_{arch}.manylinux2014_{arch}.whl"
        )))
    };
    let arm_sha = wheel_sha("aarch64");

    let requirements = export_project(
        &project,
        &["--to", "requirements", "--platform", "linux/arm64"],
    );
    assert!(requirements.contains(&arm_sha), "{requirements}");
    std::fs::write(dir.join("requirements.txt"), &requirements).unwrap();
    std::fs::write(
        dir.join("tampered.txt"),
        requirements.replace(&arm_sha, &"0".repeat(64)),
    )
    .unwrap();
    let pip = |req: &str, target: &str| {
        let mut cmd = clean(Command::new("python3"));
        cmd.args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--platform",
            "manylinux2014_aarch64",
        ])
        .args([
            "--python-version",
            "3.11",
            "--implementation",
            "cp",
            "--abi",
            "cp311",
        ])
        .args(["--only-binary=:all:", "--no-index", "--find-links"])
        .arg(&files)
        .args(["--require-hashes", "--no-deps", "--target"])
        .arg(dir.join(target))
        .arg("-r")
        .arg(dir.join(req));
        run(&mut cmd)
    };
    let (code, out, err) = pip("requirements.txt", "pip-target");
    assert_eq!(code, 0, "{out}{err}");
    assert_install(&dir.join("pip-target"), "aarch64");
    let (code, _, err) = pip("tampered.txt", "pip-tampered");
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("DO NOT MATCH THE HASHES"), "{err}");
    assert!(!dir.join("pip-tampered/fastcalc").exists());

    let uv = |req: &str, target: &str, find_links: bool| {
        let mut cmd = clean(Command::new("uv"));
        cmd.args([
            "pip",
            "install",
            "--quiet",
            "--python-platform",
            "aarch64-manylinux_2_17",
        ])
        .args(["--python-version", "3.11", "--no-index"])
        .arg("--cache-dir")
        .arg(dir.join("uv-cache"))
        .arg("--target")
        .arg(dir.join(target));
        if find_links {
            cmd.arg("--find-links")
                .arg(&files)
                .args(["--require-hashes", "--no-deps"]);
        }
        cmd.arg("-r").arg(dir.join(req));
        run(&mut cmd)
    };
    let (code, out, err) = uv("requirements.txt", "uv-target", true);
    assert_eq!(code, 0, "{out}{err}");
    assert_install(&dir.join("uv-target"), "aarch64");
    let (code, _, err) = uv("tampered.txt", "uv-tampered", true);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("Hash mismatch"), "{err}");
    assert!(!dir.join("uv-tampered/fastcalc").exists());

    // pylock.toml: every locked platform, files of the local index by
    // absolute URL; uv picks the aarch64 wheel from it.
    let pylock = export_project(&project, &["--to", "pylock"]);
    let index = dir.join("index/files").canonicalize().unwrap();
    assert!(
        pylock.contains(&format!("url = \"file://{}/", index.display())),
        "{pylock}"
    );
    assert!(!pylock.contains("url = \"../"), "{pylock}");
    // Without the configuration the lock's relative URLs cannot be made
    // absolute: said, never written relative.
    let mut cmd = clean(imagelock());
    cmd.current_dir(dir)
        .args(["export", "--to", "pylock"])
        .arg(project.join("lockfiles/app.lock"));
    let (code, _, err) = run(&mut cmd);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("relative to its configuration"), "{err}");
    std::fs::write(dir.join("pylock.toml"), &pylock).unwrap();
    let (code, out, err) = uv("pylock.toml", "pylock-target", false);
    assert_eq!(code, 0, "{out}{err}\n{pylock}");
    assert_install(&dir.join("pylock-target"), "aarch64");
    std::fs::create_dir_all(dir.join("tampered")).unwrap();
    std::fs::write(
        dir.join("tampered/pylock.toml"),
        pylock.replace(&arm_sha, &"0".repeat(64)),
    )
    .unwrap();
    let (code, _, err) = uv("tampered/pylock.toml", "pylock-tampered", false);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("Hash mismatch"), "{err}");
    assert!(!dir.join("pylock-tampered/fastcalc").exists());

    // pip reads pylock.toml since 26.1 (`-r pylock.toml`, experimental),
    // for the running interpreter only (it refuses `--platform` with it):
    // the host's wheel, from the same file.
    let host = std::env::consts::ARCH;
    if ["x86_64", "aarch64"].contains(&host) && pip_reads_pylock() {
        let pip_pylock = |file: &str, target: &str| {
            let mut cmd = clean(Command::new("python3"));
            cmd.args(["-m", "pip", "install", "--quiet", "--only-binary=:all:"])
                .args(["--no-index", "--no-deps", "--target"])
                .arg(dir.join(target))
                .arg("-r")
                .arg(dir.join(file));
            run(&mut cmd)
        };
        let (code, out, err) = pip_pylock("pylock.toml", "pip-pylock-target");
        assert_eq!(code, 0, "{out}{err}\n{pylock}");
        assert_install(&dir.join("pip-pylock-target"), host);
        std::fs::write(
            dir.join("tampered/pylock.host.toml"),
            pylock.replace(&wheel_sha(host), &"0".repeat(64)),
        )
        .unwrap();
        let (code, _, err) = pip_pylock("tampered/pylock.host.toml", "pip-pylock-tampered");
        assert_ne!(code, 0, "{err}");
        assert!(err.contains("DO NOT MATCH THE HASHES"), "{err}");
        assert!(!dir.join("pip-pylock-tampered/fastcalc").exists());
    }
}

/// Whether the host's pip installs from pylock.toml (26.1 and later);
/// required under CI, where `.ci/test` installs it.
fn pip_reads_pylock() -> bool {
    let out = clean(Command::new("python3"))
        .args(["-m", "pip", "--version"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let version: Vec<u32> = text
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .split('.')
        .map_while(|p| p.parse().ok())
        .collect();
    let ok = version >= vec![26, 1];
    assert!(
        ok || std::env::var("CI").as_deref() != Ok("true"),
        "pip 26.1 or later is required under CI (it reads pylock.toml): {text}"
    );
    if !ok {
        eprintln!("skipping pip's pylock.toml install: {text} is older than 26.1");
    }
    ok
}

/// The conda-explicit export of a project that `mamba install`s from a
/// local channel of genuine packages, on the world's miniforge3 base, is
/// installed into an empty prefix by py-rattler: the packages' files and
/// conda-meta records are there at the locked versions. A tampered hash
/// installs nothing.
#[test]
fn conda_explicit_is_installed_by_py_rattler() {
    if !crate::freeze::conda_e2e::rattler_available() {
        return;
    }
    let tmp = tempdir();
    let dir = tmp.path();
    std::fs::write(dir.join("conda_consumer.py"), CONDA_CONSUMER).unwrap();
    let helper = |args: &[&std::ffi::OsStr]| {
        let mut cmd = clean(Command::new("python3"));
        cmd.arg(dir.join("conda_consumer.py"))
            .args(args)
            .current_dir(dir);
        run(&mut cmd)
    };
    let project = dir.join("project");
    let chan = project.join("channels/lab");
    let (code, out, err) = helper(&["channel".as_ref(), chan.as_os_str()]);
    assert_eq!(code, 0, "{out}{err}");
    std::fs::create_dir_all(project.join("app")).unwrap();
    std::fs::write(
        project.join("app/Dockerfile"),
        "FROM condaforge/miniforge3:24.3.0-0\nRUN mamba install -y -c lab tinyapp\n",
    )
    .unwrap();
    std::fs::write(
        project.join("imagelock.toml"),
        format!(
            "platforms = [\"linux/amd64\"]\n\n[images.app]\nfile = \"app/Dockerfile\"\n\n\
             [conda]\nchannels = [\"conda-forge\"]\n\
             custom-channels = {{ conda-forge = \"{}\", lab = \"./channels\" }}\n\n{}",
            repo_root().join("fixtures/world/conda").display(),
            world_registry()
        ),
    )
    .unwrap();
    let lock = freeze_project(&project);
    let conda: Vec<(&str, &str)> = lock.steps[0]
        .conda
        .iter()
        .map(|p| (p.name.as_str(), p.version.as_str()))
        .collect();
    assert_eq!(conda, [("tinyapp", "2.1"), ("tinylib", "1.0")]);

    let explicit = export_project(&project, &["--to", "conda-explicit"]);
    let chan = chan.canonicalize().unwrap();
    assert!(
        explicit.contains(&format!(
            "\nfile://{}/linux-64/tinyapp-2.1-h0_0.tar.bz2#",
            chan.display()
        )),
        "{explicit}"
    );
    std::fs::write(dir.join("explicit.txt"), &explicit).unwrap();
    let install = |file: &str, prefix: &str| {
        helper(&[
            "install-explicit".as_ref(),
            dir.join(file).as_os_str(),
            dir.join(prefix).as_os_str(),
            dir.join("pkgs").as_os_str(),
        ])
    };
    let (code, out, err) = install("explicit.txt", "prefix");
    assert_eq!(code, 0, "{out}{err}\n{explicit}");
    assert_eq!(out.trim(), "2", "{out}");
    let prefix = dir.join("prefix");
    assert_eq!(
        std::fs::read_to_string(prefix.join("share/tinyapp/VERSION")).unwrap(),
        "2.1\n"
    );
    assert_eq!(
        std::fs::read_to_string(prefix.join("share/tinylib/VERSION")).unwrap(),
        "1.0\n"
    );
    for (record, version) in [("tinyapp-2.1-h0_0", "2.1"), ("tinylib-1.0-h0_0", "1.0")] {
        let meta: Value = serde_json::from_str(
            &std::fs::read_to_string(prefix.join(format!("conda-meta/{record}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(meta["version"], version, "{meta}");
    }

    let md5 = lock.steps[0].conda[0].md5.as_ref().unwrap().to_string();
    std::fs::write(
        dir.join("tampered.txt"),
        explicit.replace(&md5, &"0".repeat(32)),
    )
    .unwrap();
    let (code, _, err) = install("tampered.txt", "tampered-prefix");
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("hash mismatch"), "{err}");
    assert!(!dir.join("tampered-prefix/share/tinyapp").exists());
}

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

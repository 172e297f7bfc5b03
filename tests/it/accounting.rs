//! verify accounts for every Python distribution and conda record above the
//! base, whoever installed it: hand-made layers in an OCI layout, read by
//! `imagelock verify --image` against a lock that pins none of them.

use std::collections::BTreeMap;
use std::path::Path;

use imagelock::lock::{
    ImageMeta, LOCK_VERSION, LockedBase, LockedImage, LockedPlatformImage, LockedStage,
};
use imagelock::source::inputs::load_inputs;
use imagelock::source::load::load_definition;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::common;

const SITE: &str = "usr/local/lib/python3.11/site-packages";

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn tar_of(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, path, data.as_slice()).unwrap();
    }
    b.into_inner().unwrap()
}

fn blob(dir: &Path, bytes: &[u8]) -> String {
    let d = sha(bytes);
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("blobs/sha256").join(&d[7..]), bytes).unwrap();
    d
}

/// Writes an image of plain tar `layers` into the layout `dir`; returns its
/// index entry (tagged `tag`), manifest digest, config digest and diff_ids.
fn image(
    dir: &Path,
    layers: &[Vec<u8>],
    tag: &str,
) -> (serde_json::Value, String, String, Vec<String>) {
    let diff_ids: Vec<String> = layers.iter().map(|l| sha(l)).collect();
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/local/bin:/usr/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let config_digest = blob(dir, &config);
    let descs: Vec<_> = layers
        .iter()
        .map(|l| json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": blob(dir, l), "size": l.len()}))
        .collect();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": descs,
    }))
    .unwrap();
    let digest = blob(dir, &manifest);
    let entry = json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest, "size": manifest.len(),
        "annotations": {"org.opencontainers.image.ref.name": tag},
    });
    (entry, digest, config_digest, diff_ids)
}

fn dist(name: &str, version: &str, installer: Option<&str>) -> Vec<(String, Vec<u8>)> {
    let dir = format!("{SITE}/{name}-{version}.dist-info");
    let mut files = vec![(
        format!("{dir}/METADATA"),
        format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n").into_bytes(),
    )];
    if let Some(i) = installer {
        files.push((format!("{dir}/INSTALLER"), format!("{i}\n").into_bytes()));
    }
    files
}

/// Regression: only pip-installed distributions were reported as not in
/// the lock, and uv's were labelled pip's.
#[test]
fn every_distribution_and_conda_record_above_the_base_is_reported() {
    let w = common::tempdir();
    let layout = w.path().join("layout");
    let conda_record = |name: &str| {
        serde_json::to_vec(&json!({
            "name": name, "version": "1.0", "build": "h0_0", "build_number": 0,
            "channel": "https://conda.anaconda.org/conda-forge", "subdir": "linux-64",
            "files": [],
        }))
        .unwrap()
    };
    let mut base_files: Vec<(String, Vec<u8>)> = vec![(
        "etc/os-release".into(),
        b"ID=debian\nVERSION_ID=\"12\"\n".to_vec(),
    )];
    base_files.extend(dist("basepkg", "1.0", Some("pip")));
    base_files.push((
        "opt/conda/conda-meta/baseconda-1.0-h0_0.json".into(),
        conda_record("baseconda"),
    ));
    let mut app_files: Vec<(String, Vec<u8>)> = Vec::new();
    for (name, installer) in [
        ("pippkg", Some("pip")),
        ("uvpkg", Some("uv")),
        ("poetrypkg", Some("Poetry 1.8.3")),
        ("setuppkg", Some("setuptools")),
        ("barepkg", None),
    ] {
        app_files.extend(dist(name, "2.0", installer));
    }
    app_files.push((
        format!("{SITE}/eggdir-0.3-py3.11.egg-info/PKG-INFO"),
        b"Metadata-Version: 1.0\nName: eggdir\nVersion: 0.3\n".to_vec(),
    ));
    app_files.push((
        format!("{SITE}/eggfile-0.4.egg-info"),
        b"Metadata-Version: 1.0\nName: eggfile\nVersion: 0.4\n".to_vec(),
    ));
    app_files.push((
        "opt/conda/conda-meta/extraconda-1.0-h0_0.json".into(),
        conda_record("extraconda"),
    ));
    let base_layer = tar_of(&base_files);
    let app_layer = tar_of(&app_files);
    let (base_entry, base_digest, base_config, base_diff_ids) =
        image(&layout, std::slice::from_ref(&base_layer), "base");
    let (app_entry, ..) = image(&layout, &[base_layer, app_layer], "app");
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [base_entry, app_entry]}))
            .unwrap(),
    )
    .unwrap();

    // A lock of the base alone: nothing above it is pinned.
    let dockerfile = w.path().join("app/Dockerfile");
    std::fs::create_dir_all(dockerfile.parent().unwrap()).unwrap();
    std::fs::write(&dockerfile, "FROM localhost/acct-base:1\nRUN echo built\n").unwrap();
    let definition = load_definition(&dockerfile, &BTreeMap::new()).unwrap();
    let text = std::fs::read_to_string(&dockerfile).unwrap();
    let inputs = load_inputs(&definition, &text, &w.path().join("app"), &BTreeMap::new()).unwrap();
    let base_name = "localhost/acct-base:1";
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
            base: base_name.parse().unwrap(),
            base_name: Some(base_name.parse().unwrap()),
            downloads: Vec::new(),
        }],
        bases: vec![LockedBase {
            name: base_name.parse().unwrap(),
            references: vec![base_name.parse().unwrap()],
            digest: base_digest.parse().unwrap(),
            media_type: "application/vnd.oci.image.manifest.v1+json"
                .parse()
                .unwrap(),
            built_from: None,
            agent: None,
            pinned: None,
            platforms: vec![LockedPlatformImage {
                platform: "linux/amd64".parse().unwrap(),
                digest: base_digest.parse().unwrap(),
                config: base_config.parse().unwrap(),
                diff_ids: base_diff_ids.iter().map(|d| d.parse().unwrap()).collect(),
            }],
        }],
        steps: vec![],
    };
    lock.normalize();
    lock.write(&w.path().join("lockfiles/app.lock")).unwrap();

    let (code, out, err) = common::run(
        common::imagelock()
            .current_dir(w.path())
            .args(["verify", "--image"])
            .arg(format!("oci:{}:app", layout.display()))
            .arg("app/Dockerfile"),
    );
    assert_eq!(code, 1, "{out}{err}");
    let site = format!("/{SITE}");
    for (name, version, by) in [
        ("pippkg", "2.0", "installed by pip"),
        ("uvpkg", "2.0", "installed by uv"),
        ("poetrypkg", "2.0", "installed by Poetry 1.8.3"),
        ("setuppkg", "2.0", "installed by setuptools"),
        (
            "barepkg",
            "2.0",
            "no INSTALLER: installed by an unknown tool",
        ),
        (
            "eggdir",
            "0.3",
            "an egg-info install (setup.py install or easy_install)",
        ),
        (
            "eggfile",
            "0.4",
            "an egg-info install (setup.py install or easy_install)",
        ),
    ] {
        let want = format!(
            "{name}: not in the lock nor in the base, image has {version} in {site} ({by})"
        );
        assert!(out.contains(&want), "{want}\n{out}");
    }
    assert!(
        out.contains("extraconda: not in the lock nor in the base")
            && out.contains("(installed by conda)"),
        "{out}"
    );
    assert!(
        !out.contains("basepkg") && !out.contains("baseconda"),
        "{out}"
    );
    assert!(out.contains("8 problems"), "{out}");
}

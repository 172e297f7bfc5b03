//! SIF images: the reference implementation's own files (`fixtures/sif/`)
//! read as `siftool` shows them; malformed files refused with clear errors;
//! and `verify --image sif:…` end to end on a root filesystem packed with
//! Debian's `mksquashfs` into a SIF written here to the format.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;
use std::process::Command;

use imagelock::image::sif::{
    DataType, Extra, FsType, HashType, Link, ParseSifError, PartType, SifError, SifFile,
};
use imagelock::image::{Platform, ReadOptions, SifImage};
use imagelock::lock::{
    CondaPackage, ImageMeta, LOCK_VERSION, LockedBase, LockedImage, LockedPlatformImage,
    LockedStage, LockedStep, PypiPackage,
};
use imagelock::source::inputs::load_inputs;
use imagelock::source::load::load_definition;
use proptest::prelude::*;
use sha2::{Digest as _, Sha256};

use crate::common;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(common::fixture(&format!("sif/{name}"))).unwrap()
}

fn open(name: &str) -> SifFile<Cursor<Vec<u8>>> {
    SifFile::read(Cursor::new(fixture(name))).unwrap()
}

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// `siftool list`'s columns: ID, group, link, start-end, type.
fn list(f: &SifFile<Cursor<Vec<u8>>>) -> Vec<String> {
    f.objects()
        .iter()
        .map(|d| {
            let kind = match &d.extra {
                Extra::Partition { fs, part, arch } => {
                    format!("FS ({fs}/{part}/{})", arch.unwrap_or("unknown"))
                }
                Extra::Signature { hash, .. } => format!("Signature ({hash})"),
                Extra::Sbom { format } => format!("SBOM ({format})"),
                _ => d.data_type.to_string(),
            };
            format!(
                "{}|{}|{}|{}-{}|{kind}",
                d.id,
                d.group.map_or("NONE".into(), |g| g.to_string()),
                d.link.map_or("NONE".into(), |l| l.to_string()),
                d.offset,
                d.offset + d.size
            )
        })
        .collect()
}

// The expected values are those of the reference implementation's
// `siftool header`/`list`/`info` golden files for these images.

#[test]
fn empty_sif_header() {
    let f = open("empty.sif");
    let h = f.header();
    assert_eq!(h.version, "01");
    assert_eq!(h.arch, None);
    assert_eq!(h.descriptors_free, 48);
    assert_eq!(h.descriptors_total, 48);
    assert_eq!(h.descriptors_offset, 4096);
    assert_eq!(h.descriptors_size, 48 * 585);
    assert_eq!(h.data_offset, 32176);
    assert_eq!(h.data_size, 0);
    assert!(f.is_empty());
    assert_eq!(f.len(), 32176);
}

#[test]
fn one_group_partitions() {
    let f = open("one-group.sif");
    let h = f.header();
    assert_eq!(h.arch, Some("386"));
    assert_eq!(h.descriptors_free, 46);
    assert_eq!(h.data_offset, 32176);
    assert_eq!(
        list(&f),
        [
            "1|1|NONE|32768-32772|FS (Raw/System/386)",
            "2|1|NONE|36864-40960|FS (Squashfs/*System/386)",
        ]
    );
    let primary = f.primary_partition().unwrap();
    assert_eq!(primary.id, 2);
    assert_eq!(
        primary.extra,
        Extra::Partition {
            fs: FsType::Squashfs,
            part: PartType::PrimarySystem,
            arch: Some("386")
        }
    );
    assert_eq!(f.group(1).count(), 2);
}

#[test]
fn two_groups_with_an_ext3_partition() {
    let f = open("two-groups.sif");
    assert_eq!(f.header().descriptors_free, 45);
    assert_eq!(
        list(&f),
        [
            "1|1|NONE|32768-32772|FS (Raw/System/386)",
            "2|1|NONE|36864-40960|FS (Squashfs/*System/386)",
            "3|2|NONE|40960-303104|FS (Ext3/System/amd64)",
        ]
    );
    assert_eq!(f.group(2).map(|d| d.id).collect::<Vec<_>>(), [3]);
}

#[test]
fn signed_sif_names_its_key() {
    let mut f = open("one-group-signed-pgp.sif");
    assert_eq!(f.header().descriptors_free, 45);
    assert_eq!(list(&f)[2], "3|NONE|1 (G)|40960-42008|Signature (SHA-256)");
    let sig = f.of_type(DataType::Signature).next().unwrap().clone();
    assert_eq!(sig.link, Some(Link::Group(1)));
    assert_eq!(
        sig.extra,
        Extra::Signature {
            hash: HashType::Sha256,
            fingerprint: Some("12045C8C0B1004D058DE4BEDA20C27EE7FF7BA84".into())
        }
    );
    // The signed message lists each object's sha256, as the signer computed
    // it: the one-pass digests must agree.
    let text = String::from_utf8(f.read_object(&sig, 1 << 20).unwrap()).unwrap();
    assert!(text.starts_with("-----BEGIN PGP SIGNED MESSAGE-----"));
    let (whole, objects) = f.digests().unwrap();
    assert_eq!(whole.to_string(), sha(&fixture("one-group-signed-pgp.sif")));
    for (id, digest) in objects.iter().filter(|(id, _)| *id <= 2) {
        assert!(
            text.contains(&format!("\"objectDigest\":\"{digest}\"")),
            "object {id}: {digest} not in the signed message"
        );
    }
}

#[test]
fn oci_blobs_carry_their_digest() {
    for (name, t, range, digest) in [
        (
            "one-object-oci-blob.sif",
            DataType::OciBlob,
            "1|1|NONE|32176-33023|OCI.Blob",
            "sha256:a88b15e95042f7d5a1327c03c57e10bdc1cf5f5efc2968fc73c12b6f5b00c731",
        ),
        (
            "one-object-oci-root-index.sif",
            DataType::OciRootIndex,
            "1|1|NONE|32176-32882|OCI.RootIndex",
            "sha256:2dc692f0dcaf7e3cb30db2d5d61004e4319f13db84331b65f066481c0f94cffb",
        ),
    ] {
        let mut f = open(name);
        assert_eq!(list(&f), [range], "{name}");
        let d = f.of_type(t).next().unwrap().clone();
        assert_eq!(
            d.extra,
            Extra::Oci {
                digest: digest.parse().unwrap()
            }
        );
        let data = f.read_object(&d, 1 << 20).unwrap();
        assert_eq!(
            sha(&data),
            digest,
            "{name}: the data is what the digest says"
        );
        let (_, objects) = f.digests().unwrap();
        assert_eq!(objects[0].1.to_string(), digest);
    }
}

#[test]
fn sbom_object() {
    let mut f = open("one-object-sbom.sif");
    assert_eq!(list(&f), ["1|1|NONE|32176-32630|SBOM (cyclonedx-json)"]);
    let d = f.objects()[0].clone();
    let sbom: serde_json::Value =
        serde_json::from_slice(&f.read_object(&d, 1 << 20).unwrap()).unwrap();
    assert_eq!(sbom["bomFormat"], "CycloneDX");
}

/// The primary partition of `one-group.sif` is a real squashfs (the
/// reference implementation's `root.squashfs`, one file `hello.txt`).
#[test]
fn reads_the_squashfs_of_a_reference_sif() {
    let tmp = common::tempdir();
    let path = tmp.path().join("one-group.sif");
    std::fs::write(&path, fixture("one-group.sif")).unwrap();
    let mut image = SifImage::open("sif:one-group.sif", &path).unwrap();
    let platform = Platform::new("linux", "386", None);
    let (catalogue, summary) = image
        .read_catalogue(&platform, &ReadOptions::default())
        .unwrap();
    assert_eq!(catalogue.layers.len(), 1);
    assert_eq!(catalogue.layers[0].files, 1);
    assert_eq!(catalogue.image.config.architecture, "386");
    assert_eq!(
        catalogue.image.config_digest.to_string(),
        "sha256:9f9c4e5e131934969b4ac8f495691c70b8c6c8e3f489c2c9ab5f1af82bce0604"
    );
    assert_eq!(summary.kind, "native");
    assert_eq!(summary.sha256.to_string(), sha(&fixture("one-group.sif")));
    assert!(summary.signatures.is_empty());
    assert!(summary.definition.is_none());
}

#[test]
fn sifs_without_a_readable_root_say_why() {
    let tmp = common::tempdir();
    for (name, want) in [
        ("empty.sif", "it has no root filesystem"),
        ("one-object-sbom.sif", "it has no root filesystem"),
    ] {
        let path = tmp.path().join(name);
        std::fs::write(&path, fixture(name)).unwrap();
        let err = SifImage::open(name, &path)
            .unwrap()
            .read_catalogue(&Platform::linux_amd64(), &ReadOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{name}: {err}");
        assert!(err.contains("hint:"), "{name}: {err}");
    }
    // Only the primary partition is the root; make the ext3 one primary.
    let mut bytes = fixture("two-groups.sif");
    let slot = 4096 + 2 * 585 + 201 + 4;
    bytes[slot..slot + 4].copy_from_slice(&2i32.to_le_bytes());
    let slot = 4096 + 585 + 201 + 4;
    bytes[slot..slot + 4].copy_from_slice(&1i32.to_le_bytes());
    let path = tmp.path().join("ext3.sif");
    std::fs::write(&path, bytes).unwrap();
    let err = SifImage::open("ext3.sif", &path)
        .unwrap()
        .read_catalogue(&Platform::linux_amd64(), &ReadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("is Ext3, which imagelock cannot read"),
        "{err}"
    );
    assert!(err.contains("hint: ext3 images"), "{err}");
}

fn parse_err(bytes: Vec<u8>) -> SifError {
    SifFile::read(Cursor::new(bytes)).unwrap_err()
}

fn put_i64(bytes: &mut [u8], at: usize, v: i64) {
    bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn truncated_sifs_are_refused() {
    let full = fixture("one-group.sif");
    // Inside the header, inside the descriptor table, inside an object.
    for (len, want) in [
        (0, "fewer than the 128 bytes of a SIF header"),
        (100, "fewer than the 128 bytes of a SIF header"),
        (5000, "runs past the end of the 5000-byte file"),
        (38000, "runs past the end of the 38000-byte file"),
    ] {
        let err = parse_err(full[..len].to_vec()).to_string();
        assert!(err.contains(want), "{len}: {err}");
    }
    assert!(matches!(
        parse_err(b"#!/bin/sh\n".repeat(20)),
        SifError::Format(ParseSifError::NotSif)
    ));
}

#[test]
fn overlapping_descriptors_are_refused() {
    let mut bytes = fixture("one-group.sif");
    // Object 2 starts inside object 1.
    put_i64(&mut bytes, 4096 + 585 + 17, 32770);
    let err = parse_err(bytes).to_string();
    assert_eq!(
        err,
        "object 1 and object 2 overlap (bytes 32768..32772 and 32770..36866)"
    );
    // Object 1 inside the descriptor table.
    let mut bytes = fixture("one-group.sif");
    put_i64(&mut bytes, 4096 + 17, 5000);
    let err = parse_err(bytes).to_string();
    assert!(
        err.starts_with("the descriptor table and object 1 overlap"),
        "{err}"
    );
    // Two objects with one ID.
    let mut bytes = fixture("one-group.sif");
    bytes[4096 + 585 + 5..4096 + 585 + 9].copy_from_slice(&1u32.to_le_bytes());
    let err = parse_err(bytes).to_string();
    assert!(err.contains("two descriptors have object ID 1"), "{err}");
}

#[test]
fn huge_counts_and_offsets_are_refused_before_allocating() {
    let base = fixture("one-group.sif");
    let cases: [(usize, i64, &str); 6] = [
        // Counts whose table would be terabytes: refused from the header.
        (
            88,
            i64::MAX,
            "does not fit the 28080 bytes of the descriptor table",
        ),
        (
            88,
            1 << 40,
            "does not fit the 28080 bytes of the descriptor table",
        ),
        (80, 1 << 20, "is more than the 48 descriptors in total"),
        (96, 1 << 50, "runs past the end of the 40960-byte file"),
        (104, -1, "`descriptors size` is `-1`, which is negative"),
        (96, 8, "points into the header"),
    ];
    for (at, v, want) in cases {
        let mut bytes = base.clone();
        put_i64(&mut bytes, at, v);
        let err = parse_err(bytes).to_string().replace("the header's ", "");
        assert!(
            err.contains(want) || err.contains(&want.replace('`', "")),
            "{at}={v}: {err}"
        );
    }
    // A count that fits its (claimed) table but not the cap.
    let mut bytes = base.clone();
    put_i64(&mut bytes, 88, 1 << 20);
    put_i64(&mut bytes, 104, (1 << 20) * 585);
    let err = parse_err(bytes);
    assert!(
        matches!(
            err,
            SifError::Format(ParseSifError::Header { .. }) | SifError::TooManyDescriptors { .. }
        ),
        "{err}"
    );
    // An object past the end of the file.
    let mut bytes = base.clone();
    put_i64(&mut bytes, 4096 + 585 + 25, 1 << 60);
    let err = parse_err(bytes).to_string();
    assert!(
        err.starts_with("descriptor 1 (at byte 4681): object 2 (bytes 36864..+1152921504606846976) runs past the end"),
        "{err}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    /// Any corruption of a real SIF's header and table is an error or a
    /// valid read, never a panic.
    #[test]
    fn corrupted_sifs_never_panic(edits in prop::collection::vec((0usize..6000, any::<u8>()), 1..16)) {
        let mut bytes = fixture("one-group-signed-pgp.sif");
        for (at, b) in edits {
            bytes[at] = b;
        }
        if let Ok(mut f) = SifFile::read(Cursor::new(bytes)) {
            let _ = f.digests();
            for d in f.objects().to_vec() {
                let _ = f.read_object(&d, 1 << 20);
            }
        }
    }
}

/// A SIF written to the format: header, a descriptor table of 48 slots, a
/// definition object and the primary system partition (amd64), each at a
/// 4 KiB boundary, as `apptainer build` lays them out.
pub(crate) fn write_sif(path: &Path, definition: &[u8], squashfs: &[u8]) {
    let mut part_extra = Vec::new();
    part_extra.extend_from_slice(&1i32.to_le_bytes()); // squashfs
    part_extra.extend_from_slice(&2i32.to_le_bytes()); // primary system
    part_extra.extend_from_slice(b"02\0"); // amd64
    write_sif_objects(
        path,
        &[
            (0x4001, definition, Vec::new()),
            (0x4004, squashfs, part_extra),
        ],
    );
}

/// A SIF of `objects` (data type, data, descriptor `extra`), all in
/// group 1, with IDs from 1.
fn write_sif_objects(path: &Path, objects: &[(i32, &[u8], Vec<u8>)]) {
    const SLOTS: u64 = 48;
    let align = |n: u64| n.div_ceil(4096) * 4096;
    let table_end = 4096 + SLOTS * 585;
    let data_start = align(table_end);
    let mut at = data_start;
    let mut placed = Vec::new();
    for (_, data, _) in objects {
        placed.push(at);
        at = align(at + data.len() as u64);
    }
    let end = placed
        .last()
        .zip(objects.last())
        .map_or(data_start, |(p, o)| p + o.1.len() as u64);
    let mut out = vec![0u8; usize::try_from(end).unwrap()];
    let launch = b"#!/usr/bin/env run-singularity\n";
    out[..launch.len()].copy_from_slice(launch);
    out[32..42].copy_from_slice(b"SIF_MAGIC\0");
    out[42..45].copy_from_slice(b"01\0");
    out[45..48].copy_from_slice(b"02\0");
    out[48..64].copy_from_slice(&[0x5a; 16]);
    let fields: [u64; 8] = [
        1_700_000_000,
        1_700_000_000,
        SLOTS - objects.len() as u64,
        SLOTS,
        4096,
        SLOTS * 585,
        data_start,
        end - data_start,
    ];
    for (i, v) in fields.iter().enumerate() {
        out[64 + i * 8..72 + i * 8].copy_from_slice(&v.to_le_bytes());
    }
    for (slot, ((data_type, data, extra), offset)) in objects.iter().zip(&placed).enumerate() {
        let d = &mut out[4096 + slot * 585..4096 + (slot + 1) * 585];
        d[0..4].copy_from_slice(&data_type.to_le_bytes());
        d[4] = 1;
        d[5..9].copy_from_slice(&u32::try_from(slot + 1).unwrap().to_le_bytes());
        d[9..13].copy_from_slice(&(0xf000_0000u32 | 1).to_le_bytes());
        d[17..25].copy_from_slice(&offset.to_le_bytes());
        d[25..33].copy_from_slice(&(data.len() as u64).to_le_bytes());
        d[33..41].copy_from_slice(&(data.len() as u64).to_le_bytes());
        d[201..201 + extra.len()].copy_from_slice(extra);
        let offset = usize::try_from(*offset).unwrap();
        out[offset..offset + data.len()].copy_from_slice(data);
    }
    std::fs::write(path, out).unwrap();
}

/// An OCI-SIF as Apptainer's `--oci` mode writes it: the root index, and
/// the manifest, config and squashfs layer as OCI blobs named by digest.
fn write_oci_sif(path: &Path, squashfs: &[u8]) {
    let layer = sha(squashfs);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [layer]},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha(&config),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.sylabs.image.layer.v1.squashfs",
            "digest": layer,
            "size": squashfs.len(),
        }],
    }))
    .unwrap();
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha(&manifest),
            "size": manifest.len(),
        }],
    }))
    .unwrap();
    let named = |b: &[u8]| sha(b).into_bytes();
    write_sif_objects(
        path,
        &[
            (0x400a, &index, named(&index)),
            (0x400b, &manifest, named(&manifest)),
            (0x400b, &config, named(&config)),
            (0x400b, squashfs, named(squashfs)),
        ],
    );
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

const SITE: &str = "usr/local/lib/python3.11/site-packages";
const TINYCONDA: &str = r#"{"name": "tinyconda", "version": "1.0", "build": "h0_0", "build_number": 0, "channel": "https://conda.example/chan", "subdir": "linux-64", "url": "https://conda.example/chan/linux-64/tinyconda-1.0-h0_0.conda", "sha256": "5f1a2ee3d1ac4b5ec4e6fe10c8a8a7d2d6f81a97b0bb45c0d5a4c0e1f2a3b4c5", "md5": "0123456789abcdef0123456789abcdef", "size": 1234, "depends": [], "files": ["share/tinyconda.txt"]}"#;

/// A root filesystem as the installers leave it: os-release, Python 3.11
/// with `tinypkg` installed by pip, a conda prefix with `tinyconda`.
pub(crate) fn root_fs(root: &Path, tinypkg_version: &str) {
    write(
        &root.join("etc/os-release"),
        "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n",
    );
    write(&root.join("usr/local/bin/python3.11"), "");
    let dist = root.join(SITE).join("tinypkg-1.0.dist-info");
    write(
        &dist.join("METADATA"),
        &format!("Metadata-Version: 2.1\nName: tinypkg\nVersion: {tinypkg_version}\n"),
    );
    write(&dist.join("INSTALLER"), "pip\n");
    write(
        &dist.join("WHEEL"),
        "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    );
    write(
        &dist.join("RECORD"),
        "tinypkg/__init__.py,,\ntinypkg-1.0.dist-info/METADATA,,\n",
    );
    write(&root.join(SITE).join("tinypkg/__init__.py"), "");
    write(
        &root.join("opt/conda/conda-meta/tinyconda-1.0-h0_0.json"),
        TINYCONDA,
    );
    write(&root.join("opt/conda/share/tinyconda.txt"), "hello\n");
}

pub(crate) fn mksquashfs(root: &Path, out: &Path) -> Vec<u8> {
    let _ = std::fs::remove_file(out);
    let o = Command::new("mksquashfs")
        .arg(root)
        .arg(out)
        .args(["-noappend", "-quiet", "-no-progress", "-comp", "xz"])
        .output()
        .expect("mksquashfs runs");
    assert!(
        o.status.success(),
        "mksquashfs: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::read(out).unwrap()
}

const DEFINITION: &str = "Bootstrap: docker\nFrom: debian:12\n\n%post\n    conda install -p /opt/conda tinyconda\n    pip install tinypkg==1.0\n";

/// The lock of `app.def`, current for its text, with the packages the root
/// filesystem has.
fn lock_for(dir: &Path) -> LockedImage {
    let def = dir.join("app.def");
    let definition = load_definition(&def, &BTreeMap::new()).unwrap();
    let text = std::fs::read_to_string(&def).unwrap();
    let inputs = load_inputs(&definition, &text, dir, &BTreeMap::new()).unwrap();
    let step_of = |manager: &str| {
        definition.stages[0]
            .steps
            .iter()
            .find(|s| s.command.manager.as_str() == manager)
            .map(|s| (u32::try_from(s.line).unwrap(), s.command.text.clone()))
            .unwrap_or_else(|| panic!("no {manager} step in {:?}", definition.stages[0].steps))
    };
    let step = |manager: &str| LockedStep {
        stage: 0,
        file: t("app.def"),
        line: step_of(manager).0,
        command: t(&step_of(manager).1),
        manager: t(manager),
        action: t("install"),
        target: (manager == "conda").then(|| t("/opt/conda")),
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
    let record: serde_json::Value = serde_json::from_str(TINYCONDA).unwrap();
    let f = |k: &str| record[k].as_str().unwrap();
    let mut conda_step = step("conda");
    conda_step.conda.push(CondaPackage {
        name: t(f("name")),
        version: t(f("version")),
        build: t(f("build")),
        build_number: 0,
        channel: t(f("channel")),
        subdir: t(f("subdir")),
        url: t(f("url")),
        sha256: t(f("sha256")),
        md5: Some(t(f("md5"))),
        size: Some(1234),
        requested: Some(t("tinyconda")),
        platforms: vec!["linux/amd64".parse().unwrap()],
    });
    let mut pip_step = step("pip");
    pip_step.pypi.push(PypiPackage {
        name: t("tinypkg"),
        version: Some(t("1.0")),
        requested: Some(t("tinypkg==1.0")),
        url: t("https://pypi.example/tinypkg-1.0-py3-none-any.whl"),
        sha256: Some(t(&hex::encode(Sha256::digest(b"tinypkg")))),
        file: Some(t("tinypkg-1.0-py3-none-any.whl")),
        source: imagelock::lock::PypiSource::Index,
        revision: None,
        commit: None,
        required_by: Vec::new(),
        platforms: vec!["linux/amd64".parse().unwrap()],
    });
    let base = "debian:12".to_string();
    let digest: imagelock::oci::Digest = sha(b"debian:12 manifest").parse().unwrap();
    let mut lock = LockedImage {
        version: LOCK_VERSION,
        image: ImageMeta {
            name: t("app"),
            definition: t("app.def"),
            input_hash: inputs.hash(),
            content_hash: None,
            platforms: vec!["linux/amd64".parse().unwrap()],
        },
        stages: vec![LockedStage {
            index: 0,
            name: None,
            base: t(&base),
            base_name: Some(t(&base)),
            downloads: Vec::new(),
            git: Vec::new(),
        }],
        bases: vec![LockedBase {
            name: t(&base),
            references: vec![t(&base)],
            digest: digest.clone(),
            media_type: t("application/vnd.oci.image.manifest.v1+json"),
            built_from: None,
            agent: None,
            pinned: None,
            platforms: vec![LockedPlatformImage {
                platform: "linux/amd64".parse().unwrap(),
                digest,
                config: sha(b"debian:12 config").parse().unwrap(),
                diff_ids: vec![sha(b"debian:12 layer").parse().unwrap()],
            }],
        }],
        steps: vec![conda_step, pip_step],
    };
    lock.normalize();
    lock
}

/// A lock value from its text, checked as reading a lock checks it.
fn t<T>(text: &str) -> T
where
    T: for<'a> TryFrom<&'a str>,
    for<'a> <T as TryFrom<&'a str>>::Error: std::fmt::Debug,
{
    T::try_from(text).unwrap()
}

fn verify_sif(dir: &Path, reference: &str, extra: &[&str]) -> (i32, String, String) {
    common::run(
        common::imagelock()
            .current_dir(dir)
            .args(["verify", "--image", reference, "app.def"])
            .args(extra),
    )
}

/// A match covers only what the lock pins: a step the lock records as not
/// locked is named beside the result, never left out of it.
#[test]
fn a_step_the_lock_does_not_pin_is_named_beside_a_match() {
    if !common::require_tool("mksquashfs", "apt-get install -y squashfs-tools") {
        return;
    }
    let tmp = common::tempdir();
    let dir = tmp.path();
    write(&dir.join("app.def"), DEFINITION);
    let mut lock = lock_for(dir);
    let pip = lock.steps.iter_mut().find(|s| s.manager == "pip").unwrap();
    pip.locked = false;
    let line = pip.line;
    lock.write(&dir.join("lockfiles/app.lock")).unwrap();
    root_fs(&dir.join("root"), "1.0");
    let squashfs = mksquashfs(&dir.join("root"), &dir.join("root.sqfs"));
    write_sif(&dir.join("app.sif"), DEFINITION.as_bytes(), &squashfs);
    let (_, stdout, stderr) = verify_sif(dir, "sif:app.sif", &[]);
    assert!(
        stdout.contains(&format!(
            "note: app.def:{line}: `pip install tinypkg==1.0` is not locked, so what it installed is not checked"
        )),
        "{stdout}\n{stderr}"
    );
    // "Matches its lock" never comes without what the lock covers.
    assert!(
        stdout.contains(&format!(
            "app: coverage: 2 of 3 steps locked; not locked: line {line} `pip install tinypkg==1.0` (the lock records it as not locked)"
        )),
        "{stdout}\n{stderr}"
    );
}

#[test]
fn verify_a_sif_packed_with_mksquashfs() {
    if !common::require_tool("mksquashfs", "apt-get install -y squashfs-tools") {
        return;
    }
    let tmp = common::tempdir();
    let dir = tmp.path();
    write(&dir.join("app.def"), DEFINITION);
    lock_for(dir)
        .write(&dir.join("lockfiles/app.lock"))
        .unwrap();
    root_fs(&dir.join("root"), "1.0");
    let squashfs = mksquashfs(&dir.join("root"), &dir.join("root.sqfs"));
    write_sif(&dir.join("app.sif"), DEFINITION.as_bytes(), &squashfs);

    // Both spellings name the file.
    for reference in ["sif:app.sif", "app.sif"] {
        let (code, stdout, stderr) = verify_sif(dir, reference, &[]);
        assert_eq!(code, 0, "{reference}:\n{stdout}\n{stderr}");
        let sif_sha = sha(&std::fs::read(dir.join("app.sif")).unwrap());
        assert!(
            stdout.contains(&format!("app: sif {sif_sha} (native image)")),
            "{stdout}"
        );
        assert!(
            stdout.contains("app: sif definition the same as `app.def`"),
            "{stdout}"
        );
        assert!(stdout.contains("app: sif unsigned"), "{stdout}");
        assert!(
            stdout.contains("app linux/amd64: matches its lock (1 conda, 1 pip package)"),
            "{stdout}"
        );
    }
    let (code, json, _) = verify_sif(dir, "sif:app.sif", &["--format", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let sif = &v["images"][0]["sif"];
    assert_eq!(sif["definition"], "same");
    assert_eq!(sif["signed"], false);
    assert_eq!(sif["kind"], "native");
    assert_eq!(sif["arch"], "amd64");
    assert_eq!(
        sif["sha256"].as_str().unwrap(),
        sha(&std::fs::read(dir.join("app.sif")).unwrap())
    );

    // A package changed inside the squashfs is caught, by name.
    root_fs(&dir.join("root"), "1.1");
    let squashfs = mksquashfs(&dir.join("root"), &dir.join("root.sqfs"));
    write_sif(&dir.join("tampered.sif"), DEFINITION.as_bytes(), &squashfs);
    let (code, stdout, stderr) = verify_sif(dir, "sif:tampered.sif", &[]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("pip  tinypkg") && stdout.contains("1.1"),
        "{stdout}"
    );

    // Built from another definition: said, and a problem.
    root_fs(&dir.join("root"), "1.0");
    let squashfs = mksquashfs(&dir.join("root"), &dir.join("root.sqfs"));
    let other = DEFINITION.replace("tinypkg==1.0", "tinypkg");
    write_sif(&dir.join("other.sif"), other.as_bytes(), &squashfs);
    let (code, stdout, _) = verify_sif(dir, "sif:other.sif", &[]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("app: sif definition differs from `app.def`"),
        "{stdout}"
    );

    // The same root as an OCI-SIF: read through its OCI blobs.
    write_oci_sif(&dir.join("oci.sif"), &squashfs);
    let (code, stdout, stderr) = verify_sif(dir, "sif:oci.sif", &[]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("(oci image)"), "{stdout}");
    assert!(
        stdout.contains("app: sif definition not in the image"),
        "{stdout}"
    );
    assert!(
        stdout.contains("app linux/amd64: matches its lock (1 conda, 1 pip package)"),
        "{stdout}"
    );
    // An OCI blob whose bytes no longer match its digest is refused.
    let mut bytes = std::fs::read(dir.join("oci.sif")).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(dir.join("oci-bad.sif"), bytes).unwrap();
    let (code, _, stderr) = verify_sif(dir, "sif:oci-bad.sif", &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("object 4 does not match its digest"),
        "{stderr}"
    );

    // A signed SIF (the reference implementation's) names its key. It is a
    // `linux/386` image: against a lock of `linux/amd64` only, `--platform
    // linux/386` has nothing to compare, an error and never an empty match.
    std::fs::write(dir.join("signed.sif"), fixture("one-group-signed-pgp.sif")).unwrap();
    let (code, stdout, stderr) = verify_sif(dir, "signed.sif", &["--platform", "linux/386"]);
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    assert!(!stdout.contains("matches its lock"), "{stdout}");
    assert!(
        stderr.contains("the lock of `app` does not cover `linux/386` (it locks `linux/amd64`)"),
        "{stderr}"
    );
    let mut lock = LockedImage::read(&dir.join("lockfiles/app.lock")).unwrap();
    lock.image.platforms.push("linux/386".parse().unwrap());
    lock.normalize();
    lock.write(&dir.join("lockfiles/app.lock")).unwrap();
    let (_, stdout, _) = verify_sif(dir, "signed.sif", &["--platform", "linux/386"]);
    assert!(
        stdout.contains(
            "app: sif signed (SHA-256, group 1) by 12045C8C0B1004D058DE4BEDA20C27EE7FF7BA84"
        ),
        "{stdout}"
    );
    let (_, json, _) = verify_sif(
        dir,
        "signed.sif",
        &["--platform", "linux/386", "--format", "json"],
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let sif = &v["images"][0]["sif"];
    assert_eq!(sif["signed"], true);
    assert_eq!(sif["definition"], "absent");
    assert_eq!(
        sif["signatures"][0]["fingerprint"],
        "12045C8C0B1004D058DE4BEDA20C27EE7FF7BA84"
    );
    assert_eq!(sif["signatures"][0]["signs"], "group 1");
    // Without `--platform`, a 386 SIF is not checked against an amd64 lock.
    lock.image
        .platforms
        .retain(|p| p.to_string() == "linux/amd64");
    lock.write(&dir.join("lockfiles/app.lock")).unwrap();
    let (code, _, stderr) = verify_sif(dir, "signed.sif", &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("is a `linux/386` image, not `linux/amd64`"),
        "{stderr}"
    );

    // Not a SIF: a clear error, exit 2.
    std::fs::write(dir.join("bad.sif"), b"not a sif at all").unwrap();
    let (code, _, stderr) = verify_sif(dir, "bad.sif", &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("cannot read the SIF `sif:bad.sif`") && stderr.contains("hint:"),
        "{stderr}"
    );
}

/// The test world's Debian root (`tests/e2e/prepare.py`), or `None` (skip).
fn debian_rootfs() -> Option<std::path::PathBuf> {
    let dir = std::env::var_os("IMAGELOCK_E2E_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| common::repo_root().join("target/e2e"));
    let tar = dir.join("rootfs.tar");
    if !tar.is_file() {
        eprintln!("skipping: run `python3 tests/e2e/prepare.py` (as root) for the Debian root");
        return None;
    }
    Some(tar)
}

/// A real Debian root, packed once as a tar layer of an OCI layout and once
/// by `mksquashfs -tar` into a SIF, gives the same catalogue both ways: the
/// squashfs goes through the selection tar layers go through.
#[test]
fn a_debian_root_catalogues_the_same_from_a_sif_and_a_tar_layer() {
    let Some(tar) = debian_rootfs() else { return };
    if !common::require_tool("mksquashfs", "apt-get install -y squashfs-tools") {
        return;
    }
    let tmp = common::tempdir();
    let dir = tmp.path();
    // The OCI layout: the tar itself is the layer blob.
    let layer = {
        use std::io::Read as _;
        let mut h = Sha256::new();
        let mut f = std::fs::File::open(&tar).unwrap();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        format!("sha256:{}", hex::encode(h.finalize()))
    };
    let blobs = dir.join("layout/blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    std::os::unix::fs::symlink(&tar, blobs.join(&layer[7..])).unwrap();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer]},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer, "size": std::fs::metadata(&tar).unwrap().len()}],
    }))
    .unwrap();
    for b in [&config, &manifest] {
        std::fs::write(blobs.join(&sha(b)[7..]), b).unwrap();
    }
    std::fs::write(
        dir.join("layout/index.json"),
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "digest": sha(&manifest), "size": manifest.len()}],
        }))
        .unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join("layout/oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let location: imagelock::image::ImageLocation = format!("oci:{}", dir.join("layout").display())
        .parse()
        .unwrap();
    let platform = Platform::linux_amd64();
    let from_tar = imagelock::image::read_catalogue(
        imagelock::image::open_local(&location).unwrap().as_ref(),
        &platform,
        &ReadOptions::default(),
    )
    .unwrap();

    let o = Command::new("mksquashfs")
        .arg("-")
        .arg(dir.join("root.sqfs"))
        .args(["-tar", "-noappend", "-quiet", "-no-progress"])
        .stdin(std::fs::File::open(&tar).unwrap())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let squashfs = std::fs::read(dir.join("root.sqfs")).unwrap();
    write_sif(&dir.join("debian.sif"), DEFINITION.as_bytes(), &squashfs);
    drop(squashfs);
    let (from_sif, summary) = SifImage::open("sif:debian.sif", &dir.join("debian.sif"))
        .unwrap()
        .read_catalogue(&platform, &ReadOptions::default())
        .unwrap();

    assert_eq!(summary.kind, "native");
    let view = |c: &imagelock::image::Catalogue| {
        serde_json::json!({
            "os_release": c.os_release, "libc": c.libc, "pythons": c.pythons,
            "python_dists": c.python_dists, "os_packages": c.os_packages,
            "conda_prefixes": c.conda_prefixes, "warnings": c.warnings,
        })
    };
    let (a, b) = (view(&from_sif), view(&from_tar));
    assert!(
        from_tar.os_packages.len() > 50,
        "a Debian root has dpkg packages"
    );
    assert!(
        !from_tar.python_dists.is_empty(),
        "and Python distributions"
    );
    assert_eq!(a, b);
    // squashfs gives a hard link its own file; a tar a link entry.
    let hard_links = tar::Archive::new(std::fs::File::open(&tar).unwrap())
        .entries()
        .unwrap()
        .filter(|e| e.as_ref().unwrap().header().entry_type().is_hard_link())
        .count() as u64;
    assert_eq!(
        from_sif.layers[0].files,
        from_tar.layers[0].files + hard_links
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
    /// Any corruption of a real SIF's squashfs is an error or a catalogue,
    /// never a panic or an unbounded allocation.
    #[test]
    fn corrupted_squashfs_never_panics(edits in prop::collection::vec((0usize..249, any::<u8>()), 1..8)) {
        let mut bytes = fixture("one-group.sif");
        for (at, b) in edits {
            bytes[36864 + at] = b;
        }
        let tmp = common::tempdir();
        let path = tmp.path().join("x.sif");
        std::fs::write(&path, bytes).unwrap();
        let platform = Platform::new("linux", "386", None);
        let _ = SifImage::open("x.sif", &path)
            .unwrap()
            .read_catalogue(&platform, &ReadOptions::default());
    }
}

/// Counts in a squashfs superblock that claim billions of inodes or
/// fragments are refused without allocating for them.
#[test]
fn squashfs_with_huge_counts_is_refused() {
    let tmp = common::tempdir();
    for (at, value) in [(4usize, u32::MAX), (16, u32::MAX), (16, 1 << 28)] {
        let mut bytes = fixture("one-group.sif");
        bytes[36864 + at..36864 + at + 4].copy_from_slice(&value.to_le_bytes());
        let path = tmp.path().join("huge.sif");
        std::fs::write(&path, bytes).unwrap();
        let platform = Platform::new("linux", "386", None);
        let err = SifImage::open("huge.sif", &path)
            .unwrap()
            .read_catalogue(&platform, &ReadOptions::default())
            .unwrap_err()
            .to_string();
        eprintln!("{at}={value}: {err}");
        assert!(
            err.starts_with("the squashfs of layer 1 of `huge.sif` is malformed: "),
            "{err}"
        );
    }
}

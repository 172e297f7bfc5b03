//! The image reader: hand-made layers pin each rule (compression, whiteouts,
//! hard links, digests, limits, cache), images made with real tools check
//! that every source gives the same catalogue.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use imagelock::image::{
    Catalogue, ImageError, ImageLocation, LayerMemo, Platform, ReadOptions, open_local,
    read_catalogue,
};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::common;

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// An entry of a hand-made layer.
enum E<'a> {
    File(&'a str, &'a [u8]),
    Hard(&'a str, &'a str),
    Sym(&'a str, &'a str),
    Dir(&'a str),
}

fn tar_of(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_mtime(0);
        match e {
            E::File(p, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, *data).unwrap();
            }
            E::Hard(p, t) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                b.append_link(&mut h, p, t).unwrap();
            }
            E::Sym(p, t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                b.append_link(&mut h, p, t).unwrap();
            }
            E::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, p, &[][..]).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// gzip as two concatenated members, as some tools write.
fn gzip_two_members(data: &[u8]) -> Vec<u8> {
    let (a, b) = data.split_at(data.len() / 2);
    let mut out = Vec::new();
    for part in [a, b] {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(part).unwrap();
        out.extend(enc.finish().unwrap());
    }
    out
}

/// zstd as two frames.
fn zstd_two_frames(data: &[u8]) -> Vec<u8> {
    let (a, b) = data.split_at(data.len() / 2);
    let mut out = zstd::encode_all(a, 3).unwrap();
    out.extend(zstd::encode_all(b, 3).unwrap());
    out
}

/// A layer as written into a layout: the blob, its media type, and the
/// diff_id the config claims.
struct Layer {
    blob: Vec<u8>,
    media_type: &'static str,
    diff_id: String,
}

impl Layer {
    fn plain(tar: Vec<u8>) -> Self {
        Self {
            diff_id: sha(&tar),
            blob: tar,
            media_type: "application/vnd.oci.image.layer.v1.tar",
        }
    }
    fn gzip(tar: &[u8]) -> Self {
        Self {
            diff_id: sha(tar),
            blob: gzip_two_members(tar),
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip",
        }
    }
    fn zstd(tar: &[u8]) -> Self {
        Self {
            diff_id: sha(tar),
            blob: zstd_two_frames(tar),
            media_type: "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }
}

fn write_blob(dir: &Path, bytes: &[u8]) -> String {
    let d = sha(bytes);
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(blobs.join(&d[7..]), bytes).unwrap();
    d
}

/// Writes an OCI layout with one image per platform (an index when more
/// than one); returns the manifest digest of the first.
fn write_layout(dir: &Path, images: &[(&str, Vec<Layer>)]) {
    let mut entries = Vec::new();
    for (platform, layers) in images {
        let p: Platform = platform.parse().unwrap();
        let config = serde_json::to_vec(&json!({
            "architecture": p.architecture(), "os": p.os(),
            "config": {"Env": ["PATH=/usr/local/bin:/usr/bin"]},
            "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()},
        }))
        .unwrap();
        let config_digest = write_blob(dir, &config);
        let layer_descs: Vec<_> = layers
            .iter()
            .map(|l| json!({"mediaType": l.media_type, "digest": write_blob(dir, &l.blob), "size": l.blob.len()}))
            .collect();
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": layer_descs,
        }))
        .unwrap();
        let digest = write_blob(dir, &manifest);
        let mut platform_json = json!({"os": p.os(), "architecture": p.architecture()});
        if let Some(v) = p.variant() {
            platform_json["variant"] = json!(v);
        }
        entries.push(json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest, "size": manifest.len(), "platform": platform_json,
        }));
    }
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": entries})).unwrap(),
    )
    .unwrap();
}

fn read(reference: &str, opts: &ReadOptions) -> Result<Catalogue, ImageError> {
    let image: ImageLocation = reference.parse()?;
    let source = open_local(&image)?;
    read_catalogue(source.as_ref(), &Platform::linux_amd64(), opts)
}

const METADATA_FOO: &[u8] = b"Metadata-Version: 2.1\nName: Foo_Bar\nVersion: 1.0\n\nbody\n";
const WHEEL: &[u8] =
    b"Wheel-Version: 1.0\nGenerator: bdist_wheel\nRoot-Is-Purelib: true\nTag: py3-none-any\n";
const SITE: &str = "usr/local/lib/python3.11/site-packages";

fn conda_record() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "name": "numpy", "version": "1.26.4", "build": "py311h64a7726_0", "build_number": 0,
        "channel": "https://conda.anaconda.org/conda-forge", "subdir": "linux-64",
        "url": "https://conda.anaconda.org/conda-forge/linux-64/numpy-1.26.4-py311h64a7726_0.conda",
        "sha256": "3f4365e11b28e244c95ba8579942b0802761ba7bb31c026f50d1a9ea9c728149",
        "md5": "a502d7aad449a1206efb366d6a12c52d", "size": 8065890,
        "files": ["lib/python3.11/site-packages/numpy-1.26.4.dist-info/METADATA", "lib/python3.11/site-packages/numpy/__init__.py"],
    }))
    .unwrap()
}

/// Three layers that exercise every merge rule.
fn rules_layout(dir: &Path) {
    let l1 = tar_of(&[
        E::File("etc/os-release", b"ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"),
        E::File("var/lib/dpkg/status", b"Package: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u4\nArchitecture: amd64\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\n"),
        E::File("usr/lib/x86_64-linux-gnu/libc.so.6", b"\x7fELF....GNU C Library (Debian GLIBC 2.36-9+deb12u4) stable release version 2.36.\n...."),
        E::File("usr/local/bin/python3.11", b"\x7fELF"),
        E::Sym("usr/local/bin/python3", "python3.11"),
        E::File(&format!("{SITE}/foo_bar-1.0.dist-info/METADATA"), METADATA_FOO),
        E::File(&format!("{SITE}/foo_bar-1.0.dist-info/INSTALLER"), b"pip\n"),
        E::File(&format!("{SITE}/foo_bar-1.0.dist-info/WHEEL"), WHEEL),
        E::File(&format!("{SITE}/foo_bar-1.0.dist-info/RECORD"), b"foo_bar/__init__.py,sha256=x,1\nfoo_bar-1.0.dist-info/METADATA,,\n"),
        E::File(&format!("{SITE}/gone-1.0.dist-info/METADATA"), b"Name: gone\nVersion: 1.0\n"),
        E::File("opt/venv/lib/python3.11/site-packages/old-1.0.dist-info/METADATA", b"Name: old\nVersion: 1.0\n"),
        E::File("opt/conda/conda-meta/numpy-1.26.4-py311h64a7726_0.json", &conda_record()),
        E::File("opt/conda/conda-meta/history", b"==> 2024-01-01 <==\n# update specs: ['numpy=1.26']\n"),
        E::File("opt/conda/lib/python3.11/site-packages/numpy-1.26.4.dist-info/METADATA", b"Name: numpy\nVersion: 1.26.4\n"),
        E::File("opt/conda/lib/python3.11/site-packages/numpy-1.26.4.dist-info/INSTALLER", b"conda\n"),
        E::File("opt/conda/bin/python3.11", b"\x7fELF"),
        E::File("opt/conda/pkgs/python-3.11.8-h0/bin/python3.11", b"\x7fELF"),
        E::File("usr/share/doc/big.bin", &[7u8; 100_000]),
    ]);
    let l2 = tar_of(&[
        E::File(&format!("{SITE}/.wh.gone-1.0.dist-info"), b""),
        E::Dir("opt/venv/lib/python3.11/site-packages"),
        E::File("opt/venv/lib/python3.11/site-packages/.wh..wh..opq", b""),
        E::File(
            "opt/venv/lib/python3.11/site-packages/new-2.0.dist-info/METADATA",
            b"Name: new\nVersion: 2.0\n",
        ),
        E::File("opt/venv/bin/python3.11", b"\x7fELF"),
    ]);
    // uv hard-links from its cache, which sorts before the install.
    let l3 = tar_of(&[
        E::File(
            "root/.cache/uv/archive-v0/abc/baz-3.0.dist-info/METADATA",
            b"Name: baz\nVersion: 3.0\n",
        ),
        E::Hard(
            &format!("{SITE}/baz-3.0.dist-info/METADATA"),
            "root/.cache/uv/archive-v0/abc/baz-3.0.dist-info/METADATA",
        ),
        E::File(&format!("{SITE}/baz-3.0.dist-info/INSTALLER"), b"uv"),
        E::File(
            &format!("{SITE}/qux-0.1.dist-info/METADATA"),
            b"Name: qux\nVersion: 0.1\n",
        ),
        E::Hard(
            &format!("{SITE}/qux_alias-0.1.dist-info/METADATA"),
            &format!("{SITE}/qux-0.1.dist-info/METADATA"),
        ),
    ]);
    write_layout(
        dir,
        &[(
            "linux/amd64",
            vec![Layer::gzip(&l1), Layer::zstd(&l2), Layer::plain(l3)],
        )],
    );
}

fn redacted(c: &Catalogue) -> serde_json::Value {
    let mut v = serde_json::to_value(c).unwrap();
    v["image"]["reference"] = json!("[reference]");
    v
}

#[test]
fn hand_made_layers_follow_every_rule() {
    let dir = common::tempdir();
    rules_layout(dir.path());
    let c = read(
        &format!("oci:{}", dir.path().display()),
        &ReadOptions::default(),
    )
    .unwrap();
    insta::assert_json_snapshot!(redacted(&c));
}

#[test]
fn a_lying_media_type_is_overruled_by_the_bytes() {
    let dir = common::tempdir();
    let tar = tar_of(&[E::File("etc/os-release", b"ID=alpine\n")]);
    let mut layer = Layer::zstd(&tar);
    layer.media_type = "application/vnd.oci.image.layer.v1.tar+gzip";
    write_layout(dir.path(), &[("linux/amd64", vec![layer])]);
    let c = read(
        &format!("oci:{}", dir.path().display()),
        &ReadOptions::default(),
    )
    .unwrap();
    assert_eq!(c.os_release.unwrap().id.as_deref(), Some("alpine"));
    assert_eq!(c.layers[0].compression, imagelock::image::Compression::Zstd);
}

fn error_of(reference: &str, opts: &ReadOptions) -> String {
    let e = read(reference, opts).unwrap_err().to_string();
    e.replace(reference, "[reference]")
}

#[test]
fn corrupt_layers_are_named() {
    let tar = tar_of(&[E::File("etc/os-release", b"ID=debian\n")]);
    // A blob whose bytes no longer match its digest: the same tar,
    // compressed again differently, so only the blob digest can tell.
    let dir = common::tempdir();
    let layer = Layer::gzip(&tar);
    let blob_path = dir.path().join("blobs/sha256").join(&sha(&layer.blob)[7..]);
    write_layout(dir.path(), &[("linux/amd64", vec![layer])]);
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(&tar).unwrap();
    std::fs::write(&blob_path, enc.finish().unwrap()).unwrap();
    let reference = format!("oci:{}", dir.path().display());
    let msg = error_of(&reference, &ReadOptions::default());
    insta::assert_snapshot!(
        "blob_digest_mismatch",
        msg.replace(&sha(&std::fs::read(&blob_path).unwrap()), "[actual]")
    );

    // A config whose diff_id is not the layer's.
    let dir = common::tempdir();
    let mut layer = Layer::gzip(&tar);
    layer.diff_id = sha(b"something else");
    write_layout(dir.path(), &[("linux/amd64", vec![layer])]);
    let reference = format!("oci:{}", dir.path().display());
    insta::assert_snapshot!(
        "diff_id_mismatch",
        error_of(&reference, &ReadOptions::default())
    );
}

#[test]
fn a_blob_with_other_bytes_fails_its_digest() {
    let dir = common::tempdir();
    let tar = tar_of(&[E::File("etc/os-release", b"ID=debian\n")]);
    write_layout(
        dir.path(),
        &[("linux/amd64", vec![Layer::plain(tar.clone())])],
    );
    // Same size, one byte changed inside the file's content.
    let path = dir.path().join("blobs/sha256").join(&sha(&tar)[7..]);
    let mut bytes = tar.clone();
    let at = bytes.windows(6).position(|w| w == b"debian").unwrap();
    bytes[at] = b'D';
    std::fs::write(path, bytes).unwrap();
    let reference = format!("oci:{}", dir.path().display());
    let msg = error_of(&reference, &ReadOptions::default());
    // The plain layer's digest is also its diff_id: the first check to fail
    // names the layer.
    assert!(msg.starts_with("layer 1"), "{msg}");
    assert!(msg.contains("does not match its diff_id"), "{msg}");
}

#[test]
fn a_decompression_bomb_stops_at_the_limit() {
    let dir = common::tempdir();
    let zeros = vec![0u8; 8 << 20];
    let tar = tar_of(&[E::File("bomb", &zeros)]);
    let layer = Layer::gzip(&tar);
    assert!(layer.blob.len() < 100_000);
    write_layout(dir.path(), &[("linux/amd64", vec![layer])]);
    let reference = format!("oci:{}", dir.path().display());
    let opts = ReadOptions {
        max_layer_size: 1 << 20,
        ..ReadOptions::default()
    };
    let msg = error_of(&reference, &opts);
    insta::assert_snapshot!("bomb", msg.replace(&sha(&tar), "[diff_id]"));
}

#[test]
fn a_metadata_file_over_the_limit_is_refused() {
    let dir = common::tempdir();
    let big = vec![b'x'; 4096];
    let tar = tar_of(&[E::File("var/lib/dpkg/status", &big)]);
    write_layout(dir.path(), &[("linux/amd64", vec![Layer::gzip(&tar)])]);
    let reference = format!("oci:{}", dir.path().display());
    let opts = ReadOptions {
        max_file_size: 1024,
        ..ReadOptions::default()
    };
    insta::assert_snapshot!(error_of(&reference, &opts).replace(&sha(&tar), "[diff_id]"));
}

#[test]
fn platforms_are_picked_from_an_index() {
    let dir = common::tempdir();
    let amd = tar_of(&[E::File("etc/os-release", b"ID=amd\n")]);
    let arm = tar_of(&[E::File("etc/os-release", b"ID=arm\n")]);
    write_layout(
        dir.path(),
        &[
            ("linux/amd64", vec![Layer::gzip(&amd)]),
            ("linux/arm64/v8", vec![Layer::gzip(&arm)]),
        ],
    );
    let reference = format!("oci:{}", dir.path().display());
    let source = open_local(&reference.parse().unwrap()).unwrap();
    let arm64: Platform = "linux/arm64".parse().unwrap();
    let c = read_catalogue(source.as_ref(), &arm64, &ReadOptions::default()).unwrap();
    assert_eq!(c.os_release.unwrap().id.as_deref(), Some("arm"));
    let e = read_catalogue(
        source.as_ref(),
        &"linux/s390x".parse().unwrap(),
        &ReadOptions::default(),
    )
    .unwrap_err()
    .to_string()
    .replace(&reference, "[reference]");
    insta::assert_snapshot!(e, @r"
    `[reference]` has no image for `linux/s390x`; it has `linux/amd64`, `linux/arm64`
    hint: pick one with `--platform`
    ");
}

#[test]
fn a_second_read_comes_from_the_cache() {
    let dir = common::tempdir();
    let cache = common::tempdir();
    rules_layout(dir.path());
    let reference = format!("oci:{}", dir.path().display());
    let opts = ReadOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        ..ReadOptions::default()
    };
    let first = read(&reference, &opts).unwrap();
    // Remove the layer blobs: only the cache can answer now.
    let manifest_layers: Vec<PathBuf> = first
        .image
        .layers
        .iter()
        .map(|l| {
            dir.path()
                .join("blobs/sha256")
                .join(l.digest.as_ref().unwrap().hex())
        })
        .collect();
    for p in manifest_layers {
        std::fs::remove_file(p).unwrap();
    }
    let second = read(&reference, &opts).unwrap();
    assert_eq!(first, second);
    assert!(read(&reference, &ReadOptions::default()).is_err());
}

#[test]
fn bad_references_say_what_to_write() {
    let e = "python:3.11"
        .parse::<ImageLocation>()
        .unwrap_err()
        .to_string();
    insta::assert_snapshot!(e, @r"
    `python:3.11` is not an image reference
    hint: the transports are `docker://`, `oci:`, `oci-archive:`, `docker-archive:`, `docker-daemon:`, `containers-storage:` and `sif:`
    ");
}

/// Runs a tool and fails with its output when it fails.
fn run_tool(cmd: &mut Command) {
    let out = cmd.output().expect("the tool runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The fields every source must agree on (manifests and compressed sizes
/// differ between formats by design).
fn contents(c: &Catalogue) -> serde_json::Value {
    json!({
        "diff_ids": c.image.config.diff_ids,
        "config": c.image.config_digest,
        "os_release": c.os_release, "libc": c.libc, "pythons": c.pythons,
        "conda": c.conda_prefixes, "dists": c.python_dists, "os_packages": c.os_packages,
    })
}

/// Makes an image with umoci (a deletion makes a whiteout, a removed and
/// recreated directory an opaque one) and converts it with skopeo. Returns
/// the `oci:` reference, the oci-archive and the docker-archive (tagged
/// `test/image:t`).
fn umoci_image(dir: &Path) -> (String, PathBuf, PathBuf) {
    let layout = dir.join("layout");
    let bundle = dir.join("bundle");
    let l = |s: &str| format!("{}:{s}", layout.display());
    run_tool(
        Command::new("umoci")
            .args(["init", "--layout"])
            .arg(&layout),
    );
    run_tool(Command::new("umoci").args(["new", "--image", &l("t")]));
    run_tool(
        Command::new("umoci")
            .args(["unpack", "--rootless", "--image", &l("t")])
            .arg(&bundle),
    );
    let rootfs = bundle.join("rootfs");
    let put = |rel: &str, data: &[u8]| {
        let p = rootfs.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    };
    put("etc/os-release", b"ID=debian\nVERSION_ID=\"12\"\n");
    put("usr/local/bin/python3.11", b"\x7fELF");
    put(
        &format!("{SITE}/foo_bar-1.0.dist-info/METADATA"),
        METADATA_FOO,
    );
    put(&format!("{SITE}/foo_bar-1.0.dist-info/INSTALLER"), b"pip\n");
    put(
        &format!("{SITE}/gone-1.0.dist-info/METADATA"),
        b"Name: gone\nVersion: 1\n",
    );
    put(
        "opt/venv/lib/python3.11/site-packages/old-1.0.dist-info/METADATA",
        b"Name: old\nVersion: 1\n",
    );
    put(
        "opt/venv/lib/python3.11/site-packages/old2-1.0.dist-info/METADATA",
        b"Name: old2\nVersion: 1\n",
    );
    run_tool(
        Command::new("umoci")
            .args(["repack", "--image", &l("t")])
            .arg(&bundle),
    );
    std::fs::remove_dir_all(rootfs.join(format!("{SITE}/gone-1.0.dist-info"))).unwrap();
    std::fs::remove_dir_all(rootfs.join("opt/venv/lib/python3.11/site-packages")).unwrap();
    put(
        "opt/venv/lib/python3.11/site-packages/new-2.0.dist-info/METADATA",
        b"Name: new\nVersion: 2\n",
    );
    run_tool(
        Command::new("umoci")
            .args(["repack", "--image", &l("t")])
            .arg(&bundle),
    );

    let oci = format!("oci:{}", l("t"));
    let archive = dir.join("image.tar");
    let docker = dir.join("docker.tar");
    run_tool(Command::new("skopeo").args([
        "copy",
        &oci,
        &format!("oci-archive:{}:t", archive.display()),
    ]));
    run_tool(Command::new("skopeo").args([
        "copy",
        &oci,
        &format!("docker-archive:{}:test/image:t", docker.display()),
    ]));

    (oci, archive, docker)
}

/// An image made with umoci (a deletion makes a whiteout, a removed and
/// recreated directory an opaque one), converted with skopeo; every local
/// source reads the same catalogue.
#[test]
fn sources_agree_on_an_image_made_with_umoci_and_skopeo() {
    if !common::require_tool("umoci", "apt-get install -y umoci")
        || !common::require_tool("skopeo", "apt-get install -y skopeo")
    {
        return;
    }
    let tmp = common::tempdir();
    let (oci, archive, docker) = umoci_image(tmp.path());
    let opts = ReadOptions::default();
    let from_oci = read(&oci, &opts).unwrap();
    let names: Vec<&str> = from_oci
        .python_dists
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(names, ["new", "Foo_Bar"], "{:#?}", from_oci.python_dists);
    for other in [
        format!("oci-archive:{}:t", archive.display()),
        format!("oci-archive:{}", archive.display()),
        format!("docker-archive:{}", docker.display()),
        format!("docker-archive:{}:test/image:t", docker.display()),
    ] {
        let c = read(&other, &opts).unwrap();
        assert_eq!(contents(&c), contents(&from_oci), "{other}");
    }
    let e = error_of(
        &format!("docker-archive:{}:nope:1", docker.display()),
        &opts,
    );
    assert!(
        e.contains("has no image `nope:1`; it has `docker.io/test/image:t`"),
        "{e}"
    );
}

/// The world's image layouts, read and snapshotted.
#[rstest::rstest]
#[case("docker.io/library/python", Some("3.11-slim"))]
#[case("docker.io/condaforge/miniforge3", None)]
#[case("quay.io/opendatahub/workbench-images", None)]
#[case("nvcr.io/nvidia/clara/clara-parabricks", None)]
fn world_images(#[case] name: &str, #[case] tag: Option<&str>) {
    let dir = common::fixture("world/images").join(name);
    if !dir.join("index.json").is_file() {
        eprintln!("skipping: the fixture image {name} is not there");
        return;
    }
    let reference = match tag {
        Some(t) => format!("oci:{}:{t}", dir.display()),
        None => format!("oci:{}", dir.display()),
    };
    let c = match read(&reference, &ReadOptions::default()) {
        Ok(c) => {
            // Long file lists are summarised so the snapshot stays readable.
            let mut v = redacted(&c);
            for prefix in v["conda_prefixes"].as_array_mut().into_iter().flatten() {
                for r in prefix["records"].as_array_mut().into_iter().flatten() {
                    r["files"] = json!(r["files"].as_array().map_or(0, Vec::len));
                }
            }
            for d in v["python_dists"].as_array_mut().into_iter().flatten() {
                if let Some(n) = d["record"].as_array().map(Vec::len) {
                    d["record"] = json!(n);
                }
            }
            v
        }
        Err(e) => json!({ "error": e.to_string().replace(&reference, "[reference]") }),
    };
    insta::with_settings!({snapshot_suffix => name.replace('/', "_")}, {
        insta::assert_json_snapshot!(c);
    });
}

/// `docker-daemon:` against a real Docker Engine: the image is loaded with
/// `docker load` and read back through the engine API. Skips (also under CI,
/// for now) when no engine answers.
#[test]
fn docker_daemon_reads_a_loaded_image() {
    if !common::require_tool("umoci", "apt-get install -y umoci")
        || !common::require_tool("skopeo", "apt-get install -y skopeo")
    {
        return;
    }
    let engine_answers = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !engine_answers {
        eprintln!("skipping: no Docker Engine answers (install docker.io and start dockerd)");
        return;
    }
    let tmp = common::tempdir();
    let (oci, _, docker) = umoci_image(tmp.path());
    run_tool(Command::new("docker").arg("load").arg("-i").arg(&docker));
    let cache = common::tempdir();
    let opts = ReadOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        ..ReadOptions::default()
    };
    let from_daemon = read("docker-daemon:test/image:t", &opts);
    let again = read("docker-daemon:docker.io/test/image:t", &opts);
    let missing = read("docker-daemon:test/image:missing", &opts).map(|_| ());
    let _ = Command::new("docker")
        .args(["rmi", "test/image:t"])
        .output();
    let from_daemon = from_daemon.unwrap();
    assert_eq!(
        contents(&from_daemon),
        contents(&read(&oci, &ReadOptions::default()).unwrap())
    );
    assert_eq!(contents(&again.unwrap()), contents(&from_daemon));
    let e = missing.unwrap_err().to_string();
    assert!(
        e.contains("cannot give `docker-daemon:test/image:missing`: no such image"),
        "{e}"
    );
}

/// `docker://` through the registry client against the real registry (with
/// token auth): the same catalogue as the `oci:` layout it was pushed from.
#[test]
fn docker_transport_reads_what_was_pushed() {
    use imagelock::image::RegistryImage;
    use imagelock::resolve::auth::CredentialStore;
    use imagelock::resolve::{Registry, RegistryOptions};

    if !common::require_tool("umoci", "apt-get install -y umoci") {
        return;
    }
    let Some(server) = common::registry::server(common::registry::AuthKind::Htpasswd) else {
        return;
    };
    let tmp = common::tempdir();
    let (oci, _, _) = umoci_image(tmp.path());
    server.push(&tmp.path().join("layout"), "t", "verify/pushed:t", false);
    let config = tmp.path().join("config.json");
    let auth = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            common::registry::USER,
            common::registry::PASSWORD
        ))
    };
    std::fs::write(
        &config,
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, server.addr),
    )
    .unwrap();
    let registry = Registry::new(RegistryOptions {
        credentials: CredentialStore::empty().with_docker_config(&config),
        ..RegistryOptions::default()
    })
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let location: ImageLocation = format!("docker://{}/verify/pushed:t", server.addr)
        .parse()
        .unwrap();
    let ImageLocation::Docker(image) = location else {
        panic!("a docker:// location")
    };
    let source = RegistryImage::new(
        std::sync::Arc::new(registry),
        image,
        runtime.handle().clone(),
    );
    let opts = ReadOptions::default();
    let from_registry = read_catalogue(&source, &Platform::linux_amd64(), &opts).unwrap();
    assert_eq!(
        contents(&from_registry),
        contents(&read(&oci, &opts).unwrap())
    );
    assert!(from_registry.image.manifest_digest.is_some());

    let missing: ImageLocation = format!("docker://{}/verify/nope:t", server.addr)
        .parse()
        .unwrap();
    let ImageLocation::Docker(missing) = missing else {
        panic!("a docker:// location")
    };
    let e = read_catalogue(
        &RegistryImage::new(
            std::sync::Arc::new(Registry::new(RegistryOptions::default()).unwrap()),
            missing,
            runtime.handle().clone(),
        ),
        &Platform::linux_amd64(),
        &opts,
    )
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("cannot read `docker://"), "{e}");
}

/// Two images of one layout tagged `a` and `b`, built on the same two base
/// layers (a zstd and a gzip one), each with a layer of its own.
fn shared_base_layout(dir: &Path) {
    let base_zstd = tar_of(&[E::File("usr/bin/tool", b"#!/bin/sh\n")]);
    let base_gzip = tar_of(&[E::File(
        &format!("{SITE}/foo_bar-1.0.dist-info/METADATA"),
        METADATA_FOO,
    )]);
    let mut entries = Vec::new();
    for tag in ["a", "b"] {
        let own = tar_of(&[E::File(&format!("srv/{tag}.txt"), tag.as_bytes())]);
        write_layout(
            dir,
            &[(
                "linux/amd64",
                vec![
                    Layer::zstd(&base_zstd),
                    Layer::gzip(&base_gzip),
                    Layer::plain(own),
                ],
            )],
        );
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
        let mut entry = index["manifests"][0].clone();
        entry["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
        entries.push(entry);
    }
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": entries})).unwrap(),
    )
    .unwrap();
}

#[test]
fn layers_shared_by_images_are_read_once_per_run() {
    let dir = common::tempdir();
    shared_base_layout(dir.path());
    let memo = std::sync::Arc::new(LayerMemo::default());
    let opts = ReadOptions {
        memo: Some(memo.clone()),
        ..ReadOptions::default()
    };
    let layout = |tag: &str| format!("oci:{}:{tag}", dir.path().display());
    let a = read(&layout("a"), &opts).unwrap();
    assert_eq!((memo.reads(), memo.hits()), (3, 0));
    let b = read(&layout("b"), &opts).unwrap();
    // The two base layers come from the first read; `b`'s own is read.
    assert_eq!((memo.reads(), memo.hits()), (4, 2));
    assert_eq!(a, read(&layout("a"), &ReadOptions::default()).unwrap());
    assert_eq!(b, read(&layout("b"), &ReadOptions::default()).unwrap());
    assert_eq!(a, read(&layout("a"), &opts).unwrap());
    assert_eq!((memo.reads(), memo.hits()), (4, 5));

    // The same layers in another file are other bytes until hashed: a copy
    // of the layout whose base blob was altered fails, memo or not.
    let copy = common::tempdir();
    for entry in std::fs::read_dir(dir.path().join("blobs/sha256")).unwrap() {
        let entry = entry.unwrap();
        std::fs::create_dir_all(copy.path().join("blobs/sha256")).unwrap();
        std::fs::copy(
            entry.path(),
            copy.path().join("blobs/sha256").join(entry.file_name()),
        )
        .unwrap();
    }
    for name in ["index.json", "oci-layout"] {
        std::fs::copy(dir.path().join(name), copy.path().join(name)).unwrap();
    }
    let zstd_blob = &a.image.layers[0];
    let path = copy
        .path()
        .join("blobs/sha256")
        .join(zstd_blob.digest.as_ref().unwrap().hex());
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let copied = format!("oci:{}:a", copy.path().display());
    let err = read(&copied, &opts).unwrap_err().to_string();
    assert!(err.contains("layer 1"), "{err}");
    // Read, not taken from the memo (the other layers may stop early).
    assert!(memo.reads() > 4, "{memo:?}");
    assert_eq!(memo.hits(), 5);
}

#[test]
fn verify_reads_layers_shared_by_its_images_once() {
    let dir = common::tempdir();
    shared_base_layout(dir.path());
    let work = common::tempdir();
    std::fs::create_dir_all(work.path().join("app")).unwrap();
    std::fs::create_dir_all(work.path().join("lockfiles")).unwrap();
    std::fs::write(work.path().join("app/Dockerfile"), "FROM scratch\n").unwrap();
    std::fs::write(
        work.path().join("lockfiles/app.lock"),
        r#"version = 1

[image]
name = "app"
definition = "app/Dockerfile"
input-hash = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
platforms = ["linux/amd64"]

[[stages]]
index = 0
base = "scratch"
"#,
    )
    .unwrap();
    let layout = |tag: &str| format!("oci:{}:{tag}", dir.path().display());
    let (code, _, err) = common::run(
        common::imagelock()
            .current_dir(work.path())
            .args(["verify", "-v", "--format", "json"])
            .args(["--image", &layout("a"), "--image", &layout("b")])
            .args(["--image", &layout("a"), "app/Dockerfile"]),
    );
    assert!(matches!(code, 0 | 1), "{err}");
    // 3 layers of `a`, `b`'s own; `b`'s base layers and all of the second
    // `a` come from the first read.
    assert!(
        err.contains("layers read: 4; taken from an image verified earlier in this run: 5"),
        "{err}"
    );
}

//! Hostile registries, indexes and images (issue 15): each case ends in a
//! clear error or a correct result, never a panic, within a stated bound.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;

use imagelock::resolve::pypi::{self, Fetcher, IndexClient};
use imagelock::solve::python::{PinnedPackage, ResolveRequest, SolveError};

use crate::common::http::StaticServer;
use crate::common::tempdir;

/// A zip of stored (uncompressed) entries, as a wheel.
pub fn stored_zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut z = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let offset = u32::try_from(z.len()).unwrap();
        let n = u16::try_from(name.len()).unwrap();
        let len = u32::try_from(data.len()).unwrap();
        z.extend(0x0403_4b50u32.to_le_bytes());
        z.extend([20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        z.extend(len.to_le_bytes());
        z.extend(len.to_le_bytes());
        z.extend(n.to_le_bytes());
        z.extend(0u16.to_le_bytes());
        z.extend(name.as_bytes());
        z.extend(*data);
        central.extend(0x0201_4b50u32.to_le_bytes());
        central.extend([20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        central.extend(len.to_le_bytes());
        central.extend(len.to_le_bytes());
        central.extend(n.to_le_bytes());
        central.extend([0u8; 12]);
        central.extend(offset.to_le_bytes());
        central.extend(name.as_bytes());
    }
    let cd = u32::try_from(z.len()).unwrap();
    let count = u16::try_from(entries.len()).unwrap();
    z.extend(&central);
    z.extend(0x0605_4b50u32.to_le_bytes());
    z.extend([0, 0, 0, 0]);
    z.extend(count.to_le_bytes());
    z.extend(count.to_le_bytes());
    z.extend(u32::try_from(central.len()).unwrap().to_le_bytes());
    z.extend(cd.to_le_bytes());
    z.extend(0u16.to_le_bytes());
    z
}

fn sha256(bytes: &[u8]) -> String {
    crate::common::registry::sha256(bytes)
        .trim_start_matches("sha256:")
        .to_string()
}

fn metadata(name: &str, version: &str) -> String {
    format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
}

/// Writes `simple/<project>/index.json` listing `files` (file name, bytes,
/// optional PEP 658 metadata) and the files under `packages/`.
fn index_page(root: &Path, project: &str, files: &[(&str, Vec<u8>, Option<String>)]) {
    let page = root.join("simple").join(project);
    std::fs::create_dir_all(&page).unwrap();
    std::fs::create_dir_all(root.join("packages")).unwrap();
    let mut listed = Vec::new();
    for (name, bytes, meta) in files {
        std::fs::write(root.join("packages").join(name), bytes).unwrap();
        let mut entry = serde_json::json!({
            "filename": name,
            "url": format!("../../packages/{name}"),
            "hashes": {"sha256": sha256(bytes)},
        });
        if let Some(meta) = meta {
            std::fs::write(root.join("packages").join(format!("{name}.metadata")), meta).unwrap();
            entry["core-metadata"] = serde_json::json!({"sha256": sha256(meta.as_bytes())});
        }
        listed.push(entry);
    }
    let json =
        serde_json::json!({"meta": {"api-version": "1.1"}, "name": project, "files": listed});
    std::fs::write(page.join("index.json"), json.to_string()).unwrap();
}

fn wheel(name: &str, version: &str, meta: &str) -> Vec<u8> {
    stored_zip(&[
        (&format!("{name}/__init__.py"), b""),
        (
            &format!("{name}-{version}.dist-info/METADATA"),
            meta.as_bytes(),
        ),
    ])
}

async fn resolve(index: &str, reqs: &[&str]) -> Result<Vec<PinnedPackage>, SolveError> {
    resolve_cached(index, reqs, None).await
}

async fn resolve_cached(
    index: &str,
    reqs: &[&str],
    cache: Option<&Path>,
) -> Result<Vec<PinnedPackage>, SolveError> {
    let fetch = Fetcher::new(cache.map(Path::to_path_buf), false, Default::default()).unwrap();
    let client = Arc::new(IndexClient::new(fetch, &[index.to_string()], true).unwrap());
    let target = crate::common::cpython_target("3.11");
    let request = ResolveRequest {
        requirements: reqs.iter().map(ToString::to_string).collect(),
        ..ResolveRequest::default()
    };
    pypi::resolve(client, target, request).await
}

fn pins(out: &[PinnedPackage]) -> Vec<String> {
    out.iter()
        .map(|p| format!("{}=={}", p.name, p.version.as_ref().unwrap()))
        .collect()
}

/// Guards against a project page smuggling another project's file in.
#[tokio::test(flavor = "multi_thread")]
async fn another_projects_file_on_a_page_is_ignored() {
    let dir = tempdir();
    let six = wheel("six", "1.16.0", &metadata("six", "1.16.0"));
    let confuse = wheel("confuse", "1.0", &metadata("confuse", "1.0"));
    index_page(
        dir.path(),
        "confuse",
        &[
            ("six-1.16.0-py2.py3-none-any.whl", six, None),
            ("confuse-1.0-py3-none-any.whl", confuse, None),
        ],
    );
    let server = StaticServer::start(dir.path());
    let out = resolve(&format!("{}/simple", server.url()), &["confuse"])
        .await
        .unwrap();
    assert_eq!(pins(&out), ["confuse==1.0"]);
    assert!(
        imagelock::lock::PypiPackage::from_pin(&out[0], &"linux/amd64".parse().unwrap())
            .unwrap()
            .unwrap()
            .file
            .is_some_and(|f| f.to_string().starts_with("confuse-")),
    );
}

/// Guards against a wheel whose METADATA names another project.
#[tokio::test(flavor = "multi_thread")]
async fn metadata_of_another_project_is_refused() {
    let dir = tempdir();
    let evil = wheel("demo", "1.0", &metadata("evil", "1.0"));
    index_page(
        dir.path(),
        "demo",
        &[("demo-1.0-py3-none-any.whl", evil, None)],
    );
    let server = StaticServer::start(dir.path());
    let err = resolve(&format!("{}/simple", server.url()), &["demo"])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("says `Name: evil`"), "{err}");
    assert!(err.contains("hint:"), "{err}");
}

/// Guards against PEP 658 metadata that names another version.
#[tokio::test(flavor = "multi_thread")]
async fn pep658_metadata_of_another_version_is_refused() {
    let dir = tempdir();
    let meta = metadata("demo", "9.9");
    let body = wheel("demo", "1.0", &metadata("demo", "1.0"));
    index_page(
        dir.path(),
        "demo",
        &[("demo-1.0-py3-none-any.whl", body, Some(meta))],
    );
    let server = StaticServer::start(dir.path());
    let err = resolve(&format!("{}/simple", server.url()), &["demo"])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("says `Version: 9.9`"), "{err}");
}

/// Guards against panics on a corrupt central directory read by ranges.
#[tokio::test(flavor = "multi_thread")]
async fn corrupt_central_directory_is_an_error() {
    let good = wheel("demo", "1.0", &metadata("demo", "1.0"));
    let eocd = good.len() - 22;
    let mut cases: Vec<Vec<u8>> = Vec::new();
    // Central directory offset past the end.
    let mut c = good.clone();
    c[eocd + 16..eocd + 20].copy_from_slice(&u32::MAX.wrapping_sub(7).to_le_bytes());
    cases.push(c);
    // Central directory of size zero.
    let mut c = good.clone();
    c[eocd + 12..eocd + 16].copy_from_slice(&0u32.to_le_bytes());
    cases.push(c);
    // Local header offset past the end.
    let mut c = good.clone();
    let cd = u32::from_le_bytes(c[eocd + 16..eocd + 20].try_into().unwrap()) as usize;
    let second = cd + 46 + "demo/__init__.py".len();
    c[second + 42..second + 46].copy_from_slice(&u32::MAX.to_le_bytes());
    cases.push(c);
    // Compressed size larger than the file.
    let mut c = good.clone();
    c[second + 20..second + 24].copy_from_slice(&0x00ff_ffffu32.to_le_bytes());
    cases.push(c);
    // A file of 21 bytes.
    cases.push(good[good.len() - 21..].to_vec());
    for (i, bytes) in cases.into_iter().enumerate() {
        let dir = tempdir();
        index_page(
            dir.path(),
            "demo",
            &[("demo-1.0-py3-none-any.whl", bytes, None)],
        );
        let server = StaticServer::start(dir.path());
        let err = resolve(&format!("{}/simple", server.url()), &["demo"])
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("is not a readable archive") || err.contains("is larger than"),
            "case {i}: {err}"
        );
    }
}

/// Guards against a shared cache poisoning a lock: a derived METADATA or an
/// index page changed in the cache is dropped and fetched again.
#[tokio::test(flavor = "multi_thread")]
async fn tampered_cache_entries_are_refetched() {
    let dir = tempdir();
    let meta = format!("{}Requires-Dist: idna\n", metadata("demo", "1.0"));
    index_page(
        dir.path(),
        "demo",
        &[(
            "demo-1.0-py3-none-any.whl",
            wheel("demo", "1.0", &meta),
            None,
        )],
    );
    index_page(
        dir.path(),
        "idna",
        &[(
            "idna-3.10-py3-none-any.whl",
            wheel("idna", "3.10", &metadata("idna", "3.10")),
            None,
        )],
    );
    let server = StaticServer::start(dir.path());
    let index = format!("{}/simple", server.url());
    let cache = tempdir();
    let first = resolve_cached(&index, &["demo"], Some(cache.path()))
        .await
        .unwrap();
    assert_eq!(pins(&first), ["demo==1.0", "idna==3.10"]);
    // Poison every cached body that mentions `idna`: METADATA and pages.
    let mut poisoned = 0;
    let mut stack = vec![cache.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "body") {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                if text.contains("Requires-Dist: idna") {
                    std::fs::write(
                        &p,
                        text.replace("Requires-Dist: idna", "Requires-Dist: evil"),
                    )
                    .unwrap();
                    poisoned += 1;
                }
            }
        }
    }
    assert_eq!(poisoned, 1, "the derived METADATA was cached");
    let second = resolve_cached(&index, &["demo"], Some(cache.path()))
        .await
        .unwrap();
    assert_eq!(pins(&second), ["demo==1.0", "idna==3.10"]);
}

/// A one-file HTTP server that ignores `Range` and sends `body` whole,
/// counting the bytes it sent.
fn ignoring_range_server(body: Vec<u8>, path: &'static str) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let body = Arc::new(body);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let body = body.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                            break;
                        }
                    }
                    let (status, bytes): (&str, &[u8]) = if target.ends_with(path) {
                        ("200 OK", &body)
                    } else {
                        ("404 Not Found", b"")
                    };
                    let head = format!(
                        "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n",
                        bytes.len()
                    );
                    if stream.write_all(head.as_bytes()).is_err()
                        || stream.write_all(bytes).is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// A server that ignores `Range` gets its wheel streamed to disk, hashed
/// on the way, and the METADATA read from there.
#[tokio::test(flavor = "multi_thread")]
async fn whole_wheel_from_a_server_ignoring_range() {
    let padding = vec![7u8; 32 << 20];
    let body = stored_zip(&[
        ("demo/blob.bin", &padding),
        (
            "demo-1.0.dist-info/METADATA",
            metadata("demo", "1.0").as_bytes(),
        ),
    ]);
    let hash = sha256(&body);
    let addr = ignoring_range_server(body, "/demo-1.0-py3-none-any.whl");
    let dir = tempdir();
    let page = dir.path().join("simple/demo");
    std::fs::create_dir_all(&page).unwrap();
    let json = serde_json::json!({"meta": {"api-version": "1.1"}, "name": "demo", "files": [{
        "filename": "demo-1.0-py3-none-any.whl",
        "url": format!("http://{addr}/demo-1.0-py3-none-any.whl"),
        "hashes": {"sha256": hash},
    }]});
    std::fs::write(page.join("index.json"), json.to_string()).unwrap();
    let server = StaticServer::start(dir.path());
    let out = resolve(&format!("{}/simple", server.url()), &["demo"])
        .await
        .unwrap();
    assert_eq!(pins(&out), ["demo==1.0"]);
}

#[test]
fn stored_zip_reads_back() {
    let z = stored_zip(&[("a-1.dist-info/METADATA", b"Name: a\n")]);
    let mut c = std::io::Cursor::new(z);
    let mut all = Vec::new();
    c.read_to_end(&mut all).unwrap();
    assert_eq!(
        pypi::archive::metadata_from_zip_bytes(&all).as_deref(),
        Some("Name: a\n")
    );
}

// ---------------------------------------------------------------- images

/// Pieces of a hand-made zstd frame: raw bytes, or a byte repeated (RLE
/// blocks cost 4 bytes per 128 KiB, so gigabytes fit in a few megabytes).
enum Z<'a> {
    Raw(&'a [u8]),
    Rle(u8, u64),
}

fn zstd_frame(parts: &[Z<'_>]) -> Vec<u8> {
    const BLOCK: u64 = 128 * 1024;
    let mut blocks: Vec<(u8, u32, Vec<u8>)> = Vec::new();
    for part in parts {
        match part {
            Z::Raw(bytes) => {
                for chunk in bytes.chunks(BLOCK as usize) {
                    blocks.push((0, u32::try_from(chunk.len()).unwrap(), chunk.to_vec()));
                }
            }
            Z::Rle(byte, len) => {
                let mut len = *len;
                while len > 0 {
                    let n = len.min(BLOCK);
                    blocks.push((1, u32::try_from(n).unwrap(), vec![*byte]));
                    len -= n;
                }
            }
        }
    }
    // Magic, a frame header without content size, a 128 KiB window.
    let mut out = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38];
    let last = blocks.len() - 1;
    for (i, (kind, size, content)) in blocks.into_iter().enumerate() {
        let header = u32::from(i == last) | (u32::from(kind) << 1) | (size << 3);
        out.extend(&header.to_le_bytes()[..3]);
        out.extend(content);
    }
    out
}

fn tar_header(path: &str, kind: u8, size: u64) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_path(path).unwrap();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::new(kind));
    h.set_cksum();
    h.as_bytes().to_vec()
}

/// An `oci:` layout whose one layer is `blob` (its diff_id is made up: the
/// reader must stop before it could check it).
fn hostile_layout(dir: &Path, blob: &[u8]) {
    let write = |bytes: &[u8]| {
        let digest = crate::common::registry::sha256(bytes);
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("blobs/sha256").join(&digest[7..]), bytes).unwrap();
        digest
    };
    let layer = write(blob);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", "0".repeat(64))]},
    }))
    .unwrap();
    let config_digest = write(&config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": layer, "size": blob.len()}]
    }))
    .unwrap();
    let manifest_digest = write(&manifest);
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": "bad"}
        }]}))
        .unwrap(),
    )
    .unwrap();
}

const LAYOUT_ENV: &str = "IMAGELOCK_TEST_HOSTILE_LAYOUT";
/// Turns the ratio limit off in the child, to reach the limit under test.
const NO_RATIO_ENV: &str = "IMAGELOCK_TEST_NO_RATIO";

/// Run by [`read_in_child`] in a child process: reads the layout named by
/// the environment with default options, prints the error and the peak
/// resident memory. Does nothing when run on its own.
#[test]
#[ignore = "run by read_in_child"]
fn hostile_layout_child() {
    use imagelock::image::{ImageLocation, Platform, ReadOptions, open_local, read_catalogue};
    let Ok(dir) = std::env::var(LAYOUT_ENV) else {
        return;
    };
    let location: ImageLocation = format!("oci:{dir}:bad").parse().unwrap();
    let source = open_local(&location).unwrap();
    let started = std::time::Instant::now();
    let mut opts = ReadOptions::default();
    if std::env::var_os(NO_RATIO_ENV).is_some() {
        opts.max_decompression_ratio = 0;
    }
    let result = read_catalogue(source.as_ref(), &Platform::linux_amd64(), &opts);
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .to_string();
    println!("@@hwm={hwm}");
    println!("@@secs={}", started.elapsed().as_secs_f64());
    match result {
        Ok(_) => println!("@@ok"),
        Err(e) => println!("@@error={}", e.to_string().replace('\n', "\\n")),
    }
}

/// Reads `blob` as a layer in a child process; returns (error message,
/// peak RSS in MiB, seconds).
fn read_in_child(blob: &[u8], ratio: bool) -> (String, u64, f64) {
    let dir = tempdir();
    hostile_layout(dir.path(), blob);
    let mut child = std::process::Command::new(std::env::current_exe().unwrap());
    if !ratio {
        child.env(NO_RATIO_ENV, "1");
    }
    let out = child
        .args([
            "security::hostile_layout_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(LAYOUT_ENV, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |k: &str| {
        stdout
            .lines()
            .find_map(|l| l.split_once(&format!("@@{k}=")).map(|(_, v)| v))
            .unwrap_or_else(|| {
                panic!(
                    "child gave no `{k}`:\n{stdout}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            })
            .to_string()
    };
    let hwm_kib: u64 = field("hwm").parse().unwrap();
    let secs: f64 = field("secs").parse().unwrap();
    eprintln!(
        "blob {} bytes: peak {} MiB, {secs:.2} s",
        blob.len(),
        hwm_kib / 1024
    );
    (field("error").replace("\\n", "\n"), hwm_kib / 1024, secs)
}

/// Guards against a GNU long name of 512 MiB (a few MB compressed) taking
/// gigabytes: the reader stops at the header, under 200 MiB peak.
#[test]
fn huge_gnu_long_name_is_refused_in_bounded_memory() {
    let size = 512 << 20;
    let blob = zstd_frame(&[
        Z::Raw(&tar_header("././@LongLink", b'L', size)),
        Z::Rle(b'a', size),
        Z::Raw(&tar_header("x", b'0', 0)),
        Z::Rle(0, 1024),
    ]);
    assert!(blob.len() < 32 << 10);
    let (err, mib, _) = read_in_child(&blob, true);
    assert!(
        err.contains("has a GNU long name of 536870912 bytes"),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
    assert!(mib < 200, "peak {mib} MiB");
}

/// Guards against a 512 MiB PAX header.
#[test]
fn huge_pax_header_is_refused_in_bounded_memory() {
    let size = 512 << 20;
    let mut pax = tar_header("PaxHeaders/x", b'x', size);
    // A ustar header, as PAX headers are.
    pax[257..265].copy_from_slice(b"ustar\x0000");
    let mut h = tar::Header::from_byte_slice(&pax).clone();
    h.set_cksum();
    let blob = zstd_frame(&[
        Z::Raw(h.as_bytes()),
        Z::Rle(b'a', size),
        Z::Raw(&tar_header("x", b'0', 0)),
        Z::Rle(0, 1024),
    ]);
    let (err, mib, _) = read_in_child(&blob, true);
    assert!(err.contains("has a PAX header of 536870912 bytes"), "{err}");
    assert!(mib < 200, "peak {mib} MiB");
}

/// Guards against 30 metadata files of 60 MiB each (each under the per-file
/// limit, 1.8 GB together): the total is capped at 256 MiB.
#[test]
fn collected_text_has_a_total_cap() {
    let size = 60u64 << 20;
    let headers: Vec<Vec<u8>> = (0..30)
        .map(|i| {
            tar_header(
                &format!("usr/lib/python3.11/site-packages/p{i}-1.0.dist-info/METADATA"),
                b'0',
                size,
            )
        })
        .collect();
    let mut parts = Vec::new();
    for h in &headers {
        parts.push(Z::Raw(h));
        parts.push(Z::Rle(b'a', size));
    }
    parts.push(Z::Rle(0, 1024));
    let blob = zstd_frame(&parts);
    let (err, mib, _) = read_in_child(&blob, false);
    assert!(
        err.contains(
            "brings the metadata files collected from the image to more than 268435456 bytes"
        ),
        "{err}"
    );
    assert!(mib < 256 + 200, "peak {mib} MiB");
}

/// Guards against a zstd bomb (2.3 MB that would expand to 75 GiB): the
/// ratio limit stops it early and in bounded memory.
#[test]
fn zstd_bomb_stops_quickly() {
    let blob = zstd_frame(&[Z::Rle(0, 75 << 30)]);
    assert!(blob.len() < 2_500_000, "{}", blob.len());
    let (err, mib, secs) = read_in_child(&blob, true);
    assert!(err.contains("expands more than 1000 times"), "{err}");
    assert!(err.contains("max-decompression-ratio"), "{err}");
    assert!(mib < 200, "peak {mib} MiB");
    assert!(secs < 60.0, "{secs} s");
}

// ---------------------------------------------------------------- credentials

use crate::common::registry::{
    AuthKind, Fault, FaultProxy, LayoutBuilder, PASSWORD, SeenRequest, USER, read_request, respond,
};
use imagelock::resolve::auth::{CredentialStore, Credentials, Secret};
use imagelock::resolve::{Registry, RegistryOptions};

type Handler =
    dyn Fn(&SeenRequest, &str) -> (String, Vec<(&'static str, String)>, Vec<u8>) + Send + Sync;

/// A request and its body.
type Recorded = (SeenRequest, Vec<u8>);

/// A loopback server answering by `handler(request, own base URL)` and
/// recording every request with its body. `localhost` names it, so it is
/// another origin than `127.0.0.1` servers.
struct Scripted {
    base: String,
    seen: Arc<std::sync::Mutex<Vec<Recorded>>>,
}

impl Scripted {
    fn start(handler: Box<Handler>) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://localhost:{}", listener.local_addr().unwrap().port());
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (s, b) = (seen.clone(), base.clone());
        let handler: Arc<Handler> = Arc::from(handler);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let (s, b, h) = (s.clone(), b.clone(), handler.clone());
                std::thread::spawn(move || {
                    if let Some((req, body)) = read_request(&mut stream) {
                        let (status, headers, out) = h(&req, &b);
                        s.lock().unwrap().push((req, body));
                        respond(&mut stream, &status, &headers, &out);
                    }
                });
            }
        });
        Scripted { base, seen }
    }

    fn seen(&self) -> Vec<Recorded> {
        self.seen.lock().unwrap().clone()
    }
}

fn options(registry: &str, credentials: Credentials) -> RegistryOptions {
    RegistryOptions {
        credentials: CredentialStore::empty().with_credentials(registry, credentials),
        http: imagelock::resolve::http::HttpOptions {
            backoff: std::time::Duration::from_millis(50),
            ..imagelock::resolve::http::HttpOptions::default()
        },
        ..RegistryOptions::default()
    }
}

/// Guards against a blob redirect target that answers `401 Bearer
/// realm=…` getting the registry's Basic credentials at its realm.
#[tokio::test]
async fn a_redirect_targets_challenge_never_gets_the_registrys_credentials() {
    let Some(server) = crate::common::registry::server(AuthKind::Htpasswd) else {
        return;
    };
    let dir = tempdir();
    let layout = dir.path().join("layout");
    let mut b = LayoutBuilder::new(&layout);
    let m = b.manifest("amd64", None, "foreign-challenge");
    b.tag_manifest(&m, "fc");
    server.push(&layout, "fc", "security/foreign:1", false);

    let evil = Scripted::start(Box::new(|req, base| {
        if req.path.starts_with("/token") {
            return ("200 OK".into(), vec![], br#"{"token":"stolen"}"#.to_vec());
        }
        (
            "401 Unauthorized".into(),
            vec![(
                "WWW-Authenticate",
                format!(r#"Bearer realm="{base}/token",service="evil""#),
            )],
            vec![],
        )
    }));
    let proxy = FaultProxy::start(&server.addr);
    proxy.inject("/blobs/", Fault::Redirect(evil.base.clone()), 1);
    let registry = Registry::new(options(
        &proxy.addr,
        Credentials::Basic {
            username: USER.into(),
            password: Secret::new(PASSWORD),
        },
    ))
    .unwrap();
    let image =
        imagelock::oci::ImageRef::parse(&format!("{}/security/foreign:1", proxy.addr)).unwrap();
    let err = registry.resolve(&image, &[]).await.unwrap_err().to_string();
    assert!(err.contains("asks for credentials"), "{err}");
    assert!(err.contains("hint:"), "{err}");
    let seen = evil.seen();
    eprintln!("the other host saw {} requests", seen.len());
    assert!(
        !seen.is_empty(),
        "the blob was redirected to the other host"
    );
    for (req, _) in &seen {
        assert!(!req.path.starts_with("/token"), "token request: {req:?}");
        assert!(!req.headers.contains_key("authorization"), "{req:?}");
    }
}

/// Guards against a token endpoint redirecting the POSTed `refresh_token`
/// to another origin.
#[tokio::test]
async fn a_token_redirect_never_carries_the_refresh_token_elsewhere() {
    let thief = Scripted::start(Box::new(|_, _| {
        ("200 OK".into(), vec![], br#"{"token":"t"}"#.to_vec())
    }));
    let thief_base = thief.base.clone();
    // The registry: Bearer auth whose token endpoint redirects (307 keeps
    // the method and body) to the thief.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let realm = format!("http://{addr}/token");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let Some((req, _)) = read_request(&mut stream) else {
                continue;
            };
            if req.path.starts_with("/token") {
                respond(
                    &mut stream,
                    "307 Temporary Redirect",
                    &[("Location", format!("{thief_base}/token"))],
                    b"",
                );
            } else {
                respond(
                    &mut stream,
                    "401 Unauthorized",
                    &[(
                        "WWW-Authenticate",
                        format!(r#"Bearer realm="{realm}",service="reg""#),
                    )],
                    b"",
                );
            }
        }
    });
    let registry = Registry::new(options(
        &addr,
        Credentials::IdentityToken(Secret::new("refresh-SECRET-123")),
    ))
    .unwrap();
    let image = imagelock::oci::ImageRef::parse(&format!("{addr}/a/b:1")).unwrap();
    let err = registry.resolve(&image, &[]).await.unwrap_err().to_string();
    assert!(err.contains("another origin"), "{err}");
    assert!(!err.contains("refresh-SECRET-123"), "{err}");
    for (req, body) in thief.seen() {
        assert!(
            !String::from_utf8_lossy(&body).contains("refresh-SECRET-123")
                && !req.path.contains("refresh-SECRET-123"),
            "{req:?}"
        );
    }
}

// ---------------------------------------------------------------- redaction

/// Guards against a conda channel token (`/t/<token>/`) and an index
/// password reaching the lock or the conda explicit export.
#[test]
fn channel_tokens_and_index_passwords_never_reach_locks_or_exports() {
    use crate::common::{fixture, imagelock, run};
    let served = tempdir();
    std::fs::create_dir_all(served.path().join("t")).unwrap();
    std::os::unix::fs::symlink(
        fixture("world/conda"),
        served.path().join("t/tok-SECRET-42"),
    )
    .unwrap();
    let channels = StaticServer::start(served.path());
    let index = StaticServer::start(fixture("world/pypi"));
    let dir = tempdir();
    std::fs::create_dir_all(dir.path().join("conda")).unwrap();
    std::fs::create_dir_all(dir.path().join("pip")).unwrap();
    std::fs::write(
        dir.path().join("conda/Dockerfile"),
        "FROM condaforge/miniforge3:24.3.0-0\nRUN conda install -y numpy\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("pip/Dockerfile"),
        "FROM python:3.11-slim\nRUN pip install --no-cache-dir idna\n",
    )
    .unwrap();
    let images = fixture("world/images/docker.io");
    std::fs::write(
        dir.path().join("imagelock.toml"),
        format!(
            r#"platforms = ["linux/amd64"]
[images.conda]
file = "conda/Dockerfile"
[images.pip]
file = "pip/Dockerfile"
[conda]
channels = ["conda-forge"]
custom-channels = {{ conda-forge = "{}/t/tok-SECRET-42" }}
[pypi]
index-url = "http://me:pw-SECRET-43@{}/simple"
[registries."docker.io"]
location = "oci:{}"
"#,
            channels.url(),
            index.addr,
            images.display()
        ),
    )
    .unwrap();
    let (code, out, err) = run(imagelock()
        .current_dir(dir.path())
        .env("IMAGELOCK_CACHE_DIR", dir.path().join("cache"))
        .arg("freeze"));
    assert_eq!(code, 0, "{err}");
    for text in [&out, &err] {
        assert!(!text.contains("SECRET"), "{text}");
    }
    let conda = std::fs::read_to_string(dir.path().join("lockfiles/conda.lock")).unwrap();
    let pip = std::fs::read_to_string(dir.path().join("lockfiles/pip.lock")).unwrap();
    assert!(conda.contains("/t/<TOKEN>/conda-forge"), "{conda}");
    assert!(!conda.contains("SECRET"), "{conda}");
    assert!(
        pip.contains(&format!("http://{}/simple", index.addr)),
        "{pip}"
    );
    assert!(!pip.contains("SECRET"), "{pip}");
    // Redacted locks stay current for their inputs.
    let (code, out, err) = run(imagelock().current_dir(dir.path()).arg("verify"));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        !out.contains("SECRET") && !err.contains("SECRET"),
        "{out}{err}"
    );
    let (code, out, err) = run(imagelock().current_dir(dir.path()).args([
        "export",
        "--to",
        "conda-explicit",
        "conda",
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(
        !out.contains("SECRET") && out.contains("/t/<TOKEN>/"),
        "{out}"
    );
    let (code, out, err) =
        run(imagelock()
            .current_dir(dir.path())
            .args(["export", "--to", "requirements", "pip"]));
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("SECRET"), "{out}");

    // Failing, the messages name the channel and the index without secrets.
    let config = std::fs::read_to_string(dir.path().join("imagelock.toml"))
        .unwrap()
        .replace(&channels.url(), "http://127.0.0.1:9")
        .replace(&index.addr.to_string(), "127.0.0.1:9");
    std::fs::write(dir.path().join("imagelock.toml"), config).unwrap();
    std::fs::remove_dir_all(dir.path().join("cache")).unwrap();
    for image in ["conda", "pip"] {
        let (code, out, err) = run(imagelock()
            .current_dir(dir.path())
            .env("IMAGELOCK_CACHE_DIR", dir.path().join("cache"))
            .args(["-vv", "freeze", image]));
        assert_eq!(code, 2, "{out}\n{err}");
        assert!(err.contains("127.0.0.1:9"), "{err}");
        assert!(!err.contains("SECRET") && !out.contains("SECRET"), "{err}");
    }
}

// ---------------------------------------------------------------- escaping

/// Guards against a tar entry named `ESC[2J` clearing the terminal: the
/// error that names it shows the escape, never the raw byte.
#[test]
fn control_characters_from_an_image_are_escaped() {
    use crate::common::{imagelock, run};
    let path = "usr/lib/python3.11/site-packages/\x1b[2Jx-1.0.dist-info/METADATA";
    let size = 65 << 20;
    let blob = zstd_frame(&[
        Z::Raw(&tar_header(path, b'0', size)),
        Z::Rle(b'a', size),
        Z::Rle(0, 1024),
    ]);
    let dir = tempdir();
    let layouts = dir.path().join("images");
    hostile_layout(&layouts.join("library/evil"), &blob);
    std::fs::create_dir_all(dir.path().join("app")).unwrap();
    std::fs::write(dir.path().join("app/Dockerfile"), "FROM evil:bad\n").unwrap();
    std::fs::write(
        dir.path().join("imagelock.toml"),
        format!(
            "platforms = [\"linux/amd64\"]\n[images.app]\nfile = \"app/Dockerfile\"\n[registries.\"docker.io\"]\nlocation = \"oci:{}\"\n",
            layouts.display()
        ),
    )
    .unwrap();
    let (code, out, err) = run(imagelock()
        .current_dir(dir.path())
        .env("IMAGELOCK_CACHE_DIR", dir.path().join("cache"))
        .arg("freeze"));
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(!err.contains('\x1b') && !out.contains('\x1b'), "{err:?}");
    assert!(err.contains("\\x1b[2Jx-1.0.dist-info"), "{err}");
}

// ---------------------------------------------------------------- lock reader

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

    /// The lockfile reader never panics on a committed lock with a line
    /// removed, repeated or cut, or bytes replaced; what it accepts writes
    /// back to a lock it reads again. (The same property as the `lockfile`
    /// fuzz target.)
    #[test]
    fn lock_reader_survives_mutated_locks(
        which in 0usize..64,
        line in 0usize..4096,
        op in 0u8..4,
        at in 0usize..256,
        with in proptest::string::string_regex("[\\x00-\\x7f]{0,6}").unwrap(),
    ) {
        let mut locks: Vec<_> = std::fs::read_dir(crate::common::repo_root().join("lockfiles"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "lock"))
            .collect();
        locks.sort();
        let path = &locks[which % locks.len()];
        let text = std::fs::read_to_string(path).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        let i = line % lines.len();
        match op {
            0 => {
                lines.remove(i);
            }
            1 => {
                let l = lines[i].clone();
                lines.insert(i, l);
            }
            2 => {
                let l = &mut lines[i];
                let cut = l.char_indices().map(|(k, _)| k).nth(at % (l.chars().count() + 1)).unwrap_or(l.len());
                l.truncate(cut);
            }
            _ => {
                let l = &mut lines[i];
                let k = l.char_indices().map(|(k, _)| k).nth(at % (l.chars().count() + 1)).unwrap_or(l.len());
                l.insert_str(k, &with);
            }
        }
        let mutated = lines.join("\n");
        let p = std::path::Path::new("lockfiles/x.lock");
        if let Ok(lock) = imagelock::lock::LockedImage::from_toml(p, &mutated) {
            let written = lock.to_toml();
            imagelock::lock::LockedImage::from_toml(p, &written).unwrap();
        }
    }
}

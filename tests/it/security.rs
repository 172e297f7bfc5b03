//! Hostile registries, indexes and images (issue 15): each case ends in a
//! clear error or a correct result, never a panic, within a stated bound.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;

use imagelock::resolve::pypi::{self, Fetcher, IndexClient};
use imagelock::solve::python::{Libc, PinnedPackage, ResolveRequest, SolveError, TargetEnv};

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
    let fetch = Fetcher::new(None, false, Default::default()).unwrap();
    let client = Arc::new(IndexClient::new(fetch, &[index.to_string()], true).unwrap());
    let target = Arc::new(
        TargetEnv::cpython(
            Some("3.11"),
            "linux/amd64",
            Some(Libc::glibc("2.28").unwrap()),
        )
        .unwrap(),
    );
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
        out[0]
            .to_lock("linux/amd64")
            .unwrap()
            .file
            .is_some_and(|f| f.starts_with("confuse-")),
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

//! Apptainer bases pulled by the `oras` and `library` agents: pinned where
//! they live (the real test registry for an ORAS artifact pushed here with
//! plain HTTP requests; a local server implementing the Library API
//! endpoints Apptainer's library client uses), their state read from the
//! SIF they are, rewritten to the pinned form Apptainer pulls, and a moved
//! tag reported by drift.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::common::http::StaticServer;
use crate::common::pyindex::PyIndex;
use crate::common::registry::{AuthKind, server, sha256};
use crate::common::{imagelock, run, tempdir};
use crate::sif::{mksquashfs, root_fs, write_sif};

/// A SIF with a Debian-like root: Python 3.11 in `/usr/local` with
/// `tinypkg` at `version`, as `apptainer build` lays a SIF out.
fn base_sif(dir: &Path, version: &str) -> Vec<u8> {
    let root = dir.join(format!("root-{version}"));
    root_fs(&root, version);
    // glibc, known by the banner its library carries.
    let libc = root.join("usr/lib/x86_64-linux-gnu/libc.so.6");
    std::fs::create_dir_all(libc.parent().unwrap()).unwrap();
    std::fs::write(
        &libc,
        "\x7fELF GNU C Library (Debian GLIBC 2.36-9+deb12u4) stable release version 2.36.\n",
    )
    .unwrap();
    let squashfs = mksquashfs(&root, &dir.join(format!("root-{version}.sqfs")));
    let path = dir.join(format!("base-{version}.sif"));
    write_sif(&path, b"Bootstrap: scratch\n", &squashfs);
    std::fs::read(&path).unwrap()
}

/// One HTTP/1.1 request over a fresh connection: status, headers, body.
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, BTreeMap<String, String>, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut reader = BufReader::new(s);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    let code: u16 = status.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut out = BTreeMap::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            out.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).unwrap();
    (code, out, rest)
}

/// Uploads a blob (`POST` then `PUT ?digest=`), as any registry client.
fn push_blob(addr: &str, repo: &str, bytes: &[u8]) -> String {
    push_blob_as(addr, repo, bytes, &[])
}

/// [`push_blob`] with extra headers (credentials).
fn push_blob_as(addr: &str, repo: &str, bytes: &[u8], auth: &[(&str, &str)]) -> String {
    let digest = sha256(bytes);
    let (code, headers, _) = http(
        addr,
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        auth,
        b"",
    );
    assert_eq!(code, 202, "upload start");
    let location = &headers["location"];
    let path = location
        .strip_prefix(&format!("http://{addr}"))
        .unwrap_or(location);
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut put = vec![("Content-Type", "application/octet-stream")];
    put.extend_from_slice(auth);
    let (code, _, body) = http(
        addr,
        "PUT",
        &format!("{path}{sep}digest={digest}"),
        &put,
        bytes,
    );
    assert_eq!(code, 201, "{}", String::from_utf8_lossy(&body));
    digest
}

/// Pushes `sif` as `apptainer push oras://…` does: an OCI manifest with
/// the empty `{}` config of type `application/vnd.sylabs.sif.config.v1+json`
/// and the SIF as its one layer. Returns (manifest digest, SIF digest).
fn push_oras(addr: &str, repo: &str, tag: &str, sif: &[u8]) -> (String, String) {
    push_oras_as(addr, repo, tag, sif, &[])
}

/// [`push_oras`] with extra headers (credentials).
fn push_oras_as(
    addr: &str,
    repo: &str,
    tag: &str,
    sif: &[u8],
    auth: &[(&str, &str)],
) -> (String, String) {
    let config = push_blob_as(addr, repo, b"{}", auth);
    let layer = push_blob_as(addr, repo, sif, auth);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.sylabs.sif.config.v1+json",
            "digest": config,
            "size": 2,
        },
        "layers": [{
            "mediaType": "application/vnd.sylabs.sif.layer.v1.sif",
            "digest": layer,
            "size": sif.len(),
            "annotations": {"org.opencontainers.image.title": "base.sif"},
        }],
    }))
    .unwrap();
    let mut put = vec![("Content-Type", "application/vnd.oci.image.manifest.v1+json")];
    put.extend_from_slice(auth);
    let (code, _, body) = http(
        addr,
        "PUT",
        &format!("/v2/{repo}/manifests/{tag}"),
        &put,
        &manifest,
    );
    assert_eq!(code, 201, "{}", String::from_utf8_lossy(&body));
    (sha256(&manifest), layer)
}

/// A package index with `app` (needing `lib`) for the `%post` step.
fn index(dir: &Path) -> StaticServer {
    let mut ix = PyIndex::new(&dir.join("index"));
    ix.wheel("lib", "1.0", &[]);
    ix.wheel("app", "1.0", &["lib>=1"]);
    StaticServer::start(dir.join("index"))
}

fn imagelock_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    run(imagelock()
        .current_dir(dir)
        .env("IMAGELOCK_CACHE_DIR", dir.join("cache"))
        .args(args))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// `Bootstrap: oras`: the tag becomes the manifest digest at the registry,
/// the SIF layer's digest is recorded, the `%post pip install` resolves
/// against the Python read from that SIF, and rewrite writes
/// `REPO:TAG@sha256:…`; a tag pushed again is a base finding of drift.
#[test]
fn an_oras_base_is_pinned_at_the_registry_and_read_from_its_sif() {
    if !crate::common::require_tool("mksquashfs", "apt-get install -y squashfs-tools") {
        return;
    }
    let Some(registry) = server(AuthKind::Open) else {
        return;
    };
    let dir = tempdir();
    let d = dir.path();
    let sif = base_sif(d, "1.0");
    let (manifest, layer) = push_oras(&registry.addr, "sif/oras-base", "1", &sif);
    let index = index(d);
    let from = format!("{}/sif/oras-base:1", registry.addr);
    std::fs::write(
        d.join("app.def"),
        format!("Bootstrap: oras\nFrom: {from}\n\n%post\n    pip install app==1.0\n"),
    )
    .unwrap();
    std::fs::write(
        d.join("imagelock.toml"),
        format!(
            "[images.app]\nfile = \"app.def\"\n\n[pypi]\nindex-url = \"{}/simple/\"\n",
            index.url()
        ),
    )
    .unwrap();

    let (code, out, err) = imagelock_in(d, &["freeze"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let lock = read(&d.join("lockfiles/app.lock"));
    assert!(lock.contains("agent = \"oras\""), "{lock}");
    assert!(
        lock.contains(&format!("name = \"oras://{from}\"")),
        "{lock}"
    );
    assert!(lock.contains(&format!("digest = \"{manifest}\"")), "{lock}");
    assert!(lock.contains(&layer), "the SIF layer's digest: {lock}");
    assert!(!lock.contains("docker.io"), "{lock}");
    // The step locked on top of the SIF's Python.
    assert!(
        lock.contains("name = \"app\"") && lock.contains("name = \"lib\""),
        "{lock}"
    );
    assert!(!err.contains("not locked"), "{err}");
    let (code, bom, err) = imagelock_in(d, &["export", "--to", "sbom", "app"]);
    assert_eq!(code, 0, "{err}");
    let purl = format!(
        "pkg:oci/oras-base@{}?repository_url={}",
        manifest.replace(':', "%3A"),
        format!("{}/sif/oras-base", registry.addr)
            .replace(':', "%3A")
            .replace('/', "%2F")
    );
    assert!(bom.contains(&purl), "{purl}\n{bom}");

    let (code, out, err) = imagelock_in(d, &["rewrite"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let def = read(&d.join("app.def"));
    assert!(def.contains(&format!("From: {from}@{manifest}\n")), "{def}");
    let rewritten = read(&d.join("lockfiles/app.lock"));
    let (code, out, err) = imagelock_in(d, &["verify"]);
    assert_eq!(code, 0, "{out}\n{err}");
    // Freezing the pinned file gives the lock rewrite wrote.
    let (code, out, err) = imagelock_in(d, &["freeze"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(read(&d.join("lockfiles/app.lock")), rewritten);

    // The tag moves: drift of the tag (the definition as first written)
    // names the base and the new digest.
    std::fs::write(
        d.join("app.def"),
        format!("Bootstrap: oras\nFrom: {from}\n\n%post\n    pip install app==1.0\n"),
    )
    .unwrap();
    let (code, out, err) = imagelock_in(d, &["freeze"]);
    assert_eq!(code, 0, "{out}\n{err}");
    // A lock edited to a manifest the registry does not have is refused,
    // naming the lock line.
    let good = read(&d.join("lockfiles/app.lock"));
    let bogus = format!("sha256:{}", "0".repeat(64));
    std::fs::write(
        d.join("lockfiles/app.lock"),
        good.replace(&manifest, &bogus),
    )
    .unwrap();
    let (code, out, err) = imagelock_in(d, &["freeze"]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        err.contains("has nothing under that digest") && err.contains("app.lock:"),
        "{err}"
    );
    std::fs::write(d.join("lockfiles/app.lock"), &good).unwrap();

    let newer = base_sif(d, "2.0");
    let (moved, _) = push_oras(&registry.addr, "sif/oras-base", "1", &newer);
    let (code, out, err) = imagelock_in(d, &["drift", "--format", "json", "--fail-on", "base"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains(&format!("oras://{from}")) && out.contains(&moved),
        "{out}"
    );
    // freeze keeps the pin; --update-base moves it.
    let (code, _, err) = imagelock_in(d, &["freeze"]);
    assert_eq!(code, 0, "{err}");
    assert!(read(&d.join("lockfiles/app.lock")).contains(&manifest));
    let (code, _, err) = imagelock_in(d, &["freeze", "--update-base"]);
    assert_eq!(code, 0, "{err}");
    assert!(read(&d.join("lockfiles/app.lock")).contains(&moved));
}

/// A registry that wants credentials gets those of `DOCKER_CONFIG` for
/// the manifest and the SIF blob alike; without them freeze fails naming
/// the registry, and the password shows nowhere.
#[test]
fn an_oras_base_of_a_private_registry_is_pinned_with_its_credentials() {
    use crate::common::registry::{PASSWORD, USER};
    use base64::Engine as _;
    if !crate::common::require_tool("mksquashfs", "apt-get install -y squashfs-tools") {
        return;
    }
    let Some(registry) = server(AuthKind::Htpasswd) else {
        return;
    };
    let dir = tempdir();
    let d = dir.path();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let basic = format!("Basic {auth}");
    let sif = base_sif(d, "1.0");
    let (manifest, _) = push_oras_as(
        &registry.addr,
        "sif/private",
        "1",
        &sif,
        &[("Authorization", basic.as_str())],
    );
    let index = index(d);
    std::fs::write(
        d.join("app.def"),
        format!(
            "Bootstrap: oras\nFrom: {}/sif/private:1\n\n%post\n    pip install app==1.0\n",
            registry.addr
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("imagelock.toml"),
        format!(
            "[images.app]\nfile = \"app.def\"\n\n[pypi]\nindex-url = \"{}/simple/\"\n",
            index.url()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(d.join("docker")).unwrap();
    std::fs::write(
        d.join("docker/config.json"),
        format!(
            "{{\"auths\": {{\"{}\": {{\"auth\": \"{auth}\"}}}}}}",
            registry.addr
        ),
    )
    .unwrap();
    let freeze = |config: &str| {
        run(imagelock()
            .current_dir(d)
            .env("IMAGELOCK_CACHE_DIR", d.join("cache"))
            .env("DOCKER_CONFIG", d.join(config))
            .args(["freeze"]))
    };
    let (code, out, err) = freeze("no-docker");
    assert_eq!(code, 2, "anonymous is refused: {out}\n{err}");
    assert!(err.contains(&registry.addr), "{err}");
    let (code, out, err) = freeze("docker");
    assert_eq!(code, 0, "{out}\n{err}");
    let lock = read(&d.join("lockfiles/app.lock"));
    assert!(
        lock.contains(&manifest) && lock.contains("name = \"app\""),
        "{lock}"
    );
    for text in [&lock, &out, &err] {
        assert!(!text.contains(PASSWORD), "{text}");
    }
}

/// An ORAS tag that is not a SIF (an ordinary image) is refused, naming it.
#[test]
fn an_oras_reference_to_something_else_than_a_sif_is_refused() {
    let Some(registry) = server(AuthKind::Open) else {
        return;
    };
    let dir = tempdir();
    let d = dir.path();
    let config = push_blob(&registry.addr, "sif/not-sif", b"{}");
    let layer = push_blob(&registry.addr, "sif/not-sif", b"not a tar");
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": 9}],
    }))
    .unwrap();
    let (code, _, _) = http(
        &registry.addr,
        "PUT",
        "/v2/sif/not-sif/manifests/1",
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        &manifest,
    );
    assert_eq!(code, 201);
    std::fs::write(
        d.join("app.def"),
        format!("Bootstrap: oras\nFrom: {}/sif/not-sif:1\n", registry.addr),
    )
    .unwrap();
    let (code, out, err) = imagelock_in(d, &["freeze", "app.def"]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        err.contains("is not a SIF image")
            && err.contains("application/vnd.oci.image.layer.v1.tar"),
        "{err}"
    );
}

/// A Library API service on 127.0.0.1: `GET /v1/images/PATH:TAG?arch=`
/// answers `{"data": {"hash": "sha256.…", …}}` for a tag or a hash, and
/// `GET /v1/imagefile/PATH:TAG?arch=` redirects (303) to the file, as
/// Sylabs' library does. Tags can be moved while it runs.
struct Library {
    addr: String,
    /// `PATH:TAG` → SIF bytes (amd64 only).
    tags: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
    /// Request lines seen.
    seen: Arc<Mutex<Vec<String>>>,
    /// Serve files with their last byte changed.
    corrupt: Arc<std::sync::atomic::AtomicBool>,
}

impl Library {
    fn start() -> Library {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let tags: Arc<Mutex<BTreeMap<String, Vec<u8>>>> = Arc::default();
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let corrupt: Arc<std::sync::atomic::AtomicBool> = Arc::default();
        let (t, s, c) = (tags.clone(), seen.clone(), corrupt.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (t, s, c) = (t.clone(), s.clone(), c.clone());
                std::thread::spawn(move || serve(stream, &t, &s, &c));
            }
        });
        Library {
            addr,
            tags,
            seen,
            corrupt,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Uploads `sif` and points `PATH:TAG` at it; images stay after their
    /// tag moves (`PATH@HEX`), as in a Library.
    fn tag(&self, path_tag: &str, sif: Vec<u8>) {
        let (path, _) = path_tag.rsplit_once(':').unwrap();
        let hex = sha256(&sif).replace("sha256:", "");
        let mut tags = self.tags.lock().unwrap();
        tags.insert(format!("{path}@{hex}"), sif.clone());
        tags.insert(path_tag.to_string(), sif);
    }
}

fn serve(
    stream: TcpStream,
    tags: &Mutex<BTreeMap<String, Vec<u8>>>,
    seen: &Mutex<Vec<String>>,
    corrupt: &std::sync::atomic::AtomicBool,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
    }
    seen.lock().unwrap().push(line.trim().to_string());
    let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut out = stream;
    let respond = |out: &mut TcpStream, status: &str, headers: &str, body: &[u8]| {
        let _ = out.write_all(
            format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n",
                body.len()
            )
            .as_bytes(),
        );
        let _ = out.write_all(body);
    };
    if query != "arch=amd64" && !path.starts_with("/download/") {
        respond(&mut out, "404 Not Found", "", b"{\"error\":{\"code\":404}}");
        return;
    }
    let find = |key: &str| -> Option<Vec<u8>> {
        let tags = tags.lock().unwrap();
        if let Some(sif) = tags.get(key) {
            return Some(sif.clone());
        }
        // A hash in place of the tag names the image with that hash.
        let (p, hash) = key.rsplit_once(':')?;
        let hex = hash.strip_prefix("sha256.")?;
        tags.get(&format!("{p}@{hex}")).cloned()
    };
    if let Some(key) = path.strip_prefix("/v1/images/") {
        match find(key) {
            Some(sif) => {
                let body = serde_json::to_vec(&serde_json::json!({"data": {
                    "hash": sha256(&sif).replace("sha256:", "sha256."),
                    "size": sif.len(),
                    "arch": "amd64",
                    "uploaded": true,
                }}))
                .unwrap();
                respond(
                    &mut out,
                    "200 OK",
                    "Content-Type: application/json\r\n",
                    &body,
                );
            }
            None => respond(&mut out, "404 Not Found", "", b"{\"error\":{\"code\":404}}"),
        }
    } else if let Some(key) = path.strip_prefix("/v1/imagefile/") {
        match find(key) {
            Some(sif) => {
                let hex = sha256(&sif).replace("sha256:", "");
                respond(
                    &mut out,
                    "303 See Other",
                    &format!("Location: /download/{hex}\r\n"),
                    b"",
                );
            }
            None => respond(&mut out, "404 Not Found", "", b""),
        }
    } else if let Some(hex) = path.strip_prefix("/download/") {
        let sif = tags
            .lock()
            .unwrap()
            .values()
            .find(|v| sha256(v) == format!("sha256:{hex}"))
            .cloned();
        match sif {
            Some(mut sif) => {
                if corrupt.load(std::sync::atomic::Ordering::Relaxed)
                    && let Some(last) = sif.last_mut()
                {
                    *last ^= 1;
                }
                respond(
                    &mut out,
                    "200 OK",
                    "Content-Type: application/octet-stream\r\n",
                    &sif,
                );
            }
            None => respond(&mut out, "404 Not Found", "", b""),
        }
    } else {
        respond(&mut out, "404 Not Found", "", b"");
    }
}

/// `Bootstrap: library`: the tag becomes the Library's image hash for
/// amd64 (from the `Library:` header, or `[apptainer] library`), the SIF is
/// downloaded, checked against it and read, the `%post pip install` locks,
/// and rewrite writes `CONTAINER:sha256.HEX`; a moved tag is a base finding
/// of drift. Nothing is asked of Docker Hub.
#[test]
fn a_library_base_is_pinned_by_its_image_hash_and_read_from_its_sif() {
    if !crate::common::require_tool("mksquashfs", "apt-get install -y squashfs-tools") {
        return;
    }
    let dir = tempdir();
    let d = dir.path();
    let library = Library::start();
    let sif = base_sif(d, "1.0");
    let hash = sha256(&sif);
    let hex = hash.trim_start_matches("sha256:").to_string();
    library.tag("lab/tools/base:1", sif);
    let index = index(d);
    let post = "\n%post\n    pip install app==1.0\n";
    let header_def = format!(
        "Bootstrap: library\nLibrary: {}\nFrom: lab/tools/base:1\n{post}",
        library.url()
    );
    std::fs::write(d.join("header.def"), &header_def).unwrap();
    std::fs::write(
        d.join("config.def"),
        format!("Bootstrap: library\nFrom: library://lab/tools/base:1\n{post}"),
    )
    .unwrap();
    std::fs::write(
        d.join("imagelock.toml"),
        format!(
            "[images.header]\nfile = \"header.def\"\n\n[images.config]\nfile = \"config.def\"\n\n\
             [apptainer]\nlibrary = \"{}\"\n\n[pypi]\nindex-url = \"{}/simple/\"\n",
            library.url(),
            index.url()
        ),
    )
    .unwrap();

    let (code, out, err) = imagelock_in(d, &["freeze"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let name = format!("library://{}/lab/tools/base:1", library.addr);
    for image in ["header", "config"] {
        let lock = read(&d.join(format!("lockfiles/{image}.lock")));
        assert!(lock.contains("agent = \"library\""), "{lock}");
        assert!(lock.contains("pinned = \"file-sha256\""), "{lock}");
        assert!(lock.contains(&format!("name = \"{name}\"")), "{lock}");
        assert!(lock.contains(&format!("digest = \"{hash}\"")), "{lock}");
        assert!(
            lock.contains("media-type = \"application/vnd.sylabs.sif.layer.v1.sif\""),
            "{lock}"
        );
        assert!(!lock.contains("docker.io"), "{lock}");
        assert!(
            lock.contains("name = \"app\"") && lock.contains("name = \"lib\""),
            "{lock}"
        );
    }
    // The SBOM names the SIF by its hash, never as an OCI image.
    let (code, bom, err) = imagelock_in(d, &["export", "--to", "sbom", "header"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        bom.contains(&format!("sif:{hash}")) && !bom.contains("pkg:oci"),
        "{bom}"
    );
    let seen = library.seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .any(|l| l.starts_with("GET /v1/images/lab/tools/base:1?arch=amd64 ")),
        "{seen:?}"
    );
    // The file is fetched by the hash, not the tag.
    assert!(
        seen.iter().any(|l| l.starts_with(&format!(
            "GET /v1/imagefile/lab/tools/base:sha256.{hex}?arch=amd64 "
        ))),
        "{seen:?}"
    );

    // The tag moves: drift names the base and the new hash; freeze keeps
    // the pin until --update-base.
    let newer = base_sif(d, "2.0");
    let moved = sha256(&newer);
    library.tag("lab/tools/base:1", newer);
    let (code, out, err) = imagelock_in(d, &["drift", "--format", "json", "--fail-on", "base"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains(&name) && out.contains(&moved), "{out}");
    let (code, out, err) = imagelock_in(d, &["freeze", "--check", "--update-base"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains(&moved), "{out}");
    let (code, out, err) = imagelock_in(d, &["freeze", "--check"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, _, err) = imagelock_in(d, &["freeze"]);
    assert_eq!(code, 0, "{err}");
    assert!(read(&d.join("lockfiles/header.lock")).contains(&hash));

    // rewrite: the hash in place of the tag, in both spellings.
    let (code, out, err) = imagelock_in(d, &["rewrite"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        read(&d.join("header.def")).contains(&format!("From: lab/tools/base:sha256.{hex}\n")),
        "{}",
        read(&d.join("header.def"))
    );
    assert!(
        read(&d.join("config.def"))
            .contains(&format!("From: library://lab/tools/base:sha256.{hex}\n")),
        "{}",
        read(&d.join("config.def"))
    );
    let rewritten = read(&d.join("lockfiles/header.lock"));
    let (code, out, err) = imagelock_in(d, &["verify"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = imagelock_in(d, &["freeze", "--update-base"]);
    assert_eq!(code, 0, "{out}\n{err}");
    // The pinned file still pulls the hash it names, whatever the tag does.
    assert_eq!(read(&d.join("lockfiles/header.lock")), rewritten);
}

/// Offline with no lock yet, a library base cannot be pinned: the lock
/// has no entry and coverage says why, at its line; nothing is looked up
/// anywhere else.
#[test]
fn an_unpinned_library_base_is_reported_not_locked() {
    let dir = tempdir();
    let d = dir.path();
    std::fs::write(
        d.join("app.def"),
        "Bootstrap: library\nFrom: library/default/alpine:3.18\n\n%post\n    echo hi\n",
    )
    .unwrap();
    let (code, out, err) = imagelock_in(d, &["freeze", "--offline", "app.def"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("`Bootstrap: library` base `library/default/alpine:3.18` is not pinned"),
        "{err}"
    );
    assert!(err.contains("the lock has no Library image hash"), "{err}");
    let lock = read(&d.join("lockfiles/app.lock"));
    assert!(
        !lock.contains("[[bases]]") && !lock.contains("docker.io"),
        "{lock}"
    );
}

/// What the Library serves is checked: a file that does not hash to the
/// image hash is refused, and one that is not a SIF is named as such.
#[test]
fn a_library_file_is_checked_against_its_hash_and_read_as_a_sif() {
    let dir = tempdir();
    let d = dir.path();
    let library = Library::start();
    library.tag("e/c/bad:1", b"not a SIF at all".to_vec());
    std::fs::write(
        d.join("app.def"),
        format!(
            "Bootstrap: library\nLibrary: {}\nFrom: e/c/bad:1\n\n%post\n    echo hi\n",
            library.url()
        ),
    )
    .unwrap();
    library
        .corrupt
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let (code, out, err) = imagelock_in(d, &["freeze", "app.def"]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(err.contains("not the image hash"), "{err}");
    assert!(!d.join("lockfiles/app.lock").exists());
    library
        .corrupt
        .store(false, std::sync::atomic::Ordering::Relaxed);
    let (code, out, err) = imagelock_in(d, &["freeze", "app.def"]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(err.contains("reading base `library://"), "{err}");
}

//! A real registry (the CNCF distribution registry Debian ships as
//! `docker-registry`) started on loopback three ways (open, htpasswd, token
//! auth with a token issuer of the tests' own), images pushed into it with
//! skopeo, and a fault-injecting proxy.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest as _, Sha256};

use super::require_tool;

pub const USER: &str = "tester";
pub const PASSWORD: &str = "s3cret-pw";
pub const SERVICE: &str = "imagelock-test-registry";
const ISSUER: &str = "imagelock-test-issuer";

/// How the registry authenticates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthKind {
    Open,
    Htpasswd,
    Token,
}

/// A running registry.
pub struct RegistryServer {
    /// `127.0.0.1:PORT`
    pub addr: String,
    pub kind: AuthKind,
    /// Token requests the issuer answered: their `scope` values.
    pub token_log: Arc<Mutex<Vec<String>>>,
    /// Keeps the registry alive: it is stopped when this pipe closes.
    _guard: Mutex<Child>,
    _dir: tempfile::TempDir,
}

/// Whether registry tests can run here.
pub fn tools_available() -> bool {
    require_tool("docker-registry", "apt-get install -y docker-registry")
        && require_tool("skopeo", "apt-get install -y skopeo")
        && require_tool("openssl", "apt-get install -y openssl")
}

/// The shared server of a kind, started on first use.
pub fn server(kind: AuthKind) -> Option<&'static RegistryServer> {
    static OPEN: OnceLock<Option<RegistryServer>> = OnceLock::new();
    static HTPASSWD: OnceLock<Option<RegistryServer>> = OnceLock::new();
    static TOKEN: OnceLock<Option<RegistryServer>> = OnceLock::new();
    let cell = match kind {
        AuthKind::Open => &OPEN,
        AuthKind::Htpasswd => &HTPASSWD,
        AuthKind::Token => &TOKEN,
    };
    cell.get_or_init(|| tools_available().then(|| start(kind)))
        .as_ref()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn start(kind: AuthKind) -> RegistryServer {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let token_log = Arc::new(Mutex::new(Vec::new()));
    let auth = match kind {
        AuthKind::Open => String::new(),
        AuthKind::Htpasswd => {
            let hash = bcrypt::hash(PASSWORD, 4).expect("bcrypt");
            std::fs::write(dir.path().join("htpasswd"), format!("{USER}:{hash}\n")).unwrap();
            format!(
                "auth:\n  htpasswd:\n    realm: test-realm\n    path: {}\n",
                dir.path().join("htpasswd").display()
            )
        }
        AuthKind::Token => {
            let issuer = TokenIssuer::new(dir.path(), token_log.clone());
            let realm = issuer.spawn();
            format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
                dir.path().join("cert.pem").display()
            )
        }
    };
    let config = format!(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{auth}",
        dir.path().join("data").display()
    );
    let config_path = dir.path().join("config.yml");
    std::fs::write(&config_path, config).unwrap();
    let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
    // The shell stops the registry when our end of its stdin closes, so no
    // registry outlives the test binary.
    let child = Command::new("sh")
        .arg("-c")
        .arg("docker-registry serve \"$0\" & pid=$!; cat >/dev/null; kill $pid")
        .arg(&config_path)
        .stdin(Stdio::piped())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start docker-registry");
    for _ in 0..200 {
        if let Ok(mut s) = TcpStream::connect(&addr) {
            let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n");
            let mut buf = [0u8; 12];
            if s.read_exact(&mut buf).is_ok() {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    RegistryServer {
        addr,
        kind,
        token_log,
        _guard: Mutex::new(child),
        _dir: dir,
    }
}

impl RegistryServer {
    /// skopeo's credential arguments for this registry.
    pub fn creds(&self) -> Vec<String> {
        match self.kind {
            AuthKind::Open => vec![],
            _ => vec!["--creds".into(), format!("{USER}:{PASSWORD}")],
        }
    }

    /// Pushes an OCI layout's tag to `repo:tag` here.
    pub fn push(&self, layout: &Path, layout_tag: &str, repo_tag: &str, docker_v2: bool) {
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "--quiet", "--all", "--dest-tls-verify=false"]);
        if self.kind != AuthKind::Open {
            cmd.arg("--dest-creds").arg(format!("{USER}:{PASSWORD}"));
        }
        if docker_v2 {
            cmd.args(["--format", "v2s2"]);
        }
        cmd.arg(format!("oci:{}:{layout_tag}", layout.display()))
            .arg(format!("docker://{}/{repo_tag}", self.addr));
        run(&mut cmd);
    }

    /// `skopeo inspect` output for `repo_tag`, with extra arguments.
    pub fn skopeo_inspect(&self, repo_tag: &str, extra: &[&str]) -> Vec<u8> {
        let mut cmd = Command::new("skopeo");
        cmd.args(["inspect", "--tls-verify=false"])
            .args(self.creds())
            .args(extra);
        cmd.arg(format!("docker://{}/{repo_tag}", self.addr));
        run(&mut cmd)
    }
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().expect("run a tool");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

// ---------------------------------------------------------------- images

/// Builds OCI image layouts with small real layers.
pub struct LayoutBuilder {
    pub dir: PathBuf,
    entries: Vec<serde_json::Value>,
}

/// A manifest written into a layout.
#[derive(Clone, Debug)]
pub struct BuiltManifest {
    pub descriptor: serde_json::Value,
    pub digest: String,
    pub config: String,
    pub diff_ids: Vec<String>,
}

impl LayoutBuilder {
    pub fn new(dir: &Path) -> LayoutBuilder {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        LayoutBuilder {
            dir: dir.to_path_buf(),
            entries: Vec::new(),
        }
    }

    fn blob(&self, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        std::fs::write(self.dir.join("blobs/sha256").join(&digest[7..]), bytes).unwrap();
        digest
    }

    /// A one-layer image for a platform whose file holds `seed`.
    pub fn manifest(&self, arch: &str, variant: Option<&str>, seed: &str) -> BuiltManifest {
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(seed.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        tar.append_data(&mut header, "seed.txt", seed.as_bytes())
            .unwrap();
        let tar = tar.into_inner().unwrap();
        let diff_id = sha256(&tar);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let gz = gz.finish().unwrap();
        let layer = self.blob(&gz);
        let mut platform = serde_json::json!({"architecture": arch, "os": "linux"});
        if let Some(v) = variant {
            platform["variant"] = v.into();
        }
        let mut config = serde_json::json!({
            "architecture": arch, "os": "linux",
            "config": {"Env": [format!("SEED={seed}")]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created_by": "imagelock test"}]
        });
        if let Some(v) = variant {
            config["variant"] = v.into();
        }
        let config_bytes = serde_json::to_vec(&config).unwrap();
        let config_digest = self.blob(&config_bytes);
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_bytes.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer, "size": gz.len()}]
        });
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let digest = self.blob(&bytes);
        BuiltManifest {
            descriptor: serde_json::json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest, "size": bytes.len(), "platform": platform
            }),
            digest,
            config: config_digest,
            diff_ids: vec![diff_id],
        }
    }

    /// Tags an amd64 image of the uncompressed tar `layers` (bottom
    /// first), with a plain `PATH`.
    pub fn tag_layers(&mut self, tag: &str, layers: &[&[u8]]) -> BuiltManifest {
        let diff_ids: Vec<String> = layers.iter().map(|l| sha256(l)).collect();
        let descriptors: Vec<serde_json::Value> = layers
            .iter()
            .map(|l| {
                serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                   "digest": self.blob(l), "size": l.len()})
            })
            .collect();
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids}
        }))
        .unwrap();
        let config_digest = self.blob(&config);
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": descriptors
        }))
        .unwrap();
        let digest = self.blob(&manifest);
        let built = BuiltManifest {
            descriptor: serde_json::json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest, "size": manifest.len()
            }),
            digest,
            config: config_digest,
            diff_ids,
        };
        self.tag_manifest(&built, tag);
        built
    }

    /// Tags a single-platform image.
    pub fn tag_manifest(&mut self, m: &BuiltManifest, tag: &str) {
        let mut d = m.descriptor.clone();
        d.as_object_mut().unwrap().remove("platform");
        d["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": tag});
        self.entries.push(d);
        self.write_index();
    }

    /// Tags an index of `children` plus an attestation manifest for the
    /// first child (as buildx writes them); returns the index digest.
    pub fn tag_index(&mut self, children: &[BuiltManifest], tag: &str) -> String {
        let statement = br#"{"_type":"https://in-toto.io/Statement/v0.1"}"#;
        let layer = self.blob(statement);
        let config = self.blob(b"{}");
        let attestation = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
            "layers": [{"mediaType": "application/vnd.in-toto+json", "digest": layer, "size": statement.len()}]
        });
        let att_bytes = serde_json::to_vec(&attestation).unwrap();
        let att_digest = self.blob(&att_bytes);
        let mut manifests: Vec<serde_json::Value> =
            children.iter().map(|c| c.descriptor.clone()).collect();
        manifests.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": att_digest, "size": att_bytes.len(),
            "platform": {"architecture": "unknown", "os": "unknown"},
            "annotations": {
                "vnd.docker.reference.digest": children[0].digest,
                "vnd.docker.reference.type": "attestation-manifest"
            }
        }));
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests
        });
        let bytes = serde_json::to_vec(&index).unwrap();
        let digest = self.blob(&bytes);
        self.entries.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": digest, "size": bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag}
        }));
        self.write_index();
        digest
    }

    fn write_index(&self) {
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": self.entries
        });
        std::fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec_pretty(&index).unwrap(),
        )
        .unwrap();
    }
}

// ---------------------------------------------------------------- HTTP bits

/// A request as a tiny server reads it.
#[derive(Clone, Debug)]
pub struct SeenRequest {
    pub method: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
}

/// Reads a request head (GET and HEAD only carry none; a POST body is read
/// by Content-Length).
pub fn read_request(stream: &mut TcpStream) -> Option<(SeenRequest, Vec<u8>)> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some((
        SeenRequest {
            method,
            path,
            headers,
        },
        body,
    ))
}

pub fn respond(stream: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let _ = stream.write_all(out.as_bytes());
    let _ = stream.write_all(body);
    let _ = stream.flush();
}

fn query_params(path: &str) -> Vec<(String, String)> {
    let query = path.split_once('?').map_or("", |(_, q)| q);
    reqwest::Url::parse(&format!("http://x/?{query}"))
        .map(|u| {
            u.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------- tokens

/// Issues ES256 JWTs the registry verifies against a self-signed P-256
/// certificate (the `rootcertbundle`), signed with the `openssl` CLI.
struct TokenIssuer {
    key: PathBuf,
    cert_b64: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl TokenIssuer {
    fn new(dir: &Path, log: Arc<Mutex<Vec<String>>>) -> TokenIssuer {
        let key = dir.join("key.pem");
        let cert = dir.join("cert.pem");
        run(Command::new("openssl")
            .args([
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
            ])
            .arg(&key));
        run(Command::new("openssl")
            .args([
                "req",
                "-new",
                "-x509",
                "-days",
                "2",
                "-subj",
                "/CN=imagelock-test-issuer",
                "-key",
            ])
            .arg(&key)
            .arg("-out")
            .arg(&cert));
        let der = run(Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert));
        TokenIssuer {
            key,
            cert_b64: STANDARD.encode(der),
            log,
        }
    }

    /// Serves tokens on a thread; returns the realm URL.
    fn spawn(self) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let realm = format!("http://{}/token", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                if let Some((req, _)) = read_request(&mut stream) {
                    self.answer(&mut stream, &req);
                }
            }
        });
        realm
    }

    fn answer(&self, stream: &mut TcpStream, req: &SeenRequest) {
        let params = query_params(&req.path);
        let scopes: Vec<String> = params
            .iter()
            .filter(|(k, _)| k == "scope")
            .map(|(_, v)| v.clone())
            .collect();
        self.log.lock().unwrap().push(scopes.join(" "));
        let expected = format!("Basic {}", STANDARD.encode(format!("{USER}:{PASSWORD}")));
        let authenticated = req.headers.get("authorization") == Some(&expected);
        if req.headers.contains_key("authorization") && !authenticated {
            respond(
                stream,
                "401 Unauthorized",
                &[],
                b"{\"details\":\"bad credentials\"}",
            );
            return;
        }
        // Anonymous users get no access at all; authenticated ones what they ask.
        let access: Vec<serde_json::Value> = if authenticated {
            scopes
                .iter()
                .flat_map(|s| s.split(' '))
                .filter_map(|s| {
                    let mut parts = s.splitn(3, ':');
                    let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
                    Some(serde_json::json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
                })
                .collect()
        } else {
            vec![]
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = serde_json::json!({"alg": "ES256", "typ": "JWT", "x5c": [self.cert_b64]});
        let claims = serde_json::json!({
            "iss": ISSUER, "sub": if authenticated { USER } else { "" }, "aud": SERVICE,
            "exp": now + 300, "nbf": now - 10, "iat": now,
            "jti": format!("{now}-{}", self.log.lock().unwrap().len()),
            "access": access
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap()),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap())
        );
        let signature = self.sign(signing_input.as_bytes());
        let token = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature));
        let body = serde_json::json!({"token": token, "access_token": token, "expires_in": 300});
        respond(
            stream,
            "200 OK",
            &[("Content-Type", "application/json".into())],
            &serde_json::to_vec(&body).unwrap(),
        );
    }

    /// ES256 as JOSE wants it: `r || s`, 32 bytes each, from openssl's DER.
    fn sign(&self, data: &[u8]) -> Vec<u8> {
        let mut child = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(&self.key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(data).unwrap();
        let der = child.wait_with_output().unwrap().stdout;
        // SEQUENCE { INTEGER r, INTEGER s }, short lengths for P-256.
        let mut out = Vec::with_capacity(64);
        let mut i = 2;
        for _ in 0..2 {
            assert_eq!(der[i], 0x02, "DER integer");
            let len = der[i + 1] as usize;
            let int = &der[i + 2..i + 2 + len];
            let int = if int.len() > 32 {
                &int[int.len() - 32..]
            } else {
                int
            };
            out.extend(std::iter::repeat_n(0, 32 - int.len()));
            out.extend_from_slice(int);
            i += 2 + len;
        }
        out
    }
}

// ---------------------------------------------------------------- faults

/// What the proxy does to a request whose path contains a pattern.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Close the connection without answering.
    Drop,
    /// Answer 500.
    ServerError,
    /// Answer 429 with `Retry-After` seconds.
    TooManyRequests(u32),
    /// Send the headers and half the body, then close.
    Truncate,
    /// Flip a byte of the body (length kept).
    Corrupt,
    /// Answer with a body this large.
    Huge(usize),
    /// Redirect to this base URL + the request path.
    Redirect(String),
    /// Accept, say nothing for this long, then close.
    Hang(std::time::Duration),
    /// Forward the answer in 1 KiB pieces with this pause between them.
    SlowBody(std::time::Duration),
}

impl Fault {
    /// A short name, for counting.
    pub fn name(&self) -> &'static str {
        match self {
            Fault::Drop => "reset",
            Fault::ServerError => "5xx",
            Fault::TooManyRequests(_) => "429",
            Fault::Truncate => "truncate",
            Fault::Corrupt => "corrupt",
            Fault::Huge(_) => "huge",
            Fault::Redirect(_) => "redirect",
            Fault::Hang(_) => "hang",
            Fault::SlowBody(_) => "slow body",
        }
    }
}

/// Faults injected at random: one of `faults` on `percent` % of requests,
/// from a seeded generator (so a run can be repeated).
struct RandomFaults {
    state: u64,
    percent: u64,
    faults: Vec<Fault>,
}

impl RandomFaults {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn pick(&mut self) -> Option<Fault> {
        if self.faults.is_empty() || self.next() % 100 >= self.percent {
            return None;
        }
        let i = (self.next() % self.faults.len() as u64) as usize;
        Some(self.faults[i].clone())
    }
}

/// A forwarding proxy in front of a registry that injects faults.
pub struct FaultProxy {
    pub addr: String,
    pub seen: Arc<Mutex<Vec<SeenRequest>>>,
    rules: Arc<Mutex<Vec<(String, Fault, u32)>>>,
    random: Arc<Mutex<Option<RandomFaults>>>,
    /// Faults injected at random so far, by name.
    pub injected: Arc<Mutex<BTreeMap<&'static str, usize>>>,
}

impl FaultProxy {
    pub fn start(upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let rules: Arc<Mutex<Vec<(String, Fault, u32)>>> = Arc::default();
        let random: Arc<Mutex<Option<RandomFaults>>> = Arc::default();
        let injected: Arc<Mutex<BTreeMap<&'static str, usize>>> = Arc::default();
        let (s, r, up) = (seen.clone(), rules.clone(), upstream.to_string());
        let (rnd, inj) = (random.clone(), injected.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (s, r, up) = (s.clone(), r.clone(), up.clone());
                // Random faults are drawn here, in arrival order.
                let drawn = rnd.lock().unwrap().as_mut().and_then(RandomFaults::pick);
                if let Some(f) = &drawn {
                    *inj.lock().unwrap().entry(f.name()).or_default() += 1;
                }
                std::thread::spawn(move || proxy_one(stream, &up, &s, &r, drawn));
            }
        });
        FaultProxy {
            addr,
            seen,
            rules,
            random,
            injected,
        }
    }

    /// From now on, one of `faults` on `percent` % of connections (each
    /// request of imagelock's is on a connection of its own here: the
    /// proxy answers `Connection: close`), drawn from `seed`.
    pub fn random_faults(&self, percent: u64, faults: Vec<Fault>, seed: u64) {
        *self.random.lock().unwrap() = Some(RandomFaults {
            state: seed.max(1),
            percent,
            faults,
        });
    }

    /// No more random faults.
    pub fn calm(&self) {
        *self.random.lock().unwrap() = None;
    }

    /// Applies `fault` to the next `times` requests whose path contains `pattern`.
    pub fn inject(&self, pattern: &str, fault: Fault, times: u32) {
        self.rules
            .lock()
            .unwrap()
            .push((pattern.to_string(), fault, times));
    }

    /// Requests seen whose path contains `pattern`.
    pub fn count(&self, pattern: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path.contains(pattern))
            .count()
    }
}

fn proxy_one(
    mut client: TcpStream,
    upstream: &str,
    seen: &Mutex<Vec<SeenRequest>>,
    rules: &Mutex<Vec<(String, Fault, u32)>>,
    drawn: Option<Fault>,
) {
    let Some((req, body)) = read_request(&mut client) else {
        return;
    };
    seen.lock().unwrap().push(req.clone());
    let fault = {
        let mut rules = rules.lock().unwrap();
        let hit = rules
            .iter_mut()
            .find(|(p, _, n)| *n > 0 && req.path.contains(p.as_str()));
        hit.map(|(_, f, n)| {
            *n -= 1;
            f.clone()
        })
    }
    .or(drawn);
    match &fault {
        Some(Fault::Drop) => return,
        Some(Fault::Hang(d)) => {
            std::thread::sleep(*d);
            return;
        }
        Some(Fault::ServerError) => {
            return respond(&mut client, "500 Internal Server Error", &[], b"oops");
        }
        Some(Fault::TooManyRequests(s)) => {
            return respond(
                &mut client,
                "429 Too Many Requests",
                &[("Retry-After", s.to_string())],
                b"",
            );
        }
        Some(Fault::Huge(n)) => {
            return respond(
                &mut client,
                "200 OK",
                &[(
                    "Content-Type",
                    "application/vnd.oci.image.manifest.v1+json".into(),
                )],
                &vec![b' '; *n],
            );
        }
        Some(Fault::Redirect(base)) => {
            return respond(
                &mut client,
                "307 Temporary Redirect",
                &[("Location", format!("{base}{}", req.path))],
                b"",
            );
        }
        _ => {}
    }
    let Ok(mut up) = TcpStream::connect(upstream) else {
        return;
    };
    let mut head = format!("{} {} HTTP/1.1\r\n", req.method, req.path);
    for (k, v) in &req.headers {
        if k != "connection" {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str("Connection: close\r\n\r\n");
    let _ = up.write_all(head.as_bytes());
    let _ = up.write_all(&body);
    let mut response = Vec::new();
    let _ = up.read_to_end(&mut response);
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(response.len(), |p| p + 4);
    match fault {
        Some(Fault::Truncate) => {
            let body_len = response.len() - split;
            let _ = client.write_all(&response[..split + body_len / 2]);
        }
        Some(Fault::Corrupt) if response.len() > split => {
            let last = response.len() - 1;
            response[last] ^= 0x20;
            let _ = client.write_all(&response);
        }
        Some(Fault::SlowBody(pause)) => {
            let _ = client.write_all(&response[..split]);
            for piece in response[split..].chunks(1024) {
                let _ = client.flush();
                std::thread::sleep(pause);
                if client.write_all(piece).is_err() {
                    return;
                }
            }
        }
        _ => {
            let _ = client.write_all(&response);
        }
    }
    let _ = client.flush();
}

/// A "storage host" that serves fixed bytes for any path and records
/// whether requests carried credentials.
pub struct StorageHost {
    pub base: String,
    pub seen: Arc<Mutex<Vec<SeenRequest>>>,
}

impl StorageHost {
    pub fn start(content: BTreeMap<String, Vec<u8>>) -> StorageHost {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        // Another host name for the same loopback address.
        let base = format!("http://localhost:{}", listener.local_addr().unwrap().port());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                if let Some((req, _)) = read_request(&mut stream) {
                    s.lock().unwrap().push(req.clone());
                    match content.iter().find(|(k, _)| req.path.contains(k.as_str())) {
                        Some((_, bytes)) => respond(&mut stream, "200 OK", &[], bytes),
                        None => respond(&mut stream, "404 Not Found", &[], b""),
                    }
                }
            }
        });
        StorageHost { base, seen }
    }
}

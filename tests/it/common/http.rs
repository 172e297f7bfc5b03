//! A static file server on 127.0.0.1 for channels and package indexes:
//! GET/HEAD, ETag and `If-None-Match`, byte ranges, request counting.
//!
//! A directory request serves its `index.json` (as a PEP 691 page) or
//! `index.html`. Each request is recorded so tests can count what a client
//! asked for.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;

use sha2::{Digest, Sha256};

/// One request the server answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub status: u16,
    /// The request carried `If-None-Match`.
    pub conditional: bool,
    pub range: Option<String>,
}

/// Bodies of `.tar.gz` files sent in `parts` pieces, `pause` apart: a
/// download that arrives over time, as a large sdist's does.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    pub parts: usize,
    pub pause: std::time::Duration,
}

/// A running server; it stops when dropped.
pub struct StaticServer {
    pub addr: std::net::SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<Mutex<bool>>,
}

impl StaticServer {
    /// Serves `root` on a free port of 127.0.0.1.
    pub fn start(root: impl Into<PathBuf>) -> Self {
        Self::start_with(root, BTreeMap::new())
    }

    /// Serves `root`, adding `headers` to every successful answer (for
    /// example `Cache-Control`).
    pub fn start_with(root: impl Into<PathBuf>, headers: BTreeMap<String, String>) -> Self {
        Self::start_full(root.into(), headers, None, None)
    }

    /// Serves `root`, sending `.tar.gz` bodies at `pace`.
    pub fn start_paced(root: impl Into<PathBuf>, pace: Pace) -> Self {
        Self::start_full(root.into(), BTreeMap::new(), None, Some(pace))
    }

    /// Serves `root` only to requests with HTTP basic auth `user:password`
    /// (401 without, or with other credentials), as a private index or
    /// channel does.
    pub fn start_private(root: impl Into<PathBuf>, user_password: &str) -> Self {
        use base64::Engine as _;
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_password)
        );
        Self::start_full(root.into(), BTreeMap::new(), Some(expected), None)
    }

    /// Serves `root` only to requests whose `Authorization` header is
    /// exactly `authorization` (a bearer token, say).
    pub fn start_expecting(root: impl Into<PathBuf>, authorization: &str) -> Self {
        Self::start_full(
            root.into(),
            BTreeMap::new(),
            Some(authorization.to_string()),
            None,
        )
    }

    fn start_full(
        root: PathBuf,
        headers: BTreeMap<String, String>,
        auth: Option<String>,
        pace: Option<Pace>,
    ) -> Self {
        let auth = Arc::new(auth);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(Mutex::new(false));
        let headers = Arc::new(headers);
        {
            let (seen, stop) = (seen.clone(), stop.clone());
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if *stop.lock().unwrap() {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (root, seen, headers, auth) =
                        (root.clone(), seen.clone(), headers.clone(), auth.clone());
                    thread::spawn(move || {
                        serve_connection(stream, &root, &seen, &headers, auth.as_deref(), pace);
                    });
                }
            });
        }
        Self { addr, seen, stop }
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request answered so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Forgets the requests seen so far.
    pub fn reset(&self) {
        self.seen.lock().unwrap().clear();
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        *self.stop.lock().unwrap() = true;
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve_connection(
    stream: TcpStream,
    root: &Path,
    seen: &Mutex<Vec<Seen>>,
    headers: &BTreeMap<String, String>,
    auth: Option<&str>,
    pace: Option<Pace>,
) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
            return;
        };
        let (method, target) = (method.to_string(), target.to_string());
        let mut req_headers = BTreeMap::new();
        let mut content_length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                let k = k.trim().to_ascii_lowercase();
                if k == "content-length" {
                    content_length = v.trim().parse().unwrap_or(0);
                }
                req_headers.insert(k, v.trim().to_string());
            }
        }
        let mut body = vec![0; content_length];
        let _ = reader.read_exact(&mut body);

        let path = target.split(['?', '#']).next().unwrap_or("/").to_string();
        let answer = if auth
            .is_some_and(|a| req_headers.get("authorization").map(String::as_str) != Some(a))
        {
            Answer {
                status: 401,
                headers: vec![("WWW-Authenticate".into(), "Basic realm=\"private\"".into())],
                body: Vec::new(),
            }
        } else {
            answer(root, &method, &path, &req_headers)
        };
        seen.lock().unwrap().push(Seen {
            method: method.clone(),
            path: path.clone(),
            status: answer.status,
            conditional: req_headers.contains_key("if-none-match"),
            range: req_headers.get("range").cloned(),
        });
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Length: {}\r\n",
            answer.status,
            reason(answer.status),
            answer.body.len()
        );
        for (k, v) in &answer.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if answer.status < 400 {
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        head.push_str("\r\n");
        if out.write_all(head.as_bytes()).is_err() {
            return;
        }
        let paced = pace.filter(|_| path.ends_with(".tar.gz") && answer.status == 200);
        if method != "HEAD" {
            let parts = paced.map_or(1, |p| p.parts.max(1));
            let size = answer.body.len().div_ceil(parts).max(1);
            for (i, part) in answer.body.chunks(size).enumerate() {
                if i > 0
                    && let Some(p) = paced
                {
                    thread::sleep(p.pause);
                }
                if out.write_all(part).and_then(|()| out.flush()).is_err() {
                    return;
                }
            }
        }
        if req_headers
            .get("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"))
        {
            let _ = out.shutdown(Shutdown::Both);
            return;
        }
    }
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn answer(root: &Path, method: &str, path: &str, req: &BTreeMap<String, String>) -> Answer {
    let not_found = || Answer {
        status: 404,
        headers: vec![],
        body: b"not found".to_vec(),
    };
    if method != "GET" && method != "HEAD" {
        return Answer {
            status: 405,
            headers: vec![],
            body: vec![],
        };
    }
    let rel = percent_decode(path.trim_start_matches('/'));
    if rel.split('/').any(|c| c == "..") {
        return not_found();
    }
    let mut file = root.join(&rel);
    if file.is_dir() {
        let json = file.join("index.json");
        file = if json.is_file() {
            json
        } else {
            file.join("index.html")
        };
    }
    let Ok(bytes) = std::fs::read(&file) else {
        return not_found();
    };
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(&bytes)[..12]));
    let mut headers = vec![
        ("ETag".to_string(), etag.clone()),
        ("Content-Type".to_string(), content_type(&file).to_string()),
        ("Accept-Ranges".to_string(), "bytes".to_string()),
    ];
    if req
        .get("if-none-match")
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        return Answer {
            status: 304,
            headers,
            body: vec![],
        };
    }
    if let Some(range) = req.get("range").and_then(|r| r.strip_prefix("bytes=")) {
        let len = bytes.len();
        let (start, end) = match range.split_once('-') {
            Some(("", n)) => (len.saturating_sub(n.parse().unwrap_or(0)), len),
            Some((a, "")) => (a.parse().unwrap_or(len), len),
            Some((a, b)) => (
                a.parse().unwrap_or(len),
                (b.parse::<usize>().unwrap_or(0) + 1).min(len),
            ),
            None => (len, len),
        };
        if start >= end {
            headers.push(("Content-Range".into(), format!("bytes */{len}")));
            return Answer {
                status: 416,
                headers,
                body: vec![],
            };
        }
        headers.push((
            "Content-Range".into(),
            format!("bytes {start}-{}/{len}", end - 1),
        ));
        return Answer {
            status: 206,
            headers,
            body: bytes[start..end].to_vec(),
        };
    }
    Answer {
        status: 200,
        headers,
        body: bytes,
    }
}

fn content_type(file: &Path) -> &'static str {
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name == "index.json" {
        "application/vnd.pypi.simple.v1+json"
    } else if name.ends_with(".json") {
        "application/json"
    } else if name.ends_with(".html") {
        "text/html"
    } else if name.ends_with(".zst") {
        "application/zstd"
    } else {
        "application/octet-stream"
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        304 => "Not Modified",
        404 => "Not Found",
        405 => "Method Not Allowed",
        416 => "Range Not Satisfiable",
        _ => "Status",
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if let Some(b) = (bytes[i] == b'%')
            .then(|| s.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Sends one raw HTTP/1.1 request and returns the status line and body.
pub fn raw_get(addr: std::net::SocketAddr, path: &str, extra: &str) -> (String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(buf.len(), |p| p + 4);
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    (head, buf[split..].to_vec())
}

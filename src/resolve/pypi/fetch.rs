//! The index client's HTTP: the shared [`HttpClient`] (retries, timeouts,
//! redirects that keep credentials home) with an on-disk cache (ETag /
//! Last-Modified / max-age), `--offline`, byte ranges, `file://` URLs and
//! credentials per host.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::header::{ACCEPT, CACHE_CONTROL, CONTENT_RANGE, HeaderMap, RANGE};
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::PypiError;
use crate::resolve::http::{
    Body, BodyStream, HttpClient, HttpOptions, HttpRequest, HttpResponse, Validators,
};

/// Removes `user:password@` from a URL for messages and locks.
pub fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// Login for one host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Login {
    pub user: String,
    pub password: Option<String>,
}

/// Reads a `.netrc` (`machine HOST login USER password PASS`, `default`).
pub fn parse_netrc(text: &str) -> HashMap<String, Login> {
    let mut out = HashMap::new();
    let mut tokens = text.split_whitespace();
    let mut host: Option<String> = None;
    let mut login = Login {
        user: String::new(),
        password: None,
    };
    let flush = |host: &mut Option<String>, login: &mut Login, out: &mut HashMap<String, Login>| {
        if let Some(h) = host.take()
            && !login.user.is_empty()
        {
            out.insert(h, login.clone());
        }
        *login = Login {
            user: String::new(),
            password: None,
        };
    };
    while let Some(t) = tokens.next() {
        match t {
            "machine" => {
                flush(&mut host, &mut login, &mut out);
                host = tokens.next().map(str::to_string);
            }
            "default" => {
                flush(&mut host, &mut login, &mut out);
                host = Some("*".into());
            }
            "login" => login.user = tokens.next().unwrap_or_default().to_string(),
            "password" => login.password = tokens.next().map(str::to_string),
            _ => {}
        }
    }
    flush(&mut host, &mut login, &mut out);
    out
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct CacheMeta {
    #[serde(flatten)]
    validators: Validators,
    /// Seconds the body stays fresh.
    max_age: Option<u64>,
    /// Unix seconds when stored or last revalidated.
    stored: u64,
    /// sha256 of the stored body, checked on read: a body changed behind
    /// our back is a miss, fetched again.
    #[serde(default)]
    body_sha256: Option<String>,
    /// For derived entries: the sha256 of the artifact they came from.
    #[serde(default)]
    source_sha256: Option<String>,
}

/// Counters for benchmarks and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FetchStats {
    pub requests: usize,
    pub not_modified: usize,
    pub fresh_hits: usize,
}

/// The largest index page or `.metadata` file held in memory (PyPI's
/// largest project pages are a few MiB).
pub const PAGE_CAP: u64 = 64 << 20;

/// Requests in flight per fetcher unless [`Fetcher::with_limit`] says otherwise.
const DEFAULT_REQUESTS: usize = 16;

/// HTTP with an on-disk cache.
#[derive(Debug)]
pub struct Fetcher {
    client: HttpClient,
    cache: Option<PathBuf>,
    offline: bool,
    logins: HashMap<String, Login>,
    stats: std::sync::Mutex<FetchStats>,
    /// One permit per request in flight; may be shared between fetchers.
    permits: std::sync::Arc<tokio::sync::Semaphore>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Fetcher {
    /// `cache`: directory for cached answers (`None` disables caching);
    /// `logins`: credentials per host (from index URLs and `.netrc`).
    pub fn new(
        cache: Option<PathBuf>,
        offline: bool,
        logins: HashMap<String, Login>,
    ) -> Result<Self, PypiError> {
        let client = HttpClient::new(HttpOptions::default())
            .map_err(|e| PypiError::Client(e.to_string()))?;
        Ok(Self::with_client(client, cache, offline, logins))
    }

    /// [`Self::new`] sending through `client` (the run's shared client and
    /// its policy).
    pub fn with_client(
        client: HttpClient,
        cache: Option<PathBuf>,
        offline: bool,
        logins: HashMap<String, Login>,
    ) -> Self {
        Self {
            client,
            cache,
            offline,
            logins,
            stats: std::sync::Mutex::default(),
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(DEFAULT_REQUESTS)),
        }
    }

    /// Shares `permits` for requests in flight (with other fetchers, say).
    #[must_use]
    pub fn with_limit(mut self, permits: std::sync::Arc<tokio::sync::Semaphore>) -> Self {
        self.permits = permits;
        self
    }

    /// Waits for a request slot; the request holds it until its body is read.
    async fn permit(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        // Never closed: `None` cannot happen, and would only lift the limit.
        self.permits.acquire().await.ok()
    }

    /// Requests made so far.
    pub fn stats(&self) -> FetchStats {
        *self
            .stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn count(&self, f: impl FnOnce(&mut FetchStats)) {
        f(&mut self
            .stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner));
    }

    /// A GET of `url` with its credentials (from the URL or the logins) as
    /// a header, the URL itself without them.
    pub(crate) fn request(&self, url: &Url, limit: u64) -> HttpRequest {
        let mut clean = url.clone();
        let _ = clean.set_username("");
        let _ = clean.set_password(None);
        let req = HttpRequest::get(clean, limit);
        let host = url.host_str().unwrap_or_default();
        let basic = |user: &str, pass: Option<&str>| {
            use base64::Engine as _;
            let pair = format!("{user}:{}", pass.unwrap_or_default());
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        };
        if !url.username().is_empty() {
            let user = percent_decode(url.username());
            // A user without a password in the URL takes the password the
            // logins hold for that user (`.netrc`, the keyring).
            let pass = url.password().map(percent_decode).or_else(|| {
                self.logins
                    .get(host)
                    .filter(|l| l.user == user)
                    .and_then(|l| l.password.clone())
            });
            req.authorization(&basic(&user, pass.as_deref()))
        } else if let Some(login) = self.logins.get(host).or_else(|| self.logins.get("*")) {
            req.authorization(&basic(&login.user, login.password.as_deref()))
        } else {
            req
        }
    }

    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, PypiError> {
        let _permit = self.permit().await;
        self.count(|s| s.requests += 1);
        Ok(self.client.send(request).await?)
    }

    fn paths(&self, key: &str) -> Option<(PathBuf, PathBuf)> {
        let dir = self.cache.as_ref()?;
        let h = hex::encode(Sha256::digest(key.as_bytes()));
        let dir = dir.join(&h[..2]);
        Some((dir.join(format!("{h}.json")), dir.join(format!("{h}.body"))))
    }

    fn read_cache(&self, key: &str) -> Option<(CacheMeta, Vec<u8>)> {
        let (meta, body) = self.paths(key)?;
        let meta: CacheMeta = serde_json::from_slice(&fs_err::read(meta).ok()?).ok()?;
        let body = fs_err::read(body).ok()?;
        let actual = hex::encode(Sha256::digest(&body));
        if meta.body_sha256.as_deref() != Some(actual.as_str()) {
            // Tampered, truncated, or written by an older version.
            return None;
        }
        Some((meta, body))
    }

    fn write_cache(&self, key: &str, meta: &CacheMeta, body: Option<&[u8]>) {
        // A cache that cannot be written only costs time later.
        let Some((meta_path, body_path)) = self.paths(key) else {
            return;
        };
        if let Some(dir) = meta_path.parent() {
            let _ = fs_err::create_dir_all(dir);
        }
        let mut meta = meta.clone();
        if let Some(body) = body {
            meta.body_sha256 = Some(hex::encode(Sha256::digest(body)));
            let _ = write_atomic(&body_path, body);
        } else if meta.body_sha256.is_none() {
            return;
        }
        if let Ok(json) = serde_json::to_vec(&meta) {
            let _ = write_atomic(&meta_path, &json);
        }
    }

    /// GET through the cache. `Ok(None)` when the server says 404/410.
    /// `what` names the thing for the offline error (`numpy`).
    pub async fn get_cached(
        &self,
        url: &str,
        accept: &str,
        what: &str,
    ) -> Result<Option<Vec<u8>>, PypiError> {
        let parsed = parse_url(url)?;
        if parsed.scheme() == "file" {
            return read_file_url(&parsed);
        }
        let key = format!("{accept}\n{}", redact(url));
        let cached = self.read_cache(&key);
        if let Some((meta, body)) = &cached {
            let fresh = meta
                .max_age
                .is_some_and(|age| now().saturating_sub(meta.stored) < age);
            if fresh || self.offline {
                self.count(|s| s.fresh_hits += 1);
                return Ok(Some(body.clone()));
            }
        }
        if self.offline {
            return Err(PypiError::NotCached(what.to_string()));
        }
        let mut req = self.request(&parsed, PAGE_CAP).header(ACCEPT, accept);
        if let Some((meta, _)) = &cached {
            req = req.if_changed(&meta.validators);
        }
        let resp = self.send(req).await?;
        let status = resp.status;
        if status == StatusCode::NOT_MODIFIED
            && let Some((mut meta, body)) = cached
        {
            self.count(|s| s.not_modified += 1);
            meta.stored = now();
            meta.max_age = max_age(&resp.headers).or(meta.max_age);
            self.write_cache(&key, &meta, None);
            return Ok(Some(body));
        }
        if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(PypiError::Status {
                url: redact(url),
                status: status.as_u16(),
            });
        }
        let meta = CacheMeta {
            validators: resp.validators(),
            max_age: max_age(&resp.headers),
            stored: now(),
            ..CacheMeta::default()
        };
        let body = resp.body.to_vec();
        if !no_store(&resp.headers) {
            self.write_cache(&key, &meta, Some(&body));
        }
        Ok(Some(body))
    }

    /// GET of content-addressed data through the cache: a cached body whose
    /// sha256 is `sha256` (a PEP 658 `.metadata` file whose hash the index
    /// states) is the answer, without asking the server whether it changed;
    /// anything else is [`Self::get_cached`].
    pub async fn get_by_sha256(
        &self,
        url: &str,
        accept: &str,
        what: &str,
        sha256: &str,
    ) -> Result<Option<Vec<u8>>, PypiError> {
        let parsed = parse_url(url)?;
        if parsed.scheme() != "file"
            && let Some((meta, body)) = self.read_cache(&format!("{accept}\n{}", redact(url)))
            && meta
                .body_sha256
                .as_deref()
                .is_some_and(|h| h.eq_ignore_ascii_case(sha256))
        {
            self.count(|s| s.fresh_hits += 1);
            return Ok(Some(body));
        }
        self.get_cached(url, accept, what).await
    }

    /// Drops what the cache holds for `url` fetched with `accept` (an
    /// answer that turned out unusable), so the next GET asks afresh.
    pub fn forget(&self, url: &str, accept: &str) {
        if let Some((meta, body)) = self.paths(&format!("{accept}\n{}", redact(url))) {
            let _ = fs_err::remove_file(meta);
            let _ = fs_err::remove_file(body);
        }
    }

    /// A value derived from an immutable artifact (for example the METADATA
    /// inside a wheel), kept forever under `key`. `source_sha256` is the
    /// artifact's hash as the index states it now: an entry derived from
    /// another artifact (or whose record of it was changed) is not used.
    pub fn derived_get(&self, key: &str, source_sha256: Option<&str>) -> Option<Vec<u8>> {
        let (meta, body) = self.read_cache(&format!("derived\n{key}"))?;
        let same = match (meta.source_sha256.as_deref(), source_sha256) {
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            (None, None) => true,
            _ => false,
        };
        same.then_some(body)
    }

    /// Stores a derived value (see [`Self::derived_get`]).
    pub fn derived_put(&self, key: &str, source_sha256: Option<&str>, body: &[u8]) {
        let meta = CacheMeta {
            max_age: Some(u64::MAX / 2),
            stored: now(),
            source_sha256: source_sha256.map(str::to_ascii_lowercase),
            ..CacheMeta::default()
        };
        self.write_cache(&format!("derived\n{key}"), &meta, Some(body));
    }

    /// The cache directory, if answers are cached.
    pub fn cache_dir(&self) -> Option<&std::path::Path> {
        self.cache.as_deref()
    }

    /// Whether only the cache may be used.
    pub fn offline(&self) -> bool {
        self.offline
    }

    /// GET `Range: bytes=…`. A server that honours it gives [`Ranged::Part`]
    /// (at most `cap` bytes held in memory); one that ignores it sends the
    /// whole file, which goes to a temporary file, hashed on the way
    /// ([`Ranged::Whole`]), never into memory.
    pub async fn get_range(&self, url: &str, range: &str, cap: u64) -> Result<Ranged, PypiError> {
        let parsed = parse_url(url)?;
        if parsed.scheme() == "file" {
            let path = file_path(&parsed)?;
            let file = fs_err::File::open(&path).map_err(|e| PypiError::Io(e.to_string()))?;
            return hash_to_temp(url, file, WHOLE_CAP, None).map(Ranged::Whole);
        }
        if self.offline {
            return Err(PypiError::NotCached(redact(url)));
        }
        let mut request = self
            .request(&parsed, WHOLE_CAP)
            .header(RANGE, &format!("bytes={range}"));
        request.stream = true;
        let resp = self.send(request).await?;
        let status = resp.status;
        if !status.is_success() {
            return Err(PypiError::Status {
                url: redact(url),
                status: status.as_u16(),
            });
        }
        let partial = status == StatusCode::PARTIAL_CONTENT;
        let total = header(&resp.headers, &CONTENT_RANGE)
            .and_then(|v| v.rsplit('/').next().and_then(|n| n.parse().ok()));
        let body = take_stream(url, &resp)?;
        if !partial {
            return stream_to_temp(url, body, WHOLE_CAP, None)
                .await
                .map(Ranged::Whole);
        }
        let body = read_capped(url, body, cap).await?;
        Ok(Ranged::Part { body, total })
    }

    /// Downloads a whole file to a temporary file, hashed on the way,
    /// refusing more than `cap` bytes.
    pub async fn download(&self, url: &str, cap: u64) -> Result<Downloaded, PypiError> {
        self.download_teed(url, cap, None).await
    }

    /// [`Self::download`], also sending each chunk to `tee` as it arrives
    /// (for a reader on another thread); the tee's end is marked only when
    /// the whole file arrived, within `cap`.
    pub async fn download_teed(
        &self,
        url: &str,
        cap: u64,
        tee: Option<Tee>,
    ) -> Result<Downloaded, PypiError> {
        let parsed = parse_url(url)?;
        if parsed.scheme() == "file" {
            let path = file_path(&parsed)?;
            let file = match fs_err::File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(PypiError::Status {
                        url: redact(url),
                        status: 404,
                    });
                }
                Err(e) => return Err(PypiError::Io(e.to_string())),
            };
            let Some(tee) = tee else {
                return hash_to_temp(url, file, cap, None);
            };
            // The tee blocks when its reader falls behind: off the
            // runtime's threads.
            let url = url.to_string();
            return tokio::task::spawn_blocking(move || hash_to_temp(&url, file, cap, Some(tee)))
                .await
                .map_err(|e| PypiError::Io(e.to_string()))?;
        }
        if self.offline {
            return Err(PypiError::NotCached(redact(url)));
        }
        let mut request = self.request(&parsed, cap);
        request.stream = true;
        let resp = self.send(request).await.map_err(|e| match e {
            PypiError::Http(crate::resolve::http::HttpError::TooLarge { .. }) => {
                PypiError::TooLarge {
                    url: redact(url),
                    cap,
                }
            }
            e => e,
        })?;
        if !resp.status.is_success() {
            return Err(PypiError::Status {
                url: redact(url),
                status: resp.status.as_u16(),
            });
        }
        stream_to_temp(url, take_stream(url, &resp)?, cap, tee).await
    }
}

/// A copy of a download's bytes for a reader on another thread
/// ([`TeeReader`]), through a bounded channel: memory stays bounded, and a
/// reader that falls behind slows the download. A reader that stops (drops
/// its end) is sent nothing more; the download goes on.
#[derive(Debug)]
pub struct Tee {
    to: Option<tokio::sync::mpsc::Sender<bytes::Bytes>>,
}

/// The reading end of a [`Tee`]: the download's bytes in order, then the
/// end of the file once the whole file arrived. A download that stopped
/// short is an error, never a clean end.
#[derive(Debug)]
pub struct TeeReader {
    from: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    chunk: bytes::Bytes,
    ended: bool,
}

impl Tee {
    /// A tee holding at most `depth` chunks in flight, and its reader.
    pub fn channel(depth: usize) -> (Tee, TeeReader) {
        let (to, from) = tokio::sync::mpsc::channel(depth.max(1));
        (
            Tee { to: Some(to) },
            TeeReader {
                from,
                chunk: bytes::Bytes::new(),
                ended: false,
            },
        )
    }

    async fn send(&mut self, chunk: bytes::Bytes) {
        if chunk.is_empty() {
            return;
        }
        if let Some(to) = &self.to
            && to.send(chunk).await.is_err()
        {
            self.to = None;
        }
    }

    /// [`Self::send`] from a thread outside the runtime.
    fn send_blocking(&mut self, chunk: &[u8]) {
        if chunk.is_empty() {
            return;
        }
        if let Some(to) = &self.to
            && to
                .blocking_send(bytes::Bytes::copy_from_slice(chunk))
                .is_err()
        {
            self.to = None;
        }
    }

    /// Marks the end of the file (an empty chunk, never sent otherwise).
    async fn finish(mut self) {
        if let Some(to) = self.to.take() {
            let _ = to.send(bytes::Bytes::new()).await;
        }
    }

    fn finish_blocking(mut self) {
        if let Some(to) = self.to.take() {
            let _ = to.blocking_send(bytes::Bytes::new());
        }
    }
}

impl std::io::Read for TeeReader {
    /// Blocks for the next chunk: call it outside the runtime (from
    /// `spawn_blocking`).
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            if self.ended {
                return Ok(0);
            }
            match self.from.blocking_recv() {
                Some(c) if c.is_empty() => self.ended = true,
                Some(c) => self.chunk = c,
                None => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the download stopped before the end of the file",
                    ));
                }
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

/// The largest whole file streamed to disk when a server ignores `Range`
/// (the largest wheels on PyPI are a few GiB).
const WHOLE_CAP: u64 = 16 << 30;

/// What a range request brought back.
#[derive(Debug)]
pub enum Ranged {
    /// The requested bytes, and the file's length when the server said it.
    Part { body: Vec<u8>, total: Option<u64> },
    /// The server sent the whole file.
    Whole(Downloaded),
}

/// A file downloaded to an anonymous temporary file (removed when dropped),
/// with its sha256 computed on the way.
#[derive(Debug)]
pub struct Downloaded {
    /// Positioned at the start.
    pub file: std::fs::File,
    pub sha256: String,
    pub len: u64,
}

/// Reads a response body into memory, refusing more than `cap` bytes.
/// The unread body of a streamed response.
fn take_stream(url: &str, resp: &HttpResponse) -> Result<Body, PypiError> {
    resp.stream
        .as_ref()
        .and_then(BodyStream::take)
        .ok_or_else(|| {
            PypiError::Io(format!(
                "`{}`: the response body was already read",
                redact(url)
            ))
        })
}

async fn read_capped(url: &str, mut resp: Body, cap: u64) -> Result<Vec<u8>, PypiError> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if (body.len() + chunk.len()) as u64 > cap {
            return Err(PypiError::TooLarge {
                url: redact(url),
                cap,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// How many bytes of a download are gathered before they are written (and
/// sent to a tee).
const BATCH: usize = 256 << 10;

/// Streams a response body to a temporary file with hashing, and to `tee`.
async fn stream_to_temp(
    url: &str,
    mut resp: Body,
    cap: u64,
    mut tee: Option<Tee>,
) -> Result<Downloaded, PypiError> {
    use std::io::{Seek, Write};
    let io = |e: std::io::Error| PypiError::Io(format!("`{}`: {e}", redact(url)));
    let mut file = tempfile::tempfile().map_err(io)?;
    let mut hasher = Sha256::new();
    let mut len = 0u64;
    // The network's chunks are small (a TLS record or so): gathered, they
    // cost fewer writes and fewer wake-ups of the tee's reader.
    let mut batch = bytes::BytesMut::with_capacity(BATCH);
    loop {
        let chunk = resp.chunk().await?;
        if let Some(chunk) = &chunk {
            len += chunk.len() as u64;
            if len > cap {
                return Err(PypiError::TooLarge {
                    url: redact(url),
                    cap,
                });
            }
            hasher.update(chunk);
            batch.extend_from_slice(chunk);
            if batch.len() < BATCH {
                continue;
            }
        }
        if !batch.is_empty() {
            let full = std::mem::replace(&mut batch, bytes::BytesMut::with_capacity(BATCH));
            let full = full.freeze();
            file.write_all(&full).map_err(io)?;
            if let Some(tee) = &mut tee {
                tee.send(full).await;
            }
        }
        if chunk.is_none() {
            break;
        }
    }
    if let Some(tee) = tee {
        tee.finish().await;
    }
    file.rewind().map_err(io)?;
    Ok(Downloaded {
        file,
        sha256: hex::encode(hasher.finalize()),
        len,
    })
}

/// Copies a local file to a temporary file with hashing, and to `tee` (a
/// `file://` index gets the same treatment as a remote one). With a tee,
/// call it outside the runtime.
fn hash_to_temp(
    url: &str,
    mut from: fs_err::File,
    cap: u64,
    mut tee: Option<Tee>,
) -> Result<Downloaded, PypiError> {
    use std::io::{Read, Seek, Write};
    let io = |e: std::io::Error| PypiError::Io(format!("`{}`: {e}", redact(url)));
    let mut file = tempfile::tempfile().map_err(io)?;
    let mut hasher = Sha256::new();
    let mut len = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = from.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        len += n as u64;
        if len > cap {
            return Err(PypiError::TooLarge {
                url: redact(url),
                cap,
            });
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n]).map_err(io)?;
        if let Some(tee) = &mut tee {
            tee.send_blocking(&buf[..n]);
        }
    }
    if let Some(tee) = tee {
        tee.finish_blocking();
    }
    file.rewind().map_err(io)?;
    Ok(Downloaded {
        file,
        sha256: hex::encode(hasher.finalize()),
        len,
    })
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    fs_err::write(&tmp, bytes)?;
    fs_err::rename(&tmp, path)
}

fn parse_url(url: &str) -> Result<Url, PypiError> {
    Url::parse(url).map_err(|e| PypiError::BadUrl {
        url: redact(url),
        message: e.to_string(),
    })
}

fn file_path(url: &Url) -> Result<PathBuf, PypiError> {
    url.to_file_path().map_err(|()| PypiError::BadUrl {
        url: url.to_string(),
        message: "not a local path".into(),
    })
}

fn read_file_url(url: &Url) -> Result<Option<Vec<u8>>, PypiError> {
    let path = file_path(url)?;
    let path = if path.is_dir() {
        path.join("index.json")
    } else {
        path
    };
    match fs_err::metadata(&path) {
        Ok(m) if !m.is_file() => {
            return Err(PypiError::Io(format!(
                "`{}` is not a regular file",
                path.display()
            )));
        }
        Ok(m) if m.len() > PAGE_CAP => {
            return Err(PypiError::TooLarge {
                url: url.to_string(),
                cap: PAGE_CAP,
            });
        }
        _ => {}
    }
    match fs_err::read(&path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(PypiError::Io(e.to_string())),
    }
}

fn header(h: &HeaderMap, name: &reqwest::header::HeaderName) -> Option<String> {
    h.get(name)?.to_str().ok().map(str::to_string)
}

fn max_age(h: &HeaderMap) -> Option<u64> {
    let cc = header(h, &CACHE_CONTROL)?;
    if cc.contains("no-cache") {
        return Some(0);
    }
    cc.split(',')
        .find_map(|d| d.trim().strip_prefix("max-age=")?.parse().ok())
}

fn no_store(h: &HeaderMap) -> bool {
    header(h, &CACHE_CONTROL).is_some_and(|c| c.contains("no-store"))
}

pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = s
                .get(i + 1..i + 3)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_userinfo() {
        assert_eq!(
            redact("https://u:secret@pkgs.example/simple/"),
            "https://pkgs.example/simple/"
        );
        assert_eq!(
            redact("https://pypi.org/simple/"),
            "https://pypi.org/simple/"
        );
    }

    #[test]
    fn a_tee_reader_ends_only_when_the_whole_file_arrived() {
        use std::io::Read;
        let (mut tee, mut reader) = Tee::channel(4);
        let feed = std::thread::spawn(move || {
            tee.send_blocking(b"abc");
            tee.send_blocking(b"");
            tee.send_blocking(b"def");
            tee.finish_blocking();
        });
        let mut got = Vec::new();
        reader.read_to_end(&mut got).unwrap();
        feed.join().unwrap();
        assert_eq!(got, b"abcdef");
        // A download that stopped short is an error, never a clean end.
        let (mut tee, mut reader) = Tee::channel(4);
        std::thread::spawn(move || tee.send_blocking(b"abc"))
            .join()
            .unwrap();
        let mut got = Vec::new();
        let err = reader.read_to_end(&mut got).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
        assert_eq!(got, b"abc");
    }

    /// A `file://` download feeds the tee as a remote one does; a reader
    /// that stops early does not stop (or spoil) the download.
    #[tokio::test]
    async fn a_file_download_feeds_its_tee_and_outlives_a_reader_that_stops() {
        use std::io::Read;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob.bin");
        let blob: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        fs_err::write(&path, &blob).unwrap();
        let url = Url::from_file_path(&path).unwrap().to_string();
        let fetch = Fetcher::new(None, false, HashMap::new()).unwrap();
        let (tee, mut reader) = Tee::channel(2);
        let read = tokio::task::spawn_blocking(move || {
            let mut got = Vec::new();
            reader.read_to_end(&mut got).map(|_| got)
        });
        let d = fetch.download_teed(&url, 1 << 30, Some(tee)).await.unwrap();
        assert_eq!(read.await.unwrap().unwrap(), blob);
        assert_eq!(d.sha256, hex::encode(Sha256::digest(&blob)));

        let (tee, mut reader) = Tee::channel(1);
        let read = tokio::task::spawn_blocking(move || {
            let mut first = [0u8; 10];
            reader.read_exact(&mut first).map(|()| first)
        });
        let mut d = fetch.download_teed(&url, 1 << 30, Some(tee)).await.unwrap();
        assert_eq!(read.await.unwrap().unwrap(), blob[..10]);
        assert_eq!(d.len, blob.len() as u64);
        let mut whole = Vec::new();
        d.file.read_to_end(&mut whole).unwrap();
        assert_eq!(whole, blob);
    }

    #[test]
    fn reads_netrc() {
        let n = parse_netrc("machine a.example login me password pw\ndefault login anon");
        assert_eq!(n["a.example"].password.as_deref(), Some("pw"));
        assert_eq!(n["*"].user, "anon");
    }
}

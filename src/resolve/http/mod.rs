//! The one HTTP client every service shares (registries, package indexes,
//! conda channels, and later apt/rpm repositories) and its fault policy:
//!
//! - TLS against the system roots (and `SSL_CERT_FILE`/`SSL_CERT_DIR`),
//!   proxies from `HTTP(S)_PROXY`/`NO_PROXY`;
//! - a connect timeout and a read-idle timeout: a response must start, and
//!   its body keep flowing, within [`HttpOptions::timeout`]; there is no
//!   total timeout, so a multi-GB layer on a slow link is never cut;
//! - retries of connection failures, timeouts, cut bodies, 429 and 5xx with
//!   exponential backoff and jitter, honouring `Retry-After` up to a bound;
//! - redirects followed here so credentials never reach another origin and
//!   HTTPS never downgrades;
//! - streamed bodies ([`Body`]) that resume with `Range` after a cut;
//! - conditional requests ([`Validators`]) and request counting
//!   ([`HttpStats`]).

mod body;
mod middleware;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{
    AUTHORIZATION, ETAG, HeaderMap, HeaderValue, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED,
    LOCATION, RETRY_AFTER,
};
use reqwest::{Method, StatusCode, Url};
use tokio::sync::Semaphore;

pub use body::Body;
pub use middleware::{NetrcMiddleware, RetryMiddleware};

/// The read-idle timeout unless `--timeout` or `[network] timeout` say
/// otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why an HTTP exchange failed (after retries).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error(
        "cannot connect to `{url}`: {cause}{}\nhint: check the host name and the network (`HTTPS_PROXY`, `NO_PROXY`, `SSL_CERT_FILE`)",
        tries(*attempts)
    )]
    Connect {
        url: String,
        cause: String,
        attempts: u32,
    },
    #[error(
        "`{url}` timed out after {} s ({}){}\nhint: the server {}; raise `--timeout` or `[network] timeout` in imagelock.toml if it is only slow",
        after.as_secs().max(1),
        if *read == 0 && !*body { "no response".to_string() } else { format!("no data after {read} bytes") },
        tries(*attempts),
        if *body { "stopped sending the body" } else { "accepted the connection but did not answer" }
    )]
    Timeout {
        url: String,
        after: Duration,
        /// Body bytes read before it stalled.
        read: u64,
        /// The stall came while reading the body.
        body: bool,
        attempts: u32,
    },
    #[error("request to `{url}` failed: {cause}{}", tries(*attempts))]
    Transport {
        url: String,
        cause: String,
        attempts: u32,
    },
    #[error(
        "`{url}` answered {status}{}{}\nhint: {}",
        if *attempts > 1 { format!(" {attempts} times") } else { String::new() },
        if waited.is_zero() { String::new() } else if *told { format!("; waited {} in all as its `Retry-After` asked", secs(*waited)) } else { format!("; waited {} in all", secs(*waited)) },
        if *status == 429 { "the server limits how often it may be asked; wait a while and run again, or use a mirror" } else { "the server is failing; try again later or use a mirror" }
    )]
    Status {
        url: String,
        status: u16,
        attempts: u32,
        waited: Duration,
        /// The server sent `Retry-After`.
        told: bool,
    },
    #[error("`{url}` answered with more than {limit} bytes")]
    TooLarge { url: String, limit: u64 },
    #[error("`{url}` redirects too often")]
    TooManyRedirects { url: String },
    #[error("`{url}` redirects to `{location}`, which is not a usable URL")]
    BadRedirect { url: String, location: String },
    #[error("`{url}` redirects from HTTPS to plain HTTP at `{location}`")]
    Downgrade { url: String, location: String },
    #[error(
        "`{url}` redirects a request with a body to another origin, `{location}`; the body may hold credentials and is not sent there"
    )]
    BodyRedirect { url: String, location: String },
    #[error(
        "`{url}` sent {read} of {total} bytes and could not be resumed: {cause}{}",
        tries(*attempts)
    )]
    Cut {
        url: String,
        read: u64,
        total: String,
        cause: String,
        attempts: u32,
    },
}

fn tries(attempts: u32) -> String {
    if attempts > 1 {
        format!(" ({attempts} attempts)")
    } else {
        String::new()
    }
}

fn secs(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{} s", d.as_secs())
    }
}

impl HttpError {
    /// Whether the server answered at all (a status), as opposed to the
    /// network failing.
    pub fn is_status(&self) -> bool {
        matches!(self, HttpError::Status { .. })
    }
}

/// Retry, timeout and limit settings: one policy for every service.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    /// Attempts per request, the first included.
    pub attempts: u32,
    /// The first backoff; it doubles each retry (with jitter).
    pub backoff: Duration,
    /// The longest backoff between two attempts.
    pub max_backoff: Duration,
    /// The longest `Retry-After` honoured; longer waits are cut to this.
    pub max_retry_after: Duration,
    /// Requests in flight per host.
    pub per_host: usize,
    pub connect_timeout: Duration,
    /// Read-idle timeout: how long to wait for a response to start, and
    /// then for each piece of its body. Not a total.
    pub timeout: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions::with_timeout(DEFAULT_TIMEOUT)
    }
}

impl HttpOptions {
    /// The default policy with a read-idle timeout of `timeout` (the
    /// connect timeout is the smaller of it and 10 s).
    pub fn with_timeout(timeout: Duration) -> HttpOptions {
        let timeout = timeout.max(Duration::from_millis(100));
        HttpOptions {
            attempts: 4,
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
            per_host: 8,
            connect_timeout: timeout.min(Duration::from_secs(10)),
            timeout,
        }
    }

    /// The wait before attempt `attempt + 1` (1-based `attempt`): the
    /// doubled backoff, cut to the maximum, with "equal jitter" (half
    /// fixed, half random) so concurrent clients do not retry in step.
    fn backoff(&self, attempt: u32) -> Duration {
        let full = self
            .backoff
            .saturating_mul(1 << attempt.saturating_sub(1).min(16))
            .min(self.max_backoff);
        full / 2 + full.mul_f64(fastrand::f64() / 2.0)
    }
}

/// A request to send: everything needed to send it again.
#[derive(Clone, Debug)]
pub struct HttpRequest {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
    /// The largest body accepted.
    pub limit: u64,
    /// Retry on connection errors, 429 and 5xx (set false for probes).
    pub retry: bool,
    /// Leave a successful response's body unread, for the caller to stream
    /// ([`HttpResponse::stream`]); `limit` then applies to the caller.
    pub stream: bool,
}

impl HttpRequest {
    pub fn get(url: Url, limit: u64) -> HttpRequest {
        HttpRequest {
            method: Method::GET,
            url,
            headers: HeaderMap::new(),
            body: None,
            limit,
            retry: true,
            stream: false,
        }
    }

    /// Adds a header; values that are not valid header text are skipped.
    #[must_use]
    pub fn header(mut self, name: reqwest::header::HeaderName, value: &str) -> HttpRequest {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.insert(name, v);
        }
        self
    }

    /// Adds credentials, marked sensitive so they never show in logs.
    #[must_use]
    pub fn authorization(mut self, value: &str) -> HttpRequest {
        if let Ok(mut v) = HeaderValue::from_str(value) {
            v.set_sensitive(true);
            self.headers.insert(AUTHORIZATION, v);
        }
        self
    }

    /// Makes the request conditional on what a cached copy was stored with:
    /// an unchanged resource answers 304 without a body.
    #[must_use]
    pub fn if_changed(self, validators: &Validators) -> HttpRequest {
        let mut request = self;
        if let Some(etag) = &validators.etag {
            request = request.header(IF_NONE_MATCH, etag);
        }
        if let Some(lm) = &validators.last_modified {
            request = request.header(IF_MODIFIED_SINCE, lm);
        }
        request
    }
}

/// What a response can be revalidated with later.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// A response with its body read (bounded by the request's limit).
#[derive(Clone, Debug)]
pub struct HttpResponse {
    pub status: StatusCode,
    /// The URL that answered (after redirects).
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The unread body of a successful streamed request.
    pub stream: Option<BodyStream>,
}

/// A response body still to be read, chunk by chunk. Cloning shares it:
/// whoever takes it first reads it.
#[derive(Clone)]
pub struct BodyStream(Arc<Mutex<Option<Body>>>);

impl std::fmt::Debug for BodyStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BodyStream")
    }
}

impl BodyStream {
    /// Takes the body out (once); `None` when already taken.
    pub fn take(&self) -> Option<Body> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}

impl HttpResponse {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The response's `ETag` and `Last-Modified`.
    pub fn validators(&self) -> Validators {
        Validators {
            etag: self.header(ETAG.as_str()).map(str::to_string),
            last_modified: self.header(LAST_MODIFIED.as_str()).map(str::to_string),
        }
    }
}

/// Requests made through a client (each attempt counts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HttpStats {
    /// Requests sent, retries and resumptions included.
    pub requests: u64,
    /// Attempts that were retries of a failed one.
    pub retries: u64,
    /// Streams resumed (or restarted) after a cut.
    pub resumed: u64,
    /// Answers `304 Not Modified`.
    pub not_modified: u64,
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    retries: AtomicU64,
    resumed: AtomicU64,
    not_modified: AtomicU64,
}

/// The HTTP client every service shares. Cheap to clone: clones share
/// connections, per-host limits and counters.
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: reqwest::Client,
    options: HttpOptions,
    hosts: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
    counters: Arc<Counters>,
}

/// A `reqwest` client builder for every client imagelock makes: TLS with
/// rustls on the `ring` provider, verifying against the system roots (and
/// `SSL_CERT_FILE`/`SSL_CERT_DIR`) through the platform verifier; proxies
/// from the environment.
pub fn client_builder() -> reqwest::ClientBuilder {
    // reqwest is built without a default provider (its default, aws-lc,
    // costs a C library build); the first client installs ring. A second
    // install fails harmlessly, as does one racing with another thread.
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    reqwest::Client::builder()
}

impl HttpClient {
    /// A client trusting the system roots (and `SSL_CERT_FILE`) and using
    /// `HTTP(S)_PROXY`/`NO_PROXY`.
    pub fn new(options: HttpOptions) -> Result<HttpClient, HttpError> {
        let client = client_builder()
            .user_agent(concat!("imagelock/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(options.connect_timeout)
            // Idle, not total: a body that keeps flowing is never cut.
            .read_timeout(options.timeout)
            .pool_max_idle_per_host(64)
            // Redirects are followed here, so credentials can be dropped
            // when the origin changes.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| HttpError::Client(cause_chain(&e)))?;
        Ok(HttpClient {
            client,
            options,
            hosts: Arc::default(),
            counters: Arc::default(),
        })
    }

    /// The policy this client follows.
    pub fn options(&self) -> &HttpOptions {
        &self.options
    }

    /// Requests made so far through this client and its clones.
    pub fn stats(&self) -> HttpStats {
        let c = &self.counters;
        HttpStats {
            requests: c.requests.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            resumed: c.resumed.load(Ordering::Relaxed),
            not_modified: c.not_modified.load(Ordering::Relaxed),
        }
    }

    /// The `reqwest` client underneath with the same timeouts, proxies and
    /// roots, wrapped with this client's retry policy and counters, for
    /// libraries that bring their own request code (rattler's gateway).
    pub fn middleware_client(&self) -> reqwest_middleware::ClientWithMiddleware {
        // rattler follows redirects itself only through reqwest; this
        // client's reqwest does not follow them, so build one that does
        // (same roots and timeouts). Credentials there come from URLs.
        let client = client_builder()
            .user_agent(concat!("imagelock/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(self.options.connect_timeout)
            .read_timeout(self.options.timeout)
            .pool_max_idle_per_host(64)
            .build()
            .unwrap_or_else(|_| self.client.clone());
        reqwest_middleware::ClientBuilder::new(client)
            .with(RetryMiddleware::new(self.clone()))
            .build()
    }

    fn semaphore(&self, url: &Url) -> Arc<Semaphore> {
        let key = origin(url);
        let mut hosts = self
            .hosts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        hosts
            .entry(key)
            .or_insert_with(|| Arc::new(Semaphore::new(self.options.per_host.max(1))))
            .clone()
    }

    /// Sends a request, following redirects and retrying transient
    /// failures, and reads the body. A 429 or 5xx still there after the
    /// retries is [`HttpError::Status`]; other statuses are returned to the
    /// caller as they are.
    pub async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let mut request = request;
        for _ in 0..10 {
            let response = self.send_once_with_retries(&request).await?;
            if !response.status.is_redirection() || response.status == StatusCode::NOT_MODIFIED {
                if response.status == StatusCode::NOT_MODIFIED {
                    self.counters.not_modified.fetch_add(1, Ordering::Relaxed);
                }
                return Ok(response);
            }
            let location = response.header(LOCATION.as_str()).unwrap_or_default();
            let next = request
                .url
                .join(location)
                .map_err(|_| HttpError::BadRedirect {
                    url: request.url.to_string(),
                    location: location.to_string(),
                })?;
            if request.url.scheme() == "https" && next.scheme() != "https" {
                return Err(HttpError::Downgrade {
                    url: request.url.to_string(),
                    location: next.to_string(),
                });
            }
            if origin(&next) != origin(&request.url) {
                // Storage backends get signed URLs; our credentials stay home.
                request.headers.remove(AUTHORIZATION);
                // A body (a token request's `refresh_token`) is never sent
                // to another origin.
                if request.body.is_some() && response.status != StatusCode::SEE_OTHER {
                    return Err(HttpError::BodyRedirect {
                        url: request.url.to_string(),
                        location: origin(&next),
                    });
                }
            }
            if response.status == StatusCode::SEE_OTHER {
                request.method = Method::GET;
                request.body = None;
            }
            request.url = next;
        }
        Err(HttpError::TooManyRedirects {
            url: request.url.to_string(),
        })
    }

    async fn send_once_with_retries(
        &self,
        request: &HttpRequest,
    ) -> Result<HttpResponse, HttpError> {
        let semaphore = self.semaphore(&request.url);
        let attempts = if request.retry {
            self.options.attempts.max(1)
        } else {
            1
        };
        let mut attempt = 0;
        let mut waited = Duration::ZERO;
        let mut told = false;
        loop {
            attempt += 1;
            if attempt > 1 {
                self.counters.retries.fetch_add(1, Ordering::Relaxed);
            }
            let outcome = {
                let _permit = semaphore.acquire().await;
                self.exchange(request, attempt).await
            };
            let wait = match &outcome {
                Ok(r) if r.status == StatusCode::TOO_MANY_REQUESTS => {
                    let asked = retry_after(&r.headers);
                    told |= asked.is_some();
                    Some(asked.map_or_else(
                        || self.options.backoff(attempt),
                        |d| d.min(self.options.max_retry_after),
                    ))
                }
                Ok(r) if r.status.is_server_error() => Some(retry_after(&r.headers).map_or_else(
                    || self.options.backoff(attempt),
                    |d| d.min(self.options.max_retry_after),
                )),
                Ok(_) => None,
                // A server that does not answer at all rarely answers the
                // third time: timeouts get one retry, not the whole budget.
                Err(HttpError::Timeout { .. }) if attempt >= 2 => None,
                Err(HttpError::Connect { cause, .. })
                    if attempt >= 2 && cause.starts_with("the connection was not set up") =>
                {
                    None
                }
                Err(
                    HttpError::Connect { .. }
                    | HttpError::Timeout { .. }
                    | HttpError::Transport { .. },
                ) => Some(self.options.backoff(attempt)),
                Err(_) => None,
            };
            match wait {
                Some(wait) if attempt < attempts => {
                    tokio::time::sleep(wait).await;
                    waited += wait;
                }
                _ => {
                    return match outcome {
                        Ok(r)
                            if request.retry
                                && (r.status == StatusCode::TOO_MANY_REQUESTS
                                    || r.status.is_server_error()) =>
                        {
                            Err(HttpError::Status {
                                url: r.url.to_string(),
                                status: r.status.as_u16(),
                                attempts: attempt,
                                waited,
                                told,
                            })
                        }
                        other => other,
                    };
                }
            }
        }
    }

    async fn exchange(
        &self,
        request: &HttpRequest,
        attempt: u32,
    ) -> Result<HttpResponse, HttpError> {
        let fail = |e: &reqwest::Error, read: Option<u64>| {
            classify(&request.url, e, read, &self.options, attempt)
        };
        let mut builder = self
            .client
            .request(request.method.clone(), request.url.clone())
            .headers(request.headers.clone());
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let response = builder.send().await.map_err(|e| fail(&e, None))?;
        let status = response.status();
        let url = response.url().clone();
        let headers = response.headers().clone();
        if response.content_length().is_some_and(|n| n > request.limit) {
            return Err(HttpError::TooLarge {
                url: url.to_string(),
                limit: request.limit,
            });
        }
        if request.stream && status.is_success() {
            let mut resend = request.clone();
            resend.url = url.clone();
            let body = Body::new(self.clone(), resend, response);
            return Ok(HttpResponse {
                status,
                url,
                headers,
                body: Bytes::new(),
                stream: Some(BodyStream(Arc::new(Mutex::new(Some(body))))),
            });
        }
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| fail(&e, Some(body.len() as u64)))?;
            if (body.len() + chunk.len()) as u64 > request.limit {
                return Err(HttpError::TooLarge {
                    url: url.to_string(),
                    limit: request.limit,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse {
            status,
            url,
            headers,
            body: Bytes::from(body),
            stream: None,
        })
    }
}

/// Turns a `reqwest` failure into what happened: could not connect, timed
/// out (before the answer or while reading `read` body bytes), or another
/// transport failure, with the causes (DNS, TLS, reset) spelled out.
fn classify(
    url: &Url,
    e: &reqwest::Error,
    read: Option<u64>,
    options: &HttpOptions,
    attempts: u32,
) -> HttpError {
    let timeout = options.timeout;
    let url = redact(url);
    if e.is_connect() && e.is_timeout() {
        // Nothing answered the connection (a dropped SYN, a TLS handshake
        // left hanging): not the server being slow to answer a request.
        return HttpError::Connect {
            url,
            cause: format!(
                "the connection was not set up within {} s",
                options.connect_timeout.as_secs().max(1)
            ),
            attempts,
        };
    }
    if e.is_timeout() {
        return HttpError::Timeout {
            url,
            after: timeout,
            read: read.unwrap_or(0),
            body: read.is_some(),
            attempts,
        };
    }
    let cause = cause_chain(e);
    if e.is_connect() {
        HttpError::Connect {
            url,
            cause,
            attempts,
        }
    } else {
        HttpError::Transport {
            url,
            cause,
            attempts,
        }
    }
}

/// A URL without user and password, for messages.
pub fn redact(url: &Url) -> String {
    let mut clean = url.clone();
    let _ = clean.set_username("");
    let _ = clean.set_password(None);
    clean.to_string()
}

/// An error and its causes joined with `: `, leaving out `reqwest`'s own
/// "error sending request for url (…)" (the URL is shown apart, redacted)
/// and repeats.
pub fn cause_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        let part = s.to_string();
        let useless = part.contains("://")
            || part.starts_with("error sending request")
            || part == "client error (Connect)"
            || part == "client error (SendRequest)";
        if !useless && !parts.iter().any(|p| p.contains(&part)) {
            parts.push(part);
        }
        source = s.source();
    }
    if parts.is_empty() {
        "the request failed".into()
    } else {
        parts.join(": ")
    }
}

/// `scheme://host:port`, the unit credentials and limits belong to.
pub fn origin(url: &Url) -> String {
    format!(
        "{}://{}:{}",
        url.scheme(),
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or_default()
    )
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(value)
        .ok()?;
    let now = jiff::Timestamp::now();
    Some(Duration::try_from(when.duration_since(now)).unwrap_or_default())
}

/// Whether a host is a loopback address or name (plain HTTP is allowed there).
pub fn is_loopback(host: &str) -> bool {
    let host = host
        .rsplit_once(':')
        .filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit()))
        .map_or(host, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("localhost:5000"));
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("127.0.0.2"));
        assert!(is_loopback("[::1]:80"));
        assert!(!is_loopback("registry.example:5000"));
        assert!(!is_loopback("10.0.0.1"));
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        let later = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(90);
        let date = jiff::fmt::rfc2822::DateTimePrinter::new()
            .timestamp_to_rfc9110_string(&later)
            .unwrap();
        h.insert(RETRY_AFTER, date.parse().unwrap());
        let got = retry_after(&h).unwrap();
        assert!(
            got > Duration::from_secs(80) && got <= Duration::from_secs(90),
            "{got:?}"
        );
        h.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_a_ceiling() {
        let o = HttpOptions::default();
        for attempt in 1..8 {
            let full = (o.backoff * (1 << (attempt - 1))).min(o.max_backoff);
            let d = o.backoff(attempt);
            assert!(d >= full / 2 && d <= full, "{attempt}: {d:?} vs {full:?}");
        }
    }

    #[test]
    fn timeout_message_says_what_happened() {
        let e = HttpError::Timeout {
            url: "http://127.0.0.1:9/simple/x/".into(),
            after: Duration::from_secs(30),
            read: 0,
            body: false,
            attempts: 2,
        };
        assert_eq!(
            e.to_string(),
            "`http://127.0.0.1:9/simple/x/` timed out after 30 s (no response) (2 attempts)\nhint: the server accepted the connection but did not answer; raise `--timeout` or `[network] timeout` in imagelock.toml if it is only slow"
        );
    }
}

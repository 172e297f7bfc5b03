//! The shared HTTP client: system roots (and `SSL_CERT_FILE`), proxies from
//! the environment, timeouts, retries with backoff, `Retry-After`, a
//! concurrency limit per host, and redirects that never carry credentials to
//! another host.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{AUTHORIZATION, HeaderMap, LOCATION, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use tokio::sync::Semaphore;

/// Why an HTTP exchange failed (after retries).
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("request to `{url}` failed: {source}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("`{url}` answered with more than {limit} bytes")]
    TooLarge { url: String, limit: u64 },
    #[error("`{url}` redirects too often")]
    TooManyRedirects { url: String },
    #[error("`{url}` redirects to `{location}`, which is not a usable URL")]
    BadRedirect { url: String, location: String },
    #[error(
        "`{url}` redirects a request with a body to another origin, `{location}`; the body may hold credentials and is not sent there"
    )]
    BodyRedirect { url: String, location: String },
    #[error("`{url}` redirects from HTTPS to plain HTTP at `{location}`")]
    Downgrade { url: String, location: String },
}

/// Retry and limit settings.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    /// Attempts per request, the first included.
    pub attempts: u32,
    /// The first backoff; it doubles each retry.
    pub backoff: Duration,
    /// The longest `Retry-After` honoured; longer waits are cut to this.
    pub max_retry_after: Duration,
    /// Requests in flight per host.
    pub per_host: usize,
    pub connect_timeout: Duration,
    /// For a whole exchange, body included.
    pub timeout: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            attempts: 4,
            backoff: Duration::from_millis(200),
            max_retry_after: Duration::from_secs(60),
            per_host: 8,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(120),
        }
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
    /// Retry on connection errors and 5xx (set false for probes).
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
pub struct BodyStream(Arc<Mutex<Option<reqwest::Response>>>);

impl std::fmt::Debug for BodyStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BodyStream")
    }
}

impl BodyStream {
    /// Takes the body out (once); `None` when already taken.
    pub fn take(&self) -> Option<reqwest::Response> {
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
}

/// The HTTP client every resolver shares.
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: reqwest::Client,
    options: HttpOptions,
    hosts: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

/// A `reqwest` client builder for every client imagelock makes: TLS with
/// rustls on the `ring` provider, verifying against the system roots (and
/// `SSL_CERT_FILE`/`SSL_CERT_DIR`) through the platform verifier.
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
            .timeout(options.timeout)
            // Redirects are followed here, so credentials can be dropped
            // when the host changes.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(HttpError::Client)?;
        Ok(HttpClient {
            client,
            options,
            hosts: Arc::default(),
        })
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

    /// Sends a request, following redirects and retrying transient failures,
    /// and reads the body. Statuses other than 5xx and 429 are returned to the
    /// caller as they are.
    pub async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let mut request = request;
        for _ in 0..10 {
            let response = self.send_once_with_retries(&request).await?;
            if !response.status.is_redirection() || response.status == StatusCode::NOT_MODIFIED {
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
        let mut backoff = self.options.backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome = {
                let _permit = semaphore.acquire().await;
                self.exchange(request).await
            };
            let wait = match &outcome {
                Ok(r) if r.status == StatusCode::TOO_MANY_REQUESTS => Some(
                    retry_after(&r.headers)
                        .map_or(backoff, |d| d.min(self.options.max_retry_after)),
                ),
                Ok(r) if r.status.is_server_error() => Some(backoff),
                Ok(_) => None,
                Err(HttpError::Transport { source, .. }) if is_transient(source) => Some(backoff),
                Err(_) => None,
            };
            match wait {
                Some(wait) if attempt < attempts => {
                    tokio::time::sleep(wait).await;
                    backoff = backoff.saturating_mul(2);
                }
                _ => return outcome,
            }
        }
    }

    async fn exchange(&self, request: &HttpRequest) -> Result<HttpResponse, HttpError> {
        let transport = |source| HttpError::Transport {
            url: request.url.to_string(),
            source,
        };
        let mut builder = self
            .client
            .request(request.method.clone(), request.url.clone())
            .headers(request.headers.clone());
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        let response = builder.send().await.map_err(transport)?;
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
            return Ok(HttpResponse {
                status,
                url,
                headers,
                body: Bytes::new(),
                stream: Some(BodyStream(Arc::new(Mutex::new(Some(response))))),
            });
        }
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(transport)?;
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

/// Connection failures, timeouts and cut-off bodies are worth another try.
fn is_transient(e: &reqwest::Error) -> bool {
    e.is_connect() || e.is_timeout() || e.is_body() || e.is_request() || e.is_decode()
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

/// `Retry-After` as seconds (HTTP dates are rare from registries; they get
/// the default backoff).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
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
    fn retry_after_seconds() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
    }
}

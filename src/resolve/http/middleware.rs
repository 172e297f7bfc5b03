//! The client's retry policy and counters for code that sends requests
//! through `reqwest_middleware` itself (rattler's repodata gateway).

use std::sync::atomic::Ordering;

use reqwest::StatusCode;
use reqwest_middleware::{Middleware, Next};

use super::{HttpClient, retry_after};

/// Retries connection failures, timeouts, 429 and 5xx like
/// [`HttpClient::send`] does, and counts requests on the client.
#[derive(Clone, Debug)]
pub struct RetryMiddleware {
    client: HttpClient,
}

impl RetryMiddleware {
    pub fn new(client: HttpClient) -> RetryMiddleware {
        RetryMiddleware { client }
    }
}

#[async_trait::async_trait]
impl Middleware for RetryMiddleware {
    async fn handle(
        &self,
        req: reqwest::Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let options = self.client.options();
        let counters = &self.client.counters;
        let mut attempt = 0;
        loop {
            attempt += 1;
            counters.requests.fetch_add(1, Ordering::Relaxed);
            if attempt > 1 {
                counters.retries.fetch_add(1, Ordering::Relaxed);
            }
            // A streamed request body cannot be sent twice.
            let Some(this) = req.try_clone() else {
                return next.run(req, extensions).await;
            };
            let outcome = next.clone().run(this, extensions).await;
            let wait = match &outcome {
                Ok(r)
                    if r.status() == StatusCode::TOO_MANY_REQUESTS
                        || r.status().is_server_error() =>
                {
                    Some(retry_after(r.headers()).map_or_else(
                        || options.backoff(attempt),
                        |d| d.min(options.max_retry_after),
                    ))
                }
                Ok(r) => {
                    if r.status() == StatusCode::NOT_MODIFIED {
                        counters.not_modified.fetch_add(1, Ordering::Relaxed);
                    }
                    None
                }
                Err(reqwest_middleware::Error::Reqwest(e)) if e.is_timeout() && attempt >= 2 => {
                    None
                }
                Err(reqwest_middleware::Error::Reqwest(e))
                    if e.is_connect() || e.is_timeout() || e.is_request() || e.is_body() =>
                {
                    Some(options.backoff(attempt))
                }
                Err(_) => None,
            };
            match wait {
                Some(wait) if attempt < options.attempts.max(1) => tokio::time::sleep(wait).await,
                _ => return outcome,
            }
        }
    }
}

/// Adds HTTP basic auth from `.netrc` to requests for a host it names,
/// unless the request already carries credentials (from its URL). reqwest
/// drops the header on a redirect to another host.
#[derive(Clone)]
pub struct NetrcMiddleware {
    /// Host to (user, password); `*` for `.netrc`'s `default`.
    logins: std::collections::HashMap<String, (String, Option<String>)>,
}

impl std::fmt::Debug for NetrcMiddleware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the passwords.
        f.debug_struct("NetrcMiddleware")
            .field("hosts", &self.logins.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl NetrcMiddleware {
    pub fn new(logins: std::collections::HashMap<String, (String, Option<String>)>) -> Self {
        NetrcMiddleware { logins }
    }
}

#[async_trait::async_trait]
impl Middleware for NetrcMiddleware {
    async fn handle(
        &self,
        mut req: reqwest::Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        if !req.headers().contains_key(reqwest::header::AUTHORIZATION)
            && req.url().username().is_empty()
            && let Some(host) = req.url().host_str()
            && let Some((user, password)) = self.logins.get(host).or_else(|| self.logins.get("*"))
        {
            use base64::Engine as _;
            let token = base64::engine::general_purpose::STANDARD.encode(format!(
                "{user}:{}",
                password.as_deref().unwrap_or_default()
            ));
            if let Ok(mut value) = reqwest::header::HeaderValue::from_str(&format!("Basic {token}"))
            {
                value.set_sensitive(true);
                req.headers_mut()
                    .insert(reqwest::header::AUTHORIZATION, value);
            }
        }
        next.run(req, extensions).await
    }
}

//! A streamed response body that survives cuts: when the connection resets,
//! stalls past the read-idle timeout, or ends before the announced length,
//! the rest is asked for again with `Range: bytes=N-` from the last good
//! byte. A server that answers 206 continues where the stream stopped; one
//! that answers 200 sends it all again and the bytes already delivered are
//! skipped. Either way the caller sees one continuous stream (and checks
//! its digest over all of it), within the client's retry budget.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_RANGE, HeaderValue, RANGE};

use super::{HttpClient, HttpError, HttpRequest, classify, redact};

/// A response body read chunk by chunk, resumed after cuts.
pub struct Body {
    client: HttpClient,
    /// The request that produced the body, at its final URL (after
    /// redirects, with the headers that URL may see).
    request: HttpRequest,
    response: Option<reqwest::Response>,
    /// Bytes delivered to the caller.
    read: u64,
    /// The whole body's length, when announced.
    total: Option<u64>,
    /// Bytes of a restarted (200) body still to skip.
    skip: u64,
    /// Resumptions so far.
    resumes: u32,
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Body")
            .field("url", &redact(&self.request.url))
            .field("read", &self.read)
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

impl Body {
    pub(super) fn new(
        client: HttpClient,
        request: HttpRequest,
        response: reqwest::Response,
    ) -> Body {
        let total = response.content_length();
        Body {
            client,
            request,
            response: Some(response),
            read: 0,
            total,
            skip: 0,
            resumes: 0,
        }
    }

    /// Bytes delivered so far.
    pub fn read(&self) -> u64 {
        self.read
    }

    /// The next piece of the body; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, HttpError> {
        loop {
            let failure = match self.response.as_mut() {
                Some(response) => match response.chunk().await {
                    Ok(Some(chunk)) => {
                        let chunk = if self.skip > 0 {
                            let drop = self.skip.min(chunk.len() as u64);
                            self.skip -= drop;
                            chunk.slice(usize::try_from(drop).unwrap_or(chunk.len())..)
                        } else {
                            chunk
                        };
                        if chunk.is_empty() {
                            continue;
                        }
                        self.read += chunk.len() as u64;
                        if self.read > self.request.limit {
                            return Err(HttpError::TooLarge {
                                url: redact(&self.request.url),
                                limit: self.request.limit,
                            });
                        }
                        return Ok(Some(chunk));
                    }
                    Ok(None) if self.total.is_none_or(|t| self.read >= t) => return Ok(None),
                    // The connection closed before the announced length.
                    Ok(None) => format!(
                        "the connection closed after {} of {} bytes",
                        self.read,
                        self.total.unwrap_or_default()
                    ),
                    Err(e) => {
                        let attempts = self.resumes + 1;
                        match classify(
                            &self.request.url,
                            &e,
                            Some(self.read),
                            &self.client.options,
                            attempts,
                        ) {
                            HttpError::Timeout { after, .. } => {
                                format!("no data for {} s", after.as_secs().max(1))
                            }
                            HttpError::Transport { cause, .. }
                            | HttpError::Connect { cause, .. } => cause,
                            other => return Err(other),
                        }
                    }
                },
                None => "the stream was not resumed".to_string(),
            };
            self.response = None;
            self.resume(failure).await?;
        }
    }

    fn cut(&self, cause: String) -> HttpError {
        HttpError::Cut {
            url: redact(&self.request.url),
            read: self.read,
            total: self
                .total
                .map_or_else(|| "?".to_string(), |t| t.to_string()),
            cause,
            attempts: self.resumes + 1,
        }
    }

    /// Asks for the rest after a cut, or gives up when the budget is spent.
    async fn resume(&mut self, mut cause: String) -> Result<(), HttpError> {
        let budget = self.client.options.attempts.max(1);
        loop {
            if !self.request.retry || self.resumes + 1 >= budget {
                return Err(self.cut(cause));
            }
            self.resumes += 1;
            tokio::time::sleep(self.client.options.backoff(self.resumes)).await;
            self.client.counters.resumed.fetch_add(1, Ordering::Relaxed);
            let mut request = self.request.clone();
            if self.read > 0
                && let Ok(v) = HeaderValue::from_str(&format!("bytes={}-", self.read))
            {
                request.headers.insert(RANGE, v);
            }
            let response = match self.client.send_streaming(&request).await {
                Ok(r) => r,
                Err(e) => {
                    cause = e.to_string();
                    continue;
                }
            };
            let status = response.status();
            if status == StatusCode::PARTIAL_CONTENT {
                let start = response
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("bytes "))
                    .and_then(|v| v.split('-').next())
                    .and_then(|v| v.parse::<u64>().ok());
                if start != Some(self.read) {
                    return Err(self.cut("the server resumed at another offset".into()));
                }
                self.skip = 0;
            } else if status.is_success() {
                // No ranges here: the whole body again, minus what was
                // delivered.
                self.skip = self.read;
                if let Some(t) = response.content_length() {
                    self.total = Some(t);
                }
            } else if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                cause = format!("resuming, the server answered {status}");
                continue;
            } else {
                return Err(self.cut(format!("resuming, the server answered {status}")));
            }
            self.response = Some(response);
            return Ok(());
        }
    }
}

impl HttpClient {
    /// One streamed GET for a resumption (connection failures retried by
    /// the caller's budget, not here).
    async fn send_streaming(&self, request: &HttpRequest) -> Result<reqwest::Response, HttpError> {
        let semaphore = self.semaphore(&request.url);
        let _permit = semaphore.acquire().await;
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        self.client
            .request(request.method.clone(), request.url.clone())
            .headers(request.headers.clone())
            .send()
            .await
            .map_err(|e| classify(&request.url, &e, None, &self.options, 1))
    }
}

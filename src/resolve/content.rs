//! Files a definition fetches from a fixed URL (`ADD <url>`, `curl -o`,
//! `wget -O`): fetched once, streamed to a temporary file and hashed on
//! the way, never held in memory.

use sha2::{Digest as _, Sha256};

use crate::resolve::http::{HttpClient, HttpError, HttpRequest, redact};

/// The largest file fetched (the same bound as a whole wheel).
pub const DOWNLOAD_CAP: u64 = 16 << 30;

/// What a fixed URL serves now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    /// Lowercase hex.
    pub sha256: String,
    pub size: u64,
}

/// Why a URL's content could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The server says the file is not there (404 or 410).
    #[error("`{url}` answered {status}: the file is gone")]
    Gone { url: String, status: u16 },
    #[error("`{url}` answered {status}")]
    Status { url: String, status: u16 },
    #[error("`{0}` is not a URL imagelock can fetch")]
    Url(String),
    #[error("`{url}`: {cause}")]
    Io { url: String, cause: String },
    #[error(transparent)]
    Http(#[from] HttpError),
}

/// Fetches `url` and hashes what it serves, refusing more than `cap`
/// bytes.
pub async fn fetch_sha256(http: &HttpClient, url: &str, cap: u64) -> Result<Fetched, FetchError> {
    use std::io::Write;
    let parsed = url::Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| FetchError::Url(url.to_string()))?;
    let shown = redact(&parsed);
    let mut request = HttpRequest::get(parsed, cap);
    request.stream = true;
    let resp = http.send(request).await?;
    let status = resp.status.as_u16();
    if matches!(status, 404 | 410) {
        return Err(FetchError::Gone { url: shown, status });
    }
    if !resp.status.is_success() {
        return Err(FetchError::Status { url: shown, status });
    }
    let mut body = resp
        .stream
        .as_ref()
        .and_then(crate::resolve::http::BodyStream::take)
        .ok_or_else(|| FetchError::Io {
            url: shown.clone(),
            cause: "the response body was already read".into(),
        })?;
    let io = |e: std::io::Error| FetchError::Io {
        url: shown.clone(),
        cause: e.to_string(),
    };
    let mut file = tempfile::tempfile().map_err(io)?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = body.chunk().await? {
        size += chunk.len() as u64;
        if size > cap {
            return Err(HttpError::TooLarge {
                url: shown,
                limit: cap,
            }
            .into());
        }
        hasher.update(&chunk);
        file.write_all(&chunk).map_err(io)?;
    }
    Ok(Fetched {
        sha256: hex::encode(hasher.finalize()),
        size,
    })
}

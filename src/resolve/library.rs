//! A Library API service (`library://`, Sylabs' library and its
//! compatibles), as Apptainer's library client reads it: the image a tag
//! names for an architecture (`GET /v1/images/PATH:TAG?arch=ARCH`, whose
//! `data.hash` is `sha256.` and the SIF file's sha256), and that file
//! (`GET /v1/imagefile/PATH:TAG?arch=ARCH`, served or redirected to).
//!
//! `PATH` is `entity/collection/container` or a shorter form the service
//! completes (`container` is `library/default/container` on Sylabs'
//! library); it is sent as written, as Apptainer sends it. A hash in place
//! of the tag (`container:sha256.HEX`) names that image.

use std::io::Write;
use std::path::Path;

use reqwest::Url;
use sha2::{Digest as _, Sha256};

use crate::oci::Digest;
use crate::resolve::http::{HttpClient, HttpError, HttpRequest, redact};

/// The largest metadata document read.
const METADATA_LIMIT: u64 = 1 << 20;

/// A `From:` of `Bootstrap: library`, split as Apptainer splits it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LibraryRef {
    /// The host written in the reference (`library://HOST/e/c/name`), which
    /// then is the service.
    pub host: Option<String>,
    /// `entity/collection/container`, or a shorter form.
    pub path: String,
    /// The tag, or an image hash (`sha256.HEX`); `latest` when none.
    pub tag: String,
}

impl LibraryRef {
    /// Splits `library://[HOST/]PATH[:TAG]` (the `library://` optional): a
    /// host only when the path has more than three parts, as in
    /// Apptainer's `NormalizeLibraryRef`.
    pub fn parse(written: &str) -> Result<LibraryRef, LibraryError> {
        let bad = |why: &str| LibraryError::Reference {
            written: written.to_string(),
            why: why.to_string(),
        };
        let rest = written.strip_prefix("library://").unwrap_or(written);
        let (host, path) = if rest.matches('/').count() > 2 {
            let (h, p) = rest.split_once('/').unwrap_or(("", rest));
            (Some(h.to_string()), p)
        } else {
            (None, rest)
        };
        let (path, tag) = match path.split_once(':') {
            Some((p, t)) => (p, t),
            None => (path, "latest"),
        };
        let part = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        };
        if path.split('/').count() > 3 || !path.split('/').all(part) {
            return Err(bad(
                "the path is `[entity/[collection/]]container` in lowercase letters, digits, `.`, `_` and `-`",
            ));
        }
        if tag.contains(',') {
            return Err(bad("a build pulls one tag; write only the first"));
        }
        if !part(tag) {
            return Err(bad("the tag is empty or has characters a tag cannot have"));
        }
        Ok(LibraryRef {
            host: host.filter(|h| !h.is_empty()),
            path: path.to_string(),
            tag: tag.to_string(),
        })
    }

    /// The image hash the tag is, when it is one (`sha256.HEX`).
    pub fn hash(&self) -> Option<Digest> {
        hash_digest(&self.tag)
    }
}

/// `sha256.HEX` as a digest.
pub fn hash_digest(hash: &str) -> Option<Digest> {
    let hex = hash.strip_prefix("sha256.")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| format!("sha256:{}", hex.to_ascii_lowercase()).parse().ok())
        .flatten()
}

/// What the service says of an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LibraryImage {
    /// The SIF file's sha256 (the API's `hash`, `sha256.HEX`).
    pub hash: Digest,
    /// Its length, when the service says.
    pub size: Option<u64>,
    /// The architecture the service says it is for.
    pub arch: Option<String>,
}

/// Why the Library could not answer.
#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    #[error("`{written}` is not a library reference: {why}")]
    Reference { written: String, why: String },
    #[error(
        "`{url}` is not a Library service URL\nhint: write it as `https://HOST`, in the `Library:` header or `[apptainer] library`"
    )]
    Url { url: String },
    #[error("the Library at `{service}` has no image `{path}:{tag}` for {arch}")]
    NotFound {
        service: String,
        path: String,
        tag: String,
        arch: String,
    },
    #[error("`{url}` answered {status}")]
    Status { url: String, status: u16 },
    #[error("`{url}` sent an answer imagelock cannot read: {why}")]
    Invalid { url: String, why: String },
    #[error(
        "`{url}` names the image by `{hash}`, which is not a sha256 image hash\nhint: imagelock pins library images by their `sha256.` hash; this one cannot be pinned"
    )]
    NotSha256 { url: String, hash: String },
    #[error("`{url}` sent a file whose sha256 is {actual}, not the image hash {expected}")]
    HashMismatch {
        url: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("writing `{path}`: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Http(#[from] HttpError),
}

impl LibraryError {
    /// Whether the service says the image is not there (any more).
    pub fn is_gone(&self) -> bool {
        matches!(self, LibraryError::NotFound { .. })
    }
}

/// The base URL of a service: `https://HOST[:PORT][/prefix]`.
pub fn service_url(url: &str) -> Result<Url, LibraryError> {
    let bad = || LibraryError::Url {
        url: url.to_string(),
    };
    let mut u = Url::parse(url.trim()).map_err(|_| bad())?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err(bad());
    }
    if !u.path().ends_with('/') {
        let p = format!("{}/", u.path());
        u.set_path(&p);
    }
    u.set_query(None);
    u.set_fragment(None);
    Ok(u)
}

/// The service a reference is pulled from: the host it names, else
/// `configured` (the `Library:` header or `[apptainer] library`).
pub fn service_for(reference: &LibraryRef, configured: &str) -> Result<Url, LibraryError> {
    match &reference.host {
        Some(host) => service_url(&format!("https://{host}")),
        None => service_url(configured),
    }
}

/// `service` + `v1/WHAT/PATH:TAG?arch=ARCH`.
fn endpoint(
    service: &Url,
    what: &str,
    reference: &LibraryRef,
    arch: &str,
) -> Result<Url, LibraryError> {
    let mut url = service
        .join(&format!("v1/{what}/{}:{}", reference.path, reference.tag))
        .map_err(|_| LibraryError::Url {
            url: service.to_string(),
        })?;
    url.query_pairs_mut().append_pair("arch", arch);
    Ok(url)
}

/// The image `reference` names for `arch` (`amd64`, `arm64`…).
pub async fn image(
    http: &HttpClient,
    service: &Url,
    reference: &LibraryRef,
    arch: &str,
) -> Result<LibraryImage, LibraryError> {
    #[derive(serde::Deserialize)]
    struct Response {
        data: Option<Data>,
    }
    #[derive(serde::Deserialize)]
    struct Data {
        hash: String,
        #[serde(default)]
        size: Option<u64>,
        #[serde(default)]
        arch: Option<String>,
    }
    let url = endpoint(service, "images", reference, arch)?;
    let shown = redact(&url);
    let resp = http.send(HttpRequest::get(url, METADATA_LIMIT)).await?;
    let status = resp.status.as_u16();
    if status == 404 {
        return Err(LibraryError::NotFound {
            service: redact(service),
            path: reference.path.clone(),
            tag: reference.tag.clone(),
            arch: arch.to_string(),
        });
    }
    if !resp.status.is_success() {
        return Err(LibraryError::Status { url: shown, status });
    }
    let parsed: Response =
        serde_json::from_slice(&resp.body).map_err(|e| LibraryError::Invalid {
            url: shown.clone(),
            why: e.to_string(),
        })?;
    let data = parsed.data.ok_or_else(|| LibraryError::Invalid {
        url: shown.clone(),
        why: "it has no `data`".into(),
    })?;
    let hash = hash_digest(&data.hash).ok_or_else(|| LibraryError::NotSha256 {
        url: shown.clone(),
        hash: data.hash.escape_debug().to_string(),
    })?;
    Ok(LibraryImage {
        hash,
        size: data.size,
        arch: data.arch,
    })
}

/// Downloads the SIF `reference` names for `arch` to `dest`, checking it
/// against `expected` (the image hash) on the way; nothing is left at
/// `dest` unless it matches.
pub async fn download(
    http: &HttpClient,
    service: &Url,
    reference: &LibraryRef,
    arch: &str,
    expected: &Digest,
    dest: &Path,
    cap: u64,
) -> Result<(), LibraryError> {
    let url = endpoint(service, "imagefile", reference, arch)?;
    let shown = redact(&url);
    let mut request = HttpRequest::get(url, cap);
    request.stream = true;
    let resp = http.send(request).await?;
    let status = resp.status.as_u16();
    if status == 404 {
        return Err(LibraryError::NotFound {
            service: redact(service),
            path: reference.path.clone(),
            tag: reference.tag.clone(),
            arch: arch.to_string(),
        });
    }
    if !resp.status.is_success() {
        return Err(LibraryError::Status { url: shown, status });
    }
    let mut body = resp
        .stream
        .as_ref()
        .and_then(crate::resolve::http::BodyStream::take)
        .ok_or_else(|| LibraryError::Invalid {
            url: shown.clone(),
            why: "the response body was already read".into(),
        })?;
    let dir = dest.parent().unwrap_or_else(|| Path::new("."));
    let io = |source: std::io::Error| LibraryError::Io {
        path: dest.display().to_string(),
        source,
    };
    fs_err::create_dir_all(dir).map_err(io)?;
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
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
    let actual: Digest = format!("sha256:{}", hex::encode(hasher.finalize()))
        .parse()
        .map_err(|_| LibraryError::Invalid {
            url: shown.clone(),
            why: "its sha256 is not a digest".into(),
        })?;
    if &actual != expected {
        return Err(LibraryError::HashMismatch {
            url: shown,
            expected: expected.clone(),
            actual,
        });
    }
    file.persist(dest).map_err(|e| io(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_as_apptainer_splits_them() {
        let r = LibraryRef::parse("library/default/alpine:3.18").unwrap();
        assert_eq!(
            (r.host, r.path.as_str(), r.tag.as_str()),
            (None, "library/default/alpine", "3.18")
        );
        let r = LibraryRef::parse("library://alpine").unwrap();
        assert_eq!((r.path.as_str(), r.tag.as_str()), ("alpine", "latest"));
        let r = LibraryRef::parse("library://lib.example:8443/e/c/tool:1.0").unwrap();
        assert_eq!(r.host.as_deref(), Some("lib.example:8443"));
        assert_eq!(r.path, "e/c/tool");
        let hex = "ab".repeat(32);
        let r = LibraryRef::parse(&format!("e/c/tool:sha256.{hex}")).unwrap();
        assert_eq!(r.hash().unwrap().to_string(), format!("sha256:{hex}"));
        assert!(LibraryRef::parse("e/c/Tool:1").is_err());
        assert!(LibraryRef::parse("e/c/tool:1,2").is_err());
        assert!(LibraryRef::parse("e/c/tool:").is_err());
    }

    #[test]
    fn service_urls_end_in_a_slash_and_refuse_other_schemes() {
        let u = service_url("http://127.0.0.1:9/lib").unwrap();
        assert_eq!(u.as_str(), "http://127.0.0.1:9/lib/");
        let r = LibraryRef::parse("e/c/tool:1").unwrap();
        let e = endpoint(&u, "images", &r, "amd64").unwrap();
        assert_eq!(
            e.as_str(),
            "http://127.0.0.1:9/lib/v1/images/e/c/tool:1?arch=amd64"
        );
        assert!(service_url("ftp://x").is_err());
        assert!(service_url("library.sylabs.io").is_err());
    }
}

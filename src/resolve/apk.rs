//! Alpine repositories: `/etc/apk/repositories` as apk reads it, and each
//! repository's `<url>/<arch>/APKINDEX.tar.gz`, fetched through the shared
//! HTTP client (with apt's mirrors) and checked as apk checks it.
//!
//! `APKINDEX.tar.gz` is two gzip streams one after the other: the first a
//! tar (without its end blocks) of one `.SIGN.RSA.<key>` (RSA PKCS#1 v1.5
//! over the SHA-1 of the second stream's compressed bytes) or
//! `.SIGN.RSA256.<key>` (SHA-256) file, the second a tar of `DESCRIPTION`
//! and `APKINDEX`. The key is the image's `/etc/apk/keys/<key>`; an index
//! that is unsigned, signed by a key the image does not have, or whose
//! signature does not verify is refused.

use std::collections::BTreeMap;
use std::io::Read;

use crate::resolve::apt::{AptMirrors, AptRepoError, AptTransport};
use crate::solve::apk::{ApkIndexError, ApkRecord, parse_index};

/// The size limit of one `APKINDEX.tar.gz` (Alpine's largest are ~3 MB).
const INDEX_LIMIT: u64 = 256 << 20;

/// One line of `/etc/apk/repositories`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApkRepository {
    /// `@edge` of the line, without `@`.
    pub tag: Option<String>,
    pub url: String,
    /// `/etc/apk/repositories:LINE`.
    pub location: String,
}

/// Reads `/etc/apk/repositories`: one URL per line, `@tag` before it, `#`
/// comments.
pub fn parse_repositories(path: &str, text: &str) -> Result<Vec<ApkRepository>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let location = format!("{path}:{}", i + 1);
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or_default();
        let (tag, url) = match first.strip_prefix('@') {
            Some(t) => (Some(t.to_string()), words.next().unwrap_or_default()),
            None => (None, first),
        };
        if url.is_empty() || words.next().is_some() {
            return Err(format!(
                "{location}: `{line}` is not a repository line imagelock reads"
            ));
        }
        out.push(ApkRepository {
            tag,
            url: url.trim_end_matches('/').to_string(),
            location,
        });
    }
    Ok(out)
}

/// An Alpine repository that could not be fetched or failed its checks.
#[derive(Debug, thiserror::Error)]
pub enum ApkRepoError {
    #[error("{0}")]
    Transport(AptRepoError),
    #[error("{location}: {url} is not there (404)")]
    Missing { location: String, url: String },
    #[error(
        "{location}: {url} is refused: {reason}\nhint: apk refuses it too; add the repository's key to /etc/apk/keys in an earlier step"
    )]
    Signature {
        location: String,
        url: String,
        reason: String,
    },
    #[error("{location}: {url}: {message}")]
    Format {
        location: String,
        url: String,
        message: String,
    },
    #[error("{location}: {0}", location = .1)]
    Index(ApkIndexError, String),
}

/// One repository's checked index.
#[derive(Debug, Clone)]
pub struct FetchedApkIndex {
    pub repo: ApkRepository,
    /// The index URL as the image names it (not the mirror's).
    pub url: String,
    /// sha256 of `APKINDEX.tar.gz` as fetched.
    pub sha256: String,
    /// `DESCRIPTION` (`v3.20.3-…`).
    pub description: Option<String>,
    /// The key file that signed it.
    pub key: String,
    pub packages: Vec<ApkRecord>,
}

/// The two gzip streams of an `APKINDEX.tar.gz`.
struct Streams<'a> {
    /// The signature tar, decoded.
    sig_tar: Vec<u8>,
    /// The index stream as fetched (what is signed).
    signed: &'a [u8],
    /// The index tar, decoded.
    index_tar: Vec<u8>,
}

fn split_streams(bytes: &[u8]) -> Result<Streams<'_>, String> {
    let mut first = flate2::bufread::GzDecoder::new(bytes);
    let mut sig_tar = Vec::new();
    first
        .read_to_end(&mut sig_tar)
        .map_err(|e| format!("not gzip: {e}"))?;
    let rest = first.into_inner();
    if rest.is_empty() {
        return Err("it has one gzip stream: the index is not signed".into());
    }
    let mut index_tar = Vec::new();
    flate2::bufread::GzDecoder::new(rest)
        .read_to_end(&mut index_tar)
        .map_err(|e| format!("the index stream is not gzip: {e}"))?;
    Ok(Streams {
        sig_tar,
        signed: rest,
        index_tar,
    })
}

fn tar_files(tar: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let path = entry
            .path()
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).map_err(|e| e.to_string())?;
        out.push((path, data));
    }
    Ok(out)
}

/// The public key of a PEM `-----BEGIN PUBLIC KEY-----` file.
fn read_key(pem: &[u8]) -> Result<rsa::RsaPublicKey, String> {
    use base64::Engine as _;
    use rsa::pkcs8::DecodePublicKey as _;
    let text = std::str::from_utf8(pem).map_err(|_| "not PEM text".to_string())?;
    let body: String = text
        .lines()
        .map(str::trim)
        .skip_while(|l| !l.starts_with("-----BEGIN PUBLIC KEY-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    if body.is_empty() {
        return Err("no `BEGIN PUBLIC KEY` block".into());
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|e| format!("bad base64: {e}"))?;
    rsa::RsaPublicKey::from_public_key_der(&der).map_err(|e| format!("not an RSA public key: {e}"))
}

/// Checks the signature of an `APKINDEX.tar.gz` against `keys` (key file
/// name → PEM) and returns the signing key's name and the index tar.
pub fn verify_index(
    bytes: &[u8],
    keys: &BTreeMap<String, Vec<u8>>,
) -> Result<(String, Vec<u8>), String> {
    use sha1::Digest as _;
    let Streams {
        sig_tar,
        signed,
        index_tar,
    } = split_streams(bytes)?;
    let sigs = tar_files(&sig_tar).map_err(|e| format!("the signature tar cannot be read: {e}"))?;
    let mut named = Vec::new();
    for (path, sig) in &sigs {
        let (algo, key) = if let Some(k) = path.strip_prefix(".SIGN.RSA256.") {
            ("sha256", k)
        } else if let Some(k) = path.strip_prefix(".SIGN.RSA.") {
            ("sha1", k)
        } else {
            return Err(format!(
                "the first stream holds `{path}`, not a `.SIGN.RSA.` signature: the index is not signed"
            ));
        };
        named.push(key.to_string());
        let Some(pem) = keys.get(key) else { continue };
        let public = read_key(pem).map_err(|e| format!("/etc/apk/keys/{key}: {e}"))?;
        let (digest, scheme) = match algo {
            "sha1" => (
                sha1::Sha1::digest(signed).to_vec(),
                rsa::Pkcs1v15Sign {
                    hash_len: Some(20),
                    prefix: Box::new([
                        0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05,
                        0x00, 0x04, 0x14,
                    ]),
                },
            ),
            _ => (
                {
                    use sha2::Digest as _;
                    sha2::Sha256::digest(signed).to_vec()
                },
                rsa::Pkcs1v15Sign {
                    hash_len: Some(32),
                    prefix: Box::new([
                        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03,
                        0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20,
                    ]),
                },
            ),
        };
        return match public.verify(scheme, &digest, sig) {
            Ok(()) => Ok((key.to_string(), index_tar)),
            Err(_) => Err(format!(
                "its signature by key `{key}` does not verify: the index was changed or signed by another key"
            )),
        };
    }
    if named.is_empty() {
        return Err("it carries no signature: the index is not signed".into());
    }
    Err(format!(
        "it is signed by key `{}`, which the image does not have in /etc/apk/keys",
        named.join("`, `")
    ))
}

/// `APKINDEX.tar.gz` of repository `repo` for `arch`, fetched, checked
/// against the image's `keys`, and read.
pub async fn fetch_index<T: AptTransport>(
    client: &T,
    mirrors: &AptMirrors,
    repo: &ApkRepository,
    arch: &str,
    keys: &BTreeMap<String, Vec<u8>>,
) -> Result<FetchedApkIndex, ApkRepoError> {
    let url = format!("{}/{arch}/APKINDEX.tar.gz", repo.url);
    let location = repo.location.clone();
    let bytes = client
        .get(&mirrors.apply(&url), INDEX_LIMIT)
        .await
        .map_err(ApkRepoError::Transport)?
        .ok_or_else(|| ApkRepoError::Missing {
            location: location.clone(),
            url: url.clone(),
        })?;
    let (key, index_tar) =
        verify_index(&bytes, keys).map_err(|reason| ApkRepoError::Signature {
            location: location.clone(),
            url: url.clone(),
            reason,
        })?;
    let format = |message: String| ApkRepoError::Format {
        location: location.clone(),
        url: url.clone(),
        message,
    };
    let files = tar_files(&index_tar).map_err(&format)?;
    let text = |name: &str| {
        files
            .iter()
            .find(|(p, _)| p == name)
            .map(|(_, d)| String::from_utf8_lossy(d).into_owned())
    };
    let index = text("APKINDEX").ok_or_else(|| format("the index tar has no `APKINDEX`".into()))?;
    let packages =
        parse_index(&url, &index).map_err(|e| ApkRepoError::Index(e, location.clone()))?;
    use sha2::Digest as _;
    Ok(FetchedApkIndex {
        repo: repo.clone(),
        url,
        sha256: hex::encode(sha2::Sha256::digest(&bytes)),
        description: text("DESCRIPTION").map(|d| d.trim().to_string()),
        key,
        packages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_with_tags_and_comments() {
        let r = parse_repositories(
            "/etc/apk/repositories",
            "# main\nhttps://dl-cdn.alpinelinux.org/alpine/v3.20/main/\n\n@edge https://dl-cdn.alpinelinux.org/alpine/edge/testing # t\n",
        )
        .unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].url, "https://dl-cdn.alpinelinux.org/alpine/v3.20/main");
        assert_eq!(r[0].location, "/etc/apk/repositories:2");
        assert_eq!(r[1].tag.as_deref(), Some("edge"));
        assert!(parse_repositories("/r", "a b c\n").is_err());
    }

    #[test]
    fn an_unsigned_index_is_refused() {
        use std::io::Write as _;
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, "APKINDEX", &b"P:a"[..]).unwrap();
        let tar = tar.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&tar).unwrap();
        let bytes = gz.finish().unwrap();
        let e = verify_index(&bytes, &BTreeMap::new()).unwrap_err();
        assert!(e.contains("not signed"), "{e}");
    }
}

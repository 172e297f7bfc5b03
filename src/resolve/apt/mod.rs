//! Debian and Ubuntu archives checked as apt checks them: `InRelease` (or
//! `Release` + `Release.gpg`) verified against the image's keyrings,
//! `Valid-Until` and `Date` checked, `Packages` indexes fetched (by hash
//! when the archive offers it) and checked against the Release's SHA256.
//!
//! HTTP goes through [`AptTransport`], implemented for the shared client,
//! so apt archives get the same fault policy as every other service, and
//! tests can serve an archive locally.

mod keys;
pub mod parsed;

use std::collections::BTreeMap;
use std::io::Read;

use bytes::Bytes;
use sha2::{Digest as _, Sha256};

pub use keys::{ImageKeys, Keyring};

use crate::solve::apt::control::{BinaryPackage, ParsePackageError};
use crate::solve::apt::deb822::{Deb822Error, paragraphs};
use crate::solve::apt::release::{IndexHash, ParseReleaseError, ReleaseFile, parse_release_date};
use crate::solve::apt::{PackageFileInfo, PackageIndex, SourceEntry};

/// The largest `InRelease`/`Release` accepted.
const RELEASE_LIMIT: u64 = 32 << 20;
/// The largest decompressed `Packages` accepted.
const PACKAGES_LIMIT: u64 = 1 << 30;

/// Why an archive's metadata was refused.
#[derive(Debug, thiserror::Error)]
pub enum AptRepoError {
    #[error(
        "request to `{url}` failed: {message}\nhint: check the archive URI or configure a mirror for it"
    )]
    Http { url: String, message: String },
    #[error("`{url}` answered with more than {limit} bytes")]
    TooLarge { url: String, limit: u64 },
    #[error(
        "{location}: `{url}` has neither `InRelease` nor `Release`\nhint: check the suite name; flat repositories end the suite in `/`"
    )]
    NoRelease { location: String, url: String },
    #[error(
        "{location}: the signature of `{url}` could not be verified: {reason}\nhint: the image needs the archive's key in `/etc/apt/trusted.gpg.d/` or a `signed-by=` keyring; apt would refuse this source too"
    )]
    Signature {
        location: String,
        url: String,
        reason: String,
    },
    #[error(
        "{location}: the Release file `{url}` is expired (invalid since {valid_until})\nhint: the archive or mirror is stale; apt refuses it unless `check-valid-until=no`"
    )]
    Expired {
        location: String,
        url: String,
        valid_until: String,
    },
    #[error(
        "{location}: the Release file `{url}` is not valid yet (its Date is {date})\nhint: check the machine's clock"
    )]
    NotYetValid {
        location: String,
        url: String,
        date: String,
    },
    #[error("{location}: `{url}`: {source}")]
    Release {
        location: String,
        url: String,
        #[source]
        source: ParseReleaseError,
    },
    #[error(
        "{location}: `{url}` does not list `{path}`\nhint: the archive offers no such component or architecture"
    )]
    NotListed {
        location: String,
        url: String,
        path: String,
    },
    #[error(
        "`{url}` has sha256 `{actual}` ({actual_size} bytes), but the Release file says `{expected}` ({expected_size} bytes)\nhint: a mirror is mid-sync or the file was altered; apt refuses it too"
    )]
    HashMismatch {
        url: String,
        expected: String,
        expected_size: u64,
        actual: String,
        actual_size: u64,
    },
    #[error("`{url}` cannot be decompressed: {message}")]
    Decompress { url: String, message: String },
    #[error("`{url}`: {source}")]
    Deb822 {
        url: String,
        #[source]
        source: Deb822Error,
    },
    #[error("`{url}`: {source}")]
    Package {
        url: String,
        #[source]
        source: ParsePackageError,
    },
    #[error(
        "{location}: keyring `{path}` is not in the image\nhint: the source's `signed-by` names a file the image lacks; an earlier step must add it"
    )]
    MissingKeyring { location: String, path: String },
    #[error("keyring `{path}` cannot be read: {reason}")]
    BadKeyring { path: String, reason: String },
}

/// GET with a size limit; `Ok(None)` for 404/410.
pub trait AptTransport: Sync {
    fn get(
        &self,
        url: &str,
        limit: u64,
    ) -> impl Future<Output = Result<Option<Bytes>, AptRepoError>> + Send;

    /// Where parsed `Packages` indexes are kept ([`parsed`]), if anywhere.
    fn parsed_dir(&self) -> Option<&std::path::Path> {
        None
    }
}

/// The shared client: apt archives get the same retries, timeouts, proxy,
/// CA and redirect rules as every other service.
impl AptTransport for crate::resolve::http::HttpClient {
    async fn get(&self, url: &str, limit: u64) -> Result<Option<Bytes>, AptRepoError> {
        use crate::resolve::http::{HttpError, HttpRequest};
        let parsed = reqwest::Url::parse(url).map_err(|e| AptRepoError::Http {
            url: url.to_string(),
            message: e.to_string(),
        })?;
        if parsed.scheme() == "file" {
            return read_local(&parsed, url, limit);
        }
        let resp = self
            .send(HttpRequest::get(parsed, limit))
            .await
            .map_err(|e| match e {
                HttpError::TooLarge { .. } => AptRepoError::TooLarge {
                    url: url.to_string(),
                    limit,
                },
                e => AptRepoError::Http {
                    url: url.to_string(),
                    message: e.to_string(),
                },
            })?;
        let status = resp.status;
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::GONE {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(AptRepoError::Http {
                url: url.to_string(),
                message: format!("HTTP {status}"),
            });
        }
        Ok(Some(resp.body))
    }
}

/// A `file://` URL (a local mirror, `[apt] mirrors`) read as a server
/// would answer it: `Ok(None)` when the file does not exist.
fn read_local(parsed: &reqwest::Url, url: &str, limit: u64) -> Result<Option<Bytes>, AptRepoError> {
    let failed = |message: String| AptRepoError::Http {
        url: url.to_string(),
        message,
    };
    let path = parsed
        .to_file_path()
        .map_err(|()| failed("not a local path".into()))?;
    match std::fs::metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(failed(e.to_string())),
        Ok(m) if m.is_dir() => return Ok(None),
        Ok(m) if m.len() > limit => {
            return Err(AptRepoError::TooLarge {
                url: url.to_string(),
                limit,
            });
        }
        Ok(_) => {}
    }
    let bytes = fs_err::read(&path).map_err(|e| failed(e.to_string()))?;
    if bytes.len() as u64 > limit {
        return Err(AptRepoError::TooLarge {
            url: url.to_string(),
            limit,
        });
    }
    Ok(Some(Bytes::from(bytes)))
}

/// Archive URI prefixes replaced by a mirror's (`[apt] mirrors`), longest
/// prefix first. Records keep the original URI.
#[derive(Debug, Clone, Default)]
pub struct AptMirrors {
    map: BTreeMap<String, String>,
}

impl AptMirrors {
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        AptMirrors {
            map: pairs
                .into_iter()
                .map(|(a, b)| {
                    (
                        a.trim_end_matches('/').to_string(),
                        b.trim_end_matches('/').to_string(),
                    )
                })
                .collect(),
        }
    }

    /// The URL to fetch for `url`.
    pub fn apply(&self, url: &str) -> String {
        self.map
            .iter()
            .filter(|(from, _)| {
                url.starts_with(from.as_str()) && url[from.len()..].starts_with('/')
            })
            .max_by_key(|(from, _)| from.len())
            .map(|(from, to)| format!("{to}{}", &url[from.len()..]))
            .unwrap_or_else(|| url.to_string())
    }
}

/// One source's checked metadata.
#[derive(Debug, Clone)]
pub struct FetchedSource {
    pub entry: SourceEntry,
    pub release: ReleaseFile,
    /// The URL of the `InRelease` (or `Release`) used, before mirroring.
    pub release_url: String,
    /// sha256 of the signed file as fetched.
    pub release_sha256: String,
    pub indexes: Vec<PackageIndex>,
}

fn hex_sha256(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// The directory under which `dists/…` files of an entry live.
fn suite_base(entry: &SourceEntry) -> String {
    let uri = entry.uri.trim_end_matches('/');
    if entry.suite.ends_with('/') {
        let s = entry.suite.trim_start_matches("./");
        if s.is_empty() || s == "/" {
            format!("{uri}/")
        } else {
            format!("{uri}/{s}")
        }
    } else {
        format!("{uri}/dists/{}/", entry.suite)
    }
}

/// Checks `Valid-Until` and `Date` as apt does (`now` in seconds).
pub fn check_dates(
    release: &ReleaseFile,
    entry: &SourceEntry,
    url: &str,
    now: i64,
) -> Result<(), AptRepoError> {
    if let Some(date) = parse_release_date(&release.date)
        && date > now + 60
    {
        return Err(AptRepoError::NotYetValid {
            location: entry.location.clone(),
            url: url.to_string(),
            date: release.date.clone(),
        });
    }
    if entry.check_valid_until
        && let Some(until) = &release.valid_until
        && parse_release_date(until).is_some_and(|t| t < now)
    {
        return Err(AptRepoError::Expired {
            location: entry.location.clone(),
            url: url.to_string(),
            valid_until: until.clone(),
        });
    }
    Ok(())
}

/// Checks a downloaded index against its Release entry and decompresses it.
pub fn decode_index(url: &str, bytes: &[u8], expected: &IndexHash) -> Result<String, AptRepoError> {
    let actual = hex_sha256(bytes);
    if actual != expected.sha256 || bytes.len() as u64 != expected.size {
        return Err(AptRepoError::HashMismatch {
            url: url.to_string(),
            expected: expected.sha256.clone(),
            expected_size: expected.size,
            actual,
            actual_size: bytes.len() as u64,
        });
    }
    let derr = |message: String| AptRepoError::Decompress {
        url: url.to_string(),
        message,
    };
    let mut out = Vec::new();
    if expected.path.ends_with(".gz") {
        flate2::read::GzDecoder::new(bytes)
            .take(PACKAGES_LIMIT)
            .read_to_end(&mut out)
            .map_err(|e| derr(e.to_string()))?;
    } else if expected.path.ends_with(".xz") {
        let mut reader = std::io::BufReader::new(bytes);
        lzma_rs::xz_decompress(&mut reader, &mut out).map_err(|e| derr(e.to_string()))?;
    } else {
        out = bytes.to_vec();
    }
    String::from_utf8(out).map_err(|_| derr("the index is not UTF-8".into()))
}

/// Parses a `Packages` text into binary packages.
pub fn parse_packages(url: &str, text: &str) -> Result<Vec<BinaryPackage>, AptRepoError> {
    let ps = paragraphs(text).map_err(|source| AptRepoError::Deb822 {
        url: url.to_string(),
        source,
    })?;
    ps.iter()
        .map(|p| {
            BinaryPackage::from_paragraph(p).map_err(|source| AptRepoError::Package {
                url: url.to_string(),
                source,
            })
        })
        .collect()
}

fn host_of(uri: &str) -> String {
    reqwest::Url::parse(uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default()
}

/// Fetches and checks one source entry's Release and the `Packages` of
/// its components for `archs` (the image's native architecture first).
/// `now` is seconds since the epoch.
pub async fn fetch_source<T: AptTransport>(
    transport: &T,
    mirrors: &AptMirrors,
    entry: &SourceEntry,
    archs: &[String],
    keys: &ImageKeys,
    now: i64,
) -> Result<FetchedSource, AptRepoError> {
    let base = suite_base(entry);
    let inrelease_url = format!("{base}InRelease");
    let (release_url, signed_bytes, text) = match transport
        .get(&mirrors.apply(&inrelease_url), RELEASE_LIMIT)
        .await?
    {
        Some(bytes) => {
            let text = if entry.trusted && !looks_signed(&bytes) {
                String::from_utf8_lossy(&bytes).into_owned()
            } else {
                keys.keyring_for(entry)?
                    .verify_cleartext(&bytes)
                    .map_err(|reason| AptRepoError::Signature {
                        location: entry.location.clone(),
                        url: inrelease_url.clone(),
                        reason,
                    })?
            };
            (inrelease_url, bytes, text)
        }
        None => {
            let url = format!("{base}Release");
            let Some(bytes) = transport.get(&mirrors.apply(&url), RELEASE_LIMIT).await? else {
                return Err(AptRepoError::NoRelease {
                    location: entry.location.clone(),
                    url,
                });
            };
            if !entry.trusted {
                let sig_url = format!("{base}Release.gpg");
                let sig = transport
                    .get(&mirrors.apply(&sig_url), RELEASE_LIMIT)
                    .await?
                    .ok_or_else(|| AptRepoError::Signature {
                        location: entry.location.clone(),
                        url: sig_url.clone(),
                        reason: "the archive has no `Release.gpg`".into(),
                    })?;
                keys.keyring_for(entry)?
                    .verify_detached(&bytes, &sig)
                    .map_err(|reason| AptRepoError::Signature {
                        location: entry.location.clone(),
                        url: sig_url.clone(),
                        reason,
                    })?;
            }
            (
                url,
                bytes.clone(),
                String::from_utf8_lossy(&bytes).into_owned(),
            )
        }
    };
    let release = ReleaseFile::parse(&text).map_err(|source| AptRepoError::Release {
        location: entry.location.clone(),
        url: release_url.clone(),
        source,
    })?;
    check_dates(&release, entry, &release_url, now)?;
    let archs: Vec<String> = match &entry.architectures {
        Some(a) => a.clone(),
        None => archs.to_vec(),
    };
    let arch_all = release.architectures.iter().any(|a| a == "all")
        && !text.contains("\nNo-Support-for-Architecture-all: Packages");
    let mut wanted: Vec<(String, String)> = Vec::new();
    let components: Vec<String> = if entry.components.is_empty() {
        vec![String::new()]
    } else {
        entry.components.clone()
    };
    for c in &components {
        for a in archs
            .iter()
            .map(String::as_str)
            .chain(arch_all.then_some("all"))
        {
            if !entry.components.is_empty()
                && !release.architectures.is_empty()
                && !release.architectures.iter().any(|x| x == a)
            {
                continue;
            }
            wanted.push((c.clone(), a.to_string()));
        }
    }
    let mut futures = Vec::new();
    for (component, arch) in wanted {
        let dir = if component.is_empty() {
            String::new()
        } else {
            format!("{component}/binary-{arch}/")
        };
        // gzip decompresses several times faster than xz; take it when listed.
        let Some(h) = ["Packages.gz", "Packages.xz", "Packages"]
            .iter()
            .find_map(|name| release.hash_of(&format!("{dir}{name}")))
            .cloned()
        else {
            if component.is_empty() || arch == "all" {
                continue;
            }
            return Err(AptRepoError::NotListed {
                location: entry.location.clone(),
                url: release_url.clone(),
                path: format!("{dir}Packages"),
            });
        };
        let url = format!("{base}{}", h.path);
        let by_hash = release
            .acquire_by_hash
            .then(|| format!("{base}{dir}by-hash/SHA256/{}", h.sha256));
        let file = PackageFileInfo {
            origin: release.origin.clone(),
            label: release.label.clone(),
            archive: release.suite.clone(),
            codename: release.codename.clone(),
            version: release.version.clone(),
            component: component.clone(),
            architecture: arch.clone(),
            site: host_of(&entry.uri),
            not_automatic: release.not_automatic,
            but_automatic_upgrades: release.but_automatic_upgrades,
            uri: entry.uri.clone(),
            index: url.clone(),
        };
        let parsed_dir = transport.parsed_dir().map(std::path::Path::to_path_buf);
        futures.push(async move {
            // The verified Release names the index by its sha256: a parsed
            // form kept under that hash is this index.
            if let Some(dir) = parsed_dir.clone() {
                let sha = h.sha256.clone();
                let hit = tokio::task::spawn_blocking(move || parsed::read(&dir, &sha))
                    .await
                    .ok()
                    .flatten();
                if let Some(packages) = hit {
                    return Ok(PackageIndex { file, packages });
                }
            }
            let limit = h.size;
            let mut bytes = None;
            if let Some(bh) = &by_hash {
                bytes = transport.get(&mirrors.apply(bh), limit).await?;
            }
            if bytes.is_none() {
                bytes = transport.get(&mirrors.apply(&url), limit).await?;
            }
            let bytes = bytes.ok_or_else(|| AptRepoError::Http {
                url: url.clone(),
                message: "HTTP 404".into(),
            })?;
            let text = tokio::task::spawn_blocking({
                let url = url.clone();
                move || -> Result<Vec<BinaryPackage>, AptRepoError> {
                    let text = decode_index(&url, &bytes, &h)?;
                    drop(bytes);
                    let packages = parse_packages(&url, &text)?;
                    if let Some(dir) = &parsed_dir {
                        parsed::write(dir, &h.sha256, &packages);
                    }
                    Ok(packages)
                }
            })
            .await
            .map_err(|e| AptRepoError::Decompress {
                url: url.clone(),
                message: e.to_string(),
            })??;
            Ok::<_, AptRepoError>(PackageIndex {
                file,
                packages: text,
            })
        });
    }
    let indexes = futures_util::future::try_join_all(futures).await?;
    Ok(FetchedSource {
        entry: entry.clone(),
        release,
        release_url,
        release_sha256: hex_sha256(&signed_bytes),
        indexes,
    })
}

fn looks_signed(b: &[u8]) -> bool {
    b.starts_with(b"-----BEGIN PGP SIGNED MESSAGE-----")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_replace_the_longest_prefix() {
        let m = AptMirrors::new([
            (
                "http://deb.debian.org/debian".to_string(),
                "http://mirror.local/debian/".to_string(),
            ),
            (
                "http://deb.debian.org/debian-security".to_string(),
                "http://mirror.local/sec".to_string(),
            ),
        ]);
        assert_eq!(
            m.apply("http://deb.debian.org/debian/dists/x/InRelease"),
            "http://mirror.local/debian/dists/x/InRelease"
        );
        assert_eq!(
            m.apply("http://deb.debian.org/debian-security/dists/y"),
            "http://mirror.local/sec/dists/y"
        );
        assert_eq!(m.apply("http://other/debian/x"), "http://other/debian/x");
    }

    #[test]
    fn a_local_mirror_is_read_as_a_server_answers() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("repodata")).unwrap();
        std::fs::write(dir.path().join("repodata/repomd.xml"), b"<repomd/>").unwrap();
        let base = format!("file://{}", dir.path().display());
        let client =
            crate::resolve::http::HttpClient::new(crate::resolve::http::HttpOptions::default())
                .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let get = |url: String, limit: u64| rt.block_on(client.get(&url, limit));
        assert_eq!(
            get(format!("{base}/repodata/repomd.xml"), 100).unwrap(),
            Some(Bytes::from_static(b"<repomd/>"))
        );
        assert_eq!(
            get(format!("{base}/repodata/missing.xml"), 100).unwrap(),
            None
        );
        assert_eq!(get(format!("{base}/repodata"), 100).unwrap(), None);
        assert!(matches!(
            get(format!("{base}/repodata/repomd.xml"), 4),
            Err(AptRepoError::TooLarge { limit: 4, .. })
        ));
    }

    #[test]
    fn hash_mismatch_is_refused() {
        let h = IndexHash {
            path: "main/binary-amd64/Packages".into(),
            size: 3,
            sha256: hex_sha256(b"abc"),
        };
        assert!(decode_index("u", b"abc", &h).is_ok());
        let err = decode_index("u", b"abd", &h).unwrap_err();
        assert!(
            err.to_string().contains("but the Release file says"),
            "{err}"
        );
    }
}

/// Fetches and checks every source concurrently, in sources order.
pub async fn fetch_sources<T: AptTransport>(
    transport: &T,
    mirrors: &AptMirrors,
    entries: &[SourceEntry],
    archs: &[String],
    keys: &ImageKeys,
    now: i64,
) -> Result<Vec<FetchedSource>, AptRepoError> {
    futures_util::future::try_join_all(
        entries
            .iter()
            .map(|e| fetch_source(transport, mirrors, e, archs, keys, now)),
    )
    .await
}

/// A transport that keeps content-addressed files (`by-hash/SHA256/…`)
/// on disk and answers them from there, checked again on every read;
/// `InRelease` and everything else always goes to the network.
#[derive(Debug, Clone)]
pub struct CachedTransport<T> {
    pub inner: T,
    pub dir: std::path::PathBuf,
    /// Parsed indexes by their sha256 ([`parsed`]); `None` parses every
    /// index again.
    pub parsed: Option<std::path::PathBuf>,
}

impl<T> CachedTransport<T> {
    /// By-hash files in `dir`, parsed indexes in `dir/parsed`.
    pub fn new(inner: T, dir: std::path::PathBuf) -> Self {
        CachedTransport {
            inner,
            parsed: Some(dir.join("parsed")),
            dir,
        }
    }
}

impl<T: AptTransport> AptTransport for CachedTransport<T> {
    fn parsed_dir(&self) -> Option<&std::path::Path> {
        self.parsed.as_deref()
    }

    async fn get(&self, url: &str, limit: u64) -> Result<Option<Bytes>, AptRepoError> {
        let Some(hash) = url
            .rsplit_once("/by-hash/SHA256/")
            .map(|(_, h)| h)
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        else {
            return self.inner.get(url, limit).await;
        };
        let path = self.dir.join(hash);
        if let Ok(bytes) = fs_err::read(&path)
            && hex_sha256(&bytes) == hash
        {
            return Ok(Some(Bytes::from(bytes)));
        }
        let got = self.inner.get(url, limit).await?;
        if let Some(bytes) = &got
            && hex_sha256(bytes) == hash
        {
            // A failed cache write only costs a download next time.
            let tmp = self.dir.join(format!(".{hash}.{}", std::process::id()));
            if fs_err::create_dir_all(&self.dir).is_ok() && fs_err::write(&tmp, bytes).is_ok() {
                let _ = fs_err::rename(&tmp, &path);
            }
        }
        Ok(got)
    }
}

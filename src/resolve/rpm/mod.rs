//! RPM repositories as dnf reads them: `.repo` files (with `$releasever`,
//! `$basearch` and `/etc/dnf/vars` substituted), `repomd.xml` and its
//! detached signature when the repository asks for one (`repo_gpgcheck`),
//! and `primary` checked against the checksum `repomd.xml` gives for it.
//! Transport, keyrings and mirrors are apt's: the same client, the same
//! OpenPGP checks, the same prefix mirrors.

use std::collections::BTreeMap;
use std::io::Read;

use sha2::{Digest, Sha256, Sha512};

use crate::resolve::apt::{AptMirrors, AptRepoError, AptTransport, Keyring};
use crate::solve::rpm::RpmPackage;
use crate::solve::rpm::primary::{MetadataError, Repomd, RepomdData, parse_primary, parse_repomd};
use crate::solve::rpm::updateinfo::{Advisory, parse_updateinfo};

/// The largest `repomd.xml` (or its signature) accepted.
const REPOMD_LIMIT: u64 = 8 << 20;
/// The largest compressed metadata file accepted.
const METADATA_LIMIT: u64 = 1 << 30;
/// The largest decompressed `primary` accepted.
const PRIMARY_LIMIT: u64 = 4 << 30;

/// Why a repository's configuration or metadata was refused.
#[derive(Debug, thiserror::Error)]
pub enum RpmRepoError {
    #[error("{location}: {message}")]
    RepoFile { location: String, message: String },
    #[error(
        "{location}: repository `{repo}` uses `${var}`, which neither dnf's built-in variables nor `/etc/dnf/vars/` define\nhint: dnf would leave it in the URL as written; imagelock cannot know the URL it means"
    )]
    UnknownVariable {
        location: String,
        repo: String,
        var: String,
    },
    #[error(
        "{location}: repository `{repo}` has no `baseurl`\nhint: only `baseurl` repositories are locked; `mirrorlist` and `metalink` answer differently from one request to the next"
    )]
    NoBaseUrl { location: String, repo: String },
    #[error("{0}")]
    Transport(AptRepoError),
    #[error("{location}: `{url}` is missing (HTTP 404)")]
    Missing { location: String, url: String },
    #[error(
        "{location}: the signature of `{url}` could not be verified: {reason}\nhint: the repository has `repo_gpgcheck=1`; its key must be in the image (`gpgkey=`), dnf would refuse it too"
    )]
    Signature {
        location: String,
        url: String,
        reason: String,
    },
    #[error("{location}: `{url}`: {source}")]
    Metadata {
        location: String,
        url: String,
        #[source]
        source: MetadataError,
    },
    #[error("{location}: `{url}` does not list `{kind}` metadata")]
    NotListed {
        location: String,
        url: String,
        kind: String,
    },
    #[error(
        "`{url}` has {algorithm} `{actual}`, but repomd.xml says `{expected}`\nhint: a mirror is mid-sync or the file was altered; dnf refuses it too"
    )]
    ChecksumMismatch {
        url: String,
        algorithm: String,
        expected: String,
        actual: String,
    },
    #[error("`{url}`: checksum type `{algorithm}` is not one imagelock checks (sha256, sha512)")]
    UnsupportedChecksum { url: String, algorithm: String },
    #[error("`{url}` cannot be decompressed: {message}")]
    Decompress { url: String, message: String },
}

/// One repository of a `.repo` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoConfig {
    pub id: String,
    pub name: Option<String>,
    pub baseurls: Vec<String>,
    pub mirrorlist: Option<String>,
    pub metalink: Option<String>,
    pub enabled: bool,
    pub gpgcheck: bool,
    pub repo_gpgcheck: bool,
    pub gpgkeys: Vec<String>,
    /// Options not interpreted here (`module_hotfixes`, `priority`, ...).
    pub options: BTreeMap<String, String>,
    /// `file:line` of the `[id]` header.
    pub location: String,
}

fn truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "yes" | "true" | "on"
    )
}

/// Substitutes dnf variables (`$name` and `${name}`) in `s`.
pub fn substitute(s: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, tail) = if let Some(b) = after.strip_prefix('{') {
            match b.find('}') {
                Some(j) => (&b[..j], &b[j + 1..]),
                None => return Err(after.to_string()),
            }
        } else {
            let n = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..n], &after[n..])
        };
        if name.is_empty() {
            out.push('$');
            rest = after;
            continue;
        }
        match vars.get(name) {
            Some(v) => out.push_str(v),
            None => return Err(name.to_string()),
        }
        rest = tail;
    }
    out.push_str(rest);
    Ok(out)
}

/// Parses a `.repo` file (INI as dnf reads it: `[id]` sections, `key=value`,
/// continuation lines for lists, `#`/`;` comments).
pub fn parse_repo_file(
    path: &str,
    text: &str,
    vars: &BTreeMap<String, String>,
) -> Result<Vec<RepoConfig>, RpmRepoError> {
    let mut out: Vec<RepoConfig> = Vec::new();
    let mut last_key: Option<String> = None;
    for (n, raw) in text.lines().enumerate() {
        let location = format!("{path}:{}", n + 1);
        let line = raw.trim_end();
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if let Some(id) = trimmed.strip_prefix('[') {
            let id = id.strip_suffix(']').ok_or_else(|| RpmRepoError::RepoFile {
                location: location.clone(),
                message: format!("`{trimmed}` is not a section header"),
            })?;
            out.push(RepoConfig {
                id: id.trim().to_string(),
                name: None,
                baseurls: vec![],
                mirrorlist: None,
                metalink: None,
                enabled: true,
                gpgcheck: false,
                repo_gpgcheck: false,
                gpgkeys: vec![],
                options: BTreeMap::new(),
                location,
            });
            last_key = None;
            continue;
        }
        let Some(repo) = out.last_mut() else {
            return Err(RpmRepoError::RepoFile {
                location,
                message: "an option before any `[repository]` section".into(),
            });
        };
        let sub = |v: &str| -> Result<String, RpmRepoError> {
            substitute(v, vars).map_err(|var| RpmRepoError::UnknownVariable {
                location: location.clone(),
                repo: repo.id.clone(),
                var,
            })
        };
        let (key, value) = if line.starts_with(char::is_whitespace) {
            // A continuation of the previous list option.
            match &last_key {
                Some(k) => (k.clone(), trimmed.to_string()),
                None => {
                    return Err(RpmRepoError::RepoFile {
                        location,
                        message: "an indented line that continues no option".into(),
                    });
                }
            }
        } else {
            let (k, v) = trimmed
                .split_once('=')
                .ok_or_else(|| RpmRepoError::RepoFile {
                    location: location.clone(),
                    message: format!("`{trimmed}` is not `key=value`"),
                })?;
            (k.trim().to_ascii_lowercase(), v.trim().to_string())
        };
        last_key = Some(key.clone());
        let list = |v: &str| -> Result<Vec<String>, RpmRepoError> {
            v.split(|c: char| c == ',' || c.is_whitespace())
                .filter(|s| !s.is_empty())
                .map(sub)
                .collect()
        };
        match key.as_str() {
            "name" => repo.name = Some(value),
            "baseurl" => repo.baseurls.extend(list(&value)?),
            "gpgkey" => repo.gpgkeys.extend(list(&value)?),
            "mirrorlist" => repo.mirrorlist = Some(sub(&value)?),
            "metalink" => repo.metalink = Some(sub(&value)?),
            "enabled" => repo.enabled = truthy(&value),
            "gpgcheck" => repo.gpgcheck = truthy(&value),
            "repo_gpgcheck" => repo.repo_gpgcheck = truthy(&value),
            _ => {
                repo.options.insert(key, value);
            }
        }
    }
    Ok(out)
}

/// The `$releasever` dnf derives from an rpm database: the package that
/// provides `system-release(releasever)` (else `system-release`,
/// `redhat-release`), with the version of that provide when it has one.
pub fn detect_releasever(installed: &[crate::solve::rpm::InstalledRpm]) -> Option<String> {
    for cap in [
        "system-release(releasever)",
        "system-release",
        "distribution-release",
        "redhat-release",
    ] {
        for p in installed {
            if let Some(d) = p.provides.iter().find(|d| d.name == cap) {
                if let Some((crate::solve::rpm::DepFlag::Eq, evr)) = &d.constraint
                    && p.name != cap
                {
                    return Some(evr.version.clone());
                }
                return Some(p.evr.version.clone());
            }
        }
    }
    None
}

/// dnf's `$basearch` for an OCI platform architecture.
pub fn basearch(oci_arch: &str) -> &str {
    match oci_arch {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        "386" => "i686",
        "ppc64le" => "ppc64le",
        "s390x" => "s390x",
        other => other,
    }
}

/// A repository's metadata as fetched and checked.
#[derive(Debug, Clone)]
pub struct FetchedRepo {
    pub id: String,
    /// The base URL used (as configured, before mirrors).
    pub baseurl: String,
    pub repomd: Repomd,
    /// sha256 of `repomd.xml` as fetched.
    pub repomd_sha256: String,
    /// True when `repomd.xml` was checked against its signature.
    pub signed: bool,
    pub packages: Vec<RpmPackage>,
}

fn join(base: &str, rel: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        rel.trim_start_matches('/')
    )
}

/// Checks a downloaded metadata file against its `repomd.xml` entry and
/// decompresses it (by its name: `.gz`, `.xz`, `.zst`, or plain).
pub fn decode_metadata(
    url: &str,
    bytes: &[u8],
    expected: &RepomdData,
) -> Result<Vec<u8>, RpmRepoError> {
    let (algorithm, want) = &expected.checksum;
    let actual = match algorithm.as_str() {
        "sha256" => hex::encode(Sha256::digest(bytes)),
        "sha512" => hex::encode(Sha512::digest(bytes)),
        other => {
            return Err(RpmRepoError::UnsupportedChecksum {
                url: url.to_string(),
                algorithm: other.to_string(),
            });
        }
    };
    if &actual != want {
        return Err(RpmRepoError::ChecksumMismatch {
            url: url.to_string(),
            algorithm: algorithm.clone(),
            expected: want.clone(),
            actual,
        });
    }
    let derr = |message: String| RpmRepoError::Decompress {
        url: url.to_string(),
        message,
    };
    let mut out = Vec::new();
    let loc = expected.location.as_str();
    if loc.ends_with(".gz") {
        flate2::read::GzDecoder::new(bytes)
            .take(PRIMARY_LIMIT)
            .read_to_end(&mut out)
            .map_err(|e| derr(e.to_string()))?;
    } else if loc.ends_with(".xz") {
        let mut reader = std::io::BufReader::new(bytes);
        lzma_rs::xz_decompress(&mut reader, &mut out).map_err(|e| derr(e.to_string()))?;
    } else if loc.ends_with(".zst") {
        zstd::stream::read::Decoder::new(bytes)
            .map_err(|e| derr(e.to_string()))?
            .take(PRIMARY_LIMIT)
            .read_to_end(&mut out)
            .map_err(|e| derr(e.to_string()))?;
    } else if loc.ends_with(".bz2") {
        return Err(derr(format!(
            "bzip2 metadata is not read; the repository's `{}` must be gz, xz or zstd",
            expected.kind
        )));
    } else {
        out = bytes.to_vec();
    }
    Ok(out)
}

async fn get<T: AptTransport>(
    client: &T,
    mirrors: &AptMirrors,
    location: &str,
    url: &str,
    limit: u64,
) -> Result<bytes::Bytes, RpmRepoError> {
    client
        .get(&mirrors.apply(url), limit)
        .await
        .map_err(RpmRepoError::Transport)?
        .ok_or_else(|| RpmRepoError::Missing {
            location: location.to_string(),
            url: url.to_string(),
        })
}

/// Fetches and checks one repository: `repomd.xml` (with its signature when
/// `repo_gpgcheck` is on, checked against `keyring`), then `primary`.
pub async fn fetch_repo<T: AptTransport>(
    client: &T,
    mirrors: &AptMirrors,
    repo: &RepoConfig,
    keyring: &Keyring,
) -> Result<FetchedRepo, RpmRepoError> {
    let location = repo.location.as_str();
    let baseurl = repo
        .baseurls
        .first()
        .ok_or_else(|| RpmRepoError::NoBaseUrl {
            location: location.to_string(),
            repo: repo.id.clone(),
        })?;
    let md_url = join(baseurl, "repodata/repomd.xml");
    let md_bytes = get(client, mirrors, location, &md_url, REPOMD_LIMIT).await?;
    if repo.repo_gpgcheck {
        let sig_url = format!("{md_url}.asc");
        let sig = get(client, mirrors, location, &sig_url, REPOMD_LIMIT).await?;
        keyring
            .verify_detached(&md_bytes, &sig)
            .map_err(|reason| RpmRepoError::Signature {
                location: location.to_string(),
                url: md_url.clone(),
                reason,
            })?;
    }
    let meta = |url: &str, source| RpmRepoError::Metadata {
        location: location.to_string(),
        url: url.to_string(),
        source,
    };
    let md_text = std::str::from_utf8(&md_bytes).map_err(|_| {
        meta(
            &md_url,
            MetadataError {
                what: "repomd.xml".into(),
                message: "not UTF-8".into(),
            },
        )
    })?;
    let repomd = parse_repomd("repomd.xml", md_text).map_err(|e| meta(&md_url, e))?;
    let primary = repomd
        .get("primary")
        .ok_or_else(|| RpmRepoError::NotListed {
            location: location.to_string(),
            url: md_url.clone(),
            kind: "primary".into(),
        })?;
    let p_url = join(baseurl, &primary.location);
    let packed = get(client, mirrors, location, &p_url, METADATA_LIMIT).await?;
    let xml = decode_metadata(&p_url, &packed, primary)?;
    let xml = String::from_utf8(xml).map_err(|_| {
        meta(
            &p_url,
            MetadataError {
                what: "primary".into(),
                message: "not UTF-8".into(),
            },
        )
    })?;
    let packages = parse_primary("primary", &xml).map_err(|e| meta(&p_url, e))?;
    Ok(FetchedRepo {
        id: repo.id.clone(),
        baseurl: baseurl.clone(),
        signed: repo.repo_gpgcheck,
        repomd_sha256: hex::encode(Sha256::digest(&md_bytes)),
        repomd: repomd.clone(),
        packages,
    })
}

/// The errata of `repo` (`updateinfo` in the `repomd.xml` already fetched
/// and checked), checked against the checksum `repomd.xml` gives for them;
/// `None` when the repository publishes none.
pub async fn fetch_updateinfo<T: AptTransport>(
    client: &T,
    mirrors: &AptMirrors,
    location: &str,
    repo: &FetchedRepo,
) -> Result<Option<Vec<Advisory>>, RpmRepoError> {
    let Some(entry) = repo.repomd.get("updateinfo") else {
        return Ok(None);
    };
    let url = join(&repo.baseurl, &entry.location);
    let packed = get(client, mirrors, location, &url, METADATA_LIMIT).await?;
    let xml = decode_metadata(&url, &packed, entry)?;
    let meta = |source| RpmRepoError::Metadata {
        location: location.to_string(),
        url: url.clone(),
        source,
    };
    let xml = String::from_utf8(xml).map_err(|_| {
        meta(MetadataError {
            what: "updateinfo".into(),
            message: "not UTF-8".into(),
        })
    })?;
    parse_updateinfo("updateinfo", &xml).map(Some).map_err(meta)
}

/// The module metadata of `repo` (`modules` in its `repomd.xml`: the
/// `modules.yaml` text), checked against the checksum `repomd.xml` gives;
/// `None` when the repository is not modular.
pub async fn fetch_modules<T: AptTransport>(
    client: &T,
    mirrors: &AptMirrors,
    location: &str,
    repo: &FetchedRepo,
) -> Result<Option<String>, RpmRepoError> {
    let Some(entry) = repo.repomd.get("modules") else {
        return Ok(None);
    };
    let url = join(&repo.baseurl, &entry.location);
    let packed = get(client, mirrors, location, &url, METADATA_LIMIT).await?;
    let text = decode_metadata(&url, &packed, entry)?;
    String::from_utf8(text)
        .map(Some)
        .map_err(|_| RpmRepoError::Metadata {
            location: location.to_string(),
            url: url.clone(),
            source: MetadataError {
                what: "modules".into(),
                message: "not UTF-8".into(),
            },
        })
}

/// The URL of a package of `repo`.
pub fn package_url(repo: &FetchedRepo, pkg: &RpmPackage) -> String {
    join(&repo.baseurl, &pkg.location)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        [("releasever", "9"), ("basearch", "x86_64")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn repo_files_substitute_variables_and_keep_lines() {
        let text = "# comment\n[base]\nname=Base $releasever\nbaseurl=http://a/${releasever}/$basearch/\n  http://b/$releasever/\nenabled=1\ngpgcheck=yes\nrepo_gpgcheck=0\ngpgkey=file:///etc/pki/k1 file:///etc/pki/k2\npriority=10\n\n[off]\nenabled=0\nmirrorlist=http://m/?r=$releasever\n";
        let repos = parse_repo_file("/etc/yum.repos.d/x.repo", text, &vars()).unwrap();
        assert_eq!(repos.len(), 2);
        let b = &repos[0];
        assert_eq!(b.location, "/etc/yum.repos.d/x.repo:2");
        assert_eq!(b.baseurls, ["http://a/9/x86_64/", "http://b/9/"]);
        assert!(b.enabled && b.gpgcheck && !b.repo_gpgcheck);
        assert_eq!(b.gpgkeys.len(), 2);
        assert_eq!(b.options["priority"], "10");
        assert!(!repos[1].enabled);
        assert_eq!(repos[1].mirrorlist.as_deref(), Some("http://m/?r=9"));
    }

    #[test]
    fn an_unknown_variable_is_named_with_its_line() {
        let err = parse_repo_file("/r.repo", "[a]\nbaseurl=http://x/$contentdir/\n", &vars())
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("/r.repo:2: "), "{msg}");
        assert!(msg.contains("$contentdir"), "{msg}");
    }

    #[test]
    fn metadata_must_match_its_checksum() {
        let data = b"<metadata/>";
        let entry = RepomdData {
            kind: "primary".into(),
            checksum: ("sha256".into(), hex::encode(Sha256::digest(data))),
            location: "repodata/primary.xml".into(),
            size: None,
        };
        assert_eq!(decode_metadata("u", data, &entry).unwrap(), data);
        let err = decode_metadata("u", b"<metadata />", &entry).unwrap_err();
        assert!(matches!(err, RpmRepoError::ChecksumMismatch { .. }));
        let md5 = RepomdData {
            checksum: ("md5".into(), "x".into()),
            ..entry
        };
        assert!(matches!(
            decode_metadata("u", data, &md5),
            Err(RpmRepoError::UnsupportedChecksum { .. })
        ));
    }
}

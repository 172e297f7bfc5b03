//! Lock entries checked against their sources: a locked digest or hash
//! that the registry, index or channel serves differently for that exact
//! artifact (a hand edit, or a source that replaced a file). `freeze`
//! refuses such a lock and `drift` reports a `hash-mismatch` finding.

use std::path::{Path, PathBuf};

use crate::lock::{LockedBase, LockedImage};
use crate::oci::{Digest, ImageRef, Platform};
use crate::resolve::Registry;
use crate::resolve::registry::ResolveError;

/// What a mismatching entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    Pip,
    Conda,
    Base,
    /// A file locked by its fixed URL.
    Url,
}

/// A locked value its source contradicts for the same artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashMismatch {
    pub subject: Subject,
    /// The package or base name.
    pub name: String,
    /// The file (pip, conda) or the platform (a base's per-platform
    /// manifest); empty for a base's own digest.
    pub artifact: String,
    /// The lock key (`sha256`, `md5`, `digest`, `config`).
    pub key: &'static str,
    /// The value in the lock.
    pub locked: String,
    /// What the source serves for that artifact (`None`: it has nothing
    /// under the locked digest).
    pub served: Option<String>,
}

impl HashMismatch {
    /// The source, as a message names it.
    pub fn source(&self) -> &'static str {
        match self.subject {
            Subject::Pip => "the index",
            Subject::Conda => "the channel",
            Subject::Base => "the registry",
            Subject::Url => "the URL",
        }
    }

    /// One sentence: the key, the locked value and what the source serves.
    pub fn describe(&self) -> String {
        let what = match (self.subject, self.artifact.is_empty()) {
            (Subject::Base, true) => format!("base `{}`", self.name),
            (Subject::Base, false) => format!("base `{}` for {}", self.name, self.artifact),
            (Subject::Pip, _) => format!("pip `{}` file `{}`", self.name, self.artifact),
            (Subject::Conda, _) => format!("conda `{}` file `{}`", self.name, self.artifact),
            (Subject::Url, _) => format!("the file at `{}`", self.name),
        };
        match &self.served {
            Some(served) => format!(
                "`{}` of {what} is `{}` in the lock, but {} serves `{served}` for it",
                self.key,
                self.locked,
                self.source()
            ),
            None => format!(
                "`{}` of {what} is `{}` in the lock, but {} has nothing under that digest",
                self.key,
                self.locked,
                self.source()
            ),
        }
    }

    /// The 1-based line of the lock text holding the locked value.
    pub fn line_in(&self, lock_text: &str) -> Option<usize> {
        let needle = format!("\"{}\"", self.locked);
        lock_text
            .lines()
            .position(|l| l.contains(&needle) && l.trim_start().starts_with(self.key))
            .map(|i| i + 1)
    }
}

/// The pip and conda files both locks name, whose hashes differ: `fresh`
/// took them from the index and the channel just now.
pub fn artifact_mismatches(previous: &LockedImage, fresh: &LockedImage) -> Vec<HashMismatch> {
    let mut out = Vec::new();
    let fresh_pip: Vec<_> = fresh.steps.iter().flat_map(|s| &s.pypi).collect();
    let fresh_conda: Vec<_> = fresh.steps.iter().flat_map(|s| &s.conda).collect();
    // A fixed URL that serves other bytes than the lock pins.
    let fresh_downloads: Vec<_> = fresh.stages.iter().flat_map(|s| &s.downloads).collect();
    for d in previous.stages.iter().flat_map(|s| &s.downloads) {
        if let Some(now) = fresh_downloads.iter().find(|n| n.url == d.url)
            && now.sha256 != d.sha256
        {
            push(
                &mut out,
                HashMismatch {
                    subject: Subject::Url,
                    name: d.url.to_string(),
                    artifact: String::new(),
                    key: "sha256",
                    locked: d.sha256.to_string(),
                    served: Some(now.sha256.to_string()),
                },
            );
        }
    }
    for step in &previous.steps {
        for p in &step.pypi {
            let (Some(file), Some(locked)) = (&p.file, &p.sha256) else {
                continue;
            };
            let served = fresh_pip.iter().find_map(|q| {
                (q.name == p.name && q.file.as_ref() == Some(file))
                    .then_some(q.sha256.as_ref())
                    .flatten()
            });
            if let Some(served) = served
                && served != locked
            {
                push(
                    &mut out,
                    HashMismatch {
                        subject: Subject::Pip,
                        name: p.name.to_string(),
                        artifact: file.as_str().to_string(),
                        key: "sha256",
                        locked: locked.as_str().to_string(),
                        served: Some(served.as_str().to_string()),
                    },
                );
            }
        }
        for p in &step.conda {
            let Some(q) = fresh_conda
                .iter()
                .find(|q| q.url == p.url && q.subdir == p.subdir)
            else {
                continue;
            };
            let file = p.url.as_str().rsplit('/').next().unwrap_or_default();
            let mut check = |key: &'static str, locked: Option<&str>, served: Option<&str>| {
                if let (Some(locked), Some(served)) = (locked, served)
                    && locked != served
                {
                    push(
                        &mut out,
                        HashMismatch {
                            subject: Subject::Conda,
                            name: p.name.to_string(),
                            artifact: file.to_string(),
                            key,
                            locked: locked.to_string(),
                            served: Some(served.to_string()),
                        },
                    );
                }
            };
            check("sha256", Some(p.sha256.as_str()), Some(q.sha256.as_str()));
            check(
                "md5",
                p.md5.as_ref().map(|m| m.as_str()),
                q.md5.as_ref().map(|m| m.as_str()),
            );
        }
    }
    out
}

fn push(out: &mut Vec<HashMismatch>, m: HashMismatch) {
    if !out.contains(&m) {
        out.push(m);
    }
}

/// Asks the registry for a locked base by its locked digest and compares
/// what it serves (the platform manifests and configs) with the lock.
/// Images of this repository (`built_from`) are not at a registry.
pub async fn base_mismatches(
    registry: &Registry,
    base: &LockedBase,
) -> Result<Vec<HashMismatch>, ResolveError> {
    if base.built_from.is_some() {
        return Ok(Vec::new());
    }
    let Ok(image) = ImageRef::parse(base.name.as_str()) else {
        return Ok(Vec::new());
    };
    let image = image.with_digest(base.digest.clone());
    let platforms: Vec<Platform> = base.platforms.iter().map(|p| p.platform.clone()).collect();
    let mismatch = |artifact: String, key: &'static str, locked: String, served: Option<String>| {
        HashMismatch {
            subject: Subject::Base,
            name: base.name.to_string(),
            artifact,
            key,
            locked,
            served,
        }
    };
    let resolved = match registry.resolve(&image, &platforms).await {
        Ok(r) => r,
        // Content that does not hash to the digest asked for is a transfer
        // fault (or a lying proxy), said as such by the error, not a lock
        // that names the wrong digest.
        Err(ResolveError::NotFound { .. }) => {
            return Ok(vec![mismatch(
                String::new(),
                "digest",
                base.digest.to_string(),
                None,
            )]);
        }
        Err(ResolveError::PlatformNotFound { platform, .. }) => {
            let locked = base
                .platforms
                .iter()
                .find(|p| p.platform.to_string() == platform)
                .map_or_else(String::new, |p| p.digest.to_string());
            return Ok(vec![mismatch(platform, "digest", locked, None)]);
        }
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for (locked, served) in base.platforms.iter().zip(&resolved.platforms) {
        let platform = locked.platform.to_string();
        if let Some(digest) = &served.manifest_digest
            && *digest != locked.digest
        {
            out.push(mismatch(
                platform.clone(),
                "digest",
                locked.digest.to_string(),
                Some(digest.to_string()),
            ));
        }
        if served.config_digest != locked.config {
            out.push(mismatch(
                platform,
                "config",
                locked.config.to_string(),
                Some(served.config_digest.to_string()),
            ));
        }
    }
    Ok(out)
}

/// Where verified manifests are kept between runs: content-addressed, so
/// an entry is checked by hashing it on read.
fn manifest_path(cache_dir: &Path, digest: &Digest) -> Option<PathBuf> {
    let hex = digest.to_string();
    let hex = hex.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| cache_dir.join("manifests").join(hex))
}

/// A cached manifest whose bytes hash to `digest`; a damaged or tampered
/// entry is removed and reads as absent.
fn cached_manifest(cache_dir: &Path, digest: &Digest) -> Option<serde_json::Value> {
    let path = manifest_path(cache_dir, digest)?;
    let body = fs_err::read(&path).ok()?;
    if Digest::sha256_of(&body) != *digest {
        let _ = fs_err::remove_file(&path);
        return None;
    }
    serde_json::from_slice(&body).ok()
}

/// Keeps the manifests of `base` fetched in this run (its index and
/// platform manifests), so a later run can check the pin without the
/// registry.
pub fn keep_manifests(cache_dir: &Path, registry: &Registry, base: &LockedBase) {
    let digests = std::iter::once(&base.digest).chain(base.platforms.iter().map(|p| &p.digest));
    for digest in digests {
        let (Some(path), Some(body)) = (
            manifest_path(cache_dir, digest),
            registry.verified_content(digest),
        ) else {
            continue;
        };
        if !path.is_file() {
            let _ = crate::lock::write_atomic(&path, &body);
        }
    }
}

/// Whether the verified manifests cached from earlier runs vouch for a
/// locked base: its index lists each locked platform manifest, and each
/// names the locked config. Digests are checked by hashing, so no cache
/// entry can vouch for a digest it does not hash to.
pub fn vouched(cache_dir: &Path, base: &LockedBase) -> bool {
    let index = if base.platforms.iter().all(|p| p.digest == base.digest) {
        None
    } else {
        match cached_manifest(cache_dir, &base.digest) {
            Some(index) => Some(index),
            None => return false,
        }
    };
    base.platforms.iter().all(|p| {
        let listed = index.as_ref().is_none_or(|index| {
            index["manifests"]
                .as_array()
                .is_some_and(|m| m.iter().any(|e| e["digest"] == p.digest.to_string()))
        });
        listed
            && cached_manifest(cache_dir, &p.digest)
                .is_some_and(|m| m["config"]["digest"] == p.config.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_of_a_locked_value_is_found() {
        let m = HashMismatch {
            subject: Subject::Pip,
            name: "six".into(),
            artifact: "six-1.16.0-py2.py3-none-any.whl".into(),
            key: "sha256",
            locked: "ab".repeat(32),
            served: Some("cd".repeat(32)),
        };
        let text = format!("name = \"six\"\nsha256 = \"{}\"\n", "ab".repeat(32));
        assert_eq!(m.line_in(&text), Some(2));
        assert!(
            m.describe().contains("but the index serves"),
            "{}",
            m.describe()
        );
    }

    #[test]
    fn a_tampered_cached_manifest_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let body = br#"{"config":{"digest":"sha256:00"}}"#;
        let digest = Digest::sha256_of(body);
        let path = manifest_path(dir.path(), &digest).unwrap();
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        fs_err::write(&path, body).unwrap();
        assert!(cached_manifest(dir.path(), &digest).is_some());
        fs_err::write(&path, br#"{"config":{"digest":"sha256:11"}}"#).unwrap();
        assert!(cached_manifest(dir.path(), &digest).is_none());
        assert!(!path.exists(), "the tampered entry is removed");
    }
}

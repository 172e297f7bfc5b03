//! Conda package records: what a channel offers and what a prefix holds.

use std::str::FromStr;

use rattler_conda_types::{PrefixRecord, RepoDataRecord};

use crate::lock::CondaPackage;

/// Records could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadCondaRecordError {
    #[error("invalid conda record in `{what}`: {reason}")]
    Invalid { what: String, reason: String },
}

/// One conda package build as a channel lists it (or a prefix recorded it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CondaRecord {
    pub(crate) inner: RepoDataRecord,
}

impl CondaRecord {
    pub(crate) fn new(inner: RepoDataRecord) -> Self {
        Self { inner }
    }

    /// Reads one `conda-meta/*.json` file of a prefix. `what` names it in
    /// errors.
    pub fn from_conda_meta(what: &str, text: &str) -> Result<Self, ReadCondaRecordError> {
        PrefixRecord::from_str(text)
            .map(|r| Self::new(r.repodata_record))
            .map_err(|e| ReadCondaRecordError::Invalid {
                what: what.to_string(),
                reason: e.to_string(),
            })
    }

    /// Reads a JSON array of records: `conda-meta` entries or repodata
    /// records with `url`, `fn` and `channel`.
    pub fn many_from_json(what: &str, text: &str) -> Result<Vec<Self>, ReadCondaRecordError> {
        let invalid = |reason: String| ReadCondaRecordError::Invalid {
            what: what.to_string(),
            reason,
        };
        let values: Vec<serde_json::Value> =
            serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        values
            .into_iter()
            .map(|value| {
                serde_json::from_value::<RepoDataRecord>(value)
                    .map(Self::new)
                    .map_err(|e| invalid(e.to_string()))
            })
            .collect()
    }

    /// Writes records as the JSON array [`Self::many_from_json`] reads.
    pub fn many_to_json(records: &[CondaRecord]) -> String {
        let inner: Vec<&RepoDataRecord> = records.iter().map(|r| &r.inner).collect();
        serde_json::to_string_pretty(&inner).unwrap_or_else(|_| "[]".to_string())
    }

    pub fn name(&self) -> &str {
        self.inner.package_record.name.as_normalized()
    }
    pub fn version(&self) -> String {
        self.inner.package_record.version.to_string()
    }
    pub fn build(&self) -> &str {
        self.inner.package_record.build.as_str()
    }
    pub fn build_number(&self) -> u64 {
        self.inner.package_record.build_number
    }
    pub fn subdir(&self) -> &str {
        &self.inner.package_record.subdir
    }
    /// The channel's URL (or name, for records that only know that).
    pub fn channel(&self) -> &str {
        self.inner
            .channel
            .as_deref()
            .unwrap_or("")
            .trim_end_matches('/')
    }
    pub fn url(&self) -> &str {
        self.inner.url.as_str()
    }
    pub fn sha256(&self) -> Option<String> {
        self.inner.package_record.sha256.map(hex::encode)
    }
    pub fn md5(&self) -> Option<String> {
        self.inner.package_record.md5.map(hex::encode)
    }
    pub fn size(&self) -> Option<u64> {
        self.inner.package_record.size
    }
    pub fn depends(&self) -> &[String] {
        &self.inner.package_record.depends
    }
    /// Build time in milliseconds since the epoch, when the record has one.
    pub fn timestamp_millis(&self) -> Option<i64> {
        self.inner
            .package_record
            .timestamp
            .as_ref()
            .map(|t| t.timestamp_millis())
    }

    /// The lock entry for this record.
    pub fn to_lock(&self, requested: Option<&str>, platform: &str) -> CondaPackage {
        CondaPackage {
            name: self.name().to_string(),
            version: self.version(),
            build: self.build().to_string(),
            build_number: self.build_number(),
            // Channel tokens never enter a lock.
            channel: crate::config::redact::redact_url(self.channel()),
            subdir: self.subdir().to_string(),
            url: crate::config::redact::redact_url(self.url()),
            sha256: self.sha256().unwrap_or_default(),
            md5: self.md5(),
            size: self.size(),
            requested: requested.map(str::to_string),
            platforms: vec![platform.to_string()],
        }
    }

    /// Same package build (name, version, build, subdir)? Channels are not
    /// compared: a prefix may record a channel by name.
    pub(crate) fn same_build(&self, other: &CondaRecord) -> bool {
        let (a, b) = (&self.inner.package_record, &other.inner.package_record);
        a.name == b.name && a.version == b.version && a.build == b.build && a.subdir == b.subdir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const META: &str = r#"{
      "name": "zlib", "version": "1.2.13", "build": "h5eee18b_0", "build_number": 0,
      "subdir": "linux-64", "depends": ["libgcc-ng >=11.2.0"],
      "md5": "c6a5d4f0b1e1c5f2e0e4b6b1b8d6a1f0",
      "sha256": "0c1d4bd2bc8e5fc4f9bdf6a3a3d1c6f0c3a2d4f5e6b7a8c9d0e1f2a3b4c5d6e7",
      "size": 103, "fn": "zlib-1.2.13-h5eee18b_0.conda",
      "url": "https://repo.anaconda.com/pkgs/main/linux-64/zlib-1.2.13-h5eee18b_0.conda",
      "channel": "https://repo.anaconda.com/pkgs/main",
      "files": [], "paths_data": {"paths_version": 1, "paths": []},
      "requested_spec": "zlib"
    }"#;

    #[test]
    fn reads_conda_meta() {
        let r = CondaRecord::from_conda_meta("zlib.json", META).expect("valid");
        assert_eq!(
            (r.name(), r.version().as_str(), r.build()),
            ("zlib", "1.2.13", "h5eee18b_0")
        );
        let lock = r.to_lock(Some("zlib"), "linux/amd64");
        assert_eq!(lock.channel, "https://repo.anaconda.com/pkgs/main");
        assert_eq!(lock.size, Some(103));
        assert_eq!(
            lock.md5.as_deref(),
            Some("c6a5d4f0b1e1c5f2e0e4b6b1b8d6a1f0")
        );
        let json = CondaRecord::many_to_json(std::slice::from_ref(&r));
        let back = CondaRecord::many_from_json("x", &json).expect("round trip");
        assert_eq!(back, vec![r]);
    }

    #[test]
    fn bad_meta_is_an_error() {
        let err = CondaRecord::from_conda_meta("x.json", "{").expect_err("invalid");
        assert!(
            err.to_string()
                .starts_with("invalid conda record in `x.json`")
        );
    }
}

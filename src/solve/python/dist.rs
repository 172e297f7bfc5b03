//! Distributions as an index lists them: file names, the facts the index
//! gives about each file, and the core metadata read from one.

use std::str::FromStr;

use pep440_rs::{Version, VersionSpecifiers};
use pep508_rs::{PackageName, Requirement};

use super::target::TargetEnv;

/// One file of a project as the index lists it (PEP 691/700/658/592).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DistFile {
    pub filename: String,
    /// Absolute URL, credentials removed.
    pub url: String,
    /// Hex sha256 when the index gives it.
    pub sha256: Option<String>,
    pub requires_python: Option<String>,
    /// `Some(reason)` when yanked (reason may be empty).
    pub yanked: Option<String>,
    /// RFC 3339 upload time (PEP 700).
    pub upload_time: Option<String>,
    pub size: Option<u64>,
    /// PEP 658/714: the index serves `<url>.metadata`; `Some(hash)` when it
    /// gave the metadata file's sha256.
    pub core_metadata: Option<Option<String>>,
}

/// What a file name says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DistKind {
    Wheel {
        python: Vec<String>,
        abi: Vec<String>,
        platform: Vec<String>,
    },
    Sdist,
}

/// A parsed distribution file name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DistFilename {
    pub name: PackageName,
    pub version: Version,
    pub kind: DistKind,
}

/// Parses `name-version(-build)?-py-abi-plat.whl` or `name-version.tar.gz`
/// / `.zip`. `None` for anything else (eggs, `.exe`, bad versions).
pub fn parse_filename(filename: &str, project: &PackageName) -> Option<DistFilename> {
    if let Some(stem) = filename.strip_suffix(".whl") {
        let parts: Vec<&str> = stem.split('-').collect();
        let (name, version, tags) = match parts[..] {
            [n, v, _, py, abi, plat] | [n, v, py, abi, plat] => (n, v, [py, abi, plat]),
            _ => return None,
        };
        let name = PackageName::from_str(name).ok()?;
        let split = |s: &str| s.split('.').map(str::to_string).collect::<Vec<_>>();
        return Some(DistFilename {
            name,
            version: Version::from_str(version).ok()?,
            kind: DistKind::Wheel {
                python: split(tags[0]),
                abi: split(tags[1]),
                platform: split(tags[2]),
            },
        });
    }
    let stem = filename
        .strip_suffix(".tar.gz")
        .or_else(|| filename.strip_suffix(".zip"))?;
    // The name may contain `-`; match it against the project name by
    // normalizing the prefix.
    for (i, _) in stem.match_indices('-').rev() {
        let (name, version) = (&stem[..i], &stem[i + 1..]);
        if PackageName::from_str(name).ok().as_ref() == Some(project) {
            return Some(DistFilename {
                name: project.clone(),
                version: Version::from_str(version).ok()?,
                kind: DistKind::Sdist,
            });
        }
    }
    None
}

/// How well a file fits the target: wheels by tag rank, then sdists.
/// `None` when the file cannot be installed there.
pub fn file_rank(file: &DistFilename, target: &TargetEnv) -> Option<usize> {
    match &file.kind {
        DistKind::Wheel {
            python,
            abi,
            platform,
        } => target.wheel_rank(python, abi, platform),
        DistKind::Sdist => Some(usize::MAX),
    }
}

/// Whether `requires-python` admits the target's Python. An unparsable
/// value admits it, as pip does (it warns and ignores it).
pub fn python_fits(requires_python: Option<&str>, target: &TargetEnv) -> bool {
    match requires_python.map(VersionSpecifiers::from_str) {
        Some(Ok(spec)) => spec.contains(&target.python),
        _ => true,
    }
}

/// Core metadata (`METADATA` / `PKG-INFO`): the fields resolution needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CoreMetadata {
    pub name: String,
    pub version: String,
    pub metadata_version: String,
    pub requires_dist: Vec<String>,
    pub requires_python: Option<String>,
    pub provides_extra: Vec<String>,
    /// PEP 643 `Dynamic` fields, lowercased.
    pub dynamic: Vec<String>,
}

/// Why core metadata could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetadataError {
    #[error("the metadata has no `{0}` field")]
    Missing(&'static str),
    #[error("`{0}` in Requires-Dist is not a valid requirement: {1}")]
    BadRequirement(String, String),
}

impl CoreMetadata {
    /// Parses the email-header format of METADATA/PKG-INFO (headers end at
    /// the first blank line; continuation lines start with whitespace).
    pub fn parse(text: &str) -> Result<Self, MetadataError> {
        let mut meta = CoreMetadata::default();
        let mut last: Option<(String, String)> = None;
        let mut fields = Vec::new();
        for line in text.lines() {
            if line.is_empty() {
                break;
            }
            if line.starts_with([' ', '\t']) {
                if let Some((_, v)) = last.as_mut() {
                    v.push(' ');
                    v.push_str(line.trim());
                }
                continue;
            }
            if let Some(done) = last.take() {
                fields.push(done);
            }
            if let Some((k, v)) = line.split_once(':') {
                last = Some((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        fields.extend(last);
        for (k, v) in fields {
            match k.as_str() {
                "name" => meta.name = v,
                "version" => meta.version = v,
                "metadata-version" => meta.metadata_version = v,
                "requires-dist" => meta.requires_dist.push(v),
                "requires-python" => meta.requires_python = Some(v),
                "provides-extra" => meta.provides_extra.push(v),
                "dynamic" => meta.dynamic.push(v.to_ascii_lowercase()),
                _ => {}
            }
        }
        if meta.name.is_empty() {
            return Err(MetadataError::Missing("Name"));
        }
        if meta.version.is_empty() {
            return Err(MetadataError::Missing("Version"));
        }
        Ok(meta)
    }

    /// PEP 643: an sdist's PKG-INFO can be trusted for dependencies when it
    /// is metadata 2.2 or newer and does not mark them dynamic.
    pub fn is_static(&self) -> bool {
        let newer = {
            let mut p = self.metadata_version.split('.');
            let major: u32 = p.next().and_then(|x| x.parse().ok()).unwrap_or(0);
            let minor: u32 = p.next().and_then(|x| x.parse().ok()).unwrap_or(0);
            (major, minor) >= (2, 2)
        };
        newer
            && !self
                .dynamic
                .iter()
                .any(|d| d == "requires-dist" || d == "requires-python")
    }

    /// `Requires-Dist` parsed.
    pub fn requirements(&self) -> Result<Vec<Requirement>, MetadataError> {
        self.requires_dist
            .iter()
            .map(|r| {
                Requirement::from_str(r)
                    .map_err(|e| MetadataError::BadRequirement(r.clone(), e.message.to_string()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> PackageName {
        PackageName::from_str(s).unwrap()
    }

    #[test]
    fn parses_wheel_and_sdist_names() {
        let f = parse_filename(
            "numpy-2.1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            &name("numpy"),
        )
        .unwrap();
        assert_eq!(f.version.to_string(), "2.1.0");
        let DistKind::Wheel { platform, .. } = f.kind else {
            panic!()
        };
        assert_eq!(platform.len(), 2);
        let f = parse_filename("zope.interface-6.0.tar.gz", &name("zope-interface")).unwrap();
        assert_eq!(f.kind, DistKind::Sdist);
        let f = parse_filename("foo-bar-1.0rc1.tar.gz", &name("foo-bar")).unwrap();
        assert_eq!(f.version.to_string(), "1.0rc1");
        assert!(parse_filename("foo-1.0-py2.7.egg", &name("foo")).is_none());
        assert!(parse_filename("foo-1.0-1-py3-none-any.whl", &name("foo")).is_some());
    }

    #[test]
    fn parses_metadata_with_continuations() {
        let m = CoreMetadata::parse(
            "Metadata-Version: 2.2\nName: demo\nVersion: 1.0\nRequires-Dist: a>=1\nRequires-Dist: b; extra == 'x'\nProvides-Extra: x\nSummary: one\n  two\n\nRequires-Dist: not-a-header\n",
        )
        .unwrap();
        assert_eq!(m.requires_dist, ["a>=1", "b; extra == 'x'"]);
        assert!(m.is_static());
        let m = CoreMetadata::parse("Metadata-Version: 2.1\nName: d\nVersion: 1\n").unwrap();
        assert!(!m.is_static());
        let m = CoreMetadata::parse(
            "Metadata-Version: 2.3\nName: d\nVersion: 1\nDynamic: Requires-Dist\n",
        )
        .unwrap();
        assert!(!m.is_static());
        assert_eq!(
            CoreMetadata::parse("Name: d\n"),
            Err(MetadataError::Missing("Version"))
        );
    }
}

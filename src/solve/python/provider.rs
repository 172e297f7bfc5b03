//! What the solver asks of the outside world. The resolve layer implements
//! [`PackageSource`] over the index client; tests use [`MemorySource`].

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use pep440_rs::Version;
use pep508_rs::{ExtraName, PackageName};
use pubgrub::Ranges;

use super::dist::{CoreMetadata, DistFile};

/// Why a source could not answer.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum SourceError {
    /// The project is on none of the indexes (its name, and the indexes
    /// asked, without credentials).
    #[error(
        "`{0}` is not on the index {1}\nhint: check the name for a typo; if it is published elsewhere, add that index (`--extra-index-url` in the step, or `[pypi] extra-index-urls`)"
    )]
    NotFound(String, String),
    /// The service could not answer: unreachable, a server error, refused
    /// credentials, or not in the cache offline. Trouble, not an answer.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else, already explained (a listed file missing, a broken
    /// page or metadata, a failed build).
    #[error("{0}")]
    Failed(String),
}

/// A direct URL requirement, fetched: what it is and what it needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectDist {
    pub version: Version,
    pub filename: String,
    /// The URL as given (credentials removed).
    pub url: String,
    /// sha256 of the fetched artifact; `None` for VCS checkouts.
    pub sha256: Option<String>,
    pub metadata: Option<CoreMetadata>,
}

/// Candidate files and their metadata. Calls block; the resolve layer runs
/// the solver on a blocking thread.
pub trait PackageSource {
    /// Every file of a project on the configured indexes.
    fn files(&self, name: &PackageName) -> Result<Arc<Vec<DistFile>>, SourceError>;

    /// The core metadata of one file (`METADATA` of a wheel, static
    /// `PKG-INFO` of an sdist, or metadata built from an sdist).
    fn metadata(
        &self,
        name: &PackageName,
        file: &DistFile,
    ) -> Result<Arc<CoreMetadata>, SourceError>;

    /// A direct URL or VCS requirement.
    fn direct(&self, name: &PackageName, url: &str) -> Result<DirectDist, SourceError>;

    /// A hint that `name` (with `extras`) within `range` will likely be
    /// needed soon, so an implementation may fetch it, and what it needs,
    /// concurrently. Never changes an answer.
    fn prefetch(&self, _name: &PackageName, _extras: &[ExtraName], _range: &Ranges<Version>) {}
}

/// An in-memory index for tests and benchmarks: projects with versions,
/// each version one pure wheel with the given metadata.
#[derive(Clone, Debug, Default)]
pub struct MemorySource {
    projects: BTreeMap<PackageName, Vec<(DistFile, CoreMetadata)>>,
    /// Files whose metadata cannot be had (a failed sdist build), by
    /// filename, with the reason.
    failing: BTreeMap<String, String>,
    /// Every filename whose metadata was asked for, in order.
    asked: Arc<Mutex<Vec<String>>>,
}

impl MemorySource {
    /// Adds `name==version` with `Requires-Dist` lines and optional
    /// `Requires-Python`. Returns the file so tests can tweak it.
    pub fn add(&mut self, name: &str, version: &str, requires: &[&str]) -> &mut DistFile {
        self.add_file(name, version, requires, "py3-none-any")
    }

    /// Like [`Self::add`] with an explicit wheel tag (`cp311-cp311-manylinux_2_17_x86_64`).
    pub fn add_file(
        &mut self,
        name: &str,
        version: &str,
        requires: &[&str],
        tag: &str,
    ) -> &mut DistFile {
        let pname = PackageName::from_str(name).expect("a valid test package name");
        let filename = format!("{}-{version}-{tag}.whl", pname.as_dist_info_name());
        let file = DistFile {
            filename: filename.clone(),
            url: format!("https://files.example/{filename}"),
            sha256: Some(format!("{:064x}", self.projects.len() + 1)),
            requires_python: None,
            yanked: None,
            upload_time: None,
            size: None,
            core_metadata: Some(None),
        };
        let meta = CoreMetadata {
            name: name.to_string(),
            version: version.to_string(),
            metadata_version: "2.1".into(),
            requires_dist: requires.iter().map(ToString::to_string).collect(),
            ..CoreMetadata::default()
        };
        let list = self.projects.entry(pname).or_default();
        list.push((file, meta));
        &mut list.last_mut().expect("just pushed").0
    }
}

impl MemorySource {
    /// Makes the metadata of `name==version` fail with `message`, as a
    /// failed sdist build does.
    pub fn fail(&mut self, name: &str, version: &str, message: &str) {
        let pname = PackageName::from_str(name).expect("a valid test package name");
        for (f, m) in self.projects.get(&pname).into_iter().flatten() {
            if m.version == version {
                self.failing.insert(f.filename.clone(), message.to_string());
            }
        }
    }

    /// The files whose metadata was asked for so far.
    pub fn asked(&self) -> Vec<String> {
        self.asked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl PackageSource for MemorySource {
    fn files(&self, name: &PackageName) -> Result<Arc<Vec<DistFile>>, SourceError> {
        self.projects
            .get(name)
            .map(|v| Arc::new(v.iter().map(|(f, _)| f.clone()).collect()))
            .ok_or_else(|| SourceError::NotFound(name.to_string(), "in memory".into()))
    }

    fn metadata(
        &self,
        name: &PackageName,
        file: &DistFile,
    ) -> Result<Arc<CoreMetadata>, SourceError> {
        self.asked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(file.filename.clone());
        if let Some(why) = self.failing.get(&file.filename) {
            return Err(SourceError::Failed(why.clone()));
        }
        self.projects
            .get(name)
            .and_then(|v| v.iter().find(|(f, _)| f.filename == file.filename))
            .map(|(_, m)| Arc::new(m.clone()))
            .ok_or_else(|| SourceError::NotFound(file.filename.clone(), "in memory".into()))
    }

    fn direct(&self, _name: &PackageName, url: &str) -> Result<DirectDist, SourceError> {
        Err(SourceError::Failed(format!(
            "`{url}` cannot be fetched in memory"
        )))
    }
}

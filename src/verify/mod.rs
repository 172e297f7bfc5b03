//! Compare an image's catalogue with its lock, and a lock with its inputs.
//!
//! [`checks`] compares a built image, platform by platform; [`stale`] tells
//! whether a lock is current for its definition; [`report`] renders the
//! results (human, JSON, JUnit) through one trait. Nothing here prints.

pub mod checks;
pub mod report;
pub mod stale;

use serde::Serialize;

use crate::image::{DefinitionCheck, SifSummary};

pub use checks::{
    Checked, Ecosystem, Finding, FindingKind, LockedBaseLayers, PlatformCheck, built_from,
    check_platform, locked_base_layers, on_parent,
};
pub use report::{PrintHuman, PrintJson, PrintJunit, Report};
pub use stale::{Staleness, check_lock};

/// Version of the JSON report's schema (see [`report::PrintJson`]).
pub const REPORT_VERSION: u32 = 1;

/// Everything one `imagelock verify` found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub images: Vec<ImageReport>,
}

/// The result for one image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImageReport {
    /// The image's name.
    pub image: String,
    /// Its definition file, as given.
    pub definition: String,
    /// Its lock file.
    pub lock: String,
    /// The built image checked (`--image`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Why the lock is not current (checked without `--image`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stale: Vec<Staleness>,
    /// Per platform, with `--image`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<PlatformCheck>,
    /// What a SIF (`--image sif:…`) says about itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sif: Option<SifReport>,
}

/// A SIF's own digest, definition and signatures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SifReport {
    #[serde(flatten)]
    pub summary: SifSummary,
    /// The embedded definition against the definition file as it is now.
    pub definition: DefinitionCheck,
    /// Whether it has at least one signature object (not checked
    /// cryptographically: `apptainer verify` does that).
    pub signed: bool,
}

impl SifReport {
    /// Whether the SIF was built from another definition.
    pub fn is_problem(&self) -> bool {
        self.definition == DefinitionCheck::Differs
    }
}

impl ImageReport {
    /// Whether nothing was found.
    pub fn is_clean(&self) -> bool {
        self.stale.is_empty()
            && self.platforms.iter().all(|p| p.findings.is_empty())
            && !self.sif.as_ref().is_some_and(SifReport::is_problem)
    }

    /// Problems found, stale reasons and findings together.
    pub fn problems(&self) -> usize {
        self.stale.len()
            + self
                .platforms
                .iter()
                .map(|p| p.findings.len())
                .sum::<usize>()
            + usize::from(self.sif.as_ref().is_some_and(SifReport::is_problem))
    }
}

impl VerifyReport {
    /// Whether every image is clean.
    pub fn is_clean(&self) -> bool {
        self.images.iter().all(ImageReport::is_clean)
    }
}

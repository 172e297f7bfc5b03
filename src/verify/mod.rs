//! Compare an image's catalogue with its lock, and a lock with its inputs.
//!
//! [`checks`] compares a built image, platform by platform; [`stale`] tells
//! whether a lock is current for its definition; [`finding`] is the
//! vocabulary of findings and reports `drift` shares; [`report`] renders
//! verify's results (human, JSON), [`junit`] and [`sarif`] verify's and
//! drift's, through its [`Render`] trait.
//! Nothing here prints.

pub mod checks;
pub mod copies;
pub mod finding;
mod image;
pub mod junit;
pub mod report;
pub mod sarif;
pub mod stale;

pub use checks::{LockedBaseLayers, built_from, check_platform, locked_base_layers, on_parent};
pub use finding::{
    Checked, Ecosystem, Finding, FindingKind, ImageReport, PlatformCheck, Render, Report, Severity,
};
pub(crate) use image::shown;
pub use image::{Verified, VerifyError, parents_stale, verify_image, verify_lock};
pub use junit::{JunitFlavour, JunitRun, PrintJunit, junit_error};
pub use report::{PrintHuman, PrintJson, PrintMarkdown, md_cell};
pub use sarif::{PrintSarif, sarif_error};
pub use stale::{Staleness, check_local_bases, check_lock, check_parents};

/// Version of the JSON report's schema (see [`report::PrintJson`]).
pub const REPORT_VERSION: u32 = 1;

/// A SIF's own digest, definition and signatures.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SifReport {
    #[serde(flatten)]
    pub summary: crate::image::SifSummary,
    /// The embedded definition against the definition file as it is now.
    pub definition: crate::image::DefinitionCheck,
    /// Whether it has at least one signature object (not checked
    /// cryptographically: `apptainer verify` does that).
    pub signed: bool,
}

impl SifReport {
    /// Whether the SIF was built from another definition.
    pub fn is_problem(&self) -> bool {
        self.definition == crate::image::DefinitionCheck::Differs
    }
}

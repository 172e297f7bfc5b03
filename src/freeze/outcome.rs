//! What one install step resolved to on one platform, and where it is:
//! shared by the step resolvers (`steps`, `apt`) and the run that merges
//! their outcomes into a lock.

use crate::freeze::{FreezeError, StepCause};
use crate::lock::{CondaPackage, PypiPackage};

/// What one step resolved to on one platform.
#[derive(Clone, Debug, Default)]
pub struct StepOutcome {
    /// The specs asked for, including those read from files.
    pub requested: Vec<String>,
    /// Conda channel URLs or Python index URLs used, in order.
    pub channels: Vec<String>,
    pub indexes: Vec<String>,
    /// pip's `--find-links` locations, as URLs.
    pub find_links: Vec<String>,
    /// Where it installed.
    pub target: Option<String>,
    pub locked: bool,
    /// Why the step is not locked, when it is not.
    pub reason: Option<String>,
    pub conda: Vec<CondaPackage>,
    pub pypi: Vec<PypiPackage>,
    pub apt: Vec<crate::lock::AptPackage>,
    pub apt_sources: Vec<crate::lock::AptSource>,
    pub rpm: Vec<crate::lock::RpmPackage>,
    pub rpm_repos: Vec<crate::lock::RpmRepo>,
    /// What the lock cannot promise for this step (VCS and path
    /// requirements), with the place.
    pub warnings: Vec<String>,
    /// Debian packages (name, architecture, version) the previous lock
    /// installed in this step that neither the archives the step read nor
    /// the image before it have any more: `gone` in drift.
    pub apt_gone: Vec<(String, String, String)>,
}

/// A Debian package the previous lock installed that the archives no
/// longer offer (see [`StepOutcome::apt_gone`]), with its step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoneDeb {
    /// `file:line` of the step.
    pub at: String,
    /// The step's stage and line, as the lock has them.
    pub stage: usize,
    pub line: usize,
    pub name: String,
    pub architecture: String,
    pub version: String,
    pub platform: String,
}

/// Where a step is, for messages.
pub struct StepPlace<'a> {
    pub image: &'a str,
    pub file: String,
    pub line: usize,
    pub stage: usize,
    pub step: usize,
}

impl StepPlace<'_> {
    pub(crate) fn context(&self) -> String {
        format!("image `{}`, {}:{}", self.image, self.file, self.line)
    }

    pub(crate) fn error(&self, cause: StepCause) -> FreezeError {
        FreezeError::Step {
            image: self.image.to_string(),
            place: format!("{}:{}", self.file, self.line),
            cause: Box::new(cause),
        }
    }
}

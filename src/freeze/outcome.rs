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
    pub apk: Vec<crate::lock::ApkPackage>,
    pub apk_repos: Vec<crate::lock::ApkRepo>,
    /// What the lock cannot promise for this step (VCS and path
    /// requirements), with the place.
    pub warnings: Vec<String>,
    /// Debian packages (name, architecture, version) the previous lock
    /// installed in this step that neither the archives the step read nor
    /// the image before it have any more: `gone` in drift.
    pub apt_gone: Vec<(String, String, String)>,
    /// What the repositories of a dnf step say now about the packages the
    /// previous lock installed in it (read for `drift` only).
    pub rpm_drift: RpmStepDrift,
    /// What the repositories of an apk step say now about the packages the
    /// previous lock installed in it (read for `drift` only).
    pub apk_drift: ApkStepDrift,
}

/// What the repositories of an apk step say about the packages the previous
/// lock installed in it on one platform: `outdated`, `gone`,
/// `hash-mismatch` and `unresolvable` in drift. Alpine's `APKINDEX` carries
/// no security advisories, so no newer version is called a security update.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApkStepDrift {
    /// Locked packages of which a repository the step may take them from
    /// has a newer version.
    pub newer: Vec<ApkNewer>,
    /// Locked `name-version`s that no repository the step reads offers any
    /// more, nor the image before the step has.
    pub gone: Vec<ApkGone>,
    /// Locked `name-version`s a repository still offers with another `C:`
    /// checksum (a rebuild under the same version, or a replaced index).
    pub replaced: Vec<ApkReplaced>,
    /// Repositories that could not be read or whose signature failed: the
    /// `/etc/apk/repositories` line, the repository URL, and why.
    pub unread: Vec<ApkUnread>,
    /// Why apk could not run the step against the repositories as they are
    /// now (a requested or needed package no longer offered), as freeze
    /// would say it.
    pub unsolvable: Option<String>,
    /// Why the locked packages were not checked at all (`--offline`, or
    /// the step is not resolved now).
    pub skipped: Option<String>,
    /// The locked packages were checked against the repositories.
    pub checked: bool,
    /// Why freeze would not lock the step now, though its packages were
    /// checked (an answer imagelock does not decide exactly).
    pub not_locked_now: Option<String>,
}

/// The newest version of a locked apk package in the step's repositories,
/// when it is newer than the locked one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApkNewer {
    pub name: String,
    pub locked: String,
    pub newest: String,
    /// The repository URL that has it, with `@tag ` in front when tagged.
    pub repo: String,
}

/// A locked apk package its repositories no longer offer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApkGone {
    pub name: String,
    pub version: String,
    /// The repository URL the lock took it from.
    pub repo: Option<String>,
}

/// A locked apk package whose index entry has another checksum now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApkReplaced {
    pub name: String,
    pub version: String,
    pub locked: String,
    pub served: String,
    pub repo: String,
}

/// An apk repository that could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApkUnread {
    /// The repository URL, with `@tag ` in front when tagged.
    pub repo: String,
    pub why: String,
}

/// [`ApkStepDrift`] of one step and platform, with the step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApkDriftAt {
    /// `file:line` of the step.
    pub at: String,
    pub stage: usize,
    pub line: usize,
    pub platform: String,
    pub drift: ApkStepDrift,
}

/// What the repositories of a dnf step say about the packages the previous
/// lock installed in it on one platform: `gone` and `security` in drift.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RpmStepDrift {
    /// Locked packages of which a repository the step reads has a newer
    /// build (whatever the step's text pins).
    pub newer: Vec<RpmNewer>,
    /// Locked packages that no repository the step reads offers any more,
    /// nor the image before the step has.
    pub gone: Vec<RpmGone>,
    /// Security advisories that ship a newer build of a locked package.
    pub errata: Vec<RpmErratum>,
    /// Repositories whose errata could not be read, with why: a newer
    /// build from them may be a security update imagelock cannot see.
    pub unread: Vec<(String, String)>,
}

/// The newest build of a locked RPM package in the step's repositories,
/// when it is newer than the locked one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpmNewer {
    pub name: String,
    pub arch: String,
    /// `[epoch:]version-release` as locked.
    pub locked: String,
    /// `[epoch:]version-release.arch` of the newest build.
    pub newest: String,
    /// The repository id that has it.
    pub repo: String,
}

/// A locked RPM package its repositories no longer offer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpmGone {
    pub name: String,
    pub arch: String,
    /// `[epoch:]version-release` as locked.
    pub evr: String,
    /// The repository id the lock took it from.
    pub repo: Option<String>,
}

/// A security advisory of a repository's `updateinfo` that ships a newer
/// build of a locked package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpmErratum {
    pub name: String,
    pub arch: String,
    /// `[epoch:]version-release` as locked.
    pub locked: String,
    /// The advisory id (`FEDORA-2026-…`, `RHSA-2026:…`).
    pub advisory: String,
    pub severity: Option<String>,
    pub cves: Vec<String>,
    /// The advisory's build: `[epoch:]version-release.arch`.
    pub fixed: String,
    /// The repository id whose `updateinfo` says so.
    pub repo: String,
}

/// [`RpmStepDrift`] of one step and platform, with the step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpmDriftAt {
    /// `file:line` of the step.
    pub at: String,
    pub stage: usize,
    pub line: usize,
    pub platform: String,
    pub drift: RpmStepDrift,
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

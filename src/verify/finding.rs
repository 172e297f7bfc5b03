//! The findings vocabulary `verify` and `drift` share: one [`Finding`] with
//! a [`FindingKind`], the findings of one image in an [`ImageReport`], every
//! image in a [`Report`], and one [`Render`] trait with a printer per format.

use serde::Serialize;

use super::stale::Staleness;

/// What a finding is. One variant per reason; the first group compares a
/// built image with its lock (`verify --image`), the second a lock with
/// what the services offer now (`drift`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// The image is not built on the locked base's layers.
    BaseMismatch,
    /// A locked package is not in the image.
    Missing,
    /// A locked package is there in another version.
    VersionDiffers,
    /// A locked conda package is there in another build.
    BuildDiffers,
    /// A locked conda package's record names another artifact (sha256, md5
    /// or URL).
    HashDiffers,
    /// A Python distribution was installed from a wheel whose tags do not
    /// include any of the locked file's.
    WheelTagIncompatible,
    /// A direct URL, VCS or path requirement was installed from somewhere
    /// else than the lock says (its `direct_url.json`, PEP 610).
    SourceDiffers,
    /// A package installed by conda or pip that is neither locked nor in the
    /// base image.
    NotLocked,
    /// The definition or a file it reads changed since the lock was made.
    Stale,
    /// A base tag now names another digest.
    Base,
    /// Freeze would now choose a newer version of a locked package.
    Outdated,
    /// The locked pip file is yanked on its index.
    Yanked,
    /// The locked pip file is no longer on its index.
    Gone,
    /// The locked conda file is no longer in its channel's repodata.
    Broken,
    /// A locked digest or hash that its registry, index or channel serves
    /// differently for that exact artifact (a hand edit, or a replaced
    /// file).
    HashMismatch,
    /// Freeze would fail now.
    Unresolvable,
    /// An install step asks for specs that are not exact pins.
    Unpinned,
    /// The index publishes security advisories for the locked version.
    Vulnerable,
    /// A newer version of a locked Debian package is in a `-security`
    /// suite.
    Security,
    /// An apt archive suite the lock read has a newer `Date`, or a git
    /// branch or tag names another commit than the locked one.
    Moved,
    /// A file a `COPY --from=IMAGE` put in the image is not that file of
    /// the locked image (other bytes, or not there).
    CopyDiffers,
}

impl FindingKind {
    /// The kinds `drift` reports, in report order.
    pub const DRIFT: [FindingKind; 12] = [
        FindingKind::HashMismatch,
        FindingKind::Vulnerable,
        FindingKind::Stale,
        FindingKind::Base,
        FindingKind::Security,
        FindingKind::Outdated,
        FindingKind::Moved,
        FindingKind::Yanked,
        FindingKind::Gone,
        FindingKind::Broken,
        FindingKind::Unresolvable,
        FindingKind::Unpinned,
    ];

    /// Every kind, verify's then drift's: the rules of a SARIF report.
    pub const ALL: [FindingKind; 21] = [
        FindingKind::BaseMismatch,
        FindingKind::Missing,
        FindingKind::VersionDiffers,
        FindingKind::BuildDiffers,
        FindingKind::HashDiffers,
        FindingKind::WheelTagIncompatible,
        FindingKind::SourceDiffers,
        FindingKind::NotLocked,
        FindingKind::CopyDiffers,
        FindingKind::Stale,
        FindingKind::Base,
        FindingKind::Outdated,
        FindingKind::Yanked,
        FindingKind::Gone,
        FindingKind::Broken,
        FindingKind::HashMismatch,
        FindingKind::Unresolvable,
        FindingKind::Unpinned,
        FindingKind::Vulnerable,
        FindingKind::Security,
        FindingKind::Moved,
    ];

    /// What a finding of this kind means, one sentence.
    pub const fn meaning(self) -> &'static str {
        match self {
            Self::BaseMismatch => "The image is not built on the locked base's layers.",
            Self::Missing => "A locked package is not in the image.",
            Self::VersionDiffers => "A locked package is in the image in another version.",
            Self::BuildDiffers => "A locked conda package is in the image in another build.",
            Self::HashDiffers => "A locked conda package's record names another artifact.",
            Self::WheelTagIncompatible => {
                "A Python distribution was installed from a wheel for another platform than the locked one."
            }
            Self::SourceDiffers => {
                "A direct URL, VCS or path requirement was installed from elsewhere than the lock says."
            }
            Self::NotLocked => {
                "A package installed by conda, pip or dpkg is neither locked nor in the base image."
            }
            Self::Stale => "The definition or a file it reads changed since the lock was made.",
            Self::Base => "A base tag now names another digest.",
            Self::Outdated => "Freeze would now choose a newer version of a locked package.",
            Self::Yanked => "The locked pip file is yanked on its index.",
            Self::Gone => {
                "The locked pip file, Debian package version or downloaded file is no longer served."
            }
            Self::Broken => "The locked conda file is no longer in its channel's repodata.",
            Self::Unresolvable => "Freeze would fail now.",
            Self::Unpinned => "An install step asks for specs that are not exact pins.",
            Self::Vulnerable => "The index publishes security advisories for the locked version.",
            Self::HashMismatch => {
                "The registry, index or channel serves other content for a locked artifact than the lock says."
            }
            Self::Security => {
                "A newer version of a locked Debian package is in a security suite the lock read."
            }
            Self::Moved => {
                "An apt archive suite the lock read has a new Date, or a git branch or tag the lock read names a new commit."
            }
            Self::CopyDiffers => {
                "A file a COPY --from of a locked image put in the image is not that image's file."
            }
        }
    }

    /// The name used in reports (`version-differs`, `outdated`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BaseMismatch => "base-mismatch",
            Self::Missing => "missing",
            Self::VersionDiffers => "version-differs",
            Self::BuildDiffers => "build-differs",
            Self::HashDiffers => "hash-differs",
            Self::WheelTagIncompatible => "wheel-tag-incompatible",
            Self::SourceDiffers => "source-differs",
            Self::NotLocked => "not-locked",
            Self::Stale => "stale",
            Self::Base => "base",
            Self::Outdated => "outdated",
            Self::Yanked => "yanked",
            Self::Gone => "gone",
            Self::Broken => "broken",
            Self::HashMismatch => "hash-mismatch",
            Self::Unresolvable => "unresolvable",
            Self::Unpinned => "unpinned",
            Self::Vulnerable => "vulnerable",
            Self::Security => "security",
            Self::Moved => "moved",
            Self::CopyDiffers => "copy-differs",
        }
    }

    /// How much a finding of this kind matters.
    pub const fn severity(self) -> Severity {
        match self {
            Self::BaseMismatch
            | Self::CopyDiffers
            | Self::Missing
            | Self::VersionDiffers
            | Self::BuildDiffers
            | Self::HashDiffers
            | Self::WheelTagIncompatible
            | Self::SourceDiffers
            | Self::Yanked
            | Self::Gone
            | Self::Broken
            | Self::HashMismatch
            | Self::Unresolvable
            | Self::Vulnerable
            | Self::Security => Severity::High,
            Self::NotLocked | Self::Stale | Self::Base => Severity::Medium,
            Self::Outdated => Severity::Low,
            Self::Unpinned | Self::Moved => Severity::Info,
        }
    }

    /// A drift kind as `--fail-on` takes it.
    pub fn parse_drift(text: &str) -> Option<FindingKind> {
        Self::DRIFT.into_iter().find(|k| k.as_str() == text)
    }
}

/// How much a finding matters, most first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    High,
    Medium,
    Low,
    Info,
}

impl Severity {
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
            Severity::Info => "info",
        }
    }
}

/// Who a finding is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ecosystem {
    /// The base image.
    Base,
    /// A conda package (`conda-meta/*.json`).
    Conda,
    /// A Python distribution not owned by conda: installed by pip, uv,
    /// poetry, setuptools or an unknown tool (the finding's detail says).
    Pip,
    /// A Debian package (dpkg's status).
    Apt,
    /// An RPM package (the rpm database).
    Rpm,
    /// An Alpine package (apk's installed database).
    Apk,
    /// The image as a whole: its inputs, whether it resolves.
    Image,
    /// A file the definition fetches from a fixed URL.
    Url,
    /// A git repository the definition clones or adds.
    Git,
}

impl Ecosystem {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Base => "base",
            Self::Conda => "conda",
            Self::Pip => "pip",
            Self::Apt => "apt",
            Self::Rpm => "rpm",
            Self::Apk => "apk",
            Self::Image => "image",
            Self::Url => "url",
            Self::Git => "git",
        }
    }
}

/// One thing found: a difference between an image and its lock, or between
/// a lock and what the services offer now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub ecosystem: Ecosystem,
    /// The package (normalized for pip), the base's name, or the specs of an
    /// unpinned step; empty for the image as a whole.
    pub name: String,
    /// What the lock says; `None` for a package the lock does not have.
    pub expected: Option<String>,
    /// What the image has, or what the services give now.
    pub found: Option<String>,
    /// The lock step that decided the package, `file:line`.
    pub step: Option<String>,
    /// Where in the image (conda prefix, `site-packages` directory).
    pub location: Option<String>,
    /// The conda channel's name (`conda-forge`), for conda packages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// A sentence for people: the yank reason, which layers changed, why
    /// the image no longer resolves, where the unpinned step is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Finding {
    /// A finding of `kind` about `name`, with nothing else said yet.
    pub fn new(kind: FindingKind, ecosystem: Ecosystem, name: impl Into<String>) -> Self {
        Finding {
            kind,
            ecosystem,
            name: name.into(),
            expected: None,
            found: None,
            step: None,
            location: None,
            channel: None,
            detail: None,
        }
    }

    pub fn severity(&self) -> Severity {
        self.kind.severity()
    }

    /// The definition file and line the finding is about, from its `step`
    /// (`file:line`); `None` when it has no step.
    pub fn place(&self) -> Option<(&str, u32)> {
        let (file, line) = self.step.as_deref()?.rsplit_once(':')?;
        Some((file, line.parse().ok()?))
    }

    /// An id that stays the same from run to run while the finding is the
    /// same: the image, the platform (verify), the kind, the ecosystem, the
    /// name and what the lock has. What is found now is left out, so an
    /// outdated package keeps its id while newer versions come out, and a
    /// finding of the next lock gets a new one.
    pub fn id(&self, image: &str, platform: Option<&str>) -> String {
        finding_id(&[
            image,
            platform.unwrap_or(""),
            self.kind.as_str(),
            self.ecosystem.as_str(),
            &self.name,
            self.expected.as_deref().unwrap_or(""),
        ])
    }
}

/// A stable id of a finding from the parts that name it: the first 16
/// bytes of their SHA-256, in hex.
pub fn finding_id(parts: &[&str]) -> String {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    hex::encode(&hasher.finalize()[..16])
}

/// What was found for one image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImageReport {
    /// The image's name.
    pub image: String,
    /// Its definition file, as shown to people.
    pub definition: String,
    /// Its lock file.
    pub lock: String,
    /// The built image checked (`verify --image`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Why the lock is not current for its inputs (`verify`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stale: Vec<Staleness>,
    /// Per platform, with `verify --image`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<PlatformCheck>,
    /// Findings about the image as a whole (`drift`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    /// What a SIF (`verify --image sif:…`) says about itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sif: Option<super::SifReport>,
    /// How long checking the image took (the `time` of JUnit reports).
    #[serde(skip)]
    pub elapsed: Option<std::time::Duration>,
    /// The directory the lock's paths are relative to (the configuration's),
    /// so reports can name files as CI sees them.
    #[serde(skip)]
    pub root: Option<std::path::PathBuf>,
    /// Which content-changing instructions the lock pins, and which not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage: Option<crate::source::coverage::Coverage>,
}

impl ImageReport {
    /// A report with nothing found yet.
    pub fn new(image: &str, definition: String, lock: String) -> Self {
        ImageReport {
            image: image.to_string(),
            definition,
            lock,
            reference: None,
            stale: Vec::new(),
            platforms: Vec::new(),
            findings: Vec::new(),
            sif: None,
            coverage: None,
            elapsed: None,
            root: None,
        }
    }

    /// A file the lock names (a step's `file`), as a path from the current
    /// directory.
    pub fn path_of(&self, file: &str) -> String {
        match &self.root {
            Some(root) => super::shown(&root.join(file)),
            None => file.to_string(),
        }
    }

    /// Whether nothing was found.
    pub fn is_clean(&self) -> bool {
        self.problems() == 0
    }

    /// Problems found: stale reasons and findings together.
    pub fn problems(&self) -> usize {
        self.stale.len()
            + self.findings.len()
            + self
                .platforms
                .iter()
                .map(|p| p.findings.len())
                .sum::<usize>()
            + usize::from(self.sif.as_ref().is_some_and(super::SifReport::is_problem))
    }
}

/// Everything one run found, image by image.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub images: Vec<ImageReport>,
}

impl Report {
    /// Whether every image is clean.
    pub fn is_clean(&self) -> bool {
        self.images.iter().all(ImageReport::is_clean)
    }

    /// Every image-level finding with its image.
    pub fn findings(&self) -> impl Iterator<Item = (&str, &Finding)> {
        self.images
            .iter()
            .flat_map(|i| i.findings.iter().map(move |f| (i.image.as_str(), f)))
    }

    /// Whether a finding of one of `kinds` exists.
    pub fn has_any(&self, kinds: &[FindingKind]) -> bool {
        self.findings().any(|(_, f)| kinds.contains(&f.kind))
            || self
                .images
                .iter()
                .flat_map(|i| &i.platforms)
                .flat_map(|p| &p.findings)
                .any(|f| kinds.contains(&f.kind))
    }
}

/// A way to print a report: one printer per format.
pub trait Render {
    fn render(&self, report: &Report) -> String;
}

/// How much was compared.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Checked {
    /// Whether the base could be checked (a locked image base).
    pub base: bool,
    /// Locked conda packages compared.
    pub conda: usize,
    /// Locked Python distributions compared.
    pub pip: usize,
    /// Locked Debian packages compared (not written when none were).
    #[serde(skip_serializing_if = "is_zero")]
    pub apt: usize,
    /// Locked RPM packages compared (not written when none were).
    #[serde(skip_serializing_if = "is_zero")]
    pub rpm: usize,
    /// Locked Alpine packages compared (not written when none were).
    #[serde(skip_serializing_if = "is_zero")]
    pub apk: usize,
    /// Whether packages outside the lock could be told from the base's.
    pub not_locked: bool,
    /// Files a `COPY --from=IMAGE` copied, compared with the locked image's
    /// (not written when none were).
    #[serde(skip_serializing_if = "is_zero")]
    pub copied: usize,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's signature
fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The result for one platform.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlatformCheck {
    pub platform: String,
    /// The image's config digest (its ID).
    pub config: String,
    pub checked: Checked,
    pub findings: Vec<Finding>,
    /// What could not be checked, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

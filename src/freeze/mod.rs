//! freeze: turn each image of a configuration into a lock that predicts the
//! built image.
//!
//! For each image, in build order (images that build `FROM` another image
//! of the repository come after it):
//! 1. parse the definition and read the context files its steps use;
//! 2. pin every image it pulls, for every platform (a re-run keeps what the
//!    previous lock pinned unless `--update-base` says otherwise);
//! 3. per platform, learn the target from the base image's own files and
//!    resolve the install steps in build order, each seeing what the base
//!    and earlier steps installed;
//! 4. assemble the lock.
//!
//! Nothing is written here: the caller writes every lock once all resolved.
//!
//! This module is orchestration only; the network lives in
//! [`crate::resolve`], solving in [`crate::solve`].

pub mod agents;
pub mod apk;
pub mod apt;
mod bases;
pub mod check;
pub mod local;
pub mod outcome;
mod request;
pub mod rpm;
mod run;
mod schedule;
pub mod state;
pub mod steps;
mod warm;

pub use run::{FreezeProgress, Frozen, NoProgress, freeze_image, freeze_image_reporting};
pub use schedule::freeze_all;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::{Config, ImageConfig};
use crate::diagnostic::Diagnostic;
use crate::image::ImageError;
use crate::lock::{LockBuildError, LockError, LockedImage, LockedStage};
use crate::oci::{ParseImageRefError, ParsePlatformError};
use crate::resolve::ResolveError;
use crate::resolve::conda::ResolveCondaError;
use crate::resolve::http::HttpError;
use crate::resolve::pypi::PypiError;
use crate::solve::conda::{CondaTargetError, ParseCondaSpecError, SolveCondaError};
use crate::solve::python::{
    SolveError as PipSolveError, SourceError as PipSourceError, TargetError,
};
use crate::solve::rpm::solver::RpmSolveError;
use crate::source::environment::ParseEnvironmentError;
use crate::source::graph::{CycleError, GraphInput, build_order};
use crate::source::inputs::{Inputs, load_inputs};
use crate::source::load::{SourceError, read_definition_with};
use crate::source::requirements::ParseRequirementsError;
use crate::source::{BaseTarget, Definition};

pub use bases::{BaseResolution, platform_key, pulled_references, resolve_bases, same_image};

/// What `imagelock freeze` was asked to do.
#[derive(Clone, Debug, Default)]
pub struct FreezeOptions {
    /// Lock these platforms instead of the configured ones.
    pub platforms: Vec<String>,
    /// Move only these packages.
    pub update: Vec<String>,
    /// Re-resolve base images even when the lock has them.
    pub update_base: bool,
    /// With `update_base`: a reference the definition pins to a digest
    /// after its tag (`python:3.11-slim@sha256:…`) is resolved by the tag,
    /// so the lock names where the tag points now. Only for what rewrites
    /// the pin with the lock (`imagelock update`) or only reports it
    /// (`drift`): a lock alone would then name an image the build does not
    /// pull.
    pub follow_tags: bool,
    /// Use only caches.
    pub offline: bool,
    /// Resolve as of this date (RFC 3339 or `YYYY-MM-DD`).
    pub exclude_newer: Option<String>,
    /// Resolve every package afresh instead of keeping what the previous
    /// lock chose (what drift compares against).
    pub ignore_locked: bool,
    /// Refuse to build an sdist's metadata (`--no-build`).
    pub no_build: bool,
}

/// Why an image could not be frozen. One variant per cause; the located
/// ones (a definition, requirements or environment file) keep their
/// [`Diagnostic`] for the renderer.
///
/// [`FreezeError::is_upstream`] tells what the services no longer allow (a
/// tag or package gone, no solution any more: a finding for `drift`) from
/// trouble (bad input, an unreachable service, an internal failure).
#[derive(Debug, thiserror::Error)]
pub enum FreezeError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Requirements(#[from] ParseRequirementsError),
    #[error(transparent)]
    Environment(#[from] ParseEnvironmentError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Cycle(#[from] CycleError),
    /// Pinning or reading what an image pulls failed.
    #[error("image `{image}`: {cause}")]
    Image {
        image: String,
        cause: Box<ImageCause>,
    },
    /// An install step could not be resolved.
    #[error("image `{image}`, {place}: {cause}")]
    Step {
        image: String,
        /// `file:line` of the step.
        place: String,
        cause: Box<StepCause>,
    },
    /// The clients could not be set up.
    #[error(transparent)]
    Setup(Box<SetupError>),
}

impl FreezeError {
    /// Whether the failure is something upstream moved or no longer offers
    /// (a tag, a platform or a package gone, no solution any more), rather
    /// than bad input, an unreachable service or an internal error.
    pub fn is_upstream(&self) -> bool {
        match self {
            FreezeError::Image { cause, .. } => cause.is_upstream(),
            FreezeError::Step { cause, .. } => cause.is_upstream(),
            FreezeError::Source(_)
            | FreezeError::Requirements(_)
            | FreezeError::Environment(_)
            | FreezeError::Lock(_)
            | FreezeError::Cycle(_)
            | FreezeError::Setup(_) => false,
        }
    }

    /// The place in a file the error is about, for rendering with the
    /// source line.
    pub fn diagnostic(&self) -> Option<&Diagnostic> {
        match self {
            FreezeError::Source(e) => e.diagnostic(),
            FreezeError::Requirements(e) => Some(&e.0),
            FreezeError::Environment(ParseEnvironmentError::Invalid(d)) => Some(d),
            FreezeError::Lock(e) => e.diagnostic(),
            _ => None,
        }
    }

    /// Setting up a client failed.
    pub(crate) fn setup(e: impl Into<SetupError>) -> Self {
        FreezeError::Setup(Box::new(e.into()))
    }

    pub(crate) fn image(image: &str, cause: ImageCause) -> Self {
        FreezeError::Image {
            image: image.to_string(),
            cause: Box::new(cause),
        }
    }
}

impl From<SetupError> for FreezeError {
    fn from(e: SetupError) -> Self {
        FreezeError::Setup(Box::new(e))
    }
}

/// Why the images an image pulls could not be pinned or read.
#[derive(Debug, thiserror::Error)]
pub enum ImageCause {
    #[error("`{written}` is not an image reference: {source}")]
    Reference {
        written: String,
        source: ParseImageRefError,
    },
    #[error("`{platform}` is not a platform: {source}")]
    Platform {
        platform: String,
        source: ParsePlatformError,
    },
    /// The registry could not pin a reference.
    #[error("{0}")]
    Registry(ResolveError),
    /// What was resolved does not make a valid lock entry.
    #[error("{0}")]
    Lock(LockBuildError),
    #[error(
        "builds FROM `{parent}` of this repository, which is not locked for {platform}\nhint: freeze `{parent}` in the same run, with the same platforms"
    )]
    ParentNotLocked { parent: String, platform: String },
    #[error("reading base `{base}` for {platform}: {source}")]
    BaseRead {
        base: String,
        platform: String,
        source: ReadBaseError,
    },
    #[error(
        "the lock pins `{base}` for {platform} at {locked}, but the tag now gives {now}\nhint: run `imagelock freeze --update-base` to move the pin"
    )]
    PinMoved {
        base: String,
        platform: String,
        locked: String,
        now: String,
    },
    /// A locked digest or hash that its source serves differently for
    /// the same artifact.
    #[error(
        "{place}: {}\nhint: the lock was edited, or {} replaced what it serves; imagelock does not carry either value onward. Restore the lock from version control, or, if the source is right, delete the entry (or the lock) and run `imagelock freeze`",
        mismatch.describe(),
        mismatch.source()
    )]
    HashMismatch {
        /// `lockfiles/NAME.lock:LINE`
        place: String,
        mismatch: check::HashMismatch,
    },
    /// An ORAS artifact that is not one SIF, as `Bootstrap: oras` needs.
    #[error(
        "`oras://{reference}` is not a SIF image: {why}\nhint: `Bootstrap: oras` pulls what `apptainer push` writes to a registry: one layer of type `application/vnd.sylabs.sif.layer.v1.sif`"
    )]
    NotSif { reference: String, why: String },
    /// The Library service could not pin or serve a `Bootstrap: library`
    /// image.
    #[error("{0}")]
    Library(crate::resolve::library::LibraryError),
    /// Reading a base's files failed on a blocking thread.
    #[error("{0}")]
    Internal(String),
}

impl ImageCause {
    fn is_upstream(&self) -> bool {
        match self {
            ImageCause::Registry(e) => registry_gone(e),
            ImageCause::BaseRead { source, .. } => source.is_upstream(),
            ImageCause::PinMoved { .. } => true,
            ImageCause::Library(e) => e.is_gone(),
            ImageCause::Reference { .. }
            | ImageCause::Platform { .. }
            | ImageCause::ParentNotLocked { .. }
            | ImageCause::Lock(_)
            | ImageCause::HashMismatch { .. }
            | ImageCause::NotSif { .. }
            | ImageCause::Internal(_) => false,
        }
    }
}

/// A registry answer saying the image or platform is not there (any more).
fn registry_gone(e: &ResolveError) -> bool {
    matches!(
        e,
        ResolveError::NotFound { .. } | ResolveError::PlatformNotFound { .. }
    )
}

/// Why a base image's files could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadBaseError {
    #[error("`{0}` is not an image reference")]
    NotAReference(String),
    #[error("{0}")]
    Reference(ParseImageRefError),
    #[error("`{platform}`: {source}")]
    Platform {
        platform: String,
        source: ParsePlatformError,
    },
    #[error("{0}")]
    Image(ImageError),
    #[error("`{digest}` is not a digest: {source}")]
    Digest {
        digest: String,
        source: crate::oci::ParseDigestError,
    },
}

impl ReadBaseError {
    fn is_upstream(&self) -> bool {
        match self {
            ReadBaseError::Image(
                ImageError::PlatformMissing { .. } | ImageError::TagMissing { .. },
            ) => true,
            ReadBaseError::Image(ImageError::Registry { source, .. }) => registry_gone(source),
            _ => false,
        }
    }
}

/// Why an install step could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum StepCause {
    /// What the step resolved does not make a valid lock entry.
    #[error("{0}")]
    Lock(LockBuildError),
    #[error(
        "`{written}` uses {variables} which has no value here\nhint: give it a default with ARG, or set it in `build-args`"
    )]
    Unset { written: String, variables: String },
    #[error(
        "`-e {path}` installs a local project, which cannot be locked by hash\nhint: build it into a wheel, or install it in a step imagelock does not lock"
    )]
    Editable { path: String },
    #[error("`-e {spec}` in `{file}` cannot be locked by hash")]
    EditableInFile { spec: String, file: String },
    #[error(
        "the step reads `{path}`, but no COPY/ADD brings that file from the build context\nhint: copy it into the image before this step"
    )]
    NotCopied { path: String },
    /// The image (as its base and earlier steps leave it) has no Python
    /// for a pip step.
    #[error(
        "no Python for `{manager}` in the image on {platform}\nhint: install Python in an earlier step, or say which with `overrides.python` in imagelock.toml"
    )]
    NoPython { manager: String, platform: String },
    #[error(
        "no conda prefix for `{manager}` in the image on {platform}\nhint: set `overrides.conda-prefix`, or name one with -n/-p"
    )]
    NoCondaPrefix { manager: String, platform: String },
    #[error("conda has no subdir for `{0}`")]
    NoSubdir(String),
    #[error("{0}")]
    Target(TargetError),
    /// The Python resolution failed.
    #[error("{0}")]
    Pip(PipSolveError),
    #[error("{0}")]
    CondaSpec(ParseCondaSpecError),
    /// Channels could not be chosen or their repodata fetched.
    #[error("{0}")]
    Channels(ResolveCondaError),
    #[error("{0}")]
    CondaTarget(CondaTargetError),
    /// The conda solve failed.
    #[error("{0}")]
    Conda(SolveCondaError),
    /// An apt archive could not be fetched or failed its checks.
    #[error("{0}")]
    AptRepo(crate::resolve::apt::AptRepoError),
    /// apt would refuse the step.
    #[error("{0}")]
    Apt(crate::solve::apt::SolveAptError),
    /// An RPM repository could not be fetched or failed its checks.
    #[error("{0}")]
    RpmRepo(crate::resolve::rpm::RpmRepoError),
    /// dnf would refuse the step.
    #[error("{0}")]
    Rpm(crate::solve::rpm::solver::RpmSolveError),
    /// An Alpine repository could not be fetched or failed its checks.
    #[error("{0}")]
    ApkRepo(crate::resolve::apk::ApkRepoError),
    /// apk would refuse the step.
    #[error("{0}")]
    Apk(crate::solve::apk::ApkSolveError),
    /// A solver thread failed.
    #[error("{0}")]
    Internal(String),
    /// A pip setting with a value pip would refuse.
    #[error("{0}")]
    PipSetting(crate::config::pip::PipSettingError),
    /// A pip setting asks for a source imagelock does not read.
    #[error(
        "pip would use {setting} ({from}), which imagelock cannot resolve yet\nhint: remove the setting, or install those packages in a step imagelock does not lock"
    )]
    Unreadable { setting: String, from: String },
}

impl StepCause {
    fn is_upstream(&self) -> bool {
        match self {
            StepCause::Pip(
                PipSolveError::NoSolution { .. }
                | PipSolveError::Source {
                    source: PipSourceError::NotFound(..),
                    ..
                },
            )
            | StepCause::Conda(SolveCondaError::Unsatisfiable(_)) => true,
            // A file the index lists but no longer serves, a broken page.
            StepCause::Pip(PipSolveError::Source {
                source: PipSourceError::Failed(_),
                ..
            }) => true,
            // What the (re-pinned) base holds decides these.
            StepCause::NoPython { .. } | StepCause::NoCondaPrefix { .. } => true,
            // What dnf's repositories offer now decides these: a pinned
            // build gone, a dependency no longer provided.
            StepCause::Rpm(
                RpmSolveError::NoMatch(_)
                | RpmSolveError::Filtered { .. }
                | RpmSolveError::Unsatisfiable { .. }
                | RpmSolveError::Conflict { .. },
            ) => true,
            StepCause::Apk(
                crate::solve::apk::ApkSolveError::Unsatisfiable { .. }
                | crate::solve::apk::ApkSolveError::Conflict(_),
            ) => true,
            _ => false,
        }
    }
}

/// The clients for registries, channels and indexes could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{0}")]
    Http(#[from] HttpError),
    #[error("{0}")]
    Client(#[from] reqwest::Error),
    #[error("{0}")]
    Conda(#[from] ResolveCondaError),
    #[error("{0}")]
    Pypi(#[from] PypiError),
    #[error("{0}")]
    Session(#[from] crate::resolve::session::SessionError),
    #[error("{0}")]
    Internal(String),
}

/// One image ready to resolve: its configuration, definition and inputs.
#[derive(Debug)]
pub struct ImageJob {
    pub config: ImageConfig,
    pub definition: Definition,
    pub inputs: Inputs,
    /// Where its lock lives.
    pub lock_path: PathBuf,
    /// The lock as it is on disk, if there is one.
    pub previous: Option<LockedImage>,
    /// Why the lock on disk could not be read (a damaged file, a newer
    /// format): freeze replaces it, drift refuses to compare with it.
    pub unreadable: Option<LockError>,
    /// The images of this repository it builds `FROM` (or copies from).
    pub builds_from: Vec<String>,
}

impl ImageJob {
    /// The error for a locked value its source contradicts: the lock file
    /// and line of the value, the key, and what the source serves.
    pub fn hash_mismatch(&self, mismatch: check::HashMismatch) -> FreezeError {
        let shown = std::env::current_dir()
            .ok()
            .and_then(|cwd| self.lock_path.strip_prefix(cwd).ok().map(Path::to_path_buf))
            .unwrap_or_else(|| self.lock_path.clone());
        let line = fs_err::read_to_string(&self.lock_path)
            .ok()
            .and_then(|text| mismatch.line_in(&text));
        let place = match line {
            Some(line) => format!("{}:{line}", shown.display()),
            None => shown.display().to_string(),
        };
        FreezeError::image(
            &self.config.name,
            ImageCause::HashMismatch { place, mismatch },
        )
    }
}

/// Parses every image, reads its inputs and previous lock, and orders the
/// jobs so each image comes after the repository images it builds from.
pub fn prepare(config: &Config, images: &[ImageConfig]) -> Result<Vec<ImageJob>, FreezeError> {
    let mut jobs = Vec::new();
    for image in images {
        let (definition, text) =
            read_definition_with(&image.file, &image.build_args, &image.wrappers)?;
        let inputs = load_inputs(&definition, &text, &image.context, &image.build_args)?;
        let lock_path = config.lock_path(&image.name);
        let (previous, unreadable) = if lock_path.is_file() {
            match LockedImage::read(&lock_path) {
                Ok(lock) => (Some(lock), None),
                Err(e) => (None, Some(e)),
            }
        } else {
            (None, None)
        };
        jobs.push(ImageJob {
            config: image.clone(),
            definition,
            inputs,
            lock_path,
            previous,
            unreadable,
            builds_from: Vec::new(),
        });
    }
    let inputs: Vec<GraphInput<'_>> = jobs
        .iter()
        .map(|j| GraphInput {
            name: &j.config.name,
            reference: j.config.reference.as_deref(),
            pulls: pulled_references(&j.definition),
        })
        .collect();
    let graph = build_order(&inputs, &same_image)?;
    let mut by_name: BTreeMap<String, ImageJob> = jobs
        .into_iter()
        .map(|j| (j.config.name.clone(), j))
        .collect();
    for (image, parent) in graph.edges {
        if let Some(job) = by_name.get_mut(&image) {
            job.builds_from.push(parent);
        }
    }
    let order = graph.order;
    Ok(order
        .into_iter()
        .filter_map(|name| by_name.remove(&name))
        .collect())
}

/// The platforms an image is locked for.
pub fn platforms_of(job: &ImageJob, options: &FreezeOptions) -> Vec<String> {
    let mut platforms = if options.platforms.is_empty() {
        job.config.platforms.clone()
    } else {
        options.platforms.clone()
    };
    platforms.sort();
    platforms.dedup();
    platforms
}

/// A path as the lock records it: relative to the configuration's
/// directory, with `/` separators, so locks do not depend on the checkout.
pub fn lock_path_of(config: &Config, path: &Path) -> String {
    let relative = path
        .strip_prefix(&config.root)
        .map(Path::to_path_buf)
        .ok()
        .or_else(|| {
            let root = config.root.canonicalize().ok()?;
            let abs = path.canonicalize().ok()?;
            abs.strip_prefix(&root).ok().map(Path::to_path_buf)
        });
    let rel = relative.as_deref().unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// The stages of a definition as the lock records them.
pub fn locked_stages(
    config: &Config,
    definition: &Definition,
) -> Result<Vec<LockedStage>, LockBuildError> {
    definition
        .stages
        .iter()
        .map(|stage| {
            let (base, base_name) = match &stage.base.target {
                BaseTarget::Stage { index } => (format!("stage:{index}"), None),
                BaseTarget::Scratch => ("scratch".to_string(), None),
                BaseTarget::Image { .. } | BaseTarget::Other { .. } => {
                    let written = stage
                        .base
                        .reference
                        .value
                        .clone()
                        .unwrap_or_else(|| stage.base.reference.written.clone());
                    // A registry name only for a registry image: an
                    // Apptainer `library`, `oras` or file base is not one
                    // of Docker Hub's, and has its agent's name.
                    let name = matches!(stage.base.target, BaseTarget::Image { .. })
                        .then(|| crate::oci::ImageRef::parse(&written).ok())
                        .flatten()
                        .map(|r| crate::resolve::registry::canonical_name(&r))
                        .or_else(|| agents::locked_name(config, stage));
                    (written, name)
                }
            };
            LockedStage::new(
                stage.index,
                stage.name.as_deref(),
                &base,
                base_name.as_deref(),
            )
        })
        .collect()
}

/// An empty lock for a job: image metadata and stages, no bases or steps.
pub fn lock_skeleton(
    config: &Config,
    job: &ImageJob,
    platforms: &[String],
) -> Result<LockedImage, FreezeError> {
    locked_stages(config, &job.definition)
        .and_then(|stages| {
            LockedImage::skeleton(
                &job.config.name,
                &lock_path_of(config, &job.config.file),
                job.inputs.hash(),
                platforms,
                stages,
            )
        })
        .map_err(|e| FreezeError::image(&job.config.name, ImageCause::Lock(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(cause: StepCause) -> FreezeError {
        FreezeError::Step {
            image: "driver".into(),
            place: "driver/Dockerfile:12".into(),
            cause: Box::new(cause),
        }
    }

    #[test]
    fn what_upstream_no_longer_offers_is_told_from_trouble() {
        let gone = PipSolveError::Source {
            name: "certifi".into(),
            source: PipSourceError::NotFound("certifi".into(), "`https://pypi.org/simple`".into()),
        };
        assert!(step(StepCause::Pip(gone)).is_upstream());
        let unreachable = PipSolveError::Source {
            name: "certifi".into(),
            source: PipSourceError::Unavailable("connection refused".into()),
        };
        assert!(!step(StepCause::Pip(unreachable)).is_upstream());
        assert!(
            step(StepCause::Rpm(RpmSolveError::NoMatch(
                "tool-1.0-1.x86_64".into()
            )))
            .is_upstream()
        );
        assert!(!step(StepCause::Rpm(RpmSolveError::Glob("t*".into()))).is_upstream());
        assert!(
            !step(StepCause::Unset {
                written: "$V".into(),
                variables: "`V`".into()
            })
            .is_upstream()
        );
        let moved = FreezeError::image(
            "driver",
            ImageCause::PinMoved {
                base: "python".into(),
                platform: "linux/amd64".into(),
                locked: "sha256:00".into(),
                now: "sha256:11".into(),
            },
        );
        assert!(moved.is_upstream());
        assert!(!FreezeError::setup(SetupError::Internal("x".into())).is_upstream());
    }

    #[test]
    fn messages_keep_the_image_and_place() {
        let e = step(StepCause::NoSubdir("linux/riscv64".into()));
        assert_eq!(
            e.to_string(),
            "image `driver`, driver/Dockerfile:12: conda has no subdir for `linux/riscv64`"
        );
    }
}

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

mod bases;
mod run;
mod schedule;
pub mod state;
pub mod steps;

pub use run::{FreezeProgress, Frozen, NoProgress, freeze_image, freeze_image_reporting};
pub use schedule::freeze_all;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::{Config, ImageConfig};
use crate::lock::{LockBuildError, LockError, LockedImage, LockedStage};
use crate::source::graph::{CycleError, GraphInput, build_order};
use crate::source::inputs::{Inputs, load_inputs};
use crate::source::load::{SourceError, read_definition};
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

#[derive(Debug, thiserror::Error)]
pub enum FreezeError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Cycle(#[from] CycleError),
    #[error("image `{image}`: {message}")]
    Image { image: String, message: String },
    #[error("image `{image}`, {place}: {message}")]
    Step {
        image: String,
        place: String,
        message: String,
    },
    #[error("{0}")]
    Setup(String),
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
    /// The images of this repository it builds `FROM` (or copies from).
    pub builds_from: Vec<String>,
}

/// Parses every image, reads its inputs and previous lock, and orders the
/// jobs so each image comes after the repository images it builds from.
pub fn prepare(config: &Config, images: &[ImageConfig]) -> Result<Vec<ImageJob>, FreezeError> {
    let mut jobs = Vec::new();
    for image in images {
        let (definition, text) = read_definition(&image.file, &image.build_args)?;
        let inputs = load_inputs(&definition, &text, &image.context, &image.build_args)?;
        let lock_path = config.lock_dir.join(format!("{}.lock", image.name));
        let previous = if lock_path.is_file() {
            Some(LockedImage::read(&lock_path)?)
        } else {
            None
        };
        jobs.push(ImageJob {
            config: image.clone(),
            definition,
            inputs,
            lock_path,
            previous,
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
pub fn locked_stages(definition: &Definition) -> Result<Vec<LockedStage>, LockBuildError> {
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
                    let name = crate::oci::ImageRef::parse(&written)
                        .ok()
                        .map(|r| crate::resolve::registry::canonical_name(&r));
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
    locked_stages(&job.definition)
        .and_then(|stages| {
            LockedImage::skeleton(
                &job.config.name,
                &lock_path_of(config, &job.config.file),
                job.inputs.hash(),
                platforms,
                stages,
            )
        })
        .map_err(|e| FreezeError::Image {
            image: job.config.name.clone(),
            message: e.to_string(),
        })
}

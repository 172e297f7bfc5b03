//! The two checks `imagelock verify` runs: a lock against its inputs
//! ([`verify_lock`], offline), and a built image against its lock
//! ([`verify_image`]), with the locks of the repository images it builds
//! FROM merged underneath.

use std::path::Path;
use std::sync::Arc;

use crate::config::{Config, ImageConfig};
use crate::image::{
    ImageError, ImageLocation, LayerMemo, ReadOptions, SifImage, open_location,
    read_catalogue_with_base,
};
use crate::lock::coverage::coverage_of;
use crate::lock::{LockError, LockedImage};
use crate::oci::{ParsePlatformError, Platform};
use crate::source::coverage::Coverage;
use crate::source::load::SourceError;

use super::copies::{check_copies, copies_from_images};
use super::{
    ImageReport, LockedBaseLayers, SifReport, Staleness, built_from, check_lock, check_platform,
    locked_base_layers, on_parent,
};

/// Why an image or lock could not be checked (what does not match is a
/// finding in the report, not an error).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("{0}")]
    Platform(#[from] ParsePlatformError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("`{image}` has no lock at `{path}`\nhint: run `imagelock freeze {file}` first")]
    NoLock {
        image: String,
        path: String,
        file: String,
    },
    #[error(
        "`{image}` builds FROM image `{parent}` of this repository, which has no lock at `{path}`\nhint: run `imagelock freeze` first"
    )]
    ParentNoLock {
        image: String,
        parent: String,
        path: String,
    },
    #[error(
        "the locks of {images} build FROM each other in a cycle\nhint: run `imagelock graph` to see the build order"
    )]
    ParentCycle { images: String },
    #[error(
        "`{location}` is a `{has}` image, not `{wanted}`\nhint: pick the locked platform it was built for with `--platform`"
    )]
    WrongPlatform {
        location: String,
        has: String,
        wanted: String,
    },
    #[error(
        "`{location}` has none of the locked platforms ({platforms})\nhint: build the image for one of them, or pick one with `--platform`"
    )]
    NoPlatform { location: String, platforms: String },
    #[error(
        "the lock of `{image}` does not cover `{platform}` (it locks {locked})\nhint: add `{platform}` to the image's `platforms` and run `imagelock freeze`, or verify one of the locked platforms"
    )]
    PlatformNotLocked {
        image: String,
        platform: String,
        locked: String,
    },
    #[error("the lock of `{0}` names no platform")]
    NoLockedPlatform(String),
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl VerifyError {
    /// The place in a file the error is about, for rendering with the
    /// source line.
    pub fn diagnostic(&self) -> Option<&crate::diagnostic::Diagnostic> {
        match self {
            VerifyError::Source(e) => e.diagnostic(),
            VerifyError::Lock(e) => e.diagnostic(),
            _ => None,
        }
    }
}

/// A check's report, and what the caller should warn about.
#[derive(Clone, Debug)]
pub struct Verified {
    pub report: ImageReport,
    /// Platforms of the lock the image does not have, left unchecked.
    pub warnings: Vec<String>,
}

/// Whether the lock of `image` is current for its definition and the files
/// it reads. Offline.
pub fn verify_lock(config: &Config, image: &ImageConfig) -> Result<ImageReport, VerifyError> {
    let path = config.lock_path(&image.name);
    let mut report = ImageReport::new(&image.name, shown(&image.file), shown(&path));
    if !path.is_file() {
        report.stale.push(Staleness::MissingLock {
            path: report.lock.clone(),
        });
        return Ok(report);
    }
    let lock = LockedImage::read(&path)?;
    (report.stale, report.coverage) = stale(&lock, image)?;
    report.stale.extend(parents_stale(config, &lock));
    Ok(report)
}

/// Whether the built image at `location` matches the lock of `image`: for
/// `platform`, or for each locked platform the image has. Layers already
/// read in this run (`memo`, shared by the images of one run: the same blob,
/// both digests checked) are not read again.
pub fn verify_image(
    config: &Config,
    image: &ImageConfig,
    location: &ImageLocation,
    platform: Option<&Platform>,
    timeout: Option<std::time::Duration>,
    memo: Option<&Arc<LayerMemo>>,
) -> Result<Verified, VerifyError> {
    let path = config.lock_path(&image.name);
    if !path.is_file() {
        return Err(VerifyError::NoLock {
            image: image.name.clone(),
            path: shown(&path),
            file: image.file.display().to_string(),
        });
    }
    let own = LockedImage::read(&path)?;
    let lock = with_parents(config, &own, image)?;
    let explicit = platform.is_some();
    // A platform the lock does not cover has nothing to compare: never an
    // empty match.
    if let Some(p) = platform
        && !lock.image.platforms.iter().any(|l| l.matches(p))
    {
        return Err(VerifyError::PlatformNotLocked {
            image: image.name.clone(),
            platform: p.to_string(),
            locked: lock
                .image
                .platforms
                .iter()
                .map(|l| format!("`{l}`"))
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let platforms: Vec<Platform> = match platform {
        Some(p) => vec![p.clone()],
        None => lock.image.platforms.clone(),
    };
    let mut warnings = Vec::new();
    let mut report = ImageReport::new(&image.name, shown(&image.file), shown(&path));
    report.reference = Some(location.to_string());
    // An image can only match a lock that is current for its inputs.
    (report.stale, report.coverage) = stale(&own, image)?;
    report.stale.extend(parents_stale(config, &own));
    if let ImageLocation::Sif(sif_path) = location {
        sif_checks(
            &mut report,
            &lock,
            image,
            sif_path,
            &platforms,
            &config.limits,
        )?;
        return Ok(Verified { report, warnings });
    }
    // The runtime only serves `docker://`; the reader blocks on it from
    // this thread and its own, never from inside a task.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(VerifyError::Runtime)?;
    let source = open_location(location, config, timeout, runtime.handle())?;
    let opts = ReadOptions {
        memo: memo.cloned(),
        ..ReadOptions::default().with_limits(&config.limits)
    };
    let (definition, text) =
        crate::source::load::read_definition_with(&image.file, &image.build_args, &image.wrappers)?;
    let (copies, copy_notes) = copies_from_images(
        &definition,
        &text,
        own.image.definition.as_ref(),
        &own,
        image.target.as_deref(),
    );
    let open_copied = |l: &ImageLocation| open_location(l, config, timeout, runtime.handle());
    for p in &platforms {
        let expected = locked_base_layers(&lock, p);
        let read = read_catalogue_with_base(source.as_ref(), p, &opts, expected.diff_ids());
        let (catalogue, base) = match read {
            Ok(r) => r,
            Err(ImageError::PlatformMissing { .. }) if !explicit && platforms.len() > 1 => {
                warnings.push(format!(
                    "`{location}` has no `{p}` image; that platform is not checked"
                ));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let image_config = &catalogue.image.config;
        if !image_config.architecture.is_empty() {
            let has = Platform::new(
                &image_config.os,
                &image_config.architecture,
                image_config.variant.as_deref(),
            );
            if !has.matches(p) {
                if !explicit && platforms.len() > 1 {
                    warnings.push(format!(
                        "`{location}` is a `{has}` image; `{p}` is not checked"
                    ));
                    continue;
                }
                return Err(VerifyError::WrongPlatform {
                    location: location.to_string(),
                    has: has.to_string(),
                    wanted: p.to_string(),
                });
            }
        }
        let mut check = check_platform(&lock, p, &expected, &catalogue, base.as_ref());
        if let ImageLocation::ContainersStorage { .. } = location {
            // The other sources hash every layer against its diff_id; an
            // unpacked store has no layer stream to hash.
            check.notes.push(format!(
                "read from containers-storage: manifest `{}`, config `{}`; the layers are the store's unpacked directories, so their files are catalogued as they are but not hashed against the config's diff_ids",
                catalogue
                    .image
                    .manifest_digest
                    .as_ref()
                    .map_or_else(|| "unknown".to_string(), ToString::to_string),
                catalogue.image.config_digest
            ));
        }
        // What `COPY --from=IMAGE` copied, against the locked image's files.
        check.notes.extend(copy_notes.iter().cloned());
        check.checked.copied =
            check_copies(&copies, p, source.as_ref(), &open_copied, &opts, &mut check);
        report.platforms.push(check);
    }
    if report.platforms.is_empty() {
        return Err(VerifyError::NoPlatform {
            location: location.to_string(),
            platforms: lock
                .image
                .platforms
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    drop(runtime);
    Ok(Verified { report, warnings })
}

/// Why `lock` is not current for the definition of `image` as it is now.
/// Also the image's coverage as its lock stands.
fn stale(
    lock: &LockedImage,
    image: &ImageConfig,
) -> Result<(Vec<Staleness>, Option<Coverage>), VerifyError> {
    let (definition, text) =
        crate::source::load::read_definition_with(&image.file, &image.build_args, &image.wrappers)?;
    let inputs =
        crate::source::inputs::load_inputs(&definition, &text, &image.context, &image.build_args)?;
    let coverage = coverage_of(&definition, &text, image, &shown(&image.file), Some(lock));
    let mut stale = check_lock(lock, &definition, &inputs);
    stale.extend(super::stale::check_local_bases(
        lock,
        &definition,
        &image.context,
    ));
    Ok((stale, Some(coverage)))
}

/// Whether the in-repo parents of `lock` are still locked as it recorded
/// (the digest of each parent's lockfile as it is now).
pub fn parents_stale(config: &Config, lock: &LockedImage) -> Vec<Staleness> {
    super::check_parents(lock, &|parent| {
        let path = config.lock_path(parent);
        if !path.is_file() {
            return None;
        }
        let digest = LockedImage::read(&path)
            .map(|l| crate::oci::Digest::sha256_of(l.to_toml().as_bytes()))
            // A parent lock that cannot be read is not the one recorded.
            .unwrap_or_else(|_| crate::oci::Digest::sha256_of(b""));
        Some(digest)
    })
}

/// The lock as the built image holds it: when the image builds FROM another
/// image of this repository, on top of that image's lock (and so on down).
fn with_parents(
    config: &Config,
    lock: &LockedImage,
    image: &ImageConfig,
) -> Result<LockedImage, VerifyError> {
    let mut merged = lock.clone();
    let mut seen = vec![image.name.clone()];
    while let Some(parent) = built_from(&merged).map(str::to_string) {
        if seen.contains(&parent) {
            return Err(VerifyError::ParentCycle {
                images: seen.join(", "),
            });
        }
        let path = config.lock_path(&parent);
        if !path.is_file() {
            return Err(VerifyError::ParentNoLock {
                image: image.name.clone(),
                parent,
                path: shown(&path),
            });
        }
        merged = on_parent(&merged, &LockedImage::read(&path)?);
        seen.push(parent);
    }
    Ok(merged)
}

/// A path as reports show it: relative to the current directory when under
/// it, with `/` separators.
pub(crate) fn shown(path: &Path) -> String {
    let rel = std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf());
    rel.to_string_lossy()
        .trim_start_matches("./")
        .replace('\\', "/")
}

/// A SIF against the lock: its flattened root filesystem checked like one
/// platform's image, and what the SIF says of itself (digest, embedded
/// definition, signatures).
fn sif_checks(
    report: &mut ImageReport,
    lock: &LockedImage,
    image: &ImageConfig,
    path: &Path,
    platforms: &[Platform],
    limits: &crate::config::LimitsConfig,
) -> Result<(), VerifyError> {
    let reference = report.reference.clone().unwrap_or_default();
    let mut sif = SifImage::open(&reference, path)?;
    let header_arch = sif.file().header().arch;
    let platform = match platforms {
        [one] => one.clone(),
        many => many
            .iter()
            .find(|p| header_arch.is_some_and(|a| p.architecture() == a))
            .or(many.first())
            .cloned()
            .ok_or_else(|| VerifyError::NoLockedPlatform(image.name.clone()))?,
    };
    let (catalogue, summary) =
        sif.read_catalogue(&platform, &ReadOptions::default().with_limits(limits))?;
    let config = &catalogue.image.config;
    if !config.architecture.is_empty() {
        let has = Platform::new(&config.os, &config.architecture, config.variant.as_deref());
        if !has.matches(&platform) {
            return Err(VerifyError::WrongPlatform {
                location: reference,
                has: has.to_string(),
                wanted: platform.to_string(),
            });
        }
    }
    // A SIF's root filesystem is flattened: the base's layers cannot be told
    // apart in it, so the base is not compared layer by layer.
    let expected = match locked_base_layers(lock, &platform) {
        LockedBaseLayers::Scratch => LockedBaseLayers::Scratch,
        _ => LockedBaseLayers::Unknown(
            "a SIF is one flattened filesystem with no base layers".into(),
        ),
    };
    report
        .platforms
        .push(check_platform(lock, &platform, &expected, &catalogue, None));
    let current = fs_err::read_to_string(&image.file).map_err(|source| VerifyError::Read {
        path: shown(&image.file),
        source,
    })?;
    report.sif = Some(SifReport {
        definition: summary.check_definition(&current),
        signed: !summary.signatures.is_empty(),
        summary,
    });
    Ok(())
}

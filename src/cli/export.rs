//! `imagelock export`: a locked image in another format.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::cli::args::{ExportArgs, ExportKind};
use crate::cli::{Opts, Outcome, Printer, load_config};
use crate::lock::LockedImage;

pub fn run(opts: &Opts, args: &ExportArgs, printer: &Printer) -> anyhow::Result<Outcome> {
    let lock_path = lock_path(opts, &args.image)?;
    let lock = LockedImage::read(&lock_path)?;
    let platform = lock.export_platform(args.platform.as_deref())?;
    // The locks of in-repo parents, whose packages the image inherits.
    let config = load_config(&opts.global, &[]).ok();
    let parents = |name: &str| {
        let config = config.as_ref()?;
        LockedImage::read(&config.lock_path(name)).ok()
    };
    // Local channels and indexes are locked relative to the configuration.
    let root = config
        .as_ref()
        .map(|c| c.root.canonicalize().unwrap_or_else(|_| c.root.clone()));
    let text = match args.to {
        ExportKind::Requirements => lock.to_requirements(&platform)?,
        ExportKind::Pylock => lock.to_pylock(root.as_deref())?,
        ExportKind::CondaExplicit => {
            lock.to_conda_explicit(&platform, args.env.as_deref(), root.as_deref())?
        }
        ExportKind::Sbom => lock.to_cyclonedx(&parents),
        ExportKind::Spdx => lock.to_spdx(&parents, &created()?),
    };
    printer.data(&text)?;
    Ok(Outcome::Clean)
}

/// A lockfile path as given, or the lock of a configured image.
fn lock_path(opts: &Opts, image: &str) -> anyhow::Result<PathBuf> {
    let as_path = Path::new(image);
    if as_path.extension().is_some_and(|e| e == "lock") || as_path.is_file() {
        return Ok(as_path.to_path_buf());
    }
    let config = load_config(&opts.global, &[])
        .context("to export an image by name, imagelock needs its configuration")?;
    match config.images.iter().find(|i| i.name == image) {
        Some(_) => Ok(config.lock_path(image)),
        None => {
            let names: Vec<&str> = config.images.iter().map(|i| i.name.as_str()).collect();
            anyhow::bail!(
                "no image `{image}` in the configuration\nhint: configured images: {}",
                names.join(", ")
            )
        }
    }
}

/// The SPDX creation time: `SOURCE_DATE_EPOCH` when set (reproducible
/// builds), else now.
fn created() -> anyhow::Result<String> {
    let at = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(epoch) => {
            let secs: i64 = epoch.trim().parse().with_context(|| {
                format!("SOURCE_DATE_EPOCH `{epoch}` is not a number of seconds")
            })?;
            jiff::Timestamp::from_second(secs)
                .with_context(|| format!("SOURCE_DATE_EPOCH `{epoch}` is out of range"))?
        }
        Err(_) => jiff::Timestamp::now(),
    };
    Ok(at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

//! `imagelock verify`: without `--image`, each lock is current for its
//! inputs (offline); with `--image REF`, the built image matches its lock.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cli::args::VerifyArgs;
use crate::cli::images::select;
use crate::cli::rewrite::lock_dir;
use crate::cli::{Opts, Outcome, OutputFormat, Printer};
use crate::config::ImageConfig;
use crate::image::{
    ImageError, ImageLocation, ImageSource, ReadOptions, RegistryImage, open_local,
    read_catalogue_with_base,
};
use crate::lock::LockedImage;
use crate::oci::Platform;
use crate::resolve::{Registry, RegistryOptions};
use crate::verify::{
    ImageReport, PrintHuman, PrintJson, PrintJunit, Report, Staleness, VerifyReport, built_from,
    check_lock, check_platform, locked_base_layers, on_parent,
};

pub fn run(opts: &Opts, args: &VerifyArgs, printer: &Printer) -> anyhow::Result<Outcome> {
    let printer_for: &dyn Report = match opts.global.format {
        OutputFormat::Human => &PrintHuman,
        OutputFormat::Json => &PrintJson,
        OutputFormat::Junit => &PrintJunit,
        other => anyhow::bail!(
            "`imagelock verify` cannot print `{}`\nhint: use `--format human`, `json` or `junit`",
            format!("{other:?}").to_lowercase()
        ),
    };
    let platform = args
        .platform
        .as_deref()
        .map(str::parse::<Platform>)
        .transpose()?;
    let (config, images) = select(&opts.global, &args.paths.paths, &BTreeMap::new())?;
    let registries = config
        .as_ref()
        .map(|c| (c.registries.clone(), c.root.clone()));
    let lock_dir = lock_dir(config)?;
    let mut report = VerifyReport::default();
    match &args.image {
        None => {
            for image in &images {
                report.images.push(stale_report(image, &lock_dir, printer)?);
            }
        }
        Some(reference) => {
            let [image] = images.as_slice() else {
                anyhow::bail!(
                    "`--image` checks one image, and {} were selected\nhint: name the image's definition file: `imagelock verify --image {reference} path/to/Dockerfile`",
                    images.len()
                );
            };
            let location: ImageLocation = reference.parse()?;
            report.images.push(image_report(
                image,
                &lock_dir,
                &location,
                platform.as_ref(),
                registries,
                printer,
            )?);
        }
    }
    printer.data(&printer_for.render(&report))?;
    Ok(if report.is_clean() {
        Outcome::Clean
    } else {
        Outcome::Findings
    })
}

fn lock_path(image: &ImageConfig, lock_dir: &Path) -> PathBuf {
    lock_dir.join(format!("{}.lock", image.name))
}

fn shown(path: &Path) -> String {
    let rel = std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf());
    rel.to_string_lossy()
        .trim_start_matches("./")
        .replace('\\', "/")
}

fn stale_report(
    image: &ImageConfig,
    lock_dir: &Path,
    printer: &Printer,
) -> anyhow::Result<ImageReport> {
    let path = lock_path(image, lock_dir);
    let mut report = ImageReport {
        image: image.name.clone(),
        definition: shown(&image.file),
        lock: shown(&path),
        reference: None,
        stale: Vec::new(),
        platforms: Vec::new(),
    };
    if !path.is_file() {
        report.stale.push(Staleness::MissingLock {
            path: report.lock.clone(),
        });
        return Ok(report);
    }
    let lock = LockedImage::read(&path)?;
    let (definition, inputs) = crate::cli::images::load_image(image, printer)?;
    report.stale = check_lock(&lock, &definition, &inputs);
    Ok(report)
}

/// The lock as the built image holds it: when the image builds FROM another
/// image of this repository, on top of that image's lock (and so on down).
fn with_parents(
    lock: &LockedImage,
    image: &ImageConfig,
    lock_dir: &Path,
) -> anyhow::Result<LockedImage> {
    let mut merged = lock.clone();
    let mut seen = vec![image.name.clone()];
    while let Some(parent) = built_from(&merged).map(str::to_string) {
        if seen.contains(&parent) {
            anyhow::bail!(
                "the locks of {} build FROM each other in a cycle\nhint: run `imagelock graph` to see the build order",
                seen.join(", ")
            );
        }
        let path = lock_dir.join(format!("{parent}.lock"));
        if !path.is_file() {
            anyhow::bail!(
                "`{}` builds FROM image `{parent}` of this repository, which has no lock at `{}`\nhint: run `imagelock freeze` first",
                image.name,
                shown(&path)
            );
        }
        merged = on_parent(&merged, &LockedImage::read(&path)?);
        seen.push(parent);
    }
    Ok(merged)
}

fn image_report(
    image: &ImageConfig,
    lock_dir: &Path,
    location: &ImageLocation,
    platform: Option<&Platform>,
    registries: Option<(crate::resolve::registry::RegistryConfigs, PathBuf)>,
    printer: &Printer,
) -> anyhow::Result<ImageReport> {
    let path = lock_path(image, lock_dir);
    if !path.is_file() {
        anyhow::bail!(
            "`{}` has no lock at `{}`\nhint: run `imagelock freeze {}` first",
            image.name,
            shown(&path),
            image.file.display()
        );
    }
    let own = LockedImage::read(&path)?;
    let lock = with_parents(&own, image, lock_dir)?;
    // The runtime only serves `docker://`; the reader blocks on it from
    // this thread and its own, never from inside a task.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let source: Box<dyn ImageSource + Send> = match location {
        ImageLocation::Docker(r) => {
            let mut options = RegistryOptions::default();
            if let Some((registries, root)) = registries {
                options.registries = registries;
                options.root = root;
            }
            Box::new(RegistryImage::new(
                Arc::new(Registry::new(options)?),
                r.clone(),
                runtime.handle().clone(),
            ))
        }
        other => open_local(other)?,
    };
    let explicit = platform.is_some();
    let platforms: Vec<Platform> = match platform {
        Some(p) => vec![p.clone()],
        None => lock.image.platforms.clone(),
    };
    let opts = ReadOptions::default();
    let mut report = ImageReport {
        image: image.name.clone(),
        definition: shown(&image.file),
        lock: shown(&path),
        reference: Some(location.to_string()),
        // An image can only match a lock that is current for its inputs.
        stale: {
            let (definition, inputs) = crate::cli::images::load_image(image, printer)?;
            check_lock(&own, &definition, &inputs)
        },
        platforms: Vec::new(),
    };
    for p in &platforms {
        let expected = locked_base_layers(&lock, p);
        let read = read_catalogue_with_base(source.as_ref(), p, &opts, expected.diff_ids());
        let (catalogue, base) = match read {
            Ok(r) => r,
            Err(ImageError::PlatformMissing { .. }) if !explicit && platforms.len() > 1 => {
                printer.warn(&format!(
                    "`{location}` has no `{p}` image; that platform is not checked"
                ));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let config = &catalogue.image.config;
        if !config.architecture.is_empty() {
            let has = Platform::new(&config.os, &config.architecture, config.variant.as_deref());
            if !has.matches(p) {
                if !explicit && platforms.len() > 1 {
                    printer.warn(&format!(
                        "`{location}` is a `{has}` image; `{p}` is not checked"
                    ));
                    continue;
                }
                anyhow::bail!(
                    "`{location}` is a `{has}` image, not `{p}`\nhint: pick the locked platform it was built for with `--platform`"
                );
            }
        }
        report.platforms.push(check_platform(
            &lock,
            p,
            &expected,
            &catalogue,
            base.as_ref(),
        ));
    }
    if report.platforms.is_empty() {
        anyhow::bail!(
            "`{location}` has none of the locked platforms ({})\nhint: build the image for one of them, or pick one with `--platform`",
            lock.image
                .platforms
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    drop(runtime);
    Ok(report)
}

//! `imagelock verify`: without `--image`, each lock is current for its
//! inputs (offline); with `--image REF` (repeatable), each built image
//! matches its lock.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::cli::args::VerifyArgs;
use crate::cli::images::select;
use crate::cli::reports::{Outputs, ReportOf};
use crate::cli::rewrite::lock_config;
use crate::cli::{Opts, Outcome, Printer};
use crate::config::ImageConfig;
use crate::image::{ImageLocation, LayerMemo};
use crate::oci::Platform;
use crate::verify::Report;

pub fn run(opts: &Opts, args: &VerifyArgs, printer: &Printer) -> anyhow::Result<Outcome> {
    let outputs = Outputs::new(ReportOf::Verify, opts.global.format, &args.output)?;
    match check(opts, args, printer) {
        Ok(report) => {
            outputs.write(&report, printer)?;
            Ok(if report.is_clean() {
                Outcome::Clean
            } else {
                Outcome::Findings
            })
        }
        Err(err) => {
            outputs.write_error(&err, printer);
            Err(err)
        }
    }
}

fn check(opts: &Opts, args: &VerifyArgs, printer: &Printer) -> anyhow::Result<Report> {
    let platform = args
        .platform
        .as_deref()
        .map(str::parse::<Platform>)
        .transpose()?;
    let (config, images) = select(&opts.global, &args.paths.paths, &BTreeMap::new())?;
    let config = lock_config(config)?;
    let mut report = Report::default();
    if args.image.is_empty() {
        for image in &images {
            let start = Instant::now();
            let mut checked = crate::verify::verify_lock(&config, image)?;
            checked.elapsed = Some(start.elapsed());
            checked.root = Some(config.root.clone());
            report.images.push(checked);
        }
        return Ok(report);
    }
    // Images built on the same layers (a matrix on one base) read each
    // distinct layer blob once in this run; one image keeps no memo.
    let memo = (args.image.len() > 1).then(|| std::sync::Arc::new(LayerMemo::default()));
    for (image, reference) in pair_images(&images, &args.image)? {
        let start = Instant::now();
        let location: ImageLocation = reference.parse()?;
        let verified = crate::verify::verify_image(
            &config,
            image,
            &location,
            platform.as_ref(),
            opts.global.timeout(),
            memo.as_ref(),
        )?;
        for warning in &verified.warnings {
            printer.warn(warning);
        }
        let mut checked = verified.report;
        checked.elapsed = Some(start.elapsed());
        checked.root = Some(config.root.clone());
        report.images.push(checked);
    }
    if let Some(memo) = memo.filter(|_| printer.verbose() > 0) {
        printer.status(&format!(
            "layers read: {}; taken from an image verified earlier in this run: {}",
            memo.reads(),
            memo.hits()
        ));
    }
    let (hashed, paired) = crate::image::layer_hashing();
    if printer.verbose() > 0 && hashed > 0 {
        printer.status(&format!(
            "layer streams hashed: {:.1} MiB, {:.0}% of it two streams at once",
            hashed as f64 / (1024.0 * 1024.0),
            100.0 * paired as f64 / hashed as f64
        ));
    }
    Ok(report)
}

/// Which selected image each `--image` is: with one image selected, every
/// reference is a build of it; with several, each is written `IMAGE=REF`.
fn pair_images<'a>(
    images: &'a [ImageConfig],
    references: &'a [String],
) -> anyhow::Result<Vec<(&'a ImageConfig, &'a str)>> {
    let mut out = Vec::new();
    for reference in references {
        let named = reference.split_once('=').and_then(|(name, rest)| {
            images
                .iter()
                .find(|i| i.name.as_str() == name)
                .map(|i| (i, rest))
        });
        match (named, images) {
            (Some(pair), _) => out.push(pair),
            (None, [image]) => out.push((image, reference.as_str())),
            (None, _) => {
                let names: Vec<&str> = images.iter().map(|i| i.name.as_str()).collect();
                anyhow::bail!(
                    "`--image {reference}`: which image is it? {} are selected ({})\nhint: write `--image IMAGE=REF`, e.g. `--image {}={reference}`, or name the image's definition file",
                    images.len(),
                    names.join(", "),
                    names.first().copied().unwrap_or("driver"),
                );
            }
        }
    }
    Ok(out)
}

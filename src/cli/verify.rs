//! `imagelock verify`: without `--image`, each lock is current for its
//! inputs (offline); with `--image REF`, the built image matches its lock.

use std::collections::BTreeMap;

use crate::cli::args::VerifyArgs;
use crate::cli::images::select;
use crate::cli::rewrite::lock_config;
use crate::cli::{Opts, Outcome, OutputFormat, Printer};
use crate::image::ImageLocation;
use crate::oci::Platform;
use crate::verify::{PrintHuman, PrintJson, PrintJunit, Render, Report};

pub fn run(opts: &Opts, args: &VerifyArgs, printer: &Printer) -> anyhow::Result<Outcome> {
    let printer_for: &dyn Render = match opts.global.format {
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
    let config = lock_config(config)?;
    let mut report = Report::default();
    match &args.image {
        None => {
            for image in &images {
                report
                    .images
                    .push(crate::verify::verify_lock(&config, image)?);
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
            let verified = crate::verify::verify_image(
                &config,
                image,
                &location,
                platform.as_ref(),
                opts.global.timeout(),
            )?;
            for warning in &verified.warnings {
                printer.warn(warning);
            }
            report.images.push(verified.report);
        }
    }
    printer.data(&printer_for.render(&report))?;
    Ok(if report.is_clean() {
        Outcome::Clean
    } else {
        Outcome::Findings
    })
}

//! `imagelock freeze`: resolve and write the lockfiles.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use crate::cli::args::FreezeArgs;
use crate::cli::images::{parse_build_args, select};
use crate::cli::output::{display_path, unified_diff};
use crate::cli::{Opts, Outcome, Printer};
use crate::config::{Config, validate_platform};
use crate::freeze::steps::Resolvers;
use crate::freeze::{FreezeOptions, Frozen, freeze_image, prepare};
use crate::lock::write_atomic;

pub fn run(opts: &Opts, args: &FreezeArgs, printer: &Printer) -> anyhow::Result<Outcome> {
    for p in &args.platform {
        validate_platform(p)
            .map_err(|hint| anyhow::anyhow!("`{p}` is not a platform\nhint: {hint}"))?;
    }
    let overrides = parse_build_args(&args.build_args)?;
    let (config, images) = select(&opts.global, &args.paths.paths, &overrides)?;
    let config = config.unwrap_or_else(|| {
        let files: Vec<PathBuf> = images.iter().map(|i| i.file.clone()).collect();
        Config::zero(&files)
    });
    let options = FreezeOptions {
        platforms: args.platform.clone(),
        update: args.update.clone(),
        update_base: args.update_base,
        offline: opts.global.offline,
        exclude_newer: args.exclude_newer.clone(),
        ignore_locked: false,
        no_build: args.no_build,
    };
    let jobs = prepare(&config, &images)?;
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let frozen: Vec<Frozen> = runtime.block_on(async {
        let mut resolvers = Resolvers::new(&config, options.offline)?;
        resolvers.no_build = options.no_build;
        let mut frozen: Vec<Frozen> = Vec::new();
        let bar = progress(jobs.len(), printer);
        for job in &jobs {
            if let Some(bar) = &bar {
                bar.set_message(job.config.name.clone());
            }
            let image = freeze_image(&config, &resolvers, job, &options, &frozen).await?;
            if let Some(bar) = &bar {
                bar.inc(1);
            }
            frozen.push(image);
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        anyhow::Ok(frozen)
    })?;

    // Nothing is written unless every image resolved.
    let mut changed = 0;
    let mut diffs = String::new();
    let mut writes = Vec::new();
    for (job, image) in jobs.iter().zip(&frozen) {
        let after = image.lock.to_toml();
        let before = job
            .previous
            .as_ref()
            .map(|_| std::fs::read_to_string(&job.lock_path).unwrap_or_default())
            .unwrap_or_default();
        if before == after {
            continue;
        }
        changed += 1;
        diffs.push_str(&unified_diff(&job.lock_path, &before, &after));
        writes.push((job.lock_path.clone(), after));
    }
    let elapsed = started.elapsed().as_secs_f64();
    if args.check {
        if changed > 0 {
            printer.data(&diffs)?;
            printer.status(&format!(
                "{changed} of {} lockfiles are not current; run `imagelock freeze`",
                jobs.len()
            ));
            return Ok(Outcome::Findings);
        }
        printer.status(&format!(
            "{} lockfiles are current ({elapsed:.2}s)",
            jobs.len()
        ));
        return Ok(Outcome::Clean);
    }
    if args.dry_run {
        printer.data(&diffs)?;
        printer.status(&format!(
            "{changed} of {} lockfiles would change (nothing written)",
            jobs.len()
        ));
        return Ok(Outcome::Clean);
    }
    for image in &frozen {
        for w in &image.warnings {
            printer.warn(w);
        }
    }
    for (path, text) in &writes {
        write_atomic(path, text.as_bytes())
            .map_err(|e| anyhow::anyhow!("cannot write `{}`: {e}", display_path(path)))?;
        printer.status(&format!("wrote {}", display_path(path)));
    }
    printer.status(&format!(
        "{} images locked, {changed} lockfiles changed ({elapsed:.2}s)",
        jobs.len()
    ));
    Ok(Outcome::Clean)
}

fn progress(len: usize, printer: &Printer) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() || printer.quiet() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} freezing {msg} [{pos}/{len}] {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    Some(bar)
}

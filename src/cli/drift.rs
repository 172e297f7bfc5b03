//! `imagelock drift`: re-resolve read-only and report what moved upstream.

use std::io::IsTerminal;
use std::path::PathBuf;

use crate::cli::args::DriftArgs;
use crate::cli::images::select;
use crate::cli::{Opts, Outcome, OutputFormat, Printer};
use crate::config::Config;
use crate::drift::report::{Json, Markdown, Render, Table};
use crate::drift::{
    ImageReport, Kind, Report, annotate_newest, channel_findings, compare, date_moved_bases,
    index_findings, sort_findings, unresolvable,
};
use crate::freeze::steps::Resolvers;
use crate::freeze::{
    FreezeOptions, Frozen, freeze_image, lock_skeleton, platforms_of, prepare, resolve_bases,
};

pub fn run(opts: &Opts, args: &DriftArgs, printer: &Printer) -> anyhow::Result<Outcome> {
    let fail_on = fail_on(&args.fail_on)?;
    let render: Box<dyn Render> = match opts.global.format {
        OutputFormat::Human => Box::new(Table),
        OutputFormat::Markdown => Box::new(Markdown),
        OutputFormat::Json => Box::new(Json),
        other => anyhow::bail!(
            "`drift` cannot print `{}`\nhint: use `--format human`, `markdown` or `json`",
            format!("{other:?}").to_ascii_lowercase()
        ),
    };
    if let Some(date) = &args.as_of {
        // Checked here so a bad date is trouble, not an unresolvable image.
        if crate::solve::conda::parse_exclude_newer(date).is_err() {
            anyhow::bail!(
                "`--as-of {date}` is not a date\nhint: write a date like `2024-05-01` or `2024-05-01T12:00:00Z`"
            );
        }
    }
    let (config, images) = select(&opts.global, &args.paths.paths, &Default::default())?;
    let config = config.unwrap_or_else(|| {
        let files: Vec<PathBuf> = images.iter().map(|i| i.file.clone()).collect();
        Config::zero(&files)
    });
    let options = FreezeOptions {
        no_build: false,
        update_base: true,
        offline: opts.global.offline,
        exclude_newer: args.as_of.clone(),
        ignore_locked: true,
        ..FreezeOptions::default()
    };
    let jobs = prepare(&config, &images)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(async {
        let resolvers = Resolvers::new(&config, options.offline)?;
        let mut frozen: Vec<Frozen> = Vec::new();
        let mut reports = Vec::new();
        let bar = progress(jobs.len(), printer);
        for job in &jobs {
            if let Some(bar) = &bar {
                bar.set_message(job.config.name.clone());
            }
            // Nothing is written: the fresh lock is only compared.
            let (image, failure) =
                match freeze_image(&config, &resolvers, job, &options, &frozen).await {
                    Ok(image) => (Some(image), None),
                    // What the upstream no longer allows is a finding;
                    // bad input and setup failures are trouble.
                    Err(
                        err @ (crate::freeze::FreezeError::Image { .. }
                        | crate::freeze::FreezeError::Step { .. }),
                    ) => (None, Some(err.to_string())),
                    Err(err) => return Err(err.into()),
                };
            let findings = match &job.previous {
                Some(locked) => {
                    let fresh = match &image {
                        Some(image) => image.lock.clone(),
                        // Bases alone still tell whether a tag moved.
                        None => {
                            let platforms = platforms_of(job, &options);
                            let repo: Vec<_> = frozen
                                .iter()
                                .map(|f| (f.name.as_str(), f.reference.as_deref(), &f.lock))
                                .collect();
                            let mut lock = lock_skeleton(&config, job, &platforms)?;
                            if let Ok(r) =
                                resolve_bases(&resolvers.registry, job, &platforms, &options, &repo)
                                    .await
                            {
                                lock.bases = r.bases;
                            }
                            lock
                        }
                    };
                    let mut findings = compare(job, locked, &fresh);
                    date_moved_bases(&resolvers, &locked.image.platforms, &mut findings).await;
                    if let Some(message) = &failure {
                        findings.push(unresolvable(message));
                    }
                    let index = index_findings(&config, &resolvers, locked).await?;
                    annotate_newest(&mut findings, &index.newest);
                    findings.extend(index.findings);
                    findings.extend(channel_findings(&config, &resolvers, locked).await?);
                    sort_findings(&mut findings);
                    findings
                }
                None => {
                    if let Some(message) = failure {
                        anyhow::bail!(message);
                    }
                    printer.warn(&format!(
                        "image `{}` has no lock yet; run `imagelock freeze`",
                        job.config.name
                    ));
                    Vec::new()
                }
            };
            reports.push(ImageReport {
                name: job.config.name.clone(),
                findings,
            });
            if let Some(bar) = &bar {
                bar.inc(1);
            }
            if let Some(image) = image {
                frozen.push(image);
            }
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        reports.sort_by(|a, b| a.name.cmp(&b.name));
        anyhow::Ok(Report::new(reports))
    })?;
    printer.data(&render.render(&report))?;
    if report.has_any(&fail_on) {
        return Ok(Outcome::Findings);
    }
    Ok(Outcome::Clean)
}

/// `--fail-on` kinds; `any` is every kind but `unpinned`.
fn fail_on(words: &[String]) -> anyhow::Result<Vec<Kind>> {
    let mut kinds = Vec::new();
    for w in words {
        let w = w.trim();
        if w == "any" {
            kinds.extend(Kind::ALL.into_iter().filter(|k| *k != Kind::Unpinned));
            continue;
        }
        match Kind::parse(w) {
            Some(k) => kinds.push(k),
            None => anyhow::bail!(
                "`--fail-on {w}` is not a kind of drift\nhint: use any of base, yanked, gone, broken, stale, outdated, unpinned, any"
            ),
        }
    }
    Ok(kinds)
}

fn progress(len: usize, printer: &Printer) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() || printer.quiet() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} checking {msg} [{pos}/{len}] {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    Some(bar)
}

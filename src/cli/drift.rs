//! `imagelock drift`: re-resolve read-only and report what moved upstream.

use std::io::IsTerminal;
use std::path::PathBuf;

use crate::cli::args::DriftArgs;
use crate::cli::images::select;
use crate::cli::reports::{Outputs, ReportOf};
use crate::cli::{Opts, Outcome, Printer};
use crate::config::Config;
use crate::drift::{DriftOptions, DriftProgress, FindingKind as Kind, Report};

pub fn run(opts: &Opts, args: &DriftArgs, printer: &Printer) -> anyhow::Result<Outcome> {
    // `unlocked`: a step the lock does not pin and the configuration does
    // not accept; not a kind of drift finding, so read apart.
    let fail_on_unlocked = args.fail_on.iter().any(|w| w.trim() == "unlocked");
    let kinds: Vec<String> = args
        .fail_on
        .iter()
        .filter(|w| w.trim() != "unlocked")
        .cloned()
        .collect();
    let fail_on = fail_on(&kinds)?;
    let outputs = Outputs::new(ReportOf::Drift, opts.global.format, &args.output)?;
    match check(opts, args, printer) {
        Ok(report) => {
            outputs.write(&report, printer)?;
            let unlocked = report
                .images
                .iter()
                .filter_map(|i| i.coverage.as_ref())
                .any(|c| c.unlocked().next().is_some());
            Ok(
                if report.has_any(&fail_on) || (fail_on_unlocked && unlocked) {
                    Outcome::Findings
                } else {
                    Outcome::Clean
                },
            )
        }
        Err(err) => {
            outputs.write_error(&err, printer);
            Err(err)
        }
    }
}

fn check(opts: &Opts, args: &DriftArgs, printer: &Printer) -> anyhow::Result<Report> {
    let (config, images) = select(&opts.global, &args.paths.paths, &Default::default())?;
    let config = config.unwrap_or_else(|| {
        let files: Vec<PathBuf> = images.iter().map(|i| i.file.clone()).collect();
        Config::zero(&files)
    });
    let options = DriftOptions {
        offline: opts.global.offline,
        as_of: args.as_of.clone(),
        timeout: opts.global.timeout(),
    };
    let bar = Bar::new(images.len(), printer);
    let drift = crate::drift::run(&config, &images, &options, &bar);
    bar.clear();
    let drift = drift?;
    for warning in &drift.warnings {
        printer.warn(warning);
    }
    if printer.verbose() > 0 {
        for note in &drift.notes {
            printer.status(note);
        }
    }
    let mut report = drift.report;
    for image in &mut report.images {
        image.root = Some(config.root.clone());
    }
    Ok(report)
}

/// `--fail-on` kinds; `any` is every kind but `unpinned`.
fn fail_on(words: &[String]) -> anyhow::Result<Vec<Kind>> {
    let mut kinds = Vec::new();
    for w in words {
        let w = w.trim();
        if w == "any" {
            kinds.extend(Kind::DRIFT.into_iter().filter(|k| *k != Kind::Unpinned));
            continue;
        }
        match Kind::parse_drift(w) {
            Some(k) => kinds.push(k),
            None => anyhow::bail!(
                "`--fail-on {w}` is not a kind of drift\nhint: use any of base, yanked, gone, broken, hash-mismatch, vulnerable, security, stale, outdated, moved, unresolvable, unpinned, unlocked, any"
            ),
        }
    }
    Ok(kinds)
}

/// A progress line on stderr when it is a terminal.
struct Bar(Option<indicatif::ProgressBar>);

impl Bar {
    fn new(len: usize, printer: &Printer) -> Bar {
        if !std::io::stderr().is_terminal() || printer.quiet() {
            return Bar(None);
        }
        let bar = indicatif::ProgressBar::new(len as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} checking {msg} [{pos}/{len}] {elapsed}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        Bar(Some(bar))
    }

    fn clear(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

impl DriftProgress for Bar {
    fn checking(&self, image: &str) {
        if let Some(bar) = &self.0 {
            bar.set_message(image.to_string());
        }
    }

    fn checked(&self) {
        if let Some(bar) = &self.0 {
            bar.inc(1);
        }
    }
}

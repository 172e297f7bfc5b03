//! `imagelock freeze`: resolve and write the lockfiles.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::cli::args::FreezeArgs;
use crate::cli::changes::{Summary, image_changes};
use crate::cli::images::{parse_build_args, select, with_parents};
use crate::cli::output::{display_path, unified_diff};
use crate::cli::{Opts, Outcome, OutputFormat, Printer};
use crate::config::{Config, validate_platform};
use crate::freeze::steps::{Limits, session};
use crate::freeze::{FreezeOptions, FreezeProgress, Frozen, freeze_all, prepare};
use crate::lock::coverage::image_coverage;
use crate::lock::write_all_atomic;
use crate::resolve::conda::CondaProgress;
use crate::resolve::pypi::PypiProgress;

pub fn run(opts: &Opts, args: &FreezeArgs, printer: &Printer) -> anyhow::Result<Outcome> {
    let format = opts.global.format;
    if !matches!(
        format,
        OutputFormat::Human | OutputFormat::Json | OutputFormat::Markdown
    ) {
        anyhow::bail!(
            "`imagelock freeze` cannot print `{}`\nhint: use `--format human` (the diff), `json` or `markdown` (what changed, old → new)",
            format.name()
        );
    }
    let Resolved {
        jobs,
        frozen,
        started,
        ..
    } = resolve(opts, args, printer)?;
    // Nothing is written unless every image resolved.
    let mut changed = 0;
    let mut diffs = String::new();
    let mut writes = Vec::new();
    let mut summary = Summary {
        version: 1,
        mode: if args.check {
            "check"
        } else if args.dry_run {
            "dry-run"
        } else {
            "write"
        },
        changed: 0,
        images: Vec::new(),
    };
    for (job, image) in jobs.iter().zip(&frozen) {
        let after = image.lock.to_toml();
        let before = job
            .previous
            .as_ref()
            .map(|_| std::fs::read_to_string(&job.lock_path).unwrap_or_default())
            .unwrap_or_default();
        summary.images.push(image_changes(
            &job.config.name,
            display_path(&job.lock_path),
            job.previous.as_ref(),
            &image.lock,
            before != after,
        ));
        if before == after {
            continue;
        }
        changed += 1;
        diffs.push_str(&unified_diff(&job.lock_path, &before, &after));
        writes.push((job.lock_path.clone(), after));
    }
    // What each lock pins, and what it does not, whatever the mode.
    for (job, image) in jobs.iter().zip(&frozen) {
        if let Ok(c) = image_coverage(
            &job.config,
            &display_path(&job.config.file),
            Some(&image.lock),
        ) {
            printer.status(&format!("image `{}`: coverage: {}", image.name, c.line()));
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    summary.changed = changed;
    let report = match format {
        OutputFormat::Json => summary.json(),
        OutputFormat::Markdown => summary.markdown(),
        _ => diffs,
    };
    if args.check {
        if format != OutputFormat::Human {
            printer.data(&report)?;
        }
        if changed > 0 {
            if format == OutputFormat::Human {
                printer.data(&report)?;
            }
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
        printer.data(&report)?;
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
    // Temporary files an earlier, killed run left beside the locks.
    let dirs: std::collections::BTreeSet<&Path> = writes
        .iter()
        .filter_map(|(path, _)| path.parent())
        .collect();
    for dir in dirs {
        for name in crate::lock::remove_stale_temp_files(dir) {
            printer.status(&format!(
                "removed `{name}`, left by an earlier run that was stopped while writing"
            ));
        }
    }
    // Every lock is written before any is replaced: a failure leaves the
    // old locks and no temporary file.
    let files: Vec<(&Path, &[u8])> = writes
        .iter()
        .map(|(path, text)| (path.as_path(), text.as_bytes()))
        .collect();
    write_all_atomic(&files).map_err(|e| anyhow::anyhow!("cannot write the locks: {e}"))?;
    for (path, _) in &writes {
        printer.status(&format!("wrote {}", display_path(path)));
    }
    if format != OutputFormat::Human {
        printer.data(&report)?;
    }
    printer.status(&format!(
        "{} images locked, {changed} lockfiles changed ({elapsed:.2}s)",
        jobs.len()
    ));
    Ok(Outcome::Clean)
}

/// What freeze resolved for the selected images, before anything is written.
pub(super) struct Resolved {
    pub jobs: Vec<crate::freeze::ImageJob>,
    pub frozen: Vec<Frozen>,
    pub started: Instant,
    /// The configuration's `[rewrite]` (for `update`).
    pub rewrite: crate::config::RewriteConfig,
}

/// Resolves the selected images as `args` asks (warnings printed, an
/// `--update` name no image has refused); writes nothing.
pub(super) fn resolve(
    opts: &Opts,
    args: &FreezeArgs,
    printer: &Printer,
) -> anyhow::Result<Resolved> {
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
        follow_tags: args.update_base && args.follow_tags,
        offline: opts.global.offline,
        exclude_newer: args.exclude_newer.clone(),
        ignore_locked: false,
        no_build: args.no_build,
    };
    // In-repo parents are frozen with their children, never read from the
    // registry.
    let images = with_parents(&config, images);
    let jobs = prepare(&config, &images)?;
    for job in &jobs {
        if let Some(e) = &job.unreadable {
            // freeze makes the lock afresh; nothing of the old one is used.
            printer.warn(&format!(
                "{e}\nthe lock cannot be read; `imagelock freeze` replaces it with a new one"
            ));
        }
    }
    let limits = Limits {
        images: args.jobs.map_or(Limits::default().images, usize::from),
        ..Limits::default()
    };
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let frozen: Vec<Frozen> = runtime.block_on(async {
        let mut session = session(&config, options.offline, limits, opts.global.timeout())?;
        session.no_build = options.no_build;
        let bars = Arc::new(Bars::new(jobs.len(), printer));
        if bars.multi.is_some() || bars.plain {
            session.conda_progress = Some(bars.clone());
        }
        if bars.plain {
            session.pypi_progress = Some(bars.clone());
        }
        let frozen = freeze_all(&config, &session, &jobs, &options, limits, bars.as_ref()).await;
        bars.clear();
        if printer.verbose() > 0 {
            printer.status(&request_line(&session));
            for note in session.conda_solves.dropped() {
                printer.status(&note);
            }
        }
        anyhow::Ok(frozen?)
    })?;
    for image in &frozen {
        for warning in &image.warnings {
            printer.warn(&format!("image `{}`: {warning}", image.name));
        }
    }

    // `--update NAME` for a package no lock and no step has is a typo, not
    // a request to be silently ignored.
    let unknown = unknown_updates(&options.update, &jobs, &frozen);
    if !unknown.is_empty() {
        anyhow::bail!(
            "`--update {}`: no lock and no install step of the {} selected has {}\nhint: check the spelling; `--update` takes the package names the locks list",
            unknown.join(","),
            if jobs.len() == 1 { "image" } else { "images" },
            if unknown.len() == 1 {
                "this package"
            } else {
                "these packages"
            }
        );
    }
    Ok(Resolved {
        jobs,
        frozen,
        started,
        rewrite: config.rewrite.clone(),
    })
}

/// What the run asked of the network (`-v`): every request sent, the
/// registry's by kind, retries and answers that a cached copy was current.
pub(super) fn request_line(session: &crate::resolve::Session) -> String {
    let http = session.stats();
    let r = session.registry.request_counts();
    format!(
        "requests: {} (registry: {} manifest, {} blob, {} token, {} ping; {} retried, {} not modified)",
        http.requests, r.manifests, r.blobs, r.tokens, r.pings, http.retries, http.not_modified
    )
}

/// Progress on stderr: on a terminal, one bar for the run and one line per
/// image in flight saying what it does; elsewhere (CI logs), with `-v`,
/// plain lines naming what is resolved, fetched and built, with counts.
struct Bars {
    multi: Option<MultiProgress>,
    total: Option<ProgressBar>,
    images: Mutex<BTreeMap<String, ProgressBar>>,
    /// Repodata downloads in flight, by the index handed out for each.
    downloads: Mutex<Vec<Option<ProgressBar>>>,
    /// Plain lines instead of bars.
    plain: bool,
    len: usize,
    started: AtomicUsize,
    finished: AtomicUsize,
}

impl Bars {
    fn new(len: usize, printer: &Printer) -> Bars {
        let mut bars = Bars {
            multi: None,
            total: None,
            images: Mutex::default(),
            downloads: Mutex::default(),
            plain: false,
            len,
            started: AtomicUsize::new(0),
            finished: AtomicUsize::new(0),
        };
        if printer.quiet() {
            return bars;
        }
        if !std::io::stderr().is_terminal() {
            bars.plain = printer.verbose() > 0;
            return bars;
        }
        let multi = MultiProgress::new();
        let total = multi.add(ProgressBar::new(len as u64));
        total.set_style(
            ProgressStyle::with_template("{spinner} freezing [{pos}/{len}] {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        total.enable_steady_tick(Duration::from_millis(120));
        bars.multi = Some(multi);
        bars.total = Some(total);
        bars
    }

    /// One plain progress line (only in plain mode).
    fn line(&self, text: &str) {
        if self.plain {
            let text = crate::config::redact::redact_text(text);
            eprintln!("{}", crate::diagnostic::escape_control(&text));
        }
    }

    fn clear(&self) {
        if let Some(total) = &self.total {
            total.finish_and_clear();
        }
        if let Some(multi) = &self.multi {
            let _ = multi.clear();
        }
    }

    fn images(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, ProgressBar>> {
        self.images
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Bars {
    fn downloads(&self) -> std::sync::MutexGuard<'_, Vec<Option<ProgressBar>>> {
        self.downloads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One line per repodata download: channel and subdir, bytes and rate.
impl CondaProgress for Bars {
    fn download_started(&self, url: &str) -> usize {
        let mut downloads = self.downloads();
        let index = downloads.len();
        let bar = self.multi.as_ref().map(|multi| {
            let bar = multi.add(ProgressBar::no_length());
            bar.set_style(
                ProgressStyle::with_template(
                    "  {spinner} {prefix} {bytes}/{total_bytes} ({bytes_per_sec})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            // `…/conda-forge/linux-64/repodata.json.zst` → `conda-forge/linux-64`.
            let parts: Vec<&str> = url
                .trim_end_matches('/')
                .rsplit('/')
                .skip(1)
                .take(2)
                .collect();
            bar.set_prefix(parts.into_iter().rev().collect::<Vec<_>>().join("/"));
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        downloads.push(bar);
        index
    }

    fn download_progress(&self, index: usize, bytes: u64, total: Option<u64>) {
        if let Some(Some(bar)) = self.downloads().get(index) {
            if let Some(total) = total {
                bar.set_length(total);
            }
            bar.set_position(bytes);
        }
    }

    fn repodata_read(&self, channel: &str, subdir: &str, records: usize) {
        self.line(&format!(
            "fetched repodata {channel}/{subdir} ({records} records)"
        ));
    }

    fn download_finished(&self, index: usize) {
        if let Some(slot) = self.downloads().get_mut(index)
            && let Some(bar) = slot.take()
        {
            bar.finish_and_clear();
            if let Some(multi) = &self.multi {
                multi.remove(&bar);
            }
        }
    }
}

impl PypiProgress for Bars {
    fn building_sdist(&self, filename: &str) {
        self.line(&format!("building sdist {filename} for its metadata"));
    }

    fn built_sdist(&self, filename: &str, elapsed: Duration, ok: bool) {
        let how = if ok { "built" } else { "failed to build" };
        self.line(&format!(
            "{how} sdist {filename} in {:.2} s",
            elapsed.as_secs_f64()
        ));
    }

    fn building_with_pip(&self, filename: &str, why: &str) {
        self.line(&format!(
            "building sdist {filename}: pip makes its build environment ({why})"
        ));
    }

    fn dropped_cached_page(&self, url: &str, why: &str) {
        self.line(&format!(
            "the cached page {} no longer reads ({why}); fetched again",
            crate::config::redact::redact_url(url)
        ));
    }
}

impl FreezeProgress for Bars {
    fn started(&self, image: &str) {
        let n = self.started.fetch_add(1, Ordering::Relaxed) + 1;
        self.line(&format!("resolving {n} of {} images: {image}", self.len));
        let Some(multi) = &self.multi else { return };
        let bar = multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("  {spinner} {prefix}: {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(image.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        self.images().insert(image.to_string(), bar);
    }

    fn working(&self, image: &str, what: &str) {
        self.line(&format!("{image}: {what}"));
        if let Some(bar) = self.images().get(image) {
            bar.set_message(what.to_string());
        }
    }

    fn kept(&self, image: &str) {
        let n = self.finished.fetch_add(1, Ordering::Relaxed) + 1;
        self.line(&format!(
            "{image}: lock current, kept ({n} of {} images done)",
            self.len
        ));
    }

    fn finished(&self, image: &str, ok: bool) {
        let n = self.finished.fetch_add(1, Ordering::Relaxed) + 1;
        self.line(&format!(
            "{image}: {} ({n} of {} images done)",
            if ok { "resolved" } else { "failed" },
            self.len
        ));
        if let Some(bar) = self.images().remove(image) {
            bar.finish_and_clear();
            if let Some(multi) = &self.multi {
                multi.remove(&bar);
            }
        }
        if let Some(total) = &self.total {
            total.inc(1);
        }
    }
}

/// The `--update` names that no previous or new lock of `jobs` has (pip
/// names compared as PEP 503 normalizes them, conda and Debian names as written).
fn unknown_updates(
    update: &[String],
    jobs: &[crate::freeze::ImageJob],
    frozen: &[Frozen],
) -> Vec<String> {
    let normal = |n: &str| n.to_ascii_lowercase().replace(['_', '.'], "-");
    let mut known = std::collections::BTreeSet::new();
    let locks = jobs
        .iter()
        .filter_map(|j| j.previous.as_ref())
        .chain(frozen.iter().map(|f| &f.lock));
    for lock in locks {
        for step in &lock.steps {
            known.extend(step.pypi.iter().map(|p| normal(p.name.as_str())));
            known.extend(step.conda.iter().map(|p| normal(p.name.as_str())));
            known.extend(step.apt.iter().map(|p| normal(p.name.as_str())));
        }
    }
    update
        .iter()
        .filter(|u| !known.contains(&normal(u)))
        .cloned()
        .collect()
}

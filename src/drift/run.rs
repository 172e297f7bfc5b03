//! One drift run: a fresh, read-only freeze of every image compared with
//! its lock on disk, and the services asked about each locked file.

use crate::config::{Config, ImageConfig};
use crate::freeze::FreezeError;
use crate::freeze::steps::{Limits, session};
use crate::freeze::{
    FreezeOptions, Frozen, ImageJob, freeze_image, lock_skeleton, platforms_of, prepare,
    resolve_bases,
};
use crate::lock::LockedImage;
use crate::resolve::Session;
use crate::verify::shown;

use super::{
    DriftError, ImageReport, Report, annotate_newest, base_hash_findings, channel_findings,
    compare, date_moved_bases, index_findings, sort_findings, unresolvable,
};

/// What `imagelock drift` was asked to do.
#[derive(Clone, Debug, Default)]
pub struct DriftOptions {
    /// Use only caches.
    pub offline: bool,
    /// Resolve as of this date (RFC 3339 or `YYYY-MM-DD`).
    pub as_of: Option<String>,
    /// The network timeout (`--timeout`, `[network] timeout`).
    pub timeout: Option<std::time::Duration>,
}

/// Where a drift run is, for a progress display.
pub trait DriftProgress {
    /// `image` is being checked.
    fn checking(&self, _image: &str) {}
    /// The image being checked is done.
    fn checked(&self) {}
}

/// Progress that goes nowhere.
pub struct NoProgress;

impl DriftProgress for NoProgress {}

/// A drift run's report, and what the caller should warn about.
#[derive(Clone, Debug)]
pub struct Drift {
    pub report: Report,
    /// Images that have no lock yet, and similar.
    pub warnings: Vec<String>,
    /// What the run did with its caches, for `-v`: kept conda answers used,
    /// and entries dropped as damaged.
    pub notes: Vec<String>,
}

/// Re-resolves `images` read-only and reports what moved upstream since
/// their locks were made. Nothing is written.
///
/// Something upstream that makes an image unresolvable now
/// ([`crate::freeze::FreezeError::is_upstream`]) is an `unresolvable` finding; anything
/// else (bad input, an unreachable service) is an error.
pub fn run(
    config: &Config,
    images: &[ImageConfig],
    options: &DriftOptions,
    progress: &dyn DriftProgress,
) -> Result<Drift, DriftError> {
    if let Some(date) = &options.as_of {
        // Checked first so a bad date is trouble, not an unresolvable image.
        if crate::solve::conda::parse_exclude_newer(date).is_err() {
            return Err(DriftError::AsOf(date.clone()));
        }
    }
    let freeze = FreezeOptions {
        no_build: false,
        update_base: true,
        follow_tags: true,
        offline: options.offline,
        exclude_newer: options.as_of.clone(),
        ignore_locked: true,
        ..FreezeOptions::default()
    };
    let mut jobs = prepare(config, images)?;
    // Drift compares with the lock: one that cannot be read is trouble.
    if let Some(e) = jobs.iter_mut().find_map(|j| j.unreadable.take()) {
        return Err(FreezeError::from(e).into());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(DriftError::Runtime)?;
    runtime.block_on(async {
        let resolvers = session(config, freeze.offline, Limits::default(), options.timeout)?;
        let mut frozen: Vec<Frozen> = Vec::new();
        let mut reports = Vec::new();
        let mut warnings = Vec::new();
        for job in &jobs {
            let start = std::time::Instant::now();
            progress.checking(&job.config.name);
            // Nothing is written: the fresh lock is only compared.
            let (image, failure) =
                match freeze_image(config, &resolvers, job, &freeze, &frozen).await {
                    Ok(image) => (Some(image), None),
                    Err(err) if err.is_upstream() => (None, Some(err)),
                    Err(err) => return Err(err.into()),
                };
            let findings = match &job.previous {
                Some(locked) => {
                    let fresh = match &image {
                        Some(image) => image.lock.clone(),
                        None => bases_only(config, &resolvers, job, &freeze, &frozen).await?,
                    };
                    let mut findings = compare(job, locked, &fresh);
                    if let Some(image) = &image {
                        findings.extend(super::apt_gone_findings(locked, &image.apt_gone));
                        let (rpm, notes) = super::rpm_findings(locked, &image.rpm_drift);
                        findings.extend(rpm);
                        warnings.extend(
                            notes
                                .into_iter()
                                .map(|n| format!("image `{}`: {n}", job.config.name)),
                        );
                        let (apk, notes) = super::apk_findings(locked, &image.apk_drift);
                        findings.extend(apk);
                        warnings.extend(
                            notes
                                .into_iter()
                                .map(|n| format!("image `{}`: {n}", job.config.name)),
                        );
                    }
                    findings.extend(super::parent_findings(config, locked));
                    warnings.extend(super::local_base_notes(locked));
                    if !options.offline {
                        base_hash_findings(&resolvers, locked, &mut findings).await?;
                    }
                    date_moved_bases(&resolvers, &locked.image.platforms, &mut findings).await;
                    if let Some(err) = &failure {
                        findings.push(unresolvable(&err.to_string()));
                    }
                    if !options.offline {
                        findings.extend(super::download_findings(&resolvers, locked).await);
                        findings
                            .extend(super::git_findings(&resolvers, locked, &job.definition).await);
                    }
                    let index = index_findings(config, &resolvers, locked).await?;
                    annotate_newest(&mut findings, &index.newest);
                    findings.extend(index.findings);
                    let known = super::known_channels(&resolvers.channels, &job.definition);
                    findings.extend(channel_findings(config, &resolvers, locked, &known).await?);
                    let advisories =
                        super::advisories::advisories(config, &resolvers, locked).await;
                    findings.extend(advisories.findings);
                    warnings.extend(advisories.warnings);
                    sort_findings(&mut findings);
                    super::locate(&mut findings, job, locked);
                    findings
                }
                None => {
                    if let Some(err) = failure {
                        return Err(err.into());
                    }
                    warnings.push(format!(
                        "image `{}` has no lock yet; run `imagelock freeze`",
                        job.config.name
                    ));
                    Vec::new()
                }
            };
            let mut report = ImageReport::new(
                &job.config.name,
                shown(&job.config.file),
                shown(&job.lock_path),
            );
            report.findings = findings;
            report.elapsed = Some(start.elapsed());
            // The definition was read once already; reading it again can
            // only fail if it changed meanwhile, and then no line is shown.
            report.coverage = crate::lock::coverage::image_coverage(
                &job.config,
                &shown(&job.config.file),
                job.previous.as_ref(),
            )
            .ok();
            reports.push(report);
            progress.checked();
            if let Some(image) = image {
                frozen.push(image);
            }
        }
        reports.sort_by(|a, b| a.image.cmp(&b.image));
        let mut notes = resolvers.conda_solves.dropped();
        notes.push(format!(
            "conda solves answered from the cache: {}",
            resolvers.conda_solves.hits()
        ));
        Ok(Drift {
            report: Report { images: reports },
            warnings,
            notes,
        })
    })
}

/// The bases alone, when the image no longer resolves: they still tell
/// whether a tag moved.
async fn bases_only(
    config: &Config,
    resolvers: &Session,
    job: &ImageJob,
    options: &FreezeOptions,
    frozen: &[Frozen],
) -> Result<LockedImage, FreezeError> {
    let platforms = platforms_of(job, options);
    let repo: Vec<_> = frozen
        .iter()
        .map(|f| (f.name.as_str(), f.reference.as_deref(), &f.lock))
        .collect();
    let mut lock = lock_skeleton(config, job, &platforms)?;
    // A base that does not resolve either is already in the finding.
    if let Ok(r) = resolve_bases(&resolvers.registry, job, &platforms, options, &repo).await {
        lock.bases = r.bases;
    }
    let wanted: Vec<crate::oci::Platform> =
        platforms.iter().filter_map(|p| p.parse().ok()).collect();
    let offline = options.offline || resolvers.offline();
    if let Ok(agent_bases) =
        crate::freeze::agents::pin_all(config, resolvers, job, &wanted, true, offline).await
    {
        lock.bases.extend(agent_bases);
    }
    Ok(lock)
}

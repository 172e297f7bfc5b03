//! One image: its stages on every platform, steps in build order.

use std::collections::BTreeMap;

use crate::config::Config;
use crate::freeze::bases::{BaseResolution, resolve_bases};
use crate::freeze::local::{LocalPin, local_base, pin_now};
use crate::freeze::platform_key;
use crate::freeze::state::{PlatformState, read_base};
use crate::freeze::steps::{BaseStates, Limits, StepOutcome, StepPlace, resolve_step};
use crate::freeze::{
    FreezeError, FreezeOptions, ImageCause, ImageJob, lock_path_of, lock_skeleton, platforms_of,
};
use crate::lock::{LockBuilder, LockedImage, LockedStep, StepHeader};
use crate::resolve::Session;
use crate::source::dockerfile::{self, platform_build_args};
use crate::source::{BaseTarget, DefinitionKind, InstallStep};

/// An image frozen in this run: its lock and the state of each platform at
/// the end of its build (what images built `FROM` it start from).
#[derive(Clone, Debug)]
pub struct Frozen {
    pub name: String,
    pub reference: Option<String>,
    pub lock: LockedImage,
    pub finals: BTreeMap<String, PlatformState>,
    /// What the lock cannot promise and what could not be read from its
    /// base images, in a fixed order, without repeats.
    pub warnings: Vec<String>,
    /// Debian packages of the previous lock the archives no longer offer.
    pub apt_gone: Vec<crate::freeze::outcome::GoneDeb>,
    /// What the repositories of its dnf steps say about the previous
    /// lock's packages (drift only; see [`crate::freeze::rpm::rpm_step`]).
    pub rpm_drift: Vec<crate::freeze::outcome::RpmDriftAt>,
    /// What the repositories of each apk step say about what the previous
    /// lock installed there (read for `drift` only).
    pub apk_drift: Vec<crate::freeze::outcome::ApkDriftAt>,
}

/// Where a freeze run is, for a progress display. Calls come from
/// concurrent work, so they may interleave between images.
pub trait FreezeProgress: Send + Sync {
    /// `image` waits for nothing any more and starts.
    fn started(&self, _image: &str) {}
    /// `image` is doing `what` (reading a base, resolving a step).
    fn working(&self, _image: &str, _what: &str) {}
    /// `image` finished, well or not.
    fn finished(&self, _image: &str, _ok: bool) {}
    /// `image`'s lock is current and kept as it is, without resolving.
    fn kept(&self, _image: &str) {}
}

/// Progress that goes nowhere.
pub struct NoProgress;

impl FreezeProgress for NoProgress {}

/// Resolves one image. `repository` holds the images of this repository
/// frozen before it.
pub async fn freeze_image(
    config: &Config,
    session: &Session,
    job: &ImageJob,
    options: &FreezeOptions,
    repository: &[Frozen],
) -> Result<Frozen, FreezeError> {
    let bases = BaseStates::new(Limits::default().base_reads);
    freeze_image_reporting(
        config,
        session,
        &bases,
        job,
        options,
        repository,
        &NoProgress,
    )
    .await
}

/// [`freeze_image`], telling `progress` what it does and sharing `bases`
/// (the base images read in this run). Its platforms are
/// resolved concurrently; the result does not depend on which finishes
/// first.
pub async fn freeze_image_reporting(
    config: &Config,
    session: &Session,
    bases: &BaseStates,
    job: &ImageJob,
    options: &FreezeOptions,
    repository: &[Frozen],
    progress: &dyn FreezeProgress,
) -> Result<Frozen, FreezeError> {
    let platforms = platforms_of(job, options);
    let lock = lock_skeleton(config, job, &platforms)?;
    let repo: Vec<(&str, Option<&str>, &LockedImage)> = repository
        .iter()
        .map(|f| (f.name.as_str(), f.reference.as_deref(), &f.lock))
        .collect();
    progress.working(&job.config.name, "pinning bases");
    let base_states = bases;
    let mut bases = resolve_bases(&session.registry, job, &platforms, options, &repo).await?;
    check_pins(config, session, job, options, &bases).await?;
    // Apptainer bases pulled by another agent than `docker`, pinned where
    // they live (platforms were checked by `resolve_bases`).
    let wanted: Vec<crate::oci::Platform> =
        platforms.iter().filter_map(|p| p.parse().ok()).collect();
    let offline = options.offline || session.offline();
    let agent_bases =
        crate::freeze::agents::pin_all(config, session, job, &wanted, options.update_base, offline)
            .await?;
    bases.bases.extend(agent_bases);
    let short_names: Vec<String> = bases
        .names
        .keys()
        .filter_map(|written| short_name_note(&session.registries_conf, written))
        .collect();
    let file = lock_path_of(config, &job.config.file);
    let text = &job.inputs.definition;
    let lines = crate::diagnostic::LineIndex::new(text);
    let (local, local_warnings) = pin_local_bases(job, &file, &platforms).await?;
    for pin in local.values() {
        let locked = pin
            .locked()
            .map_err(|e| FreezeError::image(&job.config.name, ImageCause::Lock(e)))?;
        if !bases.bases.iter().any(|b| b.name == locked.name) {
            bases.bases.push(locked);
        }
    }

    let ctx = ImageContext {
        config,
        session,
        base_states,
        job,
        options,
        repository,
        bases: &bases,
        local: &local,
        file: &file,
        progress,
    };
    // Every platform at once; results (and the first error) in platform
    // order.
    let results =
        futures_util::future::join_all(platforms.iter().map(|p| freeze_platform(&ctx, p))).await;
    // outcomes[(stage, step)] = per platform outcome, in platform order
    let mut outcomes: BTreeMap<(usize, usize), Vec<(String, StepOutcome)>> = BTreeMap::new();
    let mut finals = BTreeMap::new();
    let mut builder = LockBuilder::new(lock);
    builder.warn(short_names);
    builder.warn(local_warnings);
    // What the definition itself leaves uncertain, with its place.
    builder.warn(
        job.definition
            .stages
            .iter()
            .filter(|s| !s.unused)
            .flat_map(|s| &s.warnings)
            .map(|w| format!("{file}:{}: {}", w.line, w.message))
            .collect::<Vec<_>>(),
    );
    // An agent base left unpinned (offline, with no pin to keep) is named.
    for stage in job.definition.stages.iter().filter(|s| !s.unused) {
        let name = crate::freeze::agents::locked_name(config, stage);
        if let (Some((agent, written)), Some(name)) =
            (crate::freeze::agents::agent_base(stage), name)
            && !bases.bases.iter().any(|b| b.name == name)
        {
            let line = lines.line_col(text, stage.base.reference.span.start).line;
            builder.warn([format!(
                "{file}:{line}: `Bootstrap: {}` base `{written}` is not pinned: offline, and the lock has no pin for it",
                agent.name()
            )]);
        }
    }
    for (platform, result) in platforms.iter().zip(results) {
        let done = result?;
        for (key, outcome) in done.outcomes {
            outcomes
                .entry(key)
                .or_default()
                .push((platform.clone(), outcome));
        }
        // What could not be read from the base images.
        builder.warn(done.warnings);
        if let Some(last) = done.last {
            finals.insert(platform.clone(), last);
        }
    }

    let mut apt_gone = Vec::new();
    let mut rpm_drift = Vec::new();
    let mut apk_drift = Vec::new();
    let unlockable =
        |e: crate::lock::LockBuildError| FreezeError::image(&job.config.name, ImageCause::Lock(e));
    builder.bases(bases.bases);
    for stage in &job.definition.stages {
        for (i, step) in stage.steps.iter().enumerate() {
            let Some(per_platform) = outcomes.remove(&(stage.index, i)) else {
                continue;
            };
            let cmd = &step.command;
            let first = &per_platform[0].1;
            let line = lines.line_col(text, cmd.span.start).line;
            let mut locked = LockedStep::header(StepHeader {
                stage: stage.index,
                file: &file,
                line,
                command: &cmd.text,
                manager: cmd.manager.as_str(),
                action: action_name(cmd.action),
                target: first.target.as_deref(),
                requested: &first.requested,
                channels: &first.channels,
                indexes: &first.indexes,
                find_links: &first.find_links,
                // A step is locked when every platform locked it.
                locked: per_platform.iter().all(|(_, o)| o.locked),
                reason: not_locked_reason(&per_platform).as_deref(),
            })
            .map_err(unlockable)?;
            for (platform, outcome) in per_platform {
                for (name, architecture, version) in outcome.apt_gone {
                    apt_gone.push(crate::freeze::outcome::GoneDeb {
                        at: format!("{file}:{line}"),
                        stage: stage.index,
                        line,
                        name,
                        architecture,
                        version,
                        platform: platform.clone(),
                    });
                }
                if outcome.rpm_drift != Default::default() {
                    rpm_drift.push(crate::freeze::outcome::RpmDriftAt {
                        at: format!("{file}:{line}"),
                        stage: stage.index,
                        line,
                        platform: platform.clone(),
                        drift: outcome.rpm_drift,
                    });
                }
                if outcome.apk_drift != Default::default() {
                    apk_drift.push(crate::freeze::outcome::ApkDriftAt {
                        at: format!("{file}:{line}"),
                        stage: stage.index,
                        line,
                        platform: platform.clone(),
                        drift: outcome.apk_drift,
                    });
                }
                builder.warn(outcome.warnings);
                for p in outcome.conda {
                    locked.merge_conda(p);
                }
                for p in outcome.pypi {
                    locked.merge_pypi(p);
                }
                for p in outcome.apt {
                    locked.merge_apt(p);
                }
                for s in outcome.apt_sources {
                    locked.merge_apt_source(s);
                }
                for p in outcome.rpm {
                    locked.merge_rpm(p);
                }
                for r in outcome.rpm_repos {
                    locked.merge_rpm_repo(r);
                }
                for p in outcome.apk {
                    locked.merge_apk(p);
                }
                for r in outcome.apk_repos {
                    locked.merge_apk_repo(r);
                }
            }
            builder.step(locked);
        }
    }
    lock_downloads(session, job, options, &file, &mut builder).await;
    lock_git(session, job, options, &file, text, &mut builder).await;
    let (lock, warnings) = builder.finish();
    // The files the old lock names that were just chosen again: their
    // hashes come from the index and channel now, and must be the locked
    // ones (drift reports these as findings instead).
    if !options.ignore_locked
        && let Some(previous) = &job.previous
        && let Some(m) = crate::freeze::check::artifact_mismatches(previous, &lock)
            .into_iter()
            .next()
    {
        return Err(job.hash_mismatch(m));
    }
    Ok(Frozen {
        name: job.config.name.clone(),
        reference: job.config.reference.clone(),
        lock,
        finals,
        warnings,
        apt_gone,
        rpm_drift,
        apk_drift,
    })
}

/// Fetches each file the definition downloads from a fixed URL and records
/// its sha256 and size. Offline, the previous lock's entry for the same line
/// and URL is kept; a file that cannot be fetched is left unlocked with a
/// warning that names its line.
async fn lock_downloads(
    session: &Session,
    job: &ImageJob,
    options: &FreezeOptions,
    file: &str,
    builder: &mut LockBuilder,
) {
    use crate::lock::LockedDownload;
    use crate::resolve::content::{DOWNLOAD_CAP, fetch_sha256};
    use crate::source::coverage::ContentKind;
    let mut fetched: BTreeMap<String, Result<(String, u64), String>> = BTreeMap::new();
    for stage in job.definition.stages.iter().filter(|s| !s.unused) {
        for c in &stage.content {
            // An `ADD --checksum` is recorded too, so drift keeps checking
            // the URL after `rewrite` added the checksum.
            let (url, written) = match &c.kind {
                ContentKind::AddUrl { url, checksum } => (url, checksum.as_deref()),
                ContentKind::Download { url: Some(url) } => (url, None),
                _ => continue,
            };
            let previous = job.previous.as_ref().and_then(|p| {
                p.stages
                    .iter()
                    .flat_map(|s| &s.downloads)
                    .find(|d| {
                        usize::try_from(d.line).is_ok_and(|l| l == c.line) && d.url.as_str() == url
                    })
                    .map(|d| (d.sha256.as_str().to_string(), d.size))
            });
            let found = if options.offline || session.offline() {
                previous.ok_or_else(|| "offline, and the lock has no entry for it".to_string())
            } else {
                match fetched.get(url) {
                    Some(r) => r.clone(),
                    None => {
                        let r = fetch_sha256(session.http(), url, DOWNLOAD_CAP)
                            .await
                            .map(|f| (f.sha256, f.size))
                            .map_err(|e| e.to_string());
                        fetched.insert(url.clone(), r.clone());
                        r
                    }
                }
            };
            match found {
                Ok((sha256, size)) => {
                    if let Some(w) = written
                        && w.strip_prefix("sha256:") != Some(sha256.as_str())
                    {
                        builder.warn([format!(
                            "{file}:{}: `{}` serves sha256 {sha256}, not the `--checksum={w}` written there: the build will refuse it",
                            c.line, c.text
                        )]);
                    }
                    // A URL the lock cannot hold (one with credentials)
                    // stays unlocked, named at its line.
                    match LockedDownload::new(stage.index, c.line, url, &sha256, size) {
                        Ok(d) => {
                            builder.download(stage.index, d);
                        }
                        Err(e) => {
                            builder.warn([format!(
                                "{file}:{}: `{}` is not locked: {e}",
                                c.line, c.text
                            )]);
                        }
                    }
                }
                Err(why) => {
                    builder.warn([format!(
                        "{file}:{}: `{}` is not locked: cannot fetch it: {why}",
                        c.line, c.text
                    )]);
                }
            }
        }
    }
}

/// Resolves the ref of each git repository the definition clones or adds
/// (`git clone [--branch B] URL`, `ADD URL#ref`) to the commit it names
/// now, and records URL, ref and commit. A source already pinned to a
/// full commit keeps the previous lock's entry for it (so drift still
/// watches the ref it was pinned from). Offline, the previous entry for
/// the same line, URL and ref is kept; a repository that cannot be read
/// is recorded without a commit, with why, and named in a warning.
async fn lock_git(
    session: &Session,
    job: &ImageJob,
    options: &FreezeOptions,
    file: &str,
    text: &str,
    builder: &mut LockBuilder,
) {
    use crate::config::redact::redact_url;
    use crate::lock::LockedGit;
    use crate::resolve::git::{Refs, ls_remote};
    use crate::source::coverage::{ContentKind, clone_command, git_url};
    let mut read: BTreeMap<String, Result<Refs, String>> = BTreeMap::new();
    for stage in job.definition.stages.iter().filter(|s| !s.unused) {
        for c in &stage.content {
            let (url, reference, pinned) = match &c.kind {
                ContentKind::GitClone {
                    url: Some(url),
                    commit,
                    checkout: None,
                } => {
                    let written = text.get(c.span.start..c.span.end).unwrap_or("");
                    let branch = clone_command(written).and_then(|a| a.branch);
                    (url.clone(), branch, commit.clone())
                }
                ContentKind::AddGit { url, commit } => {
                    let g = git_url(url);
                    (g.repository, g.reference, commit.clone())
                }
                _ => continue,
            };
            let shown = redact_url(&url);
            let command = crate::config::redact::redact_text(&c.text);
            let previous = job.previous.as_ref().and_then(|p| {
                p.stages.iter().flat_map(|s| &s.git).find(|g| {
                    usize::try_from(g.line).is_ok_and(|l| l == c.line) && g.url.as_str() == shown
                })
            });
            if let Some(commit) = pinned {
                if let Some(g) =
                    previous.filter(|g| g.commit.as_ref().is_some_and(|p| p.as_str() == commit))
                {
                    builder.git(stage.index, g.clone());
                }
                continue;
            }
            let reference_shown = reference.as_deref().unwrap_or("HEAD");
            let found: Result<String, String> = if options.offline || session.offline() {
                match previous.filter(|g| g.reference.as_str() == reference_shown) {
                    Some(g) if g.commit.is_some() => {
                        builder.git(stage.index, g.clone());
                        continue;
                    }
                    _ => Err("offline, and the lock has no commit for it".to_string()),
                }
            } else {
                let refs = match read.get(&url) {
                    Some(r) => r.clone(),
                    None => {
                        let r = ls_remote(session.http(), &url)
                            .await
                            .map_err(|e| e.to_string());
                        read.insert(url.clone(), r.clone());
                        r
                    }
                };
                refs.and_then(|refs| {
                    refs.resolve(reference.as_deref())
                        .map(str::to_string)
                        .ok_or_else(|| match &reference {
                            Some(r) => format!("`{shown}` has no branch or tag `{r}`"),
                            None => format!("`{shown}` advertises no HEAD (an empty repository?)"),
                        })
                })
            };
            if let Err(why) = &found {
                builder.warn([format!(
                    "{file}:{}: `{}` is not locked: cannot learn the commit of `{reference_shown}`: {why}",
                    c.line, command
                )]);
            }
            match LockedGit::new(
                stage.index,
                c.line,
                &url,
                reference_shown,
                found.as_deref().map_err(String::as_str),
            ) {
                Ok(g) => {
                    builder.git(stage.index, g);
                }
                Err(e) => {
                    builder.warn([format!(
                        "{file}:{}: `{}` is not locked: {e}",
                        c.line, command
                    )]);
                }
            }
        }
    }
}

/// Checks every registry base against what its registry serves: the
/// manifests fetched in this run are kept (content-addressed), and a pin
/// they do not vouch for (one kept from the lock, with a cold cache) is
/// asked for by its digest. A digest the registry does not have, or serves
/// differently, is refused; offline, a pin that cannot be checked is kept.
async fn check_pins(
    config: &Config,
    session: &Session,
    job: &ImageJob,
    options: &FreezeOptions,
    bases: &BaseResolution,
) -> Result<(), FreezeError> {
    use crate::freeze::check::{base_mismatches, keep_manifests, vouched};
    let cache = &config.cache_dir;
    for base in bases
        .bases
        .iter()
        .filter(|b| b.built_from.is_none() && !b.is_local())
    {
        keep_manifests(cache, &session.registry, base);
        if options.offline || vouched(cache, base) {
            continue;
        }
        let found = base_mismatches(&session.registry, base)
            .await
            .map_err(|e| FreezeError::image(&job.config.name, ImageCause::Registry(e)))?;
        if let Some(m) = found.into_iter().next() {
            return Err(job.hash_mismatch(m));
        }
        keep_manifests(cache, &session.registry, base);
    }
    Ok(())
}

/// What every platform of one image shares.
struct ImageContext<'a> {
    config: &'a Config,
    session: &'a Session,
    base_states: &'a BaseStates,
    job: &'a ImageJob,
    options: &'a FreezeOptions,
    repository: &'a [Frozen],
    bases: &'a BaseResolution,
    /// The bases read on this machine, by stage.
    local: &'a BTreeMap<usize, LocalPin>,
    file: &'a str,
    progress: &'a dyn FreezeProgress,
}

/// One platform of an image, resolved.
struct PlatformDone {
    outcomes: BTreeMap<(usize, usize), StepOutcome>,
    /// The state after the last stage.
    last: Option<PlatformState>,
    warnings: Vec<String>,
}

/// Resolves every stage of an image on one platform: the registry bases of
/// all stages are read at once, then the steps run in build order.
async fn freeze_platform(
    ctx: &ImageContext<'_>,
    platform: &str,
) -> Result<PlatformDone, FreezeError> {
    let job = ctx.job;
    // The registry bases of the stages, read concurrently.
    let mut wanted: Vec<String> = Vec::new();
    for stage in &job.definition.stages {
        if let BaseTarget::Image { .. } = &stage.base.target {
            let written = stage.base.reference.value.clone().unwrap_or_default();
            let name = ctx.bases.names.get(&written).cloned().unwrap_or(written);
            if !wanted.contains(&name) {
                wanted.push(name);
            }
        }
    }
    let read =
        futures_util::future::join_all(wanted.iter().map(|name| base_state(ctx, name, platform)))
            .await;
    let mut base_states: BTreeMap<String, PlatformState> = BTreeMap::new();
    for (name, state) in wanted.into_iter().zip(read) {
        base_states.insert(name, state?);
    }

    let mut outcomes = BTreeMap::new();
    let mut warnings = Vec::new();
    let per_platform = platform_steps(job, ctx.file, platform)?;
    if let Some(p) = &per_platform {
        warnings.extend(p.warnings.iter().cloned());
    }
    let mut stage_states: Vec<PlatformState> = Vec::new();
    for stage in &job.definition.stages {
        let mut state = match &stage.base.target {
            BaseTarget::Stage { index } => stage_states.get(*index).cloned().unwrap_or_default(),
            BaseTarget::Other { .. } if ctx.local.contains_key(&stage.index) => {
                let pin = &ctx.local[&stage.index];
                local_state(ctx, pin, platform).await?
            }
            BaseTarget::Other { .. } if remote_pin(ctx, stage).is_some() => {
                let base = remote_pin(ctx, stage).expect("checked just above");
                let state = agent_state(ctx, stage, base, platform).await?;
                for w in &state.warnings {
                    if !warnings.contains(w) {
                        warnings.push(w.clone());
                    }
                }
                state
            }
            BaseTarget::Other { agent } => PlatformState {
                platform: platform.to_string(),
                base_unknown: Some(crate::source::coverage::agent_not_locked(
                    agent,
                    stage
                        .base
                        .reference
                        .value
                        .as_deref()
                        .unwrap_or(&stage.base.reference.written),
                )),
                ..PlatformState::default()
            },
            BaseTarget::Scratch => PlatformState {
                platform: platform.to_string(),
                ..PlatformState::default()
            },
            BaseTarget::Image { .. } => {
                let written = stage.base.reference.value.clone().unwrap_or_default();
                let name = ctx.bases.names.get(&written).cloned().unwrap_or(written);
                let state = base_states.get(&name).cloned().unwrap_or_default();
                for w in &state.warnings {
                    if !warnings.contains(w) {
                        warnings.push(w.clone());
                    }
                }
                state
            }
        };
        state.platform = platform.to_string();
        let steps: Vec<(usize, &InstallStep)> = match &per_platform {
            Some(p) => p
                .steps
                .iter()
                .filter(|(s, _, _)| *s == stage.index)
                .map(|(_, i, step)| (*i, step))
                .collect(),
            None => stage.steps.iter().enumerate().collect(),
        };
        // Sources and keys the stage's commands and COPYs add, applied
        // before the steps that follow them.
        let mut apt_from = 0;
        for (i, step) in steps {
            let at = step.command.span.start;
            crate::freeze::apt::apply_apt_files(
                ctx.session,
                job,
                ctx.file,
                stage,
                apt_from..at,
                &mut state,
            )
            .await;
            apt_from = apt_from.max(at);
            let place = StepPlace {
                image: &job.config.name,
                file: ctx.file.to_string(),
                line: step.line,
                stage: stage.index,
                step: i,
            };
            ctx.progress.working(
                &job.config.name,
                &format!("{platform}: {}:{}", ctx.file, step.line),
            );
            let outcome = resolve_step(
                ctx.config,
                ctx.session,
                job,
                &place,
                step,
                &mut state,
                ctx.options,
            )
            .await?;
            outcomes.insert((stage.index, i), outcome);
        }
        crate::freeze::apt::apply_apt_files(
            ctx.session,
            job,
            ctx.file,
            stage,
            apt_from..usize::MAX,
            &mut state,
        )
        .await;
        stage_states.push(state);
    }
    Ok(PlatformDone {
        outcomes,
        last: stage_states.pop(),
        warnings,
    })
}

/// A Dockerfile's steps as the build for one platform runs them.
struct PlatformSteps {
    /// (stage, index of the step in the definition as read for no
    /// particular platform, the step as read for this platform).
    steps: Vec<(usize, usize, InstallStep)>,
    /// Steps of this platform that match none read for no platform.
    warnings: Vec<String>,
}

/// When steps read `TARGETARCH`, `$(uname -m)` and the like, the Dockerfile
/// read again with the build arguments BuildKit sets for `platform`: a
/// condition on them is decided and a value built from them is known, so
/// each platform locks what its own build installs. `None` when no step
/// depends on the platform (or the file is not a Dockerfile).
///
/// Steps are matched to those of the definition read for no platform by
/// their place in the file; one that runs on no locked platform gets no
/// outcome (the lock keeps no packages for it).
fn platform_steps(
    job: &ImageJob,
    file: &str,
    platform: &str,
) -> Result<Option<PlatformSteps>, FreezeError> {
    let def = &job.definition;
    if def.kind != DefinitionKind::Dockerfile
        || !def
            .stages
            .iter()
            .flat_map(|s| &s.steps)
            .any(|s| !s.platform_args.is_empty())
    {
        return Ok(None);
    }
    let mut args = platform_build_args(platform);
    for (k, v) in &job.config.build_args {
        args.insert(k.clone(), v.clone());
    }
    let read = dockerfile::parse_with(&def.path, &job.inputs.definition, &args, &def.wrappers)
        .map_err(|e| FreezeError::Source(e.into()))?;
    let mut out = PlatformSteps {
        steps: Vec::new(),
        warnings: Vec::new(),
    };
    for (stage, mine) in def.stages.iter().zip(read.stages) {
        // The k-th step at a place matches the k-th step read at that place.
        let mut taken = vec![false; stage.steps.len()];
        for step in mine.steps {
            let found = stage.steps.iter().enumerate().position(|(i, s)| {
                !taken[i]
                    && s.command.span.start == step.command.span.start
                    && s.command.manager == step.command.manager
            });
            match found {
                Some(i) => {
                    taken[i] = true;
                    out.steps.push((stage.index, i, step));
                }
                None => out.warnings.push(format!(
                    "{file}:{}: `{}` runs on {platform} only as read for that platform, and is not locked",
                    step.line, step.command.text
                )),
            }
        }
    }
    Ok(Some(out))
}

/// The state a stage starts from when it builds `FROM` image `name`: the
/// final state of a repository image frozen earlier, or what the registry
/// image holds (cached by the platform manifest the lock pins, and read
/// once per run however many images and platforms want it).
async fn base_state(
    ctx: &ImageContext<'_>,
    name: &str,
    platform: &str,
) -> Result<PlatformState, FreezeError> {
    let job = ctx.job;
    let base = ctx.bases.bases.iter().find(|b| b.name == name);
    if let Some(parent) = base.and_then(|b| b.built_from.clone()) {
        return ctx
            .repository
            .iter()
            .find(|f| f.name == parent)
            .and_then(|f| f.finals.get(platform))
            .cloned()
            .ok_or_else(|| {
                FreezeError::image(
                    &job.config.name,
                    ImageCause::ParentNotLocked {
                        parent: parent.to_string(),
                        platform: platform.to_string(),
                    },
                )
            });
    }
    // The manifest the lock pins for this platform.
    let digest = base.and_then(|b| {
        b.platforms
            .iter()
            .find(|p| platform_key(&p.platform.to_string()) == platform_key(platform))
            .map(|p| p.digest.to_string())
    });
    let key = (
        name.to_string(),
        platform_key(platform),
        digest.clone().unwrap_or_default(),
    );
    let cell = ctx.base_states.cell(key);
    let state = cell
        .get_or_try_init(|| async {
            let config = ctx.config;
            if let Some(state) = digest
                .as_deref()
                .and_then(|d| PlatformState::load_cached(&config.cache_dir, d, platform))
            {
                return Ok(state);
            }
            ctx.progress
                .working(&job.config.name, &format!("{platform}: reading {name}"));
            let _permit = ctx.base_states.read_permit().await;
            let (config2, name2, platform2, digest2) = (
                config.clone(),
                name.to_string(),
                platform.to_string(),
                digest.clone(),
            );
            let (registry, handle) = (
                ctx.session.registry.clone(),
                tokio::runtime::Handle::current(),
            );
            let (catalogue, env) = tokio::task::spawn_blocking(move || {
                read_base(
                    &config2,
                    &name2,
                    &platform2,
                    digest2.as_deref(),
                    registry,
                    handle,
                )
            })
            .await
            .map_err(|e| FreezeError::image(&job.config.name, ImageCause::Internal(e.to_string())))?
            .map_err(|source| {
                FreezeError::image(
                    &job.config.name,
                    ImageCause::BaseRead {
                        base: name.to_string(),
                        platform: platform.to_string(),
                        source,
                    },
                )
            })?;
            let read = catalogue
                .image
                .manifest_digest
                .as_ref()
                .map(ToString::to_string);
            if let (Some(locked), Some(read)) = (&digest, &read)
                && locked != read
            {
                return Err(FreezeError::image(
                    &job.config.name,
                    ImageCause::PinMoved {
                        base: name.to_string(),
                        platform: platform.to_string(),
                        locked: locked.clone(),
                        now: read.clone(),
                    },
                ));
            }
            let state = PlatformState::from_catalogue(platform, &catalogue, &env);
            if let Some(d) = &digest {
                state.store_cached(&config.cache_dir, d);
            }
            Ok(state)
        })
        .await?;
    let mut state = state.clone();
    state.platform = platform.to_string();
    Ok(state)
}

/// Pins the base of every stage bootstrapped from this machine
/// (`docker-daemon`, archives, layouts, `localimage`), as it is now. One
/// that cannot be read stays unlocked, with a warning at its line.
async fn pin_local_bases(
    job: &ImageJob,
    file: &str,
    platforms: &[String],
) -> Result<(BTreeMap<usize, LocalPin>, Vec<String>), FreezeError> {
    let text = &job.inputs.definition;
    let lines = crate::diagnostic::LineIndex::new(text);
    let platform: crate::oci::Platform = match platforms.first() {
        Some(p) => p.parse().map_err(|source| {
            FreezeError::image(
                &job.config.name,
                ImageCause::Platform {
                    platform: p.clone(),
                    source,
                },
            )
        })?,
        None => crate::oci::Platform::linux_amd64(),
    };
    let wanted: Vec<(usize, usize, crate::source::agents::LocalAgent, String)> = job
        .definition
        .stages
        .iter()
        .filter(|s| !s.unused)
        .filter_map(|s| {
            let (agent, from) = local_base(s)?;
            let line = lines.line_col(text, s.base.reference.span.start).line;
            Some((s.index, line, agent, from))
        })
        .collect();
    if wanted.is_empty() {
        return Ok((BTreeMap::new(), Vec::new()));
    }
    let context = job.config.context.clone();
    let file = file.to_string();
    tokio::task::spawn_blocking(move || {
        let mut pins = BTreeMap::new();
        let mut warnings = Vec::new();
        for (stage, line, agent, from) in wanted {
            match pin_now(agent, &from, &context, &platform) {
                Ok(pin) => {
                    pins.insert(stage, pin);
                }
                Err(why) => warnings.push(format!(
                    "{file}:{line}: base `{from}` (`Bootstrap: {}`) is not locked: cannot read it: {why}",
                    agent.name()
                )),
            }
        }
        (pins, warnings)
    })
    .await
    .map_err(|e| FreezeError::image(&job.config.name, ImageCause::Internal(e.to_string())))
}

/// The state a stage starts from when its base is read on this machine,
/// read once per run and platform.
async fn local_state(
    ctx: &ImageContext<'_>,
    pin: &LocalPin,
    platform: &str,
) -> Result<PlatformState, FreezeError> {
    let job = ctx.job;
    let name = pin.name();
    let key = (name.clone(), platform_key(platform), pin.digest.to_string());
    let cell = ctx.base_states.cell(key);
    let state = cell
        .get_or_try_init(|| async {
            ctx.progress
                .working(&job.config.name, &format!("{platform}: reading {name}"));
            let _permit = ctx.base_states.read_permit().await;
            let parsed: crate::oci::Platform = platform.parse().map_err(|source| {
                FreezeError::image(
                    &job.config.name,
                    ImageCause::Platform {
                        platform: platform.to_string(),
                        source,
                    },
                )
            })?;
            let options = crate::image::ReadOptions {
                cache_dir: Some(ctx.config.cache_dir.join("layers")),
                ..crate::image::ReadOptions::default()
            }
            .with_limits(&ctx.config.limits);
            let pin2 = pin.clone();
            let (catalogue, env) =
                tokio::task::spawn_blocking(move || pin2.read(&parsed, &options))
                    .await
                    .map_err(|e| {
                        FreezeError::image(&job.config.name, ImageCause::Internal(e.to_string()))
                    })?
                    .map_err(|e| {
                        FreezeError::image(
                            &job.config.name,
                            ImageCause::BaseRead {
                                base: name.clone(),
                                platform: platform.to_string(),
                                source: crate::freeze::ReadBaseError::Image(e),
                            },
                        )
                    })?;
            Ok::<_, FreezeError>(PlatformState::from_catalogue(platform, &catalogue, &env))
        })
        .await?;
    let mut state = state.clone();
    state.platform = platform.to_string();
    Ok(state)
}

/// The pin of a stage's base pulled by an Apptainer agent other than
/// `docker` (see [`crate::freeze::agents`]).
fn remote_pin<'a>(
    ctx: &ImageContext<'a>,
    stage: &crate::source::model::Stage,
) -> Option<&'a crate::lock::LockedBase> {
    let name = crate::freeze::agents::locked_name(ctx.config, stage)?;
    ctx.bases.bases.iter().find(|b| b.name == name)
}

/// The state a stage starts from when its base is a SIF an agent pulls:
/// read from that SIF (fetched and checked against the pinned digest),
/// cached by its digest, once per run.
async fn agent_state(
    ctx: &ImageContext<'_>,
    stage: &crate::source::model::Stage,
    base: &crate::lock::LockedBase,
    platform: &str,
) -> Result<PlatformState, FreezeError> {
    use crate::freeze::ReadBaseError;
    let job = ctx.job;
    let err = |cause: ImageCause| FreezeError::image(&job.config.name, cause);
    let digest = crate::freeze::agents::sif_digest(base, platform).ok_or_else(|| {
        err(ImageCause::Internal(format!(
            "the lock pins no SIF of `{}` for {platform}",
            base.name
        )))
    })?;
    let key = (
        base.name.to_string(),
        platform_key(platform),
        digest.to_string(),
    );
    let cell = ctx.base_states.cell(key);
    let state = cell
        .get_or_try_init(|| async {
            let cache_dir = &ctx.config.cache_dir;
            if let Some(state) =
                PlatformState::load_cached(cache_dir, &digest.to_string(), platform)
            {
                return Ok::<_, FreezeError>(state);
            }
            ctx.progress.working(
                &job.config.name,
                &format!("{platform}: reading {}", base.name),
            );
            let path =
                crate::freeze::agents::fetch_sif(ctx.config, ctx.session, stage, base, platform)
                    .await
                    .map_err(|cause| FreezeError::Image {
                        image: job.config.name.clone(),
                        cause,
                    })?;
            let _permit = ctx.base_states.read_permit().await;
            let (reference, wanted, limits) = (
                base.name.to_string(),
                platform.to_string(),
                ctx.config.limits,
            );
            let read = tokio::task::spawn_blocking(move || {
                let p: crate::oci::Platform =
                    wanted.parse().map_err(|source| ReadBaseError::Platform {
                        platform: wanted.clone(),
                        source,
                    })?;
                let opts = crate::image::ReadOptions::default().with_limits(&limits);
                let mut sif = crate::image::sif::SifImage::open(&reference, &path)
                    .map_err(ReadBaseError::Image)?;
                sif.read_catalogue(&p, &opts)
                    .map(|(c, summary)| (c, summary.arch))
                    .map_err(ReadBaseError::Image)
            })
            .await
            .map_err(|e| err(ImageCause::Internal(e.to_string())))?;
            let (catalogue, arch) = read.map_err(|source| {
                err(ImageCause::BaseRead {
                    base: base.name.to_string(),
                    platform: platform.to_string(),
                    source,
                })
            })?;
            let env = catalogue.image.config.env.clone();
            let mut state = PlatformState::from_catalogue(platform, &catalogue, &env);
            let locked_arch = platform.parse::<crate::oci::Platform>().ok();
            if let (Some(arch), Some(p)) = (arch, locked_arch)
                && arch != p.architecture()
            {
                state.warnings.push(format!(
                    "base `{}` is a SIF for {arch}, locked for {platform}",
                    base.name
                ));
            }
            state.store_cached(cache_dir, &digest.to_string());
            Ok(state)
        })
        .await?;
    let mut state = state.clone();
    state.platform = platform.to_string();
    Ok(state)
}

fn action_name(action: crate::source::steps::Action) -> &'static str {
    action.as_str()
}

/// When podman and buildah would pull another image than Docker for a base
/// written as a short name (`fedora:40`), because of the host's
/// `registries.conf` aliases or search registries: what each pulls. The
/// lock follows Docker's rule (`docker.io`); this says so.
fn short_name_note(
    conf: &crate::config::registries_conf::RegistriesConf,
    written: &str,
) -> Option<String> {
    let first = written.split('/').next()?;
    let qualified = written.contains('/')
        && (first.contains('.') || first.contains(':') || first == "localhost");
    if qualified || written.starts_with("oci:") {
        return None;
    }
    let docker = crate::oci::ImageRef::parse(written).ok()?;
    // The name without tag or digest, as registries.conf aliases it.
    let bare = written.split('@').next()?;
    let bare = match bare.rsplit_once(':') {
        Some((n, _)) if !n.contains('/') || !bare[n.len()..].contains('/') => n,
        _ => bare,
    };
    match conf.short_name(bare) {
        Ok(None) => None,
        Ok(Some(podman)) => {
            let podman_ref = crate::oci::ImageRef::parse(&podman).ok()?;
            (podman_ref.name() != docker.name()).then(|| {
                format!(
                    "base `{written}` is `{}` for Docker but `{podman}` for podman and buildah (the host's registries.conf); the lock pins Docker's\nhint: write the full name in the definition",
                    docker.name()
                )
            })
        }
        Err(why) => {
            let (what, hint) = why.split_once("\nhint: ").unwrap_or((&why, ""));
            Some(format!(
                "base {what}; podman refuses it in its enforcing mode, Docker pulls `{}`, and the lock pins that\nhint: {hint}",
                docker.name()
            ))
        }
    }
}

/// Why a step is not locked: the reason its platforms give, or, when they
/// differ, each platform's (`on linux/arm64: …`).
fn not_locked_reason(per_platform: &[(String, StepOutcome)]) -> Option<String> {
    let unlocked: Vec<(&String, &str)> = per_platform
        .iter()
        .filter(|(_, o)| !o.locked)
        .filter_map(|(p, o)| Some((p, o.reason.as_deref()?)))
        .collect();
    let (_, first) = unlocked.first()?;
    if unlocked.iter().all(|(_, r)| r == first) {
        return Some((*first).to_string());
    }
    Some(
        unlocked
            .iter()
            .map(|(p, r)| format!("on {p}: {r}"))
            .collect::<Vec<_>>()
            .join("; "),
    )
}

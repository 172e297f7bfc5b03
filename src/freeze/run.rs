//! One image: its stages on every platform, steps in build order.

use std::collections::BTreeMap;

use crate::config::Config;
use crate::freeze::bases::resolve_bases;
use crate::freeze::platform_key;
use crate::freeze::state::{PlatformState, read_base};
use crate::freeze::steps::{Resolvers, StepOutcome, StepPlace, resolve_step};
use crate::freeze::{
    FreezeError, FreezeOptions, ImageJob, lock_path_of, lock_skeleton, platforms_of,
};
use crate::lock::{LockedImage, LockedStep};
use crate::source::BaseTarget;

/// An image frozen in this run: its lock and the state of each platform at
/// the end of its build (what images built `FROM` it start from).
pub struct Frozen {
    pub name: String,
    pub reference: Option<String>,
    pub lock: LockedImage,
    pub finals: BTreeMap<String, PlatformState>,
    /// What the lock cannot promise (once each, in step order).
    pub warnings: Vec<String>,
}

/// Resolves one image. `repository` holds the images of this repository
/// frozen before it.
pub async fn freeze_image(
    config: &Config,
    resolvers: &Resolvers,
    job: &ImageJob,
    options: &FreezeOptions,
    repository: &[Frozen],
) -> Result<Frozen, FreezeError> {
    let platforms = platforms_of(job, options);
    let mut lock = lock_skeleton(config, job, &platforms);
    let repo: Vec<(&str, Option<&str>, &LockedImage)> = repository
        .iter()
        .map(|f| (f.name.as_str(), f.reference.as_deref(), &f.lock))
        .collect();
    let bases = resolve_bases(&resolvers.registry, job, &platforms, options, &repo).await?;
    let file = lock_path_of(config, &job.config.file);
    let text = &job.inputs.definition;
    let lines = crate::diagnostic::LineIndex::new(text);

    // outcomes[(stage, step)] = per platform outcome
    let mut outcomes: BTreeMap<(usize, usize), Vec<(String, StepOutcome)>> = BTreeMap::new();
    let mut finals = BTreeMap::new();
    for platform in &platforms {
        let mut stage_states: Vec<PlatformState> = Vec::new();
        for stage in &job.definition.stages {
            let mut state = match &stage.base.target {
                BaseTarget::Stage { index } => {
                    stage_states.get(*index).cloned().unwrap_or_default()
                }
                BaseTarget::Scratch | BaseTarget::Other { .. } => PlatformState {
                    platform: platform.clone(),
                    ..PlatformState::default()
                },
                BaseTarget::Image { .. } => {
                    let written = stage.base.reference.value.clone().unwrap_or_default();
                    let name = bases.names.get(&written).cloned().unwrap_or(written);
                    let base = bases.bases.iter().find(|b| b.name == name);
                    match base.and_then(|b| b.built_from.clone()) {
                        Some(parent) => repository
                            .iter()
                            .find(|f| f.name == parent)
                            .and_then(|f| f.finals.get(platform))
                            .cloned()
                            .ok_or_else(|| FreezeError::Image {
                                image: job.config.name.clone(),
                                message: format!(
                                    "builds FROM `{parent}` of this repository, which is not locked for {platform}\nhint: freeze `{parent}` in the same run, with the same platforms"
                                ),
                            })?,
                        None => {
                            // The manifest the lock pins for this platform.
                            let digest = base.and_then(|b| {
                                b.platforms
                                    .iter()
                                    .find(|p| platform_key(&p.platform) == platform_key(platform))
                                    .map(|p| p.digest.clone())
                            });
                            let cached = digest.as_deref().and_then(|d| {
                                PlatformState::load_cached(&config.cache_dir, d, platform)
                            });
                            match cached {
                                Some(state) => state,
                                None => {
                                    let cache_dir = config.cache_dir.clone();
                                    let (config, name2, platform2) = (config.clone(), name.clone(), platform.clone());
                                    let registry = Some((resolvers.registry.clone(), tokio::runtime::Handle::current()));
                                    let (catalogue, env) = tokio::task::spawn_blocking(move || {
                                        read_base(&config, &name2, &platform2, registry)
                                    })
                                        .await
                                        .map_err(|e| FreezeError::Setup(e.to_string()))?
                                        .map_err(|message| FreezeError::Image {
                                            image: job.config.name.clone(),
                                            message: format!("reading base `{name}` for {platform}: {message}"),
                                        })?;
                                    let read = catalogue.image.manifest_digest.as_ref().map(ToString::to_string);
                                    if let (Some(locked), Some(read)) = (&digest, &read)
                                        && locked != read
                                    {
                                        return Err(FreezeError::Image {
                                            image: job.config.name.clone(),
                                            message: format!(
                                                "the lock pins `{name}` for {platform} at {locked}, but the tag now gives {read}\nhint: run `imagelock freeze --update-base` to move the pin"
                                            ),
                                        });
                                    }
                                    let state = PlatformState::from_catalogue(platform, &catalogue, &env);
                                    if let Some(d) = &digest {
                                        state.store_cached(&cache_dir, d);
                                    }
                                    state
                                }
                            }
                        }
                    }
                }
            };
            state.platform.clone_from(platform);
            for (i, step) in stage.steps.iter().enumerate() {
                let place = StepPlace {
                    image: &job.config.name,
                    file: file.clone(),
                    line: step.line,
                    stage: stage.index,
                    step: i,
                };
                let outcome =
                    resolve_step(config, resolvers, job, &place, step, &mut state, options).await?;
                outcomes
                    .entry((stage.index, i))
                    .or_default()
                    .push((platform.clone(), outcome));
            }
            stage_states.push(state);
        }
        if let Some(last) = stage_states.pop() {
            finals.insert(platform.clone(), last);
        }
    }

    lock.bases = bases.bases;
    let mut warnings: Vec<String> = Vec::new();
    for stage in &job.definition.stages {
        for (i, step) in stage.steps.iter().enumerate() {
            let Some(per_platform) = outcomes.remove(&(stage.index, i)) else {
                continue;
            };
            let cmd = &step.command;
            let first = &per_platform[0].1;
            let mut locked = LockedStep {
                stage: u32::try_from(stage.index).unwrap_or(u32::MAX),
                file: file.clone(),
                line: u32::try_from(lines.line_col(text, cmd.span.start).line).unwrap_or(u32::MAX),
                command: cmd.text.clone(),
                manager: cmd.manager.as_str().to_string(),
                action: action_name(cmd.action).to_string(),
                target: first.target.clone(),
                requested: first.requested.clone(),
                channels: first.channels.clone(),
                indexes: first.indexes.clone(),
                locked: first.locked,
                conda: Vec::new(),
                pypi: Vec::new(),
            };
            for (_, outcome) in per_platform {
                for w in outcome.warnings {
                    if !warnings.contains(&w) {
                        warnings.push(w);
                    }
                }
                for p in outcome.conda {
                    match locked
                        .conda
                        .iter_mut()
                        .find(|q| q.url == p.url && q.sha256 == p.sha256)
                    {
                        Some(q) => q.platforms.extend(p.platforms),
                        None => locked.conda.push(p),
                    }
                }
                for p in outcome.pypi {
                    match locked
                        .pypi
                        .iter_mut()
                        .find(|q| q.url == p.url && q.sha256 == p.sha256 && q.version == p.version)
                    {
                        Some(q) => {
                            // Edges may differ by platform; the entry keeps
                            // every reason it is there.
                            q.platforms.extend(p.platforms);
                            q.required_by.extend(p.required_by);
                        }
                        None => locked.pypi.push(p),
                    }
                }
            }
            lock.steps.push(locked);
        }
    }
    lock.normalize();
    Ok(Frozen {
        name: job.config.name.clone(),
        reference: job.config.reference.clone(),
        lock,
        finals,
        warnings,
    })
}

fn action_name(action: crate::source::steps::Action) -> &'static str {
    use crate::source::steps::Action;
    match action {
        Action::Install => "install",
        Action::Create => "create",
        Action::EnvCreate => "env-create",
        Action::EnvUpdate => "env-update",
    }
}

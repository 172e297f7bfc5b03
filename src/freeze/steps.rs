//! Resolving one install step on one platform, against the image's state.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::config::Config;
pub use crate::freeze::outcome::{StepOutcome, StepPlace};
use crate::freeze::state::PlatformState;
use crate::freeze::{FreezeError, FreezeOptions, ImageJob, StepCause};
use crate::image::LibcKind;
use crate::lock::{CondaPackage, PypiPackage, lock_platform};
use crate::resolve::conda::{ChannelRequest, ResolveCondaError};
use crate::resolve::pypi::index_urls::Sourced;
use crate::resolve::pypi::{self, IndexUrls, PipLevels, PipSettings};
use crate::resolve::{Session, SessionOptions};
use crate::solve::conda::{CondaSolveRequest, CondaSpec, CondaTarget, SolveContext};
use crate::solve::python::{Libc, Resolution, ResolveOptions, ResolveRequest, TargetEnv, Upgrade};
use crate::source::coverage::{Class, classify_install};
use crate::source::environment::EnvironmentFile;
use crate::source::requirements::{RequirementsEntry, RequirementsFile};
use crate::source::steps::{Action, Ecosystem, FileRole, InstallCommand, Manager};
use crate::source::{Expanded, InstallStep};

/// How much a freeze run does at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Images resolved at once (each resolves its platforms together).
    pub images: usize,
    /// Requests in flight to one service (a registry host, a conda channel
    /// host, a package index).
    pub requests: usize,
    /// Base images read at once: each read streams layers on its own thread.
    pub base_reads: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            images: 8,
            requests: 8,
            base_reads: 4,
        }
    }
}

/// Key of a base image's state: canonical name, platform, pinned manifest.
type BaseKey = (String, String, String);

/// The base images a freeze run has read: concurrent images and platforms
/// that want the same base wait for one read, and only so many are read
/// at once.
pub struct BaseStates {
    reads: tokio::sync::Semaphore,
    states: Mutex<HashMap<BaseKey, Arc<tokio::sync::OnceCell<PlatformState>>>>,
}

impl BaseStates {
    /// At most `reads` base images read at once.
    pub fn new(reads: usize) -> Self {
        BaseStates {
            reads: tokio::sync::Semaphore::new(reads.max(1)),
            states: Mutex::new(HashMap::new()),
        }
    }

    /// A permit to read one base image; held while it is read.
    pub async fn read_permit(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        // The semaphore is never closed, so this only fails in theory.
        self.reads.acquire().await.ok()
    }

    /// The once-per-run slot for a base image's state.
    pub fn cell(&self, key: BaseKey) -> Arc<tokio::sync::OnceCell<PlatformState>> {
        let mut states = self
            .states
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        states.entry(key).or_default().clone()
    }
}

/// The session's clients for a freeze of `config`, within `limits`.
pub fn session(
    config: &Config,
    offline: bool,
    limits: Limits,
    timeout: Option<std::time::Duration>,
) -> Result<Session, FreezeError> {
    Session::new(
        config,
        SessionOptions {
            offline,
            requests: limits.requests,
            timeout,
        },
    )
    .map_err(FreezeError::setup)
}

/// Resolves `step` on `state.platform` and applies it to `state`.
pub async fn resolve_step(
    config: &Config,
    session: &Session,
    job: &ImageJob,
    place: &StepPlace<'_>,
    step: &InstallStep,
    state: &mut PlatformState,
    options: &FreezeOptions,
) -> Result<StepOutcome, FreezeError> {
    let cmd = &step.command;
    for (k, v) in &step.env {
        let value = expand_env(v, &state.env);
        state.env.insert(k.clone(), value);
    }
    // Steps that change nothing, remove packages, run on only some paths
    // or through an unknown program are not locked; the lock says so.
    // Which ones is decided in one place, `source::coverage`.
    if let Class::NotLocked(why) | Class::Lockable(why) = classify_install(cmd) {
        if cmd.manager == Manager::Apk && cmd.action != crate::source::steps::Action::NoChange {
            // What it does to apk's state is not known: the apk steps after
            // it are not locked.
            state.apk_unknown = Some(format!(
                "{}:{}: `{}` is not locked",
                place.file, place.line, cmd.text
            ));
        }
        let warnings = if cmd.manager.ecosystem() == Ecosystem::Os {
            Vec::new()
        } else {
            vec![format!(
                "{}:{}: `{}` is not locked: {why}",
                place.file, place.line, cmd.text
            )]
        };
        return Ok(StepOutcome {
            requested: values(&cmd.specs),
            locked: false,
            reason: Some(why),
            warnings,
            ..StepOutcome::default()
        });
    }
    // What the base holds is not known: nothing on top of it can be
    // resolved against it.
    if let Some(why) = &state.base_unknown {
        let why = format!("what the base holds is not known: {why}");
        let warnings = if cmd.manager.ecosystem() == Ecosystem::Os {
            Vec::new()
        } else {
            vec![format!(
                "{}:{}: `{}` is not locked: {why}",
                place.file, place.line, cmd.text
            )]
        };
        return Ok(StepOutcome {
            requested: values(&cmd.specs),
            locked: false,
            warnings,
            reason: Some(why),
            ..StepOutcome::default()
        });
    }
    // A project an earlier command built from source: the image holds
    // that build, so no index file is claimed for the step.
    if let Some((name, line)) = job
        .definition
        .stages
        .get(place.stage)
        .and_then(|stage| crate::source::coverage::built_from_source(stage, step))
    {
        let why = format!(
            "`{name}` was built from source at line {line}: the image holds that build, not an index file"
        );
        return Ok(StepOutcome {
            requested: values(&cmd.specs),
            locked: false,
            warnings: vec![format!(
                "{}:{}: `{}` is not locked: {why}",
                place.file, place.line, cmd.text
            )],
            reason: Some(why),
            ..StepOutcome::default()
        });
    }
    match cmd.manager.ecosystem() {
        Ecosystem::Os if matches!(cmd.manager, Manager::AptGet | Manager::Apt) => {
            // What the previous lock chose for this step and platform is
            // kept while the archives offer it, unless `--update` names it.
            let before: Vec<(String, String, String)> = previous_step(job, place, cmd)
                .map(|s| {
                    s.apt
                        .iter()
                        .filter(|p| p.installed_after())
                        .filter(|p| {
                            p.platforms
                                .iter()
                                .any(|pl| pl.to_string() == state.platform)
                        })
                        .map(|p| {
                            (
                                p.name.to_string(),
                                p.architecture.to_string(),
                                p.version.to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let prefer: Vec<(String, String, String)> = if options.ignore_locked {
                Vec::new()
            } else {
                before
                    .iter()
                    .filter(|p| !options.update.contains(&p.0))
                    .cloned()
                    .collect()
            };
            // Pins rewrite made from the previous lock resolve as the
            // request they were made from, so `--update` can move them.
            let written = values(&cmd.specs);
            let request =
                crate::freeze::request::apt_request(previous_step(job, place, cmd), &written);
            let mut original;
            let cmd = if request == written {
                cmd
            } else {
                original = cmd.clone();
                original.specs = request
                    .iter()
                    .map(|r| Expanded {
                        written: r.clone(),
                        value: Some(r.clone()),
                        unresolved: Vec::new(),
                        span: cmd.span,
                    })
                    .collect();
                &original
            };
            crate::freeze::apt::apt_step(
                config,
                session,
                place,
                cmd,
                request,
                crate::freeze::apt::Previous {
                    prefer,
                    installed: before,
                },
                state,
            )
            .await
        }
        Ecosystem::Os if matches!(cmd.manager, Manager::Dnf | Manager::Microdnf | Manager::Yum) => {
            // What the previous lock installed here: drift checks it
            // against the repositories and their errata.
            let locked: Vec<crate::lock::RpmPackage> = if options.ignore_locked {
                previous_step(job, place, cmd)
                    .map(|s| {
                        s.rpm
                            .iter()
                            .filter(|p| p.installed_after())
                            .filter(|p| {
                                p.platforms
                                    .iter()
                                    .any(|pl| pl.to_string() == state.platform)
                            })
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default()
            } else {
                Vec::new()
            };
            let written = values(&cmd.specs);
            let mut outcome = crate::freeze::rpm::rpm_step(
                config,
                session,
                place,
                cmd,
                written.clone(),
                crate::freeze::rpm::Previous {
                    locked,
                    errata: options.ignore_locked,
                },
                state,
            )
            .await?;
            // Pins rewrite made from the previous lock keep its record of
            // the request they came from.
            crate::freeze::request::rpm_keep_request(
                previous_step(job, place, cmd),
                &written,
                &state.platform,
                &mut outcome,
            );
            Ok(outcome)
        }
        Ecosystem::Os if cmd.manager == Manager::Apk => {
            let text = &job.inputs.definition;
            let earlier = text.get(..cmd.span.start).unwrap_or(text);
            // What the previous lock installed here: drift checks it
            // against the repositories the step reads.
            let previous = options.ignore_locked.then(|| {
                previous_step(job, place, cmd)
                    .map(|s| {
                        s.apk
                            .iter()
                            .filter(|p| p.installed_after() && p.version.is_some())
                            .filter(|p| {
                                p.platforms
                                    .iter()
                                    .any(|pl| pl.to_string() == state.platform)
                            })
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default()
            });
            crate::freeze::apk::apk_step(
                config,
                session,
                place,
                cmd,
                values(&cmd.specs),
                earlier,
                previous,
                state,
            )
            .await
        }
        Ecosystem::Os | Ecosystem::Other => Ok(StepOutcome {
            requested: values(&cmd.specs),
            locked: false,
            reason: Some(format!(
                "imagelock does not lock `{}` steps",
                cmd.manager.as_str()
            )),
            ..StepOutcome::default()
        }),
        Ecosystem::Python => {
            pip_step(
                config,
                session,
                job,
                place,
                cmd,
                state,
                options,
                Vec::new(),
                None,
            )
            .await
        }
        Ecosystem::Conda => conda_step(config, session, job, place, step, state, options).await,
    }
}

/// Expands `$NAME` and `${NAME}` with the image's environment: `ENV` values
/// that name variables of the base image's config.
fn expand_env(value: &str, env: &std::collections::BTreeMap<String, String>) -> String {
    // The parser keeps such a value as written, quotes included.
    let value = ["\"", "'"]
        .iter()
        .find_map(|q| value.strip_prefix(q).and_then(|v| v.strip_suffix(q)))
        .unwrap_or(value);
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, len) = if let Some(inner) = after.strip_prefix('{') {
            match inner.find('}') {
                Some(j) => (&inner[..j], j + 2),
                None => ("", 0),
            }
        } else {
            let n = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..n], n)
        };
        if name.is_empty() {
            out.push('$');
            rest = after;
            continue;
        }
        out.push_str(env.get(name).map_or("", String::as_str));
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

fn values(specs: &[Expanded]) -> Vec<String> {
    specs
        .iter()
        .map(|s| s.value.clone().unwrap_or_else(|| s.written.clone()))
        .collect()
}

fn value_of(place: &StepPlace<'_>, e: &Expanded) -> Result<String, FreezeError> {
    e.value.clone().ok_or_else(|| {
        place.error(StepCause::Unset {
            written: e.written.clone(),
            variables: e
                .unresolved
                .iter()
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(", "),
        })
    })
}

/// The context files linked to a file argument of the step, with their text.
fn step_files<'j>(
    job: &'j ImageJob,
    place: &StepPlace<'_>,
    role: FileRole,
) -> Vec<&'j crate::source::inputs::InputFile> {
    job.inputs
        .step_files(place.stage, place.step)
        .into_iter()
        .map(|(_, f)| &job.inputs.files[f])
        .filter(|f| {
            f.role == role
                || (role == FileRole::Requirements
                    && f.included_from.is_some()
                    && f.role != FileRole::Constraints)
        })
        .collect()
}

/// Checks every file argument maps to a context file.
fn check_files(
    job: &ImageJob,
    place: &StepPlace<'_>,
    cmd: &InstallCommand,
) -> Result<(), FreezeError> {
    let linked: Vec<usize> = job
        .inputs
        .step_files(place.stage, place.step)
        .into_iter()
        .map(|(arg, _)| arg)
        .collect();
    for (i, f) in cmd.files.iter().enumerate() {
        if f.role == FileRole::Editable {
            return Err(place.error(StepCause::Editable {
                path: f.path.written.clone(),
            }));
        }
        if !linked.contains(&i) {
            return Err(place.error(StepCause::NotCopied {
                path: f
                    .path
                    .value
                    .clone()
                    .unwrap_or_else(|| f.path.written.clone()),
            }));
        }
    }
    Ok(())
}

/// A Python index location as written in configuration or a command: a
/// relative or absolute path becomes a `file://` URL.
pub fn index_url(config: &Config, written: &str) -> String {
    if written.contains("://") {
        return written.to_string();
    }
    let path = written.strip_prefix("file:").unwrap_or(written);
    let path = config.root.join(path);
    let abs = path.canonicalize().unwrap_or(path);
    format!("file://{}", abs.display())
}

/// A URL as the lock records it: `file://` URLs under the configuration's
/// parent directories become paths relative to the configuration, so a lock
/// does not name the machine it was made on.
pub fn lock_url(config: &Config, url: &str) -> String {
    // Channel tokens and index passwords never enter a lock.
    let url = &crate::config::redact::redact_url(url);
    let Some(path) = url.strip_prefix("file://") else {
        return url.to_string();
    };
    let Ok(root) = config.root.canonicalize() else {
        return url.to_string();
    };
    relative_path(&root, Path::new(path)).unwrap_or_else(|| url.to_string())
}

fn relative_path(from: &Path, to: &Path) -> Option<String> {
    let from: Vec<_> = from.components().collect();
    let to_c: Vec<_> = to.components().collect();
    let common = from.iter().zip(&to_c).take_while(|(a, b)| a == b).count();
    // Only paths that share more than the root directory.
    if common < 2 {
        return None;
    }
    let mut parts: Vec<String> =
        std::iter::repeat_n("..".to_string(), from.len() - common).collect();
    parts.extend(
        to_c[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    Some(parts.join("/"))
}

#[allow(clippy::too_many_arguments)]
async fn pip_step(
    config: &Config,
    session: &Session,
    job: &ImageJob,
    place: &StepPlace<'_>,
    cmd: &InstallCommand,
    state: &mut PlatformState,
    options: &FreezeOptions,
    mut requirements: Vec<String>,
    python_prefix: Option<&str>,
) -> Result<StepOutcome, FreezeError> {
    check_files(job, place, cmd)?;
    let python = match python_prefix {
        Some(prefix) => state.pythons.iter().find(|p| p.prefix == prefix),
        None => state.python_for(cmd.target.as_ref()),
    }
    .cloned()
    .ok_or_else(|| {
        place.error(StepCause::NoPython {
            manager: cmd.manager.as_str().to_string(),
            platform: state.platform.clone(),
        })
    })?;
    let version = job
        .config
        .overrides
        .python
        .clone()
        .unwrap_or_else(|| python.version.clone());
    let libc = match (&job.config.overrides.glibc, &state.libc) {
        (Some(g), _) => Libc::glibc(g).ok(),
        (None, Some((LibcKind::Glibc, v))) => Libc::glibc(v).ok(),
        (None, Some((LibcKind::Musl, v))) => Libc::musl(v).ok(),
        (None, None) => None,
    };
    let target = TargetEnv::cpython(Some(&version), &state.platform, libc)
        .map_err(|e| place.error(StepCause::Target(e)))?;

    for s in &cmd.specs {
        requirements.push(value_of(place, s)?);
    }
    let env = |k: &str| state.env.get(k).cloned();
    let mut opts = PipOptions {
        pre: cmd.options.iter().any(|o| o == "--pre"),
        no_index: cmd.no_index,
        ..PipOptions::default()
    };
    let mut warnings = Vec::new();
    for o in &cmd.options {
        opts.binary_option(o, &format!("{}:{}", place.file, place.line), &mut warnings);
    }
    for e in &cmd.find_links {
        let v = value_of(place, e)?;
        opts.find_links
            .push(find_links_url(config, job, place, &v, None)?);
    }
    // A relative `-f` in a requirements file is relative to that file in
    // the image.
    let file_dir = cmd
        .files
        .iter()
        .find(|f| f.role == FileRole::Requirements || f.role == FileRole::Constraints)
        .and_then(|f| f.path.value.clone())
        .and_then(|p| p.rsplit_once('/').map(|(d, _)| d.to_string()));
    let mut constraints = Vec::new();
    for role in [FileRole::Requirements, FileRole::Constraints] {
        for f in step_files(job, place, role) {
            let parsed = RequirementsFile::parse(&f.path, &f.text, &env)?;
            let lines = crate::diagnostic::LineIndex::new(&f.text);
            for entry in &parsed.entries {
                match entry {
                    RequirementsEntry::Requirement {
                        spec,
                        editable: false,
                        ignored_options,
                        span,
                        ..
                    } => {
                        if role == FileRole::Constraints {
                            constraints.push(spec.clone());
                        } else {
                            requirements.push(spec.clone());
                        }
                        for o in ignored_options {
                            warnings.push(format!(
                                "{}:{}: pip ignores `{o}` after a requirement; write it on a line of its own for it to apply",
                                f.label,
                                lines.line_col(&f.text, span.start).line
                            ));
                        }
                    }
                    RequirementsEntry::Requirement {
                        spec,
                        editable: true,
                        ..
                    } => {
                        return Err(place.error(StepCause::EditableInFile {
                            spec: spec.clone(),
                            file: f.label.clone(),
                        }));
                    }
                    RequirementsEntry::Option { name, value, span } => {
                        let at =
                            format!("{}:{}", f.label, lines.line_col(&f.text, span.start).line);
                        match (name.as_str(), value) {
                            ("-i" | "--index-url", Some(v)) => opts.index = Some(v.clone()),
                            ("--extra-index-url", Some(v)) => opts.extra.push(v.clone()),
                            ("--pre", _) => opts.pre = true,
                            ("--no-index", _) => opts.no_index = true,
                            ("-f" | "--find-links", Some(v)) => opts
                                .find_links
                                .push(find_links_url(config, job, place, v, file_dir.as_deref())?),
                            ("--only-binary" | "--no-binary", Some(v)) => {
                                opts.binary_option(&format!("{name}={v}"), &at, &mut warnings);
                            }
                            _ => {}
                        }
                    }
                    RequirementsEntry::Include { .. } => {}
                }
            }
        }
    }
    let pre = opts.pre;
    let file_index = opts.index.clone();
    let file_extra = opts.extra.clone();

    let cmd_index = match &cmd.index_url {
        Some(e) => Some(value_of(place, e)?),
        None => file_index,
    };
    let mut cmd_extra = file_extra;
    for e in &cmd.extra_index_urls {
        cmd_extra.push(value_of(place, e)?);
    }
    let on_step = "on the step";
    let uv = cmd.manager == crate::source::steps::Manager::UvPip;
    let levels = PipLevels {
        step: PipSettings {
            index_url: cmd_index.map(|u| Sourced::new(u, format!("`--index-url` {on_step}"))),
            extra_index_urls: (!cmd_extra.is_empty())
                .then(|| Sourced::new(cmd_extra, format!("`--extra-index-url` {on_step}"))),
            no_index: opts
                .no_index
                .then(|| Sourced::new(true, format!("`--no-index` {on_step}"))),
            find_links: (!opts.find_links.is_empty()).then(|| {
                Sourced::new(opts.find_links.clone(), format!("`--find-links` {on_step}"))
            }),
            pre: pre.then(|| Sourced::new(true, format!("`--pre` {on_step}"))),
        },
        // The image's own settings, then imagelock's, then the host's: uv's
        // variables for `uv pip`, pip's for pip.
        image: if uv {
            PipSettings::from_uv_vars(&env, "in the image's ENV")
        } else {
            PipSettings::from_vars(&env, "in the image's ENV")
        }
        .map_err(|e| place.error(StepCause::PipSetting(e)))?,
        config: PipLevels::config_level(&config.pypi),
        host: if uv {
            session.host_uv.clone()
        } else {
            session.host_pip.clone()
        },
    };
    let settings = levels.effective();
    // Find-links the step names (on its command line or in its files) are
    // read like an index. Those set by the image's ENV are not read yet:
    // refused, since a lock without them predicts another image. The
    // host's are a place on this machine the build does not see: named,
    // then left out.
    if let Some(s) = levels
        .image
        .find_links
        .as_ref()
        .filter(|s| !s.value.is_empty())
    {
        return Err(place.error(StepCause::Unreadable {
            setting: format!("find-links `{}`", s.value.join(" ")),
            from: s.from.clone(),
        }));
    }
    let below_step = levels.config.clone().over(levels.host.clone());
    if let Some(s) = below_step
        .find_links
        .as_ref()
        .filter(|s| !s.value.is_empty())
    {
        warnings.push(format!(
            "{}:{}: find-links `{}` ({}) is not used: the build's pip does not see the host's find-links",
            place.file,
            place.line,
            s.value.join(" "),
            s.from
        ));
    }
    let no_index = settings.no_index.as_ref().filter(|s| s.value);
    // With no index, pip reads only the step's find-links; with none of
    // those either it can install nothing imagelock could predict.
    if let Some(s) = no_index
        && opts.find_links.is_empty()
    {
        return Err(place.error(StepCause::Unreadable {
            setting: "no index (`--no-index`) and no find-links".to_string(),
            from: s.from.clone(),
        }));
    }
    let pre = settings.pre.as_ref().is_some_and(|p| p.value);
    let mut urls = if no_index.is_some() {
        IndexUrls { urls: Vec::new() }
    } else {
        IndexUrls::of(&settings)
    };
    for u in &mut urls.urls {
        *u = index_url(config, u);
    }
    let client = session
        .pypi_client_finding(
            &urls,
            &opts.find_links,
            session.no_build || opts.only_binary,
        )
        .map_err(FreezeError::setup)?;

    let site = python.site_packages.clone();
    let installer = Installer::of(cmd, uv, &env, place, &mut warnings);
    let installed: Vec<(String, String)> = if installer.ignores_installed {
        Vec::new()
    } else {
        state
            .dists
            .get(&site)
            .map(|d| d.iter().map(|(n, v)| (n.clone(), v.clone())).collect())
            .unwrap_or_default()
    };
    // Pins `rewrite` wrote from the previous lock stand for what the step
    // asked for before.
    let requirements =
        crate::freeze::request::pip_request(previous_step(job, place, cmd), &requirements);
    let request = ResolveRequest {
        requirements: requirements.clone(),
        constraints,
        installed,
        options: ResolveOptions {
            pre: pre || installer.pre,
            no_deps: cmd.options.iter().any(|o| o == "--no-deps"),
            upgrade: installer.upgrade,
            resolution: installer.resolution,
            exclude_newer: options.exclude_newer.clone(),
            preferences: if options.ignore_locked {
                Vec::new()
            } else {
                pip_preferences(job, place, cmd, &state.platform, &options.update)
            },
        },
    };
    let mut pins = pypi::resolve(client.clone(), Arc::new(target), request)
        .await
        .map_err(|e| place.error(StepCause::Pip(e.with_context(place.context()))))?;
    // A find-links page or directory lists files without hashes: the lock
    // records the sha256 of the file chosen, as for an index's files.
    for pin in &mut pins {
        if let crate::solve::python::PinnedSource::Index(f) = &mut pin.source
            && f.sha256.is_none()
        {
            let sha = client.sha256_of(&f.url).await.map_err(|e| {
                place.error(StepCause::Pip(crate::solve::python::SolveError::Source {
                    name: pin.name.to_string(),
                    source: e.into(),
                }))
            })?;
            f.sha256 = Some(sha);
        }
    }
    // `--target` and `--prefix` install where this Python does not look:
    // later steps do not see those packages as installed.
    let mut elsewhere = std::collections::BTreeMap::new();
    let dists = if installer.elsewhere {
        &mut elsewhere
    } else {
        state.dists.entry(site.clone()).or_default()
    };
    let mut locked = Vec::new();
    for pin in &pins {
        if let Some(w) = pin.unbuilt_warning() {
            warnings.push(format!("{}: {w}", place.context()));
        }
        if let Some(w) = pin.passed_over_warning() {
            warnings.push(format!("{}: {w}", place.context()));
        }
        if let Some(v) = &pin.version {
            dists.insert(pin.name.to_string(), v.to_string());
        }
        let unlockable = |e: crate::lock::LockBuildError| place.error(StepCause::Lock(e));
        let platform = lock_platform(&state.platform).map_err(unlockable)?;
        if let Some(mut p) = PypiPackage::from_pin(pin, &platform).map_err(unlockable)? {
            p.url = lock_url(config, &p.url)
                .parse()
                .map_err(|e: crate::lock::InvalidValue| {
                    place.error(StepCause::Internal(e.to_string()))
                })?;
            locked.push(p);
        }
    }
    Ok(StepOutcome {
        requested: requirements,
        channels: Vec::new(),
        indexes: urls.urls.iter().map(|u| lock_url(config, u)).collect(),
        find_links: opts
            .find_links
            .iter()
            .map(|u| lock_url(config, u))
            .collect(),
        target: Some(python.prefix.clone()),
        locked: true,
        conda: Vec::new(),
        pypi: locked,
        warnings,
        ..StepOutcome::default()
    })
}

/// How the installer treats what is already installed, and which versions
/// it tries first: pip's and `uv pip`'s own rules.
#[derive(Debug, Default)]
struct Installer {
    upgrade: Upgrade,
    resolution: Resolution,
    /// Installed packages are not kept (pip's `--force-reinstall`,
    /// `--ignore-installed`, `--target`).
    ignores_installed: bool,
    /// Installs outside the Python's own site-packages (`--target`,
    /// `--prefix`).
    elsewhere: bool,
    /// uv's `--prerelease allow`.
    pre: bool,
}

impl Installer {
    /// From the step's options and the image's `PIP_*`/`UV_*` variables.
    ///
    /// pip keeps an installed version that satisfies ("Requirement already
    /// satisfied"); `-U` moves the requested packages and, with the default
    /// `--upgrade-strategy only-if-needed`, their dependencies only when
    /// they must (`eager`: all of them); `--force-reinstall` and
    /// `--ignore-installed` resolve as if nothing were installed, as does
    /// `--target` (pip ignores the installed packages then); `--user` and
    /// `--prefix` still see the installed packages of the interpreter.
    /// `uv pip install` keeps installed versions too; its `--upgrade` moves
    /// every package, `--upgrade-package` the named ones; its `--target`
    /// starts from an empty directory.
    fn of(
        cmd: &InstallCommand,
        uv: bool,
        env: &dyn Fn(&str) -> Option<String>,
        place: &StepPlace<'_>,
        warnings: &mut Vec<String>,
    ) -> Installer {
        let truthy = |k: &str| {
            env(k).is_some_and(|v| {
                matches!(
                    v.trim().to_ascii_lowercase().as_str(),
                    "1" | "true" | "yes" | "on"
                )
            })
        };
        let mut out = Installer::default();
        let mut upgrade = truthy(if uv { "UV_UPGRADE" } else { "PIP_UPGRADE" });
        let mut strategy = if uv {
            None
        } else {
            env("PIP_UPGRADE_STRATEGY")
        };
        let mut resolution = if uv { env("UV_RESOLUTION") } else { None };
        let mut packages = std::collections::BTreeSet::new();
        if !uv {
            out.ignores_installed = truthy("PIP_FORCE_REINSTALL") || truthy("PIP_IGNORE_INSTALLED");
        }
        for o in &cmd.options {
            // `--opt value`, `--opt=value`, `-Xvalue`.
            let (name, value) = match o.split_once([' ', '=']) {
                Some((n, v)) => (n, Some(v.trim_matches(['"', '\'']))),
                None if o.len() > 2 && !o.starts_with("--") => (&o[..2], Some(&o[2..])),
                None => (o.as_str(), None),
            };
            match (name, value) {
                ("-U" | "--upgrade", _) => upgrade = true,
                ("--upgrade-strategy", Some(v)) => strategy = Some(v.to_string()),
                ("-P" | "--upgrade-package", Some(v)) if uv => {
                    let n = v.split(['<', '>', '=', '!', '~', ' ']).next().unwrap_or(v);
                    if let Ok(n) = n.parse() {
                        packages.insert(n);
                    }
                }
                ("--resolution", Some(v)) if uv => resolution = Some(v.to_string()),
                ("--prerelease", Some("allow")) if uv => out.pre = true,
                ("--prerelease", Some(v)) if uv && v != "if-necessary-or-explicit" => {
                    warnings.push(format!(
                        "{}:{}: `--prerelease {v}` is read as uv's default (`if-necessary-or-explicit`)",
                        place.file, place.line
                    ));
                }
                ("--force-reinstall" | "-I" | "--ignore-installed", _) if !uv => {
                    out.ignores_installed = true;
                }
                ("-t" | "--target", _) => {
                    out.ignores_installed = true;
                    out.elsewhere = true;
                }
                ("--prefix", _) => out.elsewhere = true,
                _ => {}
            }
        }
        out.upgrade = match (uv, upgrade) {
            (true, true) => Upgrade::All,
            (true, false) if !packages.is_empty() => Upgrade::Packages(packages),
            (false, true) if strategy.as_deref() == Some("eager") => Upgrade::All,
            (false, true) => Upgrade::Requested,
            _ => Upgrade::None,
        };
        out.resolution = match resolution.as_deref() {
            Some("lowest") => Resolution::Lowest,
            Some("lowest-direct") => Resolution::LowestDirect,
            _ => Resolution::Highest,
        };
        out
    }
}

/// pip's options that decide where and what it may install, gathered from
/// the command line and the requirements and constraints files.
#[derive(Debug, Default)]
struct PipOptions {
    index: Option<String>,
    extra: Vec<String>,
    pre: bool,
    no_index: bool,
    /// `--find-links` locations, as URLs.
    find_links: Vec<String>,
    /// `--only-binary :all:`: no sdist is built or installed.
    only_binary: bool,
}

impl PipOptions {
    /// `--only-binary X` / `--no-binary X` (also `=X`) from `at`: `:all:`
    /// for only-binary refuses sdists; `:none:` changes nothing; per-package
    /// lists and `--no-binary :all:` are not applied by the resolver, which
    /// a warning says.
    fn binary_option(&mut self, written: &str, at: &str, warnings: &mut Vec<String>) {
        let o = written.replace('=', " ");
        let mut words = o.split_whitespace();
        let (Some(name), value) = (words.next(), words.next()) else {
            return;
        };
        if name != "--only-binary" && name != "--no-binary" {
            return;
        }
        let value = value.unwrap_or("").trim_matches(['"', '\'']);
        match (name, value) {
            ("--only-binary", v) if v.split(',').any(|p| p == ":all:") => self.only_binary = true,
            (_, ":none:") => {}
            _ => warnings.push(format!(
                "{at}: `{name} {value}` is not applied when resolving: the lock may choose {} where pip would not",
                if name == "--only-binary" {
                    "an sdist of those packages"
                } else {
                    "wheels"
                }
            )),
        }
    }
}

/// A `--find-links` location as a URL: a URL as given, or a path inside the
/// image (relative to `dir`, else the step's `WORKDIR`) found in the build
/// context through the `COPY` that put it there.
fn find_links_url(
    config: &Config,
    job: &ImageJob,
    place: &StepPlace<'_>,
    written: &str,
    dir: Option<&str>,
) -> Result<String, FreezeError> {
    if written.contains("://") {
        return Ok(index_url(config, written));
    }
    let path = match dir {
        Some(d) if !written.starts_with('/') => format!("{d}/{written}"),
        _ => written.to_string(),
    };
    let found = crate::source::inputs::context_path(
        &job.definition,
        place.stage,
        place.step,
        &path,
        &job.config.context,
    )
    .ok_or_else(|| place.error(StepCause::NotCopied { path: path.clone() }))?;
    let abs = found.canonicalize().unwrap_or(found);
    Ok(reqwest::Url::from_file_path(&abs)
        .map(|u| u.to_string())
        .unwrap_or_else(|()| format!("file://{}", abs.display())))
}

/// The conda settings the image's own configuration files make when `step`
/// runs: the base's (read from its layers), with those a `COPY` of the
/// build context put in place before the step standing in for the base's.
fn image_condarc(
    job: &ImageJob,
    place: &StepPlace<'_>,
    step: &InstallStep,
    state: &PlatformState,
) -> Result<crate::resolve::conda::Condarc, FreezeError> {
    let copied = |path: &str| -> Option<(std::path::PathBuf, String)> {
        let found = crate::source::inputs::context_path(
            &job.definition,
            place.stage,
            place.step,
            path,
            &job.config.context,
        )?;
        if !found.is_file() {
            return None;
        }
        let text = crate::config::read::read_regular_to_string(
            &found,
            crate::config::read::MAX_INPUT_FILE,
        )
        .ok()?;
        Some((found, text))
    };
    let user = step.user.as_deref().or(state.user.as_deref());
    let root = state.conda_root();
    crate::resolve::conda::Condarc::from_image(
        &state.conda_files,
        &state.env,
        user,
        root.as_deref(),
        &copied,
    )
    .map_err(|e| place.error(StepCause::Channels(e)))
}

/// The pins of `prefix` (`PREFIX/conda-meta/pinned`) as the step's
/// installer reads them: a file a `COPY` before the step put there, else
/// the base image's. One match spec a line; `#` starts a comment.
fn prefix_pins(
    job: &ImageJob,
    place: &StepPlace<'_>,
    state: &PlatformState,
    prefix: &str,
) -> Result<Vec<CondaSpec>, FreezeError> {
    let path = format!("{}/conda-meta/pinned", prefix.trim_end_matches('/'));
    let copied = crate::source::inputs::context_path(
        &job.definition,
        place.stage,
        place.step,
        &path,
        &job.config.context,
    )
    .filter(|p| p.is_file());
    let text = match &copied {
        Some(found) => Some(
            crate::config::read::read_regular_to_string(found, crate::config::read::MAX_INPUT_FILE)
                .map_err(|e| {
                    place.error(StepCause::Channels(ResolveCondaError::Condarc {
                        path: found.clone(),
                        message: e.to_string(),
                    }))
                })?,
        ),
        None => state.conda_files.get(&path).cloned(),
    };
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    let mut pins = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let spec = CondaSpec::parse(line).map_err(|e| {
            place.error(StepCause::Channels(ResolveCondaError::Condarc {
                path: copied.clone().unwrap_or_else(|| path.clone().into()),
                message: format!("`{line}` is not a match spec: {e}"),
            }))
        })?;
        pins.push(spec);
    }
    Ok(pins)
}

/// The previous lock's entry for this step: same stage and command (or,
/// when the command was edited, the same line).
fn previous_step<'j>(
    job: &'j ImageJob,
    place: &StepPlace<'_>,
    cmd: &InstallCommand,
) -> Option<&'j crate::lock::LockedStep> {
    let steps = &job.previous.as_ref()?.steps;
    let stage = u32::try_from(place.stage).ok()?;
    steps
        .iter()
        .find(|s| s.stage == stage && s.command == cmd.text)
        .or_else(|| {
            let line = u32::try_from(place.line).ok()?;
            steps.iter().find(|s| s.stage == stage && s.line == line)
        })
}

fn normalize_name(n: &str) -> String {
    n.to_ascii_lowercase().replace(['_', '.'], "-")
}

/// What the previous lock chose for this step on `platform`, except the
/// packages `--update` names: a re-run keeps them while they still fit.
fn pip_preferences(
    job: &ImageJob,
    place: &StepPlace<'_>,
    cmd: &InstallCommand,
    platform: &str,
    update: &[String],
) -> Vec<(String, String)> {
    let Some(step) = previous_step(job, place, cmd) else {
        return Vec::new();
    };
    let update: Vec<String> = update.iter().map(|n| normalize_name(n)).collect();
    step.pypi
        .iter()
        .filter(|p| {
            p.platforms.iter().any(|q| {
                crate::freeze::platform_key(&q.to_string()) == crate::freeze::platform_key(platform)
            })
        })
        .filter(|p| !update.contains(&normalize_name(&p.name)))
        .filter_map(|p| Some((p.name.to_string(), p.version.as_ref()?.to_string())))
        .collect()
}

/// Likewise for conda packages.
fn conda_preferences(
    job: &ImageJob,
    place: &StepPlace<'_>,
    cmd: &InstallCommand,
    platform: &str,
    update: &[String],
) -> Vec<(String, String, String)> {
    let Some(step) = previous_step(job, place, cmd) else {
        return Vec::new();
    };
    step.conda
        .iter()
        .filter(|p| {
            p.platforms.iter().any(|q| {
                crate::freeze::platform_key(&q.to_string()) == crate::freeze::platform_key(platform)
            })
        })
        .filter(|p| !update.iter().any(|u| u.eq_ignore_ascii_case(&p.name)))
        .map(|p| {
            (
                p.name.to_string(),
                p.version.to_string(),
                p.build.to_string(),
            )
        })
        .collect()
}

/// The priority the command's own flags set: `--strict-channel-priority`,
/// `--no-channel-priority` (disabled), `--channel-priority` (conda's
/// flexible).
fn command_priority(cmd: &InstallCommand) -> Option<crate::config::ChannelPriority> {
    use crate::config::ChannelPriority;
    cmd.options.iter().rev().find_map(|o| match o.as_str() {
        "--strict-channel-priority" => Some(ChannelPriority::Strict),
        "--no-channel-priority" => Some(ChannelPriority::Disabled),
        "--channel-priority" => Some(ChannelPriority::Flexible),
        _ => None,
    })
}

/// The channel priority an installer uses when nothing sets one. conda's
/// default is flexible, and mamba 1.x reads conda's configuration, so it
/// is too; micromamba (since 0.9) and mamba 2 (libmamba's configuration)
/// default to strict. mamba's version is the one a conda prefix of the
/// image records; without one, mamba 2 is assumed.
fn installer_priority(manager: Manager, state: &PlatformState) -> crate::config::ChannelPriority {
    use crate::config::ChannelPriority;
    match manager {
        Manager::Conda => ChannelPriority::Flexible,
        Manager::Mamba => {
            let mamba_1 = state.conda.values().any(|records| {
                records.get("mamba").is_some_and(|r| {
                    r.version()
                        .split('.')
                        .next()
                        .and_then(|m| m.parse::<u32>().ok())
                        .is_some_and(|m| m < 2)
                })
            });
            if mamba_1 {
                ChannelPriority::Flexible
            } else {
                ChannelPriority::Strict
            }
        }
        _ => ChannelPriority::Strict,
    }
}

async fn conda_step(
    config: &Config,
    session: &Session,
    job: &ImageJob,
    place: &StepPlace<'_>,
    step: &InstallStep,
    state: &mut PlatformState,
    options: &FreezeOptions,
) -> Result<StepOutcome, FreezeError> {
    let cmd = &step.command;
    check_files(job, place, cmd)?;
    let mut texts: Vec<String> = Vec::new();
    for s in &cmd.specs {
        texts.push(value_of(place, s)?);
    }
    for f in step_files(job, place, FileRole::CondaSpecs) {
        texts.extend(
            f.text
                .lines()
                // conda's MatchSpec drops a `# comment`; URLs keep `#md5`.
                .map(|l| match l.find('#') {
                    Some(i) if !l.contains("://") => l[..i].trim(),
                    _ => l.trim(),
                })
                .filter(|l| !l.is_empty() && *l != "@EXPLICIT")
                .map(str::to_string),
        );
    }
    let mut env_channels = Vec::new();
    let mut env_pip = Vec::new();
    let mut env_name = None;
    for f in step_files(job, place, FileRole::Environment) {
        let env = EnvironmentFile::parse(&f.path, &f.text)?;
        texts.extend(env.dependencies.iter().map(|d| d.value.clone()));
        env_channels.extend(env.channels.iter().map(|c| c.value.clone()));
        env_pip.extend(env.pip.iter().map(|p| p.value.clone()));
        env_name = env.name.as_ref().map(|n| n.value.clone());
    }
    let texts = crate::freeze::request::conda_request(previous_step(job, place, cmd), &texts);
    let mut specs = texts
        .iter()
        .map(|t| CondaSpec::parse(t).map_err(|e| place.error(StepCause::CondaSpec(e))))
        .collect::<Result<Vec<_>, _>>()?;

    let fresh = matches!(cmd.action, Action::Create | Action::EnvCreate);
    let prefix = match (&cmd.target, &env_name, state.conda_root()) {
        (Some(t), _, _) => state.conda_prefix_for(Some(t)),
        (None, Some(name), Some(root)) if fresh || matches!(cmd.action, Action::EnvUpdate) => {
            Some(if name == "base" {
                root
            } else {
                format!("{root}/envs/{name}")
            })
        }
        _ => state.conda_prefix_for(None),
    }
    .or_else(|| job.config.overrides.conda_prefix.clone())
    .ok_or_else(|| {
        place.error(StepCause::NoCondaPrefix {
            manager: cmd.manager.as_str().to_string(),
            platform: state.platform.clone(),
        })
    })?;

    let mut cli = Vec::new();
    for c in &cmd.channels {
        cli.push(value_of(place, c)?);
    }
    // The base image's own `.condarc` files (and those `COPY` put in place
    // before this step) over the configured channels, then the `conda
    // config` changes and `CONDA_CHANNELS` made before this step, in order.
    let image_rc = image_condarc(job, place, step, state)?;
    let under_image;
    let session_channels = if image_rc.is_empty() {
        &session.channels
    } else {
        under_image = session.channels.under_image(&image_rc);
        &under_image
    };
    let configured;
    let settings = if step.channel_config.is_empty() {
        session_channels
    } else {
        let mut s = session_channels.clone();
        let base = if s.channels.is_empty() && cmd.manager != Manager::Micromamba {
            vec!["defaults".to_string()]
        } else {
            s.channels.clone()
        };
        let (channels, priority, _) =
            crate::source::steps::effective_channels(&base, &step.channel_config);
        s.channels = channels;
        match priority.as_deref() {
            Some("strict") => s.priority = Some(crate::config::ChannelPriority::Strict),
            Some("flexible") => s.priority = Some(crate::config::ChannelPriority::Flexible),
            Some("disabled") => s.priority = Some(crate::config::ChannelPriority::Disabled),
            _ => {}
        }
        configured = s;
        &configured
    };
    let channels = settings
        .resolve(
            &ChannelRequest {
                cli,
                override_channels: cmd.override_channels,
                file: env_channels,
                implicit_defaults: cmd.manager != Manager::Micromamba,
            },
            &mut specs,
        )
        .map_err(|e| place.error(StepCause::Channels(e)))?;
    let installed: Vec<_> = if fresh {
        Vec::new()
    } else {
        state
            .conda
            .get(&prefix)
            .map(|r| r.values().cloned().collect())
            .unwrap_or_default()
    };
    let subdir = state
        .platform
        .parse::<crate::oci::Platform>()
        .ok()
        .and_then(|p| p.conda_subdir())
        .ok_or_else(|| place.error(StepCause::NoSubdir(state.platform.clone())))?;
    let mut target =
        CondaTarget::new(subdir).map_err(|e| place.error(StepCause::CondaTarget(e)))?;
    target.glibc = match (&job.config.overrides.glibc, &state.libc) {
        (Some(g), _) => Some(g.clone()),
        (None, Some((LibcKind::Glibc, v))) => Some(v.clone()),
        _ => None,
    };
    target.cuda.clone_from(&job.config.overrides.cuda);
    target.archspec.clone_from(&job.config.overrides.archspec);
    // `CONDA_OVERRIDE_*` as the installer sees them: the image's
    // environment (`ENV`), then the command's own `NAME=value` prefix.
    for (var, _) in crate::solve::conda::CONDA_OVERRIDES {
        if let Some(v) = state.env.get(var) {
            target.apply_override(var, v);
        }
    }
    for (var, value) in &cmd.env {
        if crate::solve::conda::CONDA_OVERRIDES
            .iter()
            .any(|(v, _)| v == var)
        {
            let value = value.as_deref().ok_or_else(|| {
                place.error(StepCause::CondaTarget(
                    crate::solve::conda::CondaTargetError::UnknownOverride(var.clone()),
                ))
            })?;
            target.apply_override(var, value);
        }
    }
    // `add_pip_as_python_dependency`: the image's `ENV` over the `.condarc`
    // files and imagelock.toml (conda reads `CONDA_*` variables last).
    let add_pip_var = cmd
        .env
        .iter()
        .rev()
        .find(|(k, _)| k == "CONDA_ADD_PIP_AS_PYTHON_DEPENDENCY")
        .and_then(|(_, v)| v.as_ref())
        .or_else(|| state.env.get("CONDA_ADD_PIP_AS_PYTHON_DEPENDENCY"));
    let add_pip = match add_pip_var {
        Some(v) if !v.trim().is_empty() => {
            crate::resolve::conda::parse_bool(v).ok_or_else(|| {
                place.error(StepCause::Channels(ResolveCondaError::Condarc {
                    path: "$CONDA_ADD_PIP_AS_PYTHON_DEPENDENCY".into(),
                    message: format!("`{v}` is not true or false"),
                }))
            })?
        }
        _ => settings.add_pip,
    };
    let mut request = CondaSolveRequest::new(specs, target);
    request.installed = installed;
    request.add_pip_as_python_dependency = add_pip;
    if !fresh {
        request.pinned = prefix_pins(job, place, state, &prefix)?;
    }
    for pin in &settings.pinned_packages {
        let spec = CondaSpec::parse(pin).map_err(|e| {
            place.error(StepCause::Channels(ResolveCondaError::Condarc {
                path: ".condarc `pinned_packages`".into(),
                message: format!("`{pin}` is not a match spec: {e}"),
            }))
        })?;
        request.pinned.push(spec);
    }
    let available = session
        .conda
        .fetch_for(&channels, subdir, &request, session.conda_progress.clone())
        .await
        .map_err(|e| place.error(StepCause::Channels(e)))?;
    if !options.ignore_locked {
        request.preferred = conda_preferences(job, place, cmd, &state.platform, &options.update);
    }
    request.channel_priority = command_priority(cmd)
        .or(settings.priority)
        .unwrap_or_else(|| installer_priority(cmd.manager, state));
    request.exclude_newer = match &options.exclude_newer {
        Some(d) => Some(
            crate::solve::conda::parse_exclude_newer(d)
                .map_err(|e| place.error(StepCause::Conda(e)))?,
        ),
        None => None,
    };
    request.context = Some(SolveContext {
        image: place.image.to_string(),
        file: place.file.clone(),
        line: u32::try_from(place.line).unwrap_or(u32::MAX),
    });
    let memo = session.conda_solves.clone();
    let solution = tokio::task::spawn_blocking(move || {
        crate::solve::conda::solve_with(&request, &available, Some(&memo))
    })
    .await
    .map_err(|e| place.error(StepCause::Internal(e.to_string())))?
    .map_err(|e| place.error(StepCause::Conda(e)))?;
    let unlockable = |e: crate::lock::LockBuildError| place.error(StepCause::Lock(e));
    let platform = lock_platform(&state.platform).map_err(unlockable)?;
    let mut conda = CondaPackage::from_solution(&solution, &platform).map_err(unlockable)?;
    for p in &mut conda {
        p.url = lock_url(config, &p.url)
            .parse()
            .map_err(|e: crate::lock::InvalidValue| {
                place.error(StepCause::Internal(e.to_string()))
            })?;
        p.channel =
            lock_url(config, &p.channel)
                .parse()
                .map_err(|e: crate::lock::InvalidValue| {
                    place.error(StepCause::Internal(e.to_string()))
                })?;
    }
    state.set_conda(&prefix, solution.records());
    let mut outcome = StepOutcome {
        requested: texts,
        channels: channels.iter().map(|c| lock_url(config, &c.url)).collect(),
        indexes: Vec::new(),
        find_links: Vec::new(),
        target: Some(prefix.clone()),
        locked: true,
        conda,
        pypi: Vec::new(),
        warnings: Vec::new(),
        ..StepOutcome::default()
    };
    let pip_interop = !fresh
        && (settings.pip_interop
            || state
                .env
                .get("CONDA_PIP_INTEROP_ENABLED")
                .is_some_and(|v| crate::resolve::conda::parse_bool(v).unwrap_or(false)));
    let pip_warning = pip_interop.then(|| {
        format!(
            "{}:{}: `pip_interop_enabled` is on: conda also counts what pip installed in `{prefix}` as installed, which imagelock does not; the lock may name conda packages the build does not install",
            place.file, place.line
        )
    });
    if !env_pip.is_empty() {
        let mut pip_cmd = cmd.clone();
        pip_cmd.files.clear();
        pip_cmd.specs.clear();
        let pip = Box::pin(pip_step(
            config,
            session,
            job,
            place,
            &pip_cmd,
            state,
            options,
            env_pip.clone(),
            Some(&prefix),
        ))
        .await?;
        outcome
            .requested
            .extend(env_pip.iter().map(|p| format!("pip: {p}")));
        outcome.indexes = pip.indexes;
        outcome.find_links = pip.find_links;
        outcome.pypi = pip.pypi;
        outcome.warnings = pip.warnings;
    }
    outcome.warnings.extend(pip_warning);
    Ok(outcome)
}

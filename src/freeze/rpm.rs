//! dnf, microdnf and yum steps: resolved on one platform the way dnf does
//! it (see [`crate::solve::rpm::solver`]), from the image's own rpm
//! database, `.repo` files, dnf variables and keys (as the base and
//! earlier steps leave them), against the repositories' metadata checked
//! as dnf checks it.
//!
//! A step imagelock cannot resolve from what it can read is recorded
//! `locked = false` with its place and why ([`rpm_command`],
//! [`rpm_step`]), never guessed.

use std::collections::{BTreeMap, HashMap};

use crate::config::Config;
use crate::freeze::outcome::{RpmErratum, RpmGone, RpmNewer, RpmStepDrift, StepOutcome, StepPlace};
use crate::freeze::state::PlatformState;
use crate::freeze::{FreezeError, StepCause};
use crate::image::rpmdb::read_rpmdb;
use crate::lock::{RpmPackage, RpmRepo, lock_platform};
use crate::resolve::apt::{AptMirrors, Keyring};
use crate::resolve::rpm::{
    RepoConfig, RpmRepoError, basearch, detect_releasever, fetch_modules, fetch_repo,
    fetch_updateinfo, parse_repo_file,
};
use crate::solve::rpm::Evr;
use crate::solve::rpm::modules::{
    ModuleMetadata, ModuleState, module_filter, parse_module_state, parse_modules,
};
use crate::solve::rpm::solver::{RpmReason, RpmRequest, RpmSolveError, RpmSolveOptions, solve};
use crate::solve::rpm::updateinfo::Advisory;
use crate::source::steps::{Action, InstallCommand, Manager};

/// What a dnf command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpmCommand {
    pub request: RpmRequest,
    /// `--setopt=install_weak_deps=…` when given.
    pub install_weak_deps: Option<bool>,
    /// `--enablerepo`, `--disablerepo` (`true`: enable), `--repo` in order.
    pub repo_switches: Vec<(String, bool)>,
    /// `--repo`/`--repoid`: only these repositories.
    pub only_repos: Vec<String>,
    /// `--nogpgcheck`: signatures are not checked.
    pub no_gpgcheck: bool,
    /// `dnf module enable NAME[:STREAM] …` (no stream: the default one);
    /// then `request` is an empty install and is not solved.
    pub enable_modules: Vec<(String, Option<String>)>,
}

fn yes(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Some(true),
        "0" | "no" | "false" | "off" => Some(false),
        _ => None,
    }
}

/// The request of a dnf/microdnf/yum command, or why it cannot be locked
/// from its text.
pub fn rpm_command(cmd: &InstallCommand) -> Result<RpmCommand, String> {
    if !matches!(cmd.manager, Manager::Dnf | Manager::Microdnf | Manager::Yum) {
        return Err(format!(
            "imagelock does not lock `{}` steps yet",
            cmd.manager.as_str()
        ));
    }
    if let Some(c) = &cmd.conditional {
        return Err(format!(
            "it runs only if `{c}`, which imagelock cannot decide"
        ));
    }
    let mut specs = Vec::new();
    for s in &cmd.specs {
        let Some(value) = &s.value else {
            return Err(format!(
                "`{}` uses {} which has no value here",
                s.written,
                s.unresolved.join(", ")
            ));
        };
        if value.ends_with(".rpm") || value.contains("://") {
            return Err(format!(
                "it installs the file `{value}`, which imagelock does not read yet"
            ));
        }
        specs.push(value.clone());
    }
    let mut enable_modules = Vec::new();
    let request = match cmd.action {
        Action::ModuleEnable => {
            if !cmd.text.split_whitespace().any(|w| w == "enable") {
                return Err(
                    "`dnf module install` installs a module's profile, which imagelock does not resolve yet"
                        .into(),
                );
            }
            if specs.is_empty() {
                return Err("it names no module to enable".into());
            }
            for spec in &specs {
                if spec.contains('/') {
                    return Err(format!(
                        "`{spec}` names a module profile, which imagelock does not resolve yet"
                    ));
                }
                let (name, stream) = match spec.split_once(':') {
                    Some((n, s)) => (n.to_string(), Some(s.to_string())),
                    None => (spec.clone(), None),
                };
                enable_modules.push((name, stream));
            }
            RpmRequest::Install(vec![])
        }
        Action::Install => RpmRequest::Install(specs),
        Action::Upgrade | Action::Update => RpmRequest::Upgrade(specs),
        Action::Remove => RpmRequest::Remove(specs),
        Action::NoChange => return Err("it changes nothing in the image".into()),
        other => {
            return Err(format!(
                "`{}` is not a dnf action imagelock resolves yet",
                other.as_str()
            ));
        }
    };
    let mut out = RpmCommand {
        request,
        install_weak_deps: None,
        repo_switches: Vec::new(),
        only_repos: Vec::new(),
        no_gpgcheck: false,
        enable_modules,
    };
    for o in &cmd.options {
        let (key, value) = match o.split_once([' ', '=']) {
            Some((k, v)) if k.starts_with("--") => (k, Some(v.trim())),
            _ => (o.as_str(), None),
        };
        match (key, value) {
            (
                "-y" | "--assumeyes" | "-q" | "--quiet" | "--nodocs" | "--best" | "--refresh"
                | "--noplugins" | "--allowerasing" | "-v" | "--verbose" | "--color" | "--cacheonly"
                | "-C" | "--disableplugin" | "--enableplugin",
                _,
            ) => {}
            ("--nogpgcheck", _) => out.no_gpgcheck = true,
            ("--enablerepo", Some(v)) => out
                .repo_switches
                .extend(v.split(',').map(|r| (r.trim().to_string(), true))),
            ("--disablerepo", Some(v)) => out
                .repo_switches
                .extend(v.split(',').map(|r| (r.trim().to_string(), false))),
            ("--repo" | "--repoid", Some(v)) => out
                .only_repos
                .extend(v.split(',').map(|r| r.trim().to_string())),
            ("--setopt", Some(v)) => {
                let (k, val) = v.split_once('=').unwrap_or((v, ""));
                match k.trim().to_ascii_lowercase().as_str() {
                    "install_weak_deps" => match yes(val) {
                        Some(b) => out.install_weak_deps = Some(b),
                        None => return Err(format!("`--setopt={v}` is not a boolean")),
                    },
                    // What dnf downloads, keeps or prints, not what it picks.
                    "tsflags"
                    | "keepcache"
                    | "max_parallel_downloads"
                    | "fastestmirror"
                    | "retries"
                    | "timeout"
                    | "deltarpm"
                    | "minrate"
                    | "throttle"
                    | "best"
                        if !(k == "best" && yes(val) == Some(false)) => {}
                    other => {
                        return Err(format!(
                            "`--setopt={other}=…` changes how dnf resolves, which imagelock does not model"
                        ));
                    }
                }
            }
            (
                "--nobest" | "--skip-broken" | "-x" | "--exclude" | "--installroot"
                | "--releasever" | "--forcearch" | "-c" | "--config",
                _,
            ) => {
                return Err(format!(
                    "`{o}` changes how dnf resolves, which imagelock does not model yet"
                ));
            }
            _ if o.starts_with('-') => {
                return Err(format!("imagelock does not know what dnf's `{o}` does"));
            }
            _ => {}
        }
    }
    Ok(out)
}

fn glob_match(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            text.starts_with(head)
                && (0..=text.len() - head.len()).any(|i| glob_match(tail, &text[head.len() + i..]))
        }
    }
}

/// The repositories dnf reads in the image, with the step's switches
/// applied, and the options of `[main]` in `dnf.conf`.
fn image_repos(
    files: &BTreeMap<String, Vec<u8>>,
    vars: &BTreeMap<String, String>,
    command: &RpmCommand,
) -> Result<(Vec<RepoConfig>, BTreeMap<String, String>), RpmRepoError> {
    let mut repos = Vec::new();
    let mut main = BTreeMap::new();
    for conf in ["/etc/dnf/dnf.conf", "/etc/yum.conf"] {
        if let Some(bytes) = files.get(conf) {
            for r in parse_repo_file(conf, &String::from_utf8_lossy(bytes), vars)? {
                if r.id == "main" {
                    main.extend(r.options.clone());
                    for (k, v) in [("gpgcheck", r.gpgcheck), ("repo_gpgcheck", r.repo_gpgcheck)] {
                        main.insert(k.to_string(), if v { "1" } else { "0" }.to_string());
                    }
                } else {
                    repos.push(r);
                }
            }
            break;
        }
    }
    for (path, bytes) in files {
        if path.starts_with("/etc/yum.repos.d/") && path.ends_with(".repo") {
            repos.extend(parse_repo_file(
                path,
                &String::from_utf8_lossy(bytes),
                vars,
            )?);
        }
    }
    for (pattern, on) in &command.repo_switches {
        for r in &mut repos {
            if glob_match(pattern, &r.id) {
                r.enabled = *on;
            }
        }
    }
    if !command.only_repos.is_empty() {
        for r in &mut repos {
            r.enabled = command.only_repos.iter().any(|p| glob_match(p, &r.id));
        }
    }
    repos.retain(|r| r.enabled);
    Ok((repos, main))
}

/// What the previous lock had for a dnf step on this platform, for drift.
#[derive(Debug, Default)]
pub struct Previous {
    /// The packages the step left installed.
    pub locked: Vec<RpmPackage>,
    /// Read the repositories' errata (`updateinfo`) for them.
    pub errata: bool,
}

/// Resolves a dnf step on `state.platform` and applies it to `state`.
///
/// With `previous` packages, also says what the repositories the step reads
/// have for them now ([`RpmStepDrift`]): newer builds, locked builds no
/// longer offered, and (with `previous.errata`) security advisories of
/// their `updateinfo` that ship a newer build.
pub async fn rpm_step(
    config: &Config,
    session: &crate::resolve::Session,
    place: &StepPlace<'_>,
    cmd: &InstallCommand,
    requested: Vec<String>,
    previous: Previous,
    state: &mut PlatformState,
) -> Result<StepOutcome, FreezeError> {
    let not_locked = |why: String| {
        Ok(StepOutcome {
            requested: requested.clone(),
            locked: false,
            warnings: vec![format!(
                "{}:{}: `{}` is not locked: {why}",
                place.file, place.line, cmd.text
            )],
            reason: Some(why),
            ..StepOutcome::default()
        })
    };
    let command = match rpm_command(cmd) {
        Ok(c) => c,
        Err(why) => return not_locked(why),
    };
    let installed = match &state.rpm_installed {
        Some(i) => i.clone(),
        None => match read_rpmdb(&state.apt_files) {
            Ok(Some(i)) => i,
            Ok(None) => {
                return not_locked(
                    "the image has no rpm database (`/var/lib/rpm/rpmdb.sqlite`), so imagelock does not know what dnf starts from".into(),
                );
            }
            Err(e) => return not_locked(format!("the image's rpm database cannot be read: {e}")),
        },
    };
    let platform = lock_platform(&state.platform).map_err(|e| place.error(StepCause::Lock(e)))?;
    let oci_arch = state
        .platform
        .split('/')
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let arch = basearch(&oci_arch).to_string();
    let mut vars = BTreeMap::new();
    for (path, bytes) in &state.apt_files {
        if let Some(name) = path.strip_prefix("/etc/dnf/vars/") {
            vars.insert(
                name.to_string(),
                String::from_utf8_lossy(bytes).trim().to_string(),
            );
        }
    }
    vars.insert("basearch".into(), arch.clone());
    vars.insert("arch".into(), arch.clone());
    if !vars.contains_key("releasever") {
        match detect_releasever(&installed) {
            Some(r) => {
                vars.insert("releasever".into(), r);
            }
            None => {
                return not_locked(
                    "no installed package provides `system-release(releasever)`, so imagelock does not know dnf's `$releasever`".into(),
                );
            }
        }
    }
    let (repos, main) = match image_repos(&state.apt_files, &vars, &command) {
        Ok(r) => r,
        Err(e) => return not_locked(e.to_string()),
    };
    if let Some(d) = main.get("reposdir") {
        return not_locked(format!(
            "`/etc/dnf/dnf.conf` sets `reposdir={d}`, which imagelock does not follow yet"
        ));
    }
    if repos.is_empty() {
        return not_locked(
            "the image enables no repository (`/etc/yum.repos.d/*.repo`) that imagelock can read"
                .into(),
        );
    }
    for r in &repos {
        if r.baseurls.is_empty() {
            return not_locked(
                RpmRepoError::NoBaseUrl {
                    location: r.location.clone(),
                    repo: r.id.clone(),
                }
                .to_string()
                .lines()
                .next()
                .unwrap_or_default()
                .to_string(),
            );
        }
        if let Some(p) = r.options.get("priority").filter(|p| p.trim() != "99") {
            return not_locked(format!(
                "{}: repository `{}` has `priority={p}`, which imagelock does not apply yet",
                r.location, r.id
            ));
        }
    }
    if session.offline() {
        return not_locked("`--offline` fetches no RPM repository".into());
    }
    let install_weak_deps = command
        .install_weak_deps
        .or_else(|| main.get("install_weak_deps").and_then(|v| yes(v)))
        .unwrap_or(true);

    let mirrors = AptMirrors::new(config.apt.mirrors_from(&config.root));
    let mut fetched = Vec::new();
    let mut metadata = ModuleMetadata::default();
    for r in &repos {
        let mut r = r.clone();
        if command.no_gpgcheck {
            r.repo_gpgcheck = false;
        }
        let mut ring = Keyring::default();
        if r.repo_gpgcheck {
            for k in &r.gpgkeys {
                let Some(path) = k.strip_prefix("file://") else {
                    return not_locked(format!(
                        "{}: repository `{}` has its key at `{k}`, which imagelock does not fetch",
                        r.location, r.id
                    ));
                };
                let Some(bytes) = state.apt_files.get(path) else {
                    return not_locked(format!(
                        "{}: the key `{path}` of repository `{}` is not in the image",
                        r.location, r.id
                    ));
                };
                ring.add(path, bytes)
                    .map_err(|e| place.error(StepCause::RpmRepo(RpmRepoError::Transport(e))))?;
            }
        }
        let f = fetch_repo(session.http(), &mirrors, &r, &ring)
            .await
            .map_err(|e| place.error(StepCause::RpmRepo(e)))?;
        let modules = fetch_modules(session.http(), &mirrors, &r.location, &f)
            .await
            .map_err(|e| place.error(StepCause::RpmRepo(e)))?;
        if let Some(yaml) = modules {
            match parse_modules(&format!("modules.yaml of repository `{}`", r.id), &yaml) {
                Ok(m) => {
                    metadata.streams.extend(m.streams);
                    for (k, v) in m.defaults {
                        metadata.defaults.entry(k).or_insert(v);
                    }
                }
                Err(e) => return not_locked(format!("{}: {e}", r.location)),
            }
        }
        fetched.push(f);
    }
    // dnf's module state: the image's, with earlier steps' over it; the
    // image's own defaults over the repositories'.
    let mut module_state = match &state.rpm_modules {
        Some(m) => m.clone(),
        None => {
            let mut m = BTreeMap::new();
            for (path, bytes) in &state.apt_files {
                if path.starts_with("/etc/dnf/modules.d/") && path.ends_with(".module") {
                    match parse_module_state(path, &String::from_utf8_lossy(bytes)) {
                        Ok(entries) => {
                            for (name, st) in entries {
                                if let Some(st) = st {
                                    m.insert(name, st);
                                }
                            }
                        }
                        Err(e) => return not_locked(e),
                    }
                }
            }
            m
        }
    };
    for (path, bytes) in &state.apt_files {
        if path.starts_with("/etc/dnf/modules.defaults.d/") && path.ends_with(".yaml") {
            match parse_modules(path, &String::from_utf8_lossy(bytes)) {
                Ok(m) => metadata.defaults.extend(m.defaults),
                Err(e) => return not_locked(e),
            }
        }
    }
    if !command.enable_modules.is_empty() {
        for (name, stream) in &command.enable_modules {
            let Some(stream) = stream
                .clone()
                .or_else(|| metadata.defaults.get(name).cloned())
            else {
                return not_locked(format!(
                    "module `{name}` has no default stream in the repositories the step reads; dnf needs `{name}:STREAM`"
                ));
            };
            if !metadata
                .streams
                .iter()
                .any(|s| &s.name == name && s.stream == stream)
            {
                return not_locked(format!(
                    "no repository the step reads has module `{name}` stream `{stream}`, so dnf fails here"
                ));
            }
            if let Some(ModuleState::Enabled(other)) = module_state.get(name)
                && other != &stream
            {
                return not_locked(format!(
                    "module `{name}` is enabled at stream `{other}`; dnf refuses to switch it to `{stream}` without `dnf module reset`, which imagelock does not model"
                ));
            }
            module_state.insert(name.clone(), ModuleState::Enabled(stream));
        }
        if let Err(why) = module_filter(&metadata, &module_state) {
            return not_locked(why);
        }
        let mut rpm_repos = Vec::new();
        for f in &fetched {
            rpm_repos
                .push(RpmRepo::new(f, &platform).map_err(|e| place.error(StepCause::Lock(e)))?);
        }
        state.rpm_modules = Some(module_state);
        return Ok(StepOutcome {
            requested,
            locked: true,
            rpm_repos,
            ..StepOutcome::default()
        });
    }
    let filter = match module_filter(&metadata, &module_state) {
        Ok(f) => f,
        Err(why) => return not_locked(why),
    };
    let hotfixes: Vec<bool> = repos
        .iter()
        .map(|r| {
            r.options
                .get("module_hotfixes")
                .and_then(|v| yes(v))
                .unwrap_or(false)
        })
        .collect();
    // What modular filtering hides is not there for dnf.
    let unfiltered = fetched.clone();
    for (f, hotfix) in fetched.iter_mut().zip(&hotfixes) {
        f.packages
            .retain(|p| filter.shows(&p.name, &p.nevra(), *hotfix));
    }
    let mut rpm_drift = locked_drift(&previous.locked, &unfiltered, &fetched, &installed);
    if previous.errata && !previous.locked.is_empty() {
        for (r, f) in repos.iter().zip(&fetched) {
            match fetch_updateinfo(session.http(), &mirrors, &r.location, f).await {
                Ok(Some(advisories)) => {
                    rpm_drift
                        .errata
                        .extend(security_errata(&previous.locked, &f.id, &advisories));
                }
                Ok(None) => {}
                Err(e) => rpm_drift.unread.push((f.id.clone(), e.to_string())),
            }
        }
    }
    // Every package once, from the first repository that offers it.
    let mut available = Vec::new();
    let mut from_repo = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (ri, f) in fetched.iter().enumerate() {
        for p in &f.packages {
            if seen.insert(p.nevra()) {
                available.push(p.clone());
                from_repo.push(ri);
            }
        }
    }
    let options = RpmSolveOptions {
        basearch: arch.clone(),
        install_weak_deps,
    };
    let request = command.request.clone();
    let before = installed.clone();
    let solved = tokio::task::spawn_blocking(move || {
        let t = solve(&before, &available, &request, &options);
        (t, available, before)
    })
    .await
    .map_err(|e| place.error(StepCause::Internal(e.to_string())))?;
    let (transaction, available, before) = solved;
    let transaction = match transaction {
        Ok(t) => t,
        Err(RpmSolveError::NoMatch(spec)) => {
            let name = spec
                .split(|c: char| c.is_whitespace() || "<>=".contains(c))
                .next()
                .unwrap_or_default();
            let e = match filter.hides(name, &metadata.streams) {
                Some(why) => RpmSolveError::Filtered { spec, why },
                None => RpmSolveError::NoMatch(spec),
            };
            return Err(place.error(StepCause::Rpm(e)));
        }
        Err(
            e @ (RpmSolveError::Glob(_)
            | RpmSolveError::Rich { .. }
            | RpmSolveError::CleanRequirements { .. }
            | RpmSolveError::Inconsistent(_)),
        ) => return not_locked(e.to_string()),
        Err(e) => return Err(place.error(StepCause::Rpm(e))),
    };

    let mut packages = Vec::new();
    let mut after: Vec<crate::solve::rpm::InstalledRpm> = before
        .iter()
        .filter(|p| transaction.after.contains(&p.nevra()))
        .cloned()
        .collect();
    let by_nevra: HashMap<String, &crate::solve::rpm::InstalledRpm> =
        before.iter().map(|p| (p.nevra(), p)).collect();
    for i in &transaction.install {
        let p = &available[i.available];
        let repo_id = &fetched[from_repo[i.available]].id;
        let upgrade = i
            .replaces
            .iter()
            .any(|r| by_nevra.get(r).is_some_and(|o| o.name == p.name));
        let reason = match &i.reason {
            RpmReason::Job => "requested".to_string(),
            RpmReason::Upgrade => "upgrade".to_string(),
            RpmReason::Dependency(of) => format!("Requires of {of}"),
            RpmReason::Weak(of) => format!("weak dependency of {of}"),
        };
        packages.push(
            RpmPackage::new(
                &p.name,
                &p.evr,
                &p.arch,
                if upgrade { "upgrade" } else { "install" },
                Some((p, repo_id.as_str())),
                Some(reason),
                i.replaces.clone(),
                &platform,
            )
            .map_err(|e| place.error(StepCause::Lock(e)))?,
        );
        after.push(p.to_installed());
    }
    for r in &transaction.remove {
        if let Some(p) = by_nevra.get(r) {
            packages.push(
                RpmPackage::new(
                    &p.name,
                    &p.evr,
                    &p.arch,
                    "remove",
                    None,
                    None,
                    vec![],
                    &platform,
                )
                .map_err(|e| place.error(StepCause::Lock(e)))?,
            );
        }
    }
    let mut rpm_repos = Vec::new();
    for f in &fetched {
        rpm_repos.push(RpmRepo::new(f, &platform).map_err(|e| place.error(StepCause::Lock(e)))?);
    }
    for i in &transaction.install {
        let nevra = available[i.available].nevra();
        if let Some(m) = filter.module_of(&nevra, &metadata.streams)
            && filter.by_default.contains(&m)
        {
            // dnf enables a default stream it installs from.
            module_state.insert(m.clone(), ModuleState::Enabled(filter.active[&m].clone()));
        }
    }
    state.rpm_installed = Some(after);
    state.rpm_modules = Some(module_state);
    Ok(StepOutcome {
        requested,
        locked: true,
        rpm: packages,
        rpm_repos,
        rpm_drift,
        ..StepOutcome::default()
    })
}

fn locked_evr(p: &RpmPackage) -> Evr {
    Evr::new(p.epoch, p.version.as_str(), p.release.as_str())
}

/// Whether dnf upgrades a package of `locked` arch to one of `arch`: the
/// same arch, or `noarch` on either side.
fn upgrade_arch(locked: &str, arch: &str) -> bool {
    locked == arch || locked == "noarch" || arch == "noarch"
}

/// Newer builds in `visible` (the repositories as modular filtering leaves
/// them) of the `locked` packages, and locked builds neither the
/// repositories (`fetched`, unfiltered) nor the image before the step
/// (`installed`) have any more.
fn locked_drift(
    locked: &[RpmPackage],
    fetched: &[crate::resolve::rpm::FetchedRepo],
    visible: &[crate::resolve::rpm::FetchedRepo],
    installed: &[crate::solve::rpm::InstalledRpm],
) -> RpmStepDrift {
    let mut out = RpmStepDrift::default();
    for p in locked {
        let evr = locked_evr(p);
        let (name, arch) = (p.name.as_str(), p.arch.as_str());
        let offered = fetched.iter().any(|f| {
            f.packages
                .iter()
                .any(|q| q.name == name && q.arch == arch && q.evr.compare(&evr).is_eq())
        }) || installed
            .iter()
            .any(|q| q.name == name && q.arch == arch && q.evr.compare(&evr).is_eq());
        if !offered {
            out.gone.push(RpmGone {
                name: name.to_string(),
                arch: arch.to_string(),
                evr: evr.to_string(),
                repo: p.repo.as_ref().map(ToString::to_string),
            });
        }
        let newest = visible
            .iter()
            .flat_map(|f| f.packages.iter().map(move |q| (f, q)))
            .filter(|(_, q)| {
                q.name == name && upgrade_arch(arch, &q.arch) && q.evr.compare(&evr).is_gt()
            })
            .max_by(|a, b| a.1.evr.compare(&b.1.evr));
        if let Some((f, q)) = newest {
            out.newer.push(RpmNewer {
                name: name.to_string(),
                arch: arch.to_string(),
                locked: evr.to_string(),
                newest: format!("{}.{}", q.evr, q.arch),
                repo: f.id.clone(),
            });
        }
    }
    out
}

/// The security advisories of repository `repo` that ship a newer build of
/// a `locked` package, one per advisory and package.
fn security_errata(locked: &[RpmPackage], repo: &str, advisories: &[Advisory]) -> Vec<RpmErratum> {
    let mut out = Vec::new();
    for p in locked {
        let evr = locked_evr(p);
        for a in advisories.iter().filter(|a| a.is_security()) {
            if let Some(fix) = a.fixes(p.name.as_str(), p.arch.as_str(), &evr) {
                out.push(RpmErratum {
                    name: p.name.to_string(),
                    arch: p.arch.to_string(),
                    locked: evr.to_string(),
                    advisory: a.id.clone(),
                    severity: a.severity.clone(),
                    cves: a.cves.clone(),
                    fixed: format!("{}.{}", fix.evr, fix.arch),
                    repo: repo.to_string(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::shell::Script;
    use crate::source::steps::find_install_commands;

    fn command(text: &str) -> InstallCommand {
        let script = Script::from_file_piece(text, 0);
        let lookup = |_: &str| None;
        find_install_commands(&script, &lookup)
            .unwrap()
            .into_iter()
            .next()
            .expect("a dnf command")
    }

    #[test]
    fn dnf_command_lines_become_requests() {
        let c = rpm_command(&command(
            "dnf install -y --nodocs --setopt=install_weak_deps=False --enablerepo=crb --disablerepo='*-debug' wget bzip2",
        ))
        .unwrap();
        assert_eq!(c.install_weak_deps, Some(false));
        assert_eq!(
            c.request,
            RpmRequest::Install(vec!["wget".into(), "bzip2".into()])
        );
        assert_eq!(c.repo_switches[0], ("crb".to_string(), true));
        let c = rpm_command(&command("microdnf update -y")).unwrap();
        assert_eq!(c.request, RpmRequest::Upgrade(vec![]));
        let c = rpm_command(&command("yum remove -y tool")).unwrap();
        assert_eq!(c.request, RpmRequest::Remove(vec!["tool".into()]));
        let c = rpm_command(&command("dnf --nobest install -y tool")).unwrap_err();
        assert!(c.contains("--nobest"), "{c}");
        assert!(glob_match("*-debug", "baseos-debug"));
        assert!(!glob_match("*-debug", "baseos"));
    }

    #[test]
    fn what_imagelock_cannot_know_is_said_not_guessed() {
        for (text, why) in [
            ("dnf install -y ./tool.rpm", "which imagelock does not read"),
            ("dnf install -y $NOPE", "has no value here"),
            ("dnf module install -y nodejs:18", "module's profile"),
            ("dnf module enable -y nodejs:18/common", "module profile"),
            (
                "dnf install -y --setopt=obsoletes=0 x",
                "changes how dnf resolves",
            ),
            ("dnf install --downloadonly -y x", "changes nothing"),
            ("apk add curl", "does not lock `apk` steps"),
        ] {
            let reason = rpm_command(&command(text)).unwrap_err();
            assert!(reason.contains(why), "{text}: {reason}");
        }
    }
}

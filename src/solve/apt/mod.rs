//! apt resolution as apt does it, pure: Debian formats (deb822, relations,
//! versions, sources, pins, apt.conf), apt's policy (candidate versions by
//! pin priority) and apt's marking (`MarkInstall` depth first, first
//! installable alternative), for `apt-get install`, `upgrade`,
//! `dist-upgrade`, `remove`/`purge` and `autoremove`.
//!
//! The network side (signed `InRelease`, hashed `Packages`) is
//! `crate::resolve::apt`; the image side (dpkg status, sources, pins read
//! from layers) is `crate::image::dpkg`.

pub mod control;
pub mod deb822;
mod engine;
pub mod release;
pub mod sources;
pub mod universe;

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashSet};

pub use control::{
    BinaryPackage, MultiArch, Relation, VersionOp, compare_versions, parse_relations,
};
pub use sources::{AptOptions, Pin, PinTarget, SourceEntry};
pub use universe::{PackageFileInfo, PackageIndex, Universe, UniverseError};

use engine::DepCache;

/// One package named on an apt command line:
/// `name[:arch][=version|/release][+|-]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptPackageSpec {
    pub name: String,
    pub arch: Option<String>,
    pub version: Option<String>,
    pub release: Option<String>,
    /// `pkg-` on an install line removes it.
    pub remove: bool,
    /// The word before a trailing `+`/`-` was taken as a modifier: apt
    /// first looks for a package named so (`g++`).
    pub unmodified: Option<String>,
}

impl AptPackageSpec {
    /// Parses one command-line word.
    pub fn parse(word: &str) -> Result<Self, SolveAptError> {
        let mut w = word;
        let mut remove = false;
        let mut unmodified = None;
        if let Some(x) = w.strip_suffix('-')
            && !x.contains('=')
        {
            unmodified = Some(w.to_string());
            w = x;
            remove = true;
        } else if let Some(x) = w.strip_suffix('+')
            && !x.contains('=')
        {
            unmodified = Some(w.to_string());
            w = x;
        }
        let (head, version, release) = if let Some((h, v)) = w.split_once('=') {
            (h, Some(v.to_string()), None)
        } else if let Some((h, r)) = w.split_once('/') {
            (h, None, Some(r.to_string()))
        } else {
            (w, None, None)
        };
        let (name, arch) = match head.split_once(':') {
            Some((n, a)) => (n, Some(a.to_string())),
            None => (head, None),
        };
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-._".contains(&b))
            && version.as_deref().is_none_or(|v| !v.is_empty())
            && release.as_deref().is_none_or(|r| !r.is_empty());
        if !valid {
            return Err(SolveAptError::BadSpec(word.to_string()));
        }
        Ok(AptPackageSpec {
            name: name.to_string(),
            arch,
            version,
            release,
            remove,
            unmodified,
        })
    }
}

/// What an apt step asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AptRequest {
    Install(Vec<AptPackageSpec>),
    Upgrade,
    DistUpgrade,
    Remove {
        packages: Vec<AptPackageSpec>,
        purge: bool,
    },
    Autoremove,
}

/// An apt command as resolution needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptCommand {
    pub request: AptRequest,
    /// `--no-install-recommends` / `--install-recommends`; `None` leaves
    /// apt.conf's setting.
    pub install_recommends: Option<bool>,
    /// `-t`/`--target-release`.
    pub target_release: Option<String>,
    /// `--auto-remove`/`--autoremove` on install or remove.
    pub auto_remove: bool,
}

impl AptCommand {
    pub fn new(request: AptRequest) -> Self {
        AptCommand {
            request,
            install_recommends: None,
            target_release: None,
            auto_remove: false,
        }
    }
}

/// What happens to one package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AptAction {
    Install,
    Upgrade,
    Downgrade,
    Remove,
    Purge,
    /// Requested, already installed at the candidate: nothing to do.
    Keep,
}

/// One package of a resolved apt step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptRecord {
    pub action: AptAction,
    pub name: String,
    pub version: String,
    /// The Debian architecture as the `.deb` names it (`all` included).
    pub architecture: String,
    pub old_version: Option<String>,
    pub source: String,
    pub source_version: String,
    /// The pool path under the archive URI.
    pub filename: String,
    pub size: u64,
    pub sha256: String,
    /// The archive URI the version comes from (first file that offers it).
    pub archive_uri: String,
    /// `requested`, `Depends of curl`, `Recommends of git`, …
    pub reason: String,
    /// Was a version of this package already installed before the step.
    pub in_base: bool,
}

/// The result of one apt step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptOutcome {
    /// Sorted by name and architecture.
    pub records: Vec<AptRecord>,
    /// True when the state needed apt's problem resolver, which imagelock
    /// only approximates: the records then may differ from apt's.
    pub used_problem_resolver: bool,
}

/// Why an apt step cannot be resolved (the wording follows apt's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SolveAptError {
    #[error(
        "`{0}` is not a package as apt takes it\nhint: write `name`, `name:arch`, `name=version` or `name/release`"
    )]
    BadSpec(String),
    #[error(
        "unable to locate package `{0}`\nhint: no source in the image offers it; check the sources and the architecture"
    )]
    NotFound(String),
    #[error("package `{name}` has no installation candidate\nhint: it is referenced by other packages but no source offers a version{}", providers_hint(.providers))]
    NoCandidate {
        name: String,
        providers: Vec<String>,
    },
    #[error("package `{name}` is a virtual package provided by: {}\nhint: you should explicitly select one to install", .providers.join(", "))]
    AmbiguousVirtual {
        name: String,
        providers: Vec<String>,
    },
    #[error("version `{version}` for `{name}` was not found\nhint: the sources offer {}", .available.join(", "))]
    VersionNotFound {
        name: String,
        version: String,
        available: Vec<String>,
    },
    #[error("release `{release}` for `{name}` was not found\nhint: the sources offer it from {}", .available.join(", "))]
    ReleaseNotFound {
        name: String,
        release: String,
        available: Vec<String>,
    },
    #[error("unmet dependencies: {}\nhint: apt would stop here too; pin other versions or add the missing source", .0.join("; "))]
    Unmet(Vec<String>),
    #[error(
        "removing the essential package `{0}` is refused\nhint: apt refuses it without --allow-remove-essential"
    )]
    Essential(String),
    #[error("{0}")]
    Universe(#[from] UniverseError),
}

fn providers_hint(p: &[String]) -> String {
    if p.is_empty() {
        String::new()
    } else {
        format!("; it is a virtual package provided by {}", p.join(", "))
    }
}

/// Resolves one apt step against a universe built from the state before
/// the step. `auto_installed` are apt's automatic marks
/// (`/var/lib/apt/extended_states`), as `(name, arch)`.
pub fn resolve(
    universe: &Universe,
    command: &AptCommand,
    auto_installed: &HashSet<(String, String)>,
) -> Result<AptOutcome, SolveAptError> {
    resolve_preferring(universe, command, auto_installed, &[])
}

/// [`resolve`], with the candidate of each `(name, arch, version)` of
/// `prefer` set to that version while the sources still offer it: a
/// re-freeze keeps what the lock chose unless told to move it.
pub fn resolve_preferring(
    universe: &Universe,
    command: &AptCommand,
    auto_installed: &HashSet<(String, String)>,
    prefer: &[(String, String, String)],
) -> Result<AptOutcome, SolveAptError> {
    let rebuilt;
    let u = if let Some(t) = &command.target_release {
        // `-t` is APT::Default-Release for this command.
        let mut options = universe.options.clone();
        options.default_release = Some(t.clone());
        rebuilt = universe.with_options(options)?;
        &rebuilt
    } else {
        universe
    };
    let recommends = command
        .install_recommends
        .unwrap_or(u.options.install_recommends);
    let mut cache = DepCache::new(u, recommends, u.options.install_suggests);
    for (name, arch, version) in prefer {
        let arch = if arch == "all" {
            u.native.as_str()
        } else {
            arch
        };
        if let Some(p) = u.find(name, arch)
            && let Some(&v) = u.pkgs[p]
                .versions
                .iter()
                .find(|&&v| u.vers[v].data.version == *version)
        {
            cache.set_candidate(p, v);
        }
    }
    let mut requested = BTreeSet::new();
    let mut removed = BTreeSet::new();
    match &command.request {
        AptRequest::Install(specs) => {
            let mut order = Vec::new();
            let mut release_switch = Vec::new();
            for spec in specs {
                let literal = spec.unmodified.as_deref().and_then(|w| {
                    let s = AptPackageSpec {
                        name: w.to_string(),
                        arch: None,
                        version: None,
                        release: None,
                        remove: false,
                        unmodified: None,
                    };
                    find_pkg(u, &s)
                        .is_some_and(|p| !u.pkgs[p].versions.is_empty())
                        .then_some(s)
                });
                let spec = literal.as_ref().unwrap_or(spec);
                let (p, v) = select(&cache, spec)?;
                if spec.remove {
                    removed.insert(p);
                    continue;
                }
                cache.set_candidate(p, v);
                if let Some(r) = &spec.release {
                    release_switch.push((v, r.clone()));
                }
                if !order.contains(&p) {
                    order.push(p);
                }
            }
            for &p in &removed {
                remove_one(&mut cache, p, false)?;
            }
            for &p in &order {
                cache.protect(p);
                cache.mark_install(p, false, 0, true, Some("requested".into()));
                requested.insert(p);
            }
            for (v, r) in release_switch {
                switch_release(&mut cache, v, &r);
            }
            for &p in &order {
                cache.mark_install(p, true, 0, true, Some("requested".into()));
            }
        }
        AptRequest::Upgrade | AptRequest::DistUpgrade => {
            let dist = command.request == AptRequest::DistUpgrade;
            let mut installed: Vec<usize> = (0..u.pkgs.len())
                .filter(|&p| u.pkgs[p].current.is_some())
                .collect();
            // Essential packages first, as apt's pkgDistUpgrade does.
            installed
                .sort_by_key(|&p| !u.pkgs[p].current.is_some_and(|v| u.vers[v].data.essential));
            for p in installed {
                if cache.candidate(p) == u.pkgs[p].current {
                    continue;
                }
                if dist {
                    cache.mark_install(p, true, 0, false, Some("dist-upgrade".into()));
                } else {
                    upgrade_without_new(&mut cache, p);
                }
            }
        }
        AptRequest::Remove { packages, purge } => {
            for spec in packages {
                let p =
                    find_pkg(u, spec).ok_or_else(|| SolveAptError::NotFound(spec.name.clone()))?;
                removed.insert(p);
                remove_one(&mut cache, p, *purge)?;
            }
        }
        AptRequest::Autoremove => {}
    }
    let still = cache.fix_broken(&requested);
    if !still.is_empty() {
        return Err(SolveAptError::Unmet(
            still.iter().map(|&p| u.full_name(p)).collect(),
        ));
    }
    for (p, old, new, _, _) in cache.changes() {
        if new.is_none()
            && old.is_some_and(|v| u.vers[v].data.essential)
            && !matches!(
                command.request,
                AptRequest::Upgrade | AptRequest::DistUpgrade
            )
        {
            return Err(SolveAptError::Essential(u.full_name(p)));
        }
    }
    if command.auto_remove || command.request == AptRequest::Autoremove {
        let mut auto = auto_installed.clone();
        for (p, old, _, _, _) in cache.changes() {
            if old.is_none() && !requested.contains(&p) {
                auto.insert((u.pkgs[p].name.clone(), u.pkgs[p].arch.clone()));
            }
        }
        for p in cache.garbage(&auto) {
            cache.mark_delete(p, false, Some("no longer needed (autoremove)".into()));
        }
    }
    let mut records = Vec::new();
    for (p, old, new, purge, reason) in cache.changes() {
        let v = new.or(old).unwrap_or_default();
        let data = &u.vers[v].data;
        let action = match (old, new) {
            (None, Some(_)) => AptAction::Install,
            (Some(o), Some(n))
                if compare_versions(&u.vers[n].data.version, &u.vers[o].data.version).is_lt() =>
            {
                AptAction::Downgrade
            }
            (Some(_), Some(_)) => AptAction::Upgrade,
            (_, None) if purge => AptAction::Purge,
            (_, None) => AptAction::Remove,
        };
        records.push(record(
            u,
            p,
            v,
            action,
            old.map(|o| u.vers[o].data.version.clone()),
            reason.unwrap_or_default(),
            data,
        ));
    }
    for &p in &requested {
        if let Some(cur) = u.pkgs[p].current
            && cache.inst_ver(p) == Some(cur)
        {
            records.push(record(
                u,
                p,
                cur,
                AptAction::Keep,
                Some(u.vers[cur].data.version.clone()),
                "requested".into(),
                &u.vers[cur].data,
            ));
        }
    }
    records.sort_by(|a, b| (&a.name, &a.architecture).cmp(&(&b.name, &b.architecture)));
    Ok(AptOutcome {
        records,
        used_problem_resolver: cache.used_problem_resolver,
    })
}

fn record(
    u: &Universe,
    p: usize,
    v: usize,
    action: AptAction,
    old_version: Option<String>,
    reason: String,
    data: &BinaryPackage,
) -> AptRecord {
    AptRecord {
        action,
        name: data.name.clone(),
        version: data.version.clone(),
        architecture: data.arch.clone(),
        old_version,
        source: data.source.clone(),
        source_version: data.source_version.clone(),
        filename: data.filename.clone(),
        size: data.size,
        sha256: data.sha256.clone(),
        archive_uri: u.vers[v]
            .files
            .iter()
            .find(|&&f| f != 0)
            .map(|&f| u.files[f].uri.clone())
            .unwrap_or_default(),
        reason,
        in_base: u.pkgs[p].current.is_some(),
    }
}

fn find_pkg(u: &Universe, spec: &AptPackageSpec) -> Option<usize> {
    let arch = spec
        .arch
        .as_deref()
        .filter(|a| *a != "any" && *a != "native")
        .unwrap_or(&u.native);
    u.find(&spec.name, arch)
}

/// apt-get's command-line selection: the package, or the single package
/// providing a virtual name; the version by `=`, `/` or the candidate.
fn select(cache: &DepCache<'_>, spec: &AptPackageSpec) -> Result<(usize, usize), SolveAptError> {
    let u = cache.u;
    let real = find_pkg(u, spec).filter(|&p| !u.pkgs[p].versions.is_empty());
    let Some(p) = real else {
        if spec.remove {
            return Err(SolveAptError::NotFound(spec.name.clone()));
        }
        // A virtual package: providers whose candidate provides it.
        let mut chosen: Vec<(usize, usize)> = Vec::new();
        let mut all = Vec::new();
        for (v, _) in u.providers(&spec.name) {
            let q = u.vers[*v].pkg;
            all.push(format!("{} {}", u.full_name(q), u.vers[*v].data.version));
            if cache.candidate(q) == Some(*v) && !chosen.iter().any(|(c, _)| *c == q) {
                chosen.push((q, *v));
            }
        }
        all.sort();
        all.dedup();
        let names: BTreeSet<&str> = chosen
            .iter()
            .map(|(q, _)| u.pkgs[*q].name.as_str())
            .collect();
        return match names.len() {
            0 if all.is_empty() => Err(SolveAptError::NotFound(spec.name.clone())),
            0 => Err(SolveAptError::NoCandidate {
                name: spec.name.clone(),
                providers: all,
            }),
            1 => {
                let native = chosen
                    .iter()
                    .find(|(q, _)| u.pkgs[*q].arch == u.native)
                    .unwrap_or(&chosen[0]);
                Ok(*native)
            }
            _ => Err(SolveAptError::AmbiguousVirtual {
                name: spec.name.clone(),
                providers: all,
            }),
        };
    };
    let pkg = &u.pkgs[p];
    if let Some(want) = &spec.version {
        return pkg
            .versions
            .iter()
            .find(|&&v| &u.vers[v].data.version == want)
            .map(|&v| (p, v))
            .ok_or_else(|| SolveAptError::VersionNotFound {
                name: spec.name.clone(),
                version: want.clone(),
                available: pkg
                    .versions
                    .iter()
                    .map(|&v| u.vers[v].data.version.clone())
                    .collect(),
            });
    }
    if let Some(rel) = &spec.release {
        return pkg
            .versions
            .iter()
            .find(|&&v| {
                u.vers[v]
                    .files
                    .iter()
                    .any(|&f| f != 0 && (u.files[f].archive == *rel || u.files[f].codename == *rel))
            })
            .map(|&v| (p, v))
            .ok_or_else(|| SolveAptError::ReleaseNotFound {
                name: spec.name.clone(),
                release: rel.clone(),
                available: pkg
                    .versions
                    .iter()
                    .flat_map(|&v| {
                        u.vers[v]
                            .files
                            .iter()
                            .filter(|&&f| f != 0)
                            .map(|&f| u.files[f].archive.clone())
                    })
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect(),
            });
    }
    match cache.candidate(p) {
        Some(v) => Ok((p, v)),
        None => Err(SolveAptError::NoCandidate {
            name: spec.name.clone(),
            providers: Vec::new(),
        }),
    }
}

/// apt's `SetCandidateRelease`: dependencies of a version taken from
/// `release` that the current candidates cannot satisfy switch to that
/// release, recursively.
fn switch_release(cache: &mut DepCache<'_>, v: usize, release: &str) {
    let u = cache.u;
    let mut todo = vec![v];
    let mut seen = HashSet::new();
    while let Some(v) = todo.pop() {
        if !seen.insert(v) {
            continue;
        }
        let data = &u.vers[v].data;
        let arch = &u.pkgs[u.vers[v].pkg].arch;
        for g in data.pre_depends.iter().chain(&data.depends) {
            let ok = g.iter().any(|r| {
                !u.satisfiers(r, arch, &|q| cache.candidate(q)).is_empty()
                    || !u.satisfiers(r, arch, &|q| u.pkgs[q].current).is_empty()
            });
            if ok {
                continue;
            }
            for r in g {
                let in_release = |q: usize| {
                    u.pkgs[q].versions.iter().copied().find(|&x| {
                        u.vers[x].files.iter().any(|&f| {
                            f != 0
                                && (u.files[f].archive == release || u.files[f].codename == release)
                        })
                    })
                };
                if let Some(&t) = u.satisfiers(r, arch, &in_release).first() {
                    cache.set_candidate(u.vers[t].pkg, t);
                    todo.push(t);
                    break;
                }
            }
        }
    }
}

fn remove_one(cache: &mut DepCache<'_>, p: usize, purge: bool) -> Result<(), SolveAptError> {
    let u = cache.u;
    if u.pkgs[p].current.is_some_and(|v| u.vers[v].data.essential) {
        return Err(SolveAptError::Essential(u.full_name(p)));
    }
    cache.protect(p);
    cache.mark_delete(p, purge, Some("requested".into()));
    Ok(())
}

/// `apt-get upgrade`: upgrade a package only when that needs no new
/// package and removes none (apt keeps it back otherwise).
fn upgrade_without_new(cache: &mut DepCache<'_>, p: usize) {
    let before: HashSet<_> = cache.changes().into_iter().map(|c| c.0).collect();
    let snapshot = cache.snapshot();
    cache.mark_install(p, true, 0, false, Some("upgrade".into()));
    let bad = cache
        .changes()
        .into_iter()
        .any(|(q, old, new, _, _)| !before.contains(&q) && (old.is_none() || new.is_none()));
    if bad {
        cache.restore(snapshot);
    }
}

impl Universe {
    /// The same universe under other options (`-t` changes priorities).
    pub fn with_options(&self, options: AptOptions) -> Result<Universe, UniverseError> {
        self.rebuild(options)
    }
}

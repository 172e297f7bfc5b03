//! `apk add` and `apk del` steps: resolved on one platform from the
//! image's own apk state (`/lib/apk/db/installed`, `/etc/apk/world`,
//! `/etc/apk/repositories`, `/etc/apk/keys`, `/etc/apk/arch`, as the base
//! and earlier steps leave them), against each repository's signed
//! `APKINDEX.tar.gz` ([`crate::resolve::apk`]), with the resolver of
//! [`crate::solve::apk`].
//!
//! A step imagelock cannot decide exactly is recorded `locked = false` with
//! its place and why, never guessed.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::Config;
use crate::freeze::outcome::{
    ApkGone, ApkNewer, ApkReplaced, ApkStepDrift, ApkUnread, StepOutcome, StepPlace,
};
use crate::freeze::state::PlatformState;
use crate::freeze::{FreezeError, StepCause};
use crate::lock::{ApkPackage, ApkRepo, lock_platform};
use crate::resolve::apk::{ApkRepository, FetchedApkIndex, fetch_index, parse_repositories};
use crate::resolve::apt::AptMirrors;
use crate::solve::apk::{
    ApkProblem, ApkRecord, ApkSolveError, Candidate, Dep, compare_versions, parse_index,
    parse_world, solve,
};
use crate::source::steps::{Action, InstallCommand, Manager};

/// The `origin` of the virtual package record an `apk add --virtual` step
/// makes (for the steps after it; never written to a lock).
const MADE_VIRTUAL: &str = " imagelock: virtual";

/// What an apk command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApkCommand {
    /// `apk add` (true) or `apk del`.
    pub add: bool,
    pub deps: Vec<Dep>,
    /// `--virtual NAME` / `-t NAME`.
    pub virtual_name: Option<String>,
}

/// The request of an apk command, or why it cannot be locked from its text.
pub fn apk_command(cmd: &InstallCommand) -> Result<ApkCommand, String> {
    if cmd.manager != Manager::Apk {
        return Err(format!("`{}` is not an apk command", cmd.manager.as_str()));
    }
    if let Some(c) = &cmd.conditional {
        return Err(format!(
            "it runs only if `{c}`, which imagelock cannot decide"
        ));
    }
    let add = match cmd.action {
        Action::Install => true,
        Action::Remove => false,
        other => {
            return Err(format!(
                "`apk {}` is not resolved by imagelock yet",
                other.as_str()
            ));
        }
    };
    let mut virtual_name = None;
    for o in &cmd.options {
        let (key, value) = match o.split_once([' ', '=']) {
            Some((k, v)) if k.starts_with('-') => (k, Some(v.trim())),
            _ => (o.as_str(), None),
        };
        match (key, value) {
            // How apk fetches and prints, not what it picks.
            (
                "--no-cache" | "-U" | "--update-cache" | "-q" | "--quiet" | "-v" | "--verbose"
                | "--no-progress" | "--progress" | "--purge" | "--no-interactive"
                | "--clean-protected" | "--wait",
                _,
            ) => {}
            ("-t" | "--virtual", Some(v)) if add => virtual_name = Some(v.to_string()),
            _ if o.starts_with('-') => {
                return Err(format!(
                    "`{o}` changes what apk resolves or reads, which imagelock does not model yet"
                ));
            }
            _ => {}
        }
    }
    let mut deps = Vec::new();
    for s in &cmd.specs {
        let Some(value) = &s.value else {
            return Err(format!(
                "`{}` uses {} which has no value here",
                s.written,
                s.unresolved.join(", ")
            ));
        };
        if value.ends_with(".apk") || value.contains('/') {
            return Err(format!(
                "it installs the file `{value}`, which imagelock does not read yet"
            ));
        }
        let Some(d) = Dep::parse(value) else {
            return Err(format!("`{value}` is not a dependency imagelock reads"));
        };
        if d.conflict {
            return Err(format!(
                "`{value}` adds a conflict to the world, which imagelock does not model yet"
            ));
        }
        deps.push(d);
    }
    if deps.is_empty() {
        return Err("it names no package".into());
    }
    Ok(ApkCommand {
        add,
        deps,
        virtual_name,
    })
}

/// apk's architecture name for an OCI platform (`linux/amd64`).
fn apk_arch(platform: &str) -> Option<&'static str> {
    let mut parts = platform.split('/').skip(1);
    Some(match (parts.next()?, parts.next()) {
        ("amd64", _) => "x86_64",
        ("arm64", _) => "aarch64",
        ("386", _) => "x86",
        ("arm", Some("v7")) => "armv7",
        ("arm", Some("v6")) => "armhf",
        ("ppc64le", _) => "ppc64le",
        ("s390x", _) => "s390x",
        ("riscv64", _) => "riscv64",
        ("loong64", _) => "loongarch64",
        _ => return None,
    })
}

/// Resolves an apk step on `state.platform` and applies it to `state`. A
/// step that is not locked leaves apk's state unknown to the apk steps
/// after it ([`PlatformState::apk_unknown`]).
///
/// With `previous` (drift: the packages the previous lock installed in this
/// step on this platform), also says what the repositories the step reads
/// have for them now ([`ApkStepDrift`]), and a repository that cannot be
/// read or whose signature fails is named there (the step is then not
/// locked) instead of failing the run.
#[allow(clippy::too_many_arguments)]
pub async fn apk_step(
    config: &Config,
    session: &crate::resolve::Session,
    place: &StepPlace<'_>,
    cmd: &InstallCommand,
    requested: Vec<String>,
    earlier_text: &str,
    previous: Option<Vec<ApkPackage>>,
    state: &mut PlatformState,
) -> Result<StepOutcome, FreezeError> {
    let mut drift = ApkStepDrift::default();
    let mut outcome = resolve_apk_step(
        config,
        session,
        place,
        cmd,
        requested,
        earlier_text,
        previous.as_deref(),
        &mut drift,
        state,
    )
    .await?;
    if let Some(previous) = &previous
        && !previous.is_empty()
        && !outcome.locked
        && drift.unread.is_empty()
        && drift.unsolvable.is_none()
    {
        // The lock has packages here that the step, as it resolves now,
        // does not lock (or does not let imagelock check): said, not passed
        // over.
        if drift.checked {
            drift.not_locked_now = outcome.reason.clone();
        } else {
            drift.skipped = outcome.reason.clone();
        }
    }
    outcome.apk_drift = drift;
    if !outcome.locked && state.apk_unknown.is_none() {
        state.apk_unknown = Some(format!(
            "{}:{}: `{}` is not locked",
            place.file, place.line, cmd.text
        ));
    }
    Ok(outcome)
}

#[allow(clippy::too_many_arguments)]
async fn resolve_apk_step(
    config: &Config,
    session: &crate::resolve::Session,
    place: &StepPlace<'_>,
    cmd: &InstallCommand,
    requested: Vec<String>,
    earlier_text: &str,
    previous: Option<&[ApkPackage]>,
    drift: &mut ApkStepDrift,
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
    if let Some(earlier) = &state.apk_unknown {
        return not_locked(format!(
            "the apk step at {earlier}, so imagelock does not know what apk starts from here"
        ));
    }
    let command = match apk_command(cmd) {
        Ok(c) => c,
        Err(why) => return not_locked(why),
    };
    if let Some(at) = ["/etc/apk", "/lib/apk"]
        .iter()
        .find(|p| earlier_text.contains(*p))
    {
        return not_locked(format!(
            "an earlier instruction names `{at}`; imagelock does not follow changes to apk's files yet"
        ));
    }
    let files = &state.apt_files;
    let text = |p: &str| {
        files
            .get(p)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    };
    let installed = match &state.apk_installed {
        Some(i) => i.clone(),
        None => match text("/lib/apk/db/installed") {
            None => {
                return not_locked(
                    "the image has no apk database (`/lib/apk/db/installed`), so imagelock does not know what apk starts from".into(),
                );
            }
            Some(t) => match parse_index("/lib/apk/db/installed", &t) {
                Ok(i) => i,
                Err(e) => return not_locked(e.to_string()),
            },
        },
    };
    let world = match &state.apk_world {
        Some(w) => w.clone(),
        None => match parse_world(&text("/etc/apk/world").unwrap_or_default()) {
            Ok(w) => w,
            Err(e) => return not_locked(e),
        },
    };
    let Some(repos_text) = text("/etc/apk/repositories") else {
        return not_locked("the image has no `/etc/apk/repositories`".into());
    };
    let repos = match parse_repositories("/etc/apk/repositories", &repos_text) {
        Ok(r) => r,
        Err(e) => return not_locked(e),
    };
    if repos.is_empty() {
        return not_locked("`/etc/apk/repositories` names no repository".into());
    }
    if let Some(r) = repos
        .iter()
        .find(|r| !(r.url.starts_with("http://") || r.url.starts_with("https://")))
    {
        return not_locked(format!(
            "{}: repository `{}` is not an http(s) URL, which imagelock does not read",
            r.location, r.url
        ));
    }
    let arch = match text("/etc/apk/arch") {
        Some(a) if !a.trim().is_empty() => a.trim().to_string(),
        _ => match apk_arch(&state.platform) {
            Some(a) => a.to_string(),
            None => {
                return not_locked(format!(
                    "imagelock does not know apk's architecture for `{}`",
                    state.platform
                ));
            }
        },
    };
    let keys: BTreeMap<String, Vec<u8>> = files
        .iter()
        .filter_map(|(p, b)| Some((p.strip_prefix("/etc/apk/keys/")?.to_string(), b.clone())))
        .collect();
    if session.offline() {
        return not_locked("`--offline` fetches no Alpine repository".into());
    }
    let platform = lock_platform(&state.platform).map_err(|e| place.error(StepCause::Lock(e)))?;

    let mirrors = AptMirrors::new(config.apt.mirrors.clone());
    let mut fetched = Vec::new();
    for r in &repos {
        match fetch_index(session.http(), &mirrors, r, &arch, &keys).await {
            Ok(f) => fetched.push(f),
            // Drift names every repository it cannot read, and goes on.
            Err(e) if previous.is_some() => drift.unread.push(ApkUnread {
                repo: repo_label(r),
                why: e.to_string(),
            }),
            Err(e) => return Err(place.error(StepCause::ApkRepo(e))),
        }
    }
    if let Some(first) = drift.unread.first() {
        // The whole error (with its hint) is the drift finding's detail.
        return not_locked(format!(
            "repository `{}` cannot be read: {}",
            first.repo,
            first.why.lines().next().unwrap_or_default()
        ));
    }
    if let Some(previous) = previous {
        *drift = locked_drift(previous, &fetched, &installed);
    }

    // The world the step leaves.
    let mut new_world = world.clone();
    let mut installed = installed;
    let mut virtual_record = None;
    if command.add {
        let entries: Vec<Dep> = match &command.virtual_name {
            Some(v) => {
                let record = ApkRecord {
                    name: v.clone(),
                    version: "0".into(),
                    arch: "noarch".into(),
                    checksum: None,
                    size: None,
                    installed_size: None,
                    origin: Some(MADE_VIRTUAL.into()),
                    depends: command.deps.clone(),
                    provides: vec![],
                    install_if: vec![],
                    provider_priority: 0,
                };
                installed.retain(|p| &p.name != v);
                virtual_record = Some(record);
                vec![Dep::parse(v).ok_or_else(|| {
                    place.error(StepCause::Internal(format!("`{v}` is not a package name")))
                })?]
            }
            None => command.deps.clone(),
        };
        for d in entries {
            match new_world.iter_mut().find(|w| w.name == d.name) {
                Some(w) => *w = d,
                None => new_world.push(d),
            }
        }
    } else {
        for d in &command.deps {
            if !new_world.iter().any(|w| w.name == d.name) {
                return not_locked(format!(
                    "`{}` is not in apk's world; what `apk del` does then is not modelled",
                    d.name
                ));
            }
            new_world.retain(|w| w.name != d.name);
        }
    }

    let mut problem = ApkProblem {
        repo_tags: repos.iter().map(|r| r.tag.clone()).collect(),
        candidates: Vec::new(),
        world: new_world.clone(),
    };
    let mut at: BTreeMap<(String, String), usize> = BTreeMap::new();
    for r in installed.iter().chain(virtual_record.iter()) {
        at.insert(
            (r.name.clone(), r.version.clone()),
            problem.candidates.len(),
        );
        problem.candidates.push(Candidate {
            record: r.clone(),
            repo: None,
            installed: virtual_record.as_ref().is_none_or(|v| v.name != r.name),
        });
    }
    // The virtual package is "installed" for the solve: apk makes it.
    if let Some(v) = &virtual_record
        && let Some(i) = at.get(&(v.name.clone(), v.version.clone()))
    {
        problem.candidates[*i].installed = true;
    }
    for (ri, f) in fetched.iter().enumerate() {
        for p in &f.packages {
            match at.get(&(p.name.clone(), p.version.clone())) {
                Some(&i) => {
                    if problem.candidates[i].repo.is_none() && problem.candidates[i].installed {
                        problem.candidates[i].repo = Some(ri);
                    }
                }
                None => {
                    at.insert(
                        (p.name.clone(), p.version.clone()),
                        problem.candidates.len(),
                    );
                    problem.candidates.push(Candidate {
                        record: p.clone(),
                        repo: Some(ri),
                        installed: false,
                    });
                }
            }
        }
    }
    let solved = tokio::task::spawn_blocking(move || {
        let s = solve(&problem);
        (s, problem)
    })
    .await
    .map_err(|e| place.error(StepCause::Internal(e.to_string())))?;
    let (solution, problem) = solved;
    let solution = match solution {
        Ok(s) => s,
        Err(e @ ApkSolveError::Undecided(_)) => return not_locked(e.to_string()),
        Err(e) => {
            let err = place.error(StepCause::Apk(e));
            // What the repositories offer now makes the step fail: drift
            // says so, with what it found about the locked packages.
            if previous.is_some() && err.is_upstream() {
                let why = err.to_string();
                let first = why.lines().next().unwrap_or_default().to_string();
                drift.unsolvable = Some(why);
                return not_locked(first);
            }
            return Err(err);
        }
    };

    let before: BTreeMap<&str, &ApkRecord> =
        installed.iter().map(|r| (r.name.as_str(), r)).collect();
    let chosen_names: BTreeSet<&str> = solution
        .chosen
        .keys()
        .map(|&i| problem.candidates[i].record.name.as_str())
        .collect();
    let mut packages = Vec::new();
    let mut after = Vec::new();
    for (&i, why) in &solution.chosen {
        let c = &problem.candidates[i];
        let r = &c.record;
        let is_virtual = virtual_record.as_ref().is_some_and(|v| v.name == r.name);
        after.push(r.clone());
        if is_virtual {
            packages.push(
                ApkPackage::new(&r.name, None, "virtual", Some(why.clone()), &platform)
                    .map_err(|e| place.error(StepCause::Lock(e)))?,
            );
            continue;
        }
        if c.installed {
            continue;
        }
        let action = match before.get(r.name.as_str()) {
            None => "install",
            Some(old) => match compare_versions(&r.version, &old.version) {
                std::cmp::Ordering::Less => "downgrade",
                _ => "upgrade",
            },
        };
        let url = c.repo.map(|ri| fetched[ri].repo.url.as_str());
        packages.push(
            ApkPackage::new(
                &r.name,
                Some((r, url)),
                action,
                Some(why.clone()),
                &platform,
            )
            .map_err(|e| place.error(StepCause::Lock(e)))?,
        );
    }
    for r in &installed {
        if !chosen_names.contains(r.name.as_str()) {
            // A virtual package an earlier step made has no version apk
            // would write (it stamps the time it runs).
            let record = (r.origin.as_deref() != Some(MADE_VIRTUAL)).then_some((r, None));
            packages.push(
                ApkPackage::new(&r.name, record, "remove", None, &platform)
                    .map_err(|e| place.error(StepCause::Lock(e)))?,
            );
        }
    }
    let mut apk_repos = Vec::new();
    for f in &fetched {
        apk_repos.push(ApkRepo::new(f, &platform).map_err(|e| place.error(StepCause::Lock(e)))?);
    }
    state.apk_installed = Some(after);
    state.apk_world = Some(new_world);
    Ok(StepOutcome {
        requested,
        locked: true,
        apk: packages,
        apk_repos,
        ..StepOutcome::default()
    })
}

/// A repository as drift names it: its URL, with `@tag ` in front when
/// the line has one.
fn repo_label(r: &ApkRepository) -> String {
    match &r.tag {
        Some(t) => format!("@{t} {}", r.url),
        None => r.url.clone(),
    }
}

/// What the step's repositories (`fetched`, their signatures checked) have
/// now for the packages the previous lock installed (`locked`), with the
/// image's apk database before the step (`installed`):
///
/// - a newer version (apk's version order) in a repository apk may take the
///   package from: an untagged one, or one with the tag of the repository
///   the lock took it from (apk takes from a tagged repository only what is
///   asked for with its tag);
/// - `gone`: the locked `name-version` in no repository the step reads, nor
///   in the database before the step;
/// - `replaced`: the locked `name-version` offered only with another `C:`
///   checksum than the lock's.
fn locked_drift(
    locked: &[ApkPackage],
    fetched: &[FetchedApkIndex],
    installed: &[ApkRecord],
) -> ApkStepDrift {
    let mut out = ApkStepDrift {
        checked: true,
        ..ApkStepDrift::default()
    };
    for p in locked {
        let Some(version) = p.version.as_ref().map(|v| v.as_str()) else {
            continue;
        };
        let name = p.name.as_str();
        let from = p.repository.as_ref().map(|u| u.as_str());
        let tag = fetched
            .iter()
            .find(|f| Some(f.repo.url.as_str()) == from)
            .and_then(|f| f.repo.tag.clone());
        let offered: Vec<(&FetchedApkIndex, &ApkRecord)> = fetched
            .iter()
            .flat_map(|f| f.packages.iter().map(move |q| (f, q)))
            .filter(|(_, q)| q.name == name && q.version == version)
            .collect();
        if offered.is_empty() {
            if !installed
                .iter()
                .any(|q| q.name == name && q.version == version)
            {
                out.gone.push(ApkGone {
                    name: name.to_string(),
                    version: version.to_string(),
                    repo: from.map(str::to_string),
                });
            }
        } else if let Some(want) = &p.checksum {
            let same = offered
                .iter()
                .any(|(_, q)| q.checksum.as_deref() == Some(want.as_str()));
            // The entry of the repository the lock took it from, else any.
            let other = offered
                .iter()
                .filter(|(_, q)| q.checksum.is_some())
                .min_by_key(|(f, _)| Some(f.repo.url.as_str()) != from);
            if !same && let Some((f, q)) = other {
                out.replaced.push(ApkReplaced {
                    name: name.to_string(),
                    version: version.to_string(),
                    locked: want.to_string(),
                    served: q.checksum.clone().unwrap_or_default(),
                    repo: repo_label(&f.repo),
                });
            }
        }
        let newest = fetched
            .iter()
            .filter(|f| f.repo.tag.is_none() || f.repo.tag == tag)
            .flat_map(|f| f.packages.iter().map(move |q| (f, q)))
            .filter(|(_, q)| q.name == name && compare_versions(&q.version, version).is_gt())
            .max_by(|a, b| compare_versions(&a.1.version, &b.1.version));
        if let Some((f, q)) = newest {
            out.newer.push(ApkNewer {
                name: name.to_string(),
                locked: version.to_string(),
                newest: q.version.clone(),
                repo: repo_label(&f.repo),
            });
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
            .expect("an apk command")
    }

    fn index(tag: Option<&str>, url: &str, text: &str) -> FetchedApkIndex {
        FetchedApkIndex {
            repo: ApkRepository {
                tag: tag.map(str::to_string),
                url: url.to_string(),
                location: "/etc/apk/repositories:1".into(),
            },
            url: format!("{url}/x86_64/APKINDEX.tar.gz"),
            sha256: "0".repeat(64),
            description: None,
            key: "k.rsa.pub".into(),
            packages: parse_index(url, text).unwrap(),
        }
    }

    fn locked(name: &str, version: &str, checksum: &str, url: &str) -> ApkPackage {
        let record = ApkRecord {
            name: name.into(),
            version: version.into(),
            arch: "x86_64".into(),
            checksum: Some(checksum.into()),
            size: None,
            installed_size: None,
            origin: None,
            depends: vec![],
            provides: vec![],
            install_if: vec![],
            provider_priority: 0,
        };
        let platform = lock_platform("linux/amd64").unwrap();
        ApkPackage::new(name, Some((&record, Some(url))), "install", None, &platform).unwrap()
    }

    #[test]
    fn drift_of_locked_apk_packages_follows_apk_versions_and_repository_tags() {
        let main = "https://m/v3.20/main";
        let edge = "https://m/edge/main";
        let fetched = [
            index(
                None,
                main,
                "C:Q1a\nP:curl\nV:8.9.1-r0\n\nC:Q1b\nP:curl\nV:8.10.0-r0\n\nC:Q1other\nP:zlib\nV:1.3.1-r1\n\nC:Q1l\nP:libcurl\nV:8.9.1-r0\n",
            ),
            // Newer, but apk takes from `@edge` only what is asked with it.
            index(
                Some("edge"),
                edge,
                "C:Q1e\nP:curl\nV:9.0.0-r0\n\nC:Q1f\nP:libcurl\nV:9.0.0-r0\n\nC:Q1g\nP:jq\nV:1.8-r0\n",
            ),
        ];
        let installed = parse_index("db", "P:musl\nV:1.2.4-r2\n").unwrap();
        let locked = [
            locked("curl", "8.9.1-r0", "Q1a", main),
            // Taken from `@edge`: newer there counts, and main's too.
            locked("jq", "1.7.1-r0", "Q1old", edge),
            locked("zlib", "1.3.1-r1", "Q1zlib", main),
            locked("gcc", "13.2.1-r0", "Q1gcc", main),
            // In the image before the step: not gone.
            locked("musl", "1.2.4-r2", "Q1m", main),
            // `_rc` sorts before the release it precedes in apk's order.
            locked("libcurl", "8.9.1_rc2-r0", "Q1l", main),
        ];
        let d = locked_drift(&locked, &fetched, &installed);
        let newer: Vec<String> = d
            .newer
            .iter()
            .map(|n| format!("{} {} {} {}", n.name, n.locked, n.newest, n.repo))
            .collect();
        assert_eq!(
            newer,
            [
                format!("curl 8.9.1-r0 8.10.0-r0 {main}"),
                format!("jq 1.7.1-r0 1.8-r0 @edge {edge}"),
                format!("libcurl 8.9.1_rc2-r0 8.9.1-r0 {main}"),
            ]
        );
        let gone: Vec<String> = d
            .gone
            .iter()
            .map(|g| format!("{}-{} {}", g.name, g.version, g.repo.as_deref().unwrap()))
            .collect();
        assert_eq!(
            gone,
            [
                format!("jq-1.7.1-r0 {edge}"),
                format!("gcc-13.2.1-r0 {main}"),
                format!("libcurl-8.9.1_rc2-r0 {main}"),
            ]
        );
        // zlib's version is there with another control checksum.
        assert_eq!(
            d.replaced,
            [ApkReplaced {
                name: "zlib".into(),
                version: "1.3.1-r1".into(),
                locked: "Q1zlib".into(),
                served: "Q1other".into(),
                repo: main.into(),
            }]
        );
        assert!(d.checked && d.unread.is_empty() && d.unsolvable.is_none() && d.skipped.is_none());
    }

    #[test]
    fn apk_command_lines_become_requests() {
        let c = apk_command(&command(
            "apk add --no-cache --virtual .build-deps gcc 'musl-dev>1' so:libz.so.1 cmd:foo",
        ))
        .unwrap();
        assert!(c.add);
        assert_eq!(c.virtual_name.as_deref(), Some(".build-deps"));
        let names: Vec<String> = c.deps.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["gcc", "musl-dev>1", "so:libz.so.1", "cmd:foo"]);
        let c = apk_command(&command("apk del .build-deps")).unwrap();
        assert!(!c.add);
        let c = apk_command(&command("apk add -t .x curl=8.9.1-r0")).unwrap();
        assert_eq!(c.virtual_name.as_deref(), Some(".x"));
        assert_eq!(c.deps[0].req.as_ref().unwrap().version, "8.9.1-r0");
    }

    #[test]
    fn what_imagelock_cannot_know_is_said_not_guessed() {
        for (text, why) in [
            (
                "apk add --repository http://x/edge/main curl",
                "does not model",
            ),
            ("apk add -u curl", "does not model"),
            ("apk add --allow-untrusted ./x.apk", "does not model"),
            ("apk add ./x.apk", "does not read"),
            ("apk add $NOPE", "has no value here"),
            ("apk upgrade", "not resolved"),
        ] {
            let reason = apk_command(&command(text)).unwrap_err();
            assert!(reason.contains(why), "{text}: {reason}");
        }
        assert_eq!(apk_arch("linux/amd64"), Some("x86_64"));
        assert_eq!(apk_arch("linux/arm/v7"), Some("armv7"));
    }
}

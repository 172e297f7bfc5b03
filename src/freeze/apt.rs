//! apt steps: resolved on one platform as apt does it, from the image's own
//! apt and dpkg state (as the base and earlier steps leave it), against the
//! archives the image names, each `InRelease` checked with the image's
//! keyrings.
//!
//! Whether an apt step is locked is decided here, in [`not_locked_reason`]
//! and [`apt_step`]: a step imagelock cannot resolve from what it can read
//! is recorded `locked = false` with its place and why, never guessed.

use std::collections::{BTreeMap, HashMap};

use crate::config::Config;
use crate::freeze::ImageJob;
use crate::freeze::outcome::{StepOutcome, StepPlace};
use crate::freeze::state::PlatformState;
use crate::freeze::{FreezeError, StepCause};
use crate::image::dpkg::read_apt_state;
use crate::lock::{AptPackage, AptSource, lock_platform};
use crate::resolve::apt::{AptMirrors, CachedTransport, fetch_sources};
use crate::solve::apt::{
    AptAction, AptCommand, AptPackageSpec, AptRequest, BinaryPackage, PackageIndex, Universe,
    resolve_preferring,
};
use crate::source::apt_files::is_apt_path;
use crate::source::model::{AptFileChange, AptFileKind, CopiedFile, DefinitionKind, Stage};
use crate::source::steps::{Action, InstallCommand, Manager};

/// Why an apt command cannot be locked from its text alone (`None`: it
/// can, given the image's state), and what it asks for otherwise.
pub fn apt_command(cmd: &InstallCommand) -> Result<AptCommand, String> {
    let sub = cmd
        .text
        .split_whitespace()
        .find(|w| {
            matches!(
                *w,
                "install"
                    | "upgrade"
                    | "dist-upgrade"
                    | "full-upgrade"
                    | "remove"
                    | "purge"
                    | "autoremove"
            )
        })
        .unwrap_or("");
    let mut specs = Vec::new();
    for s in &cmd.specs {
        let Some(value) = &s.value else {
            return Err(format!(
                "`{}` uses {} which has no value here",
                s.written,
                s.unresolved.join(", ")
            ));
        };
        if value.ends_with(".deb") || value.starts_with('.') || value.starts_with('/') {
            return Err(format!(
                "it installs the file `{value}`, whose content imagelock does not read"
            ));
        }
        specs.push(AptPackageSpec::parse(value).map_err(|e| e.to_string())?);
    }
    let request = match cmd.action {
        Action::Install => AptRequest::Install(specs),
        Action::Upgrade => AptRequest::Upgrade,
        Action::DistUpgrade => AptRequest::DistUpgrade,
        Action::Remove if sub == "autoremove" => AptRequest::Autoremove,
        Action::Remove => AptRequest::Remove {
            packages: specs,
            purge: sub == "purge" || cmd.options.iter().any(|o| o == "--purge"),
        },
        other => {
            return Err(format!(
                "`{}` is not an apt action imagelock resolves",
                other.as_str()
            ));
        }
    };
    let mut command = AptCommand::new(request);
    for o in &cmd.options {
        let (key, value) = match o.split_once([' ', '=']) {
            Some((k, v)) if k.starts_with('-') => (k, Some(v.trim())),
            _ => (o.as_str(), None),
        };
        match (key, value) {
            ("--no-install-recommends", _) => command.install_recommends = Some(false),
            ("--install-recommends", _) => command.install_recommends = Some(true),
            ("--auto-remove" | "--autoremove", _) => command.auto_remove = true,
            ("--purge", _) => {}
            ("-t" | "--target-release" | "--default-release", Some(v)) => {
                command.target_release = Some(v.to_string());
            }
            ("-o" | "--option", Some(v)) => {
                let (k, val) = v.split_once('=').unwrap_or((v, ""));
                let yes = matches!(val.to_ascii_lowercase().as_str(), "1" | "true" | "yes");
                match k.to_ascii_lowercase().as_str() {
                    "apt::install-recommends" => command.install_recommends = Some(yes),
                    "apt::snapshot" | "apt::default-release" if !val.is_empty() => {
                        if k.eq_ignore_ascii_case("apt::default-release") {
                            command.target_release = Some(val.to_string());
                        } else {
                            return Err(format!(
                                "it reads the archive at snapshot `{val}`, which imagelock does not resolve yet"
                            ));
                        }
                    }
                    other => {
                        // Options about downloading, dpkg, output and the
                        // sandbox leave the resolution alone.
                        let harmless = [
                            "dpkg::",
                            "acquire::",
                            "apt::sandbox::",
                            "debug::",
                            "quiet",
                            "apt::get::",
                            "apt::color",
                            "dpkg::progress",
                        ]
                        .iter()
                        .any(|p| other.starts_with(p));
                        if !harmless || other == "apt::get::upgrade-allow-new" {
                            return Err(format!("`-o {v}` changes how apt resolves"));
                        }
                    }
                }
            }
            ("-c" | "--config-file", _) => {
                return Err("it reads another apt configuration file".into());
            }
            _ => {}
        }
    }
    Ok(command)
}

/// Why an apt or apt-get step is recorded but not locked, before anything
/// is fetched; `None` when it is resolved.
pub fn not_locked_reason(cmd: &InstallCommand) -> Option<String> {
    if !matches!(cmd.manager, Manager::AptGet | Manager::Apt) {
        return Some(format!(
            "imagelock does not lock `{}` steps yet",
            cmd.manager.as_str()
        ));
    }
    if let Some(c) = &cmd.conditional {
        return Some(format!(
            "it runs only if `{c}`, which imagelock cannot decide"
        ));
    }
    if cmd.action == Action::NoChange {
        return Some("it changes nothing in the image".into());
    }
    apt_command(cmd).err()
}

/// The largest key, list or configuration file fetched for apt.
const APT_FILE_CAP: u64 = 1 << 20;

/// What changes an apt file, at a place in the definition.
enum AptEvent<'s> {
    Command(&'s AptFileChange),
    Copy(&'s CopiedFile),
}

/// Applies to `state` what the commands and `COPY`s of `stage` at file
/// offsets in `range` do to apt's files (sources, keys, pins,
/// configuration, dpkg's architectures), in file order: the apt steps
/// after them resolve against the sources the build has. A change that
/// cannot be read is kept in [`PlatformState::apt_unknown`].
pub async fn apply_apt_files(
    session: &crate::resolve::Session,
    job: &ImageJob,
    file: &str,
    stage: &Stage,
    range: std::ops::Range<usize>,
    state: &mut PlatformState,
) {
    let apptainer = job.definition.kind == DefinitionKind::Apptainer;
    let mut events: Vec<(usize, AptEvent<'_>)> = stage
        .apt_files
        .iter()
        .map(|c| (c.span.start, AptEvent::Command(c)))
        .chain(
            stage
                .copies
                .iter()
                // Apptainer's `%files` run before `%post`, wherever written.
                .map(|c| (if apptainer { 0 } else { c.span.start }, AptEvent::Copy(c))),
        )
        .filter(|(at, _)| range.contains(at))
        .collect();
    events.sort_by_key(|(at, _)| *at);
    for (at, event) in events {
        if state.apt_unknown.is_some() {
            return;
        }
        let why = match event {
            AptEvent::Command(c) => apply_change(session, c, state).await.err().map(|why| {
                format!(
                    "{file}:{} changes apt's files before it (`{}` → `{}`): {why}",
                    c.line, c.text, c.path
                )
            }),
            AptEvent::Copy(c) => apply_copy(job, c, state).err().map(|why| {
                // Read again only to name the line.
                let text = std::fs::read_to_string(&job.definition.path).unwrap_or_default();
                let line = crate::diagnostic::LineIndex::new(&text)
                    .line_col(&text, at)
                    .line;
                format!(
                    "{file}:{line} copies into apt's files before it (`{}`): {why}",
                    c.destination
                )
            }),
        };
        state.apt_unknown = why;
    }
}

async fn apply_change(
    session: &crate::resolve::Session,
    change: &AptFileChange,
    state: &mut PlatformState,
) -> Result<(), String> {
    let files = &mut state.apt_files;
    match &change.kind {
        AptFileKind::Unknown { why } => Err(why.clone()),
        AptFileKind::Write { content, append } => {
            let entry = files.entry(change.path.clone()).or_default();
            if !append {
                entry.clear();
            }
            entry.extend_from_slice(content.as_bytes());
            Ok(())
        }
        AptFileKind::Remove => {
            match change.path.strip_suffix("/*") {
                Some(dir) => {
                    let prefix = format!("{dir}/");
                    files.retain(|k, _| {
                        !k.strip_prefix(&prefix)
                            .is_some_and(|rest| !rest.contains('/') && !rest.starts_with('.'))
                    });
                }
                None => {
                    files.remove(&change.path);
                }
            }
            Ok(())
        }
        AptFileKind::Fetch { url } => {
            if session.offline() {
                return Err(format!("`--offline` does not fetch `{url}`"));
            }
            let parsed = url::Url::parse(url)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .ok_or_else(|| format!("`{url}` is not a URL imagelock can fetch"))?;
            let shown = crate::resolve::http::redact(&parsed);
            let resp = session
                .http()
                .send(crate::resolve::http::HttpRequest::get(parsed, APT_FILE_CAP))
                .await
                .map_err(|e| format!("`{shown}` could not be fetched: {e}"))?;
            if !resp.status.is_success() {
                return Err(format!("`{shown}` answered {}", resp.status.as_u16()));
            }
            files.insert(change.path.clone(), resp.body.to_vec());
            Ok(())
        }
    }
}

/// Puts what a `COPY` of the build context brings into apt's directories
/// into `state`; `Err` when it cannot be read.
fn apply_copy(job: &ImageJob, copy: &CopiedFile, state: &mut PlatformState) -> Result<(), String> {
    let dest = crate::source::inputs::image_path(copy.workdir.as_deref(), &copy.destination);
    let dest = if dest == "/" { String::new() } else { dest };
    // Does the copy reach apt's files at all: its destination is one, or a
    // directory above them (`COPY rootfs/ /`).
    let above = ["/etc/apt/", "/usr/share/keyrings/", "/var/lib/dpkg/arch"]
        .iter()
        .any(|a| a.starts_with(&format!("{dest}/")));
    if !(is_apt_path(&dest) || above) {
        return Ok(());
    }
    if let Some(from) = &copy.from {
        return Err(format!(
            "it copies from `{from}`, whose files imagelock does not read here"
        ));
    }
    let into_dir = copy.destination.ends_with('/')
        || copy.sources.len() > 1
        || above
        || [
            "/etc/apt/sources.list.d",
            "/etc/apt/keyrings",
            "/etc/apt/trusted.gpg.d",
            "/etc/apt/preferences.d",
            "/etc/apt/apt.conf.d",
            "/usr/share/keyrings",
        ]
        .contains(&dest.as_str());
    let context = &job.config.context;
    let mut put = |target: String, path: &std::path::Path| -> Result<(), String> {
        if !crate::image::dpkg::is_apt_state_file(&target) {
            return Ok(());
        }
        let bytes =
            std::fs::read(path).map_err(|e| format!("`{}` cannot be read: {e}", path.display()))?;
        state.apt_files.insert(target, bytes);
        Ok(())
    };
    for src in &copy.sources {
        if src.contains(['*', '?', '[']) {
            return Err(format!(
                "it copies `{src}`, a pattern imagelock does not expand here"
            ));
        }
        if src.contains("://") || src.split('/').any(|p| p == "..") {
            return Err(format!("it copies `{src}`, which imagelock does not read"));
        }
        let path = context.join(src.trim_start_matches('/'));
        let name = src
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or(src)
            .to_string();
        if path.is_file() {
            let target = if into_dir {
                format!("{dest}/{name}")
            } else {
                dest.clone()
            };
            put(target, &path)?;
        } else if path.is_dir() {
            // The directory's files under the destination, as far down as
            // apt's directories go.
            let mut todo = vec![(path.clone(), dest.clone(), 0)];
            while let Some((dir, at, depth)) = todo.pop() {
                if depth > 5 {
                    continue;
                }
                let entries = std::fs::read_dir(&dir)
                    .map_err(|e| format!("`{}` cannot be read: {e}", dir.display()))?;
                for e in entries.flatten() {
                    let Some(n) = e.file_name().to_str().map(str::to_string) else {
                        continue;
                    };
                    let target = format!("{at}/{n}");
                    let p = e.path();
                    if p.is_dir() {
                        if is_apt_path(&target)
                            || ["/etc/apt/", "/usr/share/keyrings/", "/var/lib/dpkg/"]
                                .iter()
                                .any(|a| a.starts_with(&format!("{target}/")))
                        {
                            todo.push((p, target, depth + 1));
                        }
                    } else {
                        put(target, &p)?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// What the previous lock had for an apt step on this platform, each
/// package as (name, architecture, version).
#[derive(Debug, Default)]
pub struct Previous {
    /// Kept while the archives offer them (not with `--update`).
    pub prefer: Vec<(String, String, String)>,
    /// Everything the step left installed: checked for `gone`.
    pub installed: Vec<(String, String, String)>,
}

/// Resolves an apt step on `state.platform` and applies it to `state`.
pub async fn apt_step(
    config: &Config,
    session: &crate::resolve::Session,
    place: &StepPlace<'_>,
    cmd: &InstallCommand,
    requested: Vec<String>,
    previous: Previous,
    state: &mut PlatformState,
) -> Result<StepOutcome, FreezeError> {
    let Previous {
        prefer,
        installed: locked_before,
    } = previous;
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
    if let Some(why) = not_locked_reason(cmd) {
        return not_locked(why);
    }
    if let Some(why) = &state.apt_unknown {
        return not_locked(why.clone());
    }
    let command = match apt_command(cmd) {
        Ok(c) => c,
        Err(why) => return not_locked(why),
    };
    let mut image = match read_apt_state(&state.apt_files) {
        Ok(s) => s,
        Err(e) => return not_locked(format!("the image's apt state cannot be read: {e}")),
    };
    if let Some(installed) = &state.apt_installed {
        image.installed.clone_from(installed);
    }
    if !state.apt_files.contains_key("/var/lib/dpkg/status") && !image.distroless {
        return not_locked(
            "the image has no dpkg status (`/var/lib/dpkg/status`), so imagelock does not know what apt starts from".into(),
        );
    }
    if image.sources.is_empty() {
        return not_locked(
            "the image names no apt source (`/etc/apt/sources.list`, `sources.list.d/*.list` or `*.sources`) that imagelock can read".into(),
        );
    }
    let platform = lock_platform(&state.platform).map_err(|e| place.error(StepCause::Lock(e)))?;
    let Some(native) = platform.deb_arch() else {
        return not_locked(format!("`{}` has no Debian architecture", state.platform));
    };
    if session.offline() {
        return not_locked("`--offline` fetches no apt archive".into());
    }
    let mut archs = vec![native.to_string()];
    for a in &image.options.foreign_architectures {
        if !archs.contains(a) {
            archs.push(a.clone());
        }
    }
    let transport = CachedTransport::new(session.http().clone(), session.cache_dir().join("apt"));
    let mirrors = AptMirrors::new(config.apt.mirrors_from(&config.root));
    let now = jiff::Timestamp::now().as_second();
    let fetched = fetch_sources(
        &transport,
        &mirrors,
        &image.sources,
        &archs,
        &image.keys,
        now,
    )
    .await
    .map_err(|e| place.error(StepCause::AptRepo(e)))?;

    let mut sources = Vec::new();
    for f in &fetched {
        sources.push(
            AptSource::new(
                &f.entry.uri,
                &f.entry.suite,
                &f.entry.components,
                &f.release,
                &f.release_sha256,
                &platform,
            )
            .map_err(|e| place.error(StepCause::Lock(e)))?,
        );
    }
    let indexes: Vec<PackageIndex> = fetched.into_iter().flat_map(|f| f.indexes).collect();
    let installed = image.installed.clone();
    let pins = image.pins.clone();
    let options = image.options.clone();
    let auto = image.auto_installed.clone();
    let native_owned = native.to_string();
    let solved = tokio::task::spawn_blocking(move || {
        let universe = Universe::new(&native_owned, &installed, indexes, &pins, options)
            .map_err(crate::solve::apt::SolveAptError::from)?;
        let outcome = resolve_preferring(&universe, &command, &auto, &prefer)?;
        Ok::<_, crate::solve::apt::SolveAptError>((outcome, universe))
    })
    .await
    .map_err(|e| place.error(StepCause::Internal(e.to_string())))?;
    let (outcome, universe) = solved.map_err(|e| place.error(StepCause::Apt(e)))?;

    let mut warnings = Vec::new();
    if outcome.used_problem_resolver {
        warnings.push(format!(
            "{}:{}: `{}` needed apt's problem resolver, which imagelock only approximates: check the lock against `apt-get install -s`",
            place.file, place.line, cmd.text
        ));
    }
    // The first index that offers a version: its package and its suite.
    // (The universe keeps one entry per version, with the first index's
    // stanza and every file that offers it, the status file first.)
    let mut offered: HashMap<(&str, &str, &str), (&BinaryPackage, &str)> = HashMap::new();
    for v in &universe.vers {
        let Some(&file) = v.files.iter().find(|f| **f != 0) else {
            continue;
        };
        let p = &v.data;
        offered
            .entry((p.name.as_str(), p.version.as_str(), p.arch.as_str()))
            .or_insert((p, universe.files[file].archive.as_str()));
    }
    // What the previous lock installed here that nothing offers any more.
    let apt_gone: Vec<(String, String, String)> = locked_before
        .into_iter()
        .filter(|(n, a, v)| {
            !offered.contains_key(&(n.as_str(), v.as_str(), a.as_str()))
                && !image
                    .installed
                    .iter()
                    .any(|p| p.is_present() && &p.name == n && &p.version == v && &p.arch == a)
        })
        .collect();
    // The image after the step: dpkg's status as apt leaves it.
    let mut after: BTreeMap<(String, String), BinaryPackage> = image
        .installed
        .into_iter()
        .filter(BinaryPackage::is_present)
        .map(|p| ((p.name.clone(), p.arch.clone()), p))
        .collect();
    let mut packages = Vec::new();
    for r in &outcome.records {
        match r.action {
            AptAction::Install | AptAction::Upgrade | AptAction::Downgrade => {
                after.retain(|(n, a), _| {
                    !(n == &r.name
                        && (a == &r.architecture || a == "all" || r.architecture == "all"))
                });
                if let Some((p, _)) =
                    offered.get(&(r.name.as_str(), r.version.as_str(), r.architecture.as_str()))
                {
                    let mut p = (*p).clone();
                    p.state = "installed".into();
                    after.insert((p.name.clone(), p.arch.clone()), p);
                }
            }
            AptAction::Remove | AptAction::Purge => {
                after.retain(|(n, a), _| !(n == &r.name && a == &r.architecture));
            }
            AptAction::Keep => {}
        }
        packages.push(
            AptPackage::from_record(
                r,
                offered
                    .get(&(r.name.as_str(), r.version.as_str(), r.architecture.as_str()))
                    .map(|(_, suite)| *suite),
                &platform,
            )
            .map_err(|e| place.error(StepCause::Lock(e)))?,
        );
    }
    state.apt_installed = Some(after.into_values().collect());
    Ok(StepOutcome {
        requested,
        locked: true,
        apt: packages,
        apt_sources: sources,
        warnings,
        apt_gone,
        ..StepOutcome::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::shell::Script;
    use crate::source::steps::find_install_commands;

    fn command(text: &str) -> InstallCommand {
        let script = Script::from_file_piece(text, 0);
        let lookup = |name: &str| (name == "V").then(|| "2.10-3".to_string());
        find_install_commands(&script, &lookup)
            .unwrap()
            .into_iter()
            .next()
            .expect("an apt command")
    }

    #[test]
    fn apt_command_lines_become_requests() {
        let c = apt_command(&command(
            "apt-get install -y --no-install-recommends -t bookworm-backports curl hello=$V git/bookworm",
        ))
        .unwrap();
        assert_eq!(c.install_recommends, Some(false));
        assert_eq!(c.target_release.as_deref(), Some("bookworm-backports"));
        let AptRequest::Install(specs) = &c.request else {
            panic!("{c:?}")
        };
        assert_eq!(specs[1].version.as_deref(), Some("2.10-3"));
        assert_eq!(specs[2].release.as_deref(), Some("bookworm"));
        let c = apt_command(&command(
            "apt-get -o APT::Install-Recommends=true install -y r-base",
        ))
        .unwrap();
        assert_eq!(c.install_recommends, Some(true));
        let c = apt_command(&command("apt-get purge -y --auto-remove curl")).unwrap();
        assert!(c.auto_remove);
        assert!(matches!(c.request, AptRequest::Remove { purge: true, .. }));
        let c = apt_command(&command("apt-get autoremove -y")).unwrap();
        assert_eq!(c.request, AptRequest::Autoremove);
        let c = apt_command(&command("apt-get dist-upgrade -y")).unwrap();
        assert_eq!(c.request, AptRequest::DistUpgrade);
    }

    #[test]
    fn what_imagelock_cannot_know_is_said_not_guessed() {
        for (text, why) in [
            (
                "apt-get install -y ./tool.deb",
                "whose content imagelock does not read",
            ),
            ("apt-get install -y $NOPE", "has no value here"),
            (
                "apt-get -o APT::Get::Upgrade-Allow-New=1 install -y x",
                "changes how apt resolves",
            ),
            (
                "apt-get -o Foo::Bar=1 install -y x",
                "changes how apt resolves",
            ),
            (
                "apt-get -c /etc/other.conf install -y x",
                "another apt configuration",
            ),
            (
                "if [ -f /x ]; then apt-get install -y curl; fi",
                "which imagelock cannot decide",
            ),
            ("apt-get install -y --dry-run curl", "changes nothing"),
        ] {
            let reason = not_locked_reason(&command(text)).unwrap_or_default();
            assert!(reason.contains(why), "{text}: {reason}");
        }
        for text in [
            "apt-get install -y -o Dpkg::Options::=--force-confdef -o Acquire::Retries=3 curl",
            "apt install -y -q curl",
        ] {
            assert_eq!(not_locked_reason(&command(text)), None, "{text}");
        }
    }
}

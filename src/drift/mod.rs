//! drift: compare a fresh, read-only resolution with the locks on disk and
//! report what moved upstream.
//!
//! The fresh resolution is a freeze with `update_base` set (so moved tags
//! show) whose result is never written. Each difference is a [`Finding`]
//! of one [`Kind`]:
//!
//! | kind       | severity | meaning |
//! |------------|----------|---------|
//! | `stale`    | medium   | the definition or a file it reads changed since the lock was made (input hash differs); run `imagelock freeze` |
//! | `base`     | medium   | a base tag now names another digest (a rebuild); per platform, whether the layers changed |
//! | `outdated` | low      | freeze would now choose a newer version of a locked pip or conda package |
//! | `yanked`   | high     | the locked pip file is yanked on its index (with the reason) |
//! | `gone`     | high     | the locked pip file is no longer on its index |
//! | `broken`   | high     | the locked conda file is no longer in its channel's repodata (removed or marked broken) |
//! | `unresolvable` | high | freeze would fail now (the reason is the detail); bases, the index and the inputs are still checked, newer versions are not |
//! | `unpinned` | info     | an install step of the definition asks for specs that are not exact pins, so the lock is the only thing keeping it reproducible |
//!
//! `--fail-on any` fails on every kind but `unpinned` (a property of the
//! definition, not drift); name `unpinned` to fail on it too.
//!
//! The JSON report (`--format json`) has a stable schema, version 1:
//!
//! ```json
//! {"version": 1,
//!  "images": [{"name": "driver",
//!              "findings": [{"kind": "outdated", "severity": "low",
//!                            "ecosystem": "pip", "package": "requests",
//!                            "locked": "2.32.3", "latest": "2.32.4"}]}]}
//! ```
//!
//! Every finding has `kind` and `severity`; `package` (with `ecosystem`,
//! `pip` or `conda`, and for conda the `channel` name) or `base` names what
//! drifted; `locked`, `latest` and
//! `detail` are present when they mean something for the kind.

pub mod report;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::Config;
use crate::freeze::ImageJob;
use crate::freeze::steps::{Resolvers, index_url};
use crate::lock::{LockedImage, LockedStep};
use crate::resolve::pypi::IndexUrls;
use crate::solve::python::SourceError;
use crate::source::steps::{Ecosystem, InstallCommand};

/// What kind of drift a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Stale,
    Base,
    Outdated,
    Yanked,
    Gone,
    Broken,
    Unresolvable,
    Unpinned,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::Stale,
        Kind::Base,
        Kind::Outdated,
        Kind::Yanked,
        Kind::Gone,
        Kind::Broken,
        Kind::Unresolvable,
        Kind::Unpinned,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Stale => "stale",
            Kind::Base => "base",
            Kind::Outdated => "outdated",
            Kind::Yanked => "yanked",
            Kind::Gone => "gone",
            Kind::Broken => "broken",
            Kind::Unresolvable => "unresolvable",
            Kind::Unpinned => "unpinned",
        }
    }

    /// How much a finding of this kind matters.
    pub const fn severity(self) -> Severity {
        match self {
            Kind::Yanked | Kind::Gone | Kind::Broken | Kind::Unresolvable => Severity::High,
            Kind::Stale | Kind::Base => Severity::Medium,
            Kind::Outdated => Severity::Low,
            Kind::Unpinned => Severity::Info,
        }
    }

    /// Parses a kind as `--fail-on` takes it.
    pub fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// How much a finding matters, most first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    High,
    Medium,
    Low,
    Info,
}

impl Severity {
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
            Severity::Info => "info",
        }
    }
}

/// One thing that moved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: Kind,
    pub severity: Severity,
    /// `pip` or `conda`, for package findings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ecosystem: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// The conda channel's name (`conda-forge`), for conda packages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The base image's canonical name, for `base` findings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest: Option<String>,
    /// A sentence for people: the yank reason, which layers changed, where
    /// the unpinned step is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Finding {
    fn new(kind: Kind) -> Self {
        Finding {
            kind,
            severity: kind.severity(),
            ecosystem: None,
            package: None,
            channel: None,
            base: None,
            locked: None,
            latest: None,
            detail: None,
        }
    }

    /// What drifted, for tables: the package or base name.
    pub fn subject(&self) -> &str {
        self.package
            .as_deref()
            .or(self.base.as_deref())
            .unwrap_or("")
    }
}

/// The findings of one image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImageReport {
    pub name: String,
    pub findings: Vec<Finding>,
}

/// The findings of every image checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    pub version: u32,
    pub images: Vec<ImageReport>,
}

impl Report {
    pub fn new(images: Vec<ImageReport>) -> Self {
        Report { version: 1, images }
    }

    /// Every finding with its image.
    pub fn findings(&self) -> impl Iterator<Item = (&str, &Finding)> {
        self.images
            .iter()
            .flat_map(|i| i.findings.iter().map(move |f| (i.name.as_str(), f)))
    }

    /// Whether a finding of one of `kinds` exists.
    pub fn has_any(&self, kinds: &[Kind]) -> bool {
        self.findings().any(|(_, f)| kinds.contains(&f.kind))
    }
}

/// Puts findings in report order: by severity, kind, then subject.
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        (a.severity, a.kind, a.subject(), &a.locked).cmp(&(
            b.severity,
            b.kind,
            b.subject(),
            &b.locked,
        ))
    });
}

/// A finding saying freeze would fail now, and why.
pub fn unresolvable(message: &str) -> Finding {
    let mut f = Finding::new(Kind::Unresolvable);
    f.detail = Some(message.to_string());
    f
}

/// What can be seen without the network: compares the lock on disk with
/// the fresh resolution and the definition (stale, base, outdated,
/// unpinned).
pub fn compare(job: &ImageJob, locked: &LockedImage, fresh: &LockedImage) -> Vec<Finding> {
    let mut out = Vec::new();
    let now = job.inputs.hash();
    if locked.image.input_hash != now {
        let mut f = Finding::new(Kind::Stale);
        f.locked = Some(locked.image.input_hash.clone());
        f.latest = Some(now);
        f.detail = Some(format!(
            "`{}` or a file it reads changed since the lock was made",
            locked.image.definition
        ));
        out.push(f);
    }
    out.extend(base_findings(locked, fresh));
    out.extend(outdated_findings(locked, fresh));
    out.extend(unpinned_findings(job));
    out
}

fn base_findings(locked: &LockedImage, fresh: &LockedImage) -> Vec<Finding> {
    let mut out = Vec::new();
    for base in &locked.bases {
        // Images of this repository move when they are frozen again.
        if base.built_from.is_some() {
            continue;
        }
        let Some(now) = fresh.bases.iter().find(|b| b.name == base.name) else {
            continue;
        };
        if now.digest == base.digest {
            continue;
        }
        let mut platforms = Vec::new();
        for p in &base.platforms {
            let state = match now.platforms.iter().find(|n| n.platform == p.platform) {
                Some(n) if n.diff_ids == p.diff_ids => "same layers",
                Some(_) => "layers changed",
                None => "platform gone",
            };
            platforms.push(format!("{}: {state}", p.platform));
        }
        let mut f = Finding::new(Kind::Base);
        f.base = Some(base.name.clone());
        f.locked = Some(base.digest.clone());
        f.latest = Some(now.digest.clone());
        if !platforms.is_empty() {
            f.detail = Some(platforms.join(", "));
        }
        out.push(f);
    }
    out
}

/// The fresh step that corresponds to a locked one: same stage and command,
/// else same stage and line.
fn matching_step<'a>(step: &LockedStep, fresh: &'a LockedImage) -> Option<&'a LockedStep> {
    fresh
        .steps
        .iter()
        .find(|s| s.stage == step.stage && s.command == step.command)
        .or_else(|| {
            fresh
                .steps
                .iter()
                .find(|s| s.stage == step.stage && s.line == step.line)
        })
}

fn outdated_findings(locked: &LockedImage, fresh: &LockedImage) -> Vec<Finding> {
    let mut out = Vec::new();
    for step in &locked.steps {
        let Some(now) = matching_step(step, fresh) else {
            continue;
        };
        let pip = |s: &LockedStep| -> BTreeMap<String, Vec<String>> {
            let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for p in &s.pypi {
                m.entry(p.name.clone())
                    .or_default()
                    .push(p.version_or_unknown().to_string());
            }
            m
        };
        let conda = |s: &LockedStep| -> BTreeMap<String, Vec<String>> {
            let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for p in &s.conda {
                m.entry(p.name.clone()).or_default().push(p.version.clone());
            }
            m
        };
        for (eco, before, after) in [
            ("pip", pip(step), pip(now)),
            ("conda", conda(step), conda(now)),
        ] {
            for (name, versions) in &before {
                let Some(new) = after.get(name) else { continue };
                let old_max = newest(eco, versions);
                let new_max = newest(eco, new);
                let (Some(old_max), Some(new_max)) = (old_max, new_max) else {
                    continue;
                };
                if newer(eco, &new_max, &old_max) {
                    let mut f = Finding::new(Kind::Outdated);
                    f.ecosystem = Some(eco.to_string());
                    f.package = Some(name.clone());
                    if eco == "conda" {
                        f.channel = step
                            .conda
                            .iter()
                            .find(|p| &p.name == name)
                            .map(|p| channel_name(&p.channel));
                    }
                    f.locked = Some(old_max);
                    f.latest = Some(new_max);
                    if !out.contains(&f) {
                        out.push(f);
                    }
                }
            }
        }
    }
    out
}

/// A channel's name: the last part of its URL or path
/// (`https://conda.anaconda.org/conda-forge` → `conda-forge`).
pub fn channel_name(channel: &str) -> String {
    channel
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(channel)
        .to_string()
}

fn newest(eco: &str, versions: &[String]) -> Option<String> {
    let mut best: Option<&String> = None;
    for v in versions {
        if best.is_none_or(|b| newer(eco, v, b)) {
            best = Some(v);
        }
    }
    best.cloned()
}

/// Whether `a` is a newer version than `b` (by the ecosystem's ordering;
/// versions that do not parse are never newer).
fn newer(eco: &str, a: &str, b: &str) -> bool {
    use std::str::FromStr;
    if eco == "pip" {
        match (
            pep440_rs::Version::from_str(a),
            pep440_rs::Version::from_str(b),
        ) {
            (Ok(a), Ok(b)) => a > b,
            _ => false,
        }
    } else {
        match (
            rattler_conda_types::Version::from_str(a),
            rattler_conda_types::Version::from_str(b),
        ) {
            (Ok(a), Ok(b)) => a > b,
            _ => false,
        }
    }
}

fn unpinned_findings(job: &ImageJob) -> Vec<Finding> {
    let mut out = Vec::new();
    for stage in &job.definition.stages {
        for step in &stage.steps {
            let eco = match step.command.manager.ecosystem() {
                Ecosystem::Python => "pip",
                Ecosystem::Conda => "conda",
                Ecosystem::Os | Ecosystem::Other => continue,
            };
            // One finding per step: the specs are fixed together.
            let specs = unpinned_specs(&step.command);
            if specs.is_empty() {
                continue;
            }
            let mut f = Finding::new(Kind::Unpinned);
            f.ecosystem = Some(eco.to_string());
            f.package = Some(specs.join(" "));
            f.detail = Some(format!(
                "{} line {}",
                step.command.manager.as_str(),
                step.line
            ));
            out.push(f);
        }
    }
    out
}

/// The specs of a command that are not exact pins.
pub fn unpinned_specs(command: &InstallCommand) -> Vec<String> {
    let python = command.manager.ecosystem() == Ecosystem::Python;
    command
        .specs
        .iter()
        .filter_map(|s| s.value.clone().or_else(|| Some(s.written.clone())))
        .filter(|s| {
            if python {
                !pip_pinned(s)
            } else {
                !conda_pinned(s)
            }
        })
        .collect()
}

/// `name==1.2.3` (or `===`), without wildcards; a direct URL counts as
/// pinned.
fn pip_pinned(spec: &str) -> bool {
    if spec.contains(" @ ") || spec.contains("://") {
        return true;
    }
    let spec = spec.split(';').next().unwrap_or(spec);
    match spec.split_once("==") {
        Some((_, version)) => {
            let version = version.trim_start_matches('=').trim();
            !version.is_empty() && !version.contains(['*', ',', '<', '>', '!', '~'])
        }
        None => false,
    }
}

/// `name==1.2.3=build`, `name=1.2.3=build` or `name 1.2.3 build`, without
/// wildcards or ranges.
fn conda_pinned(spec: &str) -> bool {
    let spec = spec.rsplit("::").next().unwrap_or(spec).trim();
    if spec.contains(['*', '<', '>', '!', '~', ',', '|', '[']) {
        return false;
    }
    let words: Vec<&str> = spec.split_whitespace().collect();
    if words.len() == 3 {
        return true;
    }
    let Some(at) = spec.find('=') else {
        return false;
    };
    let rest = spec[at..].trim_start_matches('=');
    match rest.split_once('=') {
        Some((version, build)) => !version.is_empty() && !build.is_empty(),
        None => false,
    }
}

/// What the pip indexes say about the locked files.
#[derive(Debug, Default)]
pub struct IndexCheck {
    /// `yanked` (with the reason) and `gone`.
    pub findings: Vec<Finding>,
    /// The newest version not yanked on the index, per locked package.
    pub newest: BTreeMap<String, String>,
}

/// Says in `outdated` pip findings when the index has an even newer version
/// than the one freeze would choose (one the requests do not allow).
pub fn annotate_newest(findings: &mut [Finding], newest: &BTreeMap<String, String>) {
    for f in findings {
        if f.kind != Kind::Outdated || f.ecosystem.as_deref() != Some("pip") {
            continue;
        }
        let (Some(name), Some(latest)) = (&f.package, &f.latest) else {
            continue;
        };
        if let Some(top) = newest.get(name)
            && newer("pip", top, latest)
        {
            f.detail = Some(format!("newest on the index: {top}"));
        }
    }
}

/// Reads the index page of every locked pip package: `yanked`, `gone`, and
/// the newest version there.
pub async fn index_findings(
    config: &Config,
    resolvers: &Resolvers,
    locked: &LockedImage,
) -> Result<IndexCheck, crate::freeze::FreezeError> {
    let mut out: Vec<Finding> = Vec::new();
    let mut newest: BTreeMap<String, String> = BTreeMap::new();
    for step in &locked.steps {
        if step.pypi.is_empty() || step.indexes.is_empty() {
            continue;
        }
        let urls = IndexUrls {
            urls: step.indexes.iter().map(|u| index_url(config, u)).collect(),
        };
        let client = resolvers.pypi_client(&urls)?;
        for p in &step.pypi {
            // Direct URL, VCS and path requirements are not on the index.
            if p.is_direct() {
                continue;
            }
            let Some(name) = crate::resolve::pypi::package_name(&p.name) else {
                continue;
            };
            let finding = match client.files(&name).await {
                Ok(files) => {
                    let versions: Vec<String> = files
                        .iter()
                        .filter(|f| f.yanked.is_none())
                        .filter_map(|f| {
                            crate::solve::python::dist::parse_filename(&f.filename, &name)
                        })
                        .map(|d| d.version.to_string())
                        .collect();
                    if let Some(top) = self::newest("pip", &versions) {
                        newest.insert(p.name.clone(), top);
                    }
                    match files.iter().find(|f| Some(&f.filename) == p.file.as_ref()) {
                        Some(file) => file.yanked.as_ref().map(|reason| {
                            let mut f = Finding::new(Kind::Yanked);
                            if !reason.is_empty() {
                                f.detail = Some(reason.clone());
                            }
                            f
                        }),
                        None => Some(Finding::new(Kind::Gone)),
                    }
                }
                Err(SourceError::NotFound(_)) => Some(Finding::new(Kind::Gone)),
                Err(SourceError::Failed(message)) => {
                    return Err(crate::freeze::FreezeError::Image {
                        image: locked.image.name.clone(),
                        message: format!("cannot read the index page of `{}`: {message}", p.name),
                    });
                }
            };
            if let Some(mut f) = finding {
                f.ecosystem = Some("pip".to_string());
                f.package = Some(p.name.clone());
                f.locked = p.version.clone();
                if !out.contains(&f) {
                    out.push(f);
                }
            }
        }
    }
    Ok(IndexCheck {
        findings: out,
        newest,
    })
}

/// Adds to `base` findings when the image the tag names now was built
/// (one more read of each moved tag, from the registry or its cache).
pub async fn date_moved_bases(
    resolvers: &Resolvers,
    platforms: &[String],
    findings: &mut [Finding],
) {
    for f in findings.iter_mut().filter(|f| f.kind == Kind::Base) {
        let Some(Ok(image)) = f.base.as_deref().map(crate::oci::ImageRef::parse) else {
            continue;
        };
        // The platform only picks which config to read; builders stamp
        // every platform of one release alike.
        let Some(Ok(platform)) = platforms.first().map(|p| p.parse::<crate::oci::Platform>())
        else {
            continue;
        };
        let created = match resolvers.registry.resolve(&image, &[platform]).await {
            Ok(r) => r.platforms.first().and_then(|p| p.created.clone()),
            Err(_) => None,
        };
        if let Some(created) = created {
            let layers = f.detail.take();
            f.detail = Some(match layers {
                Some(l) => format!("built {created}; {l}"),
                None => format!("built {created}"),
            });
        }
    }
}

/// What the conda channels say about the locked records: `broken` when a
/// locked file is no longer in its channel's repodata (conda channels
/// remove broken builds, or move them to `removed`).
pub async fn channel_findings(
    config: &Config,
    resolvers: &Resolvers,
    locked: &LockedImage,
) -> Result<Vec<Finding>, crate::freeze::FreezeError> {
    use crate::resolve::conda::CondaChannel;
    use crate::solve::conda::CondaSpec;
    let mut groups: BTreeMap<(&str, &str), Vec<&crate::lock::CondaPackage>> = BTreeMap::new();
    for step in &locked.steps {
        for p in &step.conda {
            groups
                .entry((p.channel.as_str(), p.subdir.as_str()))
                .or_default()
                .push(p);
        }
    }
    let mut out: Vec<Finding> = Vec::new();
    for ((channel, subdir), packages) in groups {
        let fail = |message: String| crate::freeze::FreezeError::Image {
            image: locked.image.name.clone(),
            message,
        };
        let mut names: Vec<&str> = packages.iter().map(|p| p.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        let specs = names
            .iter()
            .map(|n| CondaSpec::parse(n))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| fail(e.to_string()))?;
        let channels = [CondaChannel {
            name: channel.to_string(),
            url: index_url(config, channel),
        }];
        let data = resolvers
            .conda
            .fetch(&channels, subdir, &specs, &[], None)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let files = data.file_names();
        for p in packages {
            let file = p.url.rsplit('/').next().unwrap_or(&p.url);
            if files.contains(file) {
                continue;
            }
            let mut f = Finding::new(Kind::Broken);
            f.ecosystem = Some("conda".to_string());
            f.package = Some(p.name.clone());
            f.channel = Some(channel_name(&p.channel));
            f.locked = Some(format!("{}={}", p.version, p.build));
            f.detail = Some(format!("`{file}` is no longer in {channel}/{subdir}"));
            if !out.contains(&f) {
                out.push(f);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_recognised() {
        assert!(pip_pinned("numpy==1.26.4"));
        assert!(pip_pinned("numpy===1.26.4"));
        assert!(!pip_pinned("numpy==1.*"));
        assert!(!pip_pinned("numpy>=1"));
        assert!(!pip_pinned("numpy"));
        assert!(pip_pinned("demo @ https://example.org/demo-1.0.tar.gz"));
        assert!(conda_pinned("python==3.11.9=h1234_0"));
        assert!(conda_pinned("conda-forge::python=3.11.9=h1234_0"));
        assert!(conda_pinned("python 3.11.9 h1234_0"));
        assert!(!conda_pinned("python=3.11"));
        assert!(!conda_pinned("python==3.11"));
        assert!(!conda_pinned("python>=3.11"));
        assert!(!conda_pinned("python=3.11.*=*"));
    }

    #[test]
    fn versions_order_by_ecosystem() {
        assert!(newer("pip", "2.10.0", "2.9.1"));
        assert!(!newer("pip", "2.0", "2.0.0"));
        assert!(newer("conda", "1.10", "1.9"));
        assert_eq!(
            newest("pip", &["1.0".into(), "1.10".into(), "1.9".into()]).as_deref(),
            Some("1.10")
        );
    }

    #[test]
    fn outdated_findings_name_a_newer_version_the_requests_exclude() {
        let mut f = Finding::new(Kind::Outdated);
        f.ecosystem = Some("pip".into());
        f.package = Some("pandas".into());
        f.locked = Some("2.1.0".into());
        f.latest = Some("2.2.3".into());
        let mut findings = [f.clone(), f];
        let newest = BTreeMap::from([("pandas".to_string(), "3.0.0".to_string())]);
        annotate_newest(&mut findings[..1], &newest);
        assert_eq!(
            findings[0].detail.as_deref(),
            Some("newest on the index: 3.0.0")
        );
        assert_eq!(findings[1].detail, None);
        let same = BTreeMap::from([("pandas".to_string(), "2.2.3".to_string())]);
        annotate_newest(&mut findings[1..], &same);
        assert_eq!(findings[1].detail, None);
    }

    #[test]
    fn kinds_parse_and_rank() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
        }
        assert!(Kind::Yanked.severity() < Kind::Outdated.severity());
    }
}

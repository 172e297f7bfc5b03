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
//! | `outdated` | low      | freeze would now choose a newer version of a locked pip or conda package, a repository a dnf step reads has a newer build of a package it locked, or a repository an apk step reads (its index signature checked) has a newer version of a package it locked (never `security`: Alpine's index carries no advisories) |
//! | `yanked`   | high     | the locked pip file is yanked on its index (with the reason) |
//! | `gone`     | high     | the locked pip file is no longer on its index, a locked Debian package version is no longer in the archives its step reads (with the snapshot that still has it), a locked RPM build (NEVRA) or apk `name-version` is no longer in the repositories its step reads, or a file locked by URL (`ADD URL`, `curl -o`) answers 404 or 410 |
//! | `broken`   | high     | the locked conda file is no longer in its channel's repodata (removed or marked broken) |
//! | `hash-mismatch` | high | a locked digest or hash is not what the registry, index, channel or fixed URL serves for that exact artifact (a hand edit, or a replaced file; for apk, the index's `C:` checksum of the locked `name-version`) |
//! | `unresolvable` | high | freeze would fail now (the reason is the detail); bases, the index and the inputs are still checked, newer versions are not; for apk, a repository an apk step reads that cannot be read or whose signature fails (named as the package) |
//! | `vulnerable` | high   | the index publishes security advisories for the locked version of a pip package (PyPI's JSON API: OSV ids, aliases, fixed versions) |
//! | `security` | high     | a newer version of a locked Debian package is in a `-security` suite the lock read, or a security advisory of an RPM repository's `updateinfo` ships a newer build of a locked RPM package (the advisory id, severity and CVEs are in the detail) |
//! | `moved`    | info     | an apt archive suite the lock read has a new `Date` (the lock's snapshot timestamp still reproduces the old state), an RPM repository's `repomd.xml` changed (its revision), or an Alpine repository's `APKINDEX.tar.gz` changed (its sha256, with its `DESCRIPTION`) |
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
//! Every finding has `id` (the same from run to run while the finding is:
//! image, kind, subject and what the lock has), `kind` and `severity`, and
//! `at` (`file:line` of the definition) where it is about a line; `package` (with `ecosystem`,
//! `pip`, `conda`, `apt`, `rpm` or `apk`, and for conda the `channel` name; for `moved`
//! the archive URI and suite, the repository's base URL and id, or an apk
//! repository's URL with `@tag ` in front when tagged), `base` or `url` (a file locked by URL) names what
//! drifted; `locked`, `latest` and
//! `detail` are present when they mean something for the kind.
//!
//! Each image also has `coverage` (see [`crate::source::coverage`]): the
//! definition `file` and its `steps`, each with `line`, `text`, `class`
//! (`locked`, `lockable` or `not-locked`), `why`, and `accepted` when the
//! configuration accepts it unlocked.

pub mod advisories;
pub mod report;
mod run;

pub use run::{Drift, DriftOptions, DriftProgress, NoProgress, run};

use std::collections::BTreeMap;

use crate::config::Config;
use crate::freeze::check::{HashMismatch, Subject};
use crate::freeze::steps::index_url;
use crate::freeze::{FreezeError, ImageJob};
use crate::lock::{LockedImage, LockedStep};
use crate::resolve::Session;
use crate::resolve::conda::ResolveCondaError;
use crate::resolve::pypi::IndexUrls;
use crate::solve::conda::ParseCondaSpecError;
use crate::solve::python::SourceError;
use crate::source::steps::{Ecosystem as StepEcosystem, InstallCommand};
use crate::verify::{Ecosystem, Finding, FindingKind as Kind, check_lock};

pub use crate::verify::{FindingKind, ImageReport, Report, Severity};

/// Why a drift run could not report.
#[derive(Debug, thiserror::Error)]
pub enum DriftError {
    #[error(
        "`--as-of {0}` is not a date\nhint: write a date like `2024-05-01` or `2024-05-01T12:00:00Z`"
    )]
    AsOf(String),
    /// Trouble resolving an image (not what moved upstream: that is a
    /// finding).
    #[error(transparent)]
    Freeze(#[from] FreezeError),
    #[error("image `{image}`: cannot read the index page of `{package}`: {message}")]
    IndexPage {
        image: String,
        package: String,
        message: String,
    },
    #[error("image `{image}`: {source}")]
    Channel {
        image: String,
        source: ResolveCondaError,
    },
    #[error("image `{image}`: {source}")]
    LockedName {
        image: String,
        source: ParseCondaSpecError,
    },
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

/// Puts findings in report order: by severity, kind, then subject.
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        (a.severity(), a.kind, &a.name, &a.expected).cmp(&(
            b.severity(),
            b.kind,
            &b.name,
            &b.expected,
        ))
    });
}

/// Gives each finding the definition line it is about (`step`, as verify's
/// findings have it), where there is one: the install step that locked the
/// package (outdated, yanked, gone, broken, vulnerable), the `FROM` of a moved base,
/// the step with unpinned specs. Stale and unresolvable findings are about
/// the image as a whole and keep none.
pub fn locate(findings: &mut [Finding], job: &ImageJob, locked: &LockedImage) {
    let definition = locked.image.definition.to_string();
    let text = std::fs::read_to_string(&job.definition.path).unwrap_or_default();
    let line_at = |offset: usize| -> Option<usize> {
        (offset <= text.len() && !text.is_empty())
            .then(|| text[..offset].bytes().filter(|b| *b == b'\n').count() + 1)
    };
    for f in findings.iter_mut().filter(|f| f.step.is_none()) {
        f.step = match (f.kind, f.ecosystem) {
            (Kind::Outdated | Kind::Yanked | Kind::Gone | Kind::Vulnerable, Ecosystem::Pip) => {
                locked
                    .steps
                    .iter()
                    .find(|s| s.pypi.iter().any(|p| p.name.as_str() == f.name))
                    .map(|s| format!("{}:{}", s.file, s.line))
            }
            (Kind::Outdated | Kind::Broken, Ecosystem::Conda) => locked
                .steps
                .iter()
                .find(|s| s.conda.iter().any(|p| p.name.as_str() == f.name))
                .map(|s| format!("{}:{}", s.file, s.line)),
            (Kind::Base, _) => locked
                .stages
                .iter()
                .find(|s| s.base.as_str() == f.name)
                .and_then(|s| job.definition.stages.get(s.index as usize))
                .and_then(|s| line_at(s.span.start))
                .map(|line| format!("{definition}:{line}")),
            (Kind::Unpinned, _) => f
                .detail
                .as_deref()
                .and_then(|d| d.rsplit_once(" line "))
                .map(|(_, line)| format!("{definition}:{line}")),
            _ => None,
        };
    }
}

/// A finding saying freeze would fail now, and why.
pub fn unresolvable(message: &str) -> Finding {
    let mut f = Finding::new(Kind::Unresolvable, Ecosystem::Image, "");
    f.detail = Some(message.to_string());
    f
}

/// What can be seen without the network: compares the lock on disk with
/// the fresh resolution and the definition (stale, base, outdated,
/// unpinned).
pub fn compare(job: &ImageJob, locked: &LockedImage, fresh: &LockedImage) -> Vec<Finding> {
    let mut out = stale_findings(job, locked);
    out.extend(base_findings(locked, fresh));
    out.extend(outdated_findings(locked, fresh));
    out.extend(unpinned_findings(job, locked));
    out
}

/// Why the lock is not current for the definition as it is now, by
/// verify's [`check_lock`].
fn stale_findings(job: &ImageJob, locked: &LockedImage) -> Vec<Finding> {
    let mut why = check_lock(locked, &job.definition, &job.inputs);
    why.extend(crate::verify::check_local_bases(
        locked,
        &job.definition,
        &job.config.context,
    ));
    why.into_iter()
        .map(|why| {
            let mut f = Finding::new(Kind::Stale, Ecosystem::Image, "");
            match why {
                crate::verify::Staleness::InputHash { locked: was, now } => {
                    f.expected = Some(was);
                    f.found = Some(now);
                    f.detail = Some(format!(
                        "`{}` or a file it reads changed since the lock was made",
                        locked.image.definition
                    ));
                }
                other => f.detail = Some(other.describe()),
            }
            f
        })
        .collect()
}

/// What drift cannot look at for the bases `locked` reads on this machine
/// (a daemon's image, a file, a layout): they have no upstream, so only
/// whether they changed since the lock is told (as `stale`).
pub fn local_base_notes(locked: &LockedImage) -> Vec<String> {
    locked
        .bases
        .iter()
        .filter(|b| b.is_local())
        .map(|b| {
            format!(
                "image `{}`: base `{}` is on this machine, so drift cannot look upstream for a newer one; only a change of its {} since the lock is reported",
                locked.image.name,
                b.name,
                b.pinned.as_deref().unwrap_or("digest")
            )
        })
        .collect()
}

/// The in-repo parents of the lock that were locked again since (offline:
/// their lockfiles on disk), as stale findings.
pub fn parent_findings(config: &crate::config::Config, locked: &LockedImage) -> Vec<Finding> {
    crate::verify::parents_stale(config, locked)
        .into_iter()
        .map(|why| {
            let mut f = Finding::new(Kind::Stale, Ecosystem::Image, "");
            f.detail = Some(why.describe());
            f
        })
        .collect()
}

fn base_findings(locked: &LockedImage, fresh: &LockedImage) -> Vec<Finding> {
    let mut out = Vec::new();
    for base in &locked.bases {
        // Images of this repository move when they are frozen again; a
        // base on this machine has no upstream (a changed one is stale).
        if base.built_from.is_some() || base.is_local() {
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
        let mut f = Finding::new(Kind::Base, Ecosystem::Base, base.name.clone());
        f.expected = Some(base.digest.to_string());
        f.found = Some(now.digest.to_string());
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

/// apt: a newer candidate for a locked Debian package (`security` when a
/// `-security` suite offers it), and archive suites whose `Date` moved.
fn apt_findings(step: &LockedStep, now: &LockedStep, out: &mut Vec<Finding>) {
    use crate::solve::apt::compare_versions;
    for p in step.apt.iter().filter(|p| p.installed_after()) {
        let Some(q) = now
            .apt
            .iter()
            .find(|q| q.name == p.name && q.architecture == p.architecture && q.installed_after())
        else {
            continue;
        };
        if compare_versions(&q.version, &p.version) != std::cmp::Ordering::Greater {
            continue;
        }
        let security = q
            .suite
            .as_deref()
            .filter(|s| s.ends_with("-security") || s.ends_with("/updates"));
        let kind = if security.is_some() {
            Kind::Security
        } else {
            Kind::Outdated
        };
        let mut f = Finding::new(kind, Ecosystem::Apt, p.name.to_string());
        f.expected = Some(p.version.to_string());
        f.found = Some(q.version.to_string());
        f.detail = match (security, &q.suite) {
            (Some(s), _) => Some(format!("security update from `{s}`")),
            (None, Some(s)) => Some(format!("from `{s}`")),
            _ => None,
        };
        if !out.contains(&f) {
            out.push(f);
        }
    }
    for s in &step.apt_sources {
        let Some(n) = now
            .apt_sources
            .iter()
            .find(|n| n.uri == s.uri && n.suite == s.suite && n.date != s.date)
        else {
            continue;
        };
        let mut f = Finding::new(
            Kind::Moved,
            Ecosystem::Apt,
            format!("{} {}", s.uri, s.suite),
        );
        f.expected = Some(s.date.to_string());
        f.found = Some(n.date.to_string());
        f.detail = Some(format!(
            "the archive was read at snapshot {}; it now has a newer release",
            s.snapshot
        ));
        if !out.contains(&f) {
            out.push(f);
        }
    }
}

/// apt: packages the lock installs whose locked version the archives the
/// step reads no longer offer (found by the fresh resolution), with where
/// the lock's snapshot still has them.
pub fn apt_gone_findings(
    locked: &LockedImage,
    gone: &[crate::freeze::outcome::GoneDeb],
) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    for g in gone {
        let step = locked.steps.iter().find(|s| {
            s.stage as usize == g.stage
                && s.line as usize == g.line
                && s.apt.iter().any(|p| {
                    p.name.as_str() == g.name
                        && p.version.as_str() == g.version
                        && p.architecture.as_str() == g.architecture
                })
        });
        let Some(step) = step else { continue };
        let package = step
            .apt
            .iter()
            .find(|p| p.name.as_str() == g.name && p.version.as_str() == g.version);
        // The source that served it, by URI and suite.
        let source = package.and_then(|p| {
            step.apt_sources.iter().find(|s| {
                p.uri.as_ref().is_some_and(|u| u == &s.uri)
                    && p.suite.as_ref().is_none_or(|x| x == &s.suite)
            })
        });
        let hint = match source {
            Some(s) => match s.snapshot_uri() {
                Some(uri) => format!(
                    "the archive at the lock's snapshot {} still has it: `{uri}` (`[rewrite] apt = \"pins+snapshot\"` writes it)",
                    s.snapshot
                ),
                None => format!(
                    "`{}` keeps no snapshot imagelock knows of; the lock read it at {}",
                    s.uri, s.snapshot
                ),
            },
            None => "no archive the step reads offers it now".to_string(),
        };
        let mut f = Finding::new(Kind::Gone, Ecosystem::Apt, g.name.clone());
        f.expected = Some(g.version.clone());
        f.step = Some(g.at.clone());
        f.detail = Some(format!(
            "{} {} ({}) is no longer in the archives; {hint}",
            g.name, g.version, g.architecture
        ));
        if !out.contains(&f) {
            out.push(f);
        }
    }
    out
}

/// rpm: repositories a dnf step read whose `repomd.xml` changed since (a
/// new revision: what the step resolves against moved).
fn rpm_moved_findings(step: &LockedStep, now: &LockedStep, out: &mut Vec<Finding>) {
    for r in &step.rpm_repos {
        let Some(n) = now
            .rpm_repos
            .iter()
            .find(|n| n.id == r.id && n.baseurl == r.baseurl && n.repomd_sha256 != r.repomd_sha256)
        else {
            continue;
        };
        let state = |x: &crate::lock::RpmRepo| match &x.revision {
            Some(rev) => format!("revision {rev}"),
            None => format!("repomd.xml {}", x.repomd_sha256),
        };
        let mut f = Finding::new(
            Kind::Moved,
            Ecosystem::Rpm,
            format!("{} ({})", r.baseurl, r.id),
        );
        f.expected = Some(state(r));
        f.found = Some(state(n));
        f.step = Some(format!("{}:{}", step.file, step.line));
        f.detail = Some(format!(
            "repository `{}` has new metadata since the lock read it; the locked packages are checked against it",
            r.id
        ));
        if !out.contains(&f) {
            out.push(f);
        }
    }
}

/// rpm: what the repositories of each dnf step say now about the packages
/// the lock installed there (read by the fresh resolution,
/// [`crate::freeze::rpm::rpm_step`]): a newer build is `security` when a
/// security advisory of a repository's `updateinfo` ships it (named with
/// its severity), else `outdated`; a locked build no repository offers any
/// more is `gone`. Repositories whose errata could not be read are warnings,
/// and the `outdated` findings they may hide a security update behind say so.
pub fn rpm_findings(
    locked: &LockedImage,
    drift: &[crate::freeze::outcome::RpmDriftAt],
) -> (Vec<Finding>, Vec<String>) {
    let mut out: Vec<Finding> = Vec::new();
    let mut warnings: Vec<String> = Vec::new();
    for d in drift {
        let Some(step) = locked
            .steps
            .iter()
            .find(|s| s.stage as usize == d.stage && s.line as usize == d.line)
        else {
            continue;
        };
        let baseurl = |id: &str| {
            step.rpm_repos
                .iter()
                .find(|r| r.id.as_str() == id)
                .map(|r| r.baseurl.to_string())
        };
        for (repo, why) in &d.drift.unread {
            let w = format!(
                "{}: the errata (`updateinfo`) of repository `{repo}` cannot be read, so a newer build from it may be a security update imagelock cannot see: {why}",
                d.at
            );
            if !warnings.contains(&w) {
                warnings.push(w);
            }
        }
        for n in &d.drift.newer {
            let errata: Vec<_> = d
                .drift
                .errata
                .iter()
                .filter(|e| e.name == n.name && e.arch == n.arch && e.locked == n.locked)
                .collect();
            let mut f;
            if errata.is_empty() {
                f = Finding::new(Kind::Outdated, Ecosystem::Rpm, n.name.clone());
                f.found = Some(n.newest.clone());
                let mut detail = format!("a newer build is in repository `{}`", n.repo);
                if d.drift.unread.iter().any(|(r, _)| r == &n.repo) {
                    detail.push_str(
                        "; its errata could not be read, so this may be a security update",
                    );
                } else if !d.drift.unread.is_empty() {
                    let repos: Vec<String> = d
                        .drift
                        .unread
                        .iter()
                        .map(|(r, _)| format!("`{r}`"))
                        .collect();
                    detail.push_str(&format!(
                        "; the errata of {} could not be read",
                        repos.join(", ")
                    ));
                }
                f.detail = Some(detail);
            } else {
                f = Finding::new(Kind::Security, Ecosystem::Rpm, n.name.clone());
                // What the advisories ship; the newest build may be newer still.
                let fixed = errata
                    .iter()
                    .map(|e| e.fixed.as_str())
                    .max_by(|a, b| compare_nevr(a, b))
                    .unwrap_or(&n.newest);
                f.found = Some(fixed.to_string());
                let said: Vec<String> = errata
                    .iter()
                    .map(|e| {
                        let mut s = format!("security advisory {}", e.advisory);
                        let mut what = Vec::new();
                        if let Some(sev) = &e.severity {
                            what.push(format!("severity {sev}"));
                        }
                        what.extend(e.cves.iter().cloned());
                        if !what.is_empty() {
                            s.push_str(&format!(" ({})", what.join(", ")));
                        }
                        s.push_str(&format!(" ships {} in `{}`", e.fixed, e.repo));
                        s
                    })
                    .collect();
                f.detail = Some(said.join("; "));
            }
            f.expected = Some(format!("{}.{}", n.locked, n.arch));
            f.step = Some(d.at.clone());
            if !out.contains(&f) {
                out.push(f);
            }
        }
        for g in &d.drift.gone {
            let mut f = Finding::new(Kind::Gone, Ecosystem::Rpm, g.name.clone());
            f.expected = Some(format!("{}.{}", g.evr, g.arch));
            f.step = Some(d.at.clone());
            let from = match g.repo.as_deref() {
                Some(id) => match baseurl(id) {
                    Some(url) => format!(
                        "; the lock took it from repository `{id}` (`{url}`), which keeps no snapshot imagelock knows of"
                    ),
                    None => format!("; the lock took it from repository `{id}`"),
                },
                None => String::new(),
            };
            f.detail = Some(format!(
                "{}-{}.{} is no longer in the repositories the step reads{from}",
                g.name, g.evr, g.arch
            ));
            if !out.contains(&f) {
                out.push(f);
            }
        }
    }
    (out, warnings)
}

/// An apk repository of a lock as drift names it: its URL, with `@tag `
/// in front when the `/etc/apk/repositories` line has one.
fn apk_repo_label(r: &crate::lock::ApkRepo) -> String {
    match &r.tag {
        Some(t) => format!("@{t} {}", r.url),
        None => r.url.to_string(),
    }
}

/// apk: repositories an apk step read whose `APKINDEX.tar.gz` changed since
/// the lock read it (another sha256: what the step resolves against moved).
fn apk_moved_findings(step: &LockedStep, now: &LockedStep, out: &mut Vec<Finding>) {
    for r in &step.apk_repos {
        // The fresh entries of the same repository on a platform the lock's
        // entry has (an index is per architecture).
        let same: Vec<&crate::lock::ApkRepo> = now
            .apk_repos
            .iter()
            .filter(|n| {
                n.url == r.url
                    && n.tag == r.tag
                    && n.platforms.iter().any(|p| r.platforms.contains(p))
            })
            .collect();
        if same.iter().any(|n| n.index_sha256 == r.index_sha256) {
            continue;
        }
        let Some(n) = same.first() else { continue };
        let state = |x: &crate::lock::ApkRepo| match &x.description {
            Some(d) => format!("{d}, APKINDEX sha256 {}", x.index_sha256),
            None => format!("APKINDEX sha256 {}", x.index_sha256),
        };
        let mut f = Finding::new(Kind::Moved, Ecosystem::Apk, apk_repo_label(r));
        f.expected = Some(state(r));
        f.found = Some(state(n));
        f.step = Some(format!("{}:{}", step.file, step.line));
        f.detail = Some(format!(
            "repository `{}` has a new index since the lock read it; the locked packages are checked against it",
            r.url
        ));
        if !out.contains(&f) {
            out.push(f);
        }
    }
}

/// apk: what the repositories of each apk step say now about the packages
/// the lock installed there (read by the fresh resolution,
/// [`crate::freeze::apk::apk_step`], only from indexes whose signature
/// verifies): a newer version is `outdated` (Alpine's index carries no
/// security advisories, so it is never `security`), a locked
/// `name-version` no repository offers any more is `gone`, one offered
/// with another checksum is `hash-mismatch`, and a repository that cannot
/// be read or whose signature fails is `unresolvable`, naming it. Steps
/// whose locked packages could not be checked at all are warnings.
pub fn apk_findings(
    locked: &LockedImage,
    drift: &[crate::freeze::outcome::ApkDriftAt],
) -> (Vec<Finding>, Vec<String>) {
    let mut out: Vec<Finding> = Vec::new();
    let mut warnings: Vec<String> = Vec::new();
    let mut push = |f: Finding| {
        if !out.contains(&f) {
            out.push(f);
        }
    };
    for d in drift {
        let step = locked
            .steps
            .iter()
            .find(|s| s.stage as usize == d.stage && s.line as usize == d.line);
        for u in &d.drift.unread {
            let mut f = Finding::new(Kind::Unresolvable, Ecosystem::Apk, u.repo.clone());
            f.step = Some(d.at.clone());
            f.detail = Some(format!(
                "{}; the apk packages of this step and of the apk steps after it are not checked",
                u.why
            ));
            push(f);
        }
        if let Some(why) = &d.drift.unsolvable {
            let mut f = unresolvable(why);
            f.step = Some(d.at.clone());
            push(f);
        }
        if let Some(why) = &d.drift.skipped {
            let w = format!(
                "{}: the apk packages the lock has for this step are not checked ({}): {why}",
                d.at, d.platform
            );
            if !warnings.contains(&w) {
                warnings.push(w);
            }
        }
        if let Some(why) = &d.drift.not_locked_now {
            let w = format!(
                "{}: freeze would not lock this apk step now ({}), so a moved index is not compared; its locked packages were checked: {why}",
                d.at, d.platform
            );
            if !warnings.contains(&w) {
                warnings.push(w);
            }
        }
        // The rest is about packages of the lock's step.
        if step.is_none() {
            continue;
        }
        for n in &d.drift.newer {
            let mut f = Finding::new(Kind::Outdated, Ecosystem::Apk, n.name.clone());
            f.expected = Some(n.locked.clone());
            f.found = Some(n.newest.clone());
            f.step = Some(d.at.clone());
            f.detail = Some(format!(
                "a newer version is in repository `{}` (Alpine's index says nothing of security fixes)",
                n.repo
            ));
            push(f);
        }
        for g in &d.drift.gone {
            let mut f = Finding::new(Kind::Gone, Ecosystem::Apk, g.name.clone());
            f.expected = Some(g.version.clone());
            f.step = Some(d.at.clone());
            let from = match &g.repo {
                Some(url) => format!(
                    "; the lock took it from `{url}`, which keeps no snapshot imagelock knows of"
                ),
                None => String::new(),
            };
            f.detail = Some(format!(
                "{}-{} is no longer in the repositories the step reads{from}",
                g.name, g.version
            ));
            push(f);
        }
        for r in &d.drift.replaced {
            let mut f = Finding::new(Kind::HashMismatch, Ecosystem::Apk, r.name.clone());
            f.expected = Some(r.locked.clone());
            f.found = Some(r.served.clone());
            f.step = Some(d.at.clone());
            f.detail = Some(format!(
                "repository `{}` lists {}-{} with checksum {}; the lock has {}",
                r.repo, r.name, r.version, r.served, r.locked
            ));
            push(f);
        }
    }
    (out, warnings)
}

/// Orders two `[epoch:]version-release.arch` strings by their EVR.
fn compare_nevr(a: &str, b: &str) -> std::cmp::Ordering {
    let evr = |s: &str| -> crate::solve::rpm::Evr {
        let s = s.rsplit_once('.').map_or(s, |(e, _)| e);
        let (epoch, vr) = match s.split_once(':') {
            Some((e, vr)) => (e.parse().unwrap_or(0), vr),
            None => (0, s),
        };
        let (v, r) = vr.rsplit_once('-').unwrap_or((vr, ""));
        crate::solve::rpm::Evr::new(epoch, v, r)
    };
    evr(a).compare(&evr(b))
}

fn outdated_findings(locked: &LockedImage, fresh: &LockedImage) -> Vec<Finding> {
    let mut out = Vec::new();
    for step in &locked.steps {
        let Some(now) = matching_step(step, fresh) else {
            continue;
        };
        apt_findings(step, now, &mut out);
        rpm_moved_findings(step, now, &mut out);
        apk_moved_findings(step, now, &mut out);
        let pip = |s: &LockedStep| -> BTreeMap<String, Vec<String>> {
            let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for p in &s.pypi {
                m.entry(p.name.to_string())
                    .or_default()
                    .push(p.version_or_unknown().to_string());
            }
            m
        };
        let conda = |s: &LockedStep| -> BTreeMap<String, Vec<String>> {
            let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for p in &s.conda {
                m.entry(p.name.to_string())
                    .or_default()
                    .push(p.version.to_string());
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
                    let ecosystem = if eco == "conda" {
                        Ecosystem::Conda
                    } else {
                        Ecosystem::Pip
                    };
                    let mut f = Finding::new(Kind::Outdated, ecosystem, name.clone());
                    if eco == "conda" {
                        f.channel = step
                            .conda
                            .iter()
                            .find(|p| &p.name == name)
                            .map(|p| channel_name(&p.channel));
                    }
                    f.expected = Some(old_max);
                    f.found = Some(new_max);
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

fn unpinned_findings(job: &ImageJob, locked: &LockedImage) -> Vec<Finding> {
    let mut out = Vec::new();
    let root = lock_root(job, locked);
    for stage in &job.definition.stages {
        for step in &stage.steps {
            let eco = match step.command.manager.ecosystem() {
                StepEcosystem::Python => Ecosystem::Pip,
                StepEcosystem::Conda => Ecosystem::Conda,
                StepEcosystem::Os | StepEcosystem::Other => continue,
            };
            // One finding per step: the specs are fixed together.
            let specs = unpinned_specs(&step.command);
            if !specs.is_empty() {
                let mut f = Finding::new(Kind::Unpinned, eco, specs.join(" "));
                f.detail = Some(format!(
                    "{} line {}",
                    step.command.manager.as_str(),
                    step.line
                ));
                out.push(f);
            }
            // Specs read from files: one finding per spec, at its line.
            let si = stage.steps.iter().position(|s| std::ptr::eq(s, step));
            let files = si.map_or_else(Vec::new, |si| job.inputs.step_files(stage.index, si));
            let mut seen = Vec::new();
            for (_, fi) in files {
                if seen.contains(&fi) {
                    continue;
                }
                seen.push(fi);
                let file = &job.inputs.files[fi];
                for (eco, spec, offset) in file_specs(file) {
                    let pinned = if eco == Ecosystem::Pip {
                        pip_pinned(&spec)
                    } else {
                        conda_pinned(&spec)
                    };
                    if pinned {
                        continue;
                    }
                    let line = file.text[..offset.min(file.text.len())]
                        .bytes()
                        .filter(|b| *b == b'\n')
                        .count()
                        + 1;
                    let mut f = Finding::new(Kind::Unpinned, eco, spec);
                    let at = format!("{}:{line}", shown_path(root.as_deref(), &file.path));
                    f.detail = Some(format!(
                        "{at}, read by {} line {}",
                        step.command.manager.as_str(),
                        step.line
                    ));
                    f.step = Some(at);
                    out.push(f);
                }
            }
        }
    }
    out
}

/// The specs a step's file gives, with their ecosystem and byte offset.
fn file_specs(file: &crate::source::inputs::InputFile) -> Vec<(Ecosystem, String, usize)> {
    use crate::source::steps::FileRole;
    match file.role {
        FileRole::Requirements => {
            let parsed = crate::source::requirements::RequirementsFile::parse(
                &file.path,
                &file.text,
                &|_| None,
            );
            parsed
                .map(|r| {
                    r.entries
                        .into_iter()
                        .filter_map(|e| match e {
                            crate::source::requirements::RequirementsEntry::Requirement {
                                spec,
                                editable: false,
                                span,
                                ..
                            } => Some((Ecosystem::Pip, spec, span.start)),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default()
        }
        FileRole::Environment => {
            crate::source::environment::EnvironmentFile::parse(&file.path, &file.text)
                .map(|env| {
                    let conda = env
                        .dependencies
                        .into_iter()
                        .map(|d| (Ecosystem::Conda, d.value, d.span.start));
                    let pip = env
                        .pip
                        .into_iter()
                        .map(|d| (Ecosystem::Pip, d.value, d.span.start));
                    conda.chain(pip).collect()
                })
                .unwrap_or_default()
        }
        FileRole::CondaSpecs => {
            let mut out = Vec::new();
            let mut offset = 0;
            for line in file.text.split_inclusive('\n') {
                let spec = match line.find('#') {
                    Some(i) if !line.contains("://") => line[..i].trim(),
                    _ => line.trim(),
                };
                if spec.starts_with('@') {
                    // `@EXPLICIT`: every line is a URL with its hash.
                    return Vec::new();
                }
                if !spec.is_empty() {
                    out.push((Ecosystem::Conda, spec.to_string(), offset));
                }
                offset += line.len();
            }
            out
        }
        FileRole::Constraints | FileRole::Editable => Vec::new(),
    }
}

/// The directory the lock's paths are relative to: the definition file's
/// directory, up as many levels as the lock's `definition` has.
fn lock_root(job: &ImageJob, locked: &LockedImage) -> Option<std::path::PathBuf> {
    let depth = locked.image.definition.as_str().split('/').count();
    let file = job.config.file.canonicalize().ok()?;
    file.ancestors()
        .nth(depth)
        .map(std::path::Path::to_path_buf)
}

/// A file a step reads as the lock's paths are written: relative to the
/// lock's root, with `/` separators (else as it is).
fn shown_path(root: Option<&std::path::Path>, path: &std::path::Path) -> String {
    let abs = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let rel = root.and_then(|r| abs.strip_prefix(r).ok()).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// The specs of a command that are not exact pins.
pub fn unpinned_specs(command: &InstallCommand) -> Vec<String> {
    let python = command.manager.ecosystem() == StepEcosystem::Python;
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
        if f.kind != Kind::Outdated || f.ecosystem != Ecosystem::Pip {
            continue;
        }
        let Some(latest) = &f.found else {
            continue;
        };
        if let Some(top) = newest.get(&f.name)
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
    session: &Session,
    locked: &LockedImage,
) -> Result<IndexCheck, DriftError> {
    let mut out: Vec<Finding> = Vec::new();
    let mut newest: BTreeMap<String, String> = BTreeMap::new();
    for step in &locked.steps {
        if step.pypi.is_empty() || (step.indexes.is_empty() && step.find_links.is_empty()) {
            continue;
        }
        let urls = IndexUrls {
            urls: step.indexes.iter().map(|u| index_url(config, u)).collect(),
        };
        let find_links: Vec<String> = step
            .find_links
            .iter()
            .map(|u| index_url(config, u))
            .collect();
        let client = session
            .pypi_client_finding(&urls, &find_links, session.no_build)
            .map_err(crate::freeze::FreezeError::setup)?;
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
                        newest.insert(p.name.to_string(), top);
                    }
                    if let (Some(file), Some(locked)) = (&p.file, &p.sha256)
                        && let crate::resolve::pypi::LockedHash::Mismatch { served } =
                            crate::resolve::pypi::compare_locked_hash(
                                &files,
                                file.as_str(),
                                locked.as_str(),
                            )
                    {
                        let f = mismatch_finding(&HashMismatch {
                            subject: Subject::Pip,
                            name: p.name.to_string(),
                            artifact: file.to_string(),
                            key: "sha256",
                            locked: locked.to_string(),
                            served: Some(served),
                        });
                        if !out.contains(&f) {
                            out.push(f);
                        }
                    }
                    match files
                        .iter()
                        .find(|f| p.file.as_ref().is_some_and(|n| f.filename == *n))
                    {
                        Some(file) => file.yanked.as_ref().map(|reason| {
                            let mut f = Finding::new(Kind::Yanked, Ecosystem::Pip, p.name.clone());
                            if !reason.is_empty() {
                                f.detail = Some(reason.clone());
                            }
                            f
                        }),
                        None => Some(Finding::new(Kind::Gone, Ecosystem::Pip, p.name.clone())),
                    }
                }
                Err(SourceError::NotFound(..)) => {
                    Some(Finding::new(Kind::Gone, Ecosystem::Pip, p.name.clone()))
                }
                Err(SourceError::Failed(message) | SourceError::Unavailable(message)) => {
                    return Err(DriftError::IndexPage {
                        image: locked.image.name.to_string(),
                        package: p.name.to_string(),
                        message,
                    });
                }
            };
            if let Some(mut f) = finding {
                f.expected = p.version.as_ref().map(ToString::to_string);
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

/// Fetches each file the lock pins by URL again: `hash-mismatch` when the
/// URL now serves other bytes, `gone` when its server says it is not there
/// (404, 410). A URL that cannot be reached for another reason is
/// `unresolvable`, with the reason: drift does not claim it is unchanged.
pub async fn download_findings(session: &Session, locked: &LockedImage) -> Vec<Finding> {
    use crate::resolve::content::{DOWNLOAD_CAP, FetchError, fetch_sha256};
    let mut out = Vec::new();
    for stage in &locked.stages {
        for d in &stage.downloads {
            let at = format!("{}:{}", locked.image.definition, d.line);
            let mut f = match fetch_sha256(session.http(), d.url.as_str(), DOWNLOAD_CAP).await {
                Ok(now) if now.sha256 == d.sha256.as_str() => continue,
                Ok(now) => {
                    let mut f = Finding::new(Kind::HashMismatch, Ecosystem::Url, d.url.as_str());
                    f.expected = Some(d.sha256.to_string());
                    f.detail = Some(format!(
                        "`{}` serves other content than the lock pins: sha256 {} ({} bytes), locked {} ({} bytes)",
                        d.url, now.sha256, now.size, d.sha256, d.size
                    ));
                    f.found = Some(now.sha256);
                    f
                }
                Err(FetchError::Gone { status, .. }) => {
                    let mut f = Finding::new(Kind::Gone, Ecosystem::Url, d.url.as_str());
                    f.expected = Some(d.sha256.to_string());
                    f.detail = Some(format!("`{}` answers {status}", d.url));
                    f
                }
                Err(e) => {
                    let mut f = Finding::new(Kind::Unresolvable, Ecosystem::Url, d.url.as_str());
                    f.detail = Some(format!("cannot fetch `{}`: {e}", d.url));
                    f
                }
            };
            f.step = Some(at);
            if !out.contains(&f) {
                out.push(f);
            }
        }
    }
    out
}

/// Each git ref the lock resolved, read again: `moved` when it names
/// another commit now, `gone` when the repository or the ref is gone, and
/// `unresolvable` when the repository cannot be reached, so drift never
/// says "no drift" for a source it could not read. The URL is taken from
/// the definition when it carries credentials the lock dropped.
pub async fn git_findings(
    session: &Session,
    locked: &LockedImage,
    definition: &crate::source::model::Definition,
) -> Vec<Finding> {
    use crate::config::redact::redact_url;
    use crate::resolve::git::ls_remote;
    use crate::source::coverage::{ContentKind, git_url};
    let mut out = Vec::new();
    for stage in &locked.stages {
        for g in &stage.git {
            let at = format!("{}:{}", locked.image.definition, g.line);
            let written = definition
                .stages
                .iter()
                .flat_map(|s| &s.content)
                .filter(|c| usize::try_from(g.line).is_ok_and(|l| l == c.line))
                .find_map(|c| match &c.kind {
                    ContentKind::GitClone { url: Some(u), .. } => Some(u.clone()),
                    ContentKind::AddGit { url, .. } => Some(git_url(url).repository),
                    _ => None,
                })
                .filter(|u| redact_url(u) == g.url.as_str());
            let url = written.unwrap_or_else(|| g.url.to_string());
            let reference = g.reference.as_str();
            let name = format!("{}#{reference}", g.url);
            let Some(commit) = &g.commit else {
                // Not locked at freeze: coverage names it; say whether it
                // can be read now.
                continue;
            };
            let mut f = match ls_remote(session.http(), &url).await {
                Ok(refs) => match refs.resolve(Some(reference)) {
                    Some(now) if now == commit.as_str() => continue,
                    Some(now) => {
                        let mut f = Finding::new(Kind::Moved, Ecosystem::Git, &name);
                        f.expected = Some(commit.to_string());
                        f.found = Some(now.to_string());
                        f.detail = Some(format!(
                            "`{reference}` of `{}` moved to commit {now}; the lock has {commit}",
                            g.url
                        ));
                        f
                    }
                    None => {
                        let mut f = Finding::new(Kind::Gone, Ecosystem::Git, &name);
                        f.expected = Some(commit.to_string());
                        f.detail = Some(format!(
                            "`{}` has no branch or tag `{reference}` any more",
                            g.url
                        ));
                        f
                    }
                },
                Err(e) if e.is_gone() => {
                    let mut f = Finding::new(Kind::Gone, Ecosystem::Git, &name);
                    f.expected = Some(commit.to_string());
                    f.detail = Some(e.to_string());
                    f
                }
                Err(e) => {
                    let mut f = Finding::new(Kind::Unresolvable, Ecosystem::Git, &name);
                    f.expected = Some(commit.to_string());
                    f.detail = Some(format!("cannot read the refs of `{}`: {e}", g.url));
                    f
                }
            };
            f.step = Some(at);
            if !out.contains(&f) {
                out.push(f);
            }
        }
    }
    out
}

/// A `hash-mismatch` finding: the locked value is `expected`, what the
/// source serves `found`.
pub fn mismatch_finding(m: &HashMismatch) -> Finding {
    let ecosystem = match m.subject {
        Subject::Pip => Ecosystem::Pip,
        Subject::Conda => Ecosystem::Conda,
        Subject::Base => Ecosystem::Base,
        Subject::Url => Ecosystem::Url,
    };
    let mut f = Finding::new(Kind::HashMismatch, ecosystem, m.name.clone());
    f.expected = Some(m.locked.clone());
    f.found = m.served.clone();
    f.detail = Some(m.describe());
    f
}

/// Asks each locked base's registry for it by its locked digest:
/// `hash-mismatch` when the registry does not have that digest or serves
/// other platform manifests or configs under it. A `base` finding for the
/// same base is dropped: the tag did not move, the lock is wrong.
pub async fn base_hash_findings(
    session: &Session,
    locked: &LockedImage,
    findings: &mut Vec<Finding>,
) -> Result<(), DriftError> {
    for base in locked.bases.iter().filter(|b| !b.is_local()) {
        let found = crate::freeze::check::base_mismatches(&session.registry, base)
            .await
            .map_err(|e| {
                DriftError::Freeze(FreezeError::image(
                    locked.image.name.as_str(),
                    crate::freeze::ImageCause::Registry(e),
                ))
            })?;
        if found.is_empty() {
            continue;
        }
        findings.retain(|f| !(f.kind == Kind::Base && f.name == base.name.as_str()));
        for m in &found {
            let f = mismatch_finding(m);
            if !findings.contains(&f) {
                findings.push(f);
            }
        }
    }
    Ok(())
}

/// Adds to `base` findings when the image the tag names now was built
/// (one more read of each moved tag, from the registry or its cache).
pub async fn date_moved_bases(
    session: &Session,
    platforms: &[crate::oci::Platform],
    findings: &mut [Finding],
) {
    for f in findings.iter_mut().filter(|f| f.kind == Kind::Base) {
        let Ok(image) = crate::oci::ImageRef::parse(&f.name) else {
            continue;
        };
        // The platform only picks which config to read; builders stamp
        // every platform of one release alike.
        let Some(platform) = platforms.first().cloned() else {
            continue;
        };
        let created = match session.registry.resolve(&image, &[platform]).await {
            Ok(r) => r.platforms.first().and_then(|p| p.config.created.clone()),
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
///
/// A lock records a channel with its token masked (`/t/<TOKEN>/`); the
/// channel is asked at the URL among `known` (the channels the settings
/// and the definition name, tokens and all) that masks to the same.
pub async fn channel_findings(
    config: &Config,
    session: &Session,
    locked: &LockedImage,
    known: &[String],
) -> Result<Vec<Finding>, DriftError> {
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
        let mut names: Vec<&str> = packages.iter().map(|p| p.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        let specs = names
            .iter()
            .map(|n| CondaSpec::parse(n))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| DriftError::LockedName {
                image: locked.image.name.to_string(),
                source,
            })?;
        let url = known
            .iter()
            .map(|k| k.trim_end_matches('/'))
            .find(|k| {
                k.contains("://")
                    && crate::config::redact::redact_url(k) == channel.trim_end_matches('/')
            })
            .map_or_else(|| index_url(config, channel), str::to_string);
        let channels = [CondaChannel {
            name: channel.to_string(),
            url,
        }];
        let data = session
            .conda
            .fetch(&channels, subdir, &specs, &[], None)
            .await
            .map_err(|source| DriftError::Channel {
                image: locked.image.name.to_string(),
                source,
            })?;
        let files = data.file_hashes();
        for p in packages {
            let file = p.url.rsplit('/').next().unwrap_or(&p.url);
            if let Some((sha256, md5)) = files.get(file) {
                let found = [
                    ("sha256", Some(p.sha256.to_string()), sha256.clone()),
                    ("md5", p.md5.as_ref().map(ToString::to_string), md5.clone()),
                ];
                for (key, locked, served) in found {
                    if let (Some(locked), Some(served)) = (locked, served)
                        && locked != served
                    {
                        let mut f = mismatch_finding(&HashMismatch {
                            subject: Subject::Conda,
                            name: p.name.to_string(),
                            artifact: file.to_string(),
                            key,
                            locked,
                            served: Some(served),
                        });
                        f.channel = Some(channel_name(&p.channel));
                        if !out.contains(&f) {
                            out.push(f);
                        }
                    }
                }
                continue;
            }
            let mut f = Finding::new(Kind::Broken, Ecosystem::Conda, p.name.clone());
            f.channel = Some(channel_name(&p.channel));
            f.expected = Some(format!("{}={}", p.version, p.build));
            f.detail = Some(format!("`{file}` is no longer in {channel}/{subdir}"));
            if !out.contains(&f) {
                out.push(f);
            }
        }
    }
    Ok(out)
}

/// The channel URLs the settings and a definition name, as written (with
/// their tokens): names are joined to the channel alias.
pub fn known_channels(
    settings: &crate::resolve::conda::ChannelSettings,
    definition: &crate::source::Definition,
) -> Vec<String> {
    let written = settings
        .channels
        .iter()
        .cloned()
        // `custom_channels` maps a name to the URL it lives under, as conda
        // does: `conda-forge: https://host/t/TOKEN` is
        // `https://host/t/TOKEN/conda-forge`.
        .chain(
            settings
                .custom_channels
                .iter()
                .map(|(name, url)| format!("{}/{name}", url.trim_end_matches('/'))),
        )
        .chain(
            definition
                .stages
                .iter()
                .flat_map(|s| &s.steps)
                .flat_map(|s| &s.command.channels)
                .filter_map(|c| c.value.clone()),
        );
    written
        .map(|c| {
            if c.contains("://") {
                c
            } else {
                format!("{}/{}", settings.alias.trim_end_matches('/'), c)
            }
        })
        .collect()
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
        let mut f = Finding::new(Kind::Outdated, Ecosystem::Pip, "pandas");
        f.expected = Some("2.1.0".into());
        f.found = Some("2.2.3".into());
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

    fn apk_repo(sha: char, platform: &str) -> crate::lock::ApkRepo {
        crate::lock::ApkRepo {
            url: "https://m/v3.20/main".parse().unwrap(),
            tag: None,
            index_sha256: sha.to_string().repeat(64).parse().unwrap(),
            key: "k.rsa.pub".parse().unwrap(),
            description: Some("v3.20.3".parse().unwrap()),
            platforms: vec![platform.parse().unwrap()],
        }
    }

    #[test]
    fn an_apk_index_that_changed_on_the_same_platform_is_moved() {
        let mut step = crate::lock::tests::sample().steps[0].clone();
        step.apk_repos = vec![apk_repo('a', "linux/amd64")];
        let mut now = step.clone();
        let mut out = Vec::new();
        apk_moved_findings(&step, &now, &mut out);
        assert_eq!(out, []);
        // Another architecture's index is not this one.
        now.apk_repos = vec![apk_repo('b', "linux/arm64"), apk_repo('a', "linux/amd64")];
        apk_moved_findings(&step, &now, &mut out);
        assert_eq!(out, []);
        now.apk_repos = vec![apk_repo('b', "linux/amd64")];
        apk_moved_findings(&step, &now, &mut out);
        assert_eq!(out.len(), 1);
        let f = &out[0];
        assert_eq!((f.kind, f.ecosystem), (Kind::Moved, Ecosystem::Apk));
        assert_eq!(f.name, "https://m/v3.20/main");
        assert_eq!(
            f.expected.as_deref(),
            Some(format!("v3.20.3, APKINDEX sha256 {}", "a".repeat(64)).as_str())
        );
        assert_eq!(
            f.found.as_deref(),
            Some(format!("v3.20.3, APKINDEX sha256 {}", "b".repeat(64)).as_str())
        );
        assert_eq!(
            f.step.as_deref(),
            Some(format!("driver/Dockerfile:{}", step.line).as_str())
        );
    }

    #[test]
    fn apk_drift_becomes_findings_and_what_was_not_read_is_said() {
        use crate::freeze::outcome::{
            ApkDriftAt, ApkGone, ApkNewer, ApkReplaced, ApkStepDrift, ApkUnread,
        };
        let locked = crate::lock::tests::sample();
        let step = &locked.steps[0];
        let at = |line: u32, drift: ApkStepDrift| ApkDriftAt {
            at: format!("driver/Dockerfile:{line}"),
            stage: step.stage as usize,
            line: line as usize,
            platform: "linux/amd64".into(),
            drift,
        };
        let of_step = ApkStepDrift {
            newer: vec![ApkNewer {
                name: "curl".into(),
                locked: "8.9.1-r0".into(),
                newest: "8.10.0-r0".into(),
                repo: "https://m/main".into(),
            }],
            gone: vec![ApkGone {
                name: "zlib".into(),
                version: "1.3.1-r1".into(),
                repo: Some("https://m/main".into()),
            }],
            replaced: vec![ApkReplaced {
                name: "musl".into(),
                version: "1.2.5-r0".into(),
                locked: "Q1a".into(),
                served: "Q1b".into(),
                repo: "https://m/main".into(),
            }],
            unsolvable: Some("no `gcc` now".into()),
            checked: true,
            not_locked_now: Some("two providers".into()),
            ..ApkStepDrift::default()
        };
        // Of a step the lock does not have: only what could not be read.
        let elsewhere = ApkStepDrift {
            newer: of_step.newer.clone(),
            unread: vec![ApkUnread {
                repo: "@edge https://m/edge".into(),
                why: "refused".into(),
            }],
            skipped: Some("`--offline` fetches no Alpine repository".into()),
            ..ApkStepDrift::default()
        };
        let line = step.line;
        let drift = [
            at(line, of_step.clone()),
            at(line, of_step),
            at(99, elsewhere),
        ];
        let (findings, warnings) = apk_findings(&locked, &drift);
        let got: Vec<String> = findings
            .iter()
            .map(|f| {
                format!(
                    "{} {} {} {} {} {}",
                    f.kind.as_str(),
                    f.ecosystem.as_str(),
                    f.name,
                    f.expected.as_deref().unwrap_or("-"),
                    f.found.as_deref().unwrap_or("-"),
                    f.step.as_deref().unwrap_or("-")
                )
            })
            .collect();
        let here = format!("driver/Dockerfile:{line}");
        assert_eq!(
            got,
            [
                format!("unresolvable image  - - {here}"),
                format!("outdated apk curl 8.9.1-r0 8.10.0-r0 {here}"),
                format!("gone apk zlib 1.3.1-r1 - {here}"),
                format!("hash-mismatch apk musl Q1a Q1b {here}"),
                "unresolvable apk @edge https://m/edge - - driver/Dockerfile:99".to_string(),
            ]
        );
        assert!(
            findings[4]
                .detail
                .as_deref()
                .unwrap()
                .starts_with("refused; the apk packages of this step"),
            "{findings:?}"
        );
        assert_eq!(
            warnings,
            [
                format!(
                    "{here}: freeze would not lock this apk step now (linux/amd64), so a moved index is not compared; its locked packages were checked: two providers"
                ),
                "driver/Dockerfile:99: the apk packages the lock has for this step are not checked (linux/amd64): `--offline` fetches no Alpine repository".to_string()
            ]
        );
    }

    #[test]
    fn kinds_parse_and_rank() {
        for k in Kind::DRIFT {
            assert_eq!(Kind::parse_drift(k.as_str()), Some(k));
        }
        assert_eq!(Kind::parse_drift("missing"), None);
        assert!(Kind::Yanked.severity() < Kind::Outdated.severity());
    }
}

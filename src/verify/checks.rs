//! The checks of a built image against its lock, one platform at a time.
//!
//! What the lock says the image holds is what the last step that touches a
//! package decided ([`LockedImage::final_conda`], [`LockedImage::final_pypi`]).
//! What the image holds is its [`Catalogue`]. Packages the base image
//! already had are told apart by the catalogue of the base's layers (the
//! bottom layers of the image, when the base check passes).

use std::collections::BTreeSet;

use super::finding::{Checked, Ecosystem, Finding, FindingKind, PlatformCheck};
use crate::image::{Catalogue, CondaMetaRecord, Owner, PythonDist};
use crate::lock::{LockedImage, LockedStage, LockedStep, PypiPackage, PypiSource};
use crate::oci::{Digest, Platform};

/// What the final stage's base is, per the lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockedBaseLayers {
    /// `FROM scratch`: the image's own layers are all there is.
    Scratch,
    /// A pinned image and its layers for the platform.
    Image {
        name: String,
        digest: String,
        diff_ids: Vec<Digest>,
    },
    /// Nothing to check against, and why.
    Unknown(String),
}

impl LockedBaseLayers {
    /// The layers the image must start with (none for scratch or unknown).
    pub fn diff_ids(&self) -> &[Digest] {
        match self {
            Self::Image { diff_ids, .. } => diff_ids,
            _ => &[],
        }
    }
}

/// The stage the image's final stage is built on top of: the final stage,
/// or the stage its `stage:N` base names, followed to one whose base is an
/// image or `scratch`.
fn root_stage(lock: &LockedImage) -> Result<&LockedStage, String> {
    let mut stage = lock
        .stages
        .iter()
        .max_by_key(|s| s.index)
        .ok_or("the lock has no stages")?;
    for _ in 0..=lock.stages.len() {
        let Some(n) = stage.base.strip_prefix("stage:") else {
            return Ok(stage);
        };
        stage = n
            .parse::<u32>()
            .ok()
            .and_then(|n| lock.stages.iter().find(|s| s.index == n))
            .ok_or_else(|| format!("the lock's `{}` names no stage", stage.base))?;
    }
    Err("the lock's stages name each other in a cycle".into())
}

/// The image of this repository the final stage is built FROM (its lock's
/// `built-from`), if it is one.
pub fn built_from(lock: &LockedImage) -> Option<&str> {
    let stage = root_stage(lock).ok()?;
    let name = stage.base_name.as_ref()?;
    lock.bases
        .iter()
        .find(|b| &b.name == name)?
        .built_from
        .as_deref()
}

/// `lock` seen on top of `parent`, the lock of the image of this repository
/// it builds FROM: the parent's packages are in the built image too (its
/// steps come first, so a later step's choice still wins), and the final
/// stage starts from what the parent's final stage starts from.
pub fn on_parent(lock: &LockedImage, parent: &LockedImage) -> LockedImage {
    let mut merged = lock.clone();
    if let (Ok(root), Ok(parent_root)) = (root_stage(lock), root_stage(parent)) {
        let index = root.index;
        if let Some(stage) = merged.stages.iter_mut().find(|s| s.index == index) {
            stage.base = parent_root.base.clone();
            stage.base_name = parent_root.base_name.clone();
        }
    }
    for base in &parent.bases {
        if !merged.bases.iter().any(|b| b.name == base.name) {
            merged.bases.push(base.clone());
        }
    }
    merged.steps = parent.steps.iter().chain(&lock.steps).cloned().collect();
    merged
}

/// The base of the image's final stage (following `stage:N` to the stage it
/// names) and its layers for `platform`.
pub fn locked_base_layers(lock: &LockedImage, platform: &Platform) -> LockedBaseLayers {
    let stage = match root_stage(lock) {
        Ok(stage) => stage,
        Err(why) => return LockedBaseLayers::Unknown(why),
    };
    if stage.base == "scratch" {
        return LockedBaseLayers::Scratch;
    }
    if let Some(local) = lock
        .bases
        .iter()
        .find(|b| b.is_local() && b.references.iter().any(|r| r.as_str() == &*stage.base))
    {
        return LockedBaseLayers::Unknown(format!(
            "the base `{}` is pinned by its {} on the machine that froze it, not by layers",
            local.name,
            local.pinned.as_deref().unwrap_or("digest")
        ));
    }
    let Some(base) = stage
        .base_name
        .as_ref()
        .and_then(|n| lock.bases.iter().find(|b| &b.name == n))
    else {
        return LockedBaseLayers::Unknown(format!(
            "the base `{}` is not a locked image",
            stage.base
        ));
    };
    let Some(p) = base.platforms.iter().find(|p| p.platform.matches(platform)) else {
        return LockedBaseLayers::Unknown(format!(
            "the lock has no `{platform}` image of the base `{}`",
            base.name
        ));
    };
    LockedBaseLayers::Image {
        name: base.name.to_string(),
        digest: base.digest.to_string(),
        diff_ids: p.diff_ids.clone(),
    }
}

/// Compares one platform of an image with its lock. `base` is the catalogue
/// of the base's layers when the image starts with them.
pub fn check_platform(
    lock: &LockedImage,
    platform: &Platform,
    expected_base: &LockedBaseLayers,
    image: &Catalogue,
    base: Option<&Catalogue>,
) -> PlatformCheck {
    let platform_str = platform.to_string();
    let mut out = PlatformCheck {
        platform: platform_str.clone(),
        config: image.image.config_digest.to_string(),
        checked: Checked::default(),
        findings: Vec::new(),
        notes: Vec::new(),
    };
    check_base(expected_base, image, &mut out);
    // "Matches its lock" covers only what the lock pins: say which install
    // steps it does not, so a match is never read as the whole image.
    for step in lock.steps.iter().filter(|s| !s.locked) {
        out.notes.push(format!(
            "{}:{}: `{}` is not locked, so what it installed is not checked",
            step.file, step.line, step.command
        ));
    }
    let base = match expected_base {
        LockedBaseLayers::Unknown(why) => {
            out.notes.push(format!(
                "packages outside the lock are not reported: {why}, so the base's packages are unknown"
            ));
            None
        }
        _ => {
            if base.is_none() {
                out.notes.push(
                    "packages outside the lock are not reported: the image is not built on the locked base, so the base's packages are unknown".into(),
                );
            }
            base
        }
    };
    out.checked.not_locked = base.is_some();
    check_conda(lock, &platform_str, image, base, &mut out);
    check_pip(lock, &platform_str, image, base, &mut out);
    check_apt(lock, &platform_str, image, base, &mut out);
    check_rpm(lock, &platform_str, image, base, &mut out);
    check_apk(lock, &platform_str, image, base, &mut out);
    out.findings.sort_by(|a, b| {
        (
            a.kind == FindingKind::NotLocked,
            &a.step,
            a.ecosystem,
            &a.name,
            a.kind,
        )
            .cmp(&(
                b.kind == FindingKind::NotLocked,
                &b.step,
                b.ecosystem,
                &b.name,
                b.kind,
            ))
    });
    out
}

fn check_base(expected: &LockedBaseLayers, image: &Catalogue, out: &mut PlatformCheck) {
    let LockedBaseLayers::Image {
        name,
        digest,
        diff_ids,
    } = expected
    else {
        if let LockedBaseLayers::Unknown(why) = expected {
            out.notes.push(format!("the base is not checked: {why}"));
        }
        return;
    };
    out.checked.base = true;
    let have = &image.image.config.diff_ids;
    if have.starts_with(diff_ids) {
        return;
    }
    let k = diff_ids
        .iter()
        .zip(have)
        .position(|(a, b)| a != b)
        .unwrap_or(have.len().min(diff_ids.len()));
    let found = match have.get(k) {
        Some(d) => format!("{d} as layer {}", k + 1),
        None => format!("only {} layers", have.len()),
    };
    out.findings.push(Finding {
        kind: FindingKind::BaseMismatch,
        ecosystem: Ecosystem::Base,
        name: name.clone(),
        expected: Some(format!(
            "{name}@{digest}, layer {} of {}: {}",
            k + 1,
            diff_ids.len(),
            diff_ids[k]
        )),
        found: Some(found),
        step: None,
        location: None,
        channel: None,
        detail: None,
    });
}

fn step_of(step: &LockedStep) -> String {
    format!("{}:{}", step.file, step.line)
}

/// Whether a conda prefix is the one a step installs into: an absolute
/// path, or an environment name (`PREFIX/envs/NAME`).
fn prefix_is(path: &str, target: &str) -> bool {
    let path = path.trim_end_matches('/');
    if target.starts_with('/') {
        path == target.trim_end_matches('/')
    } else {
        path.ends_with(&format!("/envs/{target}"))
    }
}

fn check_conda(
    lock: &LockedImage,
    platform: &str,
    image: &Catalogue,
    base: Option<&Catalogue>,
    out: &mut PlatformCheck,
) {
    let locked = lock.final_conda(platform);
    let mut locked_names = BTreeSet::new();
    for (step, pkg) in &locked {
        out.checked.conda += 1;
        locked_names.insert(pkg.name.as_str());
        let prefixes: Vec<_> = match step.target.as_deref() {
            Some(t) if image.conda_prefixes.iter().any(|p| prefix_is(&p.path, t)) => image
                .conda_prefixes
                .iter()
                .filter(|p| prefix_is(&p.path, t))
                .collect(),
            _ => image.conda_prefixes.iter().collect(),
        };
        let candidates: Vec<(&str, &CondaMetaRecord)> = prefixes
            .iter()
            .flat_map(|p| {
                p.records
                    .iter()
                    .filter(|r| r.name == pkg.name)
                    .map(|r| (p.path.as_str(), r))
            })
            .collect();
        let finding =
            |kind, expected: String, found: Option<String>, location: Option<&str>| Finding {
                kind,
                ecosystem: Ecosystem::Conda,
                name: pkg.name.to_string(),
                expected: Some(expected),
                found,
                step: Some(step_of(step)),
                location: location.map(str::to_string),
                channel: None,
                detail: None,
            };
        let Some(&(path, rec)) = candidates
            .iter()
            .find(|(_, r)| r.version == pkg.version && r.build == pkg.build)
            .or_else(|| candidates.first())
        else {
            out.findings.push(finding(
                FindingKind::Missing,
                format!("{} {}", pkg.version, pkg.build),
                None,
                None,
            ));
            continue;
        };
        if rec.version != pkg.version {
            out.findings.push(finding(
                FindingKind::VersionDiffers,
                pkg.version.to_string(),
                Some(rec.version.clone()),
                Some(path),
            ));
        } else if rec.build != pkg.build {
            out.findings.push(finding(
                FindingKind::BuildDiffers,
                pkg.build.to_string(),
                Some(rec.build.clone()),
                Some(path),
            ));
        } else if let Some(sha) = rec.sha256.as_deref().filter(|s| *s != pkg.sha256) {
            out.findings.push(finding(
                FindingKind::HashDiffers,
                format!("sha256 {}", pkg.sha256),
                Some(format!("sha256 {sha}")),
                Some(path),
            ));
        } else if rec.sha256.is_none()
            && let (Some(want), Some(have)) = (pkg.md5.as_deref(), rec.md5.as_deref())
            && want != have
        {
            out.findings.push(finding(
                FindingKind::HashDiffers,
                format!("md5 {want}"),
                Some(format!("md5 {have}")),
                Some(path),
            ));
        } else if rec.sha256.is_none()
            && rec.md5.is_none()
            && let Some(url) = rec.url.as_deref().filter(|u| *u != pkg.url)
        {
            out.findings.push(finding(
                FindingKind::HashDiffers,
                pkg.url.to_string(),
                Some(url.to_string()),
                Some(path),
            ));
        }
    }
    let Some(base) = base else { return };
    for prefix in &image.conda_prefixes {
        let base_prefix = base.conda_prefixes.iter().find(|p| p.path == prefix.path);
        for rec in &prefix.records {
            if locked_names.contains(rec.name.as_str()) {
                continue;
            }
            let in_base = base_prefix.is_some_and(|p| {
                p.records
                    .iter()
                    .any(|b| b.name == rec.name && b.version == rec.version && b.build == rec.build)
            });
            if !in_base {
                out.findings.push(Finding {
                    kind: FindingKind::NotLocked,
                    ecosystem: Ecosystem::Conda,
                    name: rec.name.clone(),
                    expected: None,
                    found: Some(format!("{} {}", rec.version, rec.build)),
                    step: None,
                    location: Some(prefix.path.clone()),
                    channel: None,
                    detail: None,
                });
            }
        }
    }
}

/// Who installed a distribution, as a report says it: its `INSTALLER`, or
/// what its files tell when it has none.
fn installed_by(d: &PythonDist) -> String {
    match &d.owner {
        Owner::Pip { installer }
        | Owner::Other {
            installer: Some(installer),
        } => format!("installed by {installer}"),
        Owner::Conda { .. } => "installed by conda".to_string(),
        Owner::Other { installer: None } if d.site_packages.starts_with("/usr/lib/python3/") => {
            "no INSTALLER, in the OS package manager's directory".to_string()
        }
        Owner::Other { installer: None } if d.path.ends_with(".egg-info") => {
            "an egg-info install (setup.py install or easy_install)".to_string()
        }
        Owner::Other { installer: None } => {
            "no INSTALLER: installed by an unknown tool".to_string()
        }
    }
}

fn is_conda(d: &PythonDist) -> bool {
    matches!(d.owner, Owner::Conda { .. })
}

fn check_pip(
    lock: &LockedImage,
    platform: &str,
    image: &Catalogue,
    base: Option<&Catalogue>,
    out: &mut PlatformCheck,
) {
    let locked = lock.final_pypi_steps(platform);
    let mut locked_names = BTreeSet::new();
    for (step, pkg) in &locked {
        out.checked.pip += 1;
        locked_names.insert(pkg.name.as_str());
        let candidates: Vec<&PythonDist> = image
            .python_dists
            .iter()
            .filter(|d| d.normalized_name == pkg.name && !is_conda(d))
            .collect();
        let finding =
            |kind, expected: String, found: Option<String>, location: Option<&str>| Finding {
                kind,
                ecosystem: Ecosystem::Pip,
                name: pkg.name.to_string(),
                expected: Some(expected),
                found,
                step: Some(step_of(step)),
                location: location.map(str::to_string),
                channel: None,
                detail: None,
            };
        let locked_version = pkg.version_or_unknown().to_string();
        let Some(dist) = candidates
            .iter()
            .find(|d| {
                pkg.version
                    .as_deref()
                    .is_none_or(|v| same_version(&d.version, v))
            })
            .or_else(|| candidates.first())
        else {
            let by_conda = image
                .python_dists
                .iter()
                .find(|d| d.normalized_name == pkg.name && is_conda(d))
                .map(|d| format!("only conda's {} in {}", d.version, d.site_packages));
            out.findings.push(finding(
                FindingKind::Missing,
                locked_version,
                by_conda,
                None,
            ));
            continue;
        };
        if let Some(version) = &pkg.version
            && !same_version(&dist.version, version)
        {
            out.findings.push(finding(
                FindingKind::VersionDiffers,
                version.to_string(),
                Some(dist.version.clone()),
                Some(&dist.site_packages),
            ));
            continue;
        }
        if pkg.is_direct() {
            if let Err((expected, found)) = direct_url_matches(pkg, dist.direct_url.as_ref()) {
                out.findings.push(finding(
                    FindingKind::SourceDiffers,
                    expected,
                    Some(found),
                    Some(&dist.site_packages),
                ));
            }
            continue;
        }
        if let Some(file) = &pkg.file
            && let Some(file_tags) = wheel_file_tags(file)
            && !dist.wheel_tags.is_empty()
        {
            let have: BTreeSet<String> = dist.wheel_tags.iter().flat_map(|t| expand(t)).collect();
            if file_tags.is_disjoint(&have) {
                out.findings.push(finding(
                    FindingKind::WheelTagIncompatible,
                    format!(
                        "{} ({})",
                        file_tags.iter().cloned().collect::<Vec<_>>().join(", "),
                        file
                    ),
                    Some(dist.wheel_tags.join(", ")),
                    Some(&dist.site_packages),
                ));
            }
        }
    }
    let Some(base) = base else { return };
    // Every distribution above the base that conda does not own is
    // accounted for here, whoever installed it.
    for d in &image.python_dists {
        if is_conda(d) || locked_names.contains(d.normalized_name.as_str()) {
            continue;
        }
        let in_base = base
            .python_dists
            .iter()
            .any(|b| b.path == d.path && b.version == d.version);
        if !in_base {
            out.findings.push(Finding {
                kind: FindingKind::NotLocked,
                ecosystem: Ecosystem::Pip,
                name: d.normalized_name.clone(),
                expected: None,
                found: Some(d.version.clone()),
                step: None,
                location: Some(d.site_packages.clone()),
                channel: None,
                detail: Some(installed_by(d)),
            });
        }
    }
}

/// Locked Debian packages against the image's dpkg status: each at its
/// locked version and architecture; with the base known, every package
/// above the base the lock does not name.
fn check_apt(
    lock: &LockedImage,
    platform: &str,
    image: &Catalogue,
    base: Option<&Catalogue>,
    out: &mut PlatformCheck,
) {
    use crate::image::OsPackageSource;
    let dpkg = |c: &Catalogue| os_packages(c, OsPackageSource::Dpkg);
    let have = dpkg(image);
    let locked = lock.final_apt(platform);
    let mut named: BTreeSet<(&str, &str)> = BTreeSet::new();
    for (step, pkg) in &locked {
        out.checked.apt += 1;
        named.insert((&pkg.name, &pkg.architecture));
        let finding = |kind, found: Option<String>| Finding {
            kind,
            ecosystem: Ecosystem::Apt,
            name: pkg.name.to_string(),
            expected: Some(format!("{} ({})", pkg.version, pkg.architecture)),
            found,
            step: Some(step_of(step)),
            location: Some("/var/lib/dpkg/status".into()),
            channel: None,
            detail: None,
        };
        let same_name: Vec<&(String, String, String)> =
            have.iter().filter(|(n, _, _)| *n == *pkg.name).collect();
        if same_name
            .iter()
            .any(|(_, v, a)| *v == *pkg.version && *a == *pkg.architecture)
        {
            continue;
        }
        match same_name.first() {
            None => out.findings.push(finding(FindingKind::Missing, None)),
            Some((_, v, a)) => out.findings.push(finding(
                FindingKind::VersionDiffers,
                Some(format!("{v} ({a})")),
            )),
        }
    }
    if locked.is_empty() && !lock.steps.iter().any(|s| !s.apt.is_empty()) {
        return;
    }
    let Some(base) = base else { return };
    not_locked_above_base(
        &have,
        &dpkg(base),
        |n, a| named.contains(&(n, a)),
        Ecosystem::Apt,
        "/var/lib/dpkg/status",
        out,
    );
}

/// Locked RPM packages against the image's rpm database: each at its
/// locked `[epoch:]version-release` and arch; with the base known, every
/// package above the base the lock does not name.
fn check_rpm(
    lock: &LockedImage,
    platform: &str,
    image: &Catalogue,
    base: Option<&Catalogue>,
    out: &mut PlatformCheck,
) {
    use crate::image::OsPackageSource;
    const RPMDB: &str = "/var/lib/rpm/rpmdb.sqlite";
    let rpms = |c: &Catalogue| os_packages(c, OsPackageSource::Rpm);
    let have = rpms(image);
    let locked = lock.final_rpm(platform);
    if locked.is_empty() && !lock.steps.iter().any(|s| !s.rpm.is_empty()) {
        return;
    }
    let mut named: BTreeSet<(&str, &str)> = BTreeSet::new();
    for (step, pkg) in &locked {
        out.checked.rpm += 1;
        named.insert((pkg.name.as_str(), pkg.arch.as_str()));
        let evr = {
            let e = if pkg.epoch == 0 {
                String::new()
            } else {
                format!("{}:", pkg.epoch)
            };
            format!("{e}{}-{}", pkg.version, pkg.release)
        };
        let finding = |kind, found: Option<String>| Finding {
            kind,
            ecosystem: Ecosystem::Rpm,
            name: pkg.name.to_string(),
            expected: Some(format!("{evr} ({})", pkg.arch)),
            found,
            step: Some(step_of(step)),
            location: Some(RPMDB.into()),
            channel: None,
            detail: None,
        };
        let same_name: Vec<&(String, String, String)> = have
            .iter()
            .filter(|(n, _, a)| *n == pkg.name.as_str() && *a == pkg.arch.as_str())
            .collect();
        if same_name.iter().any(|(_, v, _)| *v == evr) {
            continue;
        }
        match same_name.first() {
            None => out.findings.push(finding(FindingKind::Missing, None)),
            Some((_, v, a)) => out.findings.push(finding(
                FindingKind::VersionDiffers,
                Some(format!("{v} ({a})")),
            )),
        }
    }
    let Some(base) = base else { return };
    not_locked_above_base(
        &have,
        &rpms(base),
        // gpg-pubkey entries are keys rpm imported, not packages.
        |n, a| n == "gpg-pubkey" || named.contains(&(n, a)),
        Ecosystem::Rpm,
        RPMDB,
        out,
    );
}

/// Locked Alpine packages against the image's `/lib/apk/db/installed`:
/// each at its locked version (a virtual package: present, any version);
/// with the base known, every package above the base the lock does not
/// name.
fn check_apk(
    lock: &LockedImage,
    platform: &str,
    image: &Catalogue,
    base: Option<&Catalogue>,
    out: &mut PlatformCheck,
) {
    use crate::image::OsPackageSource;
    const DB: &str = "/lib/apk/db/installed";
    let apks = |c: &Catalogue| os_packages(c, OsPackageSource::Apk);
    let locked = lock.final_apk(platform);
    if locked.is_empty() && !lock.steps.iter().any(|s| !s.apk.is_empty()) {
        return;
    }
    let have = apks(image);
    let mut named: BTreeSet<&str> = BTreeSet::new();
    for (step, pkg) in &locked {
        out.checked.apk += 1;
        named.insert(pkg.name.as_str());
        let expected = match (&pkg.version, &pkg.arch) {
            (Some(v), Some(a)) => format!("{v} ({a})"),
            (Some(v), None) => v.to_string(),
            (None, _) => "a virtual package (any version)".to_string(),
        };
        let finding = |kind, found: Option<String>| Finding {
            kind,
            ecosystem: Ecosystem::Apk,
            name: pkg.name.to_string(),
            expected: Some(expected.clone()),
            found,
            step: Some(step_of(step)),
            location: Some(DB.into()),
            channel: None,
            detail: None,
        };
        let same_name: Vec<&(String, String, String)> = have
            .iter()
            .filter(|(n, _, _)| *n == pkg.name.as_str())
            .collect();
        let version_ok = |v: &String| pkg.version.as_ref().is_none_or(|want| want.as_str() == v);
        if same_name.iter().any(|(_, v, _)| version_ok(v)) {
            continue;
        }
        match same_name.first() {
            None => out.findings.push(finding(FindingKind::Missing, None)),
            Some((_, v, a)) => out.findings.push(finding(
                FindingKind::VersionDiffers,
                Some(format!("{v} ({a})")),
            )),
        }
    }
    let Some(base) = base else { return };
    not_locked_above_base(
        &have,
        &apks(base),
        |n, _| named.contains(n),
        Ecosystem::Apk,
        DB,
        out,
    );
}

/// Every package of an OS database (`have`: name, version, arch) that is
/// neither named by the lock (`locked(name, arch)`) nor in the base at the
/// same version and arch: a `NotLocked` finding at `location`.
fn not_locked_above_base(
    have: &[(String, String, String)],
    below: &[(String, String, String)],
    locked: impl Fn(&str, &str) -> bool,
    ecosystem: Ecosystem,
    location: &str,
    out: &mut PlatformCheck,
) {
    for (n, v, a) in have {
        if locked(n, a) || below.iter().any(|b| (&b.0, &b.1, &b.2) == (n, v, a)) {
            continue;
        }
        out.findings.push(Finding {
            kind: FindingKind::NotLocked,
            ecosystem,
            name: n.clone(),
            expected: None,
            found: Some(format!("{v} ({a})")),
            step: None,
            location: Some(location.into()),
            channel: None,
            detail: None,
        });
    }
}

/// Whether an installed distribution's `direct_url.json` (PEP 610) says it
/// came from where the lock's direct URL, VCS or path entry says; else
/// (expected, found) for the report. A path entry accepts any
/// `direct_url.json`: the path is inside the image.
fn direct_url_matches(
    pkg: &PypiPackage,
    direct: Option<&serde_json::Value>,
) -> Result<(), (String, String)> {
    let Some(direct) = direct else {
        return match pkg.source {
            PypiSource::Path => Ok(()),
            _ => Err((
                pkg.requested.clone().unwrap_or_else(|| pkg.url.to_string()),
                "no direct_url.json (installed from an index?)".into(),
            )),
        };
    };
    let url = direct["url"].as_str().unwrap_or_default();
    match pkg.source {
        PypiSource::Url => {
            let info = &direct["archive_info"];
            let sha = info["hashes"]["sha256"]
                .as_str()
                .map(str::to_string)
                .or_else(|| {
                    info["hash"]
                        .as_str()
                        .and_then(|h| h.strip_prefix("sha256="))
                        .map(str::to_string)
                });
            let hash_ok = match (&sha, &pkg.sha256) {
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                _ => true,
            };
            if url == pkg.url && hash_ok {
                Ok(())
            } else {
                Err((
                    format!(
                        "{} (sha256 {})",
                        pkg.url,
                        pkg.sha256.as_deref().unwrap_or("?")
                    ),
                    format!("{url} (sha256 {})", sha.as_deref().unwrap_or("?")),
                ))
            }
        }
        PypiSource::Vcs => {
            let info = &direct["vcs_info"];
            let locked = pkg.url.split('#').next().unwrap_or(&pkg.url);
            let locked = locked.split_once('+').map_or(locked, |(_, u)| u);
            let commit = info["commit_id"].as_str().unwrap_or_default();
            let commit_ok = pkg
                .commit
                .as_deref()
                .is_none_or(|c| c.eq_ignore_ascii_case(commit));
            if url.trim_end_matches('/') == locked.trim_end_matches('/') && commit_ok {
                Ok(())
            } else {
                let at = pkg
                    .commit
                    .as_deref()
                    .or(pkg.revision.as_deref())
                    .unwrap_or("?");
                Err((format!("{locked}@{at}"), format!("{url}@{commit}")))
            }
        }
        PypiSource::Path | PypiSource::Index => Ok(()),
    }
}

/// Versions equal as PEP 440 compares the common spellings: case, a
/// leading `v`, and trailing `.0` release segments.
fn same_version(a: &str, b: &str) -> bool {
    fn norm(v: &str) -> String {
        let v = v.trim().to_ascii_lowercase();
        let v = v.strip_prefix('v').unwrap_or(&v).to_string();
        let (release, rest) = match v.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
            Some(i) => (v[..i].to_string(), v[i..].to_string()),
            None => (v.clone(), String::new()),
        };
        let mut parts: Vec<&str> = release.split('.').collect();
        while parts.len() > 1
            && parts
                .last()
                .is_some_and(|p| p.trim_start_matches('0').is_empty())
        {
            parts.pop();
        }
        format!("{}{rest}", parts.join("."))
    }
    a == b || norm(a) == norm(b)
}

/// The tags of a wheel file name (`name-ver[-build]-py-abi-plat.whl`),
/// compressed tag sets expanded; `None` for an sdist.
fn wheel_file_tags(file: &str) -> Option<BTreeSet<String>> {
    let stem = file.strip_suffix(".whl")?;
    let parts: Vec<&str> = stem.split('-').collect();
    if parts.len() < 5 {
        return None;
    }
    let n = parts.len();
    Some(expand(&format!(
        "{}-{}-{}",
        parts[n - 3],
        parts[n - 2],
        parts[n - 1]
    )))
}

/// `py2.py3-none-any` → `py2-none-any`, `py3-none-any`.
fn expand(tag: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let parts: Vec<&str> = tag.trim().split('-').collect();
    if let [py, abi, plat] = parts.as_slice() {
        for p in py.split('.') {
            for a in abi.split('.') {
                for l in plat.split('.') {
                    out.insert(format!("{p}-{a}-{l}"));
                }
            }
        }
    }
    out
}

/// The packages of one OS package database in a catalogue: name, version
/// and architecture (empty when the database gives none).
fn os_packages(
    c: &Catalogue,
    source: crate::image::OsPackageSource,
) -> Vec<(String, String, String)> {
    c.os_packages
        .iter()
        .filter(|p| p.source == source)
        .map(|p| {
            (
                p.name.clone(),
                p.version.clone(),
                p.arch.clone().unwrap_or_default(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_as_pep_440_spells_them() {
        assert!(same_version("2.3.4", "2.3.4"));
        assert!(same_version("1.0", "1"));
        assert!(same_version("1.0.0rc1", "1rc1"));
        assert!(!same_version("2.3.3", "2.3.4"));
        assert!(!same_version("1.10", "1.1"));
    }

    #[test]
    fn wheel_tags_expand() {
        let t = wheel_file_tags("six-1.16.0-py2.py3-none-any.whl").unwrap();
        assert_eq!(
            t.into_iter().collect::<Vec<_>>(),
            ["py2-none-any", "py3-none-any"]
        );
        let t = wheel_file_tags(
            "numpy-2.3.4-1-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
        )
        .unwrap();
        assert_eq!(t.len(), 2);
        assert!(wheel_file_tags("numpy-2.3.4.tar.gz").is_none());
    }

    /// verify accepts a distribution whose `direct_url.json` (PEP 610)
    /// names the locked URL and hash, or repository and commit.
    #[test]
    fn direct_url_json_is_checked() {
        let pkg = |source, url: &str| PypiPackage {
            name: "demo".parse().unwrap(),
            version: None,
            requested: None,
            source,
            file: None,
            url: url.parse().unwrap(),
            sha256: Some("ab".repeat(32).parse().unwrap()),
            revision: Some("v1".parse().unwrap()),
            commit: None,
            required_by: Vec::new(),
            platforms: Vec::new(),
        };
        let url = pkg(PypiSource::Url, "https://x.org/demo-1.0-py3-none-any.whl");
        let json = |v: &str| serde_json::from_str::<serde_json::Value>(v).unwrap();
        let archive = json(&format!(
            r#"{{"url": "https://x.org/demo-1.0-py3-none-any.whl", "archive_info": {{"hashes": {{"sha256": "{}"}}}}}}"#,
            "ab".repeat(32)
        ));
        assert!(direct_url_matches(&url, Some(&archive)).is_ok());
        let other = json(
            r#"{"url": "https://x.org/demo-1.0-py3-none-any.whl", "archive_info": {"hash": "sha256=00"}}"#,
        );
        assert!(direct_url_matches(&url, Some(&other)).is_err());
        assert!(direct_url_matches(&url, None).is_err());

        let mut vcs = pkg(PypiSource::Vcs, "git+https://x.org/o/r#subdirectory=py");
        let installed = json(
            r#"{"url": "https://x.org/o/r", "vcs_info": {"vcs": "git", "commit_id": "abc", "requested_revision": "v1"}}"#,
        );
        assert!(direct_url_matches(&vcs, Some(&installed)).is_ok());
        vcs.commit = Some("def".parse().unwrap());
        assert_eq!(
            direct_url_matches(&vcs, Some(&installed)),
            Err((
                "https://x.org/o/r@def".into(),
                "https://x.org/o/r@abc".into()
            ))
        );
        let path = pkg(PypiSource::Path, "./src");
        assert!(direct_url_matches(&path, None).is_ok());
    }

    #[test]
    fn prefixes_match_paths_and_environment_names() {
        assert!(prefix_is("/opt/conda", "/opt/conda/"));
        assert!(prefix_is("/opt/conda/envs/work", "work"));
        assert!(!prefix_is("/opt/conda", "work"));
    }
}

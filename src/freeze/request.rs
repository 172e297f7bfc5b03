//! What a step asked for before `rewrite` pinned it.
//!
//! `rewrite` replaces a step's specs with every package the lock holds,
//! each pinned exactly, and the lock keeps the specs as they were written
//! before (`requested`). When a step's specs are exactly those pins, the
//! request is still the original one: freeze resolves that (keeping the
//! locked versions unless `--update` names them), so `--update PKG` moves a
//! pinned package within what the definition first allowed, `drift` sees
//! newer versions that request allows, and the lock freeze makes right
//! after a rewrite is the lock rewrite wrote.

use crate::lock::LockedStep;

/// The pip specs to resolve: the previous lock's original request when
/// `specs` are the pins rewrite made from that lock step, else `specs`.
pub fn pip_request(previous: Option<&LockedStep>, specs: &[String]) -> Vec<String> {
    let Some(step) = previous else {
        return specs.to_vec();
    };
    let original = pip_part(&step.requested);
    if specs.is_empty() || original.is_empty() || original == specs {
        return specs.to_vec();
    }
    let all_pinned = specs.iter().all(|s| {
        pip_pin(s).is_some_and(|(name, version)| {
            step.pypi.iter().any(|p| {
                normalize(p.name.as_ref()) == name
                    && p.version.as_ref().is_some_and(|v| *v == version)
            })
        })
    });
    if all_pinned { original } else { specs.to_vec() }
}

/// The conda specs to resolve, likewise.
pub fn conda_request(previous: Option<&LockedStep>, specs: &[String]) -> Vec<String> {
    let Some(step) = previous else {
        return specs.to_vec();
    };
    let original: Vec<String> = step
        .requested
        .iter()
        .filter(|r| !r.starts_with("pip: "))
        .cloned()
        .collect();
    if specs.is_empty() || original.is_empty() || original == specs {
        return specs.to_vec();
    }
    let all_pinned = specs.iter().all(|s| {
        conda_pin(s).is_some_and(|(name, version, build)| {
            step.conda.iter().any(|p| {
                p.name.to_string().eq_ignore_ascii_case(&name)
                    && p.version == version
                    && build
                        .as_ref()
                        .is_none_or(|b| p.build.as_ref() == b.as_str())
            })
        })
    });
    if all_pinned { original } else { specs.to_vec() }
}

/// The apt package words to resolve, likewise: `specs` are the pins
/// rewrite made from that lock step when each is `name[:arch]=version` of
/// a package the step left installed at that version.
pub fn apt_request(previous: Option<&LockedStep>, specs: &[String]) -> Vec<String> {
    let Some(step) = previous else {
        return specs.to_vec();
    };
    let original = &step.requested;
    if specs.is_empty() || original.is_empty() || original.as_slice() == specs {
        return specs.to_vec();
    }
    let all_pinned = specs.iter().all(|s| {
        let Some((head, version)) = s.split_once('=') else {
            return false;
        };
        let (name, arch) = match head.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (head, None),
        };
        step.apt.iter().any(|p| {
            p.installed_after()
                && p.name.as_str() == name
                && p.version.as_str() == version
                && arch.is_none_or(|a| p.architecture.as_str() == a)
        })
    });
    if all_pinned {
        original.clone()
    } else {
        specs.to_vec()
    }
}

/// A dnf step whose specs are the pins rewrite made from the previous lock
/// step (each `name-[epoch:]version-release.arch` of a package it left
/// installed) and whose resolution on `platform` is exactly what that step
/// locked there (same builds, same actions) keeps that step's record: its
/// original `requested` and each package's `required-by`. dnf resolves the
/// pins as written, and so does freeze; only the record of why each package
/// is there stays the one made from the request the pins came from, so the
/// lock freeze makes right after a rewrite is the lock rewrite wrote.
/// Anything else (a pin that moved, a package more or less) is left as
/// resolved.
pub fn rpm_keep_request(
    previous: Option<&LockedStep>,
    specs: &[String],
    platform: &str,
    outcome: &mut crate::freeze::outcome::StepOutcome,
) {
    let Some(step) = previous else { return };
    if !outcome.locked || specs.is_empty() || step.requested.as_slice() == specs {
        return;
    }
    let here: Vec<&crate::lock::RpmPackage> = step
        .rpm
        .iter()
        .filter(|p| p.platforms.iter().any(|pl| pl.to_string() == platform))
        .collect();
    let pinned = |s: &String| here.iter().any(|p| p.installed_after() && p.nevra() == *s);
    if !specs.iter().all(pinned) || here.len() != outcome.rpm.len() {
        return;
    }
    let same = |a: &crate::lock::RpmPackage, b: &crate::lock::RpmPackage| {
        a.nevra() == b.nevra()
            && a.action == b.action
            && a.repo == b.repo
            && a.sha256 == b.sha256
            && a.replaces == b.replaces
    };
    let mut matched = Vec::with_capacity(outcome.rpm.len());
    for p in &outcome.rpm {
        let Some(prev) = here.iter().find(|q| same(p, q)) else {
            return;
        };
        matched.push(prev.required_by.clone());
    }
    for (p, required_by) in outcome.rpm.iter_mut().zip(matched) {
        p.required_by = required_by;
    }
    outcome.requested.clone_from(&step.requested);
}

/// The pip part of a step's request: `pip: …` entries of an environment
/// file's step, else all of them.
fn pip_part(requested: &[String]) -> Vec<String> {
    let pip: Vec<String> = requested
        .iter()
        .filter_map(|r| r.strip_prefix("pip: "))
        .map(str::to_string)
        .collect();
    if pip.is_empty() && !requested.iter().any(|r| r.starts_with("pip: ")) {
        requested.to_vec()
    } else {
        pip
    }
}

fn normalize(name: &str) -> String {
    name.to_ascii_lowercase().replace(['_', '.'], "-")
}

/// `name==version` (an optional `; marker` after it): the normalized name
/// and the version.
fn pip_pin(spec: &str) -> Option<(String, String)> {
    let spec = spec.split(';').next()?.trim();
    let (name, version) = spec.split_once("==")?;
    let version = version.trim();
    let name = name.trim();
    let plain = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.+!".contains(c))
    };
    (plain(name) && plain(version) && !version.starts_with('='))
        .then(|| (normalize(name), version.to_string()))
}

/// `[channel::]name==version=build` or `name=version=build`: name, version
/// and build (if written).
fn conda_pin(spec: &str) -> Option<(String, String, Option<String>)> {
    let spec = spec.rsplit("::").next()?.trim();
    if spec.contains(['*', '<', '>', '~', ',', '|', '[', ' ']) {
        return None;
    }
    let (name, rest, exact) = match spec.split_once("==") {
        Some((n, r)) => (n, r, true),
        None => spec.split_once('=').map(|(n, r)| (n, r, false))?,
    };
    let mut parts = rest.splitn(2, '=');
    let version = parts.next()?.to_string();
    let build = parts.next().map(str::to_string);
    // `!` only as a version's epoch separator (`1!164.3095`), never `!=`.
    let epoch_ok = match version.split_once('!') {
        None => true,
        Some((epoch, rest)) => {
            !epoch.is_empty() && epoch.bytes().all(|b| b.is_ascii_digit()) && !rest.contains('!')
        }
    };
    if name.contains('!') || build.as_ref().is_some_and(|b| b.contains('!')) || !epoch_ok {
        return None;
    }
    // `name=1.26` is `1.26.*` to conda; only `name=1.26=build` is exact.
    (!name.is_empty() && !version.is_empty() && (exact || build.is_some()))
        .then(|| (name.to_string(), version, build))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rpm(name: &str, vr: &str, sha: char, required_by: &str) -> String {
        let (v, r) = vr.split_once('-').unwrap();
        format!(
            "[[rpm]]\nname = \"{name}\"\nversion = \"{v}\"\nrelease = \"{r}\"\narch = \"noarch\"\n\
             action = \"install\"\nrepo = \"base\"\nsha256 = \"{}\"\n\
             required-by = [\"{required_by}\"]\nplatforms = [\"linux/amd64\"]\n",
            sha.to_string().repeat(64)
        )
    }

    #[test]
    fn dnf_pins_keep_the_record_only_when_they_resolve_to_the_locked_builds() {
        let step: LockedStep = toml::from_str(&format!(
            "stage = 0\nfile = \"Dockerfile\"\nline = 2\ncommand = \"dnf install -y app\"\n\
             manager = \"dnf\"\naction = \"install\"\nrequested = [\"app\"]\n{}{}",
            rpm("app", "1.0-1", 'a', "requested"),
            rpm("tool", "1.0-1", 'b', "Requires of app-1.0-1.noarch")
        ))
        .unwrap();
        let pins = vec![
            "app-1.0-1.noarch".to_string(),
            "tool-1.0-1.noarch".to_string(),
        ];
        let outcome = |tool_sha: char| crate::freeze::outcome::StepOutcome {
            requested: pins.clone(),
            locked: true,
            rpm: [("app", 'a'), ("tool", tool_sha)]
                .iter()
                .map(|(n, sha)| {
                    toml::from_str::<toml::Table>(&rpm(n, "1.0-1", *sha, "requested"))
                        .unwrap()["rpm"]
                        .as_array()
                        .unwrap()[0]
                        .clone()
                        .try_into()
                        .unwrap()
                })
                .collect(),
            ..Default::default()
        };
        let mut same = outcome('b');
        rpm_keep_request(Some(&step), &pins, "linux/amd64", &mut same);
        assert_eq!(same.requested, ["app"]);
        assert_eq!(same.rpm[1].required_by, ["Requires of app-1.0-1.noarch"]);
        // Another build of a pinned NEVRA: the record is what was resolved.
        let mut moved = outcome('c');
        rpm_keep_request(Some(&step), &pins, "linux/amd64", &mut moved);
        assert_eq!(moved.requested, pins);
        assert_eq!(moved.rpm[1].required_by, ["requested"]);
        // Specs that are not pins, or another platform: untouched.
        let mut other = outcome('b');
        let unpinned = vec!["app".to_string(), "tool".to_string()];
        rpm_keep_request(Some(&step), &unpinned, "linux/amd64", &mut other);
        assert_eq!(other.requested, pins);
        let mut arm = outcome('b');
        rpm_keep_request(Some(&step), &pins, "linux/arm64", &mut arm);
        assert_eq!(arm.requested, pins);
    }

    #[test]
    fn pins_are_read_as_rewrite_writes_them() {
        assert_eq!(
            pip_pin("numpy==2.3.4 ; platform_machine == 'x86_64'"),
            Some(("numpy".into(), "2.3.4".into()))
        );
        assert_eq!(pip_pin("numpy>=2"), None);
        assert_eq!(pip_pin("numpy===2"), None);
        assert_eq!(
            conda_pin("conda-forge::numpy==1.26.4=py311h_0"),
            Some(("numpy".into(), "1.26.4".into(), Some("py311h_0".into())))
        );
        assert_eq!(conda_pin("numpy=1.26"), None);
        assert_eq!(
            conda_pin("numpy==1.26"),
            Some(("numpy".into(), "1.26".into(), None))
        );
        assert_eq!(conda_pin("numpy>=1.26"), None);
        // conda-forge's x264 has an epoch.
        assert_eq!(
            conda_pin("x264==1!164.3095=h166bdaf_2"),
            Some((
                "x264".into(),
                "1!164.3095".into(),
                Some("h166bdaf_2".into())
            ))
        );
        assert_eq!(conda_pin("numpy!=1.26"), None);
        assert_eq!(conda_pin("numpy==!1.26"), None);
        assert_eq!(conda_pin("numpy==1!2!3"), None);
        assert_eq!(
            pip_part(&["python=3.11".into(), "pip: requests".into()]),
            ["requests"]
        );
        assert_eq!(pip_part(&["requests".into()]), ["requests"]);
    }
}

//! What a locked step becomes when written out: exact pins, one per
//! package (per platform when platforms differ), in a stable order.

use std::collections::{BTreeMap, BTreeSet};

use crate::lock::LockedStep;
use crate::oci::Platform;

/// One pinned requirement: `name==version[; markers]` with its file hashes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct PipPin {
    /// Normalized name (PEP 503).
    pub name: String,
    /// The requirement text, markers included.
    pub text: String,
    /// `sha256:<hex>` of every file the pin may install.
    pub hashes: Vec<String>,
    /// A direct URL, VCS or path requirement: already pinned as written,
    /// so the definition keeps it as it is.
    pub direct: bool,
}

/// PEP 503 normalization: lowercase, runs of `-`, `_`, `.` become `-`.
pub(crate) fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// The project name a PEP 508 requirement asks for (`None` for URLs and
/// paths, which are not pinned by version).
pub(crate) fn requirement_name(spec: &str) -> Option<String> {
    let spec = spec.trim();
    if spec.contains("://")
        || spec.starts_with(['.', '/', '~'])
        || spec.contains(" @ ")
        || spec.ends_with(".whl")
        || spec.ends_with(".tar.gz")
        || spec.ends_with(".zip")
    {
        return None;
    }
    let end = spec
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(spec.len());
    let name = &spec[..end];
    (!name.is_empty()).then(|| normalize_name(name))
}

/// The extras a requirement asks for, as written after its name
/// (`[all]` of `hail[all]>=0.2`), if any.
fn extras_of(spec: &str) -> Option<String> {
    let spec = spec.trim();
    let start =
        spec.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))?;
    let rest = spec[start..].trim_start();
    if !rest.starts_with('[') {
        return None;
    }
    let end = rest.find(']')?;
    let extras: Vec<&str> = rest[1..end]
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    (!extras.is_empty()).then(|| format!("[{}]", extras.join(",")))
}

/// `platform_machine` for a platform `os/arch[/variant]`.
pub(crate) fn machine(platform: &str) -> String {
    platform
        .parse::<crate::oci::Platform>()
        .ok()
        .and_then(|p| p.python_machine())
        .map_or_else(|| platform.to_string(), str::to_string)
}

/// A marker selecting `platforms`.
fn platform_marker(platforms: &BTreeSet<String>) -> String {
    let machines: BTreeSet<String> = platforms.iter().map(|p| machine(p)).collect();
    machines
        .iter()
        .map(|m| format!("platform_machine == \"{m}\""))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// The version of a distribution.
type VersionKey = String;
/// The platforms that get a version, and the hashes of its files.
type PlatformsAndHashes = (BTreeSet<String>, BTreeSet<String>);

/// The pins of a pip step: every package it installs. A package whose
/// version is the same on every platform of `all_platforms` is pinned
/// plainly; otherwise each version gets a `platform_machine` marker.
pub(crate) fn pip_pins(step: &LockedStep, all_platforms: &[Platform]) -> Vec<PipPin> {
    let all: BTreeSet<String> = all_platforms.iter().map(ToString::to_string).collect();
    // name → version → (platforms, hashes)
    let mut groups: BTreeMap<String, BTreeMap<VersionKey, PlatformsAndHashes>> = BTreeMap::new();
    let mut out = Vec::new();
    for p in &step.pypi {
        if p.is_direct() {
            // Kept as written: a URL, repository or path is its own pin.
            let text = p
                .requested
                .clone()
                .unwrap_or_else(|| format!("{} @ {}", p.name, p.url));
            if !out.iter().any(|q: &PipPin| q.text == text) {
                out.push(PipPin {
                    name: normalize_name(&p.name),
                    text,
                    hashes: p.sha256.iter().map(|h| format!("sha256:{h}")).collect(),
                    direct: true,
                });
            }
            continue;
        }
        let (Some(version), Some(sha256)) = (&p.version, &p.sha256) else {
            continue;
        };
        let g = groups
            .entry(normalize_name(&p.name))
            .or_default()
            .entry(version.to_string())
            .or_default();
        g.0.extend(p.platforms.iter().map(ToString::to_string));
        g.1.insert(format!("sha256:{sha256}"));
    }
    for (name, versions) in groups {
        // `hail[all]` stays `hail[all]==…`: dropping the extras would drop
        // what they install from the next build.
        let extras = step
            .pypi
            .iter()
            .filter_map(|p| p.requested.as_deref())
            .chain(step.requested.iter().map(String::as_str))
            .find_map(|r| {
                (requirement_name(r).as_deref() == Some(name.as_str()))
                    .then(|| extras_of(r))
                    .flatten()
            })
            .unwrap_or_default();
        for (version, (platforms, hashes)) in versions {
            let everywhere = all.is_empty() || all.is_subset(&platforms);
            let text = if everywhere {
                format!("{name}{extras}=={version}")
            } else {
                format!("{name}{extras}=={version}; {}", platform_marker(&platforms))
            };
            out.push(PipPin {
                name: name.clone(),
                text,
                hashes: hashes.into_iter().collect(),
                direct: false,
            });
        }
    }
    out.sort();
    out
}

/// The specs of a conda step, (name, spec) sorted by name:
/// `[channel::]name==version=build` for every package, the channel named when it is not the step's first. A package
/// whose build differs between platforms is pinned by version only; one
/// whose version differs is left unpinned and reported.
pub(crate) fn conda_specs(step: &LockedStep) -> (Vec<(String, String)>, Vec<String>) {
    let first = step.channels.first().map(|c| c.trim_end_matches('/'));
    let mut groups: BTreeMap<&str, BTreeSet<(&str, &str, &str)>> = BTreeMap::new();
    for p in &step.conda {
        groups.entry(&p.name).or_default().insert((
            p.channel.trim_end_matches('/'),
            &p.version,
            &p.build,
        ));
    }
    let mut specs = Vec::new();
    let mut unpinned = Vec::new();
    for (name, variants) in groups {
        let channels: BTreeSet<&str> = variants.iter().map(|v| v.0).collect();
        let versions: BTreeSet<&str> = variants.iter().map(|v| v.1).collect();
        let prefix = match channels.iter().next() {
            Some(c) if channels.len() == 1 && Some(*c) != first => {
                format!("{}::", c.rsplit('/').next().unwrap_or(c))
            }
            _ => String::new(),
        };
        let spec = match (variants.len(), versions.len()) {
            (1, _) => {
                let (_, v, b) = variants.iter().next().copied().unwrap_or_default();
                format!("{prefix}{name}=={v}={b}")
            }
            (_, 1) => {
                let v = versions.iter().next().copied().unwrap_or_default();
                format!("{prefix}{name}=={v}")
            }
            _ => {
                unpinned.push(name.to_string());
                format!("{prefix}{name}")
            }
        };
        specs.push((name.to_string(), spec));
    }
    (specs, unpinned)
}

/// Quotes a spec for a POSIX shell when it holds anything but plain
/// characters.
pub(crate) fn shell_word(spec: &str) -> String {
    if spec
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.=:+,/@[]".contains(c))
    {
        spec.to_string()
    } else {
        format!("'{}'", spec.replace('\'', "'\\''"))
    }
}

/// The pins of an apt step: `name=version` for every package it installs,
/// upgrades or keeps, `name:arch=version` when the architecture is foreign
/// to a platform that gets it. Packages whose version differs between
/// platforms are returned apart (second list), unpinned.
pub(crate) fn apt_pins(step: &LockedStep) -> (Vec<String>, Vec<String>) {
    // name[:arch] → versions
    let mut by_name: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for p in step.apt.iter().filter(|p| p.installed_after()) {
        let foreign = p.architecture != "all"
            && p.platforms
                .iter()
                .any(|pl| pl.deb_arch() != Some(p.architecture.as_str()));
        let name = if foreign {
            format!("{}:{}", p.name, p.architecture)
        } else {
            p.name.to_string()
        };
        by_name
            .entry(name)
            .or_default()
            .insert(p.version.to_string());
    }
    let mut pins = Vec::new();
    let mut unpinned = Vec::new();
    for (name, versions) in by_name {
        if versions.len() == 1 {
            let v = versions.into_iter().next().unwrap_or_default();
            pins.push(format!("{name}={v}"));
        } else {
            unpinned.push(name);
        }
    }
    (pins, unpinned)
}

/// The `name=version` pins of an apk step (every package it installs or
/// upgrades; not its virtual package), and the names locked at different
/// versions on different platforms.
pub(crate) fn apk_pins(step: &LockedStep) -> (Vec<String>, Vec<String>) {
    let mut by_name: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for p in step.apk.iter().filter(|p| p.installed_after()) {
        if let Some(v) = &p.version {
            by_name
                .entry(p.name.to_string())
                .or_default()
                .insert(v.to_string());
        }
    }
    let mut pins = Vec::new();
    let mut unpinned = Vec::new();
    for (name, versions) in by_name {
        if versions.len() == 1 {
            let v = versions.into_iter().next().unwrap_or_default();
            pins.push(format!("{name}={v}"));
        } else {
            unpinned.push(name);
        }
    }
    (pins, unpinned)
}

/// The `name-[epoch:]version-release[.arch]` pins of an rpm step, and the
/// names locked at different versions on different platforms.
pub(crate) fn rpm_pins(step: &LockedStep) -> (Vec<String>, Vec<String>) {
    // name → (epoch:version-release → arch → platforms)
    type Arches = BTreeMap<String, Vec<String>>;
    let mut by_name: BTreeMap<String, BTreeMap<String, Arches>> = BTreeMap::new();
    for p in step.rpm.iter().filter(|p| p.installed_after()) {
        let epoch = if p.epoch == 0 {
            String::new()
        } else {
            format!("{}:", p.epoch)
        };
        by_name
            .entry(p.name.to_string())
            .or_default()
            .entry(format!("{epoch}{}-{}", p.version, p.release))
            .or_default()
            .entry(p.arch.to_string())
            .or_default()
            .extend(p.platforms.iter().map(|pl| pl.to_string()));
    }
    let mut pins = Vec::new();
    let mut unpinned = Vec::new();
    for (name, evrs) in by_name {
        if evrs.len() != 1 {
            unpinned.push(name);
            continue;
        }
        for (evr, arches) in evrs {
            // One arch per platform (x86_64 here, aarch64 there): the pin
            // leaves the arch to dnf; a multilib pair on one platform keeps
            // both arches.
            let mut seen = BTreeSet::new();
            let per_platform = arches.values().flatten().all(|pl| seen.insert(pl.clone()));
            if arches.len() > 1 && per_platform {
                pins.push(format!("{name}-{evr}"));
            } else {
                for arch in arches.keys() {
                    pins.push(format!("{name}-{evr}.{arch}"));
                }
            }
        }
    }
    (pins, unpinned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_and_rewrite_agree_on_platform_machine() {
        // The pylock export's markers and rewrite's per-platform pins must
        // name the same machine, or a pinned file installs on one and the
        // export on another.
        for (platform, expected) in [
            ("linux/amd64", "x86_64"),
            ("linux/arm64/v8", "aarch64"),
            ("linux/386", "i686"),
            ("linux/arm/v7", "armv7l"),
            ("linux/arm/v6", "armv6l"),
            ("linux/ppc64le", "ppc64le"),
            ("linux/s390x", "s390x"),
            ("linux/riscv64", "riscv64"),
        ] {
            let parsed: crate::oci::Platform = platform.parse().unwrap();
            assert_eq!(machine(platform), expected, "rewrite, {platform}");
            assert_eq!(
                crate::lock::export::machine_of(&parsed),
                expected,
                "export, {platform}"
            );
        }
    }
    use crate::lock::{CondaPackage, PypiPackage, PypiSource};

    fn pypi(name: &str, version: &str, platforms: &[&str]) -> PypiPackage {
        PypiPackage {
            name: name.parse().unwrap(),
            version: Some(version.parse().unwrap()),
            requested: None,
            file: Some(format!("{name}-{version}.whl").parse().unwrap()),
            url: "https://files.example.org/f".parse().unwrap(),
            sha256: Some(
                crate::oci::Digest::sha256_of(format!("{name}{version}").as_bytes())
                    .hex()
                    .parse()
                    .unwrap(),
            ),
            source: PypiSource::Index,
            revision: None,
            commit: None,
            required_by: Vec::new(),
            platforms: platforms.iter().map(|p| p.parse().unwrap()).collect(),
        }
    }

    fn step() -> LockedStep {
        LockedStep {
            stage: 0,
            file: "Dockerfile".parse().unwrap(),
            line: 2,
            command: "pip install x".into(),
            manager: "pip".parse().unwrap(),
            action: "install".parse().unwrap(),
            target: None,
            requested: vec![],
            channels: vec![],
            indexes: vec![],
            find_links: vec![],
            locked: true,
            reason: None,
            conda: vec![],
            pypi: vec![],
            apt_sources: vec![],
            apt: vec![],
            rpm_repos: vec![],
            apk_repos: vec![],
            apk: vec![],
            rpm: vec![],
        }
    }

    #[test]
    fn names_are_normalized_and_urls_have_none() {
        assert_eq!(requirement_name("Py_YAML>=6").as_deref(), Some("py-yaml"));
        assert_eq!(
            requirement_name("pandas[excel]~=2.0").as_deref(),
            Some("pandas")
        );
        assert_eq!(requirement_name("git+https://x/y.git"), None);
        assert_eq!(requirement_name("./local"), None);
    }

    /// Regression: `pip install hail[all]` was pinned as `hail==…`, so the
    /// rewritten step no longer installed what the extra brings.
    #[test]
    fn extras_are_kept_when_pinning() {
        let mut s = step();
        s.requested = vec!["hail[all]".into(), "numpy".into()];
        let mut hail = pypi("hail", "0.2.133", &["linux/amd64"]);
        hail.requested = Some("hail[all]".into());
        s.pypi = vec![hail, pypi("numpy", "2.0.0", &["linux/amd64"])];
        let pins: Vec<String> = pip_pins(&s, &["linux/amd64".parse().unwrap()])
            .into_iter()
            .map(|p| p.text)
            .collect();
        assert_eq!(pins, ["hail[all]==0.2.133", "numpy==2.0.0"]);
        assert_eq!(
            extras_of("pandas [excel, html] ~=2.0").as_deref(),
            Some("[excel,html]")
        );
        assert_eq!(extras_of("pandas>=2"), None);
    }

    #[test]
    fn platform_differences_become_markers() {
        let mut s = step();
        let both = ["linux/amd64", "linux/arm64"];
        s.pypi = vec![
            pypi("numpy", "2.0.0", &both),
            pypi("zed", "1", &both),
            pypi("cuda-x", "12", &["linux/amd64"]),
        ];
        let pins: Vec<String> = pip_pins(&s, &both.map(|p| p.parse().unwrap()))
            .into_iter()
            .map(|p| p.text)
            .collect();
        assert_eq!(
            pins,
            [
                "cuda-x==12; platform_machine == \"x86_64\"",
                "numpy==2.0.0",
                "zed==1"
            ]
        );
    }

    #[test]
    fn conda_specs_name_the_channel_when_not_first() {
        let mut s = step();
        s.channels = vec![
            "https://c/conda-forge".parse().unwrap(),
            "https://c/bioconda".parse().unwrap(),
        ];
        let pkg = |name: &str, channel: &str| CondaPackage {
            name: name.parse().unwrap(),
            version: "1.0".parse().unwrap(),
            build: "h0_1".parse().unwrap(),
            build_number: 1,
            channel: channel.parse().unwrap(),
            subdir: "linux-64".parse().unwrap(),
            url: "https://files.example.org/f".parse().unwrap(),
            sha256: "0".repeat(64).parse().unwrap(),
            md5: None,
            size: None,
            requested: None,
            platforms: vec!["linux/amd64".parse().unwrap()],
        };
        s.conda = vec![
            pkg("pysam", "https://c/bioconda"),
            pkg("numpy", "https://c/conda-forge"),
        ];
        let (specs, unpinned) = conda_specs(&s);
        let specs: Vec<&str> = specs.iter().map(|(_, s)| s.as_str()).collect();
        assert_eq!(specs, ["numpy==1.0=h0_1", "bioconda::pysam==1.0=h0_1"]);
        assert!(unpinned.is_empty());
    }
}

//! dnf's modular filtering, for the common case: `modules.yaml` of an
//! rpm-md repository (`modulemd` v2 documents: a module's stream with its
//! artifacts; `modulemd-defaults` v1: its default stream), the module state
//! of an image (`/etc/dnf/modules.d/*.module`) and what libdnf hides from
//! the solver: every artifact of a stream that is not active, and every
//! non-modular package named like an artifact of an active stream (unless
//! its repository has `module_hotfixes=1`). A stream is active when it is
//! enabled, or when its module is neither enabled nor disabled and the
//! stream is the default one.

use std::collections::{BTreeMap, BTreeSet};

use super::Evr;

/// One `modulemd` document: a build of one stream of a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleStream {
    pub name: String,
    pub stream: String,
    pub version: u64,
    pub context: String,
    /// `name-epoch:version-release.arch` of its binary packages.
    pub artifacts: Vec<String>,
    /// The modules (other than `platform`) a build requires, with the
    /// streams it accepts (empty: any).
    pub requires: Vec<(String, Vec<String>)>,
}

/// What `modules.yaml` says: streams and default streams.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleMetadata {
    pub streams: Vec<ModuleStream>,
    /// module name → default stream (`modulemd-defaults`).
    pub defaults: BTreeMap<String, String>,
}

/// A module's state in the image, as `/etc/dnf/modules.d/NAME.module` (or
/// an earlier `dnf module enable`) leaves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModuleState {
    Enabled(String),
    Disabled,
}

fn text(v: &serde_yaml::Value) -> Option<String> {
    match v {
        serde_yaml::Value::String(s) => Some(s.clone()),
        serde_yaml::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Parses `modules.yaml` (its documents other than `modulemd` v2 and
/// `modulemd-defaults` v1, such as `modulemd-translations`, are skipped).
pub fn parse_modules(what: &str, yaml: &str) -> Result<ModuleMetadata, String> {
    use serde::Deserialize;
    let mut out = ModuleMetadata::default();
    for (i, doc) in serde_yaml::Deserializer::from_str(yaml).enumerate() {
        let v = serde_yaml::Value::deserialize(doc)
            .map_err(|e| format!("{what}: document {}: {e}", i + 1))?;
        if v.is_null() {
            continue;
        }
        let kind = v.get("document").and_then(text).unwrap_or_default();
        let version = v.get("version").and_then(text).unwrap_or_default();
        let data = v.get("data");
        let field = |k: &str| data.and_then(|d| d.get(k)).and_then(text);
        match (kind.as_str(), version.as_str()) {
            ("modulemd", "2") => {
                let (Some(name), Some(stream)) = (field("name"), field("stream")) else {
                    return Err(format!(
                        "{what}: document {}: a modulemd without name or stream",
                        i + 1
                    ));
                };
                let artifacts = data
                    .and_then(|d| d.get("artifacts"))
                    .and_then(|a| a.get("rpms"))
                    .and_then(|r| r.as_sequence())
                    .map(|s| s.iter().filter_map(text).collect())
                    .unwrap_or_default();
                let mut requires = Vec::new();
                for dep in data
                    .and_then(|d| d.get("dependencies"))
                    .and_then(|d| d.as_sequence())
                    .into_iter()
                    .flatten()
                {
                    for (m, streams) in dep
                        .get("requires")
                        .and_then(|r| r.as_mapping())
                        .into_iter()
                        .flatten()
                    {
                        let Some(m) = text(m) else { continue };
                        if m == "platform" {
                            continue;
                        }
                        let streams = streams
                            .as_sequence()
                            .map(|s| s.iter().filter_map(text).collect())
                            .unwrap_or_default();
                        requires.push((m, streams));
                    }
                }
                out.streams.push(ModuleStream {
                    name,
                    stream,
                    version: field("version").and_then(|v| v.parse().ok()).unwrap_or(0),
                    context: field("context").unwrap_or_default(),
                    artifacts,
                    requires,
                });
            }
            ("modulemd-defaults", "1") => {
                if let (Some(module), Some(stream)) = (field("module"), field("stream")) {
                    out.defaults.insert(module, stream);
                }
            }
            ("modulemd" | "modulemd-defaults", v) => {
                return Err(format!(
                    "{what}: document {}: {kind} version {v} is not one imagelock reads",
                    i + 1
                ));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Reads `/etc/dnf/modules.d/*.module` (INI: `[name]`, `stream=`,
/// `state=enabled|disabled|`); `Err` names what it cannot read.
pub fn parse_module_state(
    path: &str,
    text: &str,
) -> Result<Vec<(String, Option<ModuleState>)>, String> {
    let mut out: Vec<(String, Option<ModuleState>)> = Vec::new();
    let mut stream: Option<String> = None;
    let mut state: Option<String> = None;
    let mut name: Option<String> = None;
    let mut flush = |name: &mut Option<String>,
                     stream: &mut Option<String>,
                     state: &mut Option<String>|
     -> Result<(), String> {
        if let Some(n) = name.take() {
            let s = match state.take().as_deref().map(str::trim) {
                Some("enabled") => match stream.take().filter(|s| !s.is_empty()) {
                    Some(s) => Some(ModuleState::Enabled(s)),
                    None => {
                        return Err(format!("{path}: module `{n}` is enabled without a stream"));
                    }
                },
                Some("disabled") => Some(ModuleState::Disabled),
                Some("") | None => None,
                Some(other) => {
                    return Err(format!(
                        "{path}: module `{n}` has state `{other}`, which imagelock does not know"
                    ));
                }
            };
            out.push((n, s));
        }
        *stream = None;
        Ok(())
    };
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            flush(&mut name, &mut stream, &mut state)?;
            name = Some(section.trim().to_string());
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            match k.trim() {
                "stream" => stream = Some(v.trim().to_string()),
                "state" => state = Some(v.trim().to_string()),
                _ => {}
            }
        }
    }
    flush(&mut name, &mut stream, &mut state)?;
    Ok(out)
}

/// `name-epoch:version-release.arch` split into name, EVR and arch.
pub fn split_artifact(nevra: &str) -> Option<(String, Evr, String)> {
    let (rest, arch) = nevra.rsplit_once('.')?;
    let (rest, release) = rest.rsplit_once('-')?;
    let (name, ev) = rest.rsplit_once('-')?;
    let (epoch, version) = match ev.split_once(':') {
        Some((e, v)) => (e.parse().ok()?, v),
        None => (0, ev),
    };
    Some((
        name.to_string(),
        Evr::new(epoch, version, release),
        arch.to_string(),
    ))
}

/// What modular filtering hides, by NEVRA (`name-[epoch:]version-release.arch`
/// as [`super::RpmPackage::nevra`] spells it) and by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleFilter {
    /// The active streams: module → stream.
    pub active: BTreeMap<String, String>,
    /// Active streams that are active only as their module's default (dnf
    /// enables them when it installs from them).
    pub by_default: BTreeSet<String>,
    /// Artifacts of the active streams.
    pub modular_active: BTreeSet<String>,
    /// Artifacts of streams that are not active.
    pub hidden: BTreeSet<String>,
    /// Names of the active streams' artifacts: non-modular packages of
    /// these names are hidden.
    pub names: BTreeSet<String>,
}

impl ModuleFilter {
    /// Whether dnf shows the package `nevra` named `name` from a repository
    /// with `module_hotfixes` as given.
    pub fn shows(&self, name: &str, nevra: &str, hotfixes: bool) -> bool {
        if self.modular_active.contains(nevra) {
            return true;
        }
        if self.hidden.contains(nevra) {
            return false;
        }
        hotfixes || !self.names.contains(name)
    }

    /// Why packages named `name` are hidden, if some are: the modules
    /// whose inactive streams have them, or the active module whose name
    /// hides non-modular builds.
    pub fn hides(&self, name: &str, streams: &[ModuleStream]) -> Option<String> {
        let mut inactive: Vec<String> = streams
            .iter()
            .filter(|s| self.active.get(&s.name) != Some(&s.stream))
            .filter(|s| {
                s.artifacts
                    .iter()
                    .any(|a| split_artifact(a).is_some_and(|(n, _, _)| n == name))
            })
            .map(|s| format!("`{}:{}`", s.name, s.stream))
            .collect();
        inactive.dedup();
        if !inactive.is_empty() {
            return Some(format!(
                "the builds of `{name}` in module streams that are neither enabled nor default ({}); `dnf module enable NAME:STREAM` first",
                inactive.join(", ")
            ));
        }
        None
    }

    /// The module whose active stream has `nevra` among its artifacts.
    pub fn module_of(&self, nevra: &str, streams: &[ModuleStream]) -> Option<String> {
        streams
            .iter()
            .filter(|s| self.active.get(&s.name) == Some(&s.stream))
            .find(|s| s.artifacts.iter().any(|a| canonical(a) == nevra))
            .map(|s| s.name.clone())
    }
}

/// An artifact in [`super::RpmPackage::nevra`]'s spelling (epoch 0 left out).
fn canonical(artifact: &str) -> String {
    match split_artifact(artifact) {
        Some((n, evr, a)) => format!("{n}-{evr}.{a}"),
        None => artifact.to_string(),
    }
}

/// The filter dnf applies for `metadata` under `state` (the image's module
/// state, earlier steps' `module enable` over it). `Err` says what
/// imagelock does not model: an enabled stream no repository has, or an
/// active stream that requires another module.
pub fn module_filter(
    metadata: &ModuleMetadata,
    state: &BTreeMap<String, ModuleState>,
) -> Result<ModuleFilter, String> {
    let mut out = ModuleFilter::default();
    let modules: BTreeSet<&str> = metadata.streams.iter().map(|s| s.name.as_str()).collect();
    for m in &modules {
        match state.get(*m) {
            Some(ModuleState::Enabled(s)) => {
                out.active.insert(m.to_string(), s.clone());
            }
            Some(ModuleState::Disabled) => {}
            None => {
                if let Some(s) = metadata.defaults.get(*m) {
                    out.active.insert(m.to_string(), s.clone());
                    out.by_default.insert(m.to_string());
                }
            }
        }
    }
    for (m, s) in &out.active {
        let builds: Vec<&ModuleStream> = metadata
            .streams
            .iter()
            .filter(|x| &x.name == m && &x.stream == s)
            .collect();
        if builds.is_empty() {
            return Err(format!(
                "module `{m}` stream `{s}` is {} but no repository the step reads has it",
                if out.by_default.contains(m) {
                    "the default"
                } else {
                    "enabled"
                }
            ));
        }
        for b in builds {
            if let Some((dep, _)) = b.requires.first() {
                return Err(format!(
                    "module `{m}:{s}` requires module `{dep}`, and imagelock does not resolve module dependencies yet"
                ));
            }
        }
    }
    for s in &metadata.streams {
        let active = out.active.get(&s.name) == Some(&s.stream);
        for a in s.artifacts.iter().filter(|a| !a.ends_with(".src")) {
            let nevra = canonical(a);
            if active {
                if let Some((name, _, _)) = split_artifact(a) {
                    out.names.insert(name);
                }
                out.modular_active.insert(nevra);
            } else {
                out.hidden.insert(nevra);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = r#"---
document: modulemd
version: 2
data:
  name: nodejs
  stream: "18"
  version: 9000020230101
  context: abcdef12
  arch: x86_64
  summary: Node 18
  description: Node 18
  license: {module: [MIT]}
  dependencies:
  - buildrequires: {platform: [el9]}
    requires: {platform: [el9]}
  artifacts:
    rpms:
    - nodejs-1:18.1-1.module_el9.x86_64
    - nodejs-1:18.1-1.module_el9.src
...
---
document: modulemd
version: 2
data:
  name: nodejs
  stream: 20
  version: 1
  context: abcdef12
  arch: x86_64
  summary: Node 20
  description: Node 20
  license: {module: [MIT]}
  artifacts:
    rpms: [nodejs-1:20.1-1.module_el9.x86_64]
...
---
document: modulemd
version: 2
data:
  name: plugin
  stream: "1"
  version: 1
  context: c
  arch: x86_64
  summary: s
  description: d
  license: {module: [MIT]}
  dependencies:
  - requires: {platform: [el9], nodejs: ["20"]}
  artifacts:
    rpms: [plugin-0:1.0-1.module_el9.noarch]
...
---
document: modulemd-defaults
version: 1
data:
  module: nodejs
  stream: "18"
  profiles: {"18": [common]}
...
"#;

    #[test]
    fn streams_defaults_and_requirements_are_read() {
        let m = parse_modules("modules.yaml", YAML).unwrap();
        assert_eq!(m.streams.len(), 3);
        assert_eq!(m.streams[0].stream, "18");
        assert_eq!(m.streams[1].stream, "20", "a number is read as the stream");
        assert!(m.streams[0].requires.is_empty(), "platform is not a module");
        assert_eq!(
            m.streams[2].requires,
            [("nodejs".into(), vec!["20".into()])]
        );
        assert_eq!(m.defaults["nodejs"], "18");
        assert_eq!(
            split_artifact("nodejs-1:18.1-1.module_el9.x86_64")
                .unwrap()
                .1,
            Evr::new(1, "18.1", "1.module_el9")
        );
    }

    #[test]
    fn filtering_hides_other_streams_and_ursine_packages_of_the_same_name() {
        let m = parse_modules("modules.yaml", YAML).unwrap();
        let none = BTreeMap::new();
        let f = module_filter(&m, &none).unwrap();
        assert_eq!(f.active["nodejs"], "18");
        assert!(f.by_default.contains("nodejs"));
        assert!(f.shows("nodejs", "nodejs-1:18.1-1.module_el9.x86_64", false));
        assert!(!f.shows("nodejs", "nodejs-1:20.1-1.module_el9.x86_64", false));
        // An ursine nodejs is hidden, unless its repository has hotfixes.
        assert!(!f.shows("nodejs", "nodejs-16.0-1.x86_64", false));
        assert!(f.shows("nodejs", "nodejs-16.0-1.x86_64", true));
        // No default, not enabled: the module's packages are hidden.
        assert!(!f.shows("plugin", "plugin-1.0-1.module_el9.noarch", false));
        assert!(f.shows("other", "other-1.0-1.noarch", false));

        let mut enabled = BTreeMap::new();
        enabled.insert("nodejs".to_string(), ModuleState::Enabled("20".into()));
        let f = module_filter(&m, &enabled).unwrap();
        assert!(f.shows("nodejs", "nodejs-1:20.1-1.module_el9.x86_64", false));
        assert!(!f.shows("nodejs", "nodejs-1:18.1-1.module_el9.x86_64", false));
        assert!(f.by_default.is_empty());

        enabled.insert("nodejs".to_string(), ModuleState::Disabled);
        let f = module_filter(&m, &enabled).unwrap();
        assert!(!f.shows("nodejs", "nodejs-1:18.1-1.module_el9.x86_64", false));
        assert!(f.shows("nodejs", "nodejs-16.0-1.x86_64", false));

        enabled.insert("plugin".to_string(), ModuleState::Enabled("1".into()));
        let e = module_filter(&m, &enabled).unwrap_err();
        assert!(e.contains("requires module `nodejs`"), "{e}");
        enabled.insert("plugin".to_string(), ModuleState::Enabled("9".into()));
        let e = module_filter(&m, &enabled).unwrap_err();
        assert!(e.contains("no repository"), "{e}");
    }

    #[test]
    fn the_module_state_of_an_image_is_read() {
        let s = parse_module_state(
            "/etc/dnf/modules.d/pg.module",
            "[pg]\nname=pg\nstream=15\nprofiles=\nstate=enabled\n\n[x]\nname=x\nstream=\nstate=disabled\n[y]\nstate=\n",
        )
        .unwrap();
        assert_eq!(
            s,
            [
                ("pg".into(), Some(ModuleState::Enabled("15".into()))),
                ("x".into(), Some(ModuleState::Disabled)),
                ("y".into(), None)
            ]
        );
        assert!(parse_module_state("p", "[a]\nstate=enabled\n").is_err());
        assert!(parse_module_state("p", "[a]\nstream=1\nstate=frozen\n").is_err());
    }
}

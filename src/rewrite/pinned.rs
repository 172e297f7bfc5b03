//! Where a definition pins a package's version itself (`numpy==1.26.4` on
//! a pip command line or in a requirements file it reads, `numpy==1.26.4`
//! or `numpy=1.26.4=py311_0` on a conda command line, `curl=7.88.1-10` on
//! an apt command line). Such a package cannot move by re-locking: the
//! resolver must honour the pin. `imagelock update` uses this to say so
//! rather than report an update that did not happen.

use crate::diagnostic::Location;
use crate::source::inputs::Inputs;
use crate::source::model::Definition;
use crate::source::requirements::{RequirementsEntry, RequirementsFile};
use crate::source::steps::{Ecosystem, FileRole};

use super::pins::{normalize_name, requirement_name};

/// One place a definition (or a file it reads) pins a package's version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinnedSpec {
    /// The package as named (PEP 503 normalized for pip).
    pub name: String,
    /// The spec as written after expansion.
    pub spec: String,
    pub location: Location,
}

/// Every spec of `definition` (and the requirements and constraints files
/// its pip steps read) that pins one of `names` to one version. Names are
/// compared as PEP 503 normalizes them.
pub fn pinned_specs(definition: &Definition, inputs: &Inputs, names: &[String]) -> Vec<PinnedSpec> {
    let wanted: Vec<String> = names.iter().map(|n| normalize_name(n)).collect();
    let mut out = Vec::new();
    let text = inputs.definition.as_str();
    for stage in definition.stages.iter().filter(|s| !s.unused) {
        for (si, step) in stage.steps.iter().enumerate() {
            let ecosystem = step.command.manager.ecosystem();
            for spec in &step.command.specs {
                let Some(value) = spec.value.as_deref() else {
                    continue;
                };
                let pinned = match ecosystem {
                    Ecosystem::Python => pip_pin(value),
                    Ecosystem::Conda => conda_pin(value),
                    Ecosystem::Os => os_pin(value),
                    Ecosystem::Other => None,
                };
                if let Some(name) = pinned.filter(|n| wanted.contains(n)) {
                    out.push(PinnedSpec {
                        name,
                        spec: value.to_string(),
                        location: Location::of(&definition.path, text, spec.span.start),
                    });
                }
            }
            if ecosystem != Ecosystem::Python {
                continue;
            }
            let env = |name: &str| {
                step.env
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
            };
            for (ai, fi) in inputs.step_files(stage.index, si) {
                let role = step.command.files.get(ai).map(|f| f.role);
                if !matches!(role, Some(FileRole::Requirements | FileRole::Constraints)) {
                    continue;
                }
                let file = &inputs.files[fi];
                let Ok(parsed) = RequirementsFile::parse(&file.path, &file.text, &env) else {
                    continue;
                };
                for entry in parsed.requirements() {
                    let RequirementsEntry::Requirement { spec, span, .. } = entry else {
                        continue;
                    };
                    if let Some(name) = pip_pin(spec).filter(|n| wanted.contains(n)) {
                        out.push(PinnedSpec {
                            name,
                            spec: spec.clone(),
                            location: Location::of(&file.path, &file.text, span.start),
                        });
                    }
                }
            }
        }
    }
    out.sort_by(|a, b| {
        (&a.location.path, a.location.line).cmp(&(&b.location.path, b.location.line))
    });
    out.dedup();
    out
}

/// The name a PEP 508 requirement pins with `==VERSION` (not `==1.2.*`)
/// or `===VERSION`.
fn pip_pin(spec: &str) -> Option<String> {
    let name = requirement_name(spec)?;
    let specifiers = spec.split(';').next().unwrap_or(spec);
    let exact = specifiers.split(',').any(|part| {
        let part = part.trim();
        let rest = part
            .find("==")
            .map(|i| part[i + 2..].trim_start_matches('='));
        rest.is_some_and(|v| {
            let v = v.trim();
            !v.is_empty() && !v.ends_with('*')
        })
    });
    exact.then_some(name)
}

/// The name a conda match spec pins: `name==VERSION`, or
/// `name=VERSION=BUILD` (`name=1.2` is `1.2.*`, which may still move).
fn conda_pin(spec: &str) -> Option<String> {
    let spec = spec.trim();
    let spec = spec.rsplit_once("::").map_or(spec, |(_, s)| s);
    let end = spec
        .find(['=', '<', '>', '!', '~', ' ', '['])
        .unwrap_or(spec.len());
    let (name, rest) = spec.split_at(end);
    if name.is_empty() {
        return None;
    }
    let exact = if let Some(v) = rest.strip_prefix("==") {
        !v.is_empty() && !v.contains('*') && !v.contains(['<', '>', '|', ','])
    } else if let Some(v) = rest.strip_prefix('=') {
        v.split_once('=')
            .is_some_and(|(version, build)| !version.contains('*') && !build.is_empty())
    } else {
        false
    };
    exact.then(|| normalize_name(name))
}

/// The name an OS package spec pins: `name=VERSION`.
fn os_pin(spec: &str) -> Option<String> {
    let (name, version) = spec.trim().split_once('=')?;
    (!name.is_empty() && !version.is_empty() && !version.contains('*'))
        .then(|| normalize_name(name))
}

#[cfg(test)]
mod tests {
    use super::{conda_pin, os_pin, pip_pin};

    #[test]
    fn what_pins_a_version() {
        assert_eq!(pip_pin("numpy==1.26.4").as_deref(), Some("numpy"));
        assert_eq!(pip_pin("NumPy === 1.26.4").as_deref(), Some("numpy"));
        assert_eq!(pip_pin("hail[all]==0.2.133").as_deref(), Some("hail"));
        assert_eq!(
            pip_pin("numpy>=1,==1.26.4 ; python_version > '3'").as_deref(),
            Some("numpy")
        );
        assert_eq!(pip_pin("numpy==1.26.*"), None);
        assert_eq!(pip_pin("numpy>=1.26"), None);
        assert_eq!(pip_pin("numpy"), None);
        assert_eq!(pip_pin("numpy ; python_version=='3.11'"), None);
        assert_eq!(conda_pin("numpy==1.26.4").as_deref(), Some("numpy"));
        assert_eq!(
            conda_pin("conda-forge::numpy=1.26.4=py311_0").as_deref(),
            Some("numpy")
        );
        assert_eq!(conda_pin("numpy=1.26"), None);
        assert_eq!(conda_pin("numpy==1.*"), None);
        assert_eq!(conda_pin("numpy>=1.26"), None);
        assert_eq!(os_pin("curl=7.88.1-10").as_deref(), Some("curl"));
        assert_eq!(os_pin("curl"), None);
    }
}

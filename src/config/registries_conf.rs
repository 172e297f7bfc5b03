//! containers' `registries.conf` (v2), as podman and buildah read it:
//! mirrors, locations and `insecure` per registry, short-name aliases and
//! `unqualified-search-registries`.
//!
//! Files, as containers/image chooses them: `CONTAINERS_REGISTRIES_CONF`,
//! else `~/.config/containers/registries.conf` when it exists, else
//! `/etc/containers/registries.conf`; then the `*.conf` drop-ins of
//! `/etc/containers/registries.conf.d/` (not when the user file is used) and
//! `~/.config/containers/registries.conf.d/`, each directory by name. A later
//! file's `[[registry]]` replaces an earlier one with the same prefix, its
//! `unqualified-search-registries` replace the earlier list, its aliases
//! are added over the earlier ones (an empty one removes the alias).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{MirrorConfig, PullFromMirror, RegistryConfig};

/// What the host's `registries.conf` files say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegistriesConf {
    /// `[[registry]]` entries by prefix, in imagelock's terms.
    pub registries: BTreeMap<String, RegistryConfig>,
    /// Registries tried for a short name, in order.
    pub unqualified_search: Vec<String>,
    /// Short name (`python`) to fully qualified name.
    pub aliases: BTreeMap<String, String>,
    /// Files read, in order.
    pub files: Vec<PathBuf>,
}

/// A `registries.conf` imagelock cannot read.
#[derive(Debug, thiserror::Error)]
pub enum RegistriesConfError {
    #[error("`{}` is not a valid registries.conf: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error(
        "`{}`: prefix `{prefix}` names a namespace; imagelock applies registries.conf per registry host only\nhint: use a host prefix, or set `[registries.\"HOST\"]` in imagelock.toml",
        path.display()
    )]
    Namespaced { path: PathBuf, prefix: String },
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct RawConf {
    unqualified_search_registries: Option<Vec<String>>,
    #[serde(default)]
    registry: Vec<RawRegistry>,
    #[serde(default)]
    aliases: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawRegistry {
    prefix: Option<String>,
    location: Option<String>,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    mirror_by_digest_only: bool,
    #[serde(default)]
    mirror: Vec<RawMirror>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawMirror {
    location: String,
    #[serde(default)]
    insecure: bool,
    pull_from_mirror: Option<String>,
}

impl RegistriesConf {
    /// Reads the host's files (see the module documentation).
    pub fn load(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, RegistriesConfError> {
        let var = |k: &str| env(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let home = var("HOME");
        let user_file = home
            .as_ref()
            .map(|h| h.join(".config/containers/registries.conf"));
        let user_dir = home
            .as_ref()
            .map(|h| h.join(".config/containers/registries.conf.d"));
        let system_dir = PathBuf::from("/etc/containers/registries.conf.d");
        let (main, dirs) = if let Some(f) = var("CONTAINERS_REGISTRIES_CONF") {
            (f, vec![Some(system_dir), user_dir])
        } else if let Some(u) = user_file.filter(|u| u.is_file()) {
            (u, vec![user_dir])
        } else {
            (
                PathBuf::from("/etc/containers/registries.conf"),
                vec![Some(system_dir), user_dir],
            )
        };
        let mut files = vec![main];
        for dir in dirs.into_iter().flatten() {
            let mut drop_ins: Vec<PathBuf> = std::fs::read_dir(&dir)
                .map(|d| d.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            drop_ins.retain(|p| p.extension().is_some_and(|e| e == "conf"));
            drop_ins.sort();
            files.extend(drop_ins);
        }
        let mut out = RegistriesConf::default();
        for f in files {
            let Ok(text) = super::read::read_regular_to_string(&f, super::read::MAX_INPUT_FILE)
            else {
                continue;
            };
            out.merge(&f, &text)?;
            out.files.push(f);
        }
        Ok(out)
    }

    /// Adds one file's settings over what is read so far.
    pub fn merge(&mut self, path: &Path, text: &str) -> Result<(), RegistriesConfError> {
        let raw: RawConf = toml::from_str(text).map_err(|e| RegistriesConfError::Invalid {
            path: path.to_path_buf(),
            message: e.message().to_string(),
        })?;
        if let Some(search) = raw.unqualified_search_registries {
            self.unqualified_search = search;
        }
        // An empty alias removes one set by an earlier file, as in
        // containers/image.
        for (name, target) in raw.aliases {
            if target.is_empty() {
                self.aliases.remove(&name);
            } else {
                self.aliases.insert(name, target);
            }
        }
        for r in raw.registry {
            let Some(prefix) = r.prefix.clone().or_else(|| r.location.clone()) else {
                return Err(RegistriesConfError::Invalid {
                    path: path.to_path_buf(),
                    message: "a [[registry]] has neither prefix nor location".into(),
                });
            };
            if prefix.contains('/') || prefix.starts_with("*.") {
                return Err(RegistriesConfError::Namespaced {
                    path: path.to_path_buf(),
                    prefix,
                });
            }
            let mut mirrors = Vec::new();
            for m in &r.mirror {
                let pull = if r.mirror_by_digest_only {
                    PullFromMirror::DigestOnly
                } else {
                    match m.pull_from_mirror.as_deref() {
                        None | Some("all") => PullFromMirror::All,
                        Some("digest-only") => PullFromMirror::DigestOnly,
                        Some("tag-only") => PullFromMirror::TagOnly,
                        Some(other) => {
                            return Err(RegistriesConfError::Invalid {
                                path: path.to_path_buf(),
                                message: format!("unknown pull-from-mirror `{other}`"),
                            });
                        }
                    }
                };
                mirrors.push(MirrorConfig {
                    location: m.location.clone(),
                    pull_from_mirror: pull,
                });
                if m.insecure {
                    let host = m.location.split('/').next().unwrap_or_default();
                    self.registries
                        .entry(host.to_string())
                        .or_default()
                        .insecure = true;
                }
            }
            self.registries.insert(
                prefix.clone(),
                RegistryConfig {
                    location: r.location.filter(|l| *l != prefix),
                    mirrors,
                    insecure: r.insecure,
                },
            );
        }
        Ok(())
    }

    /// The registries to use: `imagelock.toml`'s entry for a registry
    /// replaces the host's entry for it.
    pub fn under(
        &self,
        config: &BTreeMap<String, RegistryConfig>,
    ) -> BTreeMap<String, RegistryConfig> {
        let mut out = self.registries.clone();
        for (k, v) in config {
            out.insert(k.clone(), v.clone());
        }
        out
    }

    /// What a short name (no registry, as `python` in `python:3.11`) stands
    /// for under these settings: the alias, else the single search registry.
    /// `Ok(None)`: no setting applies (Docker's rule, `docker.io`, stays).
    /// Several search registries and no alias: podman's enforcing mode
    /// refuses without a terminal to ask on, and so does imagelock, naming
    /// the candidates.
    pub fn short_name(&self, name: &str) -> Result<Option<String>, String> {
        if let Some(a) = self.aliases.get(name) {
            return Ok(Some(a.clone()));
        }
        match self.unqualified_search.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(format!("{one}/{name}"))),
            many => Err(format!(
                "`{name}` is a short name and registries.conf searches {} for it (`unqualified-search-registries`), so which image a build pulls depends on which has it\nhint: write the full name (for example `{}/{name}`), or add an alias under `[aliases]`",
                many.iter()
                    .map(|r| format!("`{r}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                many[0]
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_locations_aliases_and_drop_in_order() {
        let mut c = RegistriesConf::default();
        c.merge(
            Path::new("registries.conf"),
            r#"
unqualified-search-registries = ["registry.fedoraproject.org", "docker.io"]
[[registry]]
prefix = "docker.io"
[[registry.mirror]]
location = "mirror.example:5000"
insecure = true
[[registry]]
location = "quay.io"
mirror-by-digest-only = true
[[registry.mirror]]
location = "quay-mirror.example/quay"
[aliases]
"python" = "docker.io/library/python"
"#,
        )
        .unwrap();
        let d = &c.registries["docker.io"];
        assert_eq!(d.location, None);
        assert_eq!(d.mirrors[0].pull_from_mirror, PullFromMirror::All);
        assert!(c.registries["mirror.example:5000"].insecure);
        assert_eq!(
            c.registries["quay.io"].mirrors[0].pull_from_mirror,
            PullFromMirror::DigestOnly
        );
        assert_eq!(
            c.short_name("python").unwrap().as_deref(),
            Some("docker.io/library/python")
        );
        let err = c.short_name("busybox").unwrap_err();
        assert!(
            err.contains("`registry.fedoraproject.org`, `docker.io`"),
            "{err}"
        );
        // A drop-in replaces the list and the entry with the same prefix.
        c.merge(
            Path::new("50-local.conf"),
            "unqualified-search-registries = [\"docker.io\"]\n[[registry]]\nprefix = \"docker.io\"\nlocation = \"local.example\"\n",
        )
        .unwrap();
        assert_eq!(
            c.short_name("busybox").unwrap().as_deref(),
            Some("docker.io/busybox")
        );
        assert_eq!(
            c.registries["docker.io"].location.as_deref(),
            Some("local.example")
        );
        assert!(c.registries["docker.io"].mirrors.is_empty());
        let err = c
            .merge(
                Path::new("x.conf"),
                "[[registry]]\nprefix = \"docker.io/library\"\n",
            )
            .unwrap_err();
        assert!(err.to_string().contains("names a namespace"), "{err}");
    }
}

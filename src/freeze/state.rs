//! What an image holds at a point of its build, for one platform: read from
//! the base image's files, then changed by each install step.
//!
//! Install steps are resolved against this state the way the build runs
//! them: `pip` is the one on `PATH` (or the one named), so it installs into
//! that Python and keeps what is there; `conda install` changes the prefix
//! it names (or the active one) and keeps what it can.

use std::collections::BTreeMap;

use crate::image::{Catalogue, LibcKind};
use crate::solve::conda::CondaRecord;
use crate::source::steps::Target;

/// A Python interpreter of the image.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PythonEnv {
    /// Installation prefix (`/usr/local`, `/opt/conda`).
    pub prefix: String,
    /// `3.11` or a full `3.11.9` when known.
    pub version: String,
    /// Where pip installs.
    pub site_packages: String,
}

/// The image's state for one platform.
#[derive(Clone, Debug, Default)]
pub struct PlatformState {
    pub platform: String,
    /// `Env` of the image config, updated by `ENV` of the definition.
    pub env: BTreeMap<String, String>,
    /// `glibc 2.36` / `musl 1.2.4`.
    pub libc: Option<(LibcKind, String)>,
    pub pythons: Vec<PythonEnv>,
    /// Conda prefix → installed packages by name.
    pub conda: BTreeMap<String, BTreeMap<String, CondaRecord>>,
    /// Records of the base image that could not be read.
    pub warnings: Vec<String>,
    /// site-packages directory → installed distributions (normalized name →
    /// version).
    pub dists: BTreeMap<String, BTreeMap<String, String>>,
    /// apt's and dpkg's files as the base has them (absolute path →
    /// content), then as earlier steps wrote them.
    pub apt_files: BTreeMap<String, Vec<u8>>,
    /// dpkg's installed packages after the apt steps resolved so far
    /// (`None`: as `apt_files` says).
    pub apt_installed: Option<Vec<crate::solve::apt::BinaryPackage>>,
    /// A change to apt's files an earlier command made that imagelock
    /// cannot read (where and why): the apt steps after it are not locked.
    pub apt_unknown: Option<String>,
    /// The rpm database after the dnf steps resolved so far (`None`: as
    /// the base's `rpmdb.sqlite` in `apt_files` says).
    pub rpm_installed: Option<Vec<crate::solve::rpm::InstalledRpm>>,
    /// dnf's module state after the dnf steps so far (`None`: as the
    /// base's `/etc/dnf/modules.d` says).
    pub rpm_modules:
        Option<std::collections::BTreeMap<String, crate::solve::rpm::modules::ModuleState>>,
    /// apk's installed packages after the apk steps resolved so far
    /// (`None`: as the base's `/lib/apk/db/installed` says).
    pub apk_installed: Option<Vec<crate::solve::apk::ApkRecord>>,
    /// apk's world after the apk steps so far (`None`: the base's
    /// `/etc/apk/world`).
    pub apk_world: Option<Vec<crate::solve::apk::Dep>>,
    /// An earlier apk step that is not locked (where): what apk starts from
    /// after it is not known, so the apk steps after it are not locked.
    pub apk_unknown: Option<String>,
    /// The base's conda configuration files and `/etc/passwd` (absolute
    /// path → text); see [`crate::image::Catalogue::conda_files`].
    pub conda_files: BTreeMap<String, String>,
    /// The base image's `config.User`.
    pub user: Option<String>,
    /// Why what the base holds is not known (an Apptainer base imagelock
    /// does not read, or could not): the steps on top are not locked.
    pub base_unknown: Option<String>,
}

impl PlatformState {
    /// The state of a base image, from its catalogue and config `Env`.
    pub fn from_catalogue(platform: &str, catalogue: &Catalogue, env: &[String]) -> Self {
        let env: BTreeMap<String, String> = env
            .iter()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let libc = catalogue
            .libc
            .as_ref()
            .and_then(|l| Some((l.kind, l.version.clone()?)));
        let mut pythons: Vec<PythonEnv> = catalogue
            .pythons
            .iter()
            .filter_map(|p| {
                Some(PythonEnv {
                    prefix: p.prefix.clone(),
                    version: p.version.clone(),
                    site_packages: p.site_packages.first()?.clone(),
                })
            })
            .collect();
        // Official python images say the full version in their config.
        if let Some(full) = env.get("PYTHON_VERSION") {
            for p in &mut pythons {
                if full.starts_with(&format!("{}.", p.version)) && p.prefix == "/usr/local" {
                    p.version = full.clone();
                }
            }
        }
        let mut conda: BTreeMap<String, BTreeMap<String, CondaRecord>> = BTreeMap::new();
        let mut warnings = Vec::new();
        for prefix in &catalogue.conda_prefixes {
            let mut records = BTreeMap::new();
            for r in &prefix.records {
                let what = format!(
                    "{}/conda-meta/{}-{}-{}.json",
                    prefix.path, r.name, r.version, r.build
                );
                match CondaRecord::from_conda_meta(&what, &r.raw) {
                    Ok(record) => {
                        records.insert(r.name.clone(), record);
                    }
                    Err(e) => warnings.push(e.to_string()),
                }
            }
            conda.insert(prefix.path.clone(), records);
        }
        // A conda prefix's python is known exactly from its record.
        for p in &mut pythons {
            if let Some(py) = conda.get(&p.prefix).and_then(|r| r.get("python")) {
                p.version = py.version();
            }
        }
        let mut dists: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for d in &catalogue.python_dists {
            // Conda's own dist-infos count too: pip sees them as installed
            // and keeps them when they satisfy.
            dists
                .entry(d.site_packages.clone())
                .or_default()
                .insert(d.normalized_name.clone(), d.version.clone());
        }
        PlatformState {
            platform: platform.to_string(),
            env,
            libc,
            pythons,
            conda,
            warnings,
            dists,
            apt_files: catalogue.apt_files.clone(),
            apt_installed: None,
            apt_unknown: None,
            rpm_installed: None,
            rpm_modules: None,
            apk_installed: None,
            apk_world: None,
            apk_unknown: None,
            conda_files: catalogue.conda_files.clone(),
            user: catalogue.image.config.user.clone(),
            base_unknown: None,
        }
    }

    /// `PATH` directories in order.
    fn path_dirs(&self) -> Vec<String> {
        self.env
            .get("PATH")
            .map(|p| {
                p.split(':')
                    .map(|d| d.trim_end_matches('/').to_string())
                    .collect()
            })
            .unwrap_or_else(|| {
                [
                    "/usr/local/sbin",
                    "/usr/local/bin",
                    "/usr/sbin",
                    "/usr/bin",
                    "/sbin",
                    "/bin",
                ]
                .map(String::from)
                .to_vec()
            })
    }

    /// The Python a pip command uses: the one it names (`/opt/conda/bin/pip`,
    /// `python3.11 -m pip`), else the first on `PATH`.
    pub fn python_for(&self, target: Option<&Target>) -> Option<&PythonEnv> {
        if let Some(Target::Python(exe)) = target {
            let exe = exe.value.as_deref().unwrap_or(&exe.written);
            if let Some((dir, _)) = exe.rsplit_once('/') {
                let prefix = dir.strip_suffix("/bin").unwrap_or(dir);
                if let Some(p) = self.pythons.iter().find(|p| p.prefix == prefix) {
                    return Some(p);
                }
            } else if let Some(minor) = exe.strip_prefix("python").filter(|v| v.contains('.')) {
                // `python3.11 -m pip`: the installation of that version on PATH.
                return self.path_dirs().iter().find_map(|dir| {
                    let prefix = dir.strip_suffix("/bin")?;
                    self.pythons
                        .iter()
                        .find(|p| p.prefix == prefix && p.version.starts_with(minor))
                });
            }
        }
        if let Some(Target::CondaName(_) | Target::CondaPrefix(_)) = target {
            let prefix = self.conda_prefix_for(target)?;
            return self.pythons.iter().find(|p| p.prefix == prefix);
        }
        self.path_dirs().iter().find_map(|dir| {
            let prefix = dir.strip_suffix("/bin")?;
            self.pythons.iter().find(|p| p.prefix == prefix)
        })
    }

    /// The prefix a conda command changes: `-p`, `-n` (under the root
    /// prefix's `envs/`), else the active one (`CONDA_PREFIX`, the root
    /// prefix from `CONDA_DIR`/`MAMBA_ROOT_PREFIX`, or the one on `PATH`).
    pub fn conda_prefix_for(&self, target: Option<&Target>) -> Option<String> {
        let root = self.conda_root();
        match target {
            Some(Target::CondaPrefix(p)) => p.value.clone(),
            Some(Target::CondaName(n)) => {
                let name = n.value.as_deref()?;
                let root = root?;
                Some(if name == "base" {
                    root
                } else {
                    format!("{root}/envs/{name}")
                })
            }
            _ => self.env.get("CONDA_PREFIX").cloned().or(root),
        }
    }

    /// The root conda prefix of the image.
    pub fn conda_root(&self) -> Option<String> {
        for var in ["CONDA_DIR", "MAMBA_ROOT_PREFIX", "CONDA_ROOT"] {
            if let Some(v) = self.env.get(var) {
                return Some(v.trim_end_matches('/').to_string());
            }
        }
        let on_path = self.path_dirs().into_iter().find_map(|dir| {
            let prefix = dir.strip_suffix("/bin")?.to_string();
            self.conda.contains_key(&prefix).then_some(prefix)
        });
        on_path.or_else(|| {
            // The shortest prefix is the root; the others are its envs.
            self.conda.keys().min_by_key(|k| k.len()).cloned()
        })
    }

    /// Records a conda prefix's new contents, and the Python it now has.
    pub fn set_conda(&mut self, prefix: &str, packages: Vec<CondaRecord>) {
        let python = packages
            .iter()
            .find(|p| p.name() == "python")
            .map(CondaRecord::version);
        self.conda.insert(
            prefix.to_string(),
            packages
                .into_iter()
                .map(|p| (p.name().to_string(), p))
                .collect(),
        );
        if let Some(version) = python {
            let minor: String = version.split('.').take(2).collect::<Vec<_>>().join(".");
            let site_packages = format!("{prefix}/lib/python{minor}/site-packages");
            match self.pythons.iter_mut().find(|p| p.prefix == prefix) {
                Some(p) => {
                    p.version = version;
                    p.site_packages = site_packages;
                }
                None => self.pythons.push(PythonEnv {
                    prefix: prefix.to_string(),
                    version,
                    site_packages,
                }),
            }
        }
    }
}

/// Reads the catalogue of a base image for one platform. Blocking: call it
/// from a blocking thread, with the runtime `registry` runs on.
///
/// The base is opened by `digest`, the platform manifest this freeze pinned,
/// when there is one: the registry client has that manifest and its config
/// cached from pinning, so reading them costs no second request, and what is
/// read is what the lock says even if the tag has moved since. Registries
/// relocated to `oci:` directories are read through the same client.
pub fn read_base(
    config: &crate::config::Config,
    name: &str,
    platform: &str,
    digest: Option<&str>,
    registry: std::sync::Arc<crate::resolve::Registry>,
    handle: tokio::runtime::Handle,
) -> Result<(Catalogue, Vec<String>), crate::freeze::ReadBaseError> {
    use crate::freeze::ReadBaseError;
    use crate::image::{ReadOptions, RegistryImage, read_catalogue};
    let mut image = crate::oci::ImageRef::parse(name).map_err(ReadBaseError::Reference)?;
    if let Some(digest) = digest {
        image = image.with_digest(digest.parse().map_err(|source| ReadBaseError::Digest {
            digest: digest.to_string(),
            source,
        })?);
    }
    let source = RegistryImage::new(registry, image, handle);
    let platform = platform.parse().map_err(|source| ReadBaseError::Platform {
        platform: platform.to_string(),
        source,
    })?;
    let options = ReadOptions {
        cache_dir: Some(config.cache_dir.join("layers")),
        ..ReadOptions::default()
    }
    .with_limits(&config.limits);
    let catalogue = read_catalogue(&source, &platform, &options).map_err(ReadBaseError::Image)?;
    let env = catalogue.image.config.env.clone();
    Ok((catalogue, env))
}

/// A base image's state as cached on disk, keyed by the platform manifest
/// digest the lock pinned: a re-run that keeps the pin needs neither the
/// registry nor the layers.
#[derive(serde::Serialize, serde::Deserialize)]
struct CachedState {
    env: BTreeMap<String, String>,
    libc: Option<(LibcKind, String)>,
    pythons: Vec<PythonEnv>,
    /// Prefix → records as `CondaRecord::many_to_json` writes them.
    conda: BTreeMap<String, String>,
    dists: BTreeMap<String, BTreeMap<String, String>>,
    warnings: Vec<String>,
    #[serde(default)]
    apt_files: BTreeMap<String, Vec<u8>>,
    #[serde(default)]
    conda_files: BTreeMap<String, String>,
    #[serde(default)]
    user: Option<String>,
    /// The platform manifest digest it was derived from (its key).
    #[serde(default)]
    source: String,
    /// `sha256:` over the entry with this field empty: an entry changed
    /// after it was written (a damaged or shared cache) is dropped and the
    /// base read again, so no cache entry can change a lock.
    #[serde(default)]
    checksum: String,
}

impl CachedState {
    fn computed_checksum(&self) -> Option<String> {
        let mut bare = serde_json::to_value(self).ok()?;
        bare["checksum"] = serde_json::Value::String(String::new());
        let text = serde_json::to_string(&bare).ok()?;
        Some(crate::oci::Digest::sha256_of(text.as_bytes()).to_string())
    }
}

/// Where the state of the image with platform manifest `digest` is cached.
fn cache_path(cache_dir: &std::path::Path, digest: &str) -> Option<std::path::PathBuf> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| cache_dir.join("base-states-v5").join(format!("{hex}.json")))
}

impl PlatformState {
    /// The cached state of the base whose platform manifest is `digest`.
    pub fn load_cached(cache_dir: &std::path::Path, digest: &str, platform: &str) -> Option<Self> {
        let path = cache_path(cache_dir, digest)?;
        let text = fs_err::read_to_string(&path).ok()?;
        let cached: Option<CachedState> = serde_json::from_str(&text).ok();
        let Some(cached) = cached.filter(|c| {
            c.source == digest && c.computed_checksum().as_deref() == Some(c.checksum.as_str())
        }) else {
            // Damaged, tampered or derived from another image: read the
            // base again.
            let _ = fs_err::remove_file(&path);
            return None;
        };
        let mut conda = BTreeMap::new();
        for (prefix, json) in cached.conda {
            let records = CondaRecord::many_from_json(&prefix, &json).ok()?;
            conda.insert(
                prefix,
                records
                    .into_iter()
                    .map(|r| (r.name().to_string(), r))
                    .collect(),
            );
        }
        Some(PlatformState {
            platform: platform.to_string(),
            env: cached.env,
            libc: cached.libc,
            pythons: cached.pythons,
            conda,
            dists: cached.dists,
            warnings: cached.warnings,
            apt_files: cached.apt_files,
            apt_installed: None,
            apt_unknown: None,
            rpm_installed: None,
            rpm_modules: None,
            apk_installed: None,
            apk_world: None,
            apk_unknown: None,
            conda_files: cached.conda_files,
            user: cached.user,
            base_unknown: None,
        })
    }

    /// Caches this base state under its platform manifest digest. Failing
    /// to write a cache is not an error of the freeze.
    pub fn store_cached(&self, cache_dir: &std::path::Path, digest: &str) {
        let Some(path) = cache_path(cache_dir, digest) else {
            return;
        };
        let cached = CachedState {
            env: self.env.clone(),
            libc: self.libc.clone(),
            pythons: self.pythons.clone(),
            conda: self
                .conda
                .iter()
                .map(|(p, r)| {
                    let records: Vec<CondaRecord> = r.values().cloned().collect();
                    (p.clone(), CondaRecord::many_to_json(&records))
                })
                .collect(),
            dists: self.dists.clone(),
            warnings: self.warnings.clone(),
            apt_files: self.apt_files.clone(),
            conda_files: self.conda_files.clone(),
            user: self.user.clone(),
            source: digest.to_string(),
            checksum: String::new(),
        };
        let mut cached = cached;
        let Some(checksum) = cached.computed_checksum() else {
            return;
        };
        cached.checksum = checksum;
        if let Ok(text) = serde_json::to_string(&cached) {
            let _ = crate::lock::write_atomic(&path, text.as_bytes());
        }
    }
}

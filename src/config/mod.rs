//! Runtime configuration: `imagelock.toml`, and zero-config use on bare paths.
//!
//! Paths in the file are relative to the file's directory. Unknown keys and
//! wrong types are errors that name the file, line and column.

pub mod pip;
pub mod read;
pub mod redact;
pub mod registries_conf;
pub mod yaml;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::diagnostic::{Diagnostic, Location, Span};

/// The file name looked for in the current directory and its parents.
pub const CONFIG_FILE: &str = "imagelock.toml";

/// Platforms locked when nothing else is configured.
pub const DEFAULT_PLATFORM: &str = "linux/amd64";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Box<Diagnostic>),
}

impl ConfigError {
    fn at(path: &Path, text: &str, span: Span, message: String, hint: Option<String>) -> Self {
        ConfigError::Invalid(Box::new(Diagnostic {
            message,
            location: Location::of(path, text, span.start),
            span,
            hint,
        }))
    }

    /// The diagnostic, when the error points into the file.
    pub fn diagnostic(&self) -> Option<&Diagnostic> {
        match self {
            ConfigError::Invalid(d) => Some(d),
            ConfigError::Read { .. } => None,
        }
    }
}

/// `imagelock.toml` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawConfig {
    lock_dir: Option<Spanned<String>>,
    cache_dir: Option<Spanned<String>>,
    #[serde(default)]
    platforms: Vec<Spanned<String>>,
    #[serde(default)]
    images: BTreeMap<String, Spanned<RawImage>>,
    #[serde(default)]
    conda: CondaConfig,
    #[serde(default)]
    pypi: PypiConfig,
    #[serde(default)]
    registries: BTreeMap<String, RegistryConfig>,
    network: Option<Spanned<NetworkConfig>>,
    #[serde(default)]
    limits: LimitsConfig,
    #[serde(default)]
    apt: AptConfig,
    #[serde(default)]
    apptainer: ApptainerConfig,
    #[serde(default)]
    steps: StepsConfig,
    #[serde(default)]
    rewrite: RewriteConfig,
    #[serde(default)]
    accept_unlocked: Vec<AcceptUnlocked>,
}

/// `[apt]`: how apt archives are reached.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AptConfig {
    /// Archive URI → mirror URI (`"http://deb.debian.org/debian" =
    /// "https://mirror.example/debian"`): fetched from the mirror, recorded
    /// under the archive's URI, checked against the image's keys as ever.
    /// A mirror that is a path (no `scheme://`) is a local directory,
    /// relative to the configuration file.
    #[serde(default)]
    pub mirrors: BTreeMap<String, String>,
}

impl AptConfig {
    /// The mirror pairs with local paths made `file://` URLs: relative ones
    /// resolved against `root` (the configuration file's directory).
    pub fn mirrors_from(&self, root: &Path) -> Vec<(String, String)> {
        self.mirrors
            .iter()
            .map(|(from, to)| {
                if to.contains("://") {
                    return (from.clone(), to.clone());
                }
                let path = root.join(to.strip_prefix("file:").unwrap_or(to));
                let abs = path
                    .canonicalize()
                    .or_else(|_| std::path::absolute(&path))
                    .unwrap_or(path);
                (from.clone(), format!("file://{}", abs.display()))
            })
            .collect()
    }
}

/// `[apptainer]`: the services Apptainer definition files pull from.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ApptainerConfig {
    /// The Library service `Bootstrap: library` pulls from when the
    /// definition names none (no `Library:` header, no host in `From:`);
    /// [`DEFAULT_LIBRARY`] when unset. Set it to the `apptainer remote`
    /// endpoint your builds use.
    #[serde(default)]
    pub library: Option<String>,
}

/// The Library service used when neither the definition nor
/// `[apptainer] library` names one: Sylabs' public library.
pub const DEFAULT_LIBRARY: &str = "https://library.sylabs.io";

impl ApptainerConfig {
    /// The configured Library URL, or [`DEFAULT_LIBRARY`].
    pub fn library_url(&self) -> &str {
        self.library.as_deref().unwrap_or(DEFAULT_LIBRARY)
    }
}

/// `[rewrite]`: what `rewrite` writes besides pins.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RewriteConfig {
    /// How apt steps are made reproducible: `pins` (every package
    /// `name=version`, the default) or `pins+snapshot` (also the archives
    /// at the lock's snapshot, for versions that left the live archive).
    #[serde(default)]
    pub apt: AptRewrite,
    /// Check each `curl -o`/`wget -O` download the lock pins with
    /// `sha256sum -c` (as `rewrite --check-downloads`).
    #[serde(default)]
    pub checksum_downloads: bool,
}

/// See [`RewriteConfig::apt`].
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
pub enum AptRewrite {
    #[default]
    #[serde(rename = "pins")]
    Pins,
    #[serde(rename = "pins+snapshot")]
    PinsSnapshot,
}

/// `[steps]`: how install steps are read.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct StepsConfig {
    /// Programs whose arguments are a conda or pip command, by the manager
    /// they run (`rapids-mamba-retry = "mamba"`: `rapids-mamba-retry
    /// install -y cudf` is `mamba install -y cudf`). One of `conda`,
    /// `mamba`, `micromamba`, `pip`.
    #[serde(default)]
    pub wrappers: BTreeMap<String, WrappedManager>,
}

/// The installer a configured wrapper runs.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum WrappedManager {
    Conda,
    Mamba,
    Micromamba,
    Pip,
}

/// A step coverage names as not locked that the repository accepts on
/// purpose (`accept-unlocked`): by the line of the image's definition file
/// (`30`), or by a glob over the command as written (`"curl * | bash"`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum AcceptUnlocked {
    Line(u32),
    Pattern(String),
}

/// `[limits]`: bounds on what imagelock reads from images, in bytes (the
/// ratio is a plain number). Unset keys keep the defaults in the README.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LimitsConfig {
    /// Largest uncompressed layer.
    pub max_layer_size: Option<u64>,
    /// Largest metadata file collected from an image.
    pub max_file_size: Option<u64>,
    /// Largest uncompressed/compressed ratio of a layer (0: none).
    pub max_decompression_ratio: Option<u64>,
    /// Largest total of metadata text collected from one image.
    pub max_collected_text: Option<u64>,
    /// Largest sdist or direct-URL archive downloaded (streamed to a
    /// temporary file and hashed on the way) [default: 16 GiB].
    pub max_archive_size: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawImage {
    file: Spanned<String>,
    context: Option<String>,
    #[serde(default)]
    build_args: BTreeMap<String, String>,
    #[serde(default)]
    platforms: Vec<Spanned<String>>,
    target: Option<String>,
    #[serde(rename = "ref")]
    reference: Option<String>,
    #[serde(default)]
    overrides: TargetOverrides,
    #[serde(default)]
    accept_unlocked: Vec<AcceptUnlocked>,
}

/// Facts about the target environment that override what is read from the
/// base image.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TargetOverrides {
    /// Python version, e.g. `3.11.9`.
    pub python: Option<String>,
    /// glibc version, e.g. `2.36` (manylinux tags, `__glibc`).
    pub glibc: Option<String>,
    /// CUDA driver version for `__cuda`, e.g. `12.4`.
    pub cuda: Option<String>,
    /// Microarchitecture for `__archspec`, e.g. `skylake` [default: the
    /// platform's generic one, `x86_64`].
    pub archspec: Option<String>,
    /// Conda prefix to install into when a command names none.
    pub conda_prefix: Option<String>,
}

/// Conda channel settings (as in `.condarc`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CondaConfig {
    /// Base URL for channel names [default: https://conda.anaconda.org].
    pub channel_alias: Option<String>,
    /// Channels used when a command names none.
    #[serde(default)]
    pub channels: Vec<String>,
    /// `strict` (default), `flexible` or `disabled`, as conda means them.
    pub channel_priority: Option<ChannelPriority>,
    /// Where a channel name points instead of `channel_alias/name`
    /// (`file://` paths are relative to the configuration file).
    #[serde(default)]
    pub custom_channels: BTreeMap<String, String>,
    /// Whether every `python` record depends on `pip`, as conda, mamba and
    /// micromamba make it [default: true, as they do].
    pub add_pip_as_python_dependency: Option<bool>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ChannelPriority {
    /// A package comes only from the first channel that has it.
    #[default]
    Strict,
    /// Higher-priority channels are used up before a lower one is tried.
    Flexible,
    /// Every channel competes by version.
    Disabled,
}

/// Python package index settings.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PypiConfig {
    /// [default: https://pypi.org/simple]
    pub index_url: Option<String>,
    #[serde(default)]
    pub extra_index_urls: Vec<String>,
    /// pip's `keyring-provider`: `subprocess` asks the `keyring` program on
    /// PATH for the password of an index login that has a user and none;
    /// `disabled` never does. Over the host's `PIP_KEYRING_PROVIDER`
    /// [default: the host's, else disabled].
    pub keyring_provider: Option<KeyringProvider>,
}

/// The keyring providers imagelock runs (pip's `import` and `auto` need the
/// keyring package inside pip's own environment, which imagelock has not).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum KeyringProvider {
    Disabled,
    Subprocess,
}

impl KeyringProvider {
    /// The value as pip writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyringProvider::Disabled => "disabled",
            KeyringProvider::Subprocess => "subprocess",
        }
    }
}

/// How imagelock talks to every service (`[network]`).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NetworkConfig {
    /// Seconds a service may stay silent: before it answers, and between
    /// pieces of a body (a download that keeps flowing is never cut)
    /// [default: 30]. `--timeout` overrides it.
    pub timeout: Option<u64>,
}

/// Settings for one registry host (as in containers' `registries.conf`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RegistryConfig {
    /// Use this location instead of the registry: a host or `oci:DIR`
    /// (a directory of OCI layouts, one per repository).
    pub location: Option<String>,
    /// Mirrors tried before the registry.
    #[serde(default)]
    pub mirrors: Vec<MirrorConfig>,
    /// Allow plain HTTP (loopback hosts always may).
    #[serde(default)]
    pub insecure: bool,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MirrorConfig {
    pub location: String,
    /// `digest-only` (default): tags are resolved at the source.
    #[serde(default)]
    pub pull_from_mirror: PullFromMirror,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum PullFromMirror {
    #[default]
    DigestOnly,
    TagOnly,
    All,
}

/// One image to lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageConfig {
    pub name: String,
    /// The definition file.
    pub file: PathBuf,
    /// The build context [default: the definition file's directory].
    pub context: PathBuf,
    pub build_args: BTreeMap<String, String>,
    pub platforms: Vec<String>,
    /// The stage to build (`docker build --target`).
    pub target: Option<String>,
    /// The name this image is published as, so that other images of the
    /// repository that build `FROM` it are recognised.
    pub reference: Option<String>,
    pub overrides: TargetOverrides,
    /// `[steps] wrappers` of the configuration.
    pub wrappers: BTreeMap<String, WrappedManager>,
    /// Steps accepted unlocked on purpose: this image's entries, then the
    /// top-level ones.
    pub accept_unlocked: Vec<AcceptUnlocked>,
}

/// The whole runtime configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The configuration file, if one was used.
    pub path: Option<PathBuf>,
    /// Directory relative paths are resolved against.
    pub root: PathBuf,
    pub lock_dir: PathBuf,
    pub cache_dir: PathBuf,
    pub images: Vec<ImageConfig>,
    pub conda: CondaConfig,
    pub pypi: PypiConfig,
    pub registries: BTreeMap<String, RegistryConfig>,
    pub network: NetworkConfig,
    pub limits: LimitsConfig,
    pub apt: AptConfig,
    pub apptainer: ApptainerConfig,
    pub steps: StepsConfig,
    pub rewrite: RewriteConfig,
}

impl Config {
    /// The registries to use: `[registries]` of `imagelock.toml` over the
    /// host's `registries.conf` (see [`registries_conf`]), registry by
    /// registry.
    pub fn registries_with_host(
        &self,
    ) -> Result<BTreeMap<String, RegistryConfig>, registries_conf::RegistriesConfError> {
        let host = registries_conf::RegistriesConf::load(&|k| std::env::var(k).ok())?;
        Ok(host.under(&self.registries))
    }
}

impl Config {
    /// Reads a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = read::read_regular_to_string(path, read::MAX_INPUT_FILE).map_err(|source| {
            ConfigError::Read {
                path: path.to_path_buf(),
                source,
            }
        })?;
        Self::parse(path, &text)
    }

    /// Parses the text of a configuration file read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let span = e
                .span()
                .map_or(Span::default(), |r| Span::new(r.start, r.end));
            let hint = did_you_mean(e.message()).map_or_else(
                || "see the README's configuration section for every key".to_string(),
                |key| format!("did you mean `{key}`?"),
            );
            ConfigError::at(path, text, span, e.message().to_string(), Some(hint))
        })?;
        let root = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let span_of = |r: std::ops::Range<usize>| Span::new(r.start, r.end);

        let check_platform = |p: &Spanned<String>| -> Result<String, ConfigError> {
            validate_platform(p.get_ref()).map_err(|hint| {
                ConfigError::at(
                    path,
                    text,
                    span_of(p.span()),
                    format!("`{}` is not a platform", p.get_ref()),
                    Some(hint),
                )
            })
        };
        let mut default_platforms = raw
            .platforms
            .iter()
            .map(check_platform)
            .collect::<Result<Vec<_>, _>>()?;
        if default_platforms.is_empty() {
            default_platforms.push(DEFAULT_PLATFORM.to_string());
        }

        let mut images = Vec::new();
        for (name, image) in raw.images {
            let span = span_of(image.span());
            let image = image.into_inner();
            if !is_image_name(&name) {
                return Err(ConfigError::at(
                    path,
                    text,
                    span,
                    format!("`{name}` is not a usable image name"),
                    Some("use letters, digits, `-`, `_` and `.`; it names the lockfile".into()),
                ));
            }
            let file = root.join(image.file.get_ref());
            let context = image.context.as_ref().map_or_else(
                || {
                    file.parent()
                        .map_or_else(|| root.clone(), Path::to_path_buf)
                },
                |c| root.join(c),
            );
            let platforms = if image.platforms.is_empty() {
                default_platforms.clone()
            } else {
                image
                    .platforms
                    .iter()
                    .map(check_platform)
                    .collect::<Result<Vec<_>, _>>()?
            };
            images.push(ImageConfig {
                name,
                file,
                context,
                build_args: image.build_args,
                platforms,
                target: image.target,
                reference: image.reference,
                overrides: image.overrides,
                wrappers: raw.steps.wrappers.clone(),
                accept_unlocked: image
                    .accept_unlocked
                    .into_iter()
                    .chain(raw.accept_unlocked.iter().cloned())
                    .collect(),
            });
        }

        let network_span = raw.network.as_ref().map(|n| span_of(n.span()));
        let network = raw.network.map(Spanned::into_inner).unwrap_or_default();
        if let (Some(0), Some(network_span)) = (network.timeout, network_span) {
            return Err(ConfigError::at(
                path,
                text,
                network_span,
                "`[network] timeout` is `0`".into(),
                Some(
                    "give the seconds a service may stay silent, for example `timeout = 60`".into(),
                ),
            ));
        }
        let lock_dir = raw
            .lock_dir
            .map_or_else(|| root.join("lockfiles"), |d| root.join(d.get_ref()));
        let cache_dir = raw
            .cache_dir
            .map_or_else(default_cache_dir, |d| root.join(d.get_ref()));
        Ok(Config {
            path: Some(path.to_path_buf()),
            root,
            lock_dir,
            cache_dir,
            images,
            conda: raw.conda,
            pypi: raw.pypi,
            registries: raw.registries,
            network,
            limits: raw.limits,
            apt: raw.apt,
            apptainer: raw.apptainer,
            steps: raw.steps,
            rewrite: raw.rewrite,
        })
    }

    /// Configuration for bare paths with no `imagelock.toml`: each file is an
    /// image named after its directory, locked beside it in `lockfiles/`.
    pub fn zero(paths: &[PathBuf]) -> Config {
        let root = PathBuf::from(".");
        let images = paths
            .iter()
            .map(|file| ImageConfig {
                name: image_name_for(file),
                file: file.clone(),
                context: file
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
                build_args: BTreeMap::new(),
                platforms: vec![DEFAULT_PLATFORM.to_string()],
                target: None,
                reference: None,
                overrides: TargetOverrides::default(),
                wrappers: BTreeMap::new(),
                accept_unlocked: Vec::new(),
            })
            .collect();
        Config {
            path: None,
            lock_dir: root.join("lockfiles"),
            root,
            cache_dir: default_cache_dir(),
            images,
            conda: CondaConfig::default(),
            pypi: PypiConfig::default(),
            registries: BTreeMap::new(),
            network: NetworkConfig::default(),
            limits: LimitsConfig::default(),
            apt: AptConfig::default(),
            apptainer: ApptainerConfig::default(),
            steps: StepsConfig::default(),
            rewrite: RewriteConfig::default(),
        }
    }

    /// Where the lock of image `name` lives: `{lock_dir}/{name}.lock`.
    pub fn lock_path(&self, name: &str) -> PathBuf {
        self.lock_dir.join(format!("{name}.lock"))
    }

    /// `imagelock.toml` in `dir` or the nearest parent that has one.
    pub fn discover(dir: &Path) -> Option<PathBuf> {
        dir.ancestors()
            .map(|d| d.join(CONFIG_FILE))
            .find(|p| p.is_file())
    }
}

/// An image name derived from a definition file: its directory's name, or
/// the file stem for definition files named after their image.
pub fn image_name_for(file: &Path) -> String {
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("image");
    let generic = matches!(
        stem.to_ascii_lowercase().as_str(),
        "dockerfile" | "containerfile" | "singularity" | "apptainer"
    );
    // `Dockerfile.gpu` is an image of its own beside `Dockerfile`: the
    // suffix goes into the name (`svc-gpu`); `.def` only says the kind.
    let suffix = file
        .extension()
        .and_then(|e| e.to_str())
        .filter(|e| generic && !e.eq_ignore_ascii_case("def"));
    let name = if generic {
        let dir = file
            .canonicalize()
            .ok()
            .and_then(|p| {
                p.parent()
                    .and_then(|d| d.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| stem.to_string());
        match suffix {
            Some(s) => format!("{dir}-{s}"),
            None => dir,
        }
    } else {
        stem.to_string()
    };
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// For serde's ``unknown field `x`, expected one of `a`, `b` `` message: the
/// expected key closest to the unknown one, if it is close.
fn did_you_mean(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (unknown, expected) = rest.split_once('`')?;
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|k| (edit_distance(unknown, k), k))
        .filter(|&(d, k)| d <= 2.max(k.len() / 3))
        .min()
        .map(|(_, k)| k.to_string())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

fn is_image_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// Checks `os/arch[/variant]`; the error is a hint.
pub fn validate_platform(p: &str) -> Result<String, String> {
    let parts: Vec<&str> = p.split('/').collect();
    let ok = (2..=3).contains(&parts.len())
        && parts
            .iter()
            .all(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    if ok {
        Ok(p.to_string())
    } else {
        Err("write `os/arch` or `os/arch/variant`, e.g. `linux/amd64` or `linux/arm64/v8`".into())
    }
}

fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("IMAGELOCK_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("imagelock");
    }
    std::env::var_os("HOME").map_or_else(
        || std::env::temp_dir().join("imagelock-cache"),
        |h| PathBuf::from(h).join(".cache").join("imagelock"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("repo/imagelock.toml"), text)
    }

    #[test]
    fn paths_are_relative_to_the_file() {
        let c = parse("[images.driver]\nfile = \"driver/Dockerfile\"\n").unwrap();
        assert_eq!(c.images[0].file, Path::new("repo/driver/Dockerfile"));
        assert_eq!(c.images[0].context, Path::new("repo/driver"));
        assert_eq!(c.images[0].platforms, vec!["linux/amd64"]);
        assert_eq!(c.lock_dir, Path::new("repo/lockfiles"));
    }

    #[test]
    fn a_mirror_that_is_a_path_is_a_directory_beside_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("world/rpm")).unwrap();
        let c = Config::parse(
            &dir.path().join("imagelock.toml"),
            "[apt.mirrors]\n\"https://cdn.example/ubi\" = \"world/rpm\"\n\
             \"http://deb.example/debian\" = \"https://mirror.example/debian\"\n\
             \"http://old.example\" = \"file:missing/dir\"\n",
        )
        .unwrap();
        let pairs: BTreeMap<String, String> = c.apt.mirrors_from(&c.root).into_iter().collect();
        let root = dir.path().canonicalize().unwrap();
        assert_eq!(
            pairs["https://cdn.example/ubi"],
            format!("file://{}", root.join("world/rpm").display())
        );
        assert_eq!(
            pairs["http://deb.example/debian"],
            "https://mirror.example/debian"
        );
        // Not there (yet): still an absolute path, never a host name.
        assert!(
            pairs["http://old.example"].starts_with("file:///")
                && pairs["http://old.example"].ends_with("/missing/dir"),
            "{pairs:?}"
        );
    }

    #[test]
    fn unknown_key_names_line_and_column() {
        let err = parse("[images.driver]\nfile = \"Dockerfile\"\nplatfroms = []\n").unwrap_err();
        let d = err.diagnostic().unwrap();
        assert_eq!((d.location.line, d.location.column), (3, 1));
        assert!(d.message.contains("platfroms"), "{}", d.message);
    }

    #[test]
    fn bad_platform_points_at_the_value() {
        let err = parse("platforms = [\"linux\"]\n").unwrap_err();
        let d = err.diagnostic().unwrap();
        assert_eq!((d.location.line, d.location.column), (1, 14));
    }
}

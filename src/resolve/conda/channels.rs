//! Channels as users write them, turned into URLs the way conda does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use reqwest::Url;

use crate::config::yaml::{YamlNode, parse_yaml};
use crate::config::{ChannelPriority, CondaConfig};
use crate::solve::conda::CondaSpec;

use super::ResolveCondaError;

/// conda's default channel alias.
pub const DEFAULT_CHANNEL_ALIAS: &str = "https://conda.anaconda.org";

/// What `defaults` stands for on Linux.
pub const DEFAULT_CHANNELS: [&str; 2] = [
    "https://repo.anaconda.com/pkgs/main",
    "https://repo.anaconda.com/pkgs/r",
];

/// The channel settings of a `.condarc`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Condarc {
    pub channel_alias: Option<String>,
    pub channels: Vec<String>,
    pub custom_channels: BTreeMap<String, String>,
    pub channel_priority: Option<ChannelPriority>,
    /// `add_pip_as_python_dependency`.
    pub add_pip_as_python_dependency: Option<bool>,
    /// `pip_interop_enabled`.
    pub pip_interop_enabled: Option<bool>,
    /// `pinned_packages`: match specs every solve keeps to.
    pub pinned_packages: Vec<String>,
}

impl Condarc {
    /// Parses `.condarc` text read from `path`. Keys other than the channel
    /// settings are ignored.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ResolveCondaError> {
        let root = parse_yaml(path, text).map_err(|e| ResolveCondaError::Condarc {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let mut rc = Condarc::default();
        let Some(root) = root else { return Ok(rc) };
        let scalar = |n: &YamlNode| n.as_scalar().map(|v| v.value.clone());
        rc.channel_alias = root.get("channel_alias").and_then(scalar);
        if let Some(YamlNode::Sequence(items, _)) = root.get("channels") {
            rc.channels = items.iter().filter_map(scalar).collect();
        }
        if let Some(YamlNode::Sequence(items, _)) = root.get("pinned_packages") {
            rc.pinned_packages = items.iter().filter_map(scalar).collect();
        }
        if let Some(YamlNode::Mapping(entries, _)) = root.get("custom_channels") {
            for (k, v) in entries {
                if let (Some(k), Some(v)) = (scalar(k), scalar(v)) {
                    rc.custom_channels.insert(k, v);
                }
            }
        }
        rc.channel_priority = match root.get("channel_priority").and_then(scalar) {
            None => None,
            Some(v) => Some(
                parse_priority(&v).ok_or_else(|| ResolveCondaError::Condarc {
                    path: path.to_path_buf(),
                    message: format!("unknown channel_priority `{v}`"),
                })?,
            ),
        };
        rc.pip_interop_enabled = match root.get("pip_interop_enabled").and_then(scalar) {
            None => None,
            Some(v) => Some(parse_bool(&v).ok_or_else(|| ResolveCondaError::Condarc {
                path: path.to_path_buf(),
                message: format!("`pip_interop_enabled` is `{v}`, not true or false"),
            })?),
        };
        rc.add_pip_as_python_dependency =
            match root.get("add_pip_as_python_dependency").and_then(scalar) {
                None => None,
                Some(v) => Some(parse_bool(&v).ok_or_else(|| ResolveCondaError::Condarc {
                    path: path.to_path_buf(),
                    message: format!("`add_pip_as_python_dependency` is `{v}`, not true or false"),
                })?),
            };
        Ok(rc)
    }

    /// The host's settings as conda reads them: every file of conda's
    /// search path (see [`condarc_search_path`]), later files first in
    /// `channels` (lists merge, without duplicates), later keys winning in
    /// `custom_channels`, later values winning for the rest; then
    /// `CONDA_CHANNELS` (comma separated), `CONDA_CHANNEL_ALIAS` and
    /// `CONDA_CHANNEL_PRIORITY` over every file. Missing files are fine.
    pub fn load_from_env() -> Result<Self, ResolveCondaError> {
        Condarc::load(&|k| std::env::var(k).ok())
    }

    /// [`Condarc::load_from_env`] over the variables `env` gives.
    pub fn load(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ResolveCondaError> {
        let mut merged = Condarc::from_search_path(&condarc_search_path(env), &|path| {
            let files: Vec<PathBuf> = if path.is_dir() {
                // conda reads a `condarc.d/` directory's YAML files by name.
                let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                    .map(|d| d.flatten().map(|e| e.path()).collect())
                    .unwrap_or_default();
                files.retain(|f| {
                    f.extension().is_some_and(|e| e == "yml" || e == "yaml")
                        || f.file_name()
                            .is_some_and(|n| n == "condarc" || n == ".condarc")
                });
                files.sort();
                files
            } else {
                vec![path.to_path_buf()]
            };
            files
                .into_iter()
                .filter_map(|path| {
                    let text = crate::config::read::read_regular_to_string(
                        &path,
                        crate::config::read::MAX_INPUT_FILE,
                    )
                    .ok()?;
                    Some((path, text))
                })
                .collect()
        })?;
        let var = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        let mut vars = Condarc {
            channel_alias: var("CONDA_CHANNEL_ALIAS"),
            ..Condarc::default()
        };
        if let Some(v) = var("CONDA_CHANNELS") {
            vars.channels = v
                .split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect();
        }
        if let Some(v) = var("CONDA_CHANNEL_PRIORITY") {
            vars.channel_priority =
                Some(
                    parse_priority(&v).ok_or_else(|| ResolveCondaError::Condarc {
                        path: PathBuf::from("$CONDA_CHANNEL_PRIORITY"),
                        message: format!("unknown channel_priority `{v}`"),
                    })?,
                );
        }
        if let Some(v) = var("CONDA_ADD_PIP_AS_PYTHON_DEPENDENCY") {
            vars.add_pip_as_python_dependency =
                Some(parse_bool(&v).ok_or_else(|| ResolveCondaError::Condarc {
                    path: PathBuf::from("$CONDA_ADD_PIP_AS_PYTHON_DEPENDENCY"),
                    message: format!("`{v}` is not true or false"),
                })?);
        }
        merged.merge(vars);
        Ok(merged)
    }

    /// Merges the files of `search` in order; `files` gives the files one
    /// entry of the search path stands for (none, the file, or a
    /// `condarc.d/` directory's files in name order) with their text.
    pub fn from_search_path(
        search: &[PathBuf],
        files: &dyn Fn(&Path) -> Vec<(PathBuf, String)>,
    ) -> Result<Self, ResolveCondaError> {
        let mut merged = Condarc::default();
        for entry in search {
            for (path, text) in files(entry) {
                merged.merge(Condarc::parse(&path, &text)?);
            }
        }
        Ok(merged)
    }

    /// The settings an image's conda reads from its own files (`files`:
    /// absolute path → text, as read from its layers or brought in by
    /// `COPY`), along conda's search path for the image's environment
    /// `env`, with `HOME` from `env`, else the home `/etc/passwd` gives
    /// `user` (name or uid), else `/root` for root. `root_prefix` stands
    /// for `$CONDA_ROOT` (conda's own install, `/opt/conda`). Variables of
    /// `env` (`CONDA_CHANNELS`…) are not applied here: the definition's
    /// `ENV` is read as channel events in order. `copied` gives a file the
    /// definition put at an image path (its context path and text); it
    /// stands in for what the image has there.
    pub fn from_image(
        files: &BTreeMap<String, String>,
        env: &BTreeMap<String, String>,
        user: Option<&str>,
        root_prefix: Option<&str>,
        copied: &dyn Fn(&str) -> Option<(PathBuf, String)>,
    ) -> Result<Self, ResolveCondaError> {
        let home = env
            .get("HOME")
            .filter(|h| !h.is_empty())
            .cloned()
            .or_else(|| passwd_home(files.get("/etc/passwd").map(String::as_str), user));
        let lookup = |k: &str| -> Option<String> {
            match k {
                "HOME" => home.clone(),
                "CONDA_ROOT" => env
                    .get("CONDA_ROOT")
                    .cloned()
                    .or_else(|| root_prefix.map(str::to_string)),
                "XDG_CONFIG_HOME" | "CONDA_PREFIX" | "CONDARC" => env.get(k).cloned(),
                _ => None,
            }
        };
        Condarc::from_search_path(&condarc_search_path(&lookup), &|entry| {
            let at = entry.to_string_lossy().trim_end_matches('/').to_string();
            if let Some(file) = copied(&at) {
                return vec![file];
            }
            if let Some(text) = files.get(&at) {
                return vec![(entry.to_path_buf(), text.clone())];
            }
            let dir = format!("{at}/");
            // A `condarc.d/` directory: its YAML files, by name (the map
            // is sorted).
            files
                .iter()
                .filter(|(p, _)| {
                    p.strip_prefix(&dir).is_some_and(|n| {
                        !n.contains('/')
                            && (n.ends_with(".yml")
                                || n.ends_with(".yaml")
                                || n == "condarc"
                                || n == ".condarc")
                    })
                })
                .map(|(p, t)| (PathBuf::from(p), t.clone()))
                .collect()
        })
    }

    /// Whether any setting is made.
    pub fn is_empty(&self) -> bool {
        *self == Condarc::default()
    }

    pub fn merge(&mut self, other: Condarc) {
        if other.channel_alias.is_some() {
            self.channel_alias = other.channel_alias;
        }
        // As conda merges lists: the later source's entries first.
        if !other.channels.is_empty() {
            let mut channels = other.channels;
            for c in std::mem::take(&mut self.channels) {
                if !channels.contains(&c) {
                    channels.push(c);
                }
            }
            self.channels = channels;
        }
        if !other.pinned_packages.is_empty() {
            let mut pins = other.pinned_packages;
            for p in std::mem::take(&mut self.pinned_packages) {
                if !pins.contains(&p) {
                    pins.push(p);
                }
            }
            self.pinned_packages = pins;
        }
        self.custom_channels.extend(other.custom_channels);
        if other.channel_priority.is_some() {
            self.channel_priority = other.channel_priority;
        }
        if other.add_pip_as_python_dependency.is_some() {
            self.add_pip_as_python_dependency = other.add_pip_as_python_dependency;
        }
        if other.pip_interop_enabled.is_some() {
            self.pip_interop_enabled = other.pip_interop_enabled;
        }
    }
}

/// The home directory of `user` (a name or a uid, optionally `:group`) in
/// `/etc/passwd` text; `/root` for root when the file does not say.
pub fn passwd_home(passwd: Option<&str>, user: Option<&str>) -> Option<String> {
    let user = user
        .map(|u| u.split(':').next().unwrap_or(u).trim())
        .filter(|u| !u.is_empty())
        .unwrap_or("root");
    let found = passwd.and_then(|text| {
        text.lines().find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            (f.len() >= 6 && (f[0] == user || f[2] == user)).then(|| f[5].to_string())
        })
    });
    found
        .filter(|h| !h.is_empty())
        .or_else(|| matches!(user, "root" | "0").then(|| "/root".to_string()))
}

/// conda's `channel_priority` values; conda also takes the old booleans
/// (true: flexible, false: disabled).
/// A boolean as conda reads one from YAML or the environment.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" | "y" => Some(true),
        "false" | "no" | "off" | "0" | "n" => Some(false),
        _ => None,
    }
}

fn parse_priority(v: &str) -> Option<ChannelPriority> {
    match v.trim().to_ascii_lowercase().as_str() {
        "strict" => Some(ChannelPriority::Strict),
        "flexible" | "true" => Some(ChannelPriority::Flexible),
        "disabled" | "false" => Some(ChannelPriority::Disabled),
        _ => None,
    }
}

/// conda's `.condarc` search path on Linux (conda's `SEARCH_PATH`), in the
/// order conda reads it (later sources win): `/etc/conda`, `/var/lib/conda`,
/// `$CONDA_ROOT`, `$XDG_CONFIG_HOME/conda`, `~/.config/conda`, `~/.conda`
/// (each `.condarc`, `condarc`, `condarc.d/`), `~/.condarc`, the active
/// environment `$CONDA_PREFIX` (same three), then `$CONDARC`.
pub fn condarc_search_path(env: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let var = |k: &str| env(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let mut dirs: Vec<PathBuf> = vec!["/etc/conda".into(), "/var/lib/conda".into()];
    dirs.extend(var("CONDA_ROOT"));
    let home = var("HOME");
    dirs.extend(var("XDG_CONFIG_HOME").map(|x| x.join("conda")));
    if let Some(h) = &home {
        dirs.push(h.join(".config").join("conda"));
        dirs.push(h.join(".conda"));
    }
    let mut out = Vec::new();
    let three = |d: &Path, out: &mut Vec<PathBuf>| {
        out.push(d.join(".condarc"));
        out.push(d.join("condarc"));
        out.push(d.join("condarc.d"));
    };
    for d in &dirs {
        three(d, &mut out);
    }
    if let Some(h) = &home {
        out.push(h.join(".condarc"));
    }
    if let Some(p) = var("CONDA_PREFIX") {
        three(&p, &mut out);
    }
    out.extend(var("CONDARC"));
    out
}

/// Effective channel settings: `imagelock.toml` first, then `.condarc`,
/// then conda's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelSettings {
    pub alias: String,
    /// Channels used when a command names none (and after `-c` channels
    /// unless `--override-channels`).
    pub channels: Vec<String>,
    pub custom_channels: BTreeMap<String, String>,
    /// `None`: nothing sets it, the installer's own default applies
    /// (conda's flexible, micromamba's strict: the caller knows which).
    pub priority: Option<ChannelPriority>,
    /// conda's `add_pip_as_python_dependency` (true unless set otherwise).
    pub add_pip: bool,
    /// conda's `pip_interop_enabled` (false unless set otherwise).
    pub pip_interop: bool,
    /// conda's `pinned_packages`: constraints of every solve.
    pub pinned_packages: Vec<String>,
    /// Directory relative `file:` channels resolve against.
    pub root: PathBuf,
}

impl ChannelSettings {
    pub fn new(config: &CondaConfig, condarc: &Condarc, root: &Path) -> Self {
        let mut custom_channels = condarc.custom_channels.clone();
        custom_channels.extend(config.custom_channels.clone());
        Self {
            alias: config
                .channel_alias
                .clone()
                .or_else(|| condarc.channel_alias.clone())
                .unwrap_or_else(|| DEFAULT_CHANNEL_ALIAS.to_string()),
            channels: if config.channels.is_empty() {
                condarc.channels.clone()
            } else {
                config.channels.clone()
            },
            custom_channels,
            priority: config.channel_priority.or(condarc.channel_priority),
            add_pip: config
                .add_pip_as_python_dependency
                .or(condarc.add_pip_as_python_dependency)
                .unwrap_or(true),
            pip_interop: condarc.pip_interop_enabled.unwrap_or(false),
            pinned_packages: condarc.pinned_packages.clone(),
            root: root.to_path_buf(),
        }
    }
}

impl ChannelSettings {
    /// These settings under the base image's own `.condarc` (`image`): its
    /// `channels` replace the configured ones and its `channel_priority`
    /// and `add_pip_as_python_dependency` win, as the image's conda reads
    /// them; `channel_alias` and
    /// `custom_channels` of `imagelock.toml` and the host stay (they
    /// redirect channels to mirrors), the image's fill what they leave.
    pub fn under_image(&self, image: &Condarc) -> ChannelSettings {
        let mut s = self.clone();
        if !image.channels.is_empty() {
            s.channels.clone_from(&image.channels);
        }
        if let Some(p) = image.channel_priority {
            s.priority = Some(p);
        }
        if let Some(add) = image.add_pip_as_python_dependency {
            s.add_pip = add;
        }
        if let Some(interop) = image.pip_interop_enabled {
            s.pip_interop = interop;
        }
        if !image.pinned_packages.is_empty() {
            s.pinned_packages.clone_from(&image.pinned_packages);
        }
        if let Some(alias) = &image.channel_alias
            && s.alias == DEFAULT_CHANNEL_ALIAS
        {
            s.alias.clone_from(alias);
        }
        for (k, v) in &image.custom_channels {
            s.custom_channels
                .entry(k.clone())
                .or_insert_with(|| v.clone());
        }
        s
    }
}

/// The channels one install command asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChannelRequest {
    /// `-c`/`--channel` values in order.
    pub cli: Vec<String>,
    /// `--override-channels`: only the `-c` channels (and the file's).
    pub override_channels: bool,
    /// `channels:` of an environment file.
    pub file: Vec<String>,
    /// Whether the tool falls back to `defaults` when nothing is configured
    /// (conda and mamba do; micromamba does not).
    pub implicit_defaults: bool,
}

/// A channel resolved to its URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CondaChannel {
    /// As written (`conda-forge`).
    pub name: String,
    /// Without a trailing slash (`https://conda.anaconda.org/conda-forge`).
    pub url: String,
}

impl ChannelSettings {
    /// The channels of a command in priority order, with `defaults`
    /// expanded, `nodefaults` applied, duplicates dropped, and channels that
    /// only `channel::pkg` specs name appended. Binds those specs to their
    /// channel URL.
    pub fn resolve(
        &self,
        request: &ChannelRequest,
        specs: &mut [CondaSpec],
    ) -> Result<Vec<CondaChannel>, ResolveCondaError> {
        let mut written: Vec<String> = request.cli.clone();
        written.extend(request.file.iter().cloned());
        if !request.override_channels {
            if self.channels.is_empty() {
                if request.implicit_defaults {
                    written.push("defaults".into());
                }
            } else {
                written.extend(self.channels.iter().cloned());
            }
        }
        let no_defaults = written.iter().any(|c| c == "nodefaults");
        let mut out: Vec<CondaChannel> = Vec::new();
        let mut add = |name: &str, url: String| {
            if !out.iter().any(|c| c.url == url) {
                out.push(CondaChannel {
                    name: name.to_string(),
                    url,
                });
            }
        };
        for name in &written {
            match name.as_str() {
                "nodefaults" => {}
                "defaults" if no_defaults => {}
                "defaults" => {
                    for url in DEFAULT_CHANNELS {
                        add(name, url.to_string());
                    }
                }
                _ => add(name, self.channel_url(name)?),
            }
        }
        for spec in specs.iter_mut() {
            if let Some(name) = spec.channel().map(str::to_string) {
                let url = self.channel_url(&name)?;
                add(&name, url.clone());
                spec.bind_channel(&url)
                    .map_err(|e| ResolveCondaError::Spec(e.to_string()))?;
            }
        }
        if out.is_empty() {
            return Err(ResolveCondaError::NoChannels);
        }
        Ok(out)
    }

    /// The URL of one channel as written.
    pub fn channel_url(&self, written: &str) -> Result<String, ResolveCondaError> {
        let written = written.trim().trim_end_matches('/');
        let invalid = |reason: String| ResolveCondaError::InvalidChannel {
            channel: written.to_string(),
            reason,
        };
        if written.is_empty() {
            return Err(invalid("empty channel".into()));
        }
        let url = if let Some(path) = local_path(written) {
            let path = if path.is_absolute() {
                path
            } else {
                self.root.join(path)
            };
            Url::from_directory_path(&path)
                .map_err(|()| invalid(format!("`{}` is not a usable path", path.display())))?
                .to_string()
        } else if written.contains("://") {
            Url::parse(written)
                .map_err(|e| invalid(e.to_string()))?
                .to_string()
        } else {
            // `name` or `name/label/dev`: the first part may be a custom
            // channel (conda: `custom_channels: {name: base}` → `base/name`).
            let first = written.split('/').next().unwrap_or(written);
            let base = match self.custom_channels.get(first) {
                Some(base) => self.channel_url(base)?,
                None => self.alias.clone(),
            };
            format!("{}/{written}", base.trim_end_matches('/'))
        };
        Ok(url.trim_end_matches('/').to_string())
    }
}

/// A local channel: `file:///abs`, `file:rel`, `/abs`, `./rel`, `../rel`.
fn local_path(written: &str) -> Option<PathBuf> {
    if let Some(rest) = written.strip_prefix("file://") {
        return Some(PathBuf::from(rest));
    }
    if let Some(rest) = written.strip_prefix("file:") {
        return Some(PathBuf::from(rest));
    }
    if written.starts_with('/') || written.starts_with("./") || written.starts_with("../") {
        return Some(PathBuf::from(written));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ChannelSettings {
        ChannelSettings::new(
            &CondaConfig::default(),
            &Condarc::default(),
            Path::new("/repo"),
        )
    }

    fn urls(channels: &[CondaChannel]) -> Vec<&str> {
        channels.iter().map(|c| c.url.as_str()).collect()
    }

    #[test]
    fn names_urls_and_paths() {
        let s = settings();
        assert_eq!(
            s.channel_url("conda-forge").unwrap(),
            "https://conda.anaconda.org/conda-forge"
        );
        assert_eq!(
            s.channel_url("conda-forge/label/dev").unwrap(),
            "https://conda.anaconda.org/conda-forge/label/dev"
        );
        assert_eq!(
            s.channel_url("https://my.host/chan/").unwrap(),
            "https://my.host/chan"
        );
        assert_eq!(
            s.channel_url("file:///srv/chan").unwrap(),
            "file:///srv/chan"
        );
        assert_eq!(
            s.channel_url("file:fixtures/chan").unwrap(),
            "file:///repo/fixtures/chan"
        );
        assert_eq!(s.channel_url("./local").unwrap(), "file:///repo/local");
    }

    #[test]
    fn alias_and_custom_channels_from_config_win_over_condarc() {
        let rc = Condarc::parse(
            Path::new(".condarc"),
            "channel_alias: https://mirror.example/conda\nchannels: [conda-forge, defaults]\ncustom_channels:\n  internal: https://internal.example\nchannel_priority: flexible\n",
        )
        .expect("valid");
        let mut config = CondaConfig::default();
        let s = ChannelSettings::new(&config, &rc, Path::new("/repo"));
        assert_eq!(s.priority, Some(ChannelPriority::Flexible));
        assert_eq!(
            s.channel_url("bioconda").unwrap(),
            "https://mirror.example/conda/bioconda"
        );
        assert_eq!(
            s.channel_url("internal").unwrap(),
            "https://internal.example/internal"
        );
        config.channel_alias = Some("http://127.0.0.1:9/".into());
        config
            .custom_channels
            .insert("internal".into(), "file:chans".into());
        config.channel_priority = Some(ChannelPriority::Strict);
        let s = ChannelSettings::new(&config, &rc, Path::new("/repo"));
        assert_eq!(s.priority, Some(ChannelPriority::Strict));
        assert_eq!(
            s.channel_url("bioconda").unwrap(),
            "http://127.0.0.1:9/bioconda"
        );
        assert_eq!(
            s.channel_url("internal").unwrap(),
            "file:///repo/chans/internal"
        );
    }

    #[test]
    fn order_override_and_nodefaults() {
        let mut s = settings();
        s.channels = vec!["defaults".into()];
        let req = ChannelRequest {
            cli: vec!["conda-forge".into(), "bioconda".into()],
            ..ChannelRequest::default()
        };
        let got = s.resolve(&req, &mut []).unwrap();
        assert_eq!(
            urls(&got),
            [
                "https://conda.anaconda.org/conda-forge",
                "https://conda.anaconda.org/bioconda",
                DEFAULT_CHANNELS[0],
                DEFAULT_CHANNELS[1]
            ]
        );
        let req = ChannelRequest {
            override_channels: true,
            ..req
        };
        assert_eq!(s.resolve(&req, &mut []).unwrap().len(), 2);
        let req = ChannelRequest {
            file: vec!["conda-forge".into(), "nodefaults".into()],
            ..ChannelRequest::default()
        };
        assert_eq!(
            urls(&s.resolve(&req, &mut []).unwrap()),
            ["https://conda.anaconda.org/conda-forge"]
        );
    }

    #[test]
    fn spec_channels_are_added_and_bound() {
        let s = settings();
        let mut specs = vec![CondaSpec::parse("bioconda::samtools").unwrap()];
        let req = ChannelRequest {
            cli: vec!["conda-forge".into()],
            override_channels: true,
            ..ChannelRequest::default()
        };
        let got = s.resolve(&req, &mut specs).unwrap();
        assert_eq!(got[1].url, "https://conda.anaconda.org/bioconda");
    }

    #[test]
    fn micromamba_without_channels_is_an_error() {
        let err = settings()
            .resolve(&ChannelRequest::default(), &mut [])
            .expect_err("no channels");
        assert!(err.to_string().contains("hint:"), "{err}");
    }

    /// conda's search path: system, user (XDG, ~/.config, ~/.conda,
    /// ~/.condarc), `CONDARC`, then variables; lists merge with the later
    /// source first, other values are replaced.
    #[test]
    fn condarc_search_path_and_merge_as_conda() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let w = |rel: &str, text: &str| {
            let p = d.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        w(
            "xdg/conda/.condarc",
            "channels: [xdg]\nchannel_priority: flexible\n",
        );
        w("home/.config/conda/condarc", "channels: [config]\n");
        w(
            "home/.conda/condarc.d/10.yml",
            "channels: [dot-conda-d]\nchannel_alias: https://a.example\n",
        );
        w("home/.conda/condarc.d/ignored.txt", "channels: [nope]\n");
        w("home/.condarc", "channels: [home, xdg]\n");
        w(
            "rc.yml",
            "channels: [condarc]\ncustom_channels: {x: https://x.example}\n",
        );
        let env = |extra: &'static [(&'static str, &'static str)]| {
            let d = d.to_path_buf();
            move |k: &str| match k {
                "HOME" => Some(d.join("home").display().to_string()),
                "XDG_CONFIG_HOME" => Some(d.join("xdg").display().to_string()),
                "CONDARC" => Some(d.join("rc.yml").display().to_string()),
                _ => extra
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_string()),
            }
        };
        let rc = Condarc::load(&env(&[])).unwrap();
        assert_eq!(
            rc.channels,
            ["condarc", "home", "xdg", "dot-conda-d", "config"]
        );
        assert_eq!(rc.channel_alias.as_deref(), Some("https://a.example"));
        assert_eq!(rc.channel_priority, Some(ChannelPriority::Flexible));
        assert_eq!(rc.custom_channels.len(), 1);
        let rc = Condarc::load(&env(&[
            ("CONDA_CHANNELS", "env-a, env-b"),
            ("CONDA_CHANNEL_PRIORITY", "disabled"),
        ]))
        .unwrap();
        assert_eq!(rc.channels[..3], ["env-a", "env-b", "condarc"]);
        assert_eq!(rc.channel_priority, Some(ChannelPriority::Disabled));
        let err = Condarc::load(&env(&[("CONDA_CHANNEL_PRIORITY", "sometimes")])).unwrap_err();
        assert!(err.to_string().contains("sometimes"), "{err}");
    }

    fn image_files(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(p, t)| ((*p).to_string(), (*t).to_string()))
            .collect()
    }

    #[test]
    fn image_condarc_merges_in_conda_search_order() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      mambauser:x:57439:57439::/home/mambauser:/bin/bash\n";
        let files = image_files(&[
            ("/etc/passwd", passwd),
            (
                "/etc/conda/.condarc",
                "channels: [etc-dot]\nchannel_priority: disabled\n",
            ),
            ("/etc/conda/condarc", "channels: [etc-plain]\n"),
            ("/etc/conda/condarc.d/b.yml", "channels: [etc-d-b]\n"),
            ("/etc/conda/condarc.d/a.yml", "channels: [etc-d-a]\n"),
            ("/etc/conda/condarc.d/notes.txt", "channels: [never]\n"),
            (
                "/opt/conda/.condarc",
                "channels: [root-prefix]\nchannel_priority: strict\n",
            ),
            ("/opt/conda/condarc.d/x.yaml", "channels: [root-prefix-d]\n"),
            (
                "/home/mambauser/.config/conda/.condarc",
                "channels: [config-conda]\n",
            ),
            ("/home/mambauser/.conda/.condarc", "channels: [dot-conda]\n"),
            ("/home/mambauser/.condarc", "channels: [home]\n"),
            ("/root/.condarc", "channels: [root-home]\n"),
        ]);
        let env = BTreeMap::new();
        let none = |_: &str| None;
        let rc = Condarc::from_image(&files, &env, Some("mambauser"), Some("/opt/conda"), &none)
            .unwrap();
        // Later sources first: the user's files, then the root prefix's,
        // then /etc/conda's (condarc.d by name).
        assert_eq!(
            rc.channels,
            [
                "home",
                "dot-conda",
                "config-conda",
                "root-prefix-d",
                "root-prefix",
                "etc-d-b",
                "etc-d-a",
                "etc-plain",
                "etc-dot",
            ]
        );
        assert_eq!(rc.channel_priority, Some(ChannelPriority::Strict));
        // The user by uid, with a group; and root's home when no user is set.
        let rc = Condarc::from_image(&files, &env, Some("57439:100"), None, &none).unwrap();
        assert_eq!(rc.channels[0], "home");
        assert!(!rc.channels.iter().any(|c| c.starts_with("root-prefix")));
        let rc = Condarc::from_image(&files, &env, None, Some("/opt/conda"), &none).unwrap();
        assert_eq!(rc.channels[0], "root-home");
        // HOME of the image's environment wins over /etc/passwd.
        let env: BTreeMap<String, String> = [("HOME".to_string(), "/root".to_string())].into();
        let rc = Condarc::from_image(&files, &env, Some("mambauser"), None, &none).unwrap();
        assert_eq!(rc.channels[0], "root-home");
        // A file the definition copied stands in for the image's.
        let copied = |p: &str| {
            (p == "/root/.condarc")
                .then(|| ("ctx/.condarc".into(), "channels: [copied]\n".to_string()))
        };
        let rc = Condarc::from_image(&files, &env, None, None, &copied).unwrap();
        assert_eq!(rc.channels[0], "copied");
        assert!(!rc.channels.iter().any(|c| c == "root-home"));
        // A broken file is an error naming it.
        let bad = image_files(&[("/opt/conda/.condarc", "channel_priority: sometimes\n")]);
        let err = Condarc::from_image(&bad, &BTreeMap::new(), None, Some("/opt/conda"), &none)
            .unwrap_err();
        assert!(err.to_string().contains("/opt/conda/.condarc"), "{err}");
        assert!(
            Condarc::from_image(&BTreeMap::new(), &BTreeMap::new(), None, None, &none)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn image_settings_replace_configured_channels() {
        let host = Condarc {
            channels: vec!["host".into()],
            custom_channels: [("internal".to_string(), "https://mirror.example".to_string())]
                .into(),
            ..Condarc::default()
        };
        let s = ChannelSettings::new(&CondaConfig::default(), &host, Path::new("/repo"));
        let image = Condarc {
            channels: vec!["bioconda".into(), "conda-forge".into()],
            channel_priority: Some(ChannelPriority::Strict),
            custom_channels: [
                ("internal".to_string(), "https://image.example".to_string()),
                ("other".to_string(), "https://other.example".to_string()),
            ]
            .into(),
            ..Condarc::default()
        };
        let u = s.under_image(&image);
        assert_eq!(u.channels, ["bioconda", "conda-forge"]);
        assert_eq!(u.priority, Some(ChannelPriority::Strict));
        assert_eq!(u.custom_channels["internal"], "https://mirror.example");
        assert_eq!(u.custom_channels["other"], "https://other.example");
        assert_eq!(s.under_image(&Condarc::default()), s);
    }

    #[test]
    fn installer_switches_are_read_and_win_from_the_image() {
        let rc = Condarc::parse(
            Path::new("/opt/conda/.condarc"),
            "add_pip_as_python_dependency: false\npip_interop_enabled: yes\n",
        )
        .expect("valid");
        assert_eq!(rc.add_pip_as_python_dependency, Some(false));
        assert_eq!(rc.pip_interop_enabled, Some(true));
        let s = ChannelSettings::new(&CondaConfig::default(), &Condarc::default(), Path::new("/"));
        assert!(s.add_pip && !s.pip_interop, "the installers' defaults");
        let u = s.under_image(&rc);
        assert!(!u.add_pip && u.pip_interop);
        assert!(
            Condarc::parse(Path::new("/x"), "pip_interop_enabled: maybe\n")
                .unwrap_err()
                .to_string()
                .contains("/x")
        );
    }
}

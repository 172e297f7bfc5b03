//! pip's own settings, read as pip reads them: configuration files in pip's
//! order (global, user, site, `PIP_CONFIG_FILE`), then `PIP_*` variables.
//!
//! Each value remembers where it came from, so a message can say which
//! setting chose an index. Layering the levels (step options, the image's
//! ENV, `imagelock.toml`, the host) is [`PipSettings::over`].

use std::collections::BTreeMap;
use std::path::PathBuf;

/// A value and where it was set (`` `PIP_INDEX_URL` in the host environment ``,
/// `` `/etc/pip.conf` [global] ``…).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sourced<T> {
    pub value: T,
    pub from: String,
}

impl<T> Sourced<T> {
    pub fn new(value: T, from: impl Into<String>) -> Self {
        Sourced {
            value,
            from: from.into(),
        }
    }
}

/// The pip settings imagelock follows. `None`: not set at this level.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PipSettings {
    pub index_url: Option<Sourced<String>>,
    pub extra_index_urls: Option<Sourced<Vec<String>>>,
    pub no_index: Option<Sourced<bool>>,
    pub find_links: Option<Sourced<Vec<String>>>,
    pub pre: Option<Sourced<bool>>,
}

/// A pip setting whose value pip would refuse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "{from} is `{value}`, which is not a yes/no value pip accepts\nhint: use 1/0, true/false, yes/no or on/off"
)]
pub struct PipSettingError {
    pub from: String,
    pub value: String,
}

/// The keys imagelock reads, as pip names them in files (`index-url`) and
/// in variables (`PIP_INDEX_URL`).
const KEYS: &[&str] = &[
    "index-url",
    "extra-index-url",
    "no-index",
    "find-links",
    "pre",
];

impl PipSettings {
    /// The host's settings, in pip's order (pip's `configuration.py`):
    /// global files (`$XDG_CONFIG_DIRS/pip/pip.conf`, default `/etc/xdg`,
    /// then `/etc/pip.conf`), user files (`~/.pip/pip.conf`, then
    /// `$XDG_CONFIG_HOME/pip/pip.conf`; skipped when `PIP_CONFIG_FILE` names
    /// a file that exists), the site file (`$VIRTUAL_ENV/pip.conf`), the
    /// file `PIP_CONFIG_FILE` names; later files win key by key, and
    /// `[install]` wins over `[global]` whatever the file. `PIP_*` variables
    /// win over every file. `PIP_CONFIG_FILE=/dev/null` skips every file.
    pub fn from_host(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, PipSettingError> {
        let config_file = env("PIP_CONFIG_FILE").filter(|v| !v.is_empty());
        let mut files: Vec<PathBuf> = Vec::new();
        if config_file.as_deref() != Some("/dev/null") {
            let dirs = env("XDG_CONFIG_DIRS")
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "/etc/xdg".to_string());
            for d in dirs.split(':').filter(|d| !d.is_empty()) {
                files.push(PathBuf::from(d).join("pip").join("pip.conf"));
            }
            files.push("/etc/pip.conf".into());
            let env_file_exists = config_file
                .as_ref()
                .is_some_and(|f| std::path::Path::new(f).exists());
            if !env_file_exists && let Some(home) = env("HOME").filter(|h| !h.is_empty()) {
                files.push(PathBuf::from(&home).join(".pip").join("pip.conf"));
                let xdg = env("XDG_CONFIG_HOME")
                    .filter(|v| !v.is_empty())
                    .map_or_else(|| PathBuf::from(&home).join(".config"), PathBuf::from);
                files.push(xdg.join("pip").join("pip.conf"));
            }
            if let Some(venv) = env("VIRTUAL_ENV").filter(|v| !v.is_empty()) {
                files.push(PathBuf::from(venv).join("pip.conf"));
            }
            if let Some(f) = &config_file {
                files.push(f.into());
            }
        }
        // section -> key -> (value, from): later files replace per key.
        let mut sections: BTreeMap<String, BTreeMap<String, Sourced<String>>> = BTreeMap::new();
        for f in files {
            let Ok(text) = super::read::read_regular_to_string(&f, super::read::MAX_INPUT_FILE)
            else {
                continue;
            };
            for (section, key, value) in parse_pip_conf(&text) {
                let from = format!("`{}` [{section}] {key}", f.display());
                sections
                    .entry(section)
                    .or_default()
                    .insert(key, Sourced::new(value, from));
            }
        }
        let mut s = PipSettings::default();
        for section in ["global", "install"] {
            if let Some(keys) = sections.get(section) {
                s = PipSettings::from_pairs(keys.iter().map(|(k, v)| (k.as_str(), v.clone())))?
                    .over(s);
            }
        }
        Ok(PipSettings::from_vars(env, "in the host environment")?.over(s))
    }

    /// The `PIP_*` variables among `vars` (the host's environment, or the
    /// image's ENV); `place` says whose they are in messages.
    pub fn from_vars(
        vars: &dyn Fn(&str) -> Option<String>,
        place: &str,
    ) -> Result<Self, PipSettingError> {
        let pairs = KEYS.iter().filter_map(|k| {
            let var = format!("PIP_{}", k.to_ascii_uppercase().replace('-', "_"));
            vars(&var)
                .filter(|v| !v.trim().is_empty())
                .map(|v| (*k, Sourced::new(v, format!("`{var}` {place}"))))
        });
        PipSettings::from_pairs(pairs)
    }

    /// uv's variables among `vars`, as `uv pip install` reads them:
    /// `UV_DEFAULT_INDEX` (else the older `UV_INDEX_URL`) is the main index;
    /// `UV_INDEX` (space separated, each `URL` or `NAME=URL`) then
    /// `UV_EXTRA_INDEX_URL` the extra ones; `UV_NO_INDEX`,
    /// `UV_FIND_LINKS`, `UV_PRERELEASE=allow`.
    pub fn from_uv_vars(
        vars: &dyn Fn(&str) -> Option<String>,
        place: &str,
    ) -> Result<Self, PipSettingError> {
        let var = |k: &str| {
            vars(k)
                .filter(|v| !v.trim().is_empty())
                .map(|v| Sourced::new(v, format!("`{k}` {place}")))
        };
        let mut s = PipSettings {
            index_url: var("UV_DEFAULT_INDEX").or_else(|| var("UV_INDEX_URL")),
            ..PipSettings::default()
        };
        let mut extra: Vec<String> = Vec::new();
        let mut from: Vec<String> = Vec::new();
        if let Some(v) = var("UV_INDEX") {
            extra.extend(uv_indexes(&v.value).into_iter().map(|(_, url)| url));
            from.push(v.from);
        }
        if let Some(v) = var("UV_EXTRA_INDEX_URL") {
            extra.extend(split_list(&v.value));
            from.push(v.from);
        }
        if !extra.is_empty() {
            s.extra_index_urls = Some(Sourced::new(extra, from.join(" and ")));
        }
        if let Some(v) = var("UV_NO_INDEX") {
            s.no_index = Some(Sourced::new(yes_no(&v)?, v.from));
        }
        if let Some(v) = var("UV_FIND_LINKS") {
            // uv separates find-links with commas or spaces.
            let links = v
                .value
                .split([',', ' '])
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect();
            s.find_links = Some(Sourced::new(links, v.from));
        }
        if let Some(v) = var("UV_PRERELEASE") {
            s.pre = Some(Sourced::new(v.value.trim() == "allow", v.from));
        }
        Ok(s)
    }

    fn from_pairs<'k>(
        pairs: impl Iterator<Item = (&'k str, Sourced<String>)>,
    ) -> Result<Self, PipSettingError> {
        let mut s = PipSettings::default();
        for (key, v) in pairs {
            let list = || Sourced::new(split_list(&v.value), v.from.clone());
            match key {
                "index-url" => s.index_url = Some(Sourced::new(v.value.trim().to_string(), v.from)),
                "extra-index-url" => s.extra_index_urls = Some(list()),
                "find-links" => s.find_links = Some(list()),
                "no-index" => s.no_index = Some(Sourced::new(yes_no(&v)?, v.from)),
                "pre" => s.pre = Some(Sourced::new(yes_no(&v)?, v.from)),
                _ => {}
            }
        }
        Ok(s)
    }

    /// `self` over `lower`, key by key.
    #[must_use]
    pub fn over(self, lower: PipSettings) -> PipSettings {
        PipSettings {
            index_url: self.index_url.or(lower.index_url),
            extra_index_urls: self.extra_index_urls.or(lower.extra_index_urls),
            no_index: self.no_index.or(lower.no_index),
            find_links: self.find_links.or(lower.find_links),
            pre: self.pre.or(lower.pre),
        }
    }

    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == PipSettings::default()
    }
}

/// The entries of `UV_INDEX`: `(name, url)`, the name when written
/// `NAME=URL`.
pub fn uv_indexes(value: &str) -> Vec<(Option<String>, String)> {
    value
        .split_whitespace()
        .map(|e| match e.split_once('=') {
            Some((name, url)) if !name.contains(':') && !name.contains('/') => {
                (Some(name.to_string()), url.to_string())
            }
            _ => (None, e.to_string()),
        })
        .collect()
}

/// The variable-name form of a uv index name (`UV_INDEX_<NAME>_USERNAME`):
/// upper case, anything not a letter or digit as `_`.
pub fn uv_index_env_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

fn split_list(v: &str) -> Vec<String> {
    v.split_whitespace().map(str::to_string).collect()
}

/// pip's `strtobool`.
fn yes_no(v: &Sourced<String>) -> Result<bool, PipSettingError> {
    match v.value.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" | "t" | "true" | "on" | "1" => Ok(true),
        "n" | "no" | "f" | "false" | "off" | "0" => Ok(false),
        _ => Err(PipSettingError {
            from: v.from.clone(),
            value: v.value.clone(),
        }),
    }
}

/// The `(section, key, value)` triples of a pip.conf that imagelock reads
/// (`[global]` and `[install]`), as Python's configparser reads them:
/// `=` or `:` between key and value, `#`/`;` comments, indented lines
/// continuing the value, keys compared without case and with `_` as `-`.
pub fn parse_pip_conf(text: &str) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = Vec::new();
    let mut section = String::new();
    let mut current: Option<usize> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with(['#', ';']) {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(i) = current {
                out[i].2.push('\n');
                out[i].2.push_str(trimmed);
            }
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            section = name.trim().to_string();
            current = None;
            continue;
        }
        current = None;
        let Some((k, v)) = trimmed.split_once(['=', ':']) else {
            continue;
        };
        let key = k
            .trim()
            .trim_start_matches("--")
            .to_ascii_lowercase()
            .replace('_', "-");
        if !(section == "global" || section == "install") || !KEYS.contains(&key.as_str()) {
            continue;
        }
        out.retain(|(s, k, _)| !(s == &section && k == &key));
        out.push((section.clone(), key, v.trim().to_string()));
        current = Some(out.len() - 1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, String)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn pip_conf_sections_and_continuations() {
        let t = parse_pip_conf(
            "[global]\nindex_url = https://a.example/simple\nextra-index-url =\n    https://b.example/simple\n    https://c.example/simple\n[freeze]\nindex-url = https://ignored\n[install]\npre: yes\n",
        );
        assert_eq!(t.len(), 3, "{t:?}");
        assert_eq!(
            t[0],
            (
                "global".into(),
                "index-url".into(),
                "https://a.example/simple".into()
            )
        );
        assert_eq!(split_list(&t[1].2).len(), 2);
        assert_eq!(t[2], ("install".into(), "pre".into(), "yes".into()));
    }

    /// pip's order: global < user (legacy < XDG) < site < PIP_CONFIG_FILE
    /// < variables, and `[install]` over `[global]` across files.
    #[test]
    fn host_files_in_pips_order() {
        let dir = tempfile::tempdir().unwrap();
        let p = |rel: &str, text: &str| {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
            path.display().to_string()
        };
        p(
            "xdg-dirs/pip/pip.conf",
            "[global]\nindex-url = G\nfind-links = F\n",
        );
        p("home/.pip/pip.conf", "[global]\nindex-url = L\n");
        p(
            "home/.config/pip/pip.conf",
            "[global]\nindex-url = U\nextra-index-url = X\n",
        );
        p("venv/pip.conf", "[global]\nindex-url = S\n");
        let d = dir.path().display().to_string();
        let base = vec![
            ("XDG_CONFIG_DIRS", format!("{d}/xdg-dirs")),
            ("HOME", format!("{d}/home")),
        ];
        let s = PipSettings::from_host(&env_of(&base)).unwrap();
        assert_eq!(s.index_url.unwrap().value, "U");
        assert_eq!(s.find_links.unwrap().value, ["F"]);
        let mut with_venv = base.clone();
        with_venv.push(("VIRTUAL_ENV", format!("{d}/venv")));
        let s = PipSettings::from_host(&env_of(&with_venv)).unwrap();
        assert_eq!(s.index_url.as_ref().unwrap().value, "S");
        assert!(s.index_url.unwrap().from.contains("venv/pip.conf"));
        // PIP_CONFIG_FILE wins over the site file and hides the user files.
        let f = p("env.conf", "[install]\nno-index = true\n");
        let mut with_file = with_venv.clone();
        with_file.push(("PIP_CONFIG_FILE", f));
        let s = PipSettings::from_host(&env_of(&with_file)).unwrap();
        assert_eq!(s.index_url.unwrap().value, "S");
        assert_eq!(s.extra_index_urls, None, "user files are skipped");
        assert!(s.no_index.unwrap().value);
        // [install] in a global file wins over [global] in a later one.
        p("xdg-dirs/pip/pip.conf", "[install]\nindex-url = G\n");
        let s = PipSettings::from_host(&env_of(&base)).unwrap();
        assert_eq!(s.index_url.unwrap().value, "G");
        // Variables win over every file; /dev/null skips the files.
        let mut vars = base.clone();
        vars.push(("PIP_INDEX_URL", "E".into()));
        vars.push(("PIP_PRE", "1".into()));
        let s = PipSettings::from_host(&env_of(&vars)).unwrap();
        assert_eq!(s.index_url.as_ref().unwrap().value, "E");
        assert_eq!(
            s.index_url.unwrap().from,
            "`PIP_INDEX_URL` in the host environment"
        );
        assert!(s.pre.unwrap().value);
        let mut null = base.clone();
        null.push(("PIP_CONFIG_FILE", "/dev/null".into()));
        assert!(PipSettings::from_host(&env_of(&null)).unwrap().is_empty());
    }

    #[test]
    fn a_bad_yes_no_is_refused_with_its_origin() {
        let e = PipSettings::from_vars(
            &env_of(&[("PIP_NO_INDEX", "maybe".into())]),
            "in the image's ENV",
        )
        .unwrap_err();
        assert_eq!(e.from, "`PIP_NO_INDEX` in the image's ENV");
    }
}

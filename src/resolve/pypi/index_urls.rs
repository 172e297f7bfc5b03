//! Which indexes a `pip install` uses, and with what credentials, in pip's
//! order of precedence: the command's flags, `PIP_INDEX_URL` /
//! `PIP_EXTRA_INDEX_URL`, pip.conf, then imagelock's configuration.

use std::collections::HashMap;
use std::path::PathBuf;

use reqwest::Url;

use super::fetch::{Login, parse_netrc};
use crate::config::PypiConfig;

/// The default index.
pub const PYPI: &str = "https://pypi.org/simple";

/// Index settings from the environment and files pip reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PipSettings {
    pub index_url: Option<String>,
    pub extra_index_urls: Vec<String>,
}

impl PipSettings {
    /// `PIP_INDEX_URL`, `PIP_EXTRA_INDEX_URL` (space separated), over
    /// pip.conf's `[global]` (`PIP_CONFIG_FILE`, else `/etc/pip.conf` then
    /// `~/.config/pip/pip.conf`, later files winning).
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Self {
        let mut s = PipSettings::default();
        let mut files: Vec<PathBuf> = Vec::new();
        if let Some(f) = env("PIP_CONFIG_FILE") {
            files.push(f.into());
        } else {
            files.push("/etc/pip.conf".into());
            if let Some(home) = env("HOME") {
                let xdg = env("XDG_CONFIG_HOME")
                    .map_or_else(|| PathBuf::from(&home).join(".config"), PathBuf::from);
                files.push(xdg.join("pip").join("pip.conf"));
                files.push(PathBuf::from(home).join(".pip").join("pip.conf"));
            }
        }
        for f in files {
            if let Ok(text) =
                crate::config::read::read_regular_to_string(&f, crate::config::read::MAX_INPUT_FILE)
            {
                s.merge(&parse_pip_conf(&text));
            }
        }
        s.merge(&PipSettings {
            index_url: env("PIP_INDEX_URL").filter(|v| !v.is_empty()),
            extra_index_urls: env("PIP_EXTRA_INDEX_URL")
                .map(|v| v.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default(),
        });
        s
    }

    fn merge(&mut self, over: &PipSettings) {
        if over.index_url.is_some() {
            self.index_url.clone_from(&over.index_url);
        }
        if !over.extra_index_urls.is_empty() {
            self.extra_index_urls.clone_from(&over.extra_index_urls);
        }
    }
}

/// Reads `[global]` (and `[install]`) `index-url` / `extra-index-url` of a
/// pip.conf; values may continue on indented lines.
pub fn parse_pip_conf(text: &str) -> PipSettings {
    let mut s = PipSettings::default();
    let mut section = String::new();
    let mut key: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with(['#', ';']) {
            continue;
        }
        let relevant = section == "global" || section == "install";
        if line.starts_with([' ', '\t']) {
            if relevant && key.as_deref() == Some("extra-index-url") {
                s.extra_index_urls
                    .extend(trimmed.split_whitespace().map(str::to_string));
            }
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            section = name.trim().to_string();
            key = None;
            continue;
        }
        if let Some((k, v)) = trimmed.split_once(['=', ':']) {
            let k = k.trim().replace('_', "-");
            let v = v.trim();
            key = Some(k.clone());
            if !relevant {
                continue;
            }
            match k.as_str() {
                "index-url" => s.index_url = Some(v.to_string()),
                "extra-index-url" => {
                    s.extra_index_urls = v.split_whitespace().map(str::to_string).collect();
                }
                _ => {}
            }
        }
    }
    s
}

/// The indexes one `pip install` uses, first the main one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexUrls {
    pub urls: Vec<String>,
}

impl IndexUrls {
    /// pip's precedence: the command's `--index-url`/`--extra-index-url`
    /// (`--no-index` gives none), then pip's settings, then imagelock's
    /// configuration, then PyPI.
    pub fn gather(
        cmd_index: Option<&str>,
        cmd_extra: &[String],
        pip: &PipSettings,
        config: &PypiConfig,
    ) -> Self {
        let main = cmd_index
            .map(str::to_string)
            .or_else(|| pip.index_url.clone())
            .or_else(|| config.index_url.clone())
            .unwrap_or_else(|| PYPI.to_string());
        let mut urls = vec![main];
        let extras = if !cmd_extra.is_empty() {
            cmd_extra.to_vec()
        } else if !pip.extra_index_urls.is_empty() {
            pip.extra_index_urls.clone()
        } else {
            config.extra_index_urls.clone()
        };
        for e in extras {
            if !urls.contains(&e) {
                urls.push(e);
            }
        }
        IndexUrls { urls }
    }

    /// Credentials: from `.netrc` (`NETRC` or `~/.netrc`), overridden by
    /// the userinfo of the index URLs themselves.
    pub fn logins(&self, env: &dyn Fn(&str) -> Option<String>) -> HashMap<String, Login> {
        let netrc = env("NETRC")
            .map(PathBuf::from)
            .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".netrc")));
        let mut out = netrc
            .and_then(|p| {
                crate::config::read::read_regular_to_string(&p, crate::config::read::MAX_INPUT_FILE)
                    .ok()
            })
            .map(|t| parse_netrc(&t))
            .unwrap_or_default();
        for u in &self.urls {
            if let Ok(url) = Url::parse(u)
                && !url.username().is_empty()
                && let Some(host) = url.host_str()
            {
                out.insert(
                    host.to_string(),
                    Login {
                        user: url.username().to_string(),
                        password: url.password().map(str::to_string),
                    },
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pip_conf_global_and_continuations() {
        let s = parse_pip_conf(
            "[global]\nindex-url = https://a.example/simple\nextra-index-url =\n    https://b.example/simple\n    https://c.example/simple\n[freeze]\nindex-url = https://ignored\n",
        );
        assert_eq!(s.index_url.as_deref(), Some("https://a.example/simple"));
        assert_eq!(s.extra_index_urls.len(), 2);
    }

    #[test]
    fn precedence() {
        let pip = PipSettings {
            index_url: Some("https://env.example/simple".into()),
            extra_index_urls: vec![],
        };
        let cfg = PypiConfig {
            index_url: Some("https://cfg.example/simple".into()),
            extra_index_urls: vec!["https://cfg-extra.example/simple".into()],
        };
        let u = IndexUrls::gather(None, &[], &pip, &cfg);
        assert_eq!(
            u.urls,
            [
                "https://env.example/simple",
                "https://cfg-extra.example/simple"
            ]
        );
        let u = IndexUrls::gather(Some("https://cmd.example/simple"), &[], &pip, &cfg);
        assert_eq!(u.urls[0], "https://cmd.example/simple");
        let u = IndexUrls::gather(None, &[], &PipSettings::default(), &PypiConfig::default());
        assert_eq!(u.urls, [PYPI]);
    }

    #[test]
    fn env_wins_over_files() {
        let env = |k: &str| match k {
            "PIP_INDEX_URL" => Some("https://env.example/simple".to_string()),
            "PIP_EXTRA_INDEX_URL" => Some("https://x.example https://y.example".to_string()),
            "PIP_CONFIG_FILE" => Some("/nonexistent/pip.conf".to_string()),
            _ => None,
        };
        let s = PipSettings::from_env(&env);
        assert_eq!(s.index_url.as_deref(), Some("https://env.example/simple"));
        assert_eq!(s.extra_index_urls.len(), 2);
    }
}

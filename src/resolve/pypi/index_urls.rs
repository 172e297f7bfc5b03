//! Which indexes a `pip install` uses, and with what credentials. The
//! levels, highest first: the step's own options (and its requirements
//! files'), the image's ENV (`PIP_*`), `imagelock.toml`, the host's pip
//! settings (variables and pip.conf, see [`crate::config::pip`]), PyPI.
//! Each key is taken from the highest level that sets it, as pip layers
//! its own sources; `--extra-index-url` and `--find-links` on the step add
//! to the list of the level below, as pip's appended options do.

use std::collections::HashMap;
use std::path::PathBuf;

use reqwest::Url;

use super::fetch::{Login, parse_netrc};
use crate::config::PypiConfig;
pub use crate::config::pip::{PipSettings, Sourced};

/// The default index.
pub const PYPI: &str = "https://pypi.org/simple";

/// The pip settings of one step, level by level.
#[derive(Clone, Debug, Default)]
pub struct PipLevels {
    pub step: PipSettings,
    pub image: PipSettings,
    pub config: PipSettings,
    pub host: PipSettings,
}

impl PipLevels {
    /// `imagelock.toml`'s `[pypi]` as a level.
    pub fn config_level(config: &PypiConfig) -> PipSettings {
        PipSettings {
            index_url: config
                .index_url
                .clone()
                .map(|u| Sourced::new(u, "`[pypi] index-url` in imagelock.toml")),
            extra_index_urls: (!config.extra_index_urls.is_empty()).then(|| {
                Sourced::new(
                    config.extra_index_urls.clone(),
                    "`[pypi] extra-index-urls` in imagelock.toml",
                )
            }),
            ..PipSettings::default()
        }
    }

    /// What the step's pip uses.
    pub fn effective(&self) -> PipSettings {
        let below = self
            .image
            .clone()
            .over(self.config.clone())
            .over(self.host.clone());
        let mut s = self.step.clone().over(below.clone());
        s.extra_index_urls = append(
            self.step.extra_index_urls.clone(),
            below.extra_index_urls.clone(),
        );
        s.find_links = append(self.step.find_links.clone(), below.find_links);
        s
    }
}

fn append(
    step: Option<Sourced<Vec<String>>>,
    below: Option<Sourced<Vec<String>>>,
) -> Option<Sourced<Vec<String>>> {
    match (step, below) {
        (Some(s), Some(mut b)) => {
            b.value.extend(s.value);
            b.from = format!("{} and {}", b.from, s.from);
            Some(b)
        }
        (s, b) => s.or(b),
    }
}

/// The indexes one `pip install` uses, first the main one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexUrls {
    pub urls: Vec<String>,
}

impl IndexUrls {
    /// The main index (PyPI when nothing sets one), then the extra ones.
    pub fn of(settings: &PipSettings) -> Self {
        let main = settings
            .index_url
            .as_ref()
            .map_or_else(|| PYPI.to_string(), |u| u.value.clone());
        let mut urls = vec![main];
        for e in settings.extra_index_urls.iter().flat_map(|e| &e.value) {
            if !urls.contains(e) {
                urls.push(e.clone());
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
        // uv's named indexes: `UV_INDEX=NAME=URL` with
        // `UV_INDEX_<NAME>_USERNAME` / `_PASSWORD`.
        for (name, u) in env("UV_INDEX")
            .map(|v| crate::config::pip::uv_indexes(&v))
            .unwrap_or_default()
        {
            let Some(name) = name else { continue };
            let key = crate::config::pip::uv_index_env_name(&name);
            let user = env(&format!("UV_INDEX_{key}_USERNAME"));
            let password = env(&format!("UV_INDEX_{key}_PASSWORD"));
            if (user.is_some() || password.is_some())
                && let Ok(url) = Url::parse(&u)
                && let Some(host) = url.host_str()
                && self.urls.iter().any(|i| same_host(i, host))
            {
                out.insert(
                    host.to_string(),
                    Login {
                        user: user.unwrap_or_default(),
                        password,
                    },
                );
            }
        }
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
        // pip's `--keyring-provider subprocess`: a login with a user and no
        // password asks the `keyring` program on PATH.
        if env("PIP_KEYRING_PROVIDER").as_deref() == Some("subprocess") {
            for u in &self.urls {
                let Ok(url) = Url::parse(u) else { continue };
                let Some(host) = url.host_str() else { continue };
                let Some(login) = out.get_mut(host) else {
                    continue;
                };
                if login.password.is_some() || login.user.is_empty() {
                    continue;
                }
                let mut index = url.clone();
                let _ = index.set_username("");
                let _ = index.set_password(None);
                // pip asks for the index URL as configured, without its
                // credentials, then for `host[:port]`.
                let index = index.to_string();
                let netloc = match url.port() {
                    Some(port) => format!("{host}:{port}"),
                    None => host.to_string(),
                };
                login.password = keyring_password(&index, &login.user)
                    .or_else(|| keyring_password(&netloc, &login.user));
            }
        }
        out
    }
}

/// How long `keyring get` may take before it is killed (pip waits forever).
const KEYRING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// `keyring get SERVICE USER`, as pip's `KeyRingCliProvider` runs it (stdin
/// closed, `PYTHONIOENCODING=utf-8`, the password on stdout with its line
/// end stripped; a non-zero exit is no password), killed after
/// [`KEYRING_TIMEOUT`].
fn keyring_password(service: &str, user: &str) -> Option<String> {
    let child = std::process::Command::new("keyring")
        .args(["get", service, user])
        .env("PYTHONIOENCODING", "utf-8")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let out = crate::resolve::auth::wait_with_timeout(child, KEYRING_TIMEOUT).ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let password = text.trim_end_matches(['\n', '\r']);
    (!password.is_empty()).then(|| password.to_string())
}

fn same_host(url: &str, host: &str) -> bool {
    Url::parse(url).is_ok_and(|u| u.host_str() == Some(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(v: &str, from: &str) -> Option<Sourced<String>> {
        Some(Sourced::new(v.to_string(), from))
    }

    fn list(v: &[&str], from: &str) -> Option<Sourced<Vec<String>>> {
        Some(Sourced::new(
            v.iter().map(|s| (*s).to_string()).collect(),
            from,
        ))
    }

    #[test]
    fn each_level_wins_over_the_ones_below() {
        let host = PipSettings {
            index_url: at("https://host.example/simple", "host"),
            extra_index_urls: list(&["https://host-extra.example/simple"], "host"),
            ..PipSettings::default()
        };
        let config = PipLevels::config_level(&PypiConfig {
            index_url: Some("https://cfg.example/simple".into()),
            ..PypiConfig::default()
        });
        let image = PipSettings {
            index_url: at("https://image.example/simple", "image"),
            ..PipSettings::default()
        };
        let step = PipSettings {
            index_url: at("https://step.example/simple", "step"),
            extra_index_urls: list(&["https://step-extra.example/simple"], "step"),
            ..PipSettings::default()
        };
        let mut levels = PipLevels {
            host,
            ..PipLevels::default()
        };
        let urls = |l: &PipLevels| IndexUrls::of(&l.effective()).urls;
        assert_eq!(
            urls(&levels),
            [
                "https://host.example/simple",
                "https://host-extra.example/simple"
            ]
        );
        levels.config = config;
        assert_eq!(urls(&levels)[0], "https://cfg.example/simple");
        levels.image = image;
        assert_eq!(urls(&levels)[0], "https://image.example/simple");
        levels.step = step;
        // The step's extra index adds to the level below's, as pip's does.
        assert_eq!(
            urls(&levels),
            [
                "https://step.example/simple",
                "https://host-extra.example/simple",
                "https://step-extra.example/simple"
            ]
        );
        assert_eq!(urls(&PipLevels::default()), [PYPI]);
    }
}

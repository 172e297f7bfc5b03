//! The clients one run shares: one HTTP client (one policy for timeouts and
//! retries) under the registry client, the conda repodata gateway and every
//! Python index client, so connections, per-host limits and counters are
//! shared between images, steps and platforms.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::Config;
use crate::config::pip::PipSettings;
use crate::config::registries_conf::RegistriesConf;
use crate::resolve::auth::CredentialStore;
use crate::resolve::conda::{
    ChannelSettings, CondaIndex, CondaProgress, Condarc, ResolveCondaError,
};
use crate::resolve::http::{
    DEFAULT_TIMEOUT, HttpClient, HttpError, HttpOptions, HttpStats, NetrcMiddleware,
};
use crate::resolve::pypi::{Fetcher, IndexClient, IndexUrls, PypiError, PypiProgress};
use crate::resolve::{Registry, RegistryOptions};

/// Why the clients could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error(transparent)]
    Conda(#[from] ResolveCondaError),
    #[error(transparent)]
    Pypi(#[from] PypiError),
    #[error(transparent)]
    Pip(#[from] crate::config::pip::PipSettingError),
    #[error(transparent)]
    RegistriesConf(#[from] crate::config::registries_conf::RegistriesConfError),
    #[error(transparent)]
    CondaAuth(#[from] crate::resolve::conda::auth::AuthFileError),
}

/// How a session is set up.
#[derive(Clone, Copy, Debug)]
pub struct SessionOptions {
    /// Use only caches.
    pub offline: bool,
    /// Requests in flight to one service (a registry host, a conda channel
    /// host, the package indexes together).
    pub requests: usize,
    /// The read-idle timeout (`--timeout`); `None`: `[network] timeout`,
    /// else 30 s.
    pub timeout: Option<Duration>,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            offline: false,
            requests: 8,
            timeout: None,
        }
    }
}

/// Index URLs, find-links locations and whether builds are refused: one
/// client each.
type ClientKey = (Vec<String>, Vec<String>, bool);

/// The clients of one run.
pub struct Session {
    http: HttpClient,
    pub registry: Arc<Registry>,
    pub conda: CondaIndex,
    pub channels: ChannelSettings,
    /// The host's pip settings (variables and pip.conf), the level below
    /// `imagelock.toml`.
    pub host_pip: PipSettings,
    /// The host's uv settings (`UV_*` variables), the level below
    /// `imagelock.toml` for `uv pip` steps.
    pub host_uv: PipSettings,
    /// The host's `registries.conf` (its short-name settings are compared
    /// with Docker's rule).
    pub registries_conf: RegistriesConf,
    pypi: Mutex<HashMap<ClientKey, Arc<IndexClient>>>,
    cache_dir: PathBuf,
    offline: bool,
    /// Refuse to build sdist metadata (`freeze --no-build`).
    pub no_build: bool,
    /// Told about repodata downloads (the CLI shows them on a terminal).
    pub conda_progress: Option<Arc<dyn CondaProgress>>,
    /// Told about sdist builds.
    pub pypi_progress: Option<Arc<dyn PypiProgress>>,
    /// Conda answers kept from earlier solves of the same request over the
    /// same records (`cache-dir/conda-solves-v1`).
    pub conda_solves: Arc<crate::solve::conda::memo::SolveMemo>,
    /// One permit per request in flight to the package indexes, shared by
    /// every index client.
    pypi_requests: Arc<tokio::sync::Semaphore>,
    /// `[limits] max-archive-size`.
    archive_cap: u64,
    /// `[pypi] keyring-provider`, over the host's `PIP_KEYRING_PROVIDER`.
    keyring_provider: Option<crate::config::KeyringProvider>,
}

/// The logins of the host's `.netrc` (`NETRC`, else `~/.netrc`).
fn netrc_logins() -> HashMap<String, (String, Option<String>)> {
    let path = std::env::var_os("NETRC")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".netrc")));
    path.and_then(|p| {
        crate::config::read::read_regular_to_string(&p, crate::config::read::MAX_INPUT_FILE).ok()
    })
    .map(|t| crate::resolve::pypi::fetch::parse_netrc(&t))
    .unwrap_or_default()
    .into_iter()
    .map(|(host, l)| (host, (l.user, l.password)))
    .collect()
}

/// The HTTP policy for `config` and a `--timeout` given on the command
/// line (which wins over `[network] timeout`).
pub fn http_options(config: &Config, timeout: Option<Duration>) -> HttpOptions {
    let timeout = timeout
        .or(config.network.timeout.map(Duration::from_secs))
        .unwrap_or(DEFAULT_TIMEOUT);
    HttpOptions::with_timeout(timeout)
}

impl Session {
    pub fn new(config: &Config, options: SessionOptions) -> Result<Session, SessionError> {
        let registries_conf = RegistriesConf::load(&|k| std::env::var(k).ok())?;
        let requests = options.requests.max(1);
        let http = HttpClient::new(HttpOptions {
            per_host: requests,
            ..http_options(config, options.timeout)
        })?;
        let registry = Registry::with_http(
            RegistryOptions {
                registries: registries_conf.under(&config.registries),
                root: config.root.clone(),
                http: http.options().clone(),
                credentials: CredentialStore::from_env()
                    .with_helper_timeout(http.options().timeout),
                ..RegistryOptions::default()
            },
            http.clone(),
        );
        let condarc = Condarc::load_from_env()?;
        let rattler_credentials =
            crate::resolve::conda::auth::RattlerCredentials::from_env(&|k| std::env::var(k).ok())?;
        let host_pip = PipSettings::from_host(&|k| std::env::var(k).ok())?;
        let host_uv =
            PipSettings::from_uv_vars(&|k| std::env::var(k).ok(), "in the host environment")?;
        Ok(Session {
            keyring_provider: config.pypi.keyring_provider,
            archive_cap: config
                .limits
                .max_archive_size
                .unwrap_or(crate::resolve::pypi::ARCHIVE_CAP),
            host_pip,
            host_uv,
            registries_conf,
            registry: Arc::new(registry),
            conda: CondaIndex::limited(
                &config.cache_dir,
                // Channel credentials: a channel URL's own (user:password,
                // or a `/t/TOKEN/` path), else rattler's credentials file,
                // else `.netrc` (rattler's order).
                reqwest_middleware::ClientBuilder::from_client(http.middleware_client())
                    .with(crate::resolve::conda::auth::RattlerAuthMiddleware::new(
                        rattler_credentials,
                    ))
                    .with(NetrcMiddleware::new(netrc_logins()))
                    .build(),
                options.offline,
                requests,
            ),
            channels: ChannelSettings::new(
                &config.conda,
                &condarc,
                &config
                    .root
                    .canonicalize()
                    .unwrap_or_else(|_| config.root.clone()),
            ),
            pypi: Mutex::new(HashMap::new()),
            conda_solves: Arc::new(crate::solve::conda::memo::SolveMemo::new(&config.cache_dir)),
            cache_dir: config.cache_dir.clone(),
            offline: options.offline,
            no_build: false,
            conda_progress: None,
            pypi_progress: None,
            pypi_requests: Arc::new(tokio::sync::Semaphore::new(requests)),
            http,
        })
    }

    /// The run's cache directory (`cache-dir`).
    pub fn cache_dir(&self) -> &std::path::Path {
        &self.cache_dir
    }

    /// The HTTP client every service of this run sends through.
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// Requests made so far by every service of this run.
    pub fn stats(&self) -> HttpStats {
        self.http.stats()
    }

    /// Whether only caches may be used.
    pub fn offline(&self) -> bool {
        self.offline
    }

    /// One index client per set of index URLs, shared by every step using it.
    pub fn pypi_client(&self, urls: &IndexUrls) -> Result<Arc<IndexClient>, PypiError> {
        self.pypi_client_with(urls, self.no_build)
    }

    /// [`Self::pypi_client`], refusing builds when `no_build` (a step's own
    /// `--only-binary :all:` refuses them as pip would).
    pub fn pypi_client_with(
        &self,
        urls: &IndexUrls,
        no_build: bool,
    ) -> Result<Arc<IndexClient>, PypiError> {
        self.pypi_client_finding(urls, &[], no_build)
    }

    /// A GET of `url`, a service beside the index `index` (as a lock records
    /// it), with the credentials the index client of this run sends to that
    /// index's host (its URL's userinfo, `UV_INDEX_<NAME>_*`, `.netrc`);
    /// none to any other origin.
    pub fn index_get(
        &self,
        index: &str,
        url: &reqwest::Url,
        limit: u64,
    ) -> crate::resolve::http::HttpRequest {
        let known = self
            .pypi
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .find(|c| c.has_index(index))
            .cloned();
        let client = known.or_else(|| {
            let urls = IndexUrls {
                urls: vec![index.to_string()],
            };
            self.pypi_client_with(&urls, self.no_build).ok()
        });
        match client {
            Some(c) => c.authorized_get(url, limit),
            None => crate::resolve::http::HttpRequest::get(url.clone(), limit),
        }
    }

    /// [`Self::pypi_client_with`], also searching `find_links` (pip's
    /// `--find-links` locations, as URLs).
    pub fn pypi_client_finding(
        &self,
        urls: &IndexUrls,
        find_links: &[String],
        no_build: bool,
    ) -> Result<Arc<IndexClient>, PypiError> {
        let mut clients = self
            .pypi
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (urls.urls.clone(), find_links.to_vec(), no_build);
        if let Some(c) = clients.get(&key) {
            return Ok(c.clone());
        }
        let keyring = self.keyring_provider;
        let host_env = move |k: &str| match (k, keyring) {
            ("PIP_KEYRING_PROVIDER", Some(p)) => Some(p.as_str().to_string()),
            _ => std::env::var(k).ok(),
        };
        let fetch = Fetcher::with_client(
            self.http.clone(),
            Some(self.cache_dir.join("pypi")),
            self.offline,
            urls.logins(&host_env),
        )
        .with_limit(self.pypi_requests.clone());
        let client = Arc::new(
            IndexClient::new(fetch, &urls.urls, no_build)?
                .with_archive_cap(self.archive_cap)
                .with_find_links(find_links)?
                .with_progress(self.pypi_progress.clone()),
        );
        clients.insert(key, client.clone());
        Ok(client)
    }
}

//! Conda channels: which channels a command uses and their repodata,
//! fetched through rattler's gateway (disk cache, conditional requests,
//! zstd and sharded repodata where a channel offers them, `file://`
//! channels) into a [`CondaRepodata`] for the solver.

pub mod auth;
mod channels;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use rattler_conda_types::{Channel, MatchSpec, PackageName, Subdir};
use rattler_repodata_gateway::fetch::{CacheAction, FetchRepoDataError};
use rattler_repodata_gateway::{
    ChannelConfig, DownloadReporter, Gateway, GatewayError, Reporter, SourceConfig,
};
use reqwest::Url;

pub use channels::{
    ChannelRequest, ChannelSettings, CondaChannel, Condarc, DEFAULT_CHANNEL_ALIAS,
    DEFAULT_CHANNELS, parse_bool,
};

use crate::solve::conda::{CondaRecord, CondaRepodata, CondaSolveRequest, CondaSpec};

/// Channels or their repodata could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ResolveCondaError {
    #[error("invalid conda channel `{channel}`: {reason}")]
    InvalidChannel { channel: String, reason: String },
    #[error(
        "no conda channels to search\nhint: pass `-c conda-forge` or set `channels` in imagelock.toml or .condarc"
    )]
    NoChannels,
    #[error("invalid `{}`: {message}", path.display())]
    Condarc { path: PathBuf, message: String },
    #[error("{0}")]
    Spec(String),
    #[error("unknown conda platform `{0}`")]
    Platform(String),
    #[error("repodata of `{channel}` is not in the cache\nhint: run once without `--offline` to fill the cache at `{}`", cache.display())]
    NotCached { channel: String, cache: PathBuf },
    #[error("cannot fetch conda repodata from `{channel}`: {message}")]
    Fetch { channel: String, message: String },
}

/// Progress of repodata downloads; the CLI turns it into progress bars.
/// Implementations must not print from `resolve`; they are called from
/// download tasks.
pub trait CondaProgress: Send + Sync {
    /// A download of `url` starts; the returned index names it later.
    fn download_started(&self, url: &str) -> usize;
    fn download_progress(&self, index: usize, bytes: u64, total: Option<u64>);
    fn download_finished(&self, index: usize);
    /// The repodata of `channel`/`subdir` was read (downloaded or from the
    /// cache): `records` records for the names asked.
    fn repodata_read(&self, _channel: &str, _subdir: &str, _records: usize) {}
}

struct ProgressAdapter(Arc<dyn CondaProgress>);

impl DownloadReporter for ProgressAdapter {
    fn on_download_start(&self, url: &Url) -> usize {
        self.0.download_started(url.as_str())
    }
    fn on_download_progress(&self, _: &Url, index: usize, bytes: usize, total: Option<usize>) {
        self.0
            .download_progress(index, bytes as u64, total.map(|t| t as u64));
    }
    fn on_download_complete(&self, _: &Url, index: usize) {
        self.0.download_finished(index);
    }
}

impl Reporter for ProgressAdapter {
    fn download_reporter(&self) -> Option<&dyn DownloadReporter> {
        Some(self)
    }
}

/// Fetches repodata for solves; one per run so the in-memory cache is
/// shared between steps and platforms.
pub struct CondaIndex {
    gateway: Gateway,
    cache_dir: PathBuf,
    offline: bool,
}

impl CondaIndex {
    /// An index caching under `cache_dir/conda`, fetching with `client`
    /// (the session's, with its retry policy: [`crate::resolve::http::HttpClient::middleware_client`]).
    /// `offline` reads only the cache (and local `file://` channels).
    pub fn new(
        cache_dir: &Path,
        client: impl Into<reqwest_middleware::ClientWithMiddleware>,
        offline: bool,
    ) -> Self {
        Self::limited(cache_dir, client, offline, 0)
    }

    /// An index with at most `max_requests` requests in flight (0: no limit).
    pub fn limited(
        cache_dir: &Path,
        client: impl Into<reqwest_middleware::ClientWithMiddleware>,
        offline: bool,
        max_requests: usize,
    ) -> Self {
        let cache_dir = cache_dir.join("conda");
        let source = SourceConfig {
            cache_action: if offline {
                CacheAction::ForceCacheOnly
            } else {
                CacheAction::CacheOrFetch
            },
            ..SourceConfig::default()
        };
        let gateway = Gateway::builder()
            .with_client(client.into())
            .with_cache_dir(cache_dir.clone())
            .with_max_concurrent_requests(max_requests)
            .with_channel_config(ChannelConfig {
                default: source,
                ..ChannelConfig::default()
            })
            .finish();
        Self {
            gateway,
            cache_dir,
            offline,
        }
    }

    /// The records of `channels` (in priority order) for `platform` and
    /// noarch that the specs and installed packages can reach.
    pub async fn fetch(
        &self,
        channels: &[CondaChannel],
        platform: &str,
        specs: &[CondaSpec],
        installed: &[CondaRecord],
        progress: Option<Arc<dyn CondaProgress>>,
    ) -> Result<CondaRepodata, ResolveCondaError> {
        self.fetch_reached(channels, platform, specs, installed, false, progress)
            .await
    }

    /// The records `request` can reach: its specs' and installed
    /// packages', and `pip`'s where the installer adds it to `python`.
    pub async fn fetch_for(
        &self,
        channels: &[CondaChannel],
        platform: &str,
        request: &CondaSolveRequest,
        progress: Option<Arc<dyn CondaProgress>>,
    ) -> Result<CondaRepodata, ResolveCondaError> {
        self.fetch_reached(
            channels,
            platform,
            &request.specs,
            &request.installed,
            request.add_pip_as_python_dependency,
            progress,
        )
        .await
    }

    /// [`Self::fetch`]; with `pip_with_python` (conda's
    /// `add_pip_as_python_dependency`), `pip` and what it needs too when
    /// `python` can be in the solution, and only then. Where the specs and
    /// installed packages do not name `python`, their records are fetched
    /// first and, if `python` is among them, queried again with `pip` (from
    /// the gateway's memory: nothing is downloaded twice), so environments
    /// without Python do not read Python's whole closure.
    async fn fetch_reached(
        &self,
        channels: &[CondaChannel],
        platform: &str,
        specs: &[CondaSpec],
        installed: &[CondaRecord],
        pip_with_python: bool,
        progress: Option<Arc<dyn CondaProgress>>,
    ) -> Result<CondaRepodata, ResolveCondaError> {
        let named = |name: &str| {
            specs.iter().any(|s| s.name() == name) || installed.iter().any(|r| r.name() == name)
        };
        let mut names = names(specs, installed)?;
        let report = progress.clone();
        let mut progress = progress;
        if pip_with_python && !named("pip") {
            if !named("python") {
                let parts = self
                    .query(channels, platform, names.clone(), progress.take())
                    .await?;
                let python = parts.iter().any(|part| {
                    part.iter()
                        .any(|r| r.package_record.name.as_normalized() == "python")
                });
                if !python {
                    return Ok(assemble(channels, platform, parts, report.as_ref()));
                }
            }
            names.push(MatchSpec::from(PackageName::new_unchecked("pip")));
        }
        let parts = self.query(channels, platform, names, progress).await?;
        Ok(assemble(channels, platform, parts, report.as_ref()))
    }

    /// One recursive query over all the step's channels: a dependency a
    /// record of one channel names is looked up in every channel, as conda
    /// fetches them (bioconda's pysam needs conda-forge's libdeflate). The
    /// gateway answers one part per channel and subdir, channel by channel
    /// in the order given, so strict priority still sees the first channel
    /// first.
    async fn query(
        &self,
        channels: &[CondaChannel],
        platform: &str,
        names: Vec<MatchSpec>,
        progress: Option<Arc<dyn CondaProgress>>,
    ) -> Result<Vec<rattler_repodata_gateway::RepoData>, ResolveCondaError> {
        let platform_value = Subdir::from_str(platform)
            .map_err(|_| ResolveCondaError::Platform(platform.to_string()))?;
        let mut urls = Vec::with_capacity(channels.len());
        for channel in channels {
            let url = Url::parse(&channel.url).map_err(|e| ResolveCondaError::InvalidChannel {
                channel: channel.url.clone(),
                reason: e.to_string(),
            })?;
            urls.push(Channel::from_url(url));
        }
        let mut query = self
            .gateway
            .query(urls, vec![platform_value, Subdir::NoArch], names)
            .recursive(true);
        if let Some(progress) = &progress {
            query = query.with_reporter(ProgressAdapter(progress.clone()));
        }
        let parts = query.await.map_err(|e| self.fetch_error(channels, &e))?;
        Ok(parts.into_iter().collect())
    }

    fn fetch_error(&self, channels: &[CondaChannel], error: &GatewayError) -> ResolveCondaError {
        let mut message = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        // The query covers all channels; the error names the URL it failed
        // on, which tells the channel.
        let channel = channels
            .iter()
            .find(|c| message.contains(c.url.trim_end_matches('/')))
            .map(|c| c.url.clone())
            .unwrap_or_else(|| {
                channels
                    .iter()
                    .map(|c| c.url.as_str())
                    .collect::<Vec<_>>()
                    .join("`, `")
            });
        if self.offline && is_not_cached(error) {
            return ResolveCondaError::NotCached {
                channel,
                cache: self.cache_dir.clone(),
            };
        }
        ResolveCondaError::Fetch { channel, message }
    }
}

/// The names to query: the specs' and the installed packages'.
fn names(
    specs: &[CondaSpec],
    installed: &[CondaRecord],
) -> Result<Vec<MatchSpec>, ResolveCondaError> {
    specs
        .iter()
        .map(CondaSpec::name)
        .chain(installed.iter().map(CondaRecord::name))
        .map(|name| {
            PackageName::from_str(name)
                .map(MatchSpec::from)
                .map_err(|e| ResolveCondaError::Spec(e.to_string()))
        })
        .collect()
}

/// The query's parts (channel by channel, the platform then noarch) as
/// the solver's input, each reported to `progress`.
fn assemble(
    channels: &[CondaChannel],
    platform: &str,
    parts: Vec<rattler_repodata_gateway::RepoData>,
    progress: Option<&Arc<dyn CondaProgress>>,
) -> CondaRepodata {
    let mut data = CondaRepodata::new();
    let subdirs = channels.iter().flat_map(|c| [(c, platform), (c, "noarch")]);
    for (part, (channel, subdir)) in parts.into_iter().zip(subdirs) {
        if let Some(progress) = progress {
            progress.repodata_read(&channel.name, subdir, part.len());
        }
        data.push_fetched(part);
    }
    data
}

fn is_not_cached(error: &GatewayError) -> bool {
    match error {
        GatewayError::FetchRepoDataError(FetchRepoDataError::NoCacheAvailable(_)) => true,
        GatewayError::CacheError(_) => true,
        other => {
            // Sharded and subdir errors wrap the cause; look for it by text.
            let mut source: Option<&dyn std::error::Error> = Some(other);
            while let Some(s) = source {
                if s.to_string().contains("no cache available") {
                    return true;
                }
                source = s.source();
            }
            false
        }
    }
}

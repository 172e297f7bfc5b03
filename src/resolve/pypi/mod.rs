//! The Python package index client: simple API pages, core metadata (PEP
//! 658, range requests, sdist `PKG-INFO`), index URLs and credentials from
//! pip's own settings, an HTTP cache, and the [`PackageSource`] the solver
//! sees.

pub mod archive;
mod build;
pub mod fetch;
pub mod index_urls;
pub mod simple;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use pep440_rs::Version;
use pep508_rs::PackageName;
use pubgrub::Ranges;
use reqwest::Url;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

pub use fetch::{FetchStats, Fetcher, Login, redact};
pub use index_urls::{IndexUrls, PipLevels, PipSettings};

use crate::solve::python::dist::{DistKind, parse_filename};
use crate::solve::python::{
    Candidates, CoreMetadata, DirectDist, DistFile, PackageSource, ResolveOptions, SourceError,
    TargetEnv,
};

/// The Accept header of PEP 691, preferring JSON.
const ACCEPT_SIMPLE: &str = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";
/// Largest sdist or direct-URL file downloaded (to a temporary file, hashed
/// on the way; never held in memory) unless `[limits] max-archive-size`
/// says otherwise.
pub const ARCHIVE_CAP: u64 = 16 << 30;

/// An index that could not answer is trouble; anything else it said
/// (a listed file missing, a broken page) is its answer.
impl From<PypiError> for SourceError {
    fn from(e: PypiError) -> Self {
        let message = e.to_string();
        match e {
            PypiError::Client(_) | PypiError::NotCached(_) => SourceError::Unavailable(message),
            // The shared client retried transient failures already: what is
            // left is a service that could not answer (connect, timeout,
            // transport, 5xx, 429), never the index's answer.
            PypiError::Http(_) => SourceError::Unavailable(message),
            PypiError::Status { status, .. }
                if status >= 500 || matches!(status, 401 | 403 | 407 | 429) =>
            {
                SourceError::Unavailable(message)
            }
            _ => SourceError::Failed(message),
        }
    }
}

/// What failed talking to an index.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum PypiError {
    #[error("could not set up the HTTP client: {0}")]
    Client(String),
    #[error("`{url}` is not a valid URL: {message}")]
    BadUrl { url: String, message: String },
    #[error(transparent)]
    Http(#[from] crate::resolve::http::HttpError),
    #[error("`{url}` answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("`{0}` is not in the cache; run once without --offline")]
    NotCached(String),
    #[error(
        "`{url}` is larger than {cap} bytes, more than imagelock accepts for it\nhint: an index that sends this much is broken or hostile; see the Limits section of the README"
    )]
    TooLarge { url: String, cap: u64 },
    #[error(
        "`{url}` is larger than {cap} bytes, the largest archive imagelock downloads\nhint: raise `[limits] max-archive-size` in imagelock.toml if this file is meant to be this large"
    )]
    ArchiveTooLarge { url: String, cap: u64 },
    #[error("`{url}` is not a readable archive: {message}")]
    BadArchive { url: String, message: String },
    #[error("the page `{url}` is not a simple API page: {message}")]
    BadPage { url: String, message: String },
    #[error(
        "the metadata of `{file}` does not match its sha256 (expected {expected}, got {actual})"
    )]
    HashMismatch {
        file: String,
        expected: String,
        actual: String,
    },
    #[error(
        "the metadata of `{file}` says `{field}: {found}`, but the file is `{expected}`\nhint: the index serves a file whose contents belong to another release; pip refuses it too, so report it to the index's owner"
    )]
    WrongMetadata {
        file: String,
        field: &'static str,
        found: String,
        expected: String,
    },
    #[error("the metadata of `{file}` is unreadable: {message}")]
    BadMetadata { file: String, message: String },
    #[error(
        "`{file}` is only an sdist whose dependencies are dynamic, and building its metadata is refused (--no-build, or the step's --only-binary :all:)\nhint: allow builds, or pin a version that has a wheel for the target"
    )]
    NoBuild { file: String },
    #[error(
        "`{file}` is only an sdist whose dependencies are dynamic, and building its metadata needs a host Python, but `{python}` was not found\nhint: install Python 3 (with `venv`) on this machine, or pin a version that has a wheel and use --no-build"
    )]
    NoPython { file: String, python: String },
    #[error(
        "`{file}` is only an sdist whose dependencies are dynamic; building its metadata failed: {message}\nhint: pin a version that has a wheel for the target, or check that `python3` with `venv` is on PATH"
    )]
    Build { file: String, message: String },
    #[error("{0}")]
    Io(String),
}

/// Results computed once per key, awaited by everyone who asks.
type Memo<K, T> = Mutex<HashMap<K, Arc<OnceCell<Result<T, SourceError>>>>>;

/// Fetches pages and metadata from one or more indexes.
/// Told when an index client does slow work worth naming (the CLI shows it
/// with `-v`). Called from resolver tasks; must not block.
pub trait PypiProgress: Send + Sync {
    /// An sdist's metadata is being built with its build backend.
    fn building_sdist(&self, filename: &str);
    /// That build ended after `elapsed`, `ok` when it gave metadata.
    fn built_sdist(&self, filename: &str, elapsed: std::time::Duration, ok: bool) {
        let _ = (filename, elapsed, ok);
    }
    /// The sdist's build environment is made by pip after all (`why`:
    /// what imagelock's own, pip-free path could not do).
    fn building_with_pip(&self, filename: &str, why: &str) {
        let _ = (filename, why);
    }
    /// A cached index page no longer parses (`why`): it was dropped and is
    /// fetched again.
    fn dropped_cached_page(&self, url: &str, why: &str) {
        let _ = (url, why);
    }
}

pub struct IndexClient {
    progress: Option<std::sync::Arc<dyn PypiProgress>>,
    fetch: Fetcher,
    indexes: Vec<Url>,
    no_build: bool,
    /// The host Python that runs build backends.
    python: std::path::PathBuf,
    pages: Memo<PackageName, Arc<Vec<DistFile>>>,
    metadata: Memo<String, Arc<CoreMetadata>>,
    /// pip's `--find-links`: HTML pages of links, local directories of
    /// archives, or single archives, searched beside the indexes.
    find_links: Vec<Url>,
    /// Largest sdist or direct-URL archive downloaded.
    archive_cap: u64,
    /// Where build environments are kept (made on the first build).
    build_envs: std::sync::OnceLock<BuildEnvs>,
    /// The host Python that runs build backends, probed on the first
    /// build (`None`: it does not run).
    host: OnceCell<Option<Arc<build::HostPython>>>,
    /// Which environment each set of build requirements resolved to.
    build_memo: build::EnvMemo,
    /// How sdists were unpacked for builds.
    trees: Mutex<SdistTrees>,
}

/// How sdists were read and unpacked for their builds (for tests and
/// benchmarks).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SdistTrees {
    /// Read as they downloaded, and used: unpacked whole, or stopped at a
    /// static `PKG-INFO`.
    pub streamed: usize,
    /// Read as they downloaded, then dropped: the file's sha256 was not
    /// what the index states.
    pub discarded: usize,
    /// Read as they downloaded until a tar or gzip error; then read from
    /// the downloaded file, as without streaming.
    pub fell_back: usize,
    /// Unpacked from the downloaded file.
    pub from_file: usize,
}

/// Build environments, one per resolved set of build requirements: beside
/// the HTTP cache when there is one (reused by later runs: the key is the
/// files' hashes), else in a directory removed with the client.
/// `run` remembers, for this client's life only, which environment each
/// set of requirements (as written) resolved to.
#[derive(Debug)]
struct BuildEnvs {
    kept: Option<std::path::PathBuf>,
    run: tempfile::TempDir,
}

impl BuildEnvs {
    fn path(&self) -> &std::path::Path {
        self.kept.as_deref().unwrap_or(self.run.path())
    }
}

impl IndexClient {
    /// A GET of `url` (another service of one of this client's indexes,
    /// such as PyPI's JSON API beside `…/simple/`) with the credentials the
    /// index client would send to that host; credentials only go to the
    /// scheme, host and port of one of the indexes, never to another.
    pub fn authorized_get(&self, url: &Url, limit: u64) -> crate::resolve::http::HttpRequest {
        let same_origin = self.indexes.iter().any(|i| {
            i.scheme() == url.scheme()
                && i.host_str() == url.host_str()
                && i.port_or_known_default() == url.port_or_known_default()
        });
        if same_origin {
            self.fetch.request(url, limit)
        } else {
            let mut clean = url.clone();
            let _ = clean.set_username("");
            let _ = clean.set_password(None);
            crate::resolve::http::HttpRequest::get(clean, limit)
        }
    }

    /// Whether `index` (as a lock records it, without credentials) is one
    /// of this client's indexes.
    pub fn has_index(&self, index: &str) -> bool {
        self.indexes.iter().any(|i| {
            crate::config::redact::redact_url(i.as_str()).trim_end_matches('/')
                == index.trim_end_matches('/')
        })
    }
}

impl IndexClient {
    /// A client over `indexes` (simple API roots; the first is pip's
    /// `--index-url`, the others `--extra-index-url`s: pip merges them).
    pub fn new(fetch: Fetcher, indexes: &[String], no_build: bool) -> Result<Self, PypiError> {
        let indexes = indexes
            .iter()
            .map(|u| {
                let with_slash = if u.ends_with('/') {
                    u.clone()
                } else {
                    format!("{u}/")
                };
                Url::parse(&with_slash).map_err(|e| PypiError::BadUrl {
                    url: redact(u),
                    message: e.to_string(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            progress: None,
            fetch,
            indexes,
            no_build,
            python: "python3".into(),
            pages: Mutex::default(),
            metadata: Mutex::default(),
            find_links: Vec::new(),
            archive_cap: ARCHIVE_CAP,
            build_envs: std::sync::OnceLock::new(),
            host: OnceCell::new(),
            build_memo: Mutex::default(),
            trees: Mutex::default(),
        })
    }

    /// Downloads sdists and direct-URL archives of at most `cap` bytes
    /// (`[limits] max-archive-size`).
    #[must_use]
    pub fn with_archive_cap(mut self, cap: u64) -> Self {
        self.archive_cap = cap;
        self
    }

    /// An archive (sdist, direct URL, find-links file) streamed to a
    /// temporary file with its sha256.
    async fn download_archive(&self, url: &str) -> Result<fetch::Downloaded, PypiError> {
        self.download_archive_teed(url, None).await
    }

    /// [`Self::download_archive`], its chunks also sent to `tee`.
    async fn download_archive_teed(
        &self,
        url: &str,
        tee: Option<fetch::Tee>,
    ) -> Result<fetch::Downloaded, PypiError> {
        let cap = self.archive_cap;
        self.fetch
            .download_teed(url, cap, tee)
            .await
            .map_err(|e| match e {
                PypiError::TooLarge { url, .. } => PypiError::ArchiveTooLarge { url, cap },
                e => e,
            })
    }

    /// A `.tar.gz` sdist that may be built, downloaded while a thread
    /// unpacks it from the arriving bytes ([`Streaming`]); other archives
    /// are only downloaded.
    async fn download_sdist(
        &self,
        url: &str,
        tree: bool,
    ) -> Result<(fetch::Downloaded, Option<Streaming>), PypiError> {
        if !tree {
            return Ok((self.download_archive(url).await?, None));
        }
        let (tee, streaming) = Streaming::start();
        let body = self.download_archive_teed(url, Some(tee)).await?;
        Ok((body, Some(streaming)))
    }

    /// How sdists were unpacked so far.
    pub fn sdist_trees(&self) -> SdistTrees {
        *self
            .trees
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn count_tree(&self, f: impl FnOnce(&mut SdistTrees)) {
        f(&mut self
            .trees
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner));
    }

    /// Tells `progress` about sdist builds.
    #[must_use]
    pub fn with_progress(mut self, progress: Option<std::sync::Arc<dyn PypiProgress>>) -> Self {
        self.progress = progress;
        self
    }

    /// Searches `locations` (pip's `--find-links`: URLs of HTML pages,
    /// `file://` directories or archives) beside the indexes.
    pub fn with_find_links(mut self, locations: &[String]) -> Result<Self, PypiError> {
        self.find_links = locations
            .iter()
            .map(|u| {
                Url::parse(u).map_err(|e| PypiError::BadUrl {
                    url: redact(u),
                    message: e.to_string(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(self)
    }

    /// The sha256 of the file at `url`, downloaded whole (for files that a
    /// find-links page lists without a hash: the lock needs one).
    pub async fn sha256_of(&self, url: &str) -> Result<String, PypiError> {
        Ok(self.download_archive(url).await?.sha256)
    }

    /// Runs build backends with `python` instead of `python3` from PATH.
    #[must_use]
    pub fn with_build_python(mut self, python: impl Into<std::path::PathBuf>) -> Self {
        self.python = python.into();
        self
    }

    /// Request counters.
    pub fn stats(&self) -> FetchStats {
        self.fetch.stats()
    }

    /// Every file of `name` on all indexes (fetched once per client).
    pub async fn files(&self, name: &PackageName) -> Result<Arc<Vec<DistFile>>, SourceError> {
        let cell = {
            let mut pages = self
                .pages
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            pages.entry(name.clone()).or_default().clone()
        };
        cell.get_or_init(|| self.fetch_files(name)).await.clone()
    }

    async fn fetch_files(&self, name: &PackageName) -> Result<Arc<Vec<DistFile>>, SourceError> {
        let mut all = Vec::new();
        let mut found = false;
        for index in &self.indexes {
            let page = index
                .join(&format!("{name}/"))
                .map_err(|e| SourceError::Failed(e.to_string()))?;
            let mut refetched = false;
            let files = loop {
                let body = self
                    .fetch
                    .get_cached(page.as_str(), ACCEPT_SIMPLE, name.as_ref())
                    .await?;
                let Some(body) = body else { break None };
                match parse_page(&body, &page) {
                    Ok(files) => break Some(files),
                    // A cached page that no longer parses (a damaged cache,
                    // or a proxy's error page once stored) would otherwise
                    // be revalidated and reused forever: drop it and ask
                    // again, once.
                    Err(e) if !refetched && !self.fetch.offline() => {
                        if let Some(p) = &self.progress {
                            p.dropped_cached_page(page.as_str(), &e.to_string());
                        }
                        self.fetch.forget(page.as_str(), ACCEPT_SIMPLE);
                        refetched = true;
                    }
                    Err(e) => return Err(SourceError::Failed(e.to_string())),
                }
            };
            let Some(files) = files else { continue };
            found = true;
            // A page may list another project's files (`/simple/confuse/`
            // linking `six-1.16.0-….whl`); pip ignores such links, and so
            // do we, so they can never be locked under this name.
            all.extend(files.into_iter().filter(|f| belongs_to(&f.filename, name)));
        }
        for location in &self.find_links {
            let files = self.find_links_files(location, name).await?;
            found |= !files.is_empty();
            all.extend(files);
        }
        if !found {
            let asked: Vec<String> = self
                .indexes
                .iter()
                .map(|u| format!("`{}`", fetch::redact(u.as_str()).trim_end_matches('/')))
                .collect();
            return Err(SourceError::NotFound(name.to_string(), asked.join(", ")));
        }
        Ok(Arc::new(all))
    }

    /// The archives of `name` a `--find-links` location offers, as pip
    /// finds them: every file of a local directory, a local archive
    /// itself, or every link of an HTML page (local or remote).
    async fn find_links_files(
        &self,
        location: &Url,
        name: &PackageName,
    ) -> Result<Vec<DistFile>, SourceError> {
        let failed = |m: String| SourceError::Failed(format!("--find-links {location}: {m}"));
        let mine = |filename: &str| parse_filename(filename, name).is_some_and(|d| d.name == *name);
        let file = |filename: String, url: String| DistFile {
            filename,
            url,
            sha256: None,
            requires_python: None,
            yanked: None,
            upload_time: None,
            size: None,
            core_metadata: None,
        };
        if location.scheme() == "file" {
            let path = location
                .to_file_path()
                .map_err(|()| failed("not a local path".into()))?;
            if path.is_dir() {
                let mut out = Vec::new();
                let entries = fs_err::read_dir(&path).map_err(|e| failed(e.to_string()))?;
                let mut names: Vec<String> = entries
                    .filter_map(Result::ok)
                    .filter(|e| e.path().is_file())
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect();
                names.sort();
                for n in names.into_iter().filter(|n| mine(n)) {
                    let url = Url::from_file_path(path.join(&n))
                        .map_err(|()| failed("not a local path".into()))?;
                    out.push(file(n, url.to_string()));
                }
                return Ok(out);
            }
            let last = location
                .path_segments()
                .and_then(|mut s| s.next_back())
                .map(fetch::percent_decode)
                .unwrap_or_default();
            if last.ends_with(".whl") || last.ends_with(".tar.gz") || last.ends_with(".zip") {
                return Ok(if mine(&last) && path.is_file() {
                    vec![file(last, location.to_string())]
                } else {
                    Vec::new()
                });
            }
        }
        let body = self
            .fetch
            .get_cached(location.as_str(), "text/html", name.as_ref())
            .await?
            .ok_or_else(|| failed("not found".into()))?;
        Ok(
            simple::parse_html(&String::from_utf8_lossy(&body), location)
                .into_iter()
                .map(|mut f| {
                    // The link's own name, not its text (`jaxlib-…+cuda12…`).
                    if let Some(last) = Url::parse(&f.url).ok().and_then(|u| {
                        u.path_segments()
                            .and_then(|mut s| s.next_back())
                            .map(fetch::percent_decode)
                    }) {
                        f.filename = last;
                    }
                    f
                })
                .filter(|f| mine(&f.filename))
                .collect(),
        )
    }

    /// The core metadata of `file` (cached in memory and, for immutable
    /// files, on disk).
    pub async fn metadata(
        self: &Arc<Self>,
        name: &PackageName,
        file: &DistFile,
    ) -> Result<Arc<CoreMetadata>, SourceError> {
        let cell = {
            let mut m = self
                .metadata
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            m.entry(file.url.clone()).or_default().clone()
        };
        cell.get_or_init(|| async {
            self.fetch_metadata(name, file)
                .await
                .map(Arc::new)
                .map_err(SourceError::from)
        })
        .await
        .clone()
    }

    async fn fetch_metadata(
        self: &Arc<Self>,
        name: &PackageName,
        file: &DistFile,
    ) -> Result<CoreMetadata, PypiError> {
        let expected_version = parse_filename(&file.filename, name).map(|f| f.version);
        let parse = |text: &str| {
            let meta = CoreMetadata::parse(text).map_err(|e| PypiError::BadMetadata {
                file: file.filename.clone(),
                message: e.to_string(),
            })?;
            check_identity(&meta, &file.filename, name, expected_version.as_ref())?;
            Ok(meta)
        };
        if let Some(hash) = &file.core_metadata {
            let url = format!("{}.metadata", file.url);
            // Content-addressed when the index states its hash: a cached
            // copy with that hash is not asked for again.
            let body = match hash {
                Some(expected) => {
                    self.fetch
                        .get_by_sha256(&url, "*/*", &file.filename, expected)
                        .await?
                }
                None => self.fetch.get_cached(&url, "*/*", &file.filename).await?,
            }
            .ok_or_else(|| PypiError::Status {
                url: redact(&url),
                status: 404,
            })?;
            if let Some(expected) = hash {
                let actual = hex::encode(Sha256::digest(&body));
                if !actual.eq_ignore_ascii_case(expected) {
                    return Err(PypiError::HashMismatch {
                        file: file.filename.clone(),
                        expected: expected.clone(),
                        actual,
                    });
                }
            }
            return parse(&String::from_utf8_lossy(&body));
        }
        let key = format!("metadata\n{}", file.url);
        if let Some(text) = self.fetch.derived_get(&key, file.sha256.as_deref()) {
            return parse(&String::from_utf8_lossy(&text));
        }
        if self.fetch.offline() {
            return Err(PypiError::NotCached(file.filename.clone()));
        }
        let kind = parse_filename(&file.filename, name).map(|f| f.kind);
        let text = match kind {
            Some(DistKind::Wheel { .. }) => archive::wheel_metadata(&self.fetch, &file.url).await?,
            _ => self.sdist_metadata(file).await?,
        };
        let meta = parse(&text)?;
        self.fetch
            .derived_put(&key, file.sha256.as_deref(), text.as_bytes());
        Ok(meta)
    }

    async fn sdist_metadata(self: &Arc<Self>, file: &DistFile) -> Result<String, PypiError> {
        let tar_gz = file.filename.ends_with(".tar.gz");
        let (mut body, streaming) = self
            .download_sdist(&file.url, tar_gz && !self.no_build)
            .await?;
        if let Some(expected) = &file.sha256
            && !body.sha256.eq_ignore_ascii_case(expected)
        {
            // What was unpacked from these bytes is not used.
            if let Some(streaming) = streaming {
                drop(streaming.finish().await);
                self.count_tree(|t| t.discarded += 1);
            }
            return Err(PypiError::HashMismatch {
                file: file.filename.clone(),
                expected: expected.clone(),
                actual: body.sha256,
            });
        }
        let mut read = SdistRead::default();
        if tar_gz {
            match self
                .static_sdist_metadata(&mut body.file, !self.no_build, streaming)
                .await?
            {
                SdistMetadata::Static(text) => return Ok(text),
                SdistMetadata::Dynamic(r) => read = r,
            }
        }
        if self.no_build {
            return Err(PypiError::NoBuild {
                file: file.filename.clone(),
            });
        }
        self.build_metadata(&file.filename, body.file, read).await
    }

    /// A direct URL requirement: downloaded, hashed, its metadata read.
    pub async fn direct(
        self: &Arc<Self>,
        name: &PackageName,
        url: &str,
    ) -> Result<DirectDist, PypiError> {
        let clean = redact(url);
        let parsed = Url::parse(url).map_err(|e| PypiError::BadUrl {
            url: clean.clone(),
            message: e.to_string(),
        })?;
        let filename = parsed
            .path_segments()
            .and_then(|mut s| s.next_back())
            .unwrap_or_default()
            .to_string();
        let dist = parse_filename(&filename, name).ok_or_else(|| PypiError::BadArchive {
            url: clean.clone(),
            message: "the file name is not a wheel or sdist of this project".into(),
        })?;
        let unpack =
            !self.no_build && dist.kind == DistKind::Sdist && filename.ends_with(".tar.gz");
        let (mut body, streaming) = self.download_sdist(url, unpack).await?;
        let sha256 = body.sha256.clone();
        let text =
            match dist.kind {
                DistKind::Wheel { .. } => archive::metadata_from_reader(&mut body.file)
                    .ok_or_else(|| PypiError::BadArchive {
                        url: clean.clone(),
                        message: "no METADATA in the wheel".into(),
                    })?,
                DistKind::Sdist => {
                    match self
                        .static_sdist_metadata(&mut body.file, unpack, streaming)
                        .await?
                    {
                        SdistMetadata::Static(t) => t,
                        SdistMetadata::Dynamic(_) if self.no_build => {
                            return Err(PypiError::NoBuild { file: filename });
                        }
                        SdistMetadata::Dynamic(read) => {
                            self.build_metadata(&filename, body.file, read).await?
                        }
                    }
                }
            };
        let metadata = CoreMetadata::parse(&text).map_err(|e| PypiError::BadMetadata {
            file: filename.clone(),
            message: e.to_string(),
        })?;
        check_identity(&metadata, &filename, name, Some(&dist.version))?;
        Ok(DirectDist {
            version: dist.version,
            filename,
            url: clean,
            sha256: Some(sha256),
            metadata: Some(metadata),
        })
    }
}

impl IndexClient {
    /// Builds an sdist's metadata with its own build backend (PEP 517
    /// `prepare_metadata_for_build_wheel`) in an isolated venv of the
    /// host's Python. Build requirements come from this client's indexes:
    /// resolved, downloaded and unpacked by imagelock itself, or by pip
    /// when that cannot be done (said with `-v`).
    /// `read` is what was already read of the sdist.
    async fn build_metadata(
        self: &Arc<Self>,
        filename: &str,
        sdist: std::fs::File,
        read: SdistRead,
    ) -> Result<String, PypiError> {
        let python = self.python.clone();
        let host = self
            .host
            .get_or_init(|| {
                let python = python.clone();
                async move {
                    tokio::task::spawn_blocking(move || build::probe(&python).map(Arc::new))
                        .await
                        .ok()
                        .flatten()
                }
            })
            .await
            .clone();
        let Some(host) = host else {
            return Err(PypiError::NoPython {
                file: filename.to_string(),
                python: python.display().to_string(),
            });
        };
        if let Some(p) = &self.progress {
            p.building_sdist(filename);
        }
        let started = std::time::Instant::now();
        let built = self.build_with_host(&host, filename, sdist, read).await;
        if let Some(p) = &self.progress {
            p.built_sdist(filename, started.elapsed(), built.is_ok());
        }
        built
    }

    /// [`Self::build_metadata`] once the host Python is known.
    async fn build_with_host(
        self: &Arc<Self>,
        host: &build::HostPython,
        filename: &str,
        mut sdist: std::fs::File,
        read: SdistRead,
    ) -> Result<String, PypiError> {
        let python = host.executable.clone();
        let envs = self.build_envs(filename)?;
        match self
            .build_without_pip(host, &envs.0, filename, &mut sdist, read)
            .await?
        {
            Ok(text) => return Ok(text),
            Err(build::Fallback(why)) => {
                if let Some(p) = &self.progress {
                    p.building_with_pip(filename, &why);
                }
            }
        }
        rewind(&mut sdist)?;
        let indexes: Vec<String> = self.indexes.iter().map(ToString::to_string).collect();
        build_metadata(&python, &indexes, (&envs.0, &envs.1), filename, sdist).await
    }

    /// The pip-free build: `Err(Fallback)` when it cannot be done here.
    async fn build_without_pip(
        self: &Arc<Self>,
        host: &build::HostPython,
        envs: &std::path::Path,
        filename: &str,
        sdist: &mut std::fs::File,
        read: SdistRead,
    ) -> Result<Result<String, build::Fallback>, PypiError> {
        let fallback = |why: String| Ok(Err(build::Fallback(why)));
        let target = match &host.target {
            Ok(t) => t.clone(),
            Err(why) => return fallback(why.clone()),
        };
        if !filename.ends_with(".tar.gz") {
            return fallback("only `.tar.gz` sdists are read by imagelock itself".into());
        }
        let fail = |message: String| PypiError::Build {
            file: filename.to_string(),
            message,
        };
        let system = match build::BuildSystem::parse(read.pyproject.as_deref()) {
            Ok(s) => s,
            Err(why) => return fallback(why),
        };
        // Unpacked once (no copy of the archive, no unpacking in Python);
        // both hooks run in the same tree, as pip's build does.
        let Unpacked { dir, source } = match read.unpacked {
            Some(u) => u,
            None => {
                self.count_tree(|t| t.from_file += 1);
                unpack(sdist).await.map_err(&fail)?
            }
        };
        let env = match self
            .planned_env(host, &target, &system.requires, envs)
            .await?
        {
            Ok(env) => env,
            Err(f) => return Ok(Err(f)),
        };
        let outcome = build::run_hooks(
            &host.executable,
            (&source, dir.path()),
            &env,
            &system,
            "auto",
        )
        .await
        .map_err(&fail)?;
        let extra = match outcome {
            build::HookOutcome::Metadata(text) => return Ok(Ok(text)),
            build::HookOutcome::Requires(extra) => extra,
        };
        // The backend asked for more: the environment of everything.
        let mut all = system.requires.clone();
        all.extend(extra);
        let env = match self.planned_env(host, &target, &all, envs).await? {
            Ok(env) => env,
            Err(f) => return Ok(Err(f)),
        };
        match build::run_hooks(
            &host.executable,
            (&source, dir.path()),
            &env,
            &system,
            "prepare",
        )
        .await
        .map_err(&fail)?
        {
            build::HookOutcome::Metadata(text) => Ok(Ok(text)),
            build::HookOutcome::Requires(_) => Err(fail("the backend's hook asked twice".into())),
        }
    }

    /// The directory of build environments and this run's memo of them.
    fn build_envs(
        &self,
        filename: &str,
    ) -> Result<(std::path::PathBuf, std::path::PathBuf), PypiError> {
        if let Some(envs) = self.build_envs.get() {
            return Ok((envs.path().to_path_buf(), envs.run.path().to_path_buf()));
        }
        let made = (|| {
            let kept = match self.fetch.cache_dir() {
                Some(dir) => {
                    // Absolute: the build scripts run in another directory.
                    let dir = std::path::absolute(dir.join("build-envs"))?;
                    fs_err::create_dir_all(&dir)?;
                    Some(dir)
                }
                None => None,
            };
            let run = tempfile::Builder::new()
                .prefix("imagelock-build-envs-")
                .tempdir()?;
            Ok::<_, std::io::Error>(BuildEnvs { kept, run })
        })()
        .map_err(|e| PypiError::Build {
            file: filename.to_string(),
            message: format!("no directory for build environments: {e}"),
        })?;
        // Another build may have made one meanwhile: theirs is kept.
        let envs = self.build_envs.get_or_init(|| made);
        Ok((envs.path().to_path_buf(), envs.run.path().to_path_buf()))
    }
}

/// A simple API page, JSON (PEP 691) or HTML (PEP 503) by its first byte.
fn parse_page(body: &[u8], page: &Url) -> Result<Vec<DistFile>, PypiError> {
    let trimmed = body.iter().position(|b| !b.is_ascii_whitespace());
    if trimmed.is_some_and(|i| body[i] == b'{') {
        simple::parse_json(body, page).map_err(|message| PypiError::BadPage {
            url: redact(page.as_str()),
            message,
        })
    } else {
        Ok(simple::parse_html(&String::from_utf8_lossy(body), page))
    }
}

/// Runs the build script: unpack, isolated venv, backend hook.
async fn build_metadata(
    python: &std::path::Path,
    indexes: &[String],
    (envs, run): (&std::path::Path, &std::path::Path),
    filename: &str,
    mut sdist: std::fs::File,
) -> Result<String, PypiError> {
    let filename = filename.to_string();
    let fail = |message: String| PypiError::Build {
        file: filename.clone(),
        message,
    };
    let dir = tempfile_dir().map_err(&fail)?;
    let archive = dir.join(&filename);
    fs_err::File::create(&archive)
        .and_then(|mut to| std::io::copy(&mut sdist, &mut to))
        .map_err(|e| fail(e.to_string()))?;
    let script = dir.join("build_metadata.py");
    fs_err::write(&script, BUILD_SCRIPT).map_err(|e| fail(e.to_string()))?;
    let out = dir.join("out");
    let (archive2, out2, dir2) = (archive.clone(), out.clone(), dir.clone());
    let python = python.to_path_buf();
    let (envs, run) = (envs.to_path_buf(), run.to_path_buf());
    let shown = python.display().to_string();
    // Build requirements come from the step's indexes, not the host's pip
    // configuration.
    let index = indexes.first().cloned().unwrap_or_default();
    let extra = indexes.get(1..).unwrap_or_default().join(" ");
    let result = tokio::task::spawn_blocking(move || {
        let mut cmd = std::process::Command::new(&python);
        cmd.arg(&script)
            .arg(&archive2)
            .arg(&out2)
            .current_dir(&dir2)
            .env("PIP_CONFIG_FILE", "/dev/null")
            .env("IMAGELOCK_BUILD_ENVS", &envs)
            .env("IMAGELOCK_BUILD_RUN", &run)
            .env_remove("PYTHONPATH");
        if index.is_empty() {
            cmd.env_remove("PIP_INDEX_URL");
        } else {
            cmd.env("PIP_INDEX_URL", &index);
        }
        cmd.env("PIP_EXTRA_INDEX_URL", &extra);
        cmd.output()
    })
    .await
    .map_err(|e| fail(e.to_string()))?
    .map_err(|e| fail(format!("could not run `{shown}`: {e}")))?;
    let text = if result.status.success() {
        fs_err::read_to_string(out.join("METADATA")).map_err(|e| fail(e.to_string()))
    } else {
        let stderr = String::from_utf8_lossy(&result.stderr);
        let last: Vec<&str> = stderr.lines().rev().take(5).collect();
        Err(fail(last.into_iter().rev().collect::<Vec<_>>().join("\n")))
    };
    let _ = fs_err::remove_dir_all(&dir);
    text
}

fn tempfile_dir() -> Result<std::path::PathBuf, String> {
    let dir = std::env::temp_dir().join(format!(
        "imagelock-build-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    fs_err::create_dir_all(&dir).map_err(|e| e.to_string())?;
    Ok(dir)
}

/// Whether `filename` is a distribution of `project` (wheels name their
/// project; sdists are matched against it). Files whose name cannot be read
/// are kept for the solver to skip with its own reasons.
fn belongs_to(filename: &str, project: &PackageName) -> bool {
    if !filename.ends_with(".whl") {
        // `parse_filename` only accepts an sdist of `project`; other
        // archives are left to the solver.
        let is_sdist = filename.ends_with(".tar.gz") || filename.ends_with(".zip");
        return !is_sdist || parse_filename(filename, project).is_some();
    }
    parse_filename(filename, project).is_none_or(|d| d.name == *project)
}

/// Refuses metadata that names another project or version than the file it
/// came from, as pip does: an index cannot lock one project's dependencies
/// under another's name.
/// What an sdist states about its metadata without a build.
enum SdistMetadata {
    /// The metadata, stated statically.
    Static(String),
    /// It must be built; what was read of it.
    Dynamic(SdistRead),
}

/// What was read of an sdist whose metadata must be built.
#[derive(Default)]
struct SdistRead {
    /// Its `pyproject.toml`, if it has one.
    pyproject: Option<String>,
    /// The sdist unpacked, when that was how it was read.
    unpacked: Option<Unpacked>,
}

/// An sdist unpacked for its build: the directory holding it (removed
/// when dropped; the build scripts' files go there too) and the sdist's
/// top directory inside it.
struct Unpacked {
    dir: tempfile::TempDir,
    source: std::path::PathBuf,
}

/// Unpacks `sdist` (a `.tar.gz`) into a new directory, off the runtime's
/// threads; the file is rewound.
async fn unpack(sdist: &mut std::fs::File) -> Result<Unpacked, String> {
    rewind(sdist).map_err(|e| e.to_string())?;
    let copy = sdist.try_clone().map_err(|e| e.to_string())?;
    let unpacked = tokio::task::spawn_blocking(move || {
        let dir = tempfile::Builder::new()
            .prefix("imagelock-build-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let into = dir.path().join("src");
        fs_err::create_dir(&into).map_err(|e| e.to_string())?;
        let source = archive::unpack_sdist(std::io::BufReader::new(copy), &into)
            .map_err(|e| format!("unpacking: {e}"))?;
        Ok::<_, String>(Unpacked { dir, source })
    })
    .await
    .map_err(|e| e.to_string())?;
    rewind(sdist).map_err(|e| e.to_string())?;
    unpacked
}

impl IndexClient {
    /// An sdist's metadata when it is stated statically: its PKG-INFO when
    /// that is metadata 2.2 or newer with nothing needed dynamic (PEP 643),
    /// else its `pyproject.toml`'s `[project]` table when that states the
    /// dependencies for a backend that honours it (PEP 621, as uv reads
    /// it). PKG-INFO comes early and ends the read when static. Otherwise,
    /// when `unpack` (the sdist will be built if nothing is stated), the
    /// sdist is unpacked for the build and `pyproject.toml` read from
    /// there: one pass over a large sdist, not a search through it and then
    /// an unpacking. `streaming`, when given, did that pass while the sdist
    /// downloaded; the file is read only when that failed. Without
    /// `unpack`, both files are searched for in one pass. The file is
    /// rewound.
    async fn static_sdist_metadata(
        &self,
        sdist: &mut std::fs::File,
        unpack: bool,
        streaming: Option<Streaming>,
    ) -> Result<SdistMetadata, PypiError> {
        if let Some(streaming) = streaming {
            match streaming.finish().await {
                Streamed::Static(text) => {
                    self.count_tree(|t| t.streamed += 1);
                    return Ok(SdistMetadata::Static(text));
                }
                Streamed::Tree(u) if unpack => {
                    self.count_tree(|t| t.streamed += 1);
                    let pyproject = read_capped(&u.source.join("pyproject.toml"));
                    return Ok(stated_or_dynamic(pyproject, Some(u)));
                }
                // Read again from the file, which names the sdist in the
                // build's error if it does not unpack.
                Streamed::Tree(_) | Streamed::Failed => {
                    self.count_tree(|t| t.fell_back += 1);
                }
            }
        }
        let is_static = |text: &str| CoreMetadata::parse(text).is_ok_and(|m| m.is_static());
        let [pkg_info, mut pyproject] = archive::sdist_members(
            std::io::BufReader::new(&mut *sdist),
            ["PKG-INFO", "pyproject.toml"],
            |[pkg_info, _]| {
                pkg_info.as_deref().is_some_and(is_static) || (unpack && pkg_info.is_some())
            },
        );
        rewind(sdist)?;
        if let Some(text) = pkg_info
            && is_static(&text)
        {
            return Ok(SdistMetadata::Static(text));
        }
        let mut unpacked = None;
        if unpack {
            // An sdist that does not unpack is searched as before; its
            // build then says why it cannot unpack it.
            self.count_tree(|t| t.from_file += 1);
            match self::unpack(sdist).await {
                Ok(u) => {
                    pyproject = read_capped(&u.source.join("pyproject.toml"));
                    unpacked = Some(u);
                }
                Err(_) => {
                    let [found] = archive::sdist_members(
                        std::io::BufReader::new(&mut *sdist),
                        ["pyproject.toml"],
                        |_| false,
                    );
                    rewind(sdist)?;
                    pyproject = found;
                }
            }
        }
        Ok(stated_or_dynamic(pyproject, unpacked))
    }
}

/// The metadata `pyproject.toml` states (PEP 621, for a backend that
/// honours it), or what a build needs of the sdist.
fn stated_or_dynamic(pyproject: Option<String>, unpacked: Option<Unpacked>) -> SdistMetadata {
    let stated = pyproject
        .as_deref()
        .and_then(build::static_metadata)
        .filter(|text| {
            CoreMetadata::parse(text).is_ok_and(|m| m.is_static() && m.requirements().is_ok())
        });
    match stated {
        Some(text) => SdistMetadata::Static(text),
        None => SdistMetadata::Dynamic(SdistRead {
            pyproject,
            unpacked,
        }),
    }
}

/// Chunks of a download held in flight for the unpacking thread (of at
/// most 256 KiB each: a few MiB).
const TEE_DEPTH: usize = 16;

/// An sdist unpacked by a blocking thread from its bytes as they download
/// (gunzip and tar as they arrive), with the rules of
/// [`archive::unpack_sdist`]. It notes `PKG-INFO` as it passes and stops
/// there when that states the metadata (PEP 643). What it gives is used
/// only once the download finished and its hash was checked.
struct Streaming(tokio::task::JoinHandle<Streamed>);

/// What [`Streaming`] made of an sdist.
enum Streamed {
    /// Its `PKG-INFO`, stating the metadata: the unpacking stopped there.
    Static(String),
    /// The sdist unpacked whole (its `PKG-INFO`, if any, is not static).
    Tree(Unpacked),
    /// A tar or gzip error, or the download stopped short: not fatal by
    /// itself (the downloaded file is read as without streaming, which
    /// says what is wrong with it).
    Failed,
}

impl Streaming {
    /// The thread, and the tee that feeds it.
    fn start() -> (fetch::Tee, Streaming) {
        let (tee, reader) = fetch::Tee::channel(TEE_DEPTH);
        let thread = tokio::task::spawn_blocking(move || unpack_streamed(reader));
        (tee, Streaming(thread))
    }

    /// Waits for the thread (it ends once the download has).
    async fn finish(self) -> Streamed {
        self.0.await.unwrap_or(Streamed::Failed)
    }
}

fn unpack_streamed(reader: fetch::TeeReader) -> Streamed {
    let is_static = |text: &str| CoreMetadata::parse(text).is_ok_and(|m| m.is_static());
    let made = tempfile::Builder::new()
        .prefix("imagelock-build-")
        .tempdir()
        .and_then(|dir| {
            let into = dir.path().join("src");
            fs_err::create_dir(&into)?;
            Ok((dir, into))
        });
    let (dir, into) = match made {
        Ok(made) => made,
        Err(_) => return Streamed::Failed,
    };
    // The first `<top>/PKG-INFO` counts, as in `archive::sdist_members`.
    let mut seen_pkg_info = false;
    let mut stated = None;
    let unpacked = archive::unpack_sdist_watching(
        // Unbuffered: the gzip reader buffers its input.
        reader,
        &into,
        |member| {
            if seen_pkg_info || !archive::is_top_file(member, "PKG-INFO") {
                return true;
            }
            seen_pkg_info = true;
            if member.regular
                && let Some(text) = read_capped(member.path)
                && is_static(&text)
            {
                stated = Some(text);
                return false;
            }
            true
        },
    );
    // Dropping the reader here tells the download to send no more.
    match (unpacked, stated) {
        (Ok(None), Some(text)) => Streamed::Static(text),
        (Ok(Some(source)), _) => Streamed::Tree(Unpacked { dir, source }),
        (Ok(None), None) | (Err(_), _) => Streamed::Failed,
    }
}

/// A text file of at most 16 MiB (as read from an archive), or `None`.
fn read_capped(path: &std::path::Path) -> Option<String> {
    use std::io::Read as _;
    let mut text = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(16 << 20)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

fn check_identity(
    meta: &CoreMetadata,
    filename: &str,
    project: &PackageName,
    version: Option<&Version>,
) -> Result<(), PypiError> {
    let named = PackageName::from_str(&meta.name).ok();
    if named.as_ref() != Some(project) {
        return Err(PypiError::WrongMetadata {
            file: filename.to_string(),
            field: "Name",
            found: meta.name.clone(),
            expected: project.to_string(),
        });
    }
    if let Some(version) = version
        && Version::from_str(&meta.version).ok().as_ref() != Some(version)
    {
        return Err(PypiError::WrongMetadata {
            file: filename.to_string(),
            field: "Version",
            found: meta.version.clone(),
            expected: version.to_string(),
        });
    }
    Ok(())
}

fn rewind(file: &mut std::fs::File) -> Result<(), PypiError> {
    use std::io::Seek;
    file.rewind().map_err(|e| PypiError::Io(e.to_string()))
}

const BUILD_SCRIPT: &str = include_str!("build_metadata.py");

/// The solver's view of the indexes: blocking calls on a runtime handle,
/// plus prefetching so pages and metadata arrive concurrently.
pub struct IndexSource {
    client: Arc<IndexClient>,
    handle: tokio::runtime::Handle,
    prefetch: Prefetch,
}

impl IndexSource {
    /// Wraps `client`; `handle` runs its futures (the solver itself runs on a
    /// blocking thread).
    pub fn new(
        client: Arc<IndexClient>,
        handle: tokio::runtime::Handle,
        target: Arc<TargetEnv>,
        options: ResolveOptions,
    ) -> Self {
        let prefetch = Prefetch {
            client: client.clone(),
            handle: handle.clone(),
            target,
            pre: options.pre,
            lowest: options.resolution == crate::solve::python::Resolution::Lowest,
            exclude_newer: options.exclude_newer,
            no_deps: options.no_deps,
            wheels_only: false,
            seen: Arc::default(),
            permits: Arc::new(tokio::sync::Semaphore::new(PREFETCH_REQUESTS)),
        };
        Self {
            client,
            handle,
            prefetch,
        }
    }

    /// Prefetches only wheels' metadata (the build requirements' view:
    /// an sdist there is refused, never built).
    pub(crate) fn wheels_only(mut self) -> Self {
        self.prefetch.wheels_only = true;
        self
    }
}

/// At most this many speculative (dependencies' dependencies) prefetches
/// fetch at once: fewer than the client's own limit, so the solver's own
/// requests always find room.
const PREFETCH_REQUESTS: usize = 8;

/// Warms the client's in-run memo ahead of the solver, as uv does: a
/// requirement's page and the metadata of its best candidate, then, when
/// that metadata arrives, the same for each of its dependencies that apply
/// to the target (markers, extras asked for), recursively. Each project
/// (and each extra of it) is prefetched once per run; each file's
/// dependencies are read once per extra. It never changes an answer (the
/// solver asks in its own order and gets the memoized result) and never
/// fails one: a failed prefetch is dropped, and the solver's own request
/// reports the error. Speculative prefetches never build an sdist: only
/// wheels' metadata (PEP 658 or range reads) and an index's stated
/// metadata of an sdist.
#[derive(Clone)]
struct Prefetch {
    client: Arc<IndexClient>,
    handle: tokio::runtime::Handle,
    target: Arc<TargetEnv>,
    pre: bool,
    lowest: bool,
    exclude_newer: Option<String>,
    no_deps: bool,
    wheels_only: bool,
    seen: Arc<Mutex<PrefetchSeen>>,
    permits: Arc<tokio::sync::Semaphore>,
}

/// What this run's prefetches have started: projects and extras asked
/// for, and (file URL, extra) pairs whose dependencies were followed.
#[derive(Default)]
struct PrefetchSeen {
    asked: std::collections::HashSet<(PackageName, Option<pep508_rs::ExtraName>)>,
    followed: std::collections::HashSet<(String, Option<pep508_rs::ExtraName>)>,
}

impl Prefetch {
    /// Starts prefetching `name` (with `extras`) in `range`. `asked`: the
    /// solver saw this requirement (its page and best candidate are
    /// fetched even when seen before, and an sdist's metadata may be
    /// built, as the solver would do next); otherwise it is a dependency
    /// of prefetched metadata and is skipped when already started.
    fn start(
        &self,
        name: PackageName,
        extras: Vec<pep508_rs::ExtraName>,
        range: Ranges<Version>,
        asked: bool,
    ) {
        let keys: Vec<_> = std::iter::once(None)
            .chain(extras.into_iter().map(Some))
            .collect();
        let fresh = {
            let mut seen = self
                .seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut fresh = false;
            for key in &keys {
                fresh |= seen.asked.insert((name.clone(), key.clone()));
            }
            fresh
        };
        if !asked && !fresh {
            return;
        }
        let this = self.clone();
        self.handle.spawn(async move {
            let _ = this.run(name, keys, range, asked).await;
        });
    }

    async fn run(
        self,
        name: PackageName,
        keys: Vec<Option<pep508_rs::ExtraName>>,
        range: Ranges<Version>,
        asked: bool,
    ) -> Option<()> {
        let permit = if asked {
            None
        } else {
            Some(self.permits.acquire().await.ok()?)
        };
        let files = self.client.files(&name).await.ok()?;
        let candidates =
            Candidates::new(&name, &files, &self.target, self.exclude_newer.as_deref());
        let best = if self.lowest {
            candidates.lowest(&range, self.pre, &[])
        } else {
            candidates.best(&range, self.pre, &[])
        }?;
        let wheel = best.file.filename.ends_with(".whl");
        if (self.wheels_only && !wheel) || (!asked && !wheel && best.file.core_metadata.is_none()) {
            return None;
        }
        let meta = self.client.metadata(&name, &best.file).await.ok()?;
        drop(permit);
        if self.no_deps {
            return None;
        }
        let follow: Vec<_> = {
            let mut seen = self
                .seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            keys.into_iter()
                .filter(|key| seen.followed.insert((best.file.url.clone(), key.clone())))
                .collect()
        };
        if follow.is_empty() {
            return None;
        }
        let markers = self.target.markers();
        for req in meta.requirements().ok()? {
            let applies = follow.iter().any(|key| match key {
                None => req.evaluate_markers(markers, &[]),
                Some(extra) => {
                    req.evaluate_markers(markers, std::slice::from_ref(extra))
                        && !req.evaluate_markers(markers, &[])
                }
            });
            let range = match &req.version_or_url {
                Some(pep508_rs::VersionOrUrl::VersionSpecifier(specs)) => {
                    crate::solve::python::resolver::specifiers_to_range(specs)
                }
                // A direct URL is the solver's to fetch.
                Some(pep508_rs::VersionOrUrl::Url(_)) => continue,
                None => Ranges::full(),
            };
            if applies {
                self.start(req.name, req.extras, range, false);
            }
        }
        Some(())
    }
}

impl PackageSource for IndexSource {
    fn files(&self, name: &PackageName) -> Result<Arc<Vec<DistFile>>, SourceError> {
        self.handle.block_on(self.client.files(name))
    }

    fn metadata(
        &self,
        name: &PackageName,
        file: &DistFile,
    ) -> Result<Arc<CoreMetadata>, SourceError> {
        self.handle.block_on(self.client.metadata(name, file))
    }

    fn direct(&self, name: &PackageName, url: &str) -> Result<DirectDist, SourceError> {
        self.handle
            .block_on(self.client.direct(name, url))
            .map_err(SourceError::from)
    }

    fn prefetch(
        &self,
        name: &PackageName,
        extras: &[pep508_rs::ExtraName],
        range: &Ranges<Version>,
    ) {
        self.prefetch
            .start(name.clone(), extras.to_vec(), range.clone(), true);
    }
}

/// What an index says about the hash of a locked file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockedHash {
    /// The index lists the file with the locked sha256.
    Matches,
    /// The index lists the file with another sha256: the lock was edited,
    /// or the index replaced the file (a `hash-mismatch` finding).
    Mismatch { served: String },
    /// The index lists the file without a hash.
    Unstated,
    /// The index does not list the file (any more).
    NotListed,
}

/// Compares the sha256 locked for `filename` with what the index serves
/// for that exact file (`files` of its project page), for `drift` and
/// `freeze`, which fetch the page anyway.
pub fn compare_locked_hash(files: &[DistFile], filename: &str, locked: &str) -> LockedHash {
    let Some(file) = files.iter().find(|f| f.filename == filename) else {
        return LockedHash::NotListed;
    };
    match &file.sha256 {
        None => LockedHash::Unstated,
        Some(served) if served.eq_ignore_ascii_case(locked.trim_start_matches("sha256:")) => {
            LockedHash::Matches
        }
        Some(served) => LockedHash::Mismatch {
            served: served.to_ascii_lowercase(),
        },
    }
}

/// Parses a package name for error messages and lookups.
pub fn package_name(name: &str) -> Option<PackageName> {
    PackageName::from_str(name).ok()
}

/// Resolves `request` for `target` against `client`'s indexes. The solver
/// runs on a blocking thread while fetches run on the current runtime.
pub async fn resolve(
    client: Arc<IndexClient>,
    target: Arc<TargetEnv>,
    request: crate::solve::python::ResolveRequest,
) -> Result<Vec<crate::solve::python::PinnedPackage>, crate::solve::python::SolveError> {
    let source = IndexSource::new(
        client,
        tokio::runtime::Handle::current(),
        target.clone(),
        request.options.clone(),
    );
    tokio::task::spawn_blocking(move || crate::solve::python::resolve(&source, &target, &request))
        .await
        .map_err(|e| crate::solve::python::SolveError::Internal(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, sha256: Option<&str>) -> DistFile {
        DistFile {
            filename: name.into(),
            url: format!("https://files.example/{name}"),
            sha256: sha256.map(str::to_string),
            requires_python: None,
            yanked: None,
            upload_time: None,
            size: None,
            core_metadata: None,
        }
    }

    #[test]
    fn locked_hashes_are_compared_with_the_index() {
        let files = [
            file("six-1.16.0-py2.py3-none-any.whl", Some("AB12")),
            file("six-1.16.0.tar.gz", None),
        ];
        let whl = "six-1.16.0-py2.py3-none-any.whl";
        assert_eq!(
            compare_locked_hash(&files, whl, "ab12"),
            LockedHash::Matches
        );
        assert_eq!(
            compare_locked_hash(&files, whl, "sha256:ab13"),
            LockedHash::Mismatch {
                served: "ab12".into()
            }
        );
        assert_eq!(
            compare_locked_hash(&files, "six-1.16.0.tar.gz", "ab12"),
            LockedHash::Unstated
        );
        assert_eq!(
            compare_locked_hash(&files, "six-1.15.0.tar.gz", "ab12"),
            LockedHash::NotListed
        );
    }

    #[test]
    fn foreign_files_do_not_belong() {
        let six = PackageName::from_str("six").unwrap();
        let confuse = PackageName::from_str("confuse").unwrap();
        assert!(belongs_to("six-1.16.0-py2.py3-none-any.whl", &six));
        assert!(!belongs_to("six-1.16.0-py2.py3-none-any.whl", &confuse));
        assert!(!belongs_to("six-1.16.0.tar.gz", &confuse));
        assert!(belongs_to("six-1.16.0.tar.gz", &six));
        assert!(belongs_to("six-1.16.0.egg", &confuse));
    }
}

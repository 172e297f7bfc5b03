//! The registry client proper: endpoints, authentication, fetching and
//! verifying content, and walking an index to each platform's config.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::try_join_all;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use tokio::sync::OnceCell;

use super::{CONFIG_LIMIT, MANIFEST_LIMIT, RegistryConfigs, ResolveError, canonical_name};
use crate::config::PullFromMirror;
use crate::oci::layout::{self, LayoutEntry};
use crate::oci::select::offered_list;
use crate::oci::{
    Digest, Document, ImageConfig, ImageLocation, ImageRef, Index, MediaTypes, Platform,
    PlatformWalk, ResolvedImage, ResolvedPlatform, SelectPlatformError, check_digest,
    manifest_layers, parse_document,
};
use crate::resolve::auth::{Challenge, CredentialStore, Credentials};
use crate::resolve::http::{
    HttpClient, HttpError, HttpOptions, HttpRequest, HttpResponse, is_loopback, origin,
};

/// How the client is set up.
#[derive(Clone, Debug)]
pub struct RegistryOptions {
    pub http: HttpOptions,
    pub credentials: CredentialStore,
    /// Per-registry locations, mirrors and `insecure` flags.
    pub registries: RegistryConfigs,
    /// Directory relative `oci:` locations are resolved against.
    pub root: PathBuf,
    /// Images resolved at once by [`Registry::resolve_all`].
    pub concurrency: usize,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            http: HttpOptions::default(),
            credentials: CredentialStore::from_env(),
            registries: RegistryConfigs::new(),
            root: PathBuf::from("."),
            concurrency: 16,
        }
    }
}

/// Requests made so far, by kind (each logical request once, retries not
/// counted again).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestCounts {
    pub manifests: u64,
    pub blobs: u64,
    pub tokens: u64,
    /// `GET /v2/` probes, one per host.
    pub pings: u64,
    /// Token requests per `realm service scope`.
    pub token_scopes: BTreeMap<String, u64>,
}

#[derive(Debug, Default)]
struct Counters {
    manifests: AtomicU64,
    blobs: AtomicU64,
    tokens: AtomicU64,
    pings: AtomicU64,
    token_scopes: Mutex<BTreeMap<String, u64>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Manifest,
    Blob,
    /// A blob whose body is streamed to the caller, unread and unchecked
    /// here (the image reader checks layers while it decompresses them).
    Layer,
}

/// A registry endpoint (or a namespace in one).
#[derive(Clone, Debug)]
struct Remote {
    /// `host[:port]` the API answers on.
    host: String,
    /// Namespace prepended to repositories (`""` or `"mirror/"`).
    prefix: String,
    /// The name credentials are stored under.
    registry: String,
    insecure: bool,
}

#[derive(Clone, Debug)]
enum Location {
    Remote(Remote),
    /// A directory holding one OCI layout per repository.
    Layouts(PathBuf),
    /// One OCI layout.
    Layout(PathBuf),
}

impl Location {
    fn describe(&self) -> String {
        match self {
            Location::Remote(r) => r.host.clone(),
            Location::Layouts(d) | Location::Layout(d) => format!("oci:{}", d.display()),
        }
    }
}

/// A location and what it may be asked for.
#[derive(Clone, Debug)]
struct Source {
    location: Location,
    tags: bool,
    digests: bool,
}

#[derive(Clone, Debug)]
enum HostAuth {
    Anonymous,
    Basic,
    Bearer { realm: Url, service: Option<String> },
}

#[derive(Debug)]
struct Endpoint {
    base: Url,
    auth: HostAuth,
}

struct Token {
    value: String,
    obtained: Instant,
    expires: Instant,
}

type TokenKey = (String, String, String);

/// Verified content and the media type it was served as.
type ContentCell = Arc<OnceCell<(Bytes, Option<String>)>>;

/// An OCI distribution client. Cheap to share; make one per run.
pub struct Registry {
    http: HttpClient,
    options: RegistryOptions,
    endpoints: Mutex<HashMap<String, Arc<OnceCell<Arc<Endpoint>>>>>,
    tokens: Mutex<HashMap<TokenKey, Arc<tokio::sync::Mutex<Option<Token>>>>>,
    credentials: Mutex<HashMap<(String, String), Option<Credentials>>>,
    /// Verified manifests and configs by digest (with the media type they
    /// were served as), so shared content is fetched once per run: a
    /// second asker waits for the first request instead of sending its own.
    content: Mutex<HashMap<Digest, ContentCell>>,
    /// What each tag (`registry/repository:tag`) pointed to when first
    /// asked in this run: a run sees one state of every tag, and asks for
    /// it once however many images, stages and platforms pull it.
    tags: Mutex<HashMap<String, Arc<OnceCell<Digest>>>>,
    counters: Counters,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A blob being read: a registry response or a file of an OCI layout.
pub enum BlobStream {
    /// Resumed with `Range` after a cut, within the retry budget.
    Remote(Box<crate::resolve::http::Body>),
    File(fs_err::File),
}

struct Fetched {
    digest: Digest,
    content_type: Option<String>,
    body: Bytes,
}

impl Registry {
    pub fn new(options: RegistryOptions) -> Result<Registry, HttpError> {
        let http = HttpClient::new(options.http.clone())?;
        Ok(Registry::with_http(options, http))
    }

    /// A client sending through `http` (shared with the other services of
    /// a run); `options.http` is then unused.
    pub fn with_http(options: RegistryOptions, http: HttpClient) -> Registry {
        Registry {
            http,
            options,
            endpoints: Mutex::default(),
            tokens: Mutex::default(),
            credentials: Mutex::default(),
            content: Mutex::default(),
            tags: Mutex::default(),
            counters: Counters::default(),
        }
    }

    /// Requests made so far.
    pub fn request_counts(&self) -> RequestCounts {
        RequestCounts {
            manifests: self.counters.manifests.load(Ordering::Relaxed),
            blobs: self.counters.blobs.load(Ordering::Relaxed),
            tokens: self.counters.tokens.load(Ordering::Relaxed),
            pings: self.counters.pings.load(Ordering::Relaxed),
            token_scopes: lock(&self.counters.token_scopes).clone(),
        }
    }

    /// Resolves an image for each platform (`linux/amd64` when none is
    /// given): one manifest request for the reference, then per platform
    /// its manifest and config, each verified against its digest.
    pub async fn resolve(
        &self,
        image: &ImageRef,
        platforms: &[Platform],
    ) -> Result<ResolvedImage, ResolveError> {
        let sources = self.sources(image)?;
        let label = image.to_string();
        let top = self.fetch_named(&label, image, &sources).await?;
        self.walk(
            &label,
            canonical_name(image),
            Some(image),
            &sources,
            top,
            platforms,
        )
        .await
    }

    /// Resolves many images, several at a time, in order.
    pub async fn resolve_all(
        &self,
        images: &[ImageRef],
        platforms: &[Platform],
    ) -> Vec<Result<ResolvedImage, ResolveError>> {
        futures_util::stream::iter(images)
            .map(|i| self.resolve(i, platforms))
            .buffered(self.options.concurrency.max(1))
            .collect()
            .await
    }

    /// Resolves a registry reference (`docker://`) or an OCI layout
    /// (`oci:DIR[:TAG]`).
    pub async fn resolve_location(
        &self,
        location: &ImageLocation,
        platforms: &[Platform],
    ) -> Result<ResolvedImage, ResolveError> {
        match location {
            ImageLocation::Docker(image) => self.resolve(image, platforms).await,
            ImageLocation::Oci { dir, tag } => {
                let dir = self.options.root.join(dir);
                let name = ImageLocation::Oci {
                    dir: dir.clone(),
                    tag: tag.clone(),
                }
                .to_string();
                let sources = [Source {
                    location: Location::Layout(dir.clone()),
                    tags: true,
                    digests: true,
                }];
                let top = self.layout_top(&name, &dir, tag.as_deref())?;
                self.walk(&name, name.clone(), None, &sources, top, platforms)
                    .await
            }
            other => Err(ResolveError::Transport {
                location: other.to_string(),
            }),
        }
    }

    /// The digest a tag points to, with a `HEAD` request (which does not
    /// count against Docker Hub's pull limit); a registry that sends no
    /// `Docker-Content-Digest` is asked with `GET` and the body hashed.
    pub async fn head_digest(&self, image: &ImageRef) -> Result<(Digest, String), ResolveError> {
        let label = image.to_string();
        let sources = self.sources(image)?;
        let mut last = None;
        for source in sources.iter().filter(|s| {
            if image.digest().is_some() {
                s.digests
            } else {
                s.tags
            }
        }) {
            let Location::Remote(remote) = &source.location else {
                match self
                    .fetch_tag_uncached(&label, image, std::slice::from_ref(source))
                    .await
                {
                    Ok(f) => {
                        self.keep(&f.digest, &f.body, f.content_type.as_deref());
                        return Ok((f.digest, f.content_type.unwrap_or_default()));
                    }
                    Err(e) => {
                        last = Some(e);
                        continue;
                    }
                }
            };
            let path = format!("manifests/{}", image.reference());
            let head = self
                .request(
                    &label,
                    image,
                    remote,
                    Method::HEAD,
                    &path,
                    Kind::Manifest,
                    MANIFEST_LIMIT,
                )
                .await;
            let outcome = match head {
                Ok(resp) => match (stated_digest(&resp), resp.header(CONTENT_TYPE.as_str())) {
                    (Some(Ok(d)), Some(ct)) => Ok((d, media_type_only(ct))),
                    _ => self
                        .fetch_tag_uncached(&label, image, std::slice::from_ref(source))
                        .await
                        .and_then(|f| {
                            let (mt, _) = parse_document(&f.body, f.content_type.as_deref())
                                .map_err(|e| invalid(&label, &remote.host, e.to_string()))?;
                            self.keep(&f.digest, &f.body, f.content_type.as_deref());
                            Ok((f.digest, mt))
                        }),
                },
                Err(e) => Err(e),
            };
            match outcome {
                Ok(v) => return Ok(v),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| not_found(&label, image.registry())))
    }

    /// The digest `image`'s tag points to in this run: known already when
    /// the tag was resolved, else asked with `HEAD` ([`Self::head_digest`]),
    /// once per run. A digest reference is its own answer.
    pub async fn tag_digest(&self, image: &ImageRef) -> Result<Digest, ResolveError> {
        if let Some(d) = image.digest() {
            return Ok(d.clone());
        }
        let cell = self.tag_cell(image);
        Ok(cell
            .get_or_try_init(|| async { self.head_digest(image).await.map(|(d, _)| d) })
            .await?
            .clone())
    }

    /// The manifest (or index) `image` names, verified against its digest,
    /// as served: its digest, the media type it was served as, its bytes.
    /// For documents [`Self::resolve`] does not walk, such as an ORAS
    /// artifact's manifest.
    pub async fn manifest(
        &self,
        image: &ImageRef,
    ) -> Result<(Digest, Option<String>, Bytes), ResolveError> {
        let sources = self.sources(image)?;
        let label = image.to_string();
        let f = self.fetch_named(&label, image, &sources).await?;
        Ok((f.digest, f.content_type, f.body))
    }

    /// A blob of `image`'s repository by digest, as a stream: layers are
    /// too large to hold, so the reader checks the digest as it reads.
    pub async fn open_blob(
        &self,
        image: &ImageRef,
        digest: &Digest,
    ) -> Result<BlobStream, ResolveError> {
        let label = image.to_string();
        let mut last = None;
        for source in self.sources(image)?.iter().filter(|s| s.digests) {
            let outcome = match &source.location {
                Location::Remote(remote) => self
                    .request(
                        &label,
                        image,
                        remote,
                        Method::GET,
                        &format!("blobs/{digest}"),
                        Kind::Layer,
                        u64::MAX,
                    )
                    .await
                    .and_then(|resp| {
                        resp.stream
                            .and_then(|s| s.take())
                            .map(|body| BlobStream::Remote(Box::new(body)))
                            .ok_or_else(|| not_found(&label, &remote.registry))
                    }),
                Location::Layouts(root) | Location::Layout(root) => {
                    let dir = match &source.location {
                        Location::Layouts(_) => root.join(image.repository()),
                        _ => root.clone(),
                    };
                    let path = dir
                        .join("blobs")
                        .join(digest.algorithm().as_str())
                        .join(digest.hex());
                    fs_err::File::open(&path)
                        .map(BlobStream::File)
                        .map_err(|e| ResolveError::Layout {
                            image: label.clone(),
                            dir: dir.clone(),
                            reason: e.to_string(),
                        })
                }
            };
            match outcome {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| not_found(&label, image.registry())))
    }

    /// From a fetched top-level manifest or index to each platform's image.
    async fn walk(
        &self,
        label: &str,
        name: String,
        image: Option<&ImageRef>,
        sources: &[Source],
        top: Fetched,
        platforms: &[Platform],
    ) -> Result<ResolvedImage, ResolveError> {
        let default = [Platform::linux_amd64()];
        let platforms = if platforms.is_empty() {
            &default[..]
        } else {
            platforms
        };
        let origin = sources_origin(sources);
        let (media_type, document) = parse_document(&top.body, top.content_type.as_deref())
            .map_err(|e| invalid(label, &origin, e.to_string()))?;
        let top_at = (&top.digest, media_type.as_str(), &document);
        let jobs = platforms
            .iter()
            .map(|platform| self.walk_platform(label, image, sources, top_at, platform));
        let resolved = try_join_all(jobs).await?;
        Ok(ResolvedImage {
            name,
            digest: top.digest,
            media_type,
            platforms: resolved,
        })
    }

    /// From the top document down to one platform's manifest (following
    /// nested indexes as [`PlatformWalk`] rules), then its config.
    async fn walk_platform(
        &self,
        label: &str,
        image: Option<&ImageRef>,
        sources: &[Source],
        (top_digest, top_media_type, top): (&Digest, &str, &Document),
        platform: &Platform,
    ) -> Result<ResolvedPlatform, ResolveError> {
        let origin = sources_origin(sources);
        let mut walk = PlatformWalk::new(platform);
        let mut digest = top_digest.clone();
        let mut media_type = top_media_type.to_string();
        let mut document = top.clone();
        let manifest = loop {
            let index = match document {
                Document::Manifest(m) => break m,
                Document::Index(index) => index,
            };
            let entry = walk
                .descend(&index, Some(&digest))
                .map_err(|e| platform_error(label, &origin, e))?
                .clone();
            let child = self
                .fetch_by_digest(
                    label,
                    image,
                    sources,
                    Kind::Manifest,
                    &entry.digest,
                    MANIFEST_LIMIT,
                )
                .await?;
            (media_type, document) = parse_document(&child.body, entry.media_type.as_deref())
                .map_err(|e| invalid(label, &origin, e.to_string()))?;
            digest = entry.digest;
        };
        let config_digest = manifest.config.digest.clone();
        let body = self
            .fetch_by_digest(
                label,
                image,
                sources,
                Kind::Blob,
                &config_digest,
                CONFIG_LIMIT,
            )
            .await?;
        let config = ImageConfig::parse(&body.body)
            .map_err(|e| invalid(label, &origin, format!("invalid image config: {e}")))?;
        walk.check_config(config.platform())
            .map_err(|e| platform_error(label, &origin, e))?;
        let layers = manifest_layers(&manifest, &config)
            .map_err(|e| invalid(label, &origin, e.to_string()))?;
        Ok(ResolvedPlatform {
            reference: label.to_string(),
            platform: platform.clone(),
            index_digest: walk.index_digest().cloned(),
            manifest_digest: Some(digest),
            media_type: Some(media_type),
            config_digest,
            config,
            layers,
        })
    }

    /// Where an image may be read from, in the order to try.
    fn sources(&self, image: &ImageRef) -> Result<Vec<Source>, ResolveError> {
        let config = self.options.registries.get(image.registry());
        let mut out = Vec::new();
        if let Some(config) = config {
            for mirror in &config.mirrors {
                out.push(Source {
                    location: self.location(image.registry(), &mirror.location, false)?,
                    tags: matches!(
                        mirror.pull_from_mirror,
                        PullFromMirror::TagOnly | PullFromMirror::All
                    ),
                    digests: matches!(
                        mirror.pull_from_mirror,
                        PullFromMirror::DigestOnly | PullFromMirror::All
                    ),
                });
            }
        }
        let insecure = config.is_some_and(|c| c.insecure);
        let location = match config.and_then(|c| c.location.as_deref()) {
            Some(l) => self.location(image.registry(), l, insecure)?,
            None => Location::Remote(Remote {
                host: image.api_host().to_string(),
                prefix: String::new(),
                registry: image.registry().to_string(),
                insecure,
            }),
        };
        out.push(Source {
            location,
            tags: true,
            digests: true,
        });
        Ok(out)
    }

    fn location(
        &self,
        registry: &str,
        location: &str,
        insecure: bool,
    ) -> Result<Location, ResolveError> {
        if let Some(dir) = location.strip_prefix("oci:") {
            return Ok(Location::Layouts(self.options.root.join(dir)));
        }
        let bad = || ResolveError::Location {
            registry: registry.to_string(),
            location: location.to_string(),
        };
        let (host, prefix) = location.split_once('/').unwrap_or((location, ""));
        let url = Url::parse(&format!("https://{host}/")).map_err(|_| bad())?;
        if host.is_empty() || url.path() != "/" || location.contains("://") {
            return Err(bad());
        }
        let own = self
            .options
            .registries
            .get(host)
            .is_some_and(|c| c.insecure);
        let prefix = prefix.trim_matches('/');
        Ok(Location::Remote(Remote {
            host: host.to_string(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            registry: host.to_string(),
            insecure: insecure || own,
        }))
    }

    /// A manifest or config fetched (and verified) in this run, by digest.
    pub fn verified_content(&self, digest: &Digest) -> Option<Bytes> {
        self.cached(digest)
    }

    fn cached(&self, digest: &Digest) -> Option<Bytes> {
        lock(&self.content)
            .get(digest)
            .and_then(|c| c.get())
            .map(|(body, _)| body.clone())
    }

    /// The cell verified content with `digest` is kept in.
    fn content_cell(&self, digest: &Digest) -> ContentCell {
        lock(&self.content)
            .entry(digest.clone())
            .or_default()
            .clone()
    }

    /// Keeps verified content fetched some other way than by its digest
    /// (a tag's manifest).
    fn keep(&self, digest: &Digest, body: &Bytes, content_type: Option<&str>) {
        let _ = self
            .content_cell(digest)
            .set((body.clone(), content_type.map(str::to_string)));
    }

    /// Content by digest from the first source that has it, verified;
    /// fetched once per run (concurrent askers share the one request).
    async fn fetch_by_digest(
        &self,
        label: &str,
        image: Option<&ImageRef>,
        sources: &[Source],
        kind: Kind,
        digest: &Digest,
        limit: u64,
    ) -> Result<Fetched, ResolveError> {
        let cell = self.content_cell(digest);
        let (body, content_type) = cell
            .get_or_try_init(|| {
                self.fetch_by_digest_uncached(label, image, sources, kind, digest, limit)
            })
            .await?
            .clone();
        Ok(Fetched {
            digest: digest.clone(),
            content_type,
            body,
        })
    }

    async fn fetch_by_digest_uncached(
        &self,
        label: &str,
        image: Option<&ImageRef>,
        sources: &[Source],
        kind: Kind,
        digest: &Digest,
        limit: u64,
    ) -> Result<(Bytes, Option<String>), ResolveError> {
        let mut last = None;
        for source in sources.iter().filter(|s| s.digests) {
            let outcome = match (&source.location, image) {
                (Location::Remote(remote), Some(image)) => {
                    let path = match kind {
                        Kind::Manifest => format!("manifests/{digest}"),
                        Kind::Blob | Kind::Layer => format!("blobs/{digest}"),
                    };
                    // Content that does not hash to its digest is asked for
                    // once more (a byte damaged on the way); twice wrong is
                    // refused.
                    let mut outcome = None;
                    for _ in 0..2 {
                        let got = self
                            .request(label, image, remote, Method::GET, &path, kind, limit)
                            .await
                            .and_then(|resp| {
                                verified(label, &remote.host, digest, &resp.body)?;
                                Ok(Fetched {
                                    digest: digest.clone(),
                                    content_type: resp
                                        .header(CONTENT_TYPE.as_str())
                                        .map(str::to_string),
                                    body: resp.body,
                                })
                            });
                        let again = matches!(got, Err(ResolveError::DigestMismatch { .. }));
                        outcome = Some(got);
                        if !again {
                            break;
                        }
                    }
                    outcome.expect("one attempt at least")
                }
                (Location::Remote(_), None) => continue,
                (Location::Layouts(root), _) => {
                    let dir = image.map_or_else(|| root.clone(), |i| root.join(i.repository()));
                    layout_blob(label, &dir, digest, limit)
                }
                (Location::Layout(dir), _) => layout_blob(label, dir, digest, limit),
            };
            match outcome {
                Ok(f) => return Ok((f.body, f.content_type)),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| not_found(label, image.map_or("", ImageRef::registry))))
    }

    /// A tag's manifest from the first source that resolves tags.
    /// The manifest or index `image` names: by digest when it has one (the
    /// tag is then only for readers), else by tag.
    async fn fetch_named(
        &self,
        label: &str,
        image: &ImageRef,
        sources: &[Source],
    ) -> Result<Fetched, ResolveError> {
        match image.digest() {
            Some(d) => {
                self.fetch_by_digest(
                    label,
                    Some(image),
                    sources,
                    Kind::Manifest,
                    d,
                    MANIFEST_LIMIT,
                )
                .await
            }
            None => self.fetch_tag(label, image, sources).await,
        }
    }

    /// A tag's manifest: asked for once per run (by the first asker; the
    /// others wait for it), so every image, stage and platform pulling the
    /// tag sees the same manifest. A tag whose digest a `HEAD` found is
    /// fetched by that digest.
    async fn fetch_tag(
        &self,
        label: &str,
        image: &ImageRef,
        sources: &[Source],
    ) -> Result<Fetched, ResolveError> {
        let cell = self.tag_cell(image);
        let digest = cell
            .get_or_try_init(|| async {
                let f = self.fetch_tag_uncached(label, image, sources).await?;
                self.keep(&f.digest, &f.body, f.content_type.as_deref());
                Ok::<_, ResolveError>(f.digest)
            })
            .await?
            .clone();
        self.fetch_by_digest(
            label,
            Some(image),
            sources,
            Kind::Manifest,
            &digest,
            MANIFEST_LIMIT,
        )
        .await
    }

    /// The cell what `image`'s tag points to is kept in.
    fn tag_cell(&self, image: &ImageRef) -> Arc<OnceCell<Digest>> {
        let key = format!("{}:{}", image.name(), image.reference());
        lock(&self.tags).entry(key).or_default().clone()
    }

    async fn fetch_tag_uncached(
        &self,
        label: &str,
        image: &ImageRef,
        sources: &[Source],
    ) -> Result<Fetched, ResolveError> {
        let reference = image.reference();
        let mut last = None;
        for source in sources.iter().filter(|s| s.tags) {
            let outcome = match &source.location {
                Location::Remote(remote) => {
                    let path = format!("manifests/{reference}");
                    match self
                        .request(
                            label,
                            image,
                            remote,
                            Method::GET,
                            &path,
                            Kind::Manifest,
                            MANIFEST_LIMIT,
                        )
                        .await
                    {
                        Ok(resp) => {
                            let digest = match stated_digest(&resp) {
                                Some(Ok(stated)) => {
                                    verified(label, &remote.host, &stated, &resp.body)?;
                                    stated
                                }
                                // Absent or unreadable: what we got is what we hash.
                                _ => Digest::sha256_of(&resp.body),
                            };
                            Ok(Fetched {
                                digest,
                                content_type: resp
                                    .header(CONTENT_TYPE.as_str())
                                    .map(str::to_string),
                                body: resp.body,
                            })
                        }
                        Err(e) => Err(e),
                    }
                }
                Location::Layouts(root) => {
                    self.layout_top(label, &root.join(image.repository()), Some(&reference))
                }
                Location::Layout(dir) => self.layout_top(label, dir, Some(&reference)),
            };
            match outcome {
                Ok(f) => return Ok(f),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| not_found(label, image.registry())))
    }

    fn layout_top(
        &self,
        label: &str,
        dir: &Path,
        reference: Option<&str>,
    ) -> Result<Fetched, ResolveError> {
        let layout_err = |reason: String| ResolveError::Layout {
            image: label.to_string(),
            dir: dir.to_path_buf(),
            reason,
        };
        let text = fs_err::read(dir.join("index.json")).map_err(|e| layout_err(e.to_string()))?;
        let index: Index = serde_json::from_slice(&text)
            .map_err(|e| layout_err(format!("`index.json` is invalid: {e}")))?;
        let entry = match layout::find(&index, reference).map_err(|e| layout_err(e.to_string()))? {
            LayoutEntry::One(entry) => entry,
            LayoutEntry::PerPlatform(index) => {
                return Err(layout_err(format!(
                    "{} entries, one per platform, match `{}` and no index names them all\nhint: a lock pins an index; write the layout with one (`skopeo copy --all`, `umoci`)",
                    index.manifests.len(),
                    reference.unwrap_or("(no tag)")
                )));
            }
        };
        let fetched = layout_blob(label, dir, &entry.digest, MANIFEST_LIMIT)?;
        Ok(Fetched {
            content_type: entry.media_type,
            ..fetched
        })
    }

    /// One registry request with authentication: proactive when the host's
    /// scheme is known, and once more after a fresh challenge.
    #[allow(clippy::too_many_arguments)]
    async fn request(
        &self,
        label: &str,
        image: &ImageRef,
        remote: &Remote,
        method: Method,
        path: &str,
        kind: Kind,
        limit: u64,
    ) -> Result<HttpResponse, ResolveError> {
        let endpoint = self.endpoint(label, remote).await?;
        let repository = format!("{}{}", remote.prefix, image.repository());
        let url = endpoint
            .base
            .join(&format!("v2/{repository}/{path}"))
            .map_err(|e| invalid(label, &remote.host, format!("bad URL: {e}")))?;
        let scope = format!("repository:{repository}:pull");
        let mut authorization = self
            .authorization(label, remote, &endpoint, &repository, &scope, false)
            .await?;
        for attempt in 0..2 {
            match kind {
                Kind::Manifest => &self.counters.manifests,
                Kind::Blob | Kind::Layer => &self.counters.blobs,
            }
            .fetch_add(1, Ordering::Relaxed);
            let mut request = HttpRequest::get(url.clone(), limit);
            request.method = method.clone();
            request.stream = kind == Kind::Layer;
            if kind == Kind::Manifest {
                request
                    .headers
                    .insert(ACCEPT, HeaderValue::from_static(MediaTypes::ACCEPT));
            }
            if let Some(a) = &authorization {
                let mut value = HeaderValue::from_str(a).map_err(|_| {
                    invalid(
                        label,
                        &remote.host,
                        "credentials contain invalid characters".into(),
                    )
                })?;
                value.set_sensitive(true);
                request.headers.insert(AUTHORIZATION, value);
            }
            let response = self.http.send(request).await.map_err(|e| match e {
                HttpError::TooLarge { limit, .. } => ResolveError::TooLarge {
                    image: label.to_string(),
                    what: match kind {
                        Kind::Manifest => "the manifest",
                        Kind::Blob => "the image config",
                        Kind::Layer => "a layer",
                    },
                    limit,
                },
                source => ResolveError::Http {
                    image: label.to_string(),
                    registry: remote.host.clone(),
                    source: Box::new(source),
                },
            })?;
            let redirected = origin(&response.url) != origin(&url);
            if redirected
                && response.status == StatusCode::UNAUTHORIZED
                && response
                    .headers
                    .contains_key(reqwest::header::WWW_AUTHENTICATE)
            {
                // A redirect target's challenge: credentials are chosen by
                // the host that issued it, and this host has none of ours.
                return Err(ResolveError::ForeignChallenge {
                    image: label.to_string(),
                    registry: remote.registry.clone(),
                    host: origin(&response.url),
                });
            }
            if redirected
                && matches!(
                    response.status,
                    StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
                )
            {
                // Our credentials never went there: not theirs to blame.
                return Err(ResolveError::Redirected {
                    image: label.to_string(),
                    registry: remote.registry.clone(),
                    host: response.url.host_str().unwrap_or_default().to_string(),
                    status: response.status.as_u16(),
                });
            }
            if response.status == StatusCode::UNAUTHORIZED && attempt == 0 {
                let challenge = response
                    .header(WWW_AUTHENTICATE.as_str())
                    .and_then(Challenge::parse);
                match challenge {
                    Some(Challenge::Bearer {
                        realm,
                        service,
                        scope: asked,
                    }) => {
                        let realm = self.realm_url(label, remote, &realm)?;
                        let scope = asked.unwrap_or(scope.clone());
                        let token = self
                            .token(
                                label,
                                remote,
                                &repository,
                                &realm,
                                service.as_deref(),
                                &scope,
                                true,
                            )
                            .await?;
                        authorization = Some(format!("Bearer {token}"));
                        continue;
                    }
                    Some(Challenge::Basic { .. }) if authorization.is_none() => {
                        authorization = self
                            .credentials(remote, &repository)?
                            .and_then(|c| c.basic_header());
                        if authorization.is_some() {
                            continue;
                        }
                    }
                    _ => {}
                }
            }
            return match response.status {
                s if s.is_success() => Ok(response),
                StatusCode::UNAUTHORIZED => Err(ResolveError::Unauthorized {
                    image: label.to_string(),
                    registry: remote.registry.clone(),
                }),
                StatusCode::FORBIDDEN => Err(ResolveError::Denied {
                    image: label.to_string(),
                    registry: remote.registry.clone(),
                }),
                StatusCode::NOT_FOUND => Err(not_found(label, &remote.registry)),
                s => Err(ResolveError::Status {
                    image: label.to_string(),
                    registry: remote.registry.clone(),
                    status: s.as_u16(),
                    url: response.url.to_string(),
                }),
            };
        }
        Err(ResolveError::Unauthorized {
            image: label.to_string(),
            registry: remote.registry.clone(),
        })
    }

    /// The `Authorization` value to send before any challenge.
    async fn authorization(
        &self,
        label: &str,
        remote: &Remote,
        endpoint: &Endpoint,
        repository: &str,
        scope: &str,
        force: bool,
    ) -> Result<Option<String>, ResolveError> {
        match &endpoint.auth {
            HostAuth::Anonymous => Ok(None),
            HostAuth::Basic => Ok(self
                .credentials(remote, repository)?
                .and_then(|c| c.basic_header())),
            HostAuth::Bearer { realm, service } => self
                .token(
                    label,
                    remote,
                    repository,
                    realm,
                    service.as_deref(),
                    scope,
                    force,
                )
                .await
                .map(|t| Some(format!("Bearer {t}"))),
        }
    }

    fn credentials(
        &self,
        remote: &Remote,
        repository: &str,
    ) -> Result<Option<Credentials>, ResolveError> {
        let key = (remote.registry.clone(), repository.to_string());
        if let Some(c) = lock(&self.credentials).get(&key) {
            return Ok(c.clone());
        }
        let found = self
            .options
            .credentials
            .lookup(&remote.registry, repository)?;
        lock(&self.credentials).insert(key, found.clone());
        Ok(found)
    }

    fn realm_url(&self, label: &str, remote: &Remote, realm: &str) -> Result<Url, ResolveError> {
        let url = Url::parse(realm).map_err(|e| ResolveError::Token {
            image: label.to_string(),
            realm: realm.to_string(),
            reason: format!("the realm is not a URL: {e}"),
        })?;
        let host = url.host_str().unwrap_or_default();
        let plain_ok = remote.insecure || is_loopback(host);
        if url.scheme() != "https" && !(url.scheme() == "http" && plain_ok) {
            // Credentials would cross the network in the clear.
            return Err(ResolveError::Token {
                image: label.to_string(),
                realm: realm.to_string(),
                reason: "the realm is not HTTPS".into(),
            });
        }
        Ok(url)
    }

    /// A bearer token for a scope: reused until shortly before it expires;
    /// concurrent callers for one scope wait for a single request.
    #[allow(clippy::too_many_arguments)]
    async fn token(
        &self,
        label: &str,
        remote: &Remote,
        repository: &str,
        realm: &Url,
        service: Option<&str>,
        scope: &str,
        force: bool,
    ) -> Result<String, ResolveError> {
        let key = (
            realm.to_string(),
            service.unwrap_or_default().to_string(),
            scope.to_string(),
        );
        let slot = lock(&self.tokens).entry(key.clone()).or_default().clone();
        let started = Instant::now();
        let mut slot = slot.lock().await;
        if let Some(t) = slot.as_ref() {
            // When the registry refused our token (`force`), only one
            // obtained while we waited for the slot is worth trying.
            let fresh = t.expires > Instant::now() + Duration::from_secs(10);
            if fresh && (!force || t.obtained > started) {
                return Ok(t.value.clone());
            }
        }
        let token_err = |reason: String| ResolveError::Token {
            image: label.to_string(),
            realm: realm.to_string(),
            reason,
        };
        let credentials = self.credentials(remote, repository)?;
        let mut url = realm.clone();
        let mut request;
        match &credentials {
            Some(Credentials::IdentityToken(refresh)) => {
                let mut form =
                    Url::parse("http://form.invalid/").map_err(|e| token_err(e.to_string()))?;
                {
                    let mut q = form.query_pairs_mut();
                    q.append_pair("grant_type", "refresh_token");
                    if let Some(s) = service {
                        q.append_pair("service", s);
                    }
                    q.append_pair("scope", scope);
                    q.append_pair("client_id", "imagelock");
                    q.append_pair("refresh_token", refresh.expose());
                }
                request = HttpRequest::get(url, 1024 * 1024);
                request.method = Method::POST;
                request.body = Some(Bytes::from(form.query().unwrap_or_default().to_string()));
                request.headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                );
            }
            other => {
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(s) = service {
                        q.append_pair("service", s);
                    }
                    q.append_pair("scope", scope);
                }
                request = HttpRequest::get(url, 1024 * 1024);
                if let Some(basic) = other.as_ref().and_then(Credentials::basic_header) {
                    let mut value = HeaderValue::from_str(&basic)
                        .map_err(|_| token_err("credentials contain invalid characters".into()))?;
                    value.set_sensitive(true);
                    request.headers.insert(AUTHORIZATION, value);
                }
            }
        }
        self.counters.tokens.fetch_add(1, Ordering::Relaxed);
        *lock(&self.counters.token_scopes)
            .entry(format!("{} {} {scope}", realm, service.unwrap_or_default()))
            .or_default() += 1;
        let response = self
            .http
            .send(request)
            .await
            .map_err(|e| token_err(e.to_string()))?;
        match response.status {
            s if s.is_success() => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(ResolveError::Unauthorized {
                    image: label.to_string(),
                    registry: remote.registry.clone(),
                });
            }
            s => return Err(token_err(format!("it answered {s}"))),
        }
        #[derive(Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let parsed: TokenResponse = serde_json::from_slice(&response.body)
            .map_err(|_| token_err("the answer is not a token".into()))?;
        let value = parsed
            .token
            .or(parsed.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| token_err("the answer holds no token".into()))?;
        // The distribution spec's default lifetime is 60 seconds.
        let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(60).max(60));
        *slot = Some(Token {
            value: value.clone(),
            obtained: Instant::now(),
            expires: started + lifetime,
        });
        Ok(value)
    }

    /// The host's scheme and authentication, learned once per host from
    /// `GET /v2/`.
    async fn endpoint(&self, label: &str, remote: &Remote) -> Result<Arc<Endpoint>, ResolveError> {
        let cell = lock(&self.endpoints)
            .entry(remote.host.clone())
            .or_default()
            .clone();
        cell.get_or_try_init(|| self.ping(label, remote))
            .await
            .cloned()
    }

    async fn ping(&self, label: &str, remote: &Remote) -> Result<Arc<Endpoint>, ResolveError> {
        let plain_ok = remote.insecure || is_loopback(&remote.host);
        let mut last = None;
        for scheme in ["https", "http"] {
            if scheme == "http" && !plain_ok {
                break;
            }
            let base = Url::parse(&format!("{scheme}://{}/", remote.host))
                .map_err(|e| invalid(label, &remote.host, format!("bad host: {e}")))?;
            let mut request = HttpRequest::get(
                base.join("v2/")
                    .map_err(|e| invalid(label, &remote.host, e.to_string()))?,
                64 * 1024,
            );
            // HTTPS to a plain-HTTP loopback registry fails at once; no retries.
            request.retry = !(plain_ok && scheme == "https");
            self.counters.pings.fetch_add(1, Ordering::Relaxed);
            match self.http.send(request).await {
                Ok(response) => {
                    // Only the registry's own challenge counts, never one from
                    // where it redirected `/v2/`.
                    let own = crate::resolve::http::origin(&response.url)
                        == crate::resolve::http::origin(&base);
                    let auth = match response
                        .header(WWW_AUTHENTICATE.as_str())
                        .and_then(Challenge::parse)
                        .filter(|_| own)
                    {
                        Some(Challenge::Bearer { realm, service, .. })
                            if response.status == StatusCode::UNAUTHORIZED =>
                        {
                            HostAuth::Bearer {
                                realm: self.realm_url(label, remote, &realm)?,
                                service,
                            }
                        }
                        Some(Challenge::Basic { .. })
                            if response.status == StatusCode::UNAUTHORIZED =>
                        {
                            HostAuth::Basic
                        }
                        _ => HostAuth::Anonymous,
                    };
                    return Ok(Arc::new(Endpoint { base, auth }));
                }
                Err(e) => last = Some(e),
            }
        }
        let source = last.ok_or_else(|| ResolveError::Insecure {
            registry: remote.host.clone(),
        })?;
        Err(ResolveError::Http {
            image: label.to_string(),
            registry: remote.host.clone(),
            source: Box::new(source),
        })
    }
}

fn media_type_only(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// `Docker-Content-Digest`, if sent.
fn stated_digest(response: &HttpResponse) -> Option<Result<Digest, crate::oci::ParseDigestError>> {
    response
        .header("docker-content-digest")
        .map(|d| d.trim().parse())
}

/// `body` checked against the digest it was asked for.
fn verified(
    label: &str,
    registry: &str,
    expected: &Digest,
    body: &[u8],
) -> Result<(), ResolveError> {
    check_digest(expected, body).map_err(|e| ResolveError::DigestMismatch {
        image: label.to_string(),
        registry: registry.to_string(),
        expected: e.expected.to_string(),
        actual: e.actual.to_string(),
    })
}

/// A small blob of an image layout, checked against its digest.
fn layout_blob(
    label: &str,
    dir: &Path,
    digest: &Digest,
    limit: u64,
) -> Result<Fetched, ResolveError> {
    let layout_err = |reason: String| ResolveError::Layout {
        image: label.to_string(),
        dir: dir.to_path_buf(),
        reason,
    };
    let path = dir
        .join("blobs")
        .join(digest.algorithm().as_str())
        .join(digest.hex());
    let len = match fs_err::metadata(&path) {
        Ok(m) => m.len(),
        // The layout does not have that content, as a registry answers 404.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ResolveError::NotFound {
                image: label.to_string(),
                registry: format!("oci:{}", dir.display()),
            });
        }
        Err(e) => return Err(layout_err(e.to_string())),
    };
    if len > limit {
        return Err(layout_err(format!(
            "blob `{digest}` is larger than {limit} bytes"
        )));
    }
    let body = fs_err::read(&path)
        .map(Bytes::from)
        .map_err(|e| layout_err(e.to_string()))?;
    verified(label, &format!("oci:{}", dir.display()), digest, &body)?;
    Ok(Fetched {
        digest: digest.clone(),
        content_type: None,
        body,
    })
}

/// Where content was read from, for messages.
fn sources_origin(sources: &[Source]) -> String {
    sources
        .last()
        .map(|s| s.location.describe())
        .unwrap_or_default()
}

/// A platform that is not there, as the registry reports it.
fn platform_error(label: &str, origin: &str, e: SelectPlatformError) -> ResolveError {
    match e {
        SelectPlatformError::Missing { platform, offered } => ResolveError::PlatformNotFound {
            image: label.to_string(),
            platform: platform.to_string(),
            available: offered_list(&offered),
        },
        SelectPlatformError::SinglePlatform { platform, offered } => {
            ResolveError::PlatformNotFound {
                image: label.to_string(),
                platform: platform.to_string(),
                available: format!("only `{offered}` (a single-platform image)"),
            }
        }
        e @ SelectPlatformError::TooDeep => invalid(label, origin, e.to_string()),
    }
}

fn invalid(label: &str, registry: &str, reason: String) -> ResolveError {
    ResolveError::InvalidManifest {
        image: label.to_string(),
        registry: registry.to_string(),
        reason,
    }
}

fn not_found(label: &str, registry: &str) -> ResolveError {
    ResolveError::NotFound {
        image: label.to_string(),
        registry: registry.to_string(),
    }
}

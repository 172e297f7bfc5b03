//! Image sources and the streaming layer reader shared by freeze and verify.
//!
//! [`read_catalogue`] resolves an image for a platform, reads its layers in
//! parallel as streams (never extracting them), checks every blob's digest
//! and each layer's diff_id on the way, keeps only the files that matter, and
//! merges the layers in order into a [`Catalogue`].

mod archive;
mod cache;
mod catalogue;
mod daemon;
mod digest;
pub mod dpkg;
mod formats;
mod layer;
mod layout;
mod registry;
pub mod rpmdb;
mod sha256;
pub mod sif;
mod source;
mod storage;
mod store;
mod tree;

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub use crate::oci::{
    Digest, ImageConfig, ImageLocation, LayerRef, Platform, ResolvedImage, ResolvedPlatform,
};

pub use archive::DockerArchive;
pub use catalogue::{
    Catalogue, CondaMetaRecord, CondaPrefix, Libc, LibcKind, OsPackage, OsPackageSource, OsRelease,
    Owner, PythonDist, PythonInstall,
};
pub use daemon::DockerDaemon;
pub use layer::{Compression, LayerStats};
pub use layout::OciLayout;
pub use registry::RegistryImage;
pub use sif::{DefinitionCheck, SifImage, SifSummary};
pub use source::{ImageSource, UnpackedLayers};
pub use storage::StorageImage;
pub use tree::{FileTree, TreeEntry, read_tree};

/// Everything that can go wrong reading an image. Each names the image and,
/// where it applies, the layer or blob.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    RegistriesConf(#[from] crate::config::registries_conf::RegistriesConfError),
    #[error("`{reference}` is not an image reference\nhint: {hint}")]
    InvalidReference { reference: String, hint: String },
    #[error("cannot read {what} of `{reference}`: {source}")]
    Io {
        reference: String,
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("{what} of `{reference}` is malformed: {message}")]
    Malformed {
        reference: String,
        what: String,
        message: String,
    },
    #[error("`{reference}` has no blob `{digest}`")]
    BlobMissing { reference: String, digest: Digest },
    #[error(
        "{what} of `{reference}` does not match its digest: expected `{expected}`, got `{actual}`\nhint: the image is corrupt or was changed after it was written"
    )]
    BlobDigestMismatch {
        reference: String,
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{what} of `{reference}` has {actual} bytes, but its descriptor says {expected}")]
    BlobSizeMismatch {
        reference: String,
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error(
        "layer {layer} of `{reference}` does not match its diff_id: the config says `{expected}`, the uncompressed layer is `{actual}`\nhint: the image is corrupt or its config was edited"
    )]
    DiffIdMismatch {
        reference: String,
        layer: usize,
        expected: Digest,
        actual: Digest,
    },
    #[error("cannot read layer {layer} of `{reference}`: {source}")]
    Layer {
        reference: String,
        layer: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "layer {layer} of `{reference}` is compressed in a way imagelock cannot read (`{media_type}`)\nhint: gzip, zstd and plain tar layers are supported"
    )]
    UnsupportedCompression {
        reference: String,
        layer: String,
        media_type: String,
    },
    #[error(
        "layer {layer} of `{reference}` is larger than {limit} bytes uncompressed\nhint: a decompression bomb, or a real layer bigger than the limit; raise `max-layer-size` under `[limits]` in imagelock.toml if it is real"
    )]
    LayerTooLarge {
        reference: String,
        layer: String,
        limit: u64,
    },
    #[error("layer {layer} of `{reference}` {what}\nhint: {hint}")]
    LayerLimit {
        reference: String,
        layer: String,
        what: String,
        hint: String,
    },
    #[error(
        "`{path}` in layer {layer} of `{reference}` has {size} bytes, more than the {limit} allowed for a metadata file\nhint: raise `max-file-size` under `[limits]` in imagelock.toml if the file is real"
    )]
    FileTooLarge {
        reference: String,
        layer: String,
        path: String,
        size: u64,
        limit: u64,
    },
    #[error(
        "`{reference}` has no image for `{platform}`; it has {available}\nhint: pick one with `--platform`"
    )]
    PlatformMissing {
        reference: String,
        platform: Platform,
        available: String,
    },
    #[error("`{reference}` has no image `{tag}`; it has {available}")]
    TagMissing {
        reference: String,
        tag: String,
        available: String,
    },
    #[error(
        "`{reference}` holds several images: {available}\nhint: name one by adding `:TAG` to the reference"
    )]
    TagNeeded {
        reference: String,
        available: String,
    },
    #[error("cannot set up the registry client for `{reference}`: {source}")]
    RegistryClient {
        reference: String,
        #[source]
        source: Box<crate::resolve::http::HttpError>,
    },
    #[error("cannot read `{reference}` from its registry: {source}")]
    Registry {
        reference: String,
        #[source]
        source: Box<crate::resolve::ResolveError>,
    },
    #[error("cannot read the SIF `{reference}`: {source}\nhint: {hint}")]
    Sif {
        reference: String,
        hint: &'static str,
        #[source]
        source: Box<sif::SifError>,
    },
    #[error("cannot read `{reference}`: {message}\nhint: {hint}")]
    Storage {
        reference: String,
        message: String,
        hint: String,
    },
    #[error("the Docker Engine at `{host}` cannot give `{reference}`: {message}\nhint: {hint}")]
    Daemon {
        reference: String,
        host: String,
        message: String,
        hint: String,
    },
}

impl From<crate::oci::ParseLocationError> for ImageError {
    fn from(e: crate::oci::ParseLocationError) -> Self {
        ImageError::InvalidReference {
            reference: e.location,
            hint: e.hint,
        }
    }
}

/// SHA-256 of the layer streams read so far in this process: bytes the
/// hashing threads hashed (blobs and tars), and how many of them were hashed
/// two streams at once on one core.
pub fn layer_hashing() -> (u64, u64) {
    digest::pool_hashed()
}

/// Opens any image location: local transports directly, `docker://`
/// through a registry client set up as freeze sets up its own (the
/// configuration's registries and mirrors, the host's credentials, the
/// network timeout), run on `handle`.
pub fn open_location(
    location: &ImageLocation,
    config: &crate::config::Config,
    timeout: Option<std::time::Duration>,
    handle: &tokio::runtime::Handle,
) -> Result<Box<dyn ImageSource + Send>, ImageError> {
    let ImageLocation::Docker(image) = location else {
        return open_local(location);
    };
    let http = crate::resolve::session::http_options(config, timeout);
    let options = crate::resolve::RegistryOptions {
        credentials: crate::resolve::auth::CredentialStore::from_env()
            .with_helper_timeout(http.timeout),
        http,
        registries: config.registries_with_host()?,
        root: config.root.clone(),
        ..crate::resolve::RegistryOptions::default()
    };
    let registry =
        crate::resolve::Registry::new(options).map_err(|e| ImageError::RegistryClient {
            reference: location.to_string(),
            source: Box::new(e),
        })?;
    Ok(Box::new(RegistryImage::new(
        std::sync::Arc::new(registry),
        image.clone(),
        handle.clone(),
    )))
}

/// Opens a local source (`oci:`, `oci-archive:`, `docker-archive:`,
/// `docker-daemon:`, `containers-storage:`). `docker://` is read through [`RegistryImage`].
pub fn open_local(image: &ImageLocation) -> Result<Box<dyn ImageSource + Send>, ImageError> {
    let reference = image.to_string();
    match image {
        ImageLocation::Oci { dir, tag } => {
            Ok(Box::new(OciLayout::open_dir(&reference, dir, tag.clone())?))
        }
        ImageLocation::OciArchive { path, tag } => Ok(Box::new(OciLayout::open_archive(
            &reference,
            path,
            tag.clone(),
        )?)),
        ImageLocation::DockerArchive { path, name } => Ok(Box::new(DockerArchive::open(
            &reference,
            path,
            name.clone(),
        )?)),
        ImageLocation::DockerDaemon(name) => Ok(Box::new(DockerDaemon::new(&reference, name)?)),
        ImageLocation::ContainersStorage { store, image } => Ok(Box::new(StorageImage::open(
            &reference,
            store.as_ref(),
            image,
        )?)),
        ImageLocation::Sif(_) => Err(ImageError::InvalidReference {
            reference,
            hint: "SIF files are read with `image::SifImage`".into(),
        }),
        ImageLocation::Docker(_) => Err(ImageError::InvalidReference {
            reference,
            hint: "registry images are read through the registry client".into(),
        }),
    }
}

/// Limits and places for reading images.
#[derive(Clone, Debug)]
pub struct ReadOptions {
    /// Largest uncompressed layer accepted, against decompression bombs.
    pub max_layer_size: u64,
    /// Largest metadata file collected (conda records, RECORD, dpkg status).
    pub max_file_size: u64,
    /// How much of `libc.so.6` is scanned for its version banner.
    pub libc_scan_bytes: u64,
    /// Largest uncompressed/compressed ratio of a layer past its first
    /// 64 MiB (0: none), against decompression bombs that stay under
    /// `max_layer_size`.
    pub max_decompression_ratio: u64,
    /// Largest total of metadata text collected from one image.
    pub max_collected_text: u64,
    /// Largest tar header extension (GNU long name or link, PAX header).
    pub max_header_extension: u64,
    /// Where per-layer results are cached by diff_id; `None` disables it.
    pub cache_dir: Option<PathBuf>,
    /// Layers read at once; 0 means one per available core.
    pub threads: usize,
    /// Layers already read in this run, shared by every image read with
    /// these options; `None`: each image reads all its layers.
    pub memo: Option<Arc<LayerMemo>>,
}

/// Layers read in one run, so that images sharing layers (a CI matrix on
/// one base) decompress and hash each distinct layer blob once. Keyed by
/// where the bytes came from ([`ImageSource::layer_origin`]: the same file,
/// or the same registry blob) and by both digests, and filled only once
/// both digests were checked against those bytes. It lives in memory for
/// one run: a later run reads and hashes the files again. What it keeps is
/// bounded by [`MEMO_BUDGET`] bytes of collected paths and text; a layer
/// past that is read again where it recurs.
#[derive(Default)]
pub struct LayerMemo {
    done: Mutex<MemoLayers>,
    reads: AtomicU64,
    hits: AtomicU64,
}

/// Bytes of collected paths and metadata text a [`LayerMemo`] keeps at most.
pub const MEMO_BUDGET: u64 = 16 << 20;

#[derive(Default)]
struct MemoLayers {
    layers: HashMap<MemoKey, Arc<layer::LayerCollection>>,
    /// The sum of the kept layers' [`layer::LayerCollection::weight`].
    kept: u64,
}

/// (origin, blob digest, diff_id)
type MemoKey = (String, Digest, Digest);

impl LayerMemo {
    /// Layer streams read (decompressed and hashed) so far.
    #[must_use]
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// Layers taken from the memo instead of being read again.
    #[must_use]
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    fn key(source: &dyn ImageSource, l: &LayerRef) -> Option<MemoKey> {
        let origin = source.layer_origin(l)?;
        Some((origin, l.digest.clone()?, l.diff_id.clone()))
    }

    /// Keeps `layer`, read and checked, unless the budget is spent.
    fn keep(&self, key: MemoKey, layer: &layer::LayerCollection) {
        let weight = layer.weight();
        let mut done = lock(&self.done);
        if done.kept.saturating_add(weight) <= MEMO_BUDGET {
            done.kept += weight;
            done.layers.insert(key, Arc::new(layer.clone()));
        }
    }

    fn get(&self, key: &MemoKey) -> Option<Arc<layer::LayerCollection>> {
        let hit = lock(&self.done).layers.get(key).cloned();
        if hit.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }
}

impl std::fmt::Debug for LayerMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerMemo")
            .field("layers", &lock(&self.done).layers.len())
            .field("reads", &self.reads())
            .field("hits", &self.hits())
            .finish()
    }
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            max_layer_size: 64 << 30,
            max_file_size: 64 << 20,
            libc_scan_bytes: 8 << 20,
            max_decompression_ratio: 1000,
            max_collected_text: 256 << 20,
            max_header_extension: 1 << 20,
            cache_dir: None,
            threads: 0,
            memo: None,
        }
    }
}

impl ReadOptions {
    /// These options with the bounds set in `[limits]` of the configuration.
    #[must_use]
    pub fn with_limits(mut self, limits: &crate::config::LimitsConfig) -> Self {
        let d = Self::default();
        self.max_layer_size = limits.max_layer_size.unwrap_or(d.max_layer_size);
        self.max_file_size = limits.max_file_size.unwrap_or(d.max_file_size);
        self.max_decompression_ratio = limits
            .max_decompression_ratio
            .unwrap_or(d.max_decompression_ratio);
        self.max_collected_text = limits.max_collected_text.unwrap_or(d.max_collected_text);
        self
    }
}

/// Reads an image's catalogue for one platform. Blocking; call it from a
/// blocking thread in async code.
pub fn read_catalogue(
    source: &dyn ImageSource,
    platform: &Platform,
    opts: &ReadOptions,
) -> Result<Catalogue, ImageError> {
    let image = source.resolve(platform)?;
    let layers = read_layers(source, &image, opts)?;
    Ok(catalogue::merge(image, platform.clone(), layers))
}

/// Reads an image's catalogue for one platform, and, when `base_diff_ids`
/// are the bottom layers of the image, the catalogue of those layers alone:
/// what the base image holds, read once with the rest. `None` when the
/// image is not built on those layers.
pub fn read_catalogue_with_base(
    source: &dyn ImageSource,
    platform: &Platform,
    opts: &ReadOptions,
    base_diff_ids: &[Digest],
) -> Result<(Catalogue, Option<Catalogue>), ImageError> {
    let image = source.resolve(platform)?;
    let layers = read_layers(source, &image, opts)?;
    let n = base_diff_ids.len();
    let base = image.config.diff_ids.starts_with(base_diff_ids).then(|| {
        let mut base_image = image.clone();
        base_image.layers.truncate(n);
        base_image.config.diff_ids.truncate(n);
        catalogue::merge(base_image, platform.clone(), layers[..n].to_vec())
    });
    Ok((catalogue::merge(image, platform.clone(), layers), base))
}

/// Every layer's collection, bottom first, in parallel (cached ones from
/// the cache).
fn read_layers(
    source: &dyn ImageSource,
    image: &ResolvedPlatform,
    opts: &ReadOptions,
) -> Result<Vec<layer::LayerCollection>, ImageError> {
    if let Some(unpacked) = source.unpacked_layers(image, opts, None) {
        return unpacked.map(|u| u.0);
    }
    let reference = source.reference();
    let n = image.layers.len();
    let results: Mutex<Vec<Option<Result<layer::LayerCollection, ImageError>>>> =
        Mutex::new((0..n).map(|_| None).collect());
    let memo = opts.memo.as_deref();
    let collected = AtomicU64::new(0);
    let ctx_of = |i: usize| layer::LayerCtx {
        reference,
        index: i,
        layer: &image.layers[i],
        opts,
        collected: &collected,
    };
    let mut todo = Vec::new();
    for (i, l) in image.layers.iter().enumerate() {
        if let Some(hit) = memo.and_then(|m| m.get(&LayerMemo::key(source, l)?)) {
            let ctx = ctx_of(i);
            lock(&results)[i] = Some(layer::count_collected(&ctx, &hit).map(|()| (*hit).clone()));
            continue;
        }
        match opts
            .cache_dir
            .as_deref()
            .and_then(|d| cache::load(d, &l.diff_id))
        {
            Some(hit) => lock(&results)[i] = Some(Ok(hit)),
            None => todo.push(i),
        }
    }
    let threads = if opts.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        opts.threads
    }
    .min(todo.len())
    .max(1);
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&i) = todo.get(k) else { break };
                    let l = &image.layers[i];
                    let ctx = ctx_of(i);
                    if let Some(memo) = memo {
                        memo.reads.fetch_add(1, Ordering::Relaxed);
                    }
                    let result = layer::read_layer(&ctx, &|| source.open_layer(l));
                    if let (Ok(c), Some(dir)) = (&result, opts.cache_dir.as_deref()) {
                        cache::store(dir, &l.diff_id, c);
                    }
                    if let (Ok(c), Some(memo), Some(key)) =
                        (&result, memo, LayerMemo::key(source, l))
                    {
                        memo.keep(key, c);
                    }
                    let failed = result.is_err();
                    lock(&results)[i] = Some(result);
                    if failed {
                        // Stop the others early: the image is unreadable.
                        next.store(todo.len(), Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let results = results
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut layers = Vec::with_capacity(n);
    let mut first_error = None;
    for r in results {
        match r {
            Some(Ok(c)) => layers.push(c),
            Some(Err(e)) => {
                first_error.get_or_insert(e);
            }
            None => {}
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    Ok(layers)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::layer::{CollectedFile, FileContent, LayerCollection};
    use super::*;

    fn layer(n: u8, text: usize) -> (MemoKey, LayerCollection) {
        let digest = Digest::from_sha256_output(&[n; 32]);
        let mut c = LayerCollection::empty(LayerStats {
            diff_id: digest.clone(),
            compression: Compression::None,
            compressed_size: 0,
            uncompressed_size: 0,
            entries: 1,
            files: 1,
            file_bytes: text as u64,
            whiteouts: 0,
        });
        c.files.insert(
            "var/lib/dpkg/status".into(),
            CollectedFile {
                mode: 0o644,
                size: text as u64,
                content: FileContent::Text("x".repeat(text)),
            },
        );
        (("file:/l".into(), digest.clone(), digest), c)
    }

    #[test]
    fn the_memo_keeps_layers_within_its_budget() {
        let memo = LayerMemo::default();
        let (small, c) = layer(1, 1000);
        memo.keep(small.clone(), &c);
        assert!(memo.get(&small).is_some());
        // Past the budget a layer is not kept: read again where it recurs.
        let (big, c) = layer(2, usize::try_from(MEMO_BUDGET).unwrap());
        memo.keep(big.clone(), &c);
        assert!(memo.get(&big).is_none());
        assert_eq!(memo.hits(), 1);
    }
}

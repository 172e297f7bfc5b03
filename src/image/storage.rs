//! `containers-storage:[STORE]IMAGE`: images in a containers-storage store,
//! where buildah and podman build and pull, read in place without any
//! containers library and without writing to the store.
//!
//! The store keeps its image records in `DRIVER-images/images.json` (names,
//! manifest digest, top layer), each image's manifest and config as
//! "big data" files beside them (named by key, base64 when the key has
//! characters other than `[.0-9a-z]`), and its layers in
//! `DRIVER-layers/layers.json` (each with its parent and uncompressed
//! digest). Layer contents are unpacked directories: with `overlay`,
//! `overlay/ID/diff` holds what the layer changed (deletions as 0/0
//! character devices, hidden directories marked opaque by an xattr); with
//! `vfs`, `vfs/dir/ID` is a full copy of the filesystem at that layer. While
//! the image is read, shared locks are held on the store's `images.lock` and
//! `layers.lock`, as containers-storage's own readers hold them, so a
//! concurrent `buildah rmi` waits instead of removing layers under us.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;

use super::digest::HashingReader;
use super::layer::{self, CollectedFile, EntryKind, FileContent, LayerCollection, LayerCtx};
use super::layout::platform_missing;
use super::source::{ImageSource, UnpackedLayers, malformed, read_small, verified};
use super::{Compression, ImageError, LayerStats, ReadOptions};
use crate::oci::{
    Digest, Document, ImageConfig, ImageRef, LayerRef, Platform, PlatformWalk, ResolvedPlatform,
    StoreSpec, manifest_layers, parse_document,
};

/// How long a store locked by a writer is waited for.
const LOCK_WAIT: Duration = Duration::from_secs(60);

/// The storage drivers whose layers imagelock reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Driver {
    Overlay,
    Vfs,
}

impl Driver {
    fn name(self) -> &'static str {
        match self {
            Self::Overlay => "overlay",
            Self::Vfs => "vfs",
        }
    }

    /// A driver's name as `storage.conf` or a store spec writes it.
    fn parse(name: &str) -> Result<Self, String> {
        match name {
            "overlay" | "overlay2" => Ok(Self::Overlay),
            "vfs" => Ok(Self::Vfs),
            other => Err(other.to_string()),
        }
    }
}

/// The drivers containers-storage has that imagelock does not read.
const OTHER_DRIVERS: [&str; 5] = ["btrfs", "zfs", "devmapper", "aufs", "windows"];

/// `storage.conf`, the part that says where the store is.
#[derive(Default, Deserialize)]
struct StorageConf {
    #[serde(default)]
    storage: StorageSection,
}

#[derive(Default, Deserialize)]
struct StorageSection {
    driver: Option<String>,
    graphroot: Option<String>,
    rootless_storage_path: Option<String>,
}

/// One image of `images.json`.
#[derive(Clone, Debug, Deserialize)]
struct ImageRecord {
    id: String,
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    layer: Option<String>,
    #[serde(default, rename = "big-data-names")]
    big_data_names: Vec<String>,
    #[serde(default, rename = "big-data-digests")]
    big_data_digests: BTreeMap<String, String>,
}

/// One layer of `layers.json`.
#[derive(Clone, Debug, Deserialize)]
struct LayerRecord {
    id: String,
    #[serde(default)]
    parent: Option<String>,
    #[serde(default, rename = "diff-digest")]
    diff_digest: Option<String>,
    #[serde(default, rename = "diff-size")]
    diff_size: Option<i64>,
    #[serde(default)]
    flags: BTreeMap<String, serde_json::Value>,
}

/// Where the store is, and how that was decided (for messages).
struct StoreLocation {
    graph_root: PathBuf,
    driver: Option<String>,
    from: String,
}

/// An image in a containers-storage store, opened read-only.
pub struct StorageImage {
    reference: String,
    graph_root: PathBuf,
    driver: Driver,
    image: ImageRecord,
    /// The image's layers, bottom first.
    chain: Vec<LayerRecord>,
    /// Shared locks on `images.lock` and `layers.lock`, held while the
    /// image is read (closing a file releases its lock).
    _locks: Vec<std::fs::File>,
}

impl StorageImage {
    /// Finds the store (`store`, or the one `storage.conf` names), takes its
    /// read locks, and finds `image` in it: `NAME[:TAG]`, `NAME@DIGEST`,
    /// `@ID` (or a unique prefix of it), or a bare 64-hex ID.
    pub fn open(
        reference: &str,
        store: Option<&StoreSpec>,
        image: &str,
    ) -> Result<Self, ImageError> {
        let err = |message: String, hint: String| ImageError::Storage {
            reference: reference.to_string(),
            message,
            hint,
        };
        let location = match store {
            Some(s) => StoreLocation {
                graph_root: s.graph_root.clone(),
                driver: s.driver.clone(),
                from: "the reference".into(),
            },
            None => configured_store().map_err(|(m, h)| err(m, h))?,
        };
        let root = &location.graph_root;
        if !root.is_dir() {
            return Err(err(
                format!(
                    "there is no store at `{}` (named by {})",
                    root.display(),
                    location.from
                ),
                "build or pull the image with buildah or podman first, or name its store: `containers-storage:[vfs@/path/to/graphroot]NAME:TAG`".into(),
            ));
        }
        let driver = pick_driver(root, location.driver.as_deref()).map_err(|(m, h)| err(m, h))?;
        let images_dir = root.join(format!("{}-images", driver.name()));
        let layers_dir = root.join(format!("{}-layers", driver.name()));
        let mut locks = Vec::new();
        for lock in [
            images_dir.join("images.lock"),
            layers_dir.join("layers.lock"),
        ] {
            if let Some(f) = read_lock(&lock).map_err(|(m, h)| err(m, h))? {
                locks.push(f);
            }
        }
        let images: Vec<ImageRecord> = read_records(reference, &images_dir.join("images.json"))?;
        let found = find_image(&images, image).map_err(|m| {
            err(
                format!("{m} in the {} store at `{}`", driver.name(), root.display()),
                format!(
                    "{}; name one as `containers-storage:[{}@{}]NAME:TAG` or `…@IMAGE_ID` (`buildah images --root {}` lists them)",
                    available(&images),
                    driver.name(),
                    root.display(),
                    root.display()
                ),
            )
        })?;
        let layers: Vec<LayerRecord> = read_records(reference, &layers_dir.join("layers.json"))?;
        let chain = layer_chain(&layers, found.layer.as_deref())
            .map_err(|m| malformed(reference, "the store's layers", m))?;
        let image = found.clone();
        Ok(Self {
            reference: reference.to_string(),
            graph_root: root.clone(),
            driver,
            image,
            chain,
            _locks: locks,
        })
    }

    /// The image's ID in the store.
    pub fn id(&self) -> &str {
        &self.image.id
    }

    /// The store's driver, `overlay` or `vfs`.
    pub fn driver(&self) -> &'static str {
        self.driver.name()
    }

    /// The store's graph root.
    pub fn graph_root(&self) -> &Path {
        &self.graph_root
    }

    fn big_data_path(&self, key: &str) -> PathBuf {
        self.graph_root
            .join(format!("{}-images", self.driver.name()))
            .join(&self.image.id)
            .join(big_data_name(key))
    }

    /// A big-data item of the image, checked against the digest the store
    /// recorded for it.
    fn big_data(&self, key: &str, what: &str) -> Result<Vec<u8>, ImageError> {
        let path = self.big_data_path(key);
        let file = fs_err::File::open(&path).map_err(|source| ImageError::Io {
            reference: self.reference.clone(),
            what: what.to_string(),
            source,
        })?;
        let bytes = read_small(&self.reference, what, file)?;
        if let Some(d) = self
            .image
            .big_data_digests
            .get(key)
            .and_then(|d| d.parse::<Digest>().ok())
        {
            verified(&self.reference, what, &bytes, &d)?;
        }
        Ok(bytes)
    }

    /// The image's manifest (never a list): the one its record's digest
    /// names, else the one stored as `manifest`.
    fn manifest(&self) -> Result<(Digest, String, crate::oci::Manifest), ImageError> {
        let mut keys = Vec::new();
        if let Some(d) = &self.image.digest {
            keys.push(format!("manifest-{d}"));
        }
        keys.push("manifest".to_string());
        keys.extend(
            self.image
                .big_data_names
                .iter()
                .filter(|k| k.starts_with("manifest-"))
                .cloned(),
        );
        for key in keys {
            if !self.image.big_data_names.contains(&key) {
                continue;
            }
            let bytes = self.big_data(&key, "manifest")?;
            let digest = Digest::sha256_of(&bytes);
            if let Some(named) = key.strip_prefix("manifest-") {
                let named: Digest = named
                    .parse()
                    .map_err(|e| malformed(&self.reference, "manifest", e))?;
                verified(&self.reference, "manifest", &bytes, &named)?;
            }
            let (media_type, document) = parse_document(&bytes, None)
                .map_err(|e| malformed(&self.reference, "manifest", e))?;
            if let Document::Manifest(m) = document {
                return Ok((digest, media_type, m));
            }
        }
        Err(malformed(
            &self.reference,
            "the image's record",
            "the store holds no image manifest for it",
        ))
    }

    /// Where a layer's files are.
    fn layer_dir(&self, id: &str) -> PathBuf {
        match self.driver {
            Driver::Overlay => self.graph_root.join("overlay").join(id).join("diff"),
            Driver::Vfs => self.graph_root.join("vfs").join("dir").join(id),
        }
    }

    /// Walks one layer's directory into what it contributes: everything
    /// that matters, or with `only`, the entries under those (normalized)
    /// paths with their files' sha256, as [`super::read_tree`] wants them.
    fn collect(
        &self,
        ctx: &LayerCtx<'_>,
        record: &LayerRecord,
        only: Option<&[String]>,
    ) -> Result<LayerCollection, ImageError> {
        let dir = self.layer_dir(&record.id);
        let io_err = |source: io::Error| ImageError::Layer {
            reference: self.reference.clone(),
            layer: format!("{} ({})", ctx.index + 1, ctx.layer.diff_id),
            source,
        };
        if !dir.is_dir() {
            return Err(io_err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("its directory `{}` is missing", dir.display()),
            )));
        }
        let size = record
            .diff_size
            .and_then(|s| u64::try_from(s).ok())
            .unwrap_or(0);
        let mut out = LayerCollection::empty(LayerStats {
            diff_id: ctx.layer.diff_id.clone(),
            // The layer is unpacked: there is no stream to decompress.
            compression: Compression::None,
            compressed_size: size,
            uncompressed_size: size,
            entries: 0,
            files: 0,
            file_bytes: 0,
            whiteouts: 0,
        });
        if self.driver == Driver::Vfs {
            // A vfs layer is the whole filesystem at that layer: what lies
            // below is replaced, not amended.
            out.opaque_dirs.push(String::new());
        }
        let mut stack = vec![String::new()];
        while let Some(rel) = stack.pop() {
            let abs = if rel.is_empty() {
                dir.clone()
            } else {
                dir.join(&rel)
            };
            let mut names: Vec<_> = fs_err::read_dir(&abs)
                .map_err(io_err)?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<Result<_, _>>()
                .map_err(io_err)?;
            names.sort();
            for name in names {
                let name = name.to_string_lossy().into_owned();
                let path = if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                };
                let full = dir.join(&path);
                let meta = fs_err::symlink_metadata(&full).map_err(io_err)?;
                let kind = meta.file_type();
                let mode = meta.mode() & 0o7777;
                // With `only`: entries under those paths, and the
                // directories that lead to them.
                let wanted = only.is_none_or(|p| layer::under_any(&path, p));
                let leads = only.is_some_and(|p| {
                    p.iter().any(|q| {
                        q.strip_prefix(path.as_str())
                            .is_some_and(|r| r.starts_with('/'))
                    })
                });
                let empty = &mut io::empty();
                if kind.is_dir() {
                    if self.driver == Driver::Overlay && is_opaque(&full) {
                        out.stats.whiteouts += 1;
                        out.opaque_dirs.push(layer::normalize(&path));
                    }
                    if wanted || leads {
                        match only {
                            None => layer::collect_entry(
                                ctx,
                                &mut out,
                                &path,
                                EntryKind::Dir,
                                mode,
                                0,
                                empty,
                            )?,
                            Some(_) => {
                                out.dirs.insert(layer::normalize(&path));
                            }
                        }
                        stack.push(path);
                    }
                } else if kind.is_char_device()
                    && meta.rdev() == 0
                    && self.driver == Driver::Overlay
                {
                    // overlayfs marks a deleted path with a 0/0 character
                    // device.
                    layer::collect_entry(
                        ctx,
                        &mut out,
                        &path,
                        EntryKind::Whiteout,
                        mode,
                        0,
                        empty,
                    )?;
                } else if !wanted {
                } else if kind.is_file() {
                    let mut content = Lazy {
                        path: &full,
                        file: None,
                    };
                    match only {
                        None => layer::collect_entry(
                            ctx,
                            &mut out,
                            &path,
                            EntryKind::File,
                            mode,
                            meta.len(),
                            &mut content,
                        )?,
                        Some(_) => {
                            let (digest, _) =
                                HashingReader::new(content).finish().map_err(io_err)?;
                            out.files.insert(
                                layer::normalize(&path),
                                CollectedFile {
                                    mode,
                                    size: meta.len(),
                                    content: FileContent::Sha256(digest),
                                },
                            );
                        }
                    }
                } else if kind.is_symlink() {
                    let target = fs_err::read_link(&full).map_err(io_err)?;
                    let target = target.to_string_lossy();
                    match only {
                        None => layer::collect_entry(
                            ctx,
                            &mut out,
                            &path,
                            EntryKind::Symlink(&target),
                            mode,
                            0,
                            empty,
                        )?,
                        Some(_) => {
                            out.symlinks
                                .insert(layer::normalize(&path), target.into_owned());
                        }
                    }
                } else if only.is_none() {
                    layer::collect_entry(ctx, &mut out, &path, EntryKind::Other, mode, 0, empty)?;
                }
            }
        }
        Ok(out)
    }
}

impl ImageSource for StorageImage {
    fn reference(&self) -> &str {
        &self.reference
    }

    fn resolve(&self, platform: &Platform) -> Result<ResolvedPlatform, ImageError> {
        let reference = &self.reference;
        let (manifest_digest, media_type, manifest) = self.manifest()?;
        let config_digest = manifest.config.digest.clone();
        let bytes = self.big_data(&config_digest.to_string(), "config")?;
        verified(reference, "config", &bytes, &config_digest)?;
        let config = ImageConfig::parse(&bytes).map_err(|e| malformed(reference, "config", e))?;
        let walk = PlatformWalk::new(platform);
        walk.check_config(config.platform())
            .map_err(|e| platform_missing(reference, e))?;
        let layers =
            manifest_layers(&manifest, &config).map_err(|e| malformed(reference, "manifest", e))?;
        // The store's layers must be the config's, in order: the catalogue
        // is read from them.
        let stored: Vec<Option<&str>> = self
            .chain
            .iter()
            .map(|l| l.diff_digest.as_deref())
            .collect();
        let matches = stored.len() == layers.len()
            && stored
                .iter()
                .zip(&layers)
                .all(|(s, l)| s.is_none_or(|s| s == l.diff_id.to_string()));
        if !matches {
            return Err(malformed(
                reference,
                "the store's layers",
                format!(
                    "the image's {} layers in `layers.json` are not the {} the config lists",
                    stored.len(),
                    layers.len()
                ),
            ));
        }
        Ok(ResolvedPlatform {
            reference: reference.clone(),
            platform: platform.clone(),
            index_digest: None,
            manifest_digest: Some(manifest_digest),
            media_type: Some(media_type),
            config_digest,
            config,
            layers,
        })
    }

    fn open_layer(&self, layer: &LayerRef) -> Result<Box<dyn Read + Send + '_>, ImageError> {
        Err(ImageError::Storage {
            reference: self.reference.clone(),
            message: format!(
                "layer `{}` is an unpacked directory in the store, not a tar stream",
                layer.diff_id
            ),
            hint: "copy the image out to read its layers as streams: `skopeo copy containers-storage:NAME oci:DIR:TAG`".into(),
        })
    }

    fn unpacked_layers(
        &self,
        image: &ResolvedPlatform,
        opts: &ReadOptions,
        only: Option<&[String]>,
    ) -> Option<Result<UnpackedLayers, ImageError>> {
        let collected = std::sync::atomic::AtomicU64::new(0);
        let read = || {
            let mut out = Vec::with_capacity(image.layers.len());
            for (i, (l, record)) in image.layers.iter().zip(&self.chain).enumerate() {
                let ctx = LayerCtx {
                    reference: &self.reference,
                    index: i,
                    layer: l,
                    opts,
                    collected: &collected,
                };
                out.push(self.collect(&ctx, record, only)?);
            }
            Ok(UnpackedLayers(out))
        };
        Some(read())
    }
}

/// A file opened only when its content is read: most files the walk meets
/// are not wanted.
struct Lazy<'p> {
    path: &'p Path,
    file: Option<fs_err::File>,
}

impl Read for Lazy<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.file.is_none() {
            self.file = Some(fs_err::File::open(self.path)?);
        }
        self.file.as_mut().map_or(Ok(0), |f| f.read(buf))
    }
}

/// Whether overlayfs hides what lies below this directory: the kernel's
/// `trusted.`/`user.overlay.opaque` xattr, or fuse-overlayfs's own.
fn is_opaque(dir: &Path) -> bool {
    [
        "trusted.overlay.opaque",
        "user.overlay.opaque",
        "user.fuseoverlayfs.opaque",
    ]
    .iter()
    .any(|name| matches!(xattr::get(dir, name), Ok(Some(v)) if v == b"y"))
}

/// The file name containers-storage gives a big-data key: the key itself
/// when it is all `[.0-9a-z]`, else `=` and its base64.
fn big_data_name(key: &str) -> String {
    if !key.is_empty()
        && key
            .bytes()
            .all(|b| b == b'.' || b.is_ascii_digit() || b.is_ascii_lowercase())
    {
        key.to_string()
    } else {
        format!(
            "={}",
            base64::engine::general_purpose::STANDARD.encode(key.as_bytes())
        )
    }
}

/// `images.json` or `layers.json`; a store with none yet holds nothing.
fn read_records<T: serde::de::DeserializeOwned>(
    reference: &str,
    path: &Path,
) -> Result<Vec<T>, ImageError> {
    let what = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let file = match fs_err::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ImageError::Io {
                reference: reference.to_string(),
                what,
                source,
            });
        }
    };
    let mut bytes = Vec::new();
    file.take(1 << 30)
        .read_to_end(&mut bytes)
        .map_err(|source| ImageError::Io {
            reference: reference.to_string(),
            what: what.clone(),
            source,
        })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    serde_json::from_slice(&bytes).map_err(|e| malformed(reference, &what, e))
}

/// The layers from `top` down through their parents, returned bottom first.
fn layer_chain(layers: &[LayerRecord], top: Option<&str>) -> Result<Vec<LayerRecord>, String> {
    let by_id: BTreeMap<&str, &LayerRecord> = layers.iter().map(|l| (l.id.as_str(), l)).collect();
    let mut chain = Vec::new();
    let mut next = top.filter(|t| !t.is_empty());
    while let Some(id) = next {
        let layer = by_id
            .get(id)
            .ok_or_else(|| format!("layer `{id}` is not in `layers.json`"))?;
        if layer.flags.get("incomplete").is_some_and(|v| v == true) {
            return Err(format!(
                "layer `{id}` is incomplete (a pull or commit was interrupted)"
            ));
        }
        if chain.len() > layers.len() {
            return Err(format!("the parents of layer `{id}` form a cycle"));
        }
        chain.push((*layer).clone());
        next = layer.parent.as_deref().filter(|p| !p.is_empty());
    }
    chain.reverse();
    Ok(chain)
}

/// The image `wanted` names, or what is wrong.
fn find_image<'a>(images: &'a [ImageRecord], wanted: &str) -> Result<&'a ImageRecord, String> {
    let is_hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    let by_id = |id: &str| -> Result<&'a ImageRecord, String> {
        let id = id.strip_prefix("sha256:").unwrap_or(id);
        let found: Vec<&ImageRecord> = images.iter().filter(|i| i.id.starts_with(id)).collect();
        match found.as_slice() {
            [one] if is_hex(id) => Ok(one),
            [] | [_] => Err(format!("no image has the ID `{id}`")),
            _ => Err(format!("several images have IDs starting `{id}`")),
        }
    };
    if let Some(id) = wanted.strip_prefix('@') {
        return by_id(id);
    }
    if wanted.len() == 64 && is_hex(wanted) {
        return by_id(wanted);
    }
    let (name, at) = match wanted.split_once('@') {
        Some((n, a)) => (n, Some(a)),
        None => (wanted, None),
    };
    let tagged = name
        .rsplit('/')
        .next()
        .is_some_and(|last| last.contains(':'));
    let mut candidates = vec![name.to_string()];
    if !tagged && at.is_none() {
        candidates.push(format!("{name}:latest"));
    }
    if let Ok(full) = ImageRef::parse(name) {
        candidates.push(full.to_string());
    }
    let local = format!("localhost/{name}");
    candidates.push(local.clone());
    if !tagged && at.is_none() {
        candidates.push(format!("{local}:latest"));
    }
    let named = |i: &&ImageRecord| {
        i.names.iter().any(|n| {
            candidates.iter().any(|c| c == n)
                // `NAME@DIGEST`: the name may carry any tag.
                || (at.is_some()
                    && !tagged
                    && n.rsplit_once(':')
                        .is_some_and(|(repo, _)| candidates.iter().any(|c| c == repo)))
        })
    };
    let found: Vec<&ImageRecord> = images
        .iter()
        .filter(|i| name.is_empty() || named(i))
        .collect();
    let found: Vec<&ImageRecord> = match at {
        None => found,
        Some(at) if at.starts_with("sha256:") => found
            .into_iter()
            .filter(|i| {
                i.digest.as_deref() == Some(at)
                    || i.big_data_names.contains(&format!("manifest-{at}"))
            })
            .collect(),
        Some(id) => found
            .into_iter()
            .filter(|i| i.id.starts_with(id) && is_hex(id))
            .collect(),
    };
    match found.as_slice() {
        [one] => Ok(one),
        [] => Err(format!("no image `{wanted}`")),
        _ => Err(format!("several images match `{wanted}`")),
    }
}

/// What the store holds, for the hint of an image not found.
fn available(images: &[ImageRecord]) -> String {
    let mut names: Vec<&str> = images
        .iter()
        .flat_map(|i| i.names.iter().map(String::as_str))
        .collect();
    names.sort_unstable();
    let unnamed = images.iter().filter(|i| i.names.is_empty()).count();
    if names.is_empty() && unnamed == 0 {
        return "the store holds no images".into();
    }
    let shown: Vec<String> = names.iter().take(8).map(|n| format!("`{n}`")).collect();
    let mut s = format!("it has {}", shown.join(", "));
    if names.len() > shown.len() {
        s.push_str(&format!(" and {} more", names.len() - shown.len()));
    }
    if unnamed > 0 {
        if shown.is_empty() {
            s = format!("it has {unnamed} images without a name");
        } else {
            s.push_str(&format!(", and {unnamed} without a name"));
        }
    }
    s
}

/// The store's driver: the one named, else the only one whose images the
/// store holds.
fn pick_driver(root: &Path, named: Option<&str>) -> Result<Driver, (String, String)> {
    let unsupported = |d: &str| {
        (
            format!("the store at `{}` uses the `{d}` storage driver, which imagelock does not read", root.display()),
            "imagelock reads `overlay` and `vfs` stores; copy the image out and verify that: `skopeo copy containers-storage:NAME oci:DIR:TAG`, then `--image oci:DIR:TAG`".to_string(),
        )
    };
    let named = named.map(str::to_string).or_else(|| {
        std::env::var("STORAGE_DRIVER")
            .ok()
            .filter(|d| !d.is_empty())
    });
    if let Some(name) = named {
        return Driver::parse(&name).map_err(|d| unsupported(&d));
    }
    let present: Vec<&str> = ["overlay", "vfs"]
        .into_iter()
        .chain(OTHER_DRIVERS)
        .filter(|d| root.join(format!("{d}-images")).is_dir())
        .collect();
    match present.as_slice() {
        [one] => Driver::parse(one).map_err(|d| unsupported(&d)),
        [] => Err((
            format!("`{}` holds no images of any storage driver", root.display()),
            "is this the graph root buildah or podman use? `buildah info` shows `GraphRoot`".into(),
        )),
        many => Err((
            format!(
                "the store at `{}` holds images of several drivers: {}",
                root.display(),
                many.iter()
                    .map(|d| format!("`{d}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            format!(
                "name the driver: `containers-storage:[{}@{}]NAME:TAG`",
                many[0],
                root.display()
            ),
        )),
    }
}

/// A shared lock on a store's lock file, as containers-storage's readers
/// take it (`fcntl` read lock on the whole file), waiting up to
/// [`LOCK_WAIT`] for a writer; `None` when the store has no such file.
fn read_lock(path: &Path) -> Result<Option<std::fs::File>, (String, String)> {
    use rustix::fs::{FlockOperation, fcntl_lock};
    let file = match fs_err::File::open(path) {
        Ok(f) => f.into_file(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err((
                e.to_string(),
                "check that the store is readable by this user".into(),
            ));
        }
    };
    let start = Instant::now();
    loop {
        match fcntl_lock(&file, FlockOperation::NonBlockingLockShared) {
            Ok(()) => return Ok(Some(file)),
            Err(e)
                if (e == rustix::io::Errno::AGAIN || e == rustix::io::Errno::ACCESS)
                    && start.elapsed() < LOCK_WAIT =>
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) if e == rustix::io::Errno::AGAIN || e == rustix::io::Errno::ACCESS => {
                return Err((
                    format!(
                        "`{}` stayed locked by a writer for {} s",
                        path.display(),
                        LOCK_WAIT.as_secs()
                    ),
                    "a buildah or podman command is changing the store; run verify when it is done"
                        .into(),
                ));
            }
            Err(e) => {
                return Err((
                    format!("cannot take a read lock on `{}`: {e}", path.display()),
                    "the store's filesystem must support fcntl locks, as containers-storage needs"
                        .into(),
                ));
            }
        }
    }
}

/// The store `storage.conf` names, as containers-storage finds it: as root,
/// `$CONTAINERS_STORAGE_CONF`, else `/etc/containers/storage.conf`, else
/// `/usr/share/containers/storage.conf`, its `graphroot` (default
/// `/var/lib/containers/storage`); otherwise the system file's
/// `rootless_storage_path` (default `$XDG_DATA_HOME/containers/storage`),
/// overridden by the user's `$CONTAINERS_STORAGE_CONF` or
/// `$XDG_CONFIG_HOME/containers/storage.conf`.
fn configured_store() -> Result<StoreLocation, (String, String)> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let read = |path: &Path| -> Result<Option<StorageConf>, (String, String)> {
        match fs_err::read_to_string(path) {
            Ok(text) => toml::from_str(&text).map(Some).map_err(|e| {
                (
                    format!("`{}` is not valid TOML: {e}", path.display()),
                    "fix the file, or name the store: `containers-storage:[vfs@/path/to/graphroot]NAME:TAG`".into(),
                )
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err((e.to_string(), "check that the file is readable".into())),
        }
    };
    let system_files = [
        PathBuf::from("/etc/containers/storage.conf"),
        PathBuf::from("/usr/share/containers/storage.conf"),
    ];
    let first = |files: &[PathBuf]| -> Result<Option<(PathBuf, StorageConf)>, (String, String)> {
        for f in files {
            if let Some(c) = read(f)? {
                return Ok(Some((f.clone(), c)));
            }
        }
        Ok(None)
    };
    if rustix::process::geteuid().is_root() {
        let files: Vec<PathBuf> = env("CONTAINERS_STORAGE_CONF")
            .into_iter()
            .chain(system_files)
            .collect();
        let found = first(&files)?;
        let (from, conf) = match found {
            Some((f, c)) => (format!("`{}`", f.display()), c.storage),
            None => (
                "the default for root".to_string(),
                StorageSection::default(),
            ),
        };
        return Ok(StoreLocation {
            graph_root: conf.graphroot.map_or_else(
                || PathBuf::from("/var/lib/containers/storage"),
                PathBuf::from,
            ),
            driver: conf.driver,
            from,
        });
    }
    let home = env("HOME");
    let data_home = env("XDG_DATA_HOME").or_else(|| home.as_ref().map(|h| h.join(".local/share")));
    let config_home = env("XDG_CONFIG_HOME").or_else(|| home.as_ref().map(|h| h.join(".config")));
    let mut location = StoreLocation {
        graph_root: data_home
            .map(|d| d.join("containers/storage"))
            .ok_or_else(|| {
                (
                    "neither `XDG_DATA_HOME` nor `HOME` is set, so the rootless store cannot be found".to_string(),
                    "name the store: `containers-storage:[vfs@/path/to/graphroot]NAME:TAG`".to_string(),
                )
            })?,
        driver: None,
        from: "the rootless default".into(),
    };
    if let Some((f, c)) = first(&system_files)? {
        location.driver = c.storage.driver;
        if let Some(p) = c.storage.rootless_storage_path {
            location.graph_root = PathBuf::from(expand(&p, home.as_deref()));
            location.from = format!("`rootless_storage_path` in `{}`", f.display());
        }
    }
    let user_files: Vec<PathBuf> = env("CONTAINERS_STORAGE_CONF")
        .into_iter()
        .chain(config_home.map(|c| c.join("containers/storage.conf")))
        .collect();
    if let Some((f, c)) = first(&user_files)? {
        if let Some(d) = c.storage.driver {
            location.driver = Some(d);
        }
        if let Some(g) = c.storage.graphroot.or(c.storage.rootless_storage_path) {
            location.graph_root = PathBuf::from(expand(&g, home.as_deref()));
            location.from = format!("`{}`", f.display());
        }
    }
    Ok(location)
}

/// `$HOME`, `$UID` and `$USER` in a `storage.conf` path, as
/// containers-storage expands them.
fn expand(path: &str, home: Option<&Path>) -> String {
    let mut s = path.to_string();
    if let Some(h) = home {
        s = s.replace("$HOME", &h.to_string_lossy());
    }
    s = s.replace("$UID", &rustix::process::geteuid().as_raw().to_string());
    if let Ok(user) = std::env::var("USER") {
        s = s.replace("$USER", &user);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(id: &str, names: &[&str], digest: &str) -> ImageRecord {
        ImageRecord {
            id: id.into(),
            digest: Some(digest.into()),
            names: names.iter().map(|n| (*n).to_string()).collect(),
            layer: None,
            big_data_names: vec![format!("manifest-{digest}")],
            big_data_digests: BTreeMap::new(),
        }
    }

    #[test]
    fn big_data_keys_are_named_as_containers_storage_names_them() {
        assert_eq!(big_data_name("manifest"), "manifest");
        assert_eq!(
            big_data_name("sha256:af23"),
            "=c2hhMjU2OmFmMjM=",
            "a key with `:` is base64"
        );
        assert_eq!(
            big_data_name(
                "manifest-sha256:e11f4a0ef6bb63e0dc8bdbb5294297bade791fc122efe2b3197a0d639e055cd3"
            ),
            "=bWFuaWZlc3Qtc2hhMjU2OmUxMWY0YTBlZjZiYjYzZTBkYzhiZGJiNTI5NDI5N2JhZGU3OTFmYzEyMmVmZTJiMzE5N2EwZDYzOWUwNTVjZDM="
        );
    }

    #[test]
    fn images_are_found_by_name_digest_and_id() {
        let a = "a".repeat(64);
        let b = format!("b{}", "0".repeat(63));
        let images = vec![
            image(&a, &["localhost/app:1"], "sha256:11"),
            image(&b, &["docker.io/library/python:3.11"], "sha256:22"),
        ];
        let id = |w: &str| find_image(&images, w).map(|i| i.id.clone());
        assert_eq!(id("localhost/app:1"), Ok(a.clone()));
        assert_eq!(id("app:1"), Ok(a.clone()));
        assert_eq!(id("python:3.11"), Ok(b.clone()));
        assert_eq!(id("localhost/app@sha256:11"), Ok(a.clone()));
        assert_eq!(id(&format!("@{}", &b[..12])), Ok(b.clone()));
        assert_eq!(id(&a), Ok(a.clone()));
        assert!(id("app:2").unwrap_err().contains("no image `app:2`"));
        assert!(id("localhost/app@sha256:22").is_err());
        assert!(id("@c").is_err());
        assert!(available(&images).contains("`localhost/app:1`"));
    }

    #[test]
    fn a_layer_chain_is_read_bottom_first_and_incomplete_layers_refused() {
        let layer = |id: &str, parent: Option<&str>| LayerRecord {
            id: id.into(),
            parent: parent.map(str::to_string),
            diff_digest: None,
            diff_size: None,
            flags: BTreeMap::new(),
        };
        let layers = vec![
            layer("top", Some("mid")),
            layer("base", None),
            layer("mid", Some("base")),
        ];
        let ids: Vec<String> = layer_chain(&layers, Some("top"))
            .unwrap()
            .into_iter()
            .map(|l| l.id)
            .collect();
        assert_eq!(ids, ["base", "mid", "top"]);
        assert!(layer_chain(&layers, None).unwrap().is_empty());
        assert!(layer_chain(&layers, Some("gone")).is_err());
        let mut broken = layers.clone();
        broken[1].flags.insert("incomplete".into(), true.into());
        assert!(
            layer_chain(&broken, Some("top"))
                .unwrap_err()
                .contains("incomplete")
        );
        let cycle = vec![layer("x", Some("y")), layer("y", Some("x"))];
        assert!(
            layer_chain(&cycle, Some("x"))
                .unwrap_err()
                .contains("cycle")
        );
    }
}

//! Image sources, named as skopeo names them, and the traits the catalogue
//! reads them through.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::ImageError;
use crate::oci::{Digest, ImageRef, ParseImageRefError, Platform};

/// Largest manifest, index or config accepted: they are small JSON documents.
const MAX_JSON_SIZE: u64 = 16 << 20;

/// Where an image comes from, as `--image` names it (skopeo's transports).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageLocation {
    /// `docker://REG/REPO:TAG` (a registry; read by the registry client).
    Docker(ImageRef),
    /// `oci:DIR[:TAG]`, an OCI image layout directory.
    Oci { dir: PathBuf, tag: Option<String> },
    /// `oci-archive:PATH[:TAG]`, a tar of an OCI image layout.
    OciArchive { path: PathBuf, tag: Option<String> },
    /// `docker-archive:PATH[:NAME:TAG]`, `docker save` output.
    DockerArchive { path: PathBuf, name: Option<String> },
    /// `docker-daemon:NAME:TAG` or `docker-daemon:sha256:ID`, an image in
    /// the local Docker Engine.
    DockerDaemon(String),
    /// `sif:PATH`, or a bare path ending `.sif`: an Apptainer/Singularity
    /// image file (also OCI-SIF).
    Sif(PathBuf),
}

impl FromStr for ImageLocation {
    type Err = ImageError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |hint: &str| ImageError::InvalidReference {
            reference: s.to_string(),
            hint: hint.to_string(),
        };
        // `apptainer build` writes `NAME.sif`; that is how users name it.
        if Path::new(s)
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("sif"))
            && !s.starts_with("sif:")
            && (!s.contains(':') || Path::new(s).exists())
        {
            return Ok(Self::Sif(PathBuf::from(s)));
        }
        let (transport, rest) = s.split_once(':').ok_or_else(|| {
            bad("name the transport: `docker://`, `oci:`, `oci-archive:`, `docker-archive:`, `docker-daemon:` or `sif:`")
        })?;
        let path_and = |rest: &str| -> (PathBuf, Option<String>) {
            match rest.split_once(':') {
                Some((p, t)) if !t.is_empty() => (PathBuf::from(p), Some(t.to_string())),
                Some((p, _)) => (PathBuf::from(p), None),
                None => (PathBuf::from(rest), None),
            }
        };
        let image = match transport {
            "docker" => {
                let name = rest
                    .strip_prefix("//")
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| bad("write `docker://REGISTRY/REPOSITORY:TAG`"))?;
                let image = ImageRef::parse(name).map_err(|e| match e {
                    ParseImageRefError::Invalid { reason, .. } => bad(&reason),
                    other => bad(&other.to_string()),
                })?;
                Self::Docker(image)
            }
            "oci" => {
                let (dir, tag) = path_and(rest);
                Self::Oci { dir, tag }
            }
            "oci-archive" => {
                let (path, tag) = path_and(rest);
                Self::OciArchive { path, tag }
            }
            "docker-archive" => {
                let (path, name) = path_and(rest);
                Self::DockerArchive { path, name }
            }
            "sif" => Self::Sif(PathBuf::from(rest)),
            "docker-daemon" => {
                if rest.is_empty() {
                    return Err(bad("write `docker-daemon:NAME:TAG`"));
                }
                Self::DockerDaemon(rest.to_string())
            }
            _ => {
                return Err(bad(
                    "the transports are `docker://`, `oci:`, `oci-archive:`, `docker-archive:`, `docker-daemon:` and `sif:`",
                ));
            }
        };
        if matches!(&image, Self::Oci { dir: p, .. } | Self::OciArchive { path: p, .. } | Self::DockerArchive { path: p, .. } | Self::Sif(p) if p.as_os_str().is_empty())
        {
            return Err(bad("the path is empty"));
        }
        Ok(image)
    }
}

impl fmt::Display for ImageLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let with = |f: &mut fmt::Formatter<'_>, t: &str, p: &Path, tag: &Option<String>| {
            write!(f, "{t}:{}", p.display())?;
            if let Some(tag) = tag {
                write!(f, ":{tag}")?;
            }
            Ok(())
        };
        match self {
            Self::Docker(n) => write!(f, "docker://{n}"),
            Self::Oci { dir, tag } => with(f, "oci", dir, tag),
            Self::OciArchive { path, tag } => with(f, "oci-archive", path, tag),
            Self::DockerArchive { path, name } => with(f, "docker-archive", path, name),
            Self::DockerDaemon(n) => write!(f, "docker-daemon:{n}"),
            Self::Sif(p) => write!(f, "sif:{}", p.display()),
        }
    }
}

/// One layer of a resolved image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRef {
    /// Digest of the blob as stored, when the source names it (not for the
    /// legacy `docker save` layout, whose layers are only known by diff_id).
    pub digest: Option<Digest>,
    pub media_type: Option<String>,
    pub size: Option<u64>,
    /// Digest of the uncompressed tar (`rootfs.diff_ids[i]`).
    pub diff_id: Digest,
}

/// The parts of an image config that imagelock uses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// `config.Env`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// `rootfs.diff_ids`, bottom layer first.
    pub diff_ids: Vec<Digest>,
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    variant: Option<String>,
    #[serde(default)]
    config: Option<RawContainerConfig>,
    rootfs: RawRootFs,
}

#[derive(Deserialize)]
struct RawContainerConfig {
    #[serde(rename = "Env", default)]
    env: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct RawRootFs {
    #[serde(default)]
    diff_ids: Vec<Digest>,
}

impl ImageConfig {
    /// Parses an image config blob (OCI or Docker).
    pub fn parse(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        let raw: RawConfig = serde_json::from_slice(bytes)?;
        Ok(Self {
            architecture: raw.architecture,
            os: raw.os,
            variant: raw.variant,
            env: raw.config.and_then(|c| c.env).unwrap_or_default(),
            diff_ids: raw.rootfs.diff_ids,
        })
    }
}

/// An image resolved to one platform: its config and layers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedImage {
    /// The reference as given.
    pub reference: String,
    /// The index the platform was picked from, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_digest: Option<Digest>,
    /// The platform's manifest, when the source has manifests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<Digest>,
    /// The config blob's digest (the image ID).
    pub config_digest: Digest,
    pub config: ImageConfig,
    /// Bottom layer first.
    pub layers: Vec<LayerRef>,
}

/// A source of a whole image: resolve it for a platform, then open layers.
/// Methods are called from blocking threads, several layers at once.
pub trait ImageSource: Sync {
    /// The reference, for messages.
    fn reference(&self) -> &str;
    /// Picks the platform's image and reads its config.
    fn resolve(&self, platform: &Platform) -> Result<ResolvedImage, ImageError>;
    /// The layer's blob as stored (possibly compressed). The reader checks
    /// its digests.
    fn open_layer(&self, layer: &LayerRef) -> Result<Box<dyn Read + Send + '_>, ImageError>;
}

/// A content-addressed store of manifests and blobs, as registries and OCI
/// layouts are: what the registry client implements to be read as an image.
/// Called from blocking threads; an async client bridges with
/// `tokio::runtime::Handle::block_on` and a blocking reader over its stream.
pub trait BlobSource: Sync {
    /// The reference, for messages.
    fn reference(&self) -> &str;
    /// The manifest or index the reference names, with its digest when the
    /// source knows it (the caller checks the bytes against it).
    fn root(&self) -> Result<Fetched, ImageError>;
    /// A manifest by digest (a child of an index).
    fn manifest(&self, digest: &Digest) -> Result<Vec<u8>, ImageError> {
        read_small(self.reference(), &digest.to_string(), self.blob(digest)?)
    }
    /// A blob by digest.
    fn blob(&self, digest: &Digest) -> Result<Box<dyn Read + Send + '_>, ImageError>;
}

/// A fetched manifest or index.
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub digest: Option<Digest>,
}

fn read_small(reference: &str, what: &str, r: impl Read) -> Result<Vec<u8>, ImageError> {
    let mut bytes = Vec::new();
    r.take(MAX_JSON_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| ImageError::Io {
            reference: reference.to_string(),
            what: what.to_string(),
            source,
        })?;
    if bytes.len() as u64 > MAX_JSON_SIZE {
        return Err(ImageError::Malformed {
            reference: reference.to_string(),
            what: what.to_string(),
            message: format!("larger than {MAX_JSON_SIZE} bytes"),
        });
    }
    Ok(bytes)
}

fn check_digest(
    reference: &str,
    what: &str,
    bytes: &[u8],
    expected: &Digest,
) -> Result<(), ImageError> {
    let actual = Digest::sha256_of(bytes);
    if &actual == expected {
        Ok(())
    } else {
        Err(ImageError::BlobDigestMismatch {
            reference: reference.to_string(),
            what: what.to_string(),
            expected: expected.clone(),
            actual,
        })
    }
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    #[serde(default)]
    media_type: Option<String>,
    digest: Digest,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    platform: Option<DescPlatform>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize, Clone)]
struct DescPlatform {
    os: String,
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
}

fn parse_manifest(reference: &str, what: &str, bytes: &[u8]) -> Result<Manifest, ImageError> {
    serde_json::from_slice(bytes).map_err(|e| ImageError::Malformed {
        reference: reference.to_string(),
        what: what.to_string(),
        message: e.to_string(),
    })
}

/// Resolves an image from a content-addressed store: index → platform →
/// manifest → config, every document checked against its digest.
pub fn resolve_blobs(
    src: &dyn BlobSource,
    platform: &Platform,
) -> Result<ResolvedImage, ImageError> {
    let reference = src.reference();
    let root = src.root()?;
    if let Some(d) = &root.digest {
        check_digest(reference, "manifest", &root.bytes, d)?;
    }
    let mut manifest = parse_manifest(reference, "manifest", &root.bytes)?;
    let mut index_digest = None;
    let mut manifest_digest = root.digest.clone();
    // An index may point at another index (nested layouts); follow a few.
    for _ in 0..4 {
        let Some(children) = manifest.manifests.take() else {
            break;
        };
        if index_digest.is_none() {
            index_digest = manifest_digest.take();
        }
        let child = pick_platform(reference, &children, platform)?;
        let bytes = src.manifest(&child.digest)?;
        check_digest(reference, "manifest", &bytes, &child.digest)?;
        manifest = parse_manifest(reference, "manifest", &bytes)?;
        manifest_digest = Some(child.digest.clone());
    }
    let _ = manifest.media_type;
    let config_desc = manifest.config.ok_or_else(|| ImageError::Malformed {
        reference: reference.to_string(),
        what: "manifest".into(),
        message: "it has no `config`".into(),
    })?;
    let config_bytes = read_small(reference, "config", src.blob(&config_desc.digest)?)?;
    check_digest(reference, "config", &config_bytes, &config_desc.digest)?;
    let config = ImageConfig::parse(&config_bytes).map_err(|e| ImageError::Malformed {
        reference: reference.to_string(),
        what: "config".into(),
        message: e.to_string(),
    })?;
    let layers = manifest.layers.unwrap_or_default();
    if layers.len() != config.diff_ids.len() {
        return Err(ImageError::Malformed {
            reference: reference.to_string(),
            what: "manifest".into(),
            message: format!(
                "it lists {} layers but the config has {} diff_ids",
                layers.len(),
                config.diff_ids.len()
            ),
        });
    }
    let layers = layers
        .into_iter()
        .zip(&config.diff_ids)
        .map(|(d, diff_id)| LayerRef {
            digest: Some(d.digest),
            media_type: d.media_type,
            size: d.size,
            diff_id: diff_id.clone(),
        })
        .collect();
    Ok(ResolvedImage {
        reference: reference.to_string(),
        index_digest,
        manifest_digest,
        config_digest: config_desc.digest,
        config,
        layers,
    })
}

fn pick_platform<'d>(
    reference: &str,
    children: &'d [Descriptor],
    platform: &Platform,
) -> Result<&'d Descriptor, ImageError> {
    let of = |d: &Descriptor| {
        d.platform
            .as_ref()
            .map(|p| Platform::new(&p.os, &p.architecture, p.variant.as_deref()))
    };
    if let [only] = children
        && only.platform.is_none()
    {
        return Ok(only);
    }
    children
        .iter()
        .find(|d| of(d).is_some_and(|p| p == *platform))
        .or_else(|| {
            children
                .iter()
                .find(|d| of(d).is_some_and(|p| platform.matches(&p)))
        })
        .ok_or_else(|| {
            let mut available: Vec<String> = children
                .iter()
                .filter_map(of)
                .filter(|p| !p.is_unknown())
                .map(|p| format!("`{p}`"))
                .collect();
            available.dedup();
            ImageError::PlatformMissing {
                reference: reference.to_string(),
                platform: platform.clone(),
                available: if available.is_empty() {
                    "none".into()
                } else {
                    available.join(", ")
                },
            }
        })
}

impl<B: BlobSource> ImageSource for B {
    fn reference(&self) -> &str {
        BlobSource::reference(self)
    }

    fn resolve(&self, platform: &Platform) -> Result<ResolvedImage, ImageError> {
        resolve_blobs(self, platform)
    }

    fn open_layer(&self, layer: &LayerRef) -> Result<Box<dyn Read + Send + '_>, ImageError> {
        let digest = layer.digest.as_ref().ok_or_else(|| ImageError::Malformed {
            reference: BlobSource::reference(self).to_string(),
            what: format!("layer {}", layer.diff_id),
            message: "it has no blob digest".into(),
        })?;
        self.blob(digest)
    }
}

/// Files of an image layout or archive: a directory, or a tar read in place.
trait Store: Send + Sync {
    fn open(&self, path: &str) -> io::Result<Box<dyn Read + Send + '_>>;
    fn len(&self, path: &str) -> Option<u64>;
}

struct DirStore(PathBuf);

impl Store for DirStore {
    fn open(&self, path: &str) -> io::Result<Box<dyn Read + Send + '_>> {
        Ok(Box::new(fs_err::File::open(self.0.join(path))?))
    }

    fn len(&self, path: &str) -> Option<u64> {
        fs_err::metadata(self.0.join(path)).ok().map(|m| m.len())
    }
}

/// A tar whose member offsets were indexed once; members are read by seeking,
/// so an archive is never extracted.
struct TarStore {
    path: PathBuf,
    members: HashMap<String, (u64, u64)>,
}

impl TarStore {
    fn open(path: &Path) -> io::Result<Self> {
        let file = fs_err::File::open(path)?;
        let mut archive = tar::Archive::new(file);
        let mut members = HashMap::new();
        let mut links = Vec::new();
        for entry in archive.entries_with_seek()? {
            let entry = entry?;
            let name = super::layer::normalize(&String::from_utf8_lossy(&entry.path_bytes()));
            let kind = entry.header().entry_type();
            if kind.is_file() {
                members.insert(name, (entry.raw_file_position(), entry.size()));
            } else if (kind.is_symlink() || kind.is_hard_link())
                && let Some(target) = entry.link_name_bytes()
            {
                let target = String::from_utf8_lossy(&target).into_owned();
                // Symlinks are relative to their directory; hard links to
                // the archive root.
                let target = if kind.is_symlink() && !target.starts_with('/') {
                    let dir = name.rfind('/').map_or("", |i| &name[..i]);
                    super::layer::normalize(&format!("{dir}/{target}"))
                } else {
                    super::layer::normalize(&target)
                };
                links.push((name, target));
            }
        }
        // Docker 25+ writes `<id>/layer.tar` as a symlink into `blobs/`.
        for _ in 0..4 {
            for (name, target) in &links {
                if let Some(&m) = members.get(target) {
                    members.entry(name.clone()).or_insert(m);
                }
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            members,
        })
    }
}

impl Store for TarStore {
    fn open(&self, path: &str) -> io::Result<Box<dyn Read + Send + '_>> {
        let &(offset, size) = self.members.get(path).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("`{path}` is not in the archive"),
            )
        })?;
        let mut file = fs_err::File::open(&self.path)?;
        file.seek(SeekFrom::Start(offset))?;
        Ok(Box::new(file.take(size)))
    }

    fn len(&self, path: &str) -> Option<u64> {
        self.members.get(path).map(|m| m.1)
    }
}

/// An OCI image layout, in a directory (`oci:`) or a tar (`oci-archive:`).
pub struct OciLayout {
    reference: String,
    tag: Option<String>,
    store: Box<dyn Store>,
}

impl OciLayout {
    /// `oci:DIR[:TAG]`.
    pub fn open_dir(reference: &str, dir: &Path, tag: Option<String>) -> Result<Self, ImageError> {
        if !dir.join("index.json").is_file() {
            return Err(ImageError::Io {
                reference: reference.to_string(),
                what: "index.json".into(),
                source: io::Error::new(io::ErrorKind::NotFound, "not an OCI image layout"),
            });
        }
        Ok(Self {
            reference: reference.to_string(),
            tag,
            store: Box::new(DirStore(dir.to_path_buf())),
        })
    }

    /// `oci-archive:PATH[:TAG]`.
    pub fn open_archive(
        reference: &str,
        path: &Path,
        tag: Option<String>,
    ) -> Result<Self, ImageError> {
        let store = TarStore::open(path).map_err(|source| ImageError::Io {
            reference: reference.to_string(),
            what: "the archive".into(),
            source,
        })?;
        Ok(Self {
            reference: reference.to_string(),
            tag,
            store: Box::new(store),
        })
    }

    fn io(&self, what: &str) -> impl FnOnce(io::Error) -> ImageError + '_ {
        let what = what.to_string();
        move |source| ImageError::Io {
            reference: self.reference.clone(),
            what,
            source,
        }
    }
}

const REF_NAME: &str = "org.opencontainers.image.ref.name";

impl BlobSource for OciLayout {
    fn reference(&self) -> &str {
        &self.reference
    }

    fn root(&self) -> Result<Fetched, ImageError> {
        let bytes = read_small(
            &self.reference,
            "index.json",
            self.store
                .open("index.json")
                .map_err(self.io("index.json"))?,
        )?;
        let index = parse_manifest(&self.reference, "index.json", &bytes)?;
        let entries = index.manifests.unwrap_or_default();
        let chosen: Vec<Descriptor> = match &self.tag {
            Some(tag) => {
                let found: Vec<Descriptor> = entries
                    .iter()
                    .filter(|d| d.annotations.get(REF_NAME) == Some(tag))
                    .cloned()
                    .collect();
                if found.is_empty() {
                    let mut tags: Vec<String> = entries
                        .iter()
                        .filter_map(|d| d.annotations.get(REF_NAME).map(|t| format!("`{t}`")))
                        .collect();
                    tags.sort();
                    tags.dedup();
                    return Err(ImageError::TagMissing {
                        reference: self.reference.clone(),
                        tag: tag.clone(),
                        available: if tags.is_empty() {
                            "none".into()
                        } else {
                            tags.join(", ")
                        },
                    });
                }
                found
            }
            None => {
                if entries.len() > 1 && entries.iter().any(|d| d.platform.is_none()) {
                    let mut tags: Vec<String> = entries
                        .iter()
                        .filter_map(|d| d.annotations.get(REF_NAME).map(|t| format!("`{t}`")))
                        .collect();
                    tags.sort();
                    tags.dedup();
                    return Err(ImageError::TagNeeded {
                        reference: self.reference.clone(),
                        available: if tags.is_empty() {
                            "none tagged".into()
                        } else {
                            tags.join(", ")
                        },
                    });
                }
                entries
            }
        };
        match chosen.as_slice() {
            [] => Err(ImageError::Malformed {
                reference: self.reference.clone(),
                what: "index.json".into(),
                message: "it lists no manifests".into(),
            }),
            [one] => Ok(Fetched {
                bytes: self.manifest(&one.digest)?,
                digest: Some(one.digest.clone()),
            }),
            // Several entries (one per platform, as multi-arch layouts are
            // written): treat them as an index.
            _ => {
                let manifests: Vec<serde_json::Value> = chosen
                    .iter()
                    .map(|d| {
                        let mut v = serde_json::json!({
                            "mediaType": d.media_type,
                            "digest": d.digest.to_string(),
                            "size": d.size,
                        });
                        if let Some(p) = &d.platform {
                            v["platform"] = serde_json::json!({
                                "os": p.os, "architecture": p.architecture, "variant": p.variant,
                            });
                        }
                        v
                    })
                    .collect();
                Ok(Fetched {
                    bytes: serde_json::to_vec(&serde_json::json!({ "manifests": manifests }))
                        .unwrap_or_default(),
                    digest: None,
                })
            }
        }
    }

    fn blob(&self, digest: &Digest) -> Result<Box<dyn Read + Send + '_>, ImageError> {
        let path = format!("blobs/sha256/{}", digest.hex());
        self.store.open(&path).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                ImageError::BlobMissing {
                    reference: self.reference.clone(),
                    digest: digest.clone(),
                }
            } else {
                ImageError::Io {
                    reference: self.reference.clone(),
                    what: digest.to_string(),
                    source,
                }
            }
        })
    }
}

/// `docker save` output: `manifest.json`, a config, and layer tars, in the
/// legacy `<id>/layer.tar` layout or the newer `blobs/sha256/…` one.
pub struct DockerArchive {
    reference: String,
    name: Option<String>,
    store: Box<dyn Store>,
}

#[derive(Deserialize)]
struct DockerManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

impl DockerArchive {
    /// `docker-archive:PATH[:NAME:TAG]`.
    pub fn open(reference: &str, path: &Path, name: Option<String>) -> Result<Self, ImageError> {
        let store: Box<dyn Store> = if path.is_dir() {
            Box::new(DirStore(path.to_path_buf()))
        } else {
            Box::new(TarStore::open(path).map_err(|source| ImageError::Io {
                reference: reference.to_string(),
                what: "the archive".into(),
                source,
            })?)
        };
        Ok(Self {
            reference: reference.to_string(),
            name,
            store,
        })
    }
}

/// `python:3.11`, `docker.io/library/python:3.11` and
/// `index.docker.io/library/python:3.11` name the same image.
fn short_name(name: &str) -> &str {
    let name = name
        .strip_prefix("docker.io/")
        .or_else(|| name.strip_prefix("index.docker.io/"))
        .unwrap_or(name);
    name.strip_prefix("library/").unwrap_or(name)
}

impl ImageSource for DockerArchive {
    fn reference(&self) -> &str {
        &self.reference
    }

    fn resolve(&self, _platform: &Platform) -> Result<ResolvedImage, ImageError> {
        let io = |what: &str| {
            let what = what.to_string();
            move |source| ImageError::Io {
                reference: self.reference.clone(),
                what,
                source,
            }
        };
        let bytes = read_small(
            &self.reference,
            "manifest.json",
            self.store
                .open("manifest.json")
                .map_err(io("manifest.json"))?,
        )?;
        let entries: Vec<DockerManifestEntry> =
            serde_json::from_slice(&bytes).map_err(|e| ImageError::Malformed {
                reference: self.reference.clone(),
                what: "manifest.json".into(),
                message: e.to_string(),
            })?;
        let entry = match &self.name {
            Some(name) => entries.iter().find(|e| {
                e.repo_tags
                    .iter()
                    .flatten()
                    .any(|t| short_name(t) == short_name(name))
            }),
            None if entries.len() == 1 => entries.first(),
            None => None,
        };
        let Some(entry) = entry else {
            let mut tags: Vec<String> = entries
                .iter()
                .flat_map(|e| e.repo_tags.iter().flatten().map(|t| format!("`{t}`")))
                .collect();
            tags.sort();
            return Err(ImageError::TagMissing {
                reference: self.reference.clone(),
                tag: self.name.clone().unwrap_or_else(|| "(none given)".into()),
                available: if tags.is_empty() {
                    "none".into()
                } else {
                    tags.join(", ")
                },
            });
        };
        let config_path = super::layer::normalize(&entry.config);
        let config_bytes = read_small(
            &self.reference,
            "config",
            self.store.open(&config_path).map_err(io(&config_path))?,
        )?;
        let config_digest = Digest::sha256_of(&config_bytes);
        if let Some(expected) = digest_from_path(&config_path) {
            check_digest(&self.reference, "config", &config_bytes, &expected)?;
        }
        let config = ImageConfig::parse(&config_bytes).map_err(|e| ImageError::Malformed {
            reference: self.reference.clone(),
            what: "config".into(),
            message: e.to_string(),
        })?;
        if entry.layers.len() != config.diff_ids.len() {
            return Err(ImageError::Malformed {
                reference: self.reference.clone(),
                what: "manifest.json".into(),
                message: format!(
                    "it lists {} layers but the config has {} diff_ids",
                    entry.layers.len(),
                    config.diff_ids.len()
                ),
            });
        }
        let layers = entry
            .layers
            .iter()
            .zip(&config.diff_ids)
            .map(|(path, diff_id)| {
                let path = super::layer::normalize(path);
                LayerRef {
                    digest: digest_from_path(&path),
                    media_type: None,
                    size: self.store.len(&path),
                    diff_id: diff_id.clone(),
                }
            })
            .collect();
        Ok(ResolvedImage {
            reference: self.reference.clone(),
            index_digest: None,
            manifest_digest: None,
            config_digest,
            config,
            layers,
        })
    }

    fn open_layer(&self, layer: &LayerRef) -> Result<Box<dyn Read + Send + '_>, ImageError> {
        // Layers are found again by position in manifest.json; the path is
        // re-derived from the digest or the diff_id.
        let bytes = read_small(
            &self.reference,
            "manifest.json",
            self.store
                .open("manifest.json")
                .map_err(|source| ImageError::Io {
                    reference: self.reference.clone(),
                    what: "manifest.json".into(),
                    source,
                })?,
        )?;
        let entries: Vec<DockerManifestEntry> = serde_json::from_slice(&bytes).unwrap_or_default();
        let candidates = entries
            .iter()
            .flat_map(|e| e.layers.iter())
            .map(|p| super::layer::normalize(p));
        let mut path = None;
        for p in candidates {
            let matches = match &layer.digest {
                Some(d) => digest_from_path(&p).as_ref() == Some(d),
                None => self.legacy_diff_id(&p).as_ref() == Some(&layer.diff_id),
            };
            if matches {
                path = Some(p);
                break;
            }
        }
        let path = path.ok_or_else(|| ImageError::BlobMissing {
            reference: self.reference.clone(),
            digest: layer.diff_id.clone(),
        })?;
        self.store.open(&path).map_err(|source| ImageError::Io {
            reference: self.reference.clone(),
            what: path,
            source,
        })
    }
}

impl DockerArchive {
    /// The legacy layout names layers `<id>/layer.tar`, with no digest in
    /// the path; they are matched to diff_ids through each image's config.
    fn legacy_diff_id(&self, path: &str) -> Option<Digest> {
        let bytes = read_small(
            &self.reference,
            "manifest.json",
            self.store.open("manifest.json").ok()?,
        )
        .ok()?;
        let entries: Vec<DockerManifestEntry> = serde_json::from_slice(&bytes).ok()?;
        for e in entries {
            if let Some(i) = e
                .layers
                .iter()
                .position(|p| super::layer::normalize(p) == path)
            {
                let config = read_small(
                    &self.reference,
                    "config",
                    self.store.open(&super::layer::normalize(&e.config)).ok()?,
                )
                .ok()?;
                return ImageConfig::parse(&config).ok()?.diff_ids.get(i).cloned();
            }
        }
        None
    }
}

/// `blobs/sha256/HEX` → the digest.
fn digest_from_path(path: &str) -> Option<Digest> {
    let hex = path.strip_prefix("blobs/sha256/")?;
    format!("sha256:{hex}").parse().ok()
}

/// Opens a local source (`oci:`, `oci-archive:`, `docker-archive:`,
/// `docker-daemon:`). `docker://` is read through the registry client's
/// [`BlobSource`].
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
        ImageLocation::DockerDaemon(name) => Ok(Box::new(super::daemon::DockerDaemon::new(
            &reference, name,
        )?)),
        ImageLocation::Docker(_) => Err(ImageError::InvalidReference {
            reference,
            hint: "registry images are read through the registry client".into(),
        }),
        ImageLocation::Sif(_) => Err(ImageError::InvalidReference {
            reference,
            hint: "SIF files are read with `image::SifImage`".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references() {
        let cases = [
            ("oci:/tmp/x", "oci:/tmp/x"),
            ("oci:dir:v1", "oci:dir:v1"),
            ("oci-archive:a.tar:latest", "oci-archive:a.tar:latest"),
            ("docker-archive:a.tar", "docker-archive:a.tar"),
            (
                "docker-archive:a.tar:python:3.11",
                "docker-archive:a.tar:python:3.11",
            ),
            ("docker-daemon:python:3.11", "docker-daemon:python:3.11"),
            ("sif:build/x.sif", "sif:build/x.sif"),
            ("summation.sif", "sif:summation.sif"),
            ("/abs/Summation.SIF", "sif:/abs/Summation.SIF"),
            (
                "docker://localhost:5000/x/y:1",
                "docker://localhost:5000/x/y:1",
            ),
        ];
        for (input, shown) in cases {
            let r: ImageLocation = input.parse().unwrap();
            assert_eq!(r.to_string(), shown);
        }
        assert_eq!(
            "docker-archive:a.tar:python:3.11"
                .parse::<ImageLocation>()
                .unwrap(),
            ImageLocation::DockerArchive {
                path: "a.tar".into(),
                name: Some("python:3.11".into())
            }
        );
        for bad in ["python:3.11", "docker:python", "oci:", "nope", "sif:"] {
            assert!(bad.parse::<ImageLocation>().is_err(), "{bad}");
        }
    }

    #[test]
    fn short_names() {
        assert_eq!(short_name("docker.io/library/python:3.11"), "python:3.11");
        assert_eq!(short_name("python:3.11"), "python:3.11");
    }
}

//! `oci:DIR[:TAG]` and `oci-archive:PATH[:TAG]`: OCI image layouts, read
//! with the blocking walk over [`crate::oci`] (which entry a tag names,
//! which platform an index serves), every document checked against its
//! digest.

use std::io::{self, Read};
use std::path::Path;

use super::ImageError;
use super::source::{ImageSource, blob_digest, malformed, read_small, verified};
use super::store::{DirStore, Store, TarStore};
use crate::oci::layout::{self, LayoutEntry, LayoutError};
use crate::oci::select::offered_list;
use crate::oci::{
    Digest, Document, ImageConfig, Index, LayerRef, MediaTypes, Platform, PlatformWalk,
    ResolvedPlatform, SelectPlatformError, manifest_layers, parse_document,
};

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

    /// A layout whose files come from `store` (an OCI-SIF's objects).
    pub(crate) fn from_store(reference: &str, tag: Option<String>, store: Box<dyn Store>) -> Self {
        Self {
            reference: reference.to_string(),
            tag,
            store,
        }
    }

    fn blob(&self, digest: &Digest) -> Result<Box<dyn Read + Send + '_>, ImageError> {
        let path = format!("blobs/{}/{}", digest.algorithm().as_str(), digest.hex());
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

    /// A manifest or config by digest, checked.
    fn document(&self, digest: &Digest, what: &str) -> Result<Vec<u8>, ImageError> {
        let bytes = read_small(&self.reference, what, self.blob(digest)?)?;
        verified(&self.reference, what, &bytes, digest)?;
        Ok(bytes)
    }

    /// What the tag names: a manifest or index (with its digest), or the
    /// layout's per-platform entries read as an index.
    fn root(&self) -> Result<(Option<Digest>, String, Document), ImageError> {
        let bytes = read_small(
            &self.reference,
            "index.json",
            self.store
                .open("index.json")
                .map_err(|source| ImageError::Io {
                    reference: self.reference.clone(),
                    what: "index.json".into(),
                    source,
                })?,
        )?;
        let index: Index = serde_json::from_slice(&bytes)
            .map_err(|e| malformed(&self.reference, "index.json", e))?;
        match layout::find(&index, self.tag.as_deref()).map_err(|e| self.layout_error(e))? {
            LayoutEntry::One(entry) => {
                let bytes = self.document(&entry.digest, "manifest")?;
                let (media_type, document) = parse_document(&bytes, entry.media_type.as_deref())
                    .map_err(|e| malformed(&self.reference, "manifest", e))?;
                Ok((Some(entry.digest), media_type, document))
            }
            LayoutEntry::PerPlatform(index) => Ok((
                None,
                MediaTypes::OCI_INDEX.to_string(),
                Document::Index(index),
            )),
        }
    }

    fn layout_error(&self, e: LayoutError) -> ImageError {
        let reference = self.reference.clone();
        let quoted = |tags: Vec<String>, none: &str| {
            if tags.is_empty() {
                none.to_string()
            } else {
                tags.iter()
                    .map(|t| format!("`{t}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        match e {
            LayoutError::TagMissing { tag, available } => ImageError::TagMissing {
                reference,
                tag,
                available: quoted(available, "none"),
            },
            LayoutError::TagNeeded { available } => ImageError::TagNeeded {
                reference,
                available: quoted(available, "none tagged"),
            },
            e @ LayoutError::Empty => malformed(&reference, "index.json", e),
        }
    }
}

/// A platform the image does not have, as the image reader reports it.
pub(crate) fn platform_missing(reference: &str, e: SelectPlatformError) -> ImageError {
    match e {
        SelectPlatformError::Missing { platform, offered } => ImageError::PlatformMissing {
            reference: reference.to_string(),
            platform,
            available: offered_list(&offered),
        },
        SelectPlatformError::SinglePlatform { platform, offered } => ImageError::PlatformMissing {
            reference: reference.to_string(),
            platform,
            available: format!("only `{offered}` (a single-platform image)"),
        },
        e @ SelectPlatformError::TooDeep => malformed(reference, "index", e),
    }
}

impl ImageSource for OciLayout {
    fn reference(&self) -> &str {
        &self.reference
    }

    fn resolve(&self, platform: &Platform) -> Result<ResolvedPlatform, ImageError> {
        let reference = &self.reference;
        let (mut digest, mut media_type, mut document) = self.root()?;
        let mut walk = PlatformWalk::new(platform);
        let manifest = loop {
            let index = match document {
                Document::Manifest(m) => break m,
                Document::Index(index) => index,
            };
            let entry = walk
                .descend(&index, digest.as_ref())
                .map_err(|e| platform_missing(reference, e))?
                .clone();
            let bytes = self.document(&entry.digest, "manifest")?;
            (media_type, document) = parse_document(&bytes, entry.media_type.as_deref())
                .map_err(|e| malformed(reference, "manifest", e))?;
            digest = Some(entry.digest);
        };
        let config_digest = manifest.config.digest.clone();
        let bytes = self.document(&config_digest, "config")?;
        let config = ImageConfig::parse(&bytes).map_err(|e| malformed(reference, "config", e))?;
        walk.check_config(config.platform())
            .map_err(|e| platform_missing(reference, e))?;
        let layers =
            manifest_layers(&manifest, &config).map_err(|e| malformed(reference, "manifest", e))?;
        Ok(ResolvedPlatform {
            reference: reference.clone(),
            platform: platform.clone(),
            index_digest: walk.index_digest().cloned(),
            manifest_digest: digest,
            media_type: Some(media_type),
            config_digest,
            config,
            layers,
        })
    }

    fn open_layer(&self, layer: &LayerRef) -> Result<Box<dyn Read + Send + '_>, ImageError> {
        let digest = blob_digest(&self.reference, layer)?;
        self.blob(digest)
    }

    fn layer_origin(&self, layer: &LayerRef) -> Option<String> {
        let digest = layer.digest.as_ref()?;
        self.store.origin(&format!(
            "blobs/{}/{}",
            digest.algorithm().as_str(),
            digest.hex()
        ))
    }
}

//! The trait every image source is read through, and the helpers the
//! blocking readers share. The sources themselves live one per transport:
//! [`super::layout`] (`oci:`, `oci-archive:`), [`super::archive`]
//! (`docker-archive:`), [`super::daemon`] (`docker-daemon:`) and
//! [`super::registry`] (`docker://`) and [`super::storage`]
//! (`containers-storage:`).

use std::io::Read;

use super::layer::LayerCollection;
use super::{ImageError, ReadOptions};
use crate::oci::{Digest, LayerRef, Platform, ResolvedPlatform, check_digest};

/// Largest manifest, index or config accepted: they are small JSON documents.
pub(crate) const MAX_JSON_SIZE: u64 = 16 << 20;

/// A source of a whole image: resolve it for a platform, then open layers.
/// Methods are called from blocking threads, several layers at once.
pub trait ImageSource: Sync {
    /// The reference, for messages.
    fn reference(&self) -> &str;
    /// Picks the platform's image and reads its config.
    fn resolve(&self, platform: &Platform) -> Result<ResolvedPlatform, ImageError>;
    /// The layer's blob as stored (possibly compressed). The reader checks
    /// its digests.
    fn open_layer(&self, layer: &LayerRef) -> Result<Box<dyn Read + Send + '_>, ImageError>;
    /// Where [`Self::open_layer`] reads the layer's bytes from, when two
    /// layers with the same origin and digests are the same bytes within one
    /// run (the same file; the same blob of the same registry, fetched by
    /// digest): what a [`super::LayerMemo`] is keyed by. `None` (the
    /// default): every read is done again.
    fn layer_origin(&self, _layer: &LayerRef) -> Option<String> {
        None
    }
    /// What each layer contributes, bottom first, when the source holds its
    /// layers unpacked (a containers-storage store) rather than as tar
    /// streams: everything that matters, or with `only`, the entries under
    /// those normalized paths (files by their sha256). `None` (the
    /// default): read the streams of [`Self::open_layer`].
    fn unpacked_layers(
        &self,
        _image: &ResolvedPlatform,
        _opts: &ReadOptions,
        _only: Option<&[String]>,
    ) -> Option<Result<UnpackedLayers, ImageError>> {
        None
    }
}

/// Layers read from unpacked directories, bottom first. They are never
/// cached by diff_id: what the directories hold now is what counts.
pub struct UnpackedLayers(pub(crate) Vec<LayerCollection>);

/// A small document, read whole up to [`MAX_JSON_SIZE`].
pub(crate) fn read_small(reference: &str, what: &str, r: impl Read) -> Result<Vec<u8>, ImageError> {
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

/// `bytes` checked against the digest they were read by.
pub(crate) fn verified(
    reference: &str,
    what: &str,
    bytes: &[u8],
    expected: &Digest,
) -> Result<(), ImageError> {
    check_digest(expected, bytes).map_err(|e| ImageError::BlobDigestMismatch {
        reference: reference.to_string(),
        what: what.to_string(),
        expected: e.expected,
        actual: e.actual,
    })
}

/// A document of `reference` that does not parse.
pub(crate) fn malformed(reference: &str, what: &str, e: impl ToString) -> ImageError {
    ImageError::Malformed {
        reference: reference.to_string(),
        what: what.to_string(),
        message: e.to_string(),
    }
}

/// The blob digest a layer is stored under, which sources with manifests
/// always name.
pub(crate) fn blob_digest<'l>(
    reference: &str,
    layer: &'l LayerRef,
) -> Result<&'l Digest, ImageError> {
    layer.digest.as_ref().ok_or_else(|| ImageError::Malformed {
        reference: reference.to_string(),
        what: format!("layer {}", layer.diff_id),
        message: "it has no blob digest".into(),
    })
}

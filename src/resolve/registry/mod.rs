//! A thin OCI distribution client: tags to digests, indexes to per-platform
//! manifests, and each platform's config for its layer diff_ids.
//!
//! Everything fetched is checked against its digest. Manifests over 4 MiB
//! are refused. Credentials go only to the registry (and its token realm),
//! never to hosts it redirects to.

mod client;
mod error;
mod manifest;
mod oci_layout;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use client::{BlobStream, Registry, RegistryOptions, RequestCounts};
pub use error::ResolveError;
pub use manifest::{MediaTypes, is_index_media_type};

use crate::oci::{Digest, ImageRef, Platform};

/// The name the lock keys an image by: tag kept, digest dropped unless it
/// is all there is.
pub fn canonical_name(image: &ImageRef) -> String {
    match image.tag() {
        Some(tag) => format!("{}:{tag}", image.name()),
        None => image.to_string(),
    }
}

/// The largest manifest accepted (the limit registries themselves apply).
pub const MANIFEST_LIMIT: u64 = 4 * 1024 * 1024;
/// The largest config blob accepted.
pub const CONFIG_LIMIT: u64 = 16 * 1024 * 1024;

/// An image pinned: what `docker pull` shows and what each platform gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedImage {
    /// The canonical name (`docker.io/library/python:3.11-slim`), or
    /// `oci:DIR[:TAG]` for a layout given directly.
    pub name: String,
    /// The index digest for a multi-platform image, else the manifest digest.
    pub digest: Digest,
    /// Media type of what `digest` names.
    pub media_type: String,
    /// One entry per requested platform, in the order asked for.
    pub platforms: Vec<ResolvedPlatform>,
}

/// The image one platform gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedPlatform {
    pub platform: Platform,
    /// The platform's manifest digest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// The config blob digest (the image ID).
    pub config: Digest,
    /// Uncompressed layer digests, bottom first.
    pub diff_ids: Vec<Digest>,
    /// When the image was built (the config's `created`), as written.
    pub created: Option<String>,
}

/// Where an image is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageSource {
    /// A registry reference (`docker://` in skopeo's terms).
    Registry(ImageRef),
    /// An OCI image layout directory and a tag or digest in it
    /// (`oci:DIR[:TAG]`); without one the layout must hold a single image.
    OciLayout {
        dir: PathBuf,
        reference: Option<String>,
    },
}

impl ImageSource {
    /// Parses `docker://REF`, `oci:DIR[:TAG]` or a bare reference.
    pub fn parse(s: &str) -> Result<ImageSource, crate::oci::ParseImageRefError> {
        if let Some(rest) = s.strip_prefix("oci:") {
            let (dir, reference) = match rest.rsplit_once(':') {
                Some((d, r)) if !r.contains('/') && !d.is_empty() => (d, Some(r.to_string())),
                _ => (rest, None),
            };
            return Ok(ImageSource::OciLayout {
                dir: PathBuf::from(dir),
                reference,
            });
        }
        let r = s.strip_prefix("docker://").unwrap_or(s);
        ImageRef::parse(r).map(ImageSource::Registry)
    }
}

/// The per-host settings of a configuration, keyed by registry.
pub type RegistryConfigs = BTreeMap<String, crate::config::RegistryConfig>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_sources() {
        assert_eq!(
            ImageSource::parse("oci:world/images/python:3.11").unwrap(),
            ImageSource::OciLayout {
                dir: "world/images/python".into(),
                reference: Some("3.11".into())
            }
        );
        assert_eq!(
            ImageSource::parse("oci:/a/b").unwrap(),
            ImageSource::OciLayout {
                dir: "/a/b".into(),
                reference: None
            }
        );
        assert!(matches!(
            ImageSource::parse("docker://python").unwrap(),
            ImageSource::Registry(_)
        ));
    }
}

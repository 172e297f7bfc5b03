//! The OCI vocabulary, pure (no I/O): image references, content digests,
//! platforms and every ecosystem's name for them; manifests, indexes and
//! image configs; the one rule that picks a platform from an index; image
//! layouts' `index.json`; and the transport syntax of image locations.
//! Everything that reads images or talks to registries builds on these.

pub mod image;
pub mod layout;
pub mod location;
pub mod manifest;
pub mod platform;
pub mod reference;
pub mod select;

pub use image::{
    DigestMismatch, ImageConfig, LayerCountMismatch, LayerRef, ResolvedImage, ResolvedPlatform,
    check_digest, manifest_layers,
};
pub use layout::{LayoutEntry, LayoutError};
pub use location::{ImageLocation, ParseLocationError, StoreSpec};
pub use manifest::{
    Descriptor, Document, Index, Manifest, MediaTypes, ParseManifestError, is_index_media_type,
    parse_document,
};
pub use platform::{ParsePlatformError, Platform};
pub use reference::{
    DOCKER_HUB, DOCKER_HUB_API, Digest, DigestAlgorithm, ImageRef, ParseDigestError,
    ParseImageRefError, same_image,
};
pub use select::{MAX_INDEX_DEPTH, PlatformWalk, SelectPlatformError, select_platform};

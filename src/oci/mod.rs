//! The OCI vocabulary, pure (no I/O): image references, content digests,
//! platforms and every ecosystem's name for them. Everything that reads
//! images or talks to registries builds on these types.

pub mod platform;
pub mod reference;

pub use platform::{ParsePlatformError, Platform};
pub use reference::{
    DOCKER_HUB, DOCKER_HUB_API, Digest, DigestAlgorithm, ImageRef, ParseDigestError,
    ParseImageRefError, same_image,
};

//! The only network code: registries, conda channels, Python indexes, caches.

pub mod reference;

pub use reference::{
    Digest, ImageRef, ParseDigestError, ParseImageRefError, ParsePlatformError, Platform,
};

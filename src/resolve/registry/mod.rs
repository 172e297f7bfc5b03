//! A thin OCI distribution client: tags to digests, indexes to per-platform
//! manifests, and each platform's config for its layer diff_ids. The async
//! driver over [`crate::oci`]: what a document means and which platform an
//! index serves are decided there.
//!
//! Everything fetched is checked against its digest. Manifests over 4 MiB
//! are refused. Credentials go only to the registry (and its token realm),
//! never to hosts it redirects to.

mod client;
mod error;

use std::collections::BTreeMap;

pub use client::{BlobStream, Registry, RegistryOptions, RequestCounts};
pub use error::ResolveError;

use crate::oci::ImageRef;

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

/// The per-host settings of a configuration, keyed by registry.
pub type RegistryConfigs = BTreeMap<String, crate::config::RegistryConfig>;

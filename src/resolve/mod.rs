//! The only network code: registries, conda channels, Python indexes, caches.

pub mod auth;
pub mod http;
pub mod pypi;
pub mod registry;

pub use registry::{
    ImageSource, Registry, RegistryOptions, ResolveError, ResolvedImage, ResolvedPlatform,
};
pub mod apt;
pub mod conda;

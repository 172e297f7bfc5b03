//! The only network code: registries, conda channels, Python indexes, caches.

pub mod auth;
pub mod content;
pub mod git;
pub mod http;
pub mod library;
pub mod pypi;
pub mod registry;
pub mod rpm;
pub mod session;

pub use registry::{Registry, RegistryOptions, ResolveError};
pub mod apk;
pub mod apt;
pub mod conda;

pub use session::{Session, SessionError, SessionOptions};

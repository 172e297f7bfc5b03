//! The only network code: registries, conda channels, Python indexes, caches.

pub mod conda;

//! Python resolution: the target environment, PubGrub over a
//! [`PackageSource`], and the lock entries it produces. No I/O here.

pub mod dist;
pub mod provider;
pub mod resolver;
pub mod target;

#[cfg(test)]
mod tests;

pub use dist::{CoreMetadata, DistFile};
pub use provider::{DirectDist, MemorySource, PackageSource, SourceError};
pub use resolver::{
    Candidates, PinnedPackage, PinnedSource, ResolveOptions, ResolveRequest, SolveError, Upgrade,
    resolve,
};
pub use target::{Libc, TargetEnv, TargetError};

use crate::lock::PypiPackage;

impl PinnedPackage {
    /// The lock entry for `platform`; `None` for packages that were already
    /// installed (they are not part of the step).
    pub fn to_lock(&self, platform: &str) -> Option<PypiPackage> {
        let (file, url, sha256) = match &self.source {
            PinnedSource::Index(f) => (
                f.filename.clone(),
                f.url.clone(),
                f.sha256.clone().unwrap_or_default(),
            ),
            PinnedSource::Direct(d) => (
                d.filename.clone(),
                d.url.clone(),
                d.sha256.clone().unwrap_or_default(),
            ),
            PinnedSource::Installed => return None,
        };
        Some(PypiPackage {
            name: self.name.to_string(),
            version: self.version.to_string(),
            requested: self.requested.clone(),
            file,
            url,
            sha256,
            markers: None,
            platforms: vec![platform.to_string()],
        })
    }
}

//! Python resolution: the target environment, PubGrub over a
//! [`PackageSource`], and the pinned packages it produces. No I/O here.

pub mod direct;
pub mod dist;
pub mod provider;
pub mod resolver;
pub mod target;

#[cfg(test)]
mod tests;

pub use direct::{DirectKind, UnbuiltDist};
pub use dist::{CoreMetadata, DistFile};
pub use provider::{DirectDist, MemorySource, PackageSource, SourceError};
pub use resolver::{
    Candidates, PinnedPackage, PinnedSource, Resolution, ResolveOptions, ResolveRequest,
    SolveError, Upgrade, resolve,
};
pub use target::{Libc, TargetEnv, TargetError};

impl PinnedPackage {
    /// Newer releases the resolution stepped back over because their
    /// metadata could not be had: the installer may fail on one of them
    /// instead (pip stops when an sdist's metadata does not build).
    pub fn passed_over_warning(&self) -> Option<String> {
        let version = self.version.as_ref()?;
        let (newest, why) = self.passed_over.iter().max_by(|a, b| a.0.cmp(&b.0))?;
        let why = why.split_once("\nhint: ").map_or(why.as_str(), |(t, _)| t);
        let others = self.passed_over.len() - 1;
        let more = if others == 0 {
            String::new()
        } else {
            format!(" (and {others} more release(s) between)")
        };
        Some(format!(
            "`{}` {version} is locked because {newest}{more} cannot be used: {why}; the build's installer may stop at {newest} instead of stepping back\nhint: require `{}<{newest}` or `=={version}` if {version} is what the image should have",
            self.name, self.name,
        ))
    }

    /// Why this package's lock entry is weaker than an index file's, for a
    /// VCS or path requirement: what it pins, and what it cannot.
    pub fn unbuilt_warning(&self) -> Option<String> {
        let PinnedSource::Unbuilt(u) = &self.source else {
            return None;
        };
        let written = self.requested.as_deref().unwrap_or(&u.url);
        let mut text = match u.kind {
            DirectKind::Vcs => {
                let pin = match (&u.commit, &u.revision) {
                    (Some(c), _) => format!("at commit {c}"),
                    (None, Some(r)) => format!("at `{r}`, which is not a commit id and can move"),
                    (None, None) => "at the repository's default branch, which can move".into(),
                };
                format!("`{written}` is locked as given, {pin}; a checkout is not content-hashed")
            }
            _ => format!(
                "`{written}` is a path in the image, locked as given; it is not content-hashed"
            ),
        };
        text.push_str(
            ", and its own dependencies are not resolved (they are known only after a build), so pip will choose them when the image is built",
        );
        text.push_str(match (u.kind, &u.commit) {
            (DirectKind::Vcs, None) => "\nhint: pin a full commit id (`@<sha>`), and list its dependencies in the same step so they are locked",
            _ => "\nhint: list its dependencies in the same step so they are locked, or install a built wheel by URL",
        });
        Some(text)
    }
}

//! Where each Apptainer bootstrap agent takes its base from, and so how it
//! is pinned. One `match` on the agent ([`agent_pin`]) decides it for
//! freeze, coverage, verify and drift alike.

use std::path::{Path, PathBuf};

use crate::oci::ImageLocation;

/// How the base of a `Bootstrap: AGENT` stage is pinned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgentPin {
    /// An image of a registry, pinned by its manifest digest (`docker`).
    Registry,
    /// An image on this machine: a daemon's image, a file or a layout.
    Local(LocalAgent),
    /// A SIF a service serves, pinned where it lives and read from that SIF
    /// (see `crate::freeze::agents`).
    Remote(RemoteAgent),
    /// Not pinned (a gone service, an OS bootstrap);
    /// [`crate::source::coverage::agent_not_locked`] says why.
    Unpinned,
}

/// The bootstrap agents that pull a SIF from a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoteAgent {
    /// `oras`: an ORAS artifact at an OCI registry, pinned by its manifest
    /// digest (with its SIF layer's digest).
    Oras,
    /// `library`: an image of a Library service, pinned by its image hash
    /// (the SIF file's sha256) for each architecture.
    Library,
}

impl RemoteAgent {
    /// The agent's name in a definition file.
    pub fn name(self) -> &'static str {
        match self {
            Self::Oras => "oras",
            Self::Library => "library",
        }
    }
}

/// The bootstrap agents that read an image on this machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalAgent {
    /// `docker-daemon`: an image of the local Docker Engine, pinned by its
    /// image ID.
    DockerDaemon,
    /// `docker-archive`: a `docker save` tar, pinned by the file's sha256.
    DockerArchive,
    /// `oci-archive`: a tar of an OCI layout, pinned by the file's sha256.
    OciArchive,
    /// `oci`: an OCI layout directory, pinned by the digest `index.json`
    /// lists for the image.
    Oci,
    /// `localimage`: a SIF file, pinned by the file's sha256.
    LocalImage,
}

/// What a local base's digest is, as the lock records it (`pinned`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinKind {
    /// The image ID (the config blob's digest) the Docker Engine reports.
    ImageId,
    /// The sha256 of the file itself.
    FileSha256,
    /// The digest of the manifest (or index) the layout's `index.json`
    /// lists.
    LayoutManifest,
}

impl PinKind {
    /// The lock's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ImageId => "image-id",
            Self::FileSha256 => "file-sha256",
            Self::LayoutManifest => "layout-manifest",
        }
    }
}

/// How `Bootstrap: agent` is pinned. The one place that dispatches on the
/// agent's name.
pub fn agent_pin(agent: &str) -> AgentPin {
    match agent {
        "docker" => AgentPin::Registry,
        "docker-daemon" => AgentPin::Local(LocalAgent::DockerDaemon),
        "docker-archive" => AgentPin::Local(LocalAgent::DockerArchive),
        "oci-archive" => AgentPin::Local(LocalAgent::OciArchive),
        "oci" => AgentPin::Local(LocalAgent::Oci),
        "localimage" => AgentPin::Local(LocalAgent::LocalImage),
        "oras" => AgentPin::Remote(RemoteAgent::Oras),
        "library" => AgentPin::Remote(RemoteAgent::Library),
        // `shub`: gone; OS bootstraps.
        _ => AgentPin::Unpinned,
    }
}

impl LocalAgent {
    /// The agent's name in a definition file.
    pub fn name(self) -> &'static str {
        match self {
            Self::DockerDaemon => "docker-daemon",
            Self::DockerArchive => "docker-archive",
            Self::OciArchive => "oci-archive",
            Self::Oci => "oci",
            Self::LocalImage => "localimage",
        }
    }

    /// What its pin is.
    pub fn pin_kind(self) -> PinKind {
        match self {
            Self::DockerDaemon => PinKind::ImageId,
            Self::Oci => PinKind::LayoutManifest,
            Self::DockerArchive | Self::OciArchive | Self::LocalImage => PinKind::FileSha256,
        }
    }

    /// Whether it reads a file or directory (not a daemon).
    pub fn is_file(self) -> bool {
        self != Self::DockerDaemon
    }

    /// Where the image `from` (the `From` header, expanded) lives. A
    /// relative path is taken from `context`, the directory `apptainer
    /// build` runs in (the image's build context, by default the
    /// definition file's directory), as Apptainer opens it from its
    /// working directory. `oci`'s pinned form `DIR@sha256:…` names the
    /// layout entry by digest.
    pub fn location(self, from: &str, context: &Path) -> Result<ImageLocation, String> {
        let absolute = |p: PathBuf| if p.is_absolute() { p } else { context.join(p) };
        let location = match self {
            Self::DockerDaemon => format!("docker-daemon:{from}"),
            Self::DockerArchive => format!("docker-archive:{from}"),
            Self::OciArchive => format!("oci-archive:{from}"),
            Self::Oci => match from.split_once('@') {
                Some((dir, digest)) => {
                    return Ok(ImageLocation::Oci {
                        dir: absolute(PathBuf::from(dir)),
                        tag: Some(digest.to_string()),
                    });
                }
                None => format!("oci:{from}"),
            },
            Self::LocalImage => format!("sif:{from}"),
        };
        let parsed: ImageLocation = location
            .parse()
            .map_err(|e: crate::oci::ParseLocationError| e.hint)?;
        Ok(match parsed {
            ImageLocation::Oci { dir, tag } => ImageLocation::Oci {
                dir: absolute(dir),
                tag,
            },
            ImageLocation::OciArchive { path, tag } => ImageLocation::OciArchive {
                path: absolute(path),
                tag,
            },
            ImageLocation::DockerArchive { path, name } => ImageLocation::DockerArchive {
                path: absolute(path),
                name,
            },
            ImageLocation::Sif(path) => ImageLocation::Sif(absolute(path)),
            other => other,
        })
    }

    /// The path of the file or directory of `from`, without tag or digest
    /// (`None` for the daemon).
    pub fn path(self, from: &str, context: &Path) -> Option<PathBuf> {
        match self.location(from, context).ok()? {
            ImageLocation::Oci { dir: p, .. }
            | ImageLocation::OciArchive { path: p, .. }
            | ImageLocation::DockerArchive { path: p, .. }
            | ImageLocation::Sif(p) => Some(p),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_dispatch_in_one_place() {
        assert_eq!(agent_pin("docker"), AgentPin::Registry);
        assert_eq!(
            agent_pin("localimage"),
            AgentPin::Local(LocalAgent::LocalImage)
        );
        assert_eq!(agent_pin("oras"), AgentPin::Remote(RemoteAgent::Oras));
        assert_eq!(agent_pin("library"), AgentPin::Remote(RemoteAgent::Library));
        for a in ["shub", "debootstrap", "yum"] {
            assert_eq!(agent_pin(a), AgentPin::Unpinned, "{a}");
        }
    }

    #[test]
    fn relative_paths_are_taken_from_the_context() {
        let ctx = Path::new("/ctx");
        assert_eq!(
            LocalAgent::DockerArchive
                .location("base.tar:img:1", ctx)
                .unwrap()
                .to_string(),
            "docker-archive:/ctx/base.tar:img:1"
        );
        assert_eq!(
            LocalAgent::LocalImage
                .location("/abs/base.sif", ctx)
                .unwrap()
                .to_string(),
            "sif:/abs/base.sif"
        );
        assert_eq!(
            LocalAgent::Oci
                .location("layout@sha256:00", ctx)
                .unwrap()
                .to_string(),
            "oci:/ctx/layout:sha256:00"
        );
        assert_eq!(
            LocalAgent::DockerDaemon
                .location("app:1", ctx)
                .unwrap()
                .to_string(),
            "docker-daemon:app:1"
        );
        assert_eq!(LocalAgent::DockerDaemon.path("app:1", ctx), None);
    }
}

//! Where an image is read from, named with skopeo's transports:
//! `docker://REF`, `oci:DIR[:TAG]`, `oci-archive:PATH[:TAG]`,
//! `docker-archive:PATH[:NAME:TAG]`, `docker-daemon:NAME:TAG`,
//! `containers-storage:[STORE]NAME[:TAG]` (buildah's and podman's store),
//! and Apptainer's `sif:PATH` (or a bare path ending `.sif`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::{ImageRef, ParseImageRefError};

/// An image location, as `--image` names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageLocation {
    /// `docker://REG/REPO:TAG`, a registry.
    Docker(ImageRef),
    /// `oci:DIR[:TAG]`, an OCI image layout directory; without a tag the
    /// layout must hold a single image.
    Oci { dir: PathBuf, tag: Option<String> },
    /// `oci-archive:PATH[:TAG]`, a tar of an OCI image layout.
    OciArchive { path: PathBuf, tag: Option<String> },
    /// `docker-archive:PATH[:NAME:TAG]`, `docker save` output.
    DockerArchive { path: PathBuf, name: Option<String> },
    /// `docker-daemon:NAME:TAG` or `docker-daemon:sha256:ID`, an image in
    /// the local Docker Engine.
    DockerDaemon(String),
    /// `sif:PATH`, or a bare path ending `.sif`: an Apptainer/Singularity
    /// image file.
    Sif(PathBuf),
    /// `containers-storage:[STORE]IMAGE`, an image in a containers-storage
    /// store (buildah, podman); without `[STORE]`, the store that
    /// `storage.conf` names.
    ContainersStorage {
        store: Option<StoreSpec>,
        image: String,
    },
}

/// The store of a `containers-storage:` location, written as skopeo writes
/// it: `[DRIVER@GRAPHROOT+RUNROOT:OPTION,…]`, every part but the graph
/// root optional.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreSpec {
    /// The storage driver (`overlay`, `vfs`); `None`: from `storage.conf`
    /// or what the store holds.
    pub driver: Option<String>,
    /// Where the store keeps images and layers.
    pub graph_root: PathBuf,
    /// Where the store keeps its runtime state.
    pub run_root: Option<PathBuf>,
    /// Driver options (`overlay.mount_program=…`); reading needs none.
    pub options: Vec<String>,
}

impl StoreSpec {
    /// The text between the brackets of `[DRIVER@GRAPHROOT+RUNROOT:OPTIONS]`,
    /// split as containers/image splits it.
    fn parse(spec: &str) -> Option<Self> {
        let (spec, options) = match spec.split_once(':') {
            Some((s, o)) => (
                s,
                o.split(',')
                    .filter(|o| !o.is_empty())
                    .map(str::to_string)
                    .collect(),
            ),
            None => (spec, Vec::new()),
        };
        let (driver, spec) = match spec.split_once('@') {
            Some((d, s)) => (Some(d.to_string()).filter(|d| !d.is_empty()), s),
            None => (None, spec),
        };
        let (graph_root, run_root) = match spec.split_once('+') {
            Some((g, r)) => (
                g,
                Some(PathBuf::from(r)).filter(|r| !r.as_os_str().is_empty()),
            ),
            None => (spec, None),
        };
        (!graph_root.is_empty()).then(|| Self {
            driver,
            graph_root: PathBuf::from(graph_root),
            run_root,
            options,
        })
    }
}

impl fmt::Display for StoreSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        match &self.driver {
            Some(d) => write!(f, "{d}@")?,
            // A bare `@` keeps a graph or run root with `@` in it from
            // being read as a driver (the first `@` ends the driver).
            None if self.graph_root.to_string_lossy().contains('@')
                || self
                    .run_root
                    .as_ref()
                    .is_some_and(|r| r.to_string_lossy().contains('@')) =>
            {
                f.write_str("@")?;
            }
            None => {}
        }
        write!(f, "{}", self.graph_root.display())?;
        if let Some(r) = &self.run_root {
            write!(f, "+{}", r.display())?;
        }
        if !self.options.is_empty() {
            write!(f, ":{}", self.options.join(","))?;
        }
        f.write_str("]")
    }
}

/// Why a string is not an image location.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{location}` is not an image reference\nhint: {hint}")]
pub struct ParseLocationError {
    pub location: String,
    pub hint: String,
}

impl FromStr for ImageLocation {
    type Err = ParseLocationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |hint: &str| ParseLocationError {
            location: s.to_string(),
            hint: hint.to_string(),
        };
        // `apptainer build` writes `NAME.sif`; that is how users name it.
        if Path::new(s)
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("sif"))
            && !s.contains(':')
        {
            return Ok(Self::Sif(PathBuf::from(s)));
        }
        let (transport, rest) = s.split_once(':').ok_or_else(|| {
            bad("name the transport: `docker://`, `oci:`, `oci-archive:`, `docker-archive:`, `docker-daemon:`, `containers-storage:` or `sif:`")
        })?;
        let path_and = |rest: &str| -> (PathBuf, Option<String>) {
            match rest.split_once(':') {
                Some((p, t)) if !t.is_empty() => (PathBuf::from(p), Some(t.to_string())),
                Some((p, _)) => (PathBuf::from(p), None),
                None => (PathBuf::from(rest), None),
            }
        };
        let image = match transport {
            "docker" => {
                let name = rest
                    .strip_prefix("//")
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| bad("write `docker://REGISTRY/REPOSITORY:TAG`"))?;
                let image = ImageRef::parse(name).map_err(|e| match e {
                    ParseImageRefError::Invalid { reason, .. } => bad(&reason),
                    other => bad(&other.to_string()),
                })?;
                Self::Docker(image)
            }
            "oci" => {
                let (dir, tag) = path_and(rest);
                Self::Oci { dir, tag }
            }
            "oci-archive" => {
                let (path, tag) = path_and(rest);
                Self::OciArchive { path, tag }
            }
            "docker-archive" => {
                let (path, name) = path_and(rest);
                Self::DockerArchive { path, name }
            }
            "docker-daemon" => {
                if rest.is_empty() {
                    return Err(bad("write `docker-daemon:NAME:TAG`"));
                }
                Self::DockerDaemon(rest.to_string())
            }
            "sif" => Self::Sif(PathBuf::from(rest)),
            "containers-storage" => {
                let (store, image) = match rest.strip_prefix('[') {
                    Some(spec) => {
                        let (spec, image) = spec.split_once(']').ok_or_else(|| {
                            bad("close the store with `]`: `containers-storage:[vfs@/var/lib/containers/storage]NAME:TAG`")
                        })?;
                        let store = StoreSpec::parse(spec).ok_or_else(|| {
                            bad("name the store's graph root: `containers-storage:[DRIVER@GRAPHROOT+RUNROOT]NAME:TAG`")
                        })?;
                        (Some(store), image)
                    }
                    None => (None, rest),
                };
                if image.is_empty() || image.chars().any(char::is_whitespace) {
                    return Err(bad(
                        "name the image: `containers-storage:NAME:TAG`, `containers-storage:NAME@sha256:DIGEST` or `containers-storage:@IMAGE_ID`",
                    ));
                }
                Self::ContainersStorage {
                    store,
                    image: image.to_string(),
                }
            }
            _ => {
                return Err(bad(
                    "the transports are `docker://`, `oci:`, `oci-archive:`, `docker-archive:`, `docker-daemon:`, `containers-storage:` and `sif:`",
                ));
            }
        };
        if matches!(&image, Self::Oci { dir: p, .. } | Self::OciArchive { path: p, .. } | Self::DockerArchive { path: p, .. } | Self::Sif(p) if p.as_os_str().is_empty())
        {
            return Err(bad("the path is empty"));
        }
        Ok(image)
    }
}

impl fmt::Display for ImageLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let with = |f: &mut fmt::Formatter<'_>, t: &str, p: &Path, tag: &Option<String>| {
            write!(f, "{t}:{}", p.display())?;
            if let Some(tag) = tag {
                write!(f, ":{tag}")?;
            }
            Ok(())
        };
        match self {
            Self::Docker(n) => write!(f, "docker://{n}"),
            Self::Oci { dir, tag } => with(f, "oci", dir, tag),
            Self::OciArchive { path, tag } => with(f, "oci-archive", path, tag),
            Self::DockerArchive { path, name } => with(f, "docker-archive", path, name),
            Self::DockerDaemon(n) => write!(f, "docker-daemon:{n}"),
            Self::Sif(p) => write!(f, "sif:{}", p.display()),
            Self::ContainersStorage { store, image } => {
                f.write_str("containers-storage:")?;
                if let Some(store) = store {
                    write!(f, "{store}")?;
                }
                f.write_str(image)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_sif_path_is_a_sif() {
        for (given, shown) in [
            ("summation.sif", "sif:summation.sif"),
            ("/abs/Summation.SIF", "sif:/abs/Summation.SIF"),
        ] {
            assert_eq!(given.parse::<ImageLocation>().unwrap().to_string(), shown);
        }
        assert!("sif:".parse::<ImageLocation>().is_err());
    }

    #[test]
    fn parse_and_print_round_trip() {
        for s in [
            "oci:/tmp/x",
            "oci:dir:v1",
            "oci:world/images/python:3.11",
            "oci-archive:a.tar",
            "oci-archive:a.tar:latest",
            "docker-archive:a.tar",
            "docker-archive:a.tar:python:3.11",
            "docker-daemon:python:3.11",
            "docker-daemon:sha256:0123",
            "docker://localhost:5000/x/y:1",
            "docker://docker.io/library/python:3.11",
            "sif:build/x.sif",
            "containers-storage:localhost/app:1",
            "containers-storage:[vfs@/var/lib/s+/run/s]localhost/app:1",
            "containers-storage:[overlay@/s:overlay.mount_program=/bin/f,x]app@sha256:0123",
            "containers-storage:[/s]@0123abcd",
            "containers-storage:[@/a@b]x",
        ] {
            let parsed: ImageLocation = s.parse().unwrap();
            assert_eq!(parsed.to_string(), s);
            assert_eq!(parsed.to_string().parse::<ImageLocation>().unwrap(), parsed);
        }
        // Short registry names print in full, and then round-trip.
        let short: ImageLocation = "docker://python:3.11".parse().unwrap();
        assert_eq!(short.to_string(), "docker://docker.io/library/python:3.11");
        assert_eq!(
            "oci:world/images/python:3.11"
                .parse::<ImageLocation>()
                .unwrap(),
            ImageLocation::Oci {
                dir: "world/images/python".into(),
                tag: Some("3.11".into())
            }
        );
        assert_eq!(
            "oci:/a/b:".parse::<ImageLocation>().unwrap(),
            ImageLocation::Oci {
                dir: "/a/b".into(),
                tag: None
            }
        );
        assert_eq!(
            "docker-archive:a.tar:python:3.11"
                .parse::<ImageLocation>()
                .unwrap(),
            ImageLocation::DockerArchive {
                path: "a.tar".into(),
                name: Some("python:3.11".into())
            }
        );
    }

    #[test]
    fn bad_locations_say_what_to_write() {
        for bad in [
            "python:3.11",
            "docker:python",
            "docker://",
            "oci:",
            "nope",
            "docker-daemon:",
            "containers-storage:",
            "containers-storage:[vfs@/s",
            "containers-storage:[vfs@]app",
            "containers-storage:[/s]",
        ] {
            let e = bad.parse::<ImageLocation>().unwrap_err();
            assert!(e.to_string().contains("\nhint: "), "{bad}: {e}");
        }
    }

    #[test]
    fn a_store_spec_splits_as_skopeo_splits_it() {
        // An `@` in the run root needs the empty driver written back.
        for text in ["containers-storage:[@_+@]a", "containers-storage:[@/g@x]a"] {
            let parsed: ImageLocation = text.parse().unwrap();
            assert_eq!(parsed.to_string(), text);
        }
        let parsed: ImageLocation = "containers-storage:[overlay@/g+/r:a=1,b=2]localhost/app:1"
            .parse()
            .unwrap();
        assert_eq!(
            parsed,
            ImageLocation::ContainersStorage {
                store: Some(StoreSpec {
                    driver: Some("overlay".into()),
                    graph_root: "/g".into(),
                    run_root: Some("/r".into()),
                    options: vec!["a=1".into(), "b=2".into()],
                }),
                image: "localhost/app:1".into(),
            }
        );
        let bare: ImageLocation = "containers-storage:[/g]app".parse().unwrap();
        assert_eq!(
            bare,
            ImageLocation::ContainersStorage {
                store: Some(StoreSpec {
                    driver: None,
                    graph_root: "/g".into(),
                    run_root: None,
                    options: vec![],
                }),
                image: "app".into(),
            }
        );
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics_and_what_parses_prints_back(
            text in "(docker://|oci:|oci-archive:|docker-archive:|docker-daemon:|containers-storage:\\[?)?[a-z0-9./:@_+\\]-]{0,40}"
        ) {
            if let Ok(location) = text.parse::<ImageLocation>() {
                let printed = location.to_string();
                proptest::prop_assert_eq!(printed.parse::<ImageLocation>(), Ok(location));
            }
        }
    }
}

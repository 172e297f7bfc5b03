//! Bases an Apptainer definition takes from this machine: an image of the
//! Docker Engine (`docker-daemon`), a `docker save` or OCI archive, an OCI
//! layout directory, a SIF file (`localimage`). Each is pinned where it
//! lives (the image ID, the file's sha256, the layout entry's digest) and
//! its state is read from it through the image sources verify uses, so the
//! `%post` steps on top of it lock.
//!
//! Freeze hashes the file (asks the engine) on every run: a changed file
//! changes the lock, so `freeze --check` and verify's
//! [`local_base_changes`] notice it.

use std::io::Read;
use std::path::Path;

use crate::image::{Catalogue, ImageError, ReadOptions, SifImage, open_local, read_catalogue};
use crate::lock::{LockBuildError, LockedBase};
use crate::oci::{Digest, ImageLocation, Platform};
use crate::source::agents::{AgentPin, LocalAgent, agent_pin};
use crate::source::{BaseTarget, Definition, Stage};

/// A local base as it is now.
#[derive(Clone, Debug)]
pub struct LocalPin {
    pub agent: LocalAgent,
    /// The `From` header as written (after expansion).
    pub from: String,
    /// Where it is read (paths absolute).
    pub location: ImageLocation,
    /// What pins it (of kind `agent.pin_kind()`).
    pub digest: Digest,
    /// What `digest` names.
    pub media_type: &'static str,
}

impl LocalPin {
    /// The lock's name for it: the agent and `From` as written
    /// (`docker-archive:base.tar`), never a path of this machine.
    pub fn name(&self) -> String {
        format!("{}:{}", self.agent.name(), self.from)
    }

    /// Its lock entry.
    pub fn locked(&self) -> Result<LockedBase, LockBuildError> {
        LockedBase::local(
            &self.name(),
            std::slice::from_ref(&self.from),
            self.agent.name(),
            self.agent.pin_kind().as_str(),
            self.digest.clone(),
            self.media_type,
        )
    }

    /// Where the state is read: by the pinned digest when the source can
    /// name it (the daemon's image ID, the layout entry), so what is read
    /// is what is pinned.
    fn pinned_location(&self) -> ImageLocation {
        match (&self.location, self.agent) {
            (ImageLocation::DockerDaemon(_), _) => {
                ImageLocation::DockerDaemon(self.digest.to_string())
            }
            (ImageLocation::Oci { dir, .. }, LocalAgent::Oci) => ImageLocation::Oci {
                dir: dir.clone(),
                tag: Some(self.digest.to_string()),
            },
            (other, _) => other.clone(),
        }
    }

    /// The image's catalogue and config `Env` for `platform`. Blocking.
    pub fn read(
        &self,
        platform: &Platform,
        opts: &ReadOptions,
    ) -> Result<(Catalogue, Vec<String>), ImageError> {
        let location = self.pinned_location();
        let catalogue = match &location {
            ImageLocation::Sif(path) => {
                let mut sif = SifImage::open(&location.to_string(), path)?;
                sif.read_catalogue(platform, opts)?.0
            }
            other => {
                let source = open_local(other)?;
                read_catalogue(&*source, platform, opts)?
            }
        };
        let env = catalogue.image.config.env.clone();
        Ok((catalogue, env))
    }
}

/// The local agent and `From` of a stage, if its base is one.
pub fn local_base(stage: &Stage) -> Option<(LocalAgent, String)> {
    let BaseTarget::Other { agent } = &stage.base.target else {
        return None;
    };
    let AgentPin::Local(local) = agent_pin(agent) else {
        return None;
    };
    let from = stage.base.reference.value.clone()?;
    Some((local, from))
}

/// Pins `from` as `agent` reads it now, from `context` (the directory
/// `apptainer build` runs in); `platform` picks the daemon's image. Why
/// not, when it cannot. Blocking.
pub fn pin_now(
    agent: LocalAgent,
    from: &str,
    context: &Path,
    platform: &Platform,
) -> Result<LocalPin, String> {
    let location = agent.location(from, context)?;
    if agent == LocalAgent::LocalImage && matches!(&location, ImageLocation::Sif(p) if p.is_dir()) {
        return Err("it is a sandbox directory, which imagelock does not read".into());
    }
    let reference = location.to_string();
    let (digest, media_type) = match (&location, agent) {
        (ImageLocation::DockerDaemon(_), _) => {
            let resolved = open_local(&location)
                .and_then(|s| s.resolve(platform))
                .map_err(|e| e.to_string())?;
            (
                resolved.config_digest,
                "application/vnd.docker.container.image.v1+json",
            )
        }
        (ImageLocation::Oci { dir, tag }, _) => {
            let layout = crate::image::OciLayout::open_dir(&reference, dir, tag.clone())
                .map_err(|e| e.to_string())?;
            let resolved =
                crate::image::ImageSource::resolve(&layout, platform).map_err(|e| e.to_string())?;
            // The entry `index.json` lists: an index, else the manifest.
            let digest = resolved
                .index_digest
                .or(resolved.manifest_digest)
                .ok_or_else(|| format!("`{reference}` lists no digest for the image"))?;
            (digest, "application/vnd.oci.image.layout.v1+json")
        }
        (
            ImageLocation::OciArchive { path, .. }
            | ImageLocation::DockerArchive { path, .. }
            | ImageLocation::Sif(path),
            _,
        ) => {
            let media_type = match agent {
                LocalAgent::LocalImage => "application/vnd.sylabs.sif.layer.v1.sif",
                _ => "application/x-tar",
            };
            (sha256_file(path)?, media_type)
        }
        (ImageLocation::Docker(_) | ImageLocation::ContainersStorage { .. }, _) => {
            return Err(format!("`{reference}` is not a local image"));
        }
    };
    Ok(LocalPin {
        agent,
        from: from.to_string(),
        location,
        digest,
        media_type,
    })
}

/// The sha256 of a file, read as a stream.
fn sha256_file(path: &Path) -> Result<Digest, String> {
    use sha2::Digest as _;
    if path.is_dir() {
        return Err(format!("`{}` is a directory, not a file", path.display()));
    }
    let mut f = fs_err::File::open(path).map_err(|e| e.to_string())?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(Digest::from_sha256_output(&h.finalize()))
}

/// A local base whose lock entry no longer matches what it is now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalBaseChange {
    pub stage: usize,
    /// `docker-archive:base.tar`.
    pub name: String,
    /// `file-sha256`, `image-id`, `layout-manifest`.
    pub pinned: String,
    pub locked: String,
    /// `Err`: why it cannot be read now.
    pub now: Result<String, String>,
}

/// The local bases of `definition` whose pin in `lock` differs from what
/// they are now (a changed file, an image ID the tag no longer names, a
/// file gone). Blocking: hashes the files, asks the engine.
pub fn local_base_changes(
    definition: &Definition,
    lock: &crate::lock::LockedImage,
    context: &Path,
) -> Vec<LocalBaseChange> {
    let platform = lock
        .image
        .platforms
        .first()
        .cloned()
        .unwrap_or_else(Platform::linux_amd64);
    let mut out = Vec::new();
    for stage in definition.stages.iter().filter(|s| !s.unused) {
        let Some((agent, from)) = local_base(stage) else {
            continue;
        };
        let name = format!("{}:{from}", agent.name());
        let Some(locked) = lock
            .bases
            .iter()
            .find(|b| b.is_local() && b.name.as_str() == name)
        else {
            continue;
        };
        let now = pin_now(agent, &from, context, &platform).map(|p| p.digest.to_string());
        if now.as_deref() != Ok(&locked.digest.to_string()) {
            out.push(LocalBaseChange {
                stage: stage.index,
                name,
                pinned: locked
                    .pinned
                    .as_ref()
                    .map_or_else(String::new, ToString::to_string),
                locked: locked.digest.to_string(),
                now,
            });
        }
    }
    out
}

/// Whether every local base of `definition` is locked in `lock` and still
/// what it pinned: a lock whose inputs are current is kept without
/// resolving only then (a changed file or image ID is not in the inputs).
/// Blocking.
pub fn local_bases_current(
    definition: &Definition,
    lock: &crate::lock::LockedImage,
    context: &Path,
) -> bool {
    let all_locked = definition
        .stages
        .iter()
        .filter(|s| !s.unused)
        .filter_map(local_base)
        .all(|(agent, from)| {
            let name = format!("{}:{from}", agent.name());
            lock.bases
                .iter()
                .any(|b| b.is_local() && b.name.as_str() == name)
        });
    all_locked && local_base_changes(definition, lock, context).is_empty()
}

//! Bases Apptainer pulls with a bootstrap agent other than `docker`,
//! pinned where they live and read from the SIF they are.
//!
//! Which agents these are is decided by the one dispatch on the agent's
//! name, [`crate::source::agents::agent_pin`] (its `AgentPin::Remote`
//! arm); here each [`RemoteAgent`] is one arm of the `match` in [`pin`]
//! (how its tag becomes a digest) and in [`fetch_sif`] (how the pinned SIF
//! is fetched and checked). Agents of no arm stay "not locked", with the
//! reason [`crate::source::coverage::agent_not_locked`] gives.
//!
//! - `oras`: `From: REGISTRY/REPO:TAG` is an ORAS artifact, an OCI manifest
//!   whose one layer is the SIF. The tag becomes the manifest digest at the
//!   registry (through the registry client: auth, mirrors and `insecure` as
//!   configured), and the SIF layer's digest is recorded with it. Apptainer
//!   pulls `REPO:TAG@sha256:…` by the digest.
//! - `library`: `From: [library://][ENTITY/COLLECTION/]CONTAINER:TAG` is an
//!   image of a Library service (the `Library:` header, else
//!   `[apptainer] library`). The tag becomes the Library's image hash for
//!   each platform's architecture (the SIF file's sha256); Apptainer pulls
//!   `CONTAINER:sha256.HEX` by the hash.

use std::path::PathBuf;

use crate::config::Config;
use crate::freeze::{FreezeError, ImageCause, ImageJob, platform_key};
use crate::lock::{LockedBase, LockedImage, LockedPlatformImage, Token};
use crate::oci::{Digest, ImageRef, Platform};
use crate::resolve::Session;
use crate::resolve::library::{self, LibraryError, LibraryRef};
use crate::resolve::registry::canonical_name;
use crate::source::agents::{AgentPin, RemoteAgent, agent_pin};
use crate::source::model::{BaseTarget, Stage};

/// The media type of an ORAS artifact's SIF layer, which the lock also
/// gives a `library` base: its digest is a SIF file's sha256.
pub const SIF_MEDIA_TYPE: &str = "application/vnd.sylabs.sif.layer.v1.sif";
/// The SIF layer media type of Singularity before 3.7 (with its typo),
/// which Apptainer still pulls.
const SIF_MEDIA_TYPE_PROTO: &str = "appliciation/vnd.sylabs.sif.layer.tar";

/// The largest SIF downloaded (streamed to the cache and hashed on the way).
const SIF_CAP: u64 = 64 << 30;

/// The agent and the reference (after expansion) of a stage whose base
/// imagelock pins itself; `None` for other stages and other agents.
pub fn agent_base(stage: &Stage) -> Option<(RemoteAgent, &str)> {
    let BaseTarget::Other { agent } = &stage.base.target else {
        return None;
    };
    let written = stage.base.reference.value.as_deref()?;
    match agent_pin(agent) {
        AgentPin::Remote(remote) => Some((remote, written)),
        _ => None,
    }
}

/// The agent of a locked base, when it is one pinned here.
fn locked_agent(base: &LockedBase) -> Option<RemoteAgent> {
    match agent_pin(base.agent.as_deref()?) {
        AgentPin::Remote(remote) => Some(remote),
        _ => None,
    }
}

/// The name the lock keys a stage's agent base by: `oras://REGISTRY/REPO:TAG`
/// or `library://SERVICE/PATH:TAG`; `None` when the stage has no such base
/// or its reference is not valid (freeze then says why).
pub fn locked_name(config: &Config, stage: &Stage) -> Option<String> {
    let (agent, written) = agent_base(stage)?;
    match agent {
        RemoteAgent::Oras => ImageRef::parse(written)
            .ok()
            .map(|r| format!("oras://{}", canonical_name(&r))),
        RemoteAgent::Library => {
            let r = LibraryRef::parse(written).ok()?;
            let service = service(config, stage, &r).ok()?;
            Some(library_name(&service, &r))
        }
    }
}

/// The Library service a stage pulls `reference` from.
fn service(
    config: &Config,
    stage: &Stage,
    reference: &LibraryRef,
) -> Result<url::Url, LibraryError> {
    let configured = stage
        .base
        .library
        .as_deref()
        .unwrap_or_else(|| config.apptainer.library_url());
    library::service_for(reference, configured)
}

fn library_name(service: &url::Url, r: &LibraryRef) -> String {
    let host = service.host_str().unwrap_or("");
    let port = service.port().map(|p| format!(":{p}")).unwrap_or_default();
    format!(
        "library://{host}{port}{}{}:{}",
        service.path(),
        r.path,
        r.tag
    )
}

/// Pins the agent bases of `job` for `platforms`, in stage order: the
/// previous lock's pin is kept under the same references unless
/// `update_base`; offline, a base without one is left unpinned (coverage
/// then says the lock has no digest for it).
pub async fn pin_all(
    config: &Config,
    session: &Session,
    job: &ImageJob,
    platforms: &[Platform],
    update_base: bool,
    offline: bool,
) -> Result<Vec<LockedBase>, FreezeError> {
    let mut out: Vec<LockedBase> = Vec::new();
    for stage in &job.definition.stages {
        let Some((agent, written)) = agent_base(stage) else {
            continue;
        };
        let Some(name) = locked_name(config, stage) else {
            // An invalid reference: pinning says why.
            pin(config, session, stage, agent, written, "", platforms)
                .await
                .map_err(|cause| FreezeError::Image {
                    image: job.config.name.clone(),
                    cause,
                })?;
            continue;
        };
        if out.iter().any(|b| b.name == name) {
            continue;
        }
        let kept = previous(job.previous.as_ref(), &name, written, platforms)
            .filter(|_| !update_base || offline);
        if let Some(base) = kept {
            if !offline && let Some(m) = oras_mismatch(session, written, &base).await {
                return Err(job.hash_mismatch(m));
            }
            out.push(base);
            continue;
        }
        if offline {
            continue;
        }
        out.push(
            pin(config, session, stage, agent, written, &name, platforms)
                .await
                .map_err(|cause| FreezeError::Image {
                    image: job.config.name.clone(),
                    cause,
                })?,
        );
    }
    Ok(out)
}

/// For a kept `oras` pin: what the registry serves under the locked
/// manifest digest, when it is not the locked SIF layer (or nothing). A
/// registry that cannot be asked is left to the SIF fetch, which fails
/// loudly if the layer is gone.
async fn oras_mismatch(
    session: &Session,
    written: &str,
    base: &LockedBase,
) -> Option<crate::freeze::check::HashMismatch> {
    if locked_agent(base) != Some(RemoteAgent::Oras) {
        return None;
    }
    let image = ImageRef::parse(written)
        .ok()?
        .with_digest(base.digest.clone());
    let mismatch = |key: &'static str, locked: String, served: Option<String>| {
        crate::freeze::check::HashMismatch {
            subject: crate::freeze::check::Subject::Base,
            name: base.name.to_string(),
            artifact: String::new(),
            key,
            locked,
            served,
        }
    };
    let (_, content_type, body) = match session.registry.manifest(&image).await {
        Ok(found) => found,
        Err(crate::resolve::ResolveError::NotFound { .. }) => {
            return Some(mismatch("digest", base.digest.to_string(), None));
        }
        Err(_) => return None,
    };
    let (_, _, layer) = oras_layer(&body, content_type.as_deref()).ok()?;
    base.platforms
        .iter()
        .find(|p| p.diff_ids.first() != Some(&layer))
        .map(|p| {
            mismatch(
                "diff-ids",
                p.diff_ids
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                Some(layer.to_string()),
            )
        })
}

/// The previous lock's pin of `name`, when it is for the same reference
/// and every platform asked.
fn previous(
    lock: Option<&LockedImage>,
    name: &str,
    written: &str,
    platforms: &[Platform],
) -> Option<LockedBase> {
    let base = lock?.bases.iter().find(|b| b.name == name)?;
    let same = base.agent.is_some() && base.references.iter().any(|r| r.as_str() == written);
    let covers = platforms.iter().all(|p| {
        base.platforms
            .iter()
            .any(|bp| platform_key(&bp.platform.to_string()) == platform_key(&p.to_string()))
    });
    (same && covers).then(|| {
        let mut kept = base.clone();
        kept.platforms.retain(|bp| {
            platforms
                .iter()
                .any(|p| platform_key(&p.to_string()) == platform_key(&bp.platform.to_string()))
        });
        kept
    })
}

/// Pins one agent base.
async fn pin(
    config: &Config,
    session: &Session,
    stage: &Stage,
    agent: RemoteAgent,
    written: &str,
    name: &str,
    platforms: &[Platform],
) -> Result<LockedBase, Box<ImageCause>> {
    match agent {
        RemoteAgent::Oras => pin_oras(session, written, name, platforms).await,
        RemoteAgent::Library => pin_library(config, session, stage, written, name, platforms).await,
    }
}

fn token(what: &str, value: &str) -> Result<Token, Box<ImageCause>> {
    value.parse().map_err(|e| {
        Box::new(ImageCause::Internal(format!(
            "`{}` as {what} of a lock: {e}",
            value.escape_debug()
        )))
    })
}

/// `oras`: the tag's manifest, checked to be one SIF layer.
async fn pin_oras(
    session: &Session,
    written: &str,
    name: &str,
    platforms: &[Platform],
) -> Result<LockedBase, Box<ImageCause>> {
    let image = ImageRef::parse(written).map_err(|source| ImageCause::Reference {
        written: written.to_string(),
        source,
    })?;
    let (digest, content_type, body) = session
        .registry
        .manifest(&image)
        .await
        .map_err(ImageCause::Registry)?;
    let not_sif = |why: String| ImageCause::NotSif {
        reference: written.to_string(),
        why,
    };
    let (media_type, config, layer) =
        oras_layer(&body, content_type.as_deref()).map_err(not_sif)?;
    Ok(LockedBase {
        name: token("a name", name)?,
        references: vec![token("a reference", written)?],
        digest: digest.clone(),
        media_type: token("a media type", &media_type)?,
        built_from: None,
        agent: Some(token("an agent", RemoteAgent::Oras.name())?),
        // The manifest digest is the registry's.
        pinned: None,
        platforms: platforms
            .iter()
            .map(|p| LockedPlatformImage {
                platform: p.clone(),
                digest: digest.clone(),
                config: config.clone(),
                diff_ids: vec![layer.clone()],
            })
            .collect(),
    })
}

/// An ORAS SIF manifest's media type, config digest and SIF layer digest,
/// checked as Apptainer checks it: one layer, of the SIF media type (the
/// config's media type is not checked; Apptainer's own pushes varied).
fn oras_layer(body: &[u8], content_type: Option<&str>) -> Result<(String, Digest, Digest), String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Descriptor {
        media_type: Option<String>,
        digest: String,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Manifest {
        media_type: Option<String>,
        config: Option<Descriptor>,
        layers: Option<Vec<Descriptor>>,
        manifests: Option<serde_json::Value>,
    }
    let m: Manifest =
        serde_json::from_slice(body).map_err(|e| format!("its manifest is not valid JSON: {e}"))?;
    if m.manifests.is_some() {
        return Err("the tag names an index; Apptainer's ORAS pushes are one manifest".into());
    }
    let media_type = m
        .media_type
        .or_else(|| content_type.map(|c| c.split(';').next().unwrap_or(c).trim().to_string()))
        .unwrap_or_else(|| "application/vnd.oci.image.manifest.v1+json".to_string());
    let layers = m.layers.unwrap_or_default();
    let [layer] = layers.as_slice() else {
        return Err(format!("it has {} layers, not one SIF", layers.len()));
    };
    let layer_type = layer.media_type.as_deref().unwrap_or("");
    if layer_type != SIF_MEDIA_TYPE && layer_type != SIF_MEDIA_TYPE_PROTO {
        return Err(format!(
            "its layer is `{}`, not `{SIF_MEDIA_TYPE}`",
            layer_type.escape_debug()
        ));
    }
    let digest = |d: &str| -> Result<Digest, String> {
        d.parse()
            .map_err(|e| format!("`{}` is not a digest: {e}", d.escape_debug()))
    };
    let config = m
        .config
        .ok_or_else(|| "it has no config".to_string())
        .and_then(|c| digest(&c.digest))?;
    Ok((media_type, config, digest(&layer.digest)?))
}

/// `library`: the image hash of the tag for each platform's architecture.
async fn pin_library(
    config: &Config,
    session: &Session,
    stage: &Stage,
    written: &str,
    name: &str,
    platforms: &[Platform],
) -> Result<LockedBase, Box<ImageCause>> {
    let reference = LibraryRef::parse(written).map_err(ImageCause::Library)?;
    let service = service(config, stage, &reference).map_err(ImageCause::Library)?;
    let mut locked = Vec::new();
    for p in platforms {
        let image = library::image(session.http(), &service, &reference, p.architecture())
            .await
            .map_err(ImageCause::Library)?;
        if let Some(arch) = image.arch.as_deref().filter(|a| *a != p.architecture()) {
            return Err(Box::new(ImageCause::Library(LibraryError::NotFound {
                service: crate::resolve::http::redact(&service),
                path: reference.path.clone(),
                tag: format!("{} (it answers with a `{arch}` image)", reference.tag),
                arch: p.architecture().to_string(),
            })));
        }
        locked.push(LockedPlatformImage {
            platform: p.clone(),
            digest: image.hash.clone(),
            config: image.hash.clone(),
            diff_ids: vec![image.hash],
        });
    }
    let digest = locked
        .first()
        .map(|p| p.digest.clone())
        .ok_or_else(|| ImageCause::Internal("no platform to pin a library image for".into()))?;
    Ok(LockedBase {
        name: token("a name", name)?,
        references: vec![token("a reference", written)?],
        digest,
        media_type: token("a media type", SIF_MEDIA_TYPE)?,
        built_from: None,
        agent: Some(token("an agent", RemoteAgent::Library.name())?),
        pinned: Some(token(
            "a pin kind",
            crate::source::agents::PinKind::FileSha256.as_str(),
        )?),
        platforms: locked,
    })
}

/// The SIF digest `base` pins for `platform`: the ORAS layer's, or the
/// Library's image hash.
pub fn sif_digest(base: &LockedBase, platform: &str) -> Option<Digest> {
    let p = base
        .platforms
        .iter()
        .find(|p| platform_key(&p.platform.to_string()) == platform_key(platform))?;
    match locked_agent(base)? {
        RemoteAgent::Oras => p.diff_ids.first().cloned(),
        RemoteAgent::Library => Some(p.digest.clone()),
    }
}

/// The pinned SIF of `stage`'s base for `platform`, downloaded into the
/// cache and checked against its digest (a cached copy is checked again).
pub async fn fetch_sif(
    config: &Config,
    session: &Session,
    stage: &Stage,
    base: &LockedBase,
    platform: &str,
) -> Result<PathBuf, Box<ImageCause>> {
    let digest = sif_digest(base, platform).ok_or_else(|| {
        ImageCause::Internal(format!(
            "the lock pins no SIF of `{}` for {platform}",
            base.name
        ))
    })?;
    let path = config
        .cache_dir
        .join("sif")
        .join(format!("{}.sif", digest.hex()));
    if path.is_file() && file_digest(&path).is_ok_and(|d| d == digest) {
        return Ok(path);
    }
    let (_, written) = agent_base(stage)
        .ok_or_else(|| ImageCause::Internal("the stage has no agent base".into()))?;
    match locked_agent(base) {
        Some(RemoteAgent::Oras) => {
            let image = ImageRef::parse(written).map_err(|source| ImageCause::Reference {
                written: written.to_string(),
                source,
            })?;
            let blob = session
                .registry
                .open_blob(&image, &digest)
                .await
                .map_err(ImageCause::Registry)?;
            store_blob(blob, &digest, &path, written).await?;
        }
        Some(RemoteAgent::Library) => {
            let mut reference = LibraryRef::parse(written).map_err(ImageCause::Library)?;
            let service = service(config, stage, &reference).map_err(ImageCause::Library)?;
            // By the pinned hash, so a tag moved since does not matter.
            reference.tag = format!("sha256.{}", digest.hex());
            let arch = platform
                .parse::<Platform>()
                .map(|p| p.architecture().to_string())
                .unwrap_or_default();
            library::download(
                session.http(),
                &service,
                &reference,
                &arch,
                &digest,
                &path,
                SIF_CAP,
            )
            .await
            .map_err(ImageCause::Library)?;
        }
        None => {
            return Err(Box::new(ImageCause::Internal(format!(
                "no SIF to fetch for agent `{}`",
                base.agent.as_deref().unwrap_or("docker")
            ))));
        }
    }
    Ok(path)
}

/// sha256 of a file.
fn file_digest(path: &std::path::Path) -> std::io::Result<Digest> {
    use sha2::{Digest as _, Sha256};
    let mut f = fs_err::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    format!("sha256:{}", hex::encode(hasher.finalize()))
        .parse()
        .map_err(|_| std::io::Error::other("not a digest"))
}

/// Streams a registry blob to `dest`, checked against `digest`.
async fn store_blob(
    blob: crate::resolve::registry::BlobStream,
    digest: &Digest,
    dest: &std::path::Path,
    written: &str,
) -> Result<(), Box<ImageCause>> {
    use sha2::{Digest as _, Sha256};
    use std::io::Write;
    let io = |e: std::io::Error| ImageCause::Internal(format!("writing `{}`: {e}", dest.display()));
    let dir = dest.parent().unwrap_or_else(|| std::path::Path::new("."));
    fs_err::create_dir_all(dir).map_err(io)?;
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    match blob {
        crate::resolve::registry::BlobStream::Remote(mut body) => {
            while let Some(chunk) = body
                .chunk()
                .await
                .map_err(|e| ImageCause::Internal(e.to_string()))?
            {
                size += chunk.len() as u64;
                if size > SIF_CAP {
                    return Err(Box::new(ImageCause::Internal(format!(
                        "the SIF of `oras://{written}` is larger than {SIF_CAP} bytes"
                    ))));
                }
                hasher.update(&chunk);
                file.write_all(&chunk).map_err(io)?;
            }
        }
        crate::resolve::registry::BlobStream::File(mut f) => {
            let mut tee = Tee {
                file: &mut file,
                hasher: &mut hasher,
            };
            std::io::copy(&mut f, &mut tee).map_err(io)?;
        }
    }
    let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
    if actual != digest.to_string() {
        return Err(Box::new(ImageCause::NotSif {
            reference: written.to_string(),
            why: format!(
                "its SIF layer's content is {actual}, not the {digest} its manifest names"
            ),
        }));
    }
    file.persist(dest).map_err(|e| io(e.error))?;
    Ok(())
}

/// Writes to a file and a hasher at once.
struct Tee<'a> {
    file: &'a mut tempfile::NamedTempFile,
    hasher: &'a mut sha2::Sha256,
}

impl std::io::Write for Tee<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use sha2::Digest as _;
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oras_manifests_are_one_sif_layer() {
        let sif = format!("sha256:{}", "a".repeat(64));
        let config = format!("sha256:{}", "b".repeat(64));
        let m = |layers: &str| {
            format!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.sylabs.sif.config.v1+json","digest":"{config}","size":2}},"layers":[{layers}]}}"#
            )
        };
        let one = m(&format!(
            r#"{{"mediaType":"{SIF_MEDIA_TYPE}","digest":"{sif}","size":9}}"#
        ));
        let (mt, c, l) = oras_layer(one.as_bytes(), None).unwrap();
        assert_eq!(mt, "application/vnd.oci.image.manifest.v1+json");
        assert_eq!(
            (c.to_string(), l.to_string()),
            (config.clone(), sif.clone())
        );
        let tar = m(&format!(
            r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{sif}","size":9}}"#
        ));
        assert!(
            oras_layer(tar.as_bytes(), None)
                .unwrap_err()
                .contains("not `")
        );
        assert!(
            oras_layer(m("").as_bytes(), None)
                .unwrap_err()
                .contains("0 layers")
        );
        let index = r#"{"schemaVersion":2,"manifests":[]}"#;
        assert!(
            oras_layer(index.as_bytes(), None)
                .unwrap_err()
                .contains("index")
        );
    }
}

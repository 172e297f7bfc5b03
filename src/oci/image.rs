//! An image resolved: the image config, each platform's manifest, config
//! and layers, and the check every fetched document passes.

use serde::{Deserialize, Serialize};

use super::manifest::Manifest;
use super::{Digest, Platform};

/// The parts of an image config that imagelock uses. Only these fields are
/// read: configs written by many tools carry others in shapes strict types
/// reject.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// `config.Env`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// `config.User` (`mambauser`, `1000`, `1000:100`), when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `rootfs.diff_ids`, bottom layer first.
    pub diff_ids: Vec<Digest>,
    /// When the image was built (`created`), as written.
    #[serde(skip)]
    pub created: Option<String>,
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    variant: Option<String>,
    #[serde(default)]
    config: Option<RawContainerConfig>,
    rootfs: RawRootFs,
    #[serde(default)]
    created: Option<String>,
}

#[derive(Deserialize)]
struct RawContainerConfig {
    #[serde(rename = "Env", default)]
    env: Option<Vec<String>>,
    #[serde(rename = "User", default)]
    user: Option<String>,
}

#[derive(Deserialize)]
struct RawRootFs {
    #[serde(default)]
    diff_ids: Vec<Digest>,
}

impl ImageConfig {
    /// Parses an image config blob (OCI or Docker).
    pub fn parse(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        let raw: RawConfig = serde_json::from_slice(bytes)?;
        Ok(Self {
            architecture: raw.architecture,
            os: raw.os,
            variant: raw.variant,
            user: raw
                .config
                .as_ref()
                .and_then(|c| c.user.clone())
                .filter(|u| !u.is_empty()),
            env: raw.config.and_then(|c| c.env).unwrap_or_default(),
            diff_ids: raw.rootfs.diff_ids,
            created: raw.created,
        })
    }

    /// The platform the config says it is for; `None` when it does not say.
    pub fn platform(&self) -> Option<Platform> {
        (!self.architecture.is_empty())
            .then(|| Platform::new(&self.os, &self.architecture, self.variant.as_deref()))
    }
}

/// One layer of a resolved image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRef {
    /// Digest of the blob as stored, when the source names it (not for the
    /// legacy `docker save` layout, whose layers are only known by diff_id).
    pub digest: Option<Digest>,
    pub media_type: Option<String>,
    pub size: Option<u64>,
    /// Digest of the uncompressed tar (`rootfs.diff_ids[i]`).
    pub diff_id: Digest,
}

/// An image pinned: what `docker pull` shows and what each platform gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedImage {
    /// The canonical name (`docker.io/library/python:3.11-slim`), or the
    /// location (`oci:DIR[:TAG]`) for a layout given directly.
    pub name: String,
    /// The index digest for a multi-platform image, else the manifest digest.
    pub digest: Digest,
    /// Media type of what `digest` names.
    pub media_type: String,
    /// One entry per requested platform, in the order asked for.
    pub platforms: Vec<ResolvedPlatform>,
}

/// One platform of an image: its manifest, config and layers.
///
/// Serialized (in a catalogue) without the fields the source already names
/// elsewhere, so catalogues of the same image compare equal across sources.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResolvedPlatform {
    /// The reference as given, for messages.
    pub reference: String,
    /// The platform asked for (which the image serves, exactly or as a
    /// variant of it).
    #[serde(skip)]
    pub platform: Platform,
    /// The index the platform was picked from, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_digest: Option<Digest>,
    /// The platform's manifest, when the source has manifests (not
    /// `docker save` archives nor the Docker Engine).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<Digest>,
    /// The manifest's media type.
    #[serde(skip)]
    pub media_type: Option<String>,
    /// The config blob's digest (the image ID).
    pub config_digest: Digest,
    pub config: ImageConfig,
    /// Bottom layer first.
    pub layers: Vec<LayerRef>,
}

/// Why a manifest and its config do not make an image.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the manifest lists {layers} layers but the config has {diff_ids} diff_ids")]
pub struct LayerCountMismatch {
    pub layers: usize,
    pub diff_ids: usize,
}

/// Each layer of `manifest` with its diff_id from `config`.
pub fn manifest_layers(
    manifest: &Manifest,
    config: &ImageConfig,
) -> Result<Vec<LayerRef>, LayerCountMismatch> {
    if manifest.layers.len() != config.diff_ids.len() {
        return Err(LayerCountMismatch {
            layers: manifest.layers.len(),
            diff_ids: config.diff_ids.len(),
        });
    }
    Ok(manifest
        .layers
        .iter()
        .zip(&config.diff_ids)
        .map(|(d, diff_id)| LayerRef {
            digest: Some(d.digest.clone()),
            media_type: d.media_type.clone(),
            size: d.size,
            diff_id: diff_id.clone(),
        })
        .collect())
}

/// Content whose bytes do not hash to the digest it was asked for.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("content does not match its digest: expected `{expected}`, got `{actual}`")]
pub struct DigestMismatch {
    pub expected: Digest,
    pub actual: Digest,
}

/// Checks fetched bytes against the digest they were asked for (with that
/// digest's algorithm).
pub fn check_digest(expected: &Digest, bytes: &[u8]) -> Result<(), DigestMismatch> {
    let actual = expected.compute_like(bytes);
    if actual == *expected {
        Ok(())
    } else {
        Err(DigestMismatch {
            expected: expected.clone(),
            actual,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_read_only_what_is_used() {
        let d = format!("sha256:{}", "b".repeat(64));
        let body = format!(
            r#"{{"architecture":"arm64","os":"linux","variant":"v8","created":"2024-01-01T00:00:00Z","config":{{"Env":["A=1"],"Labels":null}},"rootfs":{{"type":"layers","diff_ids":["{d}"]}},"history":[{{}}]}}"#
        );
        let c = ImageConfig::parse(body.as_bytes()).unwrap();
        assert_eq!(c.platform().unwrap().to_string(), "linux/arm64");
        assert_eq!(c.env, ["A=1"]);
        assert_eq!(c.diff_ids[0].to_string(), d);
        assert_eq!(c.created.as_deref(), Some("2024-01-01T00:00:00Z"));
        assert_eq!(c.user, None);
        let with_user = body.replace(r#""Env""#, r#""User":"mambauser","Env""#);
        let c = ImageConfig::parse(with_user.as_bytes()).unwrap();
        assert_eq!(c.user.as_deref(), Some("mambauser"));
        let empty = body.replace(r#""Env""#, r#""User":"","Env""#);
        assert_eq!(ImageConfig::parse(empty.as_bytes()).unwrap().user, None);
        assert!(
            ImageConfig::parse(br#"{"rootfs":{"diff_ids":[]}}"#)
                .unwrap()
                .platform()
                .is_none()
        );
        assert!(ImageConfig::parse(br#"{"rootfs":{"diff_ids":["md5:x"]}}"#).is_err());
    }

    #[test]
    fn digests_are_checked_with_their_algorithm() {
        let d = Digest::sha256_of(b"x");
        assert!(check_digest(&d, b"x").is_ok());
        let e = check_digest(&d, b"y").unwrap_err();
        assert_eq!(e.actual, Digest::sha256_of(b"y"));
    }
}

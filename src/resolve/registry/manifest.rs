//! Manifest and config parsing, and choosing a platform from an index.

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use serde::Deserialize;

use crate::oci::{Digest, Platform};

/// The manifest media types imagelock reads.
pub struct MediaTypes;

impl MediaTypes {
    pub const OCI_INDEX: &'static str = "application/vnd.oci.image.index.v1+json";
    pub const DOCKER_LIST: &'static str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const OCI_MANIFEST: &'static str = "application/vnd.oci.image.manifest.v1+json";
    pub const DOCKER_MANIFEST: &'static str =
        "application/vnd.docker.distribution.manifest.v2+json";
    /// The `Accept` header for manifest requests: without the OCI types some
    /// registries answer 404 for OCI content.
    pub const ACCEPT: &'static str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";
}

/// Whether a media type names a multi-platform index.
pub fn is_index_media_type(media_type: &str) -> bool {
    media_type == MediaTypes::OCI_INDEX || media_type == MediaTypes::DOCKER_LIST
}

#[derive(Debug)]
pub(crate) enum Parsed {
    Index(Box<ImageIndex>),
    Manifest(Box<ImageManifest>),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    media_type: Option<String>,
    schema_version: Option<u32>,
    manifests: Option<serde_json::Value>,
    config: Option<serde_json::Value>,
}

/// The media type of a manifest body: its own `mediaType`, else the
/// `Content-Type` it was served with, else its shape.
pub(crate) fn parse(body: &[u8], content_type: Option<&str>) -> Result<(String, Parsed), String> {
    let probe: Probe = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    if probe.schema_version == Some(1) {
        return Err("Docker schema 1 manifests are not supported; push the image again with a current client".into());
    }
    let header = content_type
        .map(|c| c.split(';').next().unwrap_or_default().trim().to_string())
        .filter(|c| {
            is_index_media_type(c)
                || c == MediaTypes::OCI_MANIFEST
                || c == MediaTypes::DOCKER_MANIFEST
        });
    let media_type = probe
        .media_type
        .clone()
        .or(header)
        .or_else(|| {
            probe
                .manifests
                .as_ref()
                .map(|_| MediaTypes::OCI_INDEX.to_string())
        })
        .or_else(|| {
            probe
                .config
                .as_ref()
                .map(|_| MediaTypes::OCI_MANIFEST.to_string())
        })
        .ok_or("it has no media type")?;
    if is_index_media_type(&media_type) {
        let index: ImageIndex =
            serde_json::from_slice(body).map_err(|e| format!("invalid index: {e}"))?;
        Ok((media_type, Parsed::Index(Box::new(index))))
    } else if media_type == MediaTypes::OCI_MANIFEST || media_type == MediaTypes::DOCKER_MANIFEST {
        let manifest: ImageManifest =
            serde_json::from_slice(body).map_err(|e| format!("invalid manifest: {e}"))?;
        Ok((media_type, Parsed::Manifest(Box::new(manifest))))
    } else {
        Err(format!(
            "media type `{media_type}` is not an image manifest or index"
        ))
    }
}

/// The platform an index entry is for, if it names one.
pub(crate) fn descriptor_platform(d: &Descriptor) -> Option<Platform> {
    let p = d.platform().as_ref()?;
    Some(Platform::new(
        &p.os().to_string(),
        &p.architecture().to_string(),
        p.variant().as_deref(),
    ))
}

/// Attestations and signatures stored in an index are not images.
fn is_attestation(d: &Descriptor) -> bool {
    let annotated = d.annotations().as_ref().is_some_and(|a| {
        a.get("vnd.docker.reference.type")
            .is_some_and(|t| t == "attestation-manifest")
    });
    annotated || descriptor_platform(d).is_some_and(|p| p.is_unknown())
}

/// The image entries of an index with their platforms.
pub(crate) fn image_entries(index: &ImageIndex) -> Vec<(Platform, &Descriptor)> {
    index
        .manifests()
        .iter()
        .filter(|d| !is_attestation(d))
        .filter_map(|d| descriptor_platform(d).map(|p| (p, d)))
        .collect()
}

/// The entry for `platform`: an exact match after normalization.
pub(crate) fn select<'a>(index: &'a ImageIndex, platform: &Platform) -> Option<&'a Descriptor> {
    image_entries(index)
        .into_iter()
        .find(|(p, _)| p == platform)
        .map(|(_, d)| d)
}

/// What imagelock needs from an image config.
pub(crate) struct ConfigInfo {
    pub platform: Platform,
    pub diff_ids: Vec<Digest>,
    pub created: Option<String>,
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    variant: Option<String>,
    rootfs: RawRootfs,
    created: Option<String>,
}

#[derive(Deserialize)]
struct RawRootfs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

pub(crate) fn parse_config(body: &[u8]) -> Result<ConfigInfo, String> {
    // Read only the fields needed: configs written by many tools carry
    // fields oci-spec's strict types reject.
    let raw: RawConfig =
        serde_json::from_slice(body).map_err(|e| format!("invalid image config: {e}"))?;
    let diff_ids = raw
        .diff_ids_parsed()
        .map_err(|e| format!("invalid diff_id in image config: {e}"))?;
    Ok(ConfigInfo {
        platform: Platform::new(&raw.os, &raw.architecture, raw.variant.as_deref()),
        diff_ids,
        created: raw.created,
    })
}

impl RawConfig {
    fn diff_ids_parsed(&self) -> Result<Vec<Digest>, crate::oci::ParseDigestError> {
        self.rootfs.diff_ids.iter().map(|d| d.parse()).collect()
    }
}

/// The config descriptor's digest of a manifest.
pub(crate) fn config_digest(manifest: &ImageManifest) -> Result<Digest, String> {
    manifest
        .config()
        .digest()
        .to_string()
        .parse()
        .map_err(|e| format!("invalid config digest: {e}"))
}

pub(crate) fn descriptor_digest(d: &Descriptor) -> Result<Digest, String> {
    d.digest()
        .to_string()
        .parse()
        .map_err(|e| format!("invalid digest in index: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_platforms_and_skips_attestations() {
        let entry = |arch: &str, variant: Option<&str>, os: &str| {
            let v = variant.map_or(String::new(), |v| format!(r#","variant":"{v}""#));
            format!(
                r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"sha256:{}","platform":{{"os":"{os}","architecture":"{arch}"{v}}}}}"#,
                "a".repeat(64)
            )
        };
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{},{},{},{}]}}"#,
            entry("amd64", None, "linux"),
            entry("arm64", Some("v8"), "linux"),
            entry("arm", Some("v7"), "linux"),
            entry("unknown", None, "unknown"),
        );
        let (mt, parsed) = parse(body.as_bytes(), None).unwrap();
        assert_eq!(mt, MediaTypes::OCI_INDEX);
        let Parsed::Index(index) = parsed else {
            panic!()
        };
        assert_eq!(image_entries(&index).len(), 3);
        for p in [
            "linux/amd64",
            "linux/arm64",
            "linux/arm64/v8",
            "linux/arm/v7",
            "linux/arm",
        ] {
            assert!(select(&index, &p.parse().unwrap()).is_some(), "{p}");
        }
        assert!(select(&index, &"linux/arm/v6".parse().unwrap()).is_none());
        assert!(select(&index, &"unknown/unknown".parse().unwrap()).is_none());
    }

    #[test]
    fn refuses_schema1_and_other_types() {
        assert!(
            parse(br#"{"schemaVersion":1}"#, None)
                .unwrap_err()
                .contains("schema 1")
        );
        assert!(parse(br#"{"schemaVersion":2,"mediaType":"text/plain"}"#, None).is_err());
    }
}

//! Manifests, indexes and descriptors: the JSON documents registries and
//! image layouts store, read into one set of types. Parsing is lenient about
//! fields imagelock does not use (many tools write them differently) and
//! strict about the ones it does (digests are validated).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Digest, Platform};

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

/// Whether a media type names a single image manifest.
pub fn is_manifest_media_type(media_type: &str) -> bool {
    media_type == MediaTypes::OCI_MANIFEST || media_type == MediaTypes::DOCKER_MANIFEST
}

/// The annotation naming a tag in an image layout's `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A reference to content: what it is, its digest, and for index entries
/// the platform it is for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub digest: Digest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<DescriptorPlatform>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The `platform` of an index entry, as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DescriptorPlatform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Descriptor {
    /// The platform this entry is for, normalized, if it names one.
    pub fn image_platform(&self) -> Option<Platform> {
        self.platform
            .as_ref()
            .map(|p| Platform::new(&p.os, &p.architecture, p.variant.as_deref()))
    }

    /// The tag an image layout gives this entry.
    pub fn ref_name(&self) -> Option<&str> {
        self.annotations.get(REF_NAME).map(String::as_str)
    }

    /// Attestations and signatures stored in an index are not images.
    pub fn is_attestation(&self) -> bool {
        self.annotations
            .get("vnd.docker.reference.type")
            .is_some_and(|t| t == "attestation-manifest")
            || self.image_platform().is_some_and(|p| p.is_unknown())
    }
}

/// A multi-platform index (or an image layout's `index.json`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

/// One image's manifest: its config and layers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

/// A manifest document: an index or an image manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Document {
    Index(Index),
    Manifest(Manifest),
}

/// Why a manifest document cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseManifestError {
    #[error("it is not JSON: {0}")]
    NotJson(String),
    #[error(
        "Docker schema 1 manifests are not supported\nhint: push the image again with a current client"
    )]
    Schema1,
    #[error("it has no media type and is neither an index nor a manifest")]
    NoMediaType,
    #[error("media type `{0}` is not an image manifest or index")]
    Unsupported(String),
    #[error("invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    media_type: Option<String>,
    schema_version: Option<u32>,
    manifests: Option<serde::de::IgnoredAny>,
    config: Option<serde::de::IgnoredAny>,
}

/// Parses a manifest or index. Its media type is its own `mediaType`, else
/// the `Content-Type` (or descriptor media type) it was served with, else
/// its shape. Returns the media type and the document.
pub fn parse_document(
    body: &[u8],
    content_type: Option<&str>,
) -> Result<(String, Document), ParseManifestError> {
    let probe: Probe =
        serde_json::from_slice(body).map_err(|e| ParseManifestError::NotJson(e.to_string()))?;
    if probe.schema_version == Some(1) {
        return Err(ParseManifestError::Schema1);
    }
    let header = content_type
        .map(|c| c.split(';').next().unwrap_or_default().trim().to_string())
        .filter(|c| is_index_media_type(c) || is_manifest_media_type(c));
    let media_type = probe
        .media_type
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
        .ok_or(ParseManifestError::NoMediaType)?;
    let invalid = |what: &'static str| {
        move |e: serde_json::Error| ParseManifestError::Invalid {
            what,
            reason: e.to_string(),
        }
    };
    if is_index_media_type(&media_type) {
        let index: Index = serde_json::from_slice(body).map_err(invalid("index"))?;
        Ok((media_type, Document::Index(index)))
    } else if is_manifest_media_type(&media_type) {
        let manifest: Manifest = serde_json::from_slice(body).map_err(invalid("manifest"))?;
        Ok((media_type, Document::Manifest(manifest)))
    } else {
        Err(ParseManifestError::Unsupported(media_type))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_from_body_header_or_shape() {
        let d = "a".repeat(64);
        let manifest =
            format!(r#"{{"schemaVersion":2,"config":{{"digest":"sha256:{d}"}},"layers":[]}}"#);
        let (mt, doc) = parse_document(manifest.as_bytes(), None).unwrap();
        assert_eq!(mt, MediaTypes::OCI_MANIFEST);
        assert!(matches!(doc, Document::Manifest(_)));
        let (mt, _) = parse_document(
            manifest.as_bytes(),
            Some("application/vnd.docker.distribution.manifest.v2+json; charset=utf-8"),
        )
        .unwrap();
        assert_eq!(mt, MediaTypes::DOCKER_MANIFEST);
        let (mt, doc) = parse_document(br#"{"manifests":[]}"#, None).unwrap();
        assert_eq!(mt, MediaTypes::OCI_INDEX);
        assert_eq!(doc, Document::Index(Index::default()));
    }

    #[test]
    fn refuses_schema1_other_types_and_bad_digests() {
        assert_eq!(
            parse_document(br#"{"schemaVersion":1}"#, None).unwrap_err(),
            ParseManifestError::Schema1
        );
        assert!(matches!(
            parse_document(br#"{"schemaVersion":2,"mediaType":"text/plain"}"#, None),
            Err(ParseManifestError::Unsupported(_))
        ));
        assert!(matches!(
            parse_document(br#"{"manifests":[{"digest":"sha256:xyz"}]}"#, None),
            Err(ParseManifestError::Invalid { what: "index", .. })
        ));
        assert!(parse_document(b"[", None).is_err());
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(
            text in "[{}\\[\\]\":, a-zA-Z0-9.+/]{0,80}",
            header in proptest::option::of("[a-z./+; =-]{0,40}"),
        ) {
            let _ = parse_document(text.as_bytes(), header.as_deref());
        }
    }
}

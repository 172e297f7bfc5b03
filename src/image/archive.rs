//! `docker-archive:PATH[:NAME:TAG]`: `docker save` output, as a tar or a
//! directory. Such archives hold no manifests: the config and the layers
//! are found through `manifest.json`.

use std::io::Read;
use std::path::Path;

use serde::Deserialize;

use super::ImageError;
use super::layer::normalize;
use super::source::{ImageSource, read_small, verified};
use super::store::{DirStore, Store, TarStore};
use crate::oci::{Digest, ImageConfig, LayerRef, Platform, ResolvedPlatform};

/// `docker save` output: `manifest.json`, a config, and layer tars, in the
/// legacy `<id>/layer.tar` layout or the newer `blobs/sha256/…` one.
pub struct DockerArchive {
    reference: String,
    name: Option<String>,
    store: Box<dyn Store>,
}

#[derive(Deserialize)]
struct DockerManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

impl DockerArchive {
    /// `docker-archive:PATH[:NAME:TAG]`.
    pub fn open(reference: &str, path: &Path, name: Option<String>) -> Result<Self, ImageError> {
        let store: Box<dyn Store> = if path.is_dir() {
            Box::new(DirStore(path.to_path_buf()))
        } else {
            Box::new(TarStore::open(path).map_err(|source| ImageError::Io {
                reference: reference.to_string(),
                what: "the archive".into(),
                source,
            })?)
        };
        Ok(Self {
            reference: reference.to_string(),
            name,
            store,
        })
    }
}

/// `python:3.11`, `docker.io/library/python:3.11` and
/// `index.docker.io/library/python:3.11` name the same image.
fn short_name(name: &str) -> &str {
    let name = name
        .strip_prefix("docker.io/")
        .or_else(|| name.strip_prefix("index.docker.io/"))
        .unwrap_or(name);
    name.strip_prefix("library/").unwrap_or(name)
}

impl ImageSource for DockerArchive {
    fn reference(&self) -> &str {
        &self.reference
    }

    fn resolve(&self, platform: &Platform) -> Result<ResolvedPlatform, ImageError> {
        let io = |what: &str| {
            let what = what.to_string();
            move |source| ImageError::Io {
                reference: self.reference.clone(),
                what,
                source,
            }
        };
        let bytes = read_small(
            &self.reference,
            "manifest.json",
            self.store
                .open("manifest.json")
                .map_err(io("manifest.json"))?,
        )?;
        let entries: Vec<DockerManifestEntry> =
            serde_json::from_slice(&bytes).map_err(|e| ImageError::Malformed {
                reference: self.reference.clone(),
                what: "manifest.json".into(),
                message: e.to_string(),
            })?;
        let entry = match &self.name {
            Some(name) => entries.iter().find(|e| {
                e.repo_tags
                    .iter()
                    .flatten()
                    .any(|t| short_name(t) == short_name(name))
            }),
            None if entries.len() == 1 => entries.first(),
            None => None,
        };
        let Some(entry) = entry else {
            let mut tags: Vec<String> = entries
                .iter()
                .flat_map(|e| e.repo_tags.iter().flatten().map(|t| format!("`{t}`")))
                .collect();
            tags.sort();
            return Err(ImageError::TagMissing {
                reference: self.reference.clone(),
                tag: self.name.clone().unwrap_or_else(|| "(none given)".into()),
                available: if tags.is_empty() {
                    "none".into()
                } else {
                    tags.join(", ")
                },
            });
        };
        let config_path = normalize(&entry.config);
        let config_bytes = read_small(
            &self.reference,
            "config",
            self.store.open(&config_path).map_err(io(&config_path))?,
        )?;
        let config_digest = Digest::sha256_of(&config_bytes);
        if let Some(expected) = digest_from_path(&config_path) {
            verified(&self.reference, "config", &config_bytes, &expected)?;
        }
        let config = ImageConfig::parse(&config_bytes).map_err(|e| ImageError::Malformed {
            reference: self.reference.clone(),
            what: "config".into(),
            message: e.to_string(),
        })?;
        if entry.layers.len() != config.diff_ids.len() {
            return Err(ImageError::Malformed {
                reference: self.reference.clone(),
                what: "manifest.json".into(),
                message: format!(
                    "it lists {} layers but the config has {} diff_ids",
                    entry.layers.len(),
                    config.diff_ids.len()
                ),
            });
        }
        let layers = entry
            .layers
            .iter()
            .zip(&config.diff_ids)
            .map(|(path, diff_id)| {
                let path = normalize(path);
                LayerRef {
                    digest: digest_from_path(&path),
                    media_type: None,
                    size: self.store.len(&path),
                    diff_id: diff_id.clone(),
                }
            })
            .collect();
        Ok(ResolvedPlatform {
            reference: self.reference.clone(),
            platform: platform.clone(),
            index_digest: None,
            manifest_digest: None,
            media_type: None,
            config_digest,
            config,
            layers,
        })
    }

    fn open_layer(&self, layer: &LayerRef) -> Result<Box<dyn Read + Send + '_>, ImageError> {
        // Layers are found again by position in manifest.json; the path is
        // re-derived from the digest or the diff_id.
        let bytes = read_small(
            &self.reference,
            "manifest.json",
            self.store
                .open("manifest.json")
                .map_err(|source| ImageError::Io {
                    reference: self.reference.clone(),
                    what: "manifest.json".into(),
                    source,
                })?,
        )?;
        let entries: Vec<DockerManifestEntry> = serde_json::from_slice(&bytes).unwrap_or_default();
        let candidates = entries
            .iter()
            .flat_map(|e| e.layers.iter())
            .map(|p| normalize(p));
        let mut path = None;
        for p in candidates {
            let matches = match &layer.digest {
                Some(d) => digest_from_path(&p).as_ref() == Some(d),
                None => self.legacy_diff_id(&p).as_ref() == Some(&layer.diff_id),
            };
            if matches {
                path = Some(p);
                break;
            }
        }
        let path = path.ok_or_else(|| ImageError::BlobMissing {
            reference: self.reference.clone(),
            digest: layer.diff_id.clone(),
        })?;
        self.store.open(&path).map_err(|source| ImageError::Io {
            reference: self.reference.clone(),
            what: path,
            source,
        })
    }
}

impl DockerArchive {
    /// The legacy layout names layers `<id>/layer.tar`, with no digest in
    /// the path; they are matched to diff_ids through each image's config.
    fn legacy_diff_id(&self, path: &str) -> Option<Digest> {
        let bytes = read_small(
            &self.reference,
            "manifest.json",
            self.store.open("manifest.json").ok()?,
        )
        .ok()?;
        let entries: Vec<DockerManifestEntry> = serde_json::from_slice(&bytes).ok()?;
        for e in entries {
            if let Some(i) = e.layers.iter().position(|p| normalize(p) == path) {
                let config = read_small(
                    &self.reference,
                    "config",
                    self.store.open(&normalize(&e.config)).ok()?,
                )
                .ok()?;
                return ImageConfig::parse(&config).ok()?.diff_ids.get(i).cloned();
            }
        }
        None
    }
}

/// `blobs/sha256/HEX` → the digest.
fn digest_from_path(path: &str) -> Option<Digest> {
    let hex = path.strip_prefix("blobs/sha256/")?;
    format!("sha256:{hex}").parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names() {
        assert_eq!(short_name("docker.io/library/python:3.11"), "python:3.11");
        assert_eq!(short_name("python:3.11"), "python:3.11");
    }
}

//! OCI image layouts (`oci:DIR[:TAG]`, `oci-archive:`): which image of an
//! `index.json` a tag names.

use super::manifest::{Descriptor, Index};

/// Why a layout's `index.json` names no single image.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("it has no image `{tag}`; it has {}", tag_list(available))]
    TagMissing { tag: String, available: Vec<String> },
    #[error("it holds several images: {}", tag_list(available))]
    TagNeeded { available: Vec<String> },
    #[error("it lists no manifests")]
    Empty,
}

fn tag_list(tags: &[String]) -> String {
    if tags.is_empty() {
        return "none tagged".into();
    }
    tags.iter()
        .map(|t| format!("`{t}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a tag names in a layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayoutEntry {
    /// One manifest or index.
    One(Descriptor),
    /// Several entries, one per platform, as multi-platform layouts are
    /// often written: read as an index (which has no digest of its own).
    PerPlatform(Index),
}

/// The tags of a layout, sorted.
pub fn tags(index: &Index) -> Vec<String> {
    let mut tags: Vec<String> = index
        .manifests
        .iter()
        .filter_map(|d| d.ref_name().map(str::to_string))
        .collect();
    tags.sort();
    tags.dedup();
    tags
}

/// The entries `reference` (a tag or a digest) names; without one, the
/// whole layout, which must then be one image (possibly one entry per
/// platform).
pub fn find(index: &Index, reference: Option<&str>) -> Result<LayoutEntry, LayoutError> {
    let chosen: Vec<&Descriptor> = match reference {
        Some(r) => {
            let found: Vec<&Descriptor> = index
                .manifests
                .iter()
                .filter(|d| d.ref_name() == Some(r) || d.digest.to_string() == r)
                .collect();
            if found.is_empty() {
                return Err(LayoutError::TagMissing {
                    tag: r.to_string(),
                    available: tags(index),
                });
            }
            found
        }
        None => {
            let all: Vec<&Descriptor> = index.manifests.iter().collect();
            if all.len() > 1 && all.iter().any(|d| d.platform.is_none()) {
                return Err(LayoutError::TagNeeded {
                    available: tags(index),
                });
            }
            all
        }
    };
    match chosen.as_slice() {
        [] => Err(LayoutError::Empty),
        [one] => Ok(LayoutEntry::One((*one).clone())),
        several => Ok(LayoutEntry::PerPlatform(Index {
            media_type: None,
            manifests: several.iter().map(|d| (*d).clone()).collect(),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::Digest;
    use crate::oci::manifest::{DescriptorPlatform, REF_NAME};

    fn entry(tag: Option<&str>, arch: Option<&str>, seed: u8) -> Descriptor {
        Descriptor {
            media_type: None,
            digest: Digest::sha256_of(&[seed]),
            size: None,
            platform: arch.map(|a| DescriptorPlatform {
                os: "linux".into(),
                architecture: a.into(),
                variant: None,
            }),
            annotations: tag
                .map(|t| [(REF_NAME.to_string(), t.to_string())].into())
                .unwrap_or_default(),
        }
    }

    #[test]
    fn tags_digests_and_platform_entries() {
        let ix = Index {
            media_type: None,
            manifests: vec![entry(Some("a"), None, 1), entry(Some("b"), None, 2)],
        };
        assert_eq!(
            find(&ix, Some("b")).unwrap(),
            LayoutEntry::One(ix.manifests[1].clone())
        );
        let by_digest = Digest::sha256_of(&[1]).to_string();
        assert_eq!(
            find(&ix, Some(&by_digest)).unwrap(),
            LayoutEntry::One(ix.manifests[0].clone())
        );
        assert_eq!(
            find(&ix, Some("c")).unwrap_err().to_string(),
            "it has no image `c`; it has `a`, `b`"
        );
        assert_eq!(
            find(&ix, None).unwrap_err().to_string(),
            "it holds several images: `a`, `b`"
        );
        let per = Index {
            media_type: None,
            manifests: vec![entry(None, Some("amd64"), 1), entry(None, Some("arm64"), 2)],
        };
        assert!(matches!(
            find(&per, None).unwrap(),
            LayoutEntry::PerPlatform(i) if i.manifests.len() == 2
        ));
        assert_eq!(
            find(&Index::default(), None).unwrap_err(),
            LayoutError::Empty
        );
    }
}

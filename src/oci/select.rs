//! Choosing one platform's image from an index: the one rule every reader
//! (registry walk, image layouts and archives) follows.
//!
//! - attestations and signatures (`unknown/unknown`, or annotated
//!   `vnd.docker.reference.type: attestation-manifest`) are not images;
//! - an exact match wins; else an entry that is a variant of the platform
//!   asked for serves it (an index listing only `linux/amd64/v3` serves
//!   `linux/amd64`), and the other way round;
//! - an index whose only image entry names no platform is followed;
//! - nested indexes are followed, at most [`MAX_INDEX_DEPTH`] deep.

use super::manifest::{Descriptor, Index};
use super::{Digest, Platform};

/// How many indexes deep a walk follows before giving up.
pub const MAX_INDEX_DEPTH: usize = 4;

/// Why no image for a platform was found.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectPlatformError {
    #[error("no image for `{platform}`; it has {}", offered_list(offered))]
    Missing {
        platform: Platform,
        /// The image platforms the index lists, sorted, without duplicates.
        offered: Vec<Platform>,
    },
    #[error("no image for `{platform}`; it has only `{offered}` (a single-platform image)")]
    SinglePlatform {
        platform: Platform,
        offered: Box<Platform>,
    },
    #[error("indexes nest more than {MAX_INDEX_DEPTH} deep")]
    TooDeep,
}

/// `` `linux/amd64`, `linux/arm64` `` or `none`.
pub fn offered_list(offered: &[Platform]) -> String {
    if offered.is_empty() {
        return "none".into();
    }
    offered
        .iter()
        .map(|p| format!("`{p}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether an image for `offered` serves `wanted`: the same platform, or one
/// that differs only in that one of them names a variant.
pub fn serves(offered: &Platform, wanted: &Platform) -> bool {
    wanted.matches(offered)
}

/// The image entries of an index: attestations left out.
pub fn image_entries(index: &Index) -> impl Iterator<Item = &Descriptor> {
    index.manifests.iter().filter(|d| !d.is_attestation())
}

/// The platforms an index offers, sorted, without duplicates.
pub fn offered(index: &Index) -> Vec<Platform> {
    let mut offered: Vec<Platform> = image_entries(index)
        .filter_map(Descriptor::image_platform)
        .collect();
    offered.sort();
    offered.dedup();
    offered
}

/// The entry of `index` that serves `platform`.
pub fn select_platform<'i>(
    index: &'i Index,
    platform: &Platform,
) -> Result<&'i Descriptor, SelectPlatformError> {
    let entries: Vec<&Descriptor> = image_entries(index).collect();
    if let [only] = entries.as_slice()
        && only.platform.is_none()
    {
        return Ok(only);
    }
    let of = |d: &&Descriptor| d.image_platform();
    entries
        .iter()
        .find(|d| of(d).is_some_and(|p| p == *platform))
        .or_else(|| {
            entries
                .iter()
                .find(|d| of(d).is_some_and(|p| serves(&p, platform)))
        })
        .copied()
        .ok_or_else(|| SelectPlatformError::Missing {
            platform: platform.clone(),
            offered: offered(index),
        })
}

/// A walk from the document a reference names down to one platform's
/// manifest. The reader fetches; the walk decides which entry is next and
/// remembers the top index.
#[derive(Clone, Debug)]
pub struct PlatformWalk {
    platform: Platform,
    depth: usize,
    index_digest: Option<Digest>,
}

impl PlatformWalk {
    pub fn new(platform: &Platform) -> Self {
        Self {
            platform: platform.clone(),
            depth: 0,
            index_digest: None,
        }
    }

    /// The entry to fetch next from `index`, whose digest (when known) is
    /// `digest`.
    pub fn descend<'i>(
        &mut self,
        index: &'i Index,
        digest: Option<&Digest>,
    ) -> Result<&'i Descriptor, SelectPlatformError> {
        if self.depth == 0 {
            self.index_digest = digest.cloned();
        }
        self.depth += 1;
        if self.depth > MAX_INDEX_DEPTH {
            return Err(SelectPlatformError::TooDeep);
        }
        select_platform(index, &self.platform)
    }

    /// Whether the manifest reached is for the platform, from what its
    /// config says. Only a manifest reached without an index is checked:
    /// entries picked from an index are for the platform they list.
    pub fn check_config(
        &self,
        config_platform: Option<Platform>,
    ) -> Result<(), SelectPlatformError> {
        match config_platform {
            Some(offered) if self.depth == 0 && !serves(&offered, &self.platform) => {
                Err(SelectPlatformError::SinglePlatform {
                    platform: self.platform.clone(),
                    offered: Box::new(offered),
                })
            }
            _ => Ok(()),
        }
    }

    /// The digest of the first index walked through, if any.
    pub fn index_digest(&self) -> Option<&Digest> {
        self.index_digest.as_ref()
    }

    pub fn platform(&self) -> &Platform {
        &self.platform
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::manifest::{DescriptorPlatform, MediaTypes};

    fn entry(platform: &str, seed: u8) -> Descriptor {
        let mut parts = platform.split('/');
        Descriptor {
            media_type: Some(MediaTypes::OCI_MANIFEST.into()),
            digest: Digest::sha256_of(&[seed]),
            size: Some(1),
            platform: Some(DescriptorPlatform {
                os: parts.next().unwrap().into(),
                architecture: parts.next().unwrap().into(),
                variant: parts.next().map(str::to_string),
            }),
            annotations: Default::default(),
        }
    }

    fn index(entries: Vec<Descriptor>) -> Index {
        Index {
            media_type: Some(MediaTypes::OCI_INDEX.into()),
            manifests: entries,
        }
    }

    fn p(s: &str) -> Platform {
        s.parse().unwrap()
    }

    #[test]
    fn attestations_are_skipped() {
        let mut annotated = entry("linux/amd64", 9);
        annotated.annotations.insert(
            "vnd.docker.reference.type".into(),
            "attestation-manifest".into(),
        );
        let ix = index(vec![
            annotated,
            entry("unknown/unknown", 8),
            entry("linux/amd64", 1),
        ]);
        assert_eq!(
            select_platform(&ix, &p("linux/amd64")).unwrap().digest,
            Digest::sha256_of(&[1])
        );
        assert_eq!(offered(&ix), [p("linux/amd64")]);
        let ix = index(vec![entry("unknown/unknown", 8)]);
        let e = select_platform(&ix, &p("unknown/unknown")).unwrap_err();
        assert_eq!(e.to_string(), "no image for `unknown/unknown`; it has none");
    }

    #[test]
    fn exact_beats_variant() {
        let ix = index(vec![
            entry("linux/amd64/v3", 3),
            entry("linux/amd64", 1),
            entry("linux/arm64/v8", 8),
        ]);
        assert_eq!(
            select_platform(&ix, &p("linux/amd64")).unwrap().digest,
            Digest::sha256_of(&[1])
        );
        assert_eq!(
            select_platform(&ix, &p("linux/amd64/v3")).unwrap().digest,
            Digest::sha256_of(&[3])
        );
        // `arm64/v8` is `arm64` once normalized: an exact match.
        assert_eq!(
            select_platform(&ix, &p("linux/arm64")).unwrap().digest,
            Digest::sha256_of(&[8])
        );
    }

    #[test]
    fn a_variant_serves_its_platform() {
        let ix = index(vec![entry("linux/amd64/v3", 3), entry("linux/arm64/v8", 8)]);
        assert_eq!(
            select_platform(&ix, &p("linux/amd64")).unwrap().digest,
            Digest::sha256_of(&[3])
        );
        assert_eq!(
            select_platform(&ix, &p("linux/arm64/v8")).unwrap().digest,
            Digest::sha256_of(&[8])
        );
        // A different variant is a different platform.
        assert!(select_platform(&ix, &p("linux/amd64/v2")).is_err());
        assert!(select_platform(&ix, &p("linux/arm/v7")).is_err());
    }

    #[test]
    fn errors_list_what_is_offered() {
        let ix = index(vec![
            entry("linux/arm/v7", 7),
            entry("linux/amd64", 1),
            entry("linux/arm64/v8", 8),
            entry("linux/amd64", 2),
        ]);
        let e = select_platform(&ix, &p("linux/s390x")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no image for `linux/s390x`; it has `linux/amd64`, `linux/arm/v7`, `linux/arm64`"
        );
    }

    #[test]
    fn nested_indexes_are_followed_to_a_bound() {
        // A layout's `index.json` with one untagged, platform-less entry
        // naming an index: followed.
        let mut inner = entry("linux/amd64", 5);
        inner.platform = None;
        inner.media_type = Some(MediaTypes::OCI_INDEX.into());
        let outer = index(vec![inner.clone()]);
        let real = index(vec![entry("linux/amd64/v3", 3)]);
        let mut walk = PlatformWalk::new(&p("linux/amd64"));
        let top = Digest::sha256_of(b"top");
        assert_eq!(walk.descend(&outer, Some(&top)).unwrap(), &inner);
        assert_eq!(
            walk.descend(&real, Some(&inner.digest)).unwrap().digest,
            Digest::sha256_of(&[3])
        );
        assert_eq!(walk.index_digest(), Some(&top));
        // Entries picked from an index are not second-guessed by the config.
        assert!(walk.check_config(Some(p("linux/arm64"))).is_ok());

        let mut walk = PlatformWalk::new(&p("linux/amd64"));
        for _ in 0..MAX_INDEX_DEPTH {
            walk.descend(&outer, None).unwrap();
        }
        assert_eq!(
            walk.descend(&outer, None).unwrap_err(),
            SelectPlatformError::TooDeep
        );
    }

    #[test]
    fn a_single_manifest_is_checked_against_its_config() {
        let walk = PlatformWalk::new(&p("linux/amd64"));
        assert!(walk.check_config(Some(p("linux/amd64/v3"))).is_ok());
        assert!(walk.check_config(None).is_ok());
        let e = walk.check_config(Some(p("linux/arm64"))).unwrap_err();
        assert!(e.to_string().contains("single-platform"), "{e}");
    }
}

//! Pinning the images an image pulls: bases and `COPY --from` images.

use std::collections::BTreeMap;

use crate::freeze::{FreezeError, FreezeOptions, ImageCause, ImageJob};
use crate::lock::{LockedBase, LockedImage};
use crate::oci::{ImageRef, Platform};
use crate::resolve::Registry;
use crate::resolve::registry::canonical_name;

pub use crate::oci::same_image;
pub use crate::source::graph::pulled_references;

/// How each pulled image was pinned.
#[derive(Clone, Debug, Default)]
pub struct BaseResolution {
    pub bases: Vec<LockedBase>,
    /// Reference as written (after expansion) → canonical name.
    pub names: BTreeMap<String, String>,
}

/// Pins every image `job` pulls for `platforms`.
///
/// - An image of this repository (matched by its configured `ref`) is pinned
///   to the lock made for it earlier in this run (`repository`).
/// - An image the previous lock already pinned, under the same references
///   and for every platform asked, keeps that pin unless
///   `options.update_base`; then too when its tag still points to the
///   pinned digest (asked with `HEAD`, once per run). With
///   `options.follow_tags` a reference pinned after its tag is asked by
///   the tag.
/// - Anything else is resolved at its registry (or `oci:` location).
pub async fn resolve_bases(
    registry: &Registry,
    job: &ImageJob,
    platforms: &[String],
    options: &FreezeOptions,
    repository: &[(&str, Option<&str>, &LockedImage)],
) -> Result<BaseResolution, FreezeError> {
    let image_err = |cause: ImageCause| FreezeError::image(&job.config.name, cause);
    // Group the references by canonical name, keeping their spellings.
    let mut by_name: BTreeMap<String, (ImageRef, Vec<String>)> = BTreeMap::new();
    let mut names = BTreeMap::new();
    for written in pulled_references(&job.definition) {
        let image = ImageRef::parse(written).map_err(|source| {
            image_err(ImageCause::Reference {
                written: written.to_string(),
                source,
            })
        })?;
        let name = canonical_name(&image);
        names.insert(written.to_string(), name.clone());
        by_name
            .entry(name)
            .or_insert_with(|| (image, Vec::new()))
            .1
            .push(written.to_string());
    }
    let wanted: Vec<Platform> = platforms
        .iter()
        .map(|p| {
            p.parse::<Platform>().map_err(|source| {
                image_err(ImageCause::Platform {
                    platform: p.clone(),
                    source,
                })
            })
        })
        .collect::<Result<_, _>>()?;

    // Every image at once (the registry client bounds the requests);
    // results in name order, and the first error in that order.
    let pins = by_name.into_iter().map(|(name, (image, mut references))| {
        references.sort();
        references.dedup();
        let wanted = &wanted;
        // Where the tag points now, for `update` and `drift`.
        let image = match image.tag_only() {
            Some(tagged) if options.update_base && options.follow_tags => tagged,
            _ => image,
        };
        async move {
            if let Some((parent, lock)) = repository
                .iter()
                .find(|(_, published, _)| published.is_some_and(|p| same_image(&name, p)))
                .map(|(n, _, l)| (*n, *l))
            {
                return LockedBase::from_repository_lock(&name, &references, parent, lock)
                    .map_err(|e| image_err(ImageCause::Lock(e)));
            }
            let previous = previous_pin(job.previous.as_ref(), &name, &references, platforms);
            let kept = match previous {
                Some(base) if options.update_base => {
                    // Has the tag moved? A `HEAD` answers (Docker Hub does
                    // not count it against the pull limit); the documents
                    // are fetched only when it has. A registry that cannot
                    // answer a `HEAD` is asked with `GET` below.
                    registry
                        .tag_digest(&image)
                        .await
                        .is_ok_and(|d| d == base.digest)
                        .then_some(base)
                }
                kept => kept.filter(|_| !options.update_base),
            };
            match kept {
                Some(base) => Ok(base),
                None => {
                    let resolved = registry
                        .resolve(&image, wanted)
                        .await
                        .map_err(|e| image_err(ImageCause::Registry(e)))?;
                    LockedBase::from_resolved(&resolved, &references)
                        .map_err(|e| image_err(ImageCause::Lock(e)))
                }
            }
        }
    });
    let bases = futures_util::future::join_all(pins)
        .await
        .into_iter()
        .collect::<Result<Vec<_>, FreezeError>>()?;
    Ok(BaseResolution { bases, names })
}

/// The previous lock's pin of `name`, if it covers the same references and
/// every platform asked for.
fn previous_pin(
    previous: Option<&LockedImage>,
    name: &str,
    references: &[String],
    platforms: &[String],
) -> Option<LockedBase> {
    let base = previous?.bases.iter().find(|b| b.name == name)?;
    let same_refs = base.references == references;
    let covers = platforms.iter().all(|p| {
        base.platforms
            .iter()
            .any(|bp| platform_key(&bp.platform.to_string()) == platform_key(p))
    });
    (same_refs && covers && base.built_from.is_none()).then(|| {
        let mut kept = base.clone();
        kept.platforms.retain(|bp| {
            platforms
                .iter()
                .any(|p| platform_key(p) == platform_key(&bp.platform.to_string()))
        });
        kept
    })
}

/// `linux/arm64` and `linux/arm64/v8` are one platform.
pub fn platform_key(p: &str) -> String {
    p.parse::<Platform>()
        .map_or_else(|_| p.to_string(), |p| p.to_string())
}

//! Images of one repository that build `FROM` each other, in build order.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::source::{BaseTarget, Definition};

/// An image and the references it pulls (bases and `COPY --from` images),
/// after expansion.
#[derive(Clone, Debug)]
pub struct GraphInput<'a> {
    pub name: &'a str,
    /// The name the image is published as (`ref` in the configuration).
    pub reference: Option<&'a str>,
    pub pulls: Vec<&'a str>,
}

/// Build order and the edges between images.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImageGraph {
    /// Image names, each after every image it builds from.
    pub order: Vec<String>,
    /// `(image, builds from)` pairs, sorted.
    pub edges: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("images build FROM each other in a cycle: {}\nhint: one of them must start from a registry image", cycle.join(" → "))]
pub struct CycleError {
    /// The images of the cycle, the first repeated at the end.
    pub cycle: Vec<String>,
}

/// Orders `images` so each comes after the images of this repository it
/// pulls. `same` says whether a pulled reference names a published image
/// (e.g. by comparing normalized names).
pub fn build_order(
    images: &[GraphInput<'_>],
    same: &dyn Fn(&str, &str) -> bool,
) -> Result<ImageGraph, CycleError> {
    let mut deps: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for image in images {
        let entry = deps.entry(image.name).or_default();
        for pulled in &image.pulls {
            for other in images {
                if other.name != image.name && other.reference.is_some_and(|r| same(pulled, r)) {
                    entry.insert(other.name);
                }
            }
        }
    }
    let edges = deps
        .iter()
        .flat_map(|(a, bs)| bs.iter().map(move |b| ((*a).to_string(), (*b).to_string())))
        .collect();

    // Depth-first, visiting names in sorted order so the result is stable.
    let mut order = Vec::new();
    let mut done = BTreeSet::new();
    for name in deps.keys() {
        let mut path = Vec::new();
        visit(name, &deps, &mut done, &mut path, &mut order)?;
    }
    Ok(ImageGraph { order, edges })
}

fn visit<'a>(
    name: &'a str,
    deps: &BTreeMap<&'a str, BTreeSet<&'a str>>,
    done: &mut BTreeSet<&'a str>,
    path: &mut Vec<&'a str>,
    order: &mut Vec<String>,
) -> Result<(), CycleError> {
    if done.contains(name) {
        return Ok(());
    }
    if let Some(at) = path.iter().position(|p| *p == name) {
        let mut cycle: Vec<String> = path[at..].iter().map(|s| (*s).to_string()).collect();
        cycle.push(name.to_string());
        return Err(CycleError { cycle });
    }
    path.push(name);
    for dep in deps.get(name).into_iter().flatten() {
        visit(dep, deps, done, path, order)?;
    }
    path.pop();
    done.insert(name);
    order.push(name.to_string());
    Ok(())
}

/// References a definition pulls from registries (bases and other images)
/// in the stages its build runs: BuildKit and buildah skip a stage the
/// target does not use, and pull nothing for it.
pub fn pulled_references(def: &Definition) -> Vec<&str> {
    def.stages
        .iter()
        .filter(|s| !s.unused)
        .flat_map(|s| {
            let base =
                matches!(s.base.target, BaseTarget::Image { .. }).then_some(&s.base.reference);
            let uses = s
                .image_uses
                .iter()
                .filter(|u| matches!(u.target, BaseTarget::Image { .. }))
                .map(|u| &u.reference);
            base.into_iter().chain(uses)
        })
        .filter_map(|e| e.value.as_deref())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(a: &str, b: &str) -> bool {
        a.split(':').next() == b.split(':').next()
    }

    #[test]
    fn children_come_after_their_base() {
        let images = [
            GraphInput {
                name: "scipy-ml",
                reference: None,
                pulls: vec!["ghcr.io/lab/base:latest"],
            },
            GraphInput {
                name: "base",
                reference: Some("ghcr.io/lab/base"),
                pulls: vec!["python:3.11-slim"],
            },
            GraphInput {
                name: "driver",
                reference: Some("ghcr.io/lab/driver"),
                pulls: vec!["python:3.11"],
            },
        ];
        let g = build_order(&images, &same).unwrap();
        assert_eq!(g.order, ["base", "driver", "scipy-ml"]);
        assert_eq!(g.edges, [("scipy-ml".to_string(), "base".to_string())]);
    }

    #[test]
    fn cycles_are_named() {
        let images = [
            GraphInput {
                name: "a",
                reference: Some("r/a"),
                pulls: vec!["r/b"],
            },
            GraphInput {
                name: "b",
                reference: Some("r/b"),
                pulls: vec!["r/a"],
            },
        ];
        let err = build_order(&images, &same).unwrap_err();
        assert_eq!(err.cycle, ["a", "b", "a"]);
        assert!(err.to_string().contains("a → b → a"));
    }
}

//! What a freeze changes, old → new, for a pull-request body:
//! `freeze --format json` and `--format markdown`.
//!
//! JSON, version 1:
//!
//! ```text
//! { "version": 1, "mode": "write" | "check" | "dry-run", "changed": n,
//!   "images": [ { "image", "lock", "changed": bool, "new_lock": bool,
//!     "bases": [ { "name", "old"?, "new"? } ],
//!     "packages": [ { "ecosystem": "pip" | "conda", "name", "old"?, "new"? } ] } ] }
//! ```
//!
//! `old` is absent for what the lock did not have, `new` for what it no
//! longer has. A lock whose packages and bases are the same but whose text
//! changed (its inputs' hash, the steps) is `changed` with empty lists.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::lock::LockedImage;
use crate::verify::md_cell;

#[derive(Debug, Serialize)]
pub struct Summary {
    pub version: u32,
    pub mode: &'static str,
    pub changed: usize,
    pub images: Vec<ImageChanges>,
}

#[derive(Debug, Serialize)]
pub struct ImageChanges {
    pub image: String,
    pub lock: String,
    pub changed: bool,
    pub new_lock: bool,
    pub bases: Vec<Change>,
    pub packages: Vec<PackageChange>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Change {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<String>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct PackageChange {
    pub ecosystem: &'static str,
    #[serde(flatten)]
    pub change: Change,
}

/// Name → versions (joined when a package is locked in several).
type Versions = BTreeMap<String, String>;

fn versions(image: Option<&LockedImage>) -> (Versions, Versions, Versions) {
    let (mut bases, mut pip, mut conda) = (Versions::new(), Versions::new(), Versions::new());
    let Some(image) = image else {
        return (bases, pip, conda);
    };
    for b in &image.bases {
        if b.built_from.is_none() {
            bases.insert(b.name.to_string(), b.digest.to_string());
        }
    }
    let add = |map: &mut Versions, name: String, version: String| {
        let entry = map.entry(name).or_default();
        let mut all: BTreeSet<String> = entry
            .split(", ")
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        all.insert(version);
        *entry = all.into_iter().collect::<Vec<_>>().join(", ");
    };
    for step in &image.steps {
        for p in &step.pypi {
            add(
                &mut pip,
                p.name.to_string(),
                p.version_or_unknown().to_string(),
            );
        }
        for p in &step.conda {
            add(
                &mut conda,
                p.name.to_string(),
                format!("{}={}", p.version, p.build),
            );
        }
    }
    (bases, pip, conda)
}

fn diff(before: &Versions, after: &Versions) -> Vec<Change> {
    let names: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    names
        .into_iter()
        .filter(|n| before.get(*n) != after.get(*n))
        .map(|n| Change {
            name: n.clone(),
            old: before.get(n).cloned(),
            new: after.get(n).cloned(),
        })
        .collect()
}

/// The changes from the lock on disk (`before`) to the new one.
pub fn image_changes(
    image: &str,
    lock: String,
    before: Option<&LockedImage>,
    after: &LockedImage,
    changed: bool,
) -> ImageChanges {
    let (b0, p0, c0) = versions(before);
    let (b1, p1, c1) = versions(Some(after));
    let mut packages: Vec<PackageChange> = diff(&p0, &p1)
        .into_iter()
        .map(|change| PackageChange {
            ecosystem: "pip",
            change,
        })
        .collect();
    packages.extend(diff(&c0, &c1).into_iter().map(|change| PackageChange {
        ecosystem: "conda",
        change,
    }));
    ImageChanges {
        image: image.to_string(),
        lock,
        changed,
        new_lock: before.is_none(),
        bases: diff(&b0, &b1),
        packages,
    }
}

impl Summary {
    pub fn json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// A table per changed image, for a pull-request body.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "**imagelock freeze**: {} of {} lockfile{} {}\n",
            self.changed,
            self.images.len(),
            if self.images.len() == 1 { "" } else { "s" },
            if self.mode == "write" {
                "changed"
            } else {
                "would change"
            }
        );
        let short = |v: &Option<String>| -> String {
            match v.as_deref() {
                None => "—".into(),
                Some(v) => match v.strip_prefix("sha256:") {
                    Some(hex) if hex.len() > 12 => format!("`sha256:{}`", &hex[..12]),
                    _ => md_cell(v),
                },
            }
        };
        for image in self.images.iter().filter(|i| i.changed) {
            out.push_str(&format!(
                "\n### {} (`{}`){}\n\n",
                md_cell(&image.image),
                md_cell(&image.lock),
                if image.new_lock { ", new lock" } else { "" }
            ));
            if image.bases.is_empty() && image.packages.is_empty() {
                out.push_str("Same bases and packages; the lock's record of its inputs changed.\n");
                continue;
            }
            out.push_str("| what | old | new |\n|---|---|---|\n");
            for b in &image.bases {
                out.push_str(&format!(
                    "| base `{}` | {} | {} |\n",
                    md_cell(&b.name),
                    short(&b.old),
                    short(&b.new)
                ));
            }
            for p in &image.packages {
                out.push_str(&format!(
                    "| {} `{}` | {} | {} |\n",
                    p.ecosystem,
                    md_cell(&p.change.name),
                    short(&p.change.old),
                    short(&p.change.new)
                ));
            }
        }
        out
    }
}

//! Is a lock current for its inputs? Offline: the input hash recomputed
//! from the definition and the files its steps read, and the definition's
//! install steps and bases against the locked ones (a lock whose hash was
//! edited by hand is still caught), and the lock's own content against its
//! `content-hash` (a hand edit anywhere shows).

use std::collections::BTreeSet;

use serde::Serialize;

use crate::lock::LockedImage;
use crate::source::inputs::Inputs;
use crate::source::model::{BaseTarget, Definition};

/// Why a lock is not current. One variant per reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Staleness {
    /// No lock where the image's lock belongs.
    MissingLock { path: String },
    /// The inputs hash differently from when the lock was made.
    InputHash { locked: String, now: String },
    /// Install steps in the definition that the lock does not have, and
    /// locked steps the definition no longer has (`file:line command`).
    StepsChanged {
        #[serde(skip_serializing_if = "Vec::is_empty")]
        added: Vec<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        removed: Vec<String>,
    },
    /// A stage starts from another base than the locked one.
    BaseChanged {
        stage: u32,
        locked: String,
        now: String,
    },
    /// The definition has another number of stages than the lock.
    StagesChanged { locked: usize, now: usize },
    /// An image of this repository the lock builds `FROM` was locked again
    /// (or lost its lock) since: the lock records the parent's lock digest.
    ParentChanged {
        parent: String,
        locked: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        now: Option<String>,
    },
    /// A base read on this machine (an Apptainer `docker-daemon`, archive,
    /// layout or `localimage` base) is not what the lock pinned: the file
    /// changed, the tag names another image ID, or it cannot be read now.
    LocalBaseChanged {
        stage: u32,
        /// `docker-archive:base.tar`.
        base: String,
        /// `file-sha256`, `image-id`, `layout-manifest`.
        pinned: String,
        locked: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        now: Option<String>,
        /// Why it cannot be read now.
        #[serde(skip_serializing_if = "Option::is_none")]
        unreadable: Option<String>,
    },
    /// Git repositories the definition clones or adds by a moving ref
    /// that the lock has no entry for (`file:line command`): it was made
    /// before imagelock locked git sources, or by hand.
    GitMissing { sources: Vec<String> },
    /// The lock's content does not hash to its `content-hash` (or it has
    /// none): it was edited by hand, or not written by `imagelock freeze`.
    HandEdited {
        #[serde(skip_serializing_if = "Option::is_none")]
        locked: Option<String>,
        now: String,
    },
}

impl Staleness {
    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            Self::MissingLock { path } => format!("there is no lock at `{path}`"),
            Self::InputHash { locked, now } => format!(
                "the inputs changed since the lock was made (lock has input-hash {}, the inputs now hash to {})",
                short(locked),
                short(now)
            ),
            Self::StepsChanged { added, removed } => {
                let mut parts = Vec::new();
                if !added.is_empty() {
                    parts.push(format!("not in the lock: {}", added.join("; ")));
                }
                if !removed.is_empty() {
                    parts.push(format!("locked but gone: {}", removed.join("; ")));
                }
                format!("install steps changed ({})", parts.join(", "))
            }
            Self::BaseChanged { stage, locked, now } => {
                format!("stage {stage} starts from `{now}`, the lock has `{locked}`")
            }
            Self::StagesChanged { locked, now } => {
                format!("the definition has {now} stages, the lock has {locked}")
            }
            Self::ParentChanged {
                parent,
                now: Some(now),
                ..
            } => format!(
                "image `{parent}` of this repository, which it builds FROM, was locked again (its lock is now {}); freeze this image on it",
                short(now)
            ),
            Self::ParentChanged {
                parent, now: None, ..
            } => format!(
                "image `{parent}` of this repository, which it builds FROM, has no lock any more"
            ),
            Self::LocalBaseChanged {
                stage,
                base,
                pinned,
                locked,
                now: Some(now),
                ..
            } => format!(
                "stage {stage} starts from `{base}`, whose {pinned} is now {}; the lock has {}",
                short(now),
                short(locked)
            ),
            Self::LocalBaseChanged {
                stage,
                base,
                pinned,
                locked,
                unreadable,
                ..
            } => format!(
                "stage {stage} starts from `{base}`, which cannot be read now ({}); the lock has its {pinned} {}",
                unreadable.as_deref().unwrap_or("unknown"),
                short(locked)
            ),
            Self::GitMissing { sources } => format!(
                "git sources without a commit entry in the lock: {}",
                sources.join("; ")
            ),
            Self::HandEdited { locked, now } => format!(
                "the lock was edited by hand: its content hashes to {}, {}",
                short(now),
                match locked {
                    Some(l) => format!("but its content-hash says {}", short(l)),
                    None => "and it records no content-hash".to_string(),
                }
            ),
        }
    }

    /// The name used in reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::MissingLock { .. } => "missing-lock",
            Self::InputHash { .. } => "input-hash",
            Self::StepsChanged { .. } => "steps-changed",
            Self::BaseChanged { .. } => "base-changed",
            Self::StagesChanged { .. } => "stages-changed",
            Self::ParentChanged { .. } => "parent-changed",
            Self::LocalBaseChanged { .. } => "local-base-changed",
            Self::GitMissing { .. } => "git-missing",
            Self::HandEdited { .. } => "hand-edited",
        }
    }
}

fn short(hash: &str) -> String {
    let hex = hash.strip_prefix("sha256:").unwrap_or(hash);
    format!("sha256:{}", &hex[..hex.len().min(12)])
}

/// Whether the in-repo parents `lock` builds from are still locked as it
/// recorded: `parent_lock` gives the digest of a parent's lock as it is
/// now (`None`: it has none).
pub fn check_parents(
    lock: &LockedImage,
    parent_lock: &dyn Fn(&str) -> Option<crate::oci::Digest>,
) -> Vec<Staleness> {
    let mut out = Vec::new();
    for base in &lock.bases {
        let Some(parent) = &base.built_from else {
            continue;
        };
        let now = parent_lock(parent.as_str());
        if now.as_ref() != Some(&base.digest) {
            out.push(Staleness::ParentChanged {
                parent: parent.to_string(),
                locked: base.digest.to_string(),
                now: now.map(|d| d.to_string()),
            });
        }
    }
    out
}

/// The local bases of `definition` that are no longer what `lock` pinned
/// (hashing the files from `context`, asking the Docker Engine).
pub fn check_local_bases(
    lock: &LockedImage,
    definition: &Definition,
    context: &std::path::Path,
) -> Vec<Staleness> {
    crate::freeze::local::local_base_changes(definition, lock, context)
        .into_iter()
        .map(|c| {
            let (now, unreadable) = match c.now {
                Ok(n) => (Some(n), None),
                Err(e) => (None, Some(e)),
            };
            Staleness::LocalBaseChanged {
                stage: u32::try_from(c.stage).unwrap_or(u32::MAX),
                base: c.name,
                pinned: c.pinned,
                locked: c.locked,
                now,
                unreadable,
            }
        })
        .collect()
}

/// Every reason `lock` is not the lock of `definition` with `inputs`.
/// `file` is the definition as the lock names it (`ImageMeta::definition`).
pub fn check_lock(lock: &LockedImage, definition: &Definition, inputs: &Inputs) -> Vec<Staleness> {
    let mut out = Vec::new();
    let content = lock.computed_content_hash();
    if lock.image.content_hash.as_ref() != Some(&content) {
        out.push(Staleness::HandEdited {
            locked: lock.image.content_hash.as_ref().map(ToString::to_string),
            now: content.to_string(),
        });
    }
    let now = inputs.hash();
    if now != lock.image.input_hash {
        out.push(Staleness::InputHash {
            locked: lock.image.input_hash.to_string(),
            now: now.to_string(),
        });
    }
    let file = &lock.image.definition;
    let defined: BTreeSet<(u32, u32, String)> = definition
        .stages
        .iter()
        .flat_map(|s| {
            s.steps.iter().map(move |st| {
                (
                    u32::try_from(s.index).unwrap_or(u32::MAX),
                    u32::try_from(st.line).unwrap_or(u32::MAX),
                    st.command.text.clone(),
                )
            })
        })
        .collect();
    let locked: BTreeSet<(u32, u32, String)> = lock
        .steps
        .iter()
        .map(|s| (s.stage, s.line, s.command.clone()))
        .collect();
    let show = |(_, line, command): &(u32, u32, String)| format!("{file}:{line} `{command}`");
    let added: Vec<String> = defined.difference(&locked).map(show).collect();
    let removed: Vec<String> = locked.difference(&defined).map(show).collect();
    if !added.is_empty() || !removed.is_empty() {
        out.push(Staleness::StepsChanged { added, removed });
    }
    let git = git_missing(lock, definition);
    if !git.is_empty() {
        out.push(Staleness::GitMissing { sources: git });
    }
    if definition.stages.len() != lock.stages.len() {
        out.push(Staleness::StagesChanged {
            locked: lock.stages.len(),
            now: definition.stages.len(),
        });
    }
    for stage in &definition.stages {
        let now = match &stage.base.target {
            BaseTarget::Stage { index } => format!("stage:{index}"),
            BaseTarget::Scratch => "scratch".to_string(),
            BaseTarget::Image { .. } | BaseTarget::Other { .. } => stage
                .base
                .reference
                .value
                .clone()
                .unwrap_or_else(|| stage.base.reference.written.clone()),
        };
        let index = u32::try_from(stage.index).unwrap_or(u32::MAX);
        if let Some(l) = lock.stages.iter().find(|l| l.index == index)
            && l.base != now
        {
            out.push(Staleness::BaseChanged {
                stage: index,
                locked: l.base.to_string(),
                now,
            });
        }
    }
    out
}

/// The git sources of `definition` that name a moving ref and have no entry
/// (with or without a commit) in `lock`.
fn git_missing(lock: &LockedImage, definition: &Definition) -> Vec<String> {
    use crate::config::redact::redact_url;
    use crate::source::coverage::{ContentKind, git_url};
    let file = &lock.image.definition;
    let mut out = Vec::new();
    for stage in definition.stages.iter().filter(|s| !s.unused) {
        for c in &stage.content {
            let url = match &c.kind {
                ContentKind::GitClone {
                    url: Some(url),
                    commit: None,
                    checkout: None,
                } => url.clone(),
                ContentKind::AddGit { url, commit: None } => git_url(url).repository,
                _ => continue,
            };
            let url = redact_url(&url);
            let locked = lock.stages.iter().flat_map(|s| &s.git).any(|g| {
                usize::try_from(g.line).is_ok_and(|l| l == c.line) && g.url.as_str() == url
            });
            if !locked {
                out.push(format!("{file}:{} `{}`", c.line, c.text));
            }
        }
    }
    out
}

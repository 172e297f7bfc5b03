//! What a `COPY --from=IMAGE` copied into a built image, against the files
//! of the image the lock pins for it: file by file, by sha256.
//!
//! Only copies that land in the built image are compared: those of the
//! target stage and of the stages it is built FROM. What imagelock cannot
//! compare (a copy from a stage, a glob, an image it cannot read) becomes a
//! note with the copy's `file:line`, never a silent pass.

use std::collections::BTreeMap;

use super::finding::{Ecosystem, Finding, FindingKind, PlatformCheck};
use crate::image::{FileTree, ImageSource, ReadOptions, TreeEntry, read_tree};
use crate::lock::{LockedBase, LockedImage};
use crate::oci::{ImageLocation, ImageRef, Platform};
use crate::source::model::{BaseTarget, CopiedFile, Definition, ImageUseKind, Stage};
use crate::source::pattern::glob;

/// Opens an image by its location (the locked images copied from).
pub type OpenImage<'a> =
    dyn Fn(&ImageLocation) -> Result<Box<dyn ImageSource + Send>, crate::image::ImageError> + 'a;

/// One `COPY --from=IMAGE` of the built image, with the locked image.
#[derive(Clone, Debug)]
pub struct CopyFromImage {
    /// `file:line` of the instruction, as findings name steps.
    pub step: String,
    pub copy: CopiedFile,
    /// The locked image it copies from.
    pub base: LockedBase,
}

/// The `COPY --from` instructions whose files end up in the image `target`
/// (a stage name; the last stage used when `None`) builds: those imagelock
/// can compare, and notes on those it cannot.
pub fn copies_from_images(
    definition: &Definition,
    text: &str,
    file: &str,
    lock: &LockedImage,
    target: Option<&str>,
) -> (Vec<CopyFromImage>, Vec<String>) {
    let mut out = Vec::new();
    let mut notes = Vec::new();
    let line_of = |at: usize| text[..at.min(text.len())].matches('\n').count() + 1;
    for stage in built_stages(definition, target) {
        for copy in &stage.copies {
            let Some(from) = &copy.from else { continue };
            let step = format!("{file}:{}", line_of(copy.span.start));
            let target = stage
                .image_uses
                .iter()
                .find(|u| u.kind == ImageUseKind::CopyFrom && u.span == copy.span)
                .map(|u| &u.target);
            match target {
                Some(BaseTarget::Stage { index }) => {
                    let name = definition
                        .stages
                        .get(*index)
                        .and_then(|s| s.name.clone())
                        .unwrap_or_else(|| index.to_string());
                    notes.push(format!(
                        "{step}: `COPY --from={from}` copies from stage `{name}`, not from a locked image, so what it copied is not checked"
                    ));
                    continue;
                }
                Some(BaseTarget::Scratch) => continue,
                _ => {}
            }
            // What the copy does beyond its sources' content.
            let unchecked: Vec<&str> = copy
                .flags
                .iter()
                .map(String::as_str)
                .filter(|f| *f == "--parents" || f.starts_with("--exclude"))
                .collect();
            if !unchecked.is_empty() {
                notes.push(format!(
                    "{step}: `COPY --from={from} {}` selects what it copies in a way imagelock does not follow, so what it copied is not checked",
                    unchecked.join(" ")
                ));
                continue;
            }
            let sets: Vec<&str> = copy
                .flags
                .iter()
                .map(String::as_str)
                .filter(|f| f.starts_with("--chown") || f.starts_with("--chmod"))
                .collect();
            if !sets.is_empty() {
                notes.push(format!(
                    "{step}: `COPY --from={from}` sets `{}` on what it copies; the files are compared by content, their owner and mode are not checked",
                    sets.join(" ")
                ));
            }
            if let Some(glob) = copy
                .sources
                .iter()
                .find(|s| is_glob(s) && expandable(s).is_none())
            {
                notes.push(format!(
                    "{step}: `{glob}` of `COPY --from={from}` is a pattern imagelock does not expand, so what it copied is not checked"
                ));
                continue;
            }
            let Some(base) = lock
                .bases
                .iter()
                .find(|b| b.name == *from || b.references.iter().any(|r| r == from))
            else {
                notes.push(format!(
                    "{step}: `COPY --from={from}` names no image the lock pins, so what it copied is not checked"
                ));
                continue;
            };
            out.push(CopyFromImage {
                step,
                copy: copy.clone(),
                base: base.clone(),
            });
        }
    }
    (out, notes)
}

/// The target stage and the stages it is built FROM, top first.
fn built_stages<'a>(definition: &'a Definition, target: Option<&str>) -> Vec<&'a Stage> {
    let stages = &definition.stages;
    let last = target
        .and_then(|t| {
            stages
                .iter()
                .position(|s| s.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(t)))
        })
        .or_else(|| stages.iter().rposition(|s| !s.unused))
        .or(stages.len().checked_sub(1));
    let mut out = Vec::new();
    let mut next = last;
    while let Some(i) = next {
        let Some(stage) = stages.get(i) else { break };
        if out.iter().any(|s: &&Stage| s.index == stage.index) {
            break;
        }
        out.push(stage);
        next = match stage.base.target {
            BaseTarget::Stage { index } => Some(index),
            _ => None,
        };
    }
    out
}

fn is_glob(source: &str) -> bool {
    source.contains(['*', '?', '['])
}

/// A source whose only wildcards are `*` and `?` in its last segment
/// (`/opt/tool/bin/*`): its directory and the pattern, which imagelock
/// expands against the locked image. Other globs (`[…]`, a wildcard
/// directory) are not expanded.
fn expandable(source: &str) -> Option<(String, &str)> {
    let trimmed = source.trim_end_matches('/');
    let (dir, name) = trimmed.rsplit_once('/').unwrap_or(("", trimmed));
    (!is_glob(dir) && !name.contains('[') && is_glob(name)).then(|| (absolute(dir), name))
}

/// The sources of a copy as paths of the locked image, globs expanded
/// against `locked`; notes for a glob that matches nothing.
fn expand_sources(
    copy: &CopiedFile,
    locked: &FileTree,
    step: &str,
    notes: &mut Vec<String>,
) -> Vec<String> {
    let mut out = Vec::new();
    for source in &copy.sources {
        let Some((dir, pattern)) = expandable(source) else {
            out.push(absolute(source));
            continue;
        };
        let before = out.len();
        out.extend(
            locked
                .under(&dir)
                .filter(|(rel, _)| !rel.contains('/') && glob(pattern, rel))
                .map(|(rel, _)| join(&dir, rel)),
        );
        if out.len() == before {
            notes.push(format!(
                "{step}: `{source}` matches nothing in the locked image, so what `COPY --from={}` copied is not checked",
                copy.from.as_deref().unwrap_or_default()
            ));
        }
    }
    out
}

/// The paths of the locked image a copy reads: a glob's directory.
fn read_paths(copy: &CopiedFile) -> impl Iterator<Item = String> + '_ {
    copy.sources
        .iter()
        .map(|s| expandable(s).map_or_else(|| absolute(s), |(dir, _)| dir))
}

/// The absolute destination of a copy, as the builder resolves it against
/// the `WORKDIR` in effect.
fn destination(copy: &CopiedFile) -> String {
    if copy.destination.starts_with('/') {
        return copy.destination.clone();
    }
    let workdir = copy.workdir.as_deref().unwrap_or("/");
    format!("{}/{}", workdir.trim_end_matches('/'), copy.destination)
}

fn absolute(path: &str) -> String {
    format!("/{}", path.trim_start_matches('/').trim_end_matches('/'))
}

fn join(dir: &str, rel: &str) -> String {
    format!("{}/{}", dir.trim_end_matches('/'), rel)
}

/// Compares, for `platform`, what each copy put in the built image
/// (`built`) with the files of its locked image, read by digest through
/// `open`. Findings and notes go to `out`; returns the files compared.
pub fn check_copies(
    copies: &[CopyFromImage],
    platform: &Platform,
    built: &dyn ImageSource,
    open: &OpenImage<'_>,
    opts: &ReadOptions,
    out: &mut PlatformCheck,
) -> usize {
    if copies.is_empty() {
        return 0;
    }
    let destinations: Vec<String> = copies.iter().map(|c| destination(&c.copy)).collect();
    let built_tree = match read_tree(built, platform, opts, &destinations) {
        Ok(t) => t,
        Err(e) => {
            for c in copies {
                out.notes.push(format!(
                    "{}: what `COPY --from={}` copied is not checked: cannot read the built image: {e}",
                    c.step,
                    c.copy.from.as_deref().unwrap_or_default()
                ));
            }
            return 0;
        }
    };
    // Each locked image once, for every path copied from it.
    let mut by_image: BTreeMap<String, (LockedBase, Vec<String>)> = BTreeMap::new();
    for c in copies {
        let key = format!("{}@{}", c.base.name, c.base.digest);
        let entry = by_image
            .entry(key)
            .or_insert_with(|| (c.base.clone(), Vec::new()));
        entry.1.extend(read_paths(&c.copy));
    }
    let mut trees: BTreeMap<String, Result<FileTree, String>> = BTreeMap::new();
    for (key, (base, paths)) in by_image {
        let tree = ImageRef::parse(&base.name)
            .map_err(|e| e.to_string())
            .and_then(|r| {
                let location = ImageLocation::Docker(r.with_digest(base.digest.clone()));
                let source = open(&location).map_err(|e| e.to_string())?;
                read_following(source.as_ref(), platform, opts, paths).map_err(|e| e.to_string())
            });
        trees.insert(key, tree);
    }
    let mut compared = 0;
    for (c, dest) in copies.iter().zip(&destinations) {
        let key = format!("{}@{}", c.base.name, c.base.digest);
        let from = c.copy.from.as_deref().unwrap_or_default();
        let locked = match trees.get(&key) {
            Some(Ok(t)) => t,
            Some(Err(e)) => {
                out.notes.push(format!(
                    "{}: what `COPY --from={from}` copied is not checked: cannot read `{key}`: {e}",
                    c.step
                ));
                continue;
            }
            None => continue,
        };
        let sources = expand_sources(&c.copy, locked, &c.step, &mut out.notes);
        let into_dir = sources.len() > 1
            || c.copy.sources.iter().any(|s| is_glob(s))
            || c.copy.destination.ends_with('/')
            || built_tree.get(dest) == Some(&TreeEntry::Dir);
        for source in sources {
            let mut expected: Vec<(String, String, &TreeEntry)> = Vec::new();
            match locked.get(&source) {
                None => {
                    out.notes.push(format!(
                        "{}: `{source}` is not in `{key}`, so what `COPY --from={from}` copied there is not checked",
                        c.step
                    ));
                    continue;
                }
                Some(TreeEntry::Dir) => {
                    for (rel, e) in locked.under(&source) {
                        expected.push((join(&source, rel), join(dest, rel), e));
                    }
                }
                Some(TreeEntry::Symlink(target)) => {
                    let name = source.rsplit('/').next().unwrap_or_default();
                    let to = if into_dir {
                        join(dest, name)
                    } else {
                        dest.clone()
                    };
                    // A builder that kept the link copied it as it is.
                    if built_tree.get(&to) == Some(&TreeEntry::Symlink(target.clone())) {
                        compared += 1;
                        continue;
                    }
                    // Otherwise the link is followed, as BuildKit does.
                    match follow(locked, &source) {
                        Followed::To(real, TreeEntry::Dir) => {
                            for (rel, e) in locked.under(&real) {
                                expected.push((join(&real, rel), join(&to, rel), e));
                            }
                        }
                        Followed::To(real, e) => expected.push((real, to, e)),
                        Followed::Missing(_) | Followed::Loop => {
                            out.notes.push(format!(
                                "{}: `{source}` is a symlink to `{target}` in `{key}` that leads nowhere imagelock read, so what `COPY --from={from}` copied there is not checked",
                                c.step
                            ));
                            continue;
                        }
                    }
                }
                Some(e) => {
                    let name = source.rsplit('/').next().unwrap_or_default();
                    let to = if into_dir {
                        join(dest, name)
                    } else {
                        dest.clone()
                    };
                    expected.push((source.clone(), to, e));
                }
            }
            for (from_path, to, want) in expected {
                if *want == TreeEntry::Dir {
                    continue;
                }
                compared += 1;
                let have = built_tree.get(&to);
                if have == Some(want) {
                    continue;
                }
                out.findings.push(Finding {
                    kind: FindingKind::CopyDiffers,
                    ecosystem: Ecosystem::Image,
                    name: to.clone(),
                    expected: Some(format!("{} ({key} {from_path})", show(Some(want)))),
                    found: Some(show(have)),
                    step: Some(c.step.clone()),
                    location: None,
                    channel: None,
                    detail: None,
                });
            }
        }
    }
    compared
}

/// Where a path leads through the symlinks of a tree.
#[derive(Debug, PartialEq, Eq)]
enum Followed<'a> {
    /// The path reached and what is there (never a symlink).
    To(String, &'a TreeEntry),
    /// A path the tree does not hold (it was not read, or is not there).
    Missing(String),
    /// Links that lead in a circle, or too far.
    Loop,
}

/// Follows `path` through whole-path symlinks of `tree` (targets absolute,
/// or relative to the link's directory), as the kernel would, up to 40
/// links.
fn follow<'a>(tree: &'a FileTree, path: &str) -> Followed<'a> {
    let mut at = absolute(path);
    for _ in 0..40 {
        match tree.get(&at) {
            Some(TreeEntry::Symlink(target)) => {
                let parent = at.rsplit_once('/').map_or("", |(d, _)| d);
                at = normalize(&if target.starts_with('/') {
                    target.clone()
                } else {
                    format!("{parent}/{target}")
                });
            }
            Some(e) => return Followed::To(at, e),
            None => return Followed::Missing(at),
        }
    }
    Followed::Loop
}

/// An absolute path with `.` and `..` resolved (`..` of `/` is `/`).
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Reads `paths` of a locked image, and then the targets of the symlinks
/// among them (a link's target may lie outside what was asked for), a few
/// rounds deep.
fn read_following(
    source: &dyn ImageSource,
    platform: &Platform,
    opts: &ReadOptions,
    mut paths: Vec<String>,
) -> Result<FileTree, crate::image::ImageError> {
    let mut tree = read_tree(source, platform, opts, &paths)?;
    for _ in 0..4 {
        let more: Vec<String> = paths
            .iter()
            .filter_map(|p| match follow(&tree, p) {
                Followed::Missing(at) if at != absolute(p) && !paths.contains(&at) => Some(at),
                _ => None,
            })
            .collect();
        if more.is_empty() {
            break;
        }
        paths.extend(more);
        tree = read_tree(source, platform, opts, &paths)?;
    }
    Ok(tree)
}

fn show(entry: Option<&TreeEntry>) -> String {
    match entry {
        Some(TreeEntry::File(d)) => d.to_string(),
        Some(TreeEntry::Symlink(t)) => format!("a symlink to `{t}`"),
        Some(TreeEntry::Dir) => "a directory".into(),
        None => "no file".into(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::*;

    const LOCK: &str = r#"version = 1

[image]
name = "pb"
definition = "Dockerfile"
input-hash = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
platforms = ["linux/amd64"]

[[bases]]
name = "docker.io/nvidia/parabricks:4.0"
references = ["nvidia/parabricks:4.0"]
digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
media-type = "application/vnd.oci.image.manifest.v1+json"
"#;

    fn copies(dockerfile: &str) -> (Vec<CopyFromImage>, Vec<String>) {
        let definition =
            crate::source::dockerfile::parse(Path::new("Dockerfile"), dockerfile, &BTreeMap::new())
                .expect("parses");
        let lock = LockedImage::from_toml(Path::new("pb.lock"), LOCK).expect("lock");
        copies_from_images(&definition, dockerfile, "Dockerfile", &lock, None)
    }

    #[test]
    fn copies_that_reach_the_image_are_found_and_the_rest_noted() {
        let (found, notes) = copies(
            "FROM scratch AS unused\n\
             COPY --from=nvidia/parabricks:4.0 /a /a\n\
             FROM scratch AS tools\n\
             COPY --from=nvidia/parabricks:4.0 /opt/parabricks/pbrun /pbrun\n\
             FROM tools\n\
             WORKDIR /opt\n\
             COPY --from=nvidia/parabricks:4.0 /opt/parabricks/lib/*.so lib/\n\
             COPY --from=tools /pbrun /bin/pbrun\n\
             COPY --from=other/image:1 /x /x\n\
             COPY --from=nvidia/parabricks:4.0 /opt/*/pbrun /bin/\n",
        );
        let steps: Vec<&str> = found.iter().map(|c| c.step.as_str()).collect();
        assert_eq!(steps, ["Dockerfile:7", "Dockerfile:4"]);
        assert_eq!(destination(&found[0].copy), "/opt/lib/");
        assert_eq!(found[1].base.digest.to_string().len(), 71);
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(
            notes[0].starts_with("Dockerfile:8: `COPY --from=tools` copies from stage `tools`")
        );
        assert!(
            notes[1].starts_with(
                "Dockerfile:9: `COPY --from=other/image:1` names no image the lock pins"
            )
        );
        assert!(notes[2].starts_with("Dockerfile:10: `/opt/*/pbrun`"));
    }

    #[test]
    fn flags_that_select_files_are_not_checked_and_owner_and_mode_are_named() {
        let (found, notes) = copies(
            "FROM scratch\n\
             COPY --from=nvidia/parabricks:4.0 --exclude=*.md /opt/parabricks /opt/pb\n\
             COPY --from=nvidia/parabricks:4.0 --parents /opt/parabricks/./lib /x/\n\
             COPY --from=nvidia/parabricks:4.0 --chown=1000:1000 --chmod=755 /opt/parabricks/pbrun /pbrun\n",
        );
        let steps: Vec<&str> = found.iter().map(|c| c.step.as_str()).collect();
        assert_eq!(steps, ["Dockerfile:4"]);
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(notes[0].starts_with(
            "Dockerfile:2: `COPY --from=nvidia/parabricks:4.0 --exclude=*.md` selects what it copies"
        ));
        assert!(notes[1].starts_with(
            "Dockerfile:3: `COPY --from=nvidia/parabricks:4.0 --parents` selects what it copies"
        ));
        assert!(notes[2].starts_with(
            "Dockerfile:4: `COPY --from=nvidia/parabricks:4.0` sets `--chown=1000:1000 --chmod=755` on what it copies; the files are compared by content"
        ));
    }

    #[test]
    fn symlinks_are_followed_to_what_they_name() {
        let file = TreeEntry::File(crate::oci::Digest::sha256_of(b"pbrun"));
        let tree: FileTree = [
            ("/opt/pb/pbrun".to_string(), file.clone()),
            (
                "/opt/pb/bin/run".to_string(),
                TreeEntry::Symlink("../pbrun".into()),
            ),
            (
                "/usr/bin/pb".to_string(),
                TreeEntry::Symlink("/opt/pb/bin/run".into()),
            ),
            (
                "/usr/bin/lib".to_string(),
                TreeEntry::Symlink("/opt/pb".into()),
            ),
            ("/opt/pb".to_string(), TreeEntry::Dir),
            ("/a".to_string(), TreeEntry::Symlink("b".into())),
            ("/b".to_string(), TreeEntry::Symlink("a".into())),
            ("/gone".to_string(), TreeEntry::Symlink("/nowhere/x".into())),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            follow(&tree, "/usr/bin/pb"),
            Followed::To("/opt/pb/pbrun".into(), &file)
        );
        assert_eq!(
            follow(&tree, "/usr/bin/lib"),
            Followed::To("/opt/pb".into(), &TreeEntry::Dir)
        );
        assert_eq!(follow(&tree, "/a"), Followed::Loop);
        assert_eq!(
            follow(&tree, "/gone"),
            Followed::Missing("/nowhere/x".into())
        );
        assert_eq!(normalize("/opt/pb/bin/../../x/./y"), "/opt/x/y");
    }

    #[test]
    fn only_last_segment_globs_are_expanded() {
        assert_eq!(
            expandable("/opt/parabricks/lib/*.so"),
            Some(("/opt/parabricks/lib".into(), "*.so"))
        );
        assert_eq!(expandable("lib?"), Some(("/".into(), "lib?")));
        assert_eq!(expandable("/opt/*/pbrun"), None);
        assert_eq!(expandable("/opt/[p]b"), None);
        assert_eq!(expandable("/opt/pbrun"), None);
    }
}

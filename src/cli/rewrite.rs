//! `imagelock rewrite`: the definitions in pinned form, from their locks.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context as _;

use crate::cli::args::RewriteArgs;
use crate::cli::images::{images_of_file, select};
use crate::cli::{Opts, Outcome, Printer};
use crate::config::{Config, ImageConfig};
use crate::lock::{LockedImage, write_atomic};
use crate::rewrite::{FileChange, Rewrite, RewriteOptions, rewrite_image};

pub(crate) struct Planned {
    pub image: ImageConfig,
    pub lock_path: PathBuf,
    /// The lock as read (rewrite's input).
    pub lock: LockedImage,
    pub rewrite: Rewrite,
    /// Every file the image reads (definition and step files), as it is now.
    reads: BTreeMap<PathBuf, String>,
}

/// Each image's rewrite, computed before anything is written: a definition
/// several images share is split per variant where their bases differ
/// ([`crate::rewrite::variants`]), and refused when they would still pin
/// it differently.
pub(crate) fn plan(
    mut loaded: Vec<Loaded>,
    options: RewriteOptions,
    printer: &Printer,
) -> anyhow::Result<Vec<Planned>> {
    let why_not_split = split_variants(&mut loaded);

    let mut planned = Vec::new();
    for l in loaded {
        let lock = l.lock;
        let mut rewrite =
            rewrite_image(&l.definition, &l.inputs, &lock, &l.image.context, options)?;
        let mut reads = BTreeMap::new();
        reads.insert(canonical(&l.image.file), l.inputs.definition.clone());
        for f in &l.inputs.files {
            reads.insert(canonical(&f.path), f.text.clone());
        }
        for w in &rewrite.warnings {
            let mut line = format!("{}: {}", w.location, w.message);
            if let Some(h) = &w.hint {
                line.push_str("\n  hint: ");
                line.push_str(h);
            }
            printer.warn(&line);
        }
        // A split definition: the change is from the text on disk.
        if let Some((before, original_lock)) = l.split_from {
            reads.insert(canonical(&l.image.file), before.clone());
            match rewrite
                .files
                .iter_mut()
                .find(|f| canonical(&f.path) == canonical(&l.image.file))
            {
                Some(f) => f.before = before,
                None if before != l.inputs.definition => rewrite.files.insert(
                    0,
                    FileChange {
                        path: l.definition.path.clone(),
                        before,
                        after: l.inputs.definition.clone(),
                    },
                ),
                None => {}
            }
            planned.push(Planned {
                image: l.image,
                lock_path: l.lock_path,
                lock: *original_lock,
                rewrite,
                reads,
            });
            continue;
        }
        planned.push(Planned {
            image: l.image,
            lock_path: l.lock_path,
            lock,
            rewrite,
            reads,
        });
    }

    refuse_diverging_variants(&planned, &why_not_split)?;
    Ok(planned)
}

/// An image as read before rewriting.
pub(crate) struct Loaded {
    pub image: ImageConfig,
    pub lock_path: PathBuf,
    pub lock: LockedImage,
    pub definition: crate::source::Definition,
    pub inputs: crate::source::inputs::Inputs,
    /// When its definition was split per variant: the text on disk and the
    /// lock as read (`definition`, `inputs` and `lock` are the split ones).
    pub split_from: Option<(String, Box<LockedImage>)>,
}

/// Images sharing a definition whose bases differ get the split form of
/// [`crate::rewrite::variants`]: each is then rewritten from it. Returns,
/// per definition that could not be split, why (for the refusal).
fn split_variants(loaded: &mut [Loaded]) -> BTreeMap<PathBuf, String> {
    use crate::rewrite::variants::{Variant, split_bases};
    let mut why_not = BTreeMap::new();
    let mut files: Vec<PathBuf> = loaded.iter().map(|l| canonical(&l.image.file)).collect();
    files.sort();
    files.dedup();
    for file in files {
        let members: Vec<usize> = (0..loaded.len())
            .filter(|&i| canonical(&loaded[i].image.file) == file)
            .collect();
        let variants: Vec<Variant<'_>> = members
            .iter()
            .map(|&i| Variant {
                name: &loaded[i].image.name,
                definition: &loaded[i].definition,
                inputs: &loaded[i].inputs,
                lock: &loaded[i].lock,
                context: &loaded[i].image.context,
            })
            .collect();
        match split_bases(&variants) {
            Ok(None) => {}
            Err(why) => {
                why_not.insert(file, why);
            }
            Ok(Some(split)) => {
                let before = loaded[members[0]].inputs.definition.clone();
                for (&i, (definition, inputs, lock)) in members.iter().zip(split.variants) {
                    let l = &mut loaded[i];
                    let original = std::mem::replace(&mut l.lock, lock);
                    l.definition = definition;
                    l.inputs = inputs;
                    l.split_from = Some((before.clone(), Box::new(original)));
                }
            }
        }
    }
    why_not
}

pub fn run(opts: &Opts, args: &RewriteArgs, printer: &Printer) -> anyhow::Result<Outcome> {
    let (config, images) = select(&opts.global, &args.paths.paths, &BTreeMap::new())?;
    let config = lock_config(config)?;
    let options = RewriteOptions {
        hashes: args.hashes,
        check_downloads: args.check_downloads || config.rewrite.checksum_downloads,
        apt_snapshot: args.apt_snapshot
            || config.rewrite.apt == crate::config::AptRewrite::PinsSnapshot,
    };
    // A definition shared by several images (one per build-arg set) is
    // rewritten for all of them together, or not at all.
    let mut images = images;
    for image in images.clone() {
        for variant in images_of_file(&config, &image.file) {
            if !images.iter().any(|i| i.name == variant.name) {
                images.push(variant);
            }
        }
    }
    // Everything is computed before anything is written.
    let mut loaded = Vec::new();
    for image in images {
        let lock_path = config.lock_path(&image.name);
        if !lock_path.is_file() {
            anyhow::bail!(
                "`{}` has no lock at `{}`\nhint: run `imagelock freeze {}` first",
                image.name,
                lock_path.display(),
                image.file.display()
            );
        }
        let lock = LockedImage::read(&lock_path)?;
        let (definition, inputs) = crate::cli::images::load_image(&image)?;
        loaded.push(Loaded {
            image,
            lock_path,
            lock,
            definition,
            inputs,
            split_from: None,
        });
    }
    let mut planned = plan(loaded, options, printer)?;
    let children = follow_parents(&config, &mut planned)?;

    // A file several variants share is one change (the same for each,
    // checked above).
    let mut unique: Vec<&FileChange> = Vec::new();
    for f in planned.iter().flat_map(|p| &p.rewrite.files) {
        if !unique
            .iter()
            .any(|u| canonical(&u.path) == canonical(&f.path))
        {
            unique.push(f);
        }
    }
    let changed = unique.len();
    if args.check || args.diff {
        let mut out = String::new();
        for f in &unique {
            out.push_str(&unified_diff(f));
        }
        printer.data(&out)?;
        if args.check && changed > 0 {
            printer.status(&format!(
                "{changed} file{} not in pinned form; run `imagelock rewrite`",
                plural(changed)
            ));
            return Ok(Outcome::Findings);
        }
        return Ok(Outcome::Clean);
    }
    for p in &planned {
        for f in &p.rewrite.files {
            write_atomic(&f.path, f.after.as_bytes())
                .with_context(|| format!("cannot write `{}`", f.path.display()))?;
        }
        if p.rewrite.lock != p.lock {
            p.rewrite.lock.write(&p.lock_path)?;
        }
        let n = p.rewrite.files.len();
        if n == 0 {
            printer.status(&format!("{}: already pinned", p.image.name));
        } else {
            printer.status(&format!("{}: pinned {n} file{}", p.image.name, plural(n)));
        }
    }
    for (path, lock) in &children {
        lock.write(path)?;
    }
    Ok(Outcome::Clean)
}

/// Refuses when images sharing a file would pin it differently: writing
/// one variant's pins would build the others from the wrong base or
/// packages, silently.
fn refuse_diverging_variants(
    planned: &[Planned],
    why_not_split: &BTreeMap<PathBuf, String>,
) -> anyhow::Result<()> {
    // Each file any rewrite touches, and what each image makes of it.
    let mut files: BTreeMap<PathBuf, Vec<(&Planned, &str)>> = BTreeMap::new();
    for p in planned {
        for f in &p.rewrite.files {
            files.entry(canonical(&f.path)).or_default();
        }
    }
    for p in planned {
        let mut after: BTreeMap<PathBuf, &str> = BTreeMap::new();
        for f in &p.rewrite.files {
            after.insert(canonical(&f.path), f.after.as_str());
        }
        for (path, texts) in &mut files {
            if let Some(text) = after
                .get(path)
                .copied()
                .or(p.reads.get(path).map(String::as_str))
            {
                texts.push((p, text));
            }
        }
    }
    for (path, texts) in files {
        let Some((first, text)) = texts.first() else {
            continue;
        };
        let Some((other, _)) = texts.iter().find(|(_, t)| t != text) else {
            continue;
        };
        let shown = |p: &Planned| {
            let args: Vec<String> = p
                .image
                .build_args
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            if args.is_empty() {
                format!("`{}` (no build args)", p.image.name)
            } else {
                format!("`{}` ({})", p.image.name, args.join(", "))
            }
        };
        let names: Vec<String> = texts.iter().map(|(p, _)| shown(p)).collect();
        let file = planned
            .iter()
            .flat_map(|p| &p.rewrite.files)
            .find(|f| canonical(&f.path) == path)
            .map_or_else(
                || path.display().to_string(),
                |f| f.path.display().to_string(),
            );
        let split = why_not_split.get(&path).map_or_else(
            || " (a stage per variant covers bases only; these differ in more)".to_string(),
            |why| format!(" (no stage per variant either: {why})"),
        );
        anyhow::bail!(
            "`{file}` is built as {} images with different build args: {}; their locks pin it differently ({} and {} differ){split}, so writing one variant's pins would build the others from the wrong digests; nothing was written\nhint: give each variant its own definition file (e.g. `Dockerfile.{}`), or pin the variable part through a build arg per image in `imagelock.toml` (e.g. a base reference with its digest)",
            texts.len(),
            names.join(", "),
            first.image.name,
            other.image.name,
            other.image.name,
        );
    }
    Ok(())
}

/// The locks of images built FROM a rewritten image, with the parent's lock
/// digest they record moved to its rewritten lock (and so on down): the
/// rewrite changes no package of the parent, so a child that was current
/// on it stays current, for `verify` as for `freeze --check`.
fn follow_parents(
    config: &Config,
    planned: &mut [Planned],
) -> anyhow::Result<Vec<(PathBuf, LockedImage)>> {
    use crate::oci::Digest;
    let digest = |l: &LockedImage| Digest::sha256_of(l.to_toml().as_bytes());
    let follow = |lock: &mut LockedImage, moved: &BTreeMap<String, (Digest, Digest)>| {
        for base in &mut lock.bases {
            if let Some((before, after)) = base
                .built_from
                .as_deref()
                .and_then(|parent| moved.get(parent))
                && base.digest == *before
            {
                base.digest = after.clone();
            }
        }
    };
    // Parent name → (digest of its lock before, after).
    let mut moved: BTreeMap<String, (Digest, Digest)> = BTreeMap::new();
    let mut out: Vec<(PathBuf, LockedImage)> = Vec::new();
    loop {
        let mut changed = false;
        for p in planned.iter_mut() {
            let before = p.rewrite.lock.clone();
            follow(&mut p.rewrite.lock, &moved);
            changed |= p.rewrite.lock != before;
            if p.rewrite.lock != p.lock {
                let entry = (digest(&p.lock), digest(&p.rewrite.lock));
                changed |= moved.get(&p.image.name) != Some(&entry);
                moved.insert(p.image.name.clone(), entry);
            }
        }
        for image in &config.images {
            if planned.iter().any(|p| p.image.name == image.name) {
                continue;
            }
            let path = config.lock_path(&image.name);
            let on_disk = if path.is_file() {
                LockedImage::read(&path)?
            } else {
                continue;
            };
            let current = out
                .iter()
                .find(|(p, _)| *p == path)
                .map_or_else(|| on_disk.clone(), |(_, l)| l.clone());
            let mut lock = current.clone();
            follow(&mut lock, &moved);
            if lock != current {
                moved.insert(image.name.clone(), (digest(&on_disk), digest(&lock)));
                out.retain(|(p, _)| *p != path);
                out.push((path, lock));
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    Ok(out)
}

fn canonical(path: &std::path::Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The configuration the locks are found by: the one given, else an
/// `imagelock.toml` found from the current directory, else zero-config
/// (`lockfiles/`).
pub(super) fn lock_config(config: Option<Config>) -> anyhow::Result<Config> {
    if let Some(c) = config {
        return Ok(c);
    }
    let discovered = std::env::current_dir()
        .ok()
        .and_then(|d| Config::discover(&d))
        .map(|p| Config::load(&p))
        .transpose()?;
    Ok(discovered.unwrap_or_else(|| Config::zero(&[])))
}

/// A unified diff of one file, `a/` and `b/` headers with the path.
fn unified_diff(f: &FileChange) -> String {
    crate::cli::output::unified_diff(&f.path, &f.before, &f.after)
}

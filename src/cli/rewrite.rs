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

struct Planned {
    image: ImageConfig,
    lock_path: PathBuf,
    lock: LockedImage,
    rewrite: Rewrite,
    /// Every file the image reads (definition and step files), as it is now.
    reads: BTreeMap<PathBuf, String>,
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
    let mut planned = Vec::new();
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
        let rewrite = rewrite_image(&definition, &inputs, &lock, &image.context, options)?;
        let mut reads = BTreeMap::new();
        reads.insert(canonical(&image.file), inputs.definition.clone());
        for f in &inputs.files {
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
        planned.push(Planned {
            image,
            lock_path,
            lock,
            rewrite,
            reads,
        });
    }

    refuse_diverging_variants(&planned)?;
    let children = follow_parents(&config, &mut planned)?;

    let changed: usize = planned.iter().map(|p| p.rewrite.files.len()).sum();
    if args.check || args.diff {
        let mut out = String::new();
        for p in &planned {
            for f in &p.rewrite.files {
                out.push_str(&unified_diff(f));
            }
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
fn refuse_diverging_variants(planned: &[Planned]) -> anyhow::Result<()> {
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
        anyhow::bail!(
            "`{file}` is built as {} images with different build args: {}; their locks pin it differently ({} and {} differ), so writing one variant's pins would build the others from the wrong digests; nothing was written\nhint: give each variant its own definition file (e.g. `Dockerfile.{}`), or pin the variable part through a build arg per image in `imagelock.toml` (e.g. a base reference with its digest)",
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

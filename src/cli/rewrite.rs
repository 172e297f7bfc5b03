//! `imagelock rewrite`: the definitions in pinned form, from their locks.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context as _;

use crate::cli::args::RewriteArgs;
use crate::cli::images::select;
use crate::cli::{Opts, Outcome, Printer};
use crate::config::{Config, ImageConfig};
use crate::lock::{LockedImage, write_atomic};
use crate::rewrite::{FileChange, Rewrite, RewriteOptions, rewrite_image};

struct Planned {
    image: ImageConfig,
    lock_path: PathBuf,
    lock: LockedImage,
    rewrite: Rewrite,
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
        });
    }

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
    Ok(Outcome::Clean)
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

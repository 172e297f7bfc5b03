//! `imagelock update`: `freeze --update PKG…` and `rewrite` in one step.
//!
//! The named packages are checked against the definitions first: one the
//! definition pins to a version itself cannot move by re-locking, and
//! saying "updated" then would be a lie, so that is an error with the
//! pin's file:line before anything is resolved. Then freeze resolves in
//! memory, rewrite pins the definitions from the new locks, and the locks
//! and the rewritten files are written together (or, with `--dry-run`,
//! printed as diffs).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::cli::args::{FreezeArgs, PathsArgs, UpdateArgs};
use crate::cli::freeze::{Resolved, resolve};
use crate::cli::images::{images_of_file, load_image, parse_build_args, select};
use crate::cli::output::{display_path, unified_diff};
use crate::cli::rewrite::{Loaded, plan};
use crate::cli::{Opts, Outcome, OutputFormat, Printer};
use crate::lock::{LockedImage, write_all_atomic};
use crate::rewrite::{RewriteOptions, pinned_specs};

pub fn run(opts: &Opts, args: &UpdateArgs, printer: &Printer) -> anyhow::Result<Outcome> {
    if opts.global.format != OutputFormat::Human {
        anyhow::bail!(
            "`imagelock update` has no `{}` output: it prints diffs and status lines only\nhint: for an old → new summary, run `imagelock freeze --update PKG… --format {}` and then `imagelock rewrite`",
            opts.global.format.name(),
            opts.global.format.name()
        );
    }
    let overrides = parse_build_args(&args.build_args)?;
    if !args.packages.is_empty() {
        refuse_pinned(opts, args, &overrides)?;
    }
    // The other images of a definition an update rewrites are updated
    // with it: their pins live in the same file.
    let mut paths = args.paths.clone();
    if !paths.is_empty()
        && let (Some(config), images) = select(&opts.global, &paths, &overrides)?
    {
        for image in &images {
            for variant in images_of_file(&config, &image.file) {
                let name = PathBuf::from(&variant.name);
                if !images.iter().any(|i| i.name == variant.name) && !paths.contains(&name) {
                    paths.push(name);
                }
            }
        }
    }
    let freeze_args = FreezeArgs {
        paths: PathsArgs { paths },
        update: args.packages.clone(),
        update_base: args.update_base,
        follow_tags: args.update_base,
        platform: args.platform.clone(),
        dry_run: args.dry_run,
        check: false,
        exclude_newer: args.exclude_newer.clone(),
        no_build: args.no_build,
        build_args: args.build_args.clone(),
        jobs: None,
    };
    let Resolved {
        jobs,
        frozen,
        started,
        rewrite,
    } = resolve(opts, &freeze_args, printer)?;

    // The definitions are rewritten as `rewrite` writes them: with
    // `[rewrite] apt = "pins+snapshot"` the snapshot list moves to the new
    // lock's timestamps with the packages.
    let options = RewriteOptions {
        hashes: args.hashes,
        check_downloads: rewrite.checksum_downloads,
        apt_snapshot: rewrite.apt == crate::config::AptRewrite::PinsSnapshot,
    };
    let mut diffs = String::new();
    let mut writes: Vec<(PathBuf, String)> = Vec::new();
    let mut locks_changed = 0;
    let mut moves = Vec::new();
    // Rewritten as `rewrite` does it: a definition several images share is
    // rewritten for all of them together (split per variant where their
    // bases differ), or not at all.
    let loaded = jobs
        .iter()
        .zip(&frozen)
        .map(|(job, image)| Loaded {
            image: job.config.clone(),
            lock_path: job.lock_path.clone(),
            lock: image.lock.clone(),
            definition: job.definition.clone(),
            inputs: job.inputs.clone(),
            split_from: None,
        })
        .collect();
    let planned = plan(loaded, options, printer)?;
    let mut written_files = BTreeSet::new();
    for (job, p) in jobs.iter().zip(&planned) {
        let rewrite = &p.rewrite;
        moves.extend(package_moves(
            &job.config.name,
            &args.packages,
            job.previous.as_ref(),
            &rewrite.lock,
        ));
        let before = if job.lock_path.is_file() {
            std::fs::read_to_string(&job.lock_path).unwrap_or_default()
        } else {
            String::new()
        };
        let after = rewrite.lock.to_toml();
        if before != after {
            locks_changed += 1;
            diffs.push_str(&unified_diff(&job.lock_path, &before, &after));
            writes.push((job.lock_path.clone(), after));
        }
        for f in &rewrite.files {
            let key = f.path.canonicalize().unwrap_or_else(|_| f.path.clone());
            if written_files.insert(key) {
                diffs.push_str(&unified_diff(&f.path, &f.before, &f.after));
                writes.push((f.path.clone(), f.after.clone()));
            }
        }
    }
    let files_changed = writes.len() - locks_changed;
    let elapsed = started.elapsed().as_secs_f64();
    if args.dry_run {
        printer.data(&diffs)?;
        for line in &moves {
            printer.status(&format!("{line} (not written)"));
        }
        printer.status(&format!(
            "{locks_changed} of {} lockfiles and {files_changed} definition file{} would change (nothing written)",
            jobs.len(),
            plural(files_changed)
        ));
        return Ok(Outcome::Clean);
    }
    // Locks and definitions are replaced together, or none of them.
    let files: Vec<(&Path, &[u8])> = writes
        .iter()
        .map(|(path, text)| (path.as_path(), text.as_bytes()))
        .collect();
    write_all_atomic(&files).map_err(|e| anyhow::anyhow!("cannot write the update: {e}"))?;
    for (path, _) in &writes {
        printer.status(&format!("wrote {}", display_path(path)));
    }
    // The lock rewrite returns is current for the pinned files (verify
    // passes), but records the specs as they were before pinning; freezing
    // the pinned files once more, with nothing to update, makes the lock
    // `freeze` itself would make, so `freeze --check` passes too. Every
    // version is locked and pinned now, so nothing moves.
    let settle = FreezeArgs {
        update: Vec::new(),
        update_base: false,
        ..freeze_args
    };
    let again = resolve(opts, &settle, printer)?;
    let mut settled = Vec::new();
    for (job, image) in again.jobs.iter().zip(&again.frozen) {
        let after = image.lock.to_toml();
        if std::fs::read_to_string(&job.lock_path).ok().as_deref() != Some(after.as_str()) {
            settled.push((job.lock_path.clone(), after));
        }
    }
    let files: Vec<(&Path, &[u8])> = settled
        .iter()
        .map(|(path, text)| (path.as_path(), text.as_bytes()))
        .collect();
    write_all_atomic(&files).map_err(|e| anyhow::anyhow!("cannot write the locks: {e}"))?;
    for line in &moves {
        printer.status(line);
    }
    printer.status(&format!(
        "{} images locked and pinned, {locks_changed} lockfiles and {files_changed} definition file{} changed ({elapsed:.2}s)",
        jobs.len(),
        plural(files_changed)
    ));
    Ok(Outcome::Clean)
}

/// Exit 2 naming every place a definition pins one of the named packages:
/// re-locking cannot move it.
fn refuse_pinned(
    opts: &Opts,
    args: &UpdateArgs,
    overrides: &BTreeMap<String, String>,
) -> anyhow::Result<()> {
    let (config, images) = select(&opts.global, &args.paths, overrides)?;
    let config = crate::cli::rewrite::lock_config(config)?;
    let mut lines = Vec::new();
    let mut names = BTreeSet::new();
    for image in &images {
        let (definition, inputs) = load_image(image)?;
        let lock = LockedImage::read(&config.lock_path(&image.name)).ok();
        for pin in pinned_specs(&definition, &inputs, &args.packages) {
            // A pin `rewrite` wrote is not the definition's: the lock keeps
            // the request it was made from, and that moves.
            let asked = |r: &String| r == &pin.spec || r.strip_prefix("pip: ") == Some(&pin.spec);
            if let Some(lock) = &lock
                && !lock.steps.iter().any(|s| s.requested.iter().any(asked))
            {
                continue;
            }
            let mut at = pin.location.clone();
            at.path = PathBuf::from(display_path(&at.path));
            lines.push(format!("  {at}: `{}`", pin.spec));
            names.insert(pin.name);
        }
    }
    if lines.is_empty() {
        return Ok(());
    }
    lines.dedup();
    let names: Vec<String> = names.into_iter().map(|n| format!("`{n}`")).collect();
    anyhow::bail!(
        "cannot update {}: the definition pins {} to one version, so re-locking cannot move {}\n{}\nhint: loosen or change the pin (`name>=…`, or the new version), then run `imagelock update` again; nothing was written",
        names.join(", "),
        if names.len() == 1 { "it" } else { "them" },
        if names.len() == 1 { "it" } else { "them" },
        lines.join("\n")
    )
}

/// `image `x`: numpy 1.26.3 → 1.26.4` for each named package whose versions
/// changed, `… stays at …` for one that did not.
fn package_moves(
    image: &str,
    packages: &[String],
    before: Option<&LockedImage>,
    after: &LockedImage,
) -> Vec<String> {
    let normal = |n: &str| n.to_ascii_lowercase().replace(['_', '.'], "-");
    let versions = |lock: Option<&LockedImage>, name: &str| -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for step in lock.iter().flat_map(|l| &l.steps) {
            for p in &step.pypi {
                if normal(p.name.as_str()) == name {
                    out.insert(
                        p.version
                            .as_ref()
                            .map_or_else(|| "(direct)".to_string(), |v| v.as_str().to_string()),
                    );
                }
            }
            for p in &step.conda {
                if normal(p.name.as_str()) == name {
                    out.insert(p.version.as_str().to_string());
                }
            }
            for p in &step.apt {
                if normal(p.name.as_str()) == name {
                    out.insert(p.version.as_str().to_string());
                }
            }
        }
        out
    };
    let join = |v: &BTreeSet<String>| v.iter().cloned().collect::<Vec<_>>().join(", ");
    let mut out = Vec::new();
    for name in packages {
        let name = normal(name);
        let old = versions(before, &name);
        let new = versions(Some(after), &name);
        if new.is_empty() && old.is_empty() {
            continue;
        }
        if old == new {
            out.push(format!(
                "image `{image}`: {name} stays at {} (the newest that fits)",
                join(&new)
            ));
        } else if old.is_empty() {
            out.push(format!("image `{image}`: {name} locked at {}", join(&new)));
        } else if new.is_empty() {
            out.push(format!("image `{image}`: {name} {} → removed", join(&old)));
        } else {
            out.push(format!(
                "image `{image}`: {name} {} → {}",
                join(&old),
                join(&new)
            ));
        }
    }
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

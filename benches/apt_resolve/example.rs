//! `apt_resolve`: resolve one apt command against a root filesystem's apt
//! and dpkg state and the live archives its sources name, and print what
//! apt-get would do, one line per package (`Inst`/`Remv`/`Keep` name arch
//! version), for `benches/apt_vs_apt_get.py` to compare with
//! `apt-get install -s`.
//!
//!     cargo run --release --example apt_resolve -- --root ROOT [--arch amd64]
//!         [--mirror FROM=TO]… [--cache DIR [--no-parsed-cache]] [--now EPOCH]
//!         COMMAND ARGS…
//!
//! `--cache DIR` keeps by-hash indexes and their parsed form (as freeze
//! does); `--no-parsed-cache` keeps only the by-hash files (every index is
//! hashed, decompressed and parsed again, as before the parsed form).
//!
//! COMMAND is `install`, `upgrade`, `dist-upgrade`, `remove`, `purge` or
//! `autoremove`; ARGS may hold `-t REL`, `--no-install-recommends`,
//! `--install-recommends`, `--auto-remove`, `-y` and package words.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use imagelock::image::dpkg::{is_apt_state_file, read_apt_state};
use imagelock::resolve::apt::{AptMirrors, CachedTransport, fetch_sources};
use imagelock::solve::apt::{AptAction, AptCommand, AptPackageSpec, AptRequest, Universe, resolve};

fn read_root(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for dir in [
        "etc/apt",
        "etc/apt/sources.list.d",
        "etc/apt/preferences.d",
        "etc/apt/apt.conf.d",
        "etc/apt/trusted.gpg.d",
        "etc/apt/keyrings",
        "usr/share/keyrings",
        "var/lib/dpkg",
        "var/lib/dpkg/status.d",
        "var/lib/apt",
    ] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for e in entries.flatten() {
            let abs = format!("/{dir}/{}", e.file_name().to_string_lossy());
            if is_apt_state_file(&abs)
                && let Ok(meta) = std::fs::metadata(e.path())
                && meta.is_file()
                && let Ok(bytes) = std::fs::read(e.path())
            {
                files.insert(abs, bytes);
            }
        }
    }
    files
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut root = None;
    let mut arch = "amd64".to_string();
    let mut mirrors = Vec::new();
    let mut cache = None;
    let mut no_parsed = false;
    let mut now = jiff::Timestamp::now().as_second();
    let mut rest = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--root" => root = args.next(),
            "--arch" => arch = args.next().unwrap_or_default(),
            "--mirror" => {
                let m = args.next().unwrap_or_default();
                let (f, t) = m
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--mirror takes FROM=TO"))?;
                mirrors.push((f.to_string(), t.to_string()));
            }
            "--cache" => cache = args.next(),
            "--no-parsed-cache" => no_parsed = true,
            "--now" => now = args.next().unwrap_or_default().parse()?,
            _ => rest.push(a),
        }
    }
    let root = root.ok_or_else(|| anyhow::anyhow!("--root is required"))?;
    let mut words = rest.into_iter();
    let verb = words
        .next()
        .ok_or_else(|| anyhow::anyhow!("no apt command"))?;
    let mut specs = Vec::new();
    let mut command = AptCommand::new(AptRequest::Autoremove);
    let mut words = words.peekable();
    while let Some(w) = words.next() {
        match w.as_str() {
            "-y" | "-q" | "-qq" | "-s" | "--yes" | "--assume-yes" => {}
            "-t" | "--target-release" => command.target_release = words.next(),
            "--no-install-recommends" => command.install_recommends = Some(false),
            "--install-recommends" => command.install_recommends = Some(true),
            "--auto-remove" | "--autoremove" => command.auto_remove = true,
            w if w.starts_with('-') => anyhow::bail!("unsupported option `{w}`"),
            w => specs.push(AptPackageSpec::parse(w)?),
        }
    }
    command.request = match verb.as_str() {
        "install" => AptRequest::Install(specs),
        "upgrade" => AptRequest::Upgrade,
        "dist-upgrade" | "full-upgrade" => AptRequest::DistUpgrade,
        "remove" => AptRequest::Remove {
            packages: specs,
            purge: false,
        },
        "purge" => AptRequest::Remove {
            packages: specs,
            purge: true,
        },
        "autoremove" => AptRequest::Autoremove,
        other => anyhow::bail!("unsupported apt command `{other}`"),
    };

    let t0 = Instant::now();
    let state = read_apt_state(&read_root(Path::new(&root)))?;
    let mut archs = vec![arch.clone()];
    archs.extend(
        state
            .options
            .foreign_architectures
            .iter()
            .filter(|a| **a != arch)
            .cloned(),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let client = imagelock::resolve::http::HttpClient::new(
        imagelock::resolve::http::HttpOptions::default(),
    )?;
    let mirrors = AptMirrors::new(mirrors);
    let fetched = rt.block_on(async {
        match &cache {
            Some(dir) => {
                let mut t = CachedTransport::new(client, dir.into());
                if no_parsed {
                    t.parsed = None;
                }
                fetch_sources(&t, &mirrors, &state.sources, &archs, &state.keys, now).await
            }
            None => {
                fetch_sources(&client, &mirrors, &state.sources, &archs, &state.keys, now).await
            }
        }
    })?;
    let t_fetch = t0.elapsed();
    let mut options = state.options.clone();
    options.foreign_architectures.retain(|a| *a != arch);
    let indexes = fetched.into_iter().flat_map(|f| f.indexes).collect();
    let universe = Universe::new(&arch, &state.installed, indexes, &state.pins, options)?;
    let t_universe = t0.elapsed();
    let outcome = resolve(&universe, &command, &state.auto_installed)?;
    let t_solve = t0.elapsed();
    for r in &outcome.records {
        let tag = match r.action {
            AptAction::Install | AptAction::Upgrade | AptAction::Downgrade => "Inst",
            AptAction::Remove | AptAction::Purge => "Remv",
            AptAction::Keep => "Keep",
        };
        println!(
            "{tag} {} {} {} [{}]",
            r.name, r.architecture, r.version, r.reason
        );
    }
    if outcome.used_problem_resolver {
        println!("# problem resolver approximated");
    }
    eprintln!(
        "fetch+verify {:.2}s, universe {:.2}s, solve {:.3}s",
        t_fetch.as_secs_f64(),
        (t_universe - t_fetch).as_secs_f64(),
        (t_solve - t_universe).as_secs_f64()
    );
    Ok(())
}

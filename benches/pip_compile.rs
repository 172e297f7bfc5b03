//! Resolves requirements like `uv pip compile` and prints `name==version`
//! lines (sorted) to stdout, timing and request counts to stderr.
//!
//! cargo bench --bench pip_compile -- --python-version 3.11 --platform linux/amd64 \
//!     --glibc 2.28 [--index-url URL] [--cache-dir DIR] [--offline] [--pre] \
//!     [--requests N] REQUIREMENT…
//!
//! `--requests N`: requests in flight per host, and the index client's
//! limit twice that (by default 8 and 16, as the library's defaults).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::sync::Arc;
use std::time::Instant;

use imagelock::resolve::pypi::index_urls::Sourced;
use imagelock::resolve::pypi::{
    self, Fetcher, IndexClient, IndexUrls, PipLevels, PipSettings, PypiProgress,
};
use imagelock::solve::python::{Libc, ResolveOptions, ResolveRequest, TargetEnv};

/// Prints when each sdist build starts and ends, from the start of the run.
struct Timeline(Instant);

impl PypiProgress for Timeline {
    fn building_sdist(&self, filename: &str) {
        eprintln!(
            "{:7.3}s building {filename}",
            self.0.elapsed().as_secs_f64()
        );
    }

    fn built_sdist(&self, filename: &str, elapsed: std::time::Duration, ok: bool) {
        eprintln!(
            "{:7.3}s {} {filename} ({:.3}s)",
            self.0.elapsed().as_secs_f64(),
            if ok { "built" } else { "failed" },
            elapsed.as_secs_f64()
        );
    }

    fn building_with_pip(&self, filename: &str, why: &str) {
        eprintln!(
            "{:7.3}s pip builds the environment of {filename}: {why}",
            self.0.elapsed().as_secs_f64()
        );
    }
}

fn main() -> anyhow::Result<()> {
    let start = Instant::now();
    let mut args = std::env::args().skip(1);
    let (mut python, mut platform, mut glibc, mut musl) =
        (None, "linux/amd64".to_string(), None, None);
    let (mut index, mut cache, mut offline, mut pre, mut reqs) =
        (None, None, false, false, Vec::new());
    let mut exclude_newer = None;
    let mut requests: Option<usize> = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--python-version" => python = args.next(),
            "--platform" => platform = args.next().unwrap_or_default(),
            "--glibc" => glibc = args.next(),
            "--musl" => musl = args.next(),
            "--index-url" => index = args.next(),
            "--cache-dir" => cache = args.next(),
            "--exclude-newer" => exclude_newer = args.next(),
            "--offline" => offline = true,
            "--pre" => pre = true,
            "--requests" => requests = args.next().and_then(|n| n.parse().ok()),
            "--bench" => {}
            _ => reqs.push(a),
        }
    }
    let libc = match (glibc, musl) {
        (Some(g), _) => Some(Libc::glibc(&g)?),
        (None, Some(m)) => Some(Libc::musl(&m)?),
        _ => None,
    };
    let target = Arc::new(TargetEnv::cpython(python.as_deref(), &platform, libc)?);
    let env = |k: &str| std::env::var(k).ok();
    let urls = IndexUrls::of(
        &PipLevels {
            step: PipSettings {
                index_url: index.map(|u| Sourced::new(u, "--index-url")),
                ..PipSettings::default()
            },
            host: PipSettings::from_host(&env)?,
            ..PipLevels::default()
        }
        .effective(),
    );
    let cache = cache.map(Into::into).or_else(|| {
        std::env::var_os("IMAGELOCK_CACHE_DIR").map(|d| std::path::PathBuf::from(d).join("pypi"))
    });
    let fetch = match requests {
        None => Fetcher::new(cache, offline, urls.logins(&env))?,
        Some(n) => {
            let http =
                imagelock::resolve::http::HttpClient::new(imagelock::resolve::http::HttpOptions {
                    per_host: n,
                    ..Default::default()
                })?;
            Fetcher::with_client(http, cache, offline, urls.logins(&env))
                .with_limit(Arc::new(tokio::sync::Semaphore::new(2 * n)))
        }
    };
    let client = Arc::new(
        IndexClient::new(fetch, &urls.urls, false)?.with_progress(Some(Arc::new(Timeline(start)))),
    );
    let request = ResolveRequest {
        requirements: reqs,
        options: ResolveOptions {
            pre,
            exclude_newer,
            ..ResolveOptions::default()
        },
        ..ResolveRequest::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let out = rt.block_on(pypi::resolve(client.clone(), target, request));
    let elapsed = start.elapsed();
    let stats = client.stats();
    eprintln!(
        "resolved in {:.3}s ({} requests, {} not modified, {} fresh from cache)",
        elapsed.as_secs_f64(),
        stats.requests,
        stats.not_modified,
        stats.fresh_hits
    );
    match out {
        Ok(pins) => {
            let mut lines: Vec<String> = pins
                .iter()
                .map(|p| {
                    format!(
                        "{}=={}",
                        p.name,
                        p.version
                            .as_ref()
                            .map_or("?".to_string(), ToString::to_string)
                    )
                })
                .collect();
            lines.sort();
            for l in lines {
                println!("{l}");
            }
            Ok(())
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}

//! The soak (issue 16): freezes of the examples against the real
//! distribution registry through the fault proxy, which injects a random
//! fault (reset, truncate, 429, 5xx, hang, slow body, corrupt byte) on 10 %
//! of requests. Every run must end with the locks of a clean run, or exit 2
//! with the lockfiles directory exactly as it was before the run: never a
//! partial, different or leftover file.
//!
//! `soak_short` (20 runs of one image) is part of the suite;
//! `soak_200` (200 runs of every example) runs on demand:
//! `cargo test --test it soak::soak_200 -- --ignored --nocapture`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::common::registry::{AuthKind, Fault, FaultProxy, server};
use crate::common::{fixture, tempdir};

/// Every file of a directory, by name.
type Snapshot = BTreeMap<String, Vec<u8>>;

fn snapshot(dir: &Path) -> Snapshot {
    let mut out = Snapshot::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            out.insert(name, std::fs::read(e.path()).unwrap_or_default());
        }
    }
    out
}

fn restore(dir: &Path, state: &Snapshot) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    for (name, bytes) in state {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// The world's images, pushed once to the registry under `soak/<host>/…`.
pub(crate) fn push_world(registry: &crate::common::registry::RegistryServer) {
    static PUSHED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    PUSHED.get_or_init(|| {
        let root = fixture("world/images");
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            let index = dir.join("index.json");
            if index.is_file() {
                let v: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(&index).unwrap()).unwrap();
                let repo = dir
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                for m in v["manifests"].as_array().unwrap() {
                    if let Some(tag) =
                        m["annotations"]["org.opencontainers.image.ref.name"].as_str()
                    {
                        registry.push(&dir, tag, &format!("soak/{repo}:{tag}"), false);
                    }
                }
                continue;
            }
            for e in std::fs::read_dir(&dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                }
            }
        }
    });
}

/// How the runs ended.
#[derive(Debug, Default)]
struct Counts {
    identical: usize,
    /// Exit 2 with the lockfiles untouched, by cause.
    refused: BTreeMap<String, usize>,
    /// Anything else: a different or partial lock, a leftover file, another
    /// exit code. Must stay empty.
    bad: Vec<String>,
    faults: BTreeMap<&'static str, usize>,
}

/// The cause of an exit 2, from the first line of its message.
fn cause(err: &str) -> String {
    let first = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default();
    let kinds = [
        ("timed out", "timed out"),
        ("answered 429", "429"),
        ("does not match its digest", "corrupt (digest mismatch)"),
        ("corrupt gzip", "corrupt layer"),
        ("corrupt deflate", "corrupt layer"),
        ("could not be resumed", "cut, not resumed"),
        ("cannot connect", "cannot connect"),
        ("answered 5", "5xx"),
        ("error decoding", "body cut"),
        ("connection", "connection"),
    ];
    kinds
        .iter()
        .find(|(needle, _)| first.contains(needle))
        .map_or_else(|| format!("other: {first}"), |(_, k)| (*k).to_string())
}

fn soak(runs: usize, images: &[&str], seed: u64) -> Option<Counts> {
    let registry = server(AuthKind::Open)?;
    push_world(registry);
    let proxy = FaultProxy::start(&registry.addr);
    let dir = tempdir();
    for sub in ["examples", "world"] {
        crate::common::copy_dir(&fixture(sub), &dir.path().join("fixtures").join(sub));
    }
    let config = dir.path().join("fixtures/examples/imagelock.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    for host in ["docker.io", "nvcr.io", "quay.io"] {
        let from = format!("location = \"oci:../world/images/{host}\"");
        assert!(text.contains(&from), "{from}");
        text = text.replace(
            &from,
            &format!("location = \"{}/soak/{host}\"\ninsecure = true", proxy.addr),
        );
    }
    std::fs::write(&config, text).unwrap();
    let locks = dir.path().join("lockfiles");
    let cache = dir.path().join("cache");
    let freeze = || {
        crate::common::run(
            crate::common::imagelock()
                .current_dir(dir.path())
                .env("IMAGELOCK_CACHE_DIR", &cache)
                .args([
                    "--config",
                    "fixtures/examples/imagelock.toml",
                    "--timeout",
                    "1",
                    "freeze",
                    "--",
                ])
                .args(images),
        )
    };
    // The clean run.
    restore(&locks, &Snapshot::new());
    let (code, _, err) = freeze();
    assert_eq!(code, 0, "the clean run: {err}");
    let clean = snapshot(&locks);
    assert!(!clean.is_empty());

    let faults = vec![
        Fault::Drop,
        Fault::Truncate,
        Fault::TooManyRequests(1),
        Fault::ServerError,
        Fault::Hang(Duration::from_secs(3)),
        Fault::SlowBody(Duration::from_millis(20)),
        Fault::Corrupt,
    ];
    let mut counts = Counts::default();
    for run in 0..runs {
        // Half the runs start with no locks, half with the clean ones; every
        // run with a cold cache, so the registry is asked.
        let before = if run % 2 == 0 {
            Snapshot::new()
        } else {
            clean.clone()
        };
        restore(&locks, &before);
        let _ = std::fs::remove_dir_all(&cache);
        proxy.random_faults(10, faults.clone(), seed.wrapping_add(run as u64 * 7919));
        let (code, _, err) = freeze();
        proxy.calm();
        let after = snapshot(&locks);
        match code {
            0 if after == clean => counts.identical += 1,
            2 if after == before => *counts.refused.entry(cause(&err)).or_default() += 1,
            _ => counts.bad.push(format!(
                "run {run}: exit {code}, locks {}:\n{err}",
                if after == clean {
                    "as the clean run"
                } else if after == before {
                    "as before"
                } else {
                    "DIFFERENT"
                }
            )),
        }
    }
    counts.faults = proxy.injected.lock().unwrap().clone();
    Some(counts)
}

fn report(counts: &Counts) {
    eprintln!(
        "soak: {} identical, exit 2: {:?}, other: {}; faults injected: {:?}",
        counts.identical,
        counts.refused,
        counts.bad.len(),
        counts.faults
    );
}

#[test]
fn soak_short() {
    let Some(counts) = soak(20, &["fixtures/examples/driver/Dockerfile"], 20_261_207) else {
        return;
    };
    report(&counts);
    assert!(counts.bad.is_empty(), "{:#?}", counts.bad);
    assert!(
        counts.faults.values().sum::<usize>() > 0,
        "faults were injected"
    );
    assert!(counts.identical > 0, "{counts:?}");
}

#[test]
#[ignore = "the 200-run soak; run on demand"]
fn soak_200() {
    let Some(counts) = soak(200, &[], 1516) else {
        return;
    };
    report(&counts);
    assert!(counts.bad.is_empty(), "{:#?}", counts.bad);
}

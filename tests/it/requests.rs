//! Requests (issue 25): one request per distinct document per run, counted
//! at a proxy in front of the real distribution registry the world's images
//! are pushed to. N copies of an image cost the requests of one; a base
//! whose tag has not moved costs `freeze --update-base` one `HEAD`.

use std::path::Path;

use crate::common::registry::{AuthKind, FaultProxy, SeenRequest, server};
use crate::common::{fixture, tempdir};

/// The examples and the world in `dir`, with the registries served by the
/// proxy, and `copies - 1` more copies of the driver image
/// (`driver-2`, …), each an image of its own with its own lock.
fn project(dir: &Path, proxy: &FaultProxy, copies: usize) {
    for sub in ["examples", "world"] {
        crate::common::copy_dir(&fixture(sub), &dir.join("fixtures").join(sub));
    }
    let config = dir.join("fixtures/examples/imagelock.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    for host in ["docker.io", "nvcr.io", "quay.io"] {
        let from = format!("location = \"oci:../world/images/{host}\"");
        assert!(text.contains(&from), "{from}");
        text = text.replace(
            &from,
            &format!("location = \"{}/soak/{host}\"\ninsecure = true", proxy.addr),
        );
    }
    for i in 2..=copies {
        let examples = dir.join("fixtures/examples");
        crate::common::copy_dir(
            &examples.join("driver"),
            &examples.join(format!("driver-{i}")),
        );
        text.push_str(&format!(
            "\n[images.driver-{i}]\nfile = \"driver-{i}/Dockerfile\"\n"
        ));
    }
    std::fs::write(&config, text).unwrap();
}

fn freeze(dir: &Path, extra: &[&str], images: &[String]) -> (i32, String, String) {
    crate::common::run(
        crate::common::imagelock()
            .current_dir(dir)
            .env("IMAGELOCK_CACHE_DIR", dir.join("cache"))
            .args([
                "--config",
                "fixtures/examples/imagelock.toml",
                "-v",
                "freeze",
            ])
            .args(extra)
            .arg("--")
            .args(images),
    )
}

/// The requests the proxy saw since `from`, as `METHOD path` lines.
fn seen_since(proxy: &FaultProxy, from: usize) -> Vec<String> {
    let seen: Vec<SeenRequest> = proxy.seen.lock().unwrap()[from..].to_vec();
    let mut lines: Vec<String> = seen
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    lines.sort();
    lines
}

fn driver_files(copies: usize) -> Vec<String> {
    (1..=copies)
        .map(|i| match i {
            1 => "fixtures/examples/driver/Dockerfile".to_string(),
            i => format!("fixtures/examples/driver-{i}/Dockerfile"),
        })
        .collect()
}

/// Guards issue 25's first point: the same base in three images is asked
/// for as often as in one (its tag once, each platform manifest and config
/// once, each layer once), and no document is asked for twice; `-v` says
/// how many requests the run made.
#[test]
fn copies_of_an_image_make_the_requests_of_one() {
    let Some(registry) = server(AuthKind::Open) else {
        return;
    };
    crate::soak::push_world(registry);
    let proxy = FaultProxy::start(&registry.addr);
    let mut counts = Vec::new();
    for copies in [1, 3] {
        let dir = tempdir();
        project(dir.path(), &proxy, copies);
        let from = proxy.seen.lock().unwrap().len();
        let (code, _, err) = freeze(dir.path(), &[], &driver_files(copies));
        assert_eq!(code, 0, "{err}");
        let seen = seen_since(&proxy, from);
        let mut distinct = seen.clone();
        distinct.dedup();
        assert_eq!(seen, distinct, "a document asked for twice: {seen:#?}");
        // `-v` counts them (the registry's pings aside: an `insecure`
        // registry is tried with TLS first, which the proxy cannot read).
        let documents = seen.iter().filter(|r| *r != "GET /v2/").count();
        let manifests = seen.iter().filter(|r| r.contains("/manifests/")).count();
        assert!(
            err.contains(&format!(
                "registry: {manifests} manifest, {} blob,",
                documents - manifests
            )),
            "-v counts the requests: {err}\n{seen:#?}"
        );
        counts.push(seen);
    }
    assert!(!counts[0].is_empty());
    assert_eq!(counts[0], counts[1], "3 copies ask for what 1 asks for");
}

/// Guards `freeze --update-base` (and drift, which resolves the same way):
/// a tag that still points to the pinned digest is asked with one `HEAD`
/// and nothing else; a warm run sends no `GET` to the registry.
#[test]
fn update_base_asks_an_unmoved_tag_with_head() {
    let Some(registry) = server(AuthKind::Open) else {
        return;
    };
    crate::soak::push_world(registry);
    let proxy = FaultProxy::start(&registry.addr);
    let dir = tempdir();
    project(dir.path(), &proxy, 2);
    let images = driver_files(2);
    let (code, _, err) = freeze(dir.path(), &[], &images);
    assert_eq!(code, 0, "{err}");
    let locks = dir.path().join("lockfiles");
    let before = std::fs::read(locks.join("driver.lock")).unwrap();

    let from = proxy.seen.lock().unwrap().len();
    let (code, _, err) = freeze(dir.path(), &["--update-base"], &images);
    assert_eq!(code, 0, "{err}");
    let seen = seen_since(&proxy, from);
    assert_eq!(
        seen,
        [
            "GET /v2/",
            "HEAD /v2/soak/docker.io/library/python/manifests/3.11-slim"
        ],
        "one HEAD for the one tag of both images, no GET"
    );
    assert_eq!(std::fs::read(locks.join("driver.lock")).unwrap(), before);
}

/// Guards issue 25's second point: a warm freeze of an image whose inputs
/// did not change keeps its lock byte for byte and asks nothing of the
/// index or the registry (no resolution, no request for what the lock
/// pins by hash), giving the same warnings; a changed input, or a changed
/// setting the input hash does not cover, is resolved again, without
/// asking again for the PEP 658 metadata files the cache holds by hash.
#[test]
fn a_warm_freeze_with_unchanged_inputs_asks_nothing() {
    use crate::common::http::StaticServer;
    let Some(registry) = server(AuthKind::Open) else {
        return;
    };
    registry.push(
        &fixture("world/images/docker.io/library/python"),
        "3.11-slim",
        "warm/python:3.11-slim",
        false,
    );
    let proxy = FaultProxy::start(&registry.addr);
    let index = StaticServer::start(fixture("world/pypi"));
    let dir = tempdir();
    let root = dir.path();
    std::fs::create_dir_all(root.join("app")).unwrap();
    let dockerfile = |extra: &str| {
        std::fs::write(
            root.join("app/Dockerfile"),
            format!(
                "FROM {}/warm/python:3.11-slim\nRUN pip install --no-cache-dir requests{extra}\nRUN curl -fsSL https://example.invalid/install.sh | sh\n",
                proxy.addr
            ),
        )
        .unwrap();
    };
    let config = |platforms: &str| {
        std::fs::write(
            root.join("imagelock.toml"),
            format!(
                "platforms = [{platforms}]\n[images.app]\nfile = \"app/Dockerfile\"\n[pypi]\nindex-url = \"{}/simple\"\n",
                index.url()
            ),
        )
        .unwrap();
    };
    dockerfile("");
    config("\"linux/amd64\", \"linux/arm64\"");
    let freeze = || {
        crate::common::run(
            crate::common::imagelock()
                .current_dir(root)
                .env("IMAGELOCK_CACHE_DIR", root.join("cache"))
                .args(["-v", "freeze"]),
        )
    };
    let warnings = |err: &str| -> Vec<String> {
        err.lines()
            .filter(|l| l.contains("warning"))
            .map(str::to_string)
            .collect()
    };
    let lock = root.join("lockfiles/app.lock");
    let (code, _, cold_err) = freeze();
    assert_eq!(code, 0, "{cold_err}");
    let cold = std::fs::read(&lock).unwrap();
    assert!(!warnings(&cold_err).is_empty(), "{cold_err}");
    let metadata_files: Vec<String> = index
        .seen()
        .into_iter()
        .filter(|r| r.path.ends_with(".metadata"))
        .map(|r| r.path)
        .collect();
    assert!(!metadata_files.is_empty(), "{:#?}", index.seen());

    index.reset();
    let from = proxy.seen.lock().unwrap().len();
    let (code, _, err) = freeze();
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(&lock).unwrap(), cold, "kept byte for byte");
    assert!(index.seen().is_empty(), "{:#?}", index.seen());
    assert!(
        seen_since(&proxy, from).is_empty(),
        "{:#?}",
        seen_since(&proxy, from)
    );
    assert!(err.contains("requests: 0 "), "{err}");
    assert!(err.contains("0 lockfiles changed"), "{err}");
    assert!(
        err.contains("app: lock current, kept (1 of 1 images done)"),
        "{err}"
    );
    assert_eq!(warnings(&err), warnings(&cold_err), "the same warnings");

    // A changed input is resolved again.
    dockerfile(" 'pyyaml>=6'");
    let (code, _, err) = freeze();
    assert_eq!(code, 0, "{err}");
    assert!(!index.seen().is_empty());
    // PEP 658 metadata whose hash the index states is content-addressed:
    // what the cache holds is not asked for again.
    let again: Vec<String> = index
        .seen()
        .into_iter()
        .map(|r| r.path)
        .filter(|p| metadata_files.contains(p))
        .collect();
    assert!(again.is_empty(), "asked again: {again:#?}");
    let text = std::fs::read_to_string(&lock).unwrap();
    assert!(text.contains("pyyaml"), "{text}");

    // So is a changed setting (one platform instead of two).
    config("\"linux/amd64\"");
    let before = std::fs::read(&lock).unwrap();
    let (code, _, err) = freeze();
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("1 lockfiles changed"), "{err}");
    assert_ne!(std::fs::read(&lock).unwrap(), before);
}

/// `copies` copies of every example image in `dir` (each copy's images
/// renamed `<image>-<i>` in a directory `c<i>/` of their own, a copy's
/// notebook built from its own base-notebook), with the registries served
/// by the proxy. One copy is the examples as they are.
fn examples_copies(dir: &Path, proxy: &FaultProxy, copies: usize) {
    project(dir, proxy, 1);
    let examples = dir.join("fixtures/examples");
    let config = examples.join("imagelock.toml");
    let mut doc: toml_edit::DocumentMut =
        std::fs::read_to_string(&config).unwrap().parse().unwrap();
    let originals: Vec<(String, toml_edit::Item)> = doc["images"]
        .as_table()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let dirs = [
        "driver",
        "longqc",
        "notebook-stack",
        "summation",
        "workbench",
    ];
    for i in 2..=copies {
        let copy = examples.join(format!("c{i}"));
        for d in dirs {
            crate::common::copy_dir(&examples.join(d), &copy.join(d));
        }
        let derived = copy.join("notebook-stack/scipy-ml-notebook/Dockerfile");
        let text = std::fs::read_to_string(&derived).unwrap();
        assert!(text.contains("base-notebook:2026.11-d02157a"));
        std::fs::write(
            &derived,
            text.replace("base-notebook:", &format!("base-notebook-{i}:")),
        )
        .unwrap();
        for (name, item) in &originals {
            let mut item = item.clone();
            let file = item["file"].as_str().unwrap().to_string();
            item["file"] = toml_edit::value(format!("c{i}/{file}"));
            if let Some(r) = item.get("ref").and_then(|r| r.as_str()).map(str::to_string) {
                item["ref"] =
                    toml_edit::value(r.replace("base-notebook:", &format!("base-notebook-{i}:")));
            }
            doc["images"][format!("{name}-{i}").as_str()] = item;
        }
    }
    std::fs::write(&config, doc.to_string()).unwrap();
}

/// Requests per image against the minimum: a cold freeze of `N` copies of
/// the examples (8 images each) through the proxy, printing the registry
/// requests seen (and how many distinct ones: the minimum, as every
/// document is needed once) and the run's `-v` count; then a warm freeze.
/// The binary is the test build unless `IMAGELOCK_BENCH_BIN` names one;
/// `IMAGELOCK_BENCH_COPIES` the copies (default `1,10,50,200`).
///
/// `cargo test --test it -- --ignored --nocapture bench_requests_per_image`
#[test]
#[ignore = "benchmark"]
fn bench_requests_per_image() {
    let Some(registry) = server(AuthKind::Open) else {
        return;
    };
    crate::soak::push_world(registry);
    let proxy = FaultProxy::start(&registry.addr);
    let bin = std::env::var("IMAGELOCK_BENCH_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_imagelock").to_string());
    let copies: Vec<usize> = std::env::var("IMAGELOCK_BENCH_COPIES")
        .unwrap_or_else(|_| "1,10,50,200".to_string())
        .split(',')
        .map(|c| c.trim().parse().unwrap())
        .collect();
    println!(
        "| images | run | seconds | registry requests | distinct (minimum) | per image | `-v` says |"
    );
    println!("|---:|---|---:|---:|---:|---:|---|");
    for n in copies {
        let dir = tempdir();
        examples_copies(dir.path(), &proxy, n);
        for run in ["cold", "warm"] {
            let from = proxy.seen.lock().unwrap().len();
            let started = std::time::Instant::now();
            let (code, _, err) = crate::common::run(
                std::process::Command::new(&bin)
                    .current_dir(dir.path())
                    .env("IMAGELOCK_CACHE_DIR", dir.path().join("cache"))
                    .args([
                        "--config",
                        "fixtures/examples/imagelock.toml",
                        "-v",
                        "freeze",
                    ]),
            );
            let secs = started.elapsed().as_secs_f64();
            assert_eq!(code, 0, "{err}");
            let seen = seen_since(&proxy, from);
            let mut distinct = seen.clone();
            distinct.dedup();
            let said = err
                .lines()
                .find(|l| l.contains("requests: "))
                .map(|l| l.trim().to_string())
                .unwrap_or_default();
            println!(
                "| {} | {run} | {secs:.2} | {} | {} | {:.2} | {said} |",
                6 * n,
                seen.len(),
                distinct.len(),
                seen.len() as f64 / (6 * n) as f64
            );
        }
    }
}

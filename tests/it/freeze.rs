//! freeze: orchestration over the embedded world.

use imagelock::config::Config;
use imagelock::freeze::{FreezeOptions, platforms_of, prepare, resolve_bases};
use imagelock::resolve::{Registry, RegistryOptions};

use crate::common::fixture;

fn examples() -> Config {
    Config::load(&fixture("examples/imagelock.toml")).unwrap()
}

fn registry(config: &Config) -> Registry {
    Registry::new(RegistryOptions {
        registries: config.registries.clone(),
        root: config.root.clone(),
        ..RegistryOptions::default()
    })
    .unwrap()
}

#[test]
fn examples_are_prepared_in_build_order() {
    let config = examples();
    let jobs = prepare(&config, &config.images).unwrap();
    let names: Vec<&str> = jobs.iter().map(|j| j.config.name.as_str()).collect();
    let base = names.iter().position(|n| *n == "base-notebook").unwrap();
    let child = names
        .iter()
        .position(|n| *n == "scipy-ml-notebook")
        .unwrap();
    assert!(base < child, "{names:?}");
    let driver = jobs.iter().find(|j| j.config.name == "driver").unwrap();
    // The requirements file the build copies in is an input.
    assert_eq!(driver.inputs.files.len(), 1, "{:?}", driver.inputs.files);
    assert!(driver.inputs.hash().to_string().starts_with("sha256:"));
}

#[tokio::test]
async fn bases_are_pinned_from_the_world_layouts() {
    let config = examples();
    let jobs = prepare(&config, &config.images).unwrap();
    let registry = registry(&config);
    let options = FreezeOptions::default();

    let driver = jobs.iter().find(|j| j.config.name == "driver").unwrap();
    let platforms = platforms_of(driver, &options);
    let r = resolve_bases(&registry, driver, &platforms, &options, &[])
        .await
        .unwrap();
    assert_eq!(r.bases.len(), 1);
    let python = &r.bases[0];
    assert_eq!(python.name, "docker.io/library/python:3.11-slim");
    assert_eq!(python.references, ["python:3.11-slim"]);
    // The index digest `docker pull` shows (see fixtures/world/README.md).
    assert_eq!(
        python.digest,
        "sha256:b0bac9e435e7c26d0740198916fd9c8f34e946db179d7aaf1b27bffce47a6655"
            .parse()
            .unwrap()
    );
    assert_eq!(python.platforms.len(), 2);
    assert!(python.platforms.iter().all(|p| !p.diff_ids.is_empty()));

    let workbench = jobs.iter().find(|j| j.config.name == "workbench").unwrap();
    let platforms = platforms_of(workbench, &options);
    let r = resolve_bases(&registry, workbench, &platforms, &options, &[])
        .await
        .unwrap();
    let names: Vec<&str> = r.bases.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "nvcr.io/nvidia/clara/clara-parabricks:4.6.0-1",
            "quay.io/opendatahub/workbench-images:jupyter-minimal-ubi9-python-3.11-2024a"
        ]
    );
}

#[test]
fn base_images_tell_the_target() {
    use imagelock::freeze::state::{PlatformState, read_base};
    let mut config = examples();
    let cache = crate::common::tempdir();
    config.cache_dir = cache.path().to_path_buf();
    // Bases are read through the registry client, here relocated to the
    // world's `oci:` layouts.
    let client = std::sync::Arc::new(registry(&config));
    let runtime = tokio::runtime::Runtime::new().unwrap();

    let (cat, env) = read_base(
        &config,
        "docker.io/library/python:3.11-slim",
        "linux/arm64",
        None,
        client.clone(),
        runtime.handle().clone(),
    )
    .unwrap();
    let state = PlatformState::from_catalogue("linux/arm64", &cat, &env);
    let libc = state.libc.as_ref().unwrap();
    assert_eq!(libc.1, "2.36");
    let python = state.python_for(None).expect("a python on PATH");
    assert_eq!(python.prefix, "/usr/local");
    assert!(python.version.starts_with("3.11."), "{python:?}");
    assert!(state.dists[&python.site_packages].contains_key("pip"));

    let (cat, env) = read_base(
        &config,
        "docker.io/condaforge/miniforge3:24.3.0-0",
        "linux/amd64",
        None,
        client,
        runtime.handle().clone(),
    )
    .unwrap();
    let state = PlatformState::from_catalogue("linux/amd64", &cat, &env);
    assert_eq!(state.conda_root().as_deref(), Some("/opt/conda"));
    assert_eq!(state.conda_prefix_for(None).as_deref(), Some("/opt/conda"));
    let conda = &state.conda["/opt/conda"];
    assert!(conda.contains_key("mamba") && conda.contains_key("python"));
    let python = state.python_for(None).unwrap();
    assert_eq!(python.prefix, "/opt/conda");
    assert_eq!(python.version, conda["python"].version());
    assert!(state.warnings.is_empty(), "{:?}", state.warnings);
}

/// A copy of the examples and the world in a temporary directory, laid out
/// as in the repository, so tests can write locks and edit definitions.
fn world_copy() -> tempfile::TempDir {
    let dir = crate::common::tempdir();
    std::fs::create_dir_all(dir.path().join("fixtures")).unwrap();
    for sub in ["examples", "world"] {
        let status = std::process::Command::new("cp")
            .arg("-r")
            .arg(fixture(sub))
            .arg(dir.path().join("fixtures").join(sub))
            .status()
            .unwrap();
        assert!(status.success(), "copy {sub}");
    }
    std::fs::create_dir_all(dir.path().join("lockfiles")).unwrap();
    dir
}

fn freeze_in(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    crate::common::run(
        crate::common::imagelock()
            .current_dir(dir)
            .env("IMAGELOCK_CACHE_DIR", dir.join("cache"))
            .args(["--config", "fixtures/examples/imagelock.toml", "freeze"])
            .args(args),
    )
}

/// The committed example locks are what freeze makes today (CI re-checks).
#[test]
fn committed_example_locks_are_current() {
    let cache = crate::common::tempdir();
    let (code, out, err) = crate::common::run(
        crate::common::imagelock()
            .current_dir(crate::common::repo_root())
            .env("IMAGELOCK_CACHE_DIR", cache.path())
            .args([
                "--config",
                "fixtures/examples/imagelock.toml",
                "freeze",
                "--check",
            ]),
    );
    assert_eq!(code, 0, "lockfiles/ is out of date:\n{out}\n{err}");
}

#[test]
fn freeze_writes_locks_then_changes_nothing() {
    let dir = world_copy();
    let (code, _, err) = freeze_in(dir.path(), &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("8 images locked, 8 lockfiles changed"),
        "{err}"
    );
    let first = std::fs::read_to_string(dir.path().join("lockfiles/longqc.lock")).unwrap();
    // Same bytes as the committed lock: nothing depends on the checkout.
    let committed =
        std::fs::read_to_string(crate::common::repo_root().join("lockfiles/longqc.lock")).unwrap();
    assert_eq!(first, committed);
    let (code, _, err) = freeze_in(dir.path(), &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("0 lockfiles changed"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("lockfiles/longqc.lock")).unwrap(),
        first
    );
}

/// A damaged lock, or one of a newer format, is replaced by freeze with a
/// warning (verify's hint says to run freeze; freeze used to fail the same
/// way), and a killed run's temporary files are cleaned up.
#[test]
fn freeze_replaces_a_lock_it_cannot_read() {
    let dir = world_copy();
    let (code, _, err) = freeze_in(dir.path(), &[]);
    assert_eq!(code, 0, "{err}");
    let lock = dir.path().join("lockfiles/longqc.lock");
    let good = std::fs::read_to_string(&lock).unwrap();
    std::fs::write(&lock, "version = 7\n").unwrap();
    let left = dir.path().join("lockfiles/.driver.lock.4294967.0.tmp");
    std::fs::write(&left, "half a lock").unwrap();
    let (code, _, err) = freeze_in(dir.path(), &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("the lock cannot be read; `imagelock freeze` replaces it"),
        "{err}"
    );
    assert!(err.contains(".driver.lock.4294967.0.tmp"), "{err}");
    assert_eq!(std::fs::read_to_string(&lock).unwrap(), good);
    assert!(!left.exists());
}

#[test]
fn dry_run_prints_the_change_and_writes_nothing() {
    let dir = world_copy();
    let (code, out, err) = freeze_in(dir.path(), &["--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("+++ b/"), "{out}");
    assert!(out.contains("+name = \"numpy\""), "a diff of the new locks");
    assert!(!dir.path().join("lockfiles/driver.lock").exists());
    let (code, _, _) = freeze_in(dir.path(), &["--check"]);
    assert_eq!(code, 1, "missing locks are not current");
}

#[test]
fn an_impossible_request_names_image_and_line() {
    let dir = world_copy();
    let file = dir.path().join("fixtures/examples/summation/summation.def");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("pip install numpy", "pip install 'numpy<1'");
    std::fs::write(&file, text).unwrap();
    let (code, _, err) = freeze_in(dir.path(), &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("image `summation`, summation/summation.def:8"),
        "{err}"
    );
    assert!(err.contains("numpy"), "{err}");
    assert!(
        !dir.path().join("lockfiles/driver.lock").exists(),
        "nothing is written when one image fails"
    );
}

/// The whole job against real servers: a base pushed with skopeo to the
/// distribution registry, the recorded index served over HTTP; a second run
/// with a warm cache asks the index only conditionally.
#[test]
fn freeze_against_a_registry_and_an_index_over_http() {
    use crate::common::registry::{AuthKind, server};
    let Some(registry) = server(AuthKind::Open) else {
        return;
    };
    registry.push(
        &fixture("world/images/docker.io/library/python"),
        "3.11-slim",
        "e2e/python:3.11-slim",
        false,
    );
    let index = crate::common::http::StaticServer::start(fixture("world/pypi"));
    let dir = crate::common::tempdir();
    std::fs::create_dir_all(dir.path().join("app")).unwrap();
    std::fs::write(
        dir.path().join("app/Dockerfile"),
        format!(
            "FROM {}/e2e/python:3.11-slim\nRUN pip install --no-cache-dir requests 'pyyaml>=6'\n",
            registry.addr
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("imagelock.toml"),
        format!(
            "platforms = [\"linux/amd64\", \"linux/arm64\"]\n[images.app]\nfile = \"app/Dockerfile\"\n[pypi]\nindex-url = \"{}/simple\"\n",
            index.url()
        ),
    )
    .unwrap();
    let freeze = || {
        crate::common::run(
            crate::common::imagelock()
                .current_dir(dir.path())
                .env("IMAGELOCK_CACHE_DIR", dir.path().join("cache"))
                .arg("freeze"),
        )
    };
    let (code, _, err) = freeze();
    assert_eq!(code, 0, "{err}");
    let lock = imagelock::lock::LockedImage::read(&dir.path().join("lockfiles/app.lock")).unwrap();
    // The pushed index keeps its digest (what `docker pull` shows).
    assert_eq!(
        lock.bases[0].digest,
        "sha256:b0bac9e435e7c26d0740198916fd9c8f34e946db179d7aaf1b27bffce47a6655"
            .parse()
            .unwrap()
    );
    let names: Vec<&str> = lock.steps[0].pypi.iter().map(|p| p.name.as_str()).collect();
    for want in [
        "requests",
        "urllib3",
        "idna",
        "certifi",
        "charset-normalizer",
        "pyyaml",
    ] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    assert!(
        lock.steps[0]
            .pypi
            .iter()
            .all(|p| p.url.starts_with(&index.url()))
    );
    // Wheels differ per platform where they must.
    assert!(
        lock.steps[0]
            .pypi
            .iter()
            .any(|p| p.platforms == ["linux/arm64".parse().unwrap()])
    );

    index.reset();
    let (code, _, err) = freeze();
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("0 lockfiles changed"), "{err}");
    let seen = index.seen();
    assert!(
        seen.iter().all(|s| s.conditional && s.status == 304),
        "a warm run only revalidates: {seen:#?}"
    );
}

/// A re-run keeps locked versions that still fit; `--update` moves only
/// what it names.
#[test]
fn re_runs_keep_locked_versions_until_updated() {
    let dir = world_copy();
    let version = |dir: &std::path::Path| {
        let lock =
            imagelock::lock::LockedImage::read(&dir.join("lockfiles/summation.lock")).unwrap();
        lock.steps[0]
            .pypi
            .iter()
            .find(|p| p.name == "numpy")
            .unwrap()
            .version
            .clone()
            .unwrap()
    };
    // As of October 2026 the newest numpy was 2.5.3.
    let image = "fixtures/examples/summation/summation.def";
    let (code, _, err) = freeze_in(dir.path(), &["--exclude-newer", "2026-10-01", image]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(version(dir.path()), "2.5.3");
    // Without the date, 2.5.5 is newer, but the lock's 2.5.3 still fits.
    let (code, _, err) = freeze_in(dir.path(), &[image]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(version(dir.path()), "2.5.3");
    // Naming it moves it.
    let (code, _, err) = freeze_in(dir.path(), &["--update", "numpy", "--", image]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(version(dir.path()), "2.5.5");
}

/// A warm re-run that keeps the pinned bases does not read them again: it
/// works with the base images gone.
#[test]
fn warm_runs_do_not_read_pinned_bases_again() {
    let dir = world_copy();
    let (code, _, err) = freeze_in(dir.path(), &[]);
    assert_eq!(code, 0, "{err}");
    std::fs::remove_dir_all(dir.path().join("fixtures/world/images")).unwrap();
    let (code, _, err) = freeze_in(dir.path(), &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("0 lockfiles changed"), "{err}");
    // Moving the pins needs the registry again, and says what failed.
    let (code, _, err) = freeze_in(dir.path(), &["--update-base"]);
    assert_eq!(code, 2);
    assert!(err.contains("python"), "{err}");
}

/// Direct URL and VCS requirements in a command and in a requirements
/// file: locked as given (URLs hashed, VCS with a warning), kept as written
/// by rewrite, exported where the format can say them.
#[test]
fn direct_and_vcs_requirements_end_to_end() {
    let files = crate::common::http::StaticServer::start(fixture("pypi-local/files"));
    let wheel = format!("{}/demo_direct-1.0-py3-none-any.whl", files.url());
    let sdist = format!("{}/demo_static-0.5.tar.gz", files.url());
    let vcs = "git+https://git.example.invalid/o/tool@v1.0#egg=tool";
    let dir = world_copy();
    let def = dir.path().join("fixtures/examples/driver/Dockerfile");
    let text = std::fs::read_to_string(&def).unwrap().replace(
        "boto3 luigi pystac-client",
        &format!("'demo-direct @ {wheel}' {vcs}"),
    );
    std::fs::write(&def, text).unwrap();
    let reqs = dir.path().join("fixtures/examples/driver/requirements.txt");
    std::fs::write(&reqs, format!("requests\n{sdist}\n")).unwrap();
    let image = "fixtures/examples/driver/Dockerfile";
    let (code, _, err) = freeze_in(dir.path(), &["--platform", "linux/amd64", image]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("warning:") && err.contains("not a commit id"),
        "{err}"
    );
    let lock =
        imagelock::lock::LockedImage::read(&dir.path().join("lockfiles/driver.lock")).unwrap();
    let all: Vec<&imagelock::lock::PypiPackage> =
        lock.steps.iter().flat_map(|s| s.pypi.iter()).collect();
    let get = |n: &str| *all.iter().find(|p| p.name == n).unwrap();
    assert_eq!(get("demo-direct").source, imagelock::lock::PypiSource::Url);
    assert_eq!(get("demo-direct").url, wheel);
    assert_eq!(
        get("demo-static").requested.as_deref(),
        Some(sdist.as_str())
    );
    assert!(get("demo-static").sha256.is_some());
    assert_eq!(get("tool").source, imagelock::lock::PypiSource::Vcs);
    assert_eq!(get("tool").revision.as_deref(), Some("v1.0"));
    assert_eq!(get("six").required_by, ["demo-static"]);

    let run = |args: &[&str]| {
        crate::common::run(
            crate::common::imagelock()
                .current_dir(dir.path())
                .env("IMAGELOCK_CACHE_DIR", dir.path().join("cache"))
                .args(["--config", "fixtures/examples/imagelock.toml"])
                .args(args),
        )
    };
    let (code, _, err) = run(&["rewrite", image]);
    assert_eq!(code, 0, "{err}");
    let def_text = std::fs::read_to_string(&def).unwrap();
    assert!(
        def_text.contains(&format!("'demo-direct @ {wheel}'")),
        "{def_text}"
    );
    assert!(def_text.contains(vcs), "{def_text}");
    let reqs_text = std::fs::read_to_string(&reqs).unwrap();
    assert_eq!(reqs_text.matches(&sdist).count(), 1, "{reqs_text}");
    assert!(reqs_text.contains("six=="), "{reqs_text}");

    let (code, _, err) = run(&["export", "driver", "--to", "requirements"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("pip refuses VCS and path requirements"),
        "{err}"
    );
    let (code, _, err) = run(&["export", "driver", "--to", "pylock"]);
    assert_eq!(code, 2);
    assert!(err.contains("pylock.toml needs the commit"), "{err}");
}

pub(crate) mod conda_e2e;
mod condarc_e2e;
mod steps_e2e;

/// Benchmark: freeze of all example images with every service over HTTP
/// (the world's images pushed to the distribution registry, its channels
/// and index served by the tests' server), cold and warm, three runs each.
/// `IMAGELOCK_BENCH_BINS` names binaries to compare (`:`-separated; the
/// test build by default) and `IMAGELOCK_BENCH_JOBS` the `--jobs` values.
///
/// `cargo test --test it -- --ignored --nocapture bench_freeze_examples_over_http`
#[test]
#[ignore = "benchmark"]
fn bench_freeze_examples_over_http() {
    use crate::common::registry::{AuthKind, server};
    let Some(registry) = server(AuthKind::Open) else {
        return;
    };
    let images = fixture("world/images");
    for (host_repo, tags) in [
        ("docker.io/library/python", &["3.11-slim", "latest"][..]),
        ("docker.io/condaforge/miniforge3", &["24.3.0-0"]),
        ("nvcr.io/nvidia/clara/clara-parabricks", &["4.6.0-1"]),
        (
            "quay.io/opendatahub/workbench-images",
            &["jupyter-minimal-ubi9-python-3.11-2024a"],
        ),
    ] {
        let repo = host_repo.split_once('/').unwrap().1;
        for tag in tags {
            registry.push(
                &images.join(host_repo),
                tag,
                &format!("{repo}:{tag}"),
                false,
            );
        }
    }
    let channels = crate::common::http::StaticServer::start(fixture("world/conda"));
    let index = crate::common::http::StaticServer::start(fixture("world/pypi"));
    let dir = world_copy();
    let config = std::fs::read_to_string(dir.path().join("fixtures/examples/imagelock.toml"))
        .unwrap()
        .replace("\"../world/conda\"", &format!("\"{}\"", channels.url()))
        .replace(
            "\"../world/pypi/simple\"",
            &format!("\"{}/simple\"", index.url()),
        )
        .replace("oci:../world/images/docker.io", &registry.addr)
        .replace("oci:../world/images/nvcr.io", &registry.addr)
        .replace("oci:../world/images/quay.io", &registry.addr);
    std::fs::write(dir.path().join("fixtures/examples/http.toml"), config).unwrap();

    let bins: Vec<String> = std::env::var("IMAGELOCK_BENCH_BINS").map_or_else(
        |_| vec![env!("CARGO_BIN_EXE_imagelock").to_string()],
        |v| v.split(':').map(str::to_string).collect(),
    );
    let jobs: Vec<String> = std::env::var("IMAGELOCK_BENCH_JOBS").map_or_else(
        |_| vec![String::new()],
        |v| v.split(',').map(str::to_string).collect(),
    );
    let cache = dir.path().join("cache");
    println!("| binary | --jobs | run | seconds | index+channel requests (304) |");
    println!("|---|---|---|---|---|");
    for bin in &bins {
        for j in &jobs {
            for (kind, fresh) in [("cold", true), ("cold", true), ("cold", true)]
                .into_iter()
                .chain([("warm", false); 3])
            {
                if fresh {
                    let _ = std::fs::remove_dir_all(&cache);
                    let _ = std::fs::remove_dir_all(dir.path().join("lockfiles"));
                    std::fs::create_dir_all(dir.path().join("lockfiles")).unwrap();
                }
                channels.reset();
                index.reset();
                let mut cmd = std::process::Command::new(bin);
                cmd.current_dir(dir.path())
                    .env("IMAGELOCK_CACHE_DIR", &cache)
                    .args(["--config", "fixtures/examples/http.toml", "freeze"]);
                if !j.is_empty() {
                    cmd.args(["--jobs", j]);
                }
                let started = std::time::Instant::now();
                let (code, _, err) = crate::common::run(&mut cmd);
                let secs = started.elapsed().as_secs_f64();
                assert_eq!(code, 0, "{err}");
                let seen: Vec<_> = channels.seen().into_iter().chain(index.seen()).collect();
                let revalidated = seen.iter().filter(|s| s.status == 304).count();
                let name = std::path::Path::new(bin)
                    .file_name()
                    .unwrap()
                    .to_string_lossy();
                println!(
                    "| {name} | {} | {kind} | {secs:.2} | {} ({revalidated}) |",
                    if j.is_empty() { "default" } else { j },
                    seen.len()
                );
            }
        }
    }
}

/// Regression: an index listing only variants (`linux/amd64/v3`,
/// `linux/arm64/v8`) failed to freeze while verify read it. Both now pick
/// the same entry for `linux/amd64` and `linux/arm64`.
#[test]
fn an_index_of_variants_freezes_and_verifies_the_same_platform() {
    use crate::common::registry::{AuthKind, LayoutBuilder, server};
    let Some(registry) = server(AuthKind::Open) else {
        return;
    };
    let dir = crate::common::tempdir();
    let mut layout = LayoutBuilder::new(&dir.path().join("layout"));
    let children = vec![
        layout.manifest("amd64", Some("v3"), "variant-amd64-v3"),
        layout.manifest("arm64", Some("v8"), "variant-arm64-v8"),
    ];
    let index = layout.tag_index(&children, "variants");
    registry.push(&layout.dir, "variants", "variants/base:1", false);

    std::fs::create_dir_all(dir.path().join("app")).unwrap();
    std::fs::write(
        dir.path().join("app/Dockerfile"),
        format!("FROM {}/variants/base:1\n", registry.addr),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("imagelock.toml"),
        "platforms = [\"linux/amd64\", \"linux/arm64\"]\n[images.app]\nfile = \"app/Dockerfile\"\n",
    )
    .unwrap();
    let cli = |args: &[&str]| {
        crate::common::run(
            crate::common::imagelock()
                .current_dir(dir.path())
                .env("IMAGELOCK_CACHE_DIR", dir.path().join("cache"))
                .args(args),
        )
    };
    let (code, _, err) = cli(&["freeze"]);
    assert_eq!(code, 0, "{err}");
    let lock = imagelock::lock::LockedImage::read(&dir.path().join("lockfiles/app.lock")).unwrap();
    let base = &lock.bases[0];
    assert_eq!(base.digest.to_string(), index);
    let pinned: Vec<(String, String)> = base
        .platforms
        .iter()
        .map(|p| (p.platform.to_string(), p.digest.to_string()))
        .collect();
    assert_eq!(
        pinned,
        [
            ("linux/amd64".to_string(), children[0].digest.clone()),
            ("linux/arm64".to_string(), children[1].digest.clone()),
        ]
    );

    // The image built FROM it alone is the base itself: verify reads the
    // same entry for each locked platform and finds it matches.
    let image = format!("docker://{}/variants/base:1", registry.addr);
    let (code, out, err) = cli(&["verify", "--image", &image, "app/Dockerfile"]);
    assert_eq!(code, 0, "{out}\n{err}");
    for platform in ["linux/amd64", "linux/arm64"] {
        let (code, out, err) = cli(&[
            "verify",
            "--image",
            &image,
            "--platform",
            platform,
            "app/Dockerfile",
        ]);
        assert_eq!(code, 0, "{platform}: {out}\n{err}");
    }
}

/// Regression (issue 16): `--update` of a package no lock and no step has
/// is refused, not ignored; nothing is written.
#[test]
fn updating_a_package_nothing_has_is_refused() {
    let dir = world_copy();
    let image = "fixtures/examples/driver/Dockerfile";
    let (code, _, err) = freeze_in(dir.path(), &[image]);
    assert_eq!(code, 0, "{err}");
    let before = std::fs::read(dir.path().join("lockfiles/driver.lock")).unwrap();
    let (code, _, err) = freeze_in(dir.path(), &["--update", "nosuchpkg", "--", image]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("`--update nosuchpkg`: no lock and no install step"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(dir.path().join("lockfiles/driver.lock")).unwrap(),
        before
    );
    // A locked package, however it is spelt, is fine.
    let (code, _, err) = freeze_in(dir.path(), &["--update", "Charset_Normalizer", "--", image]);
    assert_eq!(code, 0, "{err}");
}

/// Every file under `dir`.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Changes a cache file as a poisoner would: a version or digit changed
/// where one is (the file stays valid JSON), else one byte flipped.
fn tamper(path: &std::path::Path) {
    let mut bytes = std::fs::read(path).unwrap();
    if let Some(i) = bytes.windows(2).position(|w| w == b"1.") {
        bytes[i] = b'9';
    } else if !bytes.is_empty() {
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x01;
    }
    std::fs::write(path, bytes).unwrap();
}

/// Issue 15: a tampered or damaged cache entry never changes a lock. For
/// each kind of cache entry (base states, manifests, layers, index pages
/// and what is derived from them, repodata), and for all at once: tamper
/// every entry of that kind, freeze again, and the locks are byte for byte
/// those of the clean run.
#[test]
fn tampered_cache_entries_never_change_a_lock() {
    let dir = world_copy();
    let pypi = crate::common::http::StaticServer::start(fixture("world/pypi"));
    let conda = crate::common::http::StaticServer::start(fixture("world/conda"));
    let config = dir.path().join("fixtures/examples/imagelock.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(
            "index-url = \"../world/pypi/simple\"",
            &format!("index-url = \"{}/simple\"", pypi.url()),
        )
        .replace("\"../world/conda\"", &format!("\"{}\"", conda.url()));
    std::fs::write(&config, text).unwrap();
    let images = [
        "fixtures/examples/driver/Dockerfile",
        "fixtures/examples/longqc/Dockerfile",
    ];
    let (code, _, err) = freeze_in(dir.path(), &images);
    assert_eq!(code, 0, "{err}");
    let locks = |d: &std::path::Path| -> Vec<(std::path::PathBuf, Vec<u8>)> {
        files_under(&d.join("lockfiles"))
            .into_iter()
            .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
            .collect()
    };
    let clean = locks(dir.path());
    assert_eq!(clean.len(), 2);
    let cache = dir.path().join("cache");
    let mut kinds: Vec<String> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    kinds.sort();
    for want in ["base-states-v5", "manifests", "layers"] {
        assert!(kinds.iter().any(|k| k == want), "{want} in {kinds:?}");
    }
    assert!(kinds.len() > 3, "index and channel caches too: {kinds:?}");
    kinds.push(String::new()); // every kind at once
    for kind in &kinds {
        let files = files_under(&cache.join(kind));
        assert!(!files.is_empty(), "{kind}");
        for f in &files {
            tamper(f);
        }
        let (code, _, err) = freeze_in(dir.path(), &images);
        assert_eq!(code, 0, "tampered {kind}: {err}");
        assert!(
            locks(dir.path()) == clean,
            "tampered {kind:?} changed a lock: {err}"
        );
    }
}

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
    assert!(driver.inputs.hash().starts_with("sha256:"));
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

    let (cat, env) =
        read_base(&config, "docker.io/library/python:3.11-slim", "linux/arm64").unwrap();
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
    )
    .unwrap();
    let state = PlatformState::from_catalogue("linux/amd64", &cat, &env);
    assert_eq!(state.conda_root().as_deref(), Some("/opt/conda"));
    assert_eq!(state.conda_prefix_for(None).as_deref(), Some("/opt/conda"));
    let conda = &state.conda["/opt/conda"];
    assert!(conda.contains_key("mamba") && conda.contains_key("python"));
    let python = state.python_for(None).unwrap();
    assert_eq!(python.prefix, "/opt/conda");
    assert_eq!(python.version, conda["python"].version);
}

//! Conda channels over HTTP and `file://`, the gateway cache, offline use,
//! environment files and multi-channel solves against real repodata.

use std::path::Path;
use std::sync::Arc;

use imagelock::config::{ChannelPriority, CondaConfig};
use imagelock::resolve::conda::{
    ChannelRequest, ChannelSettings, CondaChannel, CondaIndex, Condarc, ResolveCondaError,
};
use imagelock::solve::conda::{
    CondaSolution, CondaSolveRequest, CondaSpec, CondaTarget, SolveCondaError, solve,
};
use imagelock::source::environment::EnvironmentFile;

use crate::common::{fixture, http::StaticServer, tempdir};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

fn settings(alias: &str, root: &Path) -> ChannelSettings {
    let config = CondaConfig {
        channel_alias: Some(alias.to_string()),
        ..CondaConfig::default()
    };
    ChannelSettings::new(&config, &Condarc::default(), root)
}

fn specs(texts: &[&str]) -> Vec<CondaSpec> {
    texts
        .iter()
        .map(|t| CondaSpec::parse(t).expect("valid spec"))
        .collect()
}

/// `specs` and what the solver adds to them (`pip`, with conda's
/// `add_pip_as_python_dependency`): the names to fetch.
fn fetched(specs: &[CondaSpec]) -> Vec<CondaSpec> {
    CondaSolveRequest::new(specs.to_vec(), target()).fetch_specs()
}

fn channels(s: &ChannelSettings, cli: &[&str], specs: &mut [CondaSpec]) -> Vec<CondaChannel> {
    let request = ChannelRequest {
        cli: cli.iter().map(|c| (*c).to_string()).collect(),
        override_channels: true,
        ..ChannelRequest::default()
    };
    s.resolve(&request, specs).expect("channels resolve")
}

fn version(solution: &CondaSolution, name: &str) -> String {
    solution
        .packages
        .iter()
        .find(|p| p.record.name() == name)
        .map(|p| p.record.version())
        .unwrap_or_else(|| panic!("{name} in the solution"))
}

fn target() -> CondaTarget {
    CondaTarget::new("linux-64")
        .expect("known")
        .with_glibc("2.28")
}

/// With the installers' `add_pip_as_python_dependency`, `pip` (and what
/// it needs) is fetched where `python` can be in the solution and only
/// there: specs that never reach python read fewer records, and every
/// solution is the one fetching `pip` always gives.
#[test]
fn pip_is_fetched_only_where_python_is_reached() {
    let server = StaticServer::start(fixture("conda"));
    let cache = tempdir();
    let s = settings(&server.url(), Path::new("/"));
    let rt = runtime();
    let index = CondaIndex::new(cache.path(), client(), false);
    for (asked, reaches_python) in [
        (&["c-ares"][..], false),
        (&["requests"][..], true),
        (&["python=3.12"][..], true),
    ] {
        let mut wanted = specs(asked);
        let chans = channels(&s, &["conda-forge"], &mut wanted);
        let request = CondaSolveRequest::new(wanted, target());
        let lean = rt
            .block_on(index.fetch_for(&chans, "linux-64", &request, None))
            .expect("fetched");
        let full = rt
            .block_on(index.fetch(&chans, "linux-64", &request.fetch_specs(), &[], None))
            .expect("fetched");
        let names = lean.file_names();
        let pip = names.iter().any(|f| f.starts_with("pip-"));
        let python = names.iter().any(|f| f.starts_with("python-3"));
        assert_eq!((pip, python), (reaches_python, reaches_python), "{asked:?}");
        if reaches_python {
            assert_eq!(names, full.file_names(), "{asked:?}");
        } else {
            assert!(
                lean.len() < full.len(),
                "{asked:?}: {} of {}",
                lean.len(),
                full.len()
            );
        }
        assert_eq!(
            solve(&request, &lean).expect("solvable"),
            solve(&request, &full).expect("solvable"),
            "{asked:?}"
        );
    }
}

#[test]
fn http_channel_fills_the_cache_and_offline_reads_it() {
    let server = StaticServer::start(fixture("conda"));
    let cache = tempdir();
    let s = settings(&server.url(), Path::new("/"));
    let mut wanted = specs(&["python=3.12", "numpy"]);
    let chans = channels(&s, &["conda-forge"], &mut wanted);
    assert_eq!(chans[0].url, format!("{}/conda-forge", server.url()));

    let rt = runtime();
    let client = client();
    let index = CondaIndex::new(cache.path(), client.clone(), false);
    let progress = Arc::new(Recorder::default());
    let data = rt
        .block_on(index.fetch(
            &chans,
            "linux-64",
            &fetched(&wanted),
            &[],
            Some(progress.clone()),
        ))
        .expect("fetched");
    // Each download was announced, reported in bytes and finished.
    let log = progress.0.lock().unwrap().clone();
    assert!(
        log.iter()
            .any(|l| l.starts_with("start ") && l.contains("/conda-forge/linux-64/")),
        "{log:?}"
    );
    let starts = log.iter().filter(|l| l.starts_with("start ")).count();
    assert_eq!(
        starts,
        log.iter().filter(|l| l.starts_with("done ")).count(),
        "{log:?}"
    );
    assert!(log.iter().any(|l| l.starts_with("bytes ")), "{log:?}");
    let online = solve(&CondaSolveRequest::new(wanted.clone(), target()), &data).expect("solvable");
    assert!(version(&online, "python").starts_with("3.12."));
    let python = online
        .packages
        .iter()
        .find(|p| p.record.name() == "python")
        .expect("python");
    assert!(python.record.url().starts_with(&server.url()));
    let seen = server.seen();
    assert!(
        seen.iter()
            .any(|r| r.path.ends_with("linux-64/repodata.json") && r.status == 200),
        "{seen:?}"
    );

    // Offline with the same cache: nothing is asked of the server.
    server.reset();
    let offline = CondaIndex::new(cache.path(), client.clone(), true);
    let data = rt
        .block_on(offline.fetch(&chans, "linux-64", &fetched(&wanted), &[], None))
        .expect("from the cache");
    let again = solve(&CondaSolveRequest::new(wanted.clone(), target()), &data).expect("solvable");
    assert_eq!(again, online);
    assert!(server.seen().is_empty(), "{:?}", server.seen());

    // Offline with an empty cache: a clear error.
    let empty = tempdir();
    let offline = CondaIndex::new(empty.path(), client, true);
    let err = rt
        .block_on(offline.fetch(&chans, "linux-64", &fetched(&wanted), &[], None))
        .expect_err("nothing cached");
    assert!(matches!(err, ResolveCondaError::NotCached { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("hint: run once without `--offline`")
    );
}

#[test]
fn file_channels_relative_to_the_config_dir() {
    let mut config = CondaConfig::default();
    config
        .custom_channels
        .insert("pytorch-2023".into(), "file:fixtures/conda".into());
    let s = ChannelSettings::new(&config, &Condarc::default(), crate::common::repo_root());
    let mut wanted = specs(&["pytorch-2023::libjpeg-turbo"]);
    let chans = channels(&s, &["file:fixtures/conda/conda-forge"], &mut wanted);
    assert!(chans.iter().all(|c| c.url.starts_with("file:///")));
    assert_eq!(chans.len(), 2);
    let cache = tempdir();
    let index = CondaIndex::new(cache.path(), client(), true);
    let data = runtime()
        .block_on(index.fetch(&chans, "linux-64", &fetched(&wanted), &[], None))
        .expect("local channels work offline");
    let mut request = CondaSolveRequest::new(wanted, target());
    request.channel_priority = ChannelPriority::Flexible;
    let solution = solve(&request, &data).expect("solvable");
    // Bound to its channel although conda-forge has newer builds.
    assert_eq!(version(&solution, "libjpeg-turbo"), "2.0.0");
}

#[test]
fn two_http_channels_strict_and_flexible() {
    let server = StaticServer::start(fixture("conda"));
    let cache = tempdir();
    let s = settings(&server.url(), Path::new("/"));
    let mut wanted = specs(&["libjpeg-turbo"]);
    let chans = channels(&s, &["pytorch-2023", "conda-forge"], &mut wanted);
    let index = CondaIndex::new(cache.path(), client(), false);
    let data = runtime()
        .block_on(index.fetch(&chans, "linux-64", &fetched(&wanted), &[], None))
        .expect("fetched");
    let mut request = CondaSolveRequest::new(wanted, target());
    assert_eq!(
        version(&solve(&request, &data).expect("strict"), "libjpeg-turbo"),
        "2.0.0"
    );
    // Flexible, as conda means it: the first channel that has the package
    // is used up first, and a later one is used only when that fails.
    request.channel_priority = ChannelPriority::Flexible;
    assert_eq!(
        version(&solve(&request, &data).expect("flexible"), "libjpeg-turbo"),
        "2.0.0"
    );
    let mut newer = CondaSolveRequest::new(specs(&["libjpeg-turbo>=3"]), target());
    assert!(
        solve(&newer, &data).is_err(),
        "strict cannot use conda-forge"
    );
    newer.channel_priority = ChannelPriority::Flexible;
    let solution = solve(&newer, &data).expect("flexible falls back");
    assert!(version(&solution, "libjpeg-turbo").starts_with("3."));
    // Disabled: every channel competes by version.
    request.channel_priority = ChannelPriority::Disabled;
    assert!(version(&solve(&request, &data).expect("disabled"), "libjpeg-turbo").starts_with("3."));
}

#[test]
fn environment_file_with_pip_section() {
    let dir = tempdir();
    let path = dir.path().join("environment.yml");
    let text = "name: analysis\nchannels:\n  - conda-forge\n  - nodefaults\ndependencies:\n  - python=3.11\n  - pandas\n  - pip\n  - pip:\n      - requests==2.32.3\n      - rich>=13\n";
    fs_err::write(&path, text).expect("written");
    let env = EnvironmentFile::parse(&path, text).expect("valid");

    let server = StaticServer::start(fixture("conda"));
    let s = settings(&server.url(), Path::new("/"));
    let mut wanted: Vec<CondaSpec> = env
        .dependencies
        .iter()
        .map(|d| CondaSpec::parse(&d.value).expect("spec"))
        .collect();
    let request = ChannelRequest {
        file: env.channels.iter().map(|c| c.value.clone()).collect(),
        implicit_defaults: true,
        ..ChannelRequest::default()
    };
    let chans = s.resolve(&request, &mut wanted).expect("channels");
    assert_eq!(chans.len(), 1, "nodefaults drops defaults: {chans:?}");
    let cache = tempdir();
    let index = CondaIndex::new(cache.path(), client(), false);
    let data = runtime()
        .block_on(index.fetch(&chans, "linux-64", &fetched(&wanted), &[], None))
        .expect("fetched");
    let solution = solve(&CondaSolveRequest::new(wanted, target()), &data);
    // The pip part goes to the Python resolver with the solved Python.
    let pip: Vec<&str> = env.pip.iter().map(|p| p.value.as_str()).collect();
    assert_eq!(pip, ["requests==2.32.3", "rich>=13"]);
    match solution {
        Ok(solution) => {
            assert!(
                solution
                    .python_version()
                    .is_some_and(|v| v.starts_with("3.11."))
            );
        }
        Err(SolveCondaError::Unsatisfiable(u)) => panic!("{u}"),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn installed_prefix_records_are_kept_over_http() {
    let server = StaticServer::start(fixture("conda"));
    let s = settings(&server.url(), Path::new("/"));
    let cache = tempdir();
    let index = CondaIndex::new(cache.path(), client(), false);
    let rt = runtime();
    let mut base_specs = specs(&["python=3.11"]);
    let chans = channels(&s, &["conda-forge"], &mut base_specs);
    let data = rt
        .block_on(index.fetch(&chans, "linux-64", &fetched(&base_specs), &[], None))
        .expect("fetched");
    let base = solve(&CondaSolveRequest::new(base_specs, target()), &data).expect("base");
    let installed = base.records();

    let step = specs(&["requests"]);
    let data = rt
        .block_on(index.fetch(&chans, "linux-64", &fetched(&step), &installed, None))
        .expect("fetched");
    let mut request = CondaSolveRequest::new(step, target());
    request.installed = installed;
    let solution = solve(&request, &data).expect("solvable");
    assert_eq!(version(&solution, "python"), version(&base, "python"));
    let locked = imagelock::lock::CondaPackage::from_solution(
        &solution,
        &imagelock::oci::Platform::linux_amd64(),
    )
    .unwrap();
    assert!(locked.iter().any(|p| p.name == "requests"));
    assert!(locked.iter().all(|p| p.name != "python"));
}

/// The LongQC image of the examples: conda-forge stack, then bioconda tools
/// on top (needs the test world's channels).
#[test]
fn longqc_stack_from_the_test_world() {
    let world = fixture("world/conda");
    if !world.join("bioconda/linux-64/repodata.json").is_file() {
        eprintln!("skipping: fixtures/world/conda is not present");
        return;
    }
    let server = StaticServer::start(&world);
    let s = settings(&server.url(), Path::new("/"));
    let cache = tempdir();
    let index = CondaIndex::new(cache.path(), client(), false);
    let rt = runtime();
    let mut first = specs(&[
        "numpy",
        "pandas>=0.24.0",
        "scipy",
        "jinja2",
        "h5py",
        "matplotlib>=2.1.2",
        "scikit-learn",
    ]);
    let chans = channels(&s, &["conda-forge"], &mut first);
    let data = rt
        .block_on(index.fetch(&chans, "linux-64", &fetched(&first), &[], None))
        .expect("fetched");
    let base = solve(&CondaSolveRequest::new(first, target()), &data).expect("solvable");
    let mut second = specs(&["edlib", "pysam", "python-edlib"]);
    let chans = channels(&s, &["bioconda", "conda-forge"], &mut second);
    let data = rt
        .block_on(index.fetch(&chans, "linux-64", &fetched(&second), &base.records(), None))
        .expect("fetched");
    let mut request = CondaSolveRequest::new(second, target());
    request.installed = base.records();
    let solution = solve(&request, &data).expect("solvable");
    for name in ["edlib", "pysam", "python-edlib", "h5py", "scikit-learn"] {
        version(&solution, name);
    }
    assert_eq!(version(&solution, "python"), version(&base, "python"));
}

/// Writes a conda channel of `(subdir, name, version, build, depends)`
/// records under `root/name`, with an empty noarch subdir where none is given.
pub(crate) fn write_channel(
    root: &Path,
    name: &str,
    records: &[(&str, &str, &str, &str, &[&str])],
) {
    let mut subdirs: std::collections::BTreeMap<&str, serde_json::Map<String, serde_json::Value>> =
        std::collections::BTreeMap::new();
    subdirs.entry("noarch").or_default();
    for (subdir, pkg, version, build, depends) in records {
        let file = format!("{pkg}-{version}-{build}.conda");
        subdirs.entry(subdir).or_default().insert(
            file,
            serde_json::json!({
                "name": pkg,
                "version": version,
                "build": build,
                "build_number": 0,
                "depends": depends,
                "subdir": subdir,
                "sha256": format!("{:064x}", file_digest(&format!("{name}/{pkg}-{version}-{build}"))),
            }),
        );
    }
    for (subdir, packages) in subdirs {
        let dir = root.join(name).join(subdir);
        fs_err::create_dir_all(&dir).expect("channel dir");
        let repodata = serde_json::json!({
            "info": { "subdir": subdir },
            "packages": {},
            "packages.conda": packages,
        });
        fs_err::write(dir.join("repodata.json"), repodata.to_string()).expect("repodata");
    }
}

/// A stable number per file, so each record has its own sha256.
fn file_digest(text: &str) -> u128 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325_u128, |h, b| {
        (h ^ u128::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// `mamba install -c bioconda pysam` over conda-forge: pysam's libdeflate
/// is only in conda-forge and is found there, although conda-forge has no
/// pysam; strict priority still takes a name from the first channel that
/// has it.
#[test]
fn a_dependency_only_in_another_channel_is_found_there() {
    let root = tempdir();
    write_channel(
        root.path(),
        "bioconda",
        &[
            (
                "linux-64",
                "pysam",
                "0.22.1",
                "py311_0",
                &["libdeflate >=1.20,<1.21", "zlib"],
            ),
            ("linux-64", "zlib", "1.2.11", "bio_0", &[]),
            ("linux-64", "samtools", "1.20", "h0_0", &["zlib >=1.3"]),
        ],
    );
    write_channel(
        root.path(),
        "conda-forge",
        &[
            ("linux-64", "libdeflate", "1.20", "h0_0", &[]),
            ("linux-64", "libdeflate", "1.22", "h0_0", &[]),
            ("linux-64", "zlib", "1.3.1", "cf_0", &[]),
        ],
    );
    let server = StaticServer::start(root.path());
    let s = settings(&server.url(), Path::new("/"));
    let mut wanted = specs(&["pysam"]);
    let chans = channels(&s, &["bioconda", "conda-forge"], &mut wanted);
    let cache = tempdir();
    let index = CondaIndex::new(cache.path(), client(), false);
    let data = runtime()
        .block_on(index.fetch(&chans, "linux-64", &fetched(&wanted), &[], None))
        .expect("fetched");
    let mut request = CondaSolveRequest::new(wanted, target());
    let strict = solve(&request, &data).expect("libdeflate comes from conda-forge");
    assert_eq!(version(&strict, "libdeflate"), "1.20");
    assert_eq!(
        version(&strict, "zlib"),
        "1.2.11",
        "strict: bioconda has zlib"
    );
    let libdeflate = strict
        .packages
        .iter()
        .find(|p| p.record.name() == "libdeflate")
        .expect("libdeflate");
    assert!(
        libdeflate.record.url().contains("/conda-forge/"),
        "{}",
        libdeflate.record.url()
    );
    request.channel_priority = ChannelPriority::Disabled;
    let disabled = solve(&request, &data).expect("solvable");
    assert_eq!(
        version(&disabled, "zlib"),
        "1.3.1",
        "disabled: the newest wins"
    );
    request.channel_priority = ChannelPriority::Flexible;
    let flexible = solve(&request, &data).expect("solvable");
    assert_eq!(
        version(&flexible, "zlib"),
        "1.2.11",
        "flexible: the first channel while it fits"
    );

    // samtools needs a zlib only conda-forge has: strict priority keeps
    // zlib to bioconda, which has one, and fails as conda does; flexible
    // and disabled take conda-forge's.
    let mut wanted = specs(&["samtools"]);
    let chans = channels(&s, &["bioconda", "conda-forge"], &mut wanted);
    let data = runtime()
        .block_on(index.fetch(&chans, "linux-64", &wanted, &[], None))
        .expect("fetched");
    let mut request = CondaSolveRequest::new(wanted, target());
    match solve(&request, &data) {
        Err(SolveCondaError::Unsatisfiable(u)) => {
            assert!(u.explanation.contains("zlib"), "{u}");
        }
        other => panic!("strict priority must refuse conda-forge's zlib: {other:?}"),
    }
    for priority in [ChannelPriority::Flexible, ChannelPriority::Disabled] {
        request.channel_priority = priority;
        let solution = solve(&request, &data).expect("solvable");
        assert_eq!(version(&solution, "zlib"), "1.3.1", "{priority:?}");
    }
}

/// A client as imagelock builds them (installs the TLS provider).
fn client() -> reqwest::Client {
    imagelock::resolve::http::client_builder()
        .build()
        .expect("http client")
}

/// Records what a repodata download reports.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<String>>);

impl imagelock::resolve::conda::CondaProgress for Recorder {
    fn download_started(&self, url: &str) -> usize {
        let mut log = self.0.lock().unwrap();
        log.push(format!("start {url}"));
        log.len()
    }
    fn download_progress(&self, index: usize, bytes: u64, _total: Option<u64>) {
        self.0
            .lock()
            .unwrap()
            .push(format!("bytes {index} {bytes}"));
    }
    fn download_finished(&self, index: usize) {
        self.0.lock().unwrap().push(format!("done {index}"));
    }
}

/// A project freezing `dockerfile` over the test world's miniforge3 base,
/// with the channel `t` (from [`installer_channel`]) under `root`.
fn freeze_over_miniforge(
    root: &Path,
    dockerfile: &str,
    (image_config, conda_config): (&str, &str),
) -> (i32, String, String) {
    let project = root.join("project");
    fs_err::create_dir_all(&project).expect("project dir");
    fs_err::write(project.join("Dockerfile"), dockerfile).expect("Dockerfile");
    fs_err::write(
        project.join("imagelock.toml"),
        format!(
            "platforms = [\"linux/amd64\"]\n\
             [images.app]\nfile = \"Dockerfile\"\n{image_config}\n\
             [conda]\ncustom-channels = {{ t = \"file://{}\" }}\n{conda_config}\n\
             [registries.\"docker.io\"]\nlocation = \"oci:{}\"\n",
            root.join("chans").display(),
            fixture("world/images/docker.io").display()
        ),
    )
    .expect("config");
    crate::common::run(
        crate::common::imagelock()
            .current_dir(&project)
            .env("HOME", &project)
            .env_remove("CONDARC")
            .env_remove("CONDA_CHANNELS")
            .env_remove("CONDA_CHANNEL_PRIORITY")
            .env_remove("CONDA_ADD_PIP_AS_PYTHON_DEPENDENCY")
            .env("IMAGELOCK_CACHE_DIR", root.join("cache"))
            .arg("freeze"),
    )
}

/// python, pip (with wheel and setuptools, as older pip builds name them)
/// and a GPU package in two versions.
fn installer_channel(root: &Path) {
    write_channel(
        &root.join("chans"),
        "t",
        &[
            ("linux-64", "python", "3.11.9", "h0_0_cpython", &[]),
            (
                "noarch",
                "pip",
                "24.0",
                "pyhd8ed1ab_0",
                &["python >=3.7", "setuptools", "wheel"],
            ),
            (
                "noarch",
                "setuptools",
                "70.0.0",
                "pyhd8ed1ab_0",
                &["python >=3.8"],
            ),
            (
                "noarch",
                "wheel",
                "0.43.0",
                "pyhd8ed1ab_0",
                &["python >=3.8"],
            ),
            ("linux-64", "gpukernel", "1.0", "cuda11_0", &["__cuda >=11"]),
            ("linux-64", "gpukernel", "2.0", "cuda12_0", &["__cuda >=12"]),
        ],
    );
}

/// The conda packages each step of the lock has, by name.
fn locked_names(root: &Path) -> Vec<Vec<String>> {
    let path = root.join("project/lockfiles/app.lock");
    let lock = imagelock::lock::LockedImage::read(&path).expect("a lock");
    lock.steps
        .iter()
        .map(|s| {
            s.conda
                .iter()
                .map(|p| format!("{}={}", p.name, p.version))
                .collect()
        })
        .collect()
}

/// conda, mamba and micromamba make python depend on pip
/// (`add_pip_as_python_dependency: true`), so a real build brings pip,
/// setuptools and wheel; `ENV CONDA_ADD_PIP_AS_PYTHON_DEPENDENCY=false`
/// and the command-line prefix turn it off, imagelock.toml too.
#[test]
fn python_brings_pip_unless_add_pip_as_python_dependency_is_off() {
    let root = tempdir();
    installer_channel(root.path());
    let dockerfile = "FROM condaforge/miniforge3:24.3.0-0\n\
        RUN mamba create -y -p /opt/a --override-channels -c t python\n\
        RUN CONDA_ADD_PIP_AS_PYTHON_DEPENDENCY=0 micromamba create -y -p /opt/b --override-channels -c t python\n\
        ENV CONDA_ADD_PIP_AS_PYTHON_DEPENDENCY=false\n\
        RUN conda create -y -p /opt/c --override-channels -c t python\n";
    let (code, _, err) = freeze_over_miniforge(root.path(), dockerfile, ("", ""));
    assert_eq!(code, 0, "{err}");
    let steps = locked_names(root.path());
    assert_eq!(
        steps[0],
        [
            "pip=24.0",
            "python=3.11.9",
            "setuptools=70.0.0",
            "wheel=0.43.0"
        ]
    );
    assert_eq!(steps[1], ["python=3.11.9"], "the command's own prefix");
    assert_eq!(steps[2], ["python=3.11.9"], "the image's ENV");

    let configured = tempdir();
    installer_channel(configured.path());
    let (code, _, err) = freeze_over_miniforge(
        configured.path(),
        "FROM condaforge/miniforge3:24.3.0-0\nRUN mamba create -y -p /opt/a --override-channels -c t python\n",
        ("", "add-pip-as-python-dependency = false"),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        locked_names(configured.path())[0],
        ["python=3.11.9"],
        "imagelock.toml"
    );
}

/// `CONDA_OVERRIDE_CUDA` from `ENV` and from the command line decides
/// `__cuda`; without it the failure names the override.
#[test]
fn conda_override_cuda_from_the_definition() {
    let root = tempdir();
    installer_channel(root.path());
    let dockerfile = "FROM condaforge/miniforge3:24.3.0-0\n\
        ENV CONDA_OVERRIDE_CUDA=11.8\n\
        RUN mamba create -y -p /opt/a --override-channels -c t gpukernel\n\
        RUN CONDA_OVERRIDE_CUDA=12.4 mamba create -y -p /opt/b --override-channels -c t gpukernel\n";
    let (code, _, err) = freeze_over_miniforge(root.path(), dockerfile, ("", ""));
    assert_eq!(code, 0, "{err}");
    let steps = locked_names(root.path());
    assert_eq!(steps[0], ["gpukernel=1.0"], "__cuda 11.8 from ENV");
    assert_eq!(
        steps[1],
        ["gpukernel=2.0"],
        "__cuda 12.4 from the command line"
    );

    let none = tempdir();
    installer_channel(none.path());
    let (code, _, err) = freeze_over_miniforge(
        none.path(),
        "FROM condaforge/miniforge3:24.3.0-0\nRUN mamba create -y -p /opt/a --override-channels -c t gpukernel\n",
        ("", ""),
    );
    assert_ne!(code, 0);
    assert!(err.contains("Dockerfile:2"), "{err}");
    assert!(err.contains("CONDA_OVERRIDE_CUDA=VERSION"), "{err}");
    assert!(err.contains("overrides.cuda"), "{err}");
    assert!(!err.contains("add a channel"), "{err}");

    // imagelock.toml's `overrides.cuda` stands for the build machine's GPU;
    // the definition's own override wins over it.
    let configured = tempdir();
    installer_channel(configured.path());
    let (code, _, err) = freeze_over_miniforge(
        configured.path(),
        "FROM condaforge/miniforge3:24.3.0-0\n\
         RUN mamba create -y -p /opt/a --override-channels -c t gpukernel\n\
         RUN CONDA_OVERRIDE_CUDA=11.2 mamba create -y -p /opt/b --override-channels -c t gpukernel\n",
        ("overrides = { cuda = \"12.4\" }", ""),
    );
    assert_eq!(code, 0, "{err}");
    let steps = locked_names(configured.path());
    assert_eq!(steps[0], ["gpukernel=2.0"]);
    assert_eq!(steps[1], ["gpukernel=1.0"]);
}

/// Channel `t` has samtools and an old zlib, `u` (a second channel, by
/// URL) the zlib samtools needs: strict priority fails, flexible and
/// disabled take `u`'s zlib.
fn priority_channels(root: &Path) -> String {
    write_channel(
        &root.join("chans"),
        "t",
        &[
            ("linux-64", "samtools", "1.20", "h0_0", &["zlib >=1.3"]),
            ("linux-64", "zlib", "1.2.11", "t_0", &[]),
        ],
    );
    write_channel(
        &root.join("chans"),
        "u",
        &[("linux-64", "zlib", "1.3.1", "u_0", &[])],
    );
    format!("file://{}", root.join("chans/u").display())
}

/// Each installer's default channel priority, as the base image's
/// installers have it: conda is flexible, and so is the miniforge image's
/// mamba 1.5 (it reads conda's configuration); micromamba is strict. The
/// command's own `--strict-channel-priority` and `conda config --set
/// channel_priority` win.
#[test]
fn installer_default_channel_priority() {
    let root = tempdir();
    let u = priority_channels(root.path());
    let dockerfile = format!(
        "FROM condaforge/miniforge3:24.3.0-0\n\
         RUN mamba create -y -p /opt/a --override-channels -c t -c {u} samtools\n\
         RUN conda create -y -p /opt/b --override-channels -c t -c {u} samtools\n\
         RUN conda create -y -p /opt/c --no-channel-priority --override-channels -c t -c {u} samtools\n"
    );
    let (code, _, err) = freeze_over_miniforge(root.path(), &dockerfile, ("", ""));
    assert_eq!(code, 0, "{err}");
    for (i, step) in locked_names(root.path()).iter().enumerate() {
        assert_eq!(step, &["samtools=1.20", "zlib=1.3.1"], "step {i}");
    }

    for (i, line) in [
        format!("RUN micromamba create -y -p /opt/a --override-channels -c t -c {u} samtools"),
        format!(
            "RUN mamba create -y --strict-channel-priority -p /opt/a --override-channels -c t -c {u} samtools"
        ),
        format!(
            "RUN conda config --set channel_priority strict && conda create -y -p /opt/a --override-channels -c t -c {u} samtools"
        ),
    ]
    .iter()
    .enumerate()
    {
        let strict = tempdir();
        priority_channels(strict.path());
        let dockerfile = format!("FROM condaforge/miniforge3:24.3.0-0\n{line}\n")
            .replace(&u, &format!("file://{}", strict.path().join("chans/u").display()));
        let (code, _, err) = freeze_over_miniforge(strict.path(), &dockerfile, ("", ""));
        assert_ne!(code, 0, "case {i}: strict priority keeps zlib to `t`");
        assert!(err.contains("Dockerfile:2"), "case {i}: {err}");
        assert!(err.contains("zlib"), "case {i}: {err}");
    }
}

/// `pip_interop_enabled` (conda counts pip's installs as installed) is not
/// followed; an install into an existing prefix with it on says so.
#[test]
fn pip_interop_enabled_is_named_not_ignored() {
    let root = tempdir();
    installer_channel(root.path());
    let dockerfile = "FROM condaforge/miniforge3:24.3.0-0\n\
        ENV CONDA_PIP_INTEROP_ENABLED=true\n\
        RUN conda create -y -p /opt/a --override-channels -c t python\n\
        RUN conda install -y -p /opt/a --override-channels -c t wheel\n";
    let (code, _, err) = freeze_over_miniforge(root.path(), dockerfile, ("", ""));
    assert_eq!(code, 0, "{err}");
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("pip_interop_enabled"))
        .collect();
    assert!(!warnings.is_empty(), "{err}");
    assert!(
        warnings.iter().all(|w| w.contains("Dockerfile:4")),
        "only the install into an existing prefix: {err}"
    );
}

/// `.condarc`'s `pinned_packages` constrain every solve, `create` too.
#[test]
fn condarc_pinned_packages_constrain_the_solve() {
    let root = tempdir();
    installer_channel(root.path());
    fs_err::create_dir_all(root.path().join("project")).expect("project dir");
    fs_err::write(
        root.path().join("project/.condarc"),
        "pinned_packages:\n  - gpukernel <2\n",
    )
    .expect(".condarc");
    let dockerfile = "FROM condaforge/miniforge3:24.3.0-0\n\
        RUN CONDA_OVERRIDE_CUDA=12.4 mamba create -y -p /opt/a --override-channels -c t gpukernel\n";
    let (code, _, err) = freeze_over_miniforge(root.path(), dockerfile, ("", ""));
    assert_eq!(code, 0, "{err}");
    assert_eq!(locked_names(root.path())[0], ["gpukernel=1.0"]);
}

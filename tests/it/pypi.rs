//! Python resolution against real PyPI pages recorded in
//! `fixtures/pypi-cases` (see its `record.py`), served on 127.0.0.1.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use imagelock::resolve::pypi::{self, Fetcher, IndexClient, archive};
use imagelock::solve::python::{
    PinnedPackage, PinnedSource, ResolveOptions, ResolveRequest, SolveError, TargetEnv,
};

use crate::common::http::{Pace, StaticServer};
use crate::common::pyindex::PyIndex;
use crate::common::{repo_root, tempdir};

fn server() -> StaticServer {
    StaticServer::start(repo_root().join("fixtures/pypi-cases"))
}

fn target(python: &str) -> Arc<TargetEnv> {
    crate::common::cpython_target(python)
}

struct Run {
    cache: Option<std::path::PathBuf>,
    offline: bool,
    no_build: bool,
    options: ResolveOptions,
    python: &'static str,
}

impl Default for Run {
    fn default() -> Self {
        Run {
            cache: None,
            offline: false,
            no_build: false,
            options: ResolveOptions::default(),
            python: "3.11",
        }
    }
}

async fn resolve_with(
    server: &StaticServer,
    reqs: &[&str],
    run: Run,
) -> Result<Vec<PinnedPackage>, SolveError> {
    let fetch = Fetcher::new(run.cache, run.offline, Default::default()).unwrap();
    let client = Arc::new(
        IndexClient::new(fetch, &[format!("{}/simple", server.url())], run.no_build).unwrap(),
    );
    let request = ResolveRequest {
        requirements: reqs.iter().map(ToString::to_string).collect(),
        options: run.options,
        ..ResolveRequest::default()
    };
    pypi::resolve(client, target(run.python), request).await
}

async fn pins(server: &StaticServer, reqs: &[&str], run: Run) -> Vec<String> {
    let out = resolve_with(server, reqs, run)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    out.iter()
        .map(|p| format!("{}=={}", p.name, p.version.as_ref().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_resolution_with_lock_entries() {
    let s = server();
    let out = resolve_with(&s, &["requests"], Run::default())
        .await
        .unwrap();
    let names: Vec<String> = out
        .iter()
        .map(|p| format!("{}=={}", p.name, p.version.as_ref().unwrap()))
        .collect();
    assert_eq!(
        names,
        [
            "certifi==2024.8.30",
            "charset-normalizer==3.3.2",
            "idna==3.10",
            "requests==2.32.3",
            "urllib3==2.2.3"
        ]
    );
    let lock = out[3].locked();
    assert_eq!(
        lock.file.as_deref(),
        Some("requests-2.32.3-py3-none-any.whl")
    );
    assert_eq!(lock.requested.as_deref(), Some("requests"));
    assert_eq!(
        lock.url,
        format!("{}/packages/requests-2.32.3-py3-none-any.whl", s.url())
    );
    assert_eq!(lock.sha256.map(|s| s.len()), Some(64));
    assert_eq!(out[0].locked().requested, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn extras() {
    let s = server();
    let out = pins(&s, &["requests[socks]"], Run::default()).await;
    assert!(out.contains(&"pysocks==1.7.1".to_string()), "{out:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn markers_are_the_targets() {
    let s = server();
    let old = pins(
        &s,
        &["anyio"],
        Run {
            python: "3.10",
            ..Run::default()
        },
    )
    .await;
    assert_eq!(
        old,
        [
            "anyio==4.4.0",
            "exceptiongroup==1.2.2",
            "idna==3.10",
            "sniffio==1.3.1",
            "typing-extensions==4.14.1"
        ]
    );
    let new = pins(
        &s,
        &["anyio"],
        Run {
            python: "3.12",
            ..Run::default()
        },
    )
    .await;
    assert_eq!(new, ["anyio==4.4.0", "idna==3.10", "sniffio==1.3.1"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn python_limited_releases() {
    let s = server();
    let out = pins(
        &s,
        &["typing-extensions"],
        Run {
            python: "3.8",
            ..Run::default()
        },
    )
    .await;
    assert_eq!(out, ["typing-extensions==4.13.2"]);
    let out = pins(&s, &["typing-extensions"], Run::default()).await;
    assert_eq!(out, ["typing-extensions==4.14.1"]);
    let err = resolve_with(
        &s,
        &["typing-extensions>=4.14"],
        Run {
            python: "3.8",
            ..Run::default()
        },
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("requires Python >=3.9"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn yanked_versions_only_when_pinned() {
    let s = server();
    let out = pins(&s, &["requests>=2.31,<2.32.3"], Run::default()).await;
    assert!(out.contains(&"requests==2.31.0".to_string()), "{out:?}");
    let out = pins(&s, &["requests==2.32.1"], Run::default()).await;
    assert!(out.contains(&"requests==2.32.1".to_string()), "{out:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn pre_releases() {
    let s = server();
    assert_eq!(
        pins(&s, &["urllib3<2.1"], Run::default()).await,
        ["urllib3==1.26.18"]
    );
    assert_eq!(
        pins(&s, &["urllib3>=2.0.0a1,<2.1"], Run::default()).await,
        ["urllib3==2.0.0a4"]
    );
    let pre = Run {
        options: ResolveOptions {
            pre: true,
            ..ResolveOptions::default()
        },
        ..Run::default()
    };
    assert_eq!(pins(&s, &["urllib3<2.1"], pre).await, ["urllib3==2.0.0a4"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn conflict_message() {
    let s = server();
    let err = resolve_with(&s, &["requests==2.29.0", "urllib3>=2"], Run::default())
        .await
        .unwrap_err()
        .with_context("image `driver`, Dockerfile:7");
    insta::assert_snapshot!(err.to_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn sdist_only_with_static_metadata() {
    let s = server();
    let no_build = Run {
        no_build: true,
        ..Run::default()
    };
    let out = resolve_with(&s, &["iniconfig"], no_build).await.unwrap();
    assert_eq!(out.len(), 1);
    let PinnedSource::Index(file) = &out[0].source else {
        panic!("{out:?}")
    };
    assert_eq!(file.filename, "iniconfig-2.1.0.tar.gz");
    assert!(
        s.seen()
            .iter()
            .any(|r| r.path.ends_with("iniconfig-2.1.0.tar.gz"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_by_range_requests() {
    let s = server();
    assert_eq!(pins(&s, &["six"], Run::default()).await, ["six==1.17.0"]);
    let wheel: Vec<_> = s
        .seen()
        .into_iter()
        .filter(|r| r.path.ends_with("six-1.17.0-py2.py3-none-any.whl"))
        .collect();
    assert!(!wheel.is_empty());
    assert!(
        wheel.iter().all(|r| r.range.is_some() && r.status == 206),
        "{wheel:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cache_revalidates_then_serves_offline() {
    let s = server();
    let dir = tempdir();
    let cache = || Some(dir.path().join("pypi"));
    let first = pins(
        &s,
        &["requests[socks]", "six"],
        Run {
            cache: cache(),
            ..Run::default()
        },
    )
    .await;
    s.reset();
    let second = pins(
        &s,
        &["requests[socks]", "six"],
        Run {
            cache: cache(),
            ..Run::default()
        },
    )
    .await;
    assert_eq!(first, second);
    let seen = s.seen();
    assert!(!seen.is_empty());
    assert!(
        seen.iter().all(|r| r.conditional && r.status == 304),
        "second resolution should only revalidate: {seen:?}"
    );
    s.reset();
    let offline = Run {
        cache: cache(),
        offline: true,
        ..Run::default()
    };
    assert_eq!(pins(&s, &["requests[socks]", "six"], offline).await, first);
    assert!(s.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn fresh_cache_asks_nothing() {
    let s = StaticServer::start_with(
        repo_root().join("fixtures/pypi-cases"),
        BTreeMap::from([("Cache-Control".to_string(), "max-age=600".to_string())]),
    );
    let dir = tempdir();
    let run = || Run {
        cache: Some(dir.path().join("pypi")),
        ..Run::default()
    };
    let first = pins(&s, &["requests"], run()).await;
    s.reset();
    assert_eq!(pins(&s, &["requests"], run()).await, first);
    assert_eq!(s.seen(), vec![]);
}

#[tokio::test(flavor = "multi_thread")]
async fn offline_cache_miss_is_explained() {
    let s = server();
    let dir = tempdir();
    let err = resolve_with(
        &s,
        &["requests"],
        Run {
            cache: Some(dir.path().to_path_buf()),
            offline: true,
            ..Run::default()
        },
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("`requests` is not in the cache; run once without --offline"),
        "{err}"
    );
    assert!(s.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn file_index_urls() {
    let root = repo_root().join("fixtures/pypi-cases/simple");
    let url = format!("file://{}", root.display());
    let fetch = Fetcher::new(None, false, Default::default()).unwrap();
    let client = Arc::new(IndexClient::new(fetch, &[url], false).unwrap());
    let request = ResolveRequest {
        requirements: vec!["anyio".into()],
        ..ResolveRequest::default()
    };
    let out = pypi::resolve(client, target("3.12"), request)
        .await
        .unwrap();
    assert_eq!(out.len(), 3);
    let PinnedSource::Index(f) = &out[0].source else {
        panic!()
    };
    let metadata = format!("{}.metadata", &f.url[7..]);
    assert!(
        f.url.starts_with("file://") && Path::new(&metadata).is_file(),
        "{}",
        f.url
    );
}

/// The recorded slice and the local artifacts of `fixtures/pypi-local`
/// (see its `make.py`), from one server.
struct Local {
    server: StaticServer,
}

impl Local {
    fn start() -> Self {
        Local {
            server: StaticServer::start(repo_root().join("fixtures")),
        }
    }

    fn file(&self, name: &str) -> String {
        format!("{}/pypi-local/files/{name}", self.server.url())
    }

    fn client(&self, no_build: bool, python: Option<&str>) -> Arc<IndexClient> {
        let fetch = Fetcher::new(None, false, Default::default()).unwrap();
        let indexes = [
            format!("{}/pypi-cases/simple", self.server.url()),
            format!("{}/pypi-local/simple", self.server.url()),
        ];
        let mut client = IndexClient::new(fetch, &indexes, no_build).unwrap();
        if let Some(p) = python {
            client = client.with_build_python(p);
        }
        Arc::new(client)
    }

    async fn resolve(
        &self,
        reqs: &[String],
        client: Arc<IndexClient>,
        python: &'static str,
    ) -> Result<Vec<PinnedPackage>, SolveError> {
        let request = ResolveRequest {
            requirements: reqs.to_vec(),
            ..ResolveRequest::default()
        };
        pypi::resolve(client, target(python), request).await
    }
}

fn sha256_of(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

fn by_name<'a>(pins: &'a [PinnedPackage], name: &str) -> &'a PinnedPackage {
    pins.iter()
        .find(|p| p.name.as_ref() == name)
        .unwrap_or_else(|| panic!("{name} in {pins:?}"))
}

/// A wheel URL and a bare sdist URL are fetched, hashed, and their
/// dependencies resolved from the index.
#[tokio::test(flavor = "multi_thread")]
async fn direct_urls_are_fetched_hashed_and_resolved() {
    let l = Local::start();
    let wheel = l.file("demo_direct-1.0-py3-none-any.whl");
    let sdist = l.file("demo_static-0.5.tar.gz");
    let reqs = [format!("demo-direct @ {wheel}"), sdist.clone()];
    let pins = l
        .resolve(&reqs, l.client(true, None), "3.11")
        .await
        .unwrap();
    let names: Vec<String> = pins
        .iter()
        .map(|p| format!("{}=={}", p.name, p.version.as_ref().unwrap()))
        .collect();
    assert_eq!(
        names,
        [
            "demo-direct==1.0",
            "demo-static==0.5",
            "idna==3.10",
            "six==1.17.0"
        ]
    );
    let files = repo_root().join("fixtures/pypi-local/files");
    let direct = by_name(&pins, "demo-direct").locked();
    assert_eq!(direct.source, imagelock::lock::PypiSource::Url);
    assert_eq!(direct.url, wheel);
    assert_eq!(
        direct.sha256.as_deref(),
        Some(sha256_of(&files.join("demo_direct-1.0-py3-none-any.whl")).as_str())
    );
    let bare = by_name(&pins, "demo-static").locked();
    assert_eq!(
        bare.requested.as_deref(),
        Some(sdist.as_str()),
        "as written"
    );
    assert_eq!(bare.file.as_deref(), Some("demo_static-0.5.tar.gz"));
    assert_eq!(
        bare.sha256.as_deref(),
        Some(sha256_of(&files.join("demo_static-0.5.tar.gz")).as_str())
    );
    // The dependencies say who pulled them in.
    assert_eq!(by_name(&pins, "idna").required_by, ["demo-direct"]);
    assert_eq!(by_name(&pins, "six").required_by, ["demo-static"]);
}

/// VCS and path requirements are recorded as given, never fetched; their
/// dependencies are not guessed, and the warning says so.
#[tokio::test(flavor = "multi_thread")]
async fn vcs_and_paths_are_recorded_as_given() {
    let l = Local::start();
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let reqs = [
        "git+https://git.example.invalid/o/tool.git@v1.0#egg=tool".to_string(),
        format!("pinned @ git+https://git.example.invalid/o/pinned@{sha}"),
        "./vendor/local-1.2-py3-none-any.whl".to_string(),
        // Another request on the VCS project counts as met.
        "tool>=1".to_string(),
        "six".to_string(),
    ];
    let pins = l
        .resolve(&reqs, l.client(true, None), "3.11")
        .await
        .unwrap();
    assert!(
        l.server.seen().iter().all(|s| !s.path.contains("tool")),
        "nothing is fetched for a VCS requirement"
    );
    let tool = by_name(&pins, "tool");
    assert_eq!(tool.version, None);
    let lock = tool.locked();
    assert_eq!(lock.source, imagelock::lock::PypiSource::Vcs);
    assert_eq!(lock.url, "git+https://git.example.invalid/o/tool.git");
    assert_eq!(lock.revision.as_deref(), Some("v1.0"));
    assert_eq!((lock.commit, lock.sha256, lock.file), (None, None, None));
    let warning = tool.unbuilt_warning().unwrap();
    assert!(warning.contains("not a commit id"), "{warning}");
    assert!(
        warning.contains("dependencies are not resolved"),
        "{warning}"
    );
    let pinned = by_name(&pins, "pinned").locked();
    assert_eq!(pinned.commit.as_deref(), Some(sha));
    let local = by_name(&pins, "local").locked();
    assert_eq!(local.source, imagelock::lock::PypiSource::Path);
    assert_eq!(local.version.as_deref(), Some("1.2"));
    assert_eq!(local.url, "./vendor/local-1.2-py3-none-any.whl");
    assert!(pins.iter().any(|p| p.name.as_ref() == "six"));

    let err = l
        .resolve(
            &["git+https://git.example.invalid/o/tool@v1".to_string()],
            l.client(true, None),
            "3.11",
        )
        .await
        .unwrap_err();
    insta::assert_snapshot!(err.to_string(), @r"
    cannot tell which project `git+https://git.example.invalid/o/tool@v1` is without a checkout or a build
    hint: name it: `NAME @ git+https://git.example.invalid/o/tool@v1`, or add `#egg=NAME`
    ");
}

/// Whether a host `python3` can run build backends; without one the build
/// test fails under CI and is skipped elsewhere.
fn host_python() -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import venv"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the sdist build test needs `python3` with `venv` on PATH (install python3 and python3-venv)"
        );
        eprintln!("skipped: no `python3` with `venv` on PATH");
    }
    ok
}

/// An sdist-only project with dynamic dependencies: its in-tree backend
/// runs with the host Python (nothing downloaded); `--no-build` refuses
/// and names the file; a missing Python is named.
#[tokio::test(flavor = "multi_thread")]
async fn dynamic_sdist_metadata_is_built_or_refused() {
    let l = Local::start();
    let reqs = ["dynpkg".to_string()];
    let err = l
        .resolve(&reqs, l.client(true, None), "3.11")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`dynpkg-0.3.0.tar.gz` is only an sdist whose dependencies are dynamic")
            && err.contains("--no-build"),
        "{err}"
    );
    let err = l
        .resolve(&reqs, l.client(false, Some("/nonexistent/python3")), "3.11")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`/nonexistent/python3` was not found"),
        "{err}"
    );
    if !host_python() {
        return;
    }
    let pins = l
        .resolve(&reqs, l.client(false, None), "3.11")
        .await
        .unwrap();
    let names: Vec<String> = pins
        .iter()
        .map(|p| format!("{}=={}", p.name, p.version.as_ref().unwrap()))
        .collect();
    assert_eq!(names, ["dynpkg==0.3.0", "six==1.17.0"]);
    assert_eq!(by_name(&pins, "six").required_by, ["dynpkg"]);

    // A backend that is itself a package: pip goes into the isolated
    // environment and installs it from the step's indexes first.
    let pins = l
        .resolve(&["dynbuilt".to_string()], l.client(false, None), "3.11")
        .await
        .unwrap();
    let names: Vec<String> = pins
        .iter()
        .map(|p| format!("{}=={}", p.name, p.version.as_ref().unwrap()))
        .collect();
    assert_eq!(names, ["dynbuilt==0.1.0", "six==1.17.0"]);
    let seen = l.server.seen();
    assert!(
        seen.iter()
            .any(|r| r.path.ends_with("/tinybackend-1.0-py3-none-any.whl") && r.status == 200),
        "the backend came from the index: {seen:?}"
    );
}

/// An sdist whose PKG-INFO predates PEP 643 (so it says nothing of what is
/// dynamic) but whose `[project]` table states its dependencies (PEP 621)
/// resolves without building, extras included, as uv reads it; with its
/// dependencies listed in `dynamic` it must be built, which `--no-build`
/// refuses.
#[tokio::test(flavor = "multi_thread")]
async fn static_pyproject_metadata_needs_no_build() {
    let l = Local::start();
    let pins = l
        .resolve(
            &["staticpep621[net-tools]".to_string()],
            l.client(true, None),
            "3.11",
        )
        .await
        .unwrap();
    let names: Vec<String> = pins.iter().map(|p| p.name.to_string()).collect();
    assert_eq!(names, ["idna", "six", "staticpep621"]);
    assert_eq!(by_name(&pins, "six").required_by, ["staticpep621"]);
    let pins = l
        .resolve(&["staticpep621".to_string()], l.client(true, None), "3.11")
        .await
        .unwrap();
    let names: Vec<String> = pins.iter().map(|p| p.name.to_string()).collect();
    assert_eq!(names, ["six", "staticpep621"]);

    let err = l
        .resolve(&["dynpep621".to_string()], l.client(true, None), "3.11")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`dynpep621-1.0.tar.gz` is only an sdist whose dependencies are dynamic"),
        "{err}"
    );
}

/// A dependency pulled in under a marker records the edge with its marker:
/// it tells what change to the target would drop it.
#[tokio::test(flavor = "multi_thread")]
async fn required_by_records_edges_with_their_markers() {
    let s = server();
    let run = Run {
        python: "3.10",
        ..Run::default()
    };
    let pins = resolve_with(&s, &["anyio"], run).await.unwrap();
    insta::assert_debug_snapshot!(
        pins.iter()
            .map(|p| (p.name.to_string(), p.required_by.clone()))
            .collect::<Vec<_>>()
    );
}

/// The lock entry a pin becomes on `linux/amd64`.
trait Locked {
    fn locked(&self) -> imagelock::lock::PypiPackage;
}

impl Locked for imagelock::solve::python::PinnedPackage {
    fn locked(&self) -> imagelock::lock::PypiPackage {
        imagelock::lock::PypiPackage::from_pin(self, &imagelock::oci::Platform::linux_amd64())
            .unwrap()
            .unwrap()
    }
}

/// Regression (issue 16): a project the index answers 404 for is "not on
/// the index URL", never a resolution conflict; a pin no release matches
/// names what the index has.
#[tokio::test(flavor = "multi_thread")]
async fn a_missing_project_or_version_is_said_plainly() {
    let s = server();
    let err = resolve_with(&s, &["no-such-project-here"], Run::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "`no-such-project-here` is not on the index `{}/simple`",
            s.url()
        )),
        "{err}"
    );
    assert!(!err.contains("no set of Python packages"), "{err}");
    let err = resolve_with(&s, &["six==0.0.1"], Run::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no version of six matches ==0.0.1; the index has"),
        "{err}"
    );
}

/// An in-tree build backend that fails, as an old sdist's build does on a
/// modern Python; nothing to install, so no network.
const FAILING_BACKEND: &[(&str, &[u8])] = &[
    (
        "pyproject.toml",
        b"[build-system]\nrequires = []\nbuild-backend = \"backend\"\nbackend-path = [\".\"]\n",
    ),
    (
        "backend.py",
        b"raise RuntimeError('this release does not build on this Python')\n",
    ),
];

async fn resolve_on(
    server: &StaticServer,
    reqs: &[&str],
) -> Result<Vec<PinnedPackage>, SolveError> {
    let fetch = Fetcher::new(None, false, Default::default()).unwrap();
    let client =
        Arc::new(IndexClient::new(fetch, &[format!("{}/simple", server.url())], false).unwrap());
    let request = ResolveRequest {
        requirements: reqs.iter().map(ToString::to_string).collect(),
        ..ResolveRequest::default()
    };
    pypi::resolve(client, target("3.11"), request).await
}

fn names(pins: &[PinnedPackage]) -> Vec<String> {
    pins.iter()
        .map(|p| format!("{}=={}", p.name, p.version.as_ref().unwrap()))
        .collect()
}

/// dask's shape on an index the test writes: `complete` asks for dask's
/// own other extras, the newest release needs a `distributed` that is not
/// published, and the oldest release is an sdist that does not build. The
/// resolution steps back to the newest release that works, as uv does, and
/// never reads a release below the bound or the old sdist.
#[tokio::test(flavor = "multi_thread")]
async fn an_extra_naming_its_own_package_steps_back_to_a_release_that_works() {
    let dir = tempdir();
    let mut ix = PyIndex::new(dir.path());
    ix.sdist("dask", "0.8.2", FAILING_BACKEND);
    for v in ["2025.1.0", "2026.1.0", "2026.8.0", "2026.9.0"] {
        let distributed = format!("distributed=={v}; extra == \"distributed\"");
        ix.wheel(
            "dask",
            v,
            &[
                "toolz>=0.10",
                "numpy>=1.24; extra == \"array\"",
                "dask[array]; extra == \"dataframe\"",
                "pandas>=2; extra == \"dataframe\"",
                &distributed,
                "dask[array,dataframe,distributed]; extra == \"complete\"",
            ],
        );
    }
    for v in ["2025.1.0", "2026.1.0", "2026.8.0"] {
        ix.wheel("distributed", v, &[&format!("dask=={v}")]);
    }
    ix.wheel("toolz", "1.0.0", &[]);
    ix.wheel("numpy", "2.1.0", &[]);
    ix.wheel("pandas", "2.2.3", &[]);
    let server = StaticServer::start(dir.path());
    let expected = [
        "dask==2026.8.0",
        "distributed==2026.8.0",
        "numpy==2.1.0",
        "pandas==2.2.3",
        "toolz==1.0.0",
    ];
    for req in ["dask[complete]", "dask[complete]>=2026.1"] {
        server.reset();
        let pins = resolve_on(&server, &[req])
            .await
            .unwrap_or_else(|e| panic!("{req}: {e}"));
        assert_eq!(names(&pins), expected, "{req}");
        let seen = server.seen();
        assert!(
            seen.iter()
                .all(|r| !r.path.contains("dask-0.8.2") && !r.path.contains("dask-2025.1.0")),
            "{req}: {seen:?}"
        );
    }
}

/// A release whose sdist metadata does not build is left out while
/// backtracking (an older one is chosen); when nothing else fits, the
/// error names it with the build's own message.
#[tokio::test(flavor = "multi_thread")]
async fn a_release_whose_sdist_does_not_build_is_left_out_and_named() {
    if !host_python() {
        return;
    }
    let dir = tempdir();
    let mut ix = PyIndex::new(dir.path());
    ix.wheel("tool", "1.0", &[]);
    ix.sdist("tool", "2.0", FAILING_BACKEND);
    ix.wheel("tool", "3.0", &["lib>=5"]);
    ix.wheel("lib", "1.0", &[]);
    ix.wheel("app", "1.0", &["tool"]);
    let server = StaticServer::start(dir.path());
    let pins = resolve_on(&server, &["app"]).await.unwrap();
    assert_eq!(names(&pins), ["app==1.0", "tool==1.0"]);
    // Stepping back over 2.0 is said, since pip would stop there.
    let warning = by_name(&pins, "tool").passed_over_warning().unwrap();
    assert!(
        warning.starts_with("`tool` 1.0 is locked because 2.0 cannot be used:"),
        "{warning}"
    );
    assert!(by_name(&pins, "app").passed_over_warning().is_none());
    assert!(
        server
            .seen()
            .iter()
            .any(|r| r.path.ends_with("/tool-2.0.tar.gz")),
        "the sdist was tried"
    );

    let err = resolve_on(&server, &["app", "tool>=2"])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("tool 2.0 cannot be used: `tool-2.0.tar.gz` is only an sdist whose dependencies are dynamic; building its metadata failed")
            && err.contains("this release does not build on this Python"),
        "{err}"
    );
}

/// An sdist larger than any in-memory bound (72 MiB, incompressible) is
/// streamed to disk and hashed on the way; its static `PKG-INFO` gives its
/// dependencies without a build. `[limits] max-archive-size` bounds it and
/// is named when hit.
#[tokio::test(flavor = "multi_thread")]
async fn a_huge_sdist_is_streamed_and_read_without_a_build() {
    let dir = tempdir();
    let mut ix = PyIndex::new(dir.path());
    let mut blob = vec![0u8; 72 << 20];
    fastrand::Rng::with_seed(18).fill(&mut blob);
    let pkg_info = b"Metadata-Version: 2.2\nName: bigspark\nVersion: 3.5.0\nRequires-Dist: toolz>=0.10\nRequires-Dist: pandas; extra == \"sql\"\n";
    let filename = ix.sdist_stored(
        "bigspark",
        "3.5.0",
        &[
            ("PKG-INFO", pkg_info),
            ("setup.py", b"raise SystemExit('no build')\n"),
            ("jars/spark-core.jar", &blob),
        ],
    );
    drop(blob);
    ix.wheel("toolz", "1.0.0", &[]);
    let path = dir.path().join("files").join(&filename);
    assert!(std::fs::metadata(&path).unwrap().len() > 64 << 20);
    let server = StaticServer::start(dir.path());
    let client = |cap: Option<u64>| {
        let fetch = Fetcher::new(None, false, Default::default()).unwrap();
        // Builds are refused: the metadata must come from PKG-INFO.
        let mut c = IndexClient::new(fetch, &[format!("{}/simple", server.url())], true).unwrap();
        if let Some(cap) = cap {
            c = c.with_archive_cap(cap);
        }
        Arc::new(c)
    };
    let request = ResolveRequest {
        requirements: vec!["bigspark".into()],
        ..ResolveRequest::default()
    };
    let pins = pypi::resolve(client(None), target("3.11"), request.clone())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(names(&pins), ["bigspark==3.5.0", "toolz==1.0.0"]);
    let lock = by_name(&pins, "bigspark").locked();
    assert_eq!(lock.sha256.as_deref(), Some(sha256_of(&path).as_str()));

    let err = pypi::resolve(client(Some(32 << 20)), target("3.11"), request)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("is larger than 33554432 bytes")
            && err.contains("`[limits] max-archive-size`"),
        "{err}"
    );
}

/// A PEP 517 backend published as a package (metadata only): name and
/// version from `meta.txt`, dependencies from `deps.txt`, extra build
/// requirements from `more.txt`.
const QUICKBACK: &[u8] = br#"import os

def _lines(name):
    if not os.path.exists(name):
        return []
    with open(name) as f:
        return [l.strip() for l in f if l.strip()]

def get_requires_for_build_wheel(config_settings=None):
    return _lines("more.txt")

def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    import helper_mod  # noqa: F401 (only where more.txt asked for it)
    name, version = _lines("meta.txt")[0].split()
    dist = f"{name}-{version}.dist-info"
    os.makedirs(os.path.join(metadata_directory, dist))
    lines = ["Metadata-Version: 2.2", "Name: " + name, "Version: " + version]
    lines += ["Requires-Dist: " + d for d in _lines("deps.txt")]
    with open(os.path.join(metadata_directory, dist, "METADATA"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return dist
"#;

/// Build environments are kept by their resolved build requirements: two
/// sdists whose requirements are written differently but resolve to the
/// same set share one environment (one venv, installed once), and a backend
/// asking for more is built in the environment of everything it needs.
#[tokio::test(flavor = "multi_thread")]
async fn build_environments_are_shared_by_resolved_requirements() {
    if !host_python() {
        return;
    }
    let dir = tempdir();
    let mut ix = PyIndex::new(dir.path());
    ix.wheel_with("quickback", "1.0", &[], &[("quickback.py", QUICKBACK)]);
    ix.wheel("helper", "1.0", &[]);
    ix.wheel("six", "1.17.0", &[]);
    let sdist = |ix: &mut PyIndex, name: &str, requires: &str, more: &str| {
        let pyproject =
            format!("[build-system]\nrequires = [{requires}]\nbuild-backend = \"quickback\"\n");
        let meta = format!("{name} 1.0\n");
        ix.sdist(
            name,
            "1.0",
            &[
                ("pyproject.toml", pyproject.as_bytes()),
                ("meta.txt", meta.as_bytes()),
                ("deps.txt", b"six\n"),
                ("more.txt", more.as_bytes()),
            ],
        );
    };
    // `import helper_mod` fails unless the environment has helper: an
    // environment shared wrongly would be seen.
    sdist(&mut ix, "pa", "\"quickback\", \"helper\"", "");
    sdist(&mut ix, "pb", "\"quickback>=0.5\", \"helper\"", "");
    sdist(&mut ix, "pc", "\"quickback\"", "helper\n");
    sdist(&mut ix, "pd", "\"quickback\", \"helper\"", "");
    let server = StaticServer::start(dir.path());
    let cache = tempdir();
    let fetch = Fetcher::new(Some(cache.path().into()), false, Default::default()).unwrap();
    let client =
        Arc::new(IndexClient::new(fetch, &[format!("{}/simple", server.url())], false).unwrap());
    let resolve = |reqs: &[&str]| {
        let request = ResolveRequest {
            requirements: reqs.iter().map(ToString::to_string).collect(),
            ..ResolveRequest::default()
        };
        pypi::resolve(client.clone(), target("3.11"), request)
    };
    // The environments kept beside the cache, one per resolved set.
    let envs = || {
        let mut names: Vec<String> = std::fs::read_dir(cache.path().join("build-envs"))
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("env-") && !n.ends_with(".lock"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    };
    let pins = resolve(&["pa", "pb"])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(names(&pins), ["pa==1.0", "pb==1.0", "six==1.17.0"]);
    let shared = envs();
    assert_eq!(shared.len(), 1, "{shared:?}");
    // The same requirements written the same way in the same run: pip is
    // not even asked to resolve them again.
    server.reset();
    let pins = resolve(&["pd"]).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(names(&pins), ["pd==1.0", "six==1.17.0"]);
    let seen = server.seen();
    assert!(
        !seen.iter().any(|r| r.path.contains("quickback")),
        "{seen:?}"
    );
    // pc's backend asks for helper itself: an environment with it is made
    // (not the one pa and pb share, whose key differs).
    let pins = resolve(&["pc"]).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(names(&pins), ["pc==1.0", "six==1.17.0"]);
    // pc's first environment holds quickback alone; the one with helper
    // is pa's and pb's, reused.
    let after = envs();
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(after.contains(&shared[0]), "{after:?}");
}

/// What the index client says it is doing.
#[derive(Default)]
struct Notes(std::sync::Mutex<Vec<String>>);

impl pypi::PypiProgress for Notes {
    fn building_sdist(&self, filename: &str) {
        self.0.lock().unwrap().push(format!("build {filename}"));
    }

    fn building_with_pip(&self, filename: &str, why: &str) {
        self.0
            .lock()
            .unwrap()
            .push(format!("pip {filename}: {why}"));
    }
}

/// The in-tree backend of an sdist-only build requirement (`sdistback`,
/// whose module is QUICKBACK): pip can build it, imagelock does not.
const SDISTBACK_BACKEND: &[u8] = br#"import os, zipfile
DIST = "sdistback-1.0"
META = "Metadata-Version: 2.1\nName: sdistback\nVersion: 1.0\n"

def get_requires_for_build_wheel(config_settings=None):
    return []

def prepare_metadata_for_build_wheel(d, config_settings=None):
    os.makedirs(os.path.join(d, DIST + ".dist-info"))
    with open(os.path.join(d, DIST + ".dist-info", "METADATA"), "w") as f:
        f.write(META)
    return DIST + ".dist-info"

def build_wheel(d, config_settings=None, metadata_directory=None):
    name = DIST + "-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(d, name), "w") as z:
        with open("sdistback.py", "rb") as f:  # mtime 0: not z.write
            z.writestr("sdistback.py", f.read())
        z.writestr(DIST + ".dist-info/METADATA", META)
        z.writestr(DIST + ".dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: t\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(DIST + ".dist-info/RECORD", "")
    return name
"#;

/// The site-packages of the build environment `env`.
fn site_packages(env: &Path) -> std::path::PathBuf {
    let lib = env.join("lib");
    let py = std::fs::read_dir(&lib)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("python")
        })
        .unwrap_or_else(|| panic!("no python* under {}", lib.display()));
    py.join("site-packages")
}

/// A build environment made without pip: the build requirements are
/// resolved by imagelock, their wheels fetched from the index and unpacked
/// (`.data/purelib` merged into site-packages), and no pip is installed,
/// run or asked for. A build requirement that is only an sdist goes back
/// to pip, and says so.
#[tokio::test(flavor = "multi_thread")]
async fn build_environments_are_made_without_pip() {
    if !host_python() {
        return;
    }
    let dir = tempdir();
    let mut ix = PyIndex::new(dir.path());
    ix.wheel_with("quickback", "1.0", &[], &[("quickback.py", QUICKBACK)]);
    // The backend imports helper_mod, which this wheel keeps in
    // `.data/purelib`: the build fails unless it is merged.
    ix.wheel_with(
        "helper",
        "1.0",
        &[],
        &[("helper-1.0.data/purelib/helper_mod.py", b"")],
    );
    ix.wheel("six", "1.17.0", &[]);
    let sdist = |ix: &mut PyIndex, name: &str, requires: &str| {
        let pyproject = format!(
            "[build-system]\nrequires = [{requires}]\nbuild-backend = \"{}\"\n",
            if requires.contains("sdistback") {
                "sdistback"
            } else {
                "quickback"
            }
        );
        let meta = format!("{name} 1.0\n");
        ix.sdist(
            name,
            "1.0",
            &[
                ("pyproject.toml", pyproject.as_bytes()),
                ("meta.txt", meta.as_bytes()),
                ("deps.txt", b"six\n"),
            ],
        );
    };
    sdist(&mut ix, "pa", "\"quickback\", \"helper\"");
    sdist(&mut ix, "pe", "\"sdistback\", \"helper\"");
    ix.sdist(
        "sdistback",
        "1.0",
        &[
            (
                "pyproject.toml",
                b"[build-system]\nrequires = []\nbuild-backend = \"inplace\"\nbackend-path = [\".\"]\n",
            ),
            ("inplace.py", SDISTBACK_BACKEND),
            ("sdistback.py", QUICKBACK),
        ],
    );
    let server = StaticServer::start(dir.path());
    let cache = tempdir();
    let notes = Arc::new(Notes::default());
    let fetch = Fetcher::new(Some(cache.path().into()), false, Default::default()).unwrap();
    let client = Arc::new(
        IndexClient::new(fetch, &[format!("{}/simple", server.url())], false)
            .unwrap()
            .with_progress(Some(notes.clone())),
    );
    let resolve = |reqs: &[&str]| {
        let request = ResolveRequest {
            requirements: reqs.iter().map(ToString::to_string).collect(),
            ..ResolveRequest::default()
        };
        pypi::resolve(client.clone(), target("3.11"), request)
    };
    let envs = || {
        let mut paths: Vec<std::path::PathBuf> = std::fs::read_dir(cache.path().join("build-envs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let n = p.file_name().unwrap().to_string_lossy().into_owned();
                n.starts_with("env-") && !n.ends_with(".lock")
            })
            .collect();
        paths.sort();
        paths
    };

    let pins = resolve(&["pa"]).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(names(&pins), ["pa==1.0", "six==1.17.0"]);
    assert_eq!(*notes.0.lock().unwrap(), ["build pa-1.0.tar.gz"]);
    let made = envs();
    assert_eq!(made.len(), 1, "{made:?}");
    let site = site_packages(&made[0]);
    assert!(site.join("quickback.py").is_file());
    assert!(
        site.join("helper_mod.py").is_file(),
        "`.data/purelib` merged"
    );
    assert!(!site.join("helper-1.0.data").exists());
    assert_eq!(
        std::fs::read_to_string(site.join("quickback-1.0.dist-info/INSTALLER")).unwrap(),
        "imagelock\n"
    );
    let listed: Vec<String> = std::fs::read_dir(&site)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !listed.iter().any(|n| n == "pip" || n.starts_with("pip-")),
        "{listed:?}"
    );
    let seen = server.seen();
    assert!(
        seen.iter()
            .all(|r| !r.path.contains("/pip") && !r.path.contains("setuptools")),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|r| r.path.ends_with("/quickback-1.0-py3-none-any.whl") && r.status == 200),
        "{seen:?}"
    );

    // sdistback has no wheel: pip makes that environment (and installs
    // what it built there), and the reason is given.
    let pins = resolve(&["pe"]).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(names(&pins), ["pe==1.0", "six==1.17.0"]);
    let said = notes.0.lock().unwrap().clone();
    assert_eq!(
        said[1..],
        [
            "build pe-1.0.tar.gz".to_string(),
            "pip pe-1.0.tar.gz: a build requirement in reach, `sdistback-1.0.tar.gz` is only an sdist".to_string(),
        ],
        "{said:?}"
    );
    let by_pip: Vec<_> = envs().into_iter().filter(|e| !made.contains(e)).collect();
    assert_eq!(by_pip.len(), 1, "{by_pip:?}");
    assert_eq!(
        std::fs::read_to_string(
            site_packages(&by_pip[0]).join("sdistback-1.0.dist-info/INSTALLER")
        )
        .unwrap(),
        "pip\n"
    );
}

/// Issue 18: prefetching follows dependencies' dependencies as uv does.
/// Told only of `top`, the source fetches, without the solver asking, the
/// pages and best candidates' metadata of the whole chain below it
/// (`top` → `mid[fast]` → `leaf` → `deep`, and `speedup` through the
/// extra), for the target's markers only, never a release outside the
/// range nor an sdist (its page only: building it is the solver's call).
/// A resolution on the same client then asks the server only for what
/// the prefetch did not already fetch: no file is requested twice.
#[tokio::test(flavor = "multi_thread")]
async fn prefetch_follows_dependencies_of_dependencies() {
    use imagelock::solve::python::PackageSource as _;
    use std::str::FromStr as _;

    let dir = tempdir();
    let mut ix = PyIndex::new(dir.path());
    ix.wheel(
        "top",
        "1.0",
        &["mid[fast]>=1", "winonly; sys_platform == 'win32'"],
    );
    ix.wheel("mid", "0.5", &[]);
    ix.wheel("mid", "1.0", &["leaf<3", "speedup; extra == 'fast'"]);
    ix.wheel("leaf", "2.0", &["deep"]);
    ix.wheel("leaf", "3.0", &[]);
    ix.wheel("speedup", "1.0", &[]);
    ix.wheel("deep", "1.0", &["srconly"]);
    ix.wheel("winonly", "1.0", &[]);
    ix.sdist(
        "srconly",
        "1.0",
        &[(
            "PKG-INFO",
            b"Metadata-Version: 2.2\nName: srconly\nVersion: 1.0\n",
        )],
    );
    let s = StaticServer::start(dir.path());
    let fetch = Fetcher::new(None, false, Default::default()).unwrap();
    let client =
        Arc::new(IndexClient::new(fetch, &[format!("{}/simple", s.url())], false).unwrap());
    let source = pypi::IndexSource::new(
        client.clone(),
        tokio::runtime::Handle::current(),
        target("3.11"),
        ResolveOptions::default(),
    );
    let top = pep508_rs::PackageName::from_str("top").unwrap();
    source.prefetch(&top, &[], &pubgrub::Ranges::full());

    let paths =
        |s: &StaticServer| -> Vec<String> { s.seen().into_iter().map(|r| r.path).collect() };
    let expected = [
        "/simple/top/",
        "/files/top-1.0-py3-none-any.whl.metadata",
        "/simple/mid/",
        "/files/mid-1.0-py3-none-any.whl.metadata",
        "/simple/leaf/",
        "/files/leaf-2.0-py3-none-any.whl.metadata",
        "/simple/speedup/",
        "/files/speedup-1.0-py3-none-any.whl.metadata",
        "/simple/deep/",
        "/files/deep-1.0-py3-none-any.whl.metadata",
        "/simple/srconly/",
    ];
    let start = std::time::Instant::now();
    while !expected.iter().all(|e| paths(&s).iter().any(|p| p == e)) {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "prefetch stopped short: {:?}",
            paths(&s)
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Nothing more arrives: what is not wanted is never asked for.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut prefetched = paths(&s);
    prefetched.sort();
    let mut want: Vec<String> = expected.iter().map(ToString::to_string).collect();
    want.sort();
    assert_eq!(prefetched, want, "the prefetch asked for exactly the chain");

    // The solver's own requests find the prefetched answers: only the
    // sdist (read for its static PKG-INFO) is new, and nothing is asked
    // for twice.
    let request = ResolveRequest {
        requirements: vec!["top".into()],
        ..ResolveRequest::default()
    };
    let out = pypi::resolve(client, target("3.11"), request)
        .await
        .unwrap();
    let mut got = names(&out);
    got.sort();
    assert_eq!(
        got,
        [
            "deep==1.0",
            "leaf==2.0",
            "mid==1.0",
            "speedup==1.0",
            "srconly==1.0",
            "top==1.0"
        ]
    );
    let all = paths(&s);
    let mut unique = all.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        all.len(),
        "a file was requested twice: {all:?}"
    );
    let new: Vec<_> = all[prefetched.len()..].to_vec();
    assert_eq!(new, ["/files/srconly-1.0.tar.gz"], "{all:?}");
}

/// A version manager's `python3` (pyenv's and asdf's are shell scripts that
/// pick the interpreter on every start) is run once, for the probe; the
/// builds run the interpreter it names. The shim here logs each start.
#[tokio::test(flavor = "multi_thread")]
async fn a_python_shim_is_run_once_and_builds_run_its_interpreter() {
    if !host_python() {
        return;
    }
    let dir = tempdir();
    let mut ix = PyIndex::new(dir.path());
    ix.wheel_with("quickback", "1.0", &[], &[("quickback.py", QUICKBACK)]);
    ix.wheel_with("helper", "1.0", &[], &[("helper_mod.py", b"")]);
    ix.wheel("six", "1.17.0", &[]);
    for name in ["pa", "pb"] {
        ix.sdist(
            name,
            "1.0",
            &[
                (
                    "pyproject.toml",
                    b"[build-system]\nrequires = [\"quickback\", \"helper\"]\nbuild-backend = \"quickback\"\n",
                ),
                ("meta.txt", format!("{name} 1.0\n").as_bytes()),
                ("deps.txt", b"six\n"),
            ],
        );
    }
    let server = StaticServer::start(dir.path());
    let shim = dir.path().join("python3-shim");
    let log = dir.path().join("shim.log");
    std::fs::write(
        &shim,
        format!(
            "#!/bin/sh\necho started >> '{}'\nexec python3 \"$@\"\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&shim, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let cache = tempdir();
    let fetch = Fetcher::new(Some(cache.path().into()), false, Default::default()).unwrap();
    let client = Arc::new(
        IndexClient::new(fetch, &[format!("{}/simple", server.url())], false)
            .unwrap()
            .with_build_python(&shim),
    );
    let request = ResolveRequest {
        requirements: vec!["pa".into(), "pb".into()],
        ..ResolveRequest::default()
    };
    let pins = pypi::resolve(client, target("3.11"), request)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(names(&pins), ["pa==1.0", "pb==1.0", "six==1.17.0"]);
    let starts = std::fs::read_to_string(&log).unwrap();
    assert_eq!(starts.lines().count(), 1, "the shim ran for the builds too");
}

/// A `pyproject.toml` whose `[project]` table states the dependencies
/// (PEP 621) for a backend that honours it: read from the unpacked tree,
/// no build needed.
const STATED_PYPROJECT: &[u8] = b"[build-system]\nrequires = [\"setuptools>=61\"]\nbuild-backend = \"setuptools.build_meta\"\n\n[project]\nname = \"streamed\"\nversion = \"1.0\"\ndependencies = [\"toolz>=0.10\"]\n";

/// An sdist of `streamed` 1.0 (PKG-INFO older than PEP 643, so the tree
/// is unpacked for a build) with 4 MiB of incompressible data after its
/// `pyproject.toml`; returns its filename.
fn streamed_sdist(ix: &mut PyIndex) -> String {
    let mut blob = vec![0u8; 4 << 20];
    fastrand::Rng::with_seed(10).fill(&mut blob);
    ix.sdist(
        "streamed",
        "1.0",
        &[
            (
                "PKG-INFO",
                b"Metadata-Version: 2.1\nName: streamed\nVersion: 1.0\n",
            ),
            ("pyproject.toml", STATED_PYPROJECT),
            ("data/blob.bin", &blob),
        ],
    )
}

fn client_of(index: String) -> Arc<IndexClient> {
    let fetch = Fetcher::new(None, false, Default::default()).unwrap();
    Arc::new(IndexClient::new(fetch, &[index], false).unwrap())
}

fn streamed_only(n: usize) -> pypi::SdistTrees {
    pypi::SdistTrees {
        streamed: n,
        ..Default::default()
    }
}

/// A `.tar.gz` sdist that may be built is unpacked from its bytes as they
/// arrive (sent in 16 parts, 20 ms apart), not read again from the file
/// once downloaded; an sdist whose PKG-INFO states its metadata is read
/// from the stream too, and a `file://` index goes the same way.
#[tokio::test(flavor = "multi_thread")]
async fn a_large_sdist_is_unpacked_as_it_downloads() {
    let dir = tempdir();
    let mut ix = PyIndex::new(dir.path());
    streamed_sdist(&mut ix);
    ix.sdist(
        "stated",
        "2.0",
        &[(
            "PKG-INFO",
            b"Metadata-Version: 2.2\nName: stated\nVersion: 2.0\nRequires-Dist: toolz\n",
        )],
    );
    ix.wheel("toolz", "1.0.0", &[]);
    let server = StaticServer::start_paced(
        dir.path(),
        Pace {
            parts: 16,
            pause: std::time::Duration::from_millis(20),
        },
    );
    for index in [
        format!("{}/simple", server.url()),
        format!("file://{}/simple", dir.path().display()),
    ] {
        let client = client_of(index.clone());
        let pins = resolve_with_client(&client, &["streamed"]).await;
        assert_eq!(names(&pins), ["streamed==1.0", "toolz==1.0.0"], "{index}");
        assert_eq!(client.sdist_trees(), streamed_only(1), "{index}");
        let pins = resolve_with_client(&client, &["stated"]).await;
        assert_eq!(names(&pins), ["stated==2.0", "toolz==1.0.0"], "{index}");
        assert_eq!(client.sdist_trees(), streamed_only(2), "{index}");
    }
}

async fn resolve_with_client(client: &Arc<IndexClient>, reqs: &[&str]) -> Vec<PinnedPackage> {
    let request = ResolveRequest {
        requirements: reqs.iter().map(ToString::to_string).collect(),
        ..ResolveRequest::default()
    };
    pypi::resolve(client.clone(), target("3.11"), request)
        .await
        .unwrap_or_else(|e| panic!("{reqs:?}: {e}"))
}

/// The error resolving `reqs` with `client` gives, as shown.
async fn resolve_error(client: &Arc<IndexClient>, reqs: &[&str]) -> String {
    let request = ResolveRequest {
        requirements: reqs.iter().map(ToString::to_string).collect(),
        ..ResolveRequest::default()
    };
    match pypi::resolve(client.clone(), target("3.11"), request).await {
        Ok(pins) => panic!("{reqs:?} resolved: {pins:?}"),
        Err(e) => e.to_string(),
    }
}

/// An sdist whose bytes are not those the index states: what was unpacked
/// from them is dropped, and the error is the hash mismatch, as without
/// streaming.
#[tokio::test(flavor = "multi_thread")]
async fn a_streamed_sdist_whose_hash_differs_is_discarded() {
    let dir = tempdir();
    let mut ix = PyIndex::new(dir.path());
    let filename = streamed_sdist(&mut ix);
    let listed = sha256_of(&dir.path().join("files").join(&filename));
    // Other bytes behind the listed hash.
    let other = tempdir();
    let mut ox = PyIndex::new(other.path());
    ox.sdist(
        "streamed",
        "1.0",
        &[("pyproject.toml", STATED_PYPROJECT), ("extra.txt", b"x")],
    );
    std::fs::copy(
        other.path().join("files").join(&filename),
        dir.path().join("files").join(&filename),
    )
    .unwrap();
    let server = StaticServer::start(dir.path());
    let client = client_of(format!("{}/simple", server.url()));
    let err = resolve_error(&client, &["streamed"]).await;
    assert!(
        err.contains(&format!(
            "the metadata of `{filename}` does not match its sha256 (expected {listed}, got "
        )),
        "{err}"
    );
    assert_eq!(
        client.sdist_trees(),
        pypi::SdistTrees {
            discarded: 1,
            ..Default::default()
        }
    );
}

/// A `.tar.gz` written with raw member names (so `..` can be tested).
fn raw_targz(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in members {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &b.into_inner().unwrap()).unwrap();
    gz.finish().unwrap()
}

/// A gzip stream corrupt half-way, and a member outside the archive, stop
/// the unpacking from the stream without failing by themselves: the file
/// is read again as without streaming, and the build's error names the
/// sdist and what is wrong, as before.
#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_or_escaping_streamed_sdist_gives_the_error_it_gave_before() {
    if !host_python() {
        return;
    }
    let dir = tempdir();
    let mut ix = PyIndex::new(dir.path());
    let head: [(&str, &[u8]); 2] = [
        (
            "broken-1.0/PKG-INFO",
            b"Metadata-Version: 2.1\nName: broken\nVersion: 1.0\n",
        ),
        ("broken-1.0/pyproject.toml", FAILING_BACKEND[0].1),
    ];
    // Corrupt: the second half of the deflate stream overwritten.
    let blob: String = (0..60_000u32)
        .map(|i| format!("line {i} {}\n", i * 7919 % 10007))
        .collect();
    let blob = blob.as_bytes();
    let mut corrupt = raw_targz(&[head[0], head[1], ("broken-1.0/blob.bin", blob)]);
    let half = corrupt.len() / 2;
    corrupt[half..half + 4096].fill(0xff);
    let corrupt_error = archive::unpack_sdist(&corrupt[..], tempdir().path()).unwrap_err();
    // The part before the temporary directory it names.
    let corrupt_error = corrupt_error.split(" `/").next().unwrap().to_string();
    assert!(
        corrupt_error.contains("broken-1.0/blob.bin"),
        "{corrupt_error}"
    );
    let escaping = raw_targz(&[head[0], head[1], ("broken-1.0/../../evil", b"x")]);
    for (version, bytes, why) in [
        ("1.0", corrupt, corrupt_error.as_str()),
        (
            "1.1",
            escaping,
            "`broken-1.0/../../evil` is outside the archive",
        ),
    ] {
        let filename = format!("broken-{version}.tar.gz");
        std::fs::write(dir.path().join("files").join(&filename), bytes).unwrap();
        ix.add_written("broken", &filename);
        let server = StaticServer::start(dir.path());
        let client = client_of(format!("{}/simple", server.url()));
        let err = resolve_error(&client, &[&format!("broken=={version}")]).await;
        assert!(
            err.contains(&format!(
                "`{filename}` is only an sdist whose dependencies are dynamic; building its metadata failed: unpacking: {why}"
            )),
            "{err}"
        );
        assert_eq!(
            client.sdist_trees(),
            pypi::SdistTrees {
                fell_back: 1,
                from_file: 2,
                ..Default::default()
            },
            "{filename}"
        );
        assert!(!dir.path().join("evil").exists());
    }
}

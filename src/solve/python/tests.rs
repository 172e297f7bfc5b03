//! Resolution semantics against an in-memory source.

use std::str::FromStr;

use pep440_rs::{Version, VersionSpecifiers};

use super::resolver::specifiers_to_range;
use super::*;

fn target(py: &str, platform: &str) -> TargetEnv {
    TargetEnv::cpython(Some(py), platform, Some(Libc::glibc("2.28").unwrap())).unwrap()
}

fn pins(out: &[PinnedPackage]) -> Vec<String> {
    out.iter()
        .map(|p| {
            let mark = if p.source == PinnedSource::Installed {
                " (installed)"
            } else {
                ""
            };
            format!("{}=={}{mark}", p.name, p.version.as_ref().unwrap())
        })
        .collect()
}

fn run(source: &MemorySource, reqs: &[&str]) -> Result<Vec<String>, SolveError> {
    run_with(source, reqs, ResolveOptions::default(), &[], &[])
}

fn run_with(
    source: &MemorySource,
    reqs: &[&str],
    options: ResolveOptions,
    constraints: &[&str],
    installed: &[(&str, &str)],
) -> Result<Vec<String>, SolveError> {
    let req = ResolveRequest {
        requirements: reqs.iter().map(ToString::to_string).collect(),
        constraints: constraints.iter().map(ToString::to_string).collect(),
        installed: installed
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        options,
    };
    resolve(source, &target("3.11", "linux/amd64"), &req).map(|o| pins(&o))
}

fn world() -> MemorySource {
    let mut s = MemorySource::default();
    s.add("app", "1.0", &["lib>=1", "extra-only; extra == 'fast'"]);
    s.add(
        "app",
        "2.0",
        &[
            "lib>=2",
            "extra-only; extra == 'fast'",
            "old-py; python_version < '3.11'",
            "arm; platform_machine == 'aarch64'",
        ],
    );
    s.add("lib", "1.0", &[]);
    s.add("lib", "2.0", &[]);
    s.add("lib", "3.0b1", &[]);
    s.add("extra-only", "1.0", &[]);
    s.add("old-py", "1.0", &[]);
    s.add("arm", "1.0", &[]);
    s
}

#[test]
fn picks_newest_stable_and_evaluates_target_markers() {
    assert_eq!(run(&world(), &["app"]).unwrap(), ["app==2.0", "lib==2.0"]);
}

#[test]
fn extras_pull_their_requirements() {
    assert_eq!(
        run(&world(), &["app[fast]"]).unwrap(),
        ["app==2.0", "extra-only==1.0", "lib==2.0"]
    );
}

#[test]
fn pre_releases_when_asked_or_only_match() {
    assert_eq!(run(&world(), &["lib>=3.0b1"]).unwrap(), ["lib==3.0b1"]);
    let pre = ResolveOptions {
        pre: true,
        ..ResolveOptions::default()
    };
    assert_eq!(
        run_with(&world(), &["lib"], pre, &[], &[]).unwrap(),
        ["lib==3.0b1"]
    );
    assert_eq!(run(&world(), &["lib>2"]).unwrap(), ["lib==3.0b1"]);
    assert_eq!(run(&world(), &["lib"]).unwrap(), ["lib==2.0"]);
}

#[test]
fn constraints_limit_without_adding() {
    assert_eq!(
        run_with(
            &world(),
            &["app"],
            ResolveOptions::default(),
            &["lib<2", "arm==1.0"],
            &[]
        )
        .unwrap(),
        ["app==1.0", "lib==1.0"]
    );
}

#[test]
fn no_deps_installs_only_the_request() {
    let o = ResolveOptions {
        no_deps: true,
        ..ResolveOptions::default()
    };
    assert_eq!(
        run_with(&world(), &["app[fast]"], o, &[], &[]).unwrap(),
        ["app==2.0"]
    );
}

#[test]
fn installed_packages_are_kept_when_they_satisfy() {
    let out = run_with(
        &world(),
        &["app"],
        ResolveOptions::default(),
        &[],
        &[("lib", "2.0"), ("app", "1.0")],
    )
    .unwrap();
    assert_eq!(out, ["app==1.0 (installed)", "lib==2.0 (installed)"]);
    // `-U` moves the requested package, but keeps satisfied dependencies.
    let up = ResolveOptions {
        upgrade: Upgrade::Requested,
        ..ResolveOptions::default()
    };
    let out = run_with(
        &world(),
        &["app"],
        up,
        &[],
        &[("lib", "2.0"), ("app", "1.0")],
    )
    .unwrap();
    assert_eq!(out, ["app==2.0", "lib==2.0 (installed)"]);
    // An installed version that does not satisfy is replaced.
    let out = run_with(
        &world(),
        &["lib>=2"],
        ResolveOptions::default(),
        &[],
        &[("lib", "1.0")],
    )
    .unwrap();
    assert_eq!(out, ["lib==2.0"]);
}

/// pip's `--upgrade-strategy eager` (and `uv pip install --upgrade`)
/// moves installed dependencies too; the default `only-if-needed` keeps
/// them (above).
#[test]
fn eager_upgrade_moves_every_package() {
    let mut s = world();
    s.add("lib", "2.5", &[]);
    let eager = ResolveOptions {
        upgrade: Upgrade::All,
        ..ResolveOptions::default()
    };
    let installed = &[("lib", "2.0"), ("app", "1.0")];
    let out = run_with(&s, &["app"], eager, &[], installed).unwrap();
    assert_eq!(out, ["app==2.0", "lib==2.5"]);
    let only_if_needed = ResolveOptions {
        upgrade: Upgrade::Requested,
        ..ResolveOptions::default()
    };
    let out = run_with(&s, &["app"], only_if_needed, &[], installed).unwrap();
    assert_eq!(out, ["app==2.0", "lib==2.0 (installed)"]);
}

/// uv's `--resolution lowest` takes the oldest version of every package
/// that fits; `lowest-direct` only of the requested ones. Bounds and
/// pre-release rules hold as for the newest.
#[test]
fn lowest_resolutions() {
    let lowest = |r| ResolveOptions {
        resolution: r,
        ..ResolveOptions::default()
    };
    let mut s = world();
    s.add("app", "0.9b1", &["lib>=1"]);
    let out = run_with(&s, &["app"], lowest(Resolution::Lowest), &[], &[]).unwrap();
    assert_eq!(out, ["app==1.0", "lib==1.0"]);
    let out = run_with(&s, &["app>=2"], lowest(Resolution::Lowest), &[], &[]).unwrap();
    assert_eq!(out, ["app==2.0", "lib==2.0"]);
    let out = run_with(&s, &["app"], lowest(Resolution::LowestDirect), &[], &[]).unwrap();
    assert_eq!(out, ["app==1.0", "lib==2.0"]);
}

#[test]
fn yanked_only_when_pinned() {
    let mut s = world();
    s.add("lib", "2.1", &[]).yanked = Some("broken".into());
    assert_eq!(run(&s, &["lib"]).unwrap(), ["lib==2.0"]);
    assert_eq!(run(&s, &["lib==2.1"]).unwrap(), ["lib==2.1"]);
}

#[test]
fn requires_python_and_exclude_newer() {
    let mut s = world();
    s.add("lib", "2.2", &[]).requires_python = Some(">=3.12".into());
    assert_eq!(run(&s, &["lib"]).unwrap(), ["lib==2.0"]);
    let mut s = MemorySource::default();
    s.add("x", "1.0", &[]).upload_time = Some("2023-01-01T00:00:00Z".into());
    s.add("x", "2.0", &[]).upload_time = Some("2024-06-01T00:00:00Z".into());
    let o = ResolveOptions {
        exclude_newer: Some("2024-01-01".into()),
        ..ResolveOptions::default()
    };
    assert_eq!(run_with(&s, &["x"], o, &[], &[]).unwrap(), ["x==1.0"]);
}

#[test]
fn best_wheel_by_tag_priority() {
    let mut s = MemorySource::default();
    s.add_file(
        "np",
        "1.0",
        &[],
        "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64",
    );
    s.add_file("np", "1.0", &[], "cp311-cp311-manylinux_2_28_x86_64");
    s.add_file("np", "1.0", &[], "cp311-cp311-manylinux_2_34_x86_64");
    s.add_file("np", "1.0", &[], "cp311-cp311-manylinux_2_28_aarch64");
    s.add_file("np", "1.0", &[], "py3-none-any");
    let req = ResolveRequest {
        requirements: vec!["np".into()],
        ..ResolveRequest::default()
    };
    let out = resolve(&s, &target("3.11", "linux/amd64"), &req).unwrap();
    let PinnedSource::Index(f) = &out[0].source else {
        panic!()
    };
    assert_eq!(f.filename, "np-1.0-cp311-cp311-manylinux_2_28_x86_64.whl");
    let out = resolve(&s, &target("3.12", "linux/amd64"), &req).unwrap();
    let PinnedSource::Index(f) = &out[0].source else {
        panic!()
    };
    assert_eq!(f.filename, "np-1.0-py3-none-any.whl");
}

#[test]
fn conflict_is_explained() {
    let mut s = world();
    s.add("other", "1.0", &["lib<2"]);
    let err = run(&s, &["app>=2", "other"])
        .unwrap_err()
        .with_context("image `demo`, Dockerfile:4");
    insta::assert_snapshot!(err.to_string());
}

#[test]
fn missing_project_and_bad_requirement() {
    let err = run(&world(), &["nope"]).unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
    let err = run(&world(), &["app >= = 1"]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("`app >= = 1` is not a valid requirement"),
        "{err}"
    );
}

#[test]
fn pep440_edge_cases() {
    let contains = |spec: &str, v: &str| {
        specifiers_to_range(&VersionSpecifiers::from_str(spec).unwrap())
            .contains(&Version::from_str(v).unwrap())
    };
    assert!(contains("~=1.4.5", "1.4.9"));
    assert!(!contains("~=1.4.5", "1.5.0"));
    assert!(contains("~=2.2", "2.9"));
    assert!(!contains("~=2.2", "3.0"));
    assert!(contains("==1.4.*", "1.4.0rc1"));
    assert!(!contains("==1.4.*", "1.5"));
    assert!(contains("!=1.4.*", "1.5"));
    assert!(contains("==1.0", "1.0+cpu"));
    assert!(!contains("==1.0", "1.0.post1"));
    assert!(!contains("==1.0+cpu", "1.0+cu121"));
    assert!(contains("===1.0", "1.0"));
    assert!(!contains("<2.0", "2.0rc1"));
    assert!(contains("<2.0rc2", "2.0rc1"));
    assert!(!contains(">1.0", "1.0.post1"));
    assert!(contains(">1.0.post1", "1.0.post2"));
    assert!(!contains("!=1.0", "1.0+local"));
    assert!(contains(">=1.0", "1!0.5"));
    assert!(Version::from_str("1.0.dev1").unwrap() < Version::from_str("1.0a1").unwrap());
    assert!(Version::from_str("1.0").unwrap() < Version::from_str("1.0.post1").unwrap());
}

#[test]
fn exact_pins_of_post_and_dev_releases_match_them_and_their_locals() {
    let mut s = MemorySource::default();
    for v in [
        "2.8.2",
        "2.9.0",
        "2.9.0.post0",
        "2.9.0.post1",
        "3.0.dev1",
        "3.0.dev2",
    ] {
        s.add("dateutil", v, &[]);
    }
    let one = |spec: &str| run(&s, &[spec]).unwrap();
    assert_eq!(one("dateutil==2.9.0.post0"), ["dateutil==2.9.0.post0"]);
    assert_eq!(one("dateutil==2.9.0"), ["dateutil==2.9.0"]);
    assert_eq!(one("dateutil==3.0.dev1"), ["dateutil==3.0.dev1"]);
    assert_eq!(one("dateutil!=2.9.0.post1,<3"), ["dateutil==2.9.0.post0"]);
    let range = |spec: &str| specifiers_to_range(&VersionSpecifiers::from_str(spec).unwrap());
    let v = |s: &str| Version::from_str(s).unwrap();
    assert!(range("==2.9.0.post0").contains(&v("2.9.0.post0+deb12")));
    assert!(!range("==2.9.0.post0").contains(&v("2.9.0.post1")));
    assert!(!range("==2.9.0").contains(&v("2.9.0.post0")));
    assert!(range("==3.0.dev1").contains(&v("3.0.dev1+x")));
    assert!(!range("==3.0.dev1").contains(&v("3.0.dev2")));
}

/// Regression (issue 16): a pin the index has no version for says so, with
/// what the index has, rather than blaming the Python bound of a newer
/// release.
#[test]
fn a_version_the_index_does_not_list_is_named() {
    let mut s = MemorySource::default();
    for v in ["1.21.0", "1.26.4", "2.0.0", "2.1.0", "2.2.0", "2.3.0"] {
        s.add("numpy", v, &[]);
    }
    s.add("numpy", "2.5.5", &[]).requires_python = Some(">=3.12".into());
    let err = run(&s, &["numpy==0.0.1"]).unwrap_err().to_string();
    assert!(
        err.contains(
            "no version of numpy matches ==0.0.1; the index has 7 versions, 1.21.0 to 2.5.5"
        ),
        "{err}"
    );
    assert!(!err.contains("requires Python"), "{err}");
    // A version the index has but the target cannot use keeps the reason.
    let err = run(&s, &["numpy==2.5.5"]).unwrap_err().to_string();
    assert!(err.contains("requires Python >=3.12"), "{err}");
}

/// Regression (issue 16): a project no index has is "not on the index",
/// never a resolution conflict, whether asked for or pulled in.
#[test]
fn a_project_the_index_does_not_have_is_not_a_conflict() {
    let mut s = world();
    s.add("needs-ghost", "1.0", &["ghost>=1"]);
    for reqs in [&["ghost"][..], &["needs-ghost"][..]] {
        let err = run(&s, reqs).unwrap_err();
        assert!(
            matches!(&err, SolveError::Source { name, source: SourceError::NotFound(..) } if name == "ghost"),
            "{err}"
        );
        let text = err.to_string();
        assert!(text.contains("`ghost` is not on the index"), "{text}");
        assert!(!text.contains("no set of Python packages"), "{text}");
    }
}

/// dask's shape: `complete` asks for dask's own other extras, the newest
/// release needs a `distributed` that is not published, and the oldest is
/// an sdist whose metadata build fails.
fn dask_world() -> MemorySource {
    let mut s = MemorySource::default();
    s.add("dask", "0.8.2", &[]);
    s.fail(
        "dask",
        "0.8.2",
        "building the metadata of `dask-0.8.2.tar.gz` failed",
    );
    for v in ["2025.1.0", "2026.1.0", "2026.8.0", "2026.9.0"] {
        s.add(
            "dask",
            v,
            &[
                "toolz>=0.10",
                "numpy>=1.24; extra == 'array'",
                "dask[array]; extra == 'dataframe'",
                "pandas>=2; extra == 'dataframe'",
                &format!("distributed=={v}; extra == 'distributed'"),
                "dask[array,dataframe,distributed]; extra == 'complete'",
            ],
        );
    }
    for v in ["2025.1.0", "2026.1.0", "2026.8.0"] {
        s.add("distributed", v, &[&format!("dask=={v}")]);
    }
    s.add("toolz", "1.0.0", &[]);
    s.add("numpy", "2.1.0", &[]);
    s.add("pandas", "2.2.3", &[]);
    s
}

#[test]
fn an_extra_naming_its_own_package_steps_back_to_a_release_that_works() {
    let expected = [
        "dask==2026.8.0",
        "distributed==2026.8.0",
        "numpy==2.1.0",
        "pandas==2.2.3",
        "toolz==1.0.0",
    ];
    let s = dask_world();
    assert_eq!(run(&s, &["dask[complete]"]).unwrap(), expected);
    let s = dask_world();
    assert_eq!(run(&s, &["dask[complete]>=2026.1"]).unwrap(), expected);
    // Only the releases tried are read: never one below the bound, nor
    // the old sdist, since 2026.8.0 works.
    let asked = s.asked();
    assert!(
        asked
            .iter()
            .all(|f| !f.contains("-0.8.2") && !f.contains("-2025.1.0")),
        "{asked:?}"
    );
}

#[test]
fn a_version_whose_metadata_fails_is_left_out_and_named_at_the_end() {
    let mut s = MemorySource::default();
    s.add("tool", "1.0", &[]);
    s.add("tool", "2.0", &[]);
    s.fail(
        "tool",
        "2.0",
        "building the metadata of `tool-2.0.tar.gz` failed: no module named `setuptools_scm`",
    );
    s.add("tool", "3.0", &["lib>=5"]);
    s.add("lib", "1.0", &[]);
    s.add("app", "1.0", &["tool"]);
    assert_eq!(run(&s, &["app"]).unwrap(), ["app==1.0", "tool==1.0"]);

    let err = run(&s, &["app", "tool>=2"]).unwrap_err().to_string();
    assert!(
        err.contains("tool 2.0 cannot be used: building the metadata of `tool-2.0.tar.gz` failed: no module named `setuptools_scm`"),
        "{err}"
    );
}

//! drift: what moved in a copy of the world since the committed locks.

use std::path::Path;

use serde_json::Value;

use crate::common::{fixture, repo_root};
use crate::reports;

/// A copy of the examples, the world and the committed locks, laid out as
/// in the repository, so tests can move tags and edit index pages.
fn world_copy() -> tempfile::TempDir {
    let dir = crate::common::tempdir();
    std::fs::create_dir_all(dir.path().join("fixtures")).unwrap();
    for (from, to) in [
        (fixture("examples"), dir.path().join("fixtures/examples")),
        (fixture("world"), dir.path().join("fixtures/world")),
        (repo_root().join("lockfiles"), dir.path().join("lockfiles")),
    ] {
        let status = std::process::Command::new("cp")
            .arg("-r")
            .arg(from)
            .arg(to)
            .status()
            .unwrap();
        assert!(status.success(), "copy");
    }
    dir
}

fn drift_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    crate::common::run(
        crate::common::imagelock()
            .current_dir(dir)
            .env("IMAGELOCK_CACHE_DIR", dir.join("cache"))
            .args(["--config", "fixtures/examples/imagelock.toml", "drift"])
            .args(args),
    )
}

/// The JSON report's findings as (image, kind, subject) for kinds other
/// than `unpinned` (which the example definitions always have).
fn drifted(dir: &Path, args: &[&str]) -> Vec<(String, String, String)> {
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(args);
    let (code, out, err) = drift_in(dir, &all);
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["version"], 1);
    let mut found = Vec::new();
    for image in report["images"].as_array().unwrap() {
        for f in image["findings"].as_array().unwrap() {
            let kind = f["kind"].as_str().unwrap().to_string();
            if kind == "unpinned" {
                continue;
            }
            let subject = f["package"]
                .as_str()
                .or(f["base"].as_str())
                .unwrap_or_default()
                .to_string();
            found.push((image["name"].as_str().unwrap().to_string(), kind, subject));
        }
    }
    found
}

fn edit(path: &Path, f: impl FnOnce(String) -> String) {
    let text = std::fs::read_to_string(path).unwrap();
    std::fs::write(path, f(text)).unwrap();
}

/// Points `python:3.11-slim` at the image `python:latest` names.
fn move_python_tag(dir: &Path) {
    let path = dir.join("fixtures/world/images/docker.io/library/python/index.json");
    let mut index: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let manifests = index["manifests"].as_array_mut().unwrap();
    let name = |m: &Value| m["annotations"]["org.opencontainers.image.ref.name"].clone();
    let latest = manifests
        .iter()
        .find(|m| name(m) == "latest")
        .unwrap()
        .clone();
    for m in manifests.iter_mut() {
        if name(m) == "3.11-slim" {
            m["digest"] = latest["digest"].clone();
            m["size"] = latest["size"].clone();
            m["mediaType"] = latest["mediaType"].clone();
        }
    }
    std::fs::write(&path, serde_json::to_string_pretty(&index).unwrap()).unwrap();
}

/// Points `python:3.11-slim` at a rebuild of its image: the same
/// platforms and layers under an index with one more annotation, so another
/// digest. Returns the new digest.
fn rebuild_python_tag(dir: &Path) -> String {
    use sha2::Digest;
    let layout = dir.join("fixtures/world/images/docker.io/library/python");
    let path = layout.join("index.json");
    let mut index: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let name = |m: &Value| m["annotations"]["org.opencontainers.image.ref.name"].clone();
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| name(m) == "3.11-slim")
        .unwrap()
        .clone();
    let old = entry["digest"].as_str().unwrap();
    let blob = |digest: &str| {
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let mut inner: Value = serde_json::from_slice(&std::fs::read(blob(old)).unwrap()).unwrap();
    inner["annotations"]["org.example.rebuilt"] = "2".into();
    let bytes = serde_json::to_vec(&inner).unwrap();
    let new = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)));
    std::fs::write(blob(&new), &bytes).unwrap();
    for m in index["manifests"].as_array_mut().unwrap() {
        if name(m) == "3.11-slim" {
            m["digest"] = new.clone().into();
            m["size"] = bytes.len().into();
        }
    }
    std::fs::write(&path, serde_json::to_string_pretty(&index).unwrap()).unwrap();
    new
}

fn page(dir: &Path, name: &str) -> (std::path::PathBuf, Value) {
    let path = dir.join(format!("fixtures/world/pypi/simple/{name}/index.json"));
    let v = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    (path, v)
}

/// Publishes certifi 2099.1.1: a copy of the 2026.10.18 wheel's entry and
/// metadata with the version bumped.
fn publish_newer_certifi(dir: &Path) {
    use sha2::Digest;
    let packages = dir.join("fixtures/world/pypi/packages");
    let old = "certifi-2026.10.18-py3-none-any.whl";
    let new = "certifi-2099.1.1-py3-none-any.whl";
    let metadata = std::fs::read_to_string(packages.join(format!("{old}.metadata")))
        .unwrap()
        .replace("Version: 2026.10.18", "Version: 2099.1.1");
    assert!(metadata.contains("Version: 2099.1.1"));
    std::fs::write(packages.join(format!("{new}.metadata")), &metadata).unwrap();
    let meta_hash = hex::encode(sha2::Sha256::digest(metadata.as_bytes()));
    let (path, mut v) = page(dir, "certifi");
    let files = v["files"].as_array_mut().unwrap();
    let mut entry = files.iter().find(|f| f["filename"] == old).unwrap().clone();
    entry["filename"] = new.into();
    entry["url"] = format!("../../packages/{new}").into();
    entry["upload-time"] = "2099-01-01T00:00:00Z".into();
    entry["core-metadata"] = serde_json::json!({ "sha256": meta_hash });
    entry["data-dist-info-metadata"] = serde_json::json!({ "sha256": meta_hash });
    files.push(entry);
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

/// Yanks the files of `package` the driver lock names, with a reason.
fn yank(dir: &Path, package: &str) {
    let lock = std::fs::read_to_string(dir.join("lockfiles/driver.lock")).unwrap();
    let (path, mut v) = page(dir, package);
    let mut yanked = 0;
    for f in v["files"].as_array_mut().unwrap() {
        let name = f["filename"].as_str().unwrap().to_string();
        if lock.contains(&format!("file = \"{name}\"")) {
            f["yanked"] = "broken on some platforms".into();
            yanked += 1;
        }
    }
    assert!(yanked > 0, "the lock names a {package} file");
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

fn touch_driver_definition(dir: &Path) {
    edit(&dir.join("fixtures/examples/driver/Dockerfile"), |t| {
        t + "LABEL org.example.drift=\"test\"\n"
    });
}

/// What a bot such as Renovate does to a pinned base: it replaces the
/// digest in the `FROM` line when the tag moves. verify says the lock is
/// stale and what to run; freeze accepts the new pin and re-locks, its JSON
/// saying old → new for the pull request; then verify and `rewrite
/// --check` pass, and the bot's line is kept as it wrote it.
#[test]
fn a_bot_bumping_a_pinned_digest_is_relocked_by_freeze() {
    let dir = world_copy();
    let imagelock = |args: &[&str]| {
        crate::common::run(
            crate::common::imagelock()
                .current_dir(dir.path())
                .env("IMAGELOCK_CACHE_DIR", dir.path().join("cache"))
                .args(["--config", "fixtures/examples/imagelock.toml"])
                .args(args),
        )
    };
    let driver = "fixtures/examples/driver/Dockerfile";
    let dockerfile = dir.path().join(driver);
    // The repository keeps its definitions pinned.
    let (code, _, err) = imagelock(&["rewrite", driver]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&dockerfile).unwrap();
    let pin = "FROM python:3.11-slim@";
    let at = text.find(pin).unwrap_or_else(|| panic!("pinned: {text}")) + pin.len();
    let old = text[at..at + 71].to_string();
    assert!(old.starts_with("sha256:"), "{old}");

    // The tag moves to a rebuild; the bot writes the new digest into the
    // FROM line.
    let new = rebuild_python_tag(dir.path());
    assert_ne!(old, new);
    edit(&dockerfile, |t| t.replace(&old, &new));
    let bumped = std::fs::read_to_string(&dockerfile).unwrap();

    // verify: stale, and what to run.
    let (code, out, err) = imagelock(&["verify", driver]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("imagelock freeze"), "{out}");

    // freeze accepts the pin and re-locks; its summary says old → new.
    let (code, out, err) = imagelock(&["--format", "json", "freeze", driver]);
    assert_eq!(code, 0, "{err}");
    if reports::validators() {
        reports::assert_output_schema("freeze-changes", &out);
    }
    let summary: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["changed"], 1, "{summary:#}");
    let image = &summary["images"][0];
    assert_eq!(image["image"], "driver");
    assert_eq!(
        image["bases"],
        serde_json::json!([{ "name": "docker.io/library/python:3.11-slim", "old": old, "new": new }]),
        "{summary:#}"
    );
    let lock = std::fs::read_to_string(dir.path().join("lockfiles/driver.lock")).unwrap();
    assert!(lock.contains(&format!("digest = \"{new}\"")), "{lock}");
    let (code, out, _) = imagelock(&["--format", "markdown", "freeze", "--check", driver]);
    assert_eq!(code, 0);
    assert!(out.contains("0 of 1 lockfile would change"), "{out}");

    let (code, out, err) = imagelock(&["verify", driver]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = imagelock(&["rewrite", "--check", driver]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(std::fs::read_to_string(&dockerfile).unwrap(), bumped);
}

#[test]
fn nothing_changed_reports_no_drift() {
    let dir = world_copy();
    assert_eq!(drifted(dir.path(), &[]), []);
    let (code, _, err) = drift_in(dir.path(), &["--fail-on", "any"]);
    assert_eq!(code, 0, "{err}");
    // Nothing is written.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("lockfiles/driver.lock")).unwrap(),
        std::fs::read_to_string(repo_root().join("lockfiles/driver.lock")).unwrap()
    );
}

/// Floating specs read from a requirements file are `unpinned`, one
/// finding per spec at its file:line, beside the command-line ones.
#[test]
fn specs_read_from_files_are_unpinned_at_their_line() {
    let dir = world_copy();
    let (code, out, err) = drift_in(dir.path(), &["--format", "json", "driver"]);
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let mut unpinned: Vec<(String, String)> = report["images"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "unpinned")
        .map(|f| {
            (
                f["package"].as_str().unwrap_or_default().to_string(),
                f["at"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    unpinned.sort();
    let req = "driver/requirements.txt";
    assert_eq!(
        unpinned,
        [
            (
                "boto3 luigi pystac-client".to_string(),
                "driver/Dockerfile:15".to_string()
            ),
            ("pandas>=2.0".to_string(), format!("{req}:3")),
            ("pyyaml".to_string(), format!("{req}:5")),
            ("requests".to_string(), format!("{req}:4")),
        ],
        "{out}"
    );
}

#[test]
fn a_moved_tag_is_a_base_finding() {
    let dir = world_copy();
    move_python_tag(dir.path());
    let found = drifted(dir.path(), &[]);
    assert!(
        found.contains(&(
            "driver".into(),
            "base".into(),
            "docker.io/library/python:3.11-slim".into()
        )),
        "{found:?}"
    );
    let (code, _, _) = drift_in(dir.path(), &["--fail-on", "base"]);
    assert_eq!(code, 1);
    let (code, _, _) = drift_in(dir.path(), &["--fail-on", "yanked,stale"]);
    assert_eq!(code, 0);
}

#[test]
fn a_newer_release_is_outdated() {
    let dir = world_copy();
    publish_newer_certifi(dir.path());
    let found = drifted(dir.path(), &[]);
    assert!(
        found.contains(&("driver".into(), "outdated".into(), "certifi".into())),
        "{found:?}"
    );
    assert!(found.iter().all(|f| f.1 == "outdated"), "{found:?}");
    // As of a date before the upload, freeze would choose what is locked.
    let found = drifted(dir.path(), &["--as-of", "2098-01-01"]);
    assert_eq!(found, []);
    let (code, _, _) = drift_in(dir.path(), &["--fail-on", "outdated"]);
    assert_eq!(code, 1);
}

#[test]
fn a_yanked_release_is_reported_with_its_reason() {
    let dir = world_copy();
    // Every locked pyyaml file (6.0.3's wheels); 6.0.3's sdist is listed
    // but not served.
    yank(dir.path(), "pyyaml");
    let (code, out, err) = drift_in(dir.path(), &["--format", "json", "--fail-on", "yanked"]);
    assert_eq!(code, 1, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let driver = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "driver")
        .unwrap();
    let yanked = driver["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "yanked")
        .unwrap();
    assert_eq!(yanked["package"], "pyyaml");
    assert_eq!(yanked["severity"], "high");
    assert_eq!(yanked["detail"], "broken on some platforms");
    // A fresh freeze steps back to 6.0.2 and says that it did, and why: pip
    // itself would stop at 6.0.3's sdist.
    let (code, _, err) = crate::common::run(
        crate::common::imagelock()
            .current_dir(dir.path())
            .env("IMAGELOCK_CACHE_DIR", dir.path().join("cache"))
            .args([
                "--config",
                "fixtures/examples/imagelock.toml",
                "freeze",
                "--dry-run",
                "driver",
            ]),
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("driver/Dockerfile:12: `pyyaml` 6.0.2 is locked because 6.0.3 cannot be used")
            && err.contains("pyyaml-6.0.3.tar.gz"),
        "{err}"
    );
}

#[test]
fn an_edited_definition_is_stale() {
    let dir = world_copy();
    touch_driver_definition(dir.path());
    let found = drifted(dir.path(), &[]);
    assert_eq!(found, [("driver".into(), "stale".into(), String::new())]);
    let (code, _, _) = drift_in(dir.path(), &["--fail-on", "any"]);
    assert_eq!(code, 1);
}

#[test]
fn bad_fail_on_kinds_are_trouble() {
    let dir = world_copy();
    let (code, _, err) = drift_in(dir.path(), &["--fail-on", "nope"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("`--fail-on nope` is not a kind of drift"),
        "{err}"
    );
}

#[test]
fn report_formats() {
    let dir = world_copy();
    publish_newer_certifi(dir.path());
    yank(dir.path(), "certifi");
    touch_driver_definition(dir.path());
    for (format, name) in [
        ("human", "drift_table"),
        ("markdown", "drift_markdown"),
        ("json", "drift_json"),
    ] {
        let (code, out, err) = drift_in(
            dir.path(),
            &["--format", format, "fixtures/examples/driver/Dockerfile"],
        );
        assert_eq!(code, 0, "{err}");
        insta::with_settings!({filters => vec![(r"/tmp/[^\s`]+", "[TMP]")]}, {
            insta::assert_snapshot!(name, out);
        });
    }

    ci_reports(dir.path());
}

/// SARIF and both JUnit flavours from one run, valid under their official
/// schemas, each finding at its definition line, with the same
/// fingerprints (and JSON ids) on the next run.
fn ci_reports(dir: &Path) {
    if !reports::validators() {
        return;
    }
    let run = |tag: &str| {
        let at = |f: &str| dir.join(format!("{tag}.{f}"));
        let (code, out, err) = drift_in(
            dir,
            &[
                "--format",
                "json",
                "--output",
                &format!("sarif={}", at("sarif").display()),
                "--output",
                &format!("junit={}", at("junit").display()),
                "--output",
                &format!("junit-strict={}", at("junit-strict").display()),
                "fixtures/examples/driver/Dockerfile",
            ],
        );
        assert_eq!(code, 0, "{err}");
        reports::assert_junit_strict(&at("junit-strict"));
        reports::assert_junit_common(&at("junit"));
        let sarif = reports::assert_sarif(&at("sarif"));
        reports::assert_output_schema("drift-report", &out);
        let json: Value = serde_json::from_str(&out).unwrap();
        (sarif, json, std::fs::read_to_string(at("junit")).unwrap())
    };
    let (sarif, json, junit) = run("first");
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    let find = |rule: &str, name: &str| {
        results
            .iter()
            .find(|r| r["ruleId"] == rule && r["message"]["text"].as_str().unwrap().contains(name))
            .unwrap_or_else(|| panic!("no {rule} {name} in {sarif:#}"))
    };
    let outdated = find("outdated", "certifi");
    assert_eq!(outdated["level"], "note");
    let place = &outdated["locations"][0]["physicalLocation"];
    assert_eq!(
        place["artifactLocation"]["uri"],
        "fixtures/examples/driver/Dockerfile"
    );
    let line = place["region"]["startLine"].as_u64().unwrap() as usize;
    let text = std::fs::read_to_string(dir.join("fixtures/examples/driver/Dockerfile")).unwrap();
    let written = text.lines().nth(line - 1).unwrap();
    assert!(written.contains("pip"), "line {line}: {written}");
    assert_eq!(find("yanked", "certifi")["level"], "error");
    let stale = find("stale", "");
    assert!(
        stale["locations"][0]["physicalLocation"]["region"].is_null(),
        "{stale:#}"
    );
    assert!(
        junit.contains("name=\"outdated\"") && junit.contains("<failure type=\"outdated\""),
        "{junit}"
    );
    let ids: Vec<&Value> = json["images"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["id"])
        .collect();
    assert!(
        ids.iter()
            .all(|id| id.as_str().is_some_and(|s| s.len() == 32)),
        "{json:#}"
    );

    let (again, json_again, _) = run("second");
    assert_eq!(reports::fingerprints(&sarif), reports::fingerprints(&again));
    assert_eq!(
        json["images"][0]["findings"],
        json_again["images"][0]["findings"]
    );
}

#[test]
fn a_removed_conda_record_is_broken() {
    let dir = world_copy();
    let file = "jinja2-3.1.6-pyhcf101f3_1.conda";
    let path = dir
        .path()
        .join("fixtures/world/conda/conda-forge/noarch/repodata.json");
    let mut repodata: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let removed = repodata["packages.conda"]
        .as_object_mut()
        .unwrap()
        .remove(file);
    assert!(removed.is_some(), "the world has {file}");
    repodata["removed"] = serde_json::json!([file]);
    std::fs::write(&path, serde_json::to_string(&repodata).unwrap()).unwrap();
    let found = drifted(dir.path(), &[]);
    assert!(
        found.contains(&("longqc".into(), "broken".into(), "jinja2".into())),
        "{found:?}"
    );
    let (code, out, _) = drift_in(dir.path(), &["--fail-on", "broken", "--format", "markdown"]);
    assert_eq!(code, 1);
    assert!(
        out.contains("[jinja2](https://anaconda.org/conda-forge/jinja2)"),
        "{out}"
    );
}

#[test]
fn a_deleted_release_is_gone() {
    let dir = world_copy();
    let (path, mut v) = page(dir.path(), "certifi");
    v["files"]
        .as_array_mut()
        .unwrap()
        .retain(|f| !f["filename"].as_str().unwrap().contains("2026.10.18"));
    std::fs::write(&path, serde_json::to_string(&v).unwrap()).unwrap();
    let found = drifted(dir.path(), &[]);
    assert!(
        found.contains(&("driver".into(), "gone".into(), "certifi".into())),
        "{found:?}"
    );
}

#[test]
fn a_base_finding_says_which_layers_changed() {
    let dir = world_copy();
    move_python_tag(dir.path());
    let (_, out, err) = drift_in(dir.path(), &["fixtures/examples/driver/Dockerfile"]);
    let line = out
        .lines()
        .find(|l| l.contains(" base "))
        .unwrap_or_else(|| panic!("{out}\n{err}"));
    assert!(
        line.contains("sha256:b0bac9e435e7 → sha256:44f43d34aca5"),
        "{line}"
    );
    assert!(
        line.contains("linux/amd64: layers changed, linux/arm64: layers changed"),
        "{line}"
    );
    // When the image the tag names now was built, from its config.
    assert!(line.contains("built 20"), "{line}");
}

#[test]
fn an_upstream_resolution_failure_is_an_unresolvable_finding() {
    let dir = world_copy();
    // Every certifi release is gone from the index: freeze cannot resolve
    // the driver any more, which is what moved upstream, not trouble.
    let (path, mut v) = page(dir.path(), "certifi");
    v["files"].as_array_mut().unwrap().clear();
    std::fs::write(&path, serde_json::to_string(&v).unwrap()).unwrap();
    let (code, out, err) = drift_in(
        dir.path(),
        &[
            "--format",
            "json",
            "--fail-on",
            "unresolvable",
            "fixtures/examples/driver/Dockerfile",
        ],
    );
    assert_eq!(code, 1, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let findings = report["images"][0]["findings"].as_array().unwrap();
    let unresolvable = findings
        .iter()
        .find(|f| f["kind"] == "unresolvable")
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        unresolvable["detail"].as_str().unwrap().contains("certifi"),
        "{out}"
    );
}

#[test]
fn an_unreachable_index_is_trouble() {
    let dir = world_copy();
    // Nothing listens on port 1: the index cannot be reached, which says
    // nothing about what moved upstream.
    edit(&dir.path().join("fixtures/examples/imagelock.toml"), |t| {
        t.replace(
            "index-url = \"../world/pypi/simple\"",
            "index-url = \"http://127.0.0.1:1/simple\"",
        )
    });
    let (code, out, err) = drift_in(
        dir.path(),
        &[
            "--format",
            "json",
            "--fail-on",
            "any",
            "fixtures/examples/driver/Dockerfile",
        ],
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("127.0.0.1:1"), "{err}");

    // The reports CI reads say why, rather than being missing.
    if !reports::validators() {
        return;
    }
    let junit = dir.path().join("trouble.xml");
    let strict = dir.path().join("trouble-strict.xml");
    let sarif = dir.path().join("trouble.sarif");
    let (code, _, _) = drift_in(
        dir.path(),
        &[
            "--output",
            &format!("junit={}", junit.display()),
            "--output",
            &format!("junit-strict={}", strict.display()),
            "--output",
            &format!("sarif={}", sarif.display()),
            "fixtures/examples/driver/Dockerfile",
        ],
    );
    assert_eq!(code, 2);
    reports::assert_junit_common(&junit);
    reports::assert_junit_strict(&strict);
    let text = std::fs::read_to_string(&junit).unwrap();
    assert!(
        text.contains("<error type=\"trouble\"") && text.contains("127.0.0.1:1"),
        "{text}"
    );
    let sarif = reports::assert_sarif(&sarif);
    let run = &sarif["runs"][0]["invocations"][0];
    assert_eq!(run["executionSuccessful"], false);
    assert!(
        run["toolExecutionNotifications"][0]["message"]["text"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1:1")
    );
}

/// Advisories from an index's JSON API: real PyPI answers recorded in
/// `fixtures/pypi-json/` (see its README), served by a local server. A
/// package with advisories is one `vulnerable` finding (aliases counted
/// once, no fixed version said as such); one without none; one the API
/// does not know is a warning, never silence; a local index is a warning.
#[tokio::test]
async fn advisories_from_the_index_json_api_are_vulnerable_findings() {
    use imagelock::drift::advisories::advisories;
    use imagelock::lock::LockedImage;

    let root = crate::common::tempdir();
    for (name, version) in [("pycrypto", "2.6.1"), ("six", "1.17.0")] {
        let dir = root.path().join(format!("pypi/{name}/{version}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(fixture(&format!("pypi-json/{name}.json")), dir.join("json")).unwrap();
    }
    let server = crate::common::http::StaticServer::start(root.path());
    let text = std::fs::read_to_string(fixture("lock/sample.lock")).unwrap();
    let mut lock = LockedImage::from_toml(Path::new("sample.lock"), &text).unwrap();
    let mut pip_step = lock
        .steps
        .iter()
        .find(|s| s.pypi.iter().any(|p| !p.is_direct()))
        .cloned()
        .expect("the sample locks pip packages from an index");
    let template = pip_step
        .pypi
        .iter()
        .find(|p| !p.is_direct())
        .unwrap()
        .clone();
    pip_step.pypi = [("pycrypto", "2.6.1"), ("six", "1.17.0"), ("idna", "3.20")]
        .iter()
        .map(|(name, version)| {
            let mut p = template.clone();
            p.name = name.parse().unwrap();
            p.version = Some(version.parse().unwrap());
            p
        })
        .collect();
    pip_step.indexes = vec![format!("{}/simple", server.url()).parse().unwrap()];
    // The same packages from a local directory index: not checkable.
    let mut local_step = pip_step.clone();
    local_step.indexes = vec!["../world/pypi/simple".parse().unwrap()];
    lock.steps = vec![pip_step, local_step];

    let config = imagelock::config::Config::zero(&[]);
    let session = imagelock::freeze::steps::session(
        &config,
        false,
        imagelock::freeze::steps::Limits::default(),
        None,
    )
    .unwrap();
    let found = advisories(&config, &session, &lock).await;
    assert_eq!(found.findings.len(), 1, "{:?}", found.findings);
    let f = &found.findings[0];
    assert_eq!(f.kind.as_str(), "vulnerable");
    assert_eq!(f.name, "pycrypto");
    assert_eq!(f.expected.as_deref(), Some("2.6.1"));
    assert_eq!(f.found, None, "pycrypto has no fixed version");
    let detail = f.detail.as_deref().unwrap();
    assert_eq!(detail.lines().count(), 2, "{detail}");
    assert!(
        detail.contains("CVE-2013-7459") && detail.contains("CVE-2018-6594"),
        "{detail}"
    );
    assert!(detail.contains("no fixed version"), "{detail}");
    let warnings = found.warnings.join("\n");
    assert!(
        warnings.contains("the advisories of idna 3.20 are unknown"),
        "{warnings}"
    );
    assert!(
        warnings.contains("packages from `../world/pypi/simple` are not checked"),
        "{warnings}"
    );
    let asked: Vec<String> = server.seen().iter().map(|s| s.path.clone()).collect();
    assert!(
        asked.contains(&"/pypi/pycrypto/2.6.1/json".to_string()),
        "{asked:?}"
    );
}

/// Changes the last hex digit of `value` where it follows `key = "` in the
/// lock of `image`; returns the new value.
fn tamper_lock(dir: &Path, image: &str, key: &str, value: &str) -> String {
    let path = dir.join(format!("lockfiles/{image}.lock"));
    let text = std::fs::read_to_string(&path).unwrap();
    let last = value.chars().last().unwrap();
    let other = if last == '0' { '1' } else { '0' };
    let changed = format!("{}{other}", &value[..value.len() - 1]);
    let from = format!("{key} = \"{value}\"");
    assert!(text.contains(&from), "{image}.lock has {from}");
    std::fs::write(
        &path,
        text.replacen(&from, &format!("{key} = \"{changed}\""), 1),
    )
    .unwrap();
    changed
}

fn freeze_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    crate::common::run(
        crate::common::imagelock()
            .current_dir(dir)
            .env("IMAGELOCK_CACHE_DIR", dir.join("cache"))
            .args(["--config", "fixtures/examples/imagelock.toml", "freeze"])
            .args(args),
    )
}

/// The `hash-mismatch` findings of a JSON report, as (package or base,
/// locked, served).
fn hash_mismatches(out: &str) -> Vec<(String, String, String)> {
    let report: Value = serde_json::from_str(out).unwrap();
    let mut found = Vec::new();
    for image in report["images"].as_array().unwrap() {
        for f in image["findings"].as_array().unwrap() {
            if f["kind"] == "hash-mismatch" {
                found.push((
                    f["package"]
                        .as_str()
                        .or(f["base"].as_str())
                        .unwrap()
                        .to_string(),
                    f["locked"].as_str().unwrap_or_default().to_string(),
                    f["latest"].as_str().unwrap_or_default().to_string(),
                ));
            }
        }
    }
    found
}

/// A lock whose hash the source contradicts: drift reports `hash-mismatch`
/// (failing `--fail-on any`), freeze refuses with exit 2 naming the lock
/// line, the key and what the source serves, and leaves the lock as it was.
fn a_contradicted_lock_is_refused(image: &str, definition: &str, key: &str, value: &str) {
    let dir = world_copy();
    let changed = tamper_lock(dir.path(), image, key, value);
    let lock_path = dir.path().join(format!("lockfiles/{image}.lock"));
    let tampered = std::fs::read(&lock_path).unwrap();

    let (code, out, err) = drift_in(dir.path(), &["--format", "json", definition]);
    assert_eq!(code, 0, "{err}");
    let found = hash_mismatches(&out);
    assert_eq!(found.len(), 1, "{out}");
    assert!(changed.ends_with(&found[0].1), "{found:?}");
    assert!(value.ends_with(&found[0].2), "{found:?}");
    let (code, out, err) = drift_in(dir.path(), &["--fail-on", "hash-mismatch", definition]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("hash-mismatch"), "{out}");

    let (code, out, err) = freeze_in(dir.path(), &[definition]);
    assert_eq!(code, 2, "{out}{err}");
    let line = std::fs::read_to_string(&lock_path)
        .unwrap()
        .lines()
        .position(|l| l.contains(&changed))
        .unwrap()
        + 1;
    assert!(
        err.contains(&format!("lockfiles/{image}.lock:{line}")),
        "{err}"
    );
    assert!(err.contains(&format!("`{key}` of ")), "{err}");
    assert!(err.contains(&changed), "{err}");
    assert!(
        err.contains(&format!("serves `{value}`")) || err.contains("has nothing under that digest"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&lock_path).unwrap(),
        tampered,
        "the lock is untouched"
    );
}

#[test]
fn a_changed_wheel_hash_is_a_hash_mismatch() {
    a_contradicted_lock_is_refused(
        "driver",
        "fixtures/examples/driver/Dockerfile",
        "sha256",
        "73191c47aaa79da394e8fee2dbc2ec827432cab56311122c9e47abf79e390f62",
    );
}

#[test]
fn a_changed_base_digest_is_a_hash_mismatch() {
    a_contradicted_lock_is_refused(
        "driver",
        "fixtures/examples/driver/Dockerfile",
        "digest",
        "sha256:b0bac9e435e7c26d0740198916fd9c8f34e946db179d7aaf1b27bffce47a6655",
    );
}

#[test]
fn a_changed_conda_sha256_is_a_hash_mismatch() {
    a_contradicted_lock_is_refused(
        "longqc",
        "fixtures/examples/longqc/Dockerfile",
        "sha256",
        "d88aa7ae766cf584e180996e92fef2aa7d8e0a0a5ab1d4d49c32390c1b5fff31",
    );
}

/// Advisories from a private index: the JSON API request carries the
/// credentials the run's index client has for that index (here from the
/// index URL's userinfo, as a definition or pip setting gives it), and a
/// run without them says the advisories are unknown (401), never "none".
#[tokio::test]
async fn advisories_from_a_private_index_use_its_credentials() {
    use imagelock::drift::advisories::advisories;
    use imagelock::lock::LockedImage;

    let root = crate::common::tempdir();
    let dir = root.path().join("pypi/pycrypto/2.6.1");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(fixture("pypi-json/pycrypto.json"), dir.join("json")).unwrap();
    let server = crate::common::http::StaticServer::start_private(root.path(), "carol:pa55-adv");
    let text = std::fs::read_to_string(fixture("lock/sample.lock")).unwrap();
    let mut lock = LockedImage::from_toml(Path::new("sample.lock"), &text).unwrap();
    let mut step = lock
        .steps
        .iter()
        .find(|s| s.pypi.iter().any(|p| !p.is_direct()))
        .cloned()
        .unwrap();
    let mut p = step.pypi.iter().find(|p| !p.is_direct()).unwrap().clone();
    p.name = "pycrypto".parse().unwrap();
    p.version = Some("2.6.1".parse().unwrap());
    step.pypi = vec![p];
    // The lock records the index without its credentials.
    step.indexes = vec![format!("{}/simple", server.url()).parse().unwrap()];
    lock.steps = vec![step];

    let config = imagelock::config::Config::zero(&[]);
    let session = || {
        imagelock::freeze::steps::session(
            &config,
            false,
            imagelock::freeze::steps::Limits::default(),
            None,
        )
        .unwrap()
    };
    // Without credentials: unknown, said so.
    let found = advisories(&config, &session(), &lock).await;
    assert!(found.findings.is_empty(), "{:?}", found.findings);
    let warnings = found.warnings.join("\n");
    assert!(
        warnings.contains("the advisories of pycrypto 2.6.1 are unknown")
            && warnings.contains("401"),
        "{warnings}"
    );
    // With the index client of the run (as freeze made it for the step).
    let with = session();
    with.pypi_client_with(
        &imagelock::resolve::pypi::IndexUrls {
            urls: vec![format!("http://carol:pa55-adv@{}/simple", server.addr)],
        },
        false,
    )
    .unwrap();
    let found = advisories(&config, &with, &lock).await;
    assert_eq!(found.findings.len(), 1, "{:?}", found.warnings);
    assert_eq!(found.findings[0].kind.as_str(), "vulnerable");
    let text = format!("{:?}{:?}", found.findings, found.warnings);
    assert!(!text.contains("pa55-adv"), "{text}");
    let ok: Vec<_> = server
        .seen()
        .into_iter()
        .filter(|s| s.path == "/pypi/pycrypto/2.6.1/json")
        .map(|s| s.status)
        .collect();
    assert_eq!(ok, [401, 200], "{ok:?}");
}

/// Each image's findings in the JSON report (without timings).
fn findings_json(dir: &Path, args: &[&str]) -> (Vec<Value>, String) {
    let mut all = vec!["-v", "--format", "json"];
    all.extend_from_slice(args);
    let (code, out, err) = drift_in(dir, &all);
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let images = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| serde_json::json!([i["name"], i["findings"]]))
        .collect();
    (images, err)
}

/// Issue 25: a second drift takes the conda answers the first kept (same
/// request, same records), and a kept answer never changes a finding:
/// damaged entries, entries re-checksummed to name other records, and a
/// channel that changed since all give the findings of a run without them.
#[test]
fn kept_conda_answers_never_change_findings() {
    let dir = world_copy();
    let (clean, err) = findings_json(dir.path(), &[]);
    assert!(
        err.contains("conda solves answered from the cache: 0"),
        "{err}"
    );
    let kept = dir.path().join("cache/conda-solves-v1");
    let entries: Vec<_> = std::fs::read_dir(&kept)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!entries.is_empty(), "answers kept in {}", kept.display());
    let (again, err) = findings_json(dir.path(), &[]);
    assert_eq!(again, clean);
    assert!(
        !err.contains("conda solves answered from the cache: 0"),
        "the second run takes the kept answers: {err}"
    );
    // Damaged: each entry edited.
    for e in &entries {
        let text = std::fs::read_to_string(e).unwrap();
        let edited = match text.find("1.") {
            Some(i) => format!("{}9{}", &text[..i], &text[i + 1..]),
            None => text.replace('a', "b"),
        };
        std::fs::write(e, edited).unwrap();
    }
    let (damaged, err) = findings_json(dir.path(), &[]);
    assert_eq!(damaged, clean);
    assert!(err.contains("does not match its checksum"), "{err}");
    assert!(
        err.contains("conda solves answered from the cache: 0"),
        "{err}"
    );
    // Re-checksummed to name another record of the channel: not one of
    // this solve's records with that content, so not used.
    for e in entries.iter().filter(|e| e.exists()) {
        let mut value: Value = serde_json::from_str(&std::fs::read_to_string(e).unwrap()).unwrap();
        value["records"][0][1] = Value::String("0".repeat(64));
        let key = value["key"].as_str().unwrap().to_string();
        let pairs: Vec<(String, String)> =
            serde_json::from_value(value["records"].clone()).unwrap();
        value["checksum"] = Value::String(imagelock::solve::conda::memo::checksum_of(&key, &pairs));
        std::fs::write(e, serde_json::to_string(&value).unwrap()).unwrap();
    }
    let (foreign, err) = findings_json(dir.path(), &[]);
    assert_eq!(foreign, clean);
    assert!(err.contains("not a record of this solve"), "{err}");
    // The channel changed (a record the solves chose removed): the kept
    // answers are for other records, and the findings are those of a run
    // with no cache at all.
    let file = "jinja2-3.1.6-pyhcf101f3_1.conda";
    let path = dir
        .path()
        .join("fixtures/world/conda/conda-forge/noarch/repodata.json");
    let mut repodata: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(
        repodata["packages.conda"]
            .as_object_mut()
            .unwrap()
            .remove(file)
            .is_some()
    );
    std::fs::write(&path, serde_json::to_string(&repodata).unwrap()).unwrap();
    let (moved, _) = findings_json(dir.path(), &[]);
    assert_ne!(moved, clean);
    std::fs::remove_dir_all(dir.path().join("cache")).unwrap();
    let (uncached, _) = findings_json(dir.path(), &[]);
    assert_eq!(moved, uncached);
}

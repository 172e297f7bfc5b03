//! freeze reads install steps the way each platform's build runs them,
//! against the embedded world (its python image and package index).

use std::path::Path;

use crate::common::{fixture, run};

/// A project in a temporary directory whose configuration resolves
/// against the embedded world, with `dockerfile` as image `app`.
fn project(dockerfile: &str, extra: &str) -> tempfile::TempDir {
    let dir = crate::common::tempdir();
    std::fs::create_dir_all(dir.path().join("app")).unwrap();
    std::fs::write(dir.path().join("app/Dockerfile"), dockerfile).unwrap();
    std::fs::write(
        dir.path().join("imagelock.toml"),
        format!(
            "platforms = [\"linux/amd64\", \"linux/arm64\"]\n[images.app]\nfile = \"app/Dockerfile\"\n[pypi]\nindex-url = \"{}\"\n[registries.\"docker.io\"]\nlocation = \"oci:{}\"\n{extra}",
            fixture("world/pypi/simple").display(),
            fixture("world/images/docker.io").display(),
        ),
    )
    .unwrap();
    dir
}

fn imagelock(dir: &Path, args: &[&str]) -> (i32, String, String) {
    run(crate::common::imagelock()
        .current_dir(dir)
        .env("IMAGELOCK_CACHE_DIR", dir.join("cache"))
        .args(args))
}

fn lock(dir: &Path) -> imagelock::lock::LockedImage {
    imagelock::lock::LockedImage::read(&dir.join("lockfiles/app.lock")).unwrap()
}

/// The platforms a package of the lock is locked for, by name.
fn platforms_of(lock: &imagelock::lock::LockedImage, name: &str) -> Vec<String> {
    let mut out: Vec<String> = lock
        .steps
        .iter()
        .flat_map(|s| &s.pypi)
        .filter(|p| p.name == name)
        .flat_map(|p| p.platforms.iter().map(ToString::to_string))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// `if [ "$TARGETARCH" = arm64 ]` and `case $(uname -m)` are decided for
/// each platform: each locks what its own build installs, and rewrite pins
/// each branch for the platform that takes it.
#[test]
fn steps_that_depend_on_the_platform_are_locked_per_platform() {
    let dockerfile = "FROM python:3.11-slim\nARG TARGETARCH\nRUN if [ \"$TARGETARCH\" = arm64 ]; then pip install idna; else pip install certifi; fi\nRUN case \"$(uname -m)\" in aarch64) pip install six ;; *) pip install attrs ;; esac\n";
    let dir = project(dockerfile, "");
    let (code, out, err) = imagelock(dir.path(), &["plan"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("per platform: reads TARGETARCH"), "{out}");
    let (code, _, err) = imagelock(dir.path(), &["freeze"]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("is not locked"), "{err}");
    let lock = lock(dir.path());
    assert_eq!(platforms_of(&lock, "idna"), ["linux/arm64"]);
    assert_eq!(platforms_of(&lock, "certifi"), ["linux/amd64"]);
    assert_eq!(platforms_of(&lock, "six"), ["linux/arm64"]);
    assert_eq!(platforms_of(&lock, "attrs"), ["linux/amd64"]);
    for s in &lock.steps {
        assert!(s.locked, "{s:?}");
    }

    let (code, _, err) = imagelock(dir.path(), &["rewrite"]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(dir.path().join("app/Dockerfile")).unwrap();
    let line = |needle: &str| {
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} in {text}"))
            .to_string()
    };
    // Each branch keeps its package, pinned for the platform that runs it.
    let run1 = line("TARGETARCH\" = arm64");
    let (then, otherwise) = run1.split_once("else").unwrap();
    assert!(
        then.contains("idna==") && then.contains("aarch64"),
        "{run1}"
    );
    assert!(
        otherwise.contains("certifi==") && otherwise.contains("x86_64"),
        "{run1}"
    );
    let run2 = line("uname -m");
    let (arm, other) = run2.split_once("*)").unwrap();
    assert!(arm.contains("six==") && !arm.contains("attrs"), "{run2}");
    assert!(
        other.contains("attrs==") && !other.contains("six"),
        "{run2}"
    );
    // The pinned file locks the same per platform; a second rewrite is a
    // no-op.
    let (code, _, err) = imagelock(dir.path(), &["freeze"]);
    assert_eq!(code, 0, "{err}");
    let again = super::steps_e2e::lock(dir.path());
    for name in ["idna", "certifi", "six", "attrs"] {
        assert_eq!(
            platforms_of(&again, name),
            platforms_of(&lock, name),
            "{name}"
        );
    }
    let (code, _, err) = imagelock(dir.path(), &["rewrite", "--check"]);
    assert_eq!(code, 0, "{err}");
}

/// A pure-Python wheel of `name` `version` written with Python's zipfile
/// (METADATA, WHEEL and RECORD, as a build backend writes them), in `dir`.
fn wheel(dir: &Path, name: &str, version: &str) -> std::path::PathBuf {
    let dist = name.replace('-', "_");
    let file = dir.join(format!("{dist}-{version}-py3-none-any.whl"));
    let script = format!(
        r#"
import zipfile, sys
info = "{dist}-{version}.dist-info"
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr(f"{dist}/__init__.py", "")
    z.writestr(f"{{info}}/METADATA", "Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    z.writestr(f"{{info}}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    z.writestr(f"{{info}}/RECORD", "")
"#
    );
    let status = std::process::Command::new("python3")
        .args(["-c", &script])
        .arg(&file)
        .status()
        .unwrap();
    assert!(status.success());
    file
}

fn sha256_of(path: &Path) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// pip's options reach the resolver: `--find-links` to an HTML page served
/// over HTTP and to a directory of wheels copied into the image,
/// `--no-index`, `--pre`, and the same inside a requirements file with a
/// nested `-c` constraints file. Find-links files are locked with their URL
/// and sha256 like an index's, and rewrite pins them.
#[test]
fn pip_find_links_and_index_options_are_resolved() {
    if !crate::common::require_tool("python3", "apt-get install -y python3") {
        return;
    }
    let links = crate::common::tempdir();
    for v in ["1.0", "1.5", "2.0rc1"] {
        wheel(links.path(), "demo-fl", v);
    }
    let other = wheel(links.path(), "unrelated", "9.0");
    std::fs::copy(
        fixture("pypi-cases/packages/six-1.17.0-py2.py3-none-any.whl"),
        links.path().join("six-1.17.0-py2.py3-none-any.whl"),
    )
    .unwrap();
    let mut page = String::from("<html><body>\n");
    for e in std::fs::read_dir(links.path()).unwrap() {
        let n = e.unwrap().file_name().into_string().unwrap();
        page.push_str(&format!("<a href=\"{n}\">{n}</a><br>\n"));
    }
    page.push_str("</body></html>\n");
    std::fs::write(links.path().join("links.html"), page).unwrap();
    let server = crate::common::http::StaticServer::start(links.path());
    let page_url = format!("{}/links.html", server.url());

    let dockerfile = format!(
        "FROM python:3.11-slim\nCOPY wheels/ /opt/wheels/\nCOPY requirements.txt constraints.txt /tmp/\nRUN pip install --no-index -f /opt/wheels demo-dir\nRUN pip install -r /tmp/requirements.txt\nRUN pip install -U --pre --no-index --find-links={page_url} demo-fl\n"
    );
    let dir = project(&dockerfile, "");
    let ctx = dir.path().join("app");
    std::fs::create_dir_all(ctx.join("wheels")).unwrap();
    let local = wheel(&ctx.join("wheels"), "demo-dir", "0.3");
    std::fs::write(
        ctx.join("requirements.txt"),
        format!(
            "--no-index\n--find-links {page_url}\n-c constraints.txt\ndemo-fl\nsix -f https://ignored.invalid/\n"
        ),
    )
    .unwrap();
    std::fs::write(ctx.join("constraints.txt"), "demo-fl<1.5\n").unwrap();
    std::fs::remove_file(other).unwrap();

    let (code, _, err) = imagelock(dir.path(), &["freeze", "--platform", "linux/amd64"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(
            "requirements.txt:5: pip ignores `-f https://ignored.invalid/` after a requirement"
        ),
        "{err}"
    );
    let lock = lock(dir.path());
    let pkg = |step: usize, name: &str| {
        lock.steps[step]
            .pypi
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("{name} in step {step}: {:?}", lock.steps[step]))
            .clone()
    };
    // A directory of wheels copied into the image.
    let d = pkg(0, "demo-dir");
    assert_eq!(d.version.as_ref().unwrap().to_string(), "0.3");
    assert_eq!(
        d.url.to_string(),
        "app/wheels/demo_dir-0.3-py3-none-any.whl"
    );
    assert_eq!(d.sha256.as_ref().unwrap().to_string(), sha256_of(&local));
    // The page, from the requirements file; the nested constraint holds.
    let f = pkg(1, "demo-fl");
    assert_eq!(f.version.as_ref().unwrap().to_string(), "1.0");
    assert_eq!(
        f.url.to_string(),
        format!("{}/demo_fl-1.0-py3-none-any.whl", server.url())
    );
    assert_eq!(
        f.sha256.as_ref().unwrap().to_string(),
        sha256_of(&links.path().join("demo_fl-1.0-py3-none-any.whl"))
    );
    assert_eq!(
        pkg(1, "six").version.as_ref().unwrap().to_string(),
        "1.17.0"
    );
    assert!(
        lock.steps[1].indexes.is_empty(),
        "--no-index: {:?}",
        lock.steps[1].indexes
    );
    let shown = |s: &imagelock::lock::LockedStep| -> Vec<String> {
        s.find_links.iter().map(ToString::to_string).collect()
    };
    assert_eq!(shown(&lock.steps[1]), std::slice::from_ref(&page_url));
    assert_eq!(shown(&lock.steps[0]), ["app/wheels"]);
    // `--pre` on the command line.
    assert_eq!(
        pkg(2, "demo-fl").version.as_ref().unwrap().to_string(),
        "2.0rc1"
    );
    assert!(
        lock.steps
            .iter()
            .all(|s| s.pypi.iter().all(|p| p.name != "unrelated"))
    );

    // drift reads the find-links locations the lock names: nothing gone.
    let (code, out, err) = imagelock(dir.path(), &["drift", "--format", "json"]);
    assert!(
        !out.contains("\"gone\"") && !err.contains("gone"),
        "{code}\n{out}\n{err}"
    );

    let (code, _, err) = imagelock(dir.path(), &["rewrite"]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(ctx.join("Dockerfile")).unwrap();
    assert!(
        text.contains("pip install --no-index -f /opt/wheels demo-dir==0.3"),
        "{text}"
    );
    assert!(text.contains("demo-fl==2.0rc1"), "{text}");
    let reqs = std::fs::read_to_string(ctx.join("requirements.txt")).unwrap();
    assert!(reqs.contains("demo-fl==1.0"), "{reqs}");
    assert!(reqs.contains(&format!("--find-links {page_url}")), "{reqs}");
}

/// A retry wrapper named in `[steps] wrappers` is read as the installer it
/// runs and locked; one not named stays an unlocked step, said with its
/// file and line.
#[test]
fn configured_wrappers_are_locked_and_others_reported() {
    let dockerfile = "FROM python:3.11-slim\nRUN rapids-pip-retry install idna\nRUN my-pip-retry install certifi\n";
    let dir = project(
        dockerfile,
        "[steps]\nwrappers = { rapids-pip-retry = \"pip\" }\n",
    );
    let (code, out, err) = imagelock(dir.path(), &["plan"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("    pip install (") && out.contains("Dockerfile:2)\n      specs idna"),
        "{out}"
    );
    assert!(
        out.contains("unresolved (unknown-wrapper) `my-pip-retry`"),
        "{out}"
    );
    let (code, _, err) = imagelock(dir.path(), &["freeze", "--platform", "linux/amd64"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("app/Dockerfile:3: `my-pip-retry install certifi` is not locked"),
        "{err}"
    );
    let lock = lock(dir.path());
    assert!(lock.steps[0].locked);
    assert_eq!(lock.steps[0].manager.to_string(), "pip");
    assert!(lock.steps[0].pypi.iter().any(|p| p.name == "idna"));
    assert!(!lock.steps[1].locked);
    assert!(lock.steps[1].pypi.is_empty());

    // A value that is not an installer is refused where it is written.
    let bad = project(
        dockerfile,
        "[steps]\nwrappers = { rapids-pip-retry = \"npm\" }\n",
    );
    let (code, _, err) = imagelock(bad.path(), &["plan"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("imagelock.toml"), "{err}");
}

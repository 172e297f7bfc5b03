//! Git sources locked by commit: `git clone` in a `RUN` and `ADD <git
//! url>`, against real repositories served on 127.0.0.1 by `git daemon`
//! (the git protocol) and over smart HTTP (the ref advertisement `git
//! http-backend` serves, made by the real `git upload-pack`).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::common;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.org"])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "advice.detachedHead=false",
        ])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A bare repository `repo.git` under `root` with a commit on `main`, an
/// annotated tag `v1` on it and a `sub/` directory; returns the work tree.
fn make_repo(root: &Path) -> PathBuf {
    let work = root.join("work");
    std::fs::create_dir_all(work.join("sub")).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("sub/file.txt"), "one\n").unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "-q", "-m", "one"]);
    git(&work, &["tag", "-a", "v1", "-m", "v1"]);
    let srv = root.join("srv");
    std::fs::create_dir_all(&srv).unwrap();
    git(root, &["clone", "-q", "--bare", "work", "srv/repo.git"]);
    // Fetching a commit by its id (a shallow clone's pin) needs no more
    // than protocol v2, the default.
    git(&work, &["remote", "add", "origin", "../srv/repo.git"]);
    advertise(&srv.join("repo.git"));
    work
}

/// Writes what `git http-backend` answers to `GET info/refs?service=
/// git-upload-pack`, so a static server serves the smart advertisement.
fn advertise(bare: &Path) {
    let out = Command::new("git")
        .args(["upload-pack", "--http-backend-info-refs"])
        .arg(bare)
        .output()
        .expect("git upload-pack runs");
    assert!(out.status.success());
    let header = "# service=git-upload-pack\n";
    let mut body = format!("{:04x}{header}0000", header.len() + 4).into_bytes();
    body.extend_from_slice(&out.stdout);
    std::fs::write(bare.join("info/refs"), body).unwrap();
}

/// A new commit on `main`, pushed to the served repository.
fn move_main(work: &Path) -> String {
    std::fs::write(work.join("sub/file.txt"), "two\n").unwrap();
    git(work, &["commit", "-q", "-am", "two"]);
    git(work, &["push", "-q", "origin", "main"]);
    advertise(&work.parent().unwrap().join("srv/repo.git"));
    git(work, &["rev-parse", "HEAD"])
}

/// `git daemon` on a free port of 127.0.0.1; stopped when dropped.
struct Daemon {
    child: Child,
    port: u16,
}

impl Daemon {
    fn start(base: &Path) -> Daemon {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // The daemon itself, not `git daemon`, which runs it as a child
        // that would outlive a kill.
        let exec_path = git(base, &["--exec-path"]);
        let child = Command::new(Path::new(&exec_path).join("git-daemon"))
            .arg("--export-all")
            .arg("--reuseaddr")
            .arg("--listen=127.0.0.1")
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", base.display()))
            .arg(base)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("git daemon starts");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Daemon { child, port }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Regression: a `git clone` and an `ADD <git url>` of a moving ref were
/// "lockable" and never locked. Freeze now records each ref's commit (the
/// one `git rev-parse` names), over the git protocol and smart HTTP;
/// rewrite pins them in forms real git runs; drift reports a moved branch
/// and an unreachable repository; a lock without the commits is stale.
#[test]
fn git_sources_are_locked_by_commit_and_pinned_by_rewrite() {
    use crate::common::http::StaticServer;
    use crate::common::registry::{AuthKind, LayoutBuilder, server};
    if !common::require_tool("git", "apt-get install git") {
        return;
    }
    let Some(registry) = server(AuthKind::Open) else {
        return;
    };
    let dir = common::tempdir();
    let mut layout = LayoutBuilder::new(&dir.path().join("layout"));
    let base = layout.manifest("amd64", None, "git-base");
    layout.tag_manifest(&base, "base");
    registry.push(&layout.dir, "base", "git/base:1", false);

    let work = make_repo(dir.path());
    let first = git(&work, &["rev-parse", "HEAD"]);
    let tagged = git(&work, &["rev-parse", "v1^{commit}"]);
    let daemon = Daemon::start(&dir.path().join("srv"));
    let http = StaticServer::start(dir.path().join("srv"));
    let g = format!("git://127.0.0.1:{}/repo.git", daemon.port);
    let h = format!("{}/repo.git", http.url());
    let with_secret = h.replacen("http://", "http://user:hunter2@", 1);
    std::fs::create_dir_all(dir.path().join("app")).unwrap();
    let dockerfile = format!(
        "FROM {r}/git/base:1
RUN git clone {g} repo
RUN git clone --depth 1 --branch main {g} shallow
ADD {h}#v1 /app/
ADD {g}#main:sub /sub/
ADD {with_secret} /cred/
",
        r = registry.addr,
    );
    std::fs::write(dir.path().join("app/Dockerfile"), &dockerfile).unwrap();
    std::fs::write(
        dir.path().join("imagelock.toml"),
        "[images.app]\nfile = \"app/Dockerfile\"\n",
    )
    .unwrap();
    let cli = |cache: &str, args: &[&str]| {
        common::run(
            common::imagelock()
                .current_dir(dir.path())
                .env("IMAGELOCK_CACHE_DIR", dir.path().join(cache))
                .args(args),
        )
    };
    let (code, out, err) = cli("cache", &["freeze"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("image `app`: coverage: 6 of 6 steps locked"),
        "{err}"
    );
    let lock_path = dir.path().join("lockfiles/app.lock");
    let lock_text = std::fs::read_to_string(&lock_path).unwrap();
    assert!(!format!("{out}{err}{lock_text}").contains("hunter2"));
    let lock = imagelock::lock::LockedImage::read(&lock_path).unwrap();
    let got: Vec<(u32, String, String, Option<String>)> = lock
        .stages
        .iter()
        .flat_map(|s| &s.git)
        .map(|e| {
            (
                e.line,
                e.url.to_string(),
                e.reference.to_string(),
                e.commit.as_ref().map(ToString::to_string),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (2, g.clone(), "HEAD".into(), Some(first.clone())),
            (3, g.clone(), "main".into(), Some(first.clone())),
            // An annotated tag is locked as the commit it points at.
            (4, h.clone(), "v1".into(), Some(tagged.clone())),
            (5, g.clone(), "main".into(), Some(first.clone())),
            (6, h.clone(), "HEAD".into(), Some(first.clone())),
        ]
    );
    let (code, out, err) = cli("cache", &["verify"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("app: coverage: 6 of 6 steps locked"), "{out}");

    // A lock made before git sources were locked is stale.
    let mut old = lock.clone();
    for s in &mut old.stages {
        s.git.clear();
    }
    old.write(&lock_path).unwrap();
    let (code, out, err) = cli("cache", &["verify"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains(
            "git sources without a commit entry in the lock: app/Dockerfile:2 `git clone …`"
        ),
        "{out}"
    );
    let (code, out, err) = cli("cache", &["verify", "--format", "json"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("\"git-missing\""), "{out}");
    crate::reports::assert_output_schema("verify-report", &out);
    std::fs::write(&lock_path, &lock_text).unwrap();

    // Upstream, `main` moves: drift names each source that read it (the
    // tag stays), and a fresh `freeze --check` says the lock is not
    // current.
    let second = move_main(&work);
    let (code, out, err) = cli(
        "cache",
        &["drift", "--format", "json", "--fail-on", "moved"],
    );
    assert_eq!(code, 1, "{out}\n{err}");
    crate::reports::assert_output_schema("drift-report", &out);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let moved: Vec<(String, String, String)> = report["images"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "moved")
        .map(|f| {
            (
                f["at"].as_str().unwrap().to_string(),
                f["locked"].as_str().unwrap().to_string(),
                f["latest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let line = |n: u32| format!("app/Dockerfile:{n}");
    assert_eq!(
        moved,
        [2, 3, 5, 6].map(|n| (line(n), first.clone(), second.clone())),
        "{out}"
    );
    let (code, out, err) = cli("fresh-cache", &["freeze", "--check"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("1 of 1 lockfiles are not current"), "{err}");

    // Rewrite pins every source to its locked commit.
    let (code, out, err) = cli("cache", &["rewrite"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let rewritten = std::fs::read_to_string(dir.path().join("app/Dockerfile")).unwrap();
    let lines: Vec<&str> = rewritten.lines().collect();
    assert_eq!(
        lines[1..],
        [
            format!("RUN git clone {g} repo && git -C repo checkout -q {first}"),
            format!(
                "RUN git clone --depth 1 --branch main {g} shallow && git -C shallow fetch -q --depth 1 origin {first} && git -C shallow checkout -q {first}"
            ),
            format!("ADD {h}#{tagged} /app/"),
            format!("ADD {g}#{first}:sub /sub/"),
            format!("ADD {with_secret}#{first} /cred/"),
        ],
        "{rewritten}"
    );
    // The rewritten clones, run by real git after `main` moved, check out
    // the locked commit (the shallow one too, which fetches it by id).
    let build = dir.path().join("build");
    std::fs::create_dir_all(&build).unwrap();
    for run in &lines[1..3] {
        let status = Command::new("sh")
            .arg("-c")
            .arg(run.strip_prefix("RUN ").unwrap())
            .current_dir(&build)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .status()
            .unwrap();
        assert!(status.success(), "{run}");
    }
    for clone in ["repo", "shallow"] {
        assert_eq!(git(&build.join(clone), &["rev-parse", "HEAD"]), first);
    }
    // A second rewrite changes nothing; the lock stays current, every
    // source locked, and the refs stay watched.
    let (code, out, err) = cli("cache", &["rewrite"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("app/Dockerfile")).unwrap(),
        rewritten
    );
    let (code, out, err) = cli("cache", &["verify"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("app: coverage: 6 of 6 steps locked"), "{out}");
    let (code, out, err) = cli("fresh-cache", &["freeze", "--check"]);
    assert_eq!(code, 0, "{out}\n{err}");

    // The git daemon stops: drift says it cannot read those refs, never
    // "no drift".
    drop(daemon);
    let (code, out, err) = cli(
        "cache",
        &["drift", "--format", "json", "--fail-on", "unresolvable"],
    );
    assert_eq!(code, 1, "{out}\n{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let unreachable: Vec<&str> = report["images"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "unresolvable" && f["url"] == format!("{g}#main"))
        .map(|f| f["at"].as_str().unwrap())
        .collect();
    assert_eq!(unreachable, [line(3), line(5)], "{out}");
    assert!(!out.contains("hunter2"));
}

/// A `git clone` in an Apptainer `%post` is locked the same way; a local
/// repository is read with the real `git ls-remote`, and one that does not
/// exist is named as not locked with freeze's reason, never silently.
#[test]
fn apptainer_post_clones_are_locked_and_an_unreadable_one_is_named() {
    if !common::require_tool("git", "apt-get install git") {
        return;
    }
    let dir = common::tempdir();
    let work = make_repo(dir.path());
    let head = git(&work, &["rev-parse", "HEAD"]);
    let repo = format!("file://{}", dir.path().join("srv/repo.git").display());
    let missing = format!("file://{}", dir.path().join("srv/none.git").display());
    std::fs::write(
        dir.path().join("tool.def"),
        format!(
            "Bootstrap: debootstrap\nOSVersion: bookworm\nMirrorURL: http://deb.debian.org/debian\n\n%post\n    git clone --branch v1 {repo} /opt/tool\n    git clone {missing} /opt/none\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("imagelock.toml"),
        "[images.tool]\nfile = \"tool.def\"\n",
    )
    .unwrap();
    let cli = |args: &[&str]| {
        common::run(
            common::imagelock()
                .current_dir(dir.path())
                .env("IMAGELOCK_CACHE_DIR", dir.path().join("cache"))
                .args(args),
        )
    };
    let (code, out, err) = cli(&["freeze"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("tool.def:7: `git clone …` is not locked: cannot learn the commit of `HEAD`"),
        "{err}"
    );
    let coverage = err
        .lines()
        .find(|l| l.starts_with("image `tool`: coverage"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(coverage.contains("1 of 3 steps locked"), "{coverage}");
    assert!(
        coverage.contains("line 7 `git clone …` (the lock has no commit for it: "),
        "{coverage}"
    );
    let lock = imagelock::lock::LockedImage::read(&dir.path().join("lockfiles/tool.lock")).unwrap();
    let entries: Vec<_> = lock.stages.iter().flat_map(|s| &s.git).collect();
    assert_eq!(entries.len(), 2);
    assert_eq!((entries[0].line, entries[0].reference.as_str()), (6, "v1"));
    assert_eq!(
        entries[0].commit.as_ref().map(ToString::to_string),
        Some(head.clone())
    );
    assert!(entries[1].commit.is_none() && entries[1].reason.is_some());
    let (code, out, err) = cli(&["rewrite"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let def = std::fs::read_to_string(dir.path().join("tool.def")).unwrap();
    assert!(
        def.contains(&format!(
            "    git clone --branch v1 {repo} /opt/tool && git -C /opt/tool checkout -q {head}\n    git clone {missing} /opt/none\n"
        )),
        "{def}"
    );
}

//! How imagelock reaches people's CI: the install script, the container
//! image, the pre-commit hooks, the GitHub Action and the GitLab template,
//! each run or validated by the real tool.

use std::path::Path;
use std::process::Command;

use crate::common::buildah::{Buildah, ok, prepared};
use crate::common::http::StaticServer;
use crate::common::{self, copy_dir, fixture, repo_root, run};

/// The directory holding the `imagelock` binary under test.
fn bin_dir() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_imagelock")).parent().unwrap()
}

/// `PATH` with the binary under test first.
fn path_with_imagelock() -> String {
    format!(
        "{}:{}",
        bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[test]
fn ci_files_pass_their_schemas() {
    if !common::require_tool("check-jsonschema", "pip install check-jsonschema") {
        return;
    }
    let root = repo_root();
    let workflows: Vec<String> = std::fs::read_dir(root.join(".github/workflows"))
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    assert!(!workflows.is_empty());
    for (schema, files) in [
        ("vendor.github-actions", vec!["action.yml".to_string()]),
        ("vendor.github-workflows", workflows),
        (
            "vendor.gitlab-ci",
            vec![".gitlab/imagelock.gitlab-ci.yml".to_string()],
        ),
    ] {
        let (code, out, err) = run(Command::new("check-jsonschema")
            .current_dir(root)
            .args(["--builtin-schema", schema])
            .args(&files));
        assert_eq!(code, 0, "{schema} refuses {files:?}:\n{out}\n{err}");
    }
}

/// A release directory as GitHub serves one: the tarball of the binary
/// under test for this machine, and SHA256SUMS.
fn fake_release(dir: &Path) -> String {
    std::fs::create_dir_all(dir.join("pkg")).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_imagelock"), dir.join("pkg/imagelock")).unwrap();
    let arch = match std::env::consts::ARCH {
        "x86_64" => "x86_64",
        "aarch64" => "aarch64",
        other => panic!("no release asset for {other}"),
    };
    let asset = format!("imagelock-{arch}-unknown-linux-musl.tar.gz");
    ok(Command::new("tar")
        .arg("-czf")
        .arg(dir.join(&asset))
        .arg("-C")
        .arg(dir.join("pkg"))
        .arg("imagelock"));
    let sums = ok(Command::new("sha256sum").arg(&asset).current_dir(dir));
    std::fs::write(dir.join("SHA256SUMS"), sums).unwrap();
    asset
}

#[test]
fn install_script_installs_only_what_the_checksums_name() {
    let tmp = common::tempdir();
    let release = tmp.path().join("release");
    let asset = fake_release(&release);
    let server = StaticServer::start(&release);
    let install = |dir: &Path| {
        run(Command::new("sh")
            .arg(repo_root().join("install.sh"))
            .args(["--url", &server.url(), "--dir"])
            .arg(dir))
    };

    let good = tmp.path().join("bin");
    let (code, out, err) = install(&good);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("installed imagelock "), "{out}");
    let (code, version, _) = run(Command::new(good.join("imagelock")).arg("--version"));
    assert_eq!(code, 0);
    assert!(version.starts_with("imagelock "), "{version}");

    // A tarball that does not match SHA256SUMS is refused and nothing is
    // installed.
    let mut bytes = std::fs::read(release.join(&asset)).unwrap();
    bytes.extend_from_slice(b"tampered");
    std::fs::write(release.join(&asset), bytes).unwrap();
    let bad = tmp.path().join("bad-bin");
    let (code, out, err) = install(&bad);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        err.contains("tampered with; nothing was installed"),
        "{err}"
    );
    assert!(!bad.join("imagelock").exists());

    // Without a repository or URL it says what to pass.
    let (code, _, err) = run(Command::new("sh")
        .arg(repo_root().join("install.sh"))
        .env_remove("IMAGELOCK_REPO")
        .env_remove("IMAGELOCK_DOWNLOAD_URL")
        .arg("--dir")
        .arg(tmp.path().join("none")));
    assert_eq!(code, 2);
    assert!(err.contains("hint: pass --repo OWNER/NAME"), "{err}");
}

/// A git repository holding `files` (relative path → content), committed.
fn git_repo(dir: &Path, files: &[(&str, &str)]) -> String {
    std::fs::create_dir_all(dir).unwrap();
    for (rel, content) in files {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "init"]);
    git(dir, &["rev-parse", "HEAD"]).trim().to_string()
}

fn git(dir: &Path, args: &[&str]) -> String {
    ok(Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.org"])
        .args(args))
}

#[test]
fn pre_commit_hooks_run_for_real() {
    if !(common::require_tool("pre-commit", "pip install pre-commit")
        && common::require_tool("git", "apt-get install -y git"))
    {
        return;
    }
    let tmp = common::tempdir();
    let hooks_yaml = std::fs::read_to_string(repo_root().join(".pre-commit-hooks.yaml")).unwrap();
    let hooks = tmp.path().join("hooks");
    let rev = git_repo(&hooks, &[(".pre-commit-hooks.yaml", &hooks_yaml)]);

    // A project whose one image is locked and pinned.
    let project = tmp.path().join("project");
    let dockerfile = "FROM python:3.11-slim\nRUN pip install --no-cache-dir six\n";
    std::fs::create_dir_all(&project).unwrap();
    copy_dir(&fixture("world"), &project.join("world"));
    std::fs::write(
        project.join("imagelock.toml"),
        "platforms = [\"linux/amd64\"]\n\n[images.app]\nfile = \"app/Dockerfile\"\n\n\
         [pypi]\nindex-url = \"world/pypi/simple\"\n\n\
         [registries.\"docker.io\"]\nlocation = \"oci:world/images/docker.io\"\n",
    )
    .unwrap();
    std::fs::create_dir_all(project.join("app")).unwrap();
    std::fs::write(project.join("app/Dockerfile"), dockerfile).unwrap();
    let imagelock = |args: &[&str]| {
        run(common::imagelock()
            .current_dir(&project)
            .env("IMAGELOCK_CACHE_DIR", tmp.path().join("cache"))
            .args(args))
    };
    let (code, out, err) = imagelock(&["freeze"]);
    assert_eq!(code, 0, "freeze: {out}\n{err}");
    let (code, out, err) = imagelock(&["rewrite"]);
    assert_eq!(code, 0, "rewrite: {out}\n{err}");
    // The pinned definition is an input of its own lock: lock it again.
    let (code, out, err) = imagelock(&["freeze"]);
    assert_eq!(code, 0, "freeze after rewrite: {out}\n{err}");
    std::fs::write(
        project.join(".pre-commit-config.yaml"),
        format!(
            "repos:\n  - repo: {}\n    rev: {rev}\n    hooks:\n      - id: imagelock-freeze-check\n      - id: imagelock-rewrite-check\n      - id: imagelock-verify\n",
            hooks.display()
        ),
    )
    .unwrap();
    git_repo(&project, &[]);

    let pre_commit = || {
        run(Command::new("pre-commit")
            .current_dir(&project)
            .args(["run", "--all-files", "--color", "never"])
            .env("PATH", path_with_imagelock())
            .env("PRE_COMMIT_HOME", tmp.path().join("pre-commit-home"))
            .env("IMAGELOCK_CACHE_DIR", tmp.path().join("cache"))
            .env("NO_COLOR", "1"))
    };
    let (code, out, err) = pre_commit();
    assert_eq!(code, 0, "a locked, pinned project passes:\n{out}\n{err}");
    for id in [
        "imagelock locks are current",
        "imagelock definitions are pinned",
        "imagelock locks match their inputs",
    ] {
        assert!(out.contains(id) && out.contains("Passed"), "{out}");
    }

    // A new floating install fails both checks.
    std::fs::write(
        project.join("app/Dockerfile"),
        format!(
            "{}RUN pip install --no-cache-dir attrs\n",
            std::fs::read_to_string(project.join("app/Dockerfile")).unwrap()
        ),
    )
    .unwrap();
    git(&project, &["add", "-A"]);
    let (code, out, err) = pre_commit();
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("Failed"), "{out}");
}

/// The composite action's check step, as the runner would run it.
fn action_check_script() -> String {
    let action = std::fs::read_to_string(repo_root().join("action.yml")).unwrap();
    let step = action
        .split("    - name: Check\n")
        .nth(1)
        .expect("the action has a Check step");
    step.split("      run: |\n")
        .nth(1)
        .unwrap()
        .lines()
        .take_while(|l| l.is_empty() || l.starts_with("        "))
        .map(|l| format!("{}\n", l.strip_prefix("        ").unwrap_or(l)))
        .collect()
}

/// A verify finding becomes an annotation on its file (from the SARIF
/// report), and the verify report's table is in the job summary.
#[test]
fn action_turns_verify_findings_into_annotations() {
    if !common::require_tool("jq", "apt-get install jq") {
        return;
    }
    let tmp = common::tempdir();
    let work = tmp.path().join("repo");
    common::copy_dir(
        &repo_root().join("fixtures/examples"),
        &work.join("fixtures/examples"),
    );
    common::copy_dir(
        &repo_root().join("fixtures/world"),
        &work.join("fixtures/world"),
    );
    common::copy_dir(&repo_root().join("lockfiles"), &work.join("lockfiles"));
    let dockerfile = work.join("fixtures/examples/driver/Dockerfile");
    let text = std::fs::read_to_string(&dockerfile).unwrap();
    std::fs::write(
        &dockerfile,
        format!("{text}LABEL org.example.edited=\"1\"\n"),
    )
    .unwrap();
    let summary = tmp.path().join("summary.md");
    let sarif = tmp.path().join("imagelock.sarif");
    let (code, out, err) = run(Command::new("bash")
        .args(["-c", &action_check_script()])
        .current_dir(&work)
        .env("PATH", path_with_imagelock())
        .env("RUNNER_TEMP", tmp.path())
        .env("GITHUB_OUTPUT", tmp.path().join("output"))
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("CONFIG", "fixtures/examples/imagelock.toml")
        .env("PATHS", "")
        .env("FREEZE_CHECK", "false")
        .env("REWRITE_CHECK", "false")
        .env("VERIFY", "true")
        .env("IMAGES", "")
        .env("PLATFORM", "")
        .env("JUNIT", tmp.path().join("junit.xml"))
        .env("SARIF", &sarif)
        .env("SUMMARY", "true")
        .env("IMAGELOCK_CACHE_DIR", tmp.path().join("cache")));
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.lines().any(|l| l.starts_with(
            "::warning file=fixtures/examples/driver/Dockerfile,title=imagelock stale::driver: the inputs changed"
        )),
        "a finding becomes an annotation:\n{out}"
    );
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(
        summary.contains("**imagelock verify**: 1 problem in 1 of 8 images")
            && summary.contains("| | stale | the inputs changed"),
        "{summary}"
    );
}

#[test]
fn action_check_step_reports_on_the_examples() {
    // The composite action's check step, run by bash as the runner would,
    // on the example images (locked, not yet pinned).
    let script = action_check_script();
    let tmp = common::tempdir();
    let out_file = tmp.path().join("output");
    let summary = tmp.path().join("summary.md");
    let junit = tmp.path().join("junit.xml");
    let sarif = tmp.path().join("imagelock.sarif");
    let (code, out, err) = run(Command::new("bash")
        .args(["-c", &script])
        .current_dir(repo_root())
        .env("PATH", path_with_imagelock())
        .env("RUNNER_TEMP", tmp.path())
        .env("GITHUB_OUTPUT", &out_file)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("CONFIG", "fixtures/examples/imagelock.toml")
        .env("PATHS", "")
        .env("FREEZE_CHECK", "true")
        .env("REWRITE_CHECK", "true")
        .env("VERIFY", "true")
        .env("IMAGES", "")
        .env("PLATFORM", "")
        .env("JUNIT", &junit)
        .env("SARIF", &sarif)
        .env("SUMMARY", "true")
        .env("IMAGELOCK_CACHE_DIR", tmp.path().join("cache")));
    // The examples are locked but not pinned: findings, exit 1.
    assert_eq!(code, 1, "{out}\n{err}");
    assert_eq!(std::fs::read_to_string(&out_file).unwrap(), "exit-code=1\n");
    assert!(
        out.contains(
            "::warning file=fixtures/examples/notebook-stack/scipy-ml-notebook/Dockerfile,line=4,col=6,title=imagelock::"
        ),
        "located warnings become annotations:\n{out}"
    );
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(
        summary.contains("### Locks are current: ✅ clean"),
        "{summary}"
    );
    assert!(
        summary.contains("### Definitions are pinned: ❌ findings"),
        "{summary}"
    );
    assert!(
        summary.contains("### Locks match their inputs: ✅ clean"),
        "{summary}"
    );
    assert!(
        summary.contains("**imagelock verify**: 8 images clean"),
        "the verify report's markdown is in the summary:\n{summary}"
    );
    let text = std::fs::read_to_string(&junit).unwrap();
    assert!(
        text.starts_with("<?xml") && text.contains("<testsuite"),
        "{text}"
    );
    if crate::reports::validators() {
        crate::reports::assert_junit_common(&junit);
        crate::reports::assert_sarif(&sarif);
    }
}

#[test]
fn container_image_builds_and_runs_the_main_job() {
    let Some(prepared) = prepared() else { return };
    if !common::require_tool("buildah", "apt-get install -y buildah") {
        return;
    }
    let tmp = common::tempdir();
    let path = |rel: &str| tmp.path().join(rel);
    std::fs::write(
        path("registries.conf"),
        "unqualified-search-registries = []\n",
    )
    .unwrap();
    let buildah = Buildah::new(path("buildah"), path("registries.conf"));
    // The test world's Debian base stands in for `scratch`, since the binary
    // under test links glibc (releases are static musl builds).
    buildah.debian_base(
        &prepared,
        "localhost/imagelock-test-base",
        &["PATH=/usr/local/bin:/usr/bin:/bin"],
    );
    let ctx = path("ctx");
    std::fs::create_dir_all(ctx.join("home")).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_imagelock"), ctx.join("imagelock")).unwrap();
    std::fs::copy(
        "/etc/ssl/certs/ca-certificates.crt",
        ctx.join("ca-certificates.crt"),
    )
    .or_else(|_| std::fs::write(ctx.join("ca-certificates.crt"), "").map(|()| 0))
    .unwrap();
    let containerfile = repo_root().join("Containerfile");
    buildah.bud(
        &ctx,
        "localhost/imagelock:test",
        &[
            "-f",
            containerfile.to_str().unwrap(),
            "--build-arg",
            "BASE=localhost/imagelock-test-base",
        ],
    );
    let user = buildah.ok(&[
        "inspect",
        "--format",
        "{{.OCIv1.Config.User}}",
        "localhost/imagelock:test",
    ]);
    assert_eq!(
        user.trim(),
        "65532:65532",
        "the image runs as a non-root user"
    );

    // The README's main job inside the container, on a copy of the
    // repository's examples, world and locks.
    let repo = path("repo");
    for dir in ["fixtures/examples", "fixtures/world", "lockfiles"] {
        copy_dir(&repo_root().join(dir), &repo.join(dir));
    }
    ok(Command::new("chmod").args(["-R", "a+rwX"]).arg(&repo));
    let c = buildah.ok(&["from", "localhost/imagelock:test"]);
    let c = c.trim();
    let mount = format!("{}:/home/imagelock/repo", repo.display());
    let in_container = |args: &[&str]| {
        run(buildah
            .cmd()
            .args(["run", "--isolation", "chroot", "-v", &mount, "--workingdir"])
            .arg("/home/imagelock/repo")
            .args([c, "--", "/usr/local/bin/imagelock"])
            .args(args))
    };
    let (code, out, err) = in_container(&["--version"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.starts_with("imagelock "), "{out}");
    let config = "fixtures/examples/imagelock.toml";
    let (code, out, err) = in_container(&["--config", config, "freeze", "--check"]);
    assert_eq!(code, 0, "freeze --check in the container:\n{out}\n{err}");
    let (code, out, err) = in_container(&["--config", config, "verify", "--offline"]);
    assert_eq!(code, 0, "verify in the container:\n{out}\n{err}");
    assert!(out.contains("driver: the lock is current"), "{out}");
}

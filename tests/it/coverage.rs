//! Coverage: every instruction that can change an image's content is
//! locked, lockable by content, or named as not locked with its line and why.

use std::path::Path;

use crate::common;

/// The seeds' real build lines, in one minimal file.
const SEEDS: &str = r#"ARG PB_VERSION=4.3.0-1
FROM python:3.11-slim
RUN apt-get update && apt-get install -y curl git make
RUN curl -sSL https://sdk.cloud.google.com/install.sh | bash -s -- --disable-prompts
RUN curl -L https://example.org/phantomjs-2.1.1.tar.bz2 | tar xj -C /opt
RUN git clone https://github.com/example/hail.git /src/hail \
    && cd /src/hail && make install
RUN pip install hail==0.2.133
RUN curl -fsSL -o /tmp/tool.tgz https://example.org/tool-1.0.tgz
ADD https://example.org/data.tar.gz /data/
ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d https://example.org/other.tar.gz /data/
RUN Rscript -e 'install.packages("ggplot2")'
COPY --from=nvcr.io/nvidia/clara/clara-parabricks:${PB_VERSION} /opt/parabricks /opt/parabricks
RUN git clone https://github.com/example/tool.git /src/tool && git -C /src/tool checkout 0123456789abcdef0123456789abcdef01234567
"#;

fn plan(dir: &Path, args: &[&str]) -> (i32, String, String) {
    common::run(common::imagelock().current_dir(dir).arg("plan").args(args))
}

fn coverage_line(stdout: &str) -> &str {
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("coverage: "))
        .unwrap_or_else(|| panic!("no coverage line in:\n{stdout}"))
}

/// Regression: `curl … | bash`, `curl | tar`, `git clone && make install`,
/// `ADD <url>` and R installs brought content in with no lock entry and no
/// message, and a pip step naming what `make install` built counted as
/// pinned to an index file the image does not hold.
#[test]
fn plan_names_every_step_the_lock_does_not_pin_with_its_line_and_why() {
    let tmp = common::tempdir();
    std::fs::write(tmp.path().join("Dockerfile"), SEEDS).unwrap();
    let (code, out, err) = plan(tmp.path(), &["Dockerfile"]);
    assert_eq!(code, 0, "{err}");
    let line = coverage_line(&out);
    for part in [
        "line 4 `curl … | bash` (script from the network)",
        "line 5 `curl … | tar` (archive from the network, unpacked unchecked)",
        "line 6 `git clone …` (lockable by content: a git branch that moves",
        "line 7 `make install` (built from the source of `hail`; what it installs is not locked)",
        "line 8 `pip install hail==0.2.133` (`hail` was built from source at line 7: the image holds that build, not an index file)",
        "line 9 `curl -fsSL …` (lockable by content: a fixed URL",
        "line 10 `ADD https://example.org/data.tar.gz` (lockable by content",
        "line 12 `Rscript -e 'install.packages(\"ggplot2\")'` (R packages from CRAN or Bioconductor)",
    ] {
        assert!(line.contains(part), "`{part}` missing from:\n{line}");
    }
    // Locked: the base, the apt step (freeze resolves it; its lock says
    // whether it could), `ADD --checksum`, the COPY --from image (its ARG
    // is declared before the first FROM), the clone checked out at a full
    // commit. Not the pip step: it names what `make install` built.
    assert!(line.starts_with("5 of 13 steps locked; "), "{line}");
    for locked in ["line 2 ", "line 3 ", "line 11 ", "line 13 ", "line 14 "] {
        assert!(!line.contains(locked), "{locked}is locked: {line}");
    }
}

/// A step accepted on purpose (by line, or by a pattern over the command)
/// is listed as accepted, not as not locked.
#[test]
fn accepted_steps_are_named_apart() {
    let tmp = common::tempdir();
    std::fs::write(tmp.path().join("Dockerfile"), SEEDS).unwrap();
    std::fs::write(
        tmp.path().join("imagelock.toml"),
        "accept-unlocked = [\"curl * | tar *\"]\n\n[images.app]\nfile = \"Dockerfile\"\naccept-unlocked = [4, \"Rscript *\"]\n",
    )
    .unwrap();
    let (code, out, err) = plan(tmp.path(), &[]);
    assert_eq!(code, 0, "{err}");
    let line = coverage_line(&out);
    let (accepted, unlocked) = line.split_once("; not locked: ").unwrap();
    assert!(
        accepted.ends_with(
            "accepted unlocked: line 4 `curl … | bash`, line 5 `curl … | tar`, line 12 `Rscript -e 'install.packages(\"ggplot2\")'`"
        ),
        "{line}"
    );
    assert!(!unlocked.contains("line 4 ") && !unlocked.contains("line 5 "));
    assert!(unlocked.contains("line 7 `make install`"), "{line}");
}

/// `drift --fail-on unlocked` fails while a step is neither locked nor
/// accepted, and passes once every such step is accepted.
#[test]
fn drift_fails_on_unlocked_steps_until_they_are_accepted() {
    use crate::common::registry::{AuthKind, LayoutBuilder, server};
    let Some(registry) = server(AuthKind::Open) else {
        return;
    };
    let dir = common::tempdir();
    let mut layout = LayoutBuilder::new(&dir.path().join("layout"));
    let base = layout.manifest("amd64", None, "coverage-drift-base");
    layout.tag_manifest(&base, "base");
    registry.push(&layout.dir, "base", "coverage/drift-base:1", false);
    std::fs::create_dir_all(dir.path().join("app")).unwrap();
    std::fs::write(
        dir.path().join("app/Dockerfile"),
        format!(
            "FROM {}/coverage/drift-base:1\nRUN apt-get update && apt-get install -y curl\n",
            registry.addr
        ),
    )
    .unwrap();
    let cli = |accept: &str, args: &[&str]| {
        std::fs::write(
            dir.path().join("imagelock.toml"),
            format!("[images.app]\nfile = \"app/Dockerfile\"\n{accept}"),
        )
        .unwrap();
        common::run(
            common::imagelock()
                .current_dir(dir.path())
                .env("IMAGELOCK_CACHE_DIR", dir.path().join("cache"))
                .args(args),
        )
    };
    let (code, _, err) = cli("", &["freeze"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cli("", &["drift", "--fail-on", "unlocked"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains(
            "app: coverage: 1 of 2 steps locked; not locked: line 2 `apt-get install …` (the image has no dpkg status (`/var/lib/dpkg/status`), so imagelock does not know what apt starts from)"
        ),
        "{out}\n{err}"
    );
    // Without `unlocked` in `--fail-on`, the same report passes.
    let (code, _, err) = cli("", &["drift", "--fail-on", "base"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cli(
        "accept-unlocked = [\"apt-get install *\"]\n",
        &["drift", "--fail-on", "unlocked"],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains(
            "app: coverage: 1 of 2 steps locked; accepted unlocked: line 2 `apt-get install …`"
        ),
        "{out}"
    );
}

/// `verify` without an image says what the lock covers beside "current".
#[test]
fn verify_names_the_coverage_beside_a_current_lock() {
    let examples = common::repo_root().join("fixtures/examples");
    let (code, out, err) = common::run(common::imagelock().current_dir(&examples).args([
        "verify",
        "driver/Dockerfile",
        "workbench/Dockerfile",
    ]));
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(
        out,
        "driver: the lock is current\ndriver: coverage: 3 of 6 steps locked; not locked: line 8 `apt-get install …` (the image names no apt source (`/etc/apt/sources.list`, `sources.list.d/*.list` or `*.sources`) that imagelock can read), line 18 `curl … | bash` (script from the network), line 19 `curl … | tar` (archive from the network, unpacked unchecked)\n\
         workbench: the lock is current\nworkbench: coverage: 4 of 4 steps locked\n"
    );
}

/// Regression: `COPY --from=IMAGE:${V}` with `V` declared only before the
/// first FROM was dropped from the lock without a word. The image its
/// default names is pinned by digest at the real registry, and freeze says
/// that builders do not expand it there.
#[test]
fn copy_from_an_image_tagged_by_a_global_arg_is_locked_by_digest() {
    use crate::common::registry::{AuthKind, LayoutBuilder, server};
    let Some(registry) = server(AuthKind::Open) else {
        return;
    };
    let dir = common::tempdir();
    let mut layout = LayoutBuilder::new(&dir.path().join("layout"));
    let base = layout.manifest("amd64", None, "coverage-base");
    layout.tag_manifest(&base, "base");
    let tools = layout.manifest("amd64", None, "coverage-tools");
    layout.tag_manifest(&tools, "tools");
    registry.push(&layout.dir, "base", "coverage/base:1", false);
    registry.push(&layout.dir, "tools", "coverage/tools:4.3.0-1", false);
    std::fs::create_dir_all(dir.path().join("app")).unwrap();
    std::fs::write(
        dir.path().join("app/Dockerfile"),
        format!(
            "ARG TOOLS_VERSION=4.3.0-1\nFROM {r}/coverage/base:1\nCOPY --from={r}/coverage/tools:${{TOOLS_VERSION}} /opt/tools /opt/tools\n",
            r = registry.addr
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("imagelock.toml"),
        "[images.app]\nfile = \"app/Dockerfile\"\n",
    )
    .unwrap();
    let (code, out, err) = common::run(
        common::imagelock()
            .current_dir(dir.path())
            .env("IMAGELOCK_CACHE_DIR", dir.path().join("cache"))
            .arg("freeze"),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("image `app`: coverage: 2 of 2 steps locked"),
        "{err}"
    );
    let lock = imagelock::lock::LockedImage::read(&dir.path().join("lockfiles/app.lock")).unwrap();
    let copied = lock
        .bases
        .iter()
        .find(|b| b.name.to_string().ends_with("coverage/tools:4.3.0-1"))
        .unwrap_or_else(|| panic!("no pin of the COPY --from image: {:?}", lock.bases));
    assert_eq!(copied.digest.to_string(), tools.digest);
    assert!(
        err.contains("app/Dockerfile:3: `--from=")
            && err.contains("declare the ARG again in this stage"),
        "{err}"
    );
}

/// The README's main job prints each example image's coverage, in freeze
/// and in verify; the driver's gcloud installer and PhantomJS archive are
/// named as not locked, with their lines.
#[test]
fn the_main_job_prints_each_example_images_coverage() {
    let root = common::repo_root();
    let cache = common::tempdir();
    let run = |args: &[&str]| {
        common::run(
            common::imagelock()
                .current_dir(root)
                .env("IMAGELOCK_CACHE_DIR", cache.path())
                .args(["--config", "fixtures/examples/imagelock.toml"])
                .args(args),
        )
    };
    let driver = "coverage: 3 of 6 steps locked; not locked: line 8 `apt-get install …` (the image names no apt source (`/etc/apt/sources.list`, `sources.list.d/*.list` or `*.sources`) that imagelock can read), line 18 `curl … | bash` (script from the network), line 19 `curl … | tar` (archive from the network, unpacked unchecked)";
    let (code, _, err) = run(&["freeze", "--check"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(&format!("image `driver`: {driver}")), "{err}");
    let (code, out, err) = run(&["verify"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains(&format!("driver: {driver}")), "{out}");
    for image in [
        "base-notebook",
        "driver",
        "longqc",
        "scipy-ml-notebook",
        "summation",
        "workbench",
    ] {
        assert!(
            out.contains(&format!("{image}: coverage: ")),
            "{image}: {out}"
        );
    }
}

/// `ADD <url>` and `curl -o FILE <url>` of a fixed URL: freeze fetches the
/// file from its server, records its url, sha256 and size in the lock, and
/// coverage counts both as locked; `rewrite` adds `--checksum=sha256:…` to
/// the `ADD` (the `RUN` stays as written), and a second rewrite changes
/// nothing.
#[test]
fn files_from_fixed_urls_are_locked_by_sha256_and_add_gets_a_checksum() {
    use crate::common::http::StaticServer;
    use crate::common::registry::{AuthKind, LayoutBuilder, server};
    let Some(registry) = server(AuthKind::Open) else {
        return;
    };
    let dir = common::tempdir();
    let mut layout = LayoutBuilder::new(&dir.path().join("layout"));
    let base = layout.manifest("amd64", None, "coverage-add-base");
    layout.tag_manifest(&base, "base");
    registry.push(&layout.dir, "base", "coverage/add-base:1", false);
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("data.tar.gz"), b"the data archive\n").unwrap();
    std::fs::write(files.join("tool.tgz"), b"the tool, version 1\n").unwrap();
    let http = StaticServer::start(&files);
    let sha = |b: &[u8]| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b));
    std::fs::create_dir_all(dir.path().join("app")).unwrap();
    let dockerfile = format!(
        "FROM {r}/coverage/add-base:1\nADD {h}/data.tar.gz /data/\nRUN curl -fsSLo /tmp/tool.tgz {h}/tool.tgz\n",
        r = registry.addr,
        h = http.url()
    );
    std::fs::write(dir.path().join("app/Dockerfile"), &dockerfile).unwrap();
    std::fs::write(
        dir.path().join("imagelock.toml"),
        "[images.app]\nfile = \"app/Dockerfile\"\n",
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
        err.contains("image `app`: coverage: 3 of 3 steps locked"),
        "{err}"
    );
    let lock = imagelock::lock::LockedImage::read(&dir.path().join("lockfiles/app.lock")).unwrap();
    let got: Vec<(u32, String, String, u64)> = lock
        .stages
        .iter()
        .flat_map(|s| &s.downloads)
        .map(|d| (d.line, d.url.to_string(), d.sha256.to_string(), d.size))
        .collect();
    let data_sha = sha(b"the data archive\n");
    assert_eq!(
        got,
        [
            (
                2,
                format!("{}/data.tar.gz", http.url()),
                data_sha.clone(),
                17
            ),
            (
                3,
                format!("{}/tool.tgz", http.url()),
                sha(b"the tool, version 1\n"),
                20
            ),
        ]
    );

    let (code, out, err) = cli(&["rewrite"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let rewritten = std::fs::read_to_string(dir.path().join("app/Dockerfile")).unwrap();
    // The base gets its digest; the ADD its checksum; the RUN stays.
    let lines: Vec<&str> = rewritten.lines().collect();
    let want: Vec<String> = dockerfile.lines().map(str::to_string).collect();
    assert_eq!(
        lines[1],
        want[1].replace(
            "ADD http",
            &format!("ADD --checksum=sha256:{data_sha} http")
        ),
        "{rewritten}"
    );
    assert_eq!(lines[2], want[2], "{rewritten}");
    let (code, out, err) = cli(&["rewrite"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("app/Dockerfile")).unwrap(),
        rewritten
    );
    // Asked for (by `[rewrite] checksum-downloads`, or the flag), the
    // download gets a `sha256sum -c` check after it; asked again, nothing
    // changes.
    let config = dir.path().join("imagelock.toml");
    let plain_config = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!(
            "{plain_config}
[rewrite]
checksum-downloads = true
"
        ),
    )
    .unwrap();
    let (code, out, err) = cli(&["rewrite"]);
    std::fs::write(&config, plain_config).unwrap();
    assert_eq!(code, 0, "{out}\n{err}");
    let checked = std::fs::read_to_string(dir.path().join("app/Dockerfile")).unwrap();
    assert_eq!(
        checked.lines().nth(2).unwrap(),
        format!(
            "{} && echo \"{}  /tmp/tool.tgz\" | sha256sum -c -",
            want[2],
            sha(b"the tool, version 1\n")
        ),
        "{checked}"
    );
    let (code, out, err) = cli(&["rewrite", "--check-downloads"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("app/Dockerfile")).unwrap(),
        checked
    );
    let rewritten = checked;
    let (code, out, err) = cli(&["verify"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("app: coverage: 3 of 3 steps locked"), "{out}");

    // Upstream, the data archive is replaced and the tool removed: drift
    // reports the first as `hash-mismatch` and the second as `gone`.
    let (code, out, err) = cli(&["drift", "--format", "json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        !out.contains("hash-mismatch") && !out.contains("\"gone\""),
        "{out}"
    );
    std::fs::write(files.join("data.tar.gz"), b"the data archive, replaced\n").unwrap();
    std::fs::remove_file(files.join("tool.tgz")).unwrap();
    let (code, out, err) = cli(&["drift", "--format", "json", "--fail-on", "any"]);
    assert_eq!(code, 1, "{out}\n{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let findings = report["images"][0]["findings"].as_array().unwrap();
    let of = |kind: &str| {
        findings
            .iter()
            .find(|f| f["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} finding in {out}"))
    };
    let mismatch = of("hash-mismatch");
    assert_eq!(mismatch["url"], format!("{}/data.tar.gz", http.url()));
    assert_eq!(mismatch["locked"], data_sha);
    assert_eq!(mismatch["at"], "app/Dockerfile:2");
    let gone = of("gone");
    assert_eq!(gone["url"], format!("{}/tool.tgz", http.url()));
    assert_eq!(gone["at"], "app/Dockerfile:3");
    // Once the definition changes, freeze resolves again and refuses to
    // carry the lock onward over the replaced file.
    std::fs::write(
        dir.path().join("app/Dockerfile"),
        format!("{rewritten}ENV EDITED=1\n"),
    )
    .unwrap();
    let (code, out, err) = cli(&["freeze"]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        err.contains(&format!(
            "`sha256` of the file at `{}/data.tar.gz` is `{data_sha}` in the lock, but the URL serves `{}`",
            http.url(),
            sha(b"the data archive, replaced\n")
        )),
        "{err}"
    );
}

/// A pip step naming a project an earlier command built from source is
/// recorded as not locked, with the build's line: the lock claims no index
/// file the image does not hold, and `rewrite` leaves the step as written.
#[test]
fn a_pip_step_after_a_build_from_source_claims_no_index_file() {
    let dir = common::tempdir();
    let dockerfile = "FROM scratch\n\
        RUN git clone https://github.com/example/hail.git /src/hail \\\n    && cd /src/hail && make install\n\
        RUN pip install hail[all]==0.2.133\n";
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    std::fs::write(
        dir.path().join("imagelock.toml"),
        "lock-dir = \"lockfiles\"\n[images.app]\nfile = \"Dockerfile\"\n",
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
    let (code, out, err) = cli(&["freeze", "--offline"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("Dockerfile:4: `pip install hail[all]==0.2.133` is not locked: `hail` was built from source at line 3"),
        "{err}"
    );
    let lock = imagelock::lock::LockedImage::read(&dir.path().join("lockfiles/app.lock")).unwrap();
    let step = lock
        .steps
        .iter()
        .find(|s| s.line == 4)
        .expect("the pip step");
    assert!(!step.locked, "{step:?}");
    assert!(step.pypi.is_empty(), "{step:?}");
    let (code, out, err) = cli(&["rewrite"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("Dockerfile")).unwrap(),
        dockerfile
    );
}

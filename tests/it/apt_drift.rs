//! apt steps in `drift` and in the SBOM, against a signed repository made
//! here with the real tools (`apt-ftparchive`, `gpg`, `dpkg-deb`) from the
//! real `.deb` files of `tests/apt/prepare.py`, served on 127.0.0.1: after
//! the lock, the archive publishes a rebuilt `hello` in its `-security`
//! suite and a new release of the main suite; drift calls the first a
//! security update and the second a moved suite.

use std::path::Path;
use std::process::Command;

use crate::common::http::StaticServer;
use crate::common::registry::LayoutBuilder;
use crate::common::{self, imagelock, repo_root, run};

fn ok(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().expect("the tool runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn gpg(home: &Path) -> Command {
    let mut c = Command::new("gpg");
    c.args(["--batch", "--homedir"]).arg(home).args([
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "",
    ]);
    c
}

/// Indexes `pool/<dir>` as suite `suite` of `repo`, with `Date` `date`,
/// clear-signed by the key of `home`.
fn publish(repo: &Path, home: &Path, suite: &str, dir: &str, date: &str) {
    let d = repo.join("dists").join(suite).join("main/binary-amd64");
    std::fs::create_dir_all(&d).unwrap();
    let packages = ok(Command::new("apt-ftparchive")
        .args(["packages", &format!("pool/{dir}")])
        .current_dir(repo));
    std::fs::write(d.join("Packages"), &packages).unwrap();
    let release = ok(Command::new("apt-ftparchive")
        .args([
            "-o",
            "APT::FTPArchive::Release::Origin=Debian",
            "-o",
            &format!("APT::FTPArchive::Release::Suite={suite}"),
            "-o",
            &format!("APT::FTPArchive::Release::Codename={suite}"),
            "-o",
            "APT::FTPArchive::Release::Architectures=amd64",
            "-o",
            "APT::FTPArchive::Release::Components=main",
            "release",
            ".",
        ])
        .current_dir(repo.join("dists").join(suite)));
    let release = String::from_utf8(release).unwrap();
    let release: String = release
        .lines()
        .map(|l| {
            if l.starts_with("Date:") {
                format!("Date: {date}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let rel = repo.join("dists").join(suite).join("Release");
    std::fs::write(&rel, release).unwrap();
    let inrelease = repo.join("dists").join(suite).join("InRelease");
    let _ = std::fs::remove_file(&inrelease);
    ok(gpg(home)
        .args([
            "--local-user",
            "drift@test.invalid",
            "--clearsign",
            "--output",
        ])
        .arg(&inrelease)
        .arg(&rel));
    std::fs::remove_file(rel).unwrap();
}

fn date(days_ago: i64) -> String {
    let t = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * days_ago);
    t.strftime("%a, %d %b %Y %H:%M:%S UTC").to_string()
}

/// A one-layer OCI layout `DIR/library/debian:bookworm` holding `files`
/// and `links` (path, target).
fn base_image(dir: &Path, files: &[(&str, Vec<u8>)], links: &[(&str, &str)]) {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_cksum();
        tar.append_data(&mut h, path, content.as_slice()).unwrap();
    }
    for (path, target) in links {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        h.set_mtime(0);
        tar.append_link(&mut h, path, target).unwrap();
    }
    let tar = tar.into_inner().unwrap();
    LayoutBuilder::new(&dir.join("library/debian")).tag_layers("bookworm", &[&tar]);
}

/// A signing key and the fixture's `.deb` files in `repo/pool/main` of a
/// fresh temporary directory (an empty `pool/security` beside them), or
/// `None` (skip) when `tests/apt/prepare.py` has not run or apt-utils is
/// missing outside CI.
struct Archive {
    tmp: tempfile::TempDir,
    /// The fixture's `hello` package, as prepared.
    hello: std::path::PathBuf,
    /// The signing key, exported (binary).
    key: Vec<u8>,
}

impl Archive {
    fn new(what: &str) -> Option<Archive> {
        let fixture = repo_root().join("target/apt-fixture");
        if !fixture.join("debs").is_dir() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "the apt {what} test needs `python3 tests/apt/prepare.py` first"
            );
            eprintln!("skipping: run `python3 tests/apt/prepare.py` to prepare the apt repository");
            return None;
        }
        if !common::require_tool("apt-ftparchive", "apt-get install -y apt-utils") {
            return None;
        }
        let tmp = common::tempdir();
        let repo = tmp.path().join("repo");
        std::fs::create_dir_all(repo.join("pool/main")).unwrap();
        std::fs::create_dir_all(repo.join("pool/security")).unwrap();
        let mut hello = None;
        for e in std::fs::read_dir(fixture.join("debs")).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            std::fs::copy(e.path(), repo.join("pool/main").join(&name)).unwrap();
            if name.starts_with("hello_") {
                hello = Some(e.path());
            }
        }
        let home = tmp.path().join("gnupg");
        std::fs::create_dir_all(&home).unwrap();
        ok(gpg(&home).args([
            "--quick-gen-key",
            "imagelock drift <drift@test.invalid>",
            "ed25519",
            "sign",
            "never",
        ]));
        let key = ok(gpg(&home).args(["--export", "drift@test.invalid"]));
        Some(Archive {
            tmp,
            hello: hello.expect("the fixture has hello"),
            key,
        })
    }

    fn path(&self, rel: &str) -> std::path::PathBuf {
        self.tmp.path().join(rel)
    }
}

#[test]
fn drift_calls_out_security_updates_and_moved_suites_and_the_sbom_has_deb_purls() {
    let Some(archive) = Archive::new("drift") else {
        return;
    };
    let path = |rel: &str| archive.path(rel);
    let repo = path("repo");
    let home = path("gnupg");
    let hello = archive.hello.clone();
    let key = archive.key.clone();
    publish(&repo, &home, "bookworm", "main", &date(3));
    publish(&repo, &home, "bookworm-security", "security", &date(3));
    let server = StaticServer::start(&repo);
    let url = server.url();

    // The base: libc6 installed (its stanza from the archive), the two
    // suites, the key.
    let packages =
        std::fs::read_to_string(repo.join("dists/bookworm/main/binary-amd64/Packages")).unwrap();
    let libc6 = packages
        .split("\n\n")
        .find(|s| s.starts_with("Package: libc6\n"))
        .unwrap();
    let libgcc = packages
        .split("\n\n")
        .filter(|s| {
            s.starts_with("Package: libgcc-s1\n") || s.starts_with("Package: gcc-12-base\n")
        })
        .collect::<Vec<_>>();
    let mut status = String::new();
    for s in std::iter::once(libc6).chain(libgcc) {
        status.push_str(&format!(
            "{}\nStatus: install ok installed\n\n",
            s.trim_end()
        ));
    }
    base_image(
        &path("images"),
        &[
            ("var/lib/dpkg/status", status.into_bytes()),
            (
                "etc/apt/sources.list.d/debian.sources",
                format!(
                    "Types: deb\nURIs: {url}\nSuites: bookworm bookworm-security\nComponents: main\nSigned-By: /etc/apt/keyrings/drift.gpg\n"
                )
                .into_bytes(),
            ),
            ("usr/share/keyrings/drift.gpg", key),
        ],
        // The keyring the source names is a link, as images often have.
        &[(
            "etc/apt/keyrings/drift.gpg",
            "../../../usr/share/keyrings/drift.gpg",
        )],
    );
    let ex = path("image");
    std::fs::create_dir_all(&ex).unwrap();
    std::fs::write(
        ex.join("Dockerfile"),
        "FROM debian:bookworm\nRUN apt-get update && apt-get install -y hello\n",
    )
    .unwrap();
    std::fs::write(
        ex.join("imagelock.toml"),
        format!(
            "lock-dir = \"lockfiles\"\n[images.tool]\nfile = \"Dockerfile\"\n\n\
             [registries.\"docker.io\"]\nlocation = \"oci:{}\"\n",
            path("images").display()
        ),
    )
    .unwrap();
    let cli = |args: &[&str]| {
        run(imagelock()
            .current_dir(&ex)
            .env("XDG_CACHE_HOME", path("cache"))
            .args(args))
    };
    let (code, out, err) = cli(&["freeze"]);
    assert_eq!(code, 0, "freeze:\n{out}\n{err}");
    let lock = std::fs::read_to_string(ex.join("lockfiles/tool.lock")).unwrap();
    assert!(lock.contains("name = \"hello\""), "{lock}");
    assert!(lock.contains("version = \"2.10-3\""), "{lock}");

    let (code, out, err) = cli(&["export", "tool", "--to", "sbom"]);
    assert_eq!(code, 0, "export:\n{out}\n{err}");
    assert!(
        out.contains("pkg:deb/debian/hello@2.10-3?arch=amd64&distro=bookworm"),
        "{out}"
    );

    let (code, out, err) = cli(&["drift"]);
    assert_eq!(code, 0, "no drift yet:\n{out}\n{err}");
    assert!(out.contains("no drift"), "{out}");

    // A rebuilt hello in the security suite; a new release of the main one.
    let unpacked = path("hello-src");
    ok(Command::new("dpkg-deb")
        .arg("-R")
        .arg(&hello)
        .arg(&unpacked));
    let control = unpacked.join("DEBIAN/control");
    let text = std::fs::read_to_string(&control)
        .unwrap()
        .replace("Version: 2.10-3\n", "Version: 2.10-3+deb12u1\n");
    std::fs::write(&control, text).unwrap();
    ok(Command::new("dpkg-deb")
        .args(["--root-owner-group", "-b"])
        .arg(&unpacked)
        .arg(repo.join("pool/security/hello_2.10-3+deb12u1_amd64.deb")));
    publish(&repo, &home, "bookworm-security", "security", &date(1));
    publish(&repo, &home, "bookworm", "main", &date(1));

    let (code, out, err) = cli(&["drift", "--format", "json", "--fail-on", "security"]);
    assert_eq!(code, 1, "drift:\n{out}\n{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let findings = report["images"][0]["findings"].as_array().unwrap();
    let security = findings
        .iter()
        .find(|f| f["kind"] == "security")
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(security["package"], "hello", "{out}");
    assert_eq!(security["locked"], "2.10-3", "{out}");
    assert_eq!(security["latest"], "2.10-3+deb12u1", "{out}");
    assert!(
        findings
            .iter()
            .any(|f| f["kind"] == "moved" && f["package"] == format!("{url} bookworm")),
        "{out}"
    );

    // A re-freeze keeps the locked version while the archive has it;
    // `--update hello` moves it.
    let (code, out, err) = cli(&["freeze"]);
    assert_eq!(code, 0, "freeze again:\n{out}\n{err}");
    let lock = std::fs::read_to_string(ex.join("lockfiles/tool.lock")).unwrap();
    assert!(lock.contains("version = \"2.10-3\""), "{lock}");
    assert!(!lock.contains("2.10-3+deb12u1"), "{lock}");
    let (code, out, err) = cli(&["freeze", "--update", "hello"]);
    assert_eq!(code, 0, "freeze --update:\n{out}\n{err}");
    let lock = std::fs::read_to_string(ex.join("lockfiles/tool.lock")).unwrap();
    assert!(lock.contains("version = \"2.10-3+deb12u1\""), "{lock}");
    assert!(lock.contains("suite = \"bookworm-security\""), "{lock}");

    // The security suite drops the rebuilt hello again: the locked version
    // left the archive, and drift says so (an archive of its own keeps no
    // snapshot imagelock knows of, and drift says that too).
    std::fs::remove_file(repo.join("pool/security/hello_2.10-3+deb12u1_amd64.deb")).unwrap();
    publish(&repo, &home, "bookworm-security", "security", &date(0));
    let (code, out, err) = cli(&["drift", "--format", "json", "--fail-on", "gone"]);
    assert_eq!(code, 1, "drift:\n{out}\n{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let findings = report["images"][0]["findings"].as_array().unwrap();
    let gone = findings
        .iter()
        .find(|f| f["kind"] == "gone")
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(gone["package"], "hello", "{out}");
    assert_eq!(gone["ecosystem"], "apt", "{out}");
    assert_eq!(gone["locked"], "2.10-3+deb12u1", "{out}");
    assert_eq!(gone["at"], "Dockerfile:2", "{out}");
    let detail = gone["detail"].as_str().unwrap();
    assert!(
        detail.contains("no longer in the archives") && detail.contains("keeps no snapshot"),
        "{out}"
    );
}

/// Sources and keys an image's own commands add before its apt step: a
/// `deb` line echoed (or `tee`d) into `sources.list.d`, a key `COPY`'d
/// from the build context or fetched with `curl … | gpg --dearmor -o`,
/// are what the step resolves against; a line imagelock cannot expand
/// leaves the step not locked, naming the line and why.
#[test]
fn sources_and_keys_added_by_earlier_commands_are_used_or_the_step_is_named() {
    let Some(archive) = Archive::new("sources") else {
        return;
    };
    let path = |rel: &str| archive.path(rel);
    let repo = path("repo");
    let home = path("gnupg");
    let key = archive.key.clone();
    let armored = ok(gpg(&home).args(["--armor", "--export", "drift@test.invalid"]));
    std::fs::write(repo.join("drift.asc"), &armored).unwrap();
    publish(&repo, &home, "bookworm", "main", &date(1));
    let server = StaticServer::start(&repo);
    let url = server.url();

    // The base has dpkg's status and no apt source or key at all.
    let packages =
        std::fs::read_to_string(repo.join("dists/bookworm/main/binary-amd64/Packages")).unwrap();
    let mut status = String::new();
    for s in packages.split("\n\n").filter(|s| {
        ["libc6", "libgcc-s1", "gcc-12-base"]
            .iter()
            .any(|n| s.starts_with(&format!("Package: {n}\n")))
    }) {
        status.push_str(&format!(
            "{}\nStatus: install ok installed\n\n",
            s.trim_end()
        ));
    }
    base_image(
        &path("images"),
        &[("var/lib/dpkg/status", status.into_bytes())],
        &[],
    );
    let ex = path("image");
    let images = [
        (
            "copied",
            format!(
                "FROM debian:bookworm\n\
                 COPY drift.gpg /usr/share/keyrings/\n\
                 RUN echo \"deb [signed-by=/usr/share/keyrings/drift.gpg] {url} bookworm main\" > /etc/apt/sources.list.d/local.list \\\n \
                 && apt-get update && apt-get install -y hello\n"
            ),
        ),
        (
            "fetched",
            format!(
                "FROM debian:bookworm\n\
                 RUN mkdir -p /etc/apt/keyrings \\\n \
                 && curl -fsSL {url}/drift.asc | gpg --dearmor -o /etc/apt/keyrings/local.gpg\n\
                 RUN echo 'deb [signed-by=/etc/apt/keyrings/local.gpg] {url} bookworm main' | tee /etc/apt/sources.list.d/local.list\n\
                 RUN apt-get update && apt-get install -y hello\n"
            ),
        ),
        (
            "unreadable",
            format!(
                "FROM debian:bookworm\n\
                 COPY drift.gpg /usr/share/keyrings/\n\
                 RUN echo \"deb [signed-by=/usr/share/keyrings/drift.gpg] {url} $(lsb_release -cs) main\" > /etc/apt/sources.list.d/local.list\n\
                 RUN apt-get update && apt-get install -y hello\n"
            ),
        ),
        (
            "no-key",
            format!(
                "FROM debian:bookworm\n\
                 RUN echo \"deb [signed-by=/usr/share/keyrings/drift.gpg] {url} bookworm main\" > /etc/apt/sources.list.d/local.list\n\
                 RUN apt-get update && apt-get install -y hello\n"
            ),
        ),
    ];
    let mut config = format!(
        "lock-dir = \"lockfiles\"\n\n[registries.\"docker.io\"]\nlocation = \"oci:{}\"\n",
        path("images").display()
    );
    for (name, dockerfile) in &images {
        let dir = ex.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
        std::fs::write(dir.join("drift.gpg"), &key).unwrap();
        config.push_str(&format!(
            "\n[images.{name}]\nfile = \"{name}/Dockerfile\"\n"
        ));
    }
    std::fs::write(ex.join("imagelock.toml"), config).unwrap();
    let cli = |args: &[&str]| {
        run(imagelock()
            .current_dir(&ex)
            .env("XDG_CACHE_HOME", path("cache"))
            .args(args))
    };
    for name in ["copied", "fetched"] {
        let (code, out, err) = cli(&["freeze", name]);
        assert_eq!(code, 0, "freeze {name}:\n{out}\n{err}");
        // (The key itself is data from the network, which coverage names.)
        assert!(!err.contains("hello` is not locked"), "{name}: {err}");
        let lock = std::fs::read_to_string(ex.join(format!("lockfiles/{name}.lock"))).unwrap();
        assert!(lock.contains("name = \"hello\""), "{name}: {lock}");
        assert!(lock.contains(&format!("uri = \"{url}\"")), "{name}: {lock}");
    }
    // The line's suite is `$(lsb_release -cs)`: not known here, so the apt
    // step is not locked, and the line that made it so is named.
    let (code, out, err) = cli(&["freeze", "unreadable"]);
    assert_eq!(code, 0, "freeze unreadable:\n{out}\n{err}");
    assert!(
        err.contains("unreadable/Dockerfile:3 changes apt's files before it")
            && err.contains("$(lsb_release -cs)")
            && err.contains("not locked"),
        "{err}"
    );
    let lock = imagelock::lock::LockedImage::read(&ex.join("lockfiles/unreadable.lock")).unwrap();
    let step = lock
        .steps
        .iter()
        .find(|s| s.line == 4)
        .expect("the apt step");
    assert!(!step.locked, "{step:?}");
    assert!(
        step.reason
            .as_deref()
            .unwrap_or("")
            .contains("Dockerfile:3"),
        "{step:?}"
    );
    // A source whose key nothing put in place: apt refuses its InRelease,
    // and so does freeze.
    let (code, out, err) = cli(&["freeze", "no-key"]);
    assert_ne!(code, 0, "freeze no-key:\n{out}\n{err}");
    assert!(err.contains("drift.gpg") || err.contains("key"), "{err}");
}

/// `imagelock update hello` on a definition `rewrite` pinned with
/// `[rewrite] apt = "pins+snapshot"`: the pin resolves as the request it
/// was made from, so hello moves to the security suite's rebuild; the
/// lock's sources record the suites' new `Date` and snapshot; and the
/// snapshot list in the definition moves to the new timestamps with the
/// packages (it is not left naming the old state). The archive is named
/// `deb.debian.org` and served here through `[apt] mirrors`, its snapshots
/// (`snapshot.debian.org`) too: the old state as it was, the new one live.
#[test]
fn update_moves_apt_pins_and_the_snapshot_list_with_them() {
    let Some(archive) = Archive::new("update") else {
        return;
    };
    let path = |rel: &str| archive.path(rel);
    let repo = path("repo");
    let home = path("gnupg");
    let hello = archive.hello.clone();
    let key = archive.key.clone();
    // One Date for both suites, and the snapshot timestamp it gives.
    let stamp = |days_ago: i64| {
        let t =
            jiff::Timestamp::from_second(jiff::Timestamp::now().as_second() - 24 * 3600 * days_ago)
                .unwrap();
        (
            t.strftime("%a, %d %b %Y %H:%M:%S UTC").to_string(),
            t.strftime("%Y%m%dT%H%M%SZ").to_string(),
        )
    };
    let (date1, ts1) = stamp(3);
    publish(&repo, &home, "bookworm", "main", &date1);
    publish(&repo, &home, "bookworm-security", "security", &date1);
    let server = StaticServer::start(&repo);
    let url = server.url();

    let packages =
        std::fs::read_to_string(repo.join("dists/bookworm/main/binary-amd64/Packages")).unwrap();
    let mut status = String::new();
    for s in packages.split("\n\n").filter(|s| {
        ["libc6", "libgcc-s1", "gcc-12-base"]
            .iter()
            .any(|n| s.starts_with(&format!("Package: {n}\n")))
    }) {
        status.push_str(&format!(
            "{}\nStatus: install ok installed\n\n",
            s.trim_end()
        ));
    }
    base_image(
        &path("images"),
        &[
            ("var/lib/dpkg/status", status.into_bytes()),
            (
                "etc/apt/sources.list.d/debian.sources",
                b"Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n".to_vec(),
            ),
            ("usr/share/keyrings/debian-archive-keyring.gpg", key),
        ],
        &[],
    );
    let ex = path("image");
    std::fs::create_dir_all(&ex).unwrap();
    std::fs::write(
        ex.join("Dockerfile"),
        "FROM debian:bookworm\nRUN apt-get update && apt-get install -y hello\n",
    )
    .unwrap();
    std::fs::write(
        ex.join("imagelock.toml"),
        format!(
            "lock-dir = \"lockfiles\"\n[images.tool]\nfile = \"Dockerfile\"\n\n\
             [registries.\"docker.io\"]\nlocation = \"oci:{}\"\n\n\
             [apt.mirrors]\n\"http://deb.debian.org/debian\" = \"{url}\"\n\
             \"http://snapshot.debian.org/archive/debian\" = \"{url}/snapshot\"\n\n\
             [rewrite]\napt = \"pins+snapshot\"\n",
            path("images").display()
        ),
    )
    .unwrap();
    let cli = |args: &[&str]| {
        run(imagelock()
            .current_dir(&ex)
            .env("XDG_CACHE_HOME", path("cache"))
            .args(args))
    };
    let (code, out, err) = cli(&["freeze"]);
    assert_eq!(code, 0, "freeze:\n{out}\n{err}");
    let lock = std::fs::read_to_string(ex.join("lockfiles/tool.lock")).unwrap();
    assert!(lock.contains("version = \"2.10-3\""), "{lock}");
    assert!(lock.contains(&format!("snapshot = \"{ts1}\"")), "{lock}");
    let (code, out, err) = cli(&["rewrite"]);
    assert_eq!(code, 0, "rewrite:\n{out}\n{err}");
    let dockerfile = std::fs::read_to_string(ex.join("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains(&format!(
            "snapshot.debian.org/archive/debian/{ts1}/ bookworm main"
        )) && dockerfile.contains("apt-get install -y hello=2.10-3\n"),
        "{dockerfile}"
    );
    // The snapshot service keeps the state the lock read.
    let snap1 = repo.join("snapshot").join(&ts1);
    std::fs::create_dir_all(&snap1).unwrap();
    ok(Command::new("cp")
        .arg("-a")
        .arg(repo.join("dists"))
        .arg(snap1.join("dists")));
    std::os::unix::fs::symlink(repo.join("pool"), snap1.join("pool")).unwrap();

    // A rebuilt hello in the security suite, and new releases of both.
    let unpacked = path("hello-src");
    ok(Command::new("dpkg-deb")
        .arg("-R")
        .arg(&hello)
        .arg(&unpacked));
    let control = unpacked.join("DEBIAN/control");
    let text = std::fs::read_to_string(&control)
        .unwrap()
        .replace("Version: 2.10-3\n", "Version: 2.10-3+deb12u1\n");
    std::fs::write(&control, text).unwrap();
    ok(Command::new("dpkg-deb")
        .args(["--root-owner-group", "-b"])
        .arg(&unpacked)
        .arg(repo.join("pool/security/hello_2.10-3+deb12u1_amd64.deb")));
    let (date2, ts2) = stamp(1);
    publish(&repo, &home, "bookworm-security", "security", &date2);
    publish(&repo, &home, "bookworm", "main", &date2);
    // The snapshot at the new Date is the archive as it is now.
    std::os::unix::fs::symlink(&repo, repo.join("snapshot").join(&ts2)).unwrap();

    // A plain freeze keeps the pinned version.
    let (code, out, err) = cli(&["freeze"]);
    assert_eq!(code, 0, "freeze again:\n{out}\n{err}");
    let lock = std::fs::read_to_string(ex.join("lockfiles/tool.lock")).unwrap();
    assert!(!lock.contains("2.10-3+deb12u1"), "{lock}");

    let (code, out, err) = cli(&["update", "hello"]);
    assert_eq!(code, 0, "update:\n{out}\n{err}");
    assert!(err.contains("hello 2.10-3 → 2.10-3+deb12u1"), "{err}");
    let lock = std::fs::read_to_string(ex.join("lockfiles/tool.lock")).unwrap();
    assert!(lock.contains("version = \"2.10-3+deb12u1\""), "{lock}");
    // The live archive's sources are recorded at their new Date.
    let parsed = imagelock::lock::LockedImage::read(&ex.join("lockfiles/tool.lock")).unwrap();
    let step = parsed
        .steps
        .iter()
        .find(|s| !s.apt.is_empty())
        .expect("the apt step");
    let live: Vec<_> = step
        .apt_sources
        .iter()
        .filter(|s| s.uri.as_str() == "http://deb.debian.org/debian")
        .collect();
    assert_eq!(live.len(), 2, "{lock}");
    for s in &live {
        assert_eq!(s.snapshot.as_str(), ts2, "{lock}");
        assert_eq!(s.date.as_str(), date2, "{lock}");
    }
    // The definition's snapshot list moved with them.
    let dockerfile = std::fs::read_to_string(ex.join("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains(&format!(
            "snapshot.debian.org/archive/debian/{ts2}/ bookworm-security main"
        )) && !dockerfile.contains(&ts1)
            && dockerfile.contains("hello=2.10-3+deb12u1"),
        "{dockerfile}"
    );
    // And what update wrote is what freeze and rewrite make.
    let (code, out, err) = cli(&["freeze", "--check"]);
    assert_eq!(code, 0, "freeze --check:\n{out}\n{err}");
    let (code, out, err) = cli(&["rewrite", "--check"]);
    assert_eq!(code, 0, "rewrite --check:\n{out}\n{err}");
}

//! dnf steps in `drift`, against repositories made here with the real
//! tools: packages built by `rpmbuild`, indexed by `createrepo_c`, errata
//! added by `modifyrepo_c`, served on 127.0.0.1, over the base root the
//! real `dnf --installroot` made (`tests/rpm/prepare.py`). After the lock,
//! one repository publishes a rebuilt `patched` with a security advisory
//! in its `updateinfo`, the other a newer `plain` and no errata at all:
//! drift calls the first `security` (naming the advisory and its
//! severity), the second `outdated`, both repositories `moved`; a locked
//! build that leaves its repository is `gone`; errata that fail their
//! checksum are said, never read as "no advisory".

use std::path::Path;
use std::process::Command;

use crate::common::http::StaticServer;
use crate::common::registry::LayoutBuilder;
use crate::common::{self, imagelock, repo_root, run};

const HOST: &str = "http://rpm.fixture.invalid/";

pub(crate) fn ok(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().expect("the tool runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Builds the noarch package `name-version-release` with rpmbuild into `out`.
pub(crate) fn build_rpm(tmp: &Path, out: &Path, name: &str, version: &str, release: &str) {
    let top = tmp.join(format!("top-{name}-{version}-{release}"));
    let spec = tmp.join(format!("{name}-{version}-{release}.spec"));
    std::fs::write(
        &spec,
        format!(
            "Name: {name}\nVersion: {version}\nRelease: {release}\nSummary: drift fixture\n\
             License: MIT\nAutoReqProv: no\nBuildArch: noarch\n%description\n{name}, made by imagelock's tests.\n\
             %install\nmkdir -p %{{buildroot}}/usr/share/{name}\n\
             echo {version}-{release} > %{{buildroot}}/usr/share/{name}/v\n%files\n/usr/share/{name}/v\n"
        ),
    )
    .unwrap();
    ok(Command::new("rpmbuild")
        .args(["-bb", "--quiet", "--define"])
        .arg(format!("_topdir {}", top.display()))
        .args([
            "--define",
            "_buildhost fixture.invalid",
            "--define",
            "use_source_date_epoch_as_buildtime 1",
        ])
        .arg(&spec)
        .env("SOURCE_DATE_EPOCH", "1700000000"));
    let file = format!("{name}-{version}-{release}.noarch.rpm");
    std::fs::copy(top.join("RPMS/noarch").join(&file), out.join(&file)).unwrap();
}

/// Indexes `dir` with createrepo_c at `revision`.
pub(crate) fn createrepo(dir: &Path, revision: &str) {
    let _ = std::fs::remove_dir_all(dir.join("repodata"));
    ok(Command::new("createrepo_c")
        .args(["--quiet", "--no-database", "--revision", revision])
        .arg(dir));
}

/// An advisory: id, type, severity, CVE, and the package it ships (name,
/// version, release; noarch).
type Advisory<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    (&'a str, &'a str, &'a str),
);

/// A one-advisory-per-entry `updateinfo.xml`.
fn updateinfo(entries: &[Advisory<'_>]) -> String {
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<updates>\n");
    for (id, kind, severity, cve, (name, version, release)) in entries {
        xml.push_str(&format!(
            "  <update from=\"errata@fixture.invalid\" status=\"stable\" type=\"{kind}\" version=\"2.0\">\n\
             <id>{id}</id>\n<title>{name}-{version}-{release}</title>\n\
             <issued date=\"2026-12-01 00:00:00\"/>\n<severity>{severity}</severity>\n\
             <description>fixture</description>\n<references>\n\
             <reference href=\"https://www.cve.org/CVERecord?id={cve}\" id=\"{cve}\" type=\"cve\" title=\"{cve}\"/>\n\
             </references>\n<pkglist>\n<collection short=\"F9\">\n<name>Fixture 9</name>\n\
             <package name=\"{name}\" version=\"{version}\" release=\"{release}\" epoch=\"0\" arch=\"noarch\">\n\
             <filename>{name}-{version}-{release}.noarch.rpm</filename>\n</package>\n\
             </collection>\n</pkglist>\n</update>\n"
        ));
    }
    xml.push_str("</updates>\n");
    xml
}

/// An OCI layout `DIR/library/fixture:9` of the dnf-installed base root
/// (`base.tar`) and a layer that replaces its `.repo` file with `repo`.
pub(crate) fn base_image(dir: &Path, base_tar: &Path, repo: &str) {
    let base = std::fs::read(base_tar).unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(repo.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_cksum();
    tar.append_data(&mut h, "etc/yum.repos.d/fixture.repo", repo.as_bytes())
        .unwrap();
    let repos = tar.into_inner().unwrap();
    LayoutBuilder::new(&dir.join("library/fixture")).tag_layers("9", &[&base, &repos]);
}

fn findings(out: &str) -> Vec<serde_json::Value> {
    let report: serde_json::Value =
        serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}:\n{out}"));
    report["images"][0]["findings"].as_array().unwrap().clone()
}

fn find<'a>(
    findings: &'a [serde_json::Value],
    kind: &str,
    package: &str,
    out: &str,
) -> &'a serde_json::Value {
    findings
        .iter()
        .find(|f| f["kind"] == kind && f["package"] == package)
        .unwrap_or_else(|| panic!("no {kind} finding for {package}:\n{out}"))
}

#[test]
fn drift_reports_rpm_security_errata_newer_builds_moved_repositories_and_gone_builds() {
    let fixture = repo_root().join("target/rpm-fixture");
    if !fixture.join("base.tar").is_file() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the rpm drift test needs `python3 tests/rpm/prepare.py` first"
        );
        eprintln!("skipping: run `python3 tests/rpm/prepare.py` to prepare the rpm base");
        return;
    }
    for (tool, package) in [
        ("rpmbuild", "rpm"),
        ("createrepo_c", "createrepo-c"),
        ("modifyrepo_c", "createrepo-c"),
    ] {
        if !common::require_tool(tool, &format!("apt-get install -y {package}")) {
            return;
        }
    }
    let tmp = common::tempdir();
    let path = |rel: &str| tmp.path().join(rel);
    let rpms = path("rpms");
    std::fs::create_dir_all(&rpms).unwrap();
    for (name, version, release) in [
        ("patched", "1.0", "1"),
        ("patched", "1.0", "2"),
        ("plain", "1.0", "1"),
        ("plain", "1.1", "1"),
    ] {
        build_rpm(tmp.path(), &rpms, name, version, release);
    }
    let base = path("srv/drift/base");
    let updates = path("srv/drift/updates");
    std::fs::create_dir_all(&base).unwrap();
    std::fs::create_dir_all(&updates).unwrap();
    let put = |dir: &Path, file: &str| std::fs::copy(rpms.join(file), dir.join(file)).unwrap();
    put(&base, "patched-1.0-1.noarch.rpm");
    put(&base, "plain-1.0-1.noarch.rpm");
    createrepo(&base, "1");
    createrepo(&updates, "1");
    let server = StaticServer::start(path("srv"));

    base_image(
        &path("images"),
        &fixture.join("base.tar"),
        &format!(
            "[base]\nname=drift base\nbaseurl={HOST}drift/base/\ngpgcheck=0\n\n\
             [updates]\nname=drift updates\nbaseurl={HOST}drift/updates/\ngpgcheck=0\n"
        ),
    );
    let ex = path("image");
    std::fs::create_dir_all(&ex).unwrap();
    std::fs::write(
        ex.join("Dockerfile"),
        "FROM fixture:9\nRUN dnf install -y patched plain && dnf clean all\n",
    )
    .unwrap();
    std::fs::write(
        ex.join("imagelock.toml"),
        format!(
            "lock-dir = \"lockfiles\"\nplatforms = [\"linux/amd64\"]\n\n\
             [images.tool]\nfile = \"Dockerfile\"\n\n\
             [registries.\"docker.io\"]\nlocation = \"oci:{}\"\n\n\
             [apt.mirrors]\n\"{HOST}\" = \"{}/\"\n",
            path("images").display(),
            server.url()
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
    let lock = imagelock::lock::LockedImage::read(&ex.join("lockfiles/tool.lock")).unwrap();
    let step = lock
        .steps
        .iter()
        .find(|s| s.manager.as_str() == "dnf")
        .unwrap();
    assert!(step.locked, "{err}");
    let nevras: Vec<String> = step.rpm.iter().map(|p| p.nevra()).collect();
    assert_eq!(
        nevras,
        ["patched-1.0-1.noarch", "plain-1.0-1.noarch"],
        "{err}"
    );

    let start = std::time::Instant::now();
    let (code, out, err) = cli(&["drift"]);
    let quiet_took = start.elapsed();
    assert_eq!(code, 0, "no drift yet:\n{out}\n{err}");
    assert!(out.contains("no drift"), "{out}");

    // `updates` publishes a rebuilt `patched` with a security advisory (and
    // a bugfix advisory naming `plain`, which is not a security one);
    // `base` publishes a newer `plain` and has no errata at all.
    put(&updates, "patched-1.0-2.noarch.rpm");
    createrepo(&updates, "2");
    std::fs::write(
        path("updateinfo.xml"),
        updateinfo(&[
            (
                "FIXTURE-2026-0001",
                "security",
                "Important",
                "CVE-2026-12345",
                ("patched", "1.0", "2"),
            ),
            (
                "FIXTURE-2026-0002",
                "bugfix",
                "None",
                "CVE-2026-0",
                ("plain", "1.1", "1"),
            ),
        ]),
    )
    .unwrap();
    ok(Command::new("modifyrepo_c")
        .args(["--compress-type", "xz"])
        .arg(path("updateinfo.xml"))
        .arg(updates.join("repodata")));
    put(&base, "plain-1.1-1.noarch.rpm");
    createrepo(&base, "2");

    let start = std::time::Instant::now();
    let (code, out, err) = cli(&["drift", "--format", "json", "--fail-on", "security"]);
    let drift_took = start.elapsed();
    assert_eq!(code, 1, "drift:\n{out}\n{err}");
    eprintln!(
        "drift, no errata published: {quiet_took:?}; drift, errata published (read and matched): {drift_took:?}"
    );
    let all = findings(&out);
    let security = find(&all, "security", "patched", &out);
    assert_eq!(security["ecosystem"], "rpm", "{out}");
    assert_eq!(security["locked"], "1.0-1.noarch", "{out}");
    assert_eq!(security["latest"], "1.0-2.noarch", "{out}");
    assert_eq!(security["at"], "Dockerfile:2", "{out}");
    let detail = security["detail"].as_str().unwrap();
    assert!(
        detail.contains("FIXTURE-2026-0001")
            && detail.contains("severity Important")
            && detail.contains("CVE-2026-12345")
            && detail.contains("`updates`"),
        "{out}"
    );
    // No errata in its repository, a bugfix advisory elsewhere: outdated.
    let plain = find(&all, "outdated", "plain", &out);
    assert_eq!(plain["locked"], "1.0-1.noarch", "{out}");
    assert_eq!(plain["latest"], "1.1-1.noarch", "{out}");
    assert_eq!(plain["at"], "Dockerfile:2", "{out}");
    assert!(
        !all.iter()
            .any(|f| f["kind"] == "security" && f["package"] == "plain"),
        "{out}"
    );
    for repo in ["base", "updates"] {
        let moved = find(
            &all,
            "moved",
            &format!("{HOST}drift/{repo}/ ({repo})"),
            &out,
        );
        assert_eq!(moved["locked"], "revision 1", "{out}");
        assert_eq!(moved["latest"], "revision 2", "{out}");
    }
    // The same, for people.
    let (code, out, err) = cli(&["drift", "--fail-on", "security"]);
    assert_eq!(code, 1, "drift:\n{out}\n{err}");
    assert!(
        out.lines().any(|l| l.contains("security")
            && l.contains("patched")
            && l.contains("1.0-1.noarch → 1.0-2.noarch")
            && l.contains("FIXTURE-2026-0001")),
        "{out}"
    );

    // Errata that do not match their checksum in repomd.xml are not read as
    // "no advisory": the newer build is outdated, and both say why.
    let repomd = std::fs::read_to_string(updates.join("repodata/repomd.xml")).unwrap();
    let href = repomd
        .split("<location href=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .find(|h| h.contains("updateinfo"))
        .unwrap()
        .to_string();
    assert!(href.ends_with(".xz"), "{href}");
    let good = std::fs::read(updates.join(&href)).unwrap();
    let mut bad = good.clone();
    *bad.last_mut().unwrap() ^= 1;
    std::fs::write(updates.join(&href), &bad).unwrap();
    let (code, out, err) = cli(&["drift", "--format", "json", "--fail-on", "security"]);
    assert_eq!(code, 0, "no security finding it could see:\n{out}\n{err}");
    let all = findings(&out);
    let patched = find(&all, "outdated", "patched", &out);
    assert!(
        patched["detail"]
            .as_str()
            .unwrap()
            .contains("may be a security update"),
        "{out}"
    );
    assert!(
        err.contains(
            "Dockerfile:2: the errata (`updateinfo`) of repository `updates` cannot be read"
        ) && err.contains("repomd.xml says"),
        "{err}"
    );
    std::fs::write(updates.join(&href), &good).unwrap();

    // `base` drops the locked `plain`: gone, with where it came from.
    std::fs::remove_file(base.join("plain-1.0-1.noarch.rpm")).unwrap();
    createrepo(&base, "3");
    let (code, out, err) = cli(&["drift", "--format", "json", "--fail-on", "gone"]);
    assert_eq!(code, 1, "drift:\n{out}\n{err}");
    let all = findings(&out);
    let gone = find(&all, "gone", "plain", &out);
    assert_eq!(gone["locked"], "1.0-1.noarch", "{out}");
    assert_eq!(gone["at"], "Dockerfile:2", "{out}");
    assert!(
        gone["detail"]
            .as_str()
            .unwrap()
            .contains("no longer in the repositories the step reads"),
        "{out}"
    );
    assert!(
        !all.iter()
            .any(|f| f["kind"] == "gone" && f["package"] == "patched"),
        "{out}"
    );

    // Once rewritten, the step pins `patched-1.0-1.noarch`; when that build
    // leaves too, dnf could not run the step: unresolvable, naming it.
    std::fs::copy(
        rpms.join("plain-1.0-1.noarch.rpm"),
        base.join("plain-1.0-1.noarch.rpm"),
    )
    .unwrap();
    createrepo(&base, "4");
    let (code, out, err) = cli(&["rewrite"]);
    assert_eq!(code, 0, "rewrite:\n{out}\n{err}");
    let dockerfile = std::fs::read_to_string(ex.join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("patched-1.0-1.noarch"), "{dockerfile}");
    std::fs::remove_file(base.join("patched-1.0-1.noarch.rpm")).unwrap();
    createrepo(&base, "5");
    let (code, out, err) = cli(&["drift", "--format", "json", "--fail-on", "unresolvable"]);
    assert_eq!(code, 1, "drift:\n{out}\n{err}");
    let all = findings(&out);
    let unresolvable = all
        .iter()
        .find(|f| f["kind"] == "unresolvable")
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        unresolvable["detail"]
            .as_str()
            .unwrap()
            .contains("no package matches `patched-1.0-1.noarch`"),
        "{out}"
    );
}

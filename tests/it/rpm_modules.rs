//! dnf's modular filtering, against a modular repository made here with
//! the real tools (`rpmbuild`, `createrepo_c`, `modifyrepo_c` adding
//! `modules.yaml`) and checked against the real `dnf --installroot` on a
//! copy of the base root `tests/rpm/prepare.py` made: what each image's
//! lock installs is what dnf installs, step by step, into that root.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::common::http::StaticServer;
use crate::common::{self, imagelock, repo_root, run};
use crate::rpm_drift::{base_image, build_rpm, createrepo, ok};

const HOST: &str = "http://rpm.fixture.invalid/";

/// Two streams of `nodejs` (18 the default), two of `pg` (no default), an
/// ursine (non-modular) `nodejs` that modular filtering hides, and a
/// non-modular `ursine`.
const MODULES: &str = r#"---
document: modulemd
version: 2
data:
  name: nodejs
  stream: "18"
  version: 9000020260101
  context: abcdef12
  arch: x86_64
  summary: Node 18
  description: Node 18
  license: {module: [MIT]}
  dependencies:
  - requires: {platform: [el9]}
  profiles:
    common: {rpms: [nodejs]}
  artifacts:
    rpms: [nodejs-0:18.1-1.module_el9.noarch]
...
---
document: modulemd
version: 2
data:
  name: nodejs
  stream: "20"
  version: 9000020260101
  context: abcdef12
  arch: x86_64
  summary: Node 20
  description: Node 20
  license: {module: [MIT]}
  dependencies:
  - requires: {platform: [el9]}
  profiles:
    common: {rpms: [nodejs]}
  artifacts:
    rpms: [nodejs-0:20.1-1.module_el9.noarch]
...
---
document: modulemd
version: 2
data:
  name: pg
  stream: "13"
  version: 1
  context: abcdef12
  arch: x86_64
  summary: pg 13
  description: pg 13
  license: {module: [MIT]}
  artifacts:
    rpms: [pg-0:13.0-1.module_el9.noarch]
...
---
document: modulemd
version: 2
data:
  name: pg
  stream: "15"
  version: 1
  context: abcdef12
  arch: x86_64
  summary: pg 15
  description: pg 15
  license: {module: [MIT]}
  artifacts:
    rpms: [pg-0:15.0-1.module_el9.noarch]
...
---
document: modulemd-defaults
version: 1
data:
  module: nodejs
  stream: "18"
  profiles: {"18": [common]}
...
"#;

/// The NEVRAs the real dnf installs into a copy of the base root when it
/// runs `commands` in turn, or dnf's error.
fn real_dnf(
    fixture: &Path,
    repo: &Path,
    tmp: &Path,
    commands: &[&str],
) -> Result<BTreeSet<String>, String> {
    let root = tmp.join("root");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(tmp).unwrap();
    ok(Command::new("cp")
        .arg("-a")
        .arg(fixture.join("root"))
        .arg(&root));
    let home = tmp.join("home");
    let reposd = tmp.join("reposd");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&reposd).unwrap();
    std::fs::write(home.join(".rpmmacros"), "%_dbpath /var/lib/rpm\n").unwrap();
    std::fs::write(
        reposd.join("mod.repo"),
        format!(
            "[mod]\nname=mod\nbaseurl=file://{}\ngpgcheck=0\n",
            repo.display()
        ),
    )
    .unwrap();
    let qa = || -> BTreeSet<String> {
        let out = ok(Command::new("rpm")
            .arg("-qa")
            .arg("--root")
            .arg(&root)
            .args(["--qf", "%{NEVRA}\n"])
            .env("HOME", &home));
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| l.replace(".(none)", ""))
            .collect()
    };
    let before = qa();
    for c in commands {
        let out = Command::new("dnf")
            .args(["-y", "-q", "--installroot"])
            .arg(&root)
            .args(["--releasever", "9", "--forcearch", "x86_64"])
            .arg(format!("--setopt=reposdir={}", reposd.display()))
            .arg(format!("--setopt=cachedir={}", tmp.join("cache").display()))
            .args(c.split_whitespace())
            .env("HOME", &home)
            .output()
            .unwrap();
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
    }
    Ok(qa().difference(&before).cloned().collect())
}

fn locked_nevras(ex: &Path, image: &str) -> BTreeSet<String> {
    let lock =
        imagelock::lock::LockedImage::read(&ex.join(format!("lockfiles/{image}.lock"))).unwrap();
    lock.steps
        .iter()
        .flat_map(|s| s.rpm.iter())
        .filter(|p| p.installed_after())
        .map(|p| p.nevra())
        .collect()
}

#[test]
fn modular_filtering_agrees_with_dnf_on_default_and_enabled_streams() {
    let fixture = repo_root().join("target/rpm-fixture");
    if !fixture.join("base.tar").is_file() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the rpm modules test needs `python3 tests/rpm/prepare.py` first"
        );
        eprintln!("skipping: run `python3 tests/rpm/prepare.py` to prepare the rpm base");
        return;
    }
    for (tool, package) in [
        ("rpmbuild", "rpm"),
        ("createrepo_c", "createrepo-c"),
        ("modifyrepo_c", "createrepo-c"),
        ("dnf", "dnf"),
    ] {
        if !common::require_tool(tool, &format!("apt-get install -y {package}")) {
            return;
        }
    }
    let tmp = common::tempdir();
    let path = |rel: &str| tmp.path().join(rel);
    let repo = path("srv/mod");
    std::fs::create_dir_all(&repo).unwrap();
    for (name, version, release) in [
        ("nodejs", "18.1", "1.module_el9"),
        ("nodejs", "20.1", "1.module_el9"),
        ("nodejs", "16.0", "1"),
        ("pg", "13.0", "1.module_el9"),
        ("pg", "15.0", "1.module_el9"),
        ("ursine", "1.0", "1"),
    ] {
        build_rpm(tmp.path(), &repo, name, version, release);
    }
    createrepo(&repo, "1");
    std::fs::write(path("modules.yaml"), MODULES).unwrap();
    ok(Command::new("modifyrepo_c")
        .arg("--mdtype=modules")
        .arg(path("modules.yaml"))
        .arg(repo.join("repodata")));
    let server = StaticServer::start(path("srv"));
    base_image(
        &path("images"),
        &fixture.join("base.tar"),
        &format!("[mod]\nname=modular\nbaseurl={HOST}mod/\ngpgcheck=0\n"),
    );

    // image → (Dockerfile RUN lines, the same as dnf commands).
    let cases: [(&str, &[&str], &[&str]); 4] = [
        (
            "default-stream",
            &["dnf install -y nodejs ursine"],
            &["install nodejs ursine"],
        ),
        (
            "enabled-same-run",
            &["dnf module enable -y nodejs:20 && dnf install -y nodejs"],
            &["module enable nodejs:20", "install nodejs"],
        ),
        (
            "enabled-earlier",
            &["dnf module enable -y pg:15", "dnf install -y pg"],
            &["module enable pg:15", "install pg"],
        ),
        (
            "default-then-other",
            &[
                "dnf install -y nodejs",
                "dnf module enable -y nodejs:18 && dnf install -y ursine",
            ],
            &[
                "install nodejs",
                "module enable nodejs:18",
                "install ursine",
            ],
        ),
    ];
    let ex = path("project");
    let mut config = format!(
        "lock-dir = \"lockfiles\"\nplatforms = [\"linux/amd64\"]\n\n\
         [registries.\"docker.io\"]\nlocation = \"oci:{}\"\n\n\
         [apt.mirrors]\n\"{HOST}\" = \"{}/\"\n",
        path("images").display(),
        server.url()
    );
    for (name, runs, _) in &cases {
        let dir = ex.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let mut text = "FROM fixture:9\n".to_string();
        for r in *runs {
            text.push_str(&format!("RUN {r}\n"));
        }
        std::fs::write(dir.join("Dockerfile"), text).unwrap();
        config.push_str(&format!(
            "\n[images.{name}]\nfile = \"{name}/Dockerfile\"\n"
        ));
    }
    std::fs::write(ex.join("imagelock.toml"), &config).unwrap();
    let cli = |dir: &Path, args: &[&str]| {
        run(imagelock()
            .current_dir(dir)
            .env("XDG_CACHE_HOME", path("cache"))
            .args(args))
    };
    let (code, out, err) = cli(&ex, &["freeze"]);
    assert_eq!(code, 0, "freeze:\n{out}\n{err}");
    assert!(!err.contains("is not locked"), "{err}");
    for (name, _, commands) in &cases {
        let dnf = real_dnf(&fixture, &repo, &path("dnf"), commands)
            .unwrap_or_else(|e| panic!("{name}: dnf failed: {e}"));
        assert_eq!(
            locked_nevras(&ex, name),
            dnf,
            "{name}: imagelock and dnf differ"
        );
    }
    assert_eq!(
        locked_nevras(&ex, "default-stream"),
        ["nodejs-18.1-1.module_el9.noarch", "ursine-1.0-1.noarch"]
            .map(String::from)
            .into()
    );

    // What dnf refuses, imagelock does not lock: a package of a module with
    // no default stream and none enabled, a stream switch without reset.
    let refused = path("refused");
    std::fs::create_dir_all(&refused).unwrap();
    std::fs::write(
        refused.join("Dockerfile"),
        "FROM fixture:9\nRUN dnf module enable -y nodejs:20\nRUN dnf module enable -y nodejs:18\n",
    )
    .unwrap();
    std::fs::write(
        refused.join("imagelock.toml"),
        config.split("\n[images.").next().unwrap().to_string()
            + "\n[images.refused]\nfile = \"Dockerfile\"\n",
    )
    .unwrap();
    let (code, out, err) = cli(&refused, &["freeze"]);
    assert_eq!(code, 0, "freeze:\n{out}\n{err}");
    assert!(
        err.contains("Dockerfile:3: `dnf module enable -y nodejs:18` is not locked: module `nodejs` is enabled at stream `20`"),
        "{err}"
    );
    assert!(
        real_dnf(
            &fixture,
            &repo,
            &path("dnf"),
            &["module enable nodejs:20", "module enable nodejs:18"]
        )
        .is_err(),
        "dnf refuses the switch too"
    );
    std::fs::write(
        refused.join("Dockerfile"),
        "FROM fixture:9\nRUN dnf install -y pg\n",
    )
    .unwrap();
    let (code, out, err) = cli(&refused, &["freeze"]);
    assert_ne!(code, 0, "pg is filtered out:\n{out}\n{err}");
    assert!(
        err.contains("Dockerfile:2: no package matches `pg`: dnf's modular filtering hides")
            && err.contains("`pg:13`, `pg:15`"),
        "{err}"
    );
    let dnf = real_dnf(&fixture, &repo, &path("dnf"), &["install pg"]).unwrap_err();
    assert!(dnf.contains("Unable to find a match: pg"), "{dnf}");
}

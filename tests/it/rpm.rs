//! RPM repositories checked as dnf checks them, and the rpm database read
//! from an image's layers, against a repository of packages built by the
//! real `rpmbuild`, indexed by `createrepo_c`, signed by `gpg` and served
//! on 127.0.0.1, and a base root installed from it by the real
//! `dnf --installroot`. `tests/rpm/prepare.py` (offline; `.ci/test` runs
//! it) makes them under `target/rpm-fixture/`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use imagelock::image::OsPackageSource;
use imagelock::image::rpmdb::{is_rpm_state_file, read_rpmdb};
use imagelock::resolve::apt::{AptMirrors, Keyring};
use imagelock::resolve::rpm::{
    FetchedRepo, RepoConfig, RpmRepoError, detect_releasever, fetch_repo, package_url,
    parse_repo_file,
};
use sha2::{Digest, Sha256};

use crate::common::buildah::Buildah;
use crate::common::http::StaticServer;
use crate::common::{copy_dir, repo_root, require_tool, tempdir};

const FIXTURE_HOST: &str = "http://rpm.fixture.invalid/";

pub(crate) fn prepared() -> Option<PathBuf> {
    let dir = repo_root().join("target/rpm-fixture");
    let ready = dir.join("VERSION").is_file() && dir.join("base.tar").is_file();
    if !ready {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the rpm tests need `python3 tests/rpm/prepare.py` first"
        );
        eprintln!("skipping: run `python3 tests/rpm/prepare.py` to prepare the rpm repository");
    }
    ready.then_some(dir)
}

/// The base root's state files, as the catalogue would collect them.
fn root_files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
                continue;
            }
            let abs = format!("/{}", p.strip_prefix(root).unwrap().display());
            if is_rpm_state_file(&abs) {
                out.insert(abs, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

pub(crate) fn expected_qa(dir: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(dir.join("root-qa.txt"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The repositories of the base's `.repo` files, variables substituted from
/// its rpm database.
fn base_repos(files: &BTreeMap<String, Vec<u8>>) -> Vec<RepoConfig> {
    let installed = read_rpmdb(files).unwrap().unwrap();
    let mut vars = BTreeMap::new();
    vars.insert(
        "releasever".to_string(),
        detect_releasever(&installed).unwrap(),
    );
    vars.insert("basearch".to_string(), "x86_64".to_string());
    let mut out = Vec::new();
    for (path, bytes) in files {
        if path.starts_with("/etc/yum.repos.d/") {
            out.extend(parse_repo_file(path, std::str::from_utf8(bytes).unwrap(), &vars).unwrap());
        }
    }
    out
}

fn keyring(files: &BTreeMap<String, Vec<u8>>, repo: &RepoConfig) -> Keyring {
    let mut ring = Keyring::default();
    for k in &repo.gpgkeys {
        let path = k.strip_prefix("file://").unwrap();
        ring.add(path, &files[path]).unwrap();
    }
    ring
}

fn fetch(
    server: &StaticServer,
    repo: &RepoConfig,
    ring: &Keyring,
) -> Result<FetchedRepo, RpmRepoError> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client =
        imagelock::resolve::http::HttpClient::new(imagelock::resolve::http::HttpOptions::default())
            .unwrap();
    let mirrors = AptMirrors::new([(FIXTURE_HOST.to_string(), format!("{}/", server.url()))]);
    rt.block_on(fetch_repo(&client, &mirrors, repo, ring))
}

#[test]
fn the_rpm_database_of_a_dnf_installroot_is_what_rpm_qa_says() {
    let Some(dir) = prepared() else { return };
    let files = root_files(&dir.join("root"));
    let installed = read_rpmdb(&files)
        .unwrap()
        .expect("the root has an rpm database");
    let ours: BTreeSet<String> = installed.iter().map(|p| p.nevra()).collect();
    assert_eq!(ours, expected_qa(&dir));
    let release = installed
        .iter()
        .find(|p| p.name == "fixture-release")
        .unwrap();
    assert!(
        release
            .files
            .contains(&"/etc/yum.repos.d/fixture.repo".to_string())
    );
    assert_eq!(detect_releasever(&installed).as_deref(), Some("9"));
}

#[test]
fn repository_metadata_is_checked_and_every_package_matches_its_checksum() {
    let Some(dir) = prepared() else { return };
    let files = root_files(&dir.join("root"));
    let repos = base_repos(&files);
    assert_eq!(repos.len(), 1);
    let repo = &repos[0];
    assert_eq!(repo.baseurls, [format!("{FIXTURE_HOST}repo/9/x86_64/")]);
    assert!(repo.repo_gpgcheck);
    let server = StaticServer::start(&dir);
    let fetched = fetch(&server, repo, &keyring(&files, repo)).unwrap();
    assert!(fetched.signed);
    let rpms: BTreeSet<String> = std::fs::read_dir(dir.join("repo/9/x86_64"))
        .unwrap()
        .filter_map(|e| {
            let n = e.unwrap().file_name().into_string().unwrap();
            n.ends_with(".rpm").then_some(n)
        })
        .collect();
    assert_eq!(fetched.packages.len(), rpms.len());
    for p in &fetched.packages {
        let url = package_url(&fetched, p);
        let rel = url.strip_prefix(FIXTURE_HOST).unwrap();
        let bytes = std::fs::read(dir.join(rel)).unwrap();
        assert_eq!(p.checksum.0, "sha256");
        assert_eq!(
            p.checksum.1,
            hex::encode(Sha256::digest(&bytes)),
            "{}",
            p.nevra()
        );
        assert_eq!(p.size, bytes.len() as u64);
    }
    let tool = fetched
        .packages
        .iter()
        .find(|p| p.name == "tool" && p.evr.epoch == 2)
        .unwrap();
    assert_eq!(tool.nevra(), "tool-2:0.9-1.x86_64");
    let writer = fetched
        .packages
        .iter()
        .find(|p| p.name == "writer")
        .unwrap();
    assert!(writer.requires.iter().any(|d| d.is_rich()));
    let newname = fetched
        .packages
        .iter()
        .find(|p| p.name == "newname")
        .unwrap();
    assert_eq!(newname.obsoletes[0].to_string(), "oldname < 2");
}

#[test]
fn altered_metadata_and_foreign_signatures_are_refused() {
    let Some(dir) = prepared() else { return };
    let files = root_files(&dir.join("root"));
    let repo = base_repos(&files).remove(0);
    let ring = keyring(&files, &repo);

    // primary altered after repomd.xml was written.
    let tmp = tempdir();
    copy_dir(&dir.join("repo"), &tmp.path().join("repo"));
    let primary = tmp.path().join("repo/9/x86_64/repodata/primary.xml.gz");
    let mut bytes = std::fs::read(&primary).unwrap();
    let n = bytes.len();
    bytes[n - 5] ^= 0xff;
    std::fs::write(&primary, bytes).unwrap();
    let server = StaticServer::start(tmp.path());
    let err = fetch(&server, &repo, &ring).unwrap_err();
    assert!(
        matches!(err, RpmRepoError::ChecksumMismatch { .. }),
        "{err}"
    );

    // repomd.xml altered: its signature no longer holds.
    let tmp = tempdir();
    copy_dir(&dir.join("repo"), &tmp.path().join("repo"));
    let md = tmp.path().join("repo/9/x86_64/repodata/repomd.xml");
    let text = std::fs::read_to_string(&md).unwrap();
    std::fs::write(
        &md,
        text.replace("<revision>1</revision>", "<revision>2</revision>"),
    )
    .unwrap();
    let server = StaticServer::start(tmp.path());
    let err = fetch(&server, &repo, &ring).unwrap_err();
    assert!(matches!(err, RpmRepoError::Signature { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("/etc/yum.repos.d/fixture.repo:1: "),
        "{err}"
    );

    // No key: dnf would refuse a repo_gpgcheck repository too.
    let server = StaticServer::start(&dir);
    let err = fetch(&server, &repo, &Keyring::default()).unwrap_err();
    assert!(matches!(err, RpmRepoError::Signature { .. }), "{err}");
}

#[test]
fn the_catalogue_of_a_base_image_lists_its_rpms() {
    let Some(dir) = prepared() else { return };
    if !require_tool("buildah", "apt-get install buildah") {
        return;
    }
    let tmp = tempdir();
    let conf = tmp.path().join("registries.conf");
    std::fs::write(&conf, "").unwrap();
    let b = Buildah::new(tmp.path().join("buildah"), conf);
    let c = b.ok(&["from", "scratch"]);
    let c = c.trim();
    b.ok(&["add", "-q", c, dir.join("base.tar").to_str().unwrap(), "/"]);
    b.ok(&["config", "--os", "linux", "--arch", "amd64", c]);
    b.ok(&["commit", "-q", c, "rpm-base"]);
    let reference = b.to_layout("rpm-base", &tmp.path().join("layout"));
    let location: imagelock::image::ImageLocation = reference.parse().unwrap();
    let catalogue = imagelock::image::read_catalogue(
        imagelock::image::open_local(&location).unwrap().as_ref(),
        &imagelock::image::Platform::linux_amd64(),
        &imagelock::image::ReadOptions::default(),
    )
    .unwrap();
    assert!(catalogue.warnings.is_empty(), "{:?}", catalogue.warnings);
    let ours: BTreeSet<String> = catalogue
        .os_packages
        .iter()
        .filter(|p| p.source == OsPackageSource::Rpm)
        .map(|p| {
            format!(
                "{}-{}.{}",
                p.name,
                p.version,
                p.arch.as_deref().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(ours, expected_qa(&dir));
    assert!(
        catalogue
            .apt_files
            .contains_key("/etc/yum.repos.d/fixture.repo")
    );
}

/// What `dnf --assumeno` prints for a transaction: the NEVRAs installed
/// afterwards (from the base's), or dnf's error.
pub(crate) fn dnf_outcome(
    base: &BTreeSet<String>,
    output: &str,
) -> Result<BTreeSet<String>, String> {
    if let Some(i) = output.find("Error:") {
        return Err(output[i..].trim().to_string());
    }
    assert!(
        output.contains("Dependencies resolved.") || output.contains("Nothing to do."),
        "dnf did not resolve:\n{output}"
    );
    let mut after = base.clone();
    let mut section = "";
    let name_arch = |nevra: &str| -> (String, String) {
        let (rest, arch) = nevra.rsplit_once('.').unwrap();
        let (nv, _) = rest.rsplit_once('-').unwrap();
        let (n, _) = nv.rsplit_once('-').unwrap();
        (n.to_string(), arch.to_string())
    };
    for line in output.lines() {
        if !line.starts_with(' ') && line.trim_end().ends_with(':') {
            section = line.trim_end();
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.first() == Some(&"replacing") && f.len() == 3 {
            let (n, a) = f[1].rsplit_once('.').unwrap();
            after.remove(&format!("{n}-{}.{a}", f[2]));
            continue;
        }
        if !line.starts_with(' ') || f.len() < 5 || section.is_empty() {
            continue;
        }
        let nevra = format!("{}-{}.{}", f[0], f[2], f[1]);
        if section.starts_with("Removing") {
            after.remove(&nevra);
        } else if section.starts_with("Installing")
            || section.starts_with("Upgrading")
            || section.starts_with("Downgrading")
        {
            if !section.starts_with("Installing") {
                let (n, a) = (f[0], f[1]);
                after.retain(|p| name_arch(p) != (n.to_string(), a.to_string()));
            }
            after.insert(nevra);
        } else {
            panic!("unexpected section {section} in dnf's output:\n{output}");
        }
    }
    Ok(after)
}

/// Resolution agrees with the real `dnf --assumeno --installroot` on the
/// base root, case by case: the set installed afterwards, or both refuse.
#[test]
fn resolution_agrees_with_dnf_assumeno() {
    use imagelock::solve::rpm::solver::{RpmRequest, RpmSolveOptions, solve};
    let Some(dir) = prepared() else { return };
    if !require_tool("dnf", "apt-get install dnf") {
        return;
    }
    let files = root_files(&dir.join("root"));
    let installed = read_rpmdb(&files).unwrap().unwrap();
    let base = expected_qa(&dir);
    let repo = base_repos(&files).remove(0);
    let server = StaticServer::start(&dir);
    let fetched = fetch(&server, &repo, &keyring(&files, &repo)).unwrap();

    let tmp = tempdir();
    let root = tmp.path().join("root");
    copy_dir(&dir.join("root"), &root);
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join(".rpmmacros"), "%_dbpath /var/lib/rpm\n").unwrap();
    let repos = tmp.path().join("repos");
    std::fs::create_dir_all(&repos).unwrap();
    std::fs::create_dir_all(tmp.path().join("log")).unwrap();
    std::fs::write(
        repos.join("fixture.repo"),
        format!(
            "[fixture]\nname=fixture\nbaseurl=file://{}\ngpgcheck=0\n",
            dir.join("repo/9/x86_64").display()
        ),
    )
    .unwrap();

    // Rich, file and capability dependencies, obsoletes, weak dependencies
    // (on and off, Recommends and Supplements), multilib, epochs, conflicts,
    // NEVRA forms, upgrade and remove.
    let cases = [
        "install tool",
        "install tool-1.0",
        "install tool-2:0.9-1.x86_64",
        "install needs-file",
        "install /usr/bin/helper",
        "install writer",
        "install editor",
        "install conflicted writer",
        "install editor-a conflicted",
        "install newname",
        "install oldname",
        "install app",
        "install app --setopt=install_weak_deps=False",
        "install libfoo.i686",
        "install libfoo",
        "install libfoo-1.0-1.i686",
        "install libfoo.so.1",
        "install tool libfoo.i686",
        "install addon",
        "install addon writer",
        "install broken",
        "install nothing-here",
        "install app-doc helper",
        "upgrade",
        "upgrade libfoo",
        "remove oldname",
        "remove libfoo",
    ];
    let mut report = Vec::new();
    for case in cases {
        let words: Vec<&str> = case.split_whitespace().collect();
        let out = std::process::Command::new("dnf")
            .args(["--assumeno", "--installroot"])
            .arg(&root)
            .args(["--releasever", "9", "--forcearch", "x86_64"])
            .arg(format!("--setopt=reposdir={}", repos.display()))
            .arg(format!(
                "--setopt=cachedir={}",
                tmp.path().join("cache").display()
            ))
            .arg(format!(
                "--setopt=logdir={}",
                tmp.path().join("log").display()
            ))
            .args(&words)
            .env("HOME", &home)
            .env("LC_ALL", "C.UTF-8")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs = dnf_outcome(&base, &text);

        let specs: Vec<String> = words[1..]
            .iter()
            .filter(|w| !w.starts_with("--"))
            .map(|w| w.to_string())
            .collect();
        let request = match words[0] {
            "install" => RpmRequest::Install(specs),
            "upgrade" => RpmRequest::Upgrade(specs),
            _ => RpmRequest::Remove(specs),
        };
        let options = RpmSolveOptions {
            basearch: "x86_64".into(),
            install_weak_deps: !case.contains("install_weak_deps=False"),
        };
        let ours = solve(&installed, &fetched.packages, &request, &options)
            .map(|t| t.after)
            .map_err(|e| e.to_string());
        let agree = match (&theirs, &ours) {
            (Ok(a), Ok(b)) => a == b,
            (Err(_), Err(_)) => true,
            _ => false,
        };
        if !agree {
            report.push(format!(
                "`dnf {case}`:\n  dnf:       {theirs:?}\n  imagelock: {ours:?}"
            ));
        }
    }
    assert!(
        report.is_empty(),
        "{} of {} cases differ:\n{}",
        report.len(),
        cases.len(),
        report.join("\n")
    );
}

/// A dnf step frozen against the dnf-installed base pushed to the tests'
/// registry: every package the agreement cases predict is in the lock with
/// its repository, location and the sha256 of the `.rpm` served; the
/// repository is recorded with the sha256 of its signed `repomd.xml`; a
/// step imagelock cannot model is recorded as not locked with its line.
#[test]
fn dnf_steps_freeze_into_rpm_lock_entries() {
    let Some(dir) = prepared() else { return };
    if !(require_tool("buildah", "apt-get install buildah")
        && require_tool("skopeo", "apt-get install skopeo"))
    {
        return;
    }
    let Some(registry) = crate::common::registry::server(crate::common::registry::AuthKind::Open)
    else {
        return;
    };
    let tmp = tempdir();
    let conf = tmp.path().join("registries.conf");
    std::fs::write(&conf, "").unwrap();
    let b = Buildah::new(tmp.path().join("buildah"), conf);
    let c = b.ok(&["from", "scratch"]);
    let c = c.trim();
    b.ok(&["add", "-q", c, dir.join("base.tar").to_str().unwrap(), "/"]);
    b.ok(&["config", "--os", "linux", "--arch", "amd64", c]);
    b.ok(&["commit", "-q", c, "rpm-base"]);
    let base = format!("{}/rpm/fixture:9", registry.addr);
    b.ok(&[
        "push",
        "-q",
        "--tls-verify=false",
        "rpm-base",
        &format!("docker://{base}"),
    ]);
    let server = StaticServer::start(&dir);

    let ex = tmp.path().join("image");
    std::fs::create_dir_all(&ex).unwrap();
    std::fs::write(
        ex.join("Dockerfile"),
        format!(
            "FROM {base}\n\
             RUN dnf --nobest install -y writer\n\
             RUN dnf install -y --nodocs app && dnf clean all\n\
             RUN dnf install -y --setopt=install_weak_deps=False needs-file\n"
        ),
    )
    .unwrap();
    std::fs::write(
        ex.join("imagelock.toml"),
        format!(
            "lock-dir = \"lockfiles\"\nplatforms = [\"linux/amd64\"]\n\n\
             [images.tool]\nfile = \"Dockerfile\"\n\n\
             [apt.mirrors]\n\"{FIXTURE_HOST}\" = \"{}/\"\n",
            server.url()
        ),
    )
    .unwrap();
    let cli = |args: &[&str]| {
        crate::common::run(
            crate::common::imagelock()
                .current_dir(&ex)
                .env("XDG_CACHE_HOME", tmp.path().join("cache"))
                .args(args),
        )
    };
    let (code, out, err) = cli(&["freeze"]);
    assert_eq!(code, 0, "freeze failed:\n{out}\n{err}");
    assert!(
        err.contains("Dockerfile:2: `dnf --nobest install -y writer` is not locked: `--nobest` changes how dnf resolves"),
        "{err}"
    );
    let lock = imagelock::lock::LockedImage::read(&ex.join("lockfiles/tool.lock")).unwrap();
    let steps: Vec<_> = lock
        .steps
        .iter()
        .filter(|s| s.manager.as_str() == "dnf")
        .collect();
    assert_eq!(steps.len(), 3);
    assert!(!steps[0].locked && steps[1].locked && steps[2].locked);
    let steps = &steps[1..];
    let nevras = |i: usize| -> BTreeSet<String> {
        steps[i]
            .rpm
            .iter()
            .map(|p| format!("{} {}", p.action, p.nevra()))
            .collect()
    };
    assert_eq!(
        nevras(0),
        [
            "install app-1.0-1.noarch",
            "install app-langpack-1.0-1.noarch",
            "install extra-1.0-1.noarch",
            "install tool-1.0-1.x86_64",
        ]
        .map(String::from)
        .into()
    );
    assert_eq!(
        nevras(1),
        [
            "install helper-3.0-1.noarch",
            "install needs-file-1.0-1.noarch"
        ]
        .map(String::from)
        .into()
    );
    for p in steps[0].rpm.iter().chain(&steps[1].rpm) {
        assert_eq!(p.repo.as_ref().unwrap().as_str(), "fixture");
        let rpm = std::fs::read(
            dir.join("repo/9/x86_64")
                .join(p.location.as_ref().unwrap().as_str()),
        )
        .unwrap();
        assert_eq!(
            p.sha256.as_ref().unwrap().as_str(),
            hex::encode(Sha256::digest(&rpm)),
            "{}",
            p.nevra()
        );
    }
    let repo = &steps[0].rpm_repos[0];
    assert_eq!(
        repo.baseurl.as_str(),
        format!("{FIXTURE_HOST}repo/9/x86_64/")
    );
    assert!(repo.signed);
    let repomd = std::fs::read(dir.join("repo/9/x86_64/repodata/repomd.xml")).unwrap();
    assert_eq!(
        repo.repomd_sha256.as_str(),
        hex::encode(Sha256::digest(&repomd))
    );

    let (code, out, err) = cli(&["export", "tool", "--to", "sbom"]);
    assert_eq!(code, 0, "export:\n{out}\n{err}");
    assert!(
        out.contains("\"pkg:rpm/tool@1.0-1?arch=x86_64&repository_id=fixture\""),
        "{out}"
    );

    // rewrite pins each installed package as dnf takes it.
    let (code, out, err) = cli(&["rewrite"]);
    assert_eq!(code, 0, "rewrite failed:\n{out}\n{err}");
    let dockerfile = std::fs::read_to_string(ex.join("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains(
            "RUN dnf install -y --nodocs \\\n    app-1.0-1.noarch \\\n    app-langpack-1.0-1.noarch \\\n    extra-1.0-1.noarch \\\n    tool-1.0-1.x86_64 && dnf clean all\n"
        ),
        "{dockerfile}"
    );
    assert!(
        dockerfile
            .contains("install_weak_deps=False helper-3.0-1.noarch needs-file-1.0-1.noarch\n"),
        "{dockerfile}"
    );
    let (code, out, err) = cli(&["verify"]);
    assert_eq!(code, 0, "verify after rewrite:\n{out}\n{err}");

    // The image: the real dnf installs the pinned steps into a copy of the
    // base root (the fixture's base has no dnf of its own to run inside).
    let pinned: Vec<Vec<String>> = steps
        .iter()
        .map(|s| {
            let mut args: Vec<String> = vec!["install".into()];
            if s.command.contains("install_weak_deps=False") {
                args.push("--setopt=install_weak_deps=False".into());
            }
            args.extend(imagelock_pins(s));
            args
        })
        .collect();
    let built = dnf_image(&b, &dir, tmp.path(), "built", &pinned);
    let qa = rpm_qa(&tmp.path().join("built-root"));
    let expected: BTreeSet<String> = expected_qa(&dir)
        .into_iter()
        .chain(steps.iter().flat_map(|s| s.rpm.iter().map(|p| p.nevra())))
        .collect();
    assert_eq!(
        qa, expected,
        "rpm -qa --root of the image equals base + lock"
    );
    let (code, out, err) = cli(&["verify", "--image", &built]);
    assert_eq!(code, 0, "verify --image:\n{out}\n{err}");
    assert!(out.contains("6 rpm packages"), "{out}");

    // One locked package missing, one nobody locked.
    let mut tampered = pinned.clone();
    tampered.push(vec!["install".into(), "app-doc".into()]);
    tampered.push(vec![
        "remove".into(),
        "--setopt=clean_requirements_on_remove=False".into(),
        "--noautoremove".into(),
        "extra".into(),
    ]);
    let tampered = dnf_image(&b, &dir, tmp.path(), "tampered", &tampered);
    let (code, out, _) = cli(&["verify", "--image", &tampered]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("extra: lock has 1.0-1 (noarch)") && l.ends_with("image has none")),
        "the missing package is named:\n{out}"
    );
    assert!(
        out.contains("app-doc: not in the lock nor in the base, image has 1.0-1 (noarch)"),
        "the extra package is named:\n{out}"
    );
}

/// The step's packages as rewrite pins them.
fn imagelock_pins(step: &imagelock::lock::LockedStep) -> Vec<String> {
    step.rpm
        .iter()
        .filter(|p| p.installed_after())
        .map(|p| p.nevra())
        .collect()
}

pub(crate) fn rpm_qa(root: &Path) -> BTreeSet<String> {
    let home = root.with_extension("home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join(".rpmmacros"), "%_dbpath /var/lib/rpm\n").unwrap();
    let out = std::process::Command::new("rpm")
        .args(["-qa", "--qf", "%{NEVRA}\n", "--root"])
        .arg(root)
        .env("HOME", &home)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("gpg-pubkey"))
        .map(str::to_string)
        .collect()
}

/// A copy of the base root with each dnf command line run on it by the real
/// dnf (from the fixture repository), as an OCI layout; its reference.
fn dnf_image(b: &Buildah, dir: &Path, tmp: &Path, name: &str, runs: &[Vec<String>]) -> String {
    let root = tmp.join(format!("{name}-root"));
    copy_dir(&dir.join("root"), &root);
    let home = tmp.join(format!("{name}-home"));
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join(".rpmmacros"), "%_dbpath /var/lib/rpm\n").unwrap();
    let repos = tmp.join(format!("{name}-repos"));
    std::fs::create_dir_all(&repos).unwrap();
    std::fs::write(
        repos.join("fixture.repo"),
        format!(
            "[fixture]\nname=fixture\nbaseurl=file://{}\ngpgcheck=0\n",
            dir.join("repo/9/x86_64").display()
        ),
    )
    .unwrap();
    let work = tmp.join(format!("{name}-dnf"));
    std::fs::create_dir_all(work.join("log")).unwrap();
    for args in runs {
        let out = std::process::Command::new("dnf")
            .args(["-y", "--installroot"])
            .arg(&root)
            .args(["--releasever", "9", "--forcearch", "x86_64"])
            .arg(format!("--setopt=reposdir={}", repos.display()))
            .arg(format!(
                "--setopt=cachedir={}",
                work.join("cache").display()
            ))
            .arg(format!("--setopt=logdir={}", work.join("log").display()))
            .args(args)
            .env("HOME", &home)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "dnf {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for d in ["var/log", "var/cache", "var/lib/dnf"] {
        let _ = std::fs::remove_dir_all(root.join(d));
    }
    // One layer over the base: the files dnf added or changed.
    let mut changed = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(&root).unwrap().to_path_buf();
            let ty = e.file_type().unwrap();
            if ty.is_dir() {
                stack.push(p);
                continue;
            }
            let old = dir.join("root").join(&rel);
            let same = if ty.is_symlink() {
                std::fs::read_link(&p).ok() == std::fs::read_link(&old).ok()
            } else {
                std::fs::read(&old).ok() == std::fs::read(&p).ok()
            };
            if !same {
                changed.push(rel.display().to_string());
            }
        }
    }
    changed.sort();
    let list = tmp.join(format!("{name}.list"));
    std::fs::write(&list, changed.join("\n") + "\n").unwrap();
    let tar = tmp.join(format!("{name}.tar"));
    let status = std::process::Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg("-T")
        .arg(&list)
        .status()
        .unwrap();
    assert!(status.success());
    let c = b.ok(&["from", "--pull-never", "rpm-base"]);
    let c = c.trim();
    b.ok(&["add", "-q", c, tar.to_str().unwrap(), "/"]);
    b.ok(&["commit", "-q", c, &format!("rpm-{name}")]);
    b.to_layout(&format!("rpm-{name}"), &tmp.join(format!("oci-{name}")))
}

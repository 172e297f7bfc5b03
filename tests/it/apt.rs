//! apt repositories checked as apt checks them, and resolution compared
//! with the real `apt-get -s`, against signed repositories served on
//! 127.0.0.1. The repositories hold real Debian `.deb` files indexed by
//! `apt-ftparchive` and signed by `gpg` (RSA 4096 clear-signed, Ed25519
//! detached, one expired): `tests/apt/prepare.py` (network, once; `.ci/test`
//! runs it) makes them under `target/apt-fixture/`.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use imagelock::image::dpkg::read_apt_state;
use imagelock::resolve::apt::{AptMirrors, AptRepoError, ImageKeys, fetch_source};
use imagelock::solve::apt::{
    AptAction, AptCommand, AptPackageSpec, AptRequest, SourceEntry, Universe, resolve,
};
use sha2::{Digest, Sha256};

use crate::common::http::StaticServer;
use crate::common::{copy_dir, repo_root, tempdir};

fn prepared() -> Option<PathBuf> {
    let dir = repo_root().join("target/apt-fixture");
    let ready =
        dir.join("repo/dists/stable/InRelease").is_file() && dir.join("keys/rsa.gpg").is_file();
    if !ready {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the apt tests need `python3 tests/apt/prepare.py` first"
        );
        eprintln!("skipping: run `python3 tests/apt/prepare.py` to prepare the apt repository");
    }
    ready.then_some(dir)
}

fn entry(url: &str, suite: &str, keyring: &str) -> SourceEntry {
    SourceEntry {
        uri: url.to_string(),
        suite: suite.to_string(),
        components: vec!["main".into()],
        architectures: None,
        signed_by: vec![keyring.to_string()],
        trusted: false,
        check_valid_until: true,
        location: "/etc/apt/sources.list.d/test.sources:1".into(),
    }
}

fn keys(dir: &Path) -> ImageKeys {
    let mut k = ImageKeys::default();
    for name in ["rsa", "ed25519", "other"] {
        k.files.insert(
            format!("/usr/share/keyrings/{name}.gpg"),
            fs_err::read(dir.join(format!("keys/{name}.gpg"))).unwrap(),
        );
    }
    k
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

fn fetch(
    url: &str,
    e: &SourceEntry,
    keys: &ImageKeys,
) -> Result<imagelock::resolve::apt::FetchedSource, AptRepoError> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client =
        imagelock::resolve::http::HttpClient::new(imagelock::resolve::http::HttpOptions::default())
            .unwrap();
    let _ = url;
    rt.block_on(fetch_source(
        &client,
        &AptMirrors::default(),
        e,
        &["amd64".to_string()],
        keys,
        now(),
    ))
}

#[test]
fn signed_repositories_verify_and_every_deb_matches_its_packages_hash() {
    let Some(dir) = prepared() else { return };
    let server = StaticServer::start(dir.join("repo"));
    let url = server.url();
    let keys = keys(&dir);
    // RSA 4096, clear-signed InRelease.
    let got = fetch(
        &url,
        &entry(&url, "stable", "/usr/share/keyrings/rsa.gpg"),
        &keys,
    )
    .unwrap();
    assert_eq!(got.release.origin, "imagelock-test");
    assert!(got.release_url.ends_with("/dists/stable/InRelease"));
    let packages = &got.indexes[0].packages;
    let names: BTreeSet<&str> = packages.iter().map(|p| p.name.as_str()).collect();
    assert!(
        names.contains("hello") && names.contains("libc6"),
        "{names:?}"
    );
    for p in packages {
        let deb = fs_err::read(dir.join("repo").join(&p.filename)).unwrap();
        assert_eq!(
            hex::encode(Sha256::digest(&deb)),
            p.sha256,
            "{}",
            p.filename
        );
        assert_eq!(deb.len() as u64, p.size);
    }
    // Ed25519, Release + detached Release.gpg.
    let ed = fetch(
        &url,
        &entry(&url, "edsuite", "/usr/share/keyrings/ed25519.gpg"),
        &keys,
    )
    .unwrap();
    assert!(ed.release_url.ends_with("/dists/edsuite/Release"));
    assert_eq!(ed.indexes[0].packages.len(), packages.len());
}

#[test]
fn a_signature_by_another_key_is_refused() {
    let Some(dir) = prepared() else { return };
    let server = StaticServer::start(dir.join("repo"));
    let url = server.url();
    let keys = keys(&dir);
    for (suite, key) in [("stable", "other"), ("edsuite", "rsa")] {
        let err = fetch(
            &url,
            &entry(&url, suite, &format!("/usr/share/keyrings/{key}.gpg")),
            &keys,
        )
        .unwrap_err();
        assert!(matches!(err, AptRepoError::Signature { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.starts_with("/etc/apt/sources.list.d/test.sources:1: the signature of"),
            "{msg}"
        );
        assert!(msg.contains("hint:"), "{msg}");
    }
    // A keyring the image lacks.
    let err = fetch(
        &url,
        &entry(&url, "stable", "/etc/apt/keyrings/missing.gpg"),
        &keys,
    )
    .unwrap_err();
    assert!(matches!(err, AptRepoError::MissingKeyring { .. }), "{err}");
}

#[test]
fn an_expired_release_is_refused_unless_check_valid_until_is_off() {
    let Some(dir) = prepared() else { return };
    let server = StaticServer::start(dir.join("repo"));
    let url = server.url();
    let keys = keys(&dir);
    let mut e = entry(&url, "expired", "/usr/share/keyrings/rsa.gpg");
    let err = fetch(&url, &e, &keys).unwrap_err();
    assert!(matches!(err, AptRepoError::Expired { .. }), "{err}");
    e.check_valid_until = false;
    fetch(&url, &e, &keys).unwrap();
}

#[test]
fn an_index_that_does_not_match_the_release_hash_is_refused() {
    let Some(dir) = prepared() else { return };
    let tmp = tempdir();
    copy_dir(&dir.join("repo"), tmp.path());
    let packages = tmp
        .path()
        .join("dists/stable/main/binary-amd64/Packages.gz");
    let mut bytes = fs_err::read(&packages).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs_err::write(&packages, bytes).unwrap();
    let server = StaticServer::start(tmp.path());
    let url = server.url();
    let err = fetch(
        &url,
        &entry(&url, "stable", "/usr/share/keyrings/rsa.gpg"),
        &keys(&dir),
    )
    .unwrap_err();
    assert!(matches!(err, AptRepoError::HashMismatch { .. }), "{err}");
    assert!(err.to_string().contains("Packages.gz"), "{err}");
}

/// An apt root in a temporary directory whose sources name the local
/// repository, for `apt-get -o Dir=ROOT`.
fn apt_root(dir: &Path, url: &str, status: &str) -> (tempfile::TempDir, String) {
    let root = tempdir();
    for d in [
        "etc/apt/sources.list.d",
        "etc/apt/apt.conf.d",
        "etc/apt/preferences.d",
        "usr/share/keyrings",
        "var/lib/dpkg",
        "var/lib/apt/lists/partial",
        "var/cache/apt/archives/partial",
    ] {
        fs_err::create_dir_all(root.path().join(d)).unwrap();
    }
    let keyring = root.path().join("usr/share/keyrings/rsa.gpg");
    fs_err::copy(dir.join("keys/rsa.gpg"), &keyring).unwrap();
    let keyring = keyring.display().to_string();
    fs_err::write(
        root.path().join("etc/apt/sources.list.d/test.sources"),
        format!(
            "Types: deb\nURIs: {url}\nSuites: stable\nComponents: main\nSigned-By: {keyring}\n"
        ),
    )
    .unwrap();
    fs_err::write(root.path().join("var/lib/dpkg/status"), status).unwrap();
    (root, keyring)
}

fn apt_get(root: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("apt-get")
        .arg("-o")
        .arg(format!("Dir={}", root.display()))
        .arg("-o")
        .arg(format!(
            "Dir::State::status={}/var/lib/dpkg/status",
            root.display()
        ))
        .args([
            "-o",
            "Debug::NoLocking=1",
            "-o",
            "APT::Architecture=amd64",
            "-o",
            "APT::Sandbox::User=root",
            "-q",
            "-y",
        ])
        .args(args)
        .output()
        .expect("apt-get runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn ours(
    dir: &Path,
    root: &Path,
    url: &str,
    keyring: &str,
    command: AptCommand,
) -> BTreeSet<String> {
    let mut files = BTreeMap::new();
    for rel in ["etc/apt/sources.list.d/test.sources", "var/lib/dpkg/status"] {
        files.insert(format!("/{rel}"), fs_err::read(root.join(rel)).unwrap());
    }
    let state = read_apt_state(&files).unwrap();
    let mut keys = ImageKeys::default();
    keys.files.insert(
        keyring.to_string(),
        fs_err::read(dir.join("keys/rsa.gpg")).unwrap(),
    );
    let fetched = fetch(url, &state.sources[0], &keys).unwrap();
    let u = Universe::new(
        "amd64",
        &state.installed,
        fetched.indexes,
        &state.pins,
        state.options.clone(),
    )
    .unwrap();
    let out = resolve(&u, &command, &HashSet::new()).unwrap();
    out.records
        .iter()
        .filter(|r| r.action != AptAction::Keep)
        .map(|r| match r.action {
            AptAction::Remove | AptAction::Purge => format!("Remv {}", r.name),
            _ => format!("Inst {} {} {}", r.name, r.version, r.architecture),
        })
        .collect()
}

fn theirs(stdout: &str) -> BTreeSet<String> {
    stdout
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            match w.next()? {
                "Inst" => {
                    let name = w.next()?;
                    let rest: Vec<&str> = w.collect();
                    let rest: Vec<&str> = rest
                        .into_iter()
                        .skip_while(|x| x.starts_with('['))
                        .collect();
                    let version = rest.first()?.trim_start_matches('(');
                    // `… [amd64])`, sometimes followed by ` []`.
                    let arch = rest
                        .iter()
                        .find(|x| x.ends_with("])"))?
                        .trim_matches(|c| c == '[' || c == ']' || c == ')');
                    Some(format!("Inst {name} {version} {arch}"))
                }
                "Remv" => Some(format!("Remv {}", w.next()?)),
                _ => None,
            }
        })
        .collect()
}

#[test]
fn resolution_agrees_with_apt_get_simulate_on_the_local_repository() {
    let Some(dir) = prepared() else { return };
    if Command::new("apt-get").arg("--version").output().is_err() {
        eprintln!("skipping: no apt-get");
        return;
    }
    let server = StaticServer::start(dir.join("repo"));
    let url = server.url();
    let (root, keyring) = apt_root(&dir, &url, "");
    let (ok, _) = apt_get(root.path(), &["update"]);
    assert!(ok, "apt-get update against the local repository");
    for words in [
        vec!["hello"],
        vec!["mawk", "netbase"],
        vec!["--no-install-recommends", "hello"],
        vec!["sensible-utils"],
    ] {
        let mut args = vec!["install", "-s"];
        args.extend(&words);
        let (ok, stdout) = apt_get(root.path(), &args);
        assert!(ok, "apt-get {args:?}: {stdout}");
        let mut command = AptCommand::new(AptRequest::Install(
            words
                .iter()
                .filter(|w| !w.starts_with('-'))
                .map(|w| AptPackageSpec::parse(w).unwrap())
                .collect(),
        ));
        if words.contains(&"--no-install-recommends") {
            command.install_recommends = Some(false);
        }
        let want = theirs(&stdout);
        assert!(!want.is_empty());
        assert_eq!(
            ours(&dir, root.path(), &url, &keyring, command),
            want,
            "apt-get install {words:?}"
        );
    }
}

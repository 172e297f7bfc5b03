//! apk steps against an Alpine repository made here as abuild makes one:
//! an `APKINDEX` tar gzipped, signed with `openssl dgst -sha1 -sign` by a
//! key made with `openssl genrsa`, the signature tar cut of its end blocks
//! (abuild-tar --cut) and gzipped in front; served on 127.0.0.1. The base
//! image's layer carries apk's database, world, repositories, arch and
//! key. There is no apk binary on Debian: these tests check imagelock
//! against the apk semantics it implements, not against apk itself.

use std::path::Path;
use std::process::Command;

use crate::common::http::StaticServer;
use crate::common::registry::{LayoutBuilder, sha256};
use crate::common::{self, imagelock, run};

const HOST: &str = "http://apk.fixture.invalid/alpine";
const KEY: &str = "fixture@imagelock.invalid-1.rsa.pub";

fn ok(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().expect("the tool runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// An RSA key pair: (private key file, public PEM).
fn keypair(dir: &Path, name: &str) -> (std::path::PathBuf, Vec<u8>) {
    let private = dir.join(format!("{name}.rsa"));
    ok(Command::new("openssl")
        .args(["genrsa", "-out"])
        .arg(&private)
        .arg("2048"));
    let public = ok(Command::new("openssl")
        .args(["rsa", "-pubout", "-in"])
        .arg(&private));
    (private, public)
}

/// `APKINDEX.tar.gz` as abuild-sign makes it: the index tar gzipped, and
/// in front of it a gzipped tar of `.SIGN.RSA.<key_name>` without its end
/// blocks.
fn signed_index(dir: &Path, index: &str, private: &Path, key_name: &str) -> Vec<u8> {
    signed_index_with(dir, index, private, key_name, "sha1")
}

/// [`signed_index`] with `digest` `sha1` (`.SIGN.RSA.`) or `sha256`
/// (`.SIGN.RSA256.`).
fn signed_index_with(
    dir: &Path,
    index: &str,
    private: &Path,
    key_name: &str,
    digest: &str,
) -> Vec<u8> {
    let work = dir.join(format!("sign-{}", fastrand_name(index, key_name)));
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("APKINDEX"), index).unwrap();
    std::fs::write(work.join("DESCRIPTION"), "v3.20.3-fixture\n").unwrap();
    let tar = ok(Command::new("tar").current_dir(&work).args([
        "-c",
        "--owner=0",
        "--group=0",
        "DESCRIPTION",
        "APKINDEX",
    ]));
    std::fs::write(work.join("index.tar"), &tar).unwrap();
    ok(Command::new("gzip")
        .args(["-9", "-n", "-f"])
        .arg(work.join("index.tar")));
    let unsigned = work.join("index.tar.gz");
    let sig_name = match digest {
        "sha1" => format!(".SIGN.RSA.{key_name}"),
        _ => format!(".SIGN.RSA256.{key_name}"),
    };
    ok(Command::new("openssl")
        .args(["dgst", &format!("-{digest}"), "-sign"])
        .arg(private)
        .arg("-out")
        .arg(work.join(&sig_name))
        .arg(&unsigned));
    let sig_tar = ok(Command::new("tar")
        .current_dir(&work)
        .args(["-c", "--owner=0", "--group=0"])
        .arg(&sig_name));
    // abuild-tar --cut: the header and the padded data, no end blocks.
    let size = std::fs::metadata(work.join(&sig_name)).unwrap().len() as usize;
    let cut = &sig_tar[..512 + size.div_ceil(512) * 512];
    std::fs::write(work.join("sig.tar"), cut).unwrap();
    ok(Command::new("gzip")
        .args(["-9", "-n", "-f"])
        .arg(work.join("sig.tar")));
    let mut out = std::fs::read(work.join("sig.tar.gz")).unwrap();
    out.extend(std::fs::read(&unsigned).unwrap());
    out
}

fn fastrand_name(a: &str, b: &str) -> String {
    sha256(format!("{a}{b}").as_bytes())[7..19].to_string()
}

fn layer(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_cksum();
        tar.append_data(&mut h, path, *data).unwrap();
    }
    tar.into_inner().unwrap()
}

/// An OCI layout at `layout` holding one image tagged `tag`.
fn image(layout: &Path, tag: &str, layers: &[Vec<u8>]) {
    let layers: Vec<&[u8]> = layers.iter().map(Vec::as_slice).collect();
    LayoutBuilder::new(layout).tag_layers(tag, &layers);
}

const MUSL_OLD: &str = "C:Q1bXVzbC1vbGQtY29udHJvbC1zaGExPQ==\nP:musl\nV:1.2.4-r2\nA:x86_64\nS:400000\nI:600000\no:musl\np:so:libc.musl-x86_64.so.1=1\n";

fn index_text() -> String {
    [
        MUSL_OLD,
        "C:Q1bXVzbC1uZXctY29udHJvbC1zaGExPQ==\nP:musl\nV:1.2.5-r0\nA:x86_64\nS:410000\nI:610000\np:so:libc.musl-x86_64.so.1=1\n",
        "C:Q1Y3VybC1vbGQtY29udHJvbC1zaGExPQ==\nP:curl\nV:8.5.0-r0\nA:x86_64\nS:1000\nD:libcurl=8.5.0-r0\n",
        "C:Q1Y3VybC1uZXctY29udHJvbC1zaGExPQ==\nP:curl\nV:8.9.1-r0\nA:x86_64\nS:1100\nD:libcurl=8.9.1-r0 so:libc.musl-x86_64.so.1\np:cmd:curl=8.9.1-r0\n",
        "C:Q1bGliY3VybC1vbGQtY29udHJvbDE9PQ==\nP:libcurl\nV:8.5.0-r0\nA:x86_64\nS:2000\np:so:libcurl.so.4=4.8.0\n",
        "C:Q1bGliY3VybC1uZXctY29udHJvbDE9PQ==\nP:libcurl\nV:8.9.1-r0\nA:x86_64\nS:2100\nD:so:libz.so.1\np:so:libcurl.so.4=4.8.0\n",
        "C:Q1emxpYi1jb250cm9sLXNoYTEtc3VtMT0=\nP:zlib\nV:1.3.1-r1\nA:x86_64\nS:3000\np:so:libz.so.1=1.3.1\n",
        "C:Q1Z2NjLWNvbnRyb2wtc2hhMS1zdW0xMT0=\nP:gcc\nV:13.2.1_git20240309-r0\nA:x86_64\nS:5000\nD:!tcc\n",
        "C:Q1bGFuZy1hLWNvbnRyb2wtc2hhMS1zdW09\nP:lang-a\nV:1-r0\nA:x86_64\nS:10\n",
        "C:Q1bGFuZy1iLWNvbnRyb2wtc2hhMS1zdW09\nP:lang-b\nV:1-r0\nA:x86_64\nS:10\n",
        "C:Q1bGFuZy1hYi1jb250cm9sLXNoYTEtc3U=\nP:lang-ab\nV:1-r0\nA:x86_64\nS:10\ni:lang-a lang-b\n",
    ]
    .join("\n")
}

struct World {
    tmp: tempfile::TempDir,
    server: StaticServer,
    /// The base image's one layer.
    base: Vec<u8>,
}

impl World {
    fn path(&self, rel: &str) -> std::path::PathBuf {
        self.tmp.path().join(rel)
    }

    fn cli(&self, args: &[&str]) -> (i32, String, String) {
        run(imagelock()
            .current_dir(self.path("ex"))
            .env("XDG_CACHE_HOME", self.path("cache"))
            .args(args))
    }
}

/// A step's apk entries as `action name version`.
fn actions(step: &imagelock::lock::LockedStep) -> Vec<String> {
    step.apk
        .iter()
        .map(|p| {
            let version = p.version.as_ref().map(ToString::to_string);
            format!("{} {} {}", p.action, p.name, version.unwrap_or_default())
        })
        .collect()
}

/// The repository signed by `signer` (private key, name in the signature),
/// the base image trusting `KEY` = `trusted`, and a definition with `run`.
fn world(run_line: &str) -> Option<(World, std::path::PathBuf, Vec<u8>)> {
    world_with(run_line, "")
}

/// [`world`] with more lines in the image's `/etc/apk/repositories`.
fn world_with(run_line: &str, more_repos: &str) -> Option<(World, std::path::PathBuf, Vec<u8>)> {
    for tool in ["openssl", "tar", "gzip"] {
        if !common::require_tool(tool, &format!("apt-get install -y {tool}")) {
            return None;
        }
    }
    let tmp = common::tempdir();
    let (private, public) = keypair(tmp.path(), "fixture");
    let srv = tmp.path().join("srv/alpine/v3.20/main/x86_64");
    std::fs::create_dir_all(&srv).unwrap();
    std::fs::write(
        srv.join("APKINDEX.tar.gz"),
        signed_index(tmp.path(), &index_text(), &private, KEY),
    )
    .unwrap();
    let server = StaticServer::start(tmp.path().join("srv"));
    let repositories = format!("# fixture\n{HOST}/v3.20/main\n{more_repos}");
    let key_path = format!("etc/apk/keys/{KEY}");
    let base = layer(&[
        ("lib/apk/db/installed", MUSL_OLD.as_bytes()),
        ("etc/apk/world", b"musl\n"),
        ("etc/apk/repositories", repositories.as_bytes()),
        ("etc/apk/arch", b"x86_64\n"),
        (key_path.as_str(), &public),
    ]);
    image(
        &tmp.path().join("images/library/fixture"),
        "3.20",
        std::slice::from_ref(&base),
    );
    let ex = tmp.path().join("ex");
    std::fs::create_dir_all(&ex).unwrap();
    std::fs::write(
        ex.join("Dockerfile"),
        format!("FROM fixture:3.20\n{run_line}\n"),
    )
    .unwrap();
    std::fs::write(
        ex.join("imagelock.toml"),
        format!(
            "lock-dir = \"lockfiles\"\nplatforms = [\"linux/amd64\"]\n\n\
             [images.tool]\nfile = \"Dockerfile\"\n\n\
             [registries.\"docker.io\"]\nlocation = \"oci:{}\"\n\n\
             [apt.mirrors]\n\"{HOST}\" = \"{}/alpine\"\n",
            tmp.path().join("images").display(),
            server.url().trim_end_matches('/')
        ),
    )
    .unwrap();
    Some((World { tmp, server, base }, private, public))
}

#[test]
fn apk_add_is_locked_from_the_signed_index_pinned_and_verified_in_the_image() {
    let Some((w, _, _)) = world(
        "RUN apk add --no-cache curl so:libz.so.1 \\\n && apk add --virtual .build-deps 'gcc>13'",
    ) else {
        return;
    };
    let (code, out, err) = w.cli(&["freeze"]);
    assert_eq!(code, 0, "freeze:\n{out}\n{err}");
    assert!(!w.server.seen().is_empty());
    let lock = imagelock::lock::LockedImage::read(&w.path("ex/lockfiles/tool.lock")).unwrap();
    let steps: Vec<_> = lock
        .steps
        .iter()
        .filter(|s| s.manager.as_str() == "apk")
        .collect();
    assert_eq!(steps.len(), 2, "{err}");
    assert!(steps.iter().all(|s| s.locked), "{err}\n{:?}", steps);
    let entries = actions(steps[0]);
    // musl stays at the installed 1.2.4-r2 (apk add does not upgrade it);
    // curl and libcurl at the highest version; zlib for `so:libz.so.1`.
    assert_eq!(
        entries,
        [
            "install curl 8.9.1-r0",
            "install libcurl 8.9.1-r0",
            "install zlib 1.3.1-r1"
        ],
        "{err}"
    );
    let curl = &steps[0].apk[0];
    assert_eq!(
        curl.checksum.as_ref().unwrap().as_str(),
        "Q1Y3VybC1uZXctY29udHJvbC1zaGExPQ=="
    );
    assert_eq!(curl.size, Some(1100));
    assert_eq!(
        curl.repository.as_ref().unwrap().as_str(),
        format!("{HOST}/v3.20/main")
    );
    assert_eq!(steps[0].apk_repos.len(), 1);
    assert_eq!(steps[0].apk_repos[0].key.as_str(), KEY);
    let second: Vec<String> = steps[1]
        .apk
        .iter()
        .map(|p| format!("{} {}", p.action, p.name))
        .collect();
    assert_eq!(second, ["virtual .build-deps", "install gcc"], "{err}");

    // The SBOM lists them (no vendor namespace: the fixture's repository
    // is not Alpine's), not the virtual package.
    let (code, out, err) = w.cli(&["export", "tool", "--to", "sbom"]);
    assert_eq!(code, 0, "export:\n{out}\n{err}");
    assert!(
        out.contains("\"pkg:apk/curl@8.9.1-r0?arch=x86_64\"")
            && out.contains("\"pkg:apk/gcc@13.2.1_git20240309-r0?arch=x86_64\"")
            && !out.contains("pkg:apk/.build-deps"),
        "{out}"
    );

    // rewrite pins what apk add installs.
    let (code, out, err) = w.cli(&["rewrite"]);
    assert_eq!(code, 0, "rewrite:\n{out}\n{err}");
    let dockerfile = std::fs::read_to_string(w.path("ex/Dockerfile")).unwrap();
    assert!(
        dockerfile.contains("curl=8.9.1-r0")
            && dockerfile.contains("libcurl=8.9.1-r0")
            && dockerfile.contains("zlib=1.3.1-r1")
            && dockerfile.contains("gcc=13.2.1_git20240309-r0"),
        "{dockerfile}"
    );

    // An image whose apk database equals base + lock passes verify.
    let db_of = |extra: &[(&str, &str)]| {
        let mut db = String::from(MUSL_OLD);
        for (name, version) in extra {
            db.push_str(&format!("\nP:{name}\nV:{version}\nA:x86_64\n"));
        }
        db
    };
    let good = db_of(&[
        ("curl", "8.9.1-r0"),
        ("libcurl", "8.9.1-r0"),
        ("zlib", "1.3.1-r1"),
        ("gcc", "13.2.1_git20240309-r0"),
        (".build-deps", "20261207.222000"),
    ]);
    let built = |name: &str, db: &str| {
        let layout = w.path(&format!("built-{name}"));
        image(
            &layout,
            "built",
            &[
                w.base.clone(),
                layer(&[
                    ("lib/apk/db/installed", db.as_bytes()),
                    ("etc/apk/world", b"musl curl zlib .build-deps\n"),
                ]),
            ],
        );
        format!("oci:{}:built", layout.display())
    };
    let (code, out, err) = w.cli(&["verify", "--image", &built("good", &good)]);
    assert_eq!(code, 0, "verify --image:\n{out}\n{err}");
    assert!(out.contains("5 apk packages"), "{out}");

    // Another curl, no zlib, and a package nobody locked.
    let bad = db_of(&[
        ("curl", "8.5.0-r0"),
        ("libcurl", "8.9.1-r0"),
        ("gcc", "13.2.1_git20240309-r0"),
        (".build-deps", "20261207.222000"),
        ("sneaky", "1.0-r0"),
    ]);
    let (code, out, _) = w.cli(&["verify", "--image", &built("bad", &bad)]);
    assert_eq!(code, 1, "{out}");
    for (name, what) in [
        ("curl", "8.5.0-r0"),
        ("zlib", "image has none"),
        ("sneaky", "not in the lock"),
    ] {
        assert!(
            out.lines().any(|l| l.contains(name) && l.contains(what)),
            "{name} is named with {what}:\n{out}"
        );
    }
}

#[test]
fn an_index_signed_by_another_or_an_unknown_key_is_refused() {
    let Some((w, _, _)) = world("RUN apk add curl") else {
        return;
    };
    let index = w.path("srv/alpine/v3.20/main/x86_64/APKINDEX.tar.gz");
    // Signed by another key under the trusted key's name.
    let (other, _) = keypair(w.tmp.path(), "other");
    std::fs::write(
        &index,
        signed_index(w.tmp.path(), &index_text(), &other, KEY),
    )
    .unwrap();
    let (code, out, err) = w.cli(&["freeze"]);
    assert_ne!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("/etc/apk/repositories:2")
            && err.contains(&format!("key `{KEY}` does not verify")),
        "{err}"
    );
    // Signed by a key the image does not have.
    std::fs::write(
        &index,
        signed_index(w.tmp.path(), &index_text(), &other, "other@x-2.rsa.pub"),
    )
    .unwrap();
    let (code, out, err) = w.cli(&["freeze"]);
    assert_ne!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("`other@x-2.rsa.pub`, which the image does not have"),
        "{err}"
    );
}

#[test]
fn a_tagged_repository_signed_with_sha256_is_used_when_asked_and_install_if_is_not_guessed() {
    let Some((w, private, _)) = world_with(
        "RUN apk add curl@edge\nRUN apk add --virtual .v zlib && apk del .v\nRUN apk add --no-cache lang-a lang-b\nRUN apk add gcc",
        &format!("@edge {HOST}/edge/main\n"),
    ) else {
        return;
    };
    let edge = w.path("srv/alpine/edge/main/x86_64");
    std::fs::create_dir_all(&edge).unwrap();
    let edge_index = [
        "C:Q1ZWRnZS1jdXJsLWNvbnRyb2wtc2hhMT0=\nP:curl\nV:9.0.0-r0\nA:x86_64\nS:1200\nD:libcurl=9.0.0-r0\n",
        "C:Q1ZWRnZS1saWJjdXJsLWNvbnRyb2wxPQ==\nP:libcurl\nV:9.0.0-r0\nA:x86_64\nS:2200\n",
    ]
    .join("\n");
    std::fs::write(
        edge.join("APKINDEX.tar.gz"),
        signed_index_with(w.tmp.path(), &edge_index, &private, KEY, "sha256"),
    )
    .unwrap();
    let (code, out, err) = w.cli(&["freeze"]);
    assert_eq!(code, 0, "freeze:\n{out}\n{err}");
    let lock = imagelock::lock::LockedImage::read(&w.path("ex/lockfiles/tool.lock")).unwrap();
    let steps: Vec<_> = lock
        .steps
        .iter()
        .filter(|s| s.manager.as_str() == "apk")
        .collect();
    assert_eq!(steps.len(), 5, "{err}");
    assert!(steps[0].locked, "{err}");
    let entries: Vec<String> = steps[0]
        .apk
        .iter()
        .map(|p| {
            format!(
                "{} {} {}",
                p.name,
                p.version
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                p.repository
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            )
        })
        .collect();
    // `curl@edge` from the tagged repository, and its dependency with it
    // (the tag is inherited), though main has a libcurl too.
    assert_eq!(
        entries,
        [
            format!("curl 9.0.0-r0 {HOST}/edge/main"),
            format!("libcurl 9.0.0-r0 {HOST}/edge/main"),
        ],
        "{err}"
    );
    assert_eq!(steps[0].apk_repos.len(), 2);
    // A virtual package made and deleted: its removal has no version.
    let made: Vec<String> = steps[1]
        .apk
        .iter()
        .map(|p| format!("{} {}", p.action, p.name))
        .collect();
    assert_eq!(made, ["virtual .v", "install zlib"], "{err}");
    let deleted = actions(steps[2]);
    assert_eq!(deleted, ["remove .v ", "remove zlib 1.3.1-r1"], "{err}");
    // lang-a with lang-b triggers lang-ab's `install_if`, which imagelock
    // does not resolve: the step is not locked, with why.
    assert!(!steps[3].locked);
    let why = steps[3].reason.as_deref().unwrap_or_default();
    assert!(
        why.contains("`lang-ab`") && why.contains("install_if"),
        "{why}"
    );
    assert!(
        err.contains("Dockerfile:4") && err.contains("install_if"),
        "{err}"
    );
    // What apk starts from after it is not known: the next apk step is not
    // locked either, naming it.
    assert!(!steps[4].locked);
    let why = steps[4].reason.as_deref().unwrap_or_default();
    assert!(why.contains("Dockerfile:4"), "{why}");
}

/// The JSON findings of a drift report's one image.
fn drift_findings(out: &str) -> Vec<serde_json::Value> {
    let report: serde_json::Value =
        serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}:\n{out}"));
    report["images"][0]["findings"].as_array().unwrap().clone()
}

/// `kind package locked → latest @at` of each finding, sorted.
fn drift_lines(findings: &[serde_json::Value]) -> Vec<String> {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_string();
    let mut lines: Vec<String> = findings
        .iter()
        .map(|f| {
            format!(
                "{} {} {} {} → {} @{}",
                text(&f["kind"]),
                text(&f["ecosystem"]),
                text(&f["package"]),
                text(&f["locked"]),
                text(&f["latest"]),
                text(&f["at"])
            )
        })
        .collect();
    lines.sort();
    lines
}

#[test]
fn drift_names_newer_gone_moved_and_unreadable_apk_repositories() {
    let Some((w, private, _)) = world("RUN apk add --no-cache curl gcc") else {
        return;
    };
    let start = std::time::Instant::now();
    let (code, out, err) = w.cli(&["freeze"]);
    let freeze_took = start.elapsed();
    assert_eq!(code, 0, "freeze:\n{out}\n{err}");
    let lock = imagelock::lock::LockedImage::read(&w.path("ex/lockfiles/tool.lock")).unwrap();
    let step = lock.steps.iter().find(|s| s.manager.as_str() == "apk");
    let step = step.unwrap_or_else(|| panic!("{err}"));
    assert!(step.locked, "{err}");
    let locked: Vec<String> = step
        .apk
        .iter()
        .map(|p| format!("{}-{}", p.name, p.version.as_ref().unwrap()))
        .collect();
    assert_eq!(
        locked,
        [
            "curl-8.9.1-r0",
            "gcc-13.2.1_git20240309-r0",
            "libcurl-8.9.1-r0",
            "zlib-1.3.1-r1"
        ],
        "{err}"
    );
    let locked_sha = step.apk_repos[0].index_sha256.to_string();

    let start = std::time::Instant::now();
    let (code, out, err) = w.cli(&["drift", "--format", "json", "--fail-on", "any"]);
    let drift_took = start.elapsed();
    assert_eq!(code, 0, "no drift yet:\n{out}\n{err}");
    assert_eq!(
        drift_findings(&out),
        Vec::<serde_json::Value>::new(),
        "{out}"
    );
    eprintln!("apk fixture: freeze {freeze_took:?}, drift (no drift) {drift_took:?}");
    // Offline, the repositories are not read: said, not "no drift".
    let (code, out, err) = w.cli(&["drift", "--offline"]);
    assert_eq!(code, 0, "drift --offline:\n{out}\n{err}");
    assert!(
        err.contains("Dockerfile:2: the apk packages the lock has for this step are not checked")
            && err.contains("--offline"),
        "{out}\n{err}"
    );

    // The repository publishes a newer curl and a rebuilt zlib, and drops
    // the locked zlib build; signed as before.
    let index = w.path("srv/alpine/v3.20/main/x86_64/APKINDEX.tar.gz");
    let publish = |text: &str, key: &Path| {
        std::fs::write(&index, signed_index(w.tmp.path(), text, key, KEY)).unwrap();
    };
    let zlib_old = "C:Q1emxpYi1jb250cm9sLXNoYTEtc3VtMT0=\nP:zlib\nV:1.3.1-r1\nA:x86_64\nS:3000\np:so:libz.so.1=1.3.1\n";
    let zlib_new = "C:Q1emxpYi1yMi1jb250cm9sLXNoYTE9PQ==\nP:zlib\nV:1.3.1-r2\nA:x86_64\nS:3010\np:so:libz.so.1=1.3.1\n";
    let curl_new = "C:Q1Y3VybC04LjEwLWNvbnRyb2wtc2hhMT0=\nP:curl\nV:8.10.0-r0\nA:x86_64\nS:1150\nD:libcurl=8.9.1-r0 so:libc.musl-x86_64.so.1\np:cmd:curl=8.10.0-r0\n";
    assert!(index_text().contains(zlib_old));
    let moved = format!(
        "{}\n{zlib_new}\n{curl_new}",
        index_text().replace(&format!("{zlib_old}\n"), "")
    );
    publish(&moved, &private);
    let (code, out, err) = w.cli(&["drift", "--format", "json", "--fail-on", "gone"]);
    assert_eq!(code, 1, "drift:\n{out}\n{err}");
    if crate::reports::validators() {
        crate::reports::assert_output_schema("drift-report", &out);
    }
    let all = drift_findings(&out);
    assert_eq!(
        drift_lines(&all),
        [
            "gone apk zlib 1.3.1-r1 → - @Dockerfile:2".to_string(),
            format!(
                "moved apk {HOST}/v3.20/main v3.20.3-fixture, APKINDEX sha256 {locked_sha} → v3.20.3-fixture, APKINDEX sha256 {} @Dockerfile:2",
                &sha256(&std::fs::read(&index).unwrap())[7..]
            ),
            "outdated apk curl 8.9.1-r0 → 8.10.0-r0 @Dockerfile:2".to_string(),
            "outdated apk zlib 1.3.1-r1 → 1.3.1-r2 @Dockerfile:2".to_string(),
        ],
        "{out}\n{err}"
    );
    let curl = all.iter().find(|f| f["package"] == "curl").unwrap();
    assert!(
        curl["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("repository `{HOST}/v3.20/main`")),
        "{out}"
    );
    // The same, for people.
    let (code, out, _) = w.cli(&["drift"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.lines().any(|l| l.contains("outdated")
            && l.contains("curl")
            && l.contains("8.9.1-r0 → 8.10.0-r0")),
        "{out}"
    );

    // libcurl rebuilt under the same version: its `C:` is not the lock's.
    let libcurl = "C:Q1bGliY3VybC1uZXctY29udHJvbDE9PQ==\nP:libcurl\nV:8.9.1-r0\n";
    assert!(moved.contains(libcurl));
    let rebuilt = moved.replace(
        libcurl,
        "C:Q1cmVidWlsdC1saWJjdXJsLWNvbnRyb2w=\nP:libcurl\nV:8.9.1-r0\n",
    );
    publish(&rebuilt, &private);
    let (code, out, err) = w.cli(&["drift", "--format", "json", "--fail-on", "hash-mismatch"]);
    assert_eq!(code, 1, "drift:\n{out}\n{err}");
    let all = drift_findings(&out);
    let mismatch: Vec<String> = drift_lines(&all)
        .into_iter()
        .filter(|l| l.starts_with("hash-mismatch"))
        .collect();
    assert_eq!(
        mismatch,
        [
            "hash-mismatch apk libcurl Q1bGliY3VybC1uZXctY29udHJvbDE9PQ== → Q1cmVidWlsdC1saWJjdXJsLWNvbnRyb2w= @Dockerfile:2"
        ],
        "{out}"
    );

    // A second provider of `so:libz.so.1` without `provider_priority`: the
    // step is no longer decided exactly; its packages are still checked.
    let two = format!(
        "{moved}\nC:Q1emxpYi1uZy1jb250cm9sLXNoYTE9PQ==\nP:zlib-ng\nV:2.2.2-r0\nA:x86_64\nS:3100\np:so:libz.so.1=1.3.1\n"
    );
    publish(&two, &private);
    let (code, out, err) = w.cli(&["drift", "--format", "json"]);
    assert_eq!(code, 0, "drift:\n{out}\n{err}");
    let lines = drift_lines(&drift_findings(&out));
    assert!(
        lines.contains(&"outdated apk curl 8.9.1-r0 → 8.10.0-r0 @Dockerfile:2".to_string()),
        "{out}"
    );
    assert!(
        err.contains("Dockerfile:2: freeze would not lock this apk step now")
            && err.contains("`zlib-ng-2.2.2-r0`"),
        "{out}\n{err}"
    );

    // gcc, which the step asks for, leaves: apk could not run the step.
    let gcc = "C:Q1Z2NjLWNvbnRyb2wtc2hhMS1zdW0xMT0=\nP:gcc\nV:13.2.1_git20240309-r0\nA:x86_64\nS:5000\nD:!tcc\n";
    assert!(moved.contains(gcc));
    publish(&moved.replace(&format!("{gcc}\n"), ""), &private);
    let (code, out, err) = w.cli(&["drift", "--format", "json", "--fail-on", "unresolvable"]);
    assert_eq!(code, 1, "drift:\n{out}\n{err}");
    let all = drift_findings(&out);
    let lines = drift_lines(&all);
    assert!(
        lines.contains(&"gone apk gcc 13.2.1_git20240309-r0 → - @Dockerfile:2".to_string())
            && lines.contains(&"outdated apk curl 8.9.1-r0 → 8.10.0-r0 @Dockerfile:2".to_string()),
        "{out}"
    );
    let unresolvable: Vec<_> = all.iter().filter(|f| f["kind"] == "unresolvable").collect();
    assert_eq!(unresolvable.len(), 1, "{out}");
    assert!(
        unresolvable[0]["detail"].as_str().unwrap().contains("gcc"),
        "{out}"
    );

    // Signed by another key under the trusted key's name: refused as
    // freeze refuses it, and named; nothing read from it is reported.
    let (other, _) = keypair(w.tmp.path(), "other");
    publish(&moved, &other);
    let (code, out, err) = w.cli(&["drift", "--format", "json", "--fail-on", "unresolvable"]);
    assert_eq!(code, 1, "drift:\n{out}\n{err}");
    if crate::reports::validators() {
        crate::reports::assert_output_schema("drift-report", &out);
    }
    let all = drift_findings(&out);
    assert_eq!(
        drift_lines(&all),
        [format!(
            "unresolvable apk {HOST}/v3.20/main - → - @Dockerfile:2"
        )],
        "{out}"
    );
    let detail = all[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("/etc/apk/repositories:2")
            && detail.contains(&format!("key `{KEY}` does not verify")),
        "{out}"
    );
    // A repository that is not there any more: named too.
    std::fs::remove_file(&index).unwrap();
    let (code, out, err) = w.cli(&["drift", "--format", "json", "--fail-on", "unresolvable"]);
    assert_eq!(code, 1, "drift:\n{out}\n{err}");
    let all = drift_findings(&out);
    assert_eq!(
        drift_lines(&all),
        [format!(
            "unresolvable apk {HOST}/v3.20/main - → - @Dockerfile:2"
        )],
        "{out}"
    );
    assert!(
        all[0]["detail"].as_str().unwrap().contains("(404)"),
        "{out}"
    );
}

//! apt steps locked end to end, on real parts: the test world's
//! debootstrapped Debian 12 base, its apt sources pointed at the signed
//! repository of real `.deb` files served on 127.0.0.1, pushed to the
//! tests' registry; `freeze` resolves the Dockerfile's `apt-get install`
//! from the base's own dpkg status, sources and keyring; `rewrite` pins
//! every package; `buildah bud` builds the pinned file (apt-get inside the
//! build talks to the same repository); `verify --image` accepts the image,
//! and `dpkg-query -W` inside it equals the base plus the lock. An image
//! with one locked package missing and one extra is refused, naming both.
//!
//! Needs `tests/e2e/prepare.py` (the Debian root) and `tests/apt/prepare.py`
//! (the repository), like the other build and apt tests.

use std::collections::BTreeSet;

use crate::common::buildah::{Buildah, prepared};
use crate::common::http::StaticServer;
use crate::common::registry::{AuthKind, server};
use crate::common::{self, imagelock, repo_root, run};

/// `name version arch` lines of `dpkg-query -W` inside `image`.
fn dpkg_query(buildah: &Buildah, image: &str) -> BTreeSet<String> {
    let c = buildah.ok(&["from", "--pull-never", image]);
    let out = buildah.ok(&[
        "run",
        c.trim(),
        "--",
        "dpkg-query",
        "-W",
        "-f",
        "${Package} ${Version} ${Architecture}\\n",
    ]);
    buildah.ok(&["rm", c.trim()]);
    out.lines().map(str::to_string).collect()
}

#[test]
fn apt_steps_freeze_rewrite_build_and_verify() {
    let Some(e2e) = prepared() else { return };
    let fixture = repo_root().join("target/apt-fixture");
    if !fixture.join("repo/dists/stable/InRelease").is_file() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the apt build test needs `python3 tests/apt/prepare.py` first"
        );
        eprintln!("skipping: run `python3 tests/apt/prepare.py` to prepare the apt repository");
        return;
    }
    if !(common::require_tool("buildah", "apt-get install -y buildah")
        && common::require_tool("skopeo", "apt-get install -y skopeo"))
    {
        return;
    }
    let Some(registry) = server(AuthKind::Open) else {
        return;
    };
    let tmp = common::tempdir();
    let path = |rel: &str| tmp.path().join(rel);
    let repo = StaticServer::start(fixture.join("repo"));
    let repo_url = repo.url();

    let mirror = format!("{}/apt-e2e", registry.addr);
    std::fs::write(
        path("registries.conf"),
        format!(
            "unqualified-search-registries = [\"docker.io\"]\nshort-name-mode = \"permissive\"\n\
             [[registry]]\nprefix = \"docker.io\"\nlocation = \"{mirror}\"\ninsecure = true\n"
        ),
    )
    .unwrap();
    let buildah = Buildah::new(path("buildah"), path("registries.conf"));

    // debian:bookworm: the debootstrapped root, its sources replaced by the
    // local repository and the key that signed it, as a site mirror would.
    buildah.debian_base(
        &e2e,
        "localhost/apt-e2e-root",
        &["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
    );
    std::fs::create_dir_all(path("base")).unwrap();
    std::fs::copy(fixture.join("keys/rsa.gpg"), path("base/test.gpg")).unwrap();
    std::fs::write(
        path("base/test.sources"),
        format!(
            "Types: deb\nURIs: {repo_url}\nSuites: stable\nComponents: main\n\
             Signed-By: /usr/share/keyrings/imagelock-test.gpg\n"
        ),
    )
    .unwrap();
    std::fs::write(
        path("base/Dockerfile"),
        "FROM localhost/apt-e2e-root\n\
         COPY test.gpg /usr/share/keyrings/imagelock-test.gpg\n\
         COPY test.sources /etc/apt/sources.list.d/test.sources\n\
         RUN rm /etc/apt/sources.list\n",
    )
    .unwrap();
    buildah.bud(&path("base"), "localhost/apt-e2e-base", &[]);
    buildah.ok(&[
        "push",
        "-q",
        "--tls-verify=false",
        "localhost/apt-e2e-base",
        &format!("docker://{mirror}/library/debian:bookworm"),
    ]);
    let base_packages = dpkg_query(&buildah, "localhost/apt-e2e-base");

    let ex = path("image");
    std::fs::create_dir_all(&ex).unwrap();
    std::fs::write(
        ex.join("Dockerfile"),
        "FROM debian:bookworm\n\
         RUN apt-get update \\\n && apt-get install -y --no-install-recommends hello netbase\n",
    )
    .unwrap();
    std::fs::write(
        ex.join("imagelock.toml"),
        format!(
            "lock-dir = \"lockfiles\"\nplatforms = [\"linux/amd64\"]\n\n\
             [images.tool]\nfile = \"Dockerfile\"\n\n\
             [registries.\"docker.io\"]\nlocation = \"{mirror}\"\n"
        ),
    )
    .unwrap();
    let cli = |args: &[&str]| {
        let mut cmd = imagelock();
        cmd.current_dir(&ex)
            .env("XDG_CACHE_HOME", path("cache"))
            .args(args);
        run(&mut cmd)
    };

    let (code, out, err) = cli(&["freeze"]);
    assert_eq!(code, 0, "freeze failed:\n{out}\n{err}");
    assert!(!err.contains("not locked"), "{err}");
    let lock_path = ex.join("lockfiles/tool.lock");
    let lock = imagelock::lock::LockedImage::read(&lock_path).unwrap();
    let step = lock
        .steps
        .iter()
        .find(|s| s.manager == "apt-get")
        .expect("the apt step is in the lock");
    assert!(step.locked);
    assert_eq!(step.apt_sources.len(), 1, "{:?}", step.apt_sources);
    assert_eq!(step.apt_sources[0].suite, "stable");
    let locked: Vec<(String, String, String)> = lock
        .final_apt("linux/amd64")
        .into_iter()
        .map(|(_, p)| {
            (
                p.name.to_string(),
                p.version.to_string(),
                p.architecture.to_string(),
            )
        })
        .collect();
    let names: Vec<&str> = locked.iter().map(|(n, _, _)| n.as_str()).collect();
    assert!(
        names.contains(&"hello") && names.contains(&"netbase"),
        "{locked:?}"
    );
    // Each .deb as the lock names it is the file the repository serves.
    for (_, p) in lock.final_apt("linux/amd64") {
        let deb = std::fs::read(fixture.join("repo").join(p.filename.as_deref().unwrap())).unwrap();
        assert_eq!(
            p.sha256.as_deref().unwrap(),
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&deb))
        );
    }

    let (code, out, err) = cli(&["rewrite"]);
    assert_eq!(code, 0, "rewrite failed:\n{out}\n{err}");
    let dockerfile = std::fs::read_to_string(ex.join("Dockerfile")).unwrap();
    for (n, v, _) in &locked {
        assert!(dockerfile.contains(&format!("{n}={v}")), "{dockerfile}");
    }
    let (code, out, err) = cli(&["verify"]);
    assert_eq!(code, 0, "verify after rewrite:\n{out}\n{err}");

    buildah.bud(&ex, "localhost/apt-e2e-tool", &[]);
    let built = buildah.to_layout("localhost/apt-e2e-tool", &path("oci/tool"));
    let (code, out, err) = cli(&["verify", "--image", &built]);
    assert_eq!(code, 0, "verify --image:\n{out}\n{err}");
    assert!(
        out.contains(&format!("{} apt package", locked.len())),
        "{out}"
    );

    // Ground truth: dpkg inside the image has the base plus the lock.
    let image_packages = dpkg_query(&buildah, "localhost/apt-e2e-tool");
    let added: BTreeSet<String> = image_packages.difference(&base_packages).cloned().collect();
    let expected: BTreeSet<String> = locked
        .iter()
        .map(|(n, v, a)| format!("{n} {v} {a}"))
        .filter(|l| !base_packages.contains(l))
        .collect();
    assert_eq!(
        added, expected,
        "dpkg-query -W in the image equals the lock"
    );
    for (n, v, a) in &locked {
        assert!(image_packages.contains(&format!("{n} {v} {a}")), "{n}");
    }

    // One locked package missing, one package nobody locked.
    std::fs::create_dir_all(path("tampered")).unwrap();
    std::fs::write(
        path("tampered/Dockerfile"),
        "FROM localhost/apt-e2e-tool\n\
         RUN dpkg --purge hello && apt-get update && apt-get install -y --no-install-recommends sensible-utils\n",
    )
    .unwrap();
    buildah.bud(&path("tampered"), "localhost/apt-e2e-tampered", &[]);
    let tampered = buildah.to_layout("localhost/apt-e2e-tampered", &path("oci/tampered"));
    let (code, out, _) = cli(&["verify", "--image", &tampered]);
    assert_eq!(code, 1, "{out}");
    let hello = locked.iter().find(|(n, _, _)| n == "hello").unwrap();
    assert!(
        out.lines().any(|l| l.contains(&format!(
            "hello: lock has {} ({}) (step Dockerfile:",
            hello.1, hello.2
        )) && l.ends_with("image has none")),
        "the missing package is named:\n{out}"
    );
    assert!(
        out.contains("sensible-utils: not in the lock nor in the base"),
        "the extra package is named:\n{out}"
    );
}

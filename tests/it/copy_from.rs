//! `verify --image` checks what `COPY --from=IMAGE` copied against the
//! files of the image the lock pins: images built with buildah from
//! scratch, the copied-from image served by the real registry.

use std::path::Path;

use crate::common::buildah::Buildah;
use crate::common::registry::{AuthKind, server};
use crate::common::{self, imagelock, run};

const DOCKERFILE: &str = "\
FROM scratch AS tools
COPY --from=nvidia/parabricks:4.0 /opt/parabricks/pbrun /pbrun

FROM scratch
COPY --from=nvidia/parabricks:4.0 /opt/parabricks /opt/parabricks
COPY --from=tools /pbrun /usr/local/bin/pbrun
COPY --from=nvidia/parabricks:4.0 /opt/parabricks/lib/*.so /usr/lib/pb/
COPY --from=nvidia/parabricks:4.0 /opt/[p]arabricks/pbrun /usr/bin/pbrun
COPY --from=nvidia/parabricks:4.0 --chmod=755 /opt/parabricks/bin/pbrun /usr/bin/pb-link
";

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// Commits the directory `root` as the root filesystem of a scratch image
/// `tag`.
fn commit_tree(buildah: &Buildah, root: &Path, tag: &str) {
    let c = buildah.ok(&["from", "scratch"]);
    let c = c.trim();
    buildah.ok(&["copy", "-q", c, root.to_str().unwrap(), "/"]);
    buildah.ok(&["config", "--os", "linux", "--arch", "amd64", c]);
    buildah.ok(&["commit", "-q", c, tag]);
}

#[test]
fn verify_checks_files_copied_from_a_locked_image() {
    if !common::require_tool("buildah", "apt-get install -y buildah") {
        return;
    }
    let Some(registry) = server(AuthKind::Open) else {
        return;
    };
    let tmp = common::tempdir();
    let path = |rel: &str| tmp.path().join(rel);
    let mirror = format!("{}/copy-from", registry.addr);
    write(
        &path("registries.conf"),
        format!(
            "unqualified-search-registries = [\"docker.io\"]\nshort-name-mode = \"permissive\"\n\
             [[registry]]\nprefix = \"docker.io\"\nlocation = \"{mirror}\"\ninsecure = true\n"
        )
        .as_bytes(),
    );
    let buildah = Buildah::new(path("buildah"), path("registries.conf"));

    // The vendor image: a tool and its library, pushed by tag.
    write(
        &path("vendor/opt/parabricks/pbrun"),
        b"#!/bin/sh\necho 'pbrun 4.0 (genuine)'\n",
    );
    write(
        &path("vendor/opt/parabricks/lib/libpb.so"),
        b"\x7fELF genuine library",
    );
    // A link to the tool: copied, it is followed to the tool (a link in a
    // copied directory stays a link, compared by its target).
    std::fs::create_dir_all(path("vendor/opt/parabricks/bin")).unwrap();
    std::os::unix::fs::symlink("../pbrun", path("vendor/opt/parabricks/bin/pbrun")).unwrap();
    commit_tree(&buildah, &path("vendor"), "localhost/parabricks");
    buildah.ok(&[
        "push",
        "-q",
        "--tls-verify=false",
        "localhost/parabricks",
        &format!("docker://{mirror}/nvidia/parabricks:4.0"),
    ]);

    let project = path("project");
    write(&project.join("Dockerfile"), DOCKERFILE.as_bytes());
    write(
        &project.join("imagelock.toml"),
        format!(
            "lock-dir = \"lockfiles\"\nplatforms = [\"linux/amd64\"]\n\n\
             [images.pb]\nfile = \"Dockerfile\"\n\n\
             [registries.\"docker.io\"]\nlocation = \"{mirror}\"\n"
        )
        .as_bytes(),
    );
    let cli = |args: &[&str]| {
        let mut cmd = imagelock();
        cmd.current_dir(&project)
            .env("XDG_CACHE_HOME", path("cache"))
            .args(args);
        run(&mut cmd)
    };
    let (code, out, err) = cli(&["freeze"]);
    assert_eq!(code, 0, "freeze:\n{out}\n{err}");

    // The genuine build: every copied file is the locked image's.
    buildah.bud(&project, "localhost/pb-app", &["--tls-verify=false"]);
    let genuine = buildah.to_layout("localhost/pb-app", &path("layouts/genuine"));
    let (code, out, err) = cli(&["verify", "--image", &genuine, "pb"]);
    assert_eq!(code, 0, "the genuine copy passes:\n{out}\n{err}");
    assert!(out.contains("matches its lock"), "{out}");
    assert!(out.contains("5 copied files"), "{out}");
    assert!(
        out.contains("note: Dockerfile:9: `COPY --from=nvidia/parabricks:4.0` sets `--chmod=755` on what it copies; the files are compared by content"),
        "{out}"
    );
    // The copy from a stage and the glob imagelock does not expand are
    // said to be unchecked, with their lines.
    assert!(
        out.contains("note: Dockerfile:6: `COPY --from=tools` copies from stage `tools`"),
        "{out}"
    );
    assert!(
        out.contains("note: Dockerfile:8: `/opt/[p]arabricks/pbrun` of `COPY --from=nvidia/parabricks:4.0` is a pattern imagelock does not expand"),
        "{out}"
    );

    // The same image read in place from buildah's store gives the same
    // answer, the copied files included.
    let stored = |image: &str| {
        format!(
            "containers-storage:[vfs@{}+{}]{image}",
            path("buildah/storage").display(),
            path("buildah/run").display()
        )
    };
    let (code, out, err) = cli(&["verify", "--image", &stored("localhost/pb-app"), "pb"]);
    assert_eq!(
        code, 0,
        "the genuine copy passes in the store:\n{out}\n{err}"
    );
    assert!(out.contains("5 copied files"), "{out}");

    // Markdown for CI says what was not checked under its match too.
    let (code, md, _) = cli(&["verify", "--image", &genuine, "pb", "--format", "markdown"]);
    assert_eq!(code, 0, "{md}");
    assert!(md.contains("✅ matches its lock"), "{md}");
    assert!(
        md.contains("- note (linux/amd64): Dockerfile:6: `COPY --from=tools`"),
        "{md}"
    );

    // The same paths with placeholders, and no library where the directory
    // copy put it.
    write(
        &path("fake/opt/parabricks/pbrun"),
        b"#!/bin/sh\necho placeholder\n",
    );
    write(
        &path("fake/usr/local/bin/pbrun"),
        b"#!/bin/sh\necho placeholder\n",
    );
    write(&path("fake/usr/lib/pb/libpb.so"), b"placeholder");
    write(&path("fake/usr/bin/pb-link"), b"placeholder");
    commit_tree(&buildah, &path("fake"), "localhost/pb-fake");
    let fake = buildah.to_layout("localhost/pb-fake", &path("layouts/fake"));
    let (code, out, err) = cli(&["verify", "--image", &fake, "pb"]);
    assert_ne!(code, 0, "the placeholder is caught:\n{out}\n{err}");
    assert!(!out.contains("matches its lock"), "{out}");
    let pbrun = out
        .lines()
        .find(|l| l.contains("/opt/parabricks/pbrun:"))
        .unwrap_or_else(|| panic!("no finding for pbrun:\n{out}"));
    assert!(pbrun.contains("Dockerfile:5"), "{pbrun}");
    let lib = out
        .lines()
        .find(|l| l.contains("/opt/parabricks/lib/libpb.so:"))
        .unwrap_or_else(|| panic!("no finding for the missing library:\n{out}"));
    assert!(lib.contains("image has no file"), "{lib}");
    let globbed = out
        .lines()
        .find(|l| l.contains("/usr/lib/pb/libpb.so:"))
        .unwrap_or_else(|| panic!("no finding for the globbed copy:\n{out}"));
    assert!(globbed.contains("Dockerfile:7"), "{globbed}");
    let linked = out
        .lines()
        .find(|l| l.contains("/usr/bin/pb-link:"))
        .unwrap_or_else(|| panic!("no finding for the followed link:\n{out}"));
    assert!(linked.contains("Dockerfile:9"), "{linked}");

    let (code, out, _) = cli(&["verify", "--image", &fake, "pb", "--format", "json"]);
    assert_ne!(code, 0);
    assert!(out.contains("\"copy-differs\""), "{out}");
    let (code, out, _) = cli(&["verify", "--image", &stored("localhost/pb-fake"), "pb"]);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("/opt/parabricks/pbrun:") && l.contains("Dockerfile:5")),
        "{out}"
    );
}

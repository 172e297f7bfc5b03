//! One image, one truth through its life: variants of one definition,
//! image names, platforms a lock does not cover (issue 22).

use std::path::Path;

use imagelock::lock::LockedImage;

use crate::common::registry::{AuthKind, LayoutBuilder, RegistryServer, server};
use crate::common::{imagelock, run, tempdir};

fn cli(dir: &Path, args: &[&str]) -> (i32, String, String) {
    run(imagelock()
        .current_dir(dir)
        .env("IMAGELOCK_CACHE_DIR", dir.join("cache"))
        .args(args))
}

/// Pushes one single-platform image per tag of `repo`; returns the
/// manifest digests in order.
fn push_tags(registry: &RegistryServer, dir: &Path, repo: &str, tags: &[&str]) -> Vec<String> {
    let mut digests = Vec::new();
    for tag in tags {
        let mut layout = LayoutBuilder::new(&dir.join(format!("layout-{tag}")));
        let m = layout.manifest("amd64", None, &format!("{repo}:{tag}"));
        layout.tag_manifest(&m, tag);
        registry.push(&layout.dir, tag, &format!("{repo}:{tag}"), false);
        digests.push(m.digest);
    }
    digests
}

fn write(path: &Path, text: &str) {
    fs_err::create_dir_all(path.parent().unwrap()).unwrap();
    fs_err::write(path, text).unwrap();
}

/// `svc/Dockerfile` and `svc/Dockerfile.gpu` are two images, each with its
/// own lock, without any configuration.
#[test]
fn dockerfile_and_dockerfile_gpu_are_two_images() {
    let Some(registry) = server(AuthKind::Open) else {
        return;
    };
    let tmp = tempdir();
    let dir = tmp.path();
    let digests = push_tags(registry, dir, "life/svc-base", &["cpu", "gpu"]);
    write(
        &dir.join("svc/Dockerfile"),
        &format!("FROM {}/life/svc-base:cpu\n", registry.addr),
    );
    write(
        &dir.join("svc/Dockerfile.gpu"),
        &format!("FROM {}/life/svc-base:gpu\n", registry.addr),
    );
    let (code, _, err) = cli(dir, &["freeze", "svc"]);
    assert_eq!(code, 0, "{err}");
    let cpu = LockedImage::read(&dir.join("lockfiles/svc.lock")).unwrap();
    let gpu = LockedImage::read(&dir.join("lockfiles/svc-gpu.lock")).unwrap();
    assert_eq!(cpu.bases[0].digest.to_string(), digests[0]);
    assert_eq!(gpu.bases[0].digest.to_string(), digests[1]);
    let (code, out, err) = cli(dir, &["verify", "svc"]);
    assert_eq!(code, 0, "{out}\n{err}");
}

//! freeze end to end with a conda base: a small rootfs whose /opt/conda
//! prefix was written by py-rattler's installer from a local channel,
//! pushed with skopeo to the distribution registry; a Dockerfile that
//! `mamba install`s from that channel over HTTP and `pip install`s from a
//! local index into the prefix's Python. The real binary freezes it twice.

use std::io::Write as _;
use std::path::Path;
use std::process::Command;

use crate::common::http::StaticServer;
use crate::common::registry::{AuthKind, FaultProxy, server, sha256};
use crate::common::{fixture, require_tool, run};

pub(super) const SCRIPT: &str = include_str!("conda_base.py");

/// Whether py-rattler can run here (fails under CI=true, skips elsewhere).
pub(crate) fn rattler_available() -> bool {
    if !require_tool("python3", "apt-get install -y python3") {
        return false;
    }
    let ok = Command::new("python3")
        .args(["-c", "import rattler"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "py-rattler is required under CI: pip install py-rattler"
        );
        eprintln!("skipping: py-rattler is not installed (pip install py-rattler)");
    }
    ok
}

/// A deterministic gzip tar of `root`: sorted entries, owner 0, time 0.
fn layer(root: &Path) -> (Vec<u8>, String) {
    fn add(tar: &mut tar::Builder<Vec<u8>>, root: &Path, dir: &Path) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let rel = path.strip_prefix(root).unwrap();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let mut header = tar::Header::new_gnu();
            header.set_mtime(0);
            header.set_uid(0);
            header.set_gid(0);
            if meta.file_type().is_symlink() {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                tar.append_link(&mut header, rel, std::fs::read_link(&path).unwrap())
                    .unwrap();
            } else if meta.is_dir() {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                tar.append_data(&mut header, rel, std::io::empty()).unwrap();
                add(tar, root, &path);
            } else {
                use std::os::unix::fs::PermissionsExt as _;
                let bytes = std::fs::read(&path).unwrap();
                header.set_mode(meta.permissions().mode() & 0o777);
                header.set_size(bytes.len() as u64);
                tar.append_data(&mut header, rel, bytes.as_slice()).unwrap();
            }
        }
    }
    let mut tar = tar::Builder::new(Vec::new());
    add(&mut tar, root, root);
    let tar = tar.into_inner().unwrap();
    let diff_id = sha256(&tar);
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    (gz.finish().unwrap(), diff_id)
}

/// Writes a one-platform OCI layout of `root` tagged `tag`; returns the
/// manifest digest.
pub(crate) fn layout(dir: &Path, root: &Path, env: &[&str], tag: &str) -> String {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let blob = |bytes: &[u8]| {
        let digest = sha256(bytes);
        std::fs::write(blobs.join(&digest[7..]), bytes).unwrap();
        (digest, bytes.len())
    };
    let (gz, diff_id) = layer(root);
    let (layer_digest, layer_size) = blob(&gz);
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": env, "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "imagelock test: conda base"}]
    });
    let (config_digest, config_size) = blob(&serde_json::to_vec(&config).unwrap());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer_size}]
    });
    let (digest, size) = blob(&serde_json::to_vec(&manifest).unwrap());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest, "size": size,
            "annotations": {"org.opencontainers.image.ref.name": tag}
        }]
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    digest
}

/// The base rootfs: busybox, os-release, a glibc marker, and /opt/conda as
/// py-rattler installed it from `channel_url`.
pub(super) fn base_rootfs(
    work: &Path,
    channel_dir: &Path,
    channel_url: &str,
) -> std::path::PathBuf {
    let root = work.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(
        root.join("etc/os-release"),
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n",
    )
    .unwrap();
    // What the catalogue reads glibc's version from: the banner in libc.so.6.
    let lib = root.join("lib/x86_64-linux-gnu");
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::write(
        lib.join("libc.so.6"),
        "\x7fELF GNU C Library (Debian GLIBC 2.36-9+deb12u4) stable release version 2.36.\n",
    )
    .unwrap();
    let out = Command::new("python3")
        .arg(work.join("conda_base.py"))
        .arg(channel_dir)
        .arg(channel_url)
        .arg(root.join("opt/conda"))
        .arg(work.join("rattler-cache"))
        .current_dir(work)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "conda_base.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    root
}

#[test]
fn freeze_a_conda_base_from_the_registry_end_to_end() {
    let Some(registry) = server(AuthKind::Open) else {
        return;
    };
    if !require_tool("busybox", "apt-get install -y busybox-static") || !rattler_available() {
        return;
    }
    let work = crate::common::tempdir();
    let w = work.path();
    std::fs::write(w.join("conda_base.py"), SCRIPT).unwrap();
    // The channel is written first, then served, then installed from over
    // HTTP, so the prefix's records name the channel the Dockerfile uses.
    let served = w.join("served");
    std::fs::create_dir_all(served.join("chan")).unwrap();
    let channel_server = StaticServer::start(&served);
    let channel = format!("{}/chan", channel_server.url());
    let root = base_rootfs(w, &served.join("chan"), &channel);
    assert!(
        root.join("opt/conda/conda-meta/tinylib-1.0-h0_0.json")
            .is_file(),
        "py-rattler wrote the prefix's records"
    );
    // A record conda could not have written: freeze cannot read it, and
    // says so (this warning was once dropped on the way to the user).
    std::fs::write(
        root.join("opt/conda/conda-meta/broken-1.0-0.json"),
        r#"{"name": "broken", "version": "1.0", "build": "0", "files": []}"#,
    )
    .unwrap();
    let pushed = layout(
        &w.join("layout"),
        &root,
        &[
            "PATH=/opt/conda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "CONDA_DIR=/opt/conda",
        ],
        "1",
    );
    registry.push(&w.join("layout"), "1", "e2e/condabase:1", false);
    // Registry requests are counted by a proxy in front of it.
    let proxy = FaultProxy::start(&registry.addr);
    let index = StaticServer::start(fixture("world/pypi"));

    let project = w.join("project");
    std::fs::create_dir_all(project.join("app")).unwrap();
    std::fs::write(
        project.join("app/Dockerfile"),
        format!(
            "FROM {}/e2e/condabase:1\nRUN mamba install -y -c {channel} tinyapp\nRUN pip install --no-cache-dir requests\n",
            proxy.addr
        ),
    )
    .unwrap();
    std::fs::write(
        project.join("imagelock.toml"),
        format!(
            "platforms = [\"linux/amd64\"]\n[images.app]\nfile = \"app/Dockerfile\"\n[conda]\nchannels = [\"{channel}\"]\n[pypi]\nindex-url = \"{}/simple\"\n",
            index.url()
        ),
    )
    .unwrap();
    let freeze = || {
        run(crate::common::imagelock()
            .current_dir(&project)
            .env("HOME", &project)
            .env_remove("CONDARC")
            .env_remove("PIP_INDEX_URL")
            .env_remove("PIP_EXTRA_INDEX_URL")
            .env("IMAGELOCK_CACHE_DIR", w.join("cache"))
            .arg("freeze"))
    };
    let (code, _, err) = freeze();
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("/opt/conda/conda-meta/broken-1.0-0.json"),
        "base-image warnings reach the user: {err}"
    );
    let lock_path = project.join("lockfiles/app.lock");
    let text = std::fs::read_to_string(&lock_path).unwrap();
    let lock = imagelock::lock::LockedImage::read(&lock_path).unwrap();

    // The pinned base is the manifest that was pushed.
    assert_eq!(lock.bases[0].digest, pushed.parse().unwrap());
    assert_eq!(lock.bases[0].platforms[0].digest, pushed.parse().unwrap());
    // mamba keeps what the prefix holds: tinylib 1.0 stays although 2.0 is
    // in the channel, so the step installs only tinyapp.
    let conda: Vec<(&str, &str)> = lock.steps[0]
        .conda
        .iter()
        .map(|p| (p.name.as_str(), p.version.as_str()))
        .collect();
    assert_eq!(conda, [("tinyapp", "1.0")], "{text}");
    assert_eq!(lock.steps[0].target.as_deref(), Some("/opt/conda"));
    // pip runs in the prefix's Python and keeps the idna conda installed.
    assert_eq!(lock.steps[1].target.as_deref(), Some("/opt/conda"));
    let pypi: Vec<&str> = lock.steps[1].pypi.iter().map(|p| p.name.as_str()).collect();
    assert!(pypi.contains(&"requests"), "{pypi:?}");
    assert!(
        !pypi.contains(&"idna"),
        "idna is already installed: {pypi:?}"
    );

    let ports = [
        (proxy.addr.clone(), "[REGISTRY]".to_string()),
        (channel_server.url(), "http://[CHANNEL]".to_string()),
        (index.url(), "http://[INDEX]".to_string()),
    ];
    let mut shown = text.clone();
    for (from, to) in &ports {
        shown = shown.replace(from.as_str(), to);
    }
    // The prefix's records name the channel's port, so the base's digests
    // differ from run to run (checked against the push above), and so does
    // the input hash over a Dockerfile that names the ports.
    shown = shown.replace(&pushed, "[BASE-MANIFEST]");
    insta::with_settings!({snapshot_path => "../snapshots", filters => vec![
        (r#"diff-ids = \[[^\]]*\]"#, "diff-ids = [BASE-LAYERS]"),
        (r#"config = "sha256:[0-9a-f]{64}""#, "config = \"[BASE-CONFIG]\""),
        (r#"input-hash = "sha256:[0-9a-f]{64}""#, "input-hash = \"[INPUT-HASH]\""),
        (r#"content-hash = "sha256:[0-9a-f]{64}""#, "content-hash = \"[CONTENT-HASH]\""),
    ]}, {
        insta::assert_snapshot!("conda_base_lock", shown);
    });

    // A second run changes nothing, and asks only conditionally.
    let registry_before = proxy.seen.lock().unwrap().len();
    channel_server.reset();
    index.reset();
    let (code, _, err) = freeze();
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("0 lockfiles changed"), "{err}");
    assert_eq!(std::fs::read_to_string(&lock_path).unwrap(), text);
    assert_eq!(
        proxy.seen.lock().unwrap().len(),
        registry_before,
        "the pinned base is neither resolved nor read again"
    );
    for seen in [channel_server.seen(), index.seen()] {
        assert!(
            seen.iter().all(|s| s.conditional && s.status == 304),
            "a warm run only revalidates: {seen:#?}"
        );
    }
}

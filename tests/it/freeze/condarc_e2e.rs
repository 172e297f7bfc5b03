//! The base image's own conda configuration: a conda base pushed to the
//! distribution registry with `/opt/conda/.condarc` (a channel alias, two
//! channels by name, strict priority) whose installs name no channel; a
//! `.condarc` the Dockerfile `COPY`s to `/root/.condarc`; and the
//! definition's own `conda config --add channels` on top of both.

use std::path::Path;

use super::conda_e2e::{SCRIPT, base_rootfs, layout, rattler_available};
use crate::common::http::StaticServer;
use crate::common::registry::{AuthKind, server, sha256};
use crate::common::{require_tool, run};

/// Writes a linux-64 channel of `packages` (name, version, depends) into
/// `dir`, with an empty noarch subdir: each package is a file whose
/// repodata entry carries its real size and digests.
fn channel(dir: &Path, packages: &[(&str, &str, &[&str])]) {
    let mut entries = serde_json::Map::new();
    for (name, version, depends) in packages {
        let file = format!("{name}-{version}-h0_0.tar.bz2");
        let bytes = format!("{name} {version}\n").into_bytes();
        std::fs::create_dir_all(dir.join("linux-64")).unwrap();
        std::fs::write(dir.join("linux-64").join(&file), &bytes).unwrap();
        entries.insert(
            file,
            serde_json::json!({
                "name": name, "version": version, "build": "h0_0", "build_number": 0,
                "depends": depends, "subdir": "linux-64", "license": "MIT",
                "timestamp": 1_704_067_200_000_u64, "size": bytes.len(),
                "sha256": sha256(&bytes).trim_start_matches("sha256:")
            }),
        );
    }
    for (subdir, packages) in [("linux-64", entries), ("noarch", serde_json::Map::new())] {
        std::fs::create_dir_all(dir.join(subdir)).unwrap();
        let repodata = serde_json::json!({
            "info": {"subdir": subdir}, "packages": packages, "packages.conda": {},
            "repodata_version": 1
        });
        std::fs::write(
            dir.join(subdir).join("repodata.json"),
            serde_json::to_vec(&repodata).unwrap(),
        )
        .unwrap();
    }
}

#[test]
fn the_base_images_condarc_chooses_the_channels_of_its_installs() {
    let Some(registry) = server(AuthKind::Open) else {
        return;
    };
    if !require_tool("busybox", "apt-get install -y busybox-static") || !rattler_available() {
        return;
    }
    let work = crate::common::tempdir();
    let w = work.path();
    std::fs::write(w.join("conda_base.py"), SCRIPT).unwrap();
    let served = w.join("served");
    std::fs::create_dir_all(served.join("chan")).unwrap();
    let server_http = StaticServer::start(&served);
    let alias = server_http.url();
    let root = base_rootfs(w, &served.join("chan"), &format!("{alias}/chan"));
    // `samtools` is in `bio` (1.20) and in `chan` (1.21): strict priority
    // takes bio's. `bamtools` only the copied `.condarc`'s channel has;
    // `toptool` only the channel `conda config` adds.
    channel(
        &served.join("bio"),
        &[("samtools", "1.20", &["tinylib >=1"])],
    );
    let mut chan_repodata: serde_json::Value =
        serde_json::from_slice(&std::fs::read(served.join("chan/linux-64/repodata.json")).unwrap())
            .unwrap();
    let extra = w.join("extra-chan");
    channel(&extra, &[("samtools", "1.21", &[])]);
    let extra_repodata: serde_json::Value =
        serde_json::from_slice(&std::fs::read(extra.join("linux-64/repodata.json")).unwrap())
            .unwrap();
    for (k, v) in extra_repodata["packages"].as_object().unwrap() {
        std::fs::copy(
            extra.join("linux-64").join(k),
            served.join("chan/linux-64").join(k),
        )
        .unwrap();
        chan_repodata["packages"][k] = v.clone();
    }
    std::fs::write(
        served.join("chan/linux-64/repodata.json"),
        serde_json::to_vec(&chan_repodata).unwrap(),
    )
    .unwrap();
    channel(&served.join("copied"), &[("bamtools", "2.5", &[])]);
    channel(&served.join("top"), &[("toptool", "0.3", &[])]);

    std::fs::write(
        root.join("opt/conda/.condarc"),
        format!("channel_alias: {alias}\nchannels:\n  - bio\n  - chan\nchannel_priority: strict\n"),
    )
    .unwrap();
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    layout(
        &w.join("layout"),
        &root,
        &[
            "PATH=/opt/conda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "CONDA_DIR=/opt/conda",
        ],
        "1",
    );
    registry.push(&w.join("layout"), "1", "e2e/condarcbase:1", false);

    let project = w.join("project");
    std::fs::create_dir_all(project.join("app")).unwrap();
    std::fs::write(project.join("app/.condarc"), "channels: [copied]\n").unwrap();
    std::fs::write(
        project.join("app/Dockerfile"),
        format!(
            "FROM {}/e2e/condarcbase:1\n\
             RUN mamba install -y samtools\n\
             COPY .condarc /root/.condarc\n\
             RUN mamba install -y bamtools\n\
             RUN conda config --add channels top && mamba install -y toptool\n",
            registry.addr
        ),
    )
    .unwrap();
    // No channel in imagelock.toml, and a host with no `.condarc`: what is
    // found comes from the image.
    std::fs::write(
        project.join("imagelock.toml"),
        "platforms = [\"linux/amd64\"]\n[images.app]\nfile = \"app/Dockerfile\"\n",
    )
    .unwrap();
    let (code, _, err) = run(crate::common::imagelock()
        .current_dir(&project)
        .env("HOME", &project)
        .env_remove("CONDARC")
        .env_remove("CONDA_CHANNELS")
        .env_remove("CONDA_CHANNEL_PRIORITY")
        .env("IMAGELOCK_CACHE_DIR", w.join("cache"))
        .arg("freeze"));
    assert_eq!(code, 0, "{err}");
    let lock_path = project.join("lockfiles/app.lock");
    let text = std::fs::read_to_string(&lock_path).unwrap();
    let lock = imagelock::lock::LockedImage::read(&lock_path).unwrap();
    let channels = |i: usize| -> Vec<String> {
        lock.steps[i]
            .channels
            .iter()
            .map(|c| c.to_string().replace(&alias, "[ALIAS]"))
            .collect()
    };
    let packages = |i: usize| -> Vec<(String, String, String)> {
        lock.steps[i]
            .conda
            .iter()
            .map(|p| {
                (
                    p.name.to_string(),
                    p.version.to_string(),
                    p.channel.to_string().replace(&alias, "[ALIAS]"),
                )
            })
            .collect()
    };
    assert_eq!(channels(0), ["[ALIAS]/bio", "[ALIAS]/chan"], "{text}");
    assert_eq!(
        packages(0),
        [("samtools".into(), "1.20".into(), "[ALIAS]/bio".into())],
        "strict priority from the image's .condarc: {text}"
    );
    assert_eq!(
        channels(1),
        ["[ALIAS]/copied", "[ALIAS]/bio", "[ALIAS]/chan"],
        "the copied ~/.condarc merges above /opt/conda/.condarc: {text}"
    );
    assert_eq!(
        packages(1),
        [("bamtools".into(), "2.5".into(), "[ALIAS]/copied".into())]
    );
    assert_eq!(
        channels(2),
        [
            "[ALIAS]/top",
            "[ALIAS]/copied",
            "[ALIAS]/bio",
            "[ALIAS]/chan"
        ],
        "conda config goes on top: {text}"
    );
    assert_eq!(
        packages(2),
        [("toptool".into(), "0.3".into(), "[ALIAS]/top".into())]
    );
}

/// The base prefix's `conda-meta/pinned` holds `tinylib 1.*`: asking for
/// tinylib 2 fails as mamba fails, with a hint naming the pin; a `COPY`
/// that replaces the pins before the step lets it through.
#[test]
fn the_base_prefixs_pinned_file_constrains_its_installs() {
    let Some(registry) = server(AuthKind::Open) else {
        return;
    };
    if !require_tool("busybox", "apt-get install -y busybox-static") || !rattler_available() {
        return;
    }
    let work = crate::common::tempdir();
    let w = work.path();
    std::fs::write(w.join("conda_base.py"), SCRIPT).unwrap();
    let served = w.join("served");
    std::fs::create_dir_all(served.join("chan")).unwrap();
    let server_http = StaticServer::start(&served);
    let channel = format!("{}/chan", server_http.url());
    let root = base_rootfs(w, &served.join("chan"), &channel);
    std::fs::write(
        root.join("opt/conda/conda-meta/pinned"),
        "# kept at the 1.x API\ntinylib 1.*\n",
    )
    .unwrap();
    layout(
        &w.join("layout"),
        &root,
        &[
            "PATH=/opt/conda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "CONDA_DIR=/opt/conda",
        ],
        "1",
    );
    registry.push(&w.join("layout"), "1", "e2e/pinnedbase:1", false);

    let freeze = |name: &str, dockerfile: &str| {
        let project = w.join(name);
        std::fs::create_dir_all(project.join("app")).unwrap();
        std::fs::write(project.join("app/pinned"), "# no pins\n").unwrap();
        std::fs::write(
            project.join("app/Dockerfile"),
            format!("FROM {}/e2e/pinnedbase:1\n{dockerfile}", registry.addr),
        )
        .unwrap();
        std::fs::write(
            project.join("imagelock.toml"),
            format!(
                "platforms = [\"linux/amd64\"]\n[images.app]\nfile = \"app/Dockerfile\"\n[conda]\nchannels = [\"{channel}\"]\nadd-pip-as-python-dependency = false\n"
            ),
        )
        .unwrap();
        let (code, _, err) = run(crate::common::imagelock()
            .current_dir(&project)
            .env("HOME", &project)
            .env_remove("CONDARC")
            .env("IMAGELOCK_CACHE_DIR", w.join("cache"))
            .arg("freeze"));
        (project, code, err)
    };

    let (_, code, err) = freeze("pinned", "RUN mamba install -y 'tinylib>=2'\n");
    assert_ne!(code, 0, "the pin holds tinylib at 1.x");
    assert!(err.contains("Dockerfile:2"), "{err}");
    assert!(err.contains("conda-meta/pinned"), "{err}");
    assert!(err.contains("tinylib 1.*"), "{err}");

    let (project, code, err) = freeze(
        "copied",
        "COPY pinned /opt/conda/conda-meta/pinned\nRUN mamba install -y 'tinylib>=2'\n",
    );
    assert_eq!(code, 0, "{err}");
    let lock = imagelock::lock::LockedImage::read(&project.join("lockfiles/app.lock")).unwrap();
    let conda: Vec<(&str, &str)> = lock.steps[0]
        .conda
        .iter()
        .map(|p| (p.name.as_str(), p.version.as_str()))
        .collect();
    assert_eq!(conda, [("tinylib", "2.0")]);
}

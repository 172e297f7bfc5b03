//! `imagelock.toml`: every key accepted, every mistake located.

use std::path::Path;

use imagelock::config::{AcceptUnlocked, ChannelPriority, Config, PullFromMirror};

use crate::common::{fixture, imagelock, repo_root, run};

#[test]
fn every_key_is_read() {
    let c = Config::load(&fixture("config/full.toml")).unwrap();
    let root = fixture("config");
    assert_eq!(c.lock_dir, root.join("locks"));
    assert_eq!(c.cache_dir, root.join(".cache/imagelock"));
    let driver = &c.images[0];
    assert_eq!(driver.name, "driver");
    assert_eq!(driver.file, root.join("driver/Dockerfile"));
    assert_eq!(driver.platforms, ["linux/amd64"]);
    assert_eq!(driver.build_args["PYTHON_VERSION"], "3.11");
    assert_eq!(driver.overrides.glibc.as_deref(), Some("2.36"));
    assert_eq!(
        driver.reference.as_deref(),
        Some("ghcr.io/example-lab/driver")
    );
    assert_eq!(c.conda.channel_priority, Some(ChannelPriority::Flexible));
    assert_eq!(c.pypi.extra_index_urls.len(), 1);
    assert_eq!(
        c.registries["docker.io"].mirrors[0].pull_from_mirror,
        PullFromMirror::DigestOnly
    );
    assert!(c.registries["localhost:5000"].insecure);
    assert_eq!(c.limits.max_decompression_ratio, Some(1000));
    assert_eq!(c.limits.max_collected_text, Some(256 << 20));
    assert_eq!(c.limits.max_archive_size, Some(16 << 30));
    assert_eq!(
        c.pypi.keyring_provider,
        Some(imagelock::config::KeyringProvider::Subprocess)
    );
    assert_eq!(c.network.timeout, Some(60));
    assert_eq!(
        c.apt.mirrors["http://deb.debian.org/debian"],
        "https://apt-mirror.example.org/debian"
    );
    assert_eq!(
        c.steps.wrappers["rapids-mamba-retry"],
        imagelock::config::WrappedManager::Mamba
    );
    assert_eq!(driver.wrappers, c.steps.wrappers);
    // The image's own entries, then the top-level ones.
    assert_eq!(
        driver.accept_unlocked,
        [
            AcceptUnlocked::Line(30),
            AcceptUnlocked::Pattern("curl * | bash*".into()),
            AcceptUnlocked::Pattern("apt-get install *".into()),
        ]
    );
}

#[test]
fn a_zero_network_timeout_is_refused_where_it_is_written() {
    let text = "[network]\ntimeout = 0\n";
    let err = Config::parse(Path::new("imagelock.toml"), text).unwrap_err();
    let d = err.diagnostic().expect("located");
    assert_eq!(d.message, "`[network] timeout` is `0`");
    assert!(
        d.hint
            .as_deref()
            .unwrap_or_default()
            .contains("timeout = 60")
    );
}

/// Each file in `fixtures/bad/config/` fails with a located message.
#[test]
fn bad_configs_fail_with_located_messages() {
    let dir = fixture("bad/config");
    let files = crate::common::sorted_files(&dir);
    assert!(files.len() >= 8);
    for file in files {
        let rel = file.strip_prefix(repo_root()).unwrap();
        let (code, out, err) = run(imagelock()
            .current_dir(repo_root())
            .arg("--config")
            .arg(rel)
            .arg("graph"));
        assert_eq!(code, 2, "{}: {err}", rel.display());
        assert!(out.is_empty());
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        insta::assert_snapshot!(format!("bad_config_{name}"), err);
    }
}

#[test]
fn no_config_and_no_paths_says_what_to_do() {
    let dir = crate::common::tempdir();
    let (code, _, err) = run(imagelock().current_dir(dir.path()).arg("freeze"));
    assert_eq!(code, 2);
    assert!(err.contains("no `imagelock.toml`"), "{err}");
    assert!(err.contains("hint:"), "{err}");
    let _ = Path::new("");
}

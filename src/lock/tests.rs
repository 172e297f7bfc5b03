use std::path::Path;

use super::*;

/// A lock with every kind of entry, built in a scrambled order.
pub(crate) fn sample() -> LockedImage {
    let pypi = |name: &str, platforms: &[&str]| PypiPackage {
        name: name.parse().unwrap(),
        version: Some("1.0".parse().unwrap()),
        requested: (name == "pandas").then(|| "pandas>=2.0".into()),
        file: Some(format!("{name}-1.0-py3-none-any.whl").parse().unwrap()),
        url: format!("https://files.example.org/{name}-1.0-py3-none-any.whl")
            .parse()
            .unwrap(),
        sha256: Some("ab".repeat(32).parse().unwrap()),
        source: PypiSource::Index,
        revision: None,
        commit: None,
        required_by: Vec::new(),
        platforms: platforms.iter().map(|p| p.parse().unwrap()).collect(),
    };
    LockedImage {
        version: LOCK_VERSION,
        image: ImageMeta {
            name: "driver".parse().unwrap(),
            definition: "driver/Dockerfile".parse().unwrap(),
            input_hash: format!("sha256:{}", "0".repeat(64)).parse().unwrap(),
            content_hash: None,
            platforms: vec!["linux/arm64".parse().unwrap(), "linux/amd64".parse().unwrap()],
        },
        stages: vec![LockedStage {
            index: 0,
            name: None,
            base: "python:3.11-slim".parse().unwrap(),
            base_name: Some("docker.io/library/python:3.11-slim".parse().unwrap()),
            downloads: Vec::new(),
            git: Vec::new(),
        }],
        bases: vec![LockedBase {
            name: "docker.io/library/python:3.11-slim".parse().unwrap(),
            references: vec!["python:3.11-slim".parse().unwrap()],
            digest: format!("sha256:{}", "1".repeat(64)).parse().unwrap(),
            media_type: "application/vnd.oci.image.index.v1+json".parse().unwrap(),
            built_from: None,
            agent: None,
            pinned: None,
            platforms: vec![
                LockedPlatformImage {
                    platform: "linux/arm64/v8".parse().unwrap(),
                    digest: format!("sha256:{}", "3".repeat(64)).parse().unwrap(),
                    config: format!("sha256:{}", "5".repeat(64)).parse().unwrap(),
                    diff_ids: vec![format!("sha256:{}", "6".repeat(64)).parse().unwrap()],
                },
                LockedPlatformImage {
                    platform: "linux/amd64".parse().unwrap(),
                    digest: format!("sha256:{}", "2".repeat(64)).parse().unwrap(),
                    config: format!("sha256:{}", "4".repeat(64)).parse().unwrap(),
                    diff_ids: vec![
                        format!("sha256:{}", "7".repeat(64)).parse().unwrap(),
                        format!("sha256:{}", "8".repeat(64)).parse().unwrap(),
                    ],
                },
            ],
        }],
        steps: vec![
            LockedStep {
                stage: 0,
                file: "driver/Dockerfile".parse().unwrap(),
                line: 5,
                command: "mamba install -y numpy".into(),
                manager: "mamba".parse().unwrap(),
                action: "install".parse().unwrap(),
                target: Some("/opt/conda".into()),
                requested: vec!["numpy".into()],
                channels: vec!["https://conda.anaconda.org/conda-forge".parse().unwrap()],
                indexes: vec![],
                find_links: vec![],
                locked: true,
                reason: None,
                conda: vec![CondaPackage {
                    name: "numpy".parse().unwrap(),
                    version: "1.26.4".parse().unwrap(),
                    build: "py311h64a7726_0".parse().unwrap(),
                    build_number: 0,
                    channel: "https://conda.anaconda.org/conda-forge".parse().unwrap(),
                    subdir: "linux-64".parse().unwrap(),
                    url: "https://conda.anaconda.org/conda-forge/linux-64/numpy-1.26.4-py311h64a7726_0.conda".parse().unwrap(),
                    sha256: "3f4365e11b28e244c95ba8579942b0802761ba7bb31c026f50d1a9ea9c728149".parse().unwrap(),
                    md5: Some("a502d7aad449a1206efb366d6a12c52d".parse().unwrap()),
                    size: Some(8_065_890),
                    requested: Some("numpy".into()),
                    platforms: vec!["linux/amd64".parse().unwrap()],
                }],
                pypi: vec![],
                apt_sources: vec![],
                apt: vec![],
                rpm_repos: vec![],
                apk_repos: vec![],
                apk: vec![],
                rpm: vec![],
            },
            LockedStep {
                stage: 0,
                file: "driver/Dockerfile".parse().unwrap(),
                line: 9,
                command: "pip install pandas".into(),
                manager: "pip".parse().unwrap(),
                action: "install".parse().unwrap(),
                target: Some("/usr/local/bin/python3".into()),
                requested: vec!["pandas>=2.0".into()],
                channels: vec![],
                indexes: vec!["https://pypi.org/simple".parse().unwrap()],
                find_links: vec![],
                locked: true,
                reason: None,
                conda: vec![],
                pypi: vec![
                    pypi("six", &["linux/arm64", "linux/amd64"]),
                    pypi("pandas", &["linux/amd64"]),
                ],
                apt_sources: vec![],
                apt: vec![],
                rpm_repos: vec![],
                apk_repos: vec![],
                apk: vec![],
                rpm: vec![],
            },
            LockedStep {
                stage: 0,
                file: "driver/Dockerfile".parse().unwrap(),
                line: 3,
                command: "apt-get install -y git".into(),
                manager: "apt-get".parse().unwrap(),
                action: "install".parse().unwrap(),
                target: None,
                requested: vec!["git".into()],
                channels: vec![],
                indexes: vec![],
                find_links: vec![],
                locked: false,
                reason: None,
                conda: vec![],
                pypi: vec![],
                apt_sources: vec![],
                apt: vec![],
                rpm_repos: vec![],
                apk_repos: vec![],
                apk: vec![],
                rpm: vec![],
            },
        ],
    }
}

#[test]
fn writes_readable_sorted_toml() {
    insta::assert_snapshot!(sample().to_toml());
}

#[test]
fn round_trips_byte_for_byte() {
    let text = sample().to_toml();
    let read = LockedImage::from_toml(Path::new("x.lock"), &text).unwrap();
    assert_eq!(read.to_toml(), text);
}

#[test]
fn shuffled_input_gives_identical_output() {
    let a = sample();
    let mut b = sample();
    b.image.platforms.reverse();
    b.bases[0].platforms.reverse();
    b.steps.reverse();
    for s in &mut b.steps {
        s.pypi.reverse();
        for p in &mut s.pypi {
            p.platforms.reverse();
        }
    }
    assert_ne!(a, b);
    assert_eq!(a.to_toml(), b.to_toml());
}

#[test]
fn future_version_is_refused_clearly() {
    let text = sample().to_toml().replace("version = 1", "version = 7");
    let err = LockedImage::from_toml(Path::new("lockfiles/driver.lock"), &text).unwrap_err();
    insta::assert_snapshot!(err.to_string(), @r"
    `lockfiles/driver.lock` is lockfile format version 7, newer than this imagelock reads (1)
    hint: upgrade imagelock, or re-create the lock with `imagelock freeze`
    ");
}

#[test]
fn corrupt_file_names_line_and_column() {
    for (from, to) in [("line = 9", "line = \"nine\""), ("build-number", "bild")] {
        let text = sample().to_toml().replace(from, to);
        let err = LockedImage::from_toml(Path::new("driver.lock"), &text).unwrap_err();
        let d = err.diagnostic().expect("a located error");
        let line_text = text.lines().nth(d.location.line - 1).unwrap();
        assert!(line_text.starts_with(to), "{d}: {line_text}");
    }
}

#[test]
fn missing_version_is_not_a_lockfile() {
    let err = LockedImage::from_toml(Path::new("x.lock"), "[image]\nname = \"x\"\n").unwrap_err();
    assert!(
        err.to_string().contains("not an imagelock lockfile"),
        "{err}"
    );
}

/// The committed JSON Schema is the one the model derives.
#[test]
fn schema_file_is_current() {
    let schema = schemars::schema_for!(LockedImage);
    let mut text = serde_json::to_string_pretty(&schema).unwrap();
    text.push('\n');
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("lockfiles/imagelock.schema.json");
    if std::env::var_os("IMAGELOCK_BLESS").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "lockfiles/imagelock.schema.json is out of date; run `IMAGELOCK_BLESS=1 cargo test --lib schema_file_is_current`"
    );
}

/// Direct URL, VCS and path entries export as PEP 751 `archive`, `vcs`
/// and `directory` sources; requirements keep the URL with its hash.
#[test]
fn direct_entries_export() {
    let mut lock = sample();
    let base = lock.steps[1].pypi[0].clone();
    let direct = |name: &str, source, url: &str| PypiPackage {
        name: name.parse().unwrap(),
        source,
        url: url.parse().unwrap(),
        file: None,
        sha256: None,
        version: None,
        requested: None,
        ..base.clone()
    };
    let mut wheel = direct(
        "demo",
        PypiSource::Url,
        "https://x.org/demo-1.0-py3-none-any.whl",
    );
    wheel.version = Some("1.0".parse().unwrap());
    wheel.file = Some("demo-1.0-py3-none-any.whl".parse().unwrap());
    wheel.sha256 = Some("cd".repeat(32).parse().unwrap());
    let mut vcs = direct(
        "tool",
        PypiSource::Vcs,
        "git+https://x.org/o/tool#subdirectory=py",
    );
    vcs.revision = Some("v1".parse().unwrap());
    vcs.commit = Some("ab".repeat(20).parse().unwrap());
    let dir = direct("local", PypiSource::Path, "./src");
    lock.steps[1].pypi = vec![wheel.clone()];
    let platform = lock.image.platforms[0].to_string();
    let req = lock.to_requirements(&platform).unwrap();
    assert!(
        req.contains(&format!(
            "demo @ https://x.org/demo-1.0-py3-none-any.whl \\\n    --hash=sha256:{}",
            "cd".repeat(32)
        )),
        "{req}"
    );
    lock.steps[1].pypi = vec![wheel, vcs.clone(), dir];
    let pylock = lock.to_pylock(None).unwrap();
    insta::assert_snapshot!(pylock);
    assert!(lock.to_requirements(&platform).is_err());
    vcs.commit = None;
    lock.steps[1].pypi = vec![vcs];
    assert!(matches!(
        lock.to_pylock(None),
        Err(ExportError::NoCommit { .. })
    ));
}

#[test]
fn snapshot_uris_are_given_for_debian_and_ubuntu_archives_only() {
    let ts = "20250102T030405Z";
    for (uri, want) in [
        (
            "http://deb.debian.org/debian",
            Some("http://snapshot.debian.org/archive/debian/20250102T030405Z/"),
        ),
        (
            "http://deb.debian.org/debian-security/",
            Some("http://snapshot.debian.org/archive/debian-security/20250102T030405Z/"),
        ),
        (
            "http://security.debian.org",
            Some("http://snapshot.debian.org/archive/debian-security/20250102T030405Z/"),
        ),
        (
            "https://ftp.de.debian.org/debian/",
            Some("http://snapshot.debian.org/archive/debian/20250102T030405Z/"),
        ),
        (
            "http://archive.ubuntu.com/ubuntu",
            Some("http://snapshot.ubuntu.com/ubuntu/20250102T030405Z/"),
        ),
        (
            "http://security.ubuntu.com/ubuntu/",
            Some("http://snapshot.ubuntu.com/ubuntu/20250102T030405Z/"),
        ),
        ("http://ports.ubuntu.com/ubuntu-ports", None),
        ("https://download.docker.com/linux/debian", None),
        ("http://deb.debian.org/debian-ports", None),
        ("file:///srv/debian", None),
    ] {
        assert_eq!(crate::lock::snapshot_uri(uri, ts).as_deref(), want, "{uri}");
    }
}

#[test]
fn only_the_agents_reading_this_machine_are_local() {
    let mut base = sample().bases.remove(0);
    assert!(!base.is_local(), "a registry image");
    for (agent, local) in [
        ("docker-daemon", true),
        ("docker-archive", true),
        ("oci-archive", true),
        ("oci", true),
        ("localimage", true),
        ("oras", false),
        ("library", false),
    ] {
        base.agent = Some(agent.parse().unwrap());
        assert_eq!(base.is_local(), local, "{agent}");
    }
}

//! The registry client against the real distribution registry.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use imagelock::config::{MirrorConfig, PullFromMirror, RegistryConfig};
use imagelock::oci::{ImageLocation, ImageRef, Platform};
use imagelock::resolve::auth::{CredentialStore, Credentials, Secret};
use imagelock::resolve::http::HttpOptions;
use imagelock::resolve::{Registry, RegistryOptions, ResolveError};

use crate::common::registry::{
    AuthKind, BuiltManifest, Fault, FaultProxy, LayoutBuilder, PASSWORD, RegistryServer,
    StorageHost, USER, server, sha256,
};

/// Images pushed once per server.
struct Pushed {
    layout: std::path::PathBuf,
    multi_index: String,
    children: Vec<BuiltManifest>,
    _dir: tempfile::TempDir,
}

fn platforms(list: &[&str]) -> Vec<Platform> {
    list.iter().map(|p| p.parse().unwrap()).collect()
}

/// Pushes: `multi:1` (index: amd64, arm64/v8, arm/v7 + attestation),
/// `single:oci` (OCI manifest), `single:v2` (Docker v2 manifest),
/// `other/app:1` (a second repository).
fn pushed(kind: AuthKind) -> Option<(&'static RegistryServer, &'static Pushed)> {
    static CELLS: OnceLock<[OnceLock<Pushed>; 3]> = OnceLock::new();
    let server = server(kind)?;
    let cells = CELLS.get_or_init(Default::default);
    let cell = &cells[kind as usize];
    let p = cell.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let layout = dir.path().join("layout");
        let mut b = LayoutBuilder::new(&layout);
        let children = vec![
            b.manifest("amd64", None, "multi-amd64"),
            b.manifest("arm64", Some("v8"), "multi-arm64"),
            b.manifest("arm", Some("v7"), "multi-armv7"),
        ];
        let multi_index = b.tag_index(&children, "multi");
        let single = b.manifest("amd64", None, "single");
        b.tag_manifest(&single, "single");
        server.push(&layout, "multi", "multi:1", false);
        server.push(&layout, "single", "single:oci", false);
        server.push(&layout, "single", "single:v2", true);
        server.push(&layout, "multi", "other/app:1", false);
        Pushed {
            layout,
            multi_index,
            children,
            _dir: dir,
        }
    });
    Some((server, p))
}

fn anonymous() -> RegistryOptions {
    RegistryOptions {
        credentials: CredentialStore::empty(),
        http: HttpOptions {
            backoff: Duration::from_millis(50),
            ..HttpOptions::default()
        },
        ..RegistryOptions::default()
    }
}

fn with_login(registry: &str) -> RegistryOptions {
    // Credentials come from a real Docker config file, as users keep them.
    let dir = tempfile::tempdir().unwrap().keep();
    let path = dir.join("config.json");
    let auth = base64_encode(&format!("{USER}:{PASSWORD}"));
    std::fs::write(
        &path,
        format!(r#"{{"auths":{{"{registry}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    let mut options = anonymous();
    options.credentials = CredentialStore::empty().with_docker_config(&path);
    options
}

fn base64_encode(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn image(server_addr: &str, repo_tag: &str) -> ImageRef {
    ImageRef::parse(&format!("{server_addr}/{repo_tag}")).unwrap()
}

/// What skopeo reports for an image: top digest, and per platform the
/// manifest digest, config digest and diff_ids.
fn skopeo_view(
    server: &RegistryServer,
    repo_tag: &str,
    wanted: &[&str],
) -> (String, Vec<(String, String, Vec<String>)>) {
    let raw = server.skopeo_inspect(repo_tag, &["--raw"]);
    let top = sha256(&raw);
    let json: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    let mut per = Vec::new();
    for p in wanted {
        let parts: Vec<&str> = p.split('/').collect();
        let mut extra = vec!["--override-os", parts[0], "--override-arch", parts[1]];
        if let Some(v) = parts.get(2) {
            extra.extend(["--override-variant", v]);
        }
        let manifest_digest = if json.get("manifests").is_some() {
            let raw_child = server.skopeo_inspect(repo_tag, &[&extra[..], &["--raw"]].concat());
            // `--raw` returns the index itself; find the child by platform.
            let index: serde_json::Value = serde_json::from_slice(&raw_child).unwrap();
            index["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| {
                    m["platform"]["architecture"] == parts[1]
                        && parts.get(2).is_none_or(|v| m["platform"]["variant"] == *v)
                })
                .unwrap()["digest"]
                .as_str()
                .unwrap()
                .to_string()
        } else {
            top.clone()
        };
        let config_raw =
            server.skopeo_inspect(repo_tag, &[&extra[..], &["--config", "--raw"]].concat());
        let config: serde_json::Value = serde_json::from_slice(&config_raw).unwrap();
        let diff_ids = config["rootfs"]["diff_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap().to_string())
            .collect();
        per.push((manifest_digest, sha256(&config_raw), diff_ids));
    }
    (top, per)
}

#[tokio::test]
async fn multi_arch_index_matches_skopeo() {
    let Some((server, p)) = pushed(AuthKind::Open) else {
        return;
    };
    let registry = Registry::new(anonymous()).unwrap();
    let wanted = ["linux/amd64", "linux/arm64/v8", "linux/arm/v7"];
    let resolved = registry
        .resolve(&image(&server.addr, "multi:1"), &platforms(&wanted))
        .await
        .unwrap();
    let (top, per) = skopeo_view(server, "multi:1", &wanted);
    assert_eq!(resolved.digest.to_string(), top);
    assert_eq!(top, p.multi_index, "skopeo kept the index as built");
    assert_eq!(
        resolved.media_type,
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(resolved.platforms.len(), 3);
    for ((r, (digest, config, diff_ids)), built) in
        resolved.platforms.iter().zip(&per).zip(&p.children)
    {
        assert_eq!(&r.manifest_digest.as_ref().unwrap().to_string(), digest);
        assert_eq!(&r.config_digest.to_string(), config);
        assert_eq!(&r.config_digest.to_string(), &built.config);
        assert_eq!(diff_ids, &built.diff_ids);
        assert_eq!(
            r.config
                .diff_ids
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            *diff_ids
        );
    }
    assert_eq!(resolved.platforms[1].platform.to_string(), "linux/arm64");
    // One request for the index, then one manifest and one config per platform.
    let counts = registry.request_counts();
    assert_eq!((counts.manifests, counts.blobs, counts.tokens), (4, 3, 0));

    let locked =
        imagelock::lock::LockedBase::from_resolved(&resolved, &["multi:1".to_string()]).unwrap();
    assert_eq!(locked.name, format!("{}/multi:1", server.addr));
    assert_eq!(locked.platforms[2].platform.to_string(), "linux/arm/v7");
}

#[tokio::test]
async fn oci_and_docker_v2_manifests_match_skopeo() {
    let Some((server, _)) = pushed(AuthKind::Open) else {
        return;
    };
    let registry = Registry::new(anonymous()).unwrap();
    for (tag, media_type) in [
        ("single:oci", "application/vnd.oci.image.manifest.v1+json"),
        (
            "single:v2",
            "application/vnd.docker.distribution.manifest.v2+json",
        ),
    ] {
        let resolved = registry
            .resolve(&image(&server.addr, tag), &[])
            .await
            .unwrap();
        let (top, per) = skopeo_view(server, tag, &["linux/amd64"]);
        assert_eq!(resolved.digest.to_string(), top, "{tag}");
        assert_eq!(resolved.media_type, media_type);
        assert_eq!(
            resolved.platforms[0].manifest_digest.as_ref(),
            Some(&resolved.digest)
        );
        assert_eq!(resolved.platforms[0].config_digest.to_string(), per[0].1);
        // `skopeo inspect` (not raw) reports the same digest.
        let inspected: serde_json::Value =
            serde_json::from_slice(&server.skopeo_inspect(tag, &[])).unwrap();
        assert_eq!(inspected["Digest"], top.as_str());
    }
    // Resolving by digest needs no tag and checks the bytes.
    let by_digest = ImageRef::parse(&format!(
        "{}/single@{}",
        server.addr,
        sha256(&server.skopeo_inspect("single:oci", &["--raw"]))
    ))
    .unwrap();
    let resolved = registry.resolve(&by_digest, &[]).await.unwrap();
    assert_eq!(Some(&resolved.digest), by_digest.digest());
    let (head, media_type) = registry
        .head_digest(&image(&server.addr, "single:v2"))
        .await
        .unwrap();
    assert_eq!(head.to_string(), skopeo_view(server, "single:v2", &[]).0);
    assert_eq!(
        media_type,
        "application/vnd.docker.distribution.manifest.v2+json"
    );
}

#[tokio::test]
async fn missing_platform_and_missing_image_explain_themselves() {
    let Some((server, _)) = pushed(AuthKind::Open) else {
        return;
    };
    let registry = Registry::new(anonymous()).unwrap();
    let err = registry
        .resolve(
            &image(&server.addr, "multi:1"),
            &platforms(&["linux/s390x"]),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no image for `linux/s390x`") && err.contains("`linux/arm/v7`"),
        "{err}"
    );
    assert!(
        !err.contains("unknown"),
        "attestations are not platforms: {err}"
    );
    let err = registry
        .resolve(&image(&server.addr, "single:nope"), &[])
        .await
        .unwrap_err();
    assert!(matches!(err, ResolveError::NotFound { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("hint: check the name and tag for a typo"),
        "{err}"
    );
    let err = registry
        .resolve(
            &image(&server.addr, "single:oci"),
            &platforms(&["linux/arm64"]),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("single-platform"), "{err}");
}

#[tokio::test]
async fn a_moved_tag_resolves_to_its_new_image() {
    let Some((server, p)) = pushed(AuthKind::Open) else {
        return;
    };
    let registry = Registry::new(anonymous()).unwrap();
    server.push(&p.layout, "single", "moving:latest", false);
    let first = registry
        .resolve(&image(&server.addr, "moving"), &[])
        .await
        .unwrap();
    server.push(&p.layout, "multi", "moving:latest", false);
    // A client is made per run, and a run sees one state of every tag:
    // the same client keeps what it found; the next run sees the move.
    let again = registry
        .resolve(&image(&server.addr, "moving"), &[])
        .await
        .unwrap();
    assert_eq!(first.digest, again.digest);
    let second = Registry::new(anonymous())
        .unwrap()
        .resolve(&image(&server.addr, "moving"), &[])
        .await
        .unwrap();
    assert_ne!(first.digest, second.digest);
    assert_eq!(
        second.digest.to_string(),
        skopeo_view(server, "moving:latest", &[]).0
    );
    assert_eq!(second.digest.to_string(), p.multi_index);
}

#[tokio::test]
async fn htpasswd_basic_auth() {
    let Some((server, p)) = pushed(AuthKind::Htpasswd) else {
        return;
    };
    let err = Registry::new(anonymous())
        .unwrap()
        .resolve(&image(&server.addr, "multi:1"), &[])
        .await
        .unwrap_err();
    assert!(matches!(err, ResolveError::Unauthorized { .. }), "{err}");
    assert!(err.to_string().contains("hint: log in"), "{err}");

    let registry = Registry::new(with_login(&server.addr)).unwrap();
    let resolved = registry
        .resolve(&image(&server.addr, "multi:1"), &[])
        .await
        .unwrap();
    assert_eq!(resolved.digest.to_string(), p.multi_index);
    let wrong = RegistryOptions {
        credentials: CredentialStore::empty().with_credentials(
            &server.addr,
            Credentials::Basic {
                username: USER.into(),
                password: Secret::new("wrong-password"),
            },
        ),
        ..anonymous()
    };
    let err = Registry::new(wrong)
        .unwrap()
        .resolve(&image(&server.addr, "multi:1"), &[])
        .await
        .unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains("wrong-password") && !shown.contains(PASSWORD),
        "{shown}"
    );
}

#[tokio::test]
async fn token_auth_gets_one_token_per_repository() {
    let Some((server, p)) = pushed(AuthKind::Token) else {
        return;
    };
    let err = Registry::new(anonymous())
        .unwrap()
        .resolve(&image(&server.addr, "multi:1"), &[])
        .await
        .unwrap_err();
    assert!(matches!(err, ResolveError::Unauthorized { .. }), "{err}");

    let registry = Registry::new(with_login(&server.addr)).unwrap();
    let issued_before = server.token_log.lock().unwrap().len();
    let refs = [
        image(&server.addr, "multi:1"),
        image(&server.addr, "single:oci"),
        image(&server.addr, "single:v2"),
        image(&server.addr, "other/app:1"),
    ];
    let all = platforms(&["linux/amd64", "linux/arm64"]);
    let results = registry.resolve_all(&refs[..1], &all).await;
    assert_eq!(
        results[0].as_ref().unwrap().digest.to_string(),
        p.multi_index
    );
    for r in registry
        .resolve_all(&refs[1..3], &platforms(&["linux/amd64"]))
        .await
    {
        r.unwrap();
    }
    registry.resolve(&refs[3], &all).await.unwrap();
    let counts = registry.request_counts();
    assert_eq!(counts.tokens, 3, "{counts:?}");
    assert!(counts.token_scopes.values().all(|n| *n == 1), "{counts:?}");
    assert!(
        counts
            .token_scopes
            .keys()
            .any(|k| k.ends_with("repository:other/app:pull"))
    );
    assert_eq!(
        server.token_log.lock().unwrap().len() - issued_before,
        3,
        "the issuer agrees"
    );
    // No request was refused: tokens were fetched before asking.
    // multi: index + 2 children; single:oci and single:v2: 1 each; other/app:
    // its index only (the children are the same content, fetched once).
    assert_eq!(counts.manifests, 3 + 1 + 1 + 1, "{counts:?}");
}

#[tokio::test]
async fn retries_transient_faults() {
    let Some((server, p)) = pushed(AuthKind::Open) else {
        return;
    };
    let proxy = FaultProxy::start(&server.addr);
    let registry = Registry::new(anonymous()).unwrap();
    proxy.inject("/manifests/1", Fault::Drop, 1);
    proxy.inject("/manifests/sha256", Fault::ServerError, 1);
    proxy.inject("/blobs/", Fault::Truncate, 1);
    let resolved = registry
        .resolve(&image(&proxy.addr, "multi:1"), &platforms(&["linux/amd64"]))
        .await
        .unwrap();
    assert_eq!(resolved.digest.to_string(), p.multi_index);
    assert_eq!(proxy.count("/manifests/1"), 2, "dropped connection retried");
    assert_eq!(proxy.count("/manifests/sha256"), 2, "500 retried");
    assert_eq!(proxy.count("/blobs/"), 2, "truncated body retried");

    proxy.inject("/manifests/oci", Fault::TooManyRequests(1), 1);
    let started = Instant::now();
    registry
        .resolve(&image(&proxy.addr, "single:oci"), &[])
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    assert_eq!(proxy.count("/manifests/oci"), 2);
}

#[tokio::test]
async fn rejects_bad_content() {
    let Some((server, _)) = pushed(AuthKind::Open) else {
        return;
    };
    let proxy = FaultProxy::start(&server.addr);
    // A manifest whose bytes differ from its stated digest.
    proxy.inject("/manifests/1", Fault::Corrupt, 1);
    let err = Registry::new(anonymous())
        .unwrap()
        .resolve(&image(&proxy.addr, "multi:1"), &[])
        .await
        .unwrap_err();
    assert!(matches!(err, ResolveError::DigestMismatch { .. }), "{err}");
    // Content asked for by digest that arrives damaged once is fetched
    // again.
    proxy.inject("/blobs/", Fault::Corrupt, 1);
    let before = proxy.count("/blobs/");
    Registry::new(anonymous())
        .unwrap()
        .resolve(&image(&proxy.addr, "single:oci"), &[])
        .await
        .unwrap();
    assert_eq!(proxy.count("/blobs/") - before, 2, "fetched once more");
    // A config blob whose bytes differ from the digest it was asked by,
    // every time.
    proxy.inject("/blobs/", Fault::Corrupt, 2);
    let err = Registry::new(anonymous())
        .unwrap()
        .resolve(&image(&proxy.addr, "single:oci"), &[])
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("does not match its digest"),
        "{err}"
    );
    // Manifests over 4 MiB are refused.
    proxy.inject("/manifests/v2", Fault::Huge(5 * 1024 * 1024), 1);
    let err = Registry::new(anonymous())
        .unwrap()
        .resolve(&image(&proxy.addr, "single:v2"), &[])
        .await
        .unwrap_err();
    assert!(matches!(err, ResolveError::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("the manifest is larger"), "{err}");
    // A config over 16 MiB is called the image config, not the manifest.
    proxy.inject("/blobs/", Fault::Huge(17 * 1024 * 1024), 1);
    let err = Registry::new(anonymous())
        .unwrap()
        .resolve(&image(&proxy.addr, "single:oci"), &[])
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("the image config is larger than"),
        "{err}"
    );
}

#[tokio::test]
async fn redirects_never_carry_credentials_to_another_host() {
    let Some((server, p)) = pushed(AuthKind::Token) else {
        return;
    };
    let proxy = FaultProxy::start(&server.addr);
    let config = std::fs::read(
        p.layout
            .join("blobs/sha256")
            .join(&p.children[0].config[7..]),
    )
    .unwrap();
    let storage = StorageHost::start(BTreeMap::from([(p.children[0].config.clone(), config)]));
    proxy.inject("/blobs/", Fault::Redirect(storage.base.clone()), 1);
    let registry = Registry::new(with_login(&proxy.addr)).unwrap();
    let resolved = registry
        .resolve(&image(&proxy.addr, "multi:1"), &[])
        .await
        .unwrap();
    assert_eq!(
        resolved.platforms[0].config_digest.to_string(),
        p.children[0].config
    );
    let storage_seen = storage.seen.lock().unwrap().clone();
    assert_eq!(storage_seen.len(), 1, "the blob came from the storage host");
    assert!(
        !storage_seen[0].headers.contains_key("authorization"),
        "{storage_seen:?}"
    );
    let proxy_seen = proxy.seen.lock().unwrap().clone();
    let blob_request = proxy_seen
        .iter()
        .find(|r| r.path.contains("/blobs/"))
        .unwrap();
    assert!(
        blob_request.headers["authorization"].starts_with("Bearer "),
        "the registry itself got the token"
    );
}

#[tokio::test]
async fn mirrors_serve_digests_and_tags_stay_at_the_source() {
    let Some((server, p)) = pushed(AuthKind::Open) else {
        return;
    };
    let mirror = FaultProxy::start(&server.addr);
    let mut options = anonymous();
    options.registries.insert(
        "registry.test".into(),
        RegistryConfig {
            location: Some(server.addr.clone()),
            mirrors: vec![MirrorConfig {
                location: mirror.addr.clone(),
                pull_from_mirror: PullFromMirror::DigestOnly,
            }],
            insecure: false,
        },
    );
    let registry = Registry::new(options).unwrap();
    let resolved = registry
        .resolve(&ImageRef::parse("registry.test/multi:1").unwrap(), &[])
        .await
        .unwrap();
    assert_eq!(resolved.digest.to_string(), p.multi_index);
    assert_eq!(resolved.name, "registry.test/multi:1");
    assert_eq!(
        mirror.count("/manifests/1"),
        0,
        "the tag was resolved at the source"
    );
    assert_eq!(mirror.count("/manifests/sha256:"), 1);
    assert_eq!(mirror.count("/blobs/sha256:"), 1);
}

#[tokio::test]
async fn oci_layouts_resolve_like_registries() {
    let Some((server, p)) = pushed(AuthKind::Open) else {
        return;
    };
    let registry = Registry::new(anonymous()).unwrap();
    let all = platforms(&["linux/amd64", "linux/arm64", "linux/arm/v7"]);
    let from_layout = registry
        .resolve_location(
            &format!("oci:{}:multi", p.layout.display())
                .parse::<ImageLocation>()
                .unwrap(),
            &all,
        )
        .await
        .unwrap();
    let from_registry = registry
        .resolve(&image(&server.addr, "multi:1"), &all)
        .await
        .unwrap();
    assert_eq!(from_layout.digest, from_registry.digest);
    // The same images, each named by where it was read.
    let unnamed = |platforms: &[imagelock::oci::ResolvedPlatform]| {
        let mut platforms = platforms.to_vec();
        for p in &mut platforms {
            p.reference.clear();
        }
        platforms
    };
    assert_eq!(
        unnamed(&from_layout.platforms),
        unnamed(&from_registry.platforms)
    );

    // A registry relocated to a directory of layouts, one per repository.
    let root = tempfile::tempdir().unwrap();
    let repo_dir = root.path().join("images/docker.io/library/python");
    crate::common::copy_dir(&p.layout, &repo_dir);
    let mut options = anonymous();
    options.root = root.path().to_path_buf();
    options.registries.insert(
        "docker.io".into(),
        RegistryConfig {
            location: Some("oci:images/docker.io".into()),
            ..RegistryConfig::default()
        },
    );
    let registry = Registry::new(options).unwrap();
    let resolved = registry
        .resolve(&ImageRef::parse("python:multi").unwrap(), &all)
        .await
        .unwrap();
    assert_eq!(resolved.digest, from_registry.digest);
    assert_eq!(resolved.name, "docker.io/library/python:multi");
    assert_eq!(registry.request_counts().manifests, 0);

    // Tampered blobs are refused.
    let blob = repo_dir
        .join("blobs/sha256")
        .join(&p.children[1].config[7..]);
    std::fs::write(&blob, b"{}").unwrap();
    let fresh = Registry::new(RegistryOptions { ..anonymous() }).unwrap();
    let err = fresh
        .resolve_location(
            &format!("oci:{}:multi", repo_dir.display())
                .parse::<ImageLocation>()
                .unwrap(),
            &all,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ResolveError::DigestMismatch { .. }), "{err}");
}

/// Regression (requests): a base read after it was pinned is opened by the
/// platform manifest digest just resolved, so neither its manifest nor its
/// config is fetched a second time; only its layers are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_base_is_read_without_fetching_it_again() {
    use imagelock::image::{ReadOptions, RegistryImage, read_catalogue};
    let Some((server, p)) = pushed(AuthKind::Open) else {
        return;
    };
    let registry = std::sync::Arc::new(Registry::new(anonymous()).unwrap());
    let tagged = image(&server.addr, "multi:1");
    let resolved = registry
        .resolve(&tagged, &platforms(&["linux/amd64"]))
        .await
        .unwrap();
    let pinned = resolved.platforms[0].manifest_digest.clone().unwrap();
    assert_eq!(pinned.to_string(), p.children[0].digest);
    let after_pin = registry.request_counts();
    assert_eq!((after_pin.manifests, after_pin.blobs), (2, 1));

    let source = RegistryImage::new(
        registry.clone(),
        tagged.with_digest(pinned.clone()),
        tokio::runtime::Handle::current(),
    );
    let catalogue = tokio::task::spawn_blocking(move || {
        read_catalogue(&source, &Platform::linux_amd64(), &ReadOptions::default())
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(catalogue.image.manifest_digest, Some(pinned));
    let after_read = registry.request_counts();
    assert_eq!(
        (after_read.manifests, after_read.blobs),
        (after_pin.manifests, after_pin.blobs + 1),
        "one request for the one layer, none for its manifest or config"
    );
}

/// The embedded world's layouts, when present, resolve for every platform
/// their indexes list.
#[tokio::test]
async fn world_layouts_resolve() {
    let world = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/world/images");
    let python = world.join("docker.io/library/python");
    if !python.join("index.json").is_file() {
        eprintln!("skipping: no OCI layouts under fixtures/world/images");
        return;
    }
    let mut options = anonymous();
    options.registries.insert(
        "docker.io".into(),
        RegistryConfig {
            location: Some(format!("oci:{}", world.join("docker.io").display())),
            ..RegistryConfig::default()
        },
    );
    let registry = Registry::new(options).unwrap();
    let resolved = registry
        .resolve(&ImageRef::parse("python:3.11-slim").unwrap(), &[])
        .await
        .unwrap();
    assert_eq!(
        resolved.media_type,
        "application/vnd.oci.image.index.v1+json"
    );
    assert!(!resolved.platforms[0].config.diff_ids.is_empty());
}

/// Benchmark (run by `benches/registry.sh`, not by `cargo test`): 50 distinct
/// references on the token-auth registry, resolved by imagelock, then
/// inspected by 50 sequential `skopeo inspect` calls, in one run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run benches/registry.sh"]
async fn bench_registry_50_references() {
    let Some(server) = server(AuthKind::Token) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("bench");
    let mut b = LayoutBuilder::new(&layout);
    // 5 repositories x 10 tags; every third tag is a 3-platform index.
    let mut refs = Vec::new();
    for i in 0..50 {
        let tag = format!("t{i}");
        let multi = i % 3 == 0;
        if multi {
            let children = vec![
                b.manifest("amd64", None, &format!("bench-{i}-amd64")),
                b.manifest("arm64", Some("v8"), &format!("bench-{i}-arm64")),
                b.manifest("arm", Some("v7"), &format!("bench-{i}-armv7")),
            ];
            b.tag_index(&children, &tag);
        } else {
            let m = b.manifest("amd64", None, &format!("bench-{i}"));
            b.tag_manifest(&m, &tag);
        }
        refs.push((format!("bench/r{}:{tag}", i % 5), tag, multi));
    }
    let push_started = Instant::now();
    std::thread::scope(|s| {
        for chunk in refs.chunks(13) {
            let layout = &layout;
            s.spawn(move || {
                for (repo_tag, tag, _) in chunk {
                    server.push(layout, tag, repo_tag, false);
                }
            });
        }
    });
    eprintln!("pushed 50 references in {:.1?}", push_started.elapsed());

    let all = platforms(&["linux/amd64", "linux/arm64", "linux/arm/v7"]);
    let amd64 = platforms(&["linux/amd64"]);
    let multi: Vec<ImageRef> = refs
        .iter()
        .filter(|r| r.2)
        .map(|r| image(&server.addr, &r.0))
        .collect();
    let single: Vec<ImageRef> = refs
        .iter()
        .filter(|r| !r.2)
        .map(|r| image(&server.addr, &r.0))
        .collect();
    let platform_images = (multi.len() * all.len() + single.len()) as u64;

    let mut rows = Vec::new();
    for concurrency in [16, 1] {
        let registry = Registry::new(RegistryOptions {
            concurrency,
            ..with_login(&server.addr)
        })
        .unwrap();
        let started = Instant::now();
        let (a, b) = tokio::join!(
            registry.resolve_all(&multi, &all),
            registry.resolve_all(&single, &amd64)
        );
        let elapsed = started.elapsed();
        assert!(a.iter().chain(&b).all(Result::is_ok));
        let c = registry.request_counts();
        // Each distinct manifest once: 50 tags plus the indexes' children.
        assert_eq!(c.manifests, (50 + multi.len() * all.len()) as u64, "{c:?}");
        assert_eq!(c.blobs, platform_images, "{c:?}");
        assert_eq!(c.tokens, 5, "one token per repository scope: {c:?}");
        assert!(c.token_scopes.values().all(|n| *n == 1), "{c:?}");
        rows.push((
            format!("imagelock (concurrency {concurrency})"),
            elapsed,
            Some(c),
        ));
    }
    let started = Instant::now();
    for (repo_tag, _, _) in &refs {
        server.skopeo_inspect(repo_tag, &[]);
    }
    rows.push((
        "skopeo inspect x50, sequential".into(),
        started.elapsed(),
        None,
    ));

    println!(
        "\n50 references (17 three-platform indexes, 33 single manifests) = {platform_images} platform images, token auth, 5 repositories"
    );
    let manifests = (50 + multi.len() * all.len()) as f64;
    println!(
        "| tool | wall time | manifest requests | per manifest needed | config requests | token requests | tokens per scope |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, elapsed, counts) in rows {
        match counts {
            Some(c) => println!(
                "| {name} | {:.2} s | {} | {:.2} | {} | {} | {} |",
                elapsed.as_secs_f64(),
                c.manifests,
                c.manifests as f64 / manifests,
                c.blobs,
                c.tokens,
                c.token_scopes.values().max().unwrap_or(&0)
            ),
            None => println!("| {name} | {:.2} s | | | | | |", elapsed.as_secs_f64()),
        }
    }
}

/// Guards against one cut mid-layer failing the run: the stream resumes
/// with `Range` from the last good byte and the digest still checks.
#[tokio::test]
async fn layer_streams_resume_after_a_cut() {
    let Some((server, p)) = pushed(AuthKind::Open) else {
        return;
    };
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            p.layout
                .join("blobs/sha256")
                .join(&p.children[0].digest[7..]),
        )
        .unwrap(),
    )
    .unwrap();
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let proxy = FaultProxy::start(&server.addr);
    proxy.inject(&format!("/blobs/{layer}"), Fault::Truncate, 1);
    let registry = Registry::new(anonymous()).unwrap();
    let stream = registry
        .open_blob(&image(&proxy.addr, "multi:1"), &layer.parse().unwrap())
        .await
        .unwrap();
    let imagelock::resolve::registry::BlobStream::Remote(mut body) = stream else {
        panic!("a registry blob is a remote stream");
    };
    let mut bytes = Vec::new();
    while let Some(chunk) = body.chunk().await.unwrap() {
        bytes.extend_from_slice(&chunk);
    }
    assert_eq!(
        sha256(&bytes),
        layer,
        "the digest checks over the whole stream"
    );
    let asked: Vec<Option<String>> = proxy
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.path.contains(&layer))
        .map(|r| r.headers.get("range").cloned())
        .collect();
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert_eq!(asked[0], None);
    let resumed_at: u64 = asked[1]
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("resumed with a range: {asked:?}"));
    assert!(resumed_at > 0 && resumed_at < bytes.len() as u64);
}

/// Guards against blaming the registry's credentials for a storage host
/// (a redirect target) that refuses its own signed link.
#[tokio::test]
async fn a_refusing_redirect_target_is_not_the_registrys_credentials() {
    let Some((server, _)) = pushed(AuthKind::Open) else {
        return;
    };
    let storage = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://localhost:{}", storage.local_addr().unwrap().port());
    std::thread::spawn(move || {
        for stream in storage.incoming() {
            let Ok(mut stream) = stream else { continue };
            if crate::common::registry::read_request(&mut stream).is_some() {
                crate::common::registry::respond(&mut stream, "401 Unauthorized", &[], b"");
            }
        }
    });
    let proxy = FaultProxy::start(&server.addr);
    proxy.inject("/blobs/", Fault::Redirect(base), 1);
    let err = Registry::new(anonymous())
        .unwrap()
        .resolve(&image(&proxy.addr, "multi:1"), &platforms(&["linux/amd64"]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ResolveError::Redirected { status: 401, .. }),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("redirected the request to `localhost`"),
        "{text}"
    );
    assert!(!text.contains("docker login"), "{text}");
}

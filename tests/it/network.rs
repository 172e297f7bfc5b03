//! The HTTP client's fault policy against servers on 127.0.0.1 that hang,
//! drip, fail, cut or rate-limit: what imagelock does for each fault, with
//! timeouts shortened so every test ends in seconds.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use imagelock::resolve::http::{HttpClient, HttpError, HttpOptions, HttpRequest};
use imagelock::resolve::pypi::{self, Fetcher, IndexClient};
use imagelock::solve::python::ResolveRequest;
use sha2::{Digest as _, Sha256};

use crate::common::http::StaticServer;
use crate::common::registry::{Fault, FaultProxy, SeenRequest, read_request, respond};
use crate::common::{imagelock, repo_root, run, tempdir};

/// The default policy with a short read-idle timeout and backoff.
fn quick(timeout: Duration) -> HttpOptions {
    HttpOptions {
        backoff: Duration::from_millis(20),
        ..HttpOptions::with_timeout(timeout)
    }
}

type Answer = dyn Fn(usize, &mut TcpStream, &SeenRequest) + Send + Sync;

/// A server calling `answer` with the connection's number (from 0), the
/// stream and the request; it keeps every request it saw.
struct Server {
    addr: String,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
}

impl Server {
    fn start(answer: impl Fn(usize, &mut TcpStream, &SeenRequest) + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let answer: Arc<Answer> = Arc::new(answer);
        let count = Arc::new(AtomicUsize::new(0));
        let s = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let (answer, count, s) = (answer.clone(), count.clone(), s.clone());
                std::thread::spawn(move || {
                    if let Some((req, _)) = read_request(&mut stream) {
                        s.lock().unwrap().push(req.clone());
                        let n = count.fetch_add(1, Ordering::SeqCst);
                        answer(n, &mut stream, &req);
                    }
                });
            }
        });
        Server { addr, seen }
    }

    fn url(&self, path: &str) -> reqwest::Url {
        format!("http://{}{path}", self.addr).parse().unwrap()
    }

    fn seen(&self) -> Vec<SeenRequest> {
        self.seen.lock().unwrap().clone()
    }
}

/// 64 KiB that do not repeat.
fn payload() -> Vec<u8> {
    let mut out = Vec::new();
    let mut block = Sha256::digest(b"imagelock").to_vec();
    while out.len() < 64 * 1024 {
        block = Sha256::digest(&block).to_vec();
        out.extend_from_slice(&block);
    }
    out
}

fn head(stream: &mut TcpStream, status: &str, headers: &[(&str, String)]) {
    let mut out = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    stream.write_all(out.as_bytes()).unwrap();
    stream.flush().unwrap();
}

/// Reads a streamed response to its end.
async fn read_stream(client: &HttpClient, url: reqwest::Url) -> Result<Vec<u8>, HttpError> {
    let mut request = HttpRequest::get(url, u64::MAX);
    request.stream = true;
    let response = client.send(request).await?;
    let mut body = response.stream.unwrap().take().unwrap();
    let mut out = Vec::new();
    while let Some(chunk) = body.chunk().await? {
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

#[tokio::test]
async fn a_hung_server_times_out_with_a_clear_message() {
    // Accepts, reads the request, never answers.
    let server = Server::start(|_, _, _| std::thread::sleep(Duration::from_secs(20)));
    let client = HttpClient::new(quick(Duration::from_millis(500))).unwrap();
    let started = Instant::now();
    let err = client
        .send(HttpRequest::get(server.url("/simple/six/"), 1024))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "`http://{}/simple/six/` timed out after 1 s (no response) (2 attempts)\nhint: ",
            server.addr
        )),
        "{text}"
    );
    assert!(text.contains("`--timeout`"), "{text}");
    // A silent server gets one more try, not the whole budget.
    assert_eq!(server.seen().len(), 2);
}

#[tokio::test]
async fn a_slow_body_keeps_streaming_past_the_timeout() {
    // 12 pieces, 200 ms apart: 2.4 s in all, each gap under the 500 ms
    // timeout.
    let server = Server::start(|_, stream, _| {
        head(stream, "200 OK", &[("Content-Length", "12".into())]);
        for b in b"slow-but-ok!" {
            std::thread::sleep(Duration::from_millis(200));
            if stream.write_all(&[*b]).is_err() {
                return;
            }
        }
    });
    let client = HttpClient::new(quick(Duration::from_millis(500))).unwrap();
    let started = Instant::now();
    let response = client
        .send(HttpRequest::get(server.url("/big"), 1024))
        .await
        .unwrap();
    assert_eq!(&response.body[..], b"slow-but-ok!");
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(server.seen().len(), 1, "never cut, never retried");
}

#[tokio::test]
async fn a_stalled_stream_resumes_from_the_last_good_byte() {
    let data = payload();
    let half = data.len() / 2;
    let body = data.clone();
    let server = Server::start(move |n, stream, req| {
        let len = body.len();
        if n == 0 {
            // Half the body, then silence.
            head(
                stream,
                "200 OK",
                &[
                    ("Content-Length", len.to_string()),
                    ("Accept-Ranges", "bytes".into()),
                ],
            );
            stream.write_all(&body[..half]).unwrap();
            stream.flush().unwrap();
            std::thread::sleep(Duration::from_secs(20));
            return;
        }
        let start: usize = req.headers["range"]
            .trim_start_matches("bytes=")
            .trim_end_matches('-')
            .parse()
            .unwrap();
        respond(
            stream,
            "206 Partial Content",
            &[("Content-Range", format!("bytes {start}-{}/{len}", len - 1))],
            &body[start..],
        );
    });
    let client = HttpClient::new(quick(Duration::from_millis(500))).unwrap();
    let got = read_stream(&client, server.url("/blobs/layer"))
        .await
        .unwrap();
    assert_eq!(
        Sha256::digest(&got),
        Sha256::digest(&data),
        "the whole body, once"
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[1].headers.get("range").map(String::as_str),
        Some(format!("bytes={half}-").as_str())
    );
    assert_eq!(client.stats().resumed, 1);
}

#[tokio::test]
async fn a_cut_stream_restarts_where_ranges_are_ignored() {
    let data = payload();
    let body = data.clone();
    let server = Server::start(move |n, stream, _| {
        if n == 0 {
            // A third of the body, then the connection closes.
            head(
                stream,
                "200 OK",
                &[("Content-Length", body.len().to_string())],
            );
            let _ = stream.write_all(&body[..body.len() / 3]);
            return;
        }
        // No ranges here: the whole body again.
        respond(stream, "200 OK", &[], &body);
    });
    let client = HttpClient::new(quick(Duration::from_secs(5))).unwrap();
    let got = read_stream(&client, server.url("/file")).await.unwrap();
    assert_eq!(got.len(), data.len());
    assert_eq!(Sha256::digest(&got), Sha256::digest(&data));
    assert_eq!(server.seen().len(), 2);
}

#[tokio::test]
async fn a_stream_cut_every_time_gives_up_saying_how_far_it_got() {
    let server = Server::start(|_, stream, _| {
        head(stream, "200 OK", &[("Content-Length", "100".into())]);
        let _ = stream.write_all(&[b'x'; 10]);
    });
    let client = HttpClient::new(quick(Duration::from_secs(5))).unwrap();
    let err = read_stream(&client, server.url("/file")).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("could not be resumed"), "{text}");
    assert!(text.contains("(4 attempts)"), "{text}");
    assert_eq!(server.seen().len(), 4, "the retry budget, no more");
}

#[tokio::test]
async fn rate_limits_say_what_the_server_answered_and_how_long_we_waited() {
    let server = Server::start(|_, stream, _| {
        respond(
            stream,
            "429 Too Many Requests",
            &[("Retry-After", "1".into())],
            b"",
        );
    });
    let client = HttpClient::new(HttpOptions {
        attempts: 2,
        ..quick(Duration::from_secs(5))
    })
    .unwrap();
    let started = Instant::now();
    let err = client
        .send(HttpRequest::get(server.url("/v2/"), 1024))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "`http://{}/v2/` answered 429 2 times; waited 1 s in all as its `Retry-After` asked\nhint: the server limits how often it may be asked; wait a while and run again, or use a mirror",
            server.addr
        )
    );
}

#[tokio::test]
async fn a_refused_connection_names_its_cause() {
    // A port nothing listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = HttpClient::new(quick(Duration::from_secs(5))).unwrap();
    let err = client
        .send(HttpRequest::get(
            format!("http://127.0.0.1:{port}/simple/").parse().unwrap(),
            1024,
        ))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "cannot connect to `http://127.0.0.1:{port}/simple/`: "
        )),
        "{text}"
    );
    assert!(text.contains("refused"), "the cause is shown: {text}");
    assert!(!text.contains("error sending request"), "{text}");
    assert!(text.contains("\nhint: "), "{text}");
}

/// Issue 14's check: a package index that answers 500 once, then 200.
#[tokio::test]
async fn a_pypi_index_answering_500_once_is_retried() {
    let index = StaticServer::start(repo_root().join("fixtures/pypi-cases"));
    let proxy = FaultProxy::start(&index.addr.to_string());
    proxy.inject("/simple/six/", Fault::ServerError, 1);
    let fetch = Fetcher::new(None, false, Default::default()).unwrap();
    let client = Arc::new(
        IndexClient::new(fetch, &[format!("http://{}/simple", proxy.addr)], false).unwrap(),
    );
    let target = crate::common::cpython_target("3.11");
    let request = ResolveRequest {
        requirements: vec!["six".into()],
        ..ResolveRequest::default()
    };
    let pins = pypi::resolve(client, target, request)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pins.len(), 1);
    assert_eq!(pins[0].name.to_string(), "six");
    assert_eq!(proxy.count("/simple/six/"), 2, "the 500 was retried once");
}

#[test]
fn freeze_against_a_hung_registry_times_out_with_the_given_timeout() {
    let server = Server::start(|_, _, _| std::thread::sleep(Duration::from_secs(30)));
    let dir = tempdir();
    let dockerfile = dir.path().join("Dockerfile");
    std::fs::write(&dockerfile, format!("FROM {}/lab/app:1\n", server.addr)).unwrap();
    let started = Instant::now();
    let (code, _, stderr) = run(imagelock()
        .current_dir(dir.path())
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .args(["--timeout", "1", "freeze", "Dockerfile"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(
        stderr.contains(&format!(
            "`http://{}/v2/` timed out after 1 s (no response)",
            server.addr
        )),
        "{stderr}"
    );
    assert!(stderr.contains("[registries."), "{stderr}");
}

#[test]
fn a_credential_helper_that_never_answers_is_stopped() {
    // The registry asks for credentials; the helper waits forever (as one
    // waiting for a keychain prompt does).
    let server = Server::start(|_, stream, _| {
        respond(
            stream,
            "401 Unauthorized",
            &[("WWW-Authenticate", "Basic realm=\"test\"".into())],
            b"",
        );
    });
    let dir = tempdir();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-hang");
    std::fs::write(&helper, "#!/bin/sh\nexec sleep 60\n").unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let docker = dir.path().join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    std::fs::write(
        docker.join("config.json"),
        format!("{{\"credHelpers\": {{\"{}\": \"hang\"}}}}", server.addr),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM {}/lab/app:1\n", server.addr),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let started = Instant::now();
    let (code, _, stderr) = run(imagelock()
        .current_dir(dir.path())
        .env("PATH", path)
        .env("DOCKER_CONFIG", &docker)
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .args(["--timeout", "1", "freeze", "Dockerfile"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(
        stderr.contains(&format!(
            "credential helper `docker-credential-hang` did not answer for `{}` within 1 s",
            server.addr
        )),
        "{stderr}"
    );
}

/// Conda's repodata comes through the same client and policy: a channel
/// that answers 500 once is retried.
#[tokio::test]
async fn a_conda_channel_answering_500_once_is_retried() {
    use imagelock::config::CondaConfig;
    use imagelock::resolve::conda::{ChannelRequest, ChannelSettings, CondaIndex, Condarc};
    use imagelock::solve::conda::CondaSpec;

    let channel = StaticServer::start(repo_root().join("fixtures/conda"));
    let proxy = FaultProxy::start(&channel.addr.to_string());
    proxy.inject("/conda-forge/linux-64/repodata", Fault::ServerError, 1);
    let settings = ChannelSettings::new(
        &CondaConfig {
            channel_alias: Some(format!("http://{}", proxy.addr)),
            ..CondaConfig::default()
        },
        &Condarc::default(),
        std::path::Path::new("/"),
    );
    let mut specs = vec![CondaSpec::parse("python=3.12").unwrap()];
    let channels = settings
        .resolve(
            &ChannelRequest {
                cli: vec!["conda-forge".into()],
                override_channels: true,
                ..ChannelRequest::default()
            },
            &mut specs,
        )
        .unwrap();
    let http = HttpClient::new(quick(Duration::from_secs(5))).unwrap();
    let cache = tempdir();
    let index = CondaIndex::new(cache.path(), http.middleware_client(), false);
    let data = index
        .fetch(&channels, "linux-64", &specs, &[], None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!data.is_empty(), "repodata read");
    assert!(http.stats().retries >= 1, "{:?}", http.stats());
    assert!(proxy.count("/conda-forge/linux-64/repodata") >= 2);
}

/// Guards against a cached index page that no longer parses being
/// revalidated (304) and reused forever: it is dropped and fetched afresh.
#[tokio::test]
async fn a_damaged_cached_index_page_is_fetched_afresh() {
    let index = StaticServer::start(repo_root().join("fixtures/pypi-cases"));
    let cache = tempdir();
    let resolve = || async {
        let fetch =
            Fetcher::new(Some(cache.path().to_path_buf()), false, Default::default()).unwrap();
        let client =
            Arc::new(IndexClient::new(fetch, &[format!("{}/simple", index.url())], false).unwrap());
        let target = crate::common::cpython_target("3.11");
        let request = ResolveRequest {
            requirements: vec!["six".into()],
            ..ResolveRequest::default()
        };
        pypi::resolve(client, target, request).await
    };
    resolve().await.unwrap_or_else(|e| panic!("{e}"));
    // Damage every cached JSON page.
    let mut damaged = 0;
    for dir in std::fs::read_dir(cache.path()).unwrap() {
        for file in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            if path.extension().is_some_and(|e| e == "body")
                && std::fs::read(&path).unwrap().starts_with(b"{")
            {
                // Stored that way (a proxy's broken answer kept as the page):
                // its recorded checksum matches, so only parsing finds it.
                let bad = b"{\"files\": [";
                std::fs::write(&path, bad).unwrap();
                let meta_path = path.with_extension("json");
                let mut meta: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
                meta["body_sha256"] = hex::encode(Sha256::digest(bad)).into();
                std::fs::write(&meta_path, serde_json::to_vec(&meta).unwrap()).unwrap();
                damaged += 1;
            }
        }
    }
    assert!(damaged > 0, "the page was cached");
    index.reset();
    let pins = resolve().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pins[0].name.to_string(), "six");
    let page: Vec<_> = index
        .seen()
        .into_iter()
        .filter(|s| s.path == "/simple/six/")
        .collect();
    assert_eq!(page.len(), 2, "revalidated, then fetched afresh: {page:?}");
    assert!(page[0].conditional && page[0].status == 304);
    assert!(!page[1].conditional && page[1].status == 200);
}

#[tokio::test]
async fn a_tls_handshake_left_hanging_is_a_connection_that_was_not_set_up() {
    // The listener accepts, and never answers the TLS hello.
    let listener_only = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener_only.local_addr().unwrap();
    let held = std::thread::spawn(move || {
        let conns: Vec<_> = listener_only.incoming().take(2).collect();
        std::thread::sleep(Duration::from_secs(10));
        drop(conns);
    });
    let client = HttpClient::new(HttpOptions {
        connect_timeout: Duration::from_millis(300),
        ..quick(Duration::from_secs(1))
    })
    .unwrap();
    let started = Instant::now();
    let err = client
        .send(HttpRequest::get(
            format!("https://{addr}/v2/").parse().unwrap(),
            1024,
        ))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        err.to_string().lines().next().unwrap(),
        format!(
            "cannot connect to `https://{addr}/v2/`: the connection was not set up within 1 s (2 attempts)"
        )
    );
    drop(held);
}

/// `HTTPS_PROXY` is honoured: the registry is reached through the proxy
/// (here one that refuses every tunnel).
#[test]
fn https_proxy_from_the_environment_is_used() {
    let proxy = Server::start(|_, stream, _| {
        respond(stream, "403 Forbidden", &[], b"no tunnels here");
    });
    let dir = tempdir();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM registry.example.invalid/lab/app:1\n",
    )
    .unwrap();
    let (code, _, stderr) = run(imagelock()
        .current_dir(dir.path())
        .env("HTTPS_PROXY", format!("http://{}", proxy.addr))
        .env_remove("https_proxy")
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .args(["--timeout", "2", "freeze", "Dockerfile"]));
    assert_eq!(code, 2, "{stderr}");
    let seen = proxy.seen();
    assert!(!seen.is_empty(), "the proxy was asked: {stderr}");
    assert_eq!(seen[0].method, "CONNECT");
    assert_eq!(seen[0].path, "registry.example.invalid:443");
}

/// The faults of the README's matrix, each injected once.
fn matrix_faults() -> Vec<Fault> {
    vec![
        Fault::Drop,
        Fault::Truncate,
        Fault::TooManyRequests(1),
        Fault::ServerError,
        Fault::Hang(Duration::from_secs(3)),
        Fault::SlowBody(Duration::from_millis(300)),
        Fault::Corrupt,
    ]
}

/// The package index row of the fault matrix: every fault but a corrupt
/// page is retried (or, for a slow body, read to its end past the timeout)
/// and the resolution is the fault-free one; a corrupt page is refused
/// naming it, or (a byte that changes nothing) gives the same answer.
#[tokio::test(flavor = "multi_thread")]
async fn package_index_fault_matrix() {
    let index = StaticServer::start(repo_root().join("fixtures/pypi-cases"));
    let mut clean: Option<String> = None;
    for fault in std::iter::once(None).chain(matrix_faults().into_iter().map(Some)) {
        let name = fault.as_ref().map_or("none", Fault::name);
        let proxy = FaultProxy::start(&index.addr.to_string());
        if let Some(fault) = &fault {
            proxy.inject("/simple/six/", fault.clone(), 1);
        }
        let http = HttpClient::new(quick(Duration::from_secs(1))).unwrap();
        let fetch = Fetcher::with_client(http, None, false, Default::default());
        let client = Arc::new(
            IndexClient::new(fetch, &[format!("http://{}/simple", proxy.addr)], false).unwrap(),
        );
        let request = ResolveRequest {
            requirements: vec!["six".into()],
            ..ResolveRequest::default()
        };
        let started = Instant::now();
        let outcome = pypi::resolve(client, crate::common::cpython_target("3.11"), request).await;
        let took = started.elapsed();
        assert!(took < Duration::from_secs(20), "{name}: {took:?}");
        let answer = |pins: &[imagelock::solve::python::PinnedPackage]| format!("{pins:?}");
        match (fault, outcome) {
            (Some(Fault::Corrupt), Err(e)) => {
                assert!(e.to_string().contains("/simple/six/"), "{e}");
            }
            (_, Ok(pins)) => {
                let now = answer(&pins).replace(&proxy.addr, "PROXY");
                assert!(now.contains("six-1.17.0"), "{name}: {now}");
                let first = clean.get_or_insert_with(|| now.clone());
                assert_eq!(&now, first, "{name}: the same answer as without faults");
            }
            (_, Err(e)) => panic!("{name}: {e}"),
        }
    }
}

/// The conda channel row of the fault matrix: every fault but a corrupt
/// repodata is retried (or read to its end) and the repodata is the
/// fault-free one; a corrupt one is refused naming the channel, or (a byte
/// that changes nothing) read the same.
#[tokio::test(flavor = "multi_thread")]
async fn conda_channel_fault_matrix() {
    use imagelock::config::CondaConfig;
    use imagelock::resolve::conda::{ChannelRequest, ChannelSettings, CondaIndex, Condarc};
    use imagelock::solve::conda::CondaSpec;

    let channel = StaticServer::start(repo_root().join("fixtures/conda"));
    let mut clean = None;
    for fault in std::iter::once(None).chain(matrix_faults().into_iter().map(Some)) {
        let name = fault.as_ref().map_or("none", Fault::name);
        let proxy = FaultProxy::start(&channel.addr.to_string());
        if let Some(fault) = &fault {
            proxy.inject("/conda-forge/linux-64/repodata", fault.clone(), 1);
        }
        let settings = ChannelSettings::new(
            &CondaConfig {
                channel_alias: Some(format!("http://{}", proxy.addr)),
                ..CondaConfig::default()
            },
            &Condarc::default(),
            std::path::Path::new("/"),
        );
        let mut specs = vec![CondaSpec::parse("python=3.12").unwrap()];
        let channels = settings
            .resolve(
                &ChannelRequest {
                    cli: vec!["conda-forge".into()],
                    override_channels: true,
                    ..ChannelRequest::default()
                },
                &mut specs,
            )
            .unwrap();
        let http = HttpClient::new(quick(Duration::from_secs(1))).unwrap();
        let cache = tempdir();
        let index = CondaIndex::new(cache.path(), http.middleware_client(), false);
        let started = Instant::now();
        let outcome = index.fetch(&channels, "linux-64", &specs, &[], None).await;
        let took = started.elapsed();
        assert!(took < Duration::from_secs(20), "{name}: {took:?}");
        match (fault, outcome) {
            (Some(Fault::Corrupt), Err(e)) => {
                assert!(e.to_string().contains("conda-forge"), "{e}");
            }
            (_, Ok(data)) => {
                let now = data.file_hashes();
                assert!(!now.is_empty(), "{name}");
                let first = clean.get_or_insert_with(|| now.clone());
                assert_eq!(&now, first, "{name}: the same records as without faults");
            }
            (_, Err(e)) => panic!("{name}: {e}"),
        }
    }
}

//! Registry credentials and the authentication challenges registries send.
//!
//! Credentials come, in order, from Docker's `config.json` (`DOCKER_CONFIG`
//! or `~/.docker`: `credHelpers`, `auths`, `credsStore`), then
//! `REGISTRY_AUTH_FILE` and the containers `auth.json`
//! (`$XDG_RUNTIME_DIR/containers/auth.json`, `~/.config/containers/auth.json`),
//! else none (anonymous). They are never printed: `Debug` is redacted.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

/// Why credentials could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` is not a valid credentials file: {reason}", path.display())]
    Parse { path: PathBuf, reason: String },
    #[error(
        "credential helper `{helper}` failed for `{registry}`: {reason}\nhint: run `{helper} list` or log in again"
    )]
    Helper {
        helper: String,
        registry: String,
        reason: String,
    },
    #[error(
        "credential helper `{helper}` did not answer for `{registry}` within {after} s and was stopped\nhint: it may be waiting for a keychain or desktop prompt; unlock it and run again, raise `--timeout`, or remove `credsStore`/`credHelpers` for this registry from the Docker config"
    )]
    HelperTimeout {
        helper: String,
        registry: String,
        after: u64,
    },
}

/// A secret that is never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A user name and password (or personal access token).
    Basic { username: String, password: Secret },
    /// An OAuth2 refresh token (`identitytoken`), exchanged at the token
    /// endpoint.
    IdentityToken(Secret),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Credentials::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
        }
    }
}

impl Credentials {
    /// The `Authorization` value for Basic auth, if these are a user and
    /// password.
    pub fn basic_header(&self) -> Option<String> {
        match self {
            Credentials::Basic { username, password } => Some(format!(
                "Basic {}",
                STANDARD.encode(format!("{username}:{}", password.expose()))
            )),
            Credentials::IdentityToken(_) => None,
        }
    }
}

/// Where credentials are looked up. Built from the environment, or given
/// explicitly (tests, embedding).
#[derive(Clone, Debug, Default)]
pub struct CredentialStore {
    docker_config: Option<PathBuf>,
    auth_files: Vec<PathBuf>,
    fixed: BTreeMap<String, Credentials>,
    /// How long a credential helper may take (`None`: the default).
    helper_timeout: Option<Duration>,
}

/// How long a credential helper may take unless told otherwise: one
/// waiting for a keychain prompt would otherwise hang the run.
pub const HELPER_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    identitytoken: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperOutput {
    username: String,
    secret: String,
}

impl CredentialStore {
    /// The standard locations, from the environment.
    pub fn from_env() -> CredentialStore {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let docker_config = std::env::var_os("DOCKER_CONFIG")
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".docker")))
            .map(|d| d.join("config.json"));
        let mut auth_files = Vec::new();
        if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE").filter(|f| !f.is_empty()) {
            auth_files.push(PathBuf::from(f));
        }
        if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
            auth_files.push(PathBuf::from(d).join("containers/auth.json"));
        }
        if let Some(h) = &home {
            auth_files.push(h.join(".config/containers/auth.json"));
        }
        CredentialStore {
            docker_config,
            auth_files,
            fixed: BTreeMap::new(),
            helper_timeout: None,
        }
    }

    /// Gives credential helpers `timeout` to answer (the run's network
    /// timeout) instead of [`HELPER_TIMEOUT`].
    #[must_use]
    pub fn with_helper_timeout(mut self, timeout: Duration) -> CredentialStore {
        self.helper_timeout = Some(timeout);
        self
    }

    /// No files: anonymous unless credentials are added.
    pub fn empty() -> CredentialStore {
        CredentialStore::default()
    }

    /// Uses this Docker `config.json` instead of the default.
    #[must_use]
    pub fn with_docker_config(mut self, path: impl Into<PathBuf>) -> CredentialStore {
        self.docker_config = Some(path.into());
        self
    }

    /// Adds a containers `auth.json` (after those already known).
    #[must_use]
    pub fn with_auth_file(mut self, path: impl Into<PathBuf>) -> CredentialStore {
        self.auth_files.push(path.into());
        self
    }

    /// Credentials for a registry, consulted before any file.
    #[must_use]
    pub fn with_credentials(mut self, registry: &str, credentials: Credentials) -> CredentialStore {
        self.fixed.insert(registry.to_string(), credentials);
        self
    }

    /// Credentials for `registry` (as in image names, `docker.io` for Docker
    /// Hub) and `repository`, or `None` for anonymous access.
    pub fn lookup(
        &self,
        registry: &str,
        repository: &str,
    ) -> Result<Option<Credentials>, AuthError> {
        if let Some(c) = self.fixed.get(registry) {
            return Ok(Some(c.clone()));
        }
        if let Some(path) = &self.docker_config
            && let Some(file) = read_auth_file(path)?
            && let Some(c) = from_docker_config(
                &file,
                registry,
                self.helper_timeout.unwrap_or(HELPER_TIMEOUT),
            )?
        {
            return Ok(Some(c));
        }
        for path in &self.auth_files {
            if let Some(file) = read_auth_file(path)?
                && let Some(c) = from_containers_auth(&file, registry, repository)
            {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }
}

fn read_auth_file(path: &Path) -> Result<Option<AuthFile>, AuthError> {
    let text = match crate::config::read::read_regular_to_string(
        path,
        crate::config::read::MAX_INPUT_FILE,
    ) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(AuthError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| AuthError::Parse {
            path: path.to_path_buf(),
            // serde_json's messages quote values (`invalid type: string
            // "dXNlcjpwYXNz"`), and values here are secrets: only the
            // position is shown.
            reason: format!(
                "{} at line {}, column {} (the value is not shown: it may be a secret)\nhint: each entry of `auths` is an object such as {{\"auth\": \"…\"}}",
                match e.classify() {
                    serde_json::error::Category::Syntax | serde_json::error::Category::Eof =>
                        "malformed JSON",
                    _ => "a value of the wrong type",
                },
                e.line(),
                e.column()
            ),
        })
}

/// The keys a registry may be stored under in `auths`.
fn key_matches(key: &str, registry: &str) -> bool {
    let host = key
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default();
    let hub = |h: &str| matches!(h, "docker.io" | "index.docker.io" | "registry-1.docker.io");
    host == registry || (hub(registry) && hub(host))
}

fn from_docker_config(
    file: &AuthFile,
    registry: &str,
    timeout: Duration,
) -> Result<Option<Credentials>, AuthError> {
    let hub = registry == "docker.io";
    let helper_key = |k: &str| k == registry || (hub && key_matches(k, registry));
    if let Some((_, helper)) = file.cred_helpers.iter().find(|(k, _)| helper_key(k)) {
        return run_helper(helper, registry, timeout);
    }
    let entry = file.auths.iter().find(|(k, _)| key_matches(k, registry));
    if let Some(c) = entry.and_then(|(_, e)| entry_credentials(e)) {
        return Ok(Some(c));
    }
    if let Some(store) = &file.creds_store {
        return run_helper(store, registry, timeout);
    }
    Ok(None)
}

fn from_containers_auth(file: &AuthFile, registry: &str, repository: &str) -> Option<Credentials> {
    // containers' auth.json may scope entries to a namespace: the longest
    // matching `registry/namespace` wins.
    let full = format!("{registry}/{repository}");
    let mut best: Option<(&str, &AuthEntry)> = None;
    for (key, entry) in &file.auths {
        let k = key
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/');
        let scoped = k.contains('/') && (full == k || full.starts_with(&format!("{k}/")));
        if (scoped || (!k.contains('/') && key_matches(key, registry)))
            && best.is_none_or(|(b, _)| k.len() > b.len())
        {
            best = Some((k, entry));
        }
    }
    best.and_then(|(_, entry)| entry_credentials(entry))
}

fn entry_credentials(entry: &AuthEntry) -> Option<Credentials> {
    if let Some(token) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
        return Some(Credentials::IdentityToken(Secret::new(token)));
    }
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let decoded = STANDARD.decode(auth.trim()).ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (user, pass) = decoded.split_once(':')?;
        return Some(Credentials::Basic {
            username: user.to_string(),
            password: Secret::new(pass),
        });
    }
    match (&entry.username, &entry.password) {
        (Some(u), Some(p)) if !u.is_empty() => Some(Credentials::Basic {
            username: u.clone(),
            password: Secret::new(p.clone()),
        }),
        _ => None,
    }
}

/// Runs `docker-credential-<name> get` with the registry on stdin, killing
/// it when it has not answered within `timeout`.
fn run_helper(
    name: &str,
    registry: &str,
    timeout: Duration,
) -> Result<Option<Credentials>, AuthError> {
    let helper = format!("docker-credential-{name}");
    let fail = |reason: String| AuthError::Helper {
        helper: helper.clone(),
        registry: registry.to_string(),
        reason,
    };
    // Docker Hub credentials are stored under the v1 index URL.
    let server = if registry == "docker.io" {
        "https://index.docker.io/v1/"
    } else {
        registry
    };
    let mut child = Command::new(&helper)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot run it: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(server.as_bytes())
            .map_err(|e| fail(format!("cannot write to it: {e}")))?;
    }
    let out = wait_with_timeout(child, timeout).map_err(|e| match e {
        None => AuthError::HelperTimeout {
            helper: helper.clone(),
            registry: registry.to_string(),
            after: timeout.as_secs().max(1),
        },
        Some(e) => fail(format!("cannot run it: {e}")),
    })?;
    if !out.status.success() {
        let stdout = String::from_utf8_lossy(&out.stdout);
        if stdout.contains("credentials not found") {
            return Ok(None);
        }
        // Helper output may hold secrets; report only the exit status.
        return Err(fail(format!("it exited with {}", out.status)));
    }
    let parsed: HelperOutput = serde_json::from_slice(&out.stdout)
        .map_err(|_| fail("its output is not the expected JSON".into()))?;
    if parsed.username == "<token>" {
        return Ok(Some(Credentials::IdentityToken(Secret::new(parsed.secret))));
    }
    Ok(Some(Credentials::Basic {
        username: parsed.username,
        password: Secret::new(parsed.secret),
    }))
}

/// Waits for `child` (its stdin already closed) and collects its output;
/// `Err(None)` when it is still running after `timeout` (it is killed).
pub(crate) fn wait_with_timeout(
    mut child: std::process::Child,
    timeout: Duration,
) -> Result<std::process::Output, Option<std::io::Error>> {
    use std::io::Read as _;
    let pipe = |p: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = p {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = pipe(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = pipe(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait().map_err(Some)? {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(None);
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    Ok(std::process::Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// An authentication challenge from `WWW-Authenticate`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic {
        realm: Option<String>,
    },
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

impl Challenge {
    /// Parses the first Basic or Bearer challenge of a header value. Quoted
    /// values may contain commas and escaped quotes.
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, rest) = header
            .split_once(char::is_whitespace)
            .unwrap_or((header, ""));
        let params = parse_params(rest);
        let get = |k: &str| {
            params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
        };
        if scheme.eq_ignore_ascii_case("bearer") {
            Some(Challenge::Bearer {
                realm: get("realm")?,
                service: get("service"),
                scope: get("scope"),
            })
        } else if scheme.eq_ignore_ascii_case("basic") {
            Some(Challenge::Basic {
                realm: get("realm"),
            })
        } else {
            None
        }
    }
}

fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            name.push(c);
            chars.next();
        }
        if name.is_empty() {
            break;
        }
        if chars.next() != Some('=') {
            continue;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((name.trim().to_string(), value.trim().to_string()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_with_quoted_commas() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push repository:c:pull""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull,push repository:c:pull".into()),
            }
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic {
                realm: Some("Registry Realm".into())
            })
        );
        assert_eq!(Challenge::parse("Bearer service=x"), None);
    }

    /// Guards against a malformed `config.json` echoing its auth string.
    #[test]
    fn malformed_config_never_echoes_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let secret = STANDARD.encode("me:hunter2");
        for text in [
            format!(r#"{{"auths": {{"reg.example": "{secret}"}}}}"#),
            format!(r#"{{"auths": {{"reg.example": {{"auth": ["{secret}"]}}}}}}"#),
            format!(r#"{{"auths": {{"reg.example": {{"auth": "{secret}"#),
            format!(r#"{{"credHelpers": "{secret}"}}"#),
        ] {
            fs_err::write(&path, &text).unwrap();
            let store = CredentialStore::empty().with_docker_config(&path);
            let err = store.lookup("reg.example", "a/b").unwrap_err().to_string();
            assert!(!err.contains(&secret) && !err.contains("hunter2"), "{err}");
            assert!(err.contains("line 1"), "{err}");
            assert!(err.contains("hint:"), "{err}");
        }
    }

    #[test]
    fn debug_never_shows_secrets() {
        let c = Credentials::Basic {
            username: "me".into(),
            password: Secret::new("hunter2"),
        };
        let t = Credentials::IdentityToken(Secret::new("tok123"));
        let shown = format!("{c:?} {t:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("tok123"),
            "{shown}"
        );
    }

    #[test]
    fn docker_config_auths_and_hub_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let auth = STANDARD.encode("me:pw");
        fs_err::write(
            &path,
            format!(
                r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},"ghcr.io":{{"identitytoken":"rt"}}}}}}"#
            ),
        )
        .unwrap();
        let store = CredentialStore::empty().with_docker_config(&path);
        assert_eq!(
            store.lookup("docker.io", "library/python").unwrap(),
            Some(Credentials::Basic {
                username: "me".into(),
                password: Secret::new("pw")
            })
        );
        assert_eq!(
            store.lookup("ghcr.io", "a/b").unwrap(),
            Some(Credentials::IdentityToken(Secret::new("rt")))
        );
        assert_eq!(store.lookup("quay.io", "a/b").unwrap(), None);
    }

    #[test]
    fn containers_auth_prefers_the_longest_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.json");
        let a = STANDARD.encode("host:1");
        let b = STANDARD.encode("ns:2");
        fs_err::write(
            &path,
            format!(
                r#"{{"auths":{{"quay.io":{{"auth":"{a}"}},"quay.io/team":{{"auth":"{b}"}}}}}}"#
            ),
        )
        .unwrap();
        let store = CredentialStore::empty().with_auth_file(&path);
        let user = |repo: &str| match store.lookup("quay.io", repo).unwrap() {
            Some(Credentials::Basic { username, .. }) => username,
            other => panic!("{other:?}"),
        };
        assert_eq!(user("team/app"), "ns");
        assert_eq!(user("other/app"), "host");
    }

    #[test]
    fn missing_helper_is_an_error_without_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        fs_err::write(&path, r#"{"credsStore":"imagelock-test-absent"}"#).unwrap();
        let err = CredentialStore::empty()
            .with_docker_config(&path)
            .lookup("example.com", "x")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("docker-credential-imagelock-test-absent"),
            "{err}"
        );
    }
}

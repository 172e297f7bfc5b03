//! Channel credentials as rattler (pixi, rattler-build) stores them: a JSON
//! file of host → authentication, `RATTLER_AUTH_FILE` or else
//! `~/.rattler/credentials.json`. A host is looked up as written, then as
//! `*.DOMAIN` for each parent domain. Bearer tokens and user/password go in
//! the `Authorization` header, a conda token into the path (`/t/TOKEN/…`),
//! only for requests to that host that carry no credentials of their own.
//! The credentials live in memory only: URLs that reach a lock, an error or
//! a log never hold them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use reqwest_middleware::{Middleware, Next};

/// One stored credential, in rattler's JSON form.
#[derive(Clone)]
pub enum Authentication {
    /// `{"BearerToken": "…"}`
    BearerToken(String),
    /// `{"BasicHTTP": {"username": "…", "password": "…"}}`
    BasicHTTP { username: String, password: String },
    /// `{"CondaToken": "…"}`: anaconda.org's and quetz's `/t/TOKEN/` path.
    CondaToken(String),
    /// `{"S3Credentials": …}` and forms to come: read, never used here.
    Unsupported,
}

impl Authentication {
    fn from_json(value: &serde_json::Value) -> Option<Authentication> {
        let (kind, inner) = value.as_object()?.iter().next()?;
        let text = |v: &serde_json::Value| v.as_str().map(str::to_string);
        Some(match kind.as_str() {
            "BearerToken" => Authentication::BearerToken(text(inner)?),
            "CondaToken" => Authentication::CondaToken(text(inner)?),
            "BasicHTTP" => Authentication::BasicHTTP {
                username: text(inner.get("username")?)?,
                password: text(inner.get("password")?)?,
            },
            _ => Authentication::Unsupported,
        })
    }
}

/// An unreadable or malformed credentials file.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the rattler credentials file `{}`: {message}", path.display())]
pub struct AuthFileError {
    pub path: PathBuf,
    pub message: String,
}

/// The stored credentials by host (`*.example.org` for a domain).
#[derive(Clone, Default)]
pub struct RattlerCredentials {
    hosts: BTreeMap<String, Authentication>,
}

impl std::fmt::Debug for RattlerCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets.
        f.debug_struct("RattlerCredentials")
            .field("hosts", &self.hosts.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl RattlerCredentials {
    /// The file rattler reads: `RATTLER_AUTH_FILE` when set (then it is the
    /// only one, as rattler has it, and must exist), else
    /// `HOME/.rattler/credentials.json` when it exists.
    pub fn from_env(var: &dyn Fn(&str) -> Option<String>) -> Result<Self, AuthFileError> {
        if let Some(path) = var("RATTLER_AUTH_FILE").filter(|p| !p.is_empty()) {
            return Self::read(Path::new(&path));
        }
        let Some(home) = var("HOME").filter(|h| !h.is_empty()) else {
            return Ok(Self::default());
        };
        let path = Path::new(&home).join(".rattler/credentials.json");
        if path.is_file() {
            Self::read(&path)
        } else {
            Ok(Self::default())
        }
    }

    pub fn read(path: &Path) -> Result<Self, AuthFileError> {
        let error = |message: String| AuthFileError {
            path: path.to_path_buf(),
            message,
        };
        let text =
            crate::config::read::read_regular_to_string(path, crate::config::read::MAX_INPUT_FILE)
                .map_err(|e| error(e.to_string()))?;
        Self::parse(&text).map_err(error)
    }

    /// Parses the file's text; the error never quotes it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let raw: BTreeMap<String, serde_json::Value> = serde_json::from_str(text).map_err(|e| {
            format!(
                "not a map of host to authentication (line {}, column {})",
                e.line(),
                e.column()
            )
        })?;
        let mut hosts = BTreeMap::new();
        for (host, value) in raw {
            let auth = Authentication::from_json(&value).ok_or_else(|| {
                format!("the entry for `{host}` is not one of BearerToken, BasicHTTP, CondaToken")
            })?;
            hosts.insert(host, auth);
        }
        Ok(RattlerCredentials { hosts })
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// The credential for `host`: its own, else the nearest `*.DOMAIN`.
    pub fn get(&self, host: &str) -> Option<&Authentication> {
        if let Some(a) = self.hosts.get(host) {
            return Some(a);
        }
        let mut domain = host;
        loop {
            if let Some(a) = self.hosts.get(&format!("*.{domain}")) {
                return Some(a);
            }
            domain = domain.split_once('.')?.1;
        }
    }
}

/// Applies [`RattlerCredentials`] to requests that carry none.
#[derive(Clone, Debug)]
pub struct RattlerAuthMiddleware {
    credentials: RattlerCredentials,
}

impl RattlerAuthMiddleware {
    pub fn new(credentials: RattlerCredentials) -> Self {
        RattlerAuthMiddleware { credentials }
    }
}

/// `url` with `/t/TOKEN` before its path, unless it has a token already.
fn with_conda_token(url: &mut reqwest::Url, token: &str) {
    if url.path().starts_with("/t/") {
        return;
    }
    let path = format!("/t/{token}{}", url.path());
    url.set_path(&path);
}

#[async_trait::async_trait]
impl Middleware for RattlerAuthMiddleware {
    async fn handle(
        &self,
        mut req: reqwest::Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        if !req.headers().contains_key(reqwest::header::AUTHORIZATION)
            && req.url().username().is_empty()
            && let Some(auth) = req.url().host_str().and_then(|h| self.credentials.get(h))
        {
            let header = match auth {
                Authentication::BearerToken(token) => Some(format!("Bearer {token}")),
                Authentication::BasicHTTP { username, password } => {
                    use base64::Engine as _;
                    Some(format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD
                            .encode(format!("{username}:{password}"))
                    ))
                }
                Authentication::CondaToken(token) => {
                    with_conda_token(req.url_mut(), token);
                    None
                }
                Authentication::Unsupported => None,
            };
            if let Some(header) = header
                && let Ok(mut value) = reqwest::header::HeaderValue::from_str(&header)
            {
                value.set_sensitive(true);
                req.headers_mut()
                    .insert(reqwest::header::AUTHORIZATION, value);
            }
        }
        next.run(req, extensions).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rattlers_forms_and_wildcards() {
        let c = RattlerCredentials::parse(
            r#"{
              "private.example.org": {"BasicHTTP": {"username": "u", "password": "p"}},
              "*.prefix.dev": {"BearerToken": "tok"},
              "conda.anaconda.org": {"CondaToken": "ct"},
              "s3://bucket": {"S3Credentials": {"access_key_id": "a", "secret_access_key": "s"}}
            }"#,
        )
        .expect("valid");
        assert!(matches!(
            c.get("private.example.org"),
            Some(Authentication::BasicHTTP { username, .. }) if username == "u"
        ));
        assert!(matches!(
            c.get("repo.prefix.dev"),
            Some(Authentication::BearerToken(t)) if t == "tok"
        ));
        assert!(matches!(
            c.get("a.b.prefix.dev"),
            Some(Authentication::BearerToken(_))
        ));
        // rattler tries `*.prefix.dev` for the bare domain too.
        assert!(c.get("prefix.dev").is_some());
        assert!(c.get("example.org").is_none());
        assert!(matches!(
            c.get("conda.anaconda.org"),
            Some(Authentication::CondaToken(_))
        ));
        let mut url =
            reqwest::Url::parse("https://conda.anaconda.org/private/noarch/repodata.json")
                .expect("url");
        with_conda_token(&mut url, "ct");
        assert_eq!(url.path(), "/t/ct/private/noarch/repodata.json");
        with_conda_token(&mut url, "other");
        assert_eq!(url.path(), "/t/ct/private/noarch/repodata.json");
    }

    #[test]
    fn a_broken_file_is_an_error_that_does_not_quote_it() {
        let e = RattlerCredentials::parse(r#"{"h": {"BearerToken": "s3cret""#).unwrap_err();
        assert!(!e.contains("s3cret"), "{e}");
        let e = RattlerCredentials::from_env(&|k| {
            (k == "RATTLER_AUTH_FILE").then(|| "/nonexistent/credentials.json".to_string())
        })
        .unwrap_err();
        assert!(
            e.to_string().contains("/nonexistent/credentials.json"),
            "{e}"
        );
    }
}

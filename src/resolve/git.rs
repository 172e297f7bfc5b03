//! Git refs: which commit a branch or tag of a repository names now.
//!
//! Read from the repository's ref advertisement, the list `git ls-remote`
//! prints: over HTTP(S) with the smart protocol's `info/refs` through the
//! one HTTP client (its proxies, certificates, `.netrc` and limits), and
//! over `git://` with the git protocol's opening exchange, both spoken
//! here so the static binary needs no `git`. SSH and local repositories
//! are asked with the real `git ls-remote`, since only the user's own git
//! and ssh setup can reach them.

use std::time::Duration;

use crate::config::redact::redact_url;
use crate::resolve::http::{HttpClient, HttpError, HttpRequest};

/// The largest ref advertisement read (a repository with very many tags
/// and pull-request refs stays well under it).
const ADVERTISEMENT_CAP: u64 = 64 << 20;

/// How long `git ls-remote` and a `git://` exchange may take.
const GIT_TIMEOUT: Duration = Duration::from_secs(60);

/// The refs a repository advertises, `(name, commit)` in its order, with
/// annotated tags' peeled commits as `refs/tags/NAME^{}`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Refs(pub Vec<(String, String)>);

/// Why the refs of a repository could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The server says there is no such repository (or hides it).
    #[error("`{url}` answered {status}: no repository there, or one that needs credentials")]
    NotFound { url: String, status: u16 },
    #[error("`{url}` answered {status}")]
    Status { url: String, status: u16 },
    #[error("`{url}` does not serve git's smart HTTP protocol")]
    NotSmart { url: String },
    #[error("cannot reach `{url}`: {cause}")]
    Unreachable { url: String, cause: String },
    #[error("`{url}` is read with `git ls-remote`, and git is not installed")]
    NoGit { url: String },
    #[error("`git ls-remote {url}` failed: {message}")]
    LsRemote { url: String, message: String },
    #[error("`{0}` is not a git URL imagelock can read")]
    Url(String),
    #[error(transparent)]
    Http(#[from] HttpError),
}

impl GitError {
    /// The repository answered, and has no such repository.
    pub fn is_gone(&self) -> bool {
        matches!(self, GitError::NotFound { .. })
    }
}

impl Refs {
    /// The commit `reference` names, as `git clone --branch` and BuildKit
    /// read it: `None` is the default branch (`HEAD`); a name is a full ref
    /// (`refs/…`, `HEAD`), else a branch, else a tag (peeled to its
    /// commit).
    pub fn resolve(&self, reference: Option<&str>) -> Option<&str> {
        let reference = reference.unwrap_or("HEAD");
        let find = |name: &str| {
            self.0
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, c)| c.as_str())
        };
        let tag = |name: &str| find(&format!("{name}^{{}}")).or_else(|| find(name));
        if reference == "HEAD" {
            return find("HEAD");
        }
        if reference.starts_with("refs/tags/") {
            return tag(reference);
        }
        if reference.starts_with("refs/") {
            return find(reference);
        }
        find(&format!("refs/heads/{reference}")).or_else(|| tag(&format!("refs/tags/{reference}")))
    }
}

/// The refs the repository at `url` advertises now.
pub async fn ls_remote(http: &HttpClient, url: &str) -> Result<Refs, GitError> {
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("http" | "https") => smart_http(http, url).await,
        Some("git") => git_protocol(url).await,
        Some("ssh" | "git+ssh" | "ssh+git" | "file") => git_ls_remote(url).await,
        // scp-like `git@host:owner/repo.git`; never a remote helper
        // (`ext::command`), which would run a program.
        None if url.contains(':') && !url.contains("::") && !url.starts_with('-') => {
            git_ls_remote(url).await
        }
        _ => Err(GitError::Url(redact_url(url))),
    }
}

async fn smart_http(http: &HttpClient, url: &str) -> Result<Refs, GitError> {
    let base = url
        .split(['#', '?'])
        .next()
        .unwrap_or(url)
        .trim_end_matches('/');
    let shown = redact_url(base);
    let info = url::Url::parse(&format!("{base}/info/refs?service=git-upload-pack"))
        .map_err(|_| GitError::Url(shown.clone()))?;
    let resp = http.send(HttpRequest::get(info, ADVERTISEMENT_CAP)).await?;
    let status = resp.status.as_u16();
    if matches!(status, 401 | 403 | 404 | 410) {
        return Err(GitError::NotFound { url: shown, status });
    }
    if !resp.status.is_success() {
        return Err(GitError::Status { url: shown, status });
    }
    parse_advertisement(&resp.body).ok_or(GitError::NotSmart { url: shown })
}

/// The pkt-line ref advertisement of `git-upload-pack` (protocol v0): one
/// `<commit> <name>` per line, capabilities after a NUL on the first, an
/// optional `# service=…` header and flush packets.
pub fn parse_advertisement(body: &[u8]) -> Option<Refs> {
    let mut refs = Vec::new();
    let mut pos = 0;
    let mut saw_service = false;
    while pos < body.len() {
        let len =
            usize::from_str_radix(std::str::from_utf8(body.get(pos..pos + 4)?).ok()?, 16).ok()?;
        if len < 4 {
            // A flush (or delimiter) packet.
            pos += 4;
            continue;
        }
        let line = body.get(pos + 4..pos + len)?;
        pos += len;
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        if line.starts_with(b"# service=") {
            saw_service = true;
            continue;
        }
        let line = line.split(|&b| b == 0).next().unwrap_or(line);
        let line = std::str::from_utf8(line).ok()?;
        let (commit, name) = line.split_once(' ')?;
        if !is_object_id(commit) {
            return None;
        }
        // An empty repository advertises only its capabilities.
        if name != "capabilities^{}" {
            refs.push((name.to_string(), commit.to_ascii_lowercase()));
        }
    }
    (saw_service || !refs.is_empty()).then_some(Refs(refs))
}

/// `git://host[:port]/path`: the git protocol's request for
/// `git-upload-pack`, whose answer is the ref advertisement; a flush then
/// ends the exchange without fetching anything.
async fn git_protocol(url: &str) -> Result<Refs, GitError> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let shown = redact_url(url);
    let parsed = url::Url::parse(url).map_err(|_| GitError::Url(shown.clone()))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| GitError::Url(shown.clone()))?;
    let port = parsed.port().unwrap_or(9418);
    let unreachable = |e: std::io::Error| GitError::Unreachable {
        url: shown.clone(),
        cause: e.to_string(),
    };
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(unreachable)?;
        let host_arg = parsed
            .port()
            .map_or_else(|| host.to_string(), |p| format!("{host}:{p}"));
        let request = format!("git-upload-pack {}\0host={host_arg}\0", parsed.path());
        stream
            .write_all(format!("{:04x}{request}", request.len() + 4).as_bytes())
            .await
            .map_err(unreachable)?;
        let mut body = Vec::new();
        loop {
            let mut head = [0u8; 4];
            if stream.read_exact(&mut head).await.is_err() {
                break;
            }
            body.extend_from_slice(&head);
            let len = std::str::from_utf8(&head)
                .ok()
                .and_then(|h| usize::from_str_radix(h, 16).ok())
                .ok_or_else(|| GitError::NotSmart { url: shown.clone() })?;
            if len == 0 {
                // The end of the advertisement: say we want nothing.
                let _ = stream.write_all(b"0000").await;
                break;
            }
            if len < 4 || body.len() as u64 + len as u64 > ADVERTISEMENT_CAP {
                return Err(GitError::NotSmart { url: shown.clone() });
            }
            let mut line = vec![0u8; len - 4];
            stream.read_exact(&mut line).await.map_err(unreachable)?;
            // The daemon says why it refuses in an `ERR` packet.
            if let Some(err) = line.strip_prefix(b"ERR ") {
                return Err(GitError::LsRemote {
                    url: shown.clone(),
                    message: String::from_utf8_lossy(err).trim().to_string(),
                });
            }
            body.extend_from_slice(&line);
        }
        parse_advertisement(&body).ok_or_else(|| GitError::NotSmart { url: shown.clone() })
    };
    tokio::time::timeout(GIT_TIMEOUT, exchange)
        .await
        .map_err(|_| GitError::Unreachable {
            url: shown.clone(),
            cause: format!("no answer in {}s", GIT_TIMEOUT.as_secs()),
        })?
}

/// The real `git ls-remote`, never prompting, stopped after
/// [`GIT_TIMEOUT`].
async fn git_ls_remote(url: &str) -> Result<Refs, GitError> {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || run_ls_remote(&url))
        .await
        .map_err(|e| GitError::LsRemote {
            url: String::new(),
            message: e.to_string(),
        })?
}

fn run_ls_remote(url: &str) -> Result<Refs, GitError> {
    use std::io::Read as _;
    use std::process::{Command, Stdio};
    let shown = redact_url(url);
    let mut cmd = Command::new("git");
    // Only the transports a clone of such a URL uses: no remote helpers.
    cmd.args(["-c", "protocol.allow=never"])
        .args([
            "-c",
            "protocol.ssh.allow=always",
            "-c",
            "protocol.file.allow=always",
        ])
        .args(["ls-remote", "--", url])
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if std::env::var_os("GIT_SSH_COMMAND").is_none() {
        cmd.env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes");
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(GitError::NoGit { url: shown });
        }
        Err(e) => {
            return Err(GitError::LsRemote {
                url: shown,
                message: e.to_string(),
            });
        }
    };
    let reader = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            if let Some(p) = pipe {
                let _ = p.take(ADVERTISEMENT_CAP).read_to_end(&mut out);
            }
            out
        })
    };
    let stdout = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    );
    let stderr = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    );
    let deadline = std::time::Instant::now() + GIT_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let out = stdout.join().unwrap_or_default();
    let err = stderr.join().unwrap_or_default();
    let Some(status) = status else {
        return Err(GitError::Unreachable {
            url: shown,
            cause: format!("no answer in {}s", GIT_TIMEOUT.as_secs()),
        });
    };
    if !status.success() {
        let message = String::from_utf8_lossy(&err);
        let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
        let message = crate::config::redact::redact_text(&message).into_owned();
        return Err(GitError::LsRemote {
            url: shown,
            message,
        });
    }
    let refs = String::from_utf8_lossy(&out)
        .lines()
        .filter_map(|l| {
            let (commit, name) = l.split_once('\t')?;
            is_object_id(commit).then(|| (name.to_string(), commit.to_ascii_lowercase()))
        })
        .collect();
    Ok(Refs(refs))
}

/// A full object id: 40 (SHA-1) or 64 (SHA-256) hex digits.
fn is_object_id(s: &str) -> bool {
    matches!(s.len(), 40 | 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(s: &str) -> String {
        format!("{:04x}{s}", s.len() + 4)
    }

    #[test]
    fn the_advertisement_gives_head_branches_and_peeled_tags() {
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let t = "c".repeat(40);
        let body = format!(
            "{}0000{}{}{}{}0000",
            pkt("# service=git-upload-pack\n"),
            pkt(&format!(
                "{a} HEAD\0multi_ack symref=HEAD:refs/heads/main\n"
            )),
            pkt(&format!("{a} refs/heads/main\n")),
            pkt(&format!("{t} refs/tags/v1\n")),
            pkt(&format!("{b} refs/tags/v1^{{}}\n")),
        );
        let refs = parse_advertisement(body.as_bytes()).unwrap();
        assert_eq!(refs.resolve(None), Some(a.as_str()));
        assert_eq!(refs.resolve(Some("main")), Some(a.as_str()));
        // An annotated tag names the commit it points at, not itself.
        assert_eq!(refs.resolve(Some("v1")), Some(b.as_str()));
        assert_eq!(refs.resolve(Some("refs/tags/v1")), Some(b.as_str()));
        assert_eq!(refs.resolve(Some("nope")), None);
        // Not a ref advertisement (a dumb server's page, HTML).
        assert!(parse_advertisement(b"<html>").is_none());
        assert!(parse_advertisement(format!("{a}\trefs/heads/main\n").as_bytes()).is_none());
    }

    #[tokio::test]
    async fn remote_helpers_are_never_run() {
        let http = HttpClient::new(crate::resolve::http::HttpOptions::default()).unwrap();
        for url in ["ext::sh -c touch% /tmp/x", "fd::3", "-uhelp:x"] {
            assert!(
                matches!(ls_remote(&http, url).await, Err(GitError::Url(_))),
                "{url}"
            );
        }
    }
}

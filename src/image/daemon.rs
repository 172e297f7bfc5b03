//! `docker-daemon:NAME:TAG`: images in a local Docker Engine, through its
//! HTTP API on a unix socket (or `DOCKER_HOST=tcp://…`). Inspect gives the
//! config and layer diff_ids; the image is exported (a `docker save` stream)
//! only when a layer's contents are needed, that is, not cached.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use serde::Deserialize;

use super::ImageError;
use super::archive::DockerArchive;
use super::source::ImageSource;
use crate::oci::{Digest, ImageConfig, LayerRef, Platform, ResolvedPlatform};

/// Where the engine listens.
#[derive(Clone, Debug)]
enum Host {
    Unix(PathBuf),
    Tcp(String),
}

impl Host {
    fn from_env() -> Result<Self, String> {
        match std::env::var("DOCKER_HOST") {
            Ok(h) if !h.is_empty() => {
                if let Some(p) = h.strip_prefix("unix://") {
                    Ok(Self::Unix(PathBuf::from(p)))
                } else if let Some(a) = h
                    .strip_prefix("tcp://")
                    .or_else(|| h.strip_prefix("http://"))
                {
                    Ok(Self::Tcp(a.trim_end_matches('/').to_string()))
                } else {
                    Err(h)
                }
            }
            _ => Ok(Self::Unix(PathBuf::from("/var/run/docker.sock"))),
        }
    }

    fn show(&self) -> String {
        match self {
            Self::Unix(p) => format!("unix://{}", p.display()),
            Self::Tcp(a) => format!("tcp://{a}"),
        }
    }
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// How long the engine may stay silent (before it answers, and between
/// pieces of an answer): an engine that accepts and never answers would
/// otherwise hang the run.
pub const ENGINE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long an export (`docker save`) may stay silent: some engines
/// assemble the whole archive before sending its first byte.
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// An image in a Docker Engine.
pub struct DockerDaemon {
    reference: String,
    name: String,
    host: Host,
    timeout: Duration,
    export: OnceLock<Export>,
    exporting: Mutex<()>,
}

struct Export {
    file: PathBuf,
    archive: DockerArchive,
    layers: Vec<LayerRef>,
}

impl Drop for DockerDaemon {
    fn drop(&mut self) {
        if let Some(e) = self.export.get() {
            let _ = fs_err::remove_file(&e.file);
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Inspect {
    id: Digest,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    variant: Option<String>,
    #[serde(default)]
    config: Option<InspectConfig>,
    #[serde(rename = "RootFS")]
    root_fs: InspectRootFs,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectConfig {
    #[serde(default)]
    env: Option<Vec<String>>,
    #[serde(default)]
    user: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectRootFs {
    #[serde(default)]
    layers: Vec<Digest>,
}

/// An HTTP response with its body as a stream.
struct Response {
    status: u16,
    body: Box<dyn Read + Send>,
}

impl DockerDaemon {
    /// An image named `NAME:TAG` or `sha256:ID`, in the engine `DOCKER_HOST`
    /// names (default `/var/run/docker.sock`).
    pub fn new(reference: &str, name: &str) -> Result<Self, ImageError> {
        let host = Host::from_env().map_err(|h| ImageError::Daemon {
            reference: reference.to_string(),
            host: h,
            message: "`DOCKER_HOST` is neither `unix://` nor `tcp://`".into(),
            hint: "set `DOCKER_HOST=unix:///var/run/docker.sock` or `tcp://HOST:PORT`".into(),
        })?;
        if name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '?' || c == '#')
        {
            return Err(ImageError::InvalidReference {
                reference: reference.to_string(),
                hint: "write `docker-daemon:NAME:TAG`".into(),
            });
        }
        Ok(Self {
            reference: reference.to_string(),
            name: name.to_string(),
            host,
            timeout: ENGINE_TIMEOUT,
            export: OnceLock::new(),
            exporting: Mutex::new(()),
        })
    }

    fn error(&self, message: impl Into<String>, hint: &str) -> ImageError {
        ImageError::Daemon {
            reference: self.reference.clone(),
            host: self.host.show(),
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// Gives the engine `timeout` of silence instead of [`ENGINE_TIMEOUT`].
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn get(&self, path: &str) -> Result<Response, ImageError> {
        self.get_within(path, self.timeout)
    }

    /// A GET whose answer may stay silent for `timeout`.
    fn get_within(&self, path: &str, timeout: Duration) -> Result<Response, ImageError> {
        let unreachable = |e: io::Error| {
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) {
                return self.error(
                    format!(
                        "it did not answer `GET {path}` within {} s",
                        timeout.as_secs().max(1)
                    ),
                    "check that the engine is healthy (`docker info`), or point `DOCKER_HOST` at one that answers",
                );
            }
            self.error(
                e.to_string(),
                "start the Docker Engine, or point `DOCKER_HOST` at one",
            )
        };
        // Read and write timeouts are idle timeouts: an export that keeps
        // flowing is never cut.
        let connect = self.timeout;
        let timeout = Some(timeout.max(Duration::from_millis(1)));
        let mut stream: Box<dyn Stream> = match &self.host {
            Host::Unix(p) => {
                let s = std::os::unix::net::UnixStream::connect(p).map_err(unreachable)?;
                s.set_read_timeout(timeout).map_err(unreachable)?;
                s.set_write_timeout(timeout).map_err(unreachable)?;
                Box::new(s)
            }
            Host::Tcp(a) => {
                let addr = std::net::ToSocketAddrs::to_socket_addrs(a.as_str())
                    .map_err(unreachable)?
                    .next()
                    .ok_or_else(|| {
                        unreachable(io::Error::new(
                            io::ErrorKind::NotFound,
                            format!("`{a}` resolves to no address"),
                        ))
                    })?;
                let s =
                    std::net::TcpStream::connect_timeout(&addr, connect).map_err(unreachable)?;
                s.set_read_timeout(timeout).map_err(unreachable)?;
                s.set_write_timeout(timeout).map_err(unreachable)?;
                Box::new(s)
            }
        };
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: imagelock\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        )
        .map_err(unreachable)?;
        let mut reader = BufReader::with_capacity(256 * 1024, stream);
        let mut line = String::new();
        reader.read_line(&mut line).map_err(unreachable)?;
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| {
                self.error(
                    format!("not an HTTP answer: `{}`", line.trim()),
                    "check `DOCKER_HOST`",
                )
            })?;
        let mut chunked = false;
        let mut length = None;
        loop {
            line.clear();
            if reader.read_line(&mut line).map_err(unreachable)? == 0 {
                break;
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                let v = v.trim();
                if k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
                {
                    chunked = true;
                } else if k.eq_ignore_ascii_case("content-length") {
                    length = v.parse::<u64>().ok();
                }
            }
        }
        let body: Box<dyn Read + Send> = if chunked {
            Box::new(Chunked {
                inner: reader,
                remaining: 0,
                done: false,
            })
        } else if let Some(n) = length {
            Box::new(reader.take(n))
        } else {
            Box::new(reader)
        };
        Ok(Response { status, body })
    }

    fn get_json<T: for<'de> Deserialize<'de>>(&self, path: &str) -> Result<T, ImageError> {
        let mut r = self.get(path)?;
        let mut bytes = Vec::new();
        (&mut r.body)
            .take(16 << 20)
            .read_to_end(&mut bytes)
            .map_err(|e| self.error(e.to_string(), "retry; the engine closed the connection"))?;
        if r.status == 404 {
            return Err(self.error(
                "no such image",
                "`docker pull` or `docker load` it first, or check the name",
            ));
        }
        if r.status != 200 {
            return Err(self.error(
                format!(
                    "HTTP {}: {}",
                    r.status,
                    String::from_utf8_lossy(&bytes).trim()
                ),
                "check the name and the engine's logs",
            ));
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            self.error(
                format!("unexpected answer: {e}"),
                "check the engine version",
            )
        })
    }

    /// Saves the image to a temporary `docker save` archive, once.
    fn export(&self) -> Result<&Export, ImageError> {
        if let Some(e) = self.export.get() {
            return Ok(e);
        }
        let _guard = self
            .exporting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(e) = self.export.get() {
            return Ok(e);
        }
        let mut r = self.get_within(
            &format!("/images/{}/get", self.name),
            EXPORT_TIMEOUT.max(self.timeout),
        )?;
        if r.status != 200 {
            return Err(self.error(
                format!("export answered HTTP {}", r.status),
                "check the engine's logs",
            ));
        }
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let file =
            std::env::temp_dir().join(format!("imagelock-export-{}-{n}.tar", std::process::id()));
        let written = (|| -> io::Result<()> {
            let mut out = fs_err::File::create(&file)?;
            io::copy(&mut r.body, &mut out)?;
            out.sync_all()
        })();
        let opened = written
            .map_err(|e| {
                self.error(
                    format!("export failed: {e}"),
                    "check free space in the temporary directory",
                )
            })
            .and_then(|()| DockerArchive::open(&self.reference, &file, None));
        let archive = match opened {
            Ok(a) => a,
            Err(e) => {
                let _ = fs_err::remove_file(&file);
                return Err(e);
            }
        };
        let layers = match archive.resolve(&Platform::linux_amd64()) {
            Ok(r) => r.layers,
            Err(e) => {
                let _ = fs_err::remove_file(&file);
                return Err(e);
            }
        };
        let _ = self.export.set(Export {
            file,
            archive,
            layers,
        });
        self.export
            .get()
            .ok_or_else(|| self.error("export failed", "retry"))
    }
}

impl ImageSource for DockerDaemon {
    fn reference(&self) -> &str {
        &self.reference
    }

    fn resolve(&self, platform: &Platform) -> Result<ResolvedPlatform, ImageError> {
        let inspect: Inspect = self.get_json(&format!("/images/{}/json", self.name))?;
        let has = Platform::new(
            &inspect.os,
            &inspect.architecture,
            inspect.variant.as_deref(),
        );
        if !platform.matches(&has) {
            return Err(ImageError::PlatformMissing {
                reference: self.reference.clone(),
                platform: platform.clone(),
                available: format!("`{has}`"),
            });
        }
        let layers = inspect
            .root_fs
            .layers
            .iter()
            .map(|d| LayerRef {
                digest: None,
                media_type: None,
                size: None,
                diff_id: d.clone(),
            })
            .collect();
        Ok(ResolvedPlatform {
            reference: self.reference.clone(),
            platform: platform.clone(),
            index_digest: None,
            manifest_digest: None,
            media_type: None,
            config_digest: inspect.id,
            config: ImageConfig {
                architecture: inspect.architecture,
                os: inspect.os,
                variant: inspect.variant,
                user: inspect
                    .config
                    .as_ref()
                    .and_then(|c| c.user.clone())
                    .filter(|u| !u.is_empty()),
                env: inspect.config.and_then(|c| c.env).unwrap_or_default(),
                diff_ids: inspect.root_fs.layers,
                created: None,
            },
            layers,
        })
    }

    fn open_layer(&self, layer: &LayerRef) -> Result<Box<dyn Read + Send + '_>, ImageError> {
        let export = self.export()?;
        let stored = export
            .layers
            .iter()
            .find(|l| l.diff_id == layer.diff_id)
            .ok_or_else(|| ImageError::BlobMissing {
                reference: self.reference.clone(),
                digest: layer.diff_id.clone(),
            })?;
        export.archive.open_layer(stored)
    }
}

/// An HTTP/1.1 chunked body.
struct Chunked<R> {
    inner: R,
    remaining: u64,
    done: bool,
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.remaining == 0 {
            let mut line = String::new();
            self.inner.read_line(&mut line)?;
            let size = line.trim().split(';').next().unwrap_or_default();
            self.remaining = u64::from_str_radix(size, 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            if self.remaining == 0 {
                // Trailers, then the final empty line.
                loop {
                    line.clear();
                    if self.inner.read_line(&mut line)? == 0 || line.trim().is_empty() {
                        break;
                    }
                }
                self.done = true;
                return Ok(0);
            }
        }
        let want = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "chunked body ended early",
            ));
        }
        self.remaining -= n as u64;
        if self.remaining == 0 {
            let mut crlf = String::new();
            self.inner.read_line(&mut crlf)?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies() {
        let body = b"5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nTrailer: a\r\n\r\n";
        let mut out = String::new();
        Chunked {
            inner: &body[..],
            remaining: 0,
            done: false,
        }
        .read_to_string(&mut out)
        .unwrap();
        assert_eq!(out, "hello world");
    }

    /// Guards against an engine that accepts and never answers hanging
    /// the run.
    #[test]
    fn a_silent_engine_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("docker.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let held = std::thread::spawn(move || listener.accept().map(|(s, _)| s));
        let daemon = DockerDaemon {
            reference: "docker-daemon:app:1".into(),
            name: "app:1".into(),
            host: Host::Unix(socket.clone()),
            timeout: Duration::from_millis(300),
            export: OnceLock::new(),
            exporting: Mutex::new(()),
        };
        let started = std::time::Instant::now();
        let Err(err) = daemon.get("/images/app:1/json") else {
            panic!("a silent engine answered");
        };
        assert!(started.elapsed() < Duration::from_secs(5));
        let text = err.to_string();
        assert!(
            text.contains("did not answer `GET /images/app:1/json` within 1 s"),
            "{text}"
        );
        drop(held);
    }
}

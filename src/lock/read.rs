//! Reading lockfiles, with clear errors for corrupt and future files.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::diagnostic::{Diagnostic, Location, Span};
use crate::lock::{LOCK_VERSION, LockedImage};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cannot read lockfile `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write lockfile `{}`: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Box<Diagnostic>),
    #[error(
        "`{}` is lockfile format version {found}, newer than this imagelock reads ({LOCK_VERSION})\nhint: upgrade imagelock, or re-create the lock with `imagelock freeze`",
        path.display()
    )]
    FutureVersion { path: PathBuf, found: u64 },
}

impl LockError {
    /// The diagnostic, when the error points into the file.
    pub fn diagnostic(&self) -> Option<&Diagnostic> {
        match self {
            LockError::Invalid(d) => Some(d),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
struct VersionProbe {
    version: Option<toml::Spanned<toml::Value>>,
}

impl LockedImage {
    /// Reads a lockfile from disk.
    pub fn read(path: &Path) -> Result<LockedImage, LockError> {
        let text = fs_err::read_to_string(path).map_err(|source| LockError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(path, &text)
    }

    /// Parses the text of a lockfile; `path` is for messages.
    pub fn from_toml(path: &Path, text: &str) -> Result<LockedImage, LockError> {
        let invalid = |span: Option<std::ops::Range<usize>>, message: String, hint: &str| {
            let span = span.map_or(Span::default(), |r| Span::new(r.start, r.end));
            LockError::Invalid(Box::new(Diagnostic {
                message,
                location: Location::of(path, text, span.start),
                span,
                hint: Some(hint.to_string()),
            }))
        };
        const REFREEZE: &str = "the lockfile is damaged; re-create it with `imagelock freeze`";

        // The version decides how to read the rest, so look at it first.
        let probe: VersionProbe = toml::from_str(text)
            .map_err(|e| invalid(e.span(), e.message().to_string(), REFREEZE))?;
        let Some(version) = probe.version else {
            return Err(invalid(
                Some(0..0),
                "not an imagelock lockfile: it has no `version`".into(),
                REFREEZE,
            ));
        };
        let span = version.span();
        match version.into_inner() {
            toml::Value::Integer(v) if v == i64::from(LOCK_VERSION) => {}
            toml::Value::Integer(v) if v > i64::from(LOCK_VERSION) => {
                return Err(LockError::FutureVersion {
                    path: path.to_path_buf(),
                    found: v.unsigned_abs(),
                });
            }
            other => {
                return Err(invalid(
                    Some(span),
                    format!("unknown lockfile version `{other}`"),
                    REFREEZE,
                ));
            }
        }
        toml::from_str(text).map_err(|e| invalid(e.span(), e.message().to_string(), REFREEZE))
    }
}

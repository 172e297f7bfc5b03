//! Writing lockfiles: canonical order, stable formatting, atomic replace.

use std::io::Write;
use std::path::Path;

use crate::lock::{HEADER, LockError, LockedImage};
use crate::oci::Digest;

impl LockedImage {
    /// The lockfile text. Equal models give equal bytes, whatever order
    /// their lists were built in. `[image] content-hash` is computed here,
    /// over the rest of the text.
    pub fn to_toml(&self) -> String {
        let mut lock = self.clone();
        lock.normalize();
        lock.image.content_hash = Some(lock.computed_content_hash());
        lock.canonical_text()
    }

    /// The sha256 of this lock's canonical text without its
    /// `content-hash` line: what `content-hash` must say.
    pub fn computed_content_hash(&self) -> Digest {
        let mut lock = self.clone();
        lock.normalize();
        lock.image.content_hash = None;
        Digest::sha256_of(lock.canonical_text().as_bytes())
    }

    /// The text of a normalized model, as it is.
    fn canonical_text(&self) -> String {
        // The model holds only strings, integers, booleans, lists and
        // tables, which TOML can always represent.
        let body = toml::to_string_pretty(self)
            .unwrap_or_else(|e| unreachable!("a lock model always serializes to TOML: {e}"));
        let mut text = String::with_capacity(HEADER.len() + body.len());
        text.push_str(HEADER);
        text.push_str(&body);
        text
    }

    /// Writes the lockfile atomically: a temporary file in the same
    /// directory, synced, then renamed over the target.
    pub fn write(&self, path: &Path) -> Result<(), LockError> {
        write_atomic(path, self.to_toml().as_bytes()).map_err(|source| LockError::Write {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Replaces `path` with `bytes` so readers see the old or the new file, never
/// a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    fs_err::create_dir_all(dir)?;
    let mut tmp = tempfile_in(dir, path)?;
    tmp.1.write_all(bytes)?;
    tmp.1.sync_all()?;
    drop(tmp.1);
    fs_err::rename(&tmp.0, path)
}

fn tempfile_in(dir: &Path, path: &Path) -> std::io::Result<(std::path::PathBuf, fs_err::File)> {
    let name = path
        .file_name()
        .map_or_else(|| "lock".into(), |n| n.to_string_lossy().into_owned());
    for attempt in 0..100u32 {
        let tmp = dir.join(format!(".{name}.{}.{attempt}.tmp", std::process::id()));
        match fs_err::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(format!(
        "no free temporary name for `{}`",
        path.display()
    )))
}

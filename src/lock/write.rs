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

/// Replaces several files as nearly all-or-nothing as a filesystem allows:
/// every new file is written and synced under a temporary name first, and
/// only then are they renamed into place, one after another. When writing
/// any of them fails, every temporary file is removed and no file is
/// replaced. (A crash between two renames can still leave some replaced.)
pub fn write_all_atomic(files: &[(&Path, &[u8])]) -> std::io::Result<()> {
    let mut temps: Vec<std::path::PathBuf> = Vec::with_capacity(files.len());
    let written = (|| {
        for (path, bytes) in files {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or_else(|| Path::new("."));
            fs_err::create_dir_all(dir)?;
            let (tmp, mut file) = tempfile_in(dir, path)?;
            temps.push(tmp);
            file.write_all(bytes)?;
            file.sync_all()?;
        }
        Ok(())
    })();
    if let Err(e) = written {
        for tmp in &temps {
            let _ = fs_err::remove_file(tmp);
        }
        return Err(e);
    }
    for (tmp, (path, _)) in temps.iter().zip(files) {
        fs_err::rename(tmp, path)?;
    }
    Ok(())
}

/// Removes the temporary files that an imagelock killed while writing left
/// in `dir` (`.NAME.PID.N.tmp` whose process is gone); returns their names.
pub fn remove_stale_temp_files(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs_err::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = stale_temp_pid(&name) else {
            continue;
        };
        let alive = pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists();
        if !alive && fs_err::remove_file(entry.path()).is_ok() {
            removed.push(name);
        }
    }
    removed.sort();
    removed
}

/// The process id in a temporary name `.NAME.PID.N.tmp`.
fn stale_temp_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let mut parts = rest.rsplitn(3, '.');
    let attempt = parts.next()?;
    let pid = parts.next()?;
    let _file = parts.next()?;
    attempt.parse::<u32>().ok()?;
    pid.parse().ok()
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

#[cfg(test)]
mod temp_tests {
    use super::*;

    #[test]
    fn stale_temp_files_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        // No process has pid 4294967; ours is alive.
        let dead = ".app.lock.4294967.0.tmp";
        let ours = format!(".app.lock.{}.0.tmp", std::process::id());
        for name in [dead, ours.as_str(), "app.lock", ".hidden"] {
            fs_err::write(dir.path().join(name), b"x").unwrap();
        }
        assert_eq!(remove_stale_temp_files(dir.path()), [dead]);
        assert!(dir.path().join(&ours).exists());
        assert!(dir.path().join("app.lock").exists());
        assert!(dir.path().join(".hidden").exists());
    }

    #[test]
    fn a_failed_write_replaces_nothing_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.lock");
        fs_err::write(&a, b"old").unwrap();
        // The second target's directory cannot be created: a file is there.
        fs_err::write(dir.path().join("blocked"), b"").unwrap();
        let b = dir.path().join("blocked/b.lock");
        let err = write_all_atomic(&[(&a, b"new"), (&b, b"new")]);
        assert!(err.is_err());
        assert_eq!(fs_err::read(&a).unwrap(), b"old");
        let names: Vec<_> = fs_err::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");
        write_all_atomic(&[(&a, b"new")]).unwrap();
        assert_eq!(fs_err::read(&a).unwrap(), b"new");
    }
}

//! The files of an image layout or archive: a directory, or a tar read in
//! place (members found by offset, never extracted).

use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::layer::normalize;

/// Files of an image layout or archive: a directory, or a tar read in place.
pub(crate) trait Store: Send + Sync {
    fn open(&self, path: &str) -> io::Result<Box<dyn Read + Send + '_>>;
    fn len(&self, path: &str) -> Option<u64>;
    /// Where `path`'s bytes live (a file, or a member of an archive file):
    /// two opens with the same origin read the same file in one run.
    /// `None` (the default): not known, so never shared.
    fn origin(&self, _path: &str) -> Option<String> {
        None
    }
}

pub(crate) struct DirStore(pub(crate) PathBuf);

impl Store for DirStore {
    fn open(&self, path: &str) -> io::Result<Box<dyn Read + Send + '_>> {
        Ok(Box::new(fs_err::File::open(self.0.join(path))?))
    }

    fn len(&self, path: &str) -> Option<u64> {
        fs_err::metadata(self.0.join(path)).ok().map(|m| m.len())
    }

    fn origin(&self, path: &str) -> Option<String> {
        let file = self.0.join(path);
        let file = std::fs::canonicalize(&file).unwrap_or(file);
        Some(format!("file:{}", file.display()))
    }
}

/// A tar whose member offsets were indexed once; members are read by seeking,
/// so an archive is never extracted.
pub(crate) struct TarStore {
    path: PathBuf,
    members: HashMap<String, (u64, u64)>,
}

impl TarStore {
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        let file = fs_err::File::open(path)?;
        let mut archive = tar::Archive::new(file);
        let mut members = HashMap::new();
        let mut links = Vec::new();
        for entry in archive.entries_with_seek()? {
            let entry = entry?;
            let name = normalize(&String::from_utf8_lossy(&entry.path_bytes()));
            let kind = entry.header().entry_type();
            if kind.is_file() {
                members.insert(name, (entry.raw_file_position(), entry.size()));
            } else if (kind.is_symlink() || kind.is_hard_link())
                && let Some(target) = entry.link_name_bytes()
            {
                let target = String::from_utf8_lossy(&target).into_owned();
                // Symlinks are relative to their directory; hard links to
                // the archive root.
                let target = if kind.is_symlink() && !target.starts_with('/') {
                    let dir = name.rfind('/').map_or("", |i| &name[..i]);
                    normalize(&format!("{dir}/{target}"))
                } else {
                    normalize(&target)
                };
                links.push((name, target));
            }
        }
        // Docker 25+ writes `<id>/layer.tar` as a symlink into `blobs/`.
        for _ in 0..4 {
            for (name, target) in &links {
                if let Some(&m) = members.get(target) {
                    members.entry(name.clone()).or_insert(m);
                }
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            members,
        })
    }
}

impl Store for TarStore {
    fn open(&self, path: &str) -> io::Result<Box<dyn Read + Send + '_>> {
        let &(offset, size) = self.members.get(path).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("`{path}` is not in the archive"),
            )
        })?;
        let mut file = fs_err::File::open(&self.path)?;
        file.seek(SeekFrom::Start(offset))?;
        Ok(Box::new(file.take(size)))
    }

    fn len(&self, path: &str) -> Option<u64> {
        self.members.get(path).map(|m| m.1)
    }

    fn origin(&self, path: &str) -> Option<String> {
        let &(offset, size) = self.members.get(path)?;
        let file = std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        Some(format!("tar:{}@{offset}+{size}", file.display()))
    }
}

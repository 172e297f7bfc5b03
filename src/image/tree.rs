//! The files under some paths of an image, with their digests: what
//! `verify` compares a `COPY --from` with.

use std::collections::BTreeMap;

use super::layer::{self, FileContent, LayerCollection};
use super::{ImageError, ImageSource, Platform, ReadOptions};
use crate::oci::Digest;

/// One entry of a [`FileTree`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TreeEntry {
    /// A regular file and the sha256 of its bytes.
    File(Digest),
    /// A symbolic link and its target as written.
    Symlink(String),
    Dir,
}

/// The entries under the paths asked for, layers merged (whiteouts applied).
/// Paths are absolute (`/opt/tool/bin`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileTree {
    entries: BTreeMap<String, TreeEntry>,
}

impl FromIterator<(String, TreeEntry)> for FileTree {
    /// A tree of the given entries (paths made absolute and normalized).
    fn from_iter<I: IntoIterator<Item = (String, TreeEntry)>>(iter: I) -> Self {
        FileTree {
            entries: iter.into_iter().map(|(p, e)| (absolute(&p), e)).collect(),
        }
    }
}

impl FileTree {
    /// The entry at `path`, if the image has one.
    pub fn get(&self, path: &str) -> Option<&TreeEntry> {
        self.entries.get(&absolute(path))
    }

    /// The entries strictly under the directory `path`, each with its path
    /// relative to it.
    pub fn under<'a>(&'a self, path: &str) -> impl Iterator<Item = (&'a str, &'a TreeEntry)> {
        let dir = absolute(path);
        let prefix = if dir == "/" { dir } else { format!("{dir}/") };
        let len = prefix.len();
        self.entries
            .range(prefix.clone()..)
            .take_while(move |(p, _)| p.starts_with(&prefix))
            .map(move |(p, e)| (&p[len..], e))
    }

    fn apply(&mut self, layer: LayerCollection) {
        for dir in &layer.opaque_dirs {
            self.remove_under(&absolute(dir));
        }
        for gone in &layer.whiteouts {
            let gone = absolute(gone);
            self.remove_under(&gone);
            self.entries.remove(&gone);
        }
        for dir in layer.dirs {
            let dir = absolute(&dir);
            if self.entries.get(&dir) != Some(&TreeEntry::Dir) {
                self.entries.insert(dir, TreeEntry::Dir);
            }
        }
        for (path, target) in layer.symlinks {
            let path = absolute(&path);
            self.remove_under(&path);
            self.entries.insert(path, TreeEntry::Symlink(target));
        }
        for (path, file) in layer.files {
            let path = absolute(&path);
            self.remove_under(&path);
            if let FileContent::Sha256(d) = file.content {
                self.entries.insert(path, TreeEntry::File(d));
            }
        }
    }

    fn remove_under(&mut self, dir: &str) {
        let prefix = if dir == "/" {
            dir.to_string()
        } else {
            format!("{dir}/")
        };
        let under: Vec<String> = self
            .entries
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .map(|(p, _)| p.clone())
            .collect();
        for p in under {
            self.entries.remove(&p);
        }
    }
}

/// `/` and a normalized path.
fn absolute(path: &str) -> String {
    format!("/{}", layer::normalize(path))
}

/// Reads the entries under `paths` (absolute) of an image for one platform,
/// checking every layer's digests as [`super::read_catalogue`] does. Layers
/// are read one after the other and not cached.
pub fn read_tree(
    source: &dyn ImageSource,
    platform: &Platform,
    opts: &ReadOptions,
    paths: &[String],
) -> Result<FileTree, ImageError> {
    let image = source.resolve(platform)?;
    let paths: Vec<String> = paths.iter().map(|p| layer::normalize(p)).collect();
    let mut tree = FileTree::default();
    if let Some(unpacked) = source.unpacked_layers(&image, opts, Some(&paths)) {
        for layer in unpacked?.0 {
            tree.apply(layer);
        }
        return Ok(tree);
    }
    let collected = std::sync::atomic::AtomicU64::new(0);
    for (i, l) in image.layers.iter().enumerate() {
        let ctx = layer::LayerCtx {
            reference: source.reference(),
            index: i,
            layer: l,
            opts,
            collected: &collected,
        };
        tree.apply(layer::read_layer_tree(
            &ctx,
            &|| source.open_layer(l),
            &paths,
        )?);
    }
    Ok(tree)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_lists_only_the_directory() {
        let mut tree = FileTree::default();
        let d = Digest::sha256_of(b"x");
        for p in ["/opt/a", "/opt/a/b", "/opt/ab", "/opt/a/c/d"] {
            tree.entries.insert(p.into(), TreeEntry::File(d.clone()));
        }
        let rel: Vec<&str> = tree.under("opt/a/").map(|(p, _)| p).collect();
        assert_eq!(rel, ["b", "c/d"]);
        tree.remove_under("/opt/a");
        assert!(tree.get("/opt/a").is_some() && tree.get("/opt/ab").is_some());
        assert_eq!(tree.under("/opt/a").count(), 0);
    }
}

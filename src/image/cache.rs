//! Per-layer results cached by diff_id: a layer read once costs nothing the
//! second time. Entries are written only after both digests were checked.
//! The cache is an optimisation: failing to read or write it is not an error.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::layer::LayerCollection;
use crate::oci::Digest;

/// Bump when what a layer collects changes, so old entries are not used.
const VERSION: &str = "v5";

fn path(dir: &Path, diff_id: &Digest) -> PathBuf {
    dir.join("image-layers")
        .join(VERSION)
        .join(format!("{}.json", diff_id.hex()))
}

pub(crate) fn load(dir: &Path, diff_id: &Digest) -> Option<LayerCollection> {
    let bytes = fs_err::read(path(dir, diff_id)).ok()?;
    let c: LayerCollection = serde_json::from_slice(&bytes).ok()?;
    (c.stats.diff_id == *diff_id).then_some(c)
}

pub(crate) fn store(dir: &Path, diff_id: &Digest, c: &LayerCollection) {
    let target = path(dir, diff_id);
    let Some(parent) = target.parent() else {
        return;
    };
    if fs_err::create_dir_all(parent).is_err() {
        return;
    }
    let Ok(bytes) = serde_json::to_vec(c) else {
        return;
    };
    // Write then rename, so a reader never sees half an entry.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let tmp = target.with_extension(format!("json.{}.{n}.tmp", std::process::id()));
    if fs_err::write(&tmp, bytes).is_ok() && fs_err::rename(&tmp, &target).is_err() {
        let _ = fs_err::remove_file(&tmp);
    }
}

//! OCI image layouts on disk (`oci:DIR[:TAG]`): `index.json` plus
//! content-addressed blobs.

use std::path::Path;

use bytes::Bytes;
use oci_spec::image::{Descriptor, ImageIndex};

use crate::oci::Digest;

/// The annotation naming a tag in `index.json`.
const REF_NAME: &str = "org.opencontainers.image.ref.name";

pub(crate) fn read_index(dir: &Path) -> Result<ImageIndex, String> {
    let path = dir.join("index.json");
    let text = fs_err::read(&path).map_err(|e| e.to_string())?;
    serde_json::from_slice(&text).map_err(|e| format!("`index.json` is invalid: {e}"))
}

/// The entry for a tag, or the only entry when no tag is given.
pub(crate) fn find(index: &ImageIndex, reference: Option<&str>) -> Result<Descriptor, String> {
    let entries = index.manifests();
    fn tagged(d: &Descriptor) -> Option<&str> {
        d.annotations()
            .as_ref()
            .and_then(|a| a.get(REF_NAME))
            .map(String::as_str)
    }
    let found: Vec<&Descriptor> = match reference {
        Some(r) => entries
            .iter()
            .filter(|d| tagged(d) == Some(r) || d.digest().to_string() == r)
            .collect(),
        None => entries.iter().collect(),
    };
    match found.as_slice() {
        [one] => Ok((*one).clone()),
        [] => {
            let mut tags: Vec<&str> = entries.iter().filter_map(tagged).collect();
            tags.sort_unstable();
            Err(format!(
                "it has no image `{}`; its tags are {}",
                reference.unwrap_or_default(),
                if tags.is_empty() {
                    "none".to_string()
                } else {
                    tags.join(", ")
                }
            ))
        }
        _ => Err(format!(
            "{} entries match `{}`; name one tag",
            found.len(),
            reference.unwrap_or("(no tag)")
        )),
    }
}

/// A blob's bytes, checked against its digest by the caller.
pub(crate) fn read_blob(dir: &Path, digest: &Digest, limit: u64) -> Result<Bytes, String> {
    let path = dir
        .join("blobs")
        .join(digest.algorithm().as_str())
        .join(digest.hex());
    let len = fs_err::metadata(&path).map_err(|e| e.to_string())?.len();
    if len > limit {
        return Err(format!("blob `{digest}` is larger than {limit} bytes"));
    }
    fs_err::read(&path)
        .map(Bytes::from)
        .map_err(|e| e.to_string())
}

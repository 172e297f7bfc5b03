//! A squashfs (a SIF's root filesystem, or an OCI-SIF layer) read in place,
//! without mounting or extracting, and presented to the catalogue as one
//! layer: the same selection of files a tar layer goes through.

use std::io::{BufReader, Read, Seek};

use backhand::{FilesystemReader, InnerNode};

use super::super::layer::{self, EntryKind, LayerCollection, LayerCtx};
use super::super::{Compression, ImageError, LayerStats};

/// Reads the squashfs in `reader` (exactly its bytes) as a layer. `ctx`
/// names the layer in errors and carries the size limits.
pub(crate) fn collect<R: Read + Seek + Send>(
    ctx: &LayerCtx<'_>,
    reader: R,
    size: u64,
) -> Result<LayerCollection, ImageError> {
    let fs = FilesystemReader::from_reader(BufReader::with_capacity(128 * 1024, reader)).map_err(
        |e| ImageError::Malformed {
            reference: ctx.reference.to_string(),
            what: format!("the squashfs of layer {}", ctx.index + 1),
            message: e.to_string(),
        },
    )?;
    let mut out = LayerCollection::empty(LayerStats {
        diff_id: ctx.layer.diff_id.clone(),
        // The stream is the filesystem itself; its blocks' own compression
        // is squashfs's business.
        compression: Compression::None,
        compressed_size: size,
        uncompressed_size: size,
        entries: 0,
        files: 0,
        file_bytes: 0,
        whiteouts: 0,
    });
    for node in fs.files() {
        let path = node.fullpath.to_string_lossy();
        if layer::normalize(&path).is_empty() {
            continue;
        }
        let mode = u32::from(node.header.permissions);
        match &node.inner {
            InnerNode::File(file) => {
                let mut content = fs.file(file).reader();
                layer::collect_entry(
                    ctx,
                    &mut out,
                    &path,
                    EntryKind::File,
                    mode,
                    file.file_len() as u64,
                    &mut content,
                )?;
            }
            InnerNode::Symlink(link) => {
                let target = link.link.to_string_lossy();
                layer::collect_entry(
                    ctx,
                    &mut out,
                    &path,
                    EntryKind::Symlink(&target),
                    mode,
                    0,
                    &mut std::io::empty(),
                )?;
            }
            InnerNode::Dir(_) => layer::collect_entry(
                ctx,
                &mut out,
                &path,
                EntryKind::Dir,
                mode,
                0,
                &mut std::io::empty(),
            )?,
            // overlayfs marks a deleted path with a 0/0 character device.
            InnerNode::CharacterDevice(c) if c.device_number == 0 => layer::collect_entry(
                ctx,
                &mut out,
                &path,
                EntryKind::Whiteout,
                mode,
                0,
                &mut std::io::empty(),
            )?,
            _ => layer::collect_entry(
                ctx,
                &mut out,
                &path,
                EntryKind::Other,
                mode,
                0,
                &mut std::io::empty(),
            )?,
        }
    }
    Ok(out)
}

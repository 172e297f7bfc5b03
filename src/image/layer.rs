//! Reads one layer as a stream: decompresses, checks both digests, walks the
//! tar and keeps only the entries that matter, never extracting to disk.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufRead, Read, Seek, SeekFrom};

use flate2::bufread::MultiGzDecoder;
use serde::{Deserialize, Serialize};

use super::digest::{HashedChunks, HashingReader};
use super::{ImageError, ReadOptions};
use crate::oci::{Digest, LayerRef};

/// How a layer blob is compressed, as read from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// What the media type claims.
    pub fn from_media_type(media_type: &str) -> Option<Self> {
        if media_type.ends_with("+zstd") || media_type.ends_with(".zstd") {
            Some(Self::Zstd)
        } else if media_type.ends_with("+gzip")
            || media_type.ends_with(".gzip")
            || media_type == "application/vnd.docker.image.rootfs.diff.tar.gzip"
        {
            Some(Self::Gzip)
        } else if media_type.ends_with(".tar") || media_type.ends_with("diff.tar") {
            Some(Self::None)
        } else {
            None
        }
    }

    /// What the first bytes say; they win over the media type, because some
    /// registries label zstd layers as gzip and the other way round.
    fn sniff(head: &[u8]) -> Option<Self> {
        if head.starts_with(&[0x1f, 0x8b]) {
            Some(Self::Gzip)
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Self::Zstd)
        } else if head.starts_with(b"BZh") || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            None
        } else {
            Some(Self::None)
        }
    }
}

/// Counts for one layer; what is not collected is only counted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerStats {
    /// Uncompressed digest, from the image config.
    pub diff_id: Digest,
    pub compression: Compression,
    /// Blob size as stored.
    pub compressed_size: u64,
    /// Size of the tar stream.
    pub uncompressed_size: u64,
    /// Tar entries of any kind.
    pub entries: u64,
    /// Regular files and their total size.
    pub files: u64,
    pub file_bytes: u64,
    pub whiteouts: u64,
}

/// What one layer contributes, before layers are merged. Cached by diff_id.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct LayerCollection {
    /// Paths this layer deletes from lower layers (`.wh.NAME`).
    pub whiteouts: Vec<String>,
    /// Directories whose lower-layer contents this layer hides
    /// (`.wh..wh..opq`).
    pub opaque_dirs: Vec<String>,
    pub files: BTreeMap<String, CollectedFile>,
    pub symlinks: BTreeMap<String, String>,
    /// Directories that matter (Python library dirs, `site-packages`,
    /// `conda-meta`), seen as entries or as parents of entries.
    pub dirs: BTreeSet<String>,
    pub stats: LayerStats,
}

impl LayerCollection {
    /// About how many bytes of paths and text this holds: what a
    /// [`super::LayerMemo`] counts against its budget.
    pub(crate) fn weight(&self) -> u64 {
        let files: usize = self
            .files
            .iter()
            .map(|(path, file)| {
                path.len()
                    + 64
                    + match &file.content {
                        FileContent::Text(text) => text.len(),
                        FileContent::Bytes(bytes) => bytes.len(),
                        FileContent::Glibc(_) | FileContent::Present | FileContent::Sha256(_) => 0,
                    }
            })
            .sum();
        let symlinks: usize = self
            .symlinks
            .iter()
            .map(|(a, b)| a.len() + b.len() + 64)
            .sum();
        let paths: usize = self
            .dirs
            .iter()
            .chain(&self.whiteouts)
            .chain(&self.opaque_dirs)
            .map(|p| p.len() + 32)
            .sum();
        (files + symlinks + paths) as u64
    }
}

/// A collected file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct CollectedFile {
    pub mode: u32,
    pub size: u64,
    pub content: FileContent,
}

/// What is kept of a collected file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum FileContent {
    /// Small text files (metadata, records, status databases).
    Text(String),
    /// `libc.so.6`: the version from its banner, when found in the scanned
    /// prefix.
    Glibc(Option<String>),
    /// Files whose name is all that matters (`bin/python3.11`, `libc-2.31.so`).
    Present,
    /// Small files kept as they are: apt's sources, pins, configuration
    /// and keyrings (binary `.gpg` keyrings included).
    Bytes(Vec<u8>),
    /// The sha256 of the file's bytes (files read by [`read_layer_tree`]).
    Sha256(Digest),
}

/// Why an entry is interesting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    Text,
    Bytes,
    Libc,
    Name,
    Digest,
}

/// Normalizes a tar path: no leading `./` or `/`, no trailing `/`.
pub(crate) fn normalize(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    out.join("/")
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn parent(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

/// `python3.11` → true.
fn is_python_version_name(name: &str) -> bool {
    name.strip_prefix("python3.")
        .is_some_and(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()))
}

fn want(path: &str) -> Option<Want> {
    let name = basename(path);
    let dir = parent(path);
    let dir_name = basename(dir);
    if dir_name == "conda-meta" && (name.ends_with(".json") || name == "history") {
        return Some(Want::Text);
    }
    if dir_name.ends_with(".dist-info")
        && matches!(
            name,
            "METADATA" | "INSTALLER" | "WHEEL" | "RECORD" | "direct_url.json"
        )
    {
        return in_packages_dir(parent(dir)).then_some(Want::Text);
    }
    if dir_name.ends_with(".egg-info") && name == "PKG-INFO" {
        return in_packages_dir(parent(dir)).then_some(Want::Text);
    }
    if name.ends_with(".egg-info") && in_packages_dir(dir) {
        // The file form; the directory form has no content and is not a file.
        return Some(Want::Text);
    }
    match path {
        "var/lib/dpkg/status"
        | "lib/apk/db/installed"
        | "etc/os-release"
        | "usr/lib/os-release" => return Some(Want::Text),
        _ => {}
    }
    if dir == "var/lib/dpkg/status.d" && !name.contains('.') {
        return Some(Want::Text);
    }
    if dir != "var/lib/dpkg/status.d" && crate::image::dpkg::is_apt_state_file(&format!("/{path}"))
    {
        return Some(Want::Bytes);
    }
    if crate::image::rpmdb::is_rpm_state_file(path) {
        return Some(Want::Bytes);
    }
    if crate::image::formats::is_apk_state_file(path) {
        return Some(Want::Bytes);
    }
    if is_conda_config_file(path) {
        return Some(Want::Text);
    }
    if name == "libc.so.6" {
        return Some(Want::Libc);
    }
    if is_libc_name(name) || (dir_name == "bin" && is_python_version_name(name)) {
        return Some(Want::Name);
    }
    None
}

/// conda's configuration files wherever conda's search path may lead
/// (`.condarc`, `condarc`, `condarc.d/*.yml`, of `/etc/conda`, a root
/// prefix, a home directory), each prefix's `conda-meta/pinned`, and
/// `/etc/passwd`, which says where the image user's home is. `path` is
/// normalized (no leading `/`).
pub(crate) fn is_conda_config_file(path: &str) -> bool {
    let name = basename(path);
    path == "etc/passwd"
        || (name == "pinned" && basename(parent(path)) == "conda-meta")
        || name == ".condarc"
        || (name == "condarc" && path.contains('/'))
        || (basename(parent(path)) == "condarc.d"
            && (name.ends_with(".yml") || name.ends_with(".yaml")))
}

/// `libc-2.31.so`, `ld-linux-x86-64.so.2`, `ld-2.31.so`, `ld-musl-x86_64.so.1`.
pub(crate) fn is_libc_name(name: &str) -> bool {
    (name.starts_with("libc-") && name.ends_with(".so"))
        || (name.starts_with("ld-linux") && name.contains(".so."))
        || (name.starts_with("ld-musl-") && name.ends_with(".so.1"))
        || (name.starts_with("ld-2.") && name.ends_with(".so"))
}

fn in_packages_dir(dir: &str) -> bool {
    let name = basename(dir);
    name == "site-packages" || name == "dist-packages"
}

/// Symlinks worth recording: those named like something collected, and the
/// top-level ones (`lib -> usr/lib`) that decide where paths really lead.
fn want_symlink(path: &str) -> bool {
    let name = basename(path);
    !path.contains('/')
        || want(path).is_some()
        || name.starts_with("python")
        || name.starts_with("libc")
        || name.starts_with("ld-")
        || name.ends_with("-packages")
}

/// Records `path` when it is a whiteout (`.wh.NAME` deletes NAME below,
/// `.wh..wh..opq` makes its directory opaque); whether it was one.
fn note_whiteout(path: &str, out: &mut LayerCollection) -> bool {
    let Some(hidden) = basename(path).strip_prefix(".wh.") else {
        return false;
    };
    out.stats.whiteouts += 1;
    let dir = parent(path);
    if hidden == ".wh..opq" {
        out.opaque_dirs.push(dir.to_string());
    } else if !hidden.starts_with(".wh.") {
        out.whiteouts.push(if dir.is_empty() {
            hidden.to_string()
        } else {
            format!("{dir}/{hidden}")
        });
    }
    true
}

/// Directories that matter, from any entry's path: `P/lib/python3.X`, its
/// `site-packages`/`dist-packages`, Debian's `P/lib/python3/dist-packages`,
/// and `conda-meta`.
fn note_dirs(path: &str, dirs: &mut BTreeSet<String>) {
    if path.contains("python3") {
        let segs: Vec<&str> = path.split('/').collect();
        for i in 0..segs.len().saturating_sub(1) {
            if segs[i] == "lib" && (is_python_version_name(segs[i + 1]) || segs[i + 1] == "python3")
            {
                let lib = segs[..=i + 1].join("/");
                if is_python_version_name(segs[i + 1]) && !dirs.contains(&lib) {
                    dirs.insert(lib.clone());
                }
                if let Some(pk) = segs
                    .get(i + 2)
                    .filter(|s| **s == "site-packages" || **s == "dist-packages")
                {
                    let site = format!("{lib}/{pk}");
                    if !dirs.contains(&site) {
                        dirs.insert(site);
                    }
                }
                break;
            }
        }
    }
    if let Some(i) = path.find("conda-meta") {
        let end = i + "conda-meta".len();
        let at_start = i == 0 || path.as_bytes()[i - 1] == b'/';
        let at_end = end == path.len() || path.as_bytes()[end] == b'/';
        if at_start && at_end && !dirs.contains(&path[..end]) {
            dirs.insert(path[..end].to_string());
        }
    }
}

/// The decompressor stack over the blob; kept as an enum so the blob reader
/// can be taken back out to hash its tail.
enum Decoder<R: BufRead> {
    Plain(R),
    Gzip(Box<MultiGzDecoder<R>>),
    Zstd(zstd::stream::read::Decoder<'static, R>),
}

impl<R: BufRead> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(r) => r.read(buf),
            Self::Gzip(r) => r.read(buf),
            Self::Zstd(r) => r.read(buf),
        }
    }
}

impl<R: BufRead> Decoder<R> {
    fn into_inner(self) -> R {
        match self {
            Self::Plain(r) => r,
            Self::Gzip(r) => (*r).into_inner(),
            Self::Zstd(r) => r.finish(),
        }
    }
}

/// A reader that fails once more than `limit` bytes came through: the guard
/// against decompression bombs.
struct Limited<R> {
    inner: R,
    /// Bytes read so far.
    count: u64,
    limit: u64,
    /// Compressed bytes read so far, and the largest ratio of uncompressed
    /// to compressed bytes accepted (0: no ratio limit).
    compressed: std::sync::Arc<std::sync::atomic::AtomicU64>,
    max_ratio: u64,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        let out = self.count;
        if out > self.limit {
            return Err(io::Error::other("layer exceeds the size limit"));
        }
        if self.max_ratio > 0 && out > RATIO_FLOOR {
            let read = self
                .compressed
                .load(std::sync::atomic::Ordering::Relaxed)
                .max(1);
            if out / read > self.max_ratio {
                return Err(limit_hit(
                    format!(
                        "expands more than {} times ({read} compressed bytes gave {out})",
                        self.max_ratio
                    ),
                    "a decompression bomb, or a layer of mostly zeros; raise `max-decompression-ratio` under `[limits]` in imagelock.toml if it is real",
                ));
            }
        }
        Ok(n)
    }
}

/// Counts the compressed bytes the decompressor consumed (not what was
/// buffered ahead), shared with [`Limited`] for the ratio check.
struct Consumed<R> {
    inner: R,
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Consumed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Consumed<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        self.count
            .fetch_add(amt as u64, std::sync::atomic::Ordering::Relaxed);
        self.inner.consume(amt);
    }
}

/// Uncompressed bytes a layer may produce before the ratio check applies:
/// small layers of zeros are fine whatever their ratio.
const RATIO_FLOOR: u64 = 64 << 20;

/// Why a read stopped at a limit; carried through `io::Error` so the
/// caller can turn it into [`ImageError::LayerLimit`].
#[derive(Debug)]
struct LimitHit {
    what: String,
    hint: String,
}

impl std::fmt::Display for LimitHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.what)
    }
}

impl std::error::Error for LimitHit {}

fn limit_hit(what: String, hint: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        LimitHit {
            what,
            hint: hint.to_string(),
        },
    )
}

/// Watches the tar stream on its way into the `tar` crate and stops it at
/// an oversized GNU long name or link, or PAX header, before the crate
/// reads one into memory (it would take a 512 MiB long name whole). Tracks
/// header positions as the crate does: entry sizes (with a PAX `size`
/// override), 512-byte padding, and GNU sparse extension blocks.
struct TarGuard<R> {
    inner: R,
    /// Largest extension header accepted.
    cap: u64,
    state: GuardState,
    header: [u8; 512],
    filled: usize,
    /// The data of the PAX header being read.
    pax: Vec<u8>,
    /// `size` from the last PAX header, for the next real entry.
    pax_size: Option<u64>,
}

enum GuardState {
    Header,
    SparseExtension {
        size: u64,
    },
    /// `left` bytes of data and padding; `pax` bytes of it are PAX records.
    Data {
        left: u64,
        pax: u64,
    },
}

impl<R> TarGuard<R> {
    fn new(inner: R, cap: u64) -> Self {
        Self {
            inner,
            cap,
            state: GuardState::Header,
            header: [0; 512],
            filled: 0,
            pax: Vec::new(),
            pax_size: None,
        }
    }

    fn watch(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match &mut self.state {
                GuardState::Header | GuardState::SparseExtension { .. } => {
                    let take = (512 - self.filled).min(bytes.len());
                    self.header[self.filled..self.filled + take].copy_from_slice(&bytes[..take]);
                    self.filled += take;
                    bytes = &bytes[take..];
                    if self.filled == 512 {
                        self.filled = 0;
                        self.on_block()?;
                    }
                }
                GuardState::Data { left, pax } => {
                    let take = usize::try_from(*left)
                        .unwrap_or(usize::MAX)
                        .min(bytes.len());
                    let keep = usize::try_from(*pax).unwrap_or(usize::MAX).min(take);
                    self.pax.extend_from_slice(&bytes[..keep]);
                    *pax -= keep as u64;
                    *left -= take as u64;
                    bytes = &bytes[take..];
                    if *left == 0 {
                        self.end_data();
                    }
                }
            }
        }
        Ok(())
    }

    /// An entry's data and padding are passed: a header comes next.
    fn end_data(&mut self) {
        self.state = GuardState::Header;
        if !self.pax.is_empty() {
            self.pax_size = pax_value(&self.pax, "size");
            self.pax.clear();
        }
    }

    fn on_block(&mut self) -> io::Result<()> {
        let h = &self.header;
        if let GuardState::SparseExtension { size } = self.state {
            // `isextended` of a GNU sparse extension block.
            self.state = if h[504] != 0 {
                GuardState::SparseExtension { size }
            } else {
                data(size, 0)
            };
            return Ok(());
        }
        if h.iter().all(|&b| b == 0) {
            return Ok(());
        }
        let kind = h[156];
        let magic = &h[257..265];
        let gnu = magic == b"ustar  \0";
        let recognized = gnu || magic == b"ustar\x0000";
        let Some(mut size) = header_size(&h[124..136]) else {
            // The `tar` crate rejects it with its own message.
            return Ok(());
        };
        let extension = matches!(kind, b'L' | b'K' | b'x' | b'g');
        if recognized && matches!(kind, b'L' | b'K' | b'x') && size > self.cap {
            let what = match kind {
                b'L' => "a GNU long name",
                b'K' => "a GNU long link name",
                _ => "a PAX header",
            };
            return Err(limit_hit(
                format!(
                    "has {what} of {size} bytes, more than the {} allowed",
                    self.cap
                ),
                "a tar header this large is an attack on the reader, not a real file name",
            ));
        }
        if !extension && let Some(pax) = self.pax_size.take() {
            size = pax;
        }
        let pax = if recognized && kind == b'x' { size } else { 0 };
        self.state = if gnu && kind == b'S' && h[482] != 0 {
            GuardState::SparseExtension { size }
        } else {
            data(size, pax)
        };
        Ok(())
    }
}

fn data(size: u64, pax: u64) -> GuardState {
    let left = size.div_ceil(512).saturating_mul(512);
    if left == 0 {
        GuardState::Header
    } else {
        GuardState::Data { left, pax }
    }
}

/// A tar numeric field: octal, or base-256 when the top bit is set (as the
/// `tar` crate reads it).
fn header_size(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        let mut n = 0u64;
        for &b in &field[field.len() - 8..] {
            n = n.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(n);
    }
    let text = std::str::from_utf8(field).ok()?;
    let text = text.trim_matches(|c: char| c == ' ' || c == '\0');
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

/// The value of `key` in PAX records (`LEN key=value\n`).
fn pax_value(records: &[u8], key: &str) -> Option<u64> {
    let mut rest = records;
    let mut found = None;
    while !rest.is_empty() {
        let space = rest.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(&rest[..space]).ok()?.parse().ok()?;
        if len <= space || len > rest.len() {
            return found;
        }
        let record = &rest[space + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(value) = record
            .strip_prefix(key.as_bytes())
            .and_then(|r| r.strip_prefix(b"="))
        {
            found = std::str::from_utf8(value).ok()?.parse().ok();
        }
        rest = &rest[len..];
    }
    found
}

impl<R: Read> Read for TarGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.watch(&buf[..n])?;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for TarGuard<R> {
    /// Forward and relative, as the `tar` crate skips file contents: data
    /// that is not a PAX header is passed to `inner` to skip; anything
    /// else (headers, PAX records) is read and watched as a read would be.
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let SeekFrom::Current(delta) = pos else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "a layer's tar stream only seeks relative to where it is",
            ));
        };
        let mut left = u64::try_from(delta).map_err(|_| {
            io::Error::new(
                io::ErrorKind::Unsupported,
                "a layer's tar stream only seeks forward",
            )
        })?;
        let mut scratch = [0u8; 512];
        while left > 0 {
            if let GuardState::Data { left: data, pax: 0 } = &mut self.state {
                let step = left.min(*data);
                self.inner
                    .seek(SeekFrom::Current(i64::try_from(step).unwrap_or(i64::MAX)))?;
                *data -= step;
                left -= step;
                if *data == 0 {
                    self.end_data();
                }
            } else {
                let want = usize::try_from(left).unwrap_or(usize::MAX).min(512);
                let n = self.read(&mut scratch[..want])?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "unexpected EOF during skip",
                    ));
                }
                left -= n as u64;
            }
        }
        self.inner.stream_position()
    }
}

/// Where a layer's bytes come from: opened once, and again only when a hard
/// link points at a file the first pass did not keep.
pub(crate) type OpenBlob<'a> =
    dyn Fn() -> Result<Box<dyn Read + Send + 'a>, ImageError> + Sync + 'a;

/// Which entries a pass keeps.
enum Pass<'s> {
    /// Everything that matters.
    Full,
    /// Only these paths (hard link targets), with the given wants.
    Targets(&'s BTreeMap<String, Want>),
    /// Every entry under these paths, files by their digest.
    Tree(&'s [String]),
}

/// Context for error messages.
pub(crate) struct LayerCtx<'a> {
    pub reference: &'a str,
    pub index: usize,
    pub layer: &'a LayerRef,
    pub opts: &'a ReadOptions,
    /// Text collected so far from all layers of the image, against
    /// [`ReadOptions::max_collected_text`].
    pub collected: &'a std::sync::atomic::AtomicU64,
}

impl LayerCtx<'_> {
    fn name(&self) -> String {
        format!("{} ({})", self.index + 1, self.layer.diff_id)
    }

    fn limit(&self, what: String, hint: String) -> ImageError {
        ImageError::LayerLimit {
            reference: self.reference.to_string(),
            layer: self.name(),
            what,
            hint,
        }
    }

    fn tar_error(&self, source: io::Error) -> ImageError {
        if source.get_ref().is_some_and(|e| e.is::<LimitHit>()) {
            let hit = source
                .into_inner()
                .and_then(|e| e.downcast::<LimitHit>().ok())
                .map_or_else(
                    || LimitHit {
                        what: "hit a limit".into(),
                        hint: String::new(),
                    },
                    |hit| *hit,
                );
            return self.limit(hit.what, hit.hint);
        }
        ImageError::Layer {
            reference: self.reference.to_string(),
            layer: self.name(),
            source,
        }
    }
}

/// Counts the metadata text of a layer read earlier in the run against
/// [`ReadOptions::max_collected_text`], as reading it again would.
pub(crate) fn count_collected(
    ctx: &LayerCtx<'_>,
    layer: &LayerCollection,
) -> Result<(), ImageError> {
    let cap = ctx.opts.max_collected_text;
    for (path, file) in &layer.files {
        if !matches!(file.content, FileContent::Text(_) | FileContent::Bytes(_)) {
            continue;
        }
        let before = ctx
            .collected
            .fetch_add(file.size, std::sync::atomic::Ordering::Relaxed);
        if before.saturating_add(file.size) > cap {
            return Err(collected_limit(ctx, cap, path));
        }
    }
    Ok(())
}

fn collected_limit(ctx: &LayerCtx<'_>, cap: u64, path: &str) -> ImageError {
    ctx.limit(
        format!(
            "brings the metadata files collected from the image to more than {cap} bytes (at `{path}`)"
        ),
        "no real image has this much package metadata; raise `max-collected-text` under `[limits]` in imagelock.toml if this one does".into(),
    )
}

/// Reads one layer and returns what it contributes.
pub(crate) fn read_layer(
    ctx: &LayerCtx<'_>,
    open: &OpenBlob<'_>,
) -> Result<LayerCollection, ImageError> {
    read_layer_pass(ctx, open, &Pass::Full)
}

/// Reads one layer for the entries under `paths` (normalized): files with
/// their sha256, symlinks, directories, and the whiteouts.
pub(crate) fn read_layer_tree(
    ctx: &LayerCtx<'_>,
    open: &OpenBlob<'_>,
    paths: &[String],
) -> Result<LayerCollection, ImageError> {
    read_layer_pass(ctx, open, &Pass::Tree(paths))
}

fn read_layer_pass(
    ctx: &LayerCtx<'_>,
    open: &OpenBlob<'_>,
    pass: &Pass<'_>,
) -> Result<LayerCollection, ImageError> {
    let mut pending: BTreeMap<String, (String, Want, u32)> = BTreeMap::new();
    let mut collection = scan(ctx, open()?, pass, &mut pending)?;
    if !pending.is_empty() {
        // Hard links to files the first pass did not keep: read those files
        // in a second pass (rare: e.g. installers that hard-link from a cache
        // that sorts earlier in the tar).
        let targets: BTreeMap<String, Want> = pending
            .values()
            .map(|(target, want, _)| (target.clone(), *want))
            .collect();
        let mut none = BTreeMap::new();
        let second = scan(ctx, open()?, &Pass::Targets(&targets), &mut none)?;
        for (path, (target, _, mode)) in pending {
            if let Some(file) = second.files.get(&target) {
                let mut file = file.clone();
                file.mode = mode;
                collection.files.insert(path, file);
            }
        }
    }
    Ok(collection)
}

fn scan(
    ctx: &LayerCtx<'_>,
    blob: Box<dyn Read + Send + '_>,
    pass: &Pass<'_>,
    pending: &mut BTreeMap<String, (String, Want, u32)>,
) -> Result<LayerCollection, ImageError> {
    let io_err = |e| ctx.tar_error(e);
    let compressed_count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut compressed = Consumed {
        inner: HashedChunks::new(blob),
        count: compressed_count.clone(),
    };
    let head = compressed.inner.fill_buf().map_err(io_err)?;
    let claimed = ctx
        .layer
        .media_type
        .as_deref()
        .and_then(Compression::from_media_type);
    let compression = match (Compression::sniff(head), claimed) {
        (Some(c), _) if !head.is_empty() => c,
        (None, _) => {
            return Err(ImageError::UnsupportedCompression {
                reference: ctx.reference.to_string(),
                layer: ctx.name(),
                media_type: ctx.layer.media_type.clone().unwrap_or_default(),
            });
        }
        (Some(_), claimed) => claimed.unwrap_or(Compression::None),
    };
    let decoder = match compression {
        Compression::None => Decoder::Plain(compressed),
        Compression::Gzip => Decoder::Gzip(Box::new(MultiGzDecoder::new(compressed))),
        Compression::Zstd => {
            Decoder::Zstd(zstd::stream::read::Decoder::with_buffer(compressed).map_err(io_err)?)
        }
    };
    let limit = ctx.opts.max_layer_size;
    let too_large = || ImageError::LayerTooLarge {
        reference: ctx.reference.to_string(),
        layer: ctx.name(),
        limit,
    };
    let mut archive = tar::Archive::new(TarGuard::new(
        HashedChunks::new(Limited {
            inner: decoder,
            count: 0,
            limit,
            compressed: compressed_count,
            max_ratio: ctx.opts.max_decompression_ratio,
        }),
        ctx.opts.max_header_extension,
    ));
    let mut out = LayerCollection {
        whiteouts: Vec::new(),
        opaque_dirs: Vec::new(),
        files: BTreeMap::new(),
        symlinks: BTreeMap::new(),
        dirs: BTreeSet::new(),
        stats: LayerStats {
            diff_id: ctx.layer.diff_id.clone(),
            compression,
            compressed_size: 0,
            uncompressed_size: 0,
            entries: 0,
            files: 0,
            file_bytes: 0,
            whiteouts: 0,
        },
    };
    let walked = walk(ctx, &mut archive, pass, pending, &mut out);
    let mut stream = archive.into_inner().inner;
    if stream.get_ref().count > limit {
        return Err(too_large());
    }
    walked?;
    // The tar ends before the stream does (padding, end blocks): hash the
    // rest too, with the same limit.
    stream.drain().map_err(|e| {
        if stream.get_ref().count > limit {
            too_large()
        } else {
            ctx.tar_error(e)
        }
    })?;
    let (uncompressed_digest, uncompressed_size, limited) = stream.into_parts();
    let mut blob = limited.inner.into_inner().inner;
    blob.drain().map_err(io_err)?;
    let (blob_digest, blob_size, _) = blob.into_parts();
    if uncompressed_digest != ctx.layer.diff_id {
        return Err(ImageError::DiffIdMismatch {
            reference: ctx.reference.to_string(),
            layer: ctx.index + 1,
            expected: ctx.layer.diff_id.clone(),
            actual: uncompressed_digest,
        });
    }
    if let Some(expected) = &ctx.layer.digest
        && *expected != blob_digest
    {
        return Err(ImageError::BlobDigestMismatch {
            reference: ctx.reference.to_string(),
            what: format!("layer {}", ctx.index + 1),
            expected: expected.clone(),
            actual: blob_digest,
        });
    }
    if let Some(expected) = ctx.layer.size
        && expected != blob_size
    {
        return Err(ImageError::BlobSizeMismatch {
            reference: ctx.reference.to_string(),
            what: format!("layer {} ({})", ctx.index + 1, blob_digest),
            expected,
            actual: blob_size,
        });
    }
    out.stats.compressed_size = blob_size;
    out.stats.uncompressed_size = uncompressed_size;
    Ok(out)
}

fn walk<R: Read + Seek>(
    ctx: &LayerCtx<'_>,
    archive: &mut tar::Archive<R>,
    pass: &Pass<'_>,
    pending: &mut BTreeMap<String, (String, Want, u32)>,
    out: &mut LayerCollection,
) -> Result<(), ImageError> {
    let io_err = |e| ctx.tar_error(e);
    for entry in archive.entries_with_seek().map_err(io_err)? {
        let mut entry = entry.map_err(io_err)?;
        let path = normalize(&String::from_utf8_lossy(&entry.path_bytes()));
        let kind = entry.header().entry_type();
        let mode = entry.header().mode().unwrap_or(0o644);
        let size = entry.size();
        out.stats.entries += 1;
        if let Pass::Targets(targets) = pass {
            if let Some(want) = targets.get(&path)
                && kind.is_file()
            {
                let file = read_wanted(ctx, &path, *want, mode, size, &mut entry)?;
                out.files.insert(path, file);
            }
            continue;
        }
        if let Pass::Tree(paths) = pass {
            if note_whiteout(&path, out) || !under_any(&path, paths) {
                continue;
            }
            tree_entry(ctx, path, &mut entry, pending, out)?;
            continue;
        }
        if note_whiteout(&path, out) {
            continue;
        }
        note_dirs(&path, &mut out.dirs);
        if kind.is_file() {
            out.stats.files += 1;
            out.stats.file_bytes += size;
            if let Some(want) = want(&path) {
                let file = read_wanted(ctx, &path, want, mode, size, &mut entry)?;
                out.files.insert(path, file);
            }
        } else if kind.is_symlink() {
            if want_symlink(&path)
                && let Some(target) = entry.link_name_bytes()
            {
                out.symlinks
                    .insert(path, String::from_utf8_lossy(&target).into_owned());
            }
        } else if kind.is_hard_link() {
            if let Some(want) = want(&path)
                && let Some(target) = entry.link_name_bytes()
            {
                let target = normalize(&String::from_utf8_lossy(&target));
                if let Some(file) = out.files.get(&target) {
                    let mut file = file.clone();
                    file.mode = mode;
                    out.files.insert(path, file);
                } else if want == Want::Name {
                    out.files.insert(
                        path,
                        CollectedFile {
                            mode,
                            size: 0,
                            content: FileContent::Present,
                        },
                    );
                } else {
                    pending.insert(path, (target, want, mode));
                }
            }
        } else if kind.is_dir() && basename(&path) == "conda-meta" {
            out.dirs.insert(path);
        }
    }
    Ok(())
}

/// Whether `path` is one of `paths` or under one (all normalized; `""` is
/// the root).
pub(crate) fn under_any(path: &str, paths: &[String]) -> bool {
    paths.iter().any(|p| {
        p.is_empty()
            || path
                .strip_prefix(p.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// Records one tar entry of a [`Pass::Tree`].
fn tree_entry<R: Read>(
    ctx: &LayerCtx<'_>,
    path: String,
    entry: &mut tar::Entry<'_, R>,
    pending: &mut BTreeMap<String, (String, Want, u32)>,
    out: &mut LayerCollection,
) -> Result<(), ImageError> {
    let kind = entry.header().entry_type();
    let mode = entry.header().mode().unwrap_or(0o644);
    let size = entry.size();
    if kind.is_file() {
        let file = read_wanted(ctx, &path, Want::Digest, mode, size, entry)?;
        out.files.insert(path, file);
    } else if kind.is_symlink() {
        if let Some(target) = entry.link_name_bytes() {
            out.symlinks
                .insert(path, String::from_utf8_lossy(&target).into_owned());
        }
    } else if kind.is_hard_link() {
        if let Some(target) = entry.link_name_bytes() {
            let target = normalize(&String::from_utf8_lossy(&target));
            if let Some(file) = out.files.get(&target) {
                let mut file = file.clone();
                file.mode = mode;
                out.files.insert(path, file);
            } else {
                pending.insert(path, (target, Want::Digest, mode));
            }
        }
    } else if kind.is_dir() {
        out.dirs.insert(path);
    }
    Ok(())
}

/// One entry of a filesystem that is not a tar stream (a SIF's squashfs),
/// as [`collect_entry`] takes it.
pub(crate) enum EntryKind<'a> {
    File,
    Symlink(&'a str),
    Dir,
    /// An overlayfs whiteout (a 0/0 character device): hides `path` below.
    Whiteout,
    Other,
}

impl LayerCollection {
    /// Nothing collected yet; `stats` as the caller knows them.
    pub(crate) fn empty(stats: LayerStats) -> Self {
        Self {
            whiteouts: Vec::new(),
            opaque_dirs: Vec::new(),
            files: BTreeMap::new(),
            symlinks: BTreeMap::new(),
            dirs: BTreeSet::new(),
            stats,
        }
    }
}

/// Feeds one entry of a non-tar filesystem through the same selection as a
/// tar entry, so a squashfs gives the collection its tar would. `content`
/// is read only when the entry is wanted. Hard links need no case: such
/// filesystems give every name its own entry.
pub(crate) fn collect_entry(
    ctx: &LayerCtx<'_>,
    out: &mut LayerCollection,
    path: &str,
    kind: EntryKind<'_>,
    mode: u32,
    size: u64,
    content: &mut dyn Read,
) -> Result<(), ImageError> {
    let path = normalize(path);
    out.stats.entries += 1;
    if note_whiteout(&path, out) {
        return Ok(());
    }
    note_dirs(&path, &mut out.dirs);
    match kind {
        EntryKind::File => {
            out.stats.files += 1;
            out.stats.file_bytes += size;
            if let Some(want) = want(&path) {
                let file = read_wanted(ctx, &path, want, mode, size, content)?;
                out.files.insert(path, file);
            }
        }
        EntryKind::Symlink(target) => {
            if want_symlink(&path) {
                out.symlinks.insert(path, target.to_string());
            }
        }
        EntryKind::Dir => {
            if basename(&path) == "conda-meta" {
                out.dirs.insert(path);
            }
        }
        EntryKind::Whiteout => {
            out.stats.whiteouts += 1;
            out.whiteouts.push(path);
        }
        EntryKind::Other => {}
    }
    Ok(())
}

/// The banner glibc carries: `GNU C Library (…) stable release version 2.36.`
fn glibc_banner_version(bytes: &[u8]) -> Option<String> {
    const MARK: &[u8] = b"GNU C Library";
    const VERSION: &[u8] = b"release version ";
    let mut from = 0;
    while let Some(at) = find(&bytes[from..], MARK) {
        let start = from + at;
        let window = &bytes[start..bytes.len().min(start + 256)];
        if let Some(v) = find(window, VERSION) {
            let rest = &window[v + VERSION.len()..];
            let end = rest
                .iter()
                .position(|b| !(b.is_ascii_digit() || *b == b'.'))
                .unwrap_or(rest.len());
            let version = String::from_utf8_lossy(&rest[..end])
                .trim_end_matches('.')
                .to_string();
            if !version.is_empty() {
                return Some(version);
            }
        }
        from = start + MARK.len();
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn read_wanted(
    ctx: &LayerCtx<'_>,
    path: &str,
    want: Want,
    mode: u32,
    size: u64,
    entry: &mut dyn Read,
) -> Result<CollectedFile, ImageError> {
    let io_err = |e| ctx.tar_error(e);
    let content = match want {
        Want::Name => FileContent::Present,
        Want::Digest => {
            let (digest, _) = HashingReader::new(entry).finish().map_err(io_err)?;
            FileContent::Sha256(digest)
        }
        Want::Libc => {
            let mut head = Vec::new();
            entry
                .take(ctx.opts.libc_scan_bytes)
                .read_to_end(&mut head)
                .map_err(io_err)?;
            FileContent::Glibc(glibc_banner_version(&head))
        }
        Want::Text | Want::Bytes => {
            let limit = ctx.opts.max_file_size;
            if size > limit {
                return Err(ImageError::FileTooLarge {
                    reference: ctx.reference.to_string(),
                    layer: ctx.name(),
                    path: path.to_string(),
                    size,
                    limit,
                });
            }
            let cap = ctx.opts.max_collected_text;
            let before = ctx
                .collected
                .fetch_add(size, std::sync::atomic::Ordering::Relaxed);
            if before.saturating_add(size) > cap {
                return Err(collected_limit(ctx, cap, path));
            }
            let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            entry.take(limit).read_to_end(&mut bytes).map_err(io_err)?;
            if want == Want::Bytes {
                return Ok(CollectedFile {
                    mode,
                    size,
                    content: FileContent::Bytes(bytes),
                });
            }
            FileContent::Text(
                String::from_utf8(bytes)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            )
        }
    };
    Ok(CollectedFile {
        mode,
        size,
        content,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wanted_paths() {
        for p in [
            "opt/conda/conda-meta/numpy-1.26.4-py311_0.json",
            "conda-meta/history",
            "usr/local/lib/python3.11/site-packages/pip-24.0.dist-info/METADATA",
            "usr/lib/python3/dist-packages/six-1.16.0.dist-info/RECORD",
            "x/site-packages/foo.egg-info/PKG-INFO",
            "x/site-packages/foo-1.0-py3.11.egg-info",
            "var/lib/dpkg/status",
            "var/lib/dpkg/status.d/base",
            "lib/apk/db/installed",
            "etc/os-release",
            "opt/conda/.condarc",
            "etc/conda/condarc",
            "etc/conda/condarc.d/channels.yml",
            "home/mambauser/.config/conda/.condarc",
            "opt/conda/envs/app/conda-meta/pinned",
            "etc/passwd",
        ] {
            assert_eq!(want(p), Some(Want::Text), "{p}");
        }
        for p in [
            "etc/apt/sources.list",
            "etc/apt/sources.list.d/debian.sources",
            "etc/apt/preferences.d/backports",
            "etc/apt/apt.conf.d/docker-no-languages",
            "usr/share/keyrings/debian-archive-keyring.gpg",
            "etc/apt/trusted.gpg.d/debian-archive-bookworm-stable.asc",
            "var/lib/apt/extended_states",
        ] {
            assert_eq!(want(p), Some(Want::Bytes), "{p}");
        }
        assert_eq!(want("usr/lib/x86_64-linux-gnu/libc.so.6"), Some(Want::Libc));
        assert_eq!(want("usr/local/bin/python3.11"), Some(Want::Name));
        for p in [
            "usr/local/lib/python3.11/site-packages/pip/__init__.py",
            "root/.cache/uv/foo.dist-info/METADATA",
            "var/lib/dpkg/status.d/base.md5sums",
            "usr/local/bin/python3.11-config",
            "etc/conda/condarc.d/README",
            "etc/passwd-",
        ] {
            assert_eq!(want(p), None, "{p}");
        }
    }

    #[test]
    fn dirs_from_paths() {
        let mut dirs = BTreeSet::new();
        note_dirs(
            "usr/local/lib/python3.11/site-packages/pip/__init__.py",
            &mut dirs,
        );
        note_dirs("opt/conda/conda-meta/x.json", &mut dirs);
        note_dirs("usr/lib/python3/dist-packages/six.py", &mut dirs);
        assert_eq!(
            dirs.into_iter().collect::<Vec<_>>(),
            [
                "opt/conda/conda-meta",
                "usr/lib/python3/dist-packages",
                "usr/local/lib/python3.11",
                "usr/local/lib/python3.11/site-packages"
            ]
        );
    }

    #[test]
    fn glibc_banner() {
        let mut bytes = vec![0u8; 1000];
        bytes.extend_from_slice(
            b"GNU C Library (Debian GLIBC 2.36-9+deb12u4) stable release version 2.36.\n",
        );
        assert_eq!(glibc_banner_version(&bytes).as_deref(), Some("2.36"));
        assert_eq!(glibc_banner_version(b"GNU C Library"), None);
    }

    /// Long names, PAX records (with a size override) and plain entries
    /// pass the guard unchanged; an oversized long name is stopped.
    #[test]
    fn tar_guard_tracks_headers() {
        let mut b = tar::Builder::new(Vec::new());
        let long = format!("{}/METADATA", "d".repeat(300));
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        b.append_data(&mut h, &long, &b"hello"[..]).unwrap();
        b.append_pax_extensions([("path", &b"pax/name"[..]), ("size", &b"3"[..])])
            .unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_path("short").unwrap();
        h.set_size(0);
        h.set_cksum();
        b.append(&h, &b"abc"[..]).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        b.append_data(&mut h, "last", &b"ok"[..]).unwrap();
        let tar = b.into_inner().unwrap();

        let mut archive = tar::Archive::new(TarGuard::new(&tar[..], 1024));
        let mut seen = Vec::new();
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            let mut body = String::new();
            e.read_to_string(&mut body).unwrap();
            seen.push(format!("{}={body}", e.path().unwrap().display()));
        }
        assert_eq!(
            seen,
            [
                format!("{long}=hello"),
                "pax/name=abc".into(),
                "last=ok".into()
            ]
        );

        // Skipping contents (a seek through the guard) reads the same
        // entries, PAX size override included, and the tail still reads.
        let mut archive = tar::Archive::new(TarGuard::new(HashedChunks::new(&tar[..]), 1024));
        let mut seen = Vec::new();
        for e in archive.entries_with_seek().unwrap() {
            let mut e = e.unwrap();
            let path = e.path().unwrap().display().to_string();
            if path == "last" {
                let mut body = String::new();
                e.read_to_string(&mut body).unwrap();
                seen.push(format!("{path}={body}"));
            } else {
                seen.push(path);
            }
        }
        assert_eq!(seen, [long.clone(), "pax/name".into(), "last=ok".into()]);
        let mut stream = archive.into_inner().inner;
        stream.drain().unwrap();
        let (digest, count, _) = stream.into_parts();
        assert_eq!((digest, count), (Digest::sha256_of(&tar), tar.len() as u64));

        let mut archive = tar::Archive::new(TarGuard::new(&tar[..], 100));
        let err = archive
            .entries()
            .unwrap()
            .next()
            .unwrap()
            .err()
            .expect("the long name is over the cap");
        assert!(
            err.to_string().contains("GNU long name of 310 bytes"),
            "{err}"
        );
    }

    #[test]
    fn pax_records() {
        assert_eq!(pax_value(b"11 size=42\n12 path=abc\n", "size"), Some(42));
        assert_eq!(pax_value(b"12 path=abc\n", "size"), None);
        assert_eq!(pax_value(b"99 size=1\n", "size"), None);
        assert_eq!(header_size(b"00000000012\0"), Some(10));
        assert_eq!(
            header_size(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]),
            Some(256)
        );
    }

    #[test]
    fn normalizes() {
        assert_eq!(normalize("./usr/lib/"), "usr/lib");
        assert_eq!(normalize("/a/./b/../c"), "a/c");
    }
}

//! Reading one file out of a distribution: a wheel's `METADATA` with HTTP
//! range requests (a small zip reader: end of central directory, central
//! directory, then the one entry), an sdist's `PKG-INFO` and
//! `pyproject.toml`; and unpacking an sdist for a metadata build.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

use super::PypiError;
use super::fetch::{Fetcher, Ranged};

const EOCD: u32 = 0x0605_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const LOCAL: u32 = 0x0403_4b50;
/// The tail fetched first: it holds the central directory of most wheels.
const TAIL: u64 = 64 * 1024;
/// Refuse to inflate a METADATA larger than this.
const METADATA_CAP: u64 = 16 * 1024 * 1024;
/// How much of an sdist's uncompressed tar is searched for `PKG-INFO`.
const SDIST_SCAN: u64 = 256 << 20;
/// Refuse to fetch a central directory larger than this (a wheel with a
/// million files has a central directory of about 100 MiB).
const CENTRAL_CAP: u64 = 128 * 1024 * 1024;

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(i..i + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

struct Entry {
    method: u16,
    compressed: u64,
    uncompressed: u64,
    local_offset: u64,
}

fn bad(url: &str, why: &str) -> PypiError {
    PypiError::BadArchive {
        url: super::fetch::redact(url),
        message: why.to_string(),
    }
}

/// Reads `*.dist-info/METADATA` of the wheel at `url` with range requests.
/// A server that ignores ranges sends the whole wheel, which is streamed to
/// a temporary file and read from there.
pub async fn wheel_metadata(fetch: &Fetcher, url: &str) -> Result<String, PypiError> {
    let (tail, total) = match fetch.get_range(url, &format!("-{TAIL}"), TAIL).await? {
        Ranged::Whole(mut d) => {
            return metadata_from_reader(&mut d.file)
                .ok_or_else(|| bad(url, "no readable `*.dist-info/METADATA` in the wheel"));
        }
        Ranged::Part { body, total } => (body, total),
    };
    let total = total.ok_or_else(|| bad(url, "the server did not give the file size"))?;
    let tail_start = total
        .checked_sub(tail.len() as u64)
        .ok_or_else(|| bad(url, "the server sent more than the file size it gave"))?;
    let eocd = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&i| u32_at(&tail, i) == Some(EOCD))
        .ok_or_else(|| bad(url, "no end of central directory"))?;
    let cd_size = u64::from(u32_at(&tail, eocd + 12).ok_or_else(|| bad(url, "short EOCD"))?);
    let cd_offset = u64::from(u32_at(&tail, eocd + 16).ok_or_else(|| bad(url, "short EOCD"))?);
    if cd_offset == 0xFFFF_FFFF || cd_size == 0xFFFF_FFFF {
        return Err(bad(url, "zip64 wheels are not read with ranges"));
    }
    if cd_size == 0 || cd_size > CENTRAL_CAP || cd_offset + cd_size > total {
        return Err(bad(url, "the central directory lies outside the file"));
    }
    let cd = if cd_offset >= tail_start {
        let from = usize::try_from(cd_offset - tail_start).map_err(|_| bad(url, "offset"))?;
        tail.get(from..)
            .ok_or_else(|| bad(url, "central directory"))?
            .to_vec()
    } else {
        range(fetch, url, cd_offset, cd_offset + cd_size - 1).await?
    };
    let entry = find_metadata(&cd).ok_or_else(|| bad(url, "no `*.dist-info/METADATA` entry"))?;
    if entry.uncompressed > METADATA_CAP || entry.compressed > METADATA_CAP {
        return Err(bad(url, "METADATA is too large"));
    }
    if entry.local_offset >= total {
        return Err(bad(url, "the METADATA entry lies outside the file"));
    }
    // The local header's name and extra field may differ from the central
    // directory's; fetch generously and parse the local header.
    let want = 30 + 1024 + entry.compressed + 64 * 1024;
    // `local_offset < total`, so `end >= local_offset`.
    let end = (entry.local_offset + want).min(total) - 1;
    let local = if entry.local_offset >= tail_start {
        let from =
            usize::try_from(entry.local_offset - tail_start).map_err(|_| bad(url, "offset"))?;
        tail.get(from..)
            .ok_or_else(|| bad(url, "the METADATA entry lies outside the file"))?
            .to_vec()
    } else {
        range(fetch, url, entry.local_offset, end).await?
    };
    read_local(&local, &entry).ok_or_else(|| bad(url, "could not read the METADATA entry"))
}

/// Bytes `from..=to` of `url`, also when the server answers a range request
/// with the whole file (read from the temporary file it went to).
async fn range(fetch: &Fetcher, url: &str, from: u64, to: u64) -> Result<Vec<u8>, PypiError> {
    let want = to - from + 1;
    match fetch.get_range(url, &format!("{from}-{to}"), want).await? {
        Ranged::Part { body, .. } => Ok(body),
        Ranged::Whole(mut d) => {
            let mut out = Vec::new();
            d.file
                .seek(SeekFrom::Start(from))
                .and_then(|_| (&mut d.file).take(want).read_to_end(&mut out))
                .map_err(|e| bad(url, &e.to_string()))?;
            Ok(out)
        }
    }
}

fn find_metadata(cd: &[u8]) -> Option<Entry> {
    let mut i = 0;
    while u32_at(cd, i) == Some(CENTRAL) {
        let method = u16_at(cd, i + 10)?;
        let compressed = u64::from(u32_at(cd, i + 20)?);
        let uncompressed = u64::from(u32_at(cd, i + 24)?);
        let name_len = usize::from(u16_at(cd, i + 28)?);
        let extra_len = usize::from(u16_at(cd, i + 30)?);
        let comment_len = usize::from(u16_at(cd, i + 32)?);
        let local_offset = u64::from(u32_at(cd, i + 42)?);
        let name = cd.get(i + 46..i + 46 + name_len)?;
        let name = String::from_utf8_lossy(name);
        // The top-level `<name>-<version>.dist-info/METADATA` only.
        if let Some((dir, file)) = name.split_once('/')
            && file == "METADATA"
            && dir.ends_with(".dist-info")
        {
            return Some(Entry {
                method,
                compressed,
                uncompressed,
                local_offset,
            });
        }
        i += 46 + name_len + extra_len + comment_len;
    }
    None
}

fn read_local(local: &[u8], entry: &Entry) -> Option<String> {
    if u32_at(local, 0)? != LOCAL {
        return None;
    }
    let name_len = usize::from(u16_at(local, 26)?);
    let extra_len = usize::from(u16_at(local, 28)?);
    let start = 30 + name_len + extra_len;
    let end = start.checked_add(usize::try_from(entry.compressed).ok()?)?;
    let data = local.get(start..end)?;
    inflate(entry.method, data, entry.uncompressed)
}

fn inflate(method: u16, data: &[u8], size: u64) -> Option<String> {
    let mut out = Vec::with_capacity(usize::try_from(size.min(METADATA_CAP)).ok()?);
    match method {
        0 => out.extend_from_slice(data),
        8 => {
            flate2::read::DeflateDecoder::new(data)
                .take(METADATA_CAP)
                .read_to_end(&mut out)
                .ok()?;
        }
        _ => return None,
    }
    String::from_utf8(out).ok()
}

/// Reads METADATA from a whole wheel in memory.
pub fn metadata_from_zip_bytes(zip: &[u8]) -> Option<String> {
    metadata_from_reader(&mut std::io::Cursor::new(zip))
}

/// Reads METADATA from a whole wheel (a file on disk, say), holding only the
/// tail, the central directory and the entry in memory.
pub fn metadata_from_reader<R: Read + Seek>(zip: &mut R) -> Option<String> {
    let len = zip.seek(SeekFrom::End(0)).ok()?;
    let tail_start = len.saturating_sub(TAIL);
    zip.seek(SeekFrom::Start(tail_start)).ok()?;
    let mut tail = Vec::new();
    zip.by_ref().take(TAIL).read_to_end(&mut tail).ok()?;
    let eocd = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&i| u32_at(&tail, i) == Some(EOCD))?;
    let cd_size = u64::from(u32_at(&tail, eocd + 12)?);
    let cd_offset = u64::from(u32_at(&tail, eocd + 16)?);
    if cd_size > CENTRAL_CAP || cd_offset.checked_add(cd_size)? > len {
        return None;
    }
    zip.seek(SeekFrom::Start(cd_offset)).ok()?;
    let mut cd = Vec::new();
    zip.by_ref().take(cd_size).read_to_end(&mut cd).ok()?;
    let entry = find_metadata(&cd)?;
    if entry.uncompressed > METADATA_CAP || entry.compressed > METADATA_CAP {
        return None;
    }
    zip.seek(SeekFrom::Start(entry.local_offset)).ok()?;
    let mut local = Vec::new();
    zip.by_ref()
        .take(30 + 2 * 65535 + entry.compressed)
        .read_to_end(&mut local)
        .ok()?;
    read_local(&local, &entry)
}

/// Reads the text files `<top>/NAME` (each at most 16 MiB) from a `.tar.gz`
/// sdist in one pass, stopping once all are found or `enough` says so: a
/// file the archive lacks costs one read of it (up to 256 MiB of tar), not
/// one per name.
pub fn sdist_members<const N: usize>(
    targz: impl Read,
    names: [&str; N],
    enough: impl Fn(&[Option<String>; N]) -> bool,
) -> [Option<String>; N] {
    let mut found: [Option<String>; N] = std::array::from_fn(|_| None);
    // Bounds what the `tar` crate can be made to hold (it reads a GNU long
    // name or PAX header whole): PKG-INFO comes early in real sdists.
    let gz = flate2::read::GzDecoder::new(targz).take(SDIST_SCAN);
    let mut archive = tar::Archive::new(gz);
    let Ok(entries) = archive.entries() else {
        return found;
    };
    for entry in entries {
        let Ok(entry) = entry else { break };
        let Ok(path) = entry.path() else { break };
        let path = path.to_string_lossy().into_owned();
        let parts: Vec<&str> = path.trim_start_matches("./").split('/').collect();
        let Some(i) = names
            .iter()
            .position(|n| parts.len() == 2 && parts[1] == *n)
        else {
            continue;
        };
        if found[i].is_some() {
            continue;
        }
        let mut text = String::new();
        if entry.take(METADATA_CAP).read_to_string(&mut text).is_err() {
            break;
        }
        found[i] = Some(text);
        if found.iter().all(Option::is_some) || enough(&found) {
            break;
        }
    }
    found
}

/// Unpacks a `.tar.gz` sdist into `dest` for a metadata build, refusing
/// what Python's `tarfile` "data" filter refuses: a member or link target
/// outside `dest` (absolute, or through `..`), and device files and FIFOs.
/// setuid/setgid bits are not kept. Returns the archive's top directory
/// (the first by name, as the build scripts pick it).
pub fn unpack_sdist(targz: impl Read, dest: &Path) -> Result<PathBuf, String> {
    unpack_sdist_watching(targz, dest, |_| true)?
        .ok_or_else(|| "the unpacking stopped early".to_string())
}

/// A member [`unpack_sdist_watching`] has just unpacked.
pub struct UnpackedMember<'a> {
    /// Its components inside the archive (`["p-1.0", "PKG-INFO"]`).
    pub parts: &'a [std::ffi::OsString],
    /// Where it was unpacked.
    pub path: &'a Path,
    /// A regular file (not a directory or link).
    pub regular: bool,
    /// Where its data ends in the uncompressed tar.
    pub end: u64,
}

/// Whether `m` is `<top>/name` within the part of the tar that
/// [`sdist_members`] searches (a member found later is not looked at, as
/// there).
pub fn is_top_file(m: &UnpackedMember<'_>, name: &str) -> bool {
    m.parts.len() == 2 && m.parts[1] == name && m.end <= SDIST_SCAN
}

/// [`unpack_sdist`], telling `watch` of each member once unpacked; `watch`
/// returning `false` stops the unpacking (`Ok(None)`): the tree is then
/// incomplete. Reading from a download as it arrives, the same rules hold.
pub fn unpack_sdist_watching(
    targz: impl Read,
    dest: &Path,
    mut watch: impl FnMut(&UnpackedMember<'_>) -> bool,
) -> Result<Option<PathBuf>, String> {
    use tar::EntryType;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(targz));
    archive.set_preserve_permissions(false);
    archive.set_unpack_xattrs(false);
    let mut top: Option<std::ffi::OsString> = None;
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| format!("not a readable tar.gz: {e}"))?;
        let path = entry.path().map_err(|e| e.to_string())?.into_owned();
        let shown = path.display().to_string();
        let Some(parts) = inside(&[], &path) else {
            return Err(format!("`{shown}` is outside the archive"));
        };
        let Some(first) = parts.first() else { continue };
        let kind = entry.header().entry_type();
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::Directory => {}
            EntryType::Symlink | EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("`{shown}` links to nothing"))?;
                // A symbolic link is read from its own directory, a hard
                // link from the top of the archive.
                let base = if kind == EntryType::Symlink {
                    &parts[..parts.len() - 1]
                } else {
                    &[][..]
                };
                if inside(base, &target).is_none_or(|t| t.is_empty()) {
                    return Err(format!(
                        "`{shown}` links to `{}`, outside the archive",
                        target.display()
                    ));
                }
            }
            EntryType::XGlobalHeader | EntryType::XHeader => continue,
            other => return Err(format!("`{shown}` is a special file ({other:?})")),
        }
        if top.as_ref().is_none_or(|t| first < t) {
            top = Some(first.clone());
        }
        if !entry
            .unpack_in(dest)
            .map_err(|e| format!("`{shown}`: {e}"))?
        {
            return Err(format!("`{shown}` is outside the archive"));
        }
        let member = UnpackedMember {
            parts: &parts,
            path: &parts.iter().fold(dest.to_path_buf(), |p, c| p.join(c)),
            regular: matches!(kind, EntryType::Regular | EntryType::Continuous),
            end: entry.raw_file_position() + entry.size(),
        };
        if !watch(&member) {
            return Ok(None);
        }
    }
    top.map(|t| Some(dest.join(t)))
        .ok_or_else(|| "the archive is empty".to_string())
}

/// `path` read from the directory `base` (components inside the archive),
/// as the components it names inside the archive; `None` when it leaves it.
fn inside(base: &[std::ffi::OsString], path: &Path) -> Option<Vec<std::ffi::OsString>> {
    let mut parts = base.to_vec();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_os_string()),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(name, kind, data or link target)` of a tar entry.
    type Member<'a> = (&'a str, tar::EntryType, &'a [u8]);

    /// A `.tar.gz` of `entries`; names are written raw into the header, so
    /// `..` and `/` can be tested.
    fn targz(entries: &[Member<'_>]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data) in entries {
            let mut h = tar::Header::new_old();
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_entry_type(*kind);
            h.set_mode(0o4755);
            if kind.is_symlink() || kind.is_hard_link() {
                h.as_old_mut().linkname[..data.len()].copy_from_slice(data);
                h.set_size(0);
                h.set_cksum();
                b.append(&h, &[][..]).unwrap();
            } else {
                h.set_size(data.len() as u64);
                h.set_cksum();
                b.append(&h, *data).unwrap();
            }
        }
        let tar = b.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn an_sdist_unpacks_into_its_top_directory_without_setuid_bits() {
        use std::os::unix::fs::PermissionsExt;
        use tar::EntryType as T;
        let gz = targz(&[
            ("p-1.0/", T::Directory, b""),
            ("p-1.0/setup.py", T::Regular, b"print(1)\n"),
            ("p-1.0/pkg/__init__.py", T::Regular, b""),
            ("p-1.0/link.py", T::Symlink, b"pkg/__init__.py"),
            ("p-1.0/hard.py", T::Link, b"p-1.0/setup.py"),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let top = unpack_sdist(&gz[..], dir.path()).unwrap();
        assert_eq!(top, dir.path().join("p-1.0"));
        assert_eq!(fs_err::read(top.join("hard.py")).unwrap(), b"print(1)\n");
        assert!(top.join("link.py").exists());
        let mode = fs_err::metadata(top.join("setup.py"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7000, 0, "setuid kept: {mode:o}");
    }

    #[test]
    fn an_sdist_member_or_link_outside_the_archive_is_refused() {
        use tar::EntryType as T;
        let cases: [(&[Member<'_>], &str); 5] = [
            (&[("../evil", T::Regular, b"x")], "outside the archive"),
            (&[("/tmp/evil", T::Regular, b"x")], "outside the archive"),
            (
                &[("p-1.0/up", T::Symlink, b"../../etc/passwd")],
                "outside the archive",
            ),
            (
                &[("p-1.0/abs", T::Symlink, b"/etc/passwd")],
                "outside the archive",
            ),
            (&[("p-1.0/tty", T::Char, b"")], "special file"),
        ];
        for (entries, why) in cases {
            let dir = tempfile::tempdir().unwrap();
            let inner = dir.path().join("in");
            fs_err::create_dir(&inner).unwrap();
            let err = unpack_sdist(&targz(entries)[..], &inner).unwrap_err();
            assert!(err.contains(why), "{entries:?}: {err}");
            assert!(!dir.path().join("evil").exists());
        }
    }

    #[test]
    fn an_sdist_unpacking_tells_of_each_member_and_stops_when_told() {
        use tar::EntryType as T;
        let gz = targz(&[
            ("p-1.0/", T::Directory, b""),
            ("p-1.0/PKG-INFO", T::Regular, b"Metadata-Version: 2.2\n"),
            ("p-1.0/sub/PKG-INFO", T::Regular, b"not this one"),
            ("p-1.0/setup.py", T::Regular, b"print(1)\n"),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let mut seen = Vec::new();
        let top = unpack_sdist_watching(&gz[..], dir.path(), |m| {
            seen.push((
                m.parts.join(std::ffi::OsStr::new("/")),
                is_top_file(m, "PKG-INFO"),
                fs_err::read(m.path).ok(),
            ));
            true
        })
        .unwrap();
        assert_eq!(top, Some(dir.path().join("p-1.0")));
        let tops: Vec<_> = seen.iter().filter(|s| s.1).collect();
        assert_eq!(tops.len(), 1, "{seen:?}");
        assert_eq!(tops[0].0, "p-1.0/PKG-INFO");
        assert_eq!(tops[0].2.as_deref(), Some(&b"Metadata-Version: 2.2\n"[..]));
        // Stopped at PKG-INFO: nothing after it is unpacked.
        let dir = tempfile::tempdir().unwrap();
        let stopped = unpack_sdist_watching(&gz[..], dir.path(), |m| !is_top_file(m, "PKG-INFO"));
        assert_eq!(stopped, Ok(None));
        assert!(dir.path().join("p-1.0/PKG-INFO").exists());
        assert!(!dir.path().join("p-1.0/setup.py").exists());
    }

    #[test]
    fn sdist_files_are_read_in_one_pass_and_the_read_stops_when_enough() {
        use tar::EntryType as T;
        let gz = targz(&[
            ("p-1.0/PKG-INFO", T::Regular, b"Metadata-Version: 2.1\n"),
            ("p-1.0/big.bin", T::Regular, &[0u8; 4096]),
            ("p-1.0/pyproject.toml", T::Regular, b"[build-system]\n"),
        ]);
        let [info, pyproject] = sdist_members(&gz[..], ["PKG-INFO", "pyproject.toml"], |_| false);
        assert_eq!(info.as_deref(), Some("Metadata-Version: 2.1\n"));
        assert_eq!(pyproject.as_deref(), Some("[build-system]\n"));
        // `enough` after PKG-INFO: pyproject.toml is not read.
        let [info, pyproject] = sdist_members(&gz[..], ["PKG-INFO", "pyproject.toml"], |[i, _]| {
            i.is_some()
        });
        assert!(info.is_some());
        assert_eq!(pyproject, None);
        // A name the archive lacks leaves its slot empty.
        let [missing] = sdist_members(&gz[..], ["setup.cfg"], |_| false);
        assert_eq!(missing, None);
    }

    /// A stored (uncompressed) one-entry zip, built by hand.
    fn tiny_zip(name: &str, data: &[u8]) -> Vec<u8> {
        let mut z = Vec::new();
        let n = name.len() as u16;
        let len = data.len() as u32;
        z.extend(LOCAL.to_le_bytes());
        z.extend([20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        z.extend(len.to_le_bytes());
        z.extend(len.to_le_bytes());
        z.extend(n.to_le_bytes());
        z.extend(0u16.to_le_bytes());
        z.extend(name.as_bytes());
        z.extend(data);
        let cd = z.len() as u32;
        z.extend(CENTRAL.to_le_bytes());
        z.extend([20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        z.extend(len.to_le_bytes());
        z.extend(len.to_le_bytes());
        z.extend(n.to_le_bytes());
        z.extend([0u8; 12]);
        z.extend(0u32.to_le_bytes());
        z.extend(name.as_bytes());
        let cd_size = z.len() as u32 - cd;
        z.extend(EOCD.to_le_bytes());
        z.extend([0, 0, 0, 0, 1, 0, 1, 0]);
        z.extend(cd_size.to_le_bytes());
        z.extend(cd.to_le_bytes());
        z.extend(0u16.to_le_bytes());
        z
    }

    #[test]
    fn reads_metadata_from_a_zip() {
        let z = tiny_zip("demo-1.0.dist-info/METADATA", b"Name: demo\nVersion: 1.0\n");
        assert_eq!(
            metadata_from_zip_bytes(&z).as_deref(),
            Some("Name: demo\nVersion: 1.0\n")
        );
        let z = tiny_zip("demo/vendor/x.dist-info/METADATA", b"x");
        assert_eq!(metadata_from_zip_bytes(&z), None);
        assert_eq!(metadata_from_zip_bytes(b"not a zip"), None);
    }
}

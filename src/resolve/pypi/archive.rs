//! Reading one file out of a distribution: a wheel's `METADATA` with HTTP
//! range requests (a small zip reader: end of central directory, central
//! directory, then the one entry), and an sdist's `PKG-INFO`.

use std::io::{Read, Seek, SeekFrom};

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

/// Reads `<top>/PKG-INFO` from a `.tar.gz` sdist in memory.
pub fn sdist_pkg_info(targz: impl Read) -> Option<String> {
    sdist_member(targz, "PKG-INFO")
}

/// Reads the text file `<top>/NAME` (at most 16 MiB) from a `.tar.gz` sdist.
pub fn sdist_member(targz: impl Read, name: &str) -> Option<String> {
    // Bounds what the `tar` crate can be made to hold (it reads a GNU long
    // name or PAX header whole): PKG-INFO comes early in real sdists.
    let gz = flate2::read::GzDecoder::new(targz).take(SDIST_SCAN);
    let mut archive = tar::Archive::new(gz);
    for entry in archive.entries().ok()? {
        let entry = entry.ok()?;
        let path = entry.path().ok()?.to_string_lossy().into_owned();
        let parts: Vec<&str> = path.trim_start_matches("./").split('/').collect();
        if parts.len() == 2 && parts[1] == name {
            let mut text = String::new();
            entry.take(METADATA_CAP).read_to_string(&mut text).ok()?;
            return Some(text);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

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

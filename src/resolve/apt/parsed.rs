//! Parsed `Packages` indexes kept on disk, so a warm run neither reads,
//! hashes, decompresses nor parses an index it has seen.
//!
//! An entry is named by the sha256 the *verified* Release file gives the
//! index file (`<sha256>.<FORMAT>`): it is content-addressed, so it cannot
//! go stale — a new index has a new hash and misses. What is kept is what
//! [`BinaryPackage`] holds (the fields resolution reads), MessagePack
//! encoded, after a header naming the format and the sha256 of the body;
//! a read checks both, and anything that does not match is a miss (the
//! index is then fetched, checked against the Release and parsed again,
//! and the entry rewritten). apt trusts its `lists/` directory and
//! `pkgcache.bin` the same way once it has checked them.

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::solve::apt::BinaryPackage;

/// The encoding of an entry; changes with [`BinaryPackage`] and with how a
/// stanza becomes one (a test below notices a field change). The crate
/// version is part of it, so another imagelock never reads this one's.
const FORMAT: &str = concat!("p1-", env!("CARGO_PKG_VERSION"));

const MAGIC: &[u8] = b"imagelock parsed Packages\n";

fn entry_path(dir: &Path, sha256: &str) -> Option<PathBuf> {
    (sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| dir.join(format!("{}.{FORMAT}", sha256.to_ascii_lowercase())))
}

fn header() -> Vec<u8> {
    let mut h = MAGIC.to_vec();
    h.extend_from_slice(FORMAT.as_bytes());
    h.push(b'\n');
    h
}

/// The packages of the index whose file has `sha256`, if `dir` keeps them
/// intact.
pub fn read(dir: &Path, sha256: &str) -> Option<Vec<BinaryPackage>> {
    let bytes = fs_err::read(entry_path(dir, sha256)?).ok()?;
    let rest = bytes.strip_prefix(header().as_slice())?;
    if rest.len() < 32 {
        return None;
    }
    let (digest, body) = rest.split_at(32);
    if Sha256::digest(body).as_slice() != digest {
        return None;
    }
    rmp_serde::from_slice(body).ok()
}

/// Keeps `packages` as the parsed form of the index with `sha256`. A
/// failed write only costs a parse next time.
pub fn write(dir: &Path, sha256: &str, packages: &[BinaryPackage]) {
    let Some(path) = entry_path(dir, sha256) else {
        return;
    };
    let Ok(body) = rmp_serde::to_vec(packages) else {
        return;
    };
    let mut bytes = header();
    bytes.extend_from_slice(&Sha256::digest(&body));
    bytes.extend_from_slice(&body);
    let tmp = dir.join(format!(".{sha256}.{}", std::process::id()));
    if fs_err::create_dir_all(dir).is_ok() && fs_err::write(&tmp, &bytes).is_ok() {
        let _ = fs_err::rename(&tmp, &path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solve::apt::deb822::paragraphs;

    const STANZA: &str = "Package: curl\nVersion: 7.88.1-10+deb12u8\nArchitecture: amd64\nMulti-Arch: foreign\nPriority: optional\nSection: web\nSource: curl (7.88.1-10)\nDepends: libc6 (>= 2.34), libcurl4 (= 7.88.1-10+deb12u8) | libcurl3:any\nRecommends: ca-certificates\nProvides: www-browser (= 1)\nFilename: pool/main/c/curl/curl_7.88.1-10+deb12u8_amd64.deb\nSize: 315000\nSHA256: ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789\n";

    fn sample() -> Vec<BinaryPackage> {
        paragraphs(STANZA)
            .unwrap()
            .iter()
            .map(|p| BinaryPackage::from_paragraph(p).unwrap())
            .collect()
    }

    #[test]
    fn an_entry_reads_back_as_parsed_and_a_damaged_one_misses() {
        let dir = tempfile::tempdir().unwrap();
        let sha = "ab".repeat(32);
        assert!(read(dir.path(), &sha).is_none());
        write(dir.path(), &sha, &sample());
        let back = read(dir.path(), &sha).expect("a hit");
        assert_eq!(format!("{back:?}"), format!("{:?}", sample()));
        // Another index's hash misses.
        assert!(read(dir.path(), &"cd".repeat(32)).is_none());
        // One flipped byte of the body misses.
        let path = entry_path(dir.path(), &sha).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(read(dir.path(), &sha).is_none());
        // A truncated entry misses.
        std::fs::write(&path, &bytes[..40]).unwrap();
        assert!(read(dir.path(), &sha).is_none());
        // Not a hash: never a path.
        assert!(entry_path(dir.path(), "../x").is_none());
    }

    /// The encoding of a stanza: when [`BinaryPackage`] or the parsing
    /// changes, this changes, and [`FORMAT`] must change with it.
    #[test]
    fn the_encoding_is_the_one_format_names() {
        let body = rmp_serde::to_vec(&sample()).unwrap();
        let digest = hex::encode(Sha256::digest(&body));
        assert!(FORMAT.starts_with("p1-"), "{FORMAT}");
        assert_eq!(
            digest, "e6691bfaf92f85c1691a64957518a950d73dbca9eb6ade48844797a5b466a568",
            "the parsed form changed: bump FORMAT in resolve/apt/parsed.rs and update this digest"
        );
    }
}

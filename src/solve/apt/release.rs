//! `Release`/`InRelease` contents: what an archive says about itself and
//! the hashes of its index files.

use super::deb822::{Deb822Error, paragraphs};

/// The fields of a `Release` file that resolution and checking use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReleaseFile {
    pub origin: String,
    pub label: String,
    pub suite: String,
    pub codename: String,
    pub version: String,
    /// As written (RFC 2822), e.g. `Sat, 10 Jan 2026 09:42:17 UTC`.
    pub date: String,
    pub valid_until: Option<String>,
    pub not_automatic: bool,
    pub but_automatic_upgrades: bool,
    pub acquire_by_hash: bool,
    pub architectures: Vec<String>,
    pub components: Vec<String>,
    /// `SHA256:` entries: path relative to the suite directory, size, hex.
    pub sha256: Vec<IndexHash>,
}

/// One `SHA256:` line of a Release file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexHash {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// A Release file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseReleaseError {
    #[error("{0}")]
    Deb822(#[from] Deb822Error),
    #[error("the Release file is empty\nhint: the archive answered with no fields")]
    Empty,
    #[error(
        "the Release file has no `SHA256` list\nhint: apt refuses archives without strong hashes"
    )]
    NoSha256,
    #[error("`{0}` is not a `hash size path` line of `SHA256`")]
    BadLine(String),
}

impl ReleaseFile {
    /// Parses the (verified) text of a Release file.
    pub fn parse(text: &str) -> Result<Self, ParseReleaseError> {
        let ps = paragraphs(text)?;
        let p = ps.first().ok_or(ParseReleaseError::Empty)?;
        let field = |n: &str| p.get(n).unwrap_or_default().to_string();
        let words = |n: &str| {
            p.get(n)
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        let yes = |n: &str| p.get(n).is_some_and(|v| v.eq_ignore_ascii_case("yes"));
        let mut sha256 = Vec::new();
        for line in p.get("SHA256").ok_or(ParseReleaseError::NoSha256)?.lines() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let mut it = line.split_whitespace();
            let (Some(h), Some(s), Some(path), None) = (it.next(), it.next(), it.next(), it.next())
            else {
                return Err(ParseReleaseError::BadLine(line.to_string()));
            };
            let size = s
                .parse()
                .map_err(|_| ParseReleaseError::BadLine(line.to_string()))?;
            if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ParseReleaseError::BadLine(line.to_string()));
            }
            sha256.push(IndexHash {
                path: path.to_string(),
                size,
                sha256: h.to_ascii_lowercase(),
            });
        }
        Ok(ReleaseFile {
            origin: field("Origin"),
            label: field("Label"),
            suite: field("Suite"),
            codename: field("Codename"),
            version: field("Version"),
            date: field("Date"),
            valid_until: p.get("Valid-Until").map(str::to_string),
            not_automatic: yes("NotAutomatic"),
            but_automatic_upgrades: yes("ButAutomaticUpgrades"),
            acquire_by_hash: yes("Acquire-By-Hash"),
            architectures: words("Architectures"),
            components: words("Components"),
            sha256,
        })
    }

    /// The hash entry for `path` (relative to the suite directory).
    pub fn hash_of(&self, path: &str) -> Option<&IndexHash> {
        self.sha256.iter().find(|h| h.path == path)
    }
}

/// Parses an RFC 2822 date as Release files write it (`… UTC` included)
/// into seconds since the epoch.
pub fn parse_release_date(date: &str) -> Option<i64> {
    let normal = date
        .trim()
        .replace(" UTC", " +0000")
        .replace(" GMT", " +0000");
    chrono::DateTime::parse_from_rfc2822(&normal)
        .ok()
        .map(|d| d.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_fields_and_hashes() {
        let text = "Origin: Debian\nLabel: Debian\nSuite: stable\nCodename: bookworm\nDate: Sat, 10 Jan 2026 09:42:17 UTC\nValid-Until: Sat, 17 Jan 2026 09:42:17 UTC\nAcquire-By-Hash: yes\nArchitectures: all amd64 arm64\nComponents: main contrib\nSHA256:\n 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef 1234 main/binary-amd64/Packages.xz\n";
        let r = ReleaseFile::parse(text).unwrap();
        assert_eq!(r.codename, "bookworm");
        assert_eq!(
            r.hash_of("main/binary-amd64/Packages.xz").unwrap().size,
            1234
        );
        assert_eq!(parse_release_date(&r.date), Some(1_768_038_137));
        assert!(ReleaseFile::parse("Origin: x\n").is_err());
    }
}

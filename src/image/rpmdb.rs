//! The rpm database of an image, read from file contents taken from its
//! layers: `rpmdb.sqlite` of rpm >= 4.16 (under `/var/lib/rpm` or
//! `/usr/lib/sysimage/rpm`). Older Berkeley DB (`Packages`) and ndb
//! (`Packages.db`) databases are recognised and reported as not readable.

use std::collections::BTreeMap;

use crate::solve::rpm::rich::parse_evr;
use crate::solve::rpm::{DepFlag, Dependency, Evr, InstalledRpm};

/// Where rpm keeps its database, newest layout first.
pub const RPMDB_DIRS: [&str; 2] = ["/usr/lib/sysimage/rpm", "/var/lib/rpm"];

/// Why an image's rpm database cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpmdbError {
    #[error(
        "{path} is a Berkeley DB rpm database (rpm < 4.16), which imagelock does not read\nhint: images of RHEL/UBI 8, CentOS 7/8 and Amazon Linux 2 keep this format; rebase onto one with rpm >= 4.16 (RHEL 9, Fedora 33+) to lock its dnf steps"
    )]
    BerkeleyDb { path: String },
    #[error(
        "{path} is an ndb rpm database (SUSE), which imagelock does not read\nhint: only rpmdb.sqlite is read"
    )]
    Ndb { path: String },
    #[error("{path}: {message}")]
    Sqlite { path: String, message: String },
    #[error("{path}: header {hnum}: {message}")]
    Header {
        path: String,
        hnum: i64,
        message: String,
    },
}

/// Whether a path belongs to the rpm database (for the catalogue's filter of
/// files that matter).
pub fn is_rpmdb_file(path: &str) -> bool {
    let p = path.trim_start_matches('.');
    let p = if p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{p}")
    };
    RPMDB_DIRS.iter().any(|d| {
        p.strip_prefix(d)
            .and_then(|r| r.strip_prefix('/'))
            .is_some_and(|f| {
                matches!(
                    f,
                    "rpmdb.sqlite" | "rpmdb.sqlite-wal" | "Packages" | "Packages.db"
                )
            })
    })
}

/// Whether a path belongs to the state dnf reads from an image: the rpm
/// database, repository files, dnf's configuration and variables, module
/// state and the keys `gpgkey=` usually names.
pub fn is_rpm_state_file(path: &str) -> bool {
    if is_rpmdb_file(path) {
        return true;
    }
    let p = path.trim_start_matches('.');
    let p = p.strip_prefix('/').unwrap_or(p);
    if matches!(p, "etc/dnf/dnf.conf" | "etc/yum.conf") {
        return true;
    }
    let in_dir = |d: &str, suffix: &str| {
        p.strip_prefix(d)
            .is_some_and(|f| !f.is_empty() && !f.contains('/') && f.ends_with(suffix))
    };
    in_dir("etc/yum.repos.d/", ".repo")
        || in_dir("etc/dnf/vars/", "")
        || in_dir("etc/dnf/modules.d/", ".module")
        || in_dir("etc/dnf/modules.defaults.d/", ".yaml")
        || in_dir("etc/pki/rpm-gpg/", "")
}

/// Reads the rpm database among `files` (absolute paths to contents).
/// `Ok(None)` when the image has none (not an rpm-based image).
pub fn read_rpmdb(
    files: &BTreeMap<String, Vec<u8>>,
) -> Result<Option<Vec<InstalledRpm>>, RpmdbError> {
    let get = |p: &str| {
        files
            .get(p)
            .or_else(|| files.get(&format!(".{p}")))
            .or_else(|| files.get(p.trim_start_matches('/')))
    };
    for dir in RPMDB_DIRS {
        let path = format!("{dir}/rpmdb.sqlite");
        if let Some(db) = get(&path) {
            let wal = get(&format!("{dir}/rpmdb.sqlite-wal"));
            return read_sqlite(&path, db, wal.map(|w| w.as_slice())).map(Some);
        }
    }
    for dir in RPMDB_DIRS {
        let path = format!("{dir}/Packages");
        if get(&path).is_some() {
            return Err(RpmdbError::BerkeleyDb { path });
        }
        let path = format!("{dir}/Packages.db");
        if get(&path).is_some() {
            return Err(RpmdbError::Ndb { path });
        }
    }
    Ok(None)
}

/// Reads the packages of an `rpmdb.sqlite` (and its write-ahead log, which
/// holds transactions not yet checkpointed into the main file).
pub fn read_sqlite(
    path: &str,
    db: &[u8],
    wal: Option<&[u8]>,
) -> Result<Vec<InstalledRpm>, RpmdbError> {
    let sq = |e: &dyn std::fmt::Display| RpmdbError::Sqlite {
        path: path.to_string(),
        message: e.to_string(),
    };
    // SQLite reads files, so the database goes to a private directory first;
    // the log is replayed by SQLite itself when it opens the copy.
    let dir = tempfile::tempdir().map_err(|e| sq(&e))?;
    let file = dir.path().join("rpmdb.sqlite");
    std::fs::write(&file, db).map_err(|e| sq(&e))?;
    if let Some(w) = wal.filter(|w| !w.is_empty()) {
        std::fs::write(dir.path().join("rpmdb.sqlite-wal"), w).map_err(|e| sq(&e))?;
    }
    let conn = rusqlite::Connection::open(&file).map_err(|e| sq(&e))?;
    let mut stmt = conn
        .prepare("SELECT hnum, blob FROM Packages ORDER BY hnum")
        .map_err(|e| sq(&e))?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
        .map_err(|e| sq(&e))?;
    let mut out = Vec::new();
    for row in rows {
        let (hnum, blob) = row.map_err(|e| sq(&e))?;
        let header = parse_header(&blob).map_err(|message| RpmdbError::Header {
            path: path.to_string(),
            hnum,
            message,
        })?;
        out.push(header);
    }
    Ok(out)
}

const TAG_NAME: u32 = 1000;
const TAG_VERSION: u32 = 1001;
const TAG_RELEASE: u32 = 1002;
const TAG_EPOCH: u32 = 1003;
const TAG_ARCH: u32 = 1022;
const TAG_SOURCERPM: u32 = 1044;
const TAG_PROVIDENAME: u32 = 1047;
const TAG_REQUIREFLAGS: u32 = 1048;
const TAG_REQUIRENAME: u32 = 1049;
const TAG_REQUIREVERSION: u32 = 1050;
const TAG_CONFLICTFLAGS: u32 = 1053;
const TAG_CONFLICTNAME: u32 = 1054;
const TAG_CONFLICTVERSION: u32 = 1055;
const TAG_OBSOLETENAME: u32 = 1090;
const TAG_PROVIDEFLAGS: u32 = 1112;
const TAG_PROVIDEVERSION: u32 = 1113;
const TAG_OBSOLETEFLAGS: u32 = 1114;
const TAG_OBSOLETEVERSION: u32 = 1115;
const TAG_DIRINDEXES: u32 = 1116;
const TAG_BASENAMES: u32 = 1117;
const TAG_DIRNAMES: u32 = 1118;
const TAG_PAYLOADDIGEST: u32 = 5092;
const TAG_SHA256HEADER: u32 = 273;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_STRING_ARRAY: u32 = 8;
const TYPE_I18NSTRING: u32 = 9;

enum Value {
    Ints(Vec<u32>),
    Strings(Vec<String>),
}

/// Parses one header blob as rpm stores it in its database: the entry
/// count and data size, the index entries (tag, type, offset, count, all
/// big-endian), then the data.
pub fn parse_header(blob: &[u8]) -> Result<InstalledRpm, String> {
    let be = |at: usize| -> Result<u32, String> {
        blob.get(at..at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| "truncated header".to_string())
    };
    let il = be(0)? as usize;
    let dl = be(4)? as usize;
    let data_start = 8usize
        .checked_add(il.checked_mul(16).ok_or("entry count overflows")?)
        .ok_or("entry count overflows")?;
    let data = blob
        .get(data_start..data_start.checked_add(dl).ok_or("data size overflows")?)
        .ok_or_else(|| {
            format!(
                "{il} entries and {dl} bytes of data do not fit in {} bytes",
                blob.len()
            )
        })?;
    let mut tags: BTreeMap<u32, Value> = BTreeMap::new();
    for i in 0..il {
        let at = 8 + i * 16;
        let (tag, ty, off, count) = (
            be(at)?,
            be(at + 4)?,
            be(at + 8)? as usize,
            be(at + 12)? as usize,
        );
        let value = match ty {
            TYPE_INT32 => {
                let mut v = Vec::with_capacity(count.min(1 << 16));
                for k in 0..count {
                    let p = off + k * 4;
                    let b = data
                        .get(p..p + 4)
                        .ok_or_else(|| format!("tag {tag} runs past the data"))?;
                    v.push(u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                }
                Value::Ints(v)
            }
            TYPE_STRING | TYPE_STRING_ARRAY | TYPE_I18NSTRING => {
                let n = if ty == TYPE_STRING { 1 } else { count };
                let mut v = Vec::with_capacity(n.min(1 << 16));
                let mut p = off;
                for _ in 0..n {
                    let rest = data
                        .get(p..)
                        .ok_or_else(|| format!("tag {tag} runs past the data"))?;
                    let len = rest.iter().position(|c| *c == 0).ok_or_else(|| {
                        format!("tag {tag}: a string without its terminating NUL")
                    })?;
                    v.push(String::from_utf8_lossy(&rest[..len]).into_owned());
                    p += len + 1;
                }
                Value::Strings(v)
            }
            _ => continue,
        };
        tags.insert(tag, value);
    }
    let strings = |t: u32| -> Vec<String> {
        match tags.get(&t) {
            Some(Value::Strings(v)) => v.clone(),
            _ => Vec::new(),
        }
    };
    let ints = |t: u32| -> Vec<u32> {
        match tags.get(&t) {
            Some(Value::Ints(v)) => v.clone(),
            _ => Vec::new(),
        }
    };
    let one = |t: u32| strings(t).into_iter().next();
    let name = one(TAG_NAME).ok_or("no name")?;
    let version = one(TAG_VERSION).ok_or_else(|| format!("{name}: no version"))?;
    let release = one(TAG_RELEASE).unwrap_or_default();
    let epoch = ints(TAG_EPOCH).first().copied().unwrap_or(0) as u64;
    let deps = |n: u32, f: u32, v: u32| -> Vec<Dependency> {
        let (names, flags, vers) = (strings(n), ints(f), strings(v));
        names
            .into_iter()
            .enumerate()
            .map(|(i, name)| {
                let flag = flags.get(i).copied().and_then(DepFlag::from_sense);
                let ver = vers.get(i).cloned().unwrap_or_default();
                let constraint = flag
                    .filter(|_| !ver.is_empty())
                    .map(|fl| (fl, parse_evr(&ver)));
                Dependency { name, constraint }
            })
            .collect()
    };
    let dirs = strings(TAG_DIRNAMES);
    let files = strings(TAG_BASENAMES)
        .into_iter()
        .zip(ints(TAG_DIRINDEXES))
        .map(|(b, d)| {
            format!(
                "{}{b}",
                dirs.get(d as usize).map(String::as_str).unwrap_or("")
            )
        })
        .collect();
    Ok(InstalledRpm {
        evr: Evr::new(epoch, version, release),
        arch: one(TAG_ARCH).unwrap_or_default(),
        source_rpm: one(TAG_SOURCERPM),
        provides: deps(TAG_PROVIDENAME, TAG_PROVIDEFLAGS, TAG_PROVIDEVERSION),
        requires: deps(TAG_REQUIRENAME, TAG_REQUIREFLAGS, TAG_REQUIREVERSION),
        obsoletes: deps(TAG_OBSOLETENAME, TAG_OBSOLETEFLAGS, TAG_OBSOLETEVERSION),
        conflicts: deps(TAG_CONFLICTNAME, TAG_CONFLICTFLAGS, TAG_CONFLICTVERSION),
        files,
        header_sha256: one(TAG_SHA256HEADER),
        payload_digest: one(TAG_PAYLOADDIGEST),
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(entries: &[(u32, u32, &[u8], u32)]) -> Vec<u8> {
        let mut index = Vec::new();
        let mut data = Vec::new();
        for (tag, ty, bytes, count) in entries {
            for v in [*tag, *ty, data.len() as u32, *count] {
                index.extend_from_slice(&v.to_be_bytes());
            }
            data.extend_from_slice(bytes);
        }
        let mut out = Vec::new();
        out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend(index);
        out.extend(data);
        out
    }

    #[test]
    fn a_header_gives_its_nevra_and_dependencies() {
        let blob = header(&[
            (TAG_NAME, TYPE_STRING, b"tool\0", 1),
            (TAG_VERSION, TYPE_STRING, b"0.9\0", 1),
            (TAG_RELEASE, TYPE_STRING, b"1.el9\0", 1),
            (TAG_EPOCH, TYPE_INT32, &2u32.to_be_bytes(), 1),
            (TAG_ARCH, TYPE_STRING, b"x86_64\0", 1),
            (TAG_REQUIRENAME, TYPE_STRING_ARRAY, b"libfoo\0/bin/sh\0", 2),
            (
                TAG_REQUIREFLAGS,
                TYPE_INT32,
                &[0, 0, 0, 0x0c, 0, 0, 0, 0],
                2,
            ),
            (TAG_REQUIREVERSION, TYPE_STRING_ARRAY, b"1.1\0\0", 2),
        ]);
        let p = parse_header(&blob).unwrap();
        assert_eq!(p.nevra(), "tool-2:0.9-1.el9.x86_64");
        let reqs: Vec<String> = p.requires.iter().map(|d| d.to_string()).collect();
        assert_eq!(reqs, ["libfoo >= 1.1", "/bin/sh"]);
    }

    #[test]
    fn truncated_headers_are_errors_not_panics() {
        let blob = header(&[(TAG_NAME, TYPE_STRING, b"tool\0", 1)]);
        for n in 0..blob.len() {
            let _ = parse_header(&blob[..n]);
        }
        assert!(parse_header(&blob[..blob.len() - 1]).is_err());
        let mut bad = blob.clone();
        bad[0..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(parse_header(&bad).is_err());
    }

    #[test]
    fn old_databases_are_named_not_misread() {
        let mut files = BTreeMap::new();
        files.insert("/var/lib/rpm/Packages".to_string(), vec![0u8; 16]);
        assert!(matches!(
            read_rpmdb(&files),
            Err(RpmdbError::BerkeleyDb { .. })
        ));
        assert_eq!(read_rpmdb(&BTreeMap::new()), Ok(None));
        assert!(is_rpmdb_file("/var/lib/rpm/rpmdb.sqlite"));
        assert!(is_rpmdb_file("usr/lib/sysimage/rpm/rpmdb.sqlite-wal"));
        assert!(!is_rpmdb_file("/var/lib/rpm/Index.db"));
        assert!(is_rpm_state_file("/etc/yum.repos.d/ubi.repo"));
        assert!(is_rpm_state_file("etc/dnf/vars/contentdir"));
        assert!(is_rpm_state_file(
            "/etc/pki/rpm-gpg/RPM-GPG-KEY-redhat-release"
        ));
        assert!(!is_rpm_state_file("/etc/yum.repos.d/x.repo.rpmnew"));
        assert!(!is_rpm_state_file("/etc/yum.repos.d/sub/x.repo"));
    }
}

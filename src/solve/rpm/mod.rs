//! RPM packages as dnf sees them: name, epoch:version-release, arch and the
//! dependency lists of a repository's `primary` metadata or an rpm database
//! header, with rpm's own version comparison. No I/O here.

pub mod modules;
pub mod primary;
pub mod rich;
pub mod solver;
pub mod updateinfo;
pub mod vercmp;

use std::cmp::Ordering;
use std::fmt;

pub use vercmp::rpmvercmp;

/// An `epoch:version-release`; a missing epoch is 0.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub struct Evr {
    pub epoch: u64,
    pub version: String,
    pub release: String,
}

impl Evr {
    pub fn new(epoch: u64, version: impl Into<String>, release: impl Into<String>) -> Self {
        Evr {
            epoch,
            version: version.into(),
            release: release.into(),
        }
    }

    /// rpm's order of two EVRs. An empty release on either side compares
    /// equal, as in rpm's dependency matching (`foo >= 1.0` matches any
    /// release of 1.0).
    pub fn compare(&self, other: &Evr) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| rpmvercmp(&self.version, &other.version))
            .then_with(|| {
                if self.release.is_empty() || other.release.is_empty() {
                    Ordering::Equal
                } else {
                    rpmvercmp(&self.release, &other.release)
                }
            })
    }
}

impl fmt::Display for Evr {
    /// `[epoch:]version-release`, the epoch only when it is not 0.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.epoch != 0 {
            write!(f, "{}:", self.epoch)?;
        }
        f.write_str(&self.version)?;
        if !self.release.is_empty() {
            write!(f, "-{}", self.release)?;
        }
        Ok(())
    }
}

/// The comparison of a versioned dependency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum DepFlag {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

impl DepFlag {
    /// The `flags` attribute of repository metadata (`LT`, `LE`, ...).
    pub fn from_metadata(s: &str) -> Option<DepFlag> {
        Some(match s {
            "LT" => DepFlag::Lt,
            "LE" => DepFlag::Le,
            "EQ" => DepFlag::Eq,
            "GE" => DepFlag::Ge,
            "GT" => DepFlag::Gt,
            _ => return None,
        })
    }

    /// The sense bits of an rpm header (`RPMSENSE_LESS|GREATER|EQUAL`).
    pub fn from_sense(sense: u32) -> Option<DepFlag> {
        match sense & 0x0e {
            0x02 => Some(DepFlag::Lt),
            0x0a => Some(DepFlag::Le),
            0x08 => Some(DepFlag::Eq),
            0x0c => Some(DepFlag::Ge),
            0x04 => Some(DepFlag::Gt),
            _ => None,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            DepFlag::Lt => "<",
            DepFlag::Le => "<=",
            DepFlag::Eq => "=",
            DepFlag::Ge => ">=",
            DepFlag::Gt => ">",
        }
    }
}

/// One dependency: a capability, a file path, or a rich dependency
/// (`(a or b)`, kept as written in `name`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Dependency {
    pub name: String,
    pub constraint: Option<(DepFlag, Evr)>,
}

impl Dependency {
    pub fn unversioned(name: impl Into<String>) -> Self {
        Dependency {
            name: name.into(),
            constraint: None,
        }
    }

    pub fn is_rich(&self) -> bool {
        self.name.starts_with('(')
    }

    /// Whether a provide `provided` (of the same name) satisfies this
    /// requirement's version range, as rpm's `rpmdsCompare` decides it.
    pub fn matched_by(&self, provided: &Option<(DepFlag, Evr)>) -> bool {
        let (Some((want, wevr)), Some((have, hevr))) = (&self.constraint, provided) else {
            // An unversioned side matches any version of the other.
            return true;
        };
        let ord = hevr.compare(wevr);
        let sense = |f: DepFlag| -> (bool, bool, bool) {
            match f {
                DepFlag::Lt => (true, false, false),
                DepFlag::Le => (true, true, false),
                DepFlag::Eq => (false, true, false),
                DepFlag::Ge => (false, true, true),
                DepFlag::Gt => (false, false, true),
            }
        };
        let (wl, we, wg) = sense(*want);
        let (hl, he, hg) = sense(*have);
        match ord {
            // The provided range starts below the wanted one: they overlap
            // when the requirement reaches down or the provide reaches up.
            Ordering::Less => wl || hg,
            Ordering::Greater => wg || hl,
            Ordering::Equal => (wl && hl) || (we && he) || (wg && hg),
        }
    }
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some((flag, evr)) = &self.constraint {
            write!(f, " {} {evr}", flag.symbol())?;
        }
        Ok(())
    }
}

/// A package of a repository's `primary` metadata.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RpmPackage {
    pub name: String,
    pub evr: Evr,
    pub arch: String,
    /// `(algorithm, hex)` of the `.rpm` file, from `<checksum>`.
    pub checksum: (String, String),
    /// `<location href>`, relative to the repository's base URL.
    pub location: String,
    pub size: u64,
    pub source_rpm: Option<String>,
    pub provides: Vec<Dependency>,
    pub requires: Vec<Dependency>,
    pub conflicts: Vec<Dependency>,
    pub obsoletes: Vec<Dependency>,
    pub recommends: Vec<Dependency>,
    pub suggests: Vec<Dependency>,
    pub supplements: Vec<Dependency>,
    pub enhances: Vec<Dependency>,
    /// The files `primary` lists (the ones under `/etc`, `*bin/` and
    /// `/usr/lib/sendmail`, which file dependencies may name).
    pub files: Vec<String>,
}

impl RpmPackage {
    /// `name-[epoch:]version-release.arch`, the form dnf takes as a pin.
    pub fn nevra(&self) -> String {
        format!("{}-{}.{}", self.name, self.evr, self.arch)
    }

    /// The package as the rpm database holds it once installed (with the
    /// files `primary` lists).
    pub fn to_installed(&self) -> InstalledRpm {
        InstalledRpm {
            name: self.name.clone(),
            evr: self.evr.clone(),
            arch: self.arch.clone(),
            source_rpm: self.source_rpm.clone(),
            provides: self.provides.clone(),
            requires: self.requires.clone(),
            obsoletes: self.obsoletes.clone(),
            conflicts: self.conflicts.clone(),
            files: self.files.clone(),
            header_sha256: None,
            payload_digest: None,
        }
    }
}

/// A package of an rpm database.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InstalledRpm {
    pub name: String,
    pub evr: Evr,
    /// Empty for `gpg-pubkey` entries, which have no arch.
    pub arch: String,
    pub source_rpm: Option<String>,
    pub provides: Vec<Dependency>,
    pub requires: Vec<Dependency>,
    pub obsoletes: Vec<Dependency>,
    pub conflicts: Vec<Dependency>,
    pub files: Vec<String>,
    /// The header's SHA-256 digest (`RPMTAG_SHA256HEADER`) when it has one.
    pub header_sha256: Option<String>,
    /// The payload digest (`RPMTAG_PAYLOADDIGEST`) when it has one.
    pub payload_digest: Option<String>,
}

impl InstalledRpm {
    /// `name-[epoch:]version-release.arch`; `gpg-pubkey` has no arch.
    pub fn nevra(&self) -> String {
        if self.arch.is_empty() {
            format!("{}-{}", self.name, self.evr)
        } else {
            format!("{}-{}.{}", self.name, self.evr, self.arch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(name: &str, flag: DepFlag, evr: &str) -> Dependency {
        Dependency {
            name: name.into(),
            constraint: Some((flag, parse_evr(evr))),
        }
    }

    fn parse_evr(s: &str) -> Evr {
        let (epoch, rest) = match s.split_once(':') {
            Some((e, r)) => (e.parse().unwrap(), r),
            None => (0, s),
        };
        let (v, r) = rest.rsplit_once('-').unwrap_or((rest, ""));
        Evr::new(epoch, v, r)
    }

    #[test]
    fn ranges_overlap_as_rpm_decides() {
        let p = |f, e: &str| Some((f, parse_evr(e)));
        assert!(dep("a", DepFlag::Ge, "1.1").matched_by(&p(DepFlag::Eq, "1.1-1")));
        assert!(!dep("a", DepFlag::Ge, "1.1").matched_by(&p(DepFlag::Eq, "1.0-9")));
        assert!(dep("a", DepFlag::Lt, "2").matched_by(&p(DepFlag::Eq, "1.0-1")));
        assert!(!dep("a", DepFlag::Lt, "2").matched_by(&p(DepFlag::Eq, "2-1")));
        assert!(dep("a", DepFlag::Eq, "1.0").matched_by(&p(DepFlag::Eq, "1.0-7")));
        assert!(!dep("a", DepFlag::Eq, "1:1.0").matched_by(&p(DepFlag::Eq, "1.0-7")));
        assert!(dep("a", DepFlag::Gt, "1").matched_by(&p(DepFlag::Ge, "0.5")));
        assert!(dep("a", DepFlag::Ge, "3").matched_by(&None));
        assert_eq!(parse_evr("2:0.9-1").to_string(), "2:0.9-1");
        assert_eq!(parse_evr("0.9-1").to_string(), "0.9-1");
    }
}

//! The Python environment a resolution is for: interpreter, libc,
//! architecture, the wheel tags it accepts (in pip's priority order) and its
//! PEP 508 marker environment.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use pep440_rs::Version;
use pep508_rs::{MarkerEnvironment, MarkerEnvironmentBuilder};

/// Why a target environment could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error(
        "the Python version of the target is unknown\nhint: set `overrides.python = \"3.11\"` for the image in imagelock.toml (or pass `--python-version`)"
    )]
    MissingPython,
    #[error("`{0}` is not a Python version like `3.11` or `3.11.9`")]
    BadPython(String),
    #[error(
        "the C library of the target is unknown\nhint: set `overrides.glibc = \"2.36\"` for the image in imagelock.toml (or pass `--glibc`; `--musl` for Alpine)"
    )]
    MissingLibc,
    #[error("`{0}` is not a libc version like `2.28`")]
    BadLibc(String),
    #[error(
        "platform `{0}` is not supported for Python packages\nhint: Python wheels are locked for linux/amd64, linux/arm64, linux/ppc64le, linux/s390x, linux/386 and linux/arm/v7"
    )]
    UnsupportedPlatform(String),
}

/// The C library of a Linux target, with its version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Libc {
    /// glibc `2.minor` (manylinux).
    Glibc { major: u16, minor: u16 },
    /// musl `1.minor` (musllinux).
    Musl { major: u16, minor: u16 },
}

impl Libc {
    /// Parses `2.28` as glibc.
    pub fn glibc(text: &str) -> Result<Self, TargetError> {
        let (major, minor) = two_numbers(text).ok_or_else(|| TargetError::BadLibc(text.into()))?;
        Ok(Libc::Glibc { major, minor })
    }

    /// Parses `1.2` as musl.
    pub fn musl(text: &str) -> Result<Self, TargetError> {
        let (major, minor) = two_numbers(text).ok_or_else(|| TargetError::BadLibc(text.into()))?;
        Ok(Libc::Musl { major, minor })
    }
}

fn two_numbers(text: &str) -> Option<(u16, u16)> {
    let mut parts = text.trim().split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// A wheel compatibility tag: `cp311-cp311-manylinux_2_28_x86_64`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WheelTag {
    pub python: String,
    pub abi: String,
    pub platform: String,
}

impl fmt::Display for WheelTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.python, self.abi, self.platform)
    }
}

/// Everything about the target that decides which distributions fit.
#[derive(Clone, Debug)]
pub struct TargetEnv {
    /// Full Python version (`3.11.0` when only `3.11` was given).
    pub python: Version,
    pub python_major: u64,
    pub python_minor: u64,
    /// `linux/amd64`-style platform being locked.
    pub platform: String,
    /// `x86_64`, `aarch64`…
    pub arch: String,
    pub libc: Libc,
    tags: Vec<WheelTag>,
    rank: HashMap<WheelTag, usize>,
    markers: MarkerEnvironment,
}

impl TargetEnv {
    /// A CPython target on Linux.
    ///
    /// `python` is `3.11` or `3.11.9`; `platform` is an OCI platform
    /// (`linux/amd64`); `libc` is the image's C library. Missing values give
    /// an error that says how to provide them.
    pub fn cpython(
        python: Option<&str>,
        platform: &str,
        libc: Option<Libc>,
    ) -> Result<Self, TargetError> {
        let python = python.ok_or(TargetError::MissingPython)?;
        let libc = libc.ok_or(TargetError::MissingLibc)?;
        let bad = || TargetError::BadPython(python.to_string());
        let parts: Vec<u64> = python
            .trim()
            .split('.')
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|_| bad())?;
        let (major, minor, patch) = match parts[..] {
            [major, minor] => (major, minor, 0),
            [major, minor, patch] => (major, minor, patch),
            _ => return Err(bad()),
        };
        if major != 3 {
            return Err(bad());
        }
        let arch = oci_arch(platform)
            .ok_or_else(|| TargetError::UnsupportedPlatform(platform.to_string()))?
            .to_string();
        let full = format!("{major}.{minor}.{patch}");
        let short = format!("{major}.{minor}");
        let markers = MarkerEnvironment::try_from(MarkerEnvironmentBuilder {
            implementation_name: "cpython",
            implementation_version: &full,
            os_name: "posix",
            platform_machine: &arch,
            platform_python_implementation: "CPython",
            platform_release: "",
            platform_system: "Linux",
            platform_version: "",
            python_full_version: &full,
            python_version: &short,
            sys_platform: "linux",
        })
        .map_err(|_| bad())?;
        let tags = cpython_tags(major, minor, &platform_tags(&arch, libc));
        let rank = tags
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i))
            .collect();
        Ok(TargetEnv {
            python: Version::from_str(&full).map_err(|_| bad())?,
            python_major: major,
            python_minor: minor,
            platform: platform.to_string(),
            arch,
            libc,
            tags,
            rank,
            markers,
        })
    }

    /// The tags the target accepts, best first (as `pip debug --verbose`).
    pub fn tags(&self) -> &[WheelTag] {
        &self.tags
    }

    /// The PEP 508 marker environment of the target.
    pub fn markers(&self) -> &MarkerEnvironment {
        &self.markers
    }

    /// The rank of a wheel with these (possibly compressed) tag sets: lower
    /// is better; `None` when the wheel does not fit the target.
    pub fn wheel_rank(
        &self,
        python: &[String],
        abi: &[String],
        platform: &[String],
    ) -> Option<usize> {
        let mut best = None;
        for py in python {
            for a in abi {
                for p in platform {
                    let tag = WheelTag {
                        python: py.clone(),
                        abi: a.clone(),
                        platform: p.clone(),
                    };
                    if let Some(&r) = self.rank.get(&tag) {
                        best = Some(best.map_or(r, |b: usize| b.min(r)));
                    }
                }
            }
        }
        best
    }

    /// Short description for messages: `CPython 3.11 on manylinux_2_28_x86_64`.
    pub fn describe(&self) -> String {
        let plat = match self.libc {
            Libc::Glibc { major, minor } => format!("manylinux_{major}_{minor}_{}", self.arch),
            Libc::Musl { major, minor } => format!("musllinux_{major}_{minor}_{}", self.arch),
        };
        format!(
            "Python {}.{} on {plat}",
            self.python_major, self.python_minor
        )
    }
}

/// The CPU architecture of a Linux OCI platform as Python names it.
pub fn oci_arch(platform: &str) -> Option<&'static str> {
    let platform: crate::oci::Platform = platform.parse().ok()?;
    (platform.os() == "linux").then(|| platform.python_machine())?
}

/// Platform tags for a Linux architecture and libc, best first (as
/// `packaging.tags._linux_platforms`).
pub fn platform_tags(arch: &str, libc: Libc) -> Vec<String> {
    let mut out = Vec::new();
    match libc {
        Libc::Glibc { major, minor } => {
            // packaging: x86_64/i686 reach back to glibc 2.5 (manylinux1);
            // other architectures only to 2.17 (manylinux2014).
            let oldest = if matches!(arch, "x86_64" | "i686") {
                5
            } else {
                17
            };
            if major == 2 {
                for m in (oldest..=minor).rev() {
                    out.push(format!("manylinux_2_{m}_{arch}"));
                    let legacy = match m {
                        17 if matches!(
                            arch,
                            "x86_64"
                                | "i686"
                                | "aarch64"
                                | "armv7l"
                                | "ppc64"
                                | "ppc64le"
                                | "s390x"
                        ) =>
                        {
                            Some("manylinux2014")
                        }
                        12 if matches!(arch, "x86_64" | "i686") => Some("manylinux2010"),
                        5 if matches!(arch, "x86_64" | "i686") => Some("manylinux1"),
                        _ => None,
                    };
                    if let Some(legacy) = legacy {
                        out.push(format!("{legacy}_{arch}"));
                    }
                }
            }
        }
        Libc::Musl { major, minor } => {
            for m in (0..=minor).rev() {
                out.push(format!("musllinux_{major}_{m}_{arch}"));
            }
        }
    }
    out.push(format!("linux_{arch}"));
    out
}

/// `packaging.tags.sys_tags()` for CPython `major.minor` on `platforms`.
pub fn cpython_tags(major: u64, minor: u64, platforms: &[String]) -> Vec<WheelTag> {
    let tag = |py: &str, abi: &str, plat: &str| WheelTag {
        python: py.to_string(),
        abi: abi.to_string(),
        platform: plat.to_string(),
    };
    let interp = format!("cp{major}{minor}");
    let abi3 = major == 3 && minor >= 2;
    let mut out = Vec::new();
    for p in platforms {
        out.push(tag(&interp, &interp, p));
    }
    if abi3 {
        for p in platforms {
            out.push(tag(&interp, "abi3", p));
        }
    }
    for p in platforms {
        out.push(tag(&interp, "none", p));
    }
    if abi3 {
        for m in (2..minor).rev() {
            for p in platforms {
                out.push(tag(&format!("cp{major}{m}"), "abi3", p));
            }
        }
    }
    // compatible_tags: py3X, py3, py3(X-1)… on each platform, then "any".
    let mut py_range = vec![format!("py{major}{minor}"), format!("py{major}")];
    py_range.extend((0..minor).rev().map(|m| format!("py{major}{m}")));
    for py in &py_range {
        for p in platforms {
            out.push(tag(py, "none", p));
        }
    }
    out.push(tag(&interp, "none", "any"));
    for py in &py_range {
        out.push(tag(py, "none", "any"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(py: &str, platform: &str, libc: Libc) -> TargetEnv {
        TargetEnv::cpython(Some(py), platform, Some(libc)).unwrap()
    }

    #[test]
    fn tag_order_matches_pip_for_cpython_311_manylinux_2_28() {
        let t = target("3.11", "linux/amd64", Libc::glibc("2.28").unwrap());
        let tags: Vec<String> = t.tags().iter().map(ToString::to_string).collect();
        // Start, the legacy aliases, and the tail as `pip debug --verbose`
        // prints them for this interpreter.
        assert_eq!(tags[0], "cp311-cp311-manylinux_2_28_x86_64");
        assert_eq!(tags[1], "cp311-cp311-manylinux_2_27_x86_64");
        let i2014 = tags
            .iter()
            .position(|t| t == "cp311-cp311-manylinux2014_x86_64")
            .unwrap();
        assert_eq!(tags[i2014 - 1], "cp311-cp311-manylinux_2_17_x86_64");
        assert!(tags.contains(&"cp311-cp311-manylinux2010_x86_64".to_string()));
        assert!(tags.contains(&"cp311-cp311-manylinux1_x86_64".to_string()));
        assert!(tags.contains(&"cp32-abi3-linux_x86_64".to_string()));
        assert!(!tags.contains(&"cp31-abi3-linux_x86_64".to_string()));
        assert_eq!(tags[tags.len() - 14], "cp311-none-any");
        assert_eq!(tags[tags.len() - 13], "py311-none-any");
        assert_eq!(tags[tags.len() - 12], "py3-none-any");
        assert_eq!(tags.last().unwrap(), "py30-none-any");
        // 24 manylinux_2_x + 3 legacy + linux = 28 platforms.
        let platforms = 28;
        assert_eq!(tags.len(), platforms * (3 + 9) + platforms * 13 + 1 + 13);
    }

    #[test]
    fn aarch64_stops_at_manylinux2014() {
        let plats = platform_tags("aarch64", Libc::glibc("2.31").unwrap());
        assert_eq!(plats.first().unwrap(), "manylinux_2_31_aarch64");
        assert_eq!(
            &plats[plats.len() - 3..],
            [
                "manylinux_2_17_aarch64",
                "manylinux2014_aarch64",
                "linux_aarch64"
            ]
        );
    }

    #[test]
    fn musl_tags() {
        let plats = platform_tags("x86_64", Libc::musl("1.2").unwrap());
        assert_eq!(
            plats,
            [
                "musllinux_1_2_x86_64",
                "musllinux_1_1_x86_64",
                "musllinux_1_0_x86_64",
                "linux_x86_64"
            ]
        );
    }

    #[test]
    fn wheel_rank_prefers_specific_over_abi3_over_pure() {
        let t = target("3.12", "linux/arm64", Libc::glibc("2.36").unwrap());
        let s = |v: &[&str]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        let specific = t.wheel_rank(
            &s(&["cp312"]),
            &s(&["cp312"]),
            &s(&["manylinux_2_17_aarch64", "manylinux2014_aarch64"]),
        );
        let abi3 = t.wheel_rank(
            &s(&["cp38"]),
            &s(&["abi3"]),
            &s(&["manylinux_2_28_aarch64"]),
        );
        let pure = t.wheel_rank(&s(&["py3"]), &s(&["none"]), &s(&["any"]));
        let wrong_arch = t.wheel_rank(
            &s(&["cp312"]),
            &s(&["cp312"]),
            &s(&["manylinux_2_17_x86_64"]),
        );
        let too_new = t.wheel_rank(
            &s(&["cp312"]),
            &s(&["cp312"]),
            &s(&["manylinux_2_39_aarch64"]),
        );
        let other_py = t.wheel_rank(
            &s(&["cp311"]),
            &s(&["cp311"]),
            &s(&["manylinux_2_17_aarch64"]),
        );
        assert!(specific.unwrap() < abi3.unwrap());
        assert!(abi3.unwrap() < pure.unwrap());
        assert_eq!((wrong_arch, too_new, other_py), (None, None, None));
    }

    #[test]
    fn marker_environment_is_the_targets() {
        let t = target("3.10.4", "linux/arm64", Libc::glibc("2.31").unwrap());
        let req: pep508_rs::Requirement =
            "x ; platform_machine == 'aarch64' and python_full_version == '3.10.4' and sys_platform == 'linux'"
                .parse()
                .unwrap();
        assert!(req.evaluate_markers(t.markers(), &[]));
        let req: pep508_rs::Requirement = "x ; python_version >= '3.11'".parse().unwrap();
        assert!(!req.evaluate_markers(t.markers(), &[]));
    }

    #[test]
    fn missing_values_say_how_to_give_them() {
        let err = TargetEnv::cpython(None, "linux/amd64", None).unwrap_err();
        assert!(err.to_string().contains("overrides.python"));
        let err = TargetEnv::cpython(Some("3.11"), "linux/amd64", None).unwrap_err();
        assert!(err.to_string().contains("overrides.glibc"));
        let err = TargetEnv::cpython(
            Some("3.11"),
            "windows/amd64",
            Some(Libc::glibc("2.28").unwrap()),
        )
        .unwrap_err();
        assert!(matches!(err, TargetError::UnsupportedPlatform(_)));
        assert!(matches!(
            TargetEnv::cpython(
                Some("three"),
                "linux/amd64",
                Some(Libc::glibc("2.28").unwrap())
            ),
            Err(TargetError::BadPython(_))
        ));
    }
}

//! Target platforms, `os/arch[/variant]`, and every name an ecosystem gives
//! them: conda subdirs, Python's `platform_machine`, Debian and RPM
//! architectures. The only table of these in the crate. Pure code, no I/O.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a string is not a platform.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a platform\nhint: write `os/arch` or `os/arch/variant`, e.g. `linux/amd64` or `linux/arm/v7`"
)]
pub struct ParsePlatformError(pub String);

/// A target platform, `os/arch[/variant]`, normalized the way containerd
/// does (`aarch64` is `arm64`, `arm64/v8` is `arm64`, `arm` is `arm/v7`,
/// `x86_64` is `amd64`). Serialized as its text.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Platform {
    os: String,
    architecture: String,
    variant: Option<String>,
}

impl Platform {
    /// A platform from its parts, normalized.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        let os = match os.to_ascii_lowercase().as_str() {
            "macos" => "darwin".to_string(),
            other => other.to_string(),
        };
        let variant = variant
            .filter(|v| !v.is_empty())
            .map(str::to_ascii_lowercase);
        let (architecture, variant) = normalize_arch(&architecture.to_ascii_lowercase(), variant);
        Platform {
            os,
            architecture,
            variant,
        }
    }

    /// `linux/amd64`, the platform locked when none is configured.
    pub fn linux_amd64() -> Platform {
        Platform::new("linux", "amd64", None)
    }

    pub fn os(&self) -> &str {
        &self.os
    }

    pub fn architecture(&self) -> &str {
        &self.architecture
    }

    pub fn variant(&self) -> Option<&str> {
        self.variant.as_deref()
    }

    /// Whether an image of platform `other` runs here. A missing variant on
    /// either side matches (`linux/amd64` is any `linux/amd64/vN`).
    pub fn matches(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && match (&self.variant, &other.variant) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }

    /// The architecture as OCI image indexes name it (`amd64`, `arm64`).
    pub fn oci_arch(&self) -> &str {
        &self.architecture
    }

    /// The conda subdir that builds for this platform (`linux-64`,
    /// `linux-aarch64`, `osx-arm64`), or `None` where conda has none.
    pub fn conda_subdir(&self) -> Option<&'static str> {
        Some(match (self.os.as_str(), self.architecture.as_str()) {
            ("linux", "amd64") => "linux-64",
            ("linux", "arm64") => "linux-aarch64",
            ("linux", "ppc64le") => "linux-ppc64le",
            ("linux", "s390x") => "linux-s390x",
            ("linux", "386") => "linux-32",
            ("linux", "arm") if self.variant.as_deref() == Some("v7") => "linux-armv7l",
            ("linux", "arm") if self.variant.as_deref() == Some("v6") => "linux-armv6l",
            ("linux", "riscv64") => "linux-riscv64",
            ("darwin", "amd64") => "osx-64",
            ("darwin", "arm64") => "osx-arm64",
            ("windows", "amd64") => "win-64",
            ("windows", "arm64") => "win-arm64",
            ("windows", "386") => "win-32",
            _ => return None,
        })
    }

    /// Whether `name` is a conda subdir: one [`Self::conda_subdir`] gives,
    /// or `noarch`.
    pub fn is_conda_subdir(name: &str) -> bool {
        name == "noarch"
            || [
                "linux/amd64",
                "linux/arm64",
                "linux/ppc64le",
                "linux/s390x",
                "linux/386",
                "linux/arm/v7",
                "linux/arm/v6",
                "linux/riscv64",
                "darwin/amd64",
                "darwin/arm64",
                "windows/amd64",
                "windows/arm64",
                "windows/386",
            ]
            .iter()
            .filter_map(|p| p.parse::<Platform>().ok())
            .any(|p| p.conda_subdir() == Some(name))
    }

    /// What Python's `platform.machine()` (the `platform_machine` marker)
    /// says inside a Linux container of this platform, as `uname -m`
    /// reports it: `x86_64`, `aarch64`, `i686`, `armv7l`, `ppc64le`, `s390x`.
    /// `None` where it is not known.
    pub fn python_machine(&self) -> Option<&'static str> {
        Some(
            match (self.architecture.as_str(), self.variant.as_deref()) {
                ("amd64", _) => "x86_64",
                ("arm64", _) => "aarch64",
                ("386", _) => "i686",
                ("arm", Some("v7")) => "armv7l",
                ("arm", Some("v6")) => "armv6l",
                ("arm", Some("v5")) => "armv5tel",
                ("ppc64le", _) => "ppc64le",
                ("s390x", _) => "s390x",
                ("riscv64", _) => "riscv64",
                ("mips64le", _) => "mips64",
                ("loong64", _) => "loongarch64",
                _ => return None,
            },
        )
    }

    /// The Debian architecture (`dpkg --print-architecture`) of this
    /// platform: `amd64`, `arm64`, `armhf`, `armel`, `i386`, …
    pub fn deb_arch(&self) -> Option<&'static str> {
        Some(
            match (self.architecture.as_str(), self.variant.as_deref()) {
                ("amd64", _) => "amd64",
                ("arm64", _) => "arm64",
                ("386", _) => "i386",
                ("arm", Some("v7")) => "armhf",
                ("arm", Some("v6" | "v5")) => "armel",
                ("ppc64le", _) => "ppc64el",
                ("s390x", _) => "s390x",
                ("riscv64", _) => "riscv64",
                ("mips64le", _) => "mips64el",
                ("loong64", _) => "loong64",
                _ => return None,
            },
        )
    }

    /// The RPM base architecture (`$basearch`) of this platform.
    pub fn rpm_arch(&self) -> Option<&'static str> {
        Some(
            match (self.architecture.as_str(), self.variant.as_deref()) {
                ("amd64", _) => "x86_64",
                ("arm64", _) => "aarch64",
                ("386", _) => "i686",
                ("arm", Some("v7")) => "armv7hl",
                ("ppc64le", _) => "ppc64le",
                ("s390x", _) => "s390x",
                ("riscv64", _) => "riscv64",
                _ => return None,
            },
        )
    }

    /// Whether this is an attestation or other non-image entry of an index
    /// (`unknown/unknown`).
    pub fn is_unknown(&self) -> bool {
        self.os == "unknown" && self.architecture == "unknown"
    }
}

fn normalize_arch(arch: &str, variant: Option<String>) -> (String, Option<String>) {
    let v = variant.as_deref();
    match arch {
        "i386" | "386" => ("386".into(), None),
        "x86_64" | "x86-64" | "amd64" => {
            // `v1` is the baseline; later micro-architecture levels stay.
            let variant = variant.filter(|v| v != "v1" && v != "1");
            ("amd64".into(), variant)
        }
        "aarch64" | "arm64" => {
            let variant = match v {
                None | Some("8" | "v8") => None,
                Some(other) => Some(if other.starts_with('v') {
                    other.to_string()
                } else {
                    format!("v{other}")
                }),
            };
            ("arm64".into(), variant)
        }
        "armhf" => ("arm".into(), Some("v7".into())),
        "armel" => ("arm".into(), Some("v6".into())),
        "arm" => {
            let variant = match v {
                None | Some("7" | "v7") => "v7".to_string(),
                Some(other) if other.starts_with('v') => other.to_string(),
                Some(other) => format!("v{other}"),
            };
            ("arm".into(), Some(variant))
        }
        other => (other.to_string(), variant),
    }
}

impl FromStr for Platform {
    type Err = ParsePlatformError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok = (2..=3).contains(&parts.len())
            && parts.iter().all(|p| {
                !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
            });
        if !ok {
            return Err(ParsePlatformError(s.to_string()));
        }
        Ok(Platform::new(parts[0], parts[1], parts.get(2).copied()))
    }
}

impl TryFrom<String> for Platform {
    type Error = ParsePlatformError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Platform> for String {
    fn from(p: Platform) -> Self {
        p.to_string()
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(
        "linux/amd64",
        Some("linux-64"),
        Some("x86_64"),
        Some("amd64"),
        Some("x86_64")
    )]
    #[case(
        "linux/amd64/v3",
        Some("linux-64"),
        Some("x86_64"),
        Some("amd64"),
        Some("x86_64")
    )]
    #[case(
        "linux/arm64",
        Some("linux-aarch64"),
        Some("aarch64"),
        Some("arm64"),
        Some("aarch64")
    )]
    #[case(
        "linux/arm64/v8",
        Some("linux-aarch64"),
        Some("aarch64"),
        Some("arm64"),
        Some("aarch64")
    )]
    #[case(
        "linux/386",
        Some("linux-32"),
        Some("i686"),
        Some("i386"),
        Some("i686")
    )]
    #[case(
        "linux/arm/v7",
        Some("linux-armv7l"),
        Some("armv7l"),
        Some("armhf"),
        Some("armv7hl")
    )]
    #[case(
        "linux/arm/v6",
        Some("linux-armv6l"),
        Some("armv6l"),
        Some("armel"),
        None
    )]
    #[case(
        "linux/ppc64le",
        Some("linux-ppc64le"),
        Some("ppc64le"),
        Some("ppc64el"),
        Some("ppc64le")
    )]
    #[case(
        "linux/s390x",
        Some("linux-s390x"),
        Some("s390x"),
        Some("s390x"),
        Some("s390x")
    )]
    #[case(
        "darwin/arm64",
        Some("osx-arm64"),
        Some("aarch64"),
        Some("arm64"),
        Some("aarch64")
    )]
    #[case("plan9/amd64", None, Some("x86_64"), Some("amd64"), Some("x86_64"))]
    #[case("linux/sparc", None, None, None, None)]
    fn every_ecosystem_name_comes_from_one_table(
        #[case] platform: &str,
        #[case] conda: Option<&str>,
        #[case] machine: Option<&str>,
        #[case] deb: Option<&str>,
        #[case] rpm: Option<&str>,
    ) {
        let p: Platform = platform.parse().unwrap();
        assert_eq!(p.conda_subdir(), conda, "conda subdir of {platform}");
        assert_eq!(
            p.python_machine(),
            machine,
            "platform_machine of {platform}"
        );
        assert_eq!(p.deb_arch(), deb, "Debian arch of {platform}");
        assert_eq!(p.rpm_arch(), rpm, "RPM arch of {platform}");
    }
}

//! The machine a solve is for: conda subdir and virtual packages of the
//! TARGET image, never of the host running imagelock.

use std::str::FromStr;

use rattler_conda_types::package::BuildString;
use rattler_conda_types::{GenericVirtualPackage, PackageName, Subdir, Version};

/// The target could not be described to the solver.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CondaTargetError {
    #[error(
        "unknown conda platform `{0}`\nhint: use a conda subdir like `linux-64`, `linux-aarch64` or `linux-ppc64le`"
    )]
    UnknownPlatform(String),
    #[error("no conda platform for image platform `{0}`")]
    UnsupportedImagePlatform(String),
    #[error("invalid version `{value}` for virtual package `{name}`")]
    InvalidVersion { name: String, value: String },
    #[error(
        "the value of `{0}` cannot be known here\nhint: write the version literally, or set `overrides` in imagelock.toml"
    )]
    UnknownOverride(String),
}

/// The `CONDA_OVERRIDE_*` variables conda and mamba read, and the virtual
/// package each one sets.
pub const CONDA_OVERRIDES: [(&str, &str); 5] = [
    ("CONDA_OVERRIDE_CUDA", "__cuda"),
    ("CONDA_OVERRIDE_GLIBC", "__glibc"),
    ("CONDA_OVERRIDE_LINUX", "__linux"),
    ("CONDA_OVERRIDE_ARCHSPEC", "__archspec"),
    ("CONDA_OVERRIDE_OSX", "__osx"),
];

/// Kernel version assumed for `__linux` when the caller gives none: old
/// enough for every current build host, new enough for conda-forge's
/// `__linux>=3.10` requirements.
pub const DEFAULT_LINUX_KERNEL: &str = "5.10";

/// Where and for what a solve runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CondaTarget {
    /// The conda subdir: `linux-64`, `linux-aarch64`…
    pub platform: String,
    /// The base image's glibc (`2.28`); `None` for a musl or libc-less
    /// image, which then gets no `__glibc`.
    pub glibc: Option<String>,
    /// `__linux` version; [`DEFAULT_LINUX_KERNEL`] when `None`.
    pub linux_kernel: Option<String>,
    /// `__cuda` version: only when configured (GPU images).
    pub cuda: Option<String>,
    /// `__archspec` build string; the generic architecture when `None`.
    pub archspec: Option<String>,
    /// `__osx` version (osx subdirs); `11.0` when `None`.
    pub osx: Option<String>,
}

/// One virtual package: `__glibc=2.28=0`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualPackage {
    pub name: String,
    pub version: String,
    pub build: String,
}

impl CondaTarget {
    /// A target for a conda subdir with nothing else known.
    pub fn new(platform: &str) -> Result<Self, CondaTargetError> {
        parse_platform(platform)?;
        Ok(Self {
            platform: platform.to_string(),
            glibc: None,
            linux_kernel: None,
            cuda: None,
            archspec: None,
            osx: None,
        })
    }

    /// Applies one `CONDA_OVERRIDE_*` variable as conda does: its value
    /// replaces what was detected, and an empty value removes the virtual
    /// package (`__cuda`, `__glibc`) or, for those every platform has,
    /// restores the default. Returns whether `name` is such a variable.
    pub fn apply_override(&mut self, name: &str, value: &str) -> bool {
        let value = value.trim();
        let set = || (!value.is_empty()).then(|| value.to_string());
        match name {
            "CONDA_OVERRIDE_CUDA" => self.cuda = set(),
            "CONDA_OVERRIDE_GLIBC" => self.glibc = set(),
            "CONDA_OVERRIDE_LINUX" => self.linux_kernel = set(),
            "CONDA_OVERRIDE_ARCHSPEC" => self.archspec = set(),
            "CONDA_OVERRIDE_OSX" => self.osx = set(),
            _ => return false,
        }
        true
    }

    /// The target for an image platform (`linux/amd64`, `linux/arm64/v8`).
    pub fn for_image_platform(image_platform: &str) -> Result<Self, CondaTargetError> {
        let subdir = image_platform
            .parse::<crate::oci::Platform>()
            .ok()
            .and_then(|p| p.conda_subdir())
            .ok_or_else(|| {
                CondaTargetError::UnsupportedImagePlatform(image_platform.to_string())
            })?;
        Self::new(subdir)
    }

    #[must_use]
    pub fn with_glibc(mut self, version: impl Into<String>) -> Self {
        self.glibc = Some(version.into());
        self
    }

    #[must_use]
    pub fn with_cuda(mut self, version: impl Into<String>) -> Self {
        self.cuda = Some(version.into());
        self
    }

    /// The virtual packages the solver sees for this target.
    pub fn virtual_packages(&self) -> Result<Vec<VirtualPackage>, CondaTargetError> {
        let platform = parse_platform(&self.platform)?;
        let mut out = Vec::new();
        let mut push = |name: &str, version: &str, build: &str| {
            out.push(VirtualPackage {
                name: name.to_string(),
                version: version.to_string(),
                build: build.to_string(),
            });
        };
        if platform.is_unix() {
            push("__unix", "0", "0");
        }
        if platform.is_linux() {
            push(
                "__linux",
                self.linux_kernel.as_deref().unwrap_or(DEFAULT_LINUX_KERNEL),
                "0",
            );
            if let Some(glibc) = &self.glibc {
                push("__glibc", glibc, "0");
            }
        }
        if platform.is_osx() {
            push("__osx", self.osx.as_deref().unwrap_or("11.0"), "0");
        }
        if platform.is_windows() {
            push("__win", "0", "0");
        }
        if let Some(cuda) = &self.cuda {
            push("__cuda", cuda, "0");
        }
        let arch = self
            .archspec
            .clone()
            .or_else(|| platform.arch().map(|a| a.to_string()));
        if let Some(arch) = arch {
            push("__archspec", "1", &arch);
        }
        Ok(out)
    }

    pub(crate) fn rattler_virtual_packages(
        &self,
    ) -> Result<Vec<GenericVirtualPackage>, CondaTargetError> {
        self.virtual_packages()?
            .into_iter()
            .map(|v| {
                let invalid = || CondaTargetError::InvalidVersion {
                    name: v.name.clone(),
                    value: v.version.clone(),
                };
                Ok(GenericVirtualPackage {
                    name: PackageName::new_unchecked(v.name.clone()),
                    version: Version::from_str(&v.version).map_err(|_| invalid())?,
                    build_string: BuildString::new_unchecked(v.build.clone()),
                })
            })
            .collect()
    }
}

fn parse_platform(text: &str) -> Result<Subdir, CondaTargetError> {
    match Subdir::from_str(text) {
        Ok(Subdir::NoArch) | Err(_) => Err(CondaTargetError::UnknownPlatform(text.to_string())),
        Ok(p) => Ok(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_target_gets_glibc_from_the_image() {
        let target = CondaTarget::new("linux-64")
            .expect("known")
            .with_glibc("2.28");
        let names: Vec<String> = target
            .virtual_packages()
            .expect("valid")
            .iter()
            .map(|v| format!("{}={}={}", v.name, v.version, v.build))
            .collect();
        assert_eq!(
            names,
            [
                "__unix=0=0",
                "__linux=5.10=0",
                "__glibc=2.28=0",
                "__archspec=1=x86_64"
            ]
        );
    }

    #[test]
    fn cuda_only_when_configured() {
        let target = CondaTarget::new("linux-aarch64").expect("known");
        let vps = target.virtual_packages().expect("valid");
        assert!(
            vps.iter()
                .all(|v| v.name != "__cuda" && v.name != "__glibc")
        );
        assert!(
            vps.iter()
                .any(|v| v.name == "__archspec" && v.build == "aarch64")
        );
        let vps = target.with_cuda("12.2").virtual_packages().expect("valid");
        assert!(
            vps.iter()
                .any(|v| v.name == "__cuda" && v.version == "12.2")
        );
    }

    #[test]
    fn image_platforms_map_to_subdirs() {
        for (image, subdir) in [
            ("linux/amd64", "linux-64"),
            ("linux/arm64/v8", "linux-aarch64"),
            ("linux/ppc64le", "linux-ppc64le"),
        ] {
            assert_eq!(
                CondaTarget::for_image_platform(image)
                    .expect("known")
                    .platform,
                subdir
            );
        }
        assert!(CondaTarget::for_image_platform("linux/sparc").is_err());
        assert!(CondaTarget::new("noarch").is_err());
    }

    #[test]
    fn overrides_replace_or_remove_virtual_packages() {
        let mut target = CondaTarget::new("linux-64")
            .expect("known")
            .with_glibc("2.28");
        assert!(target.apply_override("CONDA_OVERRIDE_CUDA", "11.8"));
        assert!(target.apply_override("CONDA_OVERRIDE_GLIBC", "2.17"));
        assert!(target.apply_override("CONDA_OVERRIDE_ARCHSPEC", "skylake"));
        assert!(target.apply_override("CONDA_OVERRIDE_LINUX", "4.18"));
        assert!(!target.apply_override("CONDA_CHANNELS", "x"));
        let names: Vec<String> = target
            .virtual_packages()
            .expect("valid")
            .iter()
            .map(|v| format!("{}={}={}", v.name, v.version, v.build))
            .collect();
        assert_eq!(
            names,
            [
                "__unix=0=0",
                "__linux=4.18=0",
                "__glibc=2.17=0",
                "__cuda=11.8=0",
                "__archspec=1=skylake"
            ]
        );
        target.apply_override("CONDA_OVERRIDE_CUDA", "");
        target.apply_override("CONDA_OVERRIDE_GLIBC", "");
        let vps = target.virtual_packages().expect("valid");
        assert!(
            vps.iter()
                .all(|v| v.name != "__cuda" && v.name != "__glibc")
        );
    }

    #[test]
    fn bad_glibc_is_an_error() {
        let target = CondaTarget::new("linux-64")
            .expect("known")
            .with_glibc("x.y!");
        assert!(target.rattler_virtual_packages().is_err());
    }
}

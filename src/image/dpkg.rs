//! The apt and dpkg state of an image, read from file contents taken from
//! its layers: dpkg `status` (and distroless `status.d/`), foreign
//! architectures, apt's automatic marks, sources, pins, `apt.conf` and
//! keyrings. No I/O: the caller passes the files.

use std::collections::{BTreeMap, HashSet};

use crate::resolve::apt::ImageKeys;
use crate::solve::apt::control::{BinaryPackage, ParsePackageError};
use crate::solve::apt::deb822::{Deb822Error, paragraphs};
use crate::solve::apt::sources::{
    ParsePreferencesError, ParseSourcesError, apply_apt_conf, parse_deb822_sources,
    parse_preferences, parse_sources_list,
};
use crate::solve::apt::{AptOptions, Pin, SourceEntry};

/// A file of the image's apt or dpkg state that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DpkgError {
    #[error("{path}: {source}")]
    Deb822 {
        path: String,
        #[source]
        source: Deb822Error,
    },
    #[error("{path}: {source}")]
    Package {
        path: String,
        #[source]
        source: ParsePackageError,
    },
    #[error("{0}")]
    Sources(#[from] ParseSourcesError),
    #[error("{0}")]
    Preferences(#[from] ParsePreferencesError),
    #[error("{path} is not UTF-8 text\nhint: apt and dpkg state files are text")]
    NotText { path: String },
}

/// What apt sees in an image before a step.
#[derive(Debug, Clone, Default)]
pub struct AptImageState {
    pub installed: Vec<BinaryPackage>,
    /// `(name, arch)` marked automatic in `/var/lib/apt/extended_states`.
    pub auto_installed: HashSet<(String, String)>,
    pub sources: Vec<SourceEntry>,
    pub pins: Vec<Pin>,
    pub options: AptOptions,
    pub keys: ImageKeys,
    /// True when the status came from distroless `status.d/` files.
    pub distroless: bool,
}

/// Whether a path belongs to the apt/dpkg state (for the catalogue's
/// filter of files that matter).
pub fn is_apt_state_file(path: &str) -> bool {
    let p = path.trim_start_matches('.');
    matches!(
        p,
        "/var/lib/dpkg/status"
            | "/var/lib/dpkg/arch"
            | "/var/lib/apt/extended_states"
            | "/etc/apt/sources.list"
            | "/etc/apt/preferences"
            | "/etc/apt/apt.conf"
            | "/etc/apt/trusted.gpg"
    ) || [
        "/var/lib/dpkg/status.d/",
        "/etc/apt/sources.list.d/",
        "/etc/apt/preferences.d/",
        "/etc/apt/apt.conf.d/",
        "/etc/apt/trusted.gpg.d/",
        "/usr/share/keyrings/",
        "/etc/apt/keyrings/",
    ]
    .iter()
    .any(|d| {
        p.strip_prefix(d)
            .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
    })
}

/// apt's rule for configuration part files: only `[A-Za-z0-9_.-]` names,
/// no backup or dpkg leftovers.
fn apt_part_ok(name: &str, ext: Option<&str>) -> bool {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        return false;
    }
    if [
        ".dpkg-old",
        ".dpkg-dist",
        ".dpkg-new",
        ".dpkg-tmp",
        ".disabled",
        ".bak",
        ".save",
        ".orig",
        ".distUpgrade",
    ]
    .iter()
    .any(|s| name.ends_with(s))
    {
        return false;
    }
    match ext {
        Some(e) => name.ends_with(e) || !name.contains('.'),
        None => true,
    }
}

fn text<'a>(path: &str, bytes: &'a [u8]) -> Result<&'a str, DpkgError> {
    std::str::from_utf8(bytes).map_err(|_| DpkgError::NotText {
        path: path.to_string(),
    })
}

/// Reads dpkg's `status` file: every stanza, present or not.
pub fn parse_status(path: &str, content: &str) -> Result<Vec<BinaryPackage>, DpkgError> {
    let ps = paragraphs(content).map_err(|source| DpkgError::Deb822 {
        path: path.to_string(),
        source,
    })?;
    ps.iter()
        .map(|p| {
            BinaryPackage::from_paragraph(p).map_err(|source| DpkgError::Package {
                path: path.to_string(),
                source,
            })
        })
        .collect()
}

/// Builds the state from the image's files (absolute paths, the latest
/// layer's content; whiteouts already applied).
pub fn read_apt_state(files: &BTreeMap<String, Vec<u8>>) -> Result<AptImageState, DpkgError> {
    let mut state = AptImageState::default();
    let under = |dir: &'static str| {
        files.iter().filter_map(move |(p, b)| {
            p.strip_prefix(dir)
                .filter(|n| !n.contains('/'))
                .map(|n| (p.as_str(), n, b))
        })
    };
    if let Some(b) = files.get("/var/lib/dpkg/status") {
        state.installed = parse_status("/var/lib/dpkg/status", text("/var/lib/dpkg/status", b)?)?;
    }
    for (path, name, b) in under("/var/lib/dpkg/status.d/") {
        if name.ends_with(".md5sums") {
            continue;
        }
        state.distroless = true;
        for mut p in parse_status(path, text(path, b)?)? {
            if p.state.is_empty() {
                p.state = "installed".into();
            }
            state.installed.push(p);
        }
    }
    if let Some(b) = files.get("/var/lib/dpkg/arch") {
        for a in text("/var/lib/dpkg/arch", b)?.split_whitespace() {
            if !state.options.foreign_architectures.iter().any(|x| x == a) {
                state.options.foreign_architectures.push(a.to_string());
            }
        }
    }
    if let Some(b) = files.get("/var/lib/apt/extended_states") {
        let path = "/var/lib/apt/extended_states";
        let ps = paragraphs(text(path, b)?).map_err(|source| DpkgError::Deb822 {
            path: path.into(),
            source,
        })?;
        for p in ps {
            if p.get("Auto-Installed") == Some("1")
                && let (Some(n), Some(a)) = (p.get("Package"), p.get("Architecture"))
            {
                state.auto_installed.insert((n.to_string(), a.to_string()));
            }
        }
    }
    if let Some(b) = files.get("/etc/apt/sources.list") {
        state.sources.extend(parse_sources_list(
            text("/etc/apt/sources.list", b)?,
            "/etc/apt/sources.list",
        )?);
    }
    for (path, name, b) in under("/etc/apt/sources.list.d/") {
        if !apt_part_ok(name, None) {
            continue;
        }
        if name.ends_with(".list") {
            state
                .sources
                .extend(parse_sources_list(text(path, b)?, path)?);
        } else if name.ends_with(".sources") {
            state
                .sources
                .extend(parse_deb822_sources(text(path, b)?, path)?);
        }
    }
    if let Some(b) = files.get("/etc/apt/preferences") {
        state.pins.extend(parse_preferences(
            text("/etc/apt/preferences", b)?,
            "/etc/apt/preferences",
        )?);
    }
    for (path, name, b) in under("/etc/apt/preferences.d/") {
        if apt_part_ok(name, Some(".pref")) {
            state.pins.extend(parse_preferences(text(path, b)?, path)?);
        }
    }
    for (path, name, b) in under("/etc/apt/apt.conf.d/") {
        if apt_part_ok(name, None) {
            apply_apt_conf(text(path, b)?, &mut state.options);
        }
    }
    if let Some(b) = files.get("/etc/apt/apt.conf") {
        apply_apt_conf(text("/etc/apt/apt.conf", b)?, &mut state.options);
    }
    for (path, b) in files {
        if path == "/etc/apt/trusted.gpg"
            || [
                "/etc/apt/trusted.gpg.d/",
                "/usr/share/keyrings/",
                "/etc/apt/keyrings/",
            ]
            .iter()
            .any(|d| path.starts_with(d))
        {
            state.keys.files.insert(path.clone(), b.clone());
        }
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(items: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        items
            .iter()
            .map(|(p, c)| (p.to_string(), c.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn status_sources_pins_conf_and_marks() {
        let f = files(&[
            (
                "/var/lib/dpkg/status",
                "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nMulti-Arch: same\nVersion: 2.36-9+deb12u10\nDepends: libgcc-s1\n\nPackage: old\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1\n",
            ),
            ("/var/lib/dpkg/arch", "amd64\ni386\n"),
            (
                "/var/lib/apt/extended_states",
                "Package: libgcc-s1\nArchitecture: amd64\nAuto-Installed: 1\n",
            ),
            (
                "/etc/apt/sources.list.d/debian.sources",
                "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n",
            ),
            ("/etc/apt/sources.list.d/x.list.dpkg-old", "garbage"),
            (
                "/etc/apt/preferences.d/backports",
                "Package: *\nPin: release a=bookworm-backports\nPin-Priority: 100\n",
            ),
            ("/etc/apt/preferences.d/ignored.txt", "garbage"),
            (
                "/etc/apt/apt.conf.d/99norecommends",
                "APT::Install-Recommends \"false\";\n",
            ),
        ]);
        let s = read_apt_state(&f).unwrap();
        assert_eq!(s.installed.len(), 2);
        assert!(s.installed[0].is_present());
        assert!(!s.installed[1].is_present());
        assert_eq!(s.options.foreign_architectures, ["amd64", "i386"]);
        assert!(
            s.auto_installed
                .contains(&("libgcc-s1".into(), "amd64".into()))
        );
        assert_eq!(s.sources.len(), 1);
        assert_eq!(
            s.sources[0].location,
            "/etc/apt/sources.list.d/debian.sources:1"
        );
        assert_eq!(s.pins.len(), 1);
        assert!(!s.options.install_recommends);
        assert!(is_apt_state_file("/etc/apt/apt.conf.d/99norecommends"));
        assert!(!is_apt_state_file("/etc/apt/apt.conf.d/x/y"));
    }

    #[test]
    fn distroless_status_d_and_bad_files_are_located() {
        let f = files(&[
            (
                "/var/lib/dpkg/status.d/base",
                "Package: base-files\nVersion: 12.4\nArchitecture: amd64\n",
            ),
            ("/var/lib/dpkg/status.d/base.md5sums", "x"),
        ]);
        let s = read_apt_state(&f).unwrap();
        assert!(s.distroless);
        assert_eq!(s.installed[0].state, "installed");
        let bad = files(&[("/var/lib/dpkg/status", "Package: x\nVersion: 1\n")]);
        let err = read_apt_state(&bad).unwrap_err().to_string();
        assert!(
            err.starts_with("/var/lib/dpkg/status: line 1: the stanza has no `Architecture`"),
            "{err}"
        );
    }
}

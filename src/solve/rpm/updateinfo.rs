//! `updateinfo.xml`, the errata of an rpm-md repository (what `dnf
//! updateinfo` and `dnf upgrade --security` read): advisories with an id
//! (`FEDORA-2026-…`, `RHSA-2026:…`, `ALSA-…`), a type (`security`,
//! `bugfix`, `enhancement`, `newpackage`), a severity, their CVE
//! references and the packages (NEVRA) that carry the fix.

use std::borrow::Cow;

use quick_xml::Reader;

use super::Evr;
use super::primary::{MetadataError, Step, attr, err, local, step};

/// One `<update>` of `updateinfo.xml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advisory {
    /// `<id>`: `FEDORA-2026-0a1b2c3d4e`, `RHSA-2026:1234`.
    pub id: String,
    /// The `type` attribute: `security`, `bugfix`, `enhancement`,
    /// `newpackage`.
    pub kind: String,
    /// `<severity>` (`Critical`, `Important`, `Moderate`, `Low`), when the
    /// advisory gives one (`None` as a word counts as not given).
    pub severity: Option<String>,
    /// `<issued date>` as written.
    pub issued: Option<String>,
    /// The ids of its `<reference type="cve">`s.
    pub cves: Vec<String>,
    /// The packages of its `<pkglist>`: the builds that carry the fix.
    pub packages: Vec<AdvisoryPackage>,
}

/// A package an advisory ships.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvisoryPackage {
    pub name: String,
    pub evr: Evr,
    pub arch: String,
}

impl AdvisoryPackage {
    pub fn nevra(&self) -> String {
        format!("{}-{}.{}", self.name, self.evr, self.arch)
    }
}

impl Advisory {
    pub fn is_security(&self) -> bool {
        self.kind.eq_ignore_ascii_case("security")
    }

    /// The build of the advisory that upgrades an installed `name.arch` at
    /// `installed`: the same name, a compatible arch (the same, or `noarch`
    /// on either side) and a newer EVR. The newest such, if several.
    pub fn fixes(&self, name: &str, arch: &str, installed: &Evr) -> Option<&AdvisoryPackage> {
        self.packages
            .iter()
            .filter(|p| {
                p.name == name
                    && (p.arch == arch || p.arch == "noarch" || arch == "noarch")
                    && p.evr.compare(installed) == std::cmp::Ordering::Greater
            })
            .max_by(|a, b| a.evr.compare(&b.evr))
    }
}

/// Parses `updateinfo.xml`.
pub fn parse_updateinfo(what: &str, xml: &str) -> Result<Vec<Advisory>, MetadataError> {
    let mut reader = Reader::from_str(xml);
    let mut out = Vec::new();
    let mut current: Option<Advisory> = None;
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut text = String::new();
    let mut seen_root = false;
    loop {
        let (e, empty) = match step(&mut reader, &mut text, what)? {
            Step::Open(e, empty) => (e, empty),
            Step::Close => {
                let name = path.pop().unwrap_or_default();
                if let Some(a) = current.as_mut() {
                    match (name.as_slice(), path.len()) {
                        (b"id", 2) => a.id = text.trim().to_string(),
                        (b"severity", 2) => {
                            let s = text.trim();
                            a.severity = (!s.is_empty() && !s.eq_ignore_ascii_case("none"))
                                .then(|| s.to_string());
                        }
                        (b"update", 1) => {
                            let a = current.take().expect("an <update> was open");
                            if a.id.is_empty() {
                                return Err(err(what, "an <update> without an <id>"));
                            }
                            out.push(a);
                        }
                        _ => {}
                    }
                }
                text.clear();
                continue;
            }
            Step::End => break,
        };
        let name = local(e.name().as_ref().as_bytes()).to_vec();
        if path.is_empty() {
            if name != b"updates" {
                return Err(err(what, "the root element is not <updates>"));
            }
            seen_root = true;
        }
        match (name.as_slice(), path.len()) {
            (b"update", 1) => {
                current = Some(Advisory {
                    id: String::new(),
                    kind: attr(&e, "type", what)?.unwrap_or_default().into_owned(),
                    severity: None,
                    issued: None,
                    cves: vec![],
                    packages: vec![],
                });
            }
            (b"issued", 2) => {
                if let Some(a) = current.as_mut() {
                    a.issued = attr(&e, "date", what)?.map(Cow::into_owned);
                }
            }
            (b"reference", 3) => {
                if let Some(a) = current.as_mut()
                    && attr(&e, "type", what)?.as_deref() == Some("cve")
                    && let Some(id) = attr(&e, "id", what)?
                    && !a.cves.iter().any(|c| c == id.as_ref())
                {
                    a.cves.push(id.into_owned());
                }
            }
            // <pkglist><collection><package>, and <module> beside it.
            (b"package", 4) => {
                if let Some(a) = current.as_mut() {
                    let get = |k: &str| -> Result<String, MetadataError> {
                        Ok(attr(&e, k, what)?.unwrap_or_default().into_owned())
                    };
                    let name = get("name")?;
                    let epoch = match attr(&e, "epoch", what)? {
                        Some(s) if !s.is_empty() => s.parse().map_err(|_| {
                            err(
                                what,
                                format!("{}: {name}: epoch {s:?} is not a number", a.id),
                            )
                        })?,
                        _ => 0,
                    };
                    let (version, release, arch) = (get("version")?, get("release")?, get("arch")?);
                    if name.is_empty() || version.is_empty() || arch.is_empty() {
                        return Err(err(
                            what,
                            format!("{}: a <package> without name, version or arch", a.id),
                        ));
                    }
                    a.packages.push(AdvisoryPackage {
                        name,
                        evr: Evr::new(epoch, version, release),
                        arch,
                    });
                }
            }
            _ => {}
        }
        if !empty {
            path.push(name);
            text.clear();
        }
    }
    if !seen_root {
        return Err(err(what, "no <updates> element"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<updates>
  <update from="updates@fedoraproject.org" status="stable" type="security" version="2.0">
    <id>FEDORA-2026-0a1b2c3d4e</id>
    <title>openssl-3.2.4-1.fc42</title>
    <issued date="2026-03-01 10:00:00"/>
    <updated date="2026-03-02 10:00:00"/>
    <severity>Important</severity>
    <description><![CDATA[Fixes <CVE>.]]></description>
    <references>
      <reference href="https://bugzilla.redhat.com/1" id="1" type="bugzilla" title="x"/>
      <reference href="https://www.cve.org/CVERecord?id=CVE-2026-0001" id="CVE-2026-0001" type="cve" title="CVE-2026-0001"/>
    </references>
    <pkglist>
      <collection short="F42">
        <name>Fedora 42</name>
        <package name="openssl" version="3.2.4" release="1.fc42" epoch="1" arch="x86_64" src="openssl-3.2.4-1.fc42.src.rpm">
          <filename>openssl-3.2.4-1.fc42.x86_64.rpm</filename>
          <sum type="sha256">00</sum>
        </package>
        <package name="openssl-libs" version="3.2.4" release="1.fc42" epoch="1" arch="i686">
          <filename>openssl-libs-3.2.4-1.fc42.i686.rpm</filename>
        </package>
      </collection>
    </pkglist>
  </update>
  <update type="bugfix"><id>FEDORA-2026-ffff</id><severity>None</severity>
    <pkglist><collection><package name="tool" version="1.1" release="1" arch="noarch"/></collection></pkglist>
  </update>
</updates>
"#;

    #[test]
    fn advisories_are_read_with_their_packages() {
        let a = parse_updateinfo("updateinfo", XML).unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].id, "FEDORA-2026-0a1b2c3d4e");
        assert!(a[0].is_security());
        assert_eq!(a[0].severity.as_deref(), Some("Important"));
        assert_eq!(a[0].issued.as_deref(), Some("2026-03-01 10:00:00"));
        assert_eq!(a[0].cves, ["CVE-2026-0001"]);
        assert_eq!(
            a[0].packages.iter().map(|p| p.nevra()).collect::<Vec<_>>(),
            [
                "openssl-1:3.2.4-1.fc42.x86_64",
                "openssl-libs-1:3.2.4-1.fc42.i686"
            ]
        );
        assert!(!a[1].is_security());
        assert_eq!(a[1].severity, None);
        assert_eq!(a[1].packages[0].nevra(), "tool-1.1-1.noarch");
    }

    #[test]
    fn an_advisory_fixes_older_builds_of_the_same_name_and_arch_only() {
        let a = &parse_updateinfo("updateinfo", XML).unwrap()[0];
        let fixed = a.fixes("openssl", "x86_64", &Evr::new(1, "3.2.2", "5.fc42"));
        assert_eq!(fixed.unwrap().evr.to_string(), "1:3.2.4-1.fc42");
        // Epoch 0 is older than any epoch 1.
        assert!(
            a.fixes("openssl", "x86_64", &Evr::new(0, "9.0", "1"))
                .is_some()
        );
        assert!(
            a.fixes("openssl", "x86_64", &Evr::new(1, "3.2.4", "1.fc42"))
                .is_none()
        );
        assert!(
            a.fixes("openssl", "x86_64", &Evr::new(2, "1.0", "1"))
                .is_none()
        );
        assert!(
            a.fixes("openssl-libs", "x86_64", &Evr::new(1, "3.0", "1"))
                .is_none()
        );
        assert!(
            a.fixes("openssl-libs", "i686", &Evr::new(1, "3.0", "1"))
                .is_some()
        );
    }

    #[test]
    fn what_is_not_updateinfo_is_refused() {
        assert!(parse_updateinfo("u", "<metadata/>").is_err());
        assert!(
            parse_updateinfo(
                "u",
                "<updates><update type=\"security\"></update></updates>"
            )
            .is_err()
        );
        assert!(parse_updateinfo("u", "<updates/>").unwrap().is_empty());
    }
}

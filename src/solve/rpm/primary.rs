//! Repository metadata of the rpm-md format (what `createrepo_c` writes and
//! dnf reads): `repomd.xml`, the index of the metadata files with their
//! checksums, and `primary.xml`, the packages with their dependencies.

use std::borrow::Cow;

use quick_xml::Reader;
use quick_xml::XmlVersion;
use quick_xml::events::{BytesRef, BytesStart, Event};

use super::{DepFlag, Dependency, Evr, RpmPackage};

/// Metadata that is not the rpm-md XML it should be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {message}")]
pub struct MetadataError {
    pub what: String,
    pub message: String,
}

/// One `<data>` of `repomd.xml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepomdData {
    /// `primary`, `filelists`, `updateinfo`, `modules`, `primary_db`, ...
    pub kind: String,
    /// `(algorithm, hex)` of the file as stored (compressed).
    pub checksum: (String, String),
    pub location: String,
    pub size: Option<u64>,
}

/// `repomd.xml`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Repomd {
    pub revision: Option<String>,
    pub data: Vec<RepomdData>,
}

impl Repomd {
    pub fn get(&self, kind: &str) -> Option<&RepomdData> {
        self.data.iter().find(|d| d.kind == kind)
    }
}

pub(super) fn err(what: &str, message: impl Into<String>) -> MetadataError {
    MetadataError {
        what: what.to_string(),
        message: message.into(),
    }
}

pub(super) fn attr<'a>(
    e: &'a BytesStart<'_>,
    key: &str,
    what: &str,
) -> Result<Option<Cow<'a, str>>, MetadataError> {
    for a in e.attributes() {
        let a = a.map_err(|x| err(what, x.to_string()))?;
        if a.key.as_ref() == key {
            return a
                .normalized_value(XmlVersion::Implicit1_0)
                .map(|v| Some(Cow::Owned(v.into_owned())))
                .map_err(|x| err(what, x.to_string()));
        }
    }
    Ok(None)
}

/// What a walk over rpm-md XML meets next: an element opening (`true`
/// when it is empty, `<a/>`), an element closing, or the end. Text, CDATA
/// and entity references in between are gathered into `text`, which the
/// caller reads at a close and clears.
pub(super) enum Step<'a> {
    Open(BytesStart<'a>, bool),
    Close,
    End,
}

/// The next [`Step`] of `reader`.
pub(super) fn step<'a>(
    reader: &mut Reader<&'a [u8]>,
    text: &mut String,
    what: &str,
) -> Result<Step<'a>, MetadataError> {
    loop {
        let ev = reader
            .read_event()
            .map_err(|e| err(what, format!("at byte {}: {e}", reader.buffer_position())))?;
        match ev {
            Event::Start(e) => return Ok(Step::Open(e, false)),
            Event::Empty(e) => return Ok(Step::Open(e, true)),
            Event::Text(t) => text.push_str(&t.xml10_content()),
            Event::CData(t) => text.push_str(&t.into_inner()),
            Event::GeneralRef(r) => text.push_str(&entity(&r, what)?),
            Event::End(_) => return Ok(Step::Close),
            Event::Eof => return Ok(Step::End),
            _ => {}
        }
    }
}

pub(super) fn entity(r: &BytesRef<'_>, what: &str) -> Result<String, MetadataError> {
    if let Some(c) = r.resolve_char_ref().map_err(|x| err(what, x.to_string()))? {
        return Ok(c.to_string());
    }
    let s = match r.xml10_content().as_ref() {
        "amp" => "&",
        "lt" => "<",
        "gt" => ">",
        "quot" => "\"",
        "apos" => "'",
        other => return Err(err(what, format!("unknown entity &{other};"))),
    };
    Ok(s.to_string())
}

pub(super) fn local(name: &[u8]) -> &[u8] {
    match name.iter().position(|c| *c == b':') {
        Some(i) => &name[i + 1..],
        None => name,
    }
}

/// Parses `repomd.xml`.
pub fn parse_repomd(what: &str, xml: &str) -> Result<Repomd, MetadataError> {
    let mut reader = Reader::from_str(xml);
    let mut out = Repomd::default();
    let mut current: Option<RepomdData> = None;
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut text = String::new();
    let mut seen_root = false;
    loop {
        let ev = reader
            .read_event()
            .map_err(|e| err(what, format!("at byte {}: {e}", reader.buffer_position())))?;
        match ev {
            Event::Start(e) => {
                let name = local(e.name().as_ref().as_bytes()).to_vec();
                if path.is_empty() {
                    if name != b"repomd" {
                        return Err(err(what, "the root element is not <repomd>"));
                    }
                    seen_root = true;
                }
                if name == b"data" && path.len() == 1 {
                    current = Some(RepomdData {
                        kind: attr(&e, "type", what)?.unwrap_or_default().into_owned(),
                        checksum: (String::new(), String::new()),
                        location: String::new(),
                        size: None,
                    });
                } else if name == b"checksum"
                    && path.len() == 2
                    && let Some(c) = current.as_mut()
                {
                    c.checksum.0 = attr(&e, "type", what)?.unwrap_or_default().into_owned();
                }
                text.clear();
                path.push(name);
            }
            Event::Empty(e) => {
                let qname = e.name();
                let name = local(qname.as_ref().as_bytes());
                if name == b"location"
                    && path.len() == 2
                    && let Some(c) = current.as_mut()
                {
                    c.location = attr(&e, "href", what)?.unwrap_or_default().into_owned();
                }
            }
            Event::Text(t) => text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => text.push_str(&entity(&r, what)?),
            Event::End(_) => {
                let name = path.pop().unwrap_or_default();
                match (name.as_slice(), path.len()) {
                    (b"revision", 1) => out.revision = Some(text.trim().to_string()),
                    (b"checksum", 2) => {
                        if let Some(c) = current.as_mut() {
                            c.checksum.1 = text.trim().to_ascii_lowercase();
                        }
                    }
                    (b"size", 2) => {
                        if let Some(c) = current.as_mut() {
                            c.size = text.trim().parse().ok();
                        }
                    }
                    (b"data", 1) => {
                        let c = current.take().expect("a <data> was open");
                        if c.location.is_empty() || c.checksum.1.is_empty() {
                            return Err(err(
                                what,
                                format!("<data type=\"{}\"> has no location or checksum", c.kind),
                            ));
                        }
                        out.data.push(c);
                    }
                    _ => {}
                }
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !seen_root {
        return Err(err(what, "no <repomd> element"));
    }
    Ok(out)
}

fn dependency(e: &BytesStart<'_>, what: &str) -> Result<Dependency, MetadataError> {
    let name = attr(e, "name", what)?
        .ok_or_else(|| err(what, "an <rpm:entry> without a name"))?
        .into_owned();
    let constraint = match attr(e, "flags", what)? {
        None => None,
        Some(f) => {
            let flag = DepFlag::from_metadata(&f)
                .ok_or_else(|| err(what, format!("{name}: unknown flags {f:?}")))?;
            let epoch = match attr(e, "epoch", what)? {
                Some(s) => s
                    .parse()
                    .map_err(|_| err(what, format!("{name}: epoch {s:?} is not a number")))?,
                None => 0,
            };
            let ver = attr(e, "ver", what)?.unwrap_or_default().into_owned();
            let rel = attr(e, "rel", what)?.unwrap_or_default().into_owned();
            Some((flag, Evr::new(epoch, ver, rel)))
        }
    };
    Ok(Dependency { name, constraint })
}

/// Parses `primary.xml` into its packages.
pub fn parse_primary(what: &str, xml: &str) -> Result<Vec<RpmPackage>, MetadataError> {
    let mut reader = Reader::from_str(xml);
    let mut out = Vec::new();
    let mut pkg: Option<RpmPackage> = None;
    let mut list: Option<Vec<u8>> = None;
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut text = String::new();
    let mut seen_root = false;
    loop {
        let (e, empty) = match step(&mut reader, &mut text, what)? {
            Step::Open(e, empty) => (e, empty),
            Step::Close => {
                let name = path.pop().unwrap_or_default();
                if let Some(p) = pkg.as_mut() {
                    match (name.as_slice(), path.len()) {
                        (b"name", 2) => p.name = text.trim().to_string(),
                        (b"arch", 2) => p.arch = text.trim().to_string(),
                        (b"checksum", 2) => p.checksum.1 = text.trim().to_ascii_lowercase(),
                        (b"sourcerpm", 3) => {
                            let s = text.trim();
                            p.source_rpm = (!s.is_empty()).then(|| s.to_string());
                        }
                        (b"file", 3) => p.files.push(text.trim().to_string()),
                        (
                            b"provides" | b"requires" | b"conflicts" | b"obsoletes" | b"recommends"
                            | b"suggests" | b"supplements" | b"enhances",
                            3,
                        ) => list = None,
                        (b"package", 1) => {
                            let p = pkg.take().expect("a <package> was open");
                            if p.name.is_empty() || p.arch.is_empty() || p.location.is_empty() {
                                return Err(err(
                                    what,
                                    "a <package> without name, arch or location",
                                ));
                            }
                            out.push(p);
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
            if name != b"metadata" {
                return Err(err(what, "the root element is not <metadata>"));
            }
            seen_root = true;
        }
        match (name.as_slice(), path.len()) {
            (b"package", 1) => {
                pkg = Some(RpmPackage {
                    name: String::new(),
                    evr: Evr::default(),
                    arch: String::new(),
                    checksum: (String::new(), String::new()),
                    location: String::new(),
                    size: 0,
                    source_rpm: None,
                    provides: vec![],
                    requires: vec![],
                    conflicts: vec![],
                    obsoletes: vec![],
                    recommends: vec![],
                    suggests: vec![],
                    supplements: vec![],
                    enhances: vec![],
                    files: vec![],
                })
            }
            (b"version", 2) => {
                if let Some(p) = pkg.as_mut() {
                    let epoch = attr(&e, "epoch", what)?.unwrap_or(Cow::Borrowed("0"));
                    p.evr = Evr::new(
                        epoch
                            .parse()
                            .map_err(|_| err(what, format!("epoch {epoch:?} is not a number")))?,
                        attr(&e, "ver", what)?.unwrap_or_default().into_owned(),
                        attr(&e, "rel", what)?.unwrap_or_default().into_owned(),
                    );
                }
            }
            (b"checksum", 2) => {
                if let Some(p) = pkg.as_mut() {
                    p.checksum.0 = attr(&e, "type", what)?.unwrap_or_default().into_owned();
                }
            }
            (b"location", 2) => {
                if let Some(p) = pkg.as_mut() {
                    p.location = attr(&e, "href", what)?.unwrap_or_default().into_owned();
                }
            }
            (b"size", 2) => {
                if let Some(p) = pkg.as_mut() {
                    p.size = attr(&e, "package", what)?
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                }
            }
            (
                b"provides" | b"requires" | b"conflicts" | b"obsoletes" | b"recommends"
                | b"suggests" | b"supplements" | b"enhances",
                3,
            ) => list = Some(name.clone()),
            (b"entry", 4) => {
                if let (Some(p), Some(l)) = (pkg.as_mut(), list.as_deref()) {
                    let d = dependency(&e, what)?;
                    // rpmlib() capabilities are rpm's own features, never
                    // provided by a package.
                    if l == b"requires" && d.name.starts_with("rpmlib(") {
                        // skip
                    } else {
                        match l {
                            b"provides" => p.provides.push(d),
                            b"requires" => p.requires.push(d),
                            b"conflicts" => p.conflicts.push(d),
                            b"obsoletes" => p.obsoletes.push(d),
                            b"recommends" => p.recommends.push(d),
                            b"suggests" => p.suggests.push(d),
                            b"supplements" => p.supplements.push(d),
                            _ => p.enhances.push(d),
                        }
                    }
                }
            }
            _ => {}
        }
        text.clear();
        if !empty {
            path.push(name);
        }
    }
    if !seen_root {
        return Err(err(what, "no <metadata> element"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRIMARY: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="1">
<package type="rpm">
  <name>tool</name>
  <arch>x86_64</arch>
  <version epoch="2" ver="0.9" rel="1"/>
  <checksum type="sha256" pkgid="YES">AB12</checksum>
  <summary>a &amp; b</summary>
  <size package="6208" installed="4" archive="256"/>
  <location href="Packages/t/tool-0.9-1.x86_64.rpm"/>
  <format>
    <rpm:sourcerpm>tool-0.9-1.src.rpm</rpm:sourcerpm>
    <rpm:provides>
      <rpm:entry name="tool" flags="EQ" epoch="2" ver="0.9" rel="1"/>
    </rpm:provides>
    <rpm:requires>
      <rpm:entry name="libfoo" flags="GE" epoch="0" ver="1.1"/>
      <rpm:entry name="(a or b)"/>
      <rpm:entry name="rpmlib(CompressedFileNames)" flags="LE" epoch="0" ver="3.0.4" rel="1"/>
    </rpm:requires>
    <file>/usr/bin/tool</file>
  </format>
</package>
</metadata>"#;

    #[test]
    fn primary_packages_with_their_dependencies() {
        let ps = parse_primary("primary.xml", PRIMARY).unwrap();
        assert_eq!(ps.len(), 1);
        let p = &ps[0];
        assert_eq!(p.nevra(), "tool-2:0.9-1.x86_64");
        assert_eq!(p.checksum, ("sha256".into(), "ab12".into()));
        assert_eq!(p.location, "Packages/t/tool-0.9-1.x86_64.rpm");
        assert_eq!(p.size, 6208);
        assert_eq!(p.source_rpm.as_deref(), Some("tool-0.9-1.src.rpm"));
        assert_eq!(p.provides[0].to_string(), "tool = 2:0.9-1");
        let reqs: Vec<String> = p.requires.iter().map(|d| d.to_string()).collect();
        assert_eq!(reqs, ["libfoo >= 1.1", "(a or b)"]);
        assert_eq!(p.files, ["/usr/bin/tool"]);
    }

    /// Text in CDATA sections reads as text, as in `updateinfo.xml`.
    #[test]
    fn cdata_text_is_read() {
        let xml = PRIMARY.replace(
            "<file>/usr/bin/tool</file>",
            "<file><![CDATA[/usr/bin/a&b]]></file>",
        );
        let ps = parse_primary("p", &xml).unwrap();
        assert_eq!(ps[0].files, ["/usr/bin/a&b"]);
    }

    #[test]
    fn a_package_without_location_is_an_error() {
        let xml = PRIMARY.replace(r#"<location href="Packages/t/tool-0.9-1.x86_64.rpm"/>"#, "");
        assert!(parse_primary("p", &xml).is_err());
        assert!(parse_primary("p", "<repomd/>").is_err());
    }

    #[test]
    fn repomd_lists_its_files() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">
  <revision>1</revision>
  <data type="primary">
    <checksum type="sha256">DD89</checksum>
    <open-checksum type="sha256">aa5b</open-checksum>
    <location href="repodata/dd89-primary.xml.gz"/>
    <size>538</size>
  </data>
</repomd>"#;
        let md = parse_repomd("repomd.xml", xml).unwrap();
        assert_eq!(md.revision.as_deref(), Some("1"));
        let p = md.get("primary").unwrap();
        assert_eq!(p.checksum, ("sha256".into(), "dd89".into()));
        assert_eq!(p.location, "repodata/dd89-primary.xml.gz");
        assert_eq!(p.size, Some(538));
        assert!(parse_repomd("r", "<metadata/>").is_err());
    }
}

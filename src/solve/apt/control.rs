//! Binary package stanzas (`Packages`, dpkg `status`), dependency fields and
//! Debian version ordering.

use std::cmp::Ordering;
use std::str::FromStr;

use super::deb822::Paragraph;

/// Compares two Debian versions as dpkg does (epochs, `~`, revisions).
/// A version that does not parse sorts by its bytes, below any valid one.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    match (
        debversion::Version::from_str(a),
        debversion::Version::from_str(b),
    ) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => Ordering::Greater,
        (Err(_), Ok(_)) => Ordering::Less,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

/// A version relation operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum VersionOp {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

impl VersionOp {
    pub fn as_str(self) -> &'static str {
        match self {
            VersionOp::Lt => "<<",
            VersionOp::Le => "<=",
            VersionOp::Eq => "=",
            VersionOp::Ge => ">=",
            VersionOp::Gt => ">>",
        }
    }

    /// Whether `version` satisfies `self wanted`.
    pub fn matches(self, version: &str, wanted: &str) -> bool {
        let o = compare_versions(version, wanted);
        match self {
            VersionOp::Lt => o == Ordering::Less,
            VersionOp::Le => o != Ordering::Greater,
            VersionOp::Eq => o == Ordering::Equal,
            VersionOp::Ge => o != Ordering::Less,
            VersionOp::Gt => o == Ordering::Greater,
        }
    }
}

/// One relation: `name[:arch] [(op version)]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Relation {
    pub name: String,
    /// `any`, `native` or an architecture name.
    pub arch: Option<String>,
    pub version: Option<(VersionOp, String)>,
}

impl std::fmt::Display for Relation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)?;
        if let Some(a) = &self.arch {
            write!(f, ":{a}")?;
        }
        if let Some((op, v)) = &self.version {
            write!(f, " ({} {v})", op.as_str())?;
        }
        Ok(())
    }
}

/// Alternatives (`a | b`) of one dependency.
pub type OrGroup = Vec<Relation>;

/// A field value that is not a valid relation list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{text}` is not a valid relation\nhint: relations are `name[:arch] [(op version)]`, joined by `,` and `|`"
)]
pub struct ParseRelationError {
    pub text: String,
}

/// Parses a relation field (`Depends`, `Provides`, …) into and-ed groups of
/// alternatives. Architecture restrictions `[…]` and build profiles `<…>`
/// (only found in source stanzas) are dropped.
pub fn parse_relations(field: &str) -> Result<Vec<OrGroup>, ParseRelationError> {
    let mut out = Vec::new();
    for group in field.split(',') {
        if group.trim().is_empty() {
            continue;
        }
        let mut alts = Vec::new();
        for alt in group.split('|') {
            alts.push(parse_relation(alt)?);
        }
        out.push(alts);
    }
    Ok(out)
}

fn parse_relation(text: &str) -> Result<Relation, ParseRelationError> {
    let bad = || ParseRelationError {
        text: text.trim().chars().take(120).collect(),
    };
    let mut rest = text.trim();
    for (open, close) in [('<', '>'), ('[', ']')] {
        while let Some(i) = rest.rfind(open) {
            // `<<` inside a version constraint is not a profile.
            if open == '<' && rest[..i].contains('(') && !rest[..i].contains(')') {
                break;
            }
            let Some(j) = rest[i..].find(close) else {
                return Err(bad());
            };
            if !rest[i + j + 1..].trim().is_empty() && open == '[' {
                return Err(bad());
            }
            rest = rest[..i].trim_end();
        }
    }
    let (head, version) = match rest.find('(') {
        Some(i) => {
            let inner = rest[i + 1..].strip_suffix(')').ok_or_else(bad)?.trim();
            let split = inner
                .find(|c: char| !matches!(c, '<' | '>' | '='))
                .ok_or_else(bad)?;
            let op = match &inner[..split] {
                "<<" => VersionOp::Lt,
                "<=" | "<" => VersionOp::Le,
                "=" => VersionOp::Eq,
                ">=" | ">" => VersionOp::Ge,
                ">>" => VersionOp::Gt,
                _ => return Err(bad()),
            };
            let v = inner[split..].trim();
            if v.is_empty() || v.contains(char::is_whitespace) {
                return Err(bad());
            }
            (rest[..i].trim(), Some((op, v.to_string())))
        }
        None => (rest, None),
    };
    let (name, arch) = match head.split_once(':') {
        Some((n, a)) => (n, Some(a.to_string())),
        None => (head, None),
    };
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-._".contains(&b))
    {
        return Err(bad());
    }
    Ok(Relation {
        name: name.to_string(),
        arch,
        version,
    })
}

/// `Multi-Arch:` of a binary package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum MultiArch {
    #[default]
    No,
    Same,
    Foreign,
    Allowed,
}

/// One binary package version as a `Packages` or `status` stanza gives it.
/// (Kept on disk in parsed form: a change here bumps
/// `resolve::apt::parsed::FORMAT`.)
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct BinaryPackage {
    pub name: String,
    pub version: String,
    pub arch: String,
    pub multi_arch: MultiArch,
    pub essential: bool,
    pub important: bool,
    /// `Priority:` as apt ranks it: required 1, important 2, standard 3,
    /// optional 4, extra 5, missing 0.
    pub priority: u8,
    pub section: String,
    pub source: String,
    pub source_version: String,
    pub pre_depends: Vec<OrGroup>,
    pub depends: Vec<OrGroup>,
    pub recommends: Vec<OrGroup>,
    pub suggests: Vec<OrGroup>,
    pub conflicts: Vec<OrGroup>,
    pub breaks: Vec<OrGroup>,
    pub provides: Vec<Relation>,
    pub filename: String,
    pub size: u64,
    pub sha256: String,
    /// dpkg `Status:` third word (`installed`, `config-files`, …); empty in
    /// `Packages`.
    pub state: String,
}

/// A stanza that is not a usable binary package.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParsePackageError {
    #[error(
        "line {line}: the stanza has no `{field}` field\nhint: every binary package stanza names `Package`, `Version` and `Architecture`"
    )]
    Missing { line: usize, field: &'static str },
    #[error("line {line}: field `{field}`: {source}")]
    Relation {
        line: usize,
        field: &'static str,
        #[source]
        source: ParseRelationError,
    },
    #[error(
        "line {line}: `{value}` is not a Debian version\nhint: versions are `[epoch:]upstream[-revision]`"
    )]
    Version { line: usize, value: String },
}

impl BinaryPackage {
    /// Reads a stanza of a `Packages` file or of dpkg's `status`.
    pub fn from_paragraph(p: &Paragraph<'_>) -> Result<Self, ParsePackageError> {
        let line = p.line;
        let need = |field: &'static str| {
            p.get(field)
                .ok_or(ParsePackageError::Missing { line, field })
        };
        let rel = |field: &'static str| -> Result<Vec<OrGroup>, ParsePackageError> {
            match p.get(field) {
                Some(v) => parse_relations(v).map_err(|source| ParsePackageError::Relation {
                    line,
                    field,
                    source,
                }),
                None => Ok(Vec::new()),
            }
        };
        let name = need("Package")?.to_string();
        let version = need("Version")?.to_string();
        if debversion::Version::from_str(&version).is_err() {
            return Err(ParsePackageError::Version {
                line,
                value: version,
            });
        }
        let (source, source_version) = match p.get("Source") {
            Some(s) => match s.split_once('(') {
                Some((n, v)) => (
                    n.trim().to_string(),
                    v.trim_end_matches(')').trim().to_string(),
                ),
                None => (s.trim().to_string(), version.clone()),
            },
            None => (name.clone(), version.clone()),
        };
        let yes = |f: &str| p.get(f).is_some_and(|v| v.eq_ignore_ascii_case("yes"));
        Ok(BinaryPackage {
            arch: need("Architecture")?.to_string(),
            multi_arch: match p.get("Multi-Arch").map(str::to_ascii_lowercase).as_deref() {
                Some("same") => MultiArch::Same,
                Some("foreign") => MultiArch::Foreign,
                Some("allowed") => MultiArch::Allowed,
                _ => MultiArch::No,
            },
            essential: yes("Essential"),
            important: yes("Important") || yes("Protected"),
            priority: match p.get("Priority") {
                Some("required") => 1,
                Some("important") => 2,
                Some("standard") => 3,
                Some("optional") => 4,
                Some("extra") => 5,
                _ => 0,
            },
            section: p.get("Section").unwrap_or_default().to_string(),
            source,
            source_version,
            pre_depends: rel("Pre-Depends")?,
            depends: rel("Depends")?,
            recommends: rel("Recommends")?,
            suggests: rel("Suggests")?,
            conflicts: rel("Conflicts")?,
            breaks: rel("Breaks")?,
            provides: rel("Provides")?.into_iter().flatten().collect(),
            filename: p.get("Filename").unwrap_or_default().to_string(),
            size: p.get("Size").and_then(|s| s.parse().ok()).unwrap_or(0),
            sha256: p.get("SHA256").unwrap_or_default().to_ascii_lowercase(),
            state: p
                .get("Status")
                .and_then(|s| s.split_whitespace().nth(2))
                .unwrap_or_default()
                .to_string(),
            name,
            version,
        })
    }

    /// Whether dpkg counts this status entry as present (apt's current
    /// version): everything but `not-installed` and `config-files`.
    pub fn is_present(&self) -> bool {
        !matches!(self.state.as_str(), "not-installed" | "config-files")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_order_epochs_tilde_revisions() {
        use Ordering::*;
        for (a, b, o) in [
            ("1.0", "1.0", Equal),
            ("1.0~rc1", "1.0", Less),
            ("1:0.1", "2.0", Greater),
            ("1.0-1", "1.0-1+deb12u1", Less),
            ("2.36-9+deb12u4", "2.36-9+deb12u10", Less),
            ("7.88.1-10+deb12u8", "7.88.1-10+deb12u12", Less),
            ("1.0a", "1.0", Greater),
            ("1.0~~", "1.0~", Less),
        ] {
            assert_eq!(compare_versions(a, b), o, "{a} vs {b}");
        }
        assert!(VersionOp::Ge.matches("2.36-9", "2.36"));
        assert!(VersionOp::Lt.matches("2.35", "2.36"));
        assert!(!VersionOp::Gt.matches("2.36", "2.36"));
    }

    #[test]
    fn relations_with_alternatives_arch_qualifiers_and_restrictions() {
        let r = parse_relations("libc6 (>= 2.34), default-mta | mail-transport-agent, python3:any (<< 3.12~), foo [amd64] <!nocheck>").unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!(r[0][0].version, Some((VersionOp::Ge, "2.34".into())));
        assert_eq!(r[1].len(), 2);
        assert_eq!(r[2][0].arch.as_deref(), Some("any"));
        assert_eq!(r[2][0].version, Some((VersionOp::Lt, "3.12~".into())));
        assert_eq!(r[3][0].name, "foo");
        assert!(parse_relations("a (>= )").is_err());
        assert!(parse_relations("a (~ 1)").is_err());
        assert!(parse_relations("a b").is_err());
    }

    proptest::proptest! {
        #[test]
        fn relation_parser_never_panics(s in "\\PC*") {
            let _ = parse_relations(&s);
        }
    }
}

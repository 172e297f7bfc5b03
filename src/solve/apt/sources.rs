//! apt's configuration as an image carries it: `sources.list` one-line
//! entries, deb822 `*.sources`, `preferences` pins and the few `apt.conf`
//! options that change what an install does.

use std::collections::BTreeMap;

use super::deb822::{Deb822Error, paragraphs};

/// One archive apt fetches from (one URI, one suite).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceEntry {
    pub uri: String,
    pub suite: String,
    /// Empty for a flat repository (`suite` ends in `/`).
    pub components: Vec<String>,
    /// `arch=`/`Architectures:`; `None` means apt's configured ones.
    pub architectures: Option<Vec<String>>,
    /// `signed-by=`/`Signed-By:`: keyring paths or fingerprints; an inline
    /// key block is kept whole.
    pub signed_by: Vec<String>,
    /// `trusted=yes`: apt skips the signature check.
    pub trusted: bool,
    /// `check-valid-until=no`.
    pub check_valid_until: bool,
    /// `file:line` where the entry is written.
    pub location: String,
}

/// A sources file apt would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseSourcesError {
    #[error(
        "{file}:{line}: `{text}` is not a sources.list entry\nhint: entries read `deb [options] URI suite [component…]`"
    )]
    OneLine {
        file: String,
        line: usize,
        text: String,
    },
    #[error("{file}: {source}")]
    Deb822 {
        file: String,
        #[source]
        source: Deb822Error,
    },
    #[error(
        "{file}:{line}: the stanza lacks `{field}`\nhint: a deb822 source names `Types`, `URIs` and `Suites` (and `Components` unless the suite ends in `/`)"
    )]
    Missing {
        file: String,
        line: usize,
        field: &'static str,
    },
}

fn yes(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" | "1" | "on" | "enable" => Some(true),
        "no" | "false" | "0" | "off" | "disable" => Some(false),
        _ => None,
    }
}

/// Parses a one-line `sources.list` file; `deb-src` lines are skipped.
pub fn parse_sources_list(text: &str, file: &str) -> Result<Vec<SourceEntry>, ParseSourcesError> {
    let mut out = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let bad = || ParseSourcesError::OneLine {
            file: file.to_string(),
            line: index + 1,
            text: line.chars().take(120).collect(),
        };
        let (kind, mut rest) = line.split_once(char::is_whitespace).ok_or_else(bad)?;
        if kind != "deb" && kind != "deb-src" {
            return Err(bad());
        }
        let mut options = BTreeMap::new();
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('[') {
            let close = after.find(']').ok_or_else(bad)?;
            for opt in after[..close].split_whitespace() {
                let (k, v) = opt.split_once('=').ok_or_else(bad)?;
                let k = k.trim_end_matches(['+', '-']);
                options.insert(k.to_ascii_lowercase(), v.to_string());
            }
            rest = &after[close + 1..];
        }
        let mut words = rest.split_whitespace();
        let uri = words.next().ok_or_else(bad)?;
        let suite = words.next().ok_or_else(bad)?;
        let components: Vec<String> = words.map(str::to_string).collect();
        if components.is_empty() != suite.ends_with('/') {
            return Err(bad());
        }
        if kind == "deb-src" {
            continue;
        }
        let list = |k: &str| {
            options
                .get(k)
                .map(|v| v.split(',').map(str::to_string).collect::<Vec<_>>())
        };
        out.push(SourceEntry {
            uri: uri.to_string(),
            suite: suite.to_string(),
            components,
            architectures: list("arch"),
            signed_by: list("signed-by").unwrap_or_default(),
            trusted: options.get("trusted").and_then(|v| yes(v)).unwrap_or(false),
            check_valid_until: options
                .get("check-valid-until")
                .and_then(|v| yes(v))
                .unwrap_or(true),
            location: format!("{file}:{}", index + 1),
        });
    }
    Ok(out)
}

/// Parses a deb822 `*.sources` file; stanzas with `Enabled: no` or without
/// `deb` in `Types` are skipped.
pub fn parse_deb822_sources(text: &str, file: &str) -> Result<Vec<SourceEntry>, ParseSourcesError> {
    let ps = paragraphs(text).map_err(|source| ParseSourcesError::Deb822 {
        file: file.to_string(),
        source,
    })?;
    let mut out = Vec::new();
    for p in ps {
        let need = |field: &'static str| {
            p.get(field).ok_or(ParseSourcesError::Missing {
                file: file.to_string(),
                line: p.line,
                field,
            })
        };
        if p.get("Enabled").and_then(yes) == Some(false) {
            continue;
        }
        if !need("Types")?.split_whitespace().any(|t| t == "deb") {
            continue;
        }
        let uris: Vec<&str> = need("URIs")?.split_whitespace().collect();
        let suites: Vec<&str> = need("Suites")?.split_whitespace().collect();
        let components: Vec<String> = p
            .get("Components")
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let signed_by = match p.get("Signed-By") {
            Some(v) if v.contains("BEGIN PGP") => vec![v.to_string()],
            Some(v) => v.split_whitespace().map(str::to_string).collect(),
            None => Vec::new(),
        };
        for uri in &uris {
            for suite in &suites {
                if components.is_empty() != suite.ends_with('/') {
                    return Err(ParseSourcesError::Missing {
                        file: file.to_string(),
                        line: p.line,
                        field: "Components",
                    });
                }
                out.push(SourceEntry {
                    uri: uri.to_string(),
                    suite: suite.to_string(),
                    components: components.clone(),
                    architectures: p
                        .get("Architectures")
                        .map(|a| a.split_whitespace().map(str::to_string).collect()),
                    signed_by: signed_by.clone(),
                    trusted: p.get("Trusted").and_then(yes).unwrap_or(false),
                    check_valid_until: p.get("Check-Valid-Until").and_then(yes).unwrap_or(true),
                    location: format!("{file}:{}", p.line),
                });
            }
        }
    }
    Ok(out)
}

/// What a pin selects among package files or versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinTarget {
    /// `Pin: release a=…, n=…, o=…` (keys `a`, `n`, `v`, `o`, `l`, `c`, `b`).
    Release(Vec<(char, String)>),
    /// `Pin: origin host`.
    Origin(String),
    /// `Pin: version 1.2*`.
    Version(String),
}

/// One `preferences` stanza.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// `Package:` patterns; `*` alone makes it a default (per-file) pin.
    pub packages: Vec<String>,
    pub target: PinTarget,
    pub priority: i32,
    pub location: String,
}

/// A preferences file apt would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParsePreferencesError {
    #[error("{file}: {source}")]
    Deb822 {
        file: String,
        #[source]
        source: Deb822Error,
    },
    #[error(
        "{file}:{line}: {what}\nhint: a pin stanza reads `Package: …`, `Pin: release|origin|version …`, `Pin-Priority: N`"
    )]
    Stanza {
        file: String,
        line: usize,
        what: String,
    },
}

/// Parses an apt `preferences` file.
pub fn parse_preferences(text: &str, file: &str) -> Result<Vec<Pin>, ParsePreferencesError> {
    let ps = paragraphs(text).map_err(|source| ParsePreferencesError::Deb822 {
        file: file.to_string(),
        source,
    })?;
    let mut out = Vec::new();
    for p in ps {
        let bad = |what: String| ParsePreferencesError::Stanza {
            file: file.to_string(),
            line: p.line,
            what,
        };
        if p.get("Explanation").is_some() && p.get("Pin").is_none() {
            continue;
        }
        let packages: Vec<String> = p
            .get("Package")
            .ok_or_else(|| bad("the stanza has no `Package`".into()))?
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let pin = p
            .get("Pin")
            .ok_or_else(|| bad("the stanza has no `Pin`".into()))?;
        let priority = p
            .get("Pin-Priority")
            .ok_or_else(|| bad("the stanza has no `Pin-Priority`".into()))?;
        let priority: i32 = priority
            .parse()
            .map_err(|_| bad(format!("`{priority}` is not a priority")))?;
        let (kind, data) = pin.split_once(char::is_whitespace).unwrap_or((pin, ""));
        let data = data.trim();
        let target = match kind {
            "release" => {
                let mut keys = Vec::new();
                if data.contains('=') {
                    for part in data.split(',') {
                        let (k, v) = part
                            .trim()
                            .split_once('=')
                            .ok_or_else(|| bad(format!("`{part}` is not `key=value`")))?;
                        let k = k.trim().chars().next().unwrap_or(' ');
                        if !"anvolcb".contains(k) {
                            return Err(bad(format!("`{part}` names an unknown release key")));
                        }
                        keys.push((k, v.trim().to_string()));
                    }
                } else if data.starts_with(|c: char| c.is_ascii_digit()) {
                    keys.push(('v', data.to_string()));
                } else {
                    keys.push(('a', data.to_string()));
                }
                PinTarget::Release(keys)
            }
            "origin" => PinTarget::Origin(data.trim_matches('"').to_string()),
            "version" => PinTarget::Version(data.to_string()),
            other => return Err(bad(format!("`{other}` is not a pin type"))),
        };
        out.push(Pin {
            packages,
            target,
            priority,
            location: format!("{file}:{}", p.line),
        });
    }
    Ok(out)
}

/// The apt options that change what `apt-get install` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptOptions {
    pub install_recommends: bool,
    pub install_suggests: bool,
    pub default_release: Option<String>,
    /// `APT::Architectures` beyond the native one (dpkg's foreign
    /// architectures are added by the caller).
    pub foreign_architectures: Vec<String>,
}

impl Default for AptOptions {
    fn default() -> Self {
        AptOptions {
            install_recommends: true,
            install_suggests: false,
            default_release: None,
            foreign_architectures: Vec::new(),
        }
    }
}

/// Reads the options above from `apt.conf` text into `options` (files are
/// applied in apt's order: `apt.conf.d/*` sorted, then `apt.conf`). Both
/// `A::B "v";` and `A { B "v"; };` forms; other options are ignored.
pub fn apply_apt_conf(text: &str, options: &mut AptOptions) {
    for (key, value) in apt_conf_items(text) {
        match key.to_ascii_lowercase().as_str() {
            "apt::install-recommends" => {
                if let Some(v) = yes(&value) {
                    options.install_recommends = v;
                }
            }
            "apt::install-suggests" => {
                if let Some(v) = yes(&value) {
                    options.install_suggests = v;
                }
            }
            "apt::default-release" => options.default_release = Some(value),
            "apt::architectures" | "apt::architectures::"
                if !options.foreign_architectures.contains(&value) =>
            {
                options.foreign_architectures.push(value);
            }
            _ => {}
        }
    }
}

/// `(full key, value)` pairs of an apt.conf text.
fn apt_conf_items(text: &str) -> Vec<(String, String)> {
    // Strip comments (`//`, `#` at a token start, `/* */`) outside quotes.
    let mut clean = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        if quoted {
            quoted = c != '"';
            clean.push(c);
        } else if c == '"' {
            quoted = true;
            clean.push(c);
        } else if c == '/' && chars.peek() == Some(&'/') || c == '#' {
            for n in chars.by_ref() {
                if n == '\n' {
                    break;
                }
            }
            clean.push('\n');
        } else if c == '/' && chars.peek() == Some(&'*') {
            chars.next();
            let mut last = ' ';
            for n in chars.by_ref() {
                if last == '*' && n == '/' {
                    break;
                }
                last = n;
            }
        } else {
            clean.push(c);
        }
    }
    let mut out = Vec::new();
    let mut scope: Vec<String> = Vec::new();
    let mut token = String::new();
    let mut pending_key: Option<String> = None;
    let mut chars = clean.chars();
    let join = |scope: &[String], key: &str| {
        let mut parts: Vec<&str> = scope.iter().map(String::as_str).collect();
        if !key.is_empty() {
            parts.push(key);
        }
        parts.join("::")
    };
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                let value: String = chars.by_ref().take_while(|&c| c != '"').collect();
                let key = pending_key
                    .take()
                    .unwrap_or_else(|| token.trim().to_string());
                token.clear();
                out.push((join(&scope, &key), value));
            }
            '{' => {
                let key = pending_key
                    .take()
                    .unwrap_or_else(|| token.trim().to_string());
                token.clear();
                scope.push(key);
            }
            '}' => {
                scope.pop();
                token.clear();
            }
            ';' => {
                token.clear();
                pending_key = None;
            }
            c if c.is_whitespace() => {
                if !token.trim().is_empty() && pending_key.is_none() {
                    pending_key = Some(token.trim().to_string());
                    token.clear();
                }
            }
            c => {
                if let Some(k) = pending_key.take() {
                    token = k;
                    token.push(' ');
                }
                token.push(c);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_entries_with_options() {
        let text = "# comment\ndeb [arch=amd64,arm64 signed-by=/usr/share/keyrings/k.gpg] http://deb.debian.org/debian bookworm main contrib\ndeb-src http://x/ y main\ndeb http://x/flat ./\n";
        let e = parse_sources_list(text, "sources.list").unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].uri, "http://deb.debian.org/debian");
        assert_eq!(e[0].components, ["main", "contrib"]);
        assert_eq!(
            e[0].architectures.as_deref(),
            Some(&["amd64".to_string(), "arm64".to_string()][..])
        );
        assert_eq!(e[0].signed_by, ["/usr/share/keyrings/k.gpg"]);
        assert_eq!(e[0].location, "sources.list:2");
        assert!(e[1].components.is_empty());
        let err = parse_sources_list("deb http://x\n", "a.list").unwrap_err();
        assert!(
            err.to_string().starts_with("a.list:1: `deb http://x`"),
            "{err}"
        );
    }

    #[test]
    fn deb822_sources_expand_uris_and_suites() {
        let text = "Types: deb deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb\nURIs: http://x\nSuites: y\nComponents: main\nEnabled: no\n";
        let e = parse_deb822_sources(text, "debian.sources").unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].suite, "bookworm-updates");
        assert_eq!(e[1].location, "debian.sources:1");
    }

    #[test]
    fn preferences_stanzas() {
        let text = "Package: *\nPin: release a=bookworm-backports\nPin-Priority: 500\n\nPackage: curl libcurl*\nPin: version 7.88*\nPin-Priority: 1001\n\nPackage: x\nPin: origin \"deb.example.org\"\nPin-Priority: -1\n";
        let p = parse_preferences(text, "preferences").unwrap();
        assert_eq!(
            p[0].target,
            PinTarget::Release(vec![('a', "bookworm-backports".into())])
        );
        assert_eq!(p[1].packages, ["curl", "libcurl*"]);
        assert_eq!(p[1].priority, 1001);
        assert_eq!(p[2].target, PinTarget::Origin("deb.example.org".into()));
        assert!(parse_preferences("Package: x\nPin: release a=y\n", "p").is_err());
    }

    #[test]
    fn apt_conf_both_forms() {
        let mut o = AptOptions::default();
        apply_apt_conf(
            "// c\nAPT::Install-Recommends \"false\";\n# c\nAPT { Install-Suggests \"1\"; Default-Release \"bookworm\"; };\n/* x */",
            &mut o,
        );
        assert!(!o.install_recommends);
        assert!(o.install_suggests);
        assert_eq!(o.default_release.as_deref(), Some("bookworm"));
    }
}

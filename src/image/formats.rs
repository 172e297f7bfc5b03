//! Parsers for the small metadata files the catalogue collects. They never
//! fail: what cannot be read is left out, and the caller reports it.

use std::collections::BTreeMap;

/// `KEY=value` lines with optional shell quoting (os-release).
pub(crate) fn parse_os_release(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        let value = if value.len() >= 2
            && ((value.starts_with('"') && value.ends_with('"'))
                || (value.starts_with('\'') && value.ends_with('\'')))
        {
            value[1..value.len() - 1]
                .replace("\\\"", "\"")
                .replace("\\\\", "\\")
        } else {
            value.to_string()
        };
        out.insert(key.trim().to_string(), value);
    }
    out
}

/// RFC 822 style headers up to the first blank line (`METADATA`,
/// `PKG-INFO`, `WHEEL`): repeated keys keep every value, in order.
pub(crate) fn parse_headers(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push('\n');
                last.1.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            out.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

pub(crate) fn header<'h>(headers: &'h [(String, String)], key: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
}

/// Paths in a `RECORD` (the first CSV column, which may be quoted).
pub(crate) fn parse_record(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            if let Some(rest) = line.strip_prefix('"') {
                let mut path = String::new();
                let mut chars = rest.chars().peekable();
                while let Some(c) = chars.next() {
                    if c == '"' {
                        if chars.peek() == Some(&'"') {
                            chars.next();
                            path.push('"');
                        } else {
                            break;
                        }
                    } else {
                        path.push(c);
                    }
                }
                path
            } else {
                line.split(',').next().unwrap_or_default().to_string()
            }
        })
        .collect()
}

/// Debian control paragraphs (dpkg status): one map per paragraph.
pub(crate) fn parse_paragraphs(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut out = Vec::new();
    let mut current = BTreeMap::new();
    let mut last_key: Option<String> = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            last_key = None;
        } else if line.starts_with([' ', '\t']) {
            // Continuation lines (descriptions, conffiles) are not needed.
            let _ = &last_key;
        } else if let Some((k, v)) = line.split_once(':') {
            current.insert(k.trim().to_string(), v.trim().to_string());
            last_key = Some(k.trim().to_string());
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// apk's own files freeze reads (`path` without or with its leading `/`):
/// the installed database, world, repositories, arch and keys.
pub(crate) fn is_apk_state_file(path: &str) -> bool {
    let p = path.strip_prefix('/').unwrap_or(path);
    matches!(
        p,
        "lib/apk/db/installed" | "etc/apk/world" | "etc/apk/repositories" | "etc/apk/arch"
    ) || p
        .strip_prefix("etc/apk/keys/")
        .is_some_and(|k| !k.is_empty() && !k.contains('/'))
}

/// apk's `installed` database: `P:name`, `V:version`, `A:arch` lines,
/// packages separated by blank lines.
pub(crate) fn parse_apk(text: &str) -> Vec<BTreeMap<char, String>> {
    let mut out = Vec::new();
    let mut current = BTreeMap::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        let mut chars = line.chars();
        if let (Some(key @ ('P' | 'V' | 'A' | 'o')), Some(':')) = (chars.next(), chars.next()) {
            current.insert(key, chars.as_str().to_string());
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Specs a user asked for, from conda's `history` (`# update specs: […]`,
/// minus those later removed with `# remove specs: […]`).
pub(crate) fn parse_conda_history(text: &str) -> Vec<String> {
    let mut specs: Vec<String> = Vec::new();
    for line in text.lines() {
        let (add, rest) = if let Some(r) = line.strip_prefix("# update specs:") {
            (true, r)
        } else if let Some(r) = line.strip_prefix("# remove specs:") {
            (false, r)
        } else {
            continue;
        };
        for spec in quoted_strings(rest) {
            let name = spec_name(&spec).to_string();
            specs.retain(|s| spec_name(s) != name);
            if add {
                specs.push(spec);
            }
        }
    }
    specs.sort();
    specs
}

fn spec_name(spec: &str) -> &str {
    let end = spec
        .find(|c: char| !(c.is_ascii_alphanumeric() || "-_.:/".contains(c)))
        .unwrap_or(spec.len());
    let name = &spec[..end];
    name.rsplit("::").next().unwrap_or(name)
}

fn quoted_strings(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\'' || c == '"' {
            let quoted: String = chars.by_ref().take_while(|&d| d != c).collect();
            out.push(quoted);
        }
    }
    out
}

/// PEP 503 normalized project name.
pub(crate) fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut dash = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            dash = true;
        } else {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release() {
        let m = parse_os_release(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n# x\nVERSION_ID='12'\n",
        );
        assert_eq!(m["ID"], "debian");
        assert_eq!(m["VERSION_ID"], "12");
        assert_eq!(m["PRETTY_NAME"], "Debian GNU/Linux 12 (bookworm)");
    }

    #[test]
    fn metadata_headers() {
        let h = parse_headers(
            "Metadata-Version: 2.1\nName: Foo_Bar\nVersion: 1.0\nClassifier: a\nClassifier: b\n\nName: body\n",
        );
        assert_eq!(header(&h, "name"), Some("Foo_Bar"));
        assert_eq!(h.iter().filter(|(k, _)| k == "Classifier").count(), 2);
        assert_eq!(normalize_name("Foo_Bar.baz"), "foo-bar-baz");
    }

    #[test]
    fn record_paths() {
        assert_eq!(
            parse_record("a/b.py,sha256=x,10\n\"c,d.py\",,\nfoo.dist-info/RECORD,,\n"),
            ["a/b.py", "c,d.py", "foo.dist-info/RECORD"]
        );
    }

    #[test]
    fn dpkg_and_apk() {
        let p = parse_paragraphs(
            "Package: a\nStatus: install ok installed\nDescription: x\n more\n\nPackage: b\n",
        );
        assert_eq!(p.len(), 2);
        assert_eq!(p[0]["Status"], "install ok installed");
        let a = parse_apk("C:Q1\nP:musl\nV:1.2.4-r2\nA:x86_64\n\nP:busybox\nV:1.36\n");
        assert_eq!(a[0][&'P'], "musl");
        assert_eq!(a.len(), 2);
    }

    #[test]
    fn conda_history() {
        let h = "==> 2024 <==\n# cmd: conda install numpy\n# update specs: ['numpy', 'python=3.11']\n+defaults::numpy-1\n# update specs: [\"conda-forge::pandas>=2\"]\n# remove specs: ['numpy']\n";
        assert_eq!(
            parse_conda_history(h),
            ["conda-forge::pandas>=2", "python=3.11"]
        );
    }
}

//! Conda files pinned in place: `environment.yml` (its dependencies and
//! its `pip:` list) and `conda install --file` spec files.
//!
//! Each file is read into a list of entries (a package name, the span of
//! its text, and how to delete it) and an anchor where missing packages
//! are added. Pinning an entry replaces its span; packages the file does
//! not name are added after the last entry, under
//! [`super::DEPENDENCIES_COMMENT`]. The YAML is never printed again: only
//! the scalars' spans change, in the quoting style they were written in.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::config::yaml::{YamlNode, parse_yaml};
use crate::diagnostic::Span;
use crate::rewrite::edit::Edit;
use crate::rewrite::pins::requirement_name;

/// One package named by a file.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    /// The normalized name.
    pub name: String,
    /// The value as read (quotes removed).
    pub value: String,
    /// The bytes replaced by a pin (with the quotes of a quoted scalar).
    pub span: Span,
    /// The bytes removed when the entry repeats a name already pinned.
    pub delete: Span,
    /// The quote the scalar was written with, if any.
    pub quote: Option<char>,
    /// Inside a YAML flow sequence (`[a, b]`).
    pub flow: bool,
}

/// Where packages a file does not name are added.
#[derive(Clone, Debug)]
pub(crate) struct Anchor {
    /// Insertion offset.
    pub at: usize,
    /// Block lists and spec files: the text before an item on its line
    /// (`  - `, or nothing); `None` in a flow sequence.
    pub prefix: Option<String>,
    /// Whether a line end goes before the added lines (file without a
    /// final line end).
    pub eol_first: bool,
    /// Whether the file is YAML (values are quoted when needed).
    pub yaml: bool,
}

/// A list of entries and where to add more.
#[derive(Clone, Debug, Default)]
pub(crate) struct EntryList {
    pub entries: Vec<Entry>,
    pub anchor: Option<Anchor>,
}

/// The pinnable parts of an `environment.yml`.
#[derive(Clone, Debug, Default)]
pub(crate) struct EnvironmentLayout {
    pub conda: EntryList,
    pub pip: Option<EntryList>,
}

/// The package name of a conda spec: `conda-forge::NumPy>=1` → `numpy`.
pub(crate) fn conda_name(spec: &str) -> Option<String> {
    let spec = spec.trim();
    let spec = spec.rsplit_once("::").map_or(spec, |(_, s)| s);
    let end = spec
        .find(|c: char| c.is_whitespace() || "=<>!~[;,".contains(c))
        .unwrap_or(spec.len());
    let name = &spec[..end];
    (!name.is_empty() && !name.starts_with(['-', '@', '#'])).then(|| name.to_ascii_lowercase())
}

fn line_start(text: &str, at: usize) -> usize {
    text[..at].rfind('\n').map_or(0, |i| i + 1)
}

/// The offset after the line end that follows `at`, or `None` on the last
/// line when it has no line end.
fn next_line(text: &str, at: usize) -> Option<usize> {
    text[at..].find('\n').map(|i| at + i + 1)
}

/// Reads a YAML sequence's scalar items as entries. `name` gives an item's
/// package name (`None`: not a package, kept as is but still an anchor).
fn yaml_list(text: &str, items: &[YamlNode], name: &dyn Fn(&str) -> Option<String>) -> EntryList {
    let mut out = EntryList::default();
    let mut prev_end: Option<usize> = None;
    let mut last: Option<Span> = None;
    for item in items {
        let YamlNode::Scalar(v) = item else {
            prev_end = Some(item.span().end);
            continue;
        };
        let ls = line_start(text, v.span.start);
        let before = &text[ls..v.span.start];
        let flow = !before.trim_end().ends_with('-');
        let written = &text[v.span.start..v.span.end];
        let quote = written
            .chars()
            .next()
            .filter(|q| (*q == '"' || *q == '\'') && written.len() >= 2 && written.ends_with(*q));
        if let Some(n) = name(&v.value) {
            let delete = if flow {
                Span::new(prev_end.unwrap_or(v.span.start), v.span.end)
            } else {
                Span::new(ls, next_line(text, v.span.end).unwrap_or(text.len()))
            };
            out.entries.push(Entry {
                name: n,
                value: v.value.clone(),
                span: v.span,
                delete,
                quote,
                flow,
            });
        }
        prev_end = Some(v.span.end);
        last = Some(v.span);
    }
    if let Some(span) = last {
        let ls = line_start(text, span.start);
        let before = &text[ls..span.start];
        out.anchor = Some(if before.trim_end().ends_with('-') {
            match next_line(text, span.end) {
                Some(at) => Anchor {
                    at,
                    prefix: Some(before.to_string()),
                    eol_first: false,
                    yaml: true,
                },
                None => Anchor {
                    at: text.len(),
                    prefix: Some(before.to_string()),
                    eol_first: true,
                    yaml: true,
                },
            }
        } else {
            Anchor {
                at: span.end,
                prefix: None,
                eol_first: false,
                yaml: true,
            }
        });
    }
    out
}

/// Reads the dependencies and the `pip:` list of an environment file.
pub(crate) fn environment_layout(path: &Path, text: &str) -> Result<EnvironmentLayout, String> {
    let root = parse_yaml(path, text)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "the file is empty".to_string())?;
    let Some(YamlNode::Sequence(items, _)) = root.get("dependencies") else {
        return Err("it has no `dependencies` list".into());
    };
    let mut layout = EnvironmentLayout {
        conda: yaml_list(text, items, &conda_name),
        pip: None,
    };
    for item in items {
        if let Some(YamlNode::Sequence(pip, _)) = item.get("pip") {
            layout.pip = Some(yaml_list(text, pip, &|s: &str| {
                if s.trim_start().starts_with('-') {
                    None
                } else {
                    requirement_name(s)
                }
            }));
            break;
        }
    }
    // Only a `pip:` mapping: conda packages go on new lines before it.
    if layout.conda.anchor.is_none()
        && let Some(first) = items.first()
    {
        let start = match first {
            YamlNode::Mapping(entries, _) => entries
                .first()
                .map_or(first.span().start, |(k, _)| k.span().start),
            other => other.span().start,
        };
        let ls = line_start(text, start);
        let before = &text[ls..start];
        if before.trim_end().ends_with('-') {
            layout.conda.anchor = Some(Anchor {
                at: ls,
                prefix: Some(before.to_string()),
                eol_first: false,
                yaml: true,
            });
        }
    }
    Ok(layout)
}

/// Reads a `conda install --file` spec file: one spec a line, `#`
/// comments. `None` for an `@EXPLICIT` file (URLs, see [`explicit_edits`]).
pub(crate) fn spec_layout(text: &str) -> Option<EntryList> {
    let mut out = EntryList::default();
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let start = at;
        at += line.len();
        let content = line.trim_end_matches(['\n', '\r']);
        let spec = content.split(" #").next().unwrap_or(content);
        let trimmed = spec.trim();
        if trimmed == "@EXPLICIT" {
            return None;
        }
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let Some(name) = conda_name(trimmed) else {
            continue;
        };
        let lead = spec.len() - spec.trim_start().len();
        let s = start + lead;
        out.entries.push(Entry {
            name,
            value: trimmed.to_string(),
            span: Span::new(s, s + trimmed.len()),
            delete: Span::new(start, at),
            quote: None,
            flow: false,
        });
    }
    out.anchor = Some(Anchor {
        at: text.len(),
        prefix: Some(String::new()),
        eol_first: !text.is_empty() && !text.ends_with('\n'),
        yaml: false,
    });
    Some(out)
}

/// `@EXPLICIT` files name artifacts already; a URL line without a hash
/// gets the locked sha256 of the package with that URL.
pub(crate) fn explicit_edits(text: &str, hashes: &BTreeMap<&str, &str>) -> Vec<Edit> {
    let mut edits = Vec::new();
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let start = at;
        at += line.len();
        let content = line.trim_end_matches(['\n', '\r']);
        let url = content.trim();
        if url.is_empty() || url.starts_with('#') || url.starts_with('@') || url.contains('#') {
            continue;
        }
        if let Some(sha) = hashes.get(url).filter(|s| !s.is_empty()) {
            let end = start + content.trim_end().len();
            edits.push(Edit::insert(end, format!("#{sha}")));
        }
    }
    edits
}

/// A YAML scalar for `value`: in the quote it replaces, else plain when
/// that reads back the same, else single-quoted.
fn yaml_scalar(value: &str, quote: Option<char>) -> String {
    let single = || format!("'{}'", value.replace('\'', "''"));
    match quote {
        Some('"') => format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\"")),
        Some(_) => single(),
        None => {
            let plain = !value.is_empty()
                && !value
                    .starts_with(|c: char| "-?:,[]{}#&*!|>'\"%@`".contains(c) || c.is_whitespace())
                && !value.ends_with(|c: char| c == ':' || c.is_whitespace())
                && !value.contains(": ")
                && !value.contains(" #")
                && !value.contains([',', '[', ']', '{', '}', '\t']);
            if plain { value.to_string() } else { single() }
        }
    }
}

/// Line ends of `text`.
pub(crate) fn eol_of(text: &str) -> &'static str {
    if text.contains("\r\n") { "\r\n" } else { "\n" }
}

/// Pins the entries of `list` from `pins` (normalized name → pins, in
/// order): the first entry of a name becomes its pins, later ones are
/// removed. Returns the edits and the names the list holds.
pub(crate) fn pin_entries(
    text: &str,
    list: &EntryList,
    pins: &BTreeMap<String, Vec<String>>,
    yaml: bool,
) -> (Vec<Edit>, BTreeSet<String>) {
    let eol = eol_of(text);
    let mut edits = Vec::new();
    let mut named = BTreeSet::new();
    let mut by_name: BTreeMap<&str, Vec<&Entry>> = BTreeMap::new();
    for e in &list.entries {
        by_name.entry(&e.name).or_default().push(e);
    }
    for (name, entries) in by_name {
        named.insert(name.to_string());
        let Some(mine) = pins.get(name).filter(|p| !p.is_empty()) else {
            continue;
        };
        let values: Vec<&str> = entries.iter().map(|e| e.value.as_str()).collect();
        if values == mine.iter().map(String::as_str).collect::<Vec<_>>() {
            continue;
        }
        let first = entries[0];
        let render = |v: &str| {
            if yaml {
                yaml_scalar(v, first.quote)
            } else {
                v.to_string()
            }
        };
        let sep = if first.flow {
            ", ".to_string()
        } else {
            let ls = line_start(text, first.span.start);
            format!("{eol}{}", &text[ls..first.span.start])
        };
        let replacement: Vec<String> = mine.iter().map(|p| render(p)).collect();
        edits.push(Edit::new(first.span, replacement.join(&sep)));
        for e in &entries[1..] {
            edits.push(Edit::new(e.delete, ""));
        }
    }
    (edits, named)
}

/// The edit adding `pins` at `anchor`, with the dependencies comment on
/// block lists and spec files when `comment` (and it is not there yet).
pub(crate) fn append(text: &str, anchor: &Anchor, pins: &[String], comment: bool) -> Option<Edit> {
    if pins.is_empty() {
        return None;
    }
    let eol = eol_of(text);
    let render = |p: &String| {
        if anchor.yaml {
            yaml_scalar(p, None)
        } else {
            p.clone()
        }
    };
    let Some(prefix) = &anchor.prefix else {
        let items: Vec<String> = pins.iter().map(render).collect();
        return Some(Edit::insert(anchor.at, format!(", {}", items.join(", "))));
    };
    let mut out = String::new();
    if anchor.eol_first {
        out.push_str(eol);
    }
    if comment
        && !text
            .lines()
            .any(|l| l.trim() == super::DEPENDENCIES_COMMENT)
    {
        // The comment lines up with the items' dashes.
        let indent: String = prefix.chars().take_while(|c| c.is_whitespace()).collect();
        out.push_str(&indent);
        out.push_str(super::DEPENDENCIES_COMMENT);
        out.push_str(eol);
    }
    for p in pins {
        out.push_str(prefix);
        out.push_str(&render(p));
        out.push_str(eol);
    }
    if anchor.eol_first {
        out.truncate(out.len() - eol.len());
    }
    Some(Edit::insert(anchor.at, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rewrite::edit::apply;

    fn pins(items: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        items
            .iter()
            .map(|(n, p)| {
                (
                    (*n).to_string(),
                    p.iter().map(|s| (*s).to_string()).collect(),
                )
            })
            .collect()
    }

    /// Pins an environment text's conda and pip lists, adding the rest.
    fn pin_env(
        text: &str,
        conda: &BTreeMap<String, Vec<String>>,
        pip: &BTreeMap<String, Vec<String>>,
    ) -> String {
        let layout = environment_layout(Path::new("e.yml"), text).expect("layout");
        let (mut edits, named) = pin_entries(text, &layout.conda, conda, true);
        let rest: Vec<String> = conda
            .iter()
            .filter(|(n, _)| !named.contains(*n))
            .flat_map(|(_, p)| p.clone())
            .collect();
        edits.extend(append(
            text,
            layout.conda.anchor.as_ref().expect("anchor"),
            &rest,
            true,
        ));
        if let Some(list) = &layout.pip {
            let (e, named) = pin_entries(text, list, pip, true);
            edits.extend(e);
            let rest: Vec<String> = pip
                .iter()
                .filter(|(n, _)| !named.contains(*n))
                .flat_map(|(_, p)| p.clone())
                .collect();
            edits.extend(append(
                text,
                list.anchor.as_ref().expect("anchor"),
                &rest,
                true,
            ));
        }
        apply(text, &edits).expect("applies")
    }

    #[test]
    fn conda_names_drop_channel_and_constraints() {
        assert_eq!(
            conda_name("conda-forge::NumPy>=1.26").as_deref(),
            Some("numpy")
        );
        assert_eq!(conda_name("python=3.12").as_deref(), Some("python"));
        assert_eq!(conda_name("blas=*=openblas").as_deref(), Some("blas"));
        assert_eq!(
            conda_name("pytorch[build=cuda*]").as_deref(),
            Some("pytorch")
        );
        assert_eq!(conda_name("samtools 1.19.*").as_deref(), Some("samtools"));
        assert_eq!(conda_name("--strict"), None);
    }

    #[test]
    fn flow_lists_get_items_after_the_last_entry() {
        let text =
            "channels: [conda-forge]\ndependencies: [python=3.12, 'numpy', pip, {pip: [rich]}]\n";
        let conda = pins(&[
            ("python", &["python==3.12.4=h0_0"]),
            ("numpy", &["numpy==2.0=h1_0"]),
            ("pip", &["pip==24=h2_0"]),
            ("zlib", &["zlib==1.3=h3_0"]),
        ]);
        let pip = pins(&[("rich", &["rich==13.9"]), ("pygments", &["pygments==2.18"])]);
        let out = pin_env(text, &conda, &pip);
        assert_eq!(
            out,
            "channels: [conda-forge]\ndependencies: [python==3.12.4=h0_0, 'numpy==2.0=h1_0', pip==24=h2_0, zlib==1.3=h3_0, {pip: [rich==13.9, pygments==2.18]}]\n"
        );
        assert_eq!(pin_env(&out, &conda, &pip), out);
    }

    #[test]
    fn repeated_names_collapse_and_markers_become_items() {
        let text =
            "dependencies:\n- numpy>=1\n- numpy<3\n- pip:\n  - \"torch\"  # gpu\n  - torch>=2\n";
        let conda = pins(&[("numpy", &["numpy==2.0=h1_0"])]);
        let pip = pins(&[(
            "torch",
            &[
                "torch==2.4.0; platform_machine == \"x86_64\"",
                "torch==2.4.1; platform_machine == \"aarch64\"",
            ],
        )]);
        let out = pin_env(text, &conda, &pip);
        assert_eq!(
            out,
            "dependencies:\n- numpy==2.0=h1_0\n- pip:\n  - \"torch==2.4.0; platform_machine == \\\"x86_64\\\"\"\n  - \"torch==2.4.1; platform_machine == \\\"aarch64\\\"\"  # gpu\n"
        );
        assert_eq!(pin_env(&out, &conda, &pip), out);
        let env = crate::source::environment::EnvironmentFile::parse(Path::new("e.yml"), &out)
            .expect("valid");
        assert_eq!(
            env.pip[1].value,
            "torch==2.4.1; platform_machine == \"aarch64\""
        );
    }

    #[test]
    fn a_pip_list_alone_gets_conda_packages_before_it_and_no_final_eol_is_kept() {
        let text = "dependencies:\n  - pip:\n      - rich";
        let conda = pins(&[("pip", &["pip==24=h2_0"])]);
        let pip = pins(&[("rich", &["rich==13.9"]), ("pygments", &["pygments==2.18"])]);
        let out = pin_env(text, &conda, &pip);
        assert_eq!(
            out,
            "dependencies:\n  # pinned by imagelock: dependencies\n  - pip==24=h2_0\n  - pip:\n      - rich==13.9\n      # pinned by imagelock: dependencies\n      - pygments==2.18"
        );
        assert_eq!(pin_env(&out, &conda, &pip), out);
    }

    #[test]
    fn yaml_scalars_are_quoted_only_when_needed() {
        assert_eq!(yaml_scalar("numpy==2.0=h1_0", None), "numpy==2.0=h1_0");
        assert_eq!(
            yaml_scalar("bioconda::pysam==0.22", None),
            "bioconda::pysam==0.22"
        );
        assert_eq!(yaml_scalar("x; a == \"b\"", None), "x; a == \"b\"");
        assert_eq!(yaml_scalar("x, y", None), "'x, y'");
        assert_eq!(yaml_scalar("it's: x", None), "'it''s: x'");
        assert_eq!(yaml_scalar("a\"b", Some('"')), "\"a\\\"b\"");
    }

    #[test]
    fn spec_files_and_explicit_files() {
        let text = "# tools\r\n  samtools>=1.19  # bam\r\n\r\njq";
        let list = spec_layout(text).expect("not explicit");
        let conda = pins(&[
            ("samtools", &["samtools==1.20=h5_0"]),
            ("jq", &["jq==1.7=h6_0"]),
        ]);
        let (mut edits, _) = pin_entries(text, &list, &conda, false);
        edits.extend(append(
            text,
            list.anchor.as_ref().expect("anchor"),
            &["oniguruma==6.9=h7_0".to_string()],
            true,
        ));
        assert_eq!(
            apply(text, &edits).expect("applies"),
            "# tools\r\n  samtools==1.20=h5_0  # bam\r\n\r\njq==1.7=h6_0\r\n# pinned by imagelock: dependencies\r\noniguruma==6.9=h7_0"
        );

        let explicit = "# platform: linux-64\n@EXPLICIT\nhttps://c/linux-64/jq-1.7-h6_0.conda\nhttps://c/linux-64/zlib-1.3-h0_0.conda#abc\n";
        assert!(spec_layout(explicit).is_none());
        let hashes = BTreeMap::from([("https://c/linux-64/jq-1.7-h6_0.conda", "f00d")]);
        let out = apply(explicit, &explicit_edits(explicit, &hashes)).expect("applies");
        assert_eq!(
            out,
            "# platform: linux-64\n@EXPLICIT\nhttps://c/linux-64/jq-1.7-h6_0.conda#f00d\nhttps://c/linux-64/zlib-1.3-h0_0.conda#abc\n"
        );
        assert!(explicit_edits(&out, &hashes).is_empty());
    }
}

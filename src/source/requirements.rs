//! pip requirements files (`-r requirements.txt`, `-c constraints.txt`), read
//! the way pip reads them, with the span of every requirement so `rewrite`
//! can pin it in place.
//!
//! pip's rules: a `\` at the end of a line joins the next; `#` starts a
//! comment at the start of a line or after whitespace (so `#egg=` in a URL
//! stays); `${VAR}` is replaced from the environment; a line is either an
//! option (`-r`, `-c`, `-i`, `--hash` …) or a requirement followed by its
//! per-requirement options.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::diagnostic::{Diagnostic, Location, Span};
use crate::source::shell::Script;

/// One logical line of a requirements file that means something.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum RequirementsEntry {
    /// A requirement (PEP 508 string, URL, path or `-e` target).
    Requirement {
        /// The requirement text, after `${VAR}` expansion.
        spec: String,
        editable: bool,
        /// `--hash=algo:hex` options.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        hashes: Vec<String>,
        /// The requirement's bytes in the file (without its options).
        span: Span,
        /// The whole logical line, continuations included, without the
        /// trailing newline or comment.
        line_span: Span,
        /// Options pip's parser accepts after a requirement but then does
        /// not apply (`jax[cuda] -f https://…`: pip reads the line, and
        /// ignores the `-f`), as written, for a warning.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ignored_options: Vec<String>,
    },
    /// `-r FILE` or `-c FILE`.
    Include {
        constraint: bool,
        /// As written (relative to the including file's directory).
        path: String,
        span: Span,
    },
    /// Any other option line (`--index-url URL`, `--pre`, `--no-binary :all:`…).
    Option {
        name: String,
        value: Option<String>,
        span: Span,
    },
}

/// A parsed requirements file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RequirementsFile {
    pub path: PathBuf,
    pub entries: Vec<RequirementsEntry>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ParseRequirementsError(pub Box<Diagnostic>);

/// Options that take a value (long and short forms).
const VALUE_OPTIONS: &[&str] = &[
    "-r",
    "--requirement",
    "-c",
    "--constraint",
    "-e",
    "--editable",
    "-i",
    "--index-url",
    "--extra-index-url",
    "-f",
    "--find-links",
    "--trusted-host",
    "--only-binary",
    "--no-binary",
    "--use-feature",
    "--hash",
    "--global-option",
    "--config-settings",
];

impl RequirementsFile {
    /// Parses requirements text read from `path`. `env` gives `${VAR}`
    /// values (pip reads the process environment; in an image that is the
    /// `ENV` in scope).
    pub fn parse(
        path: &Path,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<RequirementsFile, ParseRequirementsError> {
        let mut entries = Vec::new();
        for line in logical_lines(text) {
            if let Some(entry) = parse_line(path, text, &line, env)? {
                entries.push(entry);
            }
        }
        Ok(RequirementsFile {
            path: path.to_path_buf(),
            entries,
        })
    }

    /// The requirements, in file order.
    pub fn requirements(&self) -> impl Iterator<Item = &RequirementsEntry> {
        self.entries
            .iter()
            .filter(|e| matches!(e, RequirementsEntry::Requirement { .. }))
    }
}

/// Joins `\`-continued physical lines into logical ones, keeping the map to
/// file offsets.
fn logical_lines(text: &str) -> Vec<Script> {
    let mut out = Vec::new();
    let mut current = Script::new();
    let mut offset = 0;
    for raw in text.split_inclusive('\n') {
        let start = offset;
        offset += raw.len();
        let line = raw.trim_end_matches(['\n', '\r']);
        if let Some(body) = line.strip_suffix('\\') {
            current.push(body, start);
            continue;
        }
        current.push(line, start);
        out.push(std::mem::take(&mut current));
    }
    if !current.text().is_empty() {
        out.push(current);
    }
    out
}

/// Length of the text before a comment: `#` at the start or after whitespace.
fn without_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    let cut = bytes
        .iter()
        .enumerate()
        .find(|&(i, &b)| b == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()))
        .map_or(line.len(), |(i, _)| i);
    line[..cut].trim_end()
}

/// Replaces `${NAME}` (pip's only form: uppercase, digits, `_`).
fn expand(s: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find('}') {
            Some(j)
                if j > 0
                    && after[..j]
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') =>
            {
                match env(&after[..j]) {
                    Some(v) => out.push_str(&v),
                    None => out.push_str(&rest[i..i + 3 + j]),
                }
                rest = &after[j + 1..];
            }
            _ => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Splits at whitespace, keeping each token's offset.
fn tokens(s: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in s.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(st)) => {
                out.push((st, &s[st..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(st) = start {
        out.push((st, &s[st..]));
    }
    out
}

fn parse_line(
    path: &Path,
    text: &str,
    line: &Script,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<RequirementsEntry>, ParseRequirementsError> {
    let content = without_comment(line.text());
    let toks = tokens(content);
    let Some(&(first_at, first)) = toks.first() else {
        return Ok(None);
    };
    let span_of = |start: usize, end: usize| line.file_span(Span::new(start, end));
    let line_span = span_of(first_at, content.len());
    let error = |at: usize, message: String, hint: &str| {
        // One character wide, whatever its width in bytes.
        let width = content
            .get(at..)
            .and_then(|rest| rest.chars().next())
            .map_or(1, char::len_utf8);
        let span = span_of(at, at + width);
        ParseRequirementsError(Box::new(Diagnostic {
            message,
            location: Location::of(path, text, span.start),
            span,
            hint: Some(hint.to_string()),
        }))
    };

    if first.starts_with('-') {
        // An option line; `-e` is a requirement in option form.
        let (name, inline) = match first.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v)),
            _ => (first, None),
        };
        // Short options may be glued to their value: `-rreqs.txt`.
        // (Only when the option letter is one byte: `-½` is no option.)
        let glued = name.len() > 2 && !name.starts_with("--") && name.is_char_boundary(2);
        let (name, inline) = match (glued, inline) {
            (true, None) => (&name[..2], Some(&name[2..])),
            _ => (name, inline),
        };
        let takes_value = VALUE_OPTIONS.contains(&name);
        let value = match (takes_value, inline) {
            (false, _) => None,
            (true, Some(v)) => Some((first_at + first.len() - v.len(), v)),
            (true, None) => match toks.get(1) {
                Some(&(at, v)) => Some((at, v)),
                None => {
                    return Err(error(
                        first_at,
                        format!("`{name}` needs a value"),
                        "write it on the same line, e.g. `-r other.txt`",
                    ));
                }
            },
        };
        return Ok(Some(match (name, value) {
            ("-r" | "--requirement" | "-c" | "--constraint", Some((at, v))) => {
                RequirementsEntry::Include {
                    constraint: matches!(name, "-c" | "--constraint"),
                    path: expand(v, env),
                    span: span_of(at, at + v.len()),
                }
            }
            ("-e" | "--editable", Some((at, v))) => RequirementsEntry::Requirement {
                spec: expand(v, env),
                editable: true,
                hashes: Vec::new(),
                span: span_of(at, at + v.len()),
                line_span,
                ignored_options: Vec::new(),
            },
            (name, value) => RequirementsEntry::Option {
                name: name.to_string(),
                value: value.map(|(_, v)| expand(v, env)),
                span: line_span,
            },
        }));
    }

    // A requirement: everything up to the first option token (pip splits
    // at the first word starting with `-`); PEP 508 markers may contain
    // spaces (`; python_version < "3.8"`).
    let opts_at = toks
        .iter()
        .skip(1)
        .find(|(_, t)| t.starts_with('-'))
        .map_or(content.len(), |&(at, _)| at);
    let spec_text = content[first_at..opts_at].trim_end();
    let mut hashes = Vec::new();
    let mut ignored_options = Vec::new();
    let opt_toks: Vec<_> = toks.iter().filter(|(at, _)| *at >= opts_at).collect();
    let mut i = 0;
    while i < opt_toks.len() {
        let (at, t) = *opt_toks[i];
        if let Some(h) = t.strip_prefix("--hash=") {
            hashes.push(h.to_string());
        } else if t == "--hash" {
            let Some(&&(_, h)) = opt_toks.get(i + 1) else {
                return Err(error(
                    at,
                    "`--hash` needs a value".into(),
                    "write `--hash=sha256:<hex>`",
                ));
            };
            hashes.push(h.to_string());
            i += 1;
        } else if t.starts_with("--global-option") || t.starts_with("--config-settings") {
            if !t.contains('=') {
                i += 1;
            }
        } else if let Some(name) = file_option(t) {
            // pip parses the file's own options here too, then applies
            // only the per-requirement ones: the rest is ignored.
            let glued = name.len() < t.len();
            let mut written = t.to_string();
            if VALUE_OPTIONS.contains(&name) && !glued {
                let Some(&&(_, v)) = opt_toks.get(i + 1) else {
                    return Err(error(
                        at,
                        format!("`{name}` needs a value"),
                        "write it on the same line, e.g. `-f https://…`",
                    ));
                };
                written = format!("{t} {v}");
                i += 1;
            }
            ignored_options.push(written);
        } else {
            return Err(error(
                at,
                format!("`{t}` is not an option pip knows in a requirements file"),
                "see pip's requirements file format for the options it accepts",
            ));
        }
        i += 1;
    }
    Ok(Some(RequirementsEntry::Requirement {
        spec: expand(spec_text, env),
        editable: false,
        hashes,
        span: span_of(first_at, first_at + spec_text.len()),
        line_span,
        ignored_options,
    }))
}

/// Options pip accepts in a requirements file, by the name `t` starts
/// with (`-f`, `--find-links=URL`, `-fURL`).
fn file_option(t: &str) -> Option<&'static str> {
    const FLAGS: &[&str] = &["--no-index", "--pre", "--prefer-binary", "--require-hashes"];
    let name = t.split_once('=').map_or(t, |(n, _)| n);
    if let Some(f) = FLAGS.iter().find(|f| **f == name) {
        return Some(f);
    }
    VALUE_OPTIONS
        .iter()
        .copied()
        .find(|o| *o == name || (!o.starts_with("--") && t.len() > 2 && t.starts_with(o)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> RequirementsFile {
        let env = |k: &str| (k == "TOKEN").then(|| "s3cret".to_string());
        RequirementsFile::parse(Path::new("requirements.txt"), text, &env).unwrap()
    }

    fn spec_at(text: &str, e: &RequirementsEntry) -> String {
        match e {
            RequirementsEntry::Requirement { span, .. }
            | RequirementsEntry::Include { span, .. } => text[span.start..span.end].to_string(),
            RequirementsEntry::Option { span, .. } => text[span.start..span.end].to_string(),
        }
    }

    #[test]
    fn pip_syntax() {
        let text = "# analysis stack\r\npandas>=2.0  # pinned later\r\n\r\n-r base.txt\n-c constraints.txt\n\
requests[socks] ; python_version < \"3.12\" \\\n    --hash=sha256:aa --hash sha256:bb\n\
--index-url https://${TOKEN}@pypi.example.org/simple\n\
git+https://github.com/org/repo@v1#egg=repo\n-e ./local\n--pre\n-rmore.txt\n";
        let f = parse(text);
        let got: Vec<String> = f.entries.iter().map(|e| spec_at(text, e)).collect();
        assert_eq!(
            got,
            [
                "pandas>=2.0",
                "base.txt",
                "constraints.txt",
                "requests[socks] ; python_version < \"3.12\"",
                "--index-url https://${TOKEN}@pypi.example.org/simple",
                "git+https://github.com/org/repo@v1#egg=repo",
                "./local",
                "--pre",
                "more.txt",
            ]
        );
        match &f.entries[3] {
            RequirementsEntry::Requirement {
                hashes, line_span, ..
            } => {
                assert_eq!(hashes, &["sha256:aa", "sha256:bb"]);
                assert!(text[line_span.start..line_span.end].ends_with("--hash sha256:bb"));
            }
            other => panic!("{other:?}"),
        }
        match &f.entries[4] {
            RequirementsEntry::Option { name, value, .. } => {
                assert_eq!(name, "--index-url");
                assert_eq!(
                    value.as_deref(),
                    Some("https://s3cret@pypi.example.org/simple")
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            &f.entries[2],
            RequirementsEntry::Include {
                constraint: true,
                ..
            }
        ));
        assert!(matches!(
            &f.entries[6],
            RequirementsEntry::Requirement { editable: true, .. }
        ));
        assert_eq!(f.requirements().count(), 4);
    }

    /// pip reads a file option after a requirement and does not apply it
    /// (pip 23.2: `referencing -f DIR` with `--no-index` finds nothing,
    /// `-f DIR` on its own line finds it): kept for a warning. An option
    /// pip does not know is refused where it is.
    #[test]
    fn options_after_a_requirement_are_read_as_pip_reads_them() {
        let f = parse(
            "jax[cuda12] -f https://storage.example/jax_releases.html\nscipy --pre\nsix -fdir --no-index\n",
        );
        let ignored: Vec<Vec<String>> = f
            .entries
            .iter()
            .map(|e| match e {
                RequirementsEntry::Requirement {
                    ignored_options, ..
                } => ignored_options.clone(),
                _ => Vec::new(),
            })
            .collect();
        assert_eq!(
            ignored,
            [
                vec!["-f https://storage.example/jax_releases.html".to_string()],
                vec!["--pre".to_string()],
                vec!["-fdir".to_string(), "--no-index".to_string()],
            ]
        );
        let text = "jax[cuda12] -f https://storage.example/jax_releases.html\n";
        assert_eq!(spec_at(text, &parse(text).entries[0]), "jax[cuda12]");
        let err = RequirementsFile::parse(Path::new("r.txt"), "numpy\nscipy --bogus\n", &|_| None)
            .unwrap_err();
        assert_eq!(err.0.location.to_string(), "r.txt:2:7");
        assert!(err.0.message.contains("`--bogus`"), "{}", err.0.message);
    }

    /// Found by the fuzz target: a dash glued to a multibyte character
    /// (`-½`) was cut inside the character, and an error pointing at a
    /// multibyte character ended inside it.
    #[test]
    fn multibyte_characters_are_never_cut() {
        for text in ["-\u{bd}\0-\u{1a}\u{1a}@\0", " ] -r\0  \u{4ce}\0-"] {
            match RequirementsFile::parse(Path::new("r.txt"), text, &|_| None) {
                Ok(f) => assert_eq!(f.requirements().count(), 0),
                Err(e) => assert!(text.get(e.0.span.start..e.0.span.end).is_some(), "{text:?}"),
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_spans_are_in_bounds(text in "[ -~\\n\\\\#\\r\\t]{0,200}") {
            if let Ok(f) = RequirementsFile::parse(Path::new("r.txt"), &text, &|_| None) {
                for e in &f.entries {
                    let span = match e {
                        RequirementsEntry::Requirement { span, .. }
                        | RequirementsEntry::Include { span, .. }
                        | RequirementsEntry::Option { span, .. } => *span,
                    };
                    proptest::prop_assert!(span.start <= span.end && span.end <= text.len());
                    proptest::prop_assert!(text.is_char_boundary(span.start));
                }
            }
        }
    }
}

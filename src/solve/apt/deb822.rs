//! deb822 paragraphs (RFC 822-like control data: `Packages`, `Release`,
//! dpkg `status`, `*.sources`, `preferences`), read without copying.
//!
//! Written here rather than taken from a crate: the lossless deb822 crates
//! keep a syntax tree per field (rowan), which costs seconds on a 60 MB
//! `Packages` file; resolution needs only field slices and line numbers.

/// A malformed deb822 line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Deb822Error {
    #[error(
        "line {line}: `{text}` is neither a `Field: value` line nor a continuation line\nhint: deb822 fields are `Name: value`; continuation lines start with a space"
    )]
    NotAField { line: usize, text: String },
    #[error(
        "line {line}: a continuation line starts a paragraph\nhint: continuation lines must follow a `Field: value` line"
    )]
    ContinuationFirst { line: usize },
}

/// One paragraph: its first line (1-based) and its fields in order.
#[derive(Debug, Clone, Default)]
pub struct Paragraph<'a> {
    pub line: usize,
    fields: Vec<(&'a str, &'a str)>,
}

impl<'a> Paragraph<'a> {
    /// The value of a field (names are case-insensitive), trimmed; for a
    /// multi-line field the continuation lines are included as written.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    pub fn fields(&self) -> impl Iterator<Item = (&'a str, &'a str)> + '_ {
        self.fields.iter().copied()
    }
}

/// Splits `text` into paragraphs. Lines starting with `#` are comments.
pub fn paragraphs(text: &str) -> Result<Vec<Paragraph<'_>>, Deb822Error> {
    let mut out = Vec::new();
    let mut current = Paragraph::default();
    // The open field: its name, the value's start offset and end offset.
    let mut open: Option<(&str, usize, usize)> = None;
    let mut offset = 0usize;
    for (index, raw) in text.split_inclusive('\n').enumerate() {
        let start = offset;
        offset += raw.len();
        let line = raw.trim_end_matches(['\n', '\r']);
        let number = index + 1;
        if line.starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            if let Some((name, s, e)) = open.take() {
                current.fields.push((name, text[s..e].trim()));
            }
            if !current.fields.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            match open.as_mut() {
                Some((_, _, end)) => *end = start + line.len(),
                None => return Err(Deb822Error::ContinuationFirst { line: number }),
            }
            continue;
        }
        let Some(colon) = line.find(':') else {
            return Err(Deb822Error::NotAField {
                line: number,
                text: line.chars().take(80).collect(),
            });
        };
        if let Some((name, s, e)) = open.take() {
            current.fields.push((name, text[s..e].trim()));
        }
        if current.fields.is_empty() {
            current.line = number;
        }
        open = Some((line[..colon].trim(), start + colon + 1, start + line.len()));
    }
    if let Some((name, s, e)) = open.take() {
        current.fields.push((name, text[s..e].trim()));
    }
    if !current.fields.is_empty() {
        out.push(current);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_continuations_comments_and_blank_lines() {
        let text = "# c\nPackage: a\nDescription: x\n y\n .\n z\nVersion: 1\n\n\n \nPackage: b\r\nDepends: c,\n d\n";
        let ps = paragraphs(text).unwrap();
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].line, 2);
        assert_eq!(ps[0].get("package"), Some("a"));
        assert_eq!(ps[0].get("Description"), Some("x\n y\n .\n z"));
        assert_eq!(ps[0].get("Version"), Some("1"));
        assert_eq!(ps[1].line, 11);
        assert_eq!(ps[1].get("Depends"), Some("c,\n d"));
    }

    #[test]
    fn bad_lines_are_located() {
        assert_eq!(
            paragraphs("Package: a\nnonsense\n").unwrap_err(),
            Deb822Error::NotAField {
                line: 2,
                text: "nonsense".into()
            }
        );
        assert_eq!(
            paragraphs(" x: y\n").unwrap_err(),
            Deb822Error::ContinuationFirst { line: 1 }
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC*") {
            let _ = paragraphs(&s);
        }
    }
}

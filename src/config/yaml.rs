//! A small YAML reader for conda's files (`.condarc`, `environment.yml`):
//! scalars, sequences and mappings, each value with the byte span it was
//! read from, so that errors point into the file and rewrites edit in place.

use std::path::Path;

use saphyr_parser::{Event, Parser, ScalarStyle};

use crate::diagnostic::{Diagnostic, Location, Span};

/// A YAML file that could not be read, with where.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ParseYamlError(pub Box<Diagnostic>);

/// A string of the file and where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpannedValue {
    pub value: String,
    pub span: Span,
}

/// A YAML value with the span it was read from (only what environment files
/// and `.condarc` use: scalars, sequences, mappings).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum YamlNode {
    Scalar(SpannedValue),
    Sequence(Vec<YamlNode>, Span),
    Mapping(Vec<(YamlNode, YamlNode)>, Span),
}

impl YamlNode {
    pub fn span(&self) -> Span {
        match self {
            YamlNode::Scalar(v) => v.span,
            YamlNode::Sequence(_, s) | YamlNode::Mapping(_, s) => *s,
        }
    }

    /// The value of `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&YamlNode> {
        match self {
            YamlNode::Mapping(entries, _) => entries
                .iter()
                .find(|(k, _)| matches!(k, YamlNode::Scalar(v) if v.value == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_scalar(&self) -> Option<&SpannedValue> {
        match self {
            YamlNode::Scalar(v) => Some(v),
            _ => None,
        }
    }
}

/// Parses the first YAML document of `text`; `None` for an empty file.
/// `path` names the file in errors.
pub fn parse_yaml(path: &Path, text: &str) -> Result<Option<YamlNode>, ParseYamlError> {
    // saphyr counts characters; spans are bytes.
    let mut char_to_byte: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    char_to_byte.push(text.len());
    let byte = |chars: usize| char_to_byte.get(chars).copied().unwrap_or(text.len());
    let error = |offset: usize, message: String| {
        ParseYamlError(Box::new(Diagnostic {
            message,
            location: Location::of(path, text, offset),
            span: Span::new(offset, offset),
            hint: None,
        }))
    };

    enum Open {
        Seq(Vec<YamlNode>, usize),
        Map(Vec<(YamlNode, YamlNode)>, Option<YamlNode>, usize),
    }
    let mut stack: Vec<Open> = Vec::new();
    let mut root: Option<YamlNode> = None;

    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| {
            error(
                byte(e.marker().index()),
                format!("invalid YAML: {}", e.info()),
            )
        })?;
        let (start, end) = (byte(span.start.index()), byte(span.end.index()));
        let node = match event {
            Event::Scalar(value, style, _, _) => {
                let value = if style == ScalarStyle::Plain && (value == "~" || value == "null") {
                    String::new()
                } else {
                    value.into_owned()
                };
                let end = match style {
                    ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => {
                        quoted_end(text, start).unwrap_or(end)
                    }
                    _ => end,
                };
                YamlNode::Scalar(SpannedValue {
                    value,
                    span: Span::new(start, end),
                })
            }
            Event::SequenceStart(..) => {
                stack.push(Open::Seq(Vec::new(), start));
                continue;
            }
            Event::MappingStart(..) => {
                stack.push(Open::Map(Vec::new(), None, start));
                continue;
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Open::Seq(items, s)) => YamlNode::Sequence(items, Span::new(s, end)),
                _ => return Err(error(start, "invalid YAML: unbalanced sequence".into())),
            },
            Event::MappingEnd => match stack.pop() {
                Some(Open::Map(entries, _, s)) => YamlNode::Mapping(entries, Span::new(s, end)),
                _ => return Err(error(start, "invalid YAML: unbalanced mapping".into())),
            },
            Event::Alias(_) => {
                return Err(error(
                    start,
                    "YAML aliases are not supported here".to_string(),
                ));
            }
            Event::DocumentEnd if root.is_some() => break,
            _ => continue,
        };
        match stack.last_mut() {
            Some(Open::Seq(items, _)) => items.push(node),
            Some(Open::Map(entries, key, _)) => match key.take() {
                Some(k) => entries.push((k, node)),
                None => *key = Some(node),
            },
            None => root = Some(node),
        }
    }
    Ok(root)
}

/// The end of the quoted scalar starting at `start` (after its closing
/// quote): saphyr's span of a quoted scalar can run on over the blanks and
/// comment after it.
fn quoted_end(text: &str, start: usize) -> Option<usize> {
    let rest = text.get(start..)?;
    let quote = rest.chars().next().filter(|q| *q == '"' || *q == '\'')?;
    let mut chars = rest.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        if quote == '"' && c == '\\' {
            chars.next();
        } else if c == quote {
            // `''` inside single quotes is an escaped quote.
            if quote == '\'' && rest[i + 1..].starts_with('\'') {
                chars.next();
                continue;
            }
            return Some(start + i + 1);
        }
    }
    None
}

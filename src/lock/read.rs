//! Reading lockfiles, with clear errors for corrupt and future files.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::diagnostic::{Diagnostic, Location, Span};
use crate::lock::value::{has_control, shown};
use crate::lock::{LOCK_VERSION, LockedImage};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cannot read lockfile `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write lockfile `{}`: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Box<Diagnostic>),
    #[error(
        "`{}` is lockfile format version {found}, newer than this imagelock reads ({LOCK_VERSION})\nhint: upgrade imagelock, or re-create the lock with `imagelock freeze`",
        path.display()
    )]
    FutureVersion { path: PathBuf, found: u64 },
}

impl LockError {
    /// The diagnostic, when the error points into the file.
    pub fn diagnostic(&self) -> Option<&Diagnostic> {
        match self {
            LockError::Invalid(d) => Some(d),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
struct VersionProbe {
    version: Option<toml::Spanned<toml::Value>>,
}

impl LockedImage {
    /// Reads a lockfile from disk.
    pub fn read(path: &Path) -> Result<LockedImage, LockError> {
        let text = fs_err::read_to_string(path).map_err(|source| LockError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(path, &text)
    }

    /// Parses the text of a lockfile; `path` is for messages.
    ///
    /// Every value is checked to its grammar (digests, hashes, names,
    /// versions, URLs, platforms, paths) and no value may hold a control
    /// character: a bad lock is an error naming the key and its line,
    /// before anything uses it.
    pub fn from_toml(path: &Path, text: &str) -> Result<LockedImage, LockError> {
        let invalid = |span: Option<std::ops::Range<usize>>, message: String, hint: &str| {
            let span = span.map_or(Span::default(), |r| Span::new(r.start, r.end));
            LockError::Invalid(Box::new(Diagnostic {
                message,
                location: Location::of(path, text, span.start),
                span,
                hint: Some(hint.to_string()),
            }))
        };

        // The version decides how to read the rest, so look at it first.
        let probe: VersionProbe = toml::from_str(text)
            .map_err(|e| invalid(e.span(), e.message().to_string(), REFREEZE))?;
        let Some(version) = probe.version else {
            return Err(invalid(
                Some(0..0),
                "not an imagelock lockfile: it has no `version`".into(),
                REFREEZE,
            ));
        };
        let span = version.span();
        match version.into_inner() {
            toml::Value::Integer(v) if v == i64::from(LOCK_VERSION) => {}
            toml::Value::Integer(v) if v > i64::from(LOCK_VERSION) => {
                return Err(LockError::FutureVersion {
                    path: path.to_path_buf(),
                    found: v.unsigned_abs(),
                });
            }
            other => {
                return Err(invalid(
                    Some(span),
                    format!("unknown lockfile version `{other}`"),
                    REFREEZE,
                ));
            }
        }
        let keys = KeyMap::of(text);
        let lock: LockedImage = toml::from_str(text).map_err(|e| {
            let span = e.span();
            let key = span.as_ref().and_then(|s| keys.key_at(s.start));
            let (message, hint) = split_hint(e.message());
            invalid(span, with_key(key, &message), hint.unwrap_or(HAND_EDITED))
        })?;
        // Free text (commands, specs as written) has no grammar, but it is
        // one line: no value of a lock holds a control character.
        if let Some((key, span, value)) = keys.first_control_character() {
            return Err(invalid(
                Some(span),
                with_key(
                    Some(key),
                    &format!("contains a control character: {}", shown(&value)),
                ),
                HAND_EDITED,
            ));
        }
        for (i, step) in lock.steps.iter().enumerate() {
            if step.line == 0 {
                let key = format!("steps[{i}].line");
                return Err(invalid(
                    keys.span_of(&key),
                    with_key(Some(&key), "is not a line number: `0`"),
                    HAND_EDITED,
                ));
            }
        }
        Ok(lock)
    }
}

const REFREEZE: &str = "the lockfile is damaged; re-create it with `imagelock freeze`";
const HAND_EDITED: &str =
    "lockfiles are written by `imagelock freeze`; re-create it rather than editing it by hand";

/// `message` about the value at `key`: `` `steps[0].line` is not … ``.
fn with_key(key: Option<&str>, message: &str) -> String {
    match key {
        Some(key)
            if ["is ", "has ", "contains "]
                .iter()
                .any(|verb| message.starts_with(verb)) =>
        {
            format!("`{key}` {message}")
        }
        Some(key) => format!("`{key}`: {message}"),
        None => message.to_string(),
    }
}

/// A value's message and its own hint, if it has one.
fn split_hint(message: &str) -> (String, Option<&str>) {
    match message.split_once("\nhint: ") {
        Some((m, h)) => (m.to_string(), Some(h.trim_end())),
        None => (message.trim_end().to_string(), None),
    }
}

/// Where each key and value of a TOML text is: its dotted path
/// (`steps[0].pypi[3].version`) and byte span.
struct KeyMap<'t> {
    entries: Vec<KeyEntry<'t>>,
}

struct KeyEntry<'t> {
    path: String,
    span: std::ops::Range<usize>,
    /// The string, for string values.
    text: Option<&'t str>,
}

impl<'t> KeyMap<'t> {
    fn of(text: &'t str) -> KeyMap<'t> {
        let mut map = KeyMap {
            entries: Vec::new(),
        };
        if let Ok(doc) = toml_edit::Document::parse(text) {
            map.table(text, "", doc.as_table());
        }
        map
    }

    fn join(prefix: &str, key: &str) -> String {
        if prefix.is_empty() {
            key.to_string()
        } else {
            format!("{prefix}.{key}")
        }
    }

    fn table(&mut self, text: &'t str, prefix: &str, table: &toml_edit::Table) {
        if let Some(span) = table.span() {
            self.push(text, prefix.to_string(), span, false);
        }
        for (key, item) in table.iter() {
            let path = Self::join(prefix, key);
            if let Some(span) = table.key(key).and_then(toml_edit::Key::span) {
                self.push(text, path.clone(), span, false);
            }
            self.item(text, &path, item);
        }
    }

    fn item(&mut self, text: &'t str, path: &str, item: &toml_edit::Item) {
        match item {
            toml_edit::Item::Value(v) => self.value(text, path, v),
            toml_edit::Item::Table(t) => self.table(text, path, t),
            toml_edit::Item::ArrayOfTables(a) => {
                for (i, t) in a.iter().enumerate() {
                    self.table(text, &format!("{path}[{i}]"), t);
                }
            }
            toml_edit::Item::None => {}
        }
    }

    fn value(&mut self, text: &'t str, path: &str, value: &toml_edit::Value) {
        if let Some(span) = value.span() {
            self.push(text, path.to_string(), span, value.is_str());
        }
        match value {
            toml_edit::Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    self.value(text, &format!("{path}[{i}]"), v);
                }
            }
            toml_edit::Value::InlineTable(t) => {
                for (key, v) in t.iter() {
                    self.value(text, &Self::join(path, key), v);
                }
            }
            _ => {}
        }
    }

    fn push(&mut self, text: &'t str, path: String, span: std::ops::Range<usize>, string: bool) {
        let raw = text.get(span.clone());
        // The decoded string is what matters (`\n` escapes are newlines);
        // keep the raw text and decode on demand.
        self.entries.push(KeyEntry {
            path,
            span,
            text: raw.filter(|_| string),
        });
    }

    /// The innermost key or value at `offset`; else the last before it.
    fn key_at(&self, offset: usize) -> Option<&str> {
        self.entries
            .iter()
            .filter(|e| e.span.start <= offset && offset < e.span.end.max(e.span.start + 1))
            .min_by_key(|e| e.span.len())
            .or_else(|| {
                self.entries
                    .iter()
                    .filter(|e| e.span.start <= offset)
                    .max_by_key(|e| e.span.start)
            })
            .map(|e| e.path.as_str())
            .filter(|p| !p.is_empty())
    }

    fn span_of(&self, path: &str) -> Option<std::ops::Range<usize>> {
        self.entries
            .iter()
            .find(|e| e.path == path)
            .map(|e| e.span.clone())
    }

    /// The first string value holding a control character (after escapes
    /// are decoded): its key, span and value.
    fn first_control_character(&self) -> Option<(&str, std::ops::Range<usize>, String)> {
        self.entries.iter().find_map(|e| {
            let raw = e.text?;
            let decoded: String = toml::from_str::<toml::Table>(&format!("v = {raw}"))
                .ok()
                .and_then(|t| t.get("v").and_then(|v| v.as_str().map(str::to_string)))
                .unwrap_or_else(|| raw.to_string());
            has_control(&decoded).then(|| (e.path.as_str(), e.span.clone(), decoded))
        })
    }
}

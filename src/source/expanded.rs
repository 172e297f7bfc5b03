//! A text of a definition file with its value after expansion.

use serde::Serialize;

use crate::diagnostic::Span;

/// A text from the file together with its value after variable expansion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Expanded {
    /// The bytes as written.
    pub written: String,
    /// The value after expansion; `None` when a variable had no value.
    pub value: Option<String>,
    /// Variables that had no value (so the text could not be expanded).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unresolved: Vec<String>,
    pub span: Span,
}

//! The one renderer of errors that point into a file: the location, the
//! message, the line with a caret under the span, and the hint.

use std::fmt::Write as _;

use crate::diagnostic::{Diagnostic, LineIndex};
use crate::drift::DriftError;
use crate::freeze::FreezeError;
use crate::source::environment::ParseEnvironmentError;
use crate::source::load::{MAX_DEFINITION_SIZE, SourceError};
use crate::source::requirements::ParseRequirementsError;
use crate::verify::VerifyError;

/// The diagnostic of an error about a place in a definition, requirements
/// or environment file, wherever the library wrapped it.
pub fn located(err: &anyhow::Error) -> Option<&Diagnostic> {
    fn of_freeze(e: &FreezeError) -> Option<&Diagnostic> {
        match e {
            FreezeError::Lock(_) => None,
            other => other.diagnostic(),
        }
    }
    err.chain().find_map(|cause| {
        if let Some(e) = cause.downcast_ref::<SourceError>() {
            e.diagnostic()
        } else if let Some(e) = cause.downcast_ref::<FreezeError>() {
            of_freeze(e)
        } else if let Some(e) = cause.downcast_ref::<DriftError>() {
            match e {
                DriftError::Freeze(e) => of_freeze(e),
                _ => None,
            }
        } else if let Some(e) = cause.downcast_ref::<VerifyError>() {
            match e {
                VerifyError::Source(e) => e.diagnostic(),
                _ => None,
            }
        } else if let Some(e) = cause.downcast_ref::<ParseRequirementsError>() {
            Some(&e.0)
        } else if let Some(ParseEnvironmentError::Invalid(d)) =
            cause.downcast_ref::<ParseEnvironmentError>()
        {
            Some(d)
        } else {
            None
        }
    })
}

/// A diagnostic with the line of its file it points at (re-read for
/// context; too large or unreadable files get no snippet).
pub fn render_located(d: &Diagnostic, color: bool) -> String {
    let text = fs_err::metadata(&d.location.path)
        .ok()
        .filter(|m| m.len() <= MAX_DEFINITION_SIZE)
        .and_then(|_| fs_err::read(&d.location.path).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    render(d, text.as_deref(), color)
}

/// `error: path:line:col: message`, a source snippet and `hint: …`.
pub fn render_source_error(err: &SourceError, color: bool) -> String {
    match err.diagnostic() {
        Some(d) => render_located(d, color),
        None => {
            let text = err.to_string();
            let mut out = String::new();
            let mut lines = text.lines();
            if let Some(first) = lines.next() {
                let _ = writeln!(out, "{}: {first}", paint("error", "31", color));
            }
            for line in lines {
                match line.strip_prefix("hint: ") {
                    Some(h) => _ = writeln!(out, "{}: {h}", paint("hint", "36", color)),
                    None => _ = writeln!(out, "{line}"),
                }
            }
            out
        }
    }
}

/// Renders one diagnostic; `text` is the file's content when available.
pub fn render(d: &Diagnostic, text: Option<&str>, color: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {}: {}",
        paint("error", "31", color),
        d.location,
        d.message
    );
    if let Some(text) = text.filter(|t| d.span.start <= t.len() && !t.contains('\0')) {
        let index = LineIndex::new(text);
        let line_no = d.location.line;
        let start = index.line_start(line_no).unwrap_or(0).min(text.len());
        let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let line = text[start..end].trim_end_matches('\r');
        let gutter = line_no.to_string();
        let pad = " ".repeat(gutter.len());
        let col = d.location.column.saturating_sub(1);
        let width = text
            .get(d.span.start..d.span.end.min(end).max(d.span.start))
            .map_or(1, |s| s.chars().count().max(1));
        let shown: String = line
            .chars()
            .map(|c| if c == '\t' { ' ' } else { c })
            .collect();
        let _ = writeln!(out, "{pad} |");
        let _ = writeln!(out, "{gutter} | {shown}");
        let _ = writeln!(
            out,
            "{pad} | {}{}",
            " ".repeat(col),
            paint(&"^".repeat(width), "31", color)
        );
    }
    if let Some(h) = &d.hint {
        let _ = writeln!(out, "{}: {h}", paint("hint", "36", color));
    }
    out
}

fn paint(text: &str, code: &str, color: bool) -> String {
    if color {
        format!("\x1b[1;{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::requirements::RequirementsFile;

    #[test]
    fn a_requirements_error_inside_a_freeze_error_is_rendered_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("requirements.txt");
        let text = "numpy==2.0\n--index-url\n";
        fs_err::write(&path, text).unwrap();
        let parsed = RequirementsFile::parse(&path, text, &|_| None).unwrap_err();
        let err = anyhow::Error::from(FreezeError::from(parsed))
            .context("freezing `driver`")
            .context("drift");
        let d = located(&err).expect("the place survives the wrapping");
        assert_eq!(d.location.line, 2);
        let shown = render_located(d, false);
        assert!(shown.contains("2 | --index-url"), "{shown}");
        assert!(shown.contains("  | ^"), "{shown}");
    }

    #[test]
    fn errors_without_a_place_have_no_diagnostic() {
        let err = anyhow::Error::from(DriftError::AsOf("someday".into()));
        assert!(located(&err).is_none());
    }
}

//! Edits on a text: byte spans and what replaces them.

use crate::diagnostic::Span;

/// Replace the bytes of `span` with `replacement` (an empty span inserts).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Edit {
    pub span: Span,
    pub replacement: String,
}

impl Edit {
    pub fn new(span: Span, replacement: impl Into<String>) -> Self {
        Self {
            span,
            replacement: replacement.into(),
        }
    }

    /// An insertion at `at`.
    pub fn insert(at: usize, text: impl Into<String>) -> Self {
        Self::new(Span::new(at, at), text)
    }
}

/// Edits that cannot be applied together.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("edits at bytes {}..{} and {}..{} overlap", a.start, a.end, b.start, b.end)]
    Overlap { a: Span, b: Span },
    #[error("edit at bytes {}..{} is outside the text or splits a character", span.start, span.end)]
    OutOfRange { span: Span },
}

/// Applies `edits` to `text`. Identical edits count once; any other overlap
/// (two insertions at one place included) is refused, so the result never
/// depends on the order edits were made in. Bytes outside the spans are
/// copied unchanged.
pub fn apply(text: &str, edits: &[Edit]) -> Result<String, EditError> {
    let edits = normalize(text, edits)?;
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for e in &edits {
        out.push_str(&text[at..e.span.start]);
        out.push_str(&e.replacement);
        at = e.span.end;
    }
    out.push_str(&text[at..]);
    Ok(out)
}

/// Sorted, deduplicated, checked edits; edits that change nothing dropped.
pub fn normalize(text: &str, edits: &[Edit]) -> Result<Vec<Edit>, EditError> {
    let mut edits: Vec<Edit> = edits
        .iter()
        .filter(|e| text.get(e.span.start..e.span.end) != Some(e.replacement.as_str()))
        .cloned()
        .collect();
    for e in &edits {
        if e.span.start > e.span.end
            || !text.is_char_boundary(e.span.start)
            || !text.is_char_boundary(e.span.end)
        {
            return Err(EditError::OutOfRange { span: e.span });
        }
    }
    edits.sort();
    edits.dedup();
    for pair in edits.windows(2) {
        let (a, b) = (pair[0].span, pair[1].span);
        let overlap = b.start < a.end || (a == b && a.is_empty());
        if overlap {
            return Err(EditError::Overlap { a, b });
        }
    }
    Ok(edits)
}

/// Whether `after` is `before` with only the spans of `edits` changed: the
/// check every rewrite result passes (used by tests and debug builds).
pub fn only_spans_changed(before: &str, after: &str, edits: &[Edit]) -> bool {
    let Ok(edits) = normalize(before, edits) else {
        return false;
    };
    let mut b = 0;
    let mut a = 0;
    for e in &edits {
        let keep = e.span.start - b;
        if after.get(a..a + keep) != before.get(b..e.span.start) {
            return false;
        }
        a += keep;
        if after.get(a..a + e.replacement.len()) != Some(e.replacement.as_str()) {
            return false;
        }
        a += e.replacement.len();
        b = e.span.end;
    }
    after.get(a..) == before.get(b..)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn applies_in_span_order_whatever_the_given_order() {
        let text = "FROM a\nFROM b\n";
        let edits = [
            Edit::new(Span::new(12, 13), "b@sha256:2"),
            Edit::new(Span::new(5, 6), "a@sha256:1"),
        ];
        assert_eq!(
            apply(text, &edits).expect("applies"),
            "FROM a@sha256:1\nFROM b@sha256:2\n"
        );
        assert!(only_spans_changed(
            text,
            "FROM a@sha256:1\nFROM b@sha256:2\n",
            &edits
        ));
    }

    #[test]
    fn overlaps_are_refused_and_duplicates_merged() {
        let text = "abcdef";
        let e = |s, t, r: &str| Edit::new(Span::new(s, t), r);
        assert!(matches!(
            apply(text, &[e(0, 3, "x"), e(2, 4, "y")]),
            Err(EditError::Overlap { .. })
        ));
        assert!(matches!(
            apply(text, &[e(1, 1, "x"), e(1, 1, "y")]),
            Err(EditError::Overlap { .. })
        ));
        assert_eq!(
            apply(text, &[e(1, 2, "X"), e(1, 2, "X")]).expect("applies"),
            "aXcdef"
        );
        // An insertion right before a replacement is fine.
        assert_eq!(
            apply(text, &[e(2, 2, "+"), e(2, 3, "C")]).expect("applies"),
            "ab+Cdef"
        );
        assert!(matches!(
            apply("é", &[e(1, 1, "x")]),
            Err(EditError::OutOfRange { .. })
        ));
        assert!(matches!(
            apply(text, &[e(5, 9, "x")]),
            Err(EditError::OutOfRange { .. })
        ));
    }

    proptest! {
        #[test]
        fn no_edits_give_the_input_back(text in "(?s).{0,200}") {
            prop_assert_eq!(apply(&text, &[]).expect("applies"), text);
        }

        #[test]
        fn bytes_outside_edits_never_change(
            text in "[a-z \\n\\r\\\\`]{1,120}",
            cuts in proptest::collection::vec((0usize..120, 0usize..6, "[A-Z@:]{0,8}"), 0..6),
        ) {
            // Build non-overlapping edits from the cuts.
            let mut edits: Vec<Edit> = Vec::new();
            for (start, len, rep) in cuts {
                let start = start.min(text.len());
                let end = (start + len).min(text.len());
                let span = Span::new(start, end);
                let clash = edits.iter().any(|e| {
                    span.start < e.span.end && e.span.start < span.end
                        || span.start == e.span.start
                        || span.end == e.span.start && span.is_empty()
                        || e.span.end == span.start && e.span.is_empty()
                });
                if !clash {
                    edits.push(Edit::new(span, rep));
                }
            }
            let out = apply(&text, &edits).expect("non-overlapping edits apply");
            prop_assert!(only_spans_changed(&text, &out, &edits));
        }
    }
}

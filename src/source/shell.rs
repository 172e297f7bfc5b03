//! Shell text as the shell sees it, mapped back to the file it came from.
//!
//! A `RUN` instruction reaches the shell with line continuations removed
//! and comment lines inside it dropped; a heredoc body reaches it as is.
//! [`Script`] is that text, built from pieces of the file, so that every
//! span found in it can be turned back into a span of the file.

use crate::diagnostic::Span;

/// Shell text assembled from pieces of a file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Script {
    text: String,
    /// Pieces in text order: (start in `text`, start in the file, length).
    pieces: Vec<(usize, usize, usize)>,
}

impl Script {
    pub fn new() -> Self {
        Self::default()
    }

    /// A script that is one contiguous piece of the file.
    pub fn from_file_piece(text: &str, file_offset: usize) -> Self {
        let mut s = Self::new();
        s.push(text, file_offset);
        s
    }

    /// Appends `text`, which is found in the file at `file_offset`.
    pub fn push(&mut self, text: &str, file_offset: usize) {
        if text.is_empty() {
            return;
        }
        self.pieces.push((self.text.len(), file_offset, text.len()));
        self.text.push_str(text);
    }

    /// The text the shell sees.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The file offset of a byte of the text. An offset at the end of a piece
    /// maps to the end of that piece in the file.
    pub fn file_offset(&self, text_offset: usize) -> usize {
        let i = self
            .pieces
            .partition_point(|&(start, _, _)| start <= text_offset);
        match i.checked_sub(1) {
            Some(i) => {
                let (start, file, len) = self.pieces[i];
                file + (text_offset - start).min(len)
            }
            None => self.pieces.first().map_or(text_offset, |p| p.1),
        }
    }

    /// The file span of a span of the text. The end maps through the byte
    /// before it, so a span ending at a piece boundary ends in that piece.
    pub fn file_span(&self, span: Span) -> Span {
        let start = self.file_offset(span.start);
        let end = if span.is_empty() {
            start
        } else {
            self.file_offset(span.end - 1) + 1
        };
        Span::new(start, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_across_a_removed_continuation() {
        // RUN pip install a \
        //     b
        let file = "RUN pip install a \\\n    b\n";
        let mut s = Script::new();
        s.push("pip install a ", 4);
        s.push("    b", 20);
        assert_eq!(s.text(), "pip install a     b");
        let b = s.text().find('b').unwrap();
        let fs = s.file_span(Span::new(b, b + 1));
        assert_eq!(&file[fs.start..fs.end], "b");
        let a = s.text().find('a').unwrap();
        let fs = s.file_span(Span::new(a, a + 1));
        assert_eq!(&file[fs.start..fs.end], "a");
        // A span covering both pieces covers the continuation in the file.
        let fs = s.file_span(Span::new(0, s.text().len()));
        assert_eq!(&file[fs.start..fs.end], "pip install a \\\n    b");
    }
}

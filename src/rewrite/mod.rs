//! Span-based edits of definition files and atomic writes.

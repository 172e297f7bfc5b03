//! The lossless syntax layer: a Dockerfile as BuildKit's parser splits it.
//!
//! The file is cut into [`Item`]s that tile it exactly (directives, comment
//! lines, blank lines, instructions with their continuation lines and
//! heredoc bodies), so printing the items gives the file back byte for byte
//! and a rewrite can replace one span and leave every other byte alone.
//!
//! The rules follow BuildKit's `frontend/dockerfile/parser`: parser
//! directives only before anything else; the escape character continues a
//! line when only spaces or tabs follow it; comment lines and blank lines
//! inside a continued instruction are dropped; heredocs (`<<EOF`, `<<-EOF`,
//! quoted delimiters) follow `RUN`, `COPY` and `ADD`.

use crate::diagnostic::Span;
use crate::source::shell::Script;

/// A syntax error: where and what, with an optional hint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    pub span: Span,
    pub message: String,
    pub hint: Option<String>,
}

impl SyntaxError {
    pub(crate) fn new(span: Span, message: impl Into<String>) -> Self {
        Self {
            span,
            message: message.into(),
            hint: None,
        }
    }

    #[must_use]
    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// A parsed Dockerfile: its directives and the items that tile the file.
#[derive(Clone, Debug)]
pub struct Syntax {
    pub directives: Vec<Directive>,
    /// The escape character (`\` unless `# escape=` says otherwise).
    pub escape: char,
    pub items: Vec<Item>,
}

impl Syntax {
    /// The file again, from the items: equal to the parsed text.
    pub fn print(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for item in &self.items {
            out.push_str(&text[item.span.start..item.span.end]);
        }
        out
    }

    /// The instructions in file order.
    pub fn instructions(&self) -> impl Iterator<Item = &Instruction> {
        self.items.iter().filter_map(|i| match &i.kind {
            ItemKind::Instruction(ins) => Some(&**ins),
            _ => None,
        })
    }
}

/// A parser directive: `# name=value` at the top of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directive {
    /// Lowercase: `syntax`, `escape` or `check`.
    pub name: String,
    pub value: String,
    pub value_span: Span,
}

/// A piece of the file: whole lines, newline included.
#[derive(Clone, Debug)]
pub struct Item {
    pub span: Span,
    pub kind: ItemKind,
}

#[derive(Clone, Debug)]
pub enum ItemKind {
    /// Index into [`Syntax::directives`].
    Directive(usize),
    Comment,
    Blank,
    Instruction(Box<Instruction>),
}

/// One instruction, with the logical line BuildKit builds from its physical
/// lines.
#[derive(Clone, Debug)]
pub struct Instruction {
    /// From the keyword to the end of the last line (heredoc terminator
    /// included), without the final newline.
    pub span: Span,
    /// The logical line: continuation characters, and comment and blank
    /// lines inside the instruction, removed. Offsets map back to the file.
    pub line: Script,
    /// Lowercase keyword (`from`, `run`…).
    pub keyword: String,
    pub keyword_span: Span,
    /// `--name[=value]` flags before the arguments.
    pub flags: Vec<Flag>,
    /// The arguments after the flags: a range of `line`'s text (trailing
    /// whitespace excluded).
    pub args: std::ops::Range<usize>,
    /// The arguments in JSON (exec) form, when they parse as a JSON array
    /// of strings.
    pub json: Option<Vec<JsonArg>>,
    pub heredocs: Vec<Heredoc>,
    /// `ONBUILD`: the instruction it registers.
    pub onbuild: Option<Box<Instruction>>,
}

impl Instruction {
    /// The argument text (after flags).
    pub fn args_text(&self) -> &str {
        &self.line.text()[self.args.clone()]
    }

    /// The file span of a range of the logical line.
    pub fn file_span(&self, range: std::ops::Range<usize>) -> Span {
        self.line.file_span(Span::new(range.start, range.end))
    }

    pub fn flag(&self, name: &str) -> Option<&Flag> {
        self.flags.iter().find(|f| f.name == name)
    }
}

/// `--name=value` (or `--name`) before an instruction's arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flag {
    pub name: String,
    /// The value with quotes and escapes removed.
    pub value: Option<String>,
    /// The value as written, in the logical line.
    pub raw_value: Option<std::ops::Range<usize>>,
    /// The whole flag in the file.
    pub span: Span,
    /// The value in the file.
    pub value_span: Option<Span>,
}

/// One string of a JSON (exec form) argument list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonArg {
    pub value: String,
    /// The string in the file, quotes included.
    pub span: Span,
}

/// A heredoc: `<<EOF` … `EOF`.
#[derive(Clone, Debug)]
pub struct Heredoc {
    /// The delimiter word, unquoted.
    pub name: String,
    /// `<<-`: leading tabs are stripped from the body and terminator.
    pub chomp: bool,
    /// The delimiter was quoted: the body is not expanded.
    pub quoted: bool,
    /// The `<<EOF` word in the file.
    pub word_span: Span,
    /// The body as the builder sees it (tabs stripped for `<<-`), mapped
    /// to the file; every line ends with a newline.
    pub body: Script,
    /// The body lines in the file.
    pub body_span: Span,
}

/// A physical line: `start..end` is the content (no `\n`, no trailing `\r`),
/// `next` where the following line starts.
#[derive(Clone, Copy, Debug)]
struct Line {
    start: usize,
    end: usize,
    next: usize,
}

fn split_lines(text: &str) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let (end, next) = match text[start..].find('\n') {
            Some(i) => (start + i, start + i + 1),
            None => (text.len(), text.len()),
        };
        let end = if text[start..end].ends_with('\r') {
            end - 1
        } else {
            end
        };
        lines.push(Line { start, end, next });
        start = next;
    }
    lines
}

const BOM: &str = "\u{feff}";

fn is_space(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Parses a Dockerfile into its lossless syntax.
pub fn parse(text: &str) -> Result<Syntax, SyntaxError> {
    let lines = split_lines(text);
    let mut directives: Vec<Directive> = Vec::new();
    let mut escape = '\\';
    let mut items = Vec::new();
    let mut directives_done = false;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let mut start = line.start;
        if start == 0 && text.starts_with(BOM) {
            start = BOM.len().min(line.end);
        }
        let content = &text[start..line.end];
        let item_start = line.start;
        if !directives_done {
            match directive(content, start)? {
                Some(d) => {
                    if directives.iter().any(|e| e.name == d.name) {
                        return Err(SyntaxError::new(
                            Span::new(start, line.end),
                            format!("only one `{}` parser directive can be used", d.name),
                        ));
                    }
                    if d.name == "escape" {
                        escape = check_escape(&d)?;
                    } else if d.name == "check" {
                        check_check(&d)?;
                    }
                    directives.push(d);
                    items.push(Item {
                        span: Span::new(item_start, line.next),
                        kind: ItemKind::Directive(directives.len() - 1),
                    });
                    i += 1;
                    continue;
                }
                None => directives_done = true,
            }
        }
        let trimmed = content.trim_start_matches(is_space);
        if trimmed.is_empty() {
            items.push(Item {
                span: Span::new(item_start, line.next),
                kind: ItemKind::Blank,
            });
            i += 1;
            continue;
        }
        if trimmed.starts_with('#') {
            items.push(Item {
                span: Span::new(item_start, line.next),
                kind: ItemKind::Comment,
            });
            i += 1;
            continue;
        }
        // An instruction: its first line, then continuation lines.
        let first = line.end - trimmed.len();
        let mut script = Script::new();
        let (piece, mut continued) = trim_continuation(trimmed, escape);
        script.push(piece, first);
        let mut last = i;
        let mut j = i + 1;
        while continued && j < lines.len() {
            let l = lines[j];
            let raw = &text[l.start..l.end];
            let lead = raw.trim_start_matches(is_space);
            last = j;
            j += 1;
            if lead.starts_with('#') || lead.is_empty() {
                continue;
            }
            let (piece, c) = trim_continuation(raw, escape);
            script.push(piece, l.start);
            continued = c;
        }
        if script.text().trim().is_empty() {
            // Only an escape character and nothing after it.
            items.push(Item {
                span: Span::new(item_start, lines[last].next),
                kind: ItemKind::Blank,
            });
            i = j;
            continue;
        }
        let mut ins = instruction(script, 0)?;
        let mut end = lines[last].end;
        if matches!(ins.keyword.as_str(), "run" | "copy" | "add") && ins.json.is_none() {
            for (word, name, chomp, quoted) in heredoc_words(&ins, escape) {
                let body_start = lines.get(j).map_or(text.len(), |l| l.start);
                let mut body = Script::new();
                let mut terminated = false;
                while j < lines.len() {
                    let l = lines[j];
                    j += 1;
                    let raw = &text[l.start..l.end];
                    let stripped = if chomp {
                        raw.trim_start_matches('\t')
                    } else {
                        raw
                    };
                    if stripped == name {
                        terminated = true;
                        end = l.end;
                        last = j - 1;
                        break;
                    }
                    let off = l.end - stripped.len();
                    body.push(stripped, off);
                    body.push("\n", l.end.min(text.len().saturating_sub(1)));
                    end = l.end;
                    last = j - 1;
                }
                if !terminated {
                    return Err(
                        SyntaxError::new(word, format!("unterminated heredoc `{name}`")).hint(
                            format!("end the heredoc with a line that is exactly `{name}`"),
                        ),
                    );
                }
                let body_end = lines[last].start;
                ins.heredocs.push(Heredoc {
                    name,
                    chomp,
                    quoted,
                    word_span: word,
                    body,
                    body_span: Span::new(body_start, body_end.max(body_start)),
                });
            }
        }
        ins.span = Span::new(first, end);
        items.push(Item {
            span: Span::new(item_start, lines[last].next),
            kind: ItemKind::Instruction(Box::new(ins)),
        });
        i = last + 1;
    }
    Ok(Syntax {
        directives,
        escape,
        items,
    })
}

/// `# name=value` with a known name (BuildKit's `reDirective`: letters
/// and digits, spaces allowed around `=`, the value not empty).
fn directive(content: &str, offset: usize) -> Result<Option<Directive>, SyntaxError> {
    let lead = content.trim_start_matches(is_space);
    let Some(rest) = lead.strip_prefix('#') else {
        return Ok(None);
    };
    let rest = rest.trim_start_matches(char::is_whitespace);
    let name_len = rest
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map_or(rest.len(), |(i, _)| i);
    if name_len == 0 {
        return Ok(None);
    }
    let name = rest[..name_len].to_ascii_lowercase();
    let after = rest[name_len..].trim_start_matches(char::is_whitespace);
    let Some(value) = after.strip_prefix('=') else {
        return Ok(None);
    };
    let value_lead = value.trim_start_matches(char::is_whitespace);
    let value_trim = value_lead.trim_end_matches(char::is_whitespace);
    if value_trim.is_empty() || !matches!(name.as_str(), "syntax" | "escape" | "check") {
        return Ok(None);
    }
    let start = offset + (content.len() - value_lead.len());
    Ok(Some(Directive {
        name,
        value: value_trim.to_string(),
        value_span: Span::new(start, start + value_trim.len()),
    }))
}

fn check_escape(d: &Directive) -> Result<char, SyntaxError> {
    match d.value.as_str() {
        "\\" => Ok('\\'),
        "`" => Ok('`'),
        other => Err(
            SyntaxError::new(d.value_span, format!("invalid escape character `{other}`"))
                .hint("the escape directive takes `\\` or a backtick"),
        ),
    }
}

/// `# check=skip=A,B;error=true` as BuildKit's linter reads it.
fn check_check(d: &Directive) -> Result<(), SyntaxError> {
    for part in d.value.split(';') {
        let part = part.trim();
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        let ok = match key.trim() {
            "skip" => !value.trim().is_empty(),
            "error" => matches!(value.trim(), "true" | "false"),
            _ => false,
        };
        if !ok {
            return Err(SyntaxError::new(
                d.value_span,
                format!("invalid check directive `{part}`"),
            )
            .hint(
                "write `# check=skip=RULE[,RULE…]` and/or `error=true|false`, separated by `;`",
            ));
        }
    }
    Ok(())
}

/// Removes a continuation escape (followed only by spaces or tabs) from the
/// end of a line; says whether there was one.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches(is_space);
    match t.strip_suffix(escape) {
        Some(rest) => (rest, true),
        None => (line, false),
    }
}

/// Parses keyword, flags and arguments of the logical line from `start`.
fn instruction(line: Script, start: usize) -> Result<Instruction, SyntaxError> {
    let text = line.text();
    let kw_start = start + (text[start..].len() - text[start..].trim_start().len());
    let kw_end = text[kw_start..]
        .find(char::is_whitespace)
        .map_or(text.len(), |i| kw_start + i);
    let keyword = text[kw_start..kw_end].to_ascii_lowercase();
    let keyword_span = line.file_span(Span::new(kw_start, kw_end));
    let (flags_raw, args_start) = builder_flags(text, kw_end).map_err(|mut e| {
        e.span = line.file_span(e.span);
        e
    })?;
    let args_end = args_start + text[args_start..].trim_end().len();
    let flags = flags_raw
        .into_iter()
        .map(|f| Flag {
            span: line.file_span(Span::new(f.range.start, f.range.end)),
            value_span: f
                .raw_value
                .as_ref()
                .map(|r| line.file_span(Span::new(r.start, r.end))),
            name: f.name,
            value: f.value,
            raw_value: f.raw_value,
        })
        .collect();
    let json = if matches!(
        keyword.as_str(),
        "run" | "cmd" | "entrypoint" | "shell" | "copy" | "add" | "volume"
    ) {
        json_array(&text[args_start..args_end]).map(|args| {
            args.into_iter()
                .map(|(value, r)| JsonArg {
                    value,
                    span: line.file_span(Span::new(args_start + r.start, args_start + r.end)),
                })
                .collect()
        })
    } else {
        None
    };
    let onbuild = if keyword == "onbuild" && args_start < args_end {
        let mut inner = instruction(line.clone(), args_start)?;
        inner.span = inner
            .keyword_span
            .to(line.file_span(Span::new(args_end - 1, args_end)));
        Some(Box::new(inner))
    } else {
        None
    };
    let span = line.file_span(Span::new(kw_start, args_end.max(kw_end)));
    Ok(Instruction {
        span,
        line,
        keyword,
        keyword_span,
        flags,
        args: args_start..args_end,
        json,
        heredocs: Vec::new(),
        onbuild,
    })
}

struct RawFlag {
    name: String,
    value: Option<String>,
    raw_value: Option<std::ops::Range<usize>>,
    range: std::ops::Range<usize>,
}

/// BuildKit's `extractBuilderFlags`: `--name[=value]` words at the start of
/// the arguments; quotes group, `\` escapes. Returns the flags and where the
/// arguments start. Unlike BuildKit, an unterminated quote is an error
/// rather than a value that runs to the end of the line.
fn builder_flags(text: &str, from: usize) -> Result<(Vec<RawFlag>, usize), SyntaxError> {
    let mut flags = Vec::new();
    let mut pos = from;
    loop {
        while pos < text.len() && text[pos..].starts_with(char::is_whitespace) {
            pos += text[pos..].chars().next().map_or(1, char::len_utf8);
        }
        if !text[pos..].starts_with("--") {
            return Ok((flags, pos));
        }
        let start = pos;
        let mut word = String::new();
        let mut quote: Option<(char, usize)> = None;
        while pos < text.len() {
            let c = text[pos..].chars().next().unwrap_or(' ');
            let w = c.len_utf8();
            match quote {
                None if c.is_whitespace() => break,
                None if c == '\'' || c == '"' => quote = Some((c, pos)),
                Some((q, _)) if c == q => quote = None,
                _ if c == '\\' && pos + 1 < text.len() && quote.is_none_or(|(q, _)| q != '\'') => {
                    pos += 1;
                    let n = text[pos..].chars().next().unwrap_or(' ');
                    word.push(n);
                    pos += n.len_utf8();
                    continue;
                }
                _ => word.push(c),
            }
            pos += w;
        }
        if let Some((q, at)) = quote {
            return Err(SyntaxError::new(
                Span::new(at, at + 1),
                format!("unterminated {q} quote in flag"),
            )
            .hint(format!("close the quote with a matching {q}")));
        }
        if word == "--" {
            return Ok((flags, pos));
        }
        let body = &word[2..];
        let raw = &text[start + 2..pos];
        let (name, value, raw_value) = match body.split_once('=') {
            Some((n, v)) => {
                let eq = raw.find('=').map_or(0, |i| i + 1);
                (
                    n.to_string(),
                    Some(v.to_string()),
                    Some(start + 2 + eq..pos),
                )
            }
            None => (body.to_string(), None, None),
        };
        flags.push(RawFlag {
            name,
            value,
            raw_value,
            range: start..pos,
        });
    }
}

/// The strings of a JSON array of strings, each with its range (quotes
/// included); `None` when the text is not one.
pub(crate) fn json_array(text: &str) -> Option<Vec<(String, std::ops::Range<usize>)>> {
    let mut out = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    let ws = |i: &mut usize| {
        while *i < b.len() && matches!(b[*i], b' ' | b'\t' | b'\n' | b'\r') {
            *i += 1;
        }
    };
    ws(&mut i);
    if b.get(i) != Some(&b'[') {
        return None;
    }
    i += 1;
    ws(&mut i);
    if b.get(i) == Some(&b']') {
        i += 1;
        ws(&mut i);
        return (i == b.len()).then_some(out);
    }
    loop {
        ws(&mut i);
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let start = i;
        i += 1;
        let mut s = String::new();
        loop {
            let c = text.get(i..)?.chars().next()?;
            match c {
                '"' => {
                    i += 1;
                    break;
                }
                '\\' => {
                    let e = *b.get(i + 1)?;
                    i += 2;
                    match e {
                        b'"' => s.push('"'),
                        b'\\' => s.push('\\'),
                        b'/' => s.push('/'),
                        b'b' => s.push('\u{8}'),
                        b'f' => s.push('\u{c}'),
                        b'n' => s.push('\n'),
                        b'r' => s.push('\r'),
                        b't' => s.push('\t'),
                        b'u' => {
                            let hex = text.get(i..i + 4)?;
                            let v = u32::from_str_radix(hex, 16).ok()?;
                            i += 4;
                            s.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                        }
                        _ => return None,
                    }
                }
                c if (c as u32) < 0x20 => return None,
                c => {
                    s.push(c);
                    i += c.len_utf8();
                }
            }
        }
        out.push((s, start..i));
        ws(&mut i);
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b']') => {
                i += 1;
                ws(&mut i);
                return (i == b.len()).then_some(out);
            }
            _ => return None,
        }
    }
}

/// Words of the argument text split the way BuildKit's `parseWords` does:
/// whitespace outside quotes separates; words keep their quotes and
/// escapes. Ranges into `text`.
pub(crate) fn words(text: &str, escape: char) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut quote: Option<char> = None;
    let mut it = text.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        match (start, quote) {
            (None, _) if c.is_whitespace() => continue,
            (None, _) => {
                start = Some(i);
                if c == '\'' || c == '"' {
                    quote = Some(c);
                } else if c == escape {
                    it.next();
                }
            }
            (Some(s), None) => {
                if c.is_whitespace() {
                    out.push(s..i);
                    start = None;
                } else if c == '\'' || c == '"' {
                    quote = Some(c);
                } else if c == escape {
                    it.next();
                }
            }
            (Some(_), Some(q)) => {
                if c == q {
                    quote = None;
                } else if c == escape && q != '\'' {
                    it.next();
                }
            }
        }
    }
    if let Some(s) = start {
        out.push(s..text.len());
    }
    out
}

/// Heredoc words of an instruction's arguments: (span of the word in the
/// file, delimiter, chomp, quoted). BuildKit's `heredocsFromLine`: a word
/// `[n]<<[-]WORD` with a non-empty single-word delimiter.
fn heredoc_words(ins: &Instruction, escape: char) -> Vec<(Span, String, bool, bool)> {
    let text = ins.args_text();
    if !text.contains("<<") {
        return Vec::new();
    }
    let mut out = Vec::new();
    for r in words(text, '\\') {
        let w = &text[r.clone()];
        let digits = w.len() - w.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let Some(rest) = w[digits..].strip_prefix("<<") else {
            continue;
        };
        let (chomp, rest) = match rest.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, rest),
        };
        if rest.is_empty() || rest.contains('<') {
            continue;
        }
        let Some(name) = unquote_word(rest, '\\') else {
            continue;
        };
        if name.is_empty() || name.chars().any(char::is_whitespace) {
            continue;
        }
        let quoted = rest.contains(['\'', '"']);
        let _ = escape;
        let span = ins.file_span(ins.args.start + r.start..ins.args.start + r.end);
        out.push((span, name, chomp, quoted));
    }
    out
}

/// Removes quotes and escapes from one word; `None` for an unterminated quote.
pub(crate) fn unquote_word(word: &str, escape: char) -> Option<String> {
    let mut out = String::new();
    let mut quote: Option<char> = None;
    let mut it = word.chars();
    while let Some(c) = it.next() {
        match quote {
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == escape => out.extend(it.next()),
            Some(q) if c == q => quote = None,
            Some('"') if c == escape => {
                let n = it.next()?;
                if !matches!(n, '"' | '$') && n != escape {
                    out.push(c);
                }
                out.push(n);
            }
            _ => out.push(c),
        }
    }
    quote.is_none().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<String> {
        parse(text)
            .unwrap()
            .items
            .iter()
            .map(|i| match &i.kind {
                ItemKind::Directive(_) => "directive".to_string(),
                ItemKind::Comment => "comment".into(),
                ItemKind::Blank => "blank".into(),
                ItemKind::Instruction(ins) => format!("{}:{}", ins.keyword, ins.line.text()),
            })
            .collect()
    }

    #[test]
    fn continuation_drops_comments_and_blank_lines() {
        let text = "RUN a \\  \n# c\n\n  b \\\n\tc\n";
        assert_eq!(kinds(text), ["run:RUN a   b \tc"]);
        let s = parse(text).unwrap();
        assert_eq!(s.print(text), text);
    }

    #[test]
    fn directives_only_at_the_top() {
        let s = parse("# escape=`\n# syntax=docker/dockerfile:1\nFROM x\n# escape=\\\n").unwrap();
        assert_eq!(s.escape, '`');
        assert_eq!(s.directives.len(), 2);
        let s = parse("# hello\n# escape=`\nFROM x\n").unwrap();
        assert_eq!(s.escape, '\\');
        assert!(s.directives.is_empty());
        let e = parse("# escape=x\nFROM a\n").unwrap_err();
        assert_eq!(e.span, Span::new(9, 10));
    }

    #[test]
    fn backtick_escape_continues_lines() {
        let text = "# escape=`\nRUN a `\n  b\nCOPY C:\\x C:\\y\n";
        assert_eq!(
            kinds(text)[1..],
            ["run:RUN a   b".to_string(), "copy:COPY C:\\x C:\\y".into()]
        );
    }

    #[test]
    fn heredocs_are_read_in_order() {
        let text = "RUN <<A cat <<-'B'\nx\nA\n\ty\n\tB\nFROM z\n";
        let s = parse(text).unwrap();
        let ins = s.instructions().next().unwrap();
        assert_eq!(ins.heredocs.len(), 2);
        assert_eq!(ins.heredocs[0].body.text(), "x\n");
        assert_eq!(ins.heredocs[1].body.text(), "y\n");
        assert!(ins.heredocs[1].chomp && ins.heredocs[1].quoted);
        assert_eq!(s.print(text), text);
        let e = parse("RUN <<EOF\nx\n").unwrap_err();
        assert_eq!(e.span, Span::new(4, 9));
    }

    #[test]
    fn flags_and_json() {
        let text = "COPY --from=build --chmod=\"0 755\" [\"a b\", \"c\"]\n";
        let s = parse(text).unwrap();
        let ins = s.instructions().next().unwrap();
        assert_eq!(ins.flags.len(), 2);
        assert_eq!(ins.flags[1].value.as_deref(), Some("0 755"));
        let json = ins.json.as_ref().unwrap();
        assert_eq!(json[0].value, "a b");
        assert_eq!(&text[json[0].span.start..json[0].span.end], "\"a b\"");
        let e = parse("FROM --platform=\"linux/amd64 ubuntu\n").unwrap_err();
        assert_eq!(e.span, Span::new(16, 17));
    }

    #[test]
    fn onbuild_holds_its_instruction() {
        let s = parse("ONBUILD RUN pip install x\n").unwrap();
        let ins = s.instructions().next().unwrap();
        let inner = ins.onbuild.as_ref().unwrap();
        assert_eq!(inner.keyword, "run");
        assert_eq!(inner.args_text(), "pip install x");
    }
}

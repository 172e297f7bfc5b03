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
    /// Pieces in text order.
    pieces: Vec<Piece>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Piece {
    /// Start in `text`.
    text: usize,
    /// Length in `text`.
    len: usize,
    /// Start in the file.
    file: usize,
    /// Length in the file; differs from `len` only for replacements.
    file_len: usize,
    /// Text that stands for a span of the file (a substituted template
    /// variable): all of it maps to that whole span.
    replacement: bool,
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
        self.pieces.push(Piece {
            text: self.text.len(),
            len: text.len(),
            file: file_offset,
            file_len: text.len(),
            replacement: false,
        });
        self.text.push_str(text);
    }

    /// Appends `text`, which replaces `file_span` of the file (a template
    /// variable's value): spans inside it map to the whole of `file_span`.
    pub fn push_replacement(&mut self, text: &str, file_span: Span) {
        if text.is_empty() {
            return;
        }
        self.pieces.push(Piece {
            text: self.text.len(),
            len: text.len(),
            file: file_span.start,
            file_len: file_span.len(),
            replacement: true,
        });
        self.text.push_str(text);
    }

    /// Appends another script, keeping its mapping to the file.
    pub fn append(&mut self, other: &Script) {
        let base = self.text.len();
        self.pieces.extend(other.pieces.iter().map(|p| Piece {
            text: p.text + base,
            ..*p
        }));
        self.text.push_str(&other.text);
    }

    /// The script with its line continuations (backslash-newline)
    /// removed, as the shell removes them before reading words, each
    /// remaining piece still mapped to the file: commands read from it are
    /// one line, as a Dockerfile's `RUN` (joined before) gives them.
    #[must_use]
    pub fn without_line_continuations(&self) -> Script {
        let mut out = Script::new();
        for (i, p) in self.pieces.iter().enumerate() {
            let end = self.pieces.get(i + 1).map_or(self.text.len(), |n| n.text);
            let text = &self.text[p.text..end];
            if p.replacement {
                out.push_replacement(text, Span::new(p.file, p.file + p.file_len));
                continue;
            }
            let mut from = 0;
            while let Some(at) = text[from..].find("\\\n").map(|k| from + k) {
                out.push(&text[from..at], p.file + from);
                from = at + 2;
            }
            out.push(&text[from..], p.file + from);
        }
        out
    }

    fn piece(&self, text_offset: usize) -> Option<&Piece> {
        let i = self.pieces.partition_point(|p| p.text <= text_offset);
        self.pieces.get(i.checked_sub(1)?)
    }

    /// The text the shell sees.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The file offset of a byte of the text. An offset at the end of a piece
    /// maps to the end of that piece in the file.
    pub fn file_offset(&self, text_offset: usize) -> usize {
        match self.piece(text_offset) {
            Some(p) if p.replacement => p.file,
            Some(p) => p.file + (text_offset - p.text).min(p.len),
            None => self.pieces.first().map_or(text_offset, |p| p.file),
        }
    }

    /// The file span of a span of the text. The end maps through the byte
    /// before it, so a span ending at a piece boundary ends in that piece.
    pub fn file_span(&self, span: Span) -> Span {
        let start = self.file_offset(span.start);
        let end = if span.is_empty() {
            start
        } else {
            match self.piece(span.end - 1) {
                Some(p) if p.replacement => p.file + p.file_len,
                _ => self.file_offset(span.end - 1) + 1,
            }
        };
        Span::new(start, end.max(start))
    }
}

/// The deepest nesting of `${…}`, `$(…)` and `sh -c` the splitter follows;
/// deeper input is rejected rather than risking the stack.
pub(crate) const MAX_DEPTH: usize = 32;

/// An error found while splitting shell text, with a span of the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LexError {
    pub span: Span,
    pub message: String,
    pub hint: Option<String>,
}

/// One piece of a word, before expansion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Seg {
    /// A literal character at a text offset.
    Lit { ch: char, at: usize, quoted: bool },
    /// `$NAME` or `${NAME…}`.
    Param {
        name: String,
        op: ParamOp,
        arg: Vec<Seg>,
        /// The replacement of `${V/pat/rep}`.
        repl: Vec<Seg>,
        span: Span,
        quoted: bool,
    },
    /// Something whose value only the running shell knows: arithmetic,
    /// positional and special parameters.
    Opaque { span: Span },
    /// `$(…)` or `` `…` ``: `inner` is the span of the command text.
    Subst {
        span: Span,
        inner: Span,
        quoted: bool,
    },
    /// `""` or `''` with nothing inside: keeps an otherwise empty word.
    EmptyQuotes,
}

/// The operator of `${NAME<op>word}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ParamOp {
    Plain,
    /// `:-` (colon) or `-`
    Default {
        colon: bool,
    },
    /// `:+` or `+`
    Alt {
        colon: bool,
    },
    /// `:=` or `=`
    Assign {
        colon: bool,
    },
    /// `:?` or `?`
    Error {
        colon: bool,
    },
    /// `#`/`##` (prefix) or `%`/`%%` (suffix): remove a matching pattern.
    Trim {
        prefix: bool,
        longest: bool,
    },
    /// `/pat/rep` or `//pat/rep`; the replacement is in `Seg::Param::repl`.
    Replace {
        all: bool,
    },
    /// `${#NAME}`: the length of the value.
    Length,
}

/// A shell word: its span in the text and its pieces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Word {
    pub span: Span,
    pub segs: Vec<Seg>,
}

impl Word {
    /// The word's text when it is plain unquoted literal text.
    pub fn literal(&self) -> Option<String> {
        self.segs
            .iter()
            .map(|s| match s {
                Seg::Lit {
                    ch, quoted: false, ..
                } => Some(*ch),
                _ => None,
            })
            .collect()
    }
}

/// A simple command: its words (redirections removed) and its span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SimpleCommand {
    pub words: Vec<Word>,
    pub span: Span,
    /// The operator that joins it to the command before it.
    pub before: Sep,
    /// The operator that ends it.
    pub after: Sep,
    /// The word of a `<<<` here-string, if any.
    pub here_string: Option<Word>,
    /// Redirections: the operator's span and its target word's span.
    pub redirects: Vec<(Span, Span)>,
    /// `(` that open right before it (subshells, groups).
    pub opens: usize,
    /// `)` that close right after it.
    pub closes: usize,
}

/// An operator between commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sep {
    /// `;`, `&`, a newline, or the start of the text.
    Seq,
    And,
    Or,
    Pipe,
    /// `(`: a subshell or the start of a case pattern.
    Open,
    /// `)`: the end of a subshell or of a case pattern.
    Close,
    /// `;;`, `;&`, `;;&`: the end of a case arm.
    CaseEnd,
}

/// What the shell knows about a variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum VarState {
    Set(String),
    Unset,
    /// Set by the script to something only the running shell knows.
    Unknown,
}

/// A word after expansion: one field of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Field {
    /// `None` when a variable had no known value.
    pub value: Option<String>,
    pub unresolved: Vec<String>,
    /// Text offset of each character of `value`.
    pub offsets: Vec<usize>,
}

/// The largest value one word may expand to, in characters. Variables
/// that double each other ("billion laughs") stop here with an error
/// instead of taking the machine's memory.
pub(crate) const MAX_EXPANSION: usize = 1 << 20;

/// What expansion needs to know from the running script.
pub(crate) trait ShellEnv {
    /// What a variable holds; `None` means unknown.
    fn var(&self, name: &str) -> Option<VarState>;
    /// The output of a command substitution whose command text is `inner`,
    /// when it can be known without running anything.
    fn subst(&self, inner: &str) -> Option<String>;
}

/// Expands `word` the way the shell does (parameter expansion, quote
/// removal, field splitting of unquoted expansions). An expansion larger
/// than [`MAX_EXPANSION`] is an error located at the word.
pub(crate) fn expand_word(
    text: &str,
    word: &Word,
    env: &dyn ShellEnv,
) -> Result<Vec<Field>, LexError> {
    let mut x = Expansion {
        text,
        env,
        out: Vec::new(),
        unresolved: Vec::new(),
        any_quoted: false,
    };
    x.segs(&word.segs, false)
        .map_err(|()| too_large(word.span))?;
    let Expansion {
        out,
        mut unresolved,
        any_quoted,
        ..
    } = x;
    if !unresolved.is_empty() {
        unresolved.dedup();
        return Ok(vec![Field {
            value: None,
            unresolved,
            offsets: Vec::new(),
        }]);
    }
    let mut fields = Vec::new();
    let mut cur: Option<(String, Vec<usize>)> = None;
    for (ch, at, split) in out {
        if split && matches!(ch, ' ' | '\t' | '\n') {
            if let Some((v, o)) = cur.take() {
                fields.push(Field {
                    value: Some(v),
                    unresolved: Vec::new(),
                    offsets: o,
                });
            }
            continue;
        }
        let c = cur.get_or_insert_with(Default::default);
        c.0.push(ch);
        c.1.push(at);
    }
    if let Some((v, o)) = cur {
        fields.push(Field {
            value: Some(v),
            unresolved: Vec::new(),
            offsets: o,
        });
    }
    if fields.is_empty() && any_quoted {
        fields.push(Field {
            value: Some(String::new()),
            unresolved: Vec::new(),
            offsets: Vec::new(),
        });
    }
    Ok(fields)
}

fn too_large(span: Span) -> LexError {
    LexError {
        span,
        message: format!("this word expands to more than {MAX_EXPANSION} characters"),
        hint: Some(
            "variables that repeat each other grow without bound; \
             write the value out or shorten it"
                .into(),
        ),
    }
}

struct Expansion<'a> {
    text: &'a str,
    env: &'a dyn ShellEnv,
    out: Vec<(char, usize, bool)>,
    unresolved: Vec<String>,
    any_quoted: bool,
}

impl Expansion<'_> {
    fn push_str(&mut self, v: &str, at: usize, split: bool) -> Result<(), ()> {
        if self.out.len() + v.len() > MAX_EXPANSION {
            return Err(());
        }
        self.out.extend(v.chars().map(|c| (c, at, split)));
        Ok(())
    }

    /// Expands `segs` to a plain string (a pattern or a replacement);
    /// `None` when something in it is unknown.
    fn plain(&mut self, segs: &[Seg]) -> Result<Option<String>, ()> {
        let mut inner = Expansion {
            text: self.text,
            env: self.env,
            out: Vec::new(),
            unresolved: Vec::new(),
            any_quoted: false,
        };
        inner.segs(segs, false)?;
        if !inner.unresolved.is_empty() {
            self.unresolved.extend(inner.unresolved);
            return Ok(None);
        }
        Ok(Some(inner.out.into_iter().map(|(c, _, _)| c).collect()))
    }

    fn segs(&mut self, segs: &[Seg], in_unquoted_param: bool) -> Result<(), ()> {
        for seg in segs {
            match seg {
                Seg::Lit { ch, at, quoted } => {
                    self.any_quoted |= *quoted;
                    if self.out.len() >= MAX_EXPANSION {
                        return Err(());
                    }
                    self.out.push((*ch, *at, in_unquoted_param && !*quoted));
                }
                Seg::EmptyQuotes => self.any_quoted = true,
                Seg::Opaque { span } => {
                    let t = self.text.get(span.start..span.end).unwrap_or("");
                    self.unresolved.push(t.to_string());
                }
                Seg::Subst {
                    span,
                    inner,
                    quoted,
                } => {
                    self.any_quoted |= *quoted;
                    let cmd = self.text.get(inner.start..inner.end).unwrap_or("");
                    match self.env.subst(cmd) {
                        // The shell drops trailing newlines; the value is
                        // split when unquoted.
                        Some(v) => {
                            self.push_str(v.trim_end_matches('\n'), span.start, !quoted)?;
                        }
                        None => {
                            let t = self.text.get(span.start..span.end).unwrap_or("");
                            self.unresolved.push(t.to_string());
                        }
                    }
                }
                Seg::Param {
                    name,
                    op,
                    arg,
                    repl,
                    span,
                    quoted,
                } => {
                    self.any_quoted |= *quoted;
                    let state = match self.env.var(name) {
                        None | Some(VarState::Unknown) => {
                            self.unresolved.push(name.clone());
                            continue;
                        }
                        Some(s) => s,
                    };
                    let value = match &state {
                        VarState::Set(v) => Some(v.as_str()),
                        _ => None,
                    };
                    let set = value.is_some();
                    let non_empty = value.is_some_and(|v| !v.is_empty());
                    let split = !*quoted;
                    let word_applies = |colon: bool| if colon { !non_empty } else { !set };
                    match *op {
                        ParamOp::Plain | ParamOp::Error { .. } => {
                            self.push_str(value.unwrap_or(""), span.start, split)?;
                        }
                        ParamOp::Default { colon } | ParamOp::Assign { colon } => {
                            if word_applies(colon) {
                                self.segs(arg, !*quoted)?;
                            } else {
                                self.push_str(value.unwrap_or(""), span.start, split)?;
                            }
                        }
                        ParamOp::Alt { colon } => {
                            if !word_applies(colon) {
                                self.segs(arg, !*quoted)?;
                            }
                        }
                        ParamOp::Length => {
                            let n = value.unwrap_or("").chars().count().to_string();
                            self.push_str(&n, span.start, split)?;
                        }
                        ParamOp::Trim { prefix, longest } => {
                            let Some(pat) = self.plain(arg)? else {
                                continue;
                            };
                            let v = crate::source::pattern::trim(
                                value.unwrap_or(""),
                                &pat,
                                prefix,
                                longest,
                            );
                            self.push_str(&v, span.start, split)?;
                        }
                        ParamOp::Replace { all } => {
                            let Some(pat) = self.plain(arg)? else {
                                continue;
                            };
                            let Some(rep) = self.plain(repl)? else {
                                continue;
                            };
                            let v = crate::source::pattern::replace(
                                value.unwrap_or(""),
                                &pat,
                                &rep,
                                all,
                                MAX_EXPANSION,
                            )
                            .ok_or(())?;
                            self.push_str(&v, span.start, split)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Splits shell text into simple commands.
///
/// Control structures are flattened: the commands inside `if`, loops,
/// groups and subshells come out in text order, with their keywords left
/// as leading words for the caller to skip.
pub(crate) fn split_commands(text: &str) -> Result<Vec<SimpleCommand>, LexError> {
    let toks = Lexer::new(text).tokens()?;
    let mut cmds = Vec::new();
    let mut words: Vec<Word> = Vec::new();
    let mut skip_next_word = false;
    let mut here_next = false;
    let mut here_string = None;
    let mut before = Sep::Seq;
    let mut redirect_op = Span::new(0, 0);
    let mut redirects = Vec::new();
    let mut opens = 0;
    for tok in toks {
        match tok {
            Tok::Word(w) => {
                if here_next {
                    here_string = Some(w);
                } else if skip_next_word {
                    redirects.push((redirect_op, w.span));
                } else {
                    words.push(w);
                }
                skip_next_word = false;
                here_next = false;
            }
            Tok::Redirect(op) => {
                skip_next_word = true;
                redirect_op = op;
            }
            Tok::HereString => here_next = true,
            Tok::Separator(sep) => {
                skip_next_word = false;
                here_next = false;
                if let (Some(first), Some(last)) = (words.first(), words.last()) {
                    let span = Span::new(first.span.start, last.span.end);
                    cmds.push(SimpleCommand {
                        words: std::mem::take(&mut words),
                        span,
                        before,
                        after: sep,
                        here_string: here_string.take(),
                        redirects: std::mem::take(&mut redirects),
                        opens: std::mem::take(&mut opens),
                        closes: usize::from(sep == Sep::Close),
                    });
                    before = sep;
                } else if sep == Sep::Open {
                    // `&& ( … )`: the group joins the list with the
                    // operator before it.
                    opens += 1;
                } else if sep == Sep::Close {
                    if let Some(last) = cmds.last_mut() {
                        last.closes += 1;
                    }
                    before = sep;
                } else if !(sep == Sep::Seq
                    && matches!(before, Sep::And | Sep::Or | Sep::Pipe | Sep::CaseEnd))
                {
                    // A newline after `&&` continues the list; anything
                    // else replaces the pending operator.
                    before = sep;
                }
            }
        }
    }
    if let (Some(first), Some(last)) = (words.first(), words.last()) {
        let span = Span::new(first.span.start, last.span.end);
        cmds.push(SimpleCommand {
            words,
            span,
            before,
            after: Sep::Seq,
            here_string,
            redirects,
            opens,
            closes: 0,
        });
    }
    Ok(cmds)
}

#[derive(Debug)]
enum Tok {
    Word(Word),
    /// A redirection operator (its span); the next word is its target.
    Redirect(Span),
    /// `<<<`: the next word is the here-string.
    HereString,
    /// `;`, `&&`, `||`, `|`, `&`, `(`, `)`, newline…
    Separator(Sep),
}

struct Lexer<'a> {
    s: &'a str,
    pos: usize,
    /// Heredocs whose bodies start after the next newline: (delimiter, strip tabs).
    pending: Vec<(String, bool)>,
}

fn err(at: usize, len: usize, message: &str, hint: Option<&str>) -> LexError {
    LexError {
        span: Span::new(at, at + len),
        message: message.to_string(),
        hint: hint.map(str::to_string),
    }
}

impl<'a> Lexer<'a> {
    fn new(s: &'a str) -> Self {
        Self {
            s,
            pos: 0,
            pending: Vec::new(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.s[self.pos..].chars().nth(n)
    }

    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn tokens(mut self) -> Result<Vec<Tok>, LexError> {
        let mut toks = Vec::new();
        loop {
            // Blanks and line continuations between words.
            while let Some(c) = self.peek() {
                if c == ' ' || c == '\t' || c == '\r' {
                    self.pos += 1;
                } else if self.rest().starts_with("\\\n") {
                    self.pos += 2;
                } else if self.rest().starts_with("\\\r\n") {
                    self.pos += 3;
                } else {
                    break;
                }
            }
            let Some(c) = self.peek() else { break };
            match c {
                '#' => {
                    let end = self
                        .rest()
                        .find('\n')
                        .map_or(self.s.len(), |i| self.pos + i);
                    self.pos = end;
                }
                '\n' => {
                    self.pos += 1;
                    toks.push(Tok::Separator(Sep::Seq));
                    self.heredoc_bodies();
                }
                ';' | '&' | '|' | '(' | ')' => {
                    let r = self.rest();
                    if r.starts_with("&>>") {
                        self.pos += 3;
                        toks.push(Tok::Redirect(Span::new(self.pos - 3, self.pos)));
                    } else if r.starts_with("&>") {
                        self.pos += 2;
                        toks.push(Tok::Redirect(Span::new(self.pos - 2, self.pos)));
                    } else {
                        let (len, sep) = if r.starts_with(";;&") {
                            (3, Sep::CaseEnd)
                        } else if r.starts_with("&&") {
                            (2, Sep::And)
                        } else if r.starts_with("||") {
                            (2, Sep::Or)
                        } else if r.starts_with(";;") || r.starts_with(";&") {
                            (2, Sep::CaseEnd)
                        } else if r.starts_with("|&") {
                            (2, Sep::Pipe)
                        } else {
                            let sep = match c {
                                '|' => Sep::Pipe,
                                '(' => Sep::Open,
                                ')' => Sep::Close,
                                _ => Sep::Seq,
                            };
                            (1, sep)
                        };
                        self.pos += len;
                        toks.push(Tok::Separator(sep));
                    }
                }
                '<' | '>' if self.peek_at(1) == Some('(') => {
                    let w = self.word(0)?;
                    toks.push(Tok::Word(w));
                }
                '<' | '>' => {
                    let r = self.rest();
                    if r.starts_with("<<<") {
                        self.pos += 3;
                        toks.push(Tok::HereString);
                    } else if r.starts_with("<<") {
                        let strip = r.starts_with("<<-");
                        self.pos += if strip { 3 } else { 2 };
                        self.heredoc_delimiter(strip)?;
                    } else {
                        let two = [">>", ">&", "<&", ">|", "<>"];
                        let start = self.pos;
                        self.pos += if two.iter().any(|t| r.starts_with(t)) {
                            2
                        } else {
                            1
                        };
                        toks.push(Tok::Redirect(Span::new(start, self.pos)));
                    }
                }
                _ => {
                    let w = self.word(0)?;
                    // `2>file`: the digits are the redirected descriptor.
                    let digits = self.s[w.span.start..w.span.end]
                        .bytes()
                        .all(|b| b.is_ascii_digit());
                    if digits && matches!(self.peek(), Some('<' | '>')) {
                        continue;
                    }
                    toks.push(Tok::Word(w));
                }
            }
        }
        Ok(toks)
    }

    fn heredoc_delimiter(&mut self, strip: bool) -> Result<(), LexError> {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.pos += 1;
        }
        match self.peek() {
            None | Some('\n' | ';' | '&' | '|' | '(' | ')' | '<' | '>') => Ok(()),
            Some(_) => {
                let w = self.word(0)?;
                let delim: String = w
                    .segs
                    .iter()
                    .filter_map(|s| match s {
                        Seg::Lit { ch, .. } => Some(*ch),
                        _ => None,
                    })
                    .collect();
                self.pending.push((delim, strip));
                Ok(())
            }
        }
    }

    /// Skips the bodies of pending heredocs; the shell reads them, not us.
    fn heredoc_bodies(&mut self) {
        for (delim, strip) in std::mem::take(&mut self.pending) {
            while self.pos < self.s.len() {
                let end = self
                    .rest()
                    .find('\n')
                    .map_or(self.s.len(), |i| self.pos + i);
                let mut line = &self.s[self.pos..end];
                line = line.strip_suffix('\r').unwrap_or(line);
                if strip {
                    line = line.trim_start_matches('\t');
                }
                self.pos = (end + 1).min(self.s.len());
                if line == delim {
                    break;
                }
            }
        }
    }

    fn is_meta(c: char) -> bool {
        matches!(
            c,
            ' ' | '\t' | '\r' | '\n' | ';' | '&' | '|' | '(' | ')' | '<' | '>'
        )
    }

    fn word(&mut self, depth: usize) -> Result<Word, LexError> {
        let start = self.pos;
        let mut segs = Vec::new();
        while let Some(c) = self.peek() {
            if matches!(c, '<' | '>') && self.peek_at(1) == Some('(') {
                // `<(…)`: process substitution, a file only the shell has.
                let at = self.pos;
                self.pos += 2;
                self.balanced_parens(at)?;
                segs.push(Seg::Opaque {
                    span: Span::new(at, self.pos),
                });
                continue;
            }
            if Self::is_meta(c) {
                break;
            }
            self.unit(&mut segs, depth)?;
        }
        Ok(Word {
            span: Span::new(start, self.pos),
            segs,
        })
    }

    /// Lexes one unit of a word at `pos` (a character, a quoted string, an
    /// expansion) and appends its pieces.
    fn unit(&mut self, segs: &mut Vec<Seg>, depth: usize) -> Result<(), LexError> {
        let at = self.pos;
        let Some(c) = self.bump() else { return Ok(()) };
        match c {
            '\\' => match self.peek() {
                Some('\n') => self.pos += 1,
                Some(n) => {
                    let at = self.pos;
                    self.bump();
                    segs.push(Seg::Lit {
                        ch: n,
                        at,
                        quoted: true,
                    });
                }
                None => segs.push(Seg::Lit {
                    ch: '\\',
                    at,
                    quoted: false,
                }),
            },
            '\'' => {
                let Some(end) = self.rest().find('\'') else {
                    return Err(err(
                        at,
                        1,
                        "unterminated single quote",
                        Some("close the quote with a matching `'`"),
                    ));
                };
                for (i, ch) in self.rest()[..end].char_indices() {
                    segs.push(Seg::Lit {
                        ch,
                        at: self.pos + i,
                        quoted: true,
                    });
                }
                self.pos += end + 1;
            }
            '"' => self.double_quoted(at, segs, depth)?,
            '$' => self.dollar(at, segs, false, depth)?,
            '`' => self.backquote(at, segs, false)?,
            _ => {
                segs.push(Seg::Lit {
                    ch: c,
                    at,
                    quoted: false,
                });
            }
        }
        Ok(())
    }

    fn double_quoted(
        &mut self,
        open: usize,
        segs: &mut Vec<Seg>,
        depth: usize,
    ) -> Result<(), LexError> {
        // Any quoted word counts as present even when empty.
        let mut any = false;
        loop {
            let at = self.pos;
            let Some(c) = self.bump() else {
                return Err(err(
                    open,
                    1,
                    "unterminated double quote",
                    Some("close the quote with a matching `\"`"),
                ));
            };
            match c {
                '"' => break,
                '\\' => match self.peek() {
                    Some('\n') => self.pos += 1,
                    Some(n @ ('$' | '`' | '"' | '\\')) => {
                        let at = self.pos;
                        self.bump();
                        segs.push(Seg::Lit {
                            ch: n,
                            at,
                            quoted: true,
                        });
                        any = true;
                    }
                    _ => {
                        segs.push(Seg::Lit {
                            ch: '\\',
                            at,
                            quoted: true,
                        });
                        any = true;
                    }
                },
                '$' => {
                    self.dollar(at, segs, true, depth)?;
                    any = true;
                }
                '`' => {
                    self.backquote(at, segs, true)?;
                    any = true;
                }
                _ => {
                    segs.push(Seg::Lit {
                        ch: c,
                        at,
                        quoted: true,
                    });
                    any = true;
                }
            }
        }
        if !any {
            // `""`: an empty quoted string; a zero-width marker keeps the word.
            segs.push(Seg::EmptyQuotes);
        }
        Ok(())
    }

    fn backquote(
        &mut self,
        open: usize,
        segs: &mut Vec<Seg>,
        quoted: bool,
    ) -> Result<(), LexError> {
        loop {
            match self.bump() {
                None => {
                    return Err(err(
                        open,
                        1,
                        "unterminated command substitution",
                        Some("close it with a matching backquote"),
                    ));
                }
                Some('\\') => {
                    self.bump();
                }
                Some('`') => break,
                Some(_) => {}
            }
        }
        segs.push(Seg::Subst {
            span: Span::new(open, self.pos),
            inner: Span::new(open + 1, self.pos - 1),
            quoted,
        });
        Ok(())
    }

    /// `$` has been consumed (at `at`).
    fn dollar(
        &mut self,
        at: usize,
        segs: &mut Vec<Seg>,
        quoted: bool,
        depth: usize,
    ) -> Result<(), LexError> {
        if depth >= MAX_DEPTH {
            return Err(err(at, 1, "expansions nested too deeply", None));
        }
        match self.peek() {
            Some('{') => {
                self.pos += 1;
                self.braced(at, segs, quoted, depth)
            }
            Some('(') => {
                self.pos += 1;
                let arithmetic = self.peek() == Some('(');
                self.balanced_parens(at)?;
                let span = Span::new(at, self.pos);
                if arithmetic {
                    segs.push(Seg::Opaque { span });
                } else {
                    segs.push(Seg::Subst {
                        span,
                        inner: Span::new(at + 2, self.pos - 1),
                        quoted,
                    });
                }
                Ok(())
            }
            Some(c) if c == '_' || c.is_ascii_alphabetic() => {
                let start = self.pos;
                while matches!(self.peek(), Some(c) if c == '_' || c.is_ascii_alphanumeric()) {
                    self.pos += 1;
                }
                segs.push(Seg::Param {
                    name: self.s[start..self.pos].to_string(),
                    op: ParamOp::Plain,
                    arg: Vec::new(),
                    repl: Vec::new(),
                    span: Span::new(at, self.pos),
                    quoted,
                });
                Ok(())
            }
            Some(c) if c.is_ascii_digit() || "@*#?$!-".contains(c) => {
                self.pos += 1;
                segs.push(Seg::Opaque {
                    span: Span::new(at, self.pos),
                });
                Ok(())
            }
            Some('\'') if !quoted => {
                self.pos += 1;
                self.ansi_c(at, segs)
            }
            Some('"') if !quoted => {
                self.pos += 1;
                self.double_quoted(at + 1, segs, depth)
            }
            _ => {
                segs.push(Seg::Lit {
                    ch: '$',
                    at,
                    quoted,
                });
                Ok(())
            }
        }
    }

    /// `$'…'` with the common backslash escapes.
    fn ansi_c(&mut self, open: usize, segs: &mut Vec<Seg>) -> Result<(), LexError> {
        loop {
            let at = self.pos;
            let Some(c) = self.bump() else {
                return Err(err(
                    open,
                    2,
                    "unterminated `$'` quote",
                    Some("close the quote with a matching `'`"),
                ));
            };
            let ch = match c {
                '\'' => break,
                '\\' => match self.bump() {
                    Some('n') => '\n',
                    Some('t') => '\t',
                    Some('r') => '\r',
                    Some(o) => o,
                    None => '\\',
                },
                o => o,
            };
            segs.push(Seg::Lit {
                ch,
                at,
                quoted: true,
            });
        }
        Ok(())
    }

    /// Skips to the `)` matching an already consumed `(`, minding quotes.
    fn balanced_parens(&mut self, at: usize) -> Result<(), LexError> {
        let mut depth = 1usize;
        loop {
            let Some(c) = self.bump() else {
                return Err(err(
                    at,
                    2,
                    "unterminated command substitution",
                    Some("close it with a matching `)`"),
                ));
            };
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                '\\' => {
                    self.bump();
                }
                '\'' => match self.rest().find('\'') {
                    Some(i) => self.pos += i + 1,
                    None => {
                        return Err(err(
                            self.pos - 1,
                            1,
                            "unterminated single quote",
                            Some("close the quote with a matching `'`"),
                        ));
                    }
                },
                '"' => {
                    let open = self.pos - 1;
                    loop {
                        match self.bump() {
                            None => {
                                return Err(err(
                                    open,
                                    1,
                                    "unterminated double quote",
                                    Some("close the quote with a matching `\"`"),
                                ));
                            }
                            Some('\\') => {
                                self.bump();
                            }
                            Some('"') => break,
                            Some(_) => {}
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// `${` has been consumed (`$` at `at`).
    fn braced(
        &mut self,
        at: usize,
        segs: &mut Vec<Seg>,
        quoted: bool,
        depth: usize,
    ) -> Result<(), LexError> {
        let unterminated = || {
            err(
                at,
                2,
                "unterminated parameter expansion",
                Some("close it with a matching `}`"),
            )
        };
        let name_start = self.pos;
        match self.peek() {
            Some(c) if c == '_' || c.is_ascii_alphabetic() => {
                while matches!(self.peek(), Some(c) if c == '_' || c.is_ascii_alphanumeric()) {
                    self.pos += 1;
                }
            }
            Some('#') if self.is_length() => {
                self.pos += 1;
                let start = self.pos;
                while matches!(self.peek(), Some(c) if c == '_' || c.is_ascii_alphanumeric()) {
                    self.pos += 1;
                }
                let name = self.s[start..self.pos].to_string();
                self.pos += 1; // `}`
                segs.push(Seg::Param {
                    name,
                    op: ParamOp::Length,
                    arg: Vec::new(),
                    repl: Vec::new(),
                    span: Span::new(at, self.pos),
                    quoted,
                });
                return Ok(());
            }
            _ => {
                // `${1}`, `${@}`, `${!V}`…: only the shell knows.
                self.skip_to_brace(depth).ok_or_else(unterminated)?;
                segs.push(Seg::Opaque {
                    span: Span::new(at, self.pos),
                });
                return Ok(());
            }
        }
        let name = self.s[name_start..self.pos].to_string();
        let colon =
            self.rest().starts_with(':') && matches!(self.peek_at(1), Some('-' | '+' | '=' | '?'));
        if colon {
            self.pos += 1;
        }
        let op = match self.peek() {
            Some('}') => {
                self.pos += 1;
                segs.push(Seg::Param {
                    name,
                    op: ParamOp::Plain,
                    arg: Vec::new(),
                    repl: Vec::new(),
                    span: Span::new(at, self.pos),
                    quoted,
                });
                return Ok(());
            }
            Some('-') => ParamOp::Default { colon },
            Some('+') => ParamOp::Alt { colon },
            Some('=') => ParamOp::Assign { colon },
            Some('?') => ParamOp::Error { colon },
            Some(c @ ('#' | '%')) if !colon => {
                self.pos += 1;
                let longest = self.peek() == Some(c);
                if longest {
                    self.pos += 1;
                }
                let arg = self.pattern(&['}'], quoted, depth)?;
                self.pos += 1;
                segs.push(Seg::Param {
                    name,
                    op: ParamOp::Trim {
                        prefix: c == '#',
                        longest,
                    },
                    arg,
                    repl: Vec::new(),
                    span: Span::new(at, self.pos),
                    quoted,
                });
                return Ok(());
            }
            Some('/') if !colon => {
                self.pos += 1;
                let all = self.peek() == Some('/');
                if all {
                    self.pos += 1;
                }
                let arg = self.pattern(&['/', '}'], quoted, depth)?;
                let mut repl = Vec::new();
                if self.peek() == Some('/') {
                    self.pos += 1;
                    repl = self.pattern(&['}'], quoted, depth)?;
                }
                self.pos += 1;
                segs.push(Seg::Param {
                    name,
                    op: ParamOp::Replace { all },
                    arg,
                    repl,
                    span: Span::new(at, self.pos),
                    quoted,
                });
                return Ok(());
            }
            _ => {
                // `${V%x}`, `${V/a/b}`, `${V:1:2}`…
                self.skip_to_brace(depth).ok_or_else(unterminated)?;
                segs.push(Seg::Opaque {
                    span: Span::new(at, self.pos),
                });
                return Ok(());
            }
        };
        self.pos += 1;
        let mut arg = Vec::new();
        loop {
            match self.peek() {
                None => return Err(unterminated()),
                Some('}') => {
                    self.pos += 1;
                    break;
                }
                Some('\'') if quoted => {
                    let at = self.pos;
                    self.pos += 1;
                    arg.push(Seg::Lit {
                        ch: '\'',
                        at,
                        quoted: true,
                    });
                }
                Some(_) => {
                    let before = arg.len();
                    self.unit(&mut arg, depth + 1)?;
                    if quoted {
                        for s in &mut arg[before..] {
                            if let Seg::Lit { quoted, .. } = s {
                                *quoted = true;
                            }
                        }
                    }
                }
            }
        }
        segs.push(Seg::Param {
            name,
            op,
            arg,
            repl: Vec::new(),
            span: Span::new(at, self.pos),
            quoted,
        });
        Ok(())
    }

    /// `${#NAME}` (not `${#}` or `${#-}`) at `pos`.
    fn is_length(&self) -> bool {
        let rest = &self.rest()[1..];
        let n = rest
            .find(|c: char| c != '_' && !c.is_ascii_alphanumeric())
            .unwrap_or(rest.len());
        n > 0 && !rest.starts_with(|c: char| c.is_ascii_digit()) && rest[n..].starts_with('}')
    }

    /// The pattern or replacement of `${V%…}`/`${V/…/…}`, up to (not
    /// consuming) one of `stops`.
    fn pattern(
        &mut self,
        stops: &[char],
        quoted: bool,
        depth: usize,
    ) -> Result<Vec<Seg>, LexError> {
        let mut arg = Vec::new();
        loop {
            match self.peek() {
                None => {
                    return Err(err(
                        self.pos,
                        0,
                        "unterminated parameter expansion",
                        Some("close it with a matching `}`"),
                    ));
                }
                Some(c) if stops.contains(&c) => return Ok(arg),
                Some(_) => {
                    let before = arg.len();
                    self.unit(&mut arg, depth + 1)?;
                    if quoted {
                        for s in &mut arg[before..] {
                            if let Seg::Lit { quoted, .. } = s {
                                *quoted = true;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Skips to just after the `}` closing the current `${`.
    fn skip_to_brace(&mut self, depth: usize) -> Option<()> {
        let mut scratch = Vec::new();
        loop {
            match self.peek()? {
                '}' => {
                    self.pos += 1;
                    return Some(());
                }
                _ => {
                    self.unit(&mut scratch, depth + 1).ok()?;
                }
            }
        }
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

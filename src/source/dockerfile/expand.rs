//! Variable expansion in instruction arguments, as BuildKit's `shell.Lex`
//! does it for `FROM`, `COPY`, `ENV`, `ARG`, `USER`, `WORKDIR`…
//!
//! Quotes are removed, the escape character escapes the next character,
//! and `$V`, `${V}`, `${V:-w}`, `${V-w}`, `${V:+w}`, `${V+w}`, `${V:?w}`,
//! `${V#p}`, `${V##p}`, `${V%p}`, `${V%%p}` and `${V/p/r}` expand. A
//! variable without a value is recorded instead of being replaced by the
//! empty string, so callers can say what could not be resolved.

/// The result of expanding one word.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expansion {
    /// The text, with unset variables read as empty.
    pub text: String,
    /// Variables that had no value, in order of appearance.
    pub unresolved: Vec<String>,
}

/// An expansion that cannot be done: a syntax error in the word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpandError {
    /// Byte offset in the word.
    pub offset: usize,
    pub message: String,
    /// A bound on size or nesting was reached (not a syntax error).
    pub bounded: bool,
}

/// The deepest nesting of `${…}` followed; deeper input is an error
/// rather than a risk to the stack.
pub const MAX_DEPTH: usize = 32;

/// The longest value one word may expand to, in bytes: ARGs that repeat
/// each other ("billion laughs") stop here with an error.
pub const MAX_EXPANSION: usize = 1 << 20;

/// Looks a variable up; `None` when it is not set.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Expands one word.
pub fn expand(word: &str, escape: char, lookup: Lookup<'_>) -> Result<Expansion, ExpandError> {
    let mut lex = Lexer {
        chars: word.char_indices().collect(),
        pos: 0,
        escape,
        lookup,
        unresolved: Vec::new(),
        len: word.len(),
        depth: 0,
    };
    let text = lex.process(None)?;
    Ok(Expansion {
        text,
        unresolved: lex.unresolved,
    })
}

struct Lexer<'a> {
    chars: Vec<(usize, char)>,
    pos: usize,
    escape: char,
    lookup: Lookup<'a>,
    unresolved: Vec<String>,
    len: usize,
    depth: usize,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).map(|&(_, c)| c)
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn offset(&self) -> usize {
        self.chars.get(self.pos).map_or(self.len, |&(o, _)| o)
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T, ExpandError> {
        Err(ExpandError {
            offset: self.offset(),
            message: message.into(),
            bounded: false,
        })
    }

    fn bound<T>(&self, message: String) -> Result<T, ExpandError> {
        Err(ExpandError {
            offset: self.offset(),
            message,
            bounded: true,
        })
    }

    fn too_large<T>(&self) -> Result<T, ExpandError> {
        self.bound(format!(
            "this value expands to more than {MAX_EXPANSION} bytes"
        ))
    }

    /// Processes until `stop` (consumed) or the end.
    fn process(&mut self, stop: Option<char>) -> Result<String, ExpandError> {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if out.len() > MAX_EXPANSION {
                return self.too_large();
            }
            if Some(c) == stop {
                self.pos += 1;
                return Ok(out);
            }
            self.pos += 1;
            match c {
                '\'' => out.push_str(&self.single_quoted()?),
                '"' => out.push_str(&self.double_quoted()?),
                '$' => out.push_str(&self.dollar()?),
                c if c == self.escape => {
                    if let Some(n) = self.next() {
                        out.push(n);
                    }
                }
                c => out.push(c),
            }
        }
        if let Some(s) = stop {
            return self.err(format!("missing `{s}`"));
        }
        Ok(out)
    }

    fn single_quoted(&mut self) -> Result<String, ExpandError> {
        let mut out = String::new();
        loop {
            match self.next() {
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
                None => return self.err("unterminated single quote"),
            }
        }
    }

    fn double_quoted(&mut self) -> Result<String, ExpandError> {
        let mut out = String::new();
        loop {
            if out.len() > MAX_EXPANSION {
                return self.too_large();
            }
            match self.next() {
                Some('"') => return Ok(out),
                Some('$') => out.push_str(&self.dollar()?),
                Some(c) if c == self.escape => match self.peek() {
                    Some(n) if n == '"' || n == '$' || n == self.escape => {
                        self.pos += 1;
                        out.push(n);
                    }
                    _ => out.push(c),
                },
                Some(c) => out.push(c),
                None => return self.err("unterminated double quote"),
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        if let Some(c) = self.peek().filter(char::is_ascii_digit) {
            // Positional parameters are one digit, as in the shell.
            self.pos += 1;
            name.push(c);
            return name;
        }
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                name.push(c);
                self.pos += 1;
            } else {
                break;
            }
        }
        name
    }

    fn get(&mut self, name: &str) -> Option<String> {
        (self.lookup)(name)
    }

    fn missing(&mut self, name: &str) {
        if !self.unresolved.iter().any(|n| n == name) {
            self.unresolved.push(name.to_string());
        }
    }

    fn dollar(&mut self) -> Result<String, ExpandError> {
        if self.depth >= MAX_DEPTH {
            return self.bound(format!(
                "variable expansions nested more than {MAX_DEPTH} deep"
            ));
        }
        self.depth += 1;
        let r = self.dollar_inner();
        self.depth -= 1;
        r
    }

    fn dollar_inner(&mut self) -> Result<String, ExpandError> {
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.get(&name) {
                Some(v) => v,
                None => {
                    self.missing(&name);
                    String::new()
                }
            });
        }
        self.pos += 1;
        let name = self.name();
        if name.is_empty() {
            return self.err("bad substitution: a variable name must follow `${`");
        }
        let value = self.get(&name);
        let Some(op) = self.next() else {
            return self.err("missing `}`");
        };
        match op {
            '}' => Ok(value.unwrap_or_else(|| {
                self.missing(&name);
                String::new()
            })),
            ':' => {
                let m = self.next();
                let word = self.process(Some('}'))?;
                match m {
                    Some('-') => Ok(value.filter(|v| !v.is_empty()).unwrap_or(word)),
                    Some('+') => Ok(if value.is_some_and(|v| !v.is_empty()) {
                        word
                    } else {
                        String::new()
                    }),
                    Some('?') => match value.filter(|v| !v.is_empty()) {
                        Some(v) => Ok(v),
                        None => {
                            self.missing(&name);
                            Ok(String::new())
                        }
                    },
                    Some(c) => self.err(format!("unsupported modifier `:{c}` in substitution")),
                    None => self.err("missing `}`"),
                }
            }
            '-' | '+' | '?' => {
                let word = self.process(Some('}'))?;
                Ok(match (op, value) {
                    ('-', Some(v)) | ('?', Some(v)) => v,
                    ('-', None) => word,
                    ('+', Some(_)) => word,
                    ('+', None) => String::new(),
                    (_, None) => {
                        self.missing(&name);
                        String::new()
                    }
                    _ => String::new(),
                })
            }
            '#' | '%' => {
                let longest = self.peek() == Some(op);
                if longest {
                    self.pos += 1;
                }
                let pattern = self.process(Some('}'))?;
                let Some(v) = value else {
                    self.missing(&name);
                    return Ok(String::new());
                };
                Ok(crate::source::pattern::trim(
                    &v,
                    &pattern,
                    op == '#',
                    longest,
                ))
            }
            '/' => {
                let all = self.peek() == Some('/');
                if all {
                    self.pos += 1;
                }
                let pattern = self.process_until_any(&['/', '}'])?;
                let repl = if self.chars.get(self.pos - 1).map(|&(_, c)| c) == Some('/') {
                    self.process(Some('}'))?
                } else {
                    String::new()
                };
                let Some(v) = value else {
                    self.missing(&name);
                    return Ok(String::new());
                };
                match crate::source::pattern::replace(&v, &pattern, &repl, all, MAX_EXPANSION) {
                    Some(v) => Ok(v),
                    None => self.too_large(),
                }
            }
            c => self.err(format!("unsupported modifier `{c}` in substitution")),
        }
    }

    /// Like `process`, stopping at (and consuming) the first of `stops`.
    fn process_until_any(&mut self, stops: &[char]) -> Result<String, ExpandError> {
        let mut out = String::new();
        while let Some(c) = self.next() {
            if out.len() > MAX_EXPANSION {
                return self.too_large();
            }
            if stops.contains(&c) {
                return Ok(out);
            }
            match c {
                '\'' => out.push_str(&self.single_quoted()?),
                '"' => out.push_str(&self.double_quoted()?),
                '$' => out.push_str(&self.dollar()?),
                c if c == self.escape => out.extend(self.next()),
                c => out.push(c),
            }
        }
        self.err("missing `}`")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(word: &str) -> Result<Expansion, ExpandError> {
        let lookup = |n: &str| match n {
            "A" => Some("a".to_string()),
            "E" => Some(String::new()),
            "P" => Some("python:3.11-slim".to_string()),
            _ => None,
        };
        expand(word, '\\', &lookup)
    }

    fn text(word: &str) -> String {
        ex(word).unwrap().text
    }

    #[test]
    fn forms() {
        assert_eq!(text("$A-${A}"), "a-a");
        assert_eq!(text("${U:-x}${E:-y}${E-z}"), "xy");
        assert_eq!(text("${A:+p}${U:+q}${E+r}"), "pr");
        assert_eq!(text("'$A' \"$A\" \\$A"), "$A a $A");
        assert_eq!(text("${P%%:*}:${P#*:}"), "python:3.11-slim");
        assert_eq!(text("${P%-*}"), "python:3.11");
        assert_eq!(text("${P/3.11/3.12}"), "python:3.12-slim");
        assert_eq!(text("$"), "$");
        assert_eq!(ex("x$U${V}").unwrap().unresolved, ["U", "V"]);
        assert!(ex("${A").is_err());
        assert!(ex("\"a").is_err());
        assert!(ex("${A:x}").is_err());
    }
}

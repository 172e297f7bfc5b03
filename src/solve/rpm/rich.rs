//! rpm's rich (boolean) dependencies: `(a or b)`, `(a and b)`,
//! `(a if b [else c])`, `(a unless b [else c])`, `(a with b)`,
//! `(a without b)`, nested, as rpm 4.14+ parses them.

use super::{DepFlag, Dependency, Evr};

/// A parsed rich dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rich {
    Dep(Dependency),
    And(Vec<Rich>),
    Or(Vec<Rich>),
    /// `(a if cond else other)`.
    If(Box<Rich>, Box<Rich>, Option<Box<Rich>>),
    /// `(a unless cond else other)`.
    Unless(Box<Rich>, Box<Rich>, Option<Box<Rich>>),
    /// `(a with b)`: one package satisfying both.
    With(Vec<Rich>),
    /// `(a without b)`: one package satisfying a but not b.
    Without(Box<Rich>, Box<Rich>),
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.at < self.s.len() && self.s[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
    }

    /// A name or operator word: up to whitespace or an unbalanced `)`.
    fn word(&mut self) -> String {
        let start = self.at;
        let mut depth = 0usize;
        while self.at < self.s.len() {
            let c = self.s[self.at];
            if c.is_ascii_whitespace() {
                break;
            }
            if c == b'(' {
                depth += 1;
            } else if c == b')' {
                if depth == 0 {
                    break;
                }
                depth -= 1;
            }
            self.at += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.at]).into_owned()
    }

    fn peek_word(&mut self) -> String {
        let at = self.at;
        let w = self.word();
        self.at = at;
        w
    }

    fn term(&mut self) -> Result<Rich, String> {
        self.ws();
        if self.s.get(self.at) == Some(&b'(') {
            self.at += 1;
            let r = self.expr()?;
            self.ws();
            if self.s.get(self.at) != Some(&b')') {
                return Err("a `(` without its `)`".into());
            }
            self.at += 1;
            return Ok(r);
        }
        let name = self.word();
        if name.is_empty() {
            return Err("a dependency is missing".into());
        }
        self.ws();
        let flag = match self.peek_word().as_str() {
            "<" => Some(DepFlag::Lt),
            "<=" => Some(DepFlag::Le),
            "=" | "==" => Some(DepFlag::Eq),
            ">=" => Some(DepFlag::Ge),
            ">" => Some(DepFlag::Gt),
            _ => None,
        };
        let constraint = match flag {
            Some(f) => {
                self.word();
                self.ws();
                let v = self.word();
                if v.is_empty() {
                    return Err(format!("`{name}` has an operator without a version"));
                }
                Some((f, parse_evr(&v)))
            }
            None => None,
        };
        Ok(Rich::Dep(Dependency { name, constraint }))
    }

    fn expr(&mut self) -> Result<Rich, String> {
        let first = self.term()?;
        self.ws();
        let op = self.peek_word();
        match op.as_str() {
            "and" | "or" | "with" => {
                let mut items = vec![first];
                loop {
                    self.ws();
                    if self.peek_word() != op {
                        break;
                    }
                    self.word();
                    items.push(self.term()?);
                }
                self.ws();
                if matches!(
                    self.peek_word().as_str(),
                    "and" | "or" | "with" | "without" | "if" | "unless" | "else"
                ) {
                    return Err(format!(
                        "`{op}` mixed with another operator without parentheses"
                    ));
                }
                Ok(match op.as_str() {
                    "and" => Rich::And(items),
                    "or" => Rich::Or(items),
                    _ => Rich::With(items),
                })
            }
            "without" => {
                self.word();
                let b = self.term()?;
                Ok(Rich::Without(Box::new(first), Box::new(b)))
            }
            "if" | "unless" => {
                self.word();
                let cond = self.term()?;
                self.ws();
                let other = if self.peek_word() == "else" {
                    self.word();
                    Some(Box::new(self.term()?))
                } else {
                    None
                };
                Ok(if op == "if" {
                    Rich::If(Box::new(first), Box::new(cond), other)
                } else {
                    Rich::Unless(Box::new(first), Box::new(cond), other)
                })
            }
            _ => Ok(first),
        }
    }
}

/// Parses a rich dependency as written, parentheses included.
pub fn parse_rich(s: &str) -> Result<Rich, String> {
    let mut p = Parser {
        s: s.as_bytes(),
        at: 0,
    };
    p.ws();
    if p.s.get(p.at) != Some(&b'(') {
        return Err(format!("`{s}` is not a rich dependency"));
    }
    let r = p.term()?;
    p.ws();
    if p.at != p.s.len() {
        return Err(format!("`{s}`: text after the closing `)`"));
    }
    Ok(r)
}

/// `[epoch:]version[-release]`.
pub fn parse_evr(s: &str) -> Evr {
    let (epoch, rest) = match s.split_once(':') {
        Some((e, r)) if !e.is_empty() && e.chars().all(|c| c.is_ascii_digit()) => {
            (e.parse().unwrap_or(0), r)
        }
        _ => (0, s),
    };
    match rest.rsplit_once('-') {
        Some((v, r)) => Evr::new(epoch, v, r),
        None => Evr::new(epoch, rest, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(s: &str) -> Rich {
        Rich::Dep(Dependency::unversioned(s))
    }

    #[test]
    fn rich_dependencies_parse_as_rpm_writes_them() {
        assert_eq!(
            parse_rich("(editor-b or editor-a)").unwrap(),
            Rich::Or(vec![dep("editor-b"), dep("editor-a")])
        );
        assert_eq!(
            parse_rich("(helper if writer)").unwrap(),
            Rich::If(Box::new(dep("helper")), Box::new(dep("writer")), None)
        );
        let r = parse_rich("(libfoo.so.1()(64bit) and (a >= 1:2-3 or b))").unwrap();
        let Rich::And(items) = r else { panic!() };
        assert_eq!(items[0], dep("libfoo.so.1()(64bit)"));
        let Rich::Or(alts) = &items[1] else { panic!() };
        let Rich::Dep(a) = &alts[0] else { panic!() };
        assert_eq!(a.to_string(), "a >= 1:2-3");
        assert!(parse_rich("(a or b and c)").is_err());
        assert!(parse_rich("(a or b").is_err());
        assert!(parse_rich("a").is_err());
        assert!(matches!(
            parse_rich("(a unless b else c)").unwrap(),
            Rich::Unless(_, _, Some(_))
        ));
    }
}

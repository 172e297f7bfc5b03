//! Changes `RUN` commands make to what apt reads: a `deb` line echoed
//! into `/etc/apt/sources.list.d`, a key fetched into `/etc/apt/keyrings`,
//! `dpkg --add-architecture`, a list removed. Freeze applies them, in file
//! order, to the image's apt files before the apt steps after them; a
//! change it cannot read is kept as [`AptFileKind::Unknown`] with why, so
//! the apt steps after it are reported not locked rather than resolved
//! against sources the build does not have.

use std::collections::HashMap;

use crate::diagnostic::LineIndex;
use crate::source::coverage::{base_name, download_file, fetch_args, program_words, short};
use crate::source::model::{AptFileChange, AptFileKind};
use crate::source::shell::{Script, Sep, split_commands};

/// Whether `path` (absolute) is a file apt or dpkg reads for resolving, or
/// a directory of them.
pub fn is_apt_path(path: &str) -> bool {
    path == "/etc/apt"
        || path.starts_with("/etc/apt/")
        || path == "/usr/share/keyrings"
        || path.starts_with("/usr/share/keyrings/")
        || path == "/var/lib/dpkg/arch"
}

/// Whether a word as written names such a path.
fn mentions_apt(s: &str) -> bool {
    s.contains("/etc/apt") || s.contains("/usr/share/keyrings") || s.contains("/var/lib/dpkg/arch")
}

/// Programs that leave apt's files alone (or change only what freeze
/// follows otherwise: the apt steps themselves).
const HARMLESS: &[&str] = &[
    "mkdir",
    "chmod",
    "chown",
    "chgrp",
    "ls",
    "test",
    "[",
    "stat",
    "apt-get",
    "apt",
    "apt-cache",
    "apt-config",
    "aptitude",
    "dpkg-query",
    "grep",
    "true",
];

/// Finds the commands of `script` that change apt's files. Spans are in
/// the file; `lines` gives their line numbers in `text` (the whole file).
pub fn scan_apt_files(script: &Script, text: &str, lines: &LineIndex) -> Vec<AptFileChange> {
    // Text imagelock cannot split is reported by the install scanner.
    let Ok(cmds) = split_commands(script.text()) else {
        return Vec::new();
    };
    let st = script.text();
    let mut out = Vec::new();
    // Files fetched to a path outside apt's directories (`curl -o
    // /tmp/key.asc URL`) that a later command puts in place.
    let mut downloads: HashMap<String, String> = HashMap::new();
    // Open `if`/`case`/loops: what runs inside them is conditional.
    let mut depth = 0usize;
    let mut i = 0;
    while i < cmds.len() {
        let cmd = &cmds[i];
        let first = cmd
            .words
            .first()
            .and_then(|w| st.get(w.span.start..w.span.end))
            .unwrap_or("");
        match first {
            "if" | "case" | "while" | "until" | "for" => depth += 1,
            "fi" | "esac" | "done" => depth = depth.saturating_sub(1),
            _ => {}
        }
        let words = program_words(cmd, st);
        let Some(prog) = words.first().map(|w| base_name(&w.1).to_string()) else {
            i += 1;
            continue;
        };
        let args = &words[1..];
        // `> FILE` and `>> FILE` targets, as values (`None`: an expansion).
        let writes: Vec<(Option<String>, bool, String)> = cmd
            .redirects
            .iter()
            .filter_map(|(op, target)| {
                let op = st.get(op.start..op.end)?.trim();
                let op = op.trim_start_matches(|c: char| c.is_ascii_digit());
                if !matches!(op, ">" | ">>" | ">|" | "&>" | "&>>") {
                    return None;
                }
                let written = st.get(target.start..target.end)?;
                Some((plain(written), op.ends_with(">>"), written.to_string()))
            })
            .collect();
        // Whether a redirection goes into apt's files (or somewhere
        // imagelock cannot expand that names them).
        let into_apt = |w: &(Option<String>, bool, String)| match &w.0 {
            Some(t) => is_apt_path(t),
            None => mentions_apt(&w.2),
        };
        let piped = (cmd.after == Sep::Pipe)
            .then(|| cmds.get(i + 1))
            .flatten()
            .map(|next| (next, program_words(next, st)));
        let whole = match &piped {
            Some((next, _)) => crate::diagnostic::Span::new(cmd.span.start, next.span.end),
            None => cmd.span,
        };
        let span = script.file_span(whole);
        let line = lines.line_col(text, span.start).line;
        let mut found: Vec<(String, AptFileKind)> = Vec::new();
        let unknown = |why: String| AptFileKind::Unknown { why };
        // Where a pipe's reader writes: `tee [-a] FILE…`, `gpg --dearmor
        // -o FILE`, `gpg --dearmor > FILE`, `apt-key add -`.
        let reader_targets = |next: &crate::source::shell::SimpleCommand,
                              nw: &[(Option<String>, String)]|
         -> (Vec<(Option<String>, bool)>, bool) {
            let reader = nw.first().map(|w| base_name(&w.1)).unwrap_or("");
            let mut targets = Vec::new();
            let mut understood = true;
            match reader {
                "tee" => {
                    let append = nw[1..].iter().any(|w| w.1 == "-a" || w.1 == "--append");
                    for w in nw[1..].iter().filter(|w| !w.1.starts_with('-')) {
                        targets.push((w.0.clone(), append));
                    }
                }
                "gpg" => {
                    let mut k = 1;
                    while k < nw.len() {
                        let a = nw[k].1.as_str();
                        if a == "-o" || a == "--output" {
                            targets.push((nw.get(k + 1).and_then(|w| w.0.clone()), false));
                            k += 1;
                        } else if let Some(v) = a.strip_prefix("--output=") {
                            targets.push((plain(v), false));
                        } else if !a.starts_with('-') {
                            // `gpg --dearmor FILE` reads a file, not the pipe.
                            understood = false;
                        }
                        k += 1;
                    }
                }
                "apt-key" if nw[1..].iter().any(|w| w.1 == "add") => {
                    targets.push((
                        Some(format!(
                            "/etc/apt/trusted.gpg.d/apt-key-add-line-{line}.asc"
                        )),
                        false,
                    ));
                }
                _ => understood = false,
            }
            for (op, target) in &next.redirects {
                let op = st.get(op.start..op.end).unwrap_or("").trim();
                if matches!(op, ">" | ">>" | ">|") {
                    let written = st.get(target.start..target.end).unwrap_or("");
                    targets.push((plain(written), op == ">>"));
                }
            }
            (targets, understood)
        };
        match prog.as_str() {
            "echo" | "printf" => {
                let content = if prog == "echo" {
                    echo_text(args)
                } else {
                    printf_text(args)
                };
                let mut targets: Vec<(Option<String>, bool)> =
                    writes.iter().map(|w| (w.0.clone(), w.1)).collect();
                if let Some((next, nw)) = &piped {
                    targets.extend(reader_targets(next, nw).0);
                }
                for (target, append) in targets {
                    match (target, &content) {
                        (Some(t), Ok(c)) if is_apt_path(&t) => found.push((
                            t,
                            AptFileKind::Write {
                                content: c.clone(),
                                append,
                            },
                        )),
                        (Some(t), Err(why)) if is_apt_path(&t) => {
                            found.push((t, unknown(why.clone())));
                        }
                        (None, _) => {}
                        _ => {}
                    }
                }
            }
            "curl" | "wget" => {
                let (url, _) = fetch_args(&prog, args);
                let mut targets: Vec<(Option<String>, bool)> =
                    writes.iter().map(|w| (w.0.clone(), w.1)).collect();
                let mut reader_unknown = None;
                if let Some((next, nw)) = &piped {
                    let (t, understood) = reader_targets(next, nw);
                    let next_text = st.get(next.span.start..next.span.end).unwrap_or("");
                    let redirected_into_apt = next
                        .redirects
                        .iter()
                        .any(|(_, t)| mentions_apt(st.get(t.start..t.end).unwrap_or("")));
                    if !understood {
                        if mentions_apt(next_text) || redirected_into_apt {
                            reader_unknown = Some(next_text.to_string());
                        }
                    } else {
                        targets.extend(t);
                    }
                } else if let Some(f) =
                    download_file(st.get(cmd.span.start..cmd.span.end).unwrap_or(""))
                {
                    targets.push((Some(f), false));
                }
                for (target, _) in &targets {
                    match (target, &url) {
                        (Some(t), Some(u)) if is_apt_path(t) => {
                            found.push((t.clone(), AptFileKind::Fetch { url: u.clone() }));
                        }
                        (Some(t), None) if is_apt_path(t) => found.push((
                            t.clone(),
                            unknown("it fetches a URL imagelock cannot expand".into()),
                        )),
                        (Some(t), Some(u)) => {
                            downloads.insert(t.clone(), u.clone());
                        }
                        _ => {}
                    }
                }
                if let Some(reader) = reader_unknown {
                    found.push((
                        "/etc/apt".into(),
                        unknown(format!(
                            "`{}` changes apt's files in a way imagelock does not read",
                            reader.split_whitespace().next().unwrap_or("")
                        )),
                    ));
                }
            }
            "dpkg" => {
                let mut k = 0;
                while k < args.len() {
                    if args[k].1 == "--add-architecture" {
                        match args.get(k + 1).and_then(|a| a.0.clone()) {
                            Some(arch) => found.push((
                                "/var/lib/dpkg/arch".into(),
                                AptFileKind::Write {
                                    content: format!("{arch}\n"),
                                    append: true,
                                },
                            )),
                            None => found.push((
                                "/var/lib/dpkg/arch".into(),
                                unknown("it adds an architecture imagelock cannot expand".into()),
                            )),
                        }
                        k += 1;
                    }
                    k += 1;
                }
            }
            "gpg" => {
                // `gpg --dearmor -o KEYRING FILE` of a file fetched before.
                let mut output = None;
                let mut input = None;
                let mut k = 0;
                while k < args.len() {
                    let a = args[k].1.as_str();
                    if a == "-o" || a == "--output" {
                        output = Some(args.get(k + 1).and_then(|w| w.0.clone()));
                        k += 1;
                    } else if let Some(v) = a.strip_prefix("--output=") {
                        output = Some(plain(v));
                    } else if !a.starts_with('-') {
                        input = args[k].0.clone();
                    }
                    k += 1;
                }
                let mut written_out = None;
                for w in &writes {
                    output = Some(w.0.clone());
                    written_out = Some(w.2.clone());
                }
                let apt_out = match &output {
                    Some(Some(p)) => is_apt_path(p),
                    Some(None) => {
                        written_out.as_deref().is_some_and(mentions_apt)
                            || args.iter().any(|a| mentions_apt(&a.1))
                    }
                    None => false,
                };
                if let Some(out_path) = output.filter(|_| apt_out) {
                    let kind = match (&out_path, input.as_ref().and_then(|f| downloads.get(f))) {
                        (Some(_), Some(url)) => AptFileKind::Fetch { url: url.clone() },
                        _ => unknown(
                            "it writes a key from a file or input imagelock does not read".into(),
                        ),
                    };
                    found.push((out_path.unwrap_or_else(|| "/etc/apt".into()), kind));
                }
            }
            "rm" => {
                for a in args.iter().filter(|a| !a.1.starts_with('-')) {
                    match &a.0 {
                        Some(p) if is_apt_path(p) => {
                            let dir_glob = p
                                .strip_suffix("/*")
                                .is_some_and(|d| !d.contains(['*', '?', '[']));
                            if p.contains(['?', '[']) || (p.contains('*') && !dir_glob) {
                                found.push((
                                    p.clone(),
                                    unknown("it removes files by a pattern".into()),
                                ));
                            } else {
                                found.push((p.clone(), AptFileKind::Remove));
                            }
                        }
                        None if mentions_apt(&a.1) => found.push((
                            a.1.clone(),
                            unknown("it removes a path imagelock cannot expand".into()),
                        )),
                        _ => {}
                    }
                }
            }
            "add-apt-repository" | "apt-add-repository" => found.push((
                "/etc/apt/sources.list.d".into(),
                unknown(format!(
                    "`{prog}` adds a source (and a key) imagelock does not derive"
                )),
            )),
            p if HARMLESS.contains(&p) || (p == "install" && args.iter().any(|a| a.1 == "-d")) => {
                // Output redirected into apt's files still changes them.
                for w in writes.iter().filter(|w| into_apt(w)) {
                    {
                        found.push((
                            w.0.clone().unwrap_or_else(|| "/etc/apt".into()),
                            unknown(format!("the output of `{p}` is written to it")),
                        ));
                    }
                }
            }
            _ => {
                let touches =
                    words.iter().any(|w| mentions_apt(&w.1)) || writes.iter().any(into_apt);
                if touches {
                    let path = words
                        .iter()
                        .filter_map(|w| w.0.clone())
                        .find(|w| is_apt_path(w))
                        .unwrap_or_else(|| "/etc/apt".into());
                    found.push((
                        path,
                        unknown(format!(
                            "`{prog}` changes apt's files in a way imagelock does not read"
                        )),
                    ));
                }
            }
        }
        let conditional = depth > 0 || cmd.before == Sep::Or;
        let shown = match &piped {
            Some((_, nw)) => format!("{} | {}", short(&words), short(nw)),
            None => short(&words),
        };
        for (path, kind) in found {
            let kind = match kind {
                AptFileKind::Unknown { .. } => kind,
                _ if conditional => {
                    unknown("it runs only under a condition imagelock cannot decide".into())
                }
                k => k,
            };
            out.push(AptFileChange {
                path,
                kind,
                text: shown.clone(),
                span,
                line,
            });
        }
        i += if piped.is_some() { 2 } else { 1 };
    }
    out
}

/// A word's value when it is plain text (quotes removed); `None` when it
/// holds an expansion.
fn plain(written: &str) -> Option<String> {
    let w = written.trim();
    if w.contains(['$', '`', '\\']) {
        return None;
    }
    if let Some(inner) = w.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        return Some(inner.to_string());
    }
    if let Some(inner) = w.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        return (!inner.contains('"')).then(|| inner.to_string());
    }
    (!w.contains(['\'', '"'])).then(|| w.to_string())
}

/// What `echo ARGS` prints, or why imagelock cannot know.
fn echo_text(args: &[(Option<String>, String)]) -> Result<String, String> {
    let mut newline = true;
    let mut escapes = false;
    let mut k = 0;
    while let Some(a) = args.get(k) {
        match a.1.as_str() {
            "-n" => newline = false,
            "-e" => escapes = true,
            "-E" => {}
            "-ne" | "-en" => {
                newline = false;
                escapes = true;
            }
            _ => break,
        }
        k += 1;
    }
    let mut parts = Vec::new();
    for a in &args[k..] {
        parts.push(a.0.clone().ok_or_else(|| {
            format!(
                "its text `{}` holds an expansion imagelock cannot read",
                a.1
            )
        })?);
    }
    let mut text = parts.join(" ");
    if text.contains('\\') {
        if !escapes {
            return Err(
                "its text has backslash escapes, which `sh` and `bash` echo differently".into(),
            );
        }
        text = unescape(&text)?;
    }
    if newline {
        text.push('\n');
    }
    Ok(text)
}

/// What `printf FORMAT ARGS` prints for a format of text, escapes and
/// `%s`; otherwise why imagelock cannot know. As POSIX says, the format is
/// used again while arguments remain (`printf '%s\n' a b` prints two
/// lines), and a `%s` past the last argument prints nothing.
fn printf_text(args: &[(Option<String>, String)]) -> Result<String, String> {
    let values: Vec<String> = args
        .iter()
        .map(|a| {
            a.0.clone().ok_or_else(|| {
                format!(
                    "its text `{}` holds an expansion imagelock cannot read",
                    a.1
                )
            })
        })
        .collect::<Result<_, _>>()?;
    let Some((format, rest)) = values.split_first() else {
        return Ok(String::new());
    };
    let pieces: Vec<&str> = format.split("%s").collect();
    if pieces.iter().any(|p| p.contains('%')) {
        return Err("its format is more than text, escapes and `%s`".into());
    }
    let per_use = pieces.len() - 1;
    if per_use == 0 && !rest.is_empty() {
        return Err("it gives arguments to a format without `%s`".into());
    }
    let mut out = String::new();
    let mut values = rest.iter();
    loop {
        out.push_str(&unescape(pieces[0])?);
        for p in &pieces[1..] {
            out.push_str(values.next().map_or("", String::as_str));
            out.push_str(&unescape(p)?);
        }
        if values.len() == 0 {
            return Ok(out);
        }
    }
}

fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            other => {
                return Err(format!(
                    "its text has the escape `\\{}`, which imagelock does not read",
                    other.map(String::from).unwrap_or_default()
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(text: &str) -> Vec<AptFileChange> {
        let script = Script::from_file_piece(text, 0);
        scan_apt_files(&script, text, &LineIndex::new(text))
    }

    #[test]
    fn sources_and_keys_written_by_commands_are_read() {
        let c = scan(
            "echo \"deb [signed-by=/etc/apt/keyrings/x.gpg] http://r.example/debian stable main\" > /etc/apt/sources.list.d/x.list \\\n\
             && curl -fsSL https://r.example/key.asc | gpg --dearmor -o /etc/apt/keyrings/x.gpg \\\n\
             && echo 'deb http://r.example/debian extra main' | tee -a /etc/apt/sources.list.d/x.list > /dev/null \\\n\
             && dpkg --add-architecture i386 \\\n\
             && rm /etc/apt/sources.list.d/old.list \\\n\
             && curl -fsSL -o /tmp/k.asc https://r.example/k2.asc && gpg --dearmor -o /usr/share/keyrings/k2.gpg /tmp/k.asc \\\n\
             && printf 'Package: *\\nPin: origin r.example\\nPin-Priority: %s\\n' 900 > /etc/apt/preferences.d/r",
        );
        let kinds: Vec<(&str, &AptFileKind)> =
            c.iter().map(|c| (c.path.as_str(), &c.kind)).collect();
        assert_eq!(
            kinds,
            vec![
                (
                    "/etc/apt/sources.list.d/x.list",
                    &AptFileKind::Write {
                        content: "deb [signed-by=/etc/apt/keyrings/x.gpg] http://r.example/debian stable main\n".into(),
                        append: false
                    }
                ),
                (
                    "/etc/apt/keyrings/x.gpg",
                    &AptFileKind::Fetch {
                        url: "https://r.example/key.asc".into()
                    }
                ),
                (
                    "/etc/apt/sources.list.d/x.list",
                    &AptFileKind::Write {
                        content: "deb http://r.example/debian extra main\n".into(),
                        append: true
                    }
                ),
                (
                    "/var/lib/dpkg/arch",
                    &AptFileKind::Write {
                        content: "i386\n".into(),
                        append: true
                    }
                ),
                ("/etc/apt/sources.list.d/old.list", &AptFileKind::Remove),
                (
                    "/usr/share/keyrings/k2.gpg",
                    &AptFileKind::Fetch {
                        url: "https://r.example/k2.asc".into()
                    }
                ),
                (
                    "/etc/apt/preferences.d/r",
                    &AptFileKind::Write {
                        content: "Package: *\nPin: origin r.example\nPin-Priority: 900\n".into(),
                        append: false
                    }
                ),
            ]
        );
        assert_eq!(c[0].line, 1);
        assert_eq!(c[1].line, 2);
    }

    /// The snapshot list `rewrite` writes (`printf '%s\n' LINE…`) is read
    /// back as the lines it prints: the format is used once per argument.
    #[test]
    fn printf_uses_its_format_again_while_arguments_remain() {
        let c = scan(
            "printf '%s\\n' 'deb http://s.example/a/ bookworm main' 'deb http://s.example/a/ bookworm-security main' > /etc/apt/sources.list.d/s.list \\\n\
             && printf '%s=%s\\n' a 1 b > /etc/apt/sources.list.d/t.list",
        );
        let contents: Vec<&AptFileKind> = c.iter().map(|c| &c.kind).collect();
        assert_eq!(
            contents,
            vec![
                &AptFileKind::Write {
                    content: "deb http://s.example/a/ bookworm main\ndeb http://s.example/a/ bookworm-security main\n".into(),
                    append: false
                },
                &AptFileKind::Write {
                    content: "a=1\nb=\n".into(),
                    append: false
                },
            ]
        );
        let c = scan(
            "printf 'deb http://s.example/a/ x main\\n' extra > /etc/apt/sources.list.d/u.list",
        );
        assert!(
            matches!(&c[0].kind, AptFileKind::Unknown { why } if why.contains("without `%s`")),
            "{c:?}"
        );
    }

    #[test]
    fn what_imagelock_cannot_read_is_kept_with_why() {
        for (text, why) in [
            (
                "echo \"deb http://r.example/debian $(lsb_release -cs) main\" > /etc/apt/sources.list.d/x.list",
                "expansion",
            ),
            (
                "add-apt-repository -y ppa:deadsnakes/ppa",
                "add-apt-repository",
            ),
            (
                "sed -i 's/deb.debian.org/mirror.example/' /etc/apt/sources.list",
                "`sed`",
            ),
            (
                "if [ -n \"$X\" ]; then echo 'deb http://r.example/d s main' > /etc/apt/sources.list.d/x.list; fi",
                "condition",
            ),
            ("cp /tmp/x.list /etc/apt/sources.list.d/", "`cp`"),
            (
                "curl -fsSL https://r.example/k | gpg --dearmor /tmp/other > /etc/apt/keyrings/k.gpg",
                "`gpg`",
            ),
            ("rm /etc/apt/sources.list.d/*.list", "pattern"),
        ] {
            let c = scan(text);
            assert!(
                c.iter()
                    .any(|c| matches!(&c.kind, AptFileKind::Unknown { why: w } if w.contains(why))),
                "{text}: {c:?}"
            );
        }
        for text in [
            "mkdir -p /etc/apt/keyrings && chmod 0755 /etc/apt/keyrings",
            "rm -rf /var/lib/apt/lists/*",
            "apt-get update && apt-get install -y curl",
            "echo hello > /tmp/x",
        ] {
            assert_eq!(scan(text), Vec::new(), "{text}");
        }
    }
}

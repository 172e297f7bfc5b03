//! Install commands found in shell text (`RUN` bodies, `%post` sections).

use std::collections::HashMap;

use serde::Serialize;

use crate::diagnostic::Span;
use crate::source::expanded::Expanded;
use crate::source::shell::{
    LexError, MAX_DEPTH, Script, SimpleCommand, VarState, Word, expand_word, split_commands,
};

/// The program that installs packages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Manager {
    Pip,
    UvPip,
    Conda,
    Mamba,
    Micromamba,
    AptGet,
    Apt,
    Dnf,
    Microdnf,
    Yum,
    Apk,
}

/// Which kind of packages a manager installs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ecosystem {
    Python,
    Conda,
    Os,
}

impl Manager {
    pub const fn ecosystem(self) -> Ecosystem {
        match self {
            Manager::Pip | Manager::UvPip => Ecosystem::Python,
            Manager::Conda | Manager::Mamba | Manager::Micromamba => Ecosystem::Conda,
            Manager::AptGet
            | Manager::Apt
            | Manager::Dnf
            | Manager::Microdnf
            | Manager::Yum
            | Manager::Apk => Ecosystem::Os,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Manager::Pip => "pip",
            Manager::UvPip => "uv-pip",
            Manager::Conda => "conda",
            Manager::Mamba => "mamba",
            Manager::Micromamba => "micromamba",
            Manager::AptGet => "apt-get",
            Manager::Apt => "apt",
            Manager::Dnf => "dnf",
            Manager::Microdnf => "microdnf",
            Manager::Yum => "yum",
            Manager::Apk => "apk",
        }
    }
}

/// What the command does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// `pip install`, `conda install`, `apt-get install`…
    Install,
    /// `conda create` / `micromamba create`: a new, empty environment.
    Create,
    /// `conda env create -f` / `mamba env create -f`.
    EnvCreate,
    /// `conda env update -f` / `mamba env update -f`.
    EnvUpdate,
}

/// Where a command installs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "kebab-case")]
pub enum Target {
    /// `-n NAME`
    CondaName(Expanded),
    /// `-p PREFIX`
    CondaPrefix(Expanded),
    /// The interpreter or pip executable as written (`/opt/conda/bin/pip`,
    /// `python3.11 -m pip`).
    Python(Expanded),
}

/// The role of a file named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileRole {
    /// `pip install -r`
    Requirements,
    /// `pip install -c`
    Constraints,
    /// `pip install -e PATH`
    Editable,
    /// `conda install --file`
    CondaSpecs,
    /// `conda env create -f environment.yml`
    Environment,
}

/// A file an install command reads, by its path inside the image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileArg {
    pub role: FileRole,
    pub path: Expanded,
}

/// One install command with everything a resolver needs from it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InstallCommand {
    pub manager: Manager,
    pub action: Action,
    /// The command as written (one simple command of the shell text).
    pub text: String,
    /// The command's span in the file.
    pub span: Span,
    /// Package specs, unquoted and expanded, each with its span.
    pub specs: Vec<Expanded>,
    pub target: Option<Target>,
    /// `-c`/`--channel` in order (conda), as written.
    pub channels: Vec<Expanded>,
    pub override_channels: bool,
    /// `-i`/`--index-url` (pip).
    pub index_url: Option<Expanded>,
    /// `--extra-index-url` (pip), in order.
    pub extra_index_urls: Vec<Expanded>,
    /// `-r`, `-c`, `-e`, `--file`, `-f` arguments.
    pub files: Vec<FileArg>,
    /// Every other option, as written (`--pre`, `--no-deps`, `-U`, `-y`…).
    pub options: Vec<String>,
}

/// Shell text that cannot be read (an unbalanced quote, an unterminated
/// expansion), with its span in the file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ShellError {
    /// Where in the file; for a quote, the opening quote.
    pub span: Span,
    pub message: String,
    pub hint: Option<String>,
}

/// What `conda config` does to the channel list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChannelAction {
    /// `--add channels X`: conda puts X first, like `--prepend`.
    Add,
    Append,
    Prepend,
    Remove,
}

/// `conda config --add|--append|--prepend|--remove channels X`: changes
/// the channels that later installs without `--override-channels` use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChannelConfig {
    pub manager: Manager,
    pub action: ChannelAction,
    pub channel: Expanded,
    /// The command as written.
    pub text: String,
    pub span: Span,
}

/// A command of interest found in shell text, in text order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum ShellEvent {
    Install(Box<InstallCommand>),
    ChannelConfig(ChannelConfig),
}

/// Finds every install command in `script`, in order.
///
/// `lookup` gives the value of a variable the script did not set itself
/// (build arguments and environment in scope); variables it does not know
/// are reported in [`Expanded::unresolved`], never guessed.
pub fn find_install_commands(
    script: &Script,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<InstallCommand>, ShellError> {
    Ok(scan_script(script, lookup)?
        .into_iter()
        .filter_map(|e| match e {
            ShellEvent::Install(c) => Some(*c),
            ShellEvent::ChannelConfig(_) => None,
        })
        .collect())
}

/// Like [`find_install_commands`], and also reports `conda config` channel
/// changes so the caller can apply them to later installs.
pub fn scan_script(
    script: &Script,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<ShellEvent>, ShellError> {
    let mut scanner = Scanner {
        lookup,
        vars: HashMap::new(),
        events: Vec::new(),
    };
    scanner.script(script, 0)?;
    Ok(scanner.events)
}

struct Scanner<'l> {
    lookup: &'l dyn Fn(&str) -> Option<String>,
    /// Variables the script set, unset or made unknown, over `lookup`.
    vars: HashMap<String, VarState>,
    events: Vec<ShellEvent>,
}

/// A word after expansion, with where it came from.
#[derive(Clone, Debug)]
struct Arg {
    /// Span of the whole word in the script text.
    span: Span,
    written: String,
    value: Option<String>,
    unresolved: Vec<String>,
    offsets: Vec<usize>,
}

impl Arg {
    /// The value when known, else the written text: options are matched on it.
    fn key(&self) -> &str {
        self.value.as_deref().unwrap_or(&self.written)
    }

    fn is_option(&self) -> bool {
        self.key().starts_with('-') && self.key().len() > 1
    }
}

/// One simple command ready for recognition.
struct Cmd<'s> {
    script: &'s Script,
    span: Span,
    args: Vec<Arg>,
}

impl Cmd<'_> {
    fn expanded(&self, a: &Arg) -> Expanded {
        Expanded {
            written: a.written.clone(),
            value: a.value.clone(),
            unresolved: a.unresolved.clone(),
            span: self.script.file_span(a.span),
        }
    }

    /// `value` of `--opt=value` as an `Expanded` (value part only).
    fn expanded_suffix(&self, a: &Arg, skip_chars: usize) -> Expanded {
        let mut e = self.expanded(a);
        if let Some(v) = &mut e.value {
            *v = v.chars().skip(skip_chars).collect();
        }
        // The written value starts right after the source byte of the last
        // skipped character (the `=` or the short option letter), so quotes
        // that open the value stay part of it: `--prefix="${DIR}"`.
        let start = skip_chars
            .checked_sub(1)
            .and_then(|i| a.offsets.get(i))
            .map(|&last| last + 1)
            .or_else(|| {
                // No map (an unresolved value): the option name is plain
                // text, so it has as many characters written as expanded.
                let text = self.script.text().get(a.span.start..a.span.end)?;
                text.char_indices()
                    .nth(skip_chars)
                    .map(|(i, _)| a.span.start + i)
            });
        if let Some(first) = start {
            let start = first.max(a.span.start);
            e.span = self.script.file_span(Span::new(start, a.span.end));
            e.written = self
                .script
                .text()
                .get(start..a.span.end)
                .unwrap_or(&a.written)
                .to_string();
        }
        e
    }

    fn text(&self) -> String {
        self.script
            .text()
            .get(self.span.start..self.span.end)
            .unwrap_or_default()
            .to_string()
    }
}

fn shell_error(script: &Script, e: LexError) -> ShellError {
    ShellError {
        span: script.file_span(e.span),
        message: e.message,
        hint: e.hint,
    }
}

fn is_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(f) if f == '_' || f.is_ascii_alphabetic())
        && c.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// `NAME=…` / `NAME+=…` written as an assignment (unquoted name).
fn assignment_name(word: &Word, text: &str) -> Option<String> {
    let raw = text.get(word.span.start..word.span.end)?;
    let eq = raw.find('=')?;
    let name = raw[..eq].strip_suffix('+').unwrap_or(&raw[..eq]);
    is_name(name).then(|| name.to_string())
}

/// The program's name: the last path component, when it is plain text.
fn program(a: &Arg) -> Option<&str> {
    let s = a.value.as_deref().unwrap_or(&a.written);
    let base = s.rsplit('/').next().unwrap_or(s);
    let base = base.trim_matches(|c| c == '"' || c == '\'');
    (!base.is_empty() && !base.contains(['$', '{', '`'])).then_some(base)
}

fn is_pip(name: &str) -> bool {
    name.strip_prefix("pip")
        .is_some_and(|v| v.chars().all(|c| c.is_ascii_digit() || c == '.'))
}

fn is_python(name: &str) -> bool {
    name.strip_prefix("python")
        .is_some_and(|v| v.chars().all(|c| c.is_ascii_digit() || c == '.'))
}

const SHELLS: &[&str] = &["sh", "bash", "dash", "ash", "zsh", "ksh"];

impl Scanner<'_> {
    fn var(&self, name: &str) -> Option<VarState> {
        match self.vars.get(name) {
            Some(s) => Some(s.clone()),
            None => (self.lookup)(name).map(VarState::Set),
        }
    }

    fn script(&mut self, script: &Script, depth: usize) -> Result<(), ShellError> {
        let cmds = split_commands(script.text()).map_err(|e| shell_error(script, e))?;
        for cmd in cmds {
            self.command(script, &cmd, depth)?;
        }
        Ok(())
    }

    fn expand(&self, text: &str, word: &Word) -> Vec<Arg> {
        let written = text.get(word.span.start..word.span.end).unwrap_or_default();
        expand_word(text, word, &|n| self.var(n))
            .into_iter()
            .map(|f| Arg {
                span: word.span,
                written: written.to_string(),
                value: f.value,
                unresolved: f.unresolved,
                offsets: f.offsets,
            })
            .collect()
    }

    fn assign(&mut self, name: String, a: Option<&Arg>) {
        let state = match a {
            Some(Arg { value: Some(v), .. }) => match v.split_once('=') {
                Some((_, v)) => VarState::Set(v.to_string()),
                None => VarState::Set(String::new()),
            },
            _ => VarState::Unknown,
        };
        self.vars.insert(name, state);
    }

    fn command(
        &mut self,
        script: &Script,
        cmd: &SimpleCommand,
        depth: usize,
    ) -> Result<(), ShellError> {
        let text = script.text();
        let mut words = &cmd.words[..];
        // Keywords of compound commands: the command follows them.
        while let Some(w) = words.first() {
            match w.literal().as_deref() {
                Some("if" | "then" | "else" | "elif" | "do" | "while" | "until" | "!" | "{") => {
                    words = &words[1..];
                }
                Some("for" | "select") => {
                    if let Some(n) = words.get(1).and_then(Word::literal) {
                        self.vars.insert(n, VarState::Unknown);
                    }
                    return Ok(());
                }
                Some("fi" | "done" | "esac" | "}" | "case" | "function" | "in") => return Ok(()),
                _ => break,
            }
        }
        // Leading assignments: alone they set shell variables; before a
        // command they only change its environment.
        let start = words.first().map_or(cmd.span.start, |w| w.span.start);
        let n_assign = words
            .iter()
            .take_while(|w| assignment_name(w, text).is_some())
            .count();
        if n_assign == words.len() {
            for w in words {
                let args = self.expand(text, w);
                let name = assignment_name(w, text).unwrap_or_default();
                // Assigned values are not field-split.
                let joined = join_fields(&args);
                self.assign(name, joined.as_ref());
            }
            return Ok(());
        }
        let words = &words[n_assign..];
        let mut args: Vec<Arg> = Vec::new();
        for w in words {
            args.extend(self.expand(text, w));
        }
        let cmd = Cmd {
            script,
            span: Span::new(start, cmd.span.end),
            args,
        };
        self.simple(&cmd, 0, depth, None)
    }

    /// Recognises the command starting at `args[i]`, peeling off prefixes
    /// like `sudo` and `env`.
    fn simple(
        &mut self,
        cmd: &Cmd<'_>,
        mut i: usize,
        depth: usize,
        run_target: Option<Target>,
    ) -> Result<(), ShellError> {
        let args = &cmd.args;
        loop {
            let Some(prog) = args.get(i).and_then(program) else {
                return Ok(());
            };
            match prog {
                "sudo" => {
                    i += 1;
                    while let Some(a) = args.get(i) {
                        let k = a.key();
                        if matches!(
                            k,
                            "-u" | "-g" | "-p" | "-C" | "-D" | "-r" | "-t" | "-T" | "-U" | "-h"
                        ) {
                            i += 2;
                        } else if a.is_option() || is_assignment(k) {
                            i += 1;
                        } else {
                            break;
                        }
                    }
                }
                "env" => {
                    i += 1;
                    while let Some(a) = args.get(i) {
                        let k = a.key();
                        if matches!(k, "-u" | "-C" | "--unset" | "--chdir") {
                            i += 2;
                        } else if a.is_option() || k == "-" || is_assignment(k) {
                            i += 1;
                        } else {
                            break;
                        }
                    }
                }
                "exec" | "nohup" | "command" | "builtin" | "eatmydata" | "fakeroot" | "time"
                | "stdbuf" | "ionice" => {
                    i += 1;
                    while let Some(a) = args.get(i) {
                        if matches!(a.key(), "-a" | "-f" | "-o" | "-c" | "-n") && prog != "command"
                        {
                            i += 2;
                        } else if a.is_option() {
                            i += 1;
                        } else {
                            break;
                        }
                    }
                }
                "nice" => {
                    i += 1;
                    while let Some(a) = args.get(i) {
                        if a.key() == "-n" || a.key() == "--adjustment" {
                            i += 2;
                        } else if a.is_option() {
                            i += 1;
                        } else {
                            break;
                        }
                    }
                }
                "timeout" => {
                    i += 1;
                    while let Some(a) = args.get(i) {
                        if matches!(a.key(), "-s" | "-k" | "--signal" | "--kill-after") {
                            i += 2;
                        } else if a.is_option() {
                            i += 1;
                        } else {
                            break;
                        }
                    }
                    i += 1; // the duration
                }
                "gosu" | "su-exec" => i += 2,
                "export" | "declare" | "typeset" | "local" | "readonly" => {
                    for a in &args[i + 1..] {
                        if let Some(name) = a
                            .written
                            .split_once('=')
                            .map(|(n, _)| n.trim_end_matches('+'))
                            .filter(|n| is_name(n))
                        {
                            let a = (a.value.is_some()).then_some(a);
                            self.assign(name.to_string(), a);
                        }
                    }
                    return Ok(());
                }
                "unset" => {
                    for a in &args[i + 1..] {
                        if !a.is_option() && is_name(a.key()) {
                            self.vars.insert(a.key().to_string(), VarState::Unset);
                        }
                    }
                    return Ok(());
                }
                "read" | "mapfile" | "readarray" => {
                    for a in &args[i + 1..] {
                        if !a.is_option() && is_name(a.key()) {
                            self.vars.insert(a.key().to_string(), VarState::Unknown);
                        }
                    }
                    return Ok(());
                }
                p if SHELLS.contains(&p) => return self.shell_c(cmd, i + 1, depth),
                p if is_pip(p) => {
                    let target = run_target.or_else(|| {
                        explicit_pip(&args[i], p).then(|| Target::Python(cmd.expanded(&args[i])))
                    });
                    return self.pip(cmd, i + 1, Manager::Pip, target);
                }
                p if is_python(p) => {
                    // `python [-u -I …] -m pip …`
                    let mut j = i + 1;
                    while let Some(a) = args.get(j) {
                        let k = a.key();
                        if k == "-m" {
                            if args.get(j + 1).map(Arg::key) == Some("pip") {
                                let target = run_target
                                    .unwrap_or_else(|| Target::Python(cmd.expanded(&args[i])));
                                return self.pip(cmd, j + 2, Manager::Pip, Some(target));
                            }
                            return Ok(());
                        }
                        if k == "-mpip" {
                            let target = run_target
                                .unwrap_or_else(|| Target::Python(cmd.expanded(&args[i])));
                            return self.pip(cmd, j + 1, Manager::Pip, Some(target));
                        }
                        if k == "-W" || k == "-X" {
                            j += 2;
                        } else if a.is_option() {
                            j += 1;
                        } else {
                            return Ok(());
                        }
                    }
                    return Ok(());
                }
                "uv" => {
                    if args.get(i + 1).map(Arg::key) == Some("pip") {
                        return self.pip(cmd, i + 2, Manager::UvPip, run_target);
                    }
                    return Ok(());
                }
                "conda" | "mamba" | "micromamba" => {
                    let manager = match prog {
                        "conda" => Manager::Conda,
                        "mamba" => Manager::Mamba,
                        _ => Manager::Micromamba,
                    };
                    return self.conda(cmd, i + 1, manager, depth);
                }
                "apt-get" | "apt" | "dnf" | "microdnf" | "yum" | "apk" => {
                    let manager = match prog {
                        "apt-get" => Manager::AptGet,
                        "apt" => Manager::Apt,
                        "dnf" => Manager::Dnf,
                        "microdnf" => Manager::Microdnf,
                        "yum" => Manager::Yum,
                        _ => Manager::Apk,
                    };
                    self.os(cmd, i + 1, manager);
                    return Ok(());
                }
                _ => return Ok(()),
            }
        }
    }

    /// `sh [-flags] -c 'script'`: the string is scanned as shell text.
    fn shell_c(&mut self, cmd: &Cmd<'_>, mut i: usize, depth: usize) -> Result<(), ShellError> {
        let args = &cmd.args;
        let mut has_c = false;
        while let Some(a) = args.get(i) {
            let k = a.key();
            if k == "-o" || k == "+o" {
                i += 2;
            } else if k.starts_with('-') && k.len() > 1 && !k.starts_with("--") {
                has_c |= k.contains('c');
                i += 1;
            } else if k.starts_with("--") || k.starts_with('+') {
                i += 1;
            } else {
                break;
            }
        }
        if !has_c || depth >= MAX_DEPTH {
            return Ok(());
        }
        let Some(a) = args.get(i) else { return Ok(()) };
        let Some(value) = &a.value else { return Ok(()) };
        // The inner script maps each character back to the file.
        let mut inner = Script::new();
        let mut chars = value.char_indices().peekable();
        let mut offsets = a.offsets.iter();
        let mut run_start: Option<(usize, usize)> = None; // (value byte, file offset)
        let mut prev_file: Option<(usize, usize)> = None; // (file offset, len)
        while let Some((b, ch)) = chars.next() {
            let at = offsets.next().copied().unwrap_or(a.span.start);
            let file = cmd.script.file_offset(at);
            let contiguous = prev_file.is_some_and(|(f, l)| f + l == file);
            if !contiguous {
                if let Some((rb, rf)) = run_start.take() {
                    inner.push(&value[rb..b], rf);
                }
                run_start = Some((b, file));
            }
            prev_file = Some((file, ch.len_utf8()));
            if chars.peek().is_none()
                && let Some((rb, rf)) = run_start.take()
            {
                inner.push(&value[rb..], rf);
            }
        }
        self.script(&inner, depth + 1)
    }

    fn pip(
        &mut self,
        cmd: &Cmd<'_>,
        mut i: usize,
        manager: Manager,
        mut target: Option<Target>,
    ) -> Result<(), ShellError> {
        let args = &cmd.args;
        let mut options = Vec::new();
        // Global options may come before the subcommand.
        loop {
            let Some(a) = args.get(i) else { return Ok(()) };
            if a.key() == "install" {
                i += 1;
                break;
            }
            if !a.is_option() {
                return Ok(());
            }
            options.push(a.written.clone());
            let takes = matches!(
                a.key(),
                "--cache-dir"
                    | "--log"
                    | "--proxy"
                    | "--timeout"
                    | "--retries"
                    | "--exists-action"
                    | "--trusted-host"
                    | "--cert"
                    | "--client-cert"
                    | "--python"
                    | "--log-file"
                    | "--keyring-provider"
                    | "--use-feature"
                    | "--use-deprecated"
                    | "--resume-retries"
            );
            i += if takes && !a.key().contains('=') {
                2
            } else {
                1
            };
        }
        let mut ic = InstallCommand {
            manager,
            action: Action::Install,
            text: cmd.text(),
            span: cmd.script.file_span(cmd.span),
            specs: Vec::new(),
            target: None,
            channels: Vec::new(),
            override_channels: false,
            index_url: None,
            extra_index_urls: Vec::new(),
            files: Vec::new(),
            options,
        };
        let mut only_positional = false;
        while let Some(a) = args.get(i) {
            i += 1;
            if only_positional || !a.is_option() {
                ic.specs.push(cmd.expanded(a));
                continue;
            }
            let k = a.key();
            if k == "--" {
                only_positional = true;
                continue;
            }
            let Some((opt, value, used_next)) =
                option_value(cmd, a, args.get(i), PIP_VALUE_SHORT, PIP_VALUE_LONG)
            else {
                ic.options.push(a.written.clone());
                continue;
            };
            if used_next {
                i += 1;
            }
            match opt.as_str() {
                "-r" | "--requirement" | "--requirements" => ic.files.push(FileArg {
                    role: FileRole::Requirements,
                    path: value,
                }),
                "-c" | "--constraint" | "--constraints" => ic.files.push(FileArg {
                    role: FileRole::Constraints,
                    path: value,
                }),
                "-e" | "--editable" => ic.files.push(FileArg {
                    role: FileRole::Editable,
                    path: value,
                }),
                "-i" | "--index-url" | "--default-index" => ic.index_url = Some(value),
                "--extra-index-url" | "--index" => ic.extra_index_urls.push(value),
                "-p" | "--python" if manager == Manager::UvPip => {
                    target = Some(Target::Python(value))
                }
                _ => {
                    let sep = if used_next { " " } else { "" };
                    let next = if used_next {
                        args[i - 1].written.as_str()
                    } else {
                        ""
                    };
                    ic.options.push(format!("{}{sep}{next}", a.written));
                }
            }
        }
        ic.target = target;
        self.events.push(ShellEvent::Install(Box::new(ic)));
        Ok(())
    }

    fn conda(
        &mut self,
        cmd: &Cmd<'_>,
        mut i: usize,
        manager: Manager,
        depth: usize,
    ) -> Result<(), ShellError> {
        let args = &cmd.args;
        let mut options = Vec::new();
        // Global options before the subcommand (`micromamba -r /opt/conda install`).
        let sub = loop {
            let Some(a) = args.get(i) else { return Ok(()) };
            i += 1;
            if !a.is_option() {
                break a.key().to_string();
            }
            options.push(a.written.clone());
            if matches!(a.key(), "-r" | "--root-prefix" | "--rc-file") {
                i += 1;
            }
        };
        let action = match sub.as_str() {
            "install" | "update" | "upgrade" => Action::Install,
            "create" => Action::Create,
            "env" => match args.get(i).map(Arg::key) {
                Some("create") => {
                    i += 1;
                    Action::EnvCreate
                }
                Some("update") => {
                    i += 1;
                    Action::EnvUpdate
                }
                _ => return Ok(()),
            },
            "run" => {
                // `conda run -n NAME pip install …`
                let mut target = None;
                while let Some(a) = args.get(i) {
                    if !a.is_option() {
                        break;
                    }
                    match option_value(cmd, a, args.get(i + 1), CONDA_VALUE_SHORT, CONDA_VALUE_LONG)
                    {
                        Some((opt, value, used_next)) => {
                            if opt == "-n" || opt == "--name" {
                                target = Some(Target::CondaName(value));
                            } else if opt == "-p" || opt == "--prefix" {
                                target = Some(Target::CondaPrefix(value));
                            }
                            i += if used_next { 2 } else { 1 };
                        }
                        None => i += 1,
                    }
                }
                return self.simple(cmd, i, depth, target);
            }
            "config" => {
                self.conda_config(cmd, i, manager);
                return Ok(());
            }
            _ => return Ok(()),
        };
        let mut ic = InstallCommand {
            manager,
            action,
            text: cmd.text(),
            span: cmd.script.file_span(cmd.span),
            specs: Vec::new(),
            target: None,
            channels: Vec::new(),
            override_channels: false,
            index_url: None,
            extra_index_urls: Vec::new(),
            files: Vec::new(),
            options,
        };
        let env_file = matches!(action, Action::EnvCreate | Action::EnvUpdate);
        while let Some(a) = args.get(i) {
            i += 1;
            if !a.is_option() {
                ic.specs.push(cmd.expanded(a));
                continue;
            }
            if a.key() == "--override-channels" {
                ic.override_channels = true;
                continue;
            }
            let Some((opt, value, used_next)) =
                option_value(cmd, a, args.get(i), CONDA_VALUE_SHORT, CONDA_VALUE_LONG)
            else {
                ic.options.push(a.written.clone());
                continue;
            };
            if used_next {
                i += 1;
            }
            match opt.as_str() {
                "-n" | "--name" => ic.target = Some(Target::CondaName(value)),
                "-p" | "--prefix" => ic.target = Some(Target::CondaPrefix(value)),
                "-c" | "--channel" => ic.channels.push(value),
                "-f" | "--file" => {
                    let v = value.value.as_deref().unwrap_or(&value.written);
                    let yaml = v.ends_with(".yml") || v.ends_with(".yaml");
                    let role = if env_file || yaml {
                        FileRole::Environment
                    } else {
                        FileRole::CondaSpecs
                    };
                    ic.files.push(FileArg { role, path: value });
                }
                _ => {
                    let next = if used_next {
                        format!(" {}", args[i - 1].written)
                    } else {
                        String::new()
                    };
                    ic.options.push(format!("{}{next}", a.written));
                }
            }
        }
        self.events.push(ShellEvent::Install(Box::new(ic)));
        Ok(())
    }

    fn conda_config(&mut self, cmd: &Cmd<'_>, mut i: usize, manager: Manager) {
        let args = &cmd.args;
        while let Some(a) = args.get(i) {
            let action = match a.key() {
                "--add" => Some(ChannelAction::Add),
                "--append" => Some(ChannelAction::Append),
                "--prepend" => Some(ChannelAction::Prepend),
                "--remove" => Some(ChannelAction::Remove),
                _ => None,
            };
            match action {
                Some(action) if args.get(i + 1).map(Arg::key) == Some("channels") => {
                    if let Some(ch) = args.get(i + 2) {
                        self.events.push(ShellEvent::ChannelConfig(ChannelConfig {
                            manager,
                            action,
                            channel: cmd.expanded(ch),
                            text: cmd.text(),
                            span: cmd.script.file_span(cmd.span),
                        }));
                    }
                    i += 3;
                }
                _ => i += 1,
            }
        }
    }

    fn os(&mut self, cmd: &Cmd<'_>, mut i: usize, manager: Manager) {
        let args = &cmd.args;
        let (sub, value_opts): (&[&str], &[&str]) = match manager {
            Manager::AptGet | Manager::Apt => (
                &["install"],
                &[
                    "-o",
                    "-t",
                    "-c",
                    "--option",
                    "--target-release",
                    "--config-file",
                ],
            ),
            Manager::Apk => (
                &["add"],
                &[
                    "-t",
                    "--virtual",
                    "-X",
                    "--repository",
                    "-p",
                    "--root",
                    "--arch",
                    "--repositories-file",
                    "--keys-dir",
                    "--cache-dir",
                ],
            ),
            _ => (
                &["install"],
                &[
                    "--setopt",
                    "--enablerepo",
                    "--disablerepo",
                    "--installroot",
                    "--releasever",
                    "-x",
                    "--exclude",
                    "--repo",
                    "--repoid",
                    "-c",
                    "--config",
                    "--forcearch",
                    "--nobest",
                ],
            ),
        };
        let mut options = Vec::new();
        let mut found = false;
        let mut specs = Vec::new();
        while let Some(a) = args.get(i) {
            i += 1;
            if a.is_option() {
                let k = a.key();
                if value_opts.contains(&k)
                    && let Some(n) = args.get(i)
                {
                    options.push(format!("{} {}", a.written, n.written));
                    i += 1;
                    continue;
                }
                options.push(a.written.clone());
            } else if !found {
                if !sub.contains(&a.key()) {
                    return;
                }
                found = true;
            } else {
                specs.push(cmd.expanded(a));
            }
        }
        if !found {
            return;
        }
        self.events
            .push(ShellEvent::Install(Box::new(InstallCommand {
                manager,
                action: Action::Install,
                text: cmd.text(),
                span: cmd.script.file_span(cmd.span),
                specs,
                target: None,
                channels: Vec::new(),
                override_channels: false,
                index_url: None,
                extra_index_urls: Vec::new(),
                files: Vec::new(),
                options,
            })));
    }
}

/// Several fields of one word joined back (for assignments, which the
/// shell does not split).
fn join_fields(args: &[Arg]) -> Option<Arg> {
    let first = args.first()?;
    if args.iter().any(|a| a.value.is_none()) {
        return Some(Arg {
            value: None,
            ..first.clone()
        });
    }
    let mut a = first.clone();
    a.value = Some(
        args.iter()
            .filter_map(|a| a.value.as_deref())
            .collect::<Vec<_>>()
            .join(" "),
    );
    Some(a)
}

fn is_assignment(s: &str) -> bool {
    s.split_once('=').is_some_and(|(n, _)| is_name(n))
}

/// `pip3.11` or a path names the interpreter; plain `pip`/`pip3` does not.
fn explicit_pip(a: &Arg, name: &str) -> bool {
    a.key().contains('/') || name.contains('.')
}

const PIP_VALUE_SHORT: &[char] = &['r', 'c', 'e', 'i', 'f', 't', 'C', 'p', 'b'];
const PIP_VALUE_LONG: &[&str] = &[
    "--requirement",
    "--requirements",
    "--constraint",
    "--constraints",
    "--editable",
    "--index-url",
    "--default-index",
    "--extra-index-url",
    "--index",
    "--find-links",
    "--target",
    "--prefix",
    "--root",
    "--src",
    "--upgrade-strategy",
    "--only-binary",
    "--no-binary",
    "--platform",
    "--python-version",
    "--implementation",
    "--abi",
    "--progress-bar",
    "--global-option",
    "--config-settings",
    "--trusted-host",
    "--cache-dir",
    "--log",
    "--proxy",
    "--timeout",
    "--retries",
    "--exists-action",
    "--cert",
    "--client-cert",
    "--report",
    "--python",
    "--build",
    "--overrides",
    "--exclude-newer",
    "--resolution",
    "--prerelease",
    "--index-strategy",
    "--keyring-provider",
    "--link-mode",
    "--compile-bytecode-dir",
    "--group",
    "--extra",
    "--root-user-action",
    "--log-file",
    "--use-feature",
];
const CONDA_VALUE_SHORT: &[char] = &['n', 'p', 'c', 'f', 'r'];
const CONDA_VALUE_LONG: &[&str] = &[
    "--name",
    "--prefix",
    "--channel",
    "--file",
    "--repodata-fn",
    "--platform",
    "--subdir",
    "--solver",
    "--experimental-solver",
    "--root-prefix",
    "--rc-file",
    "--channel-priority",
    "--clone",
    "--category",
    "--pinned-package",
    "--retry-clean-cache",
];

/// For an option that takes a value, the option name and its value, from
/// `--opt=value`, `-Xvalue` or the next word. `None` for flags.
fn option_value(
    cmd: &Cmd<'_>,
    a: &Arg,
    next: Option<&Arg>,
    short: &[char],
    long: &[&str],
) -> Option<(String, Expanded, bool)> {
    let k = a.key();
    if let Some(rest) = k.strip_prefix("--") {
        let (name, has_eq) = match rest.split_once('=') {
            Some((n, _)) => (format!("--{n}"), true),
            None => (k.to_string(), false),
        };
        if !long.contains(&name.as_str()) {
            return None;
        }
        if has_eq {
            let skip = name.chars().count() + 1;
            return Some((name, cmd.expanded_suffix(a, skip), false));
        }
        return next.map(|n| (name, cmd.expanded(n), true));
    }
    let mut chars = k.chars();
    chars.next();
    let letter = chars.next()?;
    if !short.contains(&letter) {
        return None;
    }
    let name = format!("-{letter}");
    if chars.as_str().is_empty() {
        return next.map(|n| (name, cmd.expanded(n), true));
    }
    Some((name, cmd.expanded_suffix(a, 2), false))
}

#[cfg(test)]
mod tests;

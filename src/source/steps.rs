//! Install commands found in shell text (`RUN` bodies, `%post` sections).

use std::collections::HashMap;

use serde::Serialize;

use crate::diagnostic::Span;
use crate::source::expanded::Expanded;
use crate::source::shell::{
    LexError, MAX_DEPTH, Script, Sep, ShellEnv, SimpleCommand, VarState, Word, expand_word,
    split_commands,
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
    /// `Rscript -e 'install.packages(…)'`, `BiocManager::install(…)`:
    /// found, not locked.
    R,
    /// A program that runs an installer for us (`rapids-mamba-retry`,
    /// `retry`…) that imagelock does not know: found, not locked.
    Wrapper,
}

/// Which kind of packages a manager installs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ecosystem {
    Python,
    Conda,
    Os,
    /// Installers imagelock finds but does not lock.
    Other,
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
            Manager::R | Manager::Wrapper => Ecosystem::Other,
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
            Manager::R => "r",
            Manager::Wrapper => "wrapper",
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
    /// `conda update X`/`--all`: the newest versions allowed, not an install.
    Update,
    /// `uv pip sync`: the environment becomes exactly the listed packages.
    Sync,
    /// `--dry-run`, `--download-only`: nothing in the image changes.
    NoChange,
    /// `apt-get upgrade`, `dnf update` without names, `apk upgrade`.
    Upgrade,
    /// `apt-get dist-upgrade` / `full-upgrade`, `dnf distro-sync`.
    DistUpgrade,
    /// `dnf groupinstall` / `dnf group install`.
    GroupInstall,
    /// `dnf module enable|install`.
    ModuleEnable,
    /// `apt-get remove|purge|autoremove`, `dnf remove`, `apk del`.
    Remove,
}

impl Action {
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Install => "install",
            Action::Create => "create",
            Action::EnvCreate => "env-create",
            Action::EnvUpdate => "env-update",
            Action::Update => "update",
            Action::Sync => "sync",
            Action::NoChange => "no-change",
            Action::Upgrade => "upgrade",
            Action::DistUpgrade => "dist-upgrade",
            Action::GroupInstall => "group-install",
            Action::ModuleEnable => "module-enable",
            Action::Remove => "remove",
        }
    }

    /// Whether the packages it names end up in the image, so that a lock
    /// can list them (installs, creates, updates and syncs).
    pub const fn installs(self) -> bool {
        matches!(
            self,
            Action::Install
                | Action::Create
                | Action::EnvCreate
                | Action::EnvUpdate
                | Action::Update
                | Action::Sync
        )
    }
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
    /// `-f`/`--find-links` (pip), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub find_links: Vec<Expanded>,
    /// `--no-index` (pip).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_index: bool,
    /// When the command runs only on some paths through the script, the
    /// condition imagelock could not decide (as written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditional: Option<String>,
    /// What in the command could not be known, each with its place.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unresolved: Vec<Unresolved>,
    /// Variables assigned before the program on the same command line
    /// (`CONDA_OVERRIDE_CUDA=11.8 mamba install …`): its environment only;
    /// `None` when the value could not be known.
    #[serde(skip)]
    pub env: Vec<(String, Option<String>)>,
}

/// Why part of a command could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// A variable with no known value.
    UnknownVariable,
    /// `$(…)` or backquotes that imagelock cannot evaluate.
    CommandSubstitution,
    /// A value that differs per platform (`$(uname -m)`).
    ArchDependent,
    /// A file the command reads that imagelock cannot see (`<(…)`, a
    /// filtered `xargs` input).
    UnreadableFile,
    /// An unquoted `>`/`<` in a spec: the shell redirected, the constraint
    /// is lost (`pip install numpy>=1.2` installs `numpy`).
    Redirect,
    /// An installer run by a program imagelock does not know.
    UnknownWrapper,
}

impl Cause {
    pub const fn as_str(self) -> &'static str {
        match self {
            Cause::UnknownVariable => "unknown-variable",
            Cause::CommandSubstitution => "command-substitution",
            Cause::ArchDependent => "arch-dependent",
            Cause::UnreadableFile => "unreadable-file",
            Cause::Redirect => "redirect",
            Cause::UnknownWrapper => "unknown-wrapper",
        }
    }
}

/// A part of a command that could not be read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unresolved {
    pub cause: Cause,
    /// The text as written.
    pub text: String,
    pub span: Span,
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
    /// `CONDA_CHANNELS=a,b` in the environment: the list is replaced.
    Set,
    /// `--set channel_priority V` / `CONDA_CHANNEL_PRIORITY`.
    Priority,
}

/// `conda config --add|--append|--prepend|--remove channels X`: changes
/// the channels that later installs without `--override-channels` use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChannelConfig {
    pub manager: Manager,
    pub action: ChannelAction,
    /// The channel (or for `Priority`, the priority; for `Set`, the
    /// comma-separated list).
    pub channel: Expanded,
    /// The command as written.
    pub text: String,
    pub span: Span,
    /// Set when the command runs only on some paths through the script:
    /// such a change is not applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditional: Option<String>,
}

/// The channels and priority in effect after applying `events`, in order,
/// to `base` (the channels of the base image's `.condarc`, or of the
/// configuration). Conditional and unresolved changes are skipped and
/// returned apart, so a caller can say what it could not apply.
pub fn effective_channels<'e>(
    base: &[String],
    events: &'e [ChannelConfig],
) -> (Vec<String>, Option<String>, Vec<&'e ChannelConfig>) {
    let mut channels: Vec<String> = base.to_vec();
    let mut priority = None;
    let mut skipped = Vec::new();
    for e in events {
        let Some(v) = e
            .channel
            .value
            .as_deref()
            .filter(|_| e.conditional.is_none())
        else {
            skipped.push(e);
            continue;
        };
        let v = v.trim_end_matches('/').to_string();
        match e.action {
            ChannelAction::Add | ChannelAction::Prepend => {
                channels.retain(|c| *c != v);
                channels.insert(0, v);
            }
            ChannelAction::Append => {
                channels.retain(|c| *c != v);
                channels.push(v);
            }
            ChannelAction::Remove => channels.retain(|c| *c != v),
            ChannelAction::Set => {
                channels = v
                    .split(',')
                    .map(|c| c.trim().trim_end_matches('/').to_string())
                    .filter(|c| !c.is_empty())
                    .collect();
            }
            ChannelAction::Priority => priority = Some(v),
        }
    }
    (channels, priority, skipped)
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
    scan_script_in(script, lookup, None)
}

/// Like [`scan_script`], for a script that a wrapper shell runs inside an
/// environment (`SHELL ["conda", "run", "-n", "env", …]`): installs that
/// name no target go there.
pub fn scan_script_in(
    script: &Script,
    lookup: &dyn Fn(&str) -> Option<String>,
    target: Option<Target>,
) -> Result<Vec<ShellEvent>, ShellError> {
    scan_script_with(script, lookup, target, &Wrappers::new())
}

/// Programs whose arguments are an installer's command, by the installer
/// (the configuration's `[steps] wrappers`).
pub type Wrappers = std::collections::BTreeMap<String, crate::config::WrappedManager>;

/// Like [`scan_script_in`], reading the configured `wrappers` as the
/// installers they run.
pub fn scan_script_with(
    script: &Script,
    lookup: &dyn Fn(&str) -> Option<String>,
    target: Option<Target>,
    wrappers: &Wrappers,
) -> Result<Vec<ShellEvent>, ShellError> {
    let mut scanner = Scanner {
        wrappers,
        lookup,
        vars: HashMap::new(),
        events: Vec::new(),
        flow: Flow::default(),
        active: target,
        last_status: Status::Assumed,
        last_cat: None,
        xargs_input: None,
    };
    scanner.script(script, 0)?;
    Ok(scanner.events)
}

struct Scanner<'l> {
    lookup: &'l dyn Fn(&str) -> Option<String>,
    /// Configured wrapper programs and the installer each runs.
    wrappers: &'l Wrappers,
    /// Variables the script set, unset or made unknown, over `lookup`.
    vars: HashMap<String, VarState>,
    events: Vec<ShellEvent>,
    flow: Flow,
    /// The environment `conda activate` (or a wrapper shell) made current.
    active: Option<Target>,
    /// Exit status of the simple command just recognised.
    last_status: Status,
    /// `cat FILE`, when it was the last command (feeding a pipe).
    last_cat: Option<Expanded>,
    /// The file `xargs` feeds to the installer being recognised: `Some(None)`
    /// when it cannot be known.
    xargs_input: Option<Option<Expanded>>,
}

/// Whether something holds, as far as imagelock can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Truth {
    Yes,
    No,
    Unknown,
}

impl Truth {
    fn not(self) -> Self {
        match self {
            Truth::Yes => Truth::No,
            Truth::No => Truth::Yes,
            Truth::Unknown => Truth::Unknown,
        }
    }

    fn and(self, o: Self) -> Self {
        match (self, o) {
            (Truth::No, _) | (_, Truth::No) => Truth::No,
            (Truth::Yes, Truth::Yes) => Truth::Yes,
            _ => Truth::Unknown,
        }
    }

    fn or(self, o: Self) -> Self {
        self.not().and(o.not()).not()
    }
}

/// The exit status of a command, as far as imagelock can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Known(bool),
    /// A command that succeeded if the build did (`&&` after it runs), but
    /// whose failure an `||` may have caught.
    Assumed,
    Unknown,
}

impl Status {
    fn merge(self, o: Self) -> Self {
        match (self, o) {
            (a, b) if a == b => a,
            (Status::Known(true) | Status::Assumed, Status::Known(true) | Status::Assumed) => {
                Status::Assumed
            }
            _ => Status::Unknown,
        }
    }
}

/// A compound command being read.
#[derive(Clone, Debug)]
enum Frame {
    If {
        /// Whether the current branch runs.
        active: Truth,
        /// Whether an earlier branch ran.
        taken: Truth,
        /// Reading a condition (after `if`/`elif`, before `then`).
        in_condition: bool,
        condition: String,
    },
    Case {
        word: Option<String>,
        written: String,
        active: Truth,
        taken: Truth,
        expecting_pattern: bool,
        /// Whether the pattern read so far matches.
        matched: Truth,
    },
    /// `while`/`until` bodies may run any number of times, `for` bodies
    /// once per item.
    Loop { active: Truth, condition: String },
    /// The activity of the command that ran a `sh -c` script.
    Outer { active: Truth, condition: String },
}

/// Control flow state of a script: the compound commands open around the
/// current command and the and-or list it is part of.
#[derive(Clone, Debug)]
struct Flow {
    frames: Vec<Frame>,
    /// Status of the and-or list so far.
    status: Status,
    /// Whether the current command of the and-or list runs.
    runs: Truth,
    /// The command that made `runs` unknown.
    runs_why: String,
    /// The text of the last command read (the reason, should the next
    /// one's running depend on it).
    runs_why_next: String,
    /// For each open `( … )`: whether its first command ran, and why not.
    groups: Vec<(Truth, String)>,
}

impl Default for Flow {
    fn default() -> Self {
        Flow {
            frames: Vec::new(),
            status: Status::Known(true),
            runs: Truth::Yes,
            runs_why: String::new(),
            runs_why_next: String::new(),
            groups: Vec::new(),
        }
    }
}

impl Flow {
    /// Whether a command here runs, and if that is unknown, why.
    fn activity(&self) -> (Truth, Option<String>) {
        let mut t = self.runs;
        let mut why = (self.runs == Truth::Unknown).then(|| self.runs_why.clone());
        for f in &self.frames {
            let (a, w) = match f {
                Frame::If {
                    active, condition, ..
                } => (*active, condition.clone()),
                Frame::Case {
                    active, written, ..
                } => (*active, format!("case {written}")),
                Frame::Loop { active, condition } | Frame::Outer { active, condition } => {
                    (*active, condition.clone())
                }
            };
            if a == Truth::Unknown && why.is_none() {
                why = Some(w);
            }
            t = t.and(a);
        }
        (t, if t == Truth::Unknown { why } else { None })
    }
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
    /// The undecided condition it runs under, if any.
    conditional: Option<String>,
    /// Redirections: the operator's span and its target's span.
    redirects: Vec<(Span, Span)>,
    before: Sep,
    /// Leading assignments (`NAME=value cmd`), in order.
    env: Vec<(String, Option<String>)>,
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

    fn expand(&self, script: &Script, word: &Word) -> Result<Vec<Arg>, ShellError> {
        let text = script.text();
        let written = text.get(word.span.start..word.span.end).unwrap_or_default();
        Ok(expand_word(text, word, self)
            .map_err(|e| shell_error(script, e))?
            .into_iter()
            .map(|f| Arg {
                span: word.span,
                written: written.to_string(),
                value: f.value,
                unresolved: f.unresolved,
                offsets: f.offsets,
            })
            .collect())
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
        let r = self.command_in_list(script, cmd, depth);
        // After `( A || B )`, the list goes on as the group started: what
        // was conditional inside it stays inside it.
        for _ in 0..cmd.closes {
            if let Some((runs, why)) = self.flow.groups.pop() {
                self.flow.runs = runs;
                self.flow.runs_why = why;
            }
        }
        r
    }

    fn command_in_list(
        &mut self,
        script: &Script,
        cmd: &SimpleCommand,
        depth: usize,
    ) -> Result<(), ShellError> {
        let text = script.text();
        let mut words = &cmd.words[..];
        let cmd_text = text.get(cmd.span.start..cmd.span.end).unwrap_or("");
        // Case patterns: `WORD)` or `A | B)` after `in` or `;;`.
        if cmd.before == Sep::CaseEnd
            && let Some(Frame::Case {
                expecting_pattern, ..
            }) = self.flow.frames.last_mut()
        {
            *expecting_pattern = true;
        }
        if let Some(Frame::Case {
            expecting_pattern: true,
            ..
        }) = self.flow.frames.last()
        {
            if words.first().and_then(Word::literal).as_deref() == Some("esac") {
                self.flow.frames.pop();
                self.new_list();
                return Ok(());
            }
            self.case_pattern(script, words, cmd.after)?;
            return Ok(());
        }
        // The status of what came before: an `if` condition ends there.
        let prev = (self.flow.status, self.flow.runs_why_next.clone());
        // The and-or list: does this command run?
        match cmd.before {
            Sep::And | Sep::Or => {
                let runs = match (cmd.before, self.flow.status) {
                    (_, Status::Unknown) => Truth::Unknown,
                    (Sep::And, Status::Known(b)) => bool_truth(b),
                    (Sep::And, Status::Assumed) => Truth::Yes,
                    (_, Status::Known(b)) => bool_truth(!b),
                    (_, Status::Assumed) => Truth::Unknown,
                };
                let prev = self.flow.runs;
                self.flow.runs = prev.and(runs);
                if runs == Truth::Unknown && prev != Truth::Unknown {
                    self.flow.runs_why = self.flow.runs_why_next.clone();
                }
            }
            Sep::Pipe => {}
            _ => self.new_list(),
        }
        for _ in 0..cmd.opens {
            self.flow
                .groups
                .push((self.flow.runs, self.flow.runs_why.clone()));
        }
        // Keywords of compound commands: the command follows them.
        let mut negate = false;
        while let Some(w) = words.first() {
            match w.literal().as_deref() {
                Some("if") => {
                    let (active, _) = self.flow.activity();
                    self.flow.frames.push(Frame::If {
                        active: Truth::Yes,
                        taken: Truth::No,
                        in_condition: true,
                        condition: String::new(),
                    });
                    if active == Truth::No {
                        // A skipped `if`: nothing in it runs.
                        if let Some(Frame::If { active, .. }) = self.flow.frames.last_mut() {
                            *active = Truth::No;
                        }
                    }
                    self.new_list();
                    words = &words[1..];
                }
                Some("elif") => {
                    if let Some(Frame::If {
                        active,
                        taken,
                        in_condition,
                        ..
                    }) = self.flow.frames.last_mut()
                    {
                        *active = taken.not();
                        *in_condition = true;
                    }
                    self.new_list();
                    words = &words[1..];
                }
                Some("then") => {
                    let cond = condition_truth(prev.0, &prev.1);
                    if let Some(Frame::If {
                        active,
                        taken,
                        in_condition,
                        condition,
                    }) = self.flow.frames.last_mut()
                    {
                        let c = cond.0;
                        let before = *taken;
                        *active = active.and(c);
                        *taken = before.or(*active);
                        *in_condition = false;
                        condition.clone_from(&cond.1);
                    }
                    self.new_list();
                    words = &words[1..];
                }
                Some("else") => {
                    if let Some(Frame::If {
                        active,
                        taken,
                        condition,
                        ..
                    }) = self.flow.frames.last_mut()
                    {
                        *active = taken.not();
                        *taken = Truth::Yes;
                        *condition = format!("else of {condition}");
                    }
                    self.new_list();
                    words = &words[1..];
                }
                Some("fi") => {
                    // An `if` whose parent did not run stays skipped; one
                    // whose branches were skipped leaves its parent alone.
                    if matches!(self.flow.frames.last(), Some(Frame::If { .. })) {
                        self.flow.frames.pop();
                    }
                    self.flow.status = Status::Assumed;
                    return Ok(());
                }
                Some("while" | "until") => {
                    self.flow.frames.push(Frame::Loop {
                        active: Truth::Unknown,
                        condition: cmd_text.to_string(),
                    });
                    return Ok(());
                }
                Some("for" | "select") => {
                    if let Some(n) = words.get(1).and_then(Word::literal) {
                        self.vars.insert(n, VarState::Unknown);
                    }
                    self.flow.frames.push(Frame::Loop {
                        active: Truth::Yes,
                        condition: cmd_text.to_string(),
                    });
                    return Ok(());
                }
                Some("done") => {
                    if matches!(self.flow.frames.last(), Some(Frame::Loop { .. })) {
                        self.flow.frames.pop();
                    }
                    self.flow.status = Status::Assumed;
                    return Ok(());
                }
                Some("case") => {
                    let w = words.get(1);
                    let written = w
                        .and_then(|w| text.get(w.span.start..w.span.end))
                        .unwrap_or("")
                        .to_string();
                    let value = w.and_then(|w| {
                        let f = expand_word(text, w, self).ok()?;
                        match f.as_slice() {
                            [one] => one.value.clone(),
                            [] => Some(String::new()),
                            _ => None,
                        }
                    });
                    self.flow.frames.push(Frame::Case {
                        word: value,
                        written,
                        active: Truth::No,
                        taken: Truth::No,
                        expecting_pattern: true,
                        matched: Truth::No,
                    });
                    // `case W in PATTERN)` on one line.
                    let rest = words
                        .iter()
                        .position(|w| w.literal().as_deref() == Some("in"));
                    if let Some(p) = rest
                        && p + 1 < words.len()
                    {
                        self.case_pattern(script, &words[p + 1..], cmd.after)?;
                    }
                    return Ok(());
                }
                Some("do" | "{") => words = &words[1..],
                Some("!") => {
                    negate = !negate;
                    words = &words[1..];
                }
                Some("esac" | "}" | "function" | "in") => return Ok(()),
                _ => break,
            }
        }
        if words.is_empty() {
            return Ok(());
        }
        let (active, why) = self.flow.activity();
        let start = words.first().map_or(cmd.span.start, |w| w.span.start);
        let this_text = text.get(start..cmd.span.end).unwrap_or("").to_string();
        self.flow.runs_why_next.clone_from(&this_text);
        if active == Truth::No {
            // Skipped: the list's status stays what it was.
            return Ok(());
        }
        // Leading assignments: alone they set shell variables; before a
        // command they only change its environment.
        let n_assign = words
            .iter()
            .take_while(|w| assignment_name(w, text).is_some())
            .count();
        let status = if n_assign == words.len() {
            for w in words {
                let args = self.expand(script, w)?;
                let name = assignment_name(w, text).unwrap_or_default();
                // Assigned values are not field-split.
                let joined = join_fields(&args);
                if active == Truth::Yes {
                    self.assign(name, joined.as_ref());
                } else {
                    // Set on some paths only: never used as if it were.
                    self.vars.insert(name, VarState::Unknown);
                }
            }
            Status::Known(true)
        } else {
            let mut env = Vec::new();
            for w in &words[..n_assign] {
                let name = assignment_name(w, text).unwrap_or_default();
                let value = join_fields(&self.expand(script, w)?)
                    .and_then(|a| a.value)
                    .map(|v| {
                        v.split_once('=')
                            .map_or(String::new(), |(_, v)| v.to_string())
                    });
                env.push((name, value));
            }
            let words = &words[n_assign..];
            let _ = &this_text;
            let mut args: Vec<Arg> = Vec::new();
            for w in words {
                args.extend(self.expand(script, w)?);
            }
            let redirects = cmd.redirects.clone();
            let c = Cmd {
                script,
                span: Span::new(start, cmd.span.end),
                args,
                conditional: why,
                redirects,
                before: cmd.before,
                env,
            };
            let assigns_before = self.conditional_assign_guard(active);
            self.last_status = Status::Assumed;
            let cat = self.last_cat.take();
            self.last_cat = cat.filter(|_| cmd.before == Sep::Pipe);
            self.simple(&c, 0, depth, None)?;
            if !matches!(c.args.first().and_then(program), Some("cat")) {
                self.last_cat = None;
            }
            self.conditional_assign_restore(assigns_before, active);
            self.last_status
        };
        let status = if negate {
            match status {
                Status::Known(b) => Status::Known(!b),
                _ => Status::Unknown,
            }
        } else {
            status
        };
        self.flow.status = match (cmd.before, active) {
            (Sep::And | Sep::Or, Truth::Unknown) => self.flow.status.merge(status),
            _ => status,
        };
        Ok(())
    }

    /// Starts a new and-or list.
    fn new_list(&mut self) {
        self.flow.status = Status::Known(true);
        self.flow.runs = Truth::Yes;
    }

    /// Snapshot of variables before a command that may run or not.
    fn conditional_assign_guard(&self, active: Truth) -> Option<HashMap<String, VarState>> {
        (active == Truth::Unknown).then(|| self.vars.clone())
    }

    /// After a command that may or may not have run: every variable it
    /// changed is unknown.
    fn conditional_assign_restore(
        &mut self,
        before: Option<HashMap<String, VarState>>,
        _active: Truth,
    ) {
        let Some(before) = before else { return };
        for (k, v) in &mut self.vars {
            if before.get(k) != Some(v) {
                *v = VarState::Unknown;
            }
        }
    }

    /// A case pattern list (`a | b)`), possibly split over several
    /// commands by `|`.
    fn case_pattern(
        &mut self,
        script: &Script,
        words: &[Word],
        after: Sep,
    ) -> Result<(), ShellError> {
        let text = script.text();
        let mut m = Truth::No;
        for w in words {
            let lit = w.literal();
            let pat = match lit.as_deref() {
                Some(p) => Some(p.trim_start_matches('(').to_string()),
                None => {
                    let f = self.expand(script, w)?;
                    match f.as_slice() {
                        [one] => one.value.clone(),
                        _ => None,
                    }
                }
            };
            if pat.as_deref() == Some("") {
                continue;
            }
            let Some(Frame::Case { word, .. }) = self.flow.frames.last() else {
                return Ok(());
            };
            let r = match (pat, word) {
                (Some(p), _) if p == "*" => Truth::Yes,
                (Some(p), Some(v)) => bool_truth(crate::source::pattern::glob(&p, v)),
                _ => Truth::Unknown,
            };
            let _ = text;
            m = m.or(r);
        }
        let Some(Frame::Case {
            active,
            taken,
            expecting_pattern,
            matched,
            ..
        }) = self.flow.frames.last_mut()
        else {
            return Ok(());
        };
        *matched = matched.or(m);
        if after == Sep::Close {
            *active = taken.not().and(*matched);
            *taken = taken.or(*active);
            *expecting_pattern = false;
            *matched = Truth::No;
        }
        Ok(())
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
                "[" | "test" | "[[" => {
                    let rest: Vec<&Arg> = args[i + 1..].iter().collect();
                    self.last_status = match eval_test(prog, &rest) {
                        Truth::Yes => Status::Known(true),
                        Truth::No => Status::Known(false),
                        Truth::Unknown => Status::Unknown,
                    };
                    return Ok(());
                }
                "true" | ":" => {
                    self.last_status = Status::Known(true);
                    return Ok(());
                }
                "false" => {
                    self.last_status = Status::Known(false);
                    return Ok(());
                }
                "cat" => {
                    let files: Vec<&Arg> =
                        args[i + 1..].iter().filter(|a| !a.is_option()).collect();
                    self.last_cat = match files.as_slice() {
                        [one] => Some(cmd.expanded(one)),
                        _ => None,
                    };
                    return Ok(());
                }
                "source" | "." => {
                    // `source activate ENV`, `. /opt/conda/bin/activate ENV`
                    if args.get(i + 1).and_then(program) == Some("activate") {
                        self.activate(cmd, args.get(i + 2));
                    }
                    return Ok(());
                }
                "xargs" => return self.xargs(cmd, i + 1, depth),
                "Rscript" | "R" | "install2.r" | "installGithub.r" | "installBioc.r" => {
                    self.r(cmd, i);
                    return Ok(());
                }
                p if self.wrappers.contains_key(p) => {
                    use crate::config::WrappedManager as W;
                    return match self.wrappers[p] {
                        W::Pip => self.pip(cmd, i + 1, Manager::Pip, run_target),
                        W::Conda => self.conda(cmd, i + 1, Manager::Conda, depth),
                        W::Mamba => self.conda(cmd, i + 1, Manager::Mamba, depth),
                        W::Micromamba => self.conda(cmd, i + 1, Manager::Micromamba, depth),
                    };
                }
                p if p.ends_with("-retry") && p.contains("mamba")
                    || p.ends_with("-retry") && p.contains("conda") =>
                {
                    let before = self.events.len();
                    self.conda(cmd, i + 1, Manager::Conda, depth)?;
                    self.mark_wrapper(before, cmd, &args[i]);
                    return Ok(());
                }
                p if p.ends_with("-retry") && p.contains("pip") => {
                    let before = self.events.len();
                    self.pip(cmd, i + 1, Manager::Pip, run_target)?;
                    self.mark_wrapper(before, cmd, &args[i]);
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
                "uname" | "arch" | "dpkg" => return Ok(()),
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

    /// Marks the install events pushed since `before` as run by a wrapper
    /// imagelock does not know.
    fn mark_wrapper(&mut self, before: usize, cmd: &Cmd<'_>, prog: &Arg) {
        for e in &mut self.events[before..] {
            if let ShellEvent::Install(ic) = e {
                ic.manager = Manager::Wrapper;
                ic.unresolved.push(Unresolved {
                    cause: Cause::UnknownWrapper,
                    text: prog.written.clone(),
                    span: cmd.script.file_span(prog.span),
                });
            }
        }
    }

    /// `conda activate ENV` / `source activate ENV`: later installs in
    /// this script go to ENV.
    fn activate(&mut self, cmd: &Cmd<'_>, env: Option<&Arg>) {
        self.active = env.filter(|a| !a.is_option()).map(|a| {
            let e = cmd.expanded(a);
            if a.key().contains('/') {
                Target::CondaPrefix(e)
            } else {
                Target::CondaName(e)
            }
        });
    }

    /// `xargs [-a FILE] [opts] INSTALLER…`: the installer gets the words
    /// of FILE (or of what is piped in) as arguments.
    fn xargs(&mut self, cmd: &Cmd<'_>, mut i: usize, depth: usize) -> Result<(), ShellError> {
        let args = &cmd.args;
        let mut file = None;
        while let Some(a) = args.get(i) {
            let k = a.key();
            if !a.is_option() {
                break;
            }
            if k == "-a" || k == "--arg-file" {
                file = args.get(i + 1).map(|f| cmd.expanded(f));
                i += 2;
            } else if let Some(v) = k.strip_prefix("--arg-file=") {
                let _ = v;
                file = Some(cmd.expanded_suffix(a, "--arg-file=".len()));
                i += 1;
            } else if matches!(k, "-n" | "-L" | "-P" | "-I" | "-d" | "-s" | "-E") {
                i += 2;
            } else {
                i += 1;
            }
        }
        let input = file.or_else(|| {
            (cmd.before == Sep::Pipe)
                .then(|| self.last_cat.clone())
                .flatten()
        });
        self.xargs_input = Some(input);
        let r = self.simple(cmd, i, depth, None);
        self.xargs_input = None;
        r
    }

    /// `Rscript -e 'install.packages(…)'`, `R -e …`, littler's
    /// `install2.r`: an R install, found and not locked.
    fn r(&mut self, cmd: &Cmd<'_>, i: usize) {
        let args = &cmd.args;
        let prog = program(&args[i]).unwrap_or("");
        let installs = if prog.ends_with(".r") {
            true
        } else {
            args[i + 1..].iter().any(|a| {
                let k = a.key();
                k.contains("install.packages")
                    || k.contains("BiocManager::install")
                    || k.contains("remotes::install")
                    || k.contains("devtools::install")
                    || k.contains("pak::p")
            })
        };
        if !installs {
            return;
        }
        let mut ic = self.new_command(cmd, Manager::R, Action::Install, Vec::new());
        if prog.ends_with(".r") {
            ic.specs = args[i + 1..]
                .iter()
                .filter(|a| !a.is_option())
                .map(|a| cmd.expanded(a))
                .collect();
        }
        self.push_install(cmd, ic);
    }

    /// A command with nothing read yet.
    fn new_command(
        &self,
        cmd: &Cmd<'_>,
        manager: Manager,
        action: Action,
        options: Vec<String>,
    ) -> InstallCommand {
        InstallCommand {
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
            find_links: Vec::new(),
            no_index: false,
            conditional: cmd.conditional.clone(),
            unresolved: Vec::new(),
            env: cmd.env.clone(),
        }
    }

    /// Records an install command, with what could not be read in it.
    fn push_install(&mut self, cmd: &Cmd<'_>, mut ic: InstallCommand) {
        if let Some(input) = self.xargs_input.take() {
            match input {
                Some(path) => {
                    let role = match ic.manager.ecosystem() {
                        Ecosystem::Python => FileRole::Requirements,
                        _ => FileRole::CondaSpecs,
                    };
                    ic.files.push(FileArg { role, path });
                }
                None => ic.unresolved.push(Unresolved {
                    cause: Cause::UnreadableFile,
                    text: ic.text.clone(),
                    span: ic.span,
                }),
            }
        }
        let mut seen = Vec::new();
        let mut note = |e: &Expanded| {
            if e.value.is_some() || seen.contains(&e.span) {
                return;
            }
            seen.push(e.span);
            let subst = e
                .unresolved
                .iter()
                .find(|u| u.starts_with("$(") || u.starts_with('`') || u.starts_with("<("));
            let cause = match subst {
                Some(u) if u.starts_with("<(") => Cause::UnreadableFile,
                Some(u) if is_arch_probe(u) => Cause::ArchDependent,
                Some(_) => Cause::CommandSubstitution,
                None if e.unresolved.iter().any(|u| ARCH_VARS.contains(&u.as_str())) => {
                    Cause::ArchDependent
                }
                None => Cause::UnknownVariable,
            };
            ic.unresolved.push(Unresolved {
                cause,
                text: e.written.clone(),
                span: e.span,
            });
        };
        for e in ic.specs.iter().chain(ic.files.iter().map(|f| &f.path)) {
            note(e);
        }
        // `pip install numpy>=1.2`: the shell took `>=1.2` as a redirect.
        for sp in &ic.specs {
            for (op, target) in &cmd.redirects {
                let op_file = cmd.script.file_span(*op);
                if op_file.start == sp.span.end {
                    let t = cmd.script.file_span(*target);
                    let written = cmd
                        .script
                        .text()
                        .get(op.start..target.end)
                        .unwrap_or("")
                        .to_string();
                    ic.unresolved.push(Unresolved {
                        cause: Cause::Redirect,
                        text: format!("{}{written}", sp.written),
                        span: Span::new(sp.span.start, t.end.max(sp.span.end)),
                    });
                }
            }
        }
        self.events.push(ShellEvent::Install(Box::new(ic)));
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
        // The inner script runs when this command does.
        let (active, why) = match &cmd.conditional {
            Some(w) => (Truth::Unknown, w.clone()),
            None => (Truth::Yes, String::new()),
        };
        let outer = std::mem::take(&mut self.flow);
        self.flow.frames.push(Frame::Outer {
            active,
            condition: why,
        });
        let r = self.script(&inner, depth + 1);
        self.flow = outer;
        r
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
        let action = loop {
            let Some(a) = args.get(i) else { return Ok(()) };
            if a.key() == "install" {
                i += 1;
                break Action::Install;
            }
            if a.key() == "sync" && manager == Manager::UvPip {
                i += 1;
                break Action::Sync;
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
        };
        if target.is_none() {
            target.clone_from(&self.active);
        }
        let mut ic = self.new_command(cmd, manager, action, options);
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
            if k == "--no-index" {
                ic.no_index = true;
                continue;
            }
            if matches!(k, "--dry-run" | "--report") && action == Action::Install {
                ic.action = Action::NoChange;
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
                "-f" | "--find-links" => ic.find_links.push(value),
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
        self.push_install(cmd, ic);
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
            "install" => Action::Install,
            "update" | "upgrade" => Action::Update,
            "remove" | "uninstall" => Action::Remove,
            "create" => Action::Create,
            "activate" => {
                self.activate(cmd, args.get(i));
                return Ok(());
            }
            "deactivate" => {
                self.active = None;
                return Ok(());
            }
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
        let mut ic = self.new_command(cmd, manager, action, options);
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
            if matches!(a.key(), "--dry-run" | "-d" | "--download-only") {
                ic.action = Action::NoChange;
                ic.options.push(a.written.clone());
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
        if ic.target.is_none() {
            ic.target.clone_from(&self.active);
        }
        self.push_install(cmd, ic);
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
                            conditional: cmd.conditional.clone(),
                        }));
                    }
                    i += 3;
                }
                None if a.key() == "--set"
                    && args.get(i + 1).map(Arg::key) == Some("channel_priority") =>
                {
                    if let Some(v) = args.get(i + 2) {
                        self.events.push(ShellEvent::ChannelConfig(ChannelConfig {
                            manager,
                            action: ChannelAction::Priority,
                            channel: cmd.expanded(v),
                            text: cmd.text(),
                            span: cmd.script.file_span(cmd.span),
                            conditional: cmd.conditional.clone(),
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
                &[
                    "install",
                    "upgrade",
                    "dist-upgrade",
                    "full-upgrade",
                    "remove",
                    "purge",
                    "autoremove",
                ],
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
                &["add", "del", "upgrade"],
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
                &[
                    "install",
                    "update",
                    "upgrade",
                    "groupinstall",
                    "group",
                    "module",
                    "remove",
                    "erase",
                    "distro-sync",
                    "reinstall",
                    "localinstall",
                ],
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
                ],
            ),
        };
        let mut options = Vec::new();
        let mut found: Option<String> = None;
        let mut specs = Vec::new();
        let mut dry = false;
        while let Some(a) = args.get(i) {
            i += 1;
            if a.is_option() {
                dry |= matches!(
                    a.key(),
                    "-s" | "--simulate"
                        | "--dry-run"
                        | "--just-print"
                        | "--download-only"
                        | "--downloadonly"
                        | "--assumeno"
                );
                let k = a.key();
                if value_opts.contains(&k)
                    && let Some(n) = args.get(i)
                {
                    options.push(format!("{} {}", a.written, n.written));
                    i += 1;
                    continue;
                }
                options.push(a.written.clone());
            } else if found.is_none() {
                if !sub.contains(&a.key()) {
                    return;
                }
                let mut word = a.key().to_string();
                // `dnf group install`, `dnf module enable`
                if matches!(word.as_str(), "group" | "module")
                    && let Some(n) = args.get(i)
                {
                    word = format!("{word} {}", n.key());
                    i += 1;
                }
                found = Some(word);
            } else {
                specs.push(cmd.expanded(a));
            }
        }
        let Some(sub) = found else { return };
        let action = match sub.as_str() {
            "install" | "add" | "reinstall" | "localinstall" => Action::Install,
            "upgrade" | "update" if specs.is_empty() => Action::Upgrade,
            "upgrade" | "update" => Action::Update,
            "dist-upgrade" | "full-upgrade" | "distro-sync" => Action::DistUpgrade,
            "groupinstall" | "group install" => Action::GroupInstall,
            "module enable" | "module install" => Action::ModuleEnable,
            "remove" | "purge" | "autoremove" | "erase" | "del" => Action::Remove,
            _ => return,
        };
        let action = if dry { Action::NoChange } else { action };
        let mut ic = self.new_command(cmd, manager, action, options);
        ic.specs = specs;
        self.push_install(cmd, ic);
    }
}

/// The truth of an `if`/`elif` condition that ended with `status`, and
/// its text.
fn condition_truth(status: Status, text: &str) -> (Truth, String) {
    let t = match status {
        Status::Known(b) => bool_truth(b),
        _ => Truth::Unknown,
    };
    (t, text.to_string())
}

fn bool_truth(b: bool) -> Truth {
    if b { Truth::Yes } else { Truth::No }
}

/// Build arguments that hold the target architecture (BuildKit's).
const ARCH_VARS: &[&str] = &["TARGETARCH", "TARGETPLATFORM", "TARGETVARIANT", "BUILDARCH"];

/// `$(uname -m)`, `$(dpkg --print-architecture)`, `$(arch)`: per platform.
fn is_arch_probe(text: &str) -> bool {
    let t = text.trim_start_matches(['$', '(', '`']);
    t.starts_with("uname") || t.starts_with("dpkg --print-architecture") || t.starts_with("arch")
}

/// The name under which the caller's lookup answers the platform being
/// built (`linux/arm64/v8`) for `$(uname -m)`-style probes. It cannot be a
/// shell variable's name, so a script can never set it.
pub const PLATFORM_PROBE: &str = "imagelock:platform";

/// `uname -m`, `arch`, `dpkg --print-architecture` on the platform the
/// caller names through [`PLATFORM_PROBE`]; `None` when it names none.
fn arch_probe(env: &dyn ShellEnv, prog: &str, args: &[String]) -> Option<String> {
    let platform = match env.var(PLATFORM_PROBE)? {
        VarState::Set(v) => v,
        _ => return None,
    };
    let mut parts = platform.split('/');
    let _os = parts.next();
    let arch = parts.next()?;
    let variant = parts.next().unwrap_or("");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = match (prog, args.as_slice()) {
        ("uname", ["-m"]) | ("arch", []) => match (arch, variant) {
            ("amd64", _) => "x86_64",
            ("arm64", _) => "aarch64",
            ("386", _) => "i686",
            ("arm", "v6") => "armv6l",
            ("arm", _) => "armv7l",
            ("ppc64le", _) => "ppc64le",
            ("s390x", _) => "s390x",
            ("riscv64", _) => "riscv64",
            _ => return None,
        },
        ("dpkg", ["--print-architecture"]) => match (arch, variant) {
            ("amd64", _) => "amd64",
            ("arm64", _) => "arm64",
            ("386", _) => "i386",
            ("arm", "v5") => "armel",
            ("arm", _) => "armhf",
            ("ppc64le", _) => "ppc64el",
            ("s390x", _) => "s390x",
            ("riscv64", _) => "riscv64",
            _ => return None,
        },
        _ => return None,
    };
    Some(format!("{out}\n"))
}

/// `[ … ]`, `test …`, `[[ … ]]` on the expanded words.
fn eval_test(prog: &str, args: &[&Arg]) -> Truth {
    let mut words: Vec<Option<&str>> = args.iter().map(|a| a.value.as_deref()).collect();
    let close = match prog {
        "[" => Some("]"),
        "[[" => Some("]]"),
        _ => None,
    };
    if let Some(c) = close {
        if words.last().copied().flatten() != Some(c) {
            return Truth::Unknown;
        }
        words.pop();
    }
    let glob_rhs = prog == "[[";
    test_expr(&words, glob_rhs)
}

fn test_expr(w: &[Option<&str>], glob_rhs: bool) -> Truth {
    // `A -a B`, `A -o B` (left to right, as test does for simple cases).
    if let Some(p) = w.iter().rposition(|x| matches!(x, Some("-o" | "||")))
        && p > 0
    {
        return test_expr(&w[..p], glob_rhs).or(test_expr(&w[p + 1..], glob_rhs));
    }
    if let Some(p) = w.iter().rposition(|x| matches!(x, Some("-a" | "&&")))
        && p > 0
    {
        return test_expr(&w[..p], glob_rhs).and(test_expr(&w[p + 1..], glob_rhs));
    }
    match w {
        [] => Truth::No,
        [Some("!"), rest @ ..] => test_expr(rest, glob_rhs).not(),
        [Some(one)] => bool_truth(!one.is_empty()),
        [Some("-z"), Some(v)] => bool_truth(v.is_empty()),
        [Some("-n"), Some(v)] => bool_truth(!v.is_empty()),
        [Some(a), Some(op), Some(b)] => match *op {
            "=" | "==" if glob_rhs => bool_truth(crate::source::pattern::glob(b, a)),
            "=" | "==" => bool_truth(a == b),
            "!=" if glob_rhs => bool_truth(!crate::source::pattern::glob(b, a)),
            "!=" => bool_truth(a != b),
            "-eq" | "-ne" | "-lt" | "-le" | "-gt" | "-ge" => {
                match (a.trim().parse::<i64>(), b.trim().parse::<i64>()) {
                    (Ok(x), Ok(y)) => bool_truth(match *op {
                        "-eq" => x == y,
                        "-ne" => x != y,
                        "-lt" => x < y,
                        "-le" => x <= y,
                        "-gt" => x > y,
                        _ => x >= y,
                    }),
                    _ => Truth::Unknown,
                }
            }
            _ => Truth::Unknown,
        },
        _ => Truth::Unknown,
    }
}

impl ShellEnv for Scanner<'_> {
    fn var(&self, name: &str) -> Option<VarState> {
        Scanner::var(self, name)
    }

    fn subst(&self, inner: &str) -> Option<String> {
        eval_subst(self, inner)
    }
}

/// The output of `$(…)` when it is a pure function of known values:
/// `echo`, `printf '%s'`, `cut`, `tr`, `sed s///`, and `[ … ] && echo a ||
/// echo b` lists. `None` for anything else.
fn eval_subst(env: &dyn ShellEnv, inner: &str) -> Option<String> {
    let cmds = split_commands(inner).ok()?;
    let mut out: Option<String> = None;
    let mut status = true;
    for c in &cmds {
        let run = match c.before {
            Sep::And => status,
            Sep::Or => !status,
            _ => true,
        };
        if !run {
            continue;
        }
        let mut words: Vec<String> = Vec::new();
        for w in &c.words {
            for f in expand_word(inner, w, env).ok()? {
                words.push(f.value?);
            }
        }
        let input = match (c.before, &c.here_string) {
            (_, Some(w)) => {
                let f = expand_word(inner, w, env).ok()?;
                let v: Vec<String> = f.into_iter().map(|f| f.value).collect::<Option<_>>()?;
                Some(format!("{}\n", v.join(" ")))
            }
            (Sep::Pipe, None) => out.take(),
            _ => None,
        };
        let (prog, args) = words.split_first()?;
        let prog = prog.rsplit('/').next().unwrap_or(prog);
        let result = match prog {
            "echo" => {
                let (nl, args) = match args.first().map(String::as_str) {
                    Some("-n") => (false, &args[1..]),
                    _ => (true, args),
                };
                let mut s = args.join(" ");
                if nl {
                    s.push('\n');
                }
                Some(s)
            }
            "printf" => {
                let (fmt, rest) = args.split_first()?;
                if fmt == "%s" {
                    Some(rest.concat())
                } else if !fmt.contains(['%', '\\']) && rest.is_empty() {
                    Some(fmt.clone())
                } else {
                    None
                }
            }
            "[" | "test" | "[[" => {
                let arg_list: Vec<Arg> = args
                    .iter()
                    .map(|v| Arg {
                        span: Span::new(0, 0),
                        written: v.clone(),
                        value: Some(v.clone()),
                        unresolved: Vec::new(),
                        offsets: Vec::new(),
                    })
                    .collect();
                let refs: Vec<&Arg> = arg_list.iter().collect();
                match eval_test(prog, &refs) {
                    Truth::Yes => status = true,
                    Truth::No => status = false,
                    Truth::Unknown => return None,
                }
                continue;
            }
            "uname" | "arch" | "dpkg" => arch_probe(env, prog, args),
            "cut" => cut(args, &input?),
            "tr" => tr(args, &input?),
            "sed" => sed(args, &input?),
            _ => None,
        }?;
        status = true;
        out = Some(out.unwrap_or_default() + &result);
    }
    out
}

/// `cut -d D -f N[,M|N-M]` on each line.
fn cut(args: &[String], input: &str) -> Option<String> {
    let mut delim = '\t';
    let mut fields: Option<&str> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if let Some(d) = a.strip_prefix("-d") {
            let d = if d.is_empty() { it.next()?.as_str() } else { d };
            delim = d.chars().next()?;
        } else if let Some(f) = a.strip_prefix("-f") {
            fields = Some(if f.is_empty() { it.next()?.as_str() } else { f });
        } else {
            return None;
        }
    }
    let mut wanted: Vec<(usize, usize)> = Vec::new();
    for part in fields?.split(',') {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (
                if a.is_empty() { 1 } else { a.parse().ok()? },
                if b.is_empty() {
                    usize::MAX
                } else {
                    b.parse().ok()?
                },
            ),
            None => {
                let n = part.parse().ok()?;
                (n, n)
            }
        };
        wanted.push((a, b));
    }
    let mut out = String::new();
    for line in input.lines() {
        if !line.contains(delim) {
            out.push_str(line);
        } else {
            let picked: Vec<&str> = line
                .split(delim)
                .enumerate()
                .filter(|(i, _)| wanted.iter().any(|&(a, b)| (a..=b).contains(&(i + 1))))
                .map(|(_, f)| f)
                .collect();
            out.push_str(&picked.join(&delim.to_string()));
        }
        out.push('\n');
    }
    Some(out)
}

/// `tr A B` and `tr -d A` with plain characters and `a-z` ranges.
fn tr(args: &[String], input: &str) -> Option<String> {
    fn set(s: &str) -> Option<Vec<char>> {
        let c: Vec<char> = s.chars().collect();
        let mut out = Vec::new();
        let mut i = 0;
        while i < c.len() {
            if c[i] == '[' || c[i] == '\\' {
                return None;
            }
            if i + 2 < c.len() && c[i + 1] == '-' {
                out.extend(c[i]..=c[i + 2]);
                i += 3;
            } else {
                out.push(c[i]);
                i += 1;
            }
        }
        Some(out)
    }
    match args {
        [d, a] if d == "-d" => {
            let a = set(a)?;
            Some(input.chars().filter(|c| !a.contains(c)).collect())
        }
        [a, b] => {
            let (a, b) = (set(a)?, set(b)?);
            let last = *b.last()?;
            Some(
                input
                    .chars()
                    .map(|c| match a.iter().position(|x| *x == c) {
                        Some(i) => b.get(i).copied().unwrap_or(last),
                        None => c,
                    })
                    .collect(),
            )
        }
        _ => None,
    }
}

/// `sed s/A/B/[g]` (or `sed -e …`) with literal A and B.
fn sed(args: &[String], input: &str) -> Option<String> {
    let expr = match args {
        [e] => e,
        [flag, e] if flag == "-e" => e,
        _ => return None,
    };
    let rest = expr.strip_prefix('s')?;
    let d = rest.chars().next()?;
    let parts: Vec<&str> = rest[d.len_utf8()..].split(d).collect();
    let [a, b, flags] = parts.as_slice() else {
        return None;
    };
    let literal = |s: &str| !s.contains(['.', '*', '[', ']', '^', '$', '\\', '&', '+', '?']);
    if !literal(a) || !literal(b) || a.is_empty() {
        return None;
    }
    let out = input
        .lines()
        .map(|l| match *flags {
            "g" => Some(l.replace(a, b)),
            "" => Some(l.replacen(a, b, 1)),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    Some(out.join("\n") + "\n")
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

const PIP_VALUE_SHORT: &[char] = &['r', 'c', 'e', 'i', 'f', 't', 'C', 'p', 'b', 'P'];
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
    "--upgrade-package",
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

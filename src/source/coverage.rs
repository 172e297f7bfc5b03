//! Coverage: every instruction that can change an image's content, and
//! whether a lock can promise what it brings in.
//!
//! This is the one place that classifies them: install steps (through
//! [`classify_install`]), the other commands of `RUN` bodies that fetch or
//! build content ([`scan_content`]: `curl … | sh`, `curl -o`, `git clone`,
//! `make install`), `ADD <url>` and images pulled by `FROM` and
//! `COPY --from`. Each is [`Class::Locked`], [`Class::Lockable`] (by its
//! content: a sha256 or a commit, which freeze records) or
//! [`Class::NotLocked`], with the reason.

use serde::Serialize;

use crate::config::AcceptUnlocked;
use crate::diagnostic::{LineIndex, Span};
use crate::source::model::{BaseTarget, Definition, InstallStep};
use crate::source::pattern::glob;
use crate::source::shell::{Script, Sep, SimpleCommand, Word, split_commands};
use crate::source::steps::{Action, Ecosystem, InstallCommand, Manager};

/// How far a lock covers one instruction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "class", content = "why", rename_all = "kebab-case")]
pub enum Class {
    /// Pinned by the lock (a digest, hashes, a checksum or a commit).
    Locked(String),
    /// Could be pinned by its content (a sha256, a commit); the lock does
    /// not pin it yet.
    Lockable(String),
    /// Cannot be pinned; why.
    NotLocked(String),
}

impl Class {
    pub fn is_locked(&self) -> bool {
        matches!(self, Class::Locked(_))
    }
}

/// What an OS package step is for the lock. apt, apt-get, dnf, microdnf
/// and yum steps are resolved by freeze, which records one as not locked
/// (with the reason in its warning) when the image's package state or
/// repositories cannot be read. apk steps likewise, against the
/// repositories' signed indexes.
pub fn os_packages(cmd: &InstallCommand) -> Class {
    match cmd.manager {
        Manager::AptGet | Manager::Apt if cmd.action == Action::NoChange => {
            Class::NotLocked("it changes nothing in the image".into())
        }
        Manager::AptGet | Manager::Apt => {
            Class::Locked("Debian packages by version and sha256".into())
        }
        Manager::Dnf | Manager::Microdnf | Manager::Yum if cmd.action == Action::NoChange => {
            Class::NotLocked("it changes nothing in the image".into())
        }
        Manager::Dnf | Manager::Microdnf | Manager::Yum => {
            Class::Locked("RPM packages by NEVRA and sha256".into())
        }
        Manager::Apk if cmd.action == Action::NoChange => {
            Class::NotLocked("it changes nothing in the image".into())
        }
        Manager::Apk => Class::Locked("Alpine packages by version and checksum".into()),
        _ => Class::NotLocked(format!(
            "OS packages: `{}` steps are not locked yet",
            cmd.manager.as_str()
        )),
    }
}

/// Why the base of an Apptainer stage bootstrapped by `agent` from
/// `from` (its `From`, else `OSVersion` or `MirrorURL`) is not locked.
pub fn agent_not_locked(agent: &str, from: &str) -> String {
    match agent {
        "shub" => format!(
            "`Bootstrap: shub` names `{from}` on Singularity Hub, which is gone: the image can be neither fetched nor pinned"
        ),
        "oras" => format!(
            "`Bootstrap: oras` pulls the SIF `{from}` stored as an ORAS artifact; the lock has no digest for it (freeze ran offline, see its warning)"
        ),
        "library" => format!(
            "`Bootstrap: library` pulls `{from}` from a Library service; the lock has no image hash for it (freeze ran offline, see its warning)"
        ),
        "docker-daemon" => format!(
            "`Bootstrap: docker-daemon` takes `{from}` from the local Docker daemon; the lock has no image ID for it (freeze could not ask the engine, see its warning)"
        ),
        "docker-archive" | "oci-archive" => format!(
            "`Bootstrap: {agent}` reads the local archive `{from}`; the lock has no sha256 of it (freeze could not read it, see its warning)"
        ),
        "oci" => format!(
            "`Bootstrap: oci` reads the local OCI layout `{from}`; the lock has no digest of it (freeze could not read it, see its warning)"
        ),
        "localimage" => format!(
            "`Bootstrap: localimage` starts from the local image `{from}`; the lock has no sha256 of it (freeze could not read it, see its warning)"
        ),
        _ => format!(
            "`Bootstrap: {agent}` builds the root filesystem from a distribution (`{from}`); OS bootstraps are not locked"
        ),
    }
}

/// The project a pip step names that an earlier command of its stage
/// built from source (`git clone …/hail.git && make install`, then `pip
/// install hail`), with that command's line: the image holds that build,
/// not the index file a pin of the step would name.
pub fn built_from_source(
    stage: &crate::source::model::Stage,
    step: &InstallStep,
) -> Option<(String, usize)> {
    if step.command.manager.ecosystem() != Ecosystem::Python {
        return None;
    }
    let built: Vec<(String, usize)> = stage
        .content
        .iter()
        .filter_map(|c| match &c.kind {
            ContentKind::BuildFromSource { project: Some(p) } => Some((normalized(p), c.line)),
            _ => None,
        })
        .collect();
    step.command.specs.iter().find_map(|spec| {
        let name = spec_name(spec.value.as_deref()?)?;
        built
            .iter()
            .find(|(p, line)| *p == name && *line < step.line)
            .map(|(_, line)| (name, *line))
    })
}

/// Whether imagelock locks the install command `cmd`, and if not, why.
/// Freeze asks this before resolving a step; coverage reports it.
pub fn classify_install(cmd: &InstallCommand) -> Class {
    if let Some(c) = &cmd.conditional {
        return Class::NotLocked(format!(
            "it runs only if `{c}`, which imagelock cannot decide"
        ));
    }
    match cmd.manager.ecosystem() {
        Ecosystem::Os => return os_packages(cmd),
        Ecosystem::Other => {
            return Class::NotLocked(match cmd.manager {
                Manager::R => "R packages from CRAN or Bioconductor".into(),
                _ => format!(
                    "imagelock does not lock `{}` installs",
                    cmd.manager.as_str()
                ),
            });
        }
        Ecosystem::Python | Ecosystem::Conda => {}
    }
    if !cmd.action.installs() {
        return Class::NotLocked(format!("`{}` does not install", cmd.action.as_str()));
    }
    Class::Locked(format!("{} packages by hash", cmd.manager.as_str()))
}

pub use crate::source::model::{ContentKind, ContentStep};

/// Whether the lock can promise what `step` brings in.
pub fn classify_content(step: &ContentStep) -> Class {
    match &step.kind {
        ContentKind::ScriptFromNetwork { .. } => Class::NotLocked("script from the network".into()),
        ContentKind::ArchiveFromNetwork { .. } => {
            Class::NotLocked("archive from the network, unpacked unchecked".into())
        }
        ContentKind::PipedFromNetwork { into, .. } => {
            Class::NotLocked(format!("data from the network piped into `{into}`"))
        }
        ContentKind::Download { url: Some(_) } => {
            Class::Lockable("a fixed URL: `imagelock freeze` locks its sha256".into())
        }
        ContentKind::Download { url: None } => {
            Class::NotLocked("download from a URL imagelock cannot expand".into())
        }
        ContentKind::GitClone {
            commit: Some(c), ..
        } => Class::Locked(format!("commit {c}")),
        ContentKind::GitClone {
            url: Some(_),
            checkout: Some(r),
            ..
        } => Class::NotLocked(format!(
            "the script checks out `{r}` after the clone, a ref imagelock does not lock; check out a full commit instead"
        )),
        ContentKind::GitClone { url: Some(_), .. } => {
            Class::Lockable("a git branch that moves: `imagelock freeze` locks its commit".into())
        }
        ContentKind::GitClone { url: None, .. } => {
            Class::NotLocked("git clone of a URL imagelock cannot expand".into())
        }
        ContentKind::BuildFromSource { project: None } => {
            Class::NotLocked("built from source; what it installs is not locked".into())
        }
        ContentKind::BuildFromSource { project: Some(p) } => Class::NotLocked(format!(
            "built from the source of `{p}`; what it installs is not locked"
        )),
        ContentKind::AddUrl {
            checksum: Some(c), ..
        } => Class::Locked(format!("checksum {c}")),
        ContentKind::AddUrl { checksum: None, .. } => {
            Class::Lockable("a URL: `imagelock freeze` locks its sha256".into())
        }
        ContentKind::AddGit {
            commit: Some(c), ..
        } => Class::Locked(format!("commit {c}")),
        ContentKind::AddGit { commit: None, .. } => {
            Class::Lockable("a git ref that moves: `imagelock freeze` locks its commit".into())
        }
        ContentKind::DebFile {
            url: Some(_),
            download_line: Some(l),
            ..
        } => Class::Lockable(format!(
            "a .deb downloaded from a fixed URL at line {l}: `imagelock freeze` locks its sha256"
        )),
        ContentKind::DebFile { path, .. } => Class::NotLocked(format!(
            "`dpkg -i` of {}, a .deb not downloaded from a fixed URL in the same `RUN`: imagelock does not read it",
            path.as_deref().map_or_else(
                || "a path imagelock cannot expand".to_string(),
                |p| format!("`{p}`")
            )
        )),
    }
}

/// Programs that run a script read on their standard input.
const INTERPRETERS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "ash", "python", "python3", "perl", "ruby",
];

/// Programs that unpack an archive read on their standard input.
const UNPACKERS: &[&str] = &[
    "tar", "bsdtar", "unzip", "funzip", "gunzip", "gzip", "bunzip2", "bzip2", "xz", "unxz", "zstd",
    "cpio",
];

/// Finds the commands of `script` that fetch or build content: network
/// downloads, clones and source builds. Spans are in the file; `lines`
/// gives their line numbers in `text` (the whole file).
pub fn scan_content(script: &Script, text: &str, lines: &LineIndex) -> Vec<ContentStep> {
    // Text imagelock cannot split is reported by the install scanner.
    let Ok(cmds) = split_commands(script.text()) else {
        return Vec::new();
    };
    let st = script.text();
    let mut out = Vec::new();
    let mut clones: Vec<usize> = Vec::new();
    // Files fetched from fixed URLs so far: path → (URL, line).
    let mut fetched: std::collections::HashMap<String, (String, usize)> =
        std::collections::HashMap::new();
    let mut i = 0;
    while i < cmds.len() {
        let cmd = &cmds[i];
        let words = program_words(cmd, st);
        let Some(prog) = words.first().map(|w| base_name(&w.1)) else {
            i += 1;
            continue;
        };
        let span = script.file_span(cmd.span);
        match prog {
            "curl" | "wget" => {
                let (url, output) = fetch_args(prog, &words[1..]);
                let redirected = !cmd.redirects.is_empty();
                if cmd.after == Sep::Pipe
                    && let Some(next) = cmds.get(i + 1)
                {
                    let next_words = program_words(next, st);
                    let into = next_words
                        .first()
                        .map(|w| base_name(&w.1).to_string())
                        .unwrap_or_default();
                    let kind = if into == "tee" {
                        // `curl URL | tee FILE`: a download by another name.
                        ContentKind::Download { url }
                    } else if INTERPRETERS.contains(&into.as_str()) {
                        ContentKind::ScriptFromNetwork { url }
                    } else if UNPACKERS.contains(&into.as_str()) {
                        ContentKind::ArchiveFromNetwork { url }
                    } else {
                        ContentKind::PipedFromNetwork {
                            url,
                            into: into.clone(),
                        }
                    };
                    let whole = script.file_span(Span::new(cmd.span.start, next.span.end));
                    out.push(ContentStep {
                        kind,
                        text: format!("{prog} … | {into}"),
                        line: lines.line_col(text, whole.start).line,
                        span: whole,
                    });
                    i += 2;
                    continue;
                }
                if output || redirected || prog == "wget" {
                    if let (Some(u), Some(file)) = (
                        &url,
                        st.get(cmd.span.start..cmd.span.end).and_then(download_file),
                    ) {
                        fetched.insert(file, (u.clone(), lines.line_col(text, span.start).line));
                    }
                    out.push(ContentStep {
                        kind: ContentKind::Download { url },
                        text: short(&words),
                        line: lines.line_col(text, span.start).line,
                        span,
                    });
                }
            }
            "git" => {
                let args: Vec<&str> = words[1..].iter().map(|w| w.1.as_str()).collect();
                // The subcommand: past global options, and the values of
                // those that take one (`git -C DIR checkout`).
                let mut at = 0;
                while let Some(a) = args.get(at) {
                    if matches!(
                        *a,
                        "-C" | "-c" | "--git-dir" | "--work-tree" | "--namespace"
                    ) {
                        at += 2;
                    } else if a.starts_with('-') {
                        at += 1;
                    } else {
                        break;
                    }
                }
                let sub = (at < args.len()).then_some(at);
                match sub.map(|s| (s, args[s])) {
                    Some((s, "clone")) => {
                        let clone = clone_args(&words[1 + s + 1..]);
                        let url = clone.url;
                        let commit = clone.branch.filter(|b| is_commit(b));
                        clones.push(out.len());
                        out.push(ContentStep {
                            kind: ContentKind::GitClone {
                                url,
                                commit,
                                checkout: None,
                            },
                            text: short(&words),
                            line: lines.line_col(text, span.start).line,
                            span,
                        });
                    }
                    Some((s, sub @ ("checkout" | "reset" | "switch"))) => {
                        // `git checkout <full commit>` after a clone pins
                        // it; another ref moves it off what was locked.
                        let target = checkout_target(sub, &words[1 + s + 1..]);
                        if let Some(t) = target
                            && let Some(&at) = clones.last()
                            && let ContentKind::GitClone {
                                commit, checkout, ..
                            } = &mut out[at].kind
                        {
                            if is_commit(&t) {
                                *commit = Some(t);
                                *checkout = None;
                            } else {
                                *commit = None;
                                *checkout = Some(t);
                            }
                        }
                    }
                    _ => {}
                }
            }
            "dpkg"
                if words[1..]
                    .iter()
                    .any(|w| matches!(w.1.as_str(), "-i" | "--install")) =>
            {
                for w in words[1..].iter().filter(|w| !w.1.starts_with('-')) {
                    let found = w.0.as_ref().and_then(|p| fetched.get(p));
                    out.push(ContentStep {
                        kind: ContentKind::DebFile {
                            path: w.0.clone(),
                            url: found.map(|f| f.0.clone()),
                            download_line: found.map(|f| f.1),
                        },
                        text: short(&words),
                        line: lines.line_col(text, span.start).line,
                        span,
                    });
                }
            }
            "make" | "ninja" | "gmake" if words[1..].iter().any(|w| w.1 == "install") => {
                out.push(build_step(&words, script, cmd, text, lines));
            }
            "cmake"
                if words[1..].iter().any(|w| w.1 == "--install")
                    || words
                        .windows(2)
                        .any(|p| p[0].1 == "--target" && p[1].1 == "install") =>
            {
                out.push(build_step(&words, script, cmd, text, lines));
            }
            "python" | "python3"
                if words.get(1).is_some_and(|w| w.1.ends_with("setup.py"))
                    && words[2..].iter().any(|w| w.1 == "install") =>
            {
                out.push(build_step(&words, script, cmd, text, lines));
            }
            _ => {}
        }
        i += 1;
    }
    // A build follows the clone before it: that is the source it builds.
    let mut last_clone: Option<String> = None;
    for step in &mut out {
        match &mut step.kind {
            ContentKind::GitClone { url, .. } => {
                last_clone = url.as_deref().and_then(repository_name);
            }
            ContentKind::BuildFromSource { project } => project.clone_from(&last_clone),
            _ => {}
        }
    }
    out
}

/// The repository's name in a clone URL (`hail` of
/// `https://github.com/hail-is/hail.git`).
fn repository_name(url: &str) -> Option<String> {
    let last = url
        .trim_end_matches('/')
        .rsplit(['/', ':'])
        .next()?
        .trim_end_matches(".git");
    (!last.is_empty()).then(|| last.to_string())
}

/// PEP 503 normalization of a project name.
fn normalized(name: &str) -> String {
    name.to_ascii_lowercase().replace(['_', '.'], "-")
}

/// The project a pip spec names (`hail` of `hail[all]==0.2`).
fn spec_name(spec: &str) -> Option<String> {
    let end = spec
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(spec.len());
    (end > 0 && !spec.contains("://")).then(|| normalized(&spec[..end]))
}

fn build_step(
    words: &[(Option<String>, String)],
    script: &Script,
    cmd: &SimpleCommand,
    text: &str,
    lines: &LineIndex,
) -> ContentStep {
    let span = script.file_span(cmd.span);
    ContentStep {
        kind: ContentKind::BuildFromSource { project: None },
        text: short(words),
        line: lines.line_col(text, span.start).line,
        span,
    }
}

/// The words of `cmd` from its program on (past keywords, `sudo`,
/// assignments): each as its plain value (quotes removed; `None` when
/// it holds an expansion) and as written.
pub(crate) fn program_words(cmd: &SimpleCommand, st: &str) -> Vec<(Option<String>, String)> {
    let mut words: Vec<(Option<String>, String)> =
        cmd.words.iter().map(|w| word_value(w, st)).collect();
    while let Some(first) = words.first().map(|w| w.1.as_str()) {
        let skip = matches!(
            first,
            "if" | "then"
                | "else"
                | "elif"
                | "do"
                | "while"
                | "until"
                | "!"
                | "{"
                | "time"
                | "sudo"
                | "exec"
                | "command"
                | "nohup"
        ) || (first.contains('=') && !first.starts_with('-') && !first.starts_with('='));
        if !skip {
            break;
        }
        words.remove(0);
    }
    words
}

/// A word's value without quotes when it is literal text, and as written.
fn word_value(w: &Word, st: &str) -> (Option<String>, String) {
    let written = st.get(w.span.start..w.span.end).unwrap_or("").to_string();
    let value: Option<String> = w
        .segs
        .iter()
        .map(|s| match s {
            crate::source::shell::Seg::Lit { ch, .. } => Some(ch.to_string()),
            crate::source::shell::Seg::EmptyQuotes => Some(String::new()),
            _ => None,
        })
        .collect();
    let shown = value.clone().unwrap_or(written);
    (value, shown)
}

pub(crate) fn base_name(program: &str) -> &str {
    program.rsplit('/').next().unwrap_or(program)
}

/// The URL `curl`/`wget` fetches (`None` when it holds an expansion) and
/// whether the command writes it to a file.
pub(crate) fn fetch_args(prog: &str, args: &[(Option<String>, String)]) -> (Option<String>, bool) {
    let mut url = None;
    let mut output = false;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].1.as_str();
        let takes_value = if prog == "curl" {
            matches!(
                a,
                "-o" | "--output"
                    | "-H"
                    | "--header"
                    | "-u"
                    | "--user"
                    | "-A"
                    | "--user-agent"
                    | "-e"
                    | "--referer"
                    | "-d"
                    | "--data"
                    | "-X"
                    | "--request"
                    | "--retry"
                    | "--connect-timeout"
                    | "-m"
                    | "--max-time"
                    | "--cacert"
                    | "-w"
                    | "--write-out"
                    | "-x"
                    | "--proxy"
                    | "--output-dir"
            )
        } else {
            matches!(
                a,
                "-O" | "--output-document"
                    | "-P"
                    | "--directory-prefix"
                    | "--header"
                    | "-U"
                    | "--user-agent"
                    | "-t"
                    | "--tries"
                    | "-T"
                    | "--timeout"
            )
        };
        let is_output = if prog == "curl" {
            matches!(a, "-o" | "--output" | "-O" | "--remote-name")
                || a.starts_with("--output=")
                || (a.starts_with('-') && !a.starts_with("--") && a[1..].contains(['o', 'O']))
        } else {
            matches!(a, "-O" | "--output-document") || a.starts_with("--output-document=")
        };
        // `wget -qO- URL` writes to standard output.
        let to_stdout = prog == "wget"
            && (a.ends_with("O-")
                || a == "--output-document=-"
                || args.get(i + 1).is_some_and(|n| n.1 == "-") && is_output);
        output |= is_output && !to_stdout;
        if a.starts_with('-') {
            i += if takes_value { 2 } else { 1 };
            continue;
        }
        if url.is_none() && a.contains("://") {
            url = Some(args[i].0.clone().filter(|u| !u.is_empty()));
        }
        i += 1;
    }
    (url.flatten(), output)
}

/// The ref a `git checkout`/`switch`/`reset` (`sub`) moves the work tree
/// to, from its arguments: `None` when it moves nothing (paths, a new
/// branch at `HEAD`, a bare `reset --hard`); a ref that holds an
/// expansion is given as written.
fn checkout_target(sub: &str, args: &[(Option<String>, String)]) -> Option<String> {
    let mut i = 0;
    while i < args.len() {
        let a = args[i].1.as_str();
        if a == "--" {
            return None;
        }
        if matches!(a, "-b" | "-B" | "-c" | "-C" | "--orphan") {
            i += 2;
            continue;
        }
        if a.starts_with('-') {
            i += 1;
            continue;
        }
        if matches!(a, "." | "HEAD") || (sub == "reset" && a.starts_with("HEAD")) {
            return None;
        }
        return Some(args[i].1.clone());
    }
    None
}

/// What a `git clone` command asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CloneArgs {
    /// The repository (`None` when it holds an expansion).
    pub url: Option<String>,
    /// `--branch`/`-b`: a branch or tag (`None`: the default branch).
    pub branch: Option<String>,
    /// The directory as written (`None`: git names it after the URL).
    pub dir: Option<String>,
    /// `--depth N` as written, when the clone is shallow by depth.
    pub depth: Option<String>,
    /// Any shallow option (`--depth`, `--shallow-since`,
    /// `--shallow-exclude`): the clone holds only recent history.
    pub shallow: bool,
    /// `--origin NAME`: the remote's name, when not `origin`.
    pub origin: Option<String>,
    /// `--bare`, `--mirror`: there is no work tree to check out.
    pub bare: bool,
}

/// `git clone` options that take a value as the next word.
const CLONE_VALUE_OPTIONS: &[&str] = &[
    "-b",
    "--branch",
    "-o",
    "--origin",
    "-u",
    "--upload-pack",
    "--reference",
    "--reference-if-able",
    "--separate-git-dir",
    "--depth",
    "--shallow-since",
    "--shallow-exclude",
    "-c",
    "--config",
    "--filter",
    "-j",
    "--jobs",
    "--template",
    "--server-option",
    "--bundle-uri",
    "--ref-format",
];

/// Reads the arguments of `git clone` (the words after `clone`).
pub(crate) fn clone_args(args: &[(Option<String>, String)]) -> CloneArgs {
    let mut out = CloneArgs::default();
    let mut positional: Vec<&(Option<String>, String)> = Vec::new();
    let mut i = 0;
    let mut options_done = false;
    while i < args.len() {
        let a = args[i].1.as_str();
        if options_done || !a.starts_with('-') || a == "-" {
            positional.push(&args[i]);
            i += 1;
            continue;
        }
        if a == "--" {
            options_done = true;
            i += 1;
            continue;
        }
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (a, None),
        };
        let takes = CLONE_VALUE_OPTIONS.contains(&name);
        let value = if takes && inline.is_none() {
            i += 1;
            args.get(i).and_then(|w| w.0.clone())
        } else {
            inline
        };
        match name {
            "-b" | "--branch" => out.branch = value,
            "-o" | "--origin" => out.origin = value,
            "--depth" => {
                out.depth = value;
                out.shallow = true;
            }
            "--shallow-since" | "--shallow-exclude" => out.shallow = true,
            "--bare" | "--mirror" => out.bare = true,
            _ => {}
        }
        i += 1;
    }
    out.url = positional.first().and_then(|w| w.0.clone());
    out.dir = positional.get(1).map(|w| w.1.clone());
    out
}

/// The `git clone` a command (as written) runs, read.
pub fn clone_command(command: &str) -> Option<CloneArgs> {
    let cmds = split_commands(command).ok()?;
    let [cmd] = cmds.as_slice() else {
        return None;
    };
    let words = program_words(cmd, command);
    if base_name(&words.first()?.1) != "git" {
        return None;
    }
    let at = words.iter().position(|w| w.1 == "clone")?;
    Some(clone_args(&words[at + 1..]))
}

/// The directory `git clone URL` makes when none is given: the URL's last
/// path segment without `.git` (`hail` of `https://g.org/o/hail.git`).
pub fn clone_dir(url: &str) -> Option<String> {
    repository_name(url.trim_end_matches("/.git"))
}

/// A git source as BuildKit's `ADD` reads it: the repository, the ref of
/// its `#ref[:subdir]` fragment (or `?ref=` query) and the subdirectory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitUrl {
    pub repository: String,
    pub reference: Option<String>,
    pub subdir: Option<String>,
    /// The URL uses the `?ref=…&subdir=…` query form.
    pub query: bool,
}

/// Splits an `ADD` git source (`https://h/o/r.git#main:docs`).
pub fn git_url(source: &str) -> GitUrl {
    if let Some((repo, query)) = source.split_once('?') {
        let param = |k: &str| {
            query
                .split('&')
                .find_map(|p| p.strip_prefix(k)?.strip_prefix('='))
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        return GitUrl {
            repository: repo.to_string(),
            reference: param("ref")
                .or_else(|| param("tag"))
                .or_else(|| param("branch")),
            subdir: param("subdir"),
            query: true,
        };
    }
    let (repository, fragment) = match source.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (source, None),
    };
    let (reference, subdir) = match fragment.map(|f| f.split_once(':').unwrap_or((f, ""))) {
        Some((r, d)) => (
            (!r.is_empty()).then(|| r.to_string()),
            (!d.is_empty()).then(|| d.to_string()),
        ),
        None => (None, None),
    };
    GitUrl {
        repository: repository.to_string(),
        reference,
        subdir,
        query: false,
    }
}

/// A full git commit id (40 or 64 hex digits).
pub fn is_commit(s: &str) -> bool {
    matches!(s.len(), 40 | 64) && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// A command shortened for one line: up to three words, else the first
/// two and `…`.
pub(crate) fn short(words: &[(Option<String>, String)]) -> String {
    let all: Vec<&str> = words.iter().map(|w| w.1.as_str()).collect();
    let joined = all.join(" ");
    if all.len() <= 3 && joined.chars().count() <= 40 {
        joined
    } else if all.get(1).is_some_and(|w| w.chars().count() > 24) {
        // A long URL or path says little on one line: the line number does.
        format!("{} …", all[0])
    } else {
        format!("{} …", all[..2.min(all.len())].join(" "))
    }
}

/// The file a `curl -o FILE URL` or `wget -O FILE URL` command (as written)
/// writes, when it names one literally (`None` for `curl -O`, a
/// redirection, standard output or an expansion).
pub fn download_file(command: &str) -> Option<String> {
    let cmds = split_commands(command).ok()?;
    let [cmd] = cmds.as_slice() else {
        return None;
    };
    let words = program_words(cmd, command);
    let prog = base_name(&words.first()?.1).to_string();
    let args = &words[1..];
    let mut i = 0;
    let mut file = None;
    while i < args.len() {
        let a = args[i].1.as_str();
        let (value_next, inline) = match prog.as_str() {
            "curl" => (
                a == "-o"
                    || a == "--output"
                    || (a.starts_with('-') && !a.starts_with("--") && a.ends_with('o')),
                a.strip_prefix("--output="),
            ),
            "wget" => (
                a == "-O"
                    || a == "--output-document"
                    || (a.starts_with('-') && !a.starts_with("--") && a.ends_with('O')),
                a.strip_prefix("--output-document="),
            ),
            _ => return None,
        };
        if let Some(v) = inline {
            file = Some(Some(v.to_string()));
        } else if value_next {
            file = Some(args.get(i + 1).and_then(|w| w.0.clone()));
            i += 1;
        }
        i += 1;
    }
    file.flatten()
        .filter(|f| !f.is_empty() && f != "-" && !f.contains(['"', '\\', '$', '`']))
}

/// Whether an `ADD` source is fetched from the network, and how.
pub fn add_source(source: &str, checksum: Option<&str>) -> Option<ContentKind> {
    let git = source.starts_with("git@")
        || source.starts_with("git://")
        || source
            .split(['#', '?'])
            .next()
            .is_some_and(|u| u.ends_with(".git"));
    if git {
        let commit = git_url(source).reference.filter(|r| is_commit(r));
        return Some(ContentKind::AddGit {
            url: source.to_string(),
            commit,
        });
    }
    (source.starts_with("http://") || source.starts_with("https://")).then(|| ContentKind::AddUrl {
        url: source.to_string(),
        checksum: checksum.map(str::to_string),
    })
}

/// One instruction of an image, as coverage counts it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CoveredStep {
    pub line: usize,
    /// The instruction, shortened.
    pub text: String,
    pub class: Class,
    /// A configuration entry accepts it unlocked on purpose.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub accepted: bool,
}

/// Every instruction of an image that can change its content, classified.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Coverage {
    /// The definition file, as shown in messages.
    pub file: String,
    pub steps: Vec<CoveredStep>,
}

/// What a lock records of an install step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InLock {
    Locked,
    /// Recorded as not locked, with the reason the lock gives.
    NotLocked(Option<String>),
    /// The lock has no step of that command at that line (it is stale).
    Missing,
}

/// What the caller knows beyond the definition.
pub struct CoverageInputs<'a> {
    /// For an install step: what the lock says of it (`None`: no lock).
    pub install_locked: &'a dyn Fn(&InstallStep) -> Option<InLock>,
    /// For an image reference (after expansion): whether the lock pins it
    /// by digest (`None`: no lock).
    pub image_locked: &'a dyn Fn(&str) -> Option<bool>,
    /// For a file fetched from a fixed URL (its line, the URL): whether the
    /// lock records its sha256 (`None`: no lock).
    pub download_locked: &'a dyn Fn(usize, &str) -> Option<bool>,
    /// For a git repository cloned or added at a line (its URL as
    /// written, without a `#ref`): what the lock records of its commit
    /// (`None`: no lock).
    pub git_locked: &'a dyn Fn(usize, &str) -> Option<InLock>,
    /// Entries accepting unlocked steps: a line number or a glob over the
    /// command as written.
    pub accept: &'a [AcceptUnlocked],
}

impl Coverage {
    /// Classifies every content-changing instruction of `def` (stages the
    /// build skips are left out).
    pub fn of(def: &Definition, file: &str, text: &str, inputs: &CoverageInputs<'_>) -> Self {
        let mut steps = Vec::new();
        let lines = LineIndex::new(text);
        let line_of = |span: Span| lines.line_col(text, span.start).line;
        let written = |span: Span| text.get(span.start..span.end).unwrap_or("").to_string();
        for stage in def.stages.iter().filter(|s| !s.unused) {
            let base = &stage.base;
            let base_class = match &base.target {
                BaseTarget::Image { .. } => Some(image_class(
                    base.reference.value.as_deref(),
                    &base.reference.written,
                    inputs,
                )),
                BaseTarget::Other { agent } => Some(agent_class(
                    agent,
                    base.reference.value.as_deref(),
                    &base.reference.written,
                    inputs,
                )),
                BaseTarget::Stage { .. } | BaseTarget::Scratch => None,
            };
            if let Some(class) = base_class {
                let line = line_of(base.reference.span);
                steps.push((
                    line,
                    first_line(&written(stage.span)),
                    class,
                    base.reference.span,
                ));
            }
            for u in &stage.image_uses {
                if matches!(u.target, BaseTarget::Image { .. }) {
                    let class =
                        image_class(u.reference.value.as_deref(), &u.reference.written, inputs);
                    steps.push((line_of(u.span), first_line(&written(u.span)), class, u.span));
                }
            }
            for s in &stage.steps {
                let from_source = built_from_source(stage, s);
                if let Some((name, line)) = from_source {
                    // The image holds what the build installed, not the
                    // index file a pin of this step would name.
                    steps.push((
                        s.line,
                        short_command(&s.command.text),
                        Class::NotLocked(format!(
                            "`{name}` was built from source at line {line}: the image holds that build, not an index file"
                        )),
                        s.command.span,
                    ));
                    continue;
                }
                let class = match ((inputs.install_locked)(s), classify_install(&s.command)) {
                    (Some(InLock::Locked), _) => {
                        Class::Locked(format!("{} packages by hash", s.command.manager.as_str()))
                    }
                    (Some(InLock::Missing), _) => {
                        Class::NotLocked("not in the lock, which is stale".into())
                    }
                    (Some(InLock::NotLocked(why)), Class::Locked(_)) => Class::NotLocked(
                        why.unwrap_or_else(|| "the lock records it as not locked".into()),
                    ),
                    (_, c) => c,
                };
                steps.push((
                    s.line,
                    short_command(&s.command.text),
                    class,
                    s.command.span,
                ));
            }
            for c in &stage.content {
                let class = match (&c.kind, classify_content(c)) {
                    (
                        ContentKind::AddUrl { url, .. } | ContentKind::Download { url: Some(url) },
                        Class::Lockable(why),
                    ) => match (inputs.download_locked)(c.line, url) {
                        Some(true) => Class::Locked("sha256 in the lock".into()),
                        Some(false) => Class::NotLocked(
                            "the lock has no sha256 for it (freeze could not fetch it, or the lock is stale)"
                                .into(),
                        ),
                        None => Class::Lockable(why),
                    },
                    (
                        ContentKind::DebFile {
                            url: Some(url),
                            download_line: Some(l),
                            ..
                        },
                        Class::Lockable(why),
                    ) => match (inputs.download_locked)(*l, url) {
                        Some(true) => Class::Locked(format!(
                            "a .deb by the sha256 the lock has for its download at line {l}"
                        )),
                        Some(false) => Class::NotLocked(format!(
                            "the lock has no sha256 for the .deb downloaded at line {l}"
                        )),
                        None => Class::Lockable(why),
                    },
                    (ContentKind::GitClone { url: Some(url), .. }, Class::Lockable(why)) => {
                        git_class(inputs, c.line, url, why)
                    }
                    (ContentKind::AddGit { url, .. }, Class::Lockable(why)) => {
                        git_class(inputs, c.line, &git_url(url).repository, why)
                    }
                    (_, class) => class,
                };
                steps.push((c.line, c.text.clone(), class, c.span));
            }
        }
        steps.sort_by_key(|s| (s.0, s.3.start));
        let steps = steps
            .into_iter()
            .map(|(line, text_short, class, span)| {
                let full = written(span);
                let accepted =
                    !class.is_locked() && inputs.accept.iter().any(|a| accepts(a, line, &full));
                CoveredStep {
                    line,
                    // A URL's credentials never show in a report.
                    text: crate::config::redact::redact_text(&text_short).into_owned(),
                    class,
                    accepted,
                }
            })
            .collect();
        Coverage {
            file: file.to_string(),
            steps,
        }
    }

    /// Steps not locked and not accepted.
    pub fn unlocked(&self) -> impl Iterator<Item = &CoveredStep> {
        self.steps
            .iter()
            .filter(|s| !s.class.is_locked() && !s.accepted)
    }

    /// One line: `14 of 16 steps locked; not locked: line 30 `curl … | bash`
    /// (script from the network)`.
    pub fn line(&self) -> String {
        let locked = self.steps.iter().filter(|s| s.class.is_locked()).count();
        let n = self.steps.len();
        let mut out = format!(
            "{locked} of {n} step{} locked",
            if n == 1 { "" } else { "s" }
        );
        let accepted: Vec<String> = self
            .steps
            .iter()
            .filter(|s| s.accepted)
            .map(|s| format!("line {} `{}`", s.line, s.text))
            .collect();
        if !accepted.is_empty() {
            out.push_str("; accepted unlocked: ");
            out.push_str(&accepted.join(", "));
        }
        let unlocked: Vec<String> = self
            .unlocked()
            .map(|s| {
                let why = match &s.class {
                    Class::Lockable(w) => format!("lockable by content: {w}"),
                    Class::NotLocked(w) | Class::Locked(w) => w.clone(),
                };
                format!("line {} `{}` ({why})", s.line, s.text)
            })
            .collect();
        if !unlocked.is_empty() {
            out.push_str("; not locked: ");
            out.push_str(&unlocked.join(", "));
        }
        out
    }
}

/// The base of a stage bootstrapped by an Apptainer agent other than
/// `docker` (see [`crate::source::agents`]): locked when it is read on
/// this machine, or pulled by `oras` or `library` (pinned by freeze, see
/// `crate::freeze::agents`, as a registry image is), and the lock pins it;
/// otherwise why not.
fn agent_class(
    agent: &str,
    value: Option<&str>,
    written: &str,
    inputs: &CoverageInputs<'_>,
) -> Class {
    use crate::source::agents::{AgentPin, PinKind, RemoteAgent, agent_pin};
    match (agent_pin(agent), value) {
        (AgentPin::Local(local), Some(from)) if (inputs.image_locked)(from) != Some(false) => {
            Class::Locked(
                match local.pin_kind() {
                    PinKind::ImageId => "image ID",
                    PinKind::FileSha256 => "file sha256",
                    PinKind::LayoutManifest => "layout manifest digest",
                }
                .into(),
            )
        }
        (AgentPin::Remote(remote), value) => {
            let what = match remote {
                RemoteAgent::Oras => "ORAS manifest and SIF digests",
                RemoteAgent::Library => "Library image hash",
            };
            match value {
                Some(v) if (inputs.image_locked)(v) == Some(false) => Class::NotLocked(format!(
                    "the lock has no {what} for `Bootstrap: {agent}` `{v}` (freeze ran offline, or the lock is stale)"
                )),
                Some(_) => Class::Locked(what.into()),
                None => Class::NotLocked(format!(
                    "`{written}` cannot be expanded, so nothing is locked"
                )),
            }
        }
        _ => Class::NotLocked(agent_not_locked(agent, value.unwrap_or(written))),
    }
}

fn git_class(inputs: &CoverageInputs<'_>, line: usize, repository: &str, why: String) -> Class {
    match (inputs.git_locked)(line, repository) {
        Some(InLock::Locked) => Class::Locked("commit in the lock".into()),
        Some(InLock::NotLocked(reason)) => Class::NotLocked(reason.map_or_else(
            || "the lock has no commit for it".to_string(),
            |r| format!("the lock has no commit for it: {r}"),
        )),
        Some(InLock::Missing) => Class::NotLocked(
            "the lock has no commit for it (it is stale: run `imagelock freeze`)".into(),
        ),
        None => Class::Lockable(why),
    }
}

fn image_class(value: Option<&str>, written: &str, inputs: &CoverageInputs<'_>) -> Class {
    match value {
        Some(v) if (inputs.image_locked)(v) == Some(false) => {
            Class::NotLocked(format!("the lock has no digest for `{v}`"))
        }
        Some(_) => Class::Locked("image digest".into()),
        None => Class::NotLocked(format!(
            "`{written}` cannot be expanded, so no digest is locked"
        )),
    }
}

fn first_line(s: &str) -> String {
    let l = s.lines().next().unwrap_or("").trim();
    short_command(l)
}

fn short_command(s: &str) -> String {
    let words: Vec<(Option<String>, String)> = s
        .split_whitespace()
        .map(|w| (None, w.to_string()))
        .collect();
    short(&words)
}

/// Whether a configuration entry accepts the step at `line` written as
/// `command`: by its line, or by a glob over the command with its blanks
/// and line continuations folded to single spaces.
pub fn accepts(entry: &AcceptUnlocked, line: usize, command: &str) -> bool {
    match entry {
        AcceptUnlocked::Line(l) => usize::try_from(*l).is_ok_and(|l| l == line),
        AcceptUnlocked::Pattern(p) => {
            let flat = command
                .replace("\\\n", " ")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            glob(p, &flat)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(script: &str) -> Vec<ContentKind> {
        let s = Script::from_file_piece(script, 0);
        scan_content(&s, script, &LineIndex::new(script))
            .into_iter()
            .map(|c| c.kind)
            .collect()
    }

    #[test]
    fn network_fetches_are_told_apart_by_where_their_output_goes() {
        let url = Some("https://x.org/a".to_string());
        assert_eq!(
            kinds("wget -qO- https://x.org/a | sh"),
            [ContentKind::ScriptFromNetwork { url: url.clone() }]
        );
        assert_eq!(
            kinds("curl -fsSL https://x.org/a | tar xz -C /opt"),
            [ContentKind::ArchiveFromNetwork { url: url.clone() }]
        );
        assert_eq!(
            kinds("curl -fsSLo /tmp/a https://x.org/a && curl https://x.org/a > /tmp/b"),
            [
                ContentKind::Download { url: url.clone() },
                ContentKind::Download { url: url.clone() }
            ]
        );
        // A URL that holds a variable is not a fixed URL.
        assert_eq!(
            kinds("curl -o /tmp/a https://x.org/$V"),
            [ContentKind::Download { url: None }]
        );
        // Output that goes nowhere in the image is not content.
        assert_eq!(kinds("curl -fsS https://x.org/health"), []);
    }

    #[test]
    fn the_file_a_download_writes_is_read_from_its_options() {
        assert_eq!(
            download_file("curl -fsSLo /tmp/a.tgz https://x.org/a").as_deref(),
            Some("/tmp/a.tgz")
        );
        assert_eq!(
            download_file("curl --output=/a https://x.org/a").as_deref(),
            Some("/a")
        );
        assert_eq!(
            download_file("wget -q -O /opt/b https://x.org/b").as_deref(),
            Some("/opt/b")
        );
        assert_eq!(download_file("wget -qO- https://x.org/b"), None);
        assert_eq!(download_file("curl -O https://x.org/a"), None);
        assert_eq!(download_file("curl -o \"$F\" https://x.org/a"), None);
    }

    #[test]
    fn a_build_names_the_repository_cloned_before_it() {
        assert_eq!(
            kinds("git clone https://g.org/o/hail.git /s && cd /s && make install"),
            [
                ContentKind::GitClone {
                    url: Some("https://g.org/o/hail.git".into()),
                    commit: None,
                    checkout: None
                },
                ContentKind::BuildFromSource {
                    project: Some("hail".into())
                }
            ]
        );
    }

    #[test]
    fn clone_options_are_read_past_their_values() {
        // A branch with a slash is not the URL.
        let a =
            clone_command("git clone -b feature/x --depth=1 https://g.org/o/r.git /src/r").unwrap();
        assert_eq!(a.url.as_deref(), Some("https://g.org/o/r.git"));
        assert_eq!(a.branch.as_deref(), Some("feature/x"));
        assert_eq!(a.dir.as_deref(), Some("/src/r"));
        assert_eq!(a.depth.as_deref(), Some("1"));
        assert!(a.shallow && !a.bare);
        let a = clone_command("git -C /opt clone --origin up --mirror git@g.org:o/r.git").unwrap();
        assert_eq!(a.url.as_deref(), Some("git@g.org:o/r.git"));
        assert_eq!(
            (a.origin.as_deref(), a.bare, a.dir),
            (Some("up"), true, None)
        );
        assert_eq!(clone_dir("git@g.org:o/r.git").as_deref(), Some("r"));
        assert_eq!(clone_dir("https://g.org/o/r/.git").as_deref(), Some("r"));
        assert_eq!(
            kinds("git clone --branch v1 https://g.org/o/r.git")[0],
            ContentKind::GitClone {
                url: Some("https://g.org/o/r.git".into()),
                commit: None,
                checkout: None
            }
        );
    }

    #[test]
    fn a_checkout_after_a_clone_pins_it_or_moves_it_off_the_lock() {
        let commit = "0123456789abcdef0123456789abcdef01234567";
        let clone = |script: &str| match kinds(script).into_iter().next() {
            Some(ContentKind::GitClone {
                commit, checkout, ..
            }) => (commit, checkout),
            k => panic!("{k:?}"),
        };
        let url = "https://g.org/o/r.git";
        assert_eq!(
            clone(&format!(
                "git clone {url} d && git -C d checkout -q {commit}"
            )),
            (Some(commit.into()), None)
        );
        assert_eq!(
            clone(&format!("git clone {url} d && cd d && git checkout v1.2")),
            (None, Some("v1.2".into()))
        );
        assert_eq!(
            clone(&format!(
                "git clone {url} d && cd d && git checkout \"$VERSION\""
            )),
            (None, Some("\"$VERSION\"".into()))
        );
        // New branches at HEAD, paths and a bare reset move nothing.
        assert_eq!(
            clone(&format!(
                "git clone {url} d && cd d && git checkout -b work && git checkout -- a.txt && git reset --hard"
            )),
            (None, None)
        );
        let step = |kind: ContentKind| ContentStep {
            kind,
            text: String::new(),
            line: 1,
            span: Span::new(0, 0),
        };
        assert!(matches!(
            classify_content(&step(ContentKind::GitClone {
                url: Some(url.into()),
                commit: None,
                checkout: Some("v1.2".into())
            })),
            Class::NotLocked(w) if w.contains("`v1.2`")
        ));
    }

    #[test]
    fn add_git_urls_split_into_repository_ref_and_subdir() {
        let g = git_url("https://g.org/o/r.git#v1.2:docs/site");
        assert_eq!(g.repository, "https://g.org/o/r.git");
        assert_eq!(g.reference.as_deref(), Some("v1.2"));
        assert_eq!(g.subdir.as_deref(), Some("docs/site"));
        let g = git_url("git@g.org:o/r.git");
        assert_eq!(
            (g.repository.as_str(), g.reference),
            ("git@g.org:o/r.git", None)
        );
        let g = git_url("https://g.org/o/r.git?ref=main&subdir=x");
        assert!(g.query);
        assert_eq!(g.reference.as_deref(), Some("main"));
        let commit = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            add_source(&format!("https://g.org/o/r.git#{commit}:d"), None),
            Some(ContentKind::AddGit {
                url: format!("https://g.org/o/r.git#{commit}:d"),
                commit: Some(commit.into())
            })
        );
    }

    #[test]
    fn dpkg_installs_of_a_downloaded_deb_name_the_download() {
        let url = "https://x.org/tool_1.0_amd64.deb";
        let script =
            format!("curl -fsSLo /tmp/tool.deb {url} \\\n && dpkg -i /tmp/tool.deb ./local.deb");
        let k = kinds(&script);
        assert_eq!(
            k[1..],
            [
                ContentKind::DebFile {
                    path: Some("/tmp/tool.deb".into()),
                    url: Some(url.into()),
                    download_line: Some(1)
                },
                ContentKind::DebFile {
                    path: Some("./local.deb".into()),
                    url: None,
                    download_line: None
                }
            ]
        );
        let class = |kind: &ContentKind| {
            classify_content(&ContentStep {
                kind: kind.clone(),
                text: String::new(),
                line: 2,
                span: Span::new(0, 0),
            })
        };
        assert!(matches!(class(&k[1]), Class::Lockable(w) if w.contains("line 1")));
        assert!(matches!(class(&k[2]), Class::NotLocked(w) if w.contains("`./local.deb`")));
    }
}

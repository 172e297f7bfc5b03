//! Dockerfiles read the way BuildKit reads them.
//!
//! [`syntax`] cuts the file into instructions (lossless, with spans);
//! this module gives them meaning: stages, bases after `ARG` expansion,
//! images used by `COPY --from` and `RUN --mount`, files copied from the
//! context, and the install commands in `RUN` bodies.

pub mod expand;
pub mod syntax;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use crate::diagnostic::{Diagnostic, LineIndex, Location, Span};
use crate::source::coverage;
use crate::source::model::{
    ArgDecl, Base, BaseTarget, CopiedFile, Definition, DefinitionKind, Expanded, ImageUse,
    ImageUseKind, InstallStep, OnBuild, SourceWarning, Stage,
};
use crate::source::shell::Script;
use crate::source::steps::{
    ChannelAction, ChannelConfig, Ecosystem, InstallCommand, Manager, PLATFORM_PROBE, ShellEvent,
    Target, Wrappers, scan_script_with,
};

use self::syntax::{Instruction, ItemKind, Syntax, SyntaxError};

/// A Dockerfile that BuildKit would refuse, or that cannot be read faithfully.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseDockerfileError(pub Box<Diagnostic>);

impl ParseDockerfileError {
    pub fn diagnostic(&self) -> &Diagnostic {
        &self.0
    }
}

static EMPTY_WRAPPERS: &Wrappers = &Wrappers::new();

/// The platform the automatic platform ARGs (`TARGETPLATFORM`,
/// `BUILDARCH`…) describe when nothing else is asked for.
pub const DEFAULT_PLATFORM: &str = crate::config::DEFAULT_PLATFORM;

/// Parses a Dockerfile into its lossless syntax (no meaning yet).
pub fn parse_syntax(text: &str) -> Result<Syntax, SyntaxError> {
    syntax::parse(text)
}

/// Reads a Dockerfile: its stages, bases, image uses, copies and install
/// steps, with `build_args` overriding ARG defaults as `--build-arg` does.
pub fn parse(
    path: &Path,
    text: &str,
    build_args: &BTreeMap<String, String>,
) -> Result<Definition, ParseDockerfileError> {
    parse_with(path, text, build_args, &Wrappers::new())
}

/// [`parse`], reading the configured `wrappers` (`rapids-mamba-retry`) as
/// the installers they run.
pub fn parse_with(
    path: &Path,
    text: &str,
    build_args: &BTreeMap<String, String>,
    wrappers: &Wrappers,
) -> Result<Definition, ParseDockerfileError> {
    let err = |e: SyntaxError| diagnostic(path, text, e);
    let syntax = parse_syntax(text).map_err(err)?;
    let mut b = Builder::new(path, text, &syntax, build_args);
    b.wrappers = wrappers;
    b.run().map_err(err)?;
    let syntax_directive = syntax
        .directives
        .iter()
        .find(|d| d.name == "syntax")
        .map(|d| Expanded {
            written: d.value.clone(),
            value: Some(d.value.clone()),
            unresolved: Vec::new(),
            span: d.value_span,
        });
    let mut stages = b.stages;
    Stage::mark_unused(&mut stages, None);
    Ok(Definition {
        kind: DefinitionKind::Dockerfile,
        path: path.to_path_buf(),
        global_args: b.global_args,
        stages,
        syntax: syntax_directive,
        wrappers: wrappers.clone(),
    })
}

fn diagnostic(path: &Path, text: &str, e: SyntaxError) -> ParseDockerfileError {
    ParseDockerfileError(Box::new(Diagnostic {
        location: Location::of(path, text, e.span.start),
        message: e.message,
        span: e.span,
        hint: e.hint,
    }))
}

/// Where an ARG's value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ArgSource {
    /// Set by BuildKit (`TARGETPLATFORM`…).
    Automatic,
    Default,
    BuildArg,
    /// Declared without a value.
    Unset,
}

#[derive(Clone, Debug, Default)]
struct StageState {
    /// `ENV`, in order; later entries win.
    env: Vec<(String, String)>,
    /// `ENV` values that name variables the file does not define (they may
    /// come from the base image's config, like `${PATH}`): kept as written
    /// for install steps, unresolved for expansion here.
    env_unresolved: Vec<(String, String)>,
    /// `ARG`s declared in the stage.
    args: Vec<(String, Option<String>)>,
    user: Option<String>,
    workdir: Option<String>,
    /// `SHELL`; empty means the default `/bin/sh -c`.
    shell: Vec<String>,
    /// The `SHELL` instruction's span.
    shell_span: Span,
    /// `conda config` channel changes made by earlier `RUN`s, in order.
    conda_config: Vec<ChannelConfig>,
}

impl StageState {
    fn lookup(&self, name: &str) -> Option<String> {
        if let Some((_, v)) = self.env.iter().rev().find(|(n, _)| n == name) {
            return Some(v.clone());
        }
        if self.env_unresolved.iter().any(|(n, _)| n == name) {
            return None;
        }
        self.args
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.clone())
    }

    fn set_env(&mut self, name: String, value: Result<String, String>) {
        self.env.retain(|(n, _)| *n != name);
        self.env_unresolved.retain(|(n, _)| *n != name);
        match value {
            Ok(v) => self.env.push((name, v)),
            Err(written) => self.env_unresolved.push((name, written)),
        }
    }

    /// The environment an install step sees, as far as the file tells.
    fn step_env(&self) -> Vec<(String, String)> {
        let mut env = self.env.clone();
        env.extend(self.env_unresolved.iter().cloned());
        env
    }

    /// How `RUN` bodies run: as POSIX shell text (inside a conda
    /// environment for `conda run -n ENV bash -c`), or `Err` with the
    /// program when imagelock cannot read them.
    fn run_shell(&self) -> Result<Option<Target>, String> {
        shell_wrapper(&self.shell, self.shell_span)
    }
}

/// The automatic ARGs whose value depends on the platform built.
const PLATFORM_ARGS: &[&str] = &[
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
];

/// The build arguments BuildKit sets when it builds for `platform`
/// (`linux/arm64/v8`): pass them to [`parse`] to read the steps as that
/// platform's build runs them.
pub fn platform_build_args(platform: &str) -> BTreeMap<String, String> {
    let mut parts = platform.splitn(3, '/');
    let os = parts.next().unwrap_or("linux");
    let arch = parts.next().unwrap_or("");
    let variant = parts.next().unwrap_or("");
    let mut out = BTreeMap::new();
    for (k, v) in [
        ("TARGETPLATFORM", platform),
        ("TARGETOS", os),
        ("TARGETARCH", arch),
        ("TARGETVARIANT", variant),
    ] {
        out.insert(k.to_string(), v.to_string());
    }
    out
}

/// Scripts that activate the micromamba environment and then run their
/// arguments (mamba-org/micromamba-docker).
const MICROMAMBA_ENTRY_SCRIPTS: &[&str] = &[
    "_dockerfile_shell.sh",
    "_entrypoint.sh",
    "_activate_current_env.sh",
    "_dockerfile_initialize_user_accounts.sh",
];

/// What a `SHELL` runs `RUN` bodies with; see [`StageState::run_shell`].
fn shell_wrapper(shell: &[String], span: Span) -> Result<Option<Target>, String> {
    let Some(first) = shell.first() else {
        return Ok(None);
    };
    let base = first.rsplit('/').next().unwrap_or(first);
    if is_posix_shell(first) || MICROMAMBA_ENTRY_SCRIPTS.contains(&base) {
        return Ok(None);
    }
    if matches!(base, "conda" | "mamba" | "micromamba")
        && shell.get(1).map(String::as_str) == Some("run")
    {
        let mut target = None;
        let mut i = 2;
        while let Some(a) = shell.get(i) {
            let value = |v: &str| Expanded {
                written: v.to_string(),
                value: Some(v.to_string()),
                unresolved: Vec::new(),
                span,
            };
            match a.as_str() {
                "-n" | "--name" => {
                    target = shell.get(i + 1).map(|v| Target::CondaName(value(v)));
                    i += 2;
                }
                "-p" | "--prefix" => {
                    target = shell.get(i + 1).map(|v| Target::CondaPrefix(value(v)));
                    i += 2;
                }
                o if o.starts_with('-') => i += 1,
                prog if is_posix_shell(prog) => return Ok(target),
                _ => break,
            }
        }
    }
    Err(shell.join(" "))
}

fn is_posix_shell(program: &str) -> bool {
    let base = program.rsplit('/').next().unwrap_or(program);
    matches!(
        base,
        "sh" | "bash" | "ash" | "dash" | "zsh" | "ksh" | "mksh" | "busybox"
    )
}

const INSTRUCTIONS: &[&str] = &[
    "from",
    "run",
    "cmd",
    "label",
    "maintainer",
    "expose",
    "env",
    "add",
    "copy",
    "entrypoint",
    "volume",
    "user",
    "workdir",
    "arg",
    "onbuild",
    "stopsignal",
    "healthcheck",
    "shell",
];

struct Builder<'a> {
    text: &'a str,
    syntax: &'a Syntax,
    escape: char,
    build_args: &'a BTreeMap<String, String>,
    wrappers: &'a Wrappers,
    lines: LineIndex,
    meta: Vec<(String, Option<String>, ArgSource)>,
    global_args: Vec<ArgDecl>,
    stages: Vec<Stage>,
    /// Lowercase names of all stages of the file, by index.
    stage_names: Vec<Option<String>>,
    states: Vec<StageState>,
    current: Option<(Stage, StageState)>,
}

type BuildResult<T> = std::result::Result<T, SyntaxError>;

impl<'a> Builder<'a> {
    fn new(
        _path: &Path,
        text: &'a str,
        syntax: &'a Syntax,
        build_args: &'a BTreeMap<String, String>,
    ) -> Self {
        let mut meta = Vec::new();
        let (os, rest) = DEFAULT_PLATFORM
            .split_once('/')
            .unwrap_or(("linux", "amd64"));
        let (arch, variant) = rest.split_once('/').unwrap_or((rest, ""));
        for prefix in ["BUILD", "TARGET"] {
            for (suffix, value) in [
                ("PLATFORM", DEFAULT_PLATFORM),
                ("OS", os),
                ("ARCH", arch),
                ("VARIANT", variant),
            ] {
                let name = format!("{prefix}{suffix}");
                let value = build_args.get(&name).map_or(value, String::as_str);
                meta.push((name, Some(value.to_string()), ArgSource::Automatic));
            }
        }
        Self {
            text,
            syntax,
            escape: syntax.escape,
            build_args,
            wrappers: EMPTY_WRAPPERS,
            lines: LineIndex::new(text),
            meta,
            global_args: Vec::new(),
            stages: Vec::new(),
            stage_names: Vec::new(),
            states: Vec::new(),
            current: None,
        }
    }

    fn meta_lookup(&self, name: &str) -> Option<String> {
        self.meta
            .iter()
            .rev()
            .find(|(n, _, _)| n == name)
            .and_then(|(_, v, _)| v.clone())
    }

    fn run(&mut self) -> BuildResult<()> {
        // Stage names first: `COPY --from` may name any stage.
        for ins in self.syntax.instructions() {
            if ins.keyword == "from" {
                let words = split_whitespace(ins.args_text());
                let name = (words.len() == 3
                    && ins.args_text()[words[1].clone()].eq_ignore_ascii_case("as"))
                .then(|| ins.args_text()[words[2].clone()].to_ascii_lowercase());
                self.stage_names.push(name);
            }
        }
        let syntax = self.syntax;
        for item in &syntax.items {
            let ItemKind::Instruction(ins) = &item.kind else {
                continue;
            };
            self.instruction(ins)?;
        }
        self.finish_stage();
        if self.stages.is_empty() {
            let end = self.text.len();
            return Err(SyntaxError::new(
                Span::new(end, end),
                "the file has no `FROM` instruction",
            )
            .hint("a Dockerfile builds from `FROM IMAGE[:TAG]` (or `FROM scratch`)"));
        }
        Ok(())
    }

    fn finish_stage(&mut self) {
        if let Some((stage, state)) = self.current.take() {
            self.stages.push(stage);
            self.states.push(state);
        }
    }

    fn instruction(&mut self, ins: &Instruction) -> BuildResult<()> {
        let kw = ins.keyword.as_str();
        if !INSTRUCTIONS.contains(&kw) {
            return Err(SyntaxError::new(
                ins.keyword_span,
                format!("unknown instruction `{}`", ins.line.text()[..].split_whitespace().next().unwrap_or(kw)),
            )
            .hint("instructions are FROM, RUN, COPY, ADD, ARG, ENV, WORKDIR, USER, SHELL, ONBUILD, CMD, ENTRYPOINT, LABEL, EXPOSE, VOLUME, STOPSIGNAL, HEALTHCHECK"));
        }
        if kw == "from" {
            return self.from(ins);
        }
        if self.current.is_none() {
            if kw == "arg" {
                return self.arg(ins, true);
            }
            return Err(SyntaxError::new(
                ins.keyword_span,
                format!(
                    "`{}` comes before the first `FROM`",
                    kw.to_ascii_uppercase()
                ),
            )
            .hint("only ARG may come before the first FROM"));
        }
        match kw {
            "arg" => self.arg(ins, false),
            "env" => self.env(ins),
            "user" => {
                let e = self.expand_range(ins, ins.args.clone(), Scope::Stage)?;
                self.state().user = Some(e.value.unwrap_or(e.written));
                Ok(())
            }
            "workdir" => {
                let e = self.expand_range(ins, ins.args.clone(), Scope::Stage)?;
                let dir = e.value.unwrap_or(e.written);
                let state = self.state();
                let joined = if dir.starts_with('/') {
                    dir
                } else {
                    let base = state.workdir.clone().unwrap_or_else(|| "/".into());
                    format!("{}/{}", base.trim_end_matches('/'), dir)
                };
                state.workdir = Some(joined);
                Ok(())
            }
            "shell" => {
                let Some(json) = &ins.json else {
                    return Err(SyntaxError::new(
                        ins.span,
                        "SHELL needs its arguments in JSON form",
                    )
                    .hint("write `SHELL [\"/bin/bash\", \"-c\"]`"));
                };
                self.state().shell = json.iter().map(|a| a.value.clone()).collect();
                self.state().shell_span = ins.span;
                Ok(())
            }
            "copy" | "add" => self.copy(ins),
            "run" => self.run_instruction(ins),
            "onbuild" => {
                let Some(inner) = &ins.onbuild else {
                    return Err(SyntaxError::new(ins.span, "ONBUILD needs an instruction")
                        .hint("write `ONBUILD RUN …`, `ONBUILD COPY …`…"));
                };
                if matches!(inner.keyword.as_str(), "onbuild" | "from" | "maintainer") {
                    return Err(SyntaxError::new(
                        inner.keyword_span,
                        format!(
                            "`{}` is not allowed as an ONBUILD trigger",
                            inner.keyword.to_ascii_uppercase()
                        ),
                    ));
                }
                if !INSTRUCTIONS.contains(&inner.keyword.as_str()) {
                    return Err(SyntaxError::new(
                        inner.keyword_span,
                        format!("unknown instruction `{}`", inner.keyword),
                    ));
                }
                let span = ins.span;
                self.stage().onbuild.push(OnBuild {
                    instruction: inner.keyword.to_ascii_uppercase(),
                    span,
                });
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn stage(&mut self) -> &mut Stage {
        &mut self.current.as_mut().expect("inside a stage").0
    }

    fn state(&mut self) -> &mut StageState {
        &mut self.current.as_mut().expect("inside a stage").1
    }

    fn check_flags(ins: &Instruction, allowed: &[&str]) -> BuildResult<()> {
        for f in &ins.flags {
            if !allowed.contains(&f.name.as_str()) {
                let hint = if allowed.is_empty() {
                    format!("{} takes no flags", ins.keyword.to_ascii_uppercase())
                } else {
                    format!(
                        "{} takes {}",
                        ins.keyword.to_ascii_uppercase(),
                        allowed
                            .iter()
                            .map(|a| format!("`--{a}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                return Err(
                    SyntaxError::new(f.span, format!("unknown flag `--{}`", f.name)).hint(hint),
                );
            }
        }
        Ok(())
    }

    /// Expands a range of the instruction's logical line.
    fn expand_range(
        &self,
        ins: &Instruction,
        range: Range<usize>,
        scope: Scope,
    ) -> BuildResult<Expanded> {
        let written = ins.line.text()[range.clone()].to_string();
        let span = ins.file_span(range);
        self.expand_text(written, span, scope)
    }

    fn expand_text(&self, written: String, span: Span, scope: Scope) -> BuildResult<Expanded> {
        let state = self.current.as_ref().map(|c| &c.1);
        let lookup = |name: &str| match (scope, state) {
            (Scope::Stage, Some(s)) => s.lookup(name),
            _ => self.meta_lookup(name),
        };
        let e = expand::expand(&written, self.escape, &lookup).map_err(|e| {
            let shown: String = written.chars().take(60).collect();
            let more = if shown.len() < written.len() {
                "…"
            } else {
                ""
            };
            let hint = if e.bounded {
                "variables that repeat or nest each other are bounded; write the value out"
            } else {
                "write variables as `$NAME`, `${NAME}` or `${NAME:-default}`, and close quotes"
            };
            SyntaxError::new(
                span,
                format!("cannot expand `{shown}{more}`: {}", e.message),
            )
            .hint(hint)
        })?;
        Ok(Expanded {
            value: e.unresolved.is_empty().then_some(e.text),
            unresolved: e.unresolved,
            written,
            span,
        })
    }

    fn arg(&mut self, ins: &Instruction, global: bool) -> BuildResult<()> {
        Self::check_flags(ins, &[])?;
        let text = ins.args_text();
        let words = syntax::words(text, self.escape);
        if words.is_empty() {
            return Err(SyntaxError::new(ins.span, "ARG needs a name")
                .hint("write `ARG NAME` or `ARG NAME=default`"));
        }
        for w in words {
            let abs = ins.args.start + w.start..ins.args.start + w.end;
            let word = &text[w.clone()];
            let (name, default) = match word.find('=') {
                Some(eq) => {
                    let value = abs.start + eq + 1..abs.end;
                    let scope = if global { Scope::Global } else { Scope::Stage };
                    (
                        word[..eq].to_string(),
                        Some(self.expand_range(ins, value, scope)?),
                    )
                }
                None => (word.to_string(), None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(SyntaxError::new(
                    ins.file_span(abs),
                    format!("`{name}` is not a valid ARG name"),
                )
                .hint("ARG names are letters, digits and `_`"));
            }
            let decl = ArgDecl {
                name: name.clone(),
                default: default.clone(),
                span: ins.span,
            };
            let (value, source) = match (self.build_args.get(&name), &default) {
                (Some(v), _) => (Some(v.clone()), ArgSource::BuildArg),
                (None, Some(d)) => (d.value.clone(), ArgSource::Default),
                (None, None) if !global => (self.meta_lookup(&name), ArgSource::Unset),
                (None, None) => {
                    let auto = self
                        .meta
                        .iter()
                        .find(|(n, _, s)| *n == name && *s == ArgSource::Automatic)
                        .and_then(|(_, v, _)| v.clone());
                    let source = if auto.is_some() {
                        ArgSource::Automatic
                    } else {
                        ArgSource::Unset
                    };
                    (auto, source)
                }
            };
            if global {
                self.meta.push((name, value, source));
                self.global_args.push(decl);
            } else {
                self.state().args.push((name, value));
                self.stage().args.push(decl);
            }
        }
        Ok(())
    }

    fn env(&mut self, ins: &Instruction) -> BuildResult<()> {
        Self::check_flags(ins, &[])?;
        let text = ins.args_text();
        let words = syntax::words(text, self.escape);
        let Some(first) = words.first() else {
            return Err(SyntaxError::new(ins.span, "ENV needs a name and a value")
                .hint("write `ENV NAME=value`"));
        };
        let mut set = Vec::new();
        if text[first.clone()].contains('=') {
            for w in &words {
                let word = &text[w.clone()];
                let Some(eq) = word.find('=') else {
                    return Err(SyntaxError::new(
                        ins.file_span(ins.args.start + w.start..ins.args.start + w.end),
                        format!("`{word}` is not of the form NAME=value"),
                    )
                    .hint("in `ENV A=1 B=2` every word needs `=`; quote values with spaces"));
                };
                let value = ins.args.start + w.start + eq + 1..ins.args.start + w.end;
                let e = self.expand_range(ins, value, Scope::Stage)?;
                // A variable the file does not define may come from the base
                // image's config (`${PATH}`): keep the text for later.
                set.push((word[..eq].to_string(), e.value.ok_or(e.written)));
            }
        } else {
            // Legacy `ENV NAME value with spaces`.
            let name_end = first.end;
            let rest = &text[name_end..];
            let lead = rest.len() - rest.trim_start().len();
            if rest.trim().is_empty() {
                return Err(SyntaxError::new(ins.span, "ENV needs a name and a value")
                    .hint("write `ENV NAME=value`"));
            }
            let value = ins.args.start + name_end + lead..ins.args.end;
            let e = self.expand_range(ins, value, Scope::Stage)?;
            set.push((text[first.clone()].to_string(), e.value.ok_or(e.written)));
        }
        for (n, v) in set {
            self.state().set_env(n, v);
        }
        Ok(())
    }

    fn from(&mut self, ins: &Instruction) -> BuildResult<()> {
        self.finish_stage();
        Self::check_flags(ins, &["platform"])?;
        let text = ins.args_text();
        let words = split_whitespace(text);
        let abs = |r: &Range<usize>| ins.args.start + r.start..ins.args.start + r.end;
        let name = match words.len() {
            0 => {
                return Err(SyntaxError::new(ins.span, "FROM needs an image")
                    .hint("write `FROM IMAGE[:TAG] [AS NAME]` or `FROM scratch`"));
            }
            1 => None,
            3 if text[words[1].clone()].eq_ignore_ascii_case("as") => Some(&words[2]),
            _ => {
                return Err(SyntaxError::new(
                    ins.span,
                    "FROM takes an image and optionally `AS name`",
                )
                .hint("write `FROM IMAGE[:TAG] [AS NAME]`"));
            }
        };
        let index = self.stages.len();
        let name = match name {
            Some(r) => {
                let n = &text[r.clone()];
                let lower = n.to_ascii_lowercase();
                let valid = lower.starts_with(|c: char| c.is_ascii_lowercase())
                    && lower
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
                if !valid {
                    return Err(SyntaxError::new(
                        ins.file_span(abs(r)),
                        format!("invalid stage name `{n}`"),
                    )
                    .hint(
                        "stage names start with a letter and use letters, digits, `-`, `_` and `.`",
                    ));
                }
                if self.stage_names[..index]
                    .iter()
                    .flatten()
                    .any(|s| *s == lower)
                {
                    return Err(SyntaxError::new(
                        ins.file_span(abs(r)),
                        format!("duplicate stage name `{n}`"),
                    )
                    .hint("each stage needs its own name"));
                }
                Some(n.to_string())
            }
            None => None,
        };
        let platform = match ins.flag("platform") {
            Some(f) => {
                let range = f.raw_value.clone().unwrap_or(0..0);
                Some(self.expand_range(ins, range, Scope::Global)?)
            }
            None => None,
        };
        let reference = self.expand_range(ins, abs(&words[0]), Scope::Global)?;
        if reference.value.as_deref() == Some("") {
            return Err(SyntaxError::new(
                reference.span,
                format!("`{}` expands to nothing", reference.written),
            )
            .hint("give the ARG a default or pass `--build-arg`"));
        }
        let target = match reference.value.as_deref() {
            Some("scratch") => BaseTarget::Scratch,
            Some(v) => {
                let lower = v.to_ascii_lowercase();
                match self.stage_names[..index]
                    .iter()
                    .position(|s| s.as_deref() == Some(&lower))
                {
                    Some(i) => BaseTarget::Stage { index: i },
                    None => docker_image(),
                }
            }
            None => docker_image(),
        };
        let from_arg = single_variable(&reference.written).filter(|v| {
            self.meta
                .iter()
                .rev()
                .find(|(n, _, _)| n == v)
                .is_some_and(|(_, _, s)| *s == ArgSource::Default)
        });
        let state = match target {
            BaseTarget::Stage { index } => StageState {
                args: Vec::new(),
                ..self.states[index].clone()
            },
            _ => StageState::default(),
        };
        let stage = Stage {
            index,
            name,
            platform,
            base: Base {
                reference,
                target,
                from_arg,
                library: None,
            },
            image_uses: Vec::new(),
            copies: Vec::new(),
            steps: Vec::new(),
            content: Vec::new(),
            apt_files: Vec::new(),
            span: ins.span,
            args: Vec::new(),
            onbuild: Vec::new(),
            warnings: Vec::new(),
            unused: false,
        };
        self.current = Some((stage, state));
        Ok(())
    }

    /// What a `--from=` value names: a stage (by name or index) or an image.
    fn stage_or_image(&self, value: &Expanded) -> BuildResult<BaseTarget> {
        let Some(v) = value.value.as_deref() else {
            return Ok(docker_image());
        };
        let current = self.stages.len();
        if let Ok(i) = v.parse::<usize>() {
            if i >= current {
                return Err(SyntaxError::new(
                    value.span,
                    format!("`--from={v}` names no earlier stage"),
                )
                .hint(format!(
                    "stage indexes count from 0; this is stage {current}"
                )));
            }
            return Ok(BaseTarget::Stage { index: i });
        }
        let lower = v.to_ascii_lowercase();
        if let Some(i) = self
            .stage_names
            .iter()
            .position(|s| s.as_deref() == Some(&lower))
        {
            if i == current {
                return Err(SyntaxError::new(
                    value.span,
                    format!("stage `{v}` copies from itself"),
                ));
            }
            return Ok(BaseTarget::Stage { index: i });
        }
        Ok(if v == "scratch" {
            BaseTarget::Scratch
        } else {
            docker_image()
        })
    }

    fn copy(&mut self, ins: &Instruction) -> BuildResult<()> {
        let copy = ins.keyword == "copy";
        let allowed: &[&str] = if copy {
            &["from", "chown", "chmod", "link", "parents", "exclude"]
        } else {
            &[
                "chown",
                "chmod",
                "link",
                "keep-git-dir",
                "checksum",
                "exclude",
                "unpack",
            ]
        };
        Self::check_flags(ins, allowed)?;
        let mut args = Vec::new();
        if let Some(json) = &ins.json {
            for a in json {
                // JSON strings are expanded after decoding; the span keeps the quotes.
                args.push(self.expand_text(a.value.clone(), a.span, Scope::Stage)?);
            }
        } else {
            for w in split_whitespace(ins.args_text()) {
                let r = ins.args.start + w.start..ins.args.start + w.end;
                let word = &ins.line.text()[r.clone()];
                if word.starts_with("<<")
                    || word
                        .trim_start_matches(|c: char| c.is_ascii_digit())
                        .starts_with("<<")
                {
                    // An inline file (heredoc): nothing from the context.
                    args.push(Expanded {
                        written: word.to_string(),
                        value: Some(word.to_string()),
                        unresolved: Vec::new(),
                        span: ins.file_span(r),
                    });
                    continue;
                }
                args.push(self.expand_range(ins, r, Scope::Stage)?);
            }
        }
        if args.len() < 2 {
            return Err(SyntaxError::new(
                ins.span,
                format!(
                    "{} needs at least one source and a destination",
                    ins.keyword.to_ascii_uppercase()
                ),
            )
            .hint(format!(
                "write `{} SRC… DEST`",
                ins.keyword.to_ascii_uppercase()
            )));
        }
        let from = match ins.flag("from") {
            Some(f) => {
                let range = f.raw_value.clone().unwrap_or(0..0);
                let mut e = self.expand_range(ins, range.clone(), Scope::Stage)?;
                if e.value.is_none() {
                    // An ARG declared only before the first FROM: builders do
                    // not expand it here (buildah reads it as empty, BuildKit
                    // refuses variables in `--from`). The image its default
                    // names is what the file means: pin it, and say so.
                    let global = self.expand_range(ins, range, Scope::Global)?;
                    if global.value.is_some() {
                        let line = self.lines.line_col(self.text, ins.span.start).line;
                        self.stage().warnings.push(SourceWarning {
                            line,
                            message: format!(
                                "`--from={}` reads an ARG declared only before the first FROM, which builders do not expand there (buildah reads it as empty, BuildKit refuses variables in `--from`): the lock pins `{}`, what its default names; declare the ARG again in this stage so the build uses it",
                                global.written,
                                global.value.as_deref().unwrap_or_default()
                            ),
                            span: ins.span,
                        });
                        e = global;
                    }
                }
                let target = self.stage_or_image(&e)?;
                let name = e.value.clone().unwrap_or_else(|| e.written.clone());
                self.stage().image_uses.push(ImageUse {
                    kind: ImageUseKind::CopyFrom,
                    reference: e,
                    target,
                    span: ins.span,
                });
                Some(name)
            }
            None => None,
        };
        if !copy {
            let checksum = ins
                .flag("checksum")
                .and_then(|f| f.raw_value.clone())
                .map(|r| ins.line.text()[r].to_string());
            let line = self.lines.line_col(self.text, ins.span.start).line;
            for a in &args[..args.len() - 1] {
                let source = a.value.as_deref().unwrap_or(&a.written);
                if let Some(kind) = coverage::add_source(source, checksum.as_deref()) {
                    self.stage().content.push(coverage::ContentStep {
                        kind,
                        text: format!("ADD {source}"),
                        span: ins.span,
                        line,
                    });
                }
            }
        }
        let dest = args
            .pop()
            .map(|e| e.value.unwrap_or(e.written))
            .unwrap_or_default();
        let sources = args
            .into_iter()
            .map(|e| e.value.unwrap_or(e.written))
            .collect();
        let workdir = self.state().workdir.clone();
        let flags = ins
            .flags
            .iter()
            .filter(|f| f.name != "from")
            .map(|f| match &f.value {
                Some(v) => format!("--{}={v}", f.name),
                None => format!("--{}", f.name),
            })
            .collect();
        self.stage().copies.push(CopiedFile {
            sources,
            destination: dest,
            from,
            span: ins.span,
            workdir,
            flags,
        });
        Ok(())
    }

    fn run_instruction(&mut self, ins: &Instruction) -> BuildResult<()> {
        Self::check_flags(ins, &["mount", "network", "security", "device"])?;
        for f in ins.flags.iter().filter(|f| f.name == "mount") {
            let Some(raw) = f.raw_value.clone() else {
                continue;
            };
            let value = &ins.line.text()[raw.clone()];
            let mut at = 0;
            for field in value.split(',') {
                let start = raw.start + at;
                at += field.len() + 1;
                let (key, v) = field.split_once('=').unwrap_or((field, ""));
                if key.trim().eq_ignore_ascii_case("from") && !v.is_empty() {
                    let vstart = start + key.len() + 1;
                    let e = self.expand_range(ins, vstart..vstart + v.len(), Scope::Stage)?;
                    let target = self.stage_or_image(&e)?;
                    self.stage().image_uses.push(ImageUse {
                        kind: ImageUseKind::MountFrom,
                        reference: e,
                        target,
                        span: ins.span,
                    });
                }
            }
        }
        let Some((_, state)) = &self.current else {
            return Ok(());
        };
        let target = match state.run_shell() {
            Ok(t) => t,
            Err(shell) => {
                // PowerShell, cmd, or a wrapper imagelock does not know.
                let line = self.lines.line_col(self.text, ins.span.start).line;
                self.stage().warnings.push(SourceWarning {
                    line,
                    message: format!(
                        "`RUN` runs under `SHELL {shell}`, which imagelock cannot read: install steps in it are not found or locked"
                    ),
                    span: ins.span,
                });
                return Ok(());
            }
        };
        let scripts = run_scripts(ins);
        // Platform ARGs BuildKit sets per target platform: unless the
        // caller names the platform (see `platform_build_args`), their value
        // in a RUN is not known, so what depends on them is conditional or
        // unresolved rather than read for one platform and used for all.
        let platform_read = std::cell::RefCell::new(Vec::<String>::new());
        let build_args = self.build_args;
        let lookup = |name: &str| {
            // `$(uname -m)` and the like: the machine of the platform built,
            // whether or not the stage declares an ARG for it.
            if name == PLATFORM_PROBE {
                let v = build_args.get("TARGETPLATFORM").cloned();
                if v.is_none() && !platform_read.borrow().iter().any(|n| n == "TARGETPLATFORM") {
                    platform_read
                        .borrow_mut()
                        .push("TARGETPLATFORM".to_string());
                }
                return v;
            }
            let v = state.lookup(name);
            if v.is_some() && PLATFORM_ARGS.contains(&name) && !build_args.contains_key(name) {
                if !platform_read.borrow().iter().any(|n| n == name) {
                    platform_read.borrow_mut().push(name.to_string());
                }
                return None;
            }
            v
        };
        let mut events: Vec<ShellEvent> = Vec::new();
        let mut content = Vec::new();
        let mut apt_files = Vec::new();
        for script in &scripts {
            content.extend(coverage::scan_content(script, self.text, &self.lines));
            apt_files.extend(crate::source::apt_files::scan_apt_files(
                script,
                self.text,
                &self.lines,
            ));
            let found =
                scan_script_with(script, &lookup, target.clone(), self.wrappers).map_err(|e| {
                    let hint = e
                        .hint
                        .unwrap_or_else(|| "imagelock reads RUN bodies as POSIX shell text".into());
                    SyntaxError::new(e.span, e.message).hint(hint)
                })?;
            events.extend(found);
        }
        let platform_args = platform_read.into_inner();
        self.stage().content.extend(content);
        self.stage().apt_files.extend(apt_files);
        let Some((_, state)) = &self.current else {
            return Ok(());
        };
        let env = state.step_env();
        let user = state.user.clone();
        let workdir = state.workdir.clone();
        let env_config = env_channel_config(state, ins.span);
        for event in events {
            let command: InstallCommand = match event {
                ShellEvent::Install(c) => *c,
                ShellEvent::ChannelConfig(c) => {
                    self.state().conda_config.push(c);
                    continue;
                }
            };
            let line = self.lines.line_col(self.text, command.span.start).line;
            let channel_config = if command.manager.ecosystem() == Ecosystem::Conda {
                let mut c = self.state().conda_config.clone();
                c.extend(env_config.iter().cloned());
                c
            } else {
                Vec::new()
            };
            self.stage().steps.push(InstallStep {
                command,
                instruction: ins.span,
                line,
                env: env.clone(),
                user: user.clone(),
                workdir: workdir.clone(),
                channel_config,
                platform_args: platform_args.clone(),
            });
        }
        Ok(())
    }
}

/// `CONDA_CHANNELS` and `CONDA_CHANNEL_PRIORITY` set by `ENV`: conda
/// reads them over every `.condarc`.
fn env_channel_config(state: &StageState, span: Span) -> Vec<ChannelConfig> {
    let mut out = Vec::new();
    for (name, action) in [
        ("CONDA_CHANNELS", ChannelAction::Set),
        ("CONDA_CHANNEL_PRIORITY", ChannelAction::Priority),
    ] {
        if let Some(v) = state.lookup(name) {
            out.push(ChannelConfig {
                manager: Manager::Conda,
                action,
                channel: Expanded {
                    written: format!("{name}={v}"),
                    value: Some(v.clone()),
                    unresolved: Vec::new(),
                    span,
                },
                text: format!("ENV {name}={v}"),
                span,
                conditional: None,
            });
        }
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    /// Global ARGs only: `FROM` lines and ARGs before the first `FROM`.
    Global,
    /// ENV and ARGs of the current stage.
    Stage,
}

fn docker_image() -> BaseTarget {
    BaseTarget::Image {
        agent: "docker".into(),
    }
}

/// `$NAME` or `${NAME}` and nothing else: the name.
fn single_variable(written: &str) -> Option<String> {
    let inner = written
        .strip_prefix("${")
        .and_then(|r| r.strip_suffix('}'))
        .or_else(|| written.strip_prefix('$'))?;
    (!inner.is_empty() && inner.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then(|| inner.to_string())
}

/// Whitespace-separated words (BuildKit's `parseStringsWhitespaceDelimited`:
/// quotes do not group).
fn split_whitespace(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (start, c.is_whitespace()) {
            (None, false) => start = Some(i),
            (Some(s), true) => {
                out.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(s..text.len());
    }
    out
}

/// The part of `script` from `range` of its text, still mapped to the file.
fn sub_script(script: &Script, range: Range<usize>) -> Script {
    let text = &script.text()[range.clone()];
    let mut out = Script::new();
    let mut piece_start = range.start;
    let mut prev: Option<usize> = None;
    for (i, c) in text.char_indices() {
        let at = range.start + i;
        let file = script.file_offset(at);
        if prev.is_some_and(|p| p != file) {
            out.push(
                &script.text()[piece_start..at],
                script.file_offset(piece_start),
            );
            piece_start = at;
        }
        prev = Some(file + c.len_utf8());
    }
    if piece_start < range.end {
        out.push(
            &script.text()[piece_start..range.end],
            script.file_offset(piece_start),
        );
    }
    out
}

/// The shell texts a `RUN` runs: its command line, the heredoc bodies fed
/// to a shell, or for the exec form the `sh -c` script (or the command).
fn run_scripts(ins: &Instruction) -> Vec<Script> {
    if let Some(json) = &ins.json {
        let values: Vec<&str> = json.iter().map(|a| a.value.as_str()).collect();
        let dash_c = values.iter().position(|v| *v == "-c");
        if let (Some(first), Some(c)) = (values.first(), dash_c)
            && is_posix_shell(first)
            && let Some(arg) = json.get(c + 1)
        {
            return vec![json_string_script(arg)];
        }
        // Exec form runs the command without a shell: quote each argument
        // so the shell splitter sees the same words.
        let mut s = Script::new();
        for (i, a) in json.iter().enumerate() {
            if i > 0 {
                s.push(" ", a.span.start);
            }
            let safe = !a.value.is_empty()
                && a.value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:@+,%".contains(c));
            if safe {
                s.push(&a.value, a.span.start + 1);
            } else {
                s.push("'", a.span.start);
                s.push(&a.value.replace('\'', "'\\''"), a.span.start + 1);
                s.push("'", a.span.end.saturating_sub(1));
            }
        }
        return vec![s];
    }
    let mut scripts = Vec::new();
    let command = sub_script(&ins.line, ins.args.clone());
    let words: Vec<&str> = command.text().split_whitespace().collect();
    let only_heredocs = !ins.heredocs.is_empty()
        && words.iter().all(|w| {
            w.trim_start_matches(|c: char| c.is_ascii_digit())
                .starts_with("<<")
        });
    let shell_reads_heredoc = ins.heredocs.len() == 1
        && words.first().is_some_and(|w| is_posix_shell(w))
        && !words.contains(&"-c");
    if !only_heredocs {
        scripts.push(command);
    }
    if only_heredocs || shell_reads_heredoc {
        for h in &ins.heredocs {
            let text = h.body.text();
            let shebang_shell = text
                .strip_prefix("#!")
                .map(|l| l.lines().next().unwrap_or(""))
                .is_none_or(|l| {
                    l.split_whitespace()
                        .find(|w| !w.ends_with("/env"))
                        .is_some_and(is_posix_shell)
                });
            if shebang_shell {
                scripts.push(h.body.clone());
            }
        }
    }
    scripts
}

/// A JSON string's value as a script, mapped into the string when it has
/// no escapes (so offsets are exact), else to its opening quote.
fn json_string_script(arg: &syntax::JsonArg) -> Script {
    let inner_len = arg.span.len().saturating_sub(2);
    if inner_len == arg.value.len() {
        Script::from_file_piece(&arg.value, arg.span.start + 1)
    } else {
        Script::from_file_piece(&arg.value, arg.span.start)
    }
}

#[cfg(test)]
mod tests;

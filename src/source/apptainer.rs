//! Apptainer/Singularity definition files, read the way `apptainer build`
//! reads them.
//!
//! Two layers: [`DefFile`] is lossless (every byte of the file belongs to
//! exactly one header line, section or other line, so printing it gives
//! the file back), and [`parse`] turns it into the shared [`Definition`]
//! model: stages, bases, copied files and the install commands of `%post`
//! and `%appinstall`.
//!
//! As in apptainer, a line starting with `Bootstrap:` starts a stage, the
//! first word of a line starting with `%` starts a section, and
//! `{{ name }}` is replaced by a build argument or a `%arguments` default
//! before anything else is read.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::diagnostic::{Diagnostic, LineIndex, Location, Span};
use crate::source::model::{
    ArgDecl, Base, BaseTarget, CopiedFile, Definition, DefinitionKind, Expanded, InstallStep, Stage,
};
use crate::source::shell::Script;
use crate::source::steps::{ChannelConfig, Ecosystem, ShellEvent, Wrappers, scan_script_with};

/// A definition file that cannot be built as written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{diagnostic}")]
pub struct ApptainerError {
    pub diagnostic: Box<Diagnostic>,
}

/// Sections apptainer knows; any other is an error.
const SECTIONS: &[&str] = &[
    "help",
    "setup",
    "files",
    "labels",
    "environment",
    "pre",
    "post",
    "runscript",
    "test",
    "startscript",
    "arguments",
];

/// Sections of SCIF apps, each followed by the app's name.
const APP_SECTIONS: &[&str] = &[
    "appinstall",
    "applabels",
    "appfiles",
    "appenv",
    "apptest",
    "apphelp",
    "apprun",
    "appstart",
];

/// Header keywords apptainer accepts (`otherurlN` for any N).
const HEADERS: &[&str] = &[
    "bootstrap",
    "from",
    "includecmd",
    "mirrorurl",
    "updateurl",
    "osversion",
    "include",
    "library",
    "registry",
    "namespace",
    "stage",
    "product",
    "user",
    "regcode",
    "productpgp",
    "registerurl",
    "modules",
    "fingerprints",
    "confurl",
    "setopt",
];

/// Agents that fetch an image by reference (only `docker` is resolved at
/// a registry; how the others are pinned, the local agents and `oras` and
/// `library` among them: [`crate::source::agents`]).
const IMAGE_AGENTS: &[&str] = &[
    "docker",
    "docker-daemon",
    "docker-archive",
    "oci",
    "oci-archive",
    "library",
    "oras",
    "shub",
];

/// Agents that build from a distribution, a local file or nothing.
const OTHER_AGENTS: &[&str] = &[
    "localimage",
    "debootstrap",
    "yum",
    "dnf",
    "zypper",
    "busybox",
    "arch",
    "scratch",
];

/// `Key: value` in a header block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HeaderLine {
    /// The keyword, lowercased.
    pub key: String,
    pub key_span: Span,
    /// The value as written: trimmed, a trailing `# comment` removed,
    /// continuation lines joined.
    pub value: String,
    pub value_span: Span,
    /// The whole line (with continuation lines and the newline).
    pub span: Span,
}

/// `%name [args]` and its body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Section {
    /// The name, lowercased, without `%`.
    pub name: String,
    /// Everything after the name on the `%` line, trimmed.
    pub args: String,
    pub args_span: Span,
    /// The `%` line with its newline.
    pub header_span: Span,
    /// The lines after the `%` line up to the next section or stage.
    pub body_span: Span,
    pub span: Span,
}

/// One piece of a definition file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Part {
    Header(HeaderLine),
    Section(Section),
    /// Blank and comment lines of a header block.
    Other {
        span: Span,
    },
}

impl Part {
    pub fn span(&self) -> Span {
        match self {
            Part::Header(h) => h.span,
            Part::Section(s) => s.span,
            Part::Other { span } => *span,
        }
    }
}

/// A definition file as written, split into header blocks and sections.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DefFile {
    /// Stages in order; a stage starts at a `Bootstrap:` line. Comments
    /// before the first one belong to it; header lines or sections before
    /// it form a stage of their own, without `Bootstrap` (which [`parse`]
    /// rejects).
    pub stages: Vec<Vec<Part>>,
}

impl DefFile {
    /// Splits `text`; never fails, every byte lands in exactly one part.
    pub fn parse(text: &str) -> Self {
        let mut stages: Vec<Vec<Part>> = vec![Vec::new()];
        let mut in_section = false;
        let lines: Vec<Span> = lines(text).collect();
        let mut i = 0;
        while i < lines.len() {
            let line = lines[i];
            let raw = &text[line.start..line.end];
            i += 1;
            if is_bootstrap_line(raw) {
                // Comments before the first stage belong to it.
                let started = stages
                    .last()
                    .is_some_and(|s| s.iter().any(|p| !matches!(p, Part::Other { .. })));
                if started {
                    stages.push(Vec::new());
                }
                in_section = false;
            }
            let current = stages.last_mut().expect("stages starts non-empty");
            let first_word = raw.split_whitespace().next().unwrap_or("");
            if first_word.starts_with('%') {
                current.push(Part::Section(section_line(text, line)));
                in_section = true;
            } else if in_section {
                if let Some(Part::Section(s)) = current.last_mut() {
                    s.body_span.end = line.end;
                    s.span.end = line.end;
                }
            } else if raw.trim().is_empty() || raw.trim_start().starts_with('#') {
                current.push(Part::Other { span: line });
            } else {
                // A header line, with continuation lines ending in `\`.
                let mut end = line;
                while text[end.start..end.end].trim_end().ends_with('\\') && i < lines.len() {
                    end = lines[i];
                    i += 1;
                }
                current.push(Part::Header(header_line(
                    text,
                    Span::new(line.start, end.end),
                )));
            }
        }
        DefFile { stages }
    }

    /// The file text back, byte for byte.
    pub fn print(&self, text: &str) -> String {
        self.stages
            .iter()
            .flatten()
            .map(|p| text.get(p.span().start..p.span().end).unwrap_or(""))
            .collect()
    }
}

/// Lines with their newline.
fn lines(text: &str) -> impl Iterator<Item = Span> + '_ {
    let mut start = 0;
    std::iter::from_fn(move || {
        if start >= text.len() {
            return None;
        }
        let end = text[start..]
            .find('\n')
            .map_or(text.len(), |i| start + i + 1);
        let span = Span::new(start, end);
        start = end;
        Some(span)
    })
}

/// `Bootstrap:` at the start of a line (case-insensitive, spaces before
/// the colon allowed) starts a stage, wherever it is.
fn is_bootstrap_line(raw: &str) -> bool {
    raw.get(..9)
        .is_some_and(|k| k.eq_ignore_ascii_case("bootstrap"))
        && raw[9..].trim_start_matches([' ', '\t']).starts_with(':')
}

fn trimmed(text: &str, span: Span) -> Span {
    let s = &text[span.start..span.end];
    let start = span.start + (s.len() - s.trim_start().len());
    let end = span.start + s.trim_end().len();
    Span::new(start, end.max(start))
}

fn section_line(text: &str, line: Span) -> Section {
    let t = trimmed(text, line);
    let s = &text[t.start..t.end];
    let name_end = s.find(char::is_whitespace).unwrap_or(s.len());
    let name = s[..name_end].trim_start_matches('%').to_ascii_lowercase();
    let args_span = trimmed(text, Span::new(t.start + name_end, t.end));
    Section {
        name,
        args: text[args_span.start..args_span.end].to_string(),
        args_span,
        header_span: line,
        body_span: Span::new(line.end, line.end),
        span: line,
    }
}

fn header_line(text: &str, span: Span) -> HeaderLine {
    let raw = &text[span.start..span.end];
    let lead = raw.len() - raw.trim_start().len();
    let colon = raw.find(':');
    let key_end = colon.unwrap_or(raw.trim_end().len());
    let key_span = trimmed(text, Span::new(span.start + lead, span.start + key_end));
    let key = text[key_span.start..key_span.end].to_ascii_lowercase();
    let (value, value_span) = match colon {
        None => (String::new(), Span::new(span.end, span.end)),
        Some(c) => {
            let mut v = &raw[c + 1..];
            // A `#` ends the value, as in apptainer.
            if let Some(h) = v.find('#') {
                v = &v[..h];
            }
            let vs = Span::new(span.start + c + 1, span.start + c + 1 + v.len());
            let vs = trimmed(text, vs);
            let mut value = String::new();
            for (n, part) in text[vs.start..vs.end].split('\n').enumerate() {
                let part = part.trim();
                if n > 0 {
                    value = value.trim_end_matches('\\').to_string();
                }
                value.push_str(part);
            }
            (value, vs)
        }
    };
    HeaderLine {
        key,
        key_span,
        value,
        value_span,
        span,
    }
}

/// Reads a definition file given as bytes; text that is not UTF-8 is an
/// error at the first bad byte.
pub fn parse_bytes(
    path: &Path,
    bytes: &[u8],
    build_args: &BTreeMap<String, String>,
) -> Result<Definition, ApptainerError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse(path, text, build_args),
        Err(e) => {
            let good = String::from_utf8_lossy(&bytes[..e.valid_up_to()]).into_owned();
            Err(error(
                path,
                &good,
                Span::new(good.len(), good.len()),
                "definition file is not UTF-8 text".to_string(),
                Some("is this a binary file (an image) rather than a definition file?"),
            ))
        }
    }
}

fn error(
    path: &Path,
    text: &str,
    span: Span,
    message: String,
    hint: Option<&str>,
) -> ApptainerError {
    ApptainerError {
        diagnostic: Box::new(Diagnostic {
            message,
            location: Location::of(path, text, span.start),
            span,
            hint: hint.map(str::to_string),
        }),
    }
}

/// Text with `{{ name }}` replaced, kept as a [`Script`] so that spans map
/// back to the file.
struct Templater<'a> {
    path: &'a Path,
    text: &'a str,
    args: BTreeMap<String, String>,
}

impl Templater<'_> {
    /// `span` of the file with template variables replaced.
    fn apply(&self, span: Span) -> Result<Script, ApptainerError> {
        let mut script = Script::new();
        let s = &self.text[span.start..span.end];
        let mut done = 0;
        let mut search = 0;
        while let Some(open) = s[search..].find("{{").map(|i| search + i) {
            let Some(close) = s[open + 2..].find("}}").map(|i| open + 2 + i) else {
                break;
            };
            let name = s[open + 2..close].trim();
            let valid = !name.is_empty() && name.chars().all(|c| c == '_' || c.is_alphanumeric());
            let line_start = s[..open].rfind('\n').map_or(0, |i| i + 1);
            // Nothing after a `#` (other than `#!`) on a line is replaced.
            let commented = s[line_start..open]
                .match_indices('#')
                .any(|(i, _)| !s[line_start + i + 1..].starts_with('!'));
            if !valid || commented {
                search = open + 2;
                continue;
            }
            let file_span = Span::new(span.start + open, span.start + close + 2);
            let Some(value) = self.args.get(name) else {
                return Err(error(
                    self.path,
                    self.text,
                    file_span,
                    format!("build variable `{name}` has no value"),
                    Some(
                        "pass it with a build argument or give it a default in a `%arguments` section",
                    ),
                ));
            };
            script.push(&s[done..open], span.start + done);
            script.push_replacement(value, file_span);
            done = close + 2;
            search = done;
        }
        script.push(&s[done..], span.start + done);
        Ok(script)
    }

    fn expanded(&self, span: Span) -> Result<Expanded, ApptainerError> {
        let script = self.apply(span)?;
        Ok(Expanded {
            written: self.text[span.start..span.end].to_string(),
            value: Some(script.text().to_string()),
            unresolved: Vec::new(),
            span,
        })
    }
}

/// Parses a definition file into the shared model.
pub fn parse(
    path: &Path,
    text: &str,
    build_args: &BTreeMap<String, String>,
) -> Result<Definition, ApptainerError> {
    parse_with(path, text, build_args, &Wrappers::new())
}

/// [`parse`], reading the configured `wrappers` as the installers they run.
pub fn parse_with(
    path: &Path,
    text: &str,
    build_args: &BTreeMap<String, String>,
    wrappers: &Wrappers,
) -> Result<Definition, ApptainerError> {
    let err =
        |span: Span, message: String, hint: Option<&str>| error(path, text, span, message, hint);
    if let Some(nul) = text.find('\0') {
        return Err(err(
            Span::new(nul, nul + 1),
            "definition file contains a NUL byte".to_string(),
            Some("is this a binary file (an image) rather than a definition file?"),
        ));
    }
    let file = DefFile::parse(text);

    // Check sections and headers before reading anything else.
    let mut global_args = Vec::new();
    let mut defaults = BTreeMap::new();
    for part in file.stages.iter().flatten() {
        match part {
            Part::Section(s) => {
                let app = APP_SECTIONS.contains(&s.name.as_str());
                if !app && !SECTIONS.contains(&s.name.as_str()) {
                    return Err(err(
                        trimmed(text, s.header_span),
                        format!("unknown section `%{}`", s.name),
                        Some(
                            "sections are %help, %setup, %files, %labels, %environment, %pre, %post, %runscript, %test, %startscript, %arguments and the %app… sections",
                        ),
                    ));
                }
                if app && s.args.is_empty() {
                    return Err(err(
                        trimmed(text, s.header_span),
                        format!("section `%{}` needs an app name", s.name),
                        Some("write it as `%appinstall NAME`"),
                    ));
                }
                if s.name == "arguments" {
                    for line in lines(text)
                        .filter(|l| l.start >= s.body_span.start && l.end <= s.body_span.end)
                    {
                        let t = trimmed(text, line);
                        let raw = &text[t.start..t.end];
                        if raw.is_empty() || raw.starts_with('#') {
                            continue;
                        }
                        let Some((name, value)) = raw.split_once('=') else {
                            return Err(err(
                                t,
                                format!("`{raw}` is not `NAME=value`"),
                                Some("each line of %arguments gives a default as `NAME=value`"),
                            ));
                        };
                        let name = name.trim();
                        let value = value.trim();
                        let vstart = t.start + raw.len()
                            - raw.split_once('=').map_or("", |p| p.1).trim_start().len();
                        let vspan = Span::new(vstart, vstart + value.len());
                        defaults.insert(name.to_string(), value.to_string());
                        global_args.push(ArgDecl {
                            name: name.to_string(),
                            default: Some(Expanded {
                                written: value.to_string(),
                                value: Some(
                                    build_args
                                        .get(name)
                                        .cloned()
                                        .unwrap_or_else(|| value.to_string()),
                                ),
                                unresolved: Vec::new(),
                                span: vspan,
                            }),
                            span: t,
                        });
                    }
                }
            }
            Part::Header(h) => {
                let numbered = h
                    .key
                    .strip_prefix("otherurl")
                    .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()));
                if !numbered && !HEADERS.contains(&h.key.as_str()) {
                    let message = if h.value_span.is_empty()
                        && !text[h.span.start..h.span.end].contains(':')
                    {
                        format!(
                            "header line `{}` has no `:`",
                            text[trimmed(text, h.span).start..trimmed(text, h.span).end]
                                .lines()
                                .next()
                                .unwrap_or("")
                        )
                    } else {
                        format!("unknown header keyword `{}`", h.key)
                    };
                    let hint = if SECTIONS.contains(&h.key.as_str())
                        || APP_SECTIONS.contains(&h.key.as_str())
                    {
                        format!(
                            "`{0}` is a section: write `%{0}` on a line of its own, its content on the lines below",
                            h.key
                        )
                    } else {
                        "header lines are `Keyword: value`, with keywords such as Bootstrap, From, Stage, Registry, Namespace, Include, MirrorURL, OSVersion".to_string()
                    };
                    return Err(err(h.key_span, message, Some(&hint)));
                }
            }
            Part::Other { .. } => {}
        }
    }
    let mut args = defaults;
    args.extend(build_args.iter().map(|(k, v)| (k.clone(), v.clone())));
    let tpl = Templater { path, text, args };

    let mut stages: Vec<Stage> = Vec::new();
    let index = LineIndex::new(text);
    // Header lines written before the first `Bootstrap:` (Singularity 2
    // read headers in any order) join the first stage.
    let mut carried: Vec<&HeaderLine> = Vec::new();
    for (n, parts) in file.stages.iter().enumerate() {
        let header = |key: &str| {
            parts
                .iter()
                .filter_map(|p| match p {
                    Part::Header(h) => Some(h),
                    _ => None,
                })
                .chain(carried.iter().copied())
                .find(|h| h.key == key)
        };
        let headers_only = parts.iter().all(|p| !matches!(p, Part::Section(_)));
        if n == 0 && headers_only && header("bootstrap").is_none() && file.stages.len() > 1 {
            carried = parts
                .iter()
                .filter_map(|p| match p {
                    Part::Header(h) => Some(h),
                    _ => None,
                })
                .collect();
            continue;
        }
        let Some(bootstrap) = header("bootstrap") else {
            // Only comments and blank lines before the first stage are fine.
            let first = parts.iter().find(|p| !matches!(p, Part::Other { .. }));
            if let Some(p) = first {
                let at = match p {
                    Part::Header(h) => h.key_span,
                    Part::Section(s) => trimmed(text, s.header_span),
                    Part::Other { span } => *span,
                };
                return Err(err(
                    at,
                    "definition has no `Bootstrap` header".to_string(),
                    Some(
                        "start the file (and each stage) with a header such as `Bootstrap: docker` and `From: IMAGE`",
                    ),
                ));
            }
            continue;
        };
        let agent_value = tpl.expanded(bootstrap.value_span)?;
        let agent = agent_value
            .value
            .clone()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let block_end = parts
            .iter()
            .take_while(|p| !matches!(p, Part::Section(_)))
            .filter(|p| matches!(p, Part::Header(_)))
            .map(|p| p.span().end)
            .max()
            .unwrap_or(bootstrap.span.end);
        let stage_span = Span::new(bootstrap.span.start, block_end);
        let from = header("from");
        let (target, reference) = if IMAGE_AGENTS.contains(&agent.as_str()) {
            let Some(from) = from.filter(|f| !f.value.is_empty()) else {
                return Err(err(
                    bootstrap.value_span,
                    format!("`Bootstrap: {agent}` needs a `From` header"),
                    Some("name the image, for example `From: ubuntu:24.04`"),
                ));
            };
            let mut reference = tpl.expanded(from.value_span)?;
            if agent == "docker" {
                // `Registry:` and `Namespace:` compose the reference as
                // apptainer does: REGISTRY/NAMESPACE/FROM.
                let mut prefix = String::new();
                for key in ["registry", "namespace"] {
                    if let Some(h) = header(key) {
                        let v = tpl.expanded(h.value_span)?;
                        match v.value {
                            Some(v) if !v.is_empty() => {
                                prefix.push_str(v.trim_matches('/'));
                                prefix.push('/');
                            }
                            Some(_) => {}
                            None => {
                                reference.value = None;
                                reference.unresolved.extend(v.unresolved);
                            }
                        }
                    }
                }
                if let Some(v) = &mut reference.value {
                    v.insert_str(0, &prefix);
                }
            }
            // Only `docker` names an image of a registry imagelock reads as
            // an OCI image: the others live in the Library, a daemon, a file
            // or an ORAS artifact (a SIF), are pinned where they live, and
            // are never looked up on Docker Hub in their place.
            let target = if agent == "docker" {
                BaseTarget::Image {
                    agent: agent.clone(),
                }
            } else {
                BaseTarget::Other {
                    agent: agent.clone(),
                }
            };
            (target, reference)
        } else if agent == "scratch" {
            (BaseTarget::Scratch, agent_value.clone())
        } else if OTHER_AGENTS.contains(&agent.as_str()) {
            let r = from
                .or_else(|| header("osversion"))
                .or_else(|| header("mirrorurl"));
            let reference = match r {
                Some(h) => tpl.expanded(h.value_span)?,
                None => agent_value.clone(),
            };
            (
                BaseTarget::Other {
                    agent: agent.clone(),
                },
                reference,
            )
        } else {
            return Err(err(
                bootstrap.value_span,
                format!("unknown bootstrap agent `{agent}`"),
                Some(
                    "agents are docker, docker-daemon, docker-archive, oci, oci-archive, library, oras, shub, localimage, debootstrap, yum, dnf, zypper, busybox, arch, scratch",
                ),
            ));
        };
        let name = match header("stage") {
            Some(h) => Some(tpl.expanded(h.value_span)?.value.unwrap_or_default()),
            None => None,
        };
        // apptainer reads `Library:` only for the library agent.
        let library = match header("library").filter(|_| agent == "library") {
            Some(h) => tpl.expanded(h.value_span)?.value.filter(|v| !v.is_empty()),
            None => None,
        };
        let mut stage = Stage {
            args: Vec::new(),
            onbuild: Vec::new(),
            warnings: Vec::new(),
            unused: false,
            index: stages.len(),
            name,
            platform: None,
            base: Base {
                reference,
                target,
                from_arg: None,
                library,
            },
            image_uses: Vec::new(),
            copies: Vec::new(),
            steps: Vec::new(),
            content: Vec::new(),
            apt_files: Vec::new(),
            span: stage_span,
        };
        // apptainer runs all `%post` sections of a stage as one script, before
        // the `%appinstall` sections.
        let posts: Vec<&Section> = parts
            .iter()
            .filter_map(|p| match p {
                Part::Section(s) if s.name == "post" => Some(s),
                _ => None,
            })
            .collect();
        let mut script = Script::new();
        for s in &posts {
            script.append(&tpl.apply(s.body_span)?);
        }
        // Commands continued over lines are read (and locked) as one line.
        let script = script.without_line_continuations();
        scan_section(&tpl, &index, &script, &posts, &mut stage, wrappers)?;
        for part in parts {
            let Part::Section(s) = part else { continue };
            match s.name.as_str() {
                "files" | "appfiles" => files_section(&tpl, s, &stages, &mut stage)?,
                "appinstall" => {
                    let script = tpl.apply(s.body_span)?.without_line_continuations();
                    scan_section(&tpl, &index, &script, &[s], &mut stage, wrappers)?;
                }
                _ => {}
            }
        }
        stages.push(stage);
        carried.clear();
    }
    if stages.is_empty() {
        return Err(err(
            Span::new(0, 0),
            "definition has no `Bootstrap` header".to_string(),
            Some("start the file with a header such as `Bootstrap: docker` and `From: IMAGE`"),
        ));
    }
    Stage::mark_unused(&mut stages, None);
    Ok(Definition {
        syntax: None,
        kind: DefinitionKind::Apptainer,
        path: path.to_path_buf(),
        global_args,
        stages,
        wrappers: wrappers.clone(),
    })
}

/// Records the install commands of `script`, made of the bodies of
/// `sections`, each with the section it is written in.
fn scan_section(
    tpl: &Templater<'_>,
    index: &LineIndex,
    script: &Script,
    sections: &[&Section],
    stage: &mut Stage,
    wrappers: &Wrappers,
) -> Result<(), ApptainerError> {
    let text = tpl.text;
    stage
        .content
        .extend(crate::source::coverage::scan_content(script, text, index));
    stage
        .apt_files
        .extend(crate::source::apt_files::scan_apt_files(
            script, text, index,
        ));
    let events = scan_script_with(script, &|_| None, None, wrappers)
        .map_err(|e| error(tpl.path, text, e.span, e.message, e.hint.as_deref()))?;
    let mut config: Vec<ChannelConfig> = Vec::new();
    for event in events {
        let command = match event {
            ShellEvent::Install(c) => *c,
            ShellEvent::ChannelConfig(c) => {
                config.push(c);
                continue;
            }
        };
        let channel_config = if command.manager.ecosystem() == Ecosystem::Conda {
            config.clone()
        } else {
            Vec::new()
        };
        let at = command.span.start;
        let instruction = sections
            .iter()
            .find(|s| s.span.start <= at && at < s.span.end.max(s.span.start + 1))
            .or(sections.last())
            .map_or(command.span, |s| s.span);
        stage.steps.push(InstallStep {
            workdir: None,
            line: index.line_col(text, at).line,
            command,
            instruction,
            env: Vec::new(),
            user: None,
            channel_config,
            platform_args: Vec::new(),
        });
    }
    Ok(())
}

/// `%files [from STAGE]`: one `src [dst]` per line.
fn files_section(
    tpl: &Templater<'_>,
    s: &Section,
    earlier: &[Stage],
    stage: &mut Stage,
) -> Result<(), ApptainerError> {
    let text = tpl.text;
    let mut from = None;
    if s.name == "files" && !s.args.is_empty() {
        let args = tpl.apply(s.args_span)?;
        let mut words = args.text().split_whitespace();
        if words.next() != Some("from") {
            return Err(error(
                tpl.path,
                text,
                s.args_span,
                format!("unexpected `{}` after `%files`", s.args),
                Some("write `%files` or `%files from STAGE`"),
            ));
        }
        let Some(name) = words.next() else {
            return Err(error(
                tpl.path,
                text,
                s.args_span,
                "`%files from` needs a stage name".to_string(),
                Some("write `%files from STAGE` with the `Stage:` name of an earlier stage"),
            ));
        };
        if !earlier.iter().any(|st| st.name.as_deref() == Some(name)) {
            let names: Vec<_> = earlier
                .iter()
                .filter_map(|s| s.name.as_deref())
                .map(|n| format!("`{n}`"))
                .collect();
            let hint = if names.is_empty() {
                "no earlier stage has a `Stage:` name".to_string()
            } else {
                format!("earlier stages are {}", names.join(", "))
            };
            return Err(error(
                tpl.path,
                text,
                s.args_span,
                format!("`%files from {name}` names no earlier stage"),
                Some(&hint),
            ));
        }
        from = Some(name.to_string());
    }
    for line in lines(text).filter(|l| l.start >= s.body_span.start && l.end <= s.body_span.end) {
        let t = trimmed(text, line);
        if t.is_empty() || text[t.start..].starts_with('#') {
            continue;
        }
        let value = tpl.apply(t)?;
        let words = split_files_line(value.text());
        let Some(src) = words.first() else { continue };
        let destination = words.get(1).cloned().unwrap_or_else(|| src.clone());
        stage.copies.push(CopiedFile {
            workdir: None,
            sources: vec![src.clone()],
            destination,
            from: from.clone(),
            span: t,
            flags: Vec::new(),
        });
    }
    Ok(())
}

/// Splits a `%files` line at blanks outside double quotes, dropping the quotes.
fn split_files_line(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests;

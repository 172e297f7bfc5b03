//! Rewriting definitions into pinned form from their locks.
//!
//! Everything here is an edit on text: a byte [`Span`] found by the
//! parsers in `source` and what replaces it ([`edit::Edit`]). Files are
//! never printed again from a model, so every byte outside the edited spans
//! (comments, blank lines, CRLF line ends, heredoc bodies, the escape
//! character) stays as it was.
//!
//! What is pinned:
//! - image references (`FROM`, `COPY --from`, `RUN --mount=…,from=`,
//!   `# syntax=`, Apptainer `From:`) get `@sha256:…`, or the `ARG` default
//!   they come from when that is sound (see [`bases`]); internal stages,
//!   `scratch` and images built by this repository are left alone;
//! - pip steps: the requirement arguments become every package the step
//!   installs, `name==version`, sorted, with `platform_machine` markers
//!   where platforms differ; a requirements file the step reads is edited
//!   in place instead (dependencies appended under
//!   `# pinned by imagelock: dependencies`), with `--hash` lines and
//!   `--require-hashes` when asked;
//! - conda steps: every package as `[channel::]name==version=build`; an
//!   `environment.yml` or spec file the step reads is edited in place
//!   instead (its entries pinned, the other packages of the solution added
//!   under the same comment, the `pip:` list pinned the same way, see
//!   [`conda_files`]); an `@EXPLICIT` file gets the locked hashes.
//!
//! Rewriting is idempotent: a reference or step already in the locked form
//! gives no edit. A lock whose input hash does not match the inputs is
//! refused. Because rewriting changes the inputs, the lock returned in
//! [`Rewrite::lock`] has its input hash recomputed over the rewritten
//! files, and the line and command of every step updated, so `verify`
//! stays green after a rewrite; the caller writes it with the files.

mod bases;
mod conda_files;
pub mod edit;
mod pinned;
mod pins;
pub mod variants;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::diagnostic::{Diagnostic, Location, Span};
use crate::lock::{LockedImage, Token};
use crate::source::apptainer;
use crate::source::dockerfile::{self, syntax::ItemKind};
use crate::source::inputs::{Inputs, load_inputs_with};
use crate::source::model::{Definition, DefinitionKind, InstallStep};
use crate::source::requirements::{RequirementsEntry, RequirementsFile};
use crate::source::steps::{Ecosystem, FileRole, Manager};

pub use edit::{Edit, EditError};
pub use pinned::{PinnedSpec, pinned_specs};

/// The comment above dependency pins appended to a requirements file.
pub const DEPENDENCIES_COMMENT: &str = "# pinned by imagelock: dependencies";

/// Lists of more than this many characters are wrapped one per line.
const WRAP_WIDTH: usize = 60;

/// Why a rewrite cannot be done.
#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    #[error("the lock of `{image}` is stale: `{}` or a file it reads changed since it was made\nhint: run `imagelock freeze` first", definition.display())]
    Stale { image: String, definition: PathBuf },
    #[error("cannot rewrite `{}`: {source}", path.display())]
    Edit {
        path: PathBuf,
        #[source]
        source: EditError,
    },
    #[error("`{}` cannot be read after rewriting: {message}\nhint: this is a bug in imagelock; please report it", path.display())]
    Reparse { path: PathBuf, message: String },
}

/// What to do besides pinning.
#[derive(Clone, Copy, Debug, Default)]
pub struct RewriteOptions {
    /// Add `--hash=sha256:` lines and `--require-hashes` to requirements files.
    pub hashes: bool,
    /// Add `&& echo "<sha256>  FILE" | sha256sum -c -` after each
    /// `curl -o FILE URL` / `wget -O FILE URL` whose file the lock pins.
    pub check_downloads: bool,
    /// Also add, before each pinned apt install, the archives it read at
    /// the lock's snapshot (`[rewrite] apt = "pins+snapshot"`).
    pub apt_snapshot: bool,
}

/// One file and its pinned text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileChange {
    pub path: PathBuf,
    pub before: String,
    pub after: String,
}

/// The result of rewriting one image.
#[derive(Clone, Debug)]
pub struct Rewrite {
    /// Files whose text changes (none when everything is pinned).
    pub files: Vec<FileChange>,
    /// What could not be pinned, located.
    pub warnings: Vec<Diagnostic>,
    /// The lock for the rewritten files.
    pub lock: LockedImage,
}

/// Edits collected for the definition (`None`) and the input files.
#[derive(Default)]
struct Plan {
    edits: BTreeMap<Option<usize>, Vec<Edit>>,
    warnings: Vec<Diagnostic>,
}

impl Plan {
    fn warn(&mut self, path: &Path, text: &str, span: Span, message: String, hint: Option<String>) {
        self.warnings.push(Diagnostic {
            location: Location::of(path, text, span.start),
            message,
            span,
            hint,
        });
    }
}

/// Rewrites `definition` (read from its path, with `inputs`) into pinned
/// form from `lock`. Pure: the caller writes [`Rewrite::files`] and
/// [`Rewrite::lock`].
pub fn rewrite_image(
    definition: &Definition,
    inputs: &Inputs,
    lock: &LockedImage,
    context: &Path,
    opts: RewriteOptions,
) -> Result<Rewrite, RewriteError> {
    let path = &definition.path;
    let text = inputs.definition.as_str();
    if inputs.hash() != lock.image.input_hash {
        return Err(RewriteError::Stale {
            image: lock.image.name.to_string(),
            definition: path.clone(),
        });
    }
    let mut plan = Plan::default();

    let b = bases::base_edits(definition, text, lock, &inputs.build_args);
    plan.edits.entry(None).or_default().extend(b.edits);
    for (span, message, hint) in b.skipped {
        plan.warn(path, text, span, message, hint);
    }

    let layout = Layout::new(definition, text);
    // (lock step index, stage, step position) for every matched step.
    let mut matched = Vec::new();
    for stage in definition.stages.iter().filter(|s| !s.unused) {
        for (si, step) in stage.steps.iter().enumerate() {
            let eco = step.command.manager.ecosystem();
            let apt = matches!(
                step.command.manager,
                Manager::AptGet
                    | Manager::Apt
                    | Manager::Dnf
                    | Manager::Microdnf
                    | Manager::Yum
                    | Manager::Apk
            );
            if eco == Ecosystem::Os && !apt {
                continue;
            }
            let found = match_step(lock, stage.index, step);
            if apt && found.is_none() {
                // Not locked: freeze said why, and the step stays as written.
                continue;
            }
            let Some(li) = found else {
                plan.warn(
                    path,
                    text,
                    step.command.span,
                    format!("`{}` has no entry in the lock", step.command.text),
                    Some("run `imagelock freeze` to lock it".into()),
                );
                continue;
            };
            matched.push((li, stage.index, si));
            if layout.exec_form(step) {
                plan.warn(
                    path,
                    text,
                    step.command.span,
                    "install steps in exec form (`RUN [\"pip\", …]`) are not rewritten".into(),
                    Some("write the RUN in shell form to have it pinned".into()),
                );
                continue;
            }
            let at = StepAt {
                def: definition,
                inputs,
                lock,
                layout: &layout,
                stage: stage.index,
                si,
                step,
                li,
            };
            match eco {
                Ecosystem::Python => pip_step(&mut plan, at, opts),
                Ecosystem::Conda => conda_step(&mut plan, at),
                Ecosystem::Os
                    if matches!(
                        step.command.manager,
                        Manager::Dnf | Manager::Microdnf | Manager::Yum
                    ) =>
                {
                    rpm_step(&mut plan, at)
                }
                Ecosystem::Os if step.command.manager == Manager::Apk => apk_step(&mut plan, at),
                Ecosystem::Os => apt_step(&mut plan, at, opts),
                Ecosystem::Other => {}
            }
        }
    }

    add_checksums(&mut plan, definition, text, lock);
    pin_git(&mut plan, definition, text, lock);
    if opts.check_downloads {
        check_downloads(&mut plan, definition, text, lock);
    }

    // Apply.
    let mut files = Vec::new();
    let mut new_definition = text.to_string();
    for (target, edits) in &plan.edits {
        let (fpath, before) = match target {
            None => (path.clone(), text),
            Some(i) => (
                inputs.files[*i].path.clone(),
                inputs.files[*i].text.as_str(),
            ),
        };
        let after = edit::apply(before, edits).map_err(|source| RewriteError::Edit {
            path: fpath.clone(),
            source,
        })?;
        debug_assert!(edit::only_spans_changed(before, &after, edits));
        if after != before {
            if target.is_none() {
                new_definition.clone_from(&after);
            }
            files.push(FileChange {
                path: fpath,
                before: before.to_string(),
                after,
            });
        }
    }

    let new_lock = if files.is_empty() {
        lock.clone()
    } else {
        let new_def = parse_definition(
            definition.kind,
            path,
            &new_definition,
            &inputs.build_args,
            &definition.wrappers,
        )
        .map_err(|message| RewriteError::Reparse {
            path: path.clone(),
            message,
        })?;
        relock(
            &new_def,
            inputs,
            lock,
            context,
            &files,
            &new_definition,
            &matched,
            &b.pinned_stages,
        )?
    };
    plan.warnings
        .sort_by(|a, b| (&a.location.path, a.span).cmp(&(&b.location.path, b.span)));
    plan.warnings.dedup();
    Ok(Rewrite {
        files,
        warnings: plan.warnings,
        lock: new_lock,
    })
}

/// `ADD <url>` without `--checksum` whose file the lock pins: the sha256
/// goes in as `--checksum=sha256:…` right after `ADD`, which BuildKit and
/// buildah check when they fetch it. An `ADD` of several sources is left
/// as written (builders take `--checksum` for one URL only).
fn add_checksums(plan: &mut Plan, definition: &Definition, text: &str, lock: &LockedImage) {
    use crate::source::coverage::ContentKind;
    if definition.kind != DefinitionKind::Dockerfile {
        return;
    }
    for stage in definition.stages.iter().filter(|s| !s.unused) {
        let Some(locked) = lock
            .stages
            .iter()
            .find(|s| usize::try_from(s.index).is_ok_and(|i| i == stage.index))
        else {
            continue;
        };
        for c in &stage.content {
            let ContentKind::AddUrl {
                url,
                checksum: None,
            } = &c.kind
            else {
                continue;
            };
            let Some(d) = locked.downloads.iter().find(|d| {
                usize::try_from(d.line).is_ok_and(|l| l == c.line) && d.url.as_str() == url
            }) else {
                continue;
            };
            let sources = stage
                .content
                .iter()
                .filter(|o| o.span == c.span && matches!(o.kind, ContentKind::AddUrl { .. }))
                .count();
            if sources > 1 {
                plan.warn(
                    &definition.path,
                    text,
                    c.span,
                    format!(
                        "`{}` is one of several sources of an `ADD`, so no `--checksum` is added",
                        c.text
                    ),
                    Some("give each URL its own `ADD` to have it pinned".into()),
                );
                continue;
            }
            let written = text.get(c.span.start..c.span.end).unwrap_or("");
            let lead = written.len() - written.trim_start().len();
            let keyword = written[lead..]
                .get(..3)
                .is_some_and(|k| k.eq_ignore_ascii_case("ADD"));
            if !keyword {
                continue;
            }
            plan.edits.entry(None).or_default().push(Edit::insert(
                c.span.start + lead + 3,
                format!(" --checksum=sha256:{}", d.sha256),
            ));
        }
    }
}

/// Git sources whose commit the lock records are pinned to it: an
/// `ADD URL#ref[:subdir]` becomes `ADD URL#<commit>[:subdir]`; a `git
/// clone` gets `&& git -C DIR checkout -q <commit>` after it, and a shallow
/// clone (which may not hold that commit once the branch moved) first
/// fetches it: `&& git -C DIR fetch -q --depth N origin <commit>`. The
/// ref stays in the lock, so drift still reports when it moves.
fn pin_git(plan: &mut Plan, definition: &Definition, text: &str, lock: &LockedImage) {
    use crate::config::redact::redact_url;
    use crate::source::coverage::{ContentKind, clone_command, clone_dir, git_url};
    for stage in definition.stages.iter().filter(|s| !s.unused) {
        let Some(locked) = lock
            .stages
            .iter()
            .find(|s| usize::try_from(s.index).is_ok_and(|i| i == stage.index))
        else {
            continue;
        };
        let entry = |line: usize, url: &str| {
            let url = redact_url(url);
            locked.git.iter().find_map(|g| {
                (usize::try_from(g.line).is_ok_and(|l| l == line) && g.url.as_str() == url)
                    .then_some(g.commit.as_ref())
                    .flatten()
            })
        };
        for c in &stage.content {
            let written = text.get(c.span.start..c.span.end).unwrap_or("");
            match &c.kind {
                ContentKind::AddGit { url, commit: None } => {
                    let g = git_url(url);
                    let Some(commit) = entry(c.line, &g.repository) else {
                        continue;
                    };
                    let at = written.find(url.as_str());
                    let (Some(at), false) = (at, g.query) else {
                        plan.warn(
                            &definition.path,
                            text,
                            c.span,
                            format!(
                                "`{}` is not rewritten to its locked commit {commit}",
                                crate::config::redact::redact_text(&c.text)
                            ),
                            Some("write the source as `URL#ref` to have it pinned".into()),
                        );
                        continue;
                    };
                    let start = c.span.start + at;
                    let pinned = match &g.subdir {
                        Some(d) => format!("{}#{commit}:{d}", g.repository),
                        None => format!("{}#{commit}", g.repository),
                    };
                    plan.edits
                        .entry(None)
                        .or_default()
                        .push(Edit::new(Span::new(start, start + url.len()), pinned));
                }
                ContentKind::GitClone {
                    url: Some(url),
                    commit: None,
                    checkout: None,
                } => {
                    let Some(commit) = entry(c.line, url) else {
                        continue;
                    };
                    let args = clone_command(written);
                    let dir = args
                        .as_ref()
                        .filter(|a| !a.bare)
                        .and_then(|a| a.dir.clone().or_else(|| clone_dir(url)));
                    let (Some(args), Some(dir)) = (args, dir) else {
                        plan.warn(
                            &definition.path,
                            text,
                            c.span,
                            format!(
                                "`{}` is not rewritten to its locked commit {commit}",
                                crate::config::redact::redact_text(&c.text)
                            ),
                            Some(
                                "a bare or mirror clone, or one imagelock cannot read, has no work tree to check the commit out in".into(),
                            ),
                        );
                        continue;
                    };
                    let mut pin = String::new();
                    if args.shallow {
                        let depth = args.depth.as_deref().unwrap_or("1");
                        let remote = args.origin.as_deref().unwrap_or("origin");
                        pin.push_str(&format!(
                            " && git -C {dir} fetch -q --depth {depth} {remote} {commit}"
                        ));
                    }
                    pin.push_str(&format!(" && git -C {dir} checkout -q {commit}"));
                    plan.edits
                        .entry(None)
                        .or_default()
                        .push(Edit::insert(c.span.end, pin));
                }
                _ => {}
            }
        }
    }
}

/// `curl -o FILE URL` / `wget -O FILE URL` whose file the lock pins: a
/// `sha256sum -c` of FILE goes right after the command, so the build stops
/// when the URL serves other bytes. A command already followed by that
/// check is left alone; one whose file is not a literal path is named.
fn check_downloads(plan: &mut Plan, definition: &Definition, text: &str, lock: &LockedImage) {
    use crate::source::coverage::{ContentKind, download_file};
    for stage in definition.stages.iter().filter(|s| !s.unused) {
        let Some(locked) = lock
            .stages
            .iter()
            .find(|s| usize::try_from(s.index).is_ok_and(|i| i == stage.index))
        else {
            continue;
        };
        for c in &stage.content {
            let ContentKind::Download { url: Some(url) } = &c.kind else {
                continue;
            };
            let Some(d) = locked.downloads.iter().find(|d| {
                usize::try_from(d.line).is_ok_and(|l| l == c.line) && d.url.as_str() == url
            }) else {
                continue;
            };
            let written = text.get(c.span.start..c.span.end).unwrap_or("");
            let Some(file) = download_file(written) else {
                plan.warn(
                    &definition.path,
                    text,
                    c.span,
                    format!(
                        "`{}` writes no file named literally, so no `sha256sum -c` is added",
                        c.text
                    ),
                    Some("write the download as `curl -o FILE URL` with a plain path".into()),
                );
                continue;
            };
            let check = format!("&& echo \"{}  {file}\" | sha256sum -c -", d.sha256);
            let after = text.get(c.span.end..).unwrap_or("");
            if after.trim_start().starts_with(&check) {
                continue;
            }
            plan.edits
                .entry(None)
                .or_default()
                .push(Edit::insert(c.span.end, format!(" {check}")));
        }
    }
}

/// The lock step of a parsed step: same stage, line and command; else the
/// only step of that stage on that line.
fn match_step(lock: &LockedImage, stage: usize, step: &InstallStep) -> Option<usize> {
    let candidates: Vec<usize> = lock
        .steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.locked && s.stage as usize == stage && s.line as usize == step.line)
        .map(|(i, _)| i)
        .collect();
    candidates
        .iter()
        .copied()
        .find(|&i| lock.steps[i].command == step.command.text)
        .or_else(|| (candidates.len() == 1).then(|| candidates[0]))
}

/// The lock after rewriting: input hash over the new texts, steps' lines
/// and commands from the rewritten definition, stage bases with digests.
#[allow(clippy::too_many_arguments)]
fn relock(
    new_def: &Definition,
    inputs: &Inputs,
    lock: &LockedImage,
    context: &Path,
    files: &[FileChange],
    new_text: &str,
    matched: &[(usize, usize, usize)],
    pinned_stages: &[(usize, String)],
) -> Result<LockedImage, RewriteError> {
    let reparse = |message: String| RewriteError::Reparse {
        path: new_def.path.clone(),
        message,
    };
    let overlay: BTreeMap<&Path, &str> = files
        .iter()
        .map(|f| (f.path.as_path(), f.after.as_str()))
        .collect();
    let read = |p: &Path| match overlay.get(p) {
        Some(t) => Ok((*t).to_string()),
        None => fs_err::read_to_string(p),
    };
    let new_inputs = load_inputs_with(new_def, new_text, context, &inputs.build_args, &read)
        .map_err(|e| reparse(e.to_string()))?;
    let mut out = lock.clone();
    out.image.input_hash = new_inputs.hash();
    for &(li, stage, si) in matched {
        let Some(step) = new_def.stages.get(stage).and_then(|s| s.steps.get(si)) else {
            return Err(reparse(format!("step {si} of stage {stage} is gone")));
        };
        let ls = &mut out.steps[li];
        ls.line = u32::try_from(step.line).unwrap_or(u32::MAX);
        ls.command.clone_from(&step.command.text);
    }
    for (index, reference) in pinned_stages {
        let reference: Token = reference
            .parse()
            .map_err(|e| reparse(format!("the pinned reference {e}")))?;
        let reference = &reference;
        if let Some(s) = out.stages.iter_mut().find(|s| s.index as usize == *index) {
            s.base.clone_from(reference);
        }
    }
    // A base an Apptainer agent pulls (`oras`, `library`) is pulled under
    // the pinned reference now; a library base is named by the hash that
    // replaced its tag, as freeze names it from the pinned file.
    for (index, reference) in pinned_stages {
        let Some(name) = out
            .stages
            .iter()
            .find(|s| s.index as usize == *index)
            .and_then(|s| s.base_name.clone())
        else {
            continue;
        };
        let Some(base) = out
            .bases
            .iter_mut()
            .find(|b| b.name == name && b.agent.is_some())
        else {
            continue;
        };
        base.references = vec![
            reference
                .parse()
                .map_err(|e| reparse(format!("the pinned reference {e}")))?,
        ];
        if base.agent.as_deref().map(crate::source::agents::agent_pin)
            == Some(crate::source::agents::AgentPin::Remote(
                crate::source::agents::RemoteAgent::Library,
            ))
            && let Some((bare, _)) = name.rsplit_once(':')
        {
            let renamed: Token = format!("{bare}:sha256.{}", base.digest.hex())
                .parse()
                .map_err(|e| reparse(format!("the pinned name {e}")))?;
            base.name = renamed.clone();
            for s in out
                .stages
                .iter_mut()
                .filter(|s| s.base_name.as_ref() == Some(&name))
            {
                s.base_name = Some(renamed.clone());
            }
        }
    }
    refresh_references(&mut out, new_def);
    out.normalize();
    Ok(out)
}

/// Each base is now pulled under the references the rewritten definition
/// spells, exactly as `freeze` records them: the lock rewrite writes is
/// the one freeze would make from the pinned file.
fn refresh_references(lock: &mut LockedImage, new_def: &Definition) {
    for base in &mut lock.bases {
        let mut now: Vec<Token> = crate::source::graph::pulled_references(new_def)
            .into_iter()
            .filter(|written| {
                crate::oci::ImageRef::parse(written).is_ok_and(|r| {
                    crate::resolve::registry::canonical_name(&r) == base.name.as_str()
                })
            })
            .filter_map(|written| written.parse().ok())
            .collect();
        now.sort();
        now.dedup();
        if !now.is_empty() {
            base.references = now;
        }
    }
}

/// Parses a definition text of `kind`.
fn parse_definition(
    kind: DefinitionKind,
    path: &Path,
    text: &str,
    build_args: &BTreeMap<String, String>,
    wrappers: &crate::source::steps::Wrappers,
) -> Result<Definition, String> {
    match kind {
        DefinitionKind::Dockerfile => {
            dockerfile::parse_with(path, text, build_args, wrappers).map_err(|e| e.to_string())
        }
        DefinitionKind::Apptainer => {
            apptainer::parse_with(path, text, build_args, wrappers).map_err(|e| e.to_string())
        }
    }
}

/// How lists are laid out in the definition file.
struct Layout<'a> {
    text: &'a str,
    kind: DefinitionKind,
    escape: char,
    /// Dockerfile heredoc bodies (shell text, escaped with `\`).
    heredocs: Vec<Span>,
    /// Dockerfile `RUN` instructions in exec form.
    exec_runs: Vec<Span>,
    eol: &'static str,
}

impl<'a> Layout<'a> {
    fn new(def: &Definition, text: &'a str) -> Self {
        let mut layout = Layout {
            text,
            kind: def.kind,
            escape: '\\',
            heredocs: Vec::new(),
            exec_runs: Vec::new(),
            eol: if text.contains("\r\n") { "\r\n" } else { "\n" },
        };
        if def.kind == DefinitionKind::Dockerfile
            && let Ok(syntax) = dockerfile::parse_syntax(text)
        {
            layout.escape = syntax.escape;
            for item in &syntax.items {
                if let ItemKind::Instruction(ins) = &item.kind {
                    layout
                        .heredocs
                        .extend(ins.heredocs.iter().map(|h| h.body_span));
                    if ins.keyword == "run" && ins.json.is_some() {
                        layout.exec_runs.push(ins.span);
                    }
                }
            }
        }
        layout
    }

    fn exec_form(&self, step: &InstallStep) -> bool {
        self.exec_runs.contains(&step.instruction)
    }

    /// The escape character at `at`: the file's outside heredocs and
    /// Apptainer sections, `\` in shell text.
    fn escape_at(&self, at: usize) -> char {
        let in_heredoc = self.heredocs.iter().any(|h| h.start <= at && at < h.end);
        if self.kind == DefinitionKind::Dockerfile && !in_heredoc {
            self.escape
        } else {
            '\\'
        }
    }

    fn line_start(&self, at: usize) -> usize {
        self.text[..at].rfind('\n').map_or(0, |i| i + 1)
    }

    /// `items` as the text replacing `first..last` of the command's specs:
    /// one line when short, else one item per line, indented four spaces
    /// more than the line the command starts on.
    fn list(&self, command_start: usize, first: usize, items: &[String]) -> String {
        let joined = items.join(" ");
        if items.len() <= 1 || joined.len() <= WRAP_WIDTH {
            return joined;
        }
        let esc = self.escape_at(first);
        let cmd_line = self.line_start(command_start);
        let lead: String = self.text[cmd_line..]
            .chars()
            .take_while(|c| *c == ' ' || *c == '\t')
            .collect();
        let indent = format!("{lead}    ");
        let sep = format!(" {esc}{}{indent}", self.eol);
        let mut out = String::new();
        // Start the list on its own line unless it already does.
        if !self.text[self.line_start(first)..first].trim().is_empty() {
            out.push(esc);
            out.push_str(self.eol);
            out.push_str(&indent);
        }
        out.push_str(&items.join(&sep));
        out
    }

    /// Whether only blanks and line continuations lie between two specs.
    fn contiguous(&self, from: usize, to: usize) -> bool {
        let esc = self.escape_at(from);
        let between = &self.text[from..to];
        let mut chars = between.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                ' ' | '\t' => {}
                c if c == esc => {
                    while chars
                        .peek()
                        .is_some_and(|c| *c == ' ' || *c == '\t' || *c == '\r')
                    {
                        chars.next();
                    }
                    if chars.next() != Some('\n') {
                        return false;
                    }
                }
                _ => return false,
            }
        }
        true
    }
}

/// Replaces a command's spec arguments with `items`.
fn replace_specs(plan: &mut Plan, layout: &Layout<'_>, step: &InstallStep, items: &[String]) {
    // The words that hold the specs: one word (`${PKGS}`) may hold several
    // specs, and an unquoted `pkg>=1.2` extends to the redirect the shell
    // made of it, which the pin replaces.
    let mut words: Vec<Span> = Vec::new();
    for s in &step.command.specs {
        let mut span = s.span;
        for u in &step.command.unresolved {
            if u.cause == crate::source::steps::Cause::Redirect && u.span.start == span.start {
                span.end = span.end.max(u.span.end);
            }
        }
        if words.last().is_none_or(|w| w.end <= span.start) {
            words.push(span);
        }
    }
    let (Some(first), Some(last)) = (words.first().copied(), words.last().copied()) else {
        return;
    };
    if items.is_empty() {
        return;
    }
    let list = layout.list(step.command.span.start, first.start, items);
    let edits = plan.edits.entry(None).or_default();
    let contiguous = words
        .windows(2)
        .all(|w| layout.contiguous(w[0].end, w[1].start));
    if contiguous {
        edits.push(Edit::new(Span::new(first.start, last.end), list));
        return;
    }
    edits.push(Edit::new(first, list));
    for s in &words[1..] {
        // The spec and the blanks before it on its line.
        let before = layout.text[..s.start].trim_end_matches([' ', '\t']).len();
        edits.push(Edit::new(Span::new(before, s.end), ""));
    }
}

/// One install step being rewritten: where it is in the definition and
/// which lock entry it matched.
#[derive(Clone, Copy)]
struct StepAt<'a> {
    def: &'a Definition,
    inputs: &'a Inputs,
    lock: &'a LockedImage,
    layout: &'a Layout<'a>,
    /// Stage index, and the step's index in that stage.
    stage: usize,
    si: usize,
    step: &'a InstallStep,
    /// Index of the matched entry in `lock.steps`.
    li: usize,
}

/// An apt step: every package it installs pinned `name=version`
/// (`name:arch=version` for a foreign architecture), in place of the names
/// written.
fn apt_step(plan: &mut Plan, at: StepAt<'_>, opts: RewriteOptions) {
    let StepAt {
        def,
        inputs,
        lock,
        layout,
        step,
        li,
        ..
    } = at;
    let text = inputs.definition.as_str();
    let locked = &lock.steps[li];
    if step.command.specs.is_empty() {
        if locked.apt.iter().any(|p| p.action != "keep") {
            warn_names_no_package(plan, def, text, step, "apt-get install -y NAME=VERSION …");
        }
        return;
    }
    let (items, unpinned) = pins::apt_pins(locked);
    if !unpinned.is_empty() {
        warn_unpinned_between_platforms(plan, def, text, step, &unpinned);
        return;
    }
    if step.command.action == crate::source::steps::Action::Install {
        replace_specs(plan, layout, step, &items);
        if opts.apt_snapshot {
            apt_snapshot(plan, at);
        }
    }
}

/// The file `pins+snapshot` writes the snapshot archives to.
const SNAPSHOT_LIST: &str = "/etc/apt/sources.list.d/imagelock-snapshot.list";

/// `pins+snapshot`: before the step's `apt-get update` (or, without one
/// just before it, before the install with an update of its own), the
/// archives the step read, at the lock's snapshot, as a list of their own
/// beside the image's sources, with `check-valid-until=no` (a snapshot's
/// release has long expired). The pins choose the versions; the snapshot
/// keeps serving them after the live archive dropped them. An earlier
/// snapshot list of this step is replaced.
fn apt_snapshot(plan: &mut Plan, at: StepAt<'_>) {
    let StepAt {
        def,
        inputs,
        lock,
        step,
        li,
        ..
    } = at;
    let text = inputs.definition.as_str();
    let locked = &lock.steps[li];
    let mut lines: Vec<String> = Vec::new();
    for s in &locked.apt_sources {
        let host = url::Url::parse(s.uri.as_str())
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
            .unwrap_or_default();
        // The snapshot archives themselves (a list written before).
        if host.starts_with("snapshot.") {
            continue;
        }
        let Some(uri) = s.snapshot_uri() else {
            plan.warn(
                &def.path,
                text,
                step.command.span,
                format!(
                    "`{}` keeps no snapshot imagelock knows of, so `{} {}` is read live",
                    s.uri, s.uri, s.suite
                ),
                Some(
                    "its pins still make the build fail rather than install other versions".into(),
                ),
            );
            continue;
        };
        let keyring = if uri.contains("snapshot.ubuntu.com") {
            "/usr/share/keyrings/ubuntu-archive-keyring.gpg"
        } else {
            "/usr/share/keyrings/debian-archive-keyring.gpg"
        };
        let components: Vec<&str> = s.components.iter().map(|c| c.as_str()).collect();
        let line = format!(
            "deb [check-valid-until=no signed-by={keyring}] {uri} {} {}",
            s.suite,
            components.join(" ")
        );
        if !lines.contains(&line) {
            lines.push(line);
        }
    }
    if lines.is_empty() {
        return;
    }
    let quoted: Vec<String> = lines.iter().map(|l| format!("'{l}'")).collect();
    let write = format!("printf '%s\\n' {} > {SNAPSHOT_LIST}", quoted.join(" "));
    let start = step.command.span.start;
    let before = &text[..start];
    // A list written by an earlier rewrite: replaced in place.
    if let Some(old) = before.rfind("printf '%s\\n' 'deb [check-valid-until=no")
        && let Some(len) = text[old..].find(SNAPSHOT_LIST)
        && !text[old..old + len].contains("\n\n")
    {
        let end = old + len + SNAPSHOT_LIST.len();
        if text[old..end] != write {
            plan.edits
                .entry(None)
                .or_default()
                .push(Edit::new(Span::new(old, end), write));
        }
        return;
    }
    let edit = match update_before(before) {
        Some(at) => Edit::new(Span::new(at, at), format!("{write} && ")),
        None => Edit::new(
            Span::new(start, start),
            format!("{write} && apt-get update && "),
        ),
    };
    plan.edits.entry(None).or_default().push(edit);
}

/// Where the `apt-get update` (or `apt update`) right before an install
/// starts: the command before it, joined by `&&` (line continuations
/// between are fine).
fn update_before(before: &str) -> Option<usize> {
    let trimmed = before.trim_end_matches([' ', '\t', '\n', '\\']);
    let rest = trimmed.strip_suffix("&&")?;
    let rest = rest.trim_end_matches([' ', '\t', '\n', '\\']);
    // The previous command: back to the separator or `RUN` before it.
    let from = ["&&", ";", "||", "|", "RUN ", "run ", "\n"]
        .iter()
        .filter_map(|sep| {
            rest.rfind(sep).map(|i| {
                // A continued line is not a separator.
                if *sep == "\n" && rest[..i].ends_with('\\') {
                    0
                } else {
                    i + sep.len()
                }
            })
        })
        .max()
        .unwrap_or(0);
    let command = &rest[from..];
    let lead = command.len() - command.trim_start().len();
    let words: Vec<&str> = command.split_whitespace().collect();
    let program = words.first()?.rsplit('/').next()?;
    let update = matches!(program, "apt-get" | "apt")
        && words[1..]
            .iter()
            .all(|w| w.starts_with('-') || *w == "update")
        && words[1..].contains(&"update");
    update.then_some(from + lead)
}

/// An OS package step that changes packages without naming one to install
/// (`apt-get upgrade`, `dnf update`): nothing in the definition to pin, so
/// the versions are only in the lock; `form` is how to write them.
fn warn_names_no_package(
    plan: &mut Plan,
    def: &Definition,
    text: &str,
    step: &InstallStep,
    form: &str,
) {
    plan.warn(
        &def.path,
        text,
        step.command.span,
        format!(
            "`{}` names no package to install, so its versions are not pinned in the definition",
            step.command.text
        ),
        Some(format!(
            "write the locked packages as `{form}`, or check the image with `imagelock verify --image`"
        )),
    );
}

/// A dnf step: every package it installs pinned
/// `name-[epoch:]version-release.arch` (without the arch when the same
/// version is locked for several arches), in place of the names written.
fn rpm_step(plan: &mut Plan, at: StepAt<'_>) {
    let StepAt {
        def,
        inputs,
        lock,
        layout,
        step,
        li,
        ..
    } = at;
    let text = inputs.definition.as_str();
    let locked = &lock.steps[li];
    if step.command.specs.is_empty() || step.command.action != crate::source::steps::Action::Install
    {
        if locked.rpm.iter().any(|p| p.installed_after()) {
            warn_names_no_package(
                plan,
                def,
                text,
                step,
                "dnf install -y NAME-VERSION-RELEASE.ARCH …",
            );
        }
        return;
    }
    let (items, unpinned) = pins::rpm_pins(locked);
    if !unpinned.is_empty() {
        warn_unpinned_between_platforms(plan, def, text, step, &unpinned);
        return;
    }
    replace_specs(plan, layout, step, &items);
}

/// An apk step: every package `apk add` installs pinned `name=version`, in
/// place of the names written (after `--virtual NAME`, the virtual package
/// then depends on the pins).
fn apk_step(plan: &mut Plan, at: StepAt<'_>) {
    let StepAt {
        def,
        inputs,
        lock,
        layout,
        step,
        li,
        ..
    } = at;
    let text = inputs.definition.as_str();
    let locked = &lock.steps[li];
    if step.command.specs.is_empty() || step.command.action != crate::source::steps::Action::Install
    {
        return;
    }
    let (items, unpinned) = pins::apk_pins(locked);
    if !unpinned.is_empty() {
        warn_unpinned_between_platforms(plan, def, text, step, &unpinned);
        return;
    }
    replace_specs(plan, layout, step, &items);
}

fn conda_step(plan: &mut Plan, at: StepAt<'_>) {
    let StepAt {
        def,
        inputs,
        lock,
        layout,
        step,
        li,
        ..
    } = at;
    let text = inputs.definition.as_str();
    let locked = &lock.steps[li];
    let (specs, unpinned) = pins::conda_specs(locked);
    if !unpinned.is_empty() {
        warn_unpinned_between_platforms(plan, def, text, step, &unpinned);
    }
    if step
        .command
        .files
        .iter()
        .any(|f| matches!(f.role, FileRole::Environment | FileRole::CondaSpecs))
    {
        conda_files_step(plan, at, &specs);
        return;
    }
    let items: Vec<String> = specs.into_iter().map(|(_, s)| s).collect();
    replace_specs(plan, layout, step, &items);
}

/// A conda step reading environment or spec files: command-line specs get
/// their own pins, the files' entries are pinned in place, and the packages
/// nobody named are added to the step's first file (conda packages to its
/// dependencies, Python packages to its `pip:` list).
fn conda_files_step(plan: &mut Plan, at: StepAt<'_>, specs: &[(String, String)]) {
    let StepAt {
        def,
        inputs,
        lock,
        stage,
        si,
        step,
        li,
        ..
    } = at;
    let text = inputs.definition.as_str();
    let locked = &lock.steps[li];
    let linked = inputs.step_files(stage, si);
    for (ai, arg) in step.command.files.iter().enumerate() {
        if matches!(arg.role, FileRole::Environment | FileRole::CondaSpecs)
            && !linked.iter().any(|(a, _)| *a == ai)
        {
            plan.warn(
                &def.path,
                text,
                arg.path.span,
                format!(
                    "`{}` is not copied from the build context; its packages are not pinned",
                    arg.path.written
                ),
                Some("COPY the file into the image before the step".into()),
            );
        }
    }
    let conda_pins: BTreeMap<String, Vec<String>> = specs
        .iter()
        .map(|(n, s)| (n.clone(), vec![s.clone()]))
        .collect();
    let pip_all = pins::pip_pins(locked, &lock.image.platforms);
    let mut pip_pins: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in &pip_all {
        pip_pins
            .entry(p.name.clone())
            .or_default()
            .push(p.text.clone());
    }

    let mut named: BTreeSet<String> = BTreeSet::new();
    for spec in &step.command.specs {
        let Some(name) = spec.value.as_deref().and_then(conda_files::conda_name) else {
            continue;
        };
        if let Some(pin) = conda_pins.get(&name).and_then(|p| p.first()) {
            plan.edits
                .entry(None)
                .or_default()
                .push(Edit::new(spec.span, pins::shell_word(pin)));
        }
        named.insert(name);
    }

    let mut pip_named: BTreeSet<String> = BTreeSet::new();
    let mut conda_anchor = None;
    let mut pip_anchor = None;
    let mut files: Vec<usize> = Vec::new();
    for &(ai, fi) in &linked {
        let role = step.command.files[ai].role;
        if files.contains(&fi) || !matches!(role, FileRole::Environment | FileRole::CondaSpecs) {
            continue;
        }
        files.push(fi);
        let file = &inputs.files[fi];
        let mut edits = Vec::new();
        if role == FileRole::Environment {
            let layout = match conda_files::environment_layout(&file.path, &file.text) {
                Ok(l) => l,
                Err(why) => {
                    plan.warn(
                        &file.path,
                        &file.text,
                        Span::new(0, 0),
                        format!("`{}` is not pinned: {why}", file.label),
                        None,
                    );
                    continue;
                }
            };
            let (e, n) = conda_files::pin_entries(&file.text, &layout.conda, &conda_pins, true);
            edits.extend(e);
            named.extend(n);
            if conda_anchor.is_none() {
                conda_anchor = layout.conda.anchor.map(|a| (fi, a));
            }
            if let Some(pip) = &layout.pip {
                let (e, n) = conda_files::pin_entries(&file.text, pip, &pip_pins, true);
                edits.extend(e);
                pip_named.extend(n);
                if pip_anchor.is_none() {
                    pip_anchor = pip.anchor.clone().map(|a| (fi, a));
                }
            }
        } else if let Some(list) = conda_files::spec_layout(&file.text) {
            let (e, n) = conda_files::pin_entries(&file.text, &list, &conda_pins, false);
            edits.extend(e);
            named.extend(n);
            if conda_anchor.is_none() {
                conda_anchor = list.anchor.map(|a| (fi, a));
            }
        } else {
            // An explicit file names every artifact itself.
            let hashes: BTreeMap<&str, &str> = locked
                .conda
                .iter()
                .map(|p| (p.url.as_str(), p.sha256.as_str()))
                .collect();
            edits.extend(conda_files::explicit_edits(&file.text, &hashes));
            named.extend(conda_pins.keys().cloned());
        }
        plan.edits.entry(Some(fi)).or_default().extend(edits);
    }

    let rest: Vec<String> = specs
        .iter()
        .filter(|(n, _)| !named.contains(n))
        .map(|(_, s)| s.clone())
        .collect();
    let pip_rest: Vec<String> = pip_all
        .iter()
        .filter(|p| !pip_named.contains(&p.name))
        .map(|p| p.text.clone())
        .collect();
    for (what, rest, anchor) in [("conda", rest, conda_anchor), ("pip", pip_rest, pip_anchor)] {
        if rest.is_empty() {
            continue;
        }
        match anchor {
            Some((fi, a)) => {
                let file = &inputs.files[fi];
                if let Some(e) = conda_files::append(&file.text, &a, &rest, true) {
                    plan.edits.entry(Some(fi)).or_default().push(e);
                }
            }
            None => plan.warn(
                &def.path,
                text,
                step.command.span,
                format!(
                    "{} {what} packages of this step are not pinned: its files have no list to add them to",
                    rest.len()
                ),
                Some(if what == "pip" {
                    "add a `pip:` list to the environment file's dependencies".into()
                } else {
                    "add a `dependencies:` list to the environment file".into()
                }),
            ),
        }
    }
}

fn pip_step(plan: &mut Plan, at: StepAt<'_>, opts: RewriteOptions) {
    let StepAt {
        def,
        inputs,
        lock,
        layout,
        stage,
        si,
        step,
        li,
    } = at;
    let text = inputs.definition.as_str();
    let locked = &lock.steps[li];
    let all_pins = pins::pip_pins(locked, &lock.image.platforms);
    let shell: Vec<String> = all_pins.iter().map(|p| pins::shell_word(&p.text)).collect();
    let req_args: Vec<_> = step
        .command
        .files
        .iter()
        .enumerate()
        .filter(|(_, f)| f.role == FileRole::Requirements)
        .collect();
    if req_args.is_empty() {
        replace_specs(plan, layout, step, &shell);
        return;
    }
    let linked = inputs.step_files(stage, si);
    for (ai, arg) in &req_args {
        if !linked.iter().any(|(a, _)| a == ai) {
            plan.warn(
                &def.path,
                text,
                arg.path.span,
                format!(
                    "`{}` is not copied from the build context; its requirements are not pinned",
                    arg.path.written
                ),
                Some("COPY the file into the image before the step".into()),
            );
        }
    }
    // Command-line specs get their own pins.
    let mut named: BTreeSet<String> = BTreeSet::new();
    for spec in &step.command.specs {
        let Some(name) = spec.value.as_deref().and_then(pins::requirement_name) else {
            continue;
        };
        let mine: Vec<String> = all_pins
            .iter()
            .filter(|p| p.name == name)
            .map(|p| pins::shell_word(&p.text))
            .collect();
        if !mine.is_empty() {
            plan.edits
                .entry(None)
                .or_default()
                .push(Edit::new(spec.span, mine.join(" ")));
        }
        named.insert(name);
    }
    // Requirements files: entries pinned in place.
    let env = |name: &str| {
        step.env
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let mut first_file = None;
    for &(ai, fi) in &linked {
        if step.command.files[ai].role != FileRole::Requirements {
            continue;
        }
        let file = &inputs.files[fi];
        let Ok(parsed) = RequirementsFile::parse(&file.path, &file.text, &env) else {
            continue;
        };
        let hashes = opts.hashes
            || parsed.requirements().any(|e| {
                matches!(e, RequirementsEntry::Requirement { hashes, .. } if !hashes.is_empty())
            });
        let fl = FileLayout::new(&file.text);
        if first_file.is_none() && file.included_from.is_none() {
            first_file = Some((fi, hashes));
        }
        let edits = plan.edits.entry(Some(fi)).or_default();
        // A name pinned once per platform version has several lines: the
        // first gets every pin, the others go (so a second run is a no-op).
        let mut seen: BTreeMap<String, bool> = BTreeMap::new();
        for entry in &parsed.entries {
            let RequirementsEntry::Requirement {
                spec,
                editable: false,
                span,
                line_span,
                ..
            } = entry
            else {
                continue;
            };
            let Some(name) = pins::requirement_name(spec) else {
                // A direct URL stays as written; with hashes it gets the
                // hash of the file freeze fetched, as --require-hashes needs.
                if hashes
                    && let Some(pin) = all_pins
                        .iter()
                        .find(|p| p.direct && p.text == spec.trim() && !p.hashes.is_empty())
                {
                    edits.push(Edit::new(*line_span, fl.hashed(pin)));
                }
                continue;
            };
            let mine: Vec<&pins::PipPin> = all_pins.iter().filter(|p| p.name == name).collect();
            named.insert(name.clone());
            if mine.is_empty() {
                continue;
            }
            if mine.len() > 1 {
                let lines: Vec<&str> = parsed
                    .requirements()
                    .filter_map(|e| match e {
                        RequirementsEntry::Requirement { spec, .. }
                            if pins::requirement_name(spec).as_deref() == Some(name.as_str()) =>
                        {
                            Some(spec.as_str())
                        }
                        _ => None,
                    })
                    .collect();
                let texts: Vec<&str> = mine.iter().map(|p| p.text.as_str()).collect();
                if lines == texts && !hashes {
                    continue;
                }
                if seen.insert(name.clone(), true).is_some() {
                    // The whole line, with its line end.
                    let end = file.text[line_span.end..]
                        .find('\n')
                        .map_or(file.text.len(), |i| line_span.end + i + 1);
                    edits.push(Edit::new(Span::new(line_span.start, end), ""));
                    continue;
                }
            }
            if hashes {
                let lines: Vec<String> = mine.iter().map(|p| fl.hashed(p)).collect();
                edits.push(Edit::new(*line_span, lines.join(fl.eol)));
            } else {
                let lines: Vec<&str> = mine.iter().map(|p| p.text.as_str()).collect();
                edits.push(Edit::new(*span, lines.join(fl.eol)));
            }
        }
        if hashes
            && file.included_from.is_none()
            && !parsed.entries.iter().any(
                |e| matches!(e, RequirementsEntry::Option { name, .. } if name == "--require-hashes"),
            )
        {
            let at = parsed
                .entries
                .iter()
                .find_map(|e| match e {
                    RequirementsEntry::Requirement { line_span, .. } => Some(line_span.start),
                    _ => None,
                })
                .map_or(file.text.len(), |s| file.text[..s].rfind('\n').map_or(0, |i| i + 1));
            edits.push(Edit::insert(at, format!("--require-hashes{}", fl.eol)));
        }
    }
    // Dependencies: appended to the step's first requirements file.
    let deps: Vec<&pins::PipPin> = all_pins
        .iter()
        .filter(|p| !named.contains(&p.name) && !p.direct)
        .collect();
    if deps.is_empty() {
        return;
    }
    let Some((fi, hashes)) = first_file else {
        replace_specs(plan, layout, step, &shell);
        return;
    };
    let file = &inputs.files[fi];
    let fl = FileLayout::new(&file.text);
    let mut add = String::new();
    if !file.text.is_empty() && !file.text.ends_with('\n') {
        add.push_str(fl.eol);
    }
    if !file
        .text
        .lines()
        .any(|l| l.trim_end() == DEPENDENCIES_COMMENT)
    {
        add.push_str(DEPENDENCIES_COMMENT);
        add.push_str(fl.eol);
    }
    for p in deps {
        if hashes {
            add.push_str(&fl.hashed(p));
        } else {
            add.push_str(&p.text);
        }
        add.push_str(fl.eol);
    }
    plan.edits
        .entry(Some(fi))
        .or_default()
        .push(Edit::insert(file.text.len(), add));
}

/// Line ends of a requirements file.
struct FileLayout {
    eol: &'static str,
}

impl FileLayout {
    fn new(text: &str) -> Self {
        Self {
            eol: if text.contains("\r\n") { "\r\n" } else { "\n" },
        }
    }

    /// `pin \` + one `--hash=` continuation line per hash.
    fn hashed(&self, pin: &pins::PipPin) -> String {
        let mut s = pin.text.clone();
        for h in &pin.hashes {
            s.push_str(" \\");
            s.push_str(self.eol);
            s.push_str("    --hash=");
            s.push_str(h);
        }
        s
    }
}

/// Packages whose locked versions differ between platforms cannot be one
/// pin in a definition shared by the platforms: said, and left as written.
fn warn_unpinned_between_platforms(
    plan: &mut Plan,
    def: &Definition,
    text: &str,
    step: &InstallStep,
    unpinned: &[String],
) {
    plan.warn(
        &def.path,
        text,
        step.command.span,
        format!(
            "{} differ in version between platforms and are left unpinned",
            unpinned
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Some("lock one platform per image, or pin them yourself".into()),
    );
}

#[cfg(test)]
mod tests;

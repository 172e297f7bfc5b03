//! `imagelock plan`: what each image is built from, without the network.
//!
//! The JSON form (`--format json`) is stable:
//!
//! ```text
//! {
//!   "version": 1,
//!   "images": [
//!     {
//!       "name": "driver",                  // image name (config key or directory)
//!       "file": "driver/Dockerfile",       // the definition file as given
//!       "build_args": {"K": "V"},          // config build-args, then --build-arg
//!       "definition": {…},                 // source::Definition, or null on error
//!       "repository_bases": [              // stages FROM another configured image
//!         {"stage": 0, "image": "base"}
//!       ],
//!       "error": null                      // or {"message", "line", "column", "hint"}
//!     }
//!   ]
//! }
//! ```
//!
//! `definition` serializes [`crate::source::Definition`] field by field;
//! spans are byte offsets into the file.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::cli::args::{GlobalOpts, OutputFormat, PlanArgs};
use crate::cli::diagnostic::render_source_error;
use crate::cli::images::{parse_build_args, same_image, select};
use crate::cli::{Outcome, Printer};
use crate::config::ImageConfig;
use crate::diagnostic::LineIndex;
use crate::lock::coverage::coverage_of;
use crate::source::inputs::{Inputs, load_inputs};
use crate::source::load::{SourceError, load_definition_with};
use crate::source::model::{BaseTarget, Definition, Expanded, InstallStep, Stage};
use crate::source::steps::{ChannelAction, Ecosystem, effective_channels};

/// Version of the JSON output.
const JSON_VERSION: u32 = 1;

#[derive(Serialize)]
struct PlanJson<'a> {
    version: u32,
    images: Vec<ImageJson<'a>>,
}

#[derive(Serialize)]
struct ImageJson<'a> {
    name: &'a str,
    file: &'a Path,
    build_args: &'a BTreeMap<String, String>,
    definition: Option<&'a Definition>,
    repository_bases: Vec<RepositoryBase>,
    error: Option<ErrorJson>,
}

#[derive(Serialize)]
struct RepositoryBase {
    stage: usize,
    image: String,
}

#[derive(Serialize)]
struct ErrorJson {
    message: String,
    line: Option<usize>,
    column: Option<usize>,
    hint: Option<String>,
}

struct Planned {
    image: ImageConfig,
    result: Result<Definition, SourceError>,
}

/// Runs `imagelock plan`.
pub fn run(global: &GlobalOpts, args: &PlanArgs, printer: &Printer) -> anyhow::Result<Outcome> {
    let overrides = parse_build_args(&args.build_args)?;
    let (config, images) = select(global, &args.paths.paths, &overrides)?;
    // Names published by the images of this repository.
    let refs: Vec<(String, String)> = config
        .iter()
        .flat_map(|c| &c.images)
        .filter_map(|i| i.reference.clone().map(|r| (r, i.name.clone())))
        .collect();

    let planned: Vec<Planned> = images
        .into_iter()
        .map(|image| {
            let result = load_definition_with(&image.file, &image.build_args, &image.wrappers);
            Planned { image, result }
        })
        .collect();

    let failed = planned.iter().filter(|p| p.result.is_err()).count();
    for p in &planned {
        if let Err(e) = &p.result {
            eprint!("{}", render_source_error(e, printer.color()));
        }
    }
    match global.format {
        OutputFormat::Json => {
            let json = PlanJson {
                version: JSON_VERSION,
                images: planned.iter().map(|p| image_json(p, &refs)).collect(),
            };
            let mut text = serde_json::to_string_pretty(&json)?;
            text.push('\n');
            printer.data(&text)?;
        }
        OutputFormat::Human => {
            let mut out = String::new();
            for p in &planned {
                if let Ok(def) = &p.result {
                    human(&mut out, &p.image, def, &refs);
                }
            }
            printer.data(&out)?;
        }
        other => anyhow::bail!(
            "`plan` cannot print `{}`\nhint: use `--format human` or `--format json`",
            format!("{other:?}").to_ascii_lowercase()
        ),
    }
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} definition file{} could not be read",
            planned.len(),
            if planned.len() == 1 { "" } else { "s" }
        );
    }
    Ok(Outcome::Clean)
}

fn image_json<'a>(p: &'a Planned, refs: &[(String, String)]) -> ImageJson<'a> {
    let (definition, error) = match &p.result {
        Ok(def) => (Some(def), None),
        Err(e) => {
            let d = e.diagnostic();
            (
                None,
                Some(ErrorJson {
                    message: d.map_or_else(|| e.to_string(), |d| d.message.clone()),
                    line: d.map(|d| d.location.line),
                    column: d.map(|d| d.location.column),
                    hint: d.and_then(|d| d.hint.clone()),
                }),
            )
        }
    };
    let repository_bases = definition
        .map(|def| {
            def.stages
                .iter()
                .filter_map(|s| {
                    repository_image(&s.base.reference, refs).map(|image| RepositoryBase {
                        stage: s.index,
                        image,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    ImageJson {
        name: &p.image.name,
        file: &p.image.file,
        build_args: &p.image.build_args,
        definition,
        repository_bases,
        error,
    }
}

/// The configured image published as this reference, if any.
fn repository_image(reference: &Expanded, refs: &[(String, String)]) -> Option<String> {
    let value = reference.value.as_deref()?;
    refs.iter()
        .find(|(r, _)| same_image(value, r))
        .map(|(_, name)| name.clone())
}

fn show(e: &Expanded) -> String {
    match &e.value {
        Some(v) if *v == e.written => v.clone(),
        Some(v) => format!("{} → {v}", e.written),
        None => format!("{} (unresolved: {})", e.written, e.unresolved.join(", ")),
    }
}

fn human(out: &mut String, image: &ImageConfig, def: &Definition, refs: &[(String, String)]) {
    let text = fs_err::read_to_string(&def.path).unwrap_or_default();
    let lines = LineIndex::new(&text);
    let line = |offset: usize| lines.line_col(&text, offset).line;
    let file = def.path.display();
    let _ = writeln!(out, "image {} ({file})", image.name);
    if let Some(s) = &def.syntax {
        let _ = writeln!(out, "  syntax {}", show(s));
    }
    for a in &def.global_args {
        match &a.default {
            Some(d) => _ = writeln!(out, "  ARG {}={}", a.name, show(d)),
            None => _ = writeln!(out, "  ARG {}", a.name),
        }
    }
    // Which build-context file each file argument reads (via COPY/ADD).
    let loaded = load_inputs(def, &text, &image.context, &image.build_args);
    // A file that is there but cannot be read (not UTF-8, too large) is
    // said as such, not as a file no COPY brings.
    let unreadable = loaded.as_ref().err().map(|e| e.to_string());
    for stage in &def.stages {
        stage_human(
            out,
            stage,
            def,
            refs,
            &line,
            loaded.as_ref().ok(),
            unreadable.as_deref(),
        );
    }
    // As freeze would lock it: plan reads no lock.
    let coverage = coverage_of(def, &text, image, &def.path.display().to_string(), None);
    let _ = writeln!(out, "  coverage: {}", coverage.line());
    out.push('\n');
}

/// Where a step's packages come from: conda channels (from `-c`, then the
/// configuration changes made before it, over the base image's
/// `.condarc`), or Python indexes and find-links.
fn step_sources(out: &mut String, s: &InstallStep) {
    let c = &s.command;
    match c.manager.ecosystem() {
        Ecosystem::Conda => {
            let mut parts: Vec<String> = c.channels.iter().map(show).collect();
            if c.override_channels {
                parts.push("(--override-channels)".into());
            } else {
                let (configured, priority, skipped) = effective_channels(&[], &s.channel_config);
                let mut from_config = String::from("the base image's .condarc");
                if !configured.is_empty()
                    || s.channel_config
                        .iter()
                        .any(|e| matches!(e.action, ChannelAction::Remove | ChannelAction::Set))
                {
                    let changes: Vec<String> = s
                        .channel_config
                        .iter()
                        .filter(|e| e.action != ChannelAction::Priority)
                        .map(|e| {
                            let v = e.channel.value.as_deref().unwrap_or(&e.channel.written);
                            let verb = serde_json::to_value(e.action)
                                .ok()
                                .and_then(|v| v.as_str().map(str::to_string))
                                .unwrap_or_default();
                            format!("{verb} {v}")
                        })
                        .collect();
                    from_config = format!("{from_config} after {}", changes.join(", "));
                }
                parts.push(from_config);
                if let Some(p) = priority {
                    parts.push(format!("channel_priority {p}"));
                }
                for e in skipped {
                    parts.push(format!("not applied: `{}`", e.text));
                }
            }
            let _ = writeln!(out, "      channels {}", parts.join(", "));
        }
        Ecosystem::Python => {
            let mut parts = Vec::new();
            if c.no_index {
                parts.push("no index (--no-index)".to_string());
            } else {
                parts.push(match &c.index_url {
                    Some(i) => show(i),
                    None => "the configured index".into(),
                });
                parts.extend(
                    c.extra_index_urls
                        .iter()
                        .map(|e| format!("extra {}", show(e))),
                );
            }
            parts.extend(
                c.find_links
                    .iter()
                    .map(|e| format!("find-links {}", show(e))),
            );
            let _ = writeln!(out, "      indexes {}", parts.join(", "));
        }
        Ecosystem::Os | Ecosystem::Other => {}
    }
}

fn stage_human(
    out: &mut String,
    stage: &Stage,
    def: &Definition,
    refs: &[(String, String)],
    line: &dyn Fn(usize) -> usize,
    inputs: Option<&Inputs>,
    unreadable: Option<&str>,
) {
    let file = def.path.display();
    let name = stage
        .name
        .as_ref()
        .map_or_else(String::new, |n| format!(" {n}"));
    let unused = if stage.unused {
        ", not used by the last stage: BuildKit skips it"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "  stage {}{name} ({file}:{}{unused})",
        stage.index,
        line(stage.span.start)
    );
    for w in &stage.warnings {
        let _ = writeln!(out, "    warning ({file}:{}): {}", w.line, w.message);
    }
    let base = &stage.base;
    let meaning = match (&base.target, repository_image(&base.reference, refs)) {
        (BaseTarget::Stage { index }, _) => format!("internal stage {index}"),
        (BaseTarget::Scratch, _) => "scratch".to_string(),
        (_, Some(image)) => format!("image of this repository: {image}"),
        (BaseTarget::Image { agent } | BaseTarget::Other { agent }, None) => {
            format!("{agent} image")
        }
    };
    let mut via = base
        .from_arg
        .as_ref()
        .map_or_else(String::new, |a| format!(", from ARG {a}"));
    if let Some(library) = &base.library {
        via.push_str(&format!(", Library {library}"));
    }
    let _ = writeln!(out, "    base {} ({meaning}{via})", show(&base.reference));
    if let Some(p) = &stage.platform {
        let _ = writeln!(out, "    platform {}", show(p));
    }
    for u in &stage.image_uses {
        let what = match &u.target {
            BaseTarget::Stage { index } => format!("internal stage {index}"),
            BaseTarget::Scratch => "scratch".into(),
            _ => match repository_image(&u.reference, refs) {
                Some(image) => format!("image of this repository: {image}"),
                None => "image".into(),
            },
        };
        let kind = serde_json::to_value(u.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "    uses {kind} {} ({what}, line {})",
            show(&u.reference),
            line(u.span.start)
        );
    }
    for c in &stage.copies {
        let from = c
            .from
            .as_ref()
            .map_or_else(String::new, |f| format!(" from {f}"));
        let _ = writeln!(
            out,
            "    copy {} → {}{from} (line {})",
            c.sources.join(" "),
            c.destination,
            line(c.span.start)
        );
    }
    for o in &stage.onbuild {
        let _ = writeln!(
            out,
            "    onbuild {} (line {}, not run here)",
            o.instruction,
            line(o.span.start)
        );
    }
    for (si, s) in stage.steps.iter().enumerate() {
        let c = &s.command;
        let linked = inputs
            .map(|i| i.step_files(stage.index, si))
            .unwrap_or_default();
        let action = c.action.as_str();
        let _ = write!(out, "    {} {action}", c.manager.as_str());
        if let Some(t) = &c.target {
            let t = match t {
                crate::source::steps::Target::CondaName(e) => format!("-n {}", show(e)),
                crate::source::steps::Target::CondaPrefix(e) => format!("-p {}", show(e)),
                crate::source::steps::Target::Python(e) => show(e),
            };
            let _ = write!(out, " into {t}");
        }
        let _ = writeln!(out, " ({file}:{})", s.line);
        if let Some(cond) = &c.conditional {
            let _ = writeln!(out, "      conditional: runs only if `{cond}`");
        }
        if !s.platform_args.is_empty() {
            let _ = writeln!(
                out,
                "      per platform: reads {}, which differs by platform; freeze reads the step for each platform it locks",
                s.platform_args.join(", ")
            );
        }
        if !c.specs.is_empty() {
            let specs: Vec<String> = c.specs.iter().map(show).collect();
            let _ = writeln!(out, "      specs {}", specs.join(", "));
        }
        step_sources(out, s);
        for u in &c.unresolved {
            let at = line(u.span.start);
            let _ = writeln!(
                out,
                "      unresolved ({}) `{}` ({file}:{at})",
                u.cause.as_str(),
                u.text
            );
        }
        for (ai, f) in c.files.iter().enumerate() {
            let role = serde_json::to_value(f.role)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let from: Vec<&str> = linked
                .iter()
                .filter(|(arg, _)| *arg == ai)
                .filter_map(|(_, file)| inputs.map(|i| i.files[*file].label.as_str()))
                .collect();
            let from = if let (true, Some(why)) = (from.is_empty(), unreadable) {
                format!(" (the build context's files could not be read: {why})")
            } else if from.is_empty() {
                " (no COPY brings it from the build context)".to_string()
            } else {
                format!(" ← {} (build context)", from.join(", "))
            };
            let _ = writeln!(out, "      {role} {}{from}", show(&f.path));
        }
    }
}

//! `imagelock graph`: images that build FROM each other, in build order.

use std::fmt::Write as _;

use crate::cli::args::{OutputFormat, PathsArgs};
use crate::cli::images::{same_image, select};
use crate::cli::{GlobalOpts, Outcome, Printer};
use crate::source::graph::{GraphInput, build_order, pulled_references};
use crate::source::load::load_definition_with;

pub fn run(global: &GlobalOpts, args: &PathsArgs, printer: &Printer) -> anyhow::Result<Outcome> {
    let (_, images) = select(global, &args.paths, &Default::default())?;
    let mut definitions = Vec::new();
    for image in &images {
        definitions.push(load_definition_with(
            &image.file,
            &image.build_args,
            &image.wrappers,
        )?);
    }
    let inputs: Vec<GraphInput<'_>> = images
        .iter()
        .zip(&definitions)
        .map(|(image, def)| GraphInput {
            name: &image.name,
            reference: image.reference.as_deref(),
            pulls: pulled_references(def),
        })
        .collect();
    let graph = build_order(&inputs, &same_image)?;
    // What each image pulls from outside the repository, as written.
    let external: std::collections::BTreeMap<&str, Vec<&str>> = inputs
        .iter()
        .map(|i| {
            let mut pulls: Vec<&str> = i
                .pulls
                .iter()
                .copied()
                .filter(|p| {
                    !inputs
                        .iter()
                        .any(|o| o.name != i.name && o.reference.is_some_and(|r| same_image(p, r)))
                })
                .collect();
            pulls.sort_unstable();
            pulls.dedup();
            (i.name, pulls)
        })
        .collect();
    let text = match global.format {
        OutputFormat::Human => {
            let mut out = String::new();
            for (i, name) in graph.order.iter().enumerate() {
                let from: Vec<&str> = graph
                    .edges
                    .iter()
                    .filter(|(a, _)| a == name)
                    .map(|(_, b)| b.as_str())
                    .collect();
                let _ = write!(out, "{}. {name}", i + 1);
                if !from.is_empty() {
                    let _ = write!(out, "  (builds from {})", from.join(", "));
                }
                let bases = external.get(name.as_str()).cloned().unwrap_or_default();
                if !bases.is_empty() {
                    let _ = write!(out, "  (external: {})", bases.join(", "));
                }
                out.push('\n');
            }
            out
        }
        OutputFormat::Json => {
            let mut json = serde_json::to_value(&graph)?;
            json["external"] = serde_json::to_value(&external)?;
            let mut text = serde_json::to_string_pretty(&json)?;
            text.push('\n');
            text
        }
        OutputFormat::Dot => {
            let mut out = String::from("digraph images {\n    rankdir=BT;\n");
            for name in &graph.order {
                let _ = writeln!(out, "    \"{name}\";");
            }
            for (a, b) in &graph.edges {
                let _ = writeln!(out, "    \"{a}\" -> \"{b}\";");
            }
            // External bases: boxes, dashed edges.
            let all: std::collections::BTreeSet<&str> =
                external.values().flatten().copied().collect();
            for base in &all {
                let _ = writeln!(out, "    \"{base}\" [shape=box];");
            }
            for (a, bases) in &external {
                for b in bases {
                    let _ = writeln!(out, "    \"{a}\" -> \"{b}\" [style=dashed];");
                }
            }
            out.push_str("}\n");
            out
        }
        other => anyhow::bail!(
            "`graph` cannot print `{}`\nhint: use `--format human`, `json` or `dot`",
            format!("{other:?}").to_ascii_lowercase()
        ),
    };
    printer.data(&text)?;
    Ok(Outcome::Clean)
}

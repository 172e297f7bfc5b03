//! Drift reports: one [`Render`] per output format.

use std::fmt::Write as _;

use super::{Finding, Kind, Report};

/// Turns a report into text.
pub trait Render {
    fn render(&self, report: &Report) -> String;
}

/// A plain table for the terminal.
pub struct Table;

/// Markdown for an issue or pull-request comment.
pub struct Markdown;

/// JSON for other tools (schema in [`crate::drift`]).
pub struct Json;

/// The summary line: how many findings of which kinds, in how many images.
pub fn summary(report: &Report) -> String {
    let total = report.findings().count();
    let images = report.images.len();
    if total == 0 {
        return format!("no drift in {images} images");
    }
    let affected = report
        .images
        .iter()
        .filter(|i| !i.findings.is_empty())
        .count();
    let kinds: Vec<String> = Kind::ALL
        .iter()
        .filter_map(|k| {
            let n = report.findings().filter(|(_, f)| f.kind == *k).count();
            (n > 0).then(|| format!("{n} {}", k.as_str()))
        })
        .collect();
    format!(
        "{total} findings in {affected} of {images} images: {}",
        kinds.join(", ")
    )
}

fn change(f: &Finding) -> String {
    match (&f.locked, &f.latest) {
        (Some(a), Some(b)) => format!("{} → {}", short(a), short(b)),
        (Some(a), None) => short(a),
        (None, Some(b)) => format!("→ {}", short(b)),
        (None, None) => String::new(),
    }
}

/// Digests shortened for tables (`sha256:0123456789ab`).
fn short(value: &str) -> String {
    match value.strip_prefix("sha256:") {
        Some(hex) if hex.len() > 12 => format!("sha256:{}", &hex[..12]),
        _ => value.to_string(),
    }
}

impl Render for Table {
    fn render(&self, report: &Report) -> String {
        let header = [
            "IMAGE",
            "KIND",
            "SEVERITY",
            "WHAT",
            "LOCKED → NOW",
            "DETAIL",
        ];
        let rows: Vec<[String; 6]> = report
            .findings()
            .map(|(image, f)| {
                [
                    image.to_string(),
                    f.kind.as_str().to_string(),
                    f.severity.as_str().to_string(),
                    f.subject().to_string(),
                    change(f),
                    // Tables keep one line per finding.
                    f.detail
                        .as_deref()
                        .and_then(|d| d.lines().next())
                        .unwrap_or_default()
                        .to_string(),
                ]
            })
            .collect();
        let mut out = String::new();
        if !rows.is_empty() {
            let mut widths = header.map(|h| h.chars().count());
            for row in &rows {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.chars().count());
                }
            }
            let line = |cells: &[String]| -> String {
                let mut s = String::new();
                for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
                    if i + 1 == cells.len() {
                        s.push_str(cell);
                    } else {
                        let pad = w - cell.chars().count();
                        s.push_str(cell);
                        s.push_str(&" ".repeat(pad + 2));
                    }
                }
                s.trim_end().to_string()
            };
            out.push_str(&line(&header.map(str::to_string)));
            out.push('\n');
            for row in &rows {
                out.push_str(&line(row));
                out.push('\n');
            }
        }
        out.push_str(&summary(report));
        out.push('\n');
        out
    }
}

/// A link to the package's page, when the ecosystem has one.
fn package_link(f: &Finding) -> String {
    let Some(name) = &f.package else {
        return f.base.clone().map(|b| format!("`{b}`")).unwrap_or_default();
    };
    // Unpinned specs are written text, not names.
    if f.kind == Kind::Unpinned {
        return format!("`{name}`");
    }
    match f.ecosystem.as_deref() {
        Some("pip") => format!("[{name}](https://pypi.org/project/{name}/)"),
        Some("conda") => format!(
            "[{name}](https://anaconda.org/{}/{name})",
            f.channel.as_deref().unwrap_or("conda-forge")
        ),
        _ => format!("`{name}`"),
    }
}

impl Render for Markdown {
    fn render(&self, report: &Report) -> String {
        let mut out = format!("**imagelock drift**: {}\n", summary(report));
        for image in &report.images {
            let _ = write!(out, "\n### {}\n\n", image.name);
            if image.findings.is_empty() {
                out.push_str("No drift.\n");
                continue;
            }
            for kind in Kind::ALL {
                let of_kind: Vec<&Finding> =
                    image.findings.iter().filter(|f| f.kind == kind).collect();
                let Some(first) = of_kind.first() else {
                    continue;
                };
                let _ = write!(
                    out,
                    "<details><summary>{} {} ({})</summary>\n\n| what | locked → now | detail |\n|---|---|---|\n",
                    of_kind.len(),
                    kind.as_str(),
                    first.severity.as_str()
                );
                for f in of_kind {
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} |",
                        package_link(f),
                        change(f).replace('|', "\\|"),
                        f.detail
                            .clone()
                            .unwrap_or_default()
                            .replace('|', "\\|")
                            .replace('\n', "<br>")
                    );
                }
                out.push_str("\n</details>\n");
            }
        }
        out
    }
}

impl Render for Json {
    fn render(&self, report: &Report) -> String {
        let mut text = serde_json::to_string_pretty(report).unwrap_or_else(|e| {
            // Serializing plain strings and enums cannot fail; say so if it does.
            format!("{{\"error\": \"{e}\"}}")
        });
        text.push('\n');
        text
    }
}

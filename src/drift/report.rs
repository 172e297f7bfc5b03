//! Drift reports: a printer per output format for the shared
//! [`Render`] trait over verify's findings vocabulary.

use std::fmt::Write as _;

use serde::Serialize;

pub use crate::verify::Render;
use crate::verify::{Ecosystem, Finding, FindingKind as Kind, Report, Severity, md_cell};

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
    let kinds: Vec<String> = Kind::DRIFT
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
    match (&f.expected, &f.found) {
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
                    f.severity().as_str().to_string(),
                    f.name.clone(),
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
        coverage_lines(&mut out, report, "");
        out.push_str(&summary(report));
        out.push('\n');
        out
    }
}

/// One coverage line per image: what its lock pins and what it does not.
fn coverage_lines(out: &mut String, report: &Report, bullet: &str) {
    for image in &report.images {
        if let Some(c) = &image.coverage {
            let _ = writeln!(out, "{bullet}{}: coverage: {}", image.image, c.line());
        }
    }
}

/// A link to the package's page, when the ecosystem has one.
fn package_link(f: &Finding) -> String {
    let name = &md_cell(&f.name);
    // Unpinned specs are written text, not names.
    if f.kind == Kind::Unpinned || f.kind == Kind::Moved {
        return format!("`{name}`");
    }
    match f.ecosystem {
        Ecosystem::Pip => format!("[{name}](https://pypi.org/project/{name}/)"),
        Ecosystem::Conda => format!(
            "[{name}](https://anaconda.org/{}/{name})",
            f.channel.as_deref().unwrap_or("conda-forge")
        ),
        Ecosystem::Base => format!("`{name}`"),
        Ecosystem::Apt => format!("[{name}](https://packages.debian.org/{name})"),
        Ecosystem::Image => String::new(),
        Ecosystem::Url | Ecosystem::Rpm | Ecosystem::Apk | Ecosystem::Git => format!("`{name}`"),
    }
}

impl Render for Markdown {
    fn render(&self, report: &Report) -> String {
        let mut out = format!("**imagelock drift**: {}\n", summary(report));
        for image in &report.images {
            let _ = write!(out, "\n### {}\n\n", md_cell(&image.image));
            if let Some(c) = &image.coverage {
                let _ = writeln!(out, "Coverage: {}\n", md_cell(&c.line()));
            }
            if image.findings.is_empty() {
                out.push_str("No drift.\n");
                continue;
            }
            for kind in Kind::DRIFT {
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
                    first.severity().as_str()
                );
                for f in of_kind {
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} |",
                        package_link(f),
                        md_cell(&change(f)),
                        md_cell(f.detail.as_deref().unwrap_or_default())
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
        let json = JsonReport {
            version: REPORT_VERSION,
            images: report
                .images
                .iter()
                .map(|i| JsonImage {
                    name: &i.image,
                    findings: i
                        .findings
                        .iter()
                        .map(|f| JsonFinding::of(&i.image, f))
                        .collect(),
                    coverage: i.coverage.as_ref(),
                })
                .collect(),
        };
        let mut text = serde_json::to_string_pretty(&json).unwrap_or_else(|e| {
            // Serializing plain strings and enums cannot fail; say so if it does.
            format!("{{\"error\": \"{e}\"}}")
        });
        text.push('\n');
        text
    }
}

/// Version of the JSON report's schema (see [`crate::drift`]).
pub const REPORT_VERSION: u32 = 1;

#[derive(Serialize)]
struct JsonReport<'a> {
    version: u32,
    images: Vec<JsonImage<'a>>,
}

#[derive(Serialize)]
struct JsonImage<'a> {
    name: &'a str,
    findings: Vec<JsonFinding<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    coverage: Option<&'a crate::source::coverage::Coverage>,
}

/// A finding as the drift schema spells it: `package` or `base` for the
/// name, `locked` and `latest` for what the lock has and what is there now.
#[derive(Serialize)]
struct JsonFinding<'a> {
    /// Stays the same from run to run while the finding does (SARIF's
    /// fingerprint): a scheduled job can tell new findings from old.
    id: String,
    kind: Kind,
    severity: Severity,
    #[serde(skip_serializing_if = "Option::is_none")]
    ecosystem: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    package: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    base: Option<&'a str>,
    /// A file fetched from a fixed URL (`ADD URL`, `curl -o`).
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    locked: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    latest: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
    /// The definition line the finding is about (`file:line`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    at: Option<&'a str>,
}

impl<'a> JsonFinding<'a> {
    fn of(image: &str, f: &'a Finding) -> Self {
        let package = matches!(
            f.ecosystem,
            Ecosystem::Pip | Ecosystem::Conda | Ecosystem::Apt | Ecosystem::Rpm | Ecosystem::Apk
        );
        JsonFinding {
            id: f.id(image, None),
            kind: f.kind,
            severity: f.severity(),
            ecosystem: package.then(|| f.ecosystem.as_str()),
            package: package.then_some(f.name.as_str()),
            channel: f.channel.as_deref(),
            base: (f.ecosystem == Ecosystem::Base).then_some(f.name.as_str()),
            url: matches!(f.ecosystem, Ecosystem::Url | Ecosystem::Git).then_some(f.name.as_str()),
            locked: f.expected.as_deref(),
            latest: f.found.as_deref(),
            detail: f.detail.as_deref(),
            at: f.step.as_deref(),
        }
    }
}

//! Rendering verify's [`Report`]: a printer per format for the shared
//! [`Render`] trait. The printers return text; `cli` writes it.

use std::fmt::Write as _;

use super::REPORT_VERSION;
use super::SifReport;
use super::finding::PlatformCheck;
use super::finding::{Ecosystem, Finding, FindingKind, ImageReport, Render, Report};
use crate::image::DefinitionCheck;

/// Text for people: one line per problem, grouped by image, platform and
/// lock step, saying what the lock expected and what the image has; one
/// line per clean image; a hint to re-run freeze for stale locks.
pub struct PrintHuman;

/// JSON, schema version [`REPORT_VERSION`]:
///
/// ```text
/// { "version": 1, "clean": bool,
///   "images": [ { "image", "definition", "lock", "reference"?,
///     "stale"?: [ { "kind": "missing-lock" | "input-hash" | "steps-changed"
///                   | "base-changed" | "stages-changed" | "parent-changed"
///                   | "git-missing" | "hand-edited", …fields } ],
///     "platforms"?: [ { "platform", "config",
///        "checked": { "base", "conda", "pip", "not_locked", "copied"? },
///        "findings": [ { "kind": "base-mismatch" | "missing" | "version-differs"
///                        | "build-differs" | "hash-differs"
///                        | "wheel-tag-incompatible" | "not-locked" | "copy-differs",
///                        "ecosystem": "base" | "conda" | "pip", "name",
///                        "expected", "found", "step", "location" } ],
///        "notes"?: [string] } ],
///     "sif"?: { "sha256", "id", "kind": "native" | "oci", "arch"?,
///               "signatures": [ { "object", "hash", "fingerprint"?, "signs" } ],
///               "definition": "same" | "same-but-whitespace" | "differs" | "absent",
///               "signed": bool } } ] }
/// ```
pub struct PrintJson;

/// Markdown for a job summary or a pull-request comment: a line for the
/// run, then a table of problems per image (`|` escaped in every cell).
pub struct PrintMarkdown;

impl Render for PrintHuman {
    fn render(&self, report: &Report) -> String {
        let mut out = String::new();
        for image in &report.images {
            human_image(&mut out, image);
        }
        let dirty = report.images.iter().filter(|i| !i.is_clean()).count();
        let n = report.images.len();
        if dirty > 0 {
            let problems: usize = report.images.iter().map(ImageReport::problems).sum();
            let _ = writeln!(
                out,
                "{problems} problem{} in {dirty} of {n} image{}",
                plural(problems),
                plural(n)
            );
        }
        out
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn human_image(out: &mut String, image: &ImageReport) {
    let name = &image.image;
    let coverage = |out: &mut String| {
        if let Some(c) = &image.coverage {
            let _ = writeln!(out, "{name}: coverage: {}", c.line());
        }
    };
    if image.reference.is_none() && image.stale.is_empty() {
        let _ = writeln!(out, "{name}: the lock is current");
        coverage(out);
        return;
    }
    for s in &image.stale {
        let _ = writeln!(out, "{name}: {}", s.describe());
    }
    if !image.stale.is_empty() {
        let _ = writeln!(
            out,
            "hint: re-run `imagelock freeze {}` to update `{}`",
            image.definition, image.lock
        );
    }
    if let Some(sif) = &image.sif {
        human_sif(out, image, sif);
    }
    for p in &image.platforms {
        for note in &p.notes {
            let _ = writeln!(out, "{name} {}: note: {note}", p.platform);
        }
        if p.findings.is_empty() {
            let _ = writeln!(
                out,
                "{name} {}: matches its lock ({})",
                p.platform,
                checked_summary(p)
            );
            continue;
        }
        for f in &p.findings {
            let _ = writeln!(
                out,
                "{name} {}  {}  {}",
                p.platform,
                f.ecosystem.as_str(),
                describe(f)
            );
        }
    }
    // A match covers only what the lock pins: never say it without this.
    coverage(out);
}

fn human_sif(out: &mut String, image: &ImageReport, sif: &SifReport) {
    let name = &image.image;
    let s = &sif.summary;
    let _ = writeln!(out, "{name}: sif {} ({} image)", s.sha256, s.kind);
    let definition = match sif.definition {
        DefinitionCheck::Same => format!("the same as `{}`", image.definition),
        DefinitionCheck::SameButWhitespace => {
            format!("the same as `{}` but for whitespace", image.definition)
        }
        DefinitionCheck::Differs => format!(
            "differs from `{}`: the image was built from another definition",
            image.definition
        ),
        DefinitionCheck::Absent => "not in the image (no Def.FILE object)".into(),
    };
    let _ = writeln!(out, "{name}: sif definition {definition}");
    if s.signatures.is_empty() {
        let _ = writeln!(out, "{name}: sif unsigned");
    }
    for sig in &s.signatures {
        let _ = writeln!(
            out,
            "{name}: sif signed ({}, {}) by {}",
            sig.hash,
            sig.signs,
            sig.fingerprint.as_deref().unwrap_or("an unrecorded key")
        );
    }
}

fn checked_summary(p: &PlatformCheck) -> String {
    let c = &p.checked;
    let mut parts = Vec::new();
    if c.base {
        parts.push("base".to_string());
    }
    parts.push(format!("{} conda", c.conda));
    if c.apt > 0 || c.rpm > 0 || c.apk > 0 {
        parts.push(format!("{} pip", c.pip));
        if c.apt > 0 {
            parts.push(format!("{} apt", c.apt));
        }
        if c.rpm > 0 {
            parts.push(format!("{} rpm", c.rpm));
        }
        if c.apk > 0 {
            parts.push(format!("{} apk", c.apk));
        }
        let last = parts.pop().unwrap_or_default();
        let n = c.apt.max(c.rpm).max(c.apk);
        parts.push(format!("{last} package{}", plural(n)));
    } else {
        parts.push(format!("{} pip package{}", c.pip, plural(c.pip)));
    }
    if c.copied > 0 {
        parts.push(format!("{} copied file{}", c.copied, plural(c.copied)));
    }
    parts.join(", ")
}

/// One finding as a sentence: what the lock has, what the image has.
pub fn describe(f: &Finding) -> String {
    let step = f
        .step
        .as_ref()
        .map(|s| format!(" (step {s})"))
        .unwrap_or_default();
    let expected = f.expected.as_deref().unwrap_or("nothing");
    let found = f.found.as_deref().unwrap_or("none");
    let at = f
        .location
        .as_ref()
        .map(|l| format!(" in {l}"))
        .unwrap_or_default();
    match f.kind {
        FindingKind::BaseMismatch => format!(
            "{}: not built on the locked base: lock has {expected}, image has {found}",
            f.name
        ),
        FindingKind::Missing => format!(
            "{}: lock has {expected}{step}, image has {}",
            f.name,
            f.found.as_deref().unwrap_or("none")
        ),
        FindingKind::VersionDiffers => {
            format!(
                "{}: lock has {expected}{step}, image has {found}{at}",
                f.name
            )
        }
        FindingKind::SourceDiffers => format!(
            "{}: lock has {expected}{step}, image was installed from {found}{at}",
            f.name
        ),
        FindingKind::BuildDiffers => format!(
            "{}: lock has build {expected}{step}, image has build {found}{at}",
            f.name
        ),
        FindingKind::HashDiffers => format!(
            "{}: lock has {expected}{step}, image's record has {found}{at}",
            f.name
        ),
        FindingKind::WheelTagIncompatible => format!(
            "{}: lock has a wheel for {expected}{step}, image has one for {found}{at}",
            f.name
        ),
        FindingKind::CopyDiffers => format!(
            "{}: `COPY --from` (step {}) copied {expected}, image has {found}",
            f.name,
            f.step.as_deref().unwrap_or("?")
        ),
        FindingKind::NotLocked => {
            let what = match (f.ecosystem, &f.detail) {
                (_, Some(d)) => d.as_str(),
                (Ecosystem::Conda, None) => "installed by conda",
                (Ecosystem::Apt, None) => "installed by dpkg",
                (Ecosystem::Rpm, None) => "installed by rpm",
                (Ecosystem::Apk, None) => "installed by apk",
                (_, None) => "installed by pip",
            };
            format!(
                "{}: not in the lock nor in the base, image has {found}{at} ({what})",
                f.name
            )
        }
        // What drift finds: the kind, and what it says.
        other => {
            let mut line = format!("{}: {}", f.name, other.as_str());
            if let Some(d) = &f.detail {
                line.push_str(": ");
                line.push_str(d);
            }
            line
        }
    }
}

/// Text for one cell of a markdown table: `|` escaped, lines joined.
pub fn md_cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', "<br>")
}

impl Render for PrintMarkdown {
    fn render(&self, report: &Report) -> String {
        let n = report.images.len();
        let dirty = report.images.iter().filter(|i| !i.is_clean()).count();
        let problems: usize = report.images.iter().map(ImageReport::problems).sum();
        let mut out = if dirty == 0 {
            format!("**imagelock verify**: {n} image{} clean\n", plural(n))
        } else {
            format!(
                "**imagelock verify**: {problems} problem{} in {dirty} of {n} image{}\n",
                plural(problems),
                plural(n)
            )
        };
        for image in &report.images {
            let _ = write!(out, "\n### {}\n\n", md_cell(&image.image));
            if image.is_clean() {
                let what = if image.reference.is_some() {
                    "matches its lock"
                } else {
                    "the lock is current"
                };
                let _ = writeln!(out, "✅ {what}");
                markdown_notes(&mut out, image);
                continue;
            }
            out.push_str("| platform | kind | what | where |\n|---|---|---|---|\n");
            for s in &image.stale {
                let _ = writeln!(
                    out,
                    "| | stale | {} | `{}` |",
                    md_cell(&s.describe()),
                    md_cell(&image.lock)
                );
            }
            if image.sif.as_ref().is_some_and(SifReport::is_problem) {
                let _ = writeln!(
                    out,
                    "| | sif-definition-differs | the SIF was built from another definition | `{}` |",
                    md_cell(&image.definition)
                );
            }
            for p in &image.platforms {
                for f in &p.findings {
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} {} | {} |",
                        md_cell(&p.platform),
                        f.kind.as_str(),
                        f.ecosystem.as_str(),
                        md_cell(&describe(f)),
                        f.step
                            .as_deref()
                            .map(|s| format!("`{}`", md_cell(s)))
                            .unwrap_or_default()
                    );
                }
            }
            markdown_notes(&mut out, image);
        }
        out
    }
}

/// What was not checked, under an image's result: a match is never shown
/// without it.
fn markdown_notes(out: &mut String, image: &ImageReport) {
    let mut first = true;
    for p in &image.platforms {
        for note in &p.notes {
            if first {
                out.push('\n');
                first = false;
            }
            let _ = writeln!(out, "- note ({}): {}", md_cell(&p.platform), md_cell(note));
        }
    }
}

impl Render for PrintJson {
    fn render(&self, report: &Report) -> String {
        let value = serde_json::json!({
            "version": REPORT_VERSION,
            "clean": report.is_clean(),
            "images": report.images,
        });
        let mut s = serde_json::to_string_pretty(&value).unwrap_or_default();
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::finding::Checked;

    fn sample() -> Report {
        Report {
            images: vec![ImageReport {
                image: "driver".into(),
                definition: "driver/Dockerfile".into(),
                lock: "lockfiles/driver.lock".into(),
                reference: Some("oci:build/driver".into()),
                stale: vec![],
                platforms: vec![PlatformCheck {
                    platform: "linux/amd64".into(),
                    config: "sha256:00".into(),
                    checked: Checked {
                        base: true,
                        conda: 0,
                        pip: 2,
                        apt: 0,
                        rpm: 0,
                        apk: 0,
                        not_locked: true,
                        copied: 0,
                    },
                    findings: vec![Finding {
                        kind: FindingKind::VersionDiffers,
                        ecosystem: Ecosystem::Pip,
                        name: "numpy".into(),
                        expected: Some("2.3.4".into()),
                        found: Some("2.3.3".into()),
                        step: Some("driver/Dockerfile:12".into()),
                        location: None,
                        channel: None,
                        detail: None,
                    }],
                    notes: vec![],
                }],
                sif: None,
                coverage: None,
                findings: vec![],
                elapsed: None,
                root: None,
            }],
        }
    }

    #[test]
    fn markdown_escapes_pipes_in_cells() {
        let mut report = sample();
        report.images[0].platforms[0].findings[0].found = Some("2.3.3|evil".into());
        let md = PrintMarkdown.render(&report);
        assert!(md.contains("image has 2.3.3\\|evil"), "{md}");
        let row = md.lines().find(|l| l.contains("numpy")).unwrap();
        // Five cell borders: the escaped pipe is not one.
        assert_eq!(
            row.matches('|').count() - row.matches("\\|").count(),
            5,
            "{row}"
        );
    }

    #[test]
    fn human_lines_say_what_the_lock_and_the_image_have() {
        insta::assert_snapshot!(PrintHuman.render(&sample()), @r"
        driver linux/amd64  pip  numpy: lock has 2.3.4 (step driver/Dockerfile:12), image has 2.3.3
        1 problem in 1 of 1 image
        ");
    }
}

//! Writing a verify or drift report in every format asked for: `--format`
//! to stdout, and each `--output FORMAT=PATH` to its file, from one run.
//! When the run ends in trouble (exit 2), the JUnit and SARIF reports are
//! still written, saying why, so CI shows the error where it shows results.

use std::path::{Path, PathBuf};

use crate::cli::{OutputFormat, Printer};
use crate::verify::{JunitFlavour, JunitRun, Render, Report};

/// Which command's report: the formats it has and how they render.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportOf {
    Verify,
    Drift,
}

impl ReportOf {
    fn name(self) -> &'static str {
        match self {
            ReportOf::Verify => "verify",
            ReportOf::Drift => "drift",
        }
    }

    fn junit(self) -> JunitRun {
        match self {
            ReportOf::Verify => JunitRun::Verify,
            ReportOf::Drift => JunitRun::Drift,
        }
    }

    fn renderer(self, format: OutputFormat) -> Option<Box<dyn Render>> {
        use crate::drift::report as drift;
        use crate::verify;
        let junit = |flavour| -> Box<dyn Render> {
            Box::new(verify::PrintJunit {
                run: self.junit(),
                flavour,
            })
        };
        Some(match (self, format) {
            (_, OutputFormat::Junit) => junit(JunitFlavour::Common),
            (_, OutputFormat::JunitStrict) => junit(JunitFlavour::Strict),
            (_, OutputFormat::Sarif) => Box::new(verify::PrintSarif),
            (ReportOf::Verify, OutputFormat::Human) => Box::new(verify::PrintHuman),
            (ReportOf::Verify, OutputFormat::Json) => Box::new(verify::PrintJson),
            (ReportOf::Verify, OutputFormat::Markdown) => Box::new(verify::PrintMarkdown),
            (ReportOf::Drift, OutputFormat::Human) => Box::new(drift::Table),
            (ReportOf::Drift, OutputFormat::Json) => Box::new(drift::Json),
            (ReportOf::Drift, OutputFormat::Markdown) => Box::new(drift::Markdown),
            (_, OutputFormat::Dot) => return None,
        })
    }
}

/// Where a report goes: stdout in one format, files in others.
pub struct Outputs {
    of: ReportOf,
    stdout: OutputFormat,
    files: Vec<(OutputFormat, PathBuf)>,
}

impl Outputs {
    /// Checks every format before any work is done.
    pub fn new(
        of: ReportOf,
        stdout: OutputFormat,
        files: &[(OutputFormat, PathBuf)],
    ) -> anyhow::Result<Outputs> {
        for format in std::iter::once(stdout).chain(files.iter().map(|(f, _)| *f)) {
            if of.renderer(format).is_none() {
                anyhow::bail!(
                    "`imagelock {}` cannot write `{}`\nhint: use human, json, markdown, junit, junit-strict or sarif",
                    of.name(),
                    format.name()
                );
            }
        }
        Ok(Outputs {
            of,
            stdout,
            files: files.to_vec(),
        })
    }

    /// Writes the report in every format asked for.
    pub fn write(&self, report: &Report, printer: &Printer) -> anyhow::Result<()> {
        for (format, path) in &self.files {
            if let Some(r) = self.of.renderer(*format) {
                write_file(path, &r.render(report))?;
            }
        }
        if let Some(r) = self.of.renderer(self.stdout) {
            printer.data(&r.render(report))?;
        }
        Ok(())
    }

    /// After trouble: the JUnit and SARIF reports say why. Files that
    /// cannot be written are warned about; the error itself is the
    /// command's.
    pub fn write_error(&self, err: &anyhow::Error, printer: &Printer) {
        let message = crate::config::redact::redact_text(&format!("{err:#}")).to_string();
        let text = |format: OutputFormat| -> Option<String> {
            match format {
                OutputFormat::Junit => Some(crate::verify::junit_error(
                    self.of.junit(),
                    JunitFlavour::Common,
                    &message,
                )),
                OutputFormat::JunitStrict => Some(crate::verify::junit_error(
                    self.of.junit(),
                    JunitFlavour::Strict,
                    &message,
                )),
                OutputFormat::Sarif => Some(crate::verify::sarif_error(&message)),
                _ => None,
            }
        };
        for (format, path) in &self.files {
            if let Some(doc) = text(*format)
                && let Err(e) = write_file(path, &doc)
            {
                printer.warn(&format!("{e:#}"));
            }
        }
        if let Some(doc) = text(self.stdout) {
            let _ = printer.data(&doc);
        }
    }
}

fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).map_err(|e| {
        anyhow::anyhow!(
            "cannot write the report `{}`: {e}",
            crate::cli::output::display_path(path)
        )
    })
}

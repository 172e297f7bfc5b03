//! The command line: clap definitions, dispatch, printing.
//!
//! Only this module prints. Errors from the library are rendered here once,
//! with their location and hint.

mod args;
mod changes;
mod diagnostic;
mod drift;
mod export;
mod freeze;
mod graph;
mod images;
pub mod man;
pub(crate) mod output;
mod plan;
pub(crate) mod reports;
mod rewrite;
mod update;
mod verify;

use std::process::ExitCode;

use std::path::PathBuf;

use clap::{CommandFactory, Parser};

use crate::config::Config;

pub use args::{ColorChoice, Command, GlobalOpts, Opts, OutputFormat};
pub use output::Printer;

/// How a command ended, mapped to the exit code like `diff`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0: clean.
    Clean,
    /// Exit 1: findings (mismatch, drift, not pinned).
    Findings,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let opts = match Opts::try_parse() {
        Ok(opts) => opts,
        Err(err) => {
            // Help and version go to stdout with exit 0; usage errors exit 2.
            let code = if err.use_stderr() { 2 } else { 0 };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    let printer = Printer::new(&opts.global);
    match run(&opts, &printer) {
        Ok(Outcome::Clean) => ExitCode::SUCCESS,
        Ok(Outcome::Findings) => ExitCode::from(1),
        Err(err) => {
            printer.error(&err);
            ExitCode::from(2)
        }
    }
}

/// Runs one parsed command line.
pub fn run(opts: &Opts, printer: &Printer) -> anyhow::Result<Outcome> {
    refuse_format(&opts.command, opts.global.format)?;
    match &opts.command {
        Command::Completions { shell } => {
            let mut cmd = Opts::command();
            let mut out = Vec::new();
            clap_complete::generate(*shell, &mut cmd, "imagelock", &mut out);
            printer.data_bytes(&out)?;
            Ok(Outcome::Clean)
        }
        Command::Man(args) => {
            match &args.dir {
                Some(dir) => {
                    for path in man::write_pages(dir)? {
                        printer.status(&format!("wrote {}", output::display_path(&path)));
                    }
                }
                None => {
                    for (_, page) in man::pages()? {
                        printer.data_bytes(&page)?;
                    }
                }
            }
            Ok(Outcome::Clean)
        }
        Command::Drift(args) => drift::run(opts, args, printer),
        Command::Export(args) => export::run(opts, args, printer),
        Command::Freeze(args) => freeze::run(opts, args, printer),
        Command::Graph(args) => graph::run(&opts.global, args, printer),
        Command::Plan(args) => plan::run(&opts.global, args, printer),
        Command::Rewrite(args) => rewrite::run(opts, args, printer),
        Command::Update(args) => update::run(opts, args, printer),
        Command::Verify(args) => verify::run(opts, args, printer),
    }
}

/// Commands that print only one kind of thing refuse `--format` for any
/// other, rather than ignoring it (the others check their own formats).
fn refuse_format(command: &Command, format: OutputFormat) -> anyhow::Result<()> {
    let what = match command {
        Command::Rewrite(_) => "prints diffs and status lines only",
        Command::Export(_) => "writes what `--to` names",
        Command::Completions { .. } => "prints a shell script",
        Command::Man(_) => "prints roff",
        _ => return Ok(()),
    };
    if format != OutputFormat::Human {
        anyhow::bail!(
            "`imagelock {}` has no `{}` output: it {what}\nhint: leave out `--format`",
            command.name(),
            format.name()
        );
    }
    Ok(())
}

/// The configuration for a command: `--config`, else `imagelock.toml` found
/// from the current directory upward when no paths are given, else
/// zero-config over the given paths.
pub fn load_config(global: &GlobalOpts, paths: &[PathBuf]) -> anyhow::Result<Config> {
    if let Some(path) = &global.config {
        return Ok(Config::load(path)?);
    }
    if paths.is_empty() {
        let cwd = std::env::current_dir()?;
        return match Config::discover(&cwd) {
            Some(path) => Ok(Config::load(&path)?),
            None => anyhow::bail!(
                "no `imagelock.toml` here or in a parent directory, and no paths given\nhint: name definition files (`imagelock plan Dockerfile`) or pass `--config FILE`"
            ),
        };
    }
    Ok(Config::zero(paths))
}

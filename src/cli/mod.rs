//! The command line: clap definitions, dispatch, printing.
//!
//! Only this module prints. Errors from the library are rendered here once,
//! with their location and hint.

mod args;
mod diagnostic;
mod drift;
mod export;
mod freeze;
mod graph;
mod images;
pub(crate) mod output;
mod plan;
mod rewrite;
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
    match &opts.command {
        Command::Completions { shell } => {
            let mut cmd = Opts::command();
            let mut out = Vec::new();
            clap_complete::generate(*shell, &mut cmd, "imagelock", &mut out);
            printer.data_bytes(&out)?;
            Ok(Outcome::Clean)
        }
        Command::Man => {
            let mut out = Vec::new();
            clap_mangen::Man::new(Opts::command()).render(&mut out)?;
            for sub in Opts::command().get_subcommands() {
                if sub.is_hide_set() {
                    continue;
                }
                let name = format!("imagelock-{}", sub.get_name());
                clap_mangen::Man::new(sub.clone().name(name).version(env!("CARGO_PKG_VERSION")))
                    .render(&mut out)?;
            }
            printer.data_bytes(&out)?;
            Ok(Outcome::Clean)
        }
        Command::Drift(args) => drift::run(opts, args, printer),
        Command::Export(args) => export::run(opts, args, printer),
        Command::Freeze(args) => freeze::run(opts, args, printer),
        Command::Graph(args) => graph::run(&opts.global, args, printer),
        Command::Plan(args) => plan::run(&opts.global, args, printer),
        Command::Rewrite(args) => rewrite::run(opts, args, printer),
        Command::Verify(args) => verify::run(opts, args, printer),
    }
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

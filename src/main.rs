//! The `imagelock` binary: parse arguments, run, map the outcome to an exit code.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    imagelock::cli::main()
}

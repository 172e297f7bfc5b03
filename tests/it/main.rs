//! The integration test binary: runs the real `imagelock` executable and the
//! library against servers the tests start on 127.0.0.1.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod common;

mod accounting;
mod apptainer;
mod apt;
mod apt_build;
mod apt_drift;
mod build;
mod cli;
mod conda;
mod config;
mod coverage;
mod distribution;
mod drift;
mod freeze;
mod graph;
mod image;
mod lockfiles;
mod network;
mod plan;
mod progress;
mod pypi;
mod registry;
mod reports;
mod rewrite;
mod rpm;
mod security;
mod settings;
mod sif;
mod soak;
mod update;
mod verify;

//! The integration test binary: runs the real `imagelock` executable and the
//! library against servers the tests start on 127.0.0.1.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod common;

mod apptainer;
mod apt;
mod build;
mod cli;
mod conda;
mod config;
mod distribution;
mod drift;
mod freeze;
mod graph;
mod image;
mod lockfiles;
mod network;
mod plan;
mod pypi;
mod registry;
mod rewrite;
mod security;
mod sif;
mod soak;
mod verify;

//! The integration test binary: runs the real `imagelock` executable and the
//! library against servers the tests start on 127.0.0.1.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod common;

mod accounting;
mod agents;
mod apk;
mod apptainer;
mod apt;
mod apt_build;
mod apt_drift;
mod build;
mod cli;
mod conda;
mod config;
mod copy_from;
mod coverage;
mod distribution;
mod drift;
mod export;
mod freeze;
mod git;
mod graph;
mod image;
mod life;
mod lockfiles;
mod network;
mod pip_build;
mod plan;
mod progress;
mod pypi;
mod registry;
mod reports;
mod requests;
mod rewrite;
mod rpm;
mod rpm_drift;
mod rpm_modules;
mod security;
mod settings;
mod sif;
mod sif_agents;
mod soak;
mod storage;
mod update;
mod verify;

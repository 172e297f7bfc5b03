//! Reading image definitions: Dockerfiles and Apptainer/Singularity
//! definition files, and the install steps their commands contain.
//!
//! Everything here is synchronous and does no I/O beyond reading the files
//! it is given. Every value keeps the byte [`Span`] it came from so that
//! `rewrite` can change exactly those bytes and nothing else.

pub mod agents;
pub mod apptainer;
pub mod apt_files;
pub mod coverage;
pub mod dockerfile;
pub mod environment;
pub mod expanded;
pub mod graph;
pub mod inputs;
pub mod load;
pub mod model;
pub mod pattern;
pub mod requirements;
pub mod shell;
pub mod steps;

pub use crate::diagnostic::Span;
pub use model::*;

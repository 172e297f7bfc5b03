//! imagelock makes container images reproducible.
//!
//! Data flows one way through the modules:
//! [`source`] reads definitions, [`resolve`] and [`solve`] pin what they leave
//! floating, [`lock`] models the result, and [`rewrite`], [`verify`] and
//! [`drift`] consume it. [`cli`] sits on top; nothing imports it.
#![deny(unsafe_code)]

#[allow(clippy::print_stdout, clippy::print_stderr)]
pub mod cli;
pub mod config;
pub mod diagnostic;
pub mod drift;
pub mod freeze;
pub mod image;
pub mod lock;
pub mod oci;
pub mod resolve;
pub mod rewrite;
pub mod solve;
pub mod source;
pub mod verify;

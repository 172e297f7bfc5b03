//! The integration test binary.

mod common;
mod registry;

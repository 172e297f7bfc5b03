//! The environment.yml parser: no panic on any input, and every error that
//! points into the file points inside it.
#![no_main]

use std::path::Path;

use imagelock::source::environment::{EnvironmentFile, ParseEnvironmentError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(ParseEnvironmentError::Invalid(d)) =
        EnvironmentFile::parse(Path::new("environment.yml"), text)
    {
        assert!(text.get(d.span.start..d.span.end).is_some());
    }
});

//! The Dockerfile parser never panics, and its lossless layer prints every
//! input back byte for byte.
#![no_main]

use std::collections::BTreeMap;
use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(syntax) = imagelock::source::dockerfile::parse_syntax(text) {
        assert_eq!(syntax.print(text), text);
    }
    let _ = imagelock::source::dockerfile::parse(Path::new("Dockerfile"), text, &BTreeMap::new());
});

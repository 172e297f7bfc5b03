//! Apptainer definition parser: no panic on any input, and the lossless
//! layer gives every UTF-8 input back byte for byte.
#![no_main]

use std::collections::BTreeMap;
use std::path::Path;

use imagelock::source::apptainer::{DefFile, parse_bytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_bytes(Path::new("fuzz.def"), data, &BTreeMap::new());
    if let Ok(text) = std::str::from_utf8(data) {
        assert_eq!(DefFile::parse(text).print(text), text);
    }
});

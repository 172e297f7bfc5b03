//! The requirements-file parser: no panic on any input, and every error
//! points inside the file.
#![no_main]

use std::path::Path;

use imagelock::source::requirements::RequirementsFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let env = |name: &str| (name == "V").then(|| "1.0".to_string());
    match RequirementsFile::parse(Path::new("requirements.txt"), text, &env) {
        Ok(file) => {
            for _ in file.requirements() {}
        }
        Err(e) => {
            assert!(e.0.span.end <= text.len());
            assert!(text.get(e.0.span.start..e.0.span.end).is_some());
        }
    }
});

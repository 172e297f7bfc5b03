//! The lockfile reader: no panic on any input; a lock it accepts writes
//! back to TOML that it reads again.
#![no_main]

use std::path::Path;

use imagelock::lock::LockedImage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let path = Path::new("lockfiles/fuzz.lock");
    if let Ok(lock) = LockedImage::from_toml(path, text) {
        let written = lock.to_toml();
        LockedImage::from_toml(path, &written).expect("a written lock reads back");
    }
});

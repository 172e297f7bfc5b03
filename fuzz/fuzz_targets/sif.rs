//! SIF reader: no panic and no allocation beyond the input's size on any
//! bytes; what parses reads its objects within the file.
#![no_main]

use std::io::Cursor;

use imagelock::image::sif::SifFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let len = data.len() as u64;
    if let Ok(mut f) = SifFile::read(Cursor::new(data)) {
        for d in f.objects().to_vec() {
            assert!(d.offset + d.size <= len);
            if let Ok(bytes) = f.read_object(&d, 1 << 20) {
                assert_eq!(bytes.len() as u64, d.size);
            }
        }
        let _ = f.digests();
    }
});

//! Shell splitter, control flow, expansion and install-command recognition:
//! no panic on any input, bounded work, and every span it returns (specs
//! and unresolved parts) lies inside the file on character boundaries.
#![no_main]

use imagelock::source::shell::Script;
use imagelock::source::steps::find_install_commands;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let script = Script::from_file_piece(text, 0);
    let lookup = |name: &str| (name == "V").then(|| "1.0 2.0".to_string());
    match find_install_commands(&script, &lookup) {
        Ok(cmds) => {
            for c in cmds {
                assert!(text.get(c.span.start..c.span.end).is_some());
                for s in &c.specs {
                    assert!(text.get(s.span.start..s.span.end).is_some());
                }
                for u in &c.unresolved {
                    assert!(text.get(u.span.start..u.span.end).is_some());
                }
            }
        }
        Err(e) => assert!(e.span.end <= text.len()),
    }
});

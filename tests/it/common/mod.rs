//! Shared test helpers.

pub mod registry;

/// Whether an external tool is on `PATH`. When it is missing, tests fail
/// under `CI=true` (with what to install) and are skipped otherwise.
pub fn require_tool(tool: &str, install: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join(tool).is_file()));
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "`{tool}` is required for this test; install it with `{install}`"
        );
        eprintln!("skipping: `{tool}` is not installed ({install})");
    }
    found
}

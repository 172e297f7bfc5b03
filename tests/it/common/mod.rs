//! Shared test context: the binary under test, servers, filters.
#![allow(dead_code)] // each test module uses a different part

pub mod buildah;
pub mod http;
pub mod pyindex;
pub mod registry;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A command running the `imagelock` binary built for these tests, with a
/// clean environment for things that change its behaviour.
pub fn imagelock() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_imagelock"));
    cmd.env_remove("IMAGELOCK_CONFIG")
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100");
    cmd
}

/// Runs a command and returns (exit code, stdout, stderr).
pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("the command runs");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// A fresh temporary directory, removed when dropped.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

/// Whether a required external tool exists. Under `CI=true` a missing tool
/// fails the test with what to install; elsewhere the caller may skip.
pub fn require_tool(tool: &str, install: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()));
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "`{tool}` is required under CI: {install}"
        );
        eprintln!("skipping: `{tool}` is not installed ({install})");
    }
    found
}

/// Path of a fixture, from the repository root.
pub fn fixture(rel: &str) -> PathBuf {
    repo_root().join("fixtures").join(rel)
}

/// Copies a directory tree (files and directories only).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A CPython target on linux/amd64 with glibc 2.28, for resolver tests.
pub fn cpython_target(python: &str) -> std::sync::Arc<imagelock::solve::python::TargetEnv> {
    std::sync::Arc::new(
        imagelock::solve::python::TargetEnv::cpython(
            Some(python),
            "linux/amd64",
            Some(imagelock::solve::python::Libc::glibc("2.28").unwrap()),
        )
        .unwrap(),
    )
}

/// The files of a fixture folder, sorted (each must fail the same way).
pub fn sorted_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

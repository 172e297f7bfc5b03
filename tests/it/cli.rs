//! The command surface: help, usage errors, completions, man pages.

use crate::common::{http, imagelock, run, tempdir};

const COMMANDS: &[&str] = &[
    "plan",
    "freeze",
    "rewrite",
    "verify",
    "drift",
    "graph",
    "export",
    "completions",
    "man",
];

#[test]
fn top_level_help() {
    let (code, out, err) = run(imagelock().arg("--help"));
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!(out);
}

#[test]
fn every_command_has_help_with_examples() {
    for command in COMMANDS {
        let (code, out, err) = run(imagelock().args([command, "--help"]));
        assert_eq!(code, 0, "{command}: {err}");
        assert!(
            out.contains("Examples:"),
            "`{command} --help` shows examples"
        );
        insta::assert_snapshot!(format!("help_{command}"), out);
    }
}

#[test]
fn usage_errors_exit_2() {
    let (code, _, err) = run(imagelock().arg("frobnicate"));
    assert_eq!(code, 2);
    assert!(err.contains("unrecognized subcommand"), "{err}");
    let (code, _, _) = run(imagelock().args(["plan", "--format", "yaml"]));
    assert_eq!(code, 2);
}

#[test]
fn completions_and_man_pages_come_from_the_definitions() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let (code, out, err) = run(imagelock().args(["completions", shell]));
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(
            out.contains("freeze") && out.contains("update-base"),
            "{shell}"
        );
    }
    let (code, out, _) = run(imagelock().arg("man"));
    assert_eq!(code, 0);
    assert!(out.contains(".TH imagelock 1"), "man page header");
    assert!(out.contains(".TH imagelock-verify"), "a page per command");
}

#[test]
fn static_server_serves_etags_and_ranges() {
    let dir = tempdir();
    std::fs::create_dir_all(dir.path().join("simple/six")).unwrap();
    std::fs::write(
        dir.path().join("simple/six/index.json"),
        b"{\"name\":\"six\"}",
    )
    .unwrap();
    let server = http::StaticServer::start(dir.path());
    let (head, body) = http::raw_get(server.addr, "/simple/six/", "");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.contains("application/vnd.pypi.simple.v1+json"),
        "{head}"
    );
    assert_eq!(body, b"{\"name\":\"six\"}");
    let etag = head
        .lines()
        .find_map(|l| l.strip_prefix("ETag: "))
        .expect("an ETag")
        .to_string();
    let (head, _) = http::raw_get(
        server.addr,
        "/simple/six/",
        &format!("If-None-Match: {etag}\r\n"),
    );
    assert!(head.starts_with("HTTP/1.1 304"), "{head}");
    let (head, body) = http::raw_get(server.addr, "/simple/six/index.json", "Range: bytes=-6\r\n");
    assert!(head.starts_with("HTTP/1.1 206"), "{head}");
    assert_eq!(body, b"\"six\"}");
    let (head, _) = http::raw_get(server.addr, "/nothing", "");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    assert_eq!(server.seen().len(), 4);
    assert_eq!(server.seen().iter().filter(|s| s.conditional).count(), 1);
}

#[test]
fn export_writes_each_format_from_a_lockfile() {
    let lock = crate::common::fixture("lock/sample.lock");
    let (code, out, err) = run(imagelock()
        .arg("export")
        .arg(&lock)
        .args(["--to", "requirements"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("pandas==1.0 \\\n    --hash=sha256:"), "{out}");
    let (code, out, _) = run(imagelock()
        .arg("export")
        .arg(&lock)
        .args(["--to", "pylock"]));
    assert_eq!(code, 0);
    assert!(out.starts_with("lock-version = \"1.0\""));
    let (code, out, _) = run(imagelock().arg("export").arg(&lock).args(["--to", "sbom"]));
    assert_eq!(code, 0);
    assert!(out.contains("CycloneDX"));
    let (code, out, _) = run(imagelock()
        .arg("export")
        .arg(&lock)
        .args(["--to", "conda-explicit"]));
    assert_eq!(code, 0);
    assert!(out.contains("@EXPLICIT\nhttps://"), "{out}");
    // No conda packages for that platform: trouble, said plainly.
    let (code, _, err) = run(imagelock().arg("export").arg(&lock).args([
        "--to",
        "conda-explicit",
        "--platform",
        "linux/arm64",
    ]));
    assert_eq!(code, 2);
    assert!(err.contains("has no conda packages"), "{err}");
    let (code, _, err) = run(imagelock().arg("export").arg(&lock).args([
        "--to",
        "requirements",
        "--platform",
        "linux/s390x",
    ]));
    assert_eq!(code, 2);
    assert!(err.contains("not locked for `linux/s390x`"), "{err}");
}

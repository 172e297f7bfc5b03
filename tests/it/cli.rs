//! The command surface: help, usage errors, completions, man pages.

use crate::common::{http, imagelock, run, tempdir};

const COMMANDS: &[&str] = &[
    "plan",
    "freeze",
    "rewrite",
    "update",
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
fn man_dir_writes_a_page_per_command_with_the_environment() {
    let dir = tempdir();
    let (code, _, err) = run(imagelock()
        .args(["man", "--dir"])
        .arg(dir.path().join("man1")));
    assert_eq!(code, 0, "{err}");
    let mut names: Vec<String> = std::fs::read_dir(dir.path().join("man1"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut want: Vec<String> = COMMANDS
        .iter()
        .map(|c| format!("imagelock-{c}.1"))
        .collect();
    want.push("imagelock.1".into());
    want.sort();
    assert_eq!(names, want);
    let page = std::fs::read_to_string(dir.path().join("man1/imagelock-verify.1")).unwrap();
    assert!(page.contains(".TH imagelock-verify"), "{page}");
    assert!(page.contains(".SH ENVIRONMENT"), "{page}");

    // Every variable the code reads is in the ENVIRONMENT section.
    let (_, main, _) = run(imagelock().arg("man"));
    let section = &main[main
        .find(".SH ENVIRONMENT")
        .expect("an ENVIRONMENT section")..];
    let read = env_reads(&crate::common::repo_root().join("src"));
    assert!(read.contains("IMAGELOCK_CACHE_DIR"), "{read:?}");
    for var in &read {
        assert!(
            section.contains(&format!("\\fB{var}"))
                || section.contains(&format!(" {var}"))
                || section.contains(&format!("{var},")),
            "`{var}` is read by the code but not in the man page's ENVIRONMENT section"
        );
    }
}

/// The environment variables the code (not its tests) reads: `var_os("X")`,
/// `var("X")` and clap's `env = "X"`, in each file up to its test module.
fn env_reads(dir: &std::path::Path) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(env_reads(&path));
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".rs") || name == "tests.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        for pat in ["var_os(\"", "var(\"", "env = \""] {
            let mut rest = code;
            while let Some(i) = rest.find(pat) {
                rest = &rest[i + pat.len()..];
                let var: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                if !var.is_empty() && rest[var.len()..].starts_with('"') {
                    out.insert(var);
                }
            }
        }
    }
    out
}

#[test]
fn formats_a_command_does_not_have_are_refused() {
    for (args, says) in [
        (&["rewrite", "--format", "json"][..], "has no `json` output"),
        (&["update", "--format", "json"][..], "has no `json` output"),
        (
            &["export", "x", "--to", "sbom", "--format", "json"][..],
            "has no `json` output",
        ),
        (&["man", "--format", "json"][..], "has no `json` output"),
        (&["freeze", "--format", "sarif"][..], "cannot print `sarif`"),
        (&["verify", "--format", "dot"][..], "cannot write `dot`"),
        (
            &["drift", "--output", "dot=x.dot"][..],
            "cannot write `dot`",
        ),
        (&["verify", "--output", "sarif"][..], "is not FORMAT=PATH"),
        (
            &["verify", "--output", "yaml=x"][..],
            "is not an output format",
        ),
    ] {
        let dir = tempdir();
        let (code, out, err) = run(imagelock().current_dir(dir.path()).args(args));
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
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

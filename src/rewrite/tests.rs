use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::*;
use crate::config::Config;
use crate::source::inputs::load_inputs;
use crate::source::load::load_definition;
use crate::source::shell::Script;
use crate::source::steps::find_install_commands;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Until the Dockerfile parser reports install steps itself, find them in
/// `RUN` lines the same way (shell form, no heredocs).
pub(crate) fn fill_steps(def: &mut Definition, text: &str) {
    if def.kind != DefinitionKind::Dockerfile || def.stages.iter().any(|s| !s.steps.is_empty()) {
        return;
    }
    let Ok(syntax) = dockerfile::parse_syntax(text) else {
        return;
    };
    let lines = crate::diagnostic::LineIndex::new(text);
    let mut stage: Option<usize> = None;
    for ins in syntax.instructions() {
        if ins.keyword == "from" {
            stage = Some(stage.map_or(0, |s| s + 1));
            continue;
        }
        let Some(si) = stage else { continue };
        if ins.keyword != "run" || ins.json.is_some() {
            continue;
        }
        let mut script = Script::new();
        for (i, c) in ins.args_text().char_indices() {
            let at = ins.args.start + i;
            script.push(&c.to_string(), ins.line.file_offset(at));
        }
        let Ok(cmds) = find_install_commands(&script, &|_| None) else {
            continue;
        };
        let st = &mut def.stages[si];
        for command in cmds {
            let line = lines.line_col(text, command.span.start).line;
            st.steps.push(InstallStep {
                command,
                instruction: ins.span,
                line,
                env: Vec::new(),
                user: None,
                workdir: None,
            });
        }
    }
}

/// Parses `path` (with steps), loads its inputs from `context`.
fn load(
    path: &Path,
    context: &Path,
    build_args: &BTreeMap<String, String>,
) -> (Definition, Inputs) {
    let mut def = load_definition(path, build_args).expect("definition parses");
    let text = fs_err::read_to_string(path).expect("reads");
    fill_steps(&mut def, &text);
    let inputs = load_inputs(&def, &text, context, build_args).expect("inputs load");
    (def, inputs)
}

/// [`rewrite_image`] with [`fill_steps`] on the rewritten definition too.
pub(crate) fn rewrite(
    def: &Definition,
    inputs: &Inputs,
    lock: &LockedImage,
    context: &Path,
    opts: RewriteOptions,
) -> Result<Rewrite, RewriteError> {
    rewrite_image_with(
        def,
        inputs,
        lock,
        context,
        opts,
        &|kind, path, text, args| {
            let mut d = parse_definition(kind, path, text, args)?;
            fill_steps(&mut d, text);
            Ok(d)
        },
    )
}

fn copy_dir(from: &Path, to: &Path) {
    fs_err::create_dir_all(to).expect("mkdir");
    for entry in fs_err::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs_err::copy(entry.path(), &target).expect("copy");
        }
    }
}

fn update() -> bool {
    std::env::var_os("IMAGELOCK_UPDATE_FIXTURES").is_some()
}

/// Rewrites one example image in a copy of the examples, compares every
/// changed file with `fixtures/rewrite/expected/`, then rewrites again and
/// expects nothing to change.
fn golden(image: &str) -> Vec<String> {
    let examples = repo().join("fixtures/examples");
    let config = Config::load(&examples.join("imagelock.toml")).expect("config");
    let ic = config
        .images
        .iter()
        .find(|i| i.name == image)
        .expect("image configured");
    let rel_dir = ic
        .context
        .strip_prefix(&config.root)
        .expect("context under root")
        .to_path_buf();
    let rel_file = ic.file.strip_prefix(&config.root).expect("file under root");
    let tmp = tempfile::tempdir().expect("tempdir");
    copy_dir(&ic.context, &tmp.path().join(&rel_dir));
    let file = tmp.path().join(rel_file);
    let context = tmp.path().join(&rel_dir);

    let lock_path = repo().join(format!("fixtures/rewrite/locks/{image}.lock"));
    let mut lock = LockedImage::read(&lock_path).expect("lock reads");
    let (def, inputs) = load(&file, &context, &ic.build_args);
    if update() {
        lock.image.input_hash = inputs.hash();
        lock.write(&lock_path).expect("lock writes");
    }
    assert_eq!(
        lock.image.input_hash,
        inputs.hash(),
        "{image}: fixture lock's input hash is out of date (IMAGELOCK_UPDATE_FIXTURES=1)"
    );
    let out = rewrite(&def, &inputs, &lock, &context, RewriteOptions::default()).expect("rewrites");
    assert!(!out.files.is_empty(), "{image}: something to pin");
    let expected_dir = repo().join("fixtures/rewrite/expected").join(image);
    for f in &out.files {
        let rel = f.path.strip_prefix(tmp.path()).expect("inside the copy");
        let name = rel
            .strip_prefix(&rel_dir)
            .unwrap_or(rel)
            .to_string_lossy()
            .replace('\\', "/");
        let expected = expected_dir.join(&name);
        if update() {
            fs_err::create_dir_all(expected.parent().expect("parent")).expect("mkdir");
            fs_err::write(&expected, &f.after).expect("write expected");
        }
        let want = fs_err::read_to_string(&expected).unwrap_or_default();
        assert_eq!(
            f.after,
            want,
            "{image}: {name} differs from {}",
            expected.display()
        );
        crate::lock::write_atomic(&f.path, f.after.as_bytes()).expect("writes");
    }
    // Second run: the rewritten files with the relocked lock change nothing.
    let (def2, inputs2) = load(&file, &context, &ic.build_args);
    assert_eq!(
        inputs2.hash(),
        out.lock.image.input_hash,
        "{image}: relocked hash"
    );
    let again = rewrite(
        &def2,
        &inputs2,
        &out.lock,
        &context,
        RewriteOptions::default(),
    )
    .expect("again");
    assert!(
        again.files.is_empty(),
        "{image}: second rewrite changed {:?}",
        again.files
    );
    assert_eq!(again.lock, out.lock);
    // Same stages and steps after rewriting.
    assert_eq!(def.stages.len(), def2.stages.len());
    for (a, b) in def.stages.iter().zip(&def2.stages) {
        assert_eq!(a.name, b.name);
        assert_eq!(
            a.steps.len(),
            b.steps.len(),
            "{image}: steps of stage {}",
            a.index
        );
    }
    out.warnings
        .iter()
        .map(|w| {
            let rel = w
                .location
                .path
                .strip_prefix(tmp.path())
                .unwrap_or(&w.location.path);
            format!("{}:{}: {}", rel.display(), w.location.line, w.message)
        })
        .collect()
}

#[test]
fn golden_driver() {
    insta::assert_snapshot!(golden("driver").join("\n"), @"");
}

#[test]
fn golden_longqc() {
    insta::assert_snapshot!(golden("longqc").join("\n"), @"");
}

#[test]
fn golden_base_notebook() {
    insta::assert_snapshot!(golden("base-notebook").join("\n"), @"notebook-stack/base-notebook/Dockerfile:3: `python:${PYTHON_VERSION}-slim` cannot be pinned: a variable is not at the end of the reference");
}

#[test]
fn golden_scipy_ml_notebook() {
    insta::assert_snapshot!(golden("scipy-ml-notebook").join("\n"), @"notebook-stack/scipy-ml-notebook/Dockerfile:2: `ghcr.io/example-lab/base-notebook:latest` is built from image `base-notebook` of this repository; it is not pinned");
}

#[test]
fn golden_workbench() {
    insta::assert_snapshot!(golden("workbench").join("\n"), @"");
}

#[test]
fn golden_summation() {
    insta::assert_snapshot!(golden("summation").join("\n"), @"");
}

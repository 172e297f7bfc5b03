use std::collections::BTreeMap;
use std::path::Path;

use super::*;

fn parse_ok(text: &str) -> Definition {
    parse(Path::new("Dockerfile"), text, &BTreeMap::new()).unwrap()
}

fn parse_with(text: &str, args: &[(&str, &str)]) -> Definition {
    let args = args
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    parse(Path::new("Dockerfile"), text, &args).unwrap()
}

fn parse_err(text: &str) -> Diagnostic {
    *parse(Path::new("Dockerfile"), text, &BTreeMap::new())
        .unwrap_err()
        .0
}

fn base(d: &Definition, i: usize) -> (Option<String>, BaseTarget) {
    let b = &d.stages[i].base;
    (b.reference.value.clone(), b.target.clone())
}

#[test]
fn global_args_expand_in_from_and_mark_from_arg() {
    let d = parse_ok("ARG BASE=python:3.11\nARG V\nFROM ${BASE} AS Build\nFROM $BASE-$V\n");
    assert_eq!(base(&d, 0).0.as_deref(), Some("python:3.11"));
    assert_eq!(d.stages[0].base.from_arg.as_deref(), Some("BASE"));
    assert_eq!(d.stages[0].name.as_deref(), Some("Build"));
    assert_eq!(d.stages[1].base.reference.value, None);
    assert_eq!(d.stages[1].base.reference.unresolved, ["V"]);
    assert_eq!(d.stages[1].base.from_arg, None);
    // A build arg overrides the default; the image no longer comes from it.
    let d = parse_with(
        "ARG BASE=python:3.11\nFROM ${BASE}\n",
        &[("BASE", "python:3.12")],
    );
    assert_eq!(base(&d, 0).0.as_deref(), Some("python:3.12"));
    assert_eq!(d.stages[0].base.from_arg, None);
}

#[test]
fn stage_args_need_redeclaring() {
    let d = parse_ok(
        "ARG TAG=3\nFROM alpine\nCOPY --from=img:${TAG} /a /b\nARG TAG\nCOPY --from=img:${TAG} /a /b\n",
    );
    // Builders do not expand the global ARG in the first `--from`; the
    // image its default names is pinned, and the file is told.
    let uses = &d.stages[0].image_uses;
    assert_eq!(uses[0].reference.value.as_deref(), Some("img:3"));
    assert_eq!(uses[1].reference.value.as_deref(), Some("img:3"));
    let warnings = &d.stages[0].warnings;
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].line, 3);
    assert!(
        warnings[0]
            .message
            .contains("declare the ARG again in this stage")
    );
}

#[test]
fn stage_references() {
    let d = parse_ok(
        "FROM golang AS build\nFROM scratch\nCOPY --from=BUILD /a /a\nCOPY --from=0 /b /b\nCOPY --from=nginx:1 /c /c\nFROM build\nRUN --mount=type=bind,from=build,target=/x true\n",
    );
    assert_eq!(base(&d, 1).1, BaseTarget::Scratch);
    assert_eq!(base(&d, 2).1, BaseTarget::Stage { index: 0 });
    let t: Vec<_> = d.stages[1]
        .image_uses
        .iter()
        .map(|u| u.target.clone())
        .collect();
    assert_eq!(
        t,
        [
            BaseTarget::Stage { index: 0 },
            BaseTarget::Stage { index: 0 },
            BaseTarget::Image {
                agent: "docker".into()
            }
        ]
    );
    assert_eq!(d.stages[2].image_uses[0].kind, ImageUseKind::MountFrom);
    assert_eq!(d.stages[1].copies[0].from.as_deref(), Some("BUILD"));
}

#[test]
fn env_forms_and_scoping() {
    let d = parse_ok(
        "FROM a AS one\nENV A=1 B=\"x y\"\nENV C ${A} and $B\nFROM one\nARG P=/opt\nWORKDIR $P\nWORKDIR sub\nUSER ${C}\nCOPY req.txt .\n",
    );
    let copy = &d.stages[1].copies[0];
    assert_eq!(copy.workdir.as_deref(), Some("/opt/sub"));
    assert_eq!(copy.sources, ["req.txt"]);
    assert_eq!(copy.destination, ".");
}

#[test]
fn errors_are_located() {
    let e = parse_err("FROM\n");
    assert_eq!((e.location.line, e.location.column), (1, 1));
    assert!(e.message.contains("needs an image"), "{}", e.message);
    let e = parse_err("FROM a\nFROOM b\n");
    assert_eq!(e.location.line, 2);
    let e = parse_err("RUN x\nFROM a\n");
    assert!(e.message.contains("before the first"), "{}", e.message);
    let e = parse_err("FROM a AS x\nFROM b AS X\n");
    assert!(e.message.contains("duplicate"), "{}", e.message);
    let e = parse_err("");
    assert!(e.message.contains("no `FROM`"), "{}", e.message);
    let e = parse_err("FROM a\nCOPY --from=3 /a /b\n");
    assert!(e.message.contains("no earlier stage"), "{}", e.message);
    let e = parse_err("FROM --plat=x a\n");
    assert!(e.message.contains("--plat"), "{}", e.message);
}

#[test]
fn run_scripts_cover_forms() {
    let text = "FROM a\nRUN pip install \\\n  x\nRUN <<EOF\npip install y\nEOF\nRUN python3 <<EOF\nprint(1)\nEOF\nRUN [\"/bin/sh\", \"-c\", \"pip install z\"]\nRUN [\"pip\", \"install\", \"a b\"]\n";
    let s = parse_syntax(text).unwrap();
    let texts: Vec<Vec<String>> = s
        .instructions()
        .skip(1)
        .map(|i| {
            run_scripts(i)
                .iter()
                .map(|s| s.text().to_string())
                .collect()
        })
        .collect();
    assert_eq!(
        texts,
        [
            vec!["pip install   x".to_string()],
            vec!["pip install y\n".into()],
            vec!["python3 <<EOF".into()],
            vec!["pip install z".into()],
            vec!["pip install 'a b'".into()],
        ]
    );
    // The joined script maps back across the continuation.
    let ins = s.instructions().nth(1).unwrap();
    let script = &run_scripts(ins)[0];
    let x = script.text().find('x').unwrap();
    let span = script.file_span(Span::new(x, x + 1));
    assert_eq!(&text[span.start..span.end], "x");
}

#[test]
fn onbuild_is_recorded_not_run() {
    let d = parse_ok("FROM a\nONBUILD COPY req.txt /r\nonbuild RUN pip install x\n");
    assert_eq!(d.stages[0].onbuild.len(), 2);
    assert!(d.stages[0].copies.is_empty());
    assert_eq!(d.stages[0].onbuild[1].instruction, "RUN");
}

#[test]
fn syntax_directive_is_an_image() {
    let d = parse_ok("# syntax=docker/dockerfile:1.7\nFROM a\n");
    assert_eq!(
        d.syntax.unwrap().value.as_deref(),
        Some("docker/dockerfile:1.7")
    );
}

mod properties {
    use proptest::prelude::*;

    use super::super::syntax::{ItemKind, parse as parse_syntax_only};
    use super::*;

    /// Lines that look like Dockerfile text, with the characters the
    /// parser treats specially and some multi-byte ones.
    fn dockerfile_text() -> impl Strategy<Value = String> {
        let fragment = prop_oneof![
            Just("FROM ".to_string()),
            Just("RUN ".to_string()),
            Just("COPY ".to_string()),
            Just("ARG ".to_string()),
            Just("ENV ".to_string()),
            Just("ONBUILD ".to_string()),
            Just("# escape=`\n".to_string()),
            Just("# syntax=x\n".to_string()),
            Just("<<EOF".to_string()),
            Just("<<-'E'".to_string()),
            Just("\nEOF\n".to_string()),
            Just("\n\tE\n".to_string()),
            Just("--from=a ".to_string()),
            Just("--mount=type=bind,from=x ".to_string()),
            Just(" AS b".to_string()),
            Just("${A:-x}".to_string()),
            Just("[\"a\", \"b\\\"c\"]".to_string()),
            "[a-z0-9 \\t\\n\\\\`#=<>'\"${}:,\\[\\]\\-é😀\\r]{0,12}",
        ];
        prop::collection::vec(fragment, 0..24).prop_map(|v| v.concat())
    }

    fn on_boundary(text: &str, span: Span) -> bool {
        span.start <= span.end
            && span.end <= text.len()
            && text.is_char_boundary(span.start)
            && text.is_char_boundary(span.end)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn parsing_never_panics_and_prints_back(text in dockerfile_text()) {
            let _ = parse(Path::new("Dockerfile"), &text, &BTreeMap::new());
            if let Ok(syntax) = parse_syntax_only(&text) {
                prop_assert_eq!(syntax.print(&text), text.clone());
                let mut at = 0;
                for item in &syntax.items {
                    prop_assert_eq!(item.span.start, at);
                    at = item.span.end;
                    prop_assert!(on_boundary(&text, item.span));
                    if let ItemKind::Instruction(ins) = &item.kind {
                        prop_assert!(on_boundary(&text, ins.span));
                        prop_assert!(on_boundary(&text, ins.keyword_span));
                        for f in &ins.flags {
                            prop_assert!(on_boundary(&text, f.span));
                        }
                        for h in &ins.heredocs {
                            prop_assert!(on_boundary(&text, h.word_span));
                            prop_assert!(on_boundary(&text, h.body_span));
                        }
                    }
                }
                prop_assert_eq!(at, text.len());
            }
        }

        #[test]
        fn arbitrary_text_never_panics(text in any::<String>()) {
            let _ = parse(Path::new("Dockerfile"), &text, &BTreeMap::new());
        }
    }
}

/// A step that reads a platform ARG says so, and reading the file with a
/// platform's build args takes that platform's branch (pytorch/pytorch's
/// `case ${TARGETPLATFORM}` shape).
#[test]
fn platform_args_are_marked_and_read_per_platform() {
    let text = "FROM python:3.11\nARG TARGETPLATFORM\nRUN case ${TARGETPLATFORM} in \"linux/arm64\") pip install a ;; *) pip install b ;; esac\nRUN pip install c\n";
    let d = parse_ok(text);
    let steps = &d.stages[0].steps;
    assert_eq!(steps.len(), 3);
    for s in &steps[..2] {
        assert!(s.command.conditional.is_some(), "{s:?}");
        assert_eq!(s.platform_args, ["TARGETPLATFORM"]);
    }
    assert!(steps[2].platform_args.is_empty());
    let arm = parse(
        Path::new("Dockerfile"),
        text,
        &platform_build_args("linux/arm64"),
    )
    .unwrap();
    let steps = &arm.stages[0].steps;
    assert_eq!(steps[0].command.specs[0].value.as_deref(), Some("a"));
    assert!(steps[0].platform_args.is_empty());
}

/// A `SHELL` that wraps a POSIX shell is read through; any other is a
/// located warning, never silence.
#[test]
fn shell_wrappers_are_read_or_warned_about() {
    let d = parse_ok(
        "FROM mambaorg/micromamba:1.5.8\nSHELL [\"/usr/local/bin/_dockerfile_shell.sh\"]\nRUN micromamba install -y jq\nSHELL [\"conda\", \"run\", \"-n\", \"work\", \"/bin/bash\", \"-c\"]\nRUN pip install six\nSHELL [\"cmd\", \"/S\", \"/C\"]\nRUN pip install hidden\n",
    );
    let s = &d.stages[0];
    assert_eq!(s.steps.len(), 2);
    assert!(matches!(
        &s.steps[1].command.target,
        Some(crate::source::steps::Target::CondaName(e)) if e.value.as_deref() == Some("work")
    ));
    assert_eq!(s.warnings.len(), 1);
    assert_eq!(s.warnings[0].line, 7);
    assert!(s.warnings[0].message.contains("SHELL cmd /S /C"));
}

/// `conda config` changes and `CONDA_CHANNELS` reach the conda steps after
/// them, in order (BioContainers' samtools shape).
#[test]
fn channel_configuration_reaches_later_conda_steps() {
    let d = parse_ok(
        "FROM continuumio/miniconda3\nRUN conda install -y zlib\nRUN conda config --add channels bioconda\nRUN conda install -y samtools=1.20\nENV CONDA_CHANNELS=conda-forge\nRUN conda install -y jq && pip install x\n",
    );
    let s = &d.stages[0].steps;
    assert!(s[0].channel_config.is_empty());
    let base = vec!["defaults".to_string()];
    let eff = |i: usize| crate::source::steps::effective_channels(&base, &s[i].channel_config).0;
    assert_eq!(eff(1), ["bioconda", "defaults"]);
    assert_eq!(eff(2), ["conda-forge"]);
    assert!(s[3].channel_config.is_empty(), "pip steps carry none");
}

/// Stages the last stage does not use are marked unused.
#[test]
fn unused_stages_are_marked() {
    let d = parse_ok(
        "FROM a AS build\nFROM b AS docs\nFROM c AS dep\nFROM d\nCOPY --from=build /x /x\nRUN --mount=from=dep,target=/d true\n",
    );
    let unused: Vec<bool> = d.stages.iter().map(|s| s.unused).collect();
    assert_eq!(unused, [false, true, false, false]);
}

/// `$(uname -m)` and `$(dpkg --print-architecture)` are the machine of the
/// platform built: unknown (and marked) without one, its value with one.
#[test]
fn machine_probes_are_read_per_platform() {
    let text = "FROM debian:12\nRUN pip install \"torch-$(uname -m)\" \"deb-$(dpkg --print-architecture)\"\n";
    let d = parse_ok(text);
    let s = &d.stages[0].steps[0];
    assert_eq!(s.platform_args, ["TARGETPLATFORM"]);
    assert!(s.command.specs[0].value.is_none());
    for (platform, machine, deb) in [
        ("linux/arm64", "aarch64", "arm64"),
        ("linux/amd64", "x86_64", "amd64"),
        ("linux/ppc64le", "ppc64le", "ppc64el"),
        ("linux/arm/v7", "armv7l", "armhf"),
    ] {
        let d = parse(
            Path::new("Dockerfile"),
            text,
            &platform_build_args(platform),
        )
        .unwrap();
        let s = &d.stages[0].steps[0];
        assert!(s.platform_args.is_empty());
        let specs: Vec<_> = s.command.specs.iter().map(|e| e.value.clone()).collect();
        assert_eq!(
            specs,
            [Some(format!("torch-{machine}")), Some(format!("deb-{deb}"))]
        );
    }
}

/// RAPIDS' `rapids-mamba-retry install …` (rapidsai/ci-imgs shape): read as
/// `mamba install` when the configuration names the wrapper, an unlocked
/// wrapper step with its place otherwise.
#[test]
fn configured_wrappers_are_read_as_their_installer() {
    use crate::config::WrappedManager;
    use crate::source::steps::{Cause, Manager};
    let text = "FROM condaforge/miniforge3:24.3.0-0\nRUN rapids-mamba-retry install -y -n base -c rapidsai cudf=24.08 && conda clean -afy\n";
    let plain = parse_ok(text);
    let s = &plain.stages[0].steps[0];
    assert_eq!(s.command.manager, Manager::Wrapper);
    assert!(
        s.command
            .unresolved
            .iter()
            .any(|u| u.cause == Cause::UnknownWrapper)
    );
    let wrappers = [("rapids-mamba-retry".to_string(), WrappedManager::Mamba)]
        .into_iter()
        .collect();
    let read = parse_with_wrappers(text, &wrappers);
    let s = &read.stages[0].steps[0];
    assert_eq!(s.command.manager, Manager::Mamba);
    assert!(
        s.command.unresolved.is_empty(),
        "{:?}",
        s.command.unresolved
    );
    assert_eq!(s.command.specs[0].value.as_deref(), Some("cudf=24.08"));
    assert_eq!(read.wrappers, wrappers);
}

fn parse_with_wrappers(text: &str, wrappers: &crate::source::steps::Wrappers) -> Definition {
    super::parse_with(Path::new("Dockerfile"), text, &BTreeMap::new(), wrappers).unwrap()
}

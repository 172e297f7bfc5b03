use proptest::prelude::*;

use super::*;

fn def(text: &str) -> Definition {
    parse(Path::new("app.def"), text, &BTreeMap::new()).unwrap()
}

fn fail(text: &str) -> String {
    let e = parse(Path::new("app.def"), text, &BTreeMap::new()).unwrap_err();
    let d = e.diagnostic;
    format!("{}:{}: {}", d.location.line, d.location.column, d.message)
}

#[test]
fn headers_are_case_insensitive_with_spaces_around_the_colon() {
    let d = def(
        "# comment\nBootStrap : docker\nFROM:python:3.11 # the base\nstage :  build\n\n%post\n  pip install numpy\n",
    );
    let s = &d.stages[0];
    assert_eq!(
        s.base.target,
        BaseTarget::Image {
            agent: "docker".into()
        }
    );
    assert_eq!(s.base.reference.value.as_deref(), Some("python:3.11"));
    assert_eq!(s.base.reference.written, "python:3.11");
    assert_eq!(s.name.as_deref(), Some("build"));
    assert_eq!(s.steps.len(), 1);
    assert_eq!(s.steps[0].line, 7);
    assert_eq!(s.steps[0].command.specs[0].value.as_deref(), Some("numpy"));
}

#[test]
fn agents_map_to_targets() {
    let t = |h: &str| def(h).stages[0].base.clone();
    assert_eq!(
        t("Bootstrap: oras\nFrom: ghcr.io/x/y:1\n").target,
        BaseTarget::Other {
            agent: "oras".into()
        }
    );
    assert_eq!(
        t("Bootstrap: library\nFrom: ubuntu:22.04\n").target,
        BaseTarget::Other {
            agent: "library".into()
        }
    );
    assert_eq!(
        t("Bootstrap: docker-archive\nFrom: x.tar\n").target,
        BaseTarget::Other {
            agent: "docker-archive".into()
        }
    );
    assert_eq!(t("Bootstrap: scratch\n").target, BaseTarget::Scratch);
    assert_eq!(
        t("Bootstrap: localimage\nFrom: base.sif\n").target,
        BaseTarget::Other {
            agent: "localimage".into()
        }
    );
    let b = t(
        "Bootstrap: debootstrap\nOSVersion: jammy\nMirrorURL: http://archive.ubuntu.com/ubuntu/\n",
    );
    assert_eq!(
        b.target,
        BaseTarget::Other {
            agent: "debootstrap".into()
        }
    );
    assert_eq!(b.reference.value.as_deref(), Some("jammy"));
    assert_eq!(
        t("Bootstrap: yum\nOSVersion: 8\nMirrorURL: http://x/$basearch\nInclude: dnf\n").target,
        BaseTarget::Other {
            agent: "yum".into()
        }
    );
}

#[test]
fn stages_and_files_from() {
    let text = "Bootstrap: docker\nFrom: golang:1.22\nStage: one\n%post\n  go build -o /hello\n\nBootstrap: docker\nFrom: alpine:3.20\nStage: two\n%files from one\n  /hello /bin/hello\n  \"/a b\"\n%files\n  requirements.txt /opt/\n%post\n  pip install -r /opt/requirements.txt\n";
    let d = def(text);
    assert_eq!(d.stages.len(), 2);
    let two = &d.stages[1];
    assert_eq!(two.index, 1);
    assert_eq!(two.copies.len(), 3);
    assert_eq!(two.copies[0].from.as_deref(), Some("one"));
    assert_eq!(two.copies[0].sources, vec!["/hello".to_string()]);
    assert_eq!(two.copies[0].destination, "/bin/hello");
    assert_eq!(two.copies[1].sources, vec!["/a b".to_string()]);
    assert_eq!(two.copies[2].from, None);
    assert_eq!(
        two.steps[0].command.files[0].path.value.as_deref(),
        Some("/opt/requirements.txt")
    );
    assert_eq!(
        &text[two.span.start..two.span.end],
        "Bootstrap: docker\nFrom: alpine:3.20\nStage: two\n"
    );
}

#[test]
fn templates_take_build_args_over_arguments_defaults() {
    let text = "Bootstrap: docker\nFrom: {{ BASE }}\n%arguments\n  BASE=python:3.11\n  NUMPY=1.26.4\n%post\n  pip install numpy=={{NUMPY}} # {{ NOT_REPLACED }}\n";
    let d = def(text);
    assert_eq!(
        d.stages[0].base.reference.value.as_deref(),
        Some("python:3.11")
    );
    assert_eq!(d.stages[0].base.reference.written, "{{ BASE }}");
    let spec = &d.stages[0].steps[0].command.specs[0];
    assert_eq!(spec.value.as_deref(), Some("numpy==1.26.4"));
    // The spec's span covers the template text in the file.
    assert_eq!(&text[spec.span.start..spec.span.end], "numpy=={{NUMPY}}");
    assert_eq!(d.global_args.len(), 2);

    let args = BTreeMap::from([("BASE".to_string(), "python:3.12".to_string())]);
    let d = parse(Path::new("app.def"), text, &args).unwrap();
    assert_eq!(
        d.stages[0].base.reference.value.as_deref(),
        Some("python:3.12")
    );
}

#[test]
fn post_with_shell_option_and_appinstall_are_scanned() {
    let d = def(
        "Bootstrap: docker\nFrom: ubuntu\n%post -c /bin/bash\n  apt-get update && apt-get install -y python3-pip\n%appinstall tool\n  conda install -y -c bioconda samtools\n%environment\n  export PATH=/opt/conda/bin:$PATH\n%runscript\n  exec pip install never \"$@\"\n",
    );
    let steps: Vec<_> = d.stages[0]
        .steps
        .iter()
        .map(|s| s.command.manager.as_str())
        .collect();
    assert_eq!(steps, ["apt-get", "conda"]);
}

#[test]
fn errors_name_the_place() {
    assert_eq!(
        fail("From: ubuntu\n%post\n  true\n"),
        "1:1: definition has no `Bootstrap` header"
    );
    assert_eq!(
        fail("%post\n  true\n"),
        "1:1: definition has no `Bootstrap` header"
    );
    assert_eq!(fail(""), "1:1: definition has no `Bootstrap` header");
    assert_eq!(
        fail("Bootstrap: docker\nFrom: x\n%postt\n"),
        "3:1: unknown section `%postt`"
    );
    assert_eq!(
        fail("Bootstrap: docker\nFrom: x\n%files from\n a b\n"),
        "3:8: `%files from` needs a stage name"
    );
    assert_eq!(
        fail("Bootstrap: docker\nFrom: x\n%files from nope\n a b\n"),
        "3:8: `%files from nope` names no earlier stage"
    );
    assert_eq!(
        fail("Bootstrap: docker\nFrom: x\n%post\n  pip install 'x\n"),
        "4:15: unterminated single quote"
    );
    assert_eq!(
        fail("Bootstrap: docker\n"),
        "1:12: `Bootstrap: docker` needs a `From` header"
    );
    assert_eq!(
        fail("Bootstrap: warp\nFrom: x\n"),
        "1:12: unknown bootstrap agent `warp`"
    );
    assert_eq!(
        fail("Bootstrap: docker\nFrm: x\n"),
        "2:1: unknown header keyword `frm`"
    );
    assert_eq!(
        fail("Bootstrap: docker\nFrom: {{ X }}\n"),
        "2:7: build variable `X` has no value"
    );
    assert_eq!(
        fail("Bootstrap: docker\nFrom: x\n%appinstall\n"),
        "3:1: section `%appinstall` needs an app name"
    );
    assert_eq!(
        fail("Bootstrap: docker\nFrom: x\x00\n"),
        "2:8: definition file contains a NUL byte"
    );
}

#[test]
fn not_utf8_is_an_error() {
    let e = parse_bytes(
        Path::new("app.def"),
        b"Bootstrap: docker\n\xff\xfe",
        &BTreeMap::new(),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "app.def:2:1: definition file is not UTF-8 text"
    );
}

#[test]
fn lossless_layer_keeps_every_byte() {
    let text = "# c\nBootstrap: docker\nFrom: x \\\n  y\n\n%post\n  a\n%files from s\nBootstrap: oras\nFrom: z";
    let f = DefFile::parse(text);
    assert_eq!(f.print(text), text);
    assert_eq!(f.stages.len(), 2);
}

fn def_like() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        Just("Bootstrap: docker".to_string()),
        Just("bootstrap : oras".to_string()),
        Just("From: {{ IMG }}".to_string()),
        Just("Stage: s1".to_string()),
        Just("%post".to_string()),
        Just("  %files from s1".to_string()),
        Just("%arguments".to_string()),
        Just("IMG=alpine".to_string()),
        Just("  pip install 'a>=1' $X \\".to_string()),
        Just("# comment".to_string()),
        Just(String::new()),
        "[ -~\t]{0,20}",
        "\\PC{0,10}",
    ];
    (
        proptest::collection::vec(line, 0..14),
        prop::sample::select(vec!["\n", "\r\n"]),
    )
        .prop_map(|(lines, nl)| lines.join(nl))
}

proptest! {
    #[test]
    fn parse_never_panics_and_print_is_lossless(text in def_like()) {
        let f = DefFile::parse(&text);
        prop_assert_eq!(f.print(&text), text.clone());
        let _ = parse(Path::new("x.def"), &text, &BTreeMap::new());
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let f = DefFile::parse(&text);
        prop_assert_eq!(f.print(&text), text.clone());
        let _ = parse(Path::new("x.def"), &text, &BTreeMap::new());
    }
}

#[test]
fn post_sections_run_as_one_script_before_appinstall() {
    let text = "Bootstrap: docker\nFrom: x\n%appinstall a\n  pip install late\n%post\n  V=1.0\n%post\n  pip install x==$V\n";
    let d = def(text);
    let steps = &d.stages[0].steps;
    assert_eq!(steps[0].command.specs[0].value.as_deref(), Some("x==1.0"));
    assert_eq!(
        &text[steps[0].instruction.start..steps[0].instruction.end],
        "%post\n  pip install x==$V\n"
    );
    assert_eq!(steps[0].line, 8);
    assert_eq!(steps[1].command.specs[0].value.as_deref(), Some("late"));
}

/// Regression (found by the property test): a continued shell line before
/// the header keyword must neither panic nor lose bytes.
#[test]
fn continued_line_before_bootstrap_round_trips() {
    let text = "  pip install 'a>=1' $X \\\nBootstrap: docker";
    let f = DefFile::parse(text);
    assert_eq!(f.print(text), text);
    let _ = parse(Path::new("x.def"), text, &BTreeMap::new());
}

#[test]
fn continued_post_commands_are_read_as_one_line() {
    let text = "Bootstrap: docker\nFrom: python:3.11\n\n%post\n    pip install \\\n        a==1 \\\n        b==2\n";
    let d = def(text);
    let step = &d.stages[0].steps[0];
    assert_eq!(step.command.text, "pip install         a==1         b==2");
    assert_eq!(step.line, 5);
    let specs: Vec<&str> = step
        .command
        .specs
        .iter()
        .map(|s| &text[s.span.start..s.span.end])
        .collect();
    assert_eq!(specs, ["a==1", "b==2"]);
}

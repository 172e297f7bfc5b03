use std::fmt::Write as _;

use proptest::prelude::*;
use rstest::rstest;

use super::*;

fn lookup(name: &str) -> Option<String> {
    match name {
        "PY" => Some("3.11".into()),
        "NUMPY_VERSION" => Some("1.26.4".into()),
        "CONDA_DIR" => Some("/opt/conda".into()),
        "EMPTY" => Some(String::new()),
        "PKGS" => Some("a b".into()),
        _ => None,
    }
}

fn show(e: &Expanded) -> String {
    match &e.value {
        Some(v) => v.clone(),
        None => format!("?{}{:?}", e.written, e.unresolved),
    }
}

/// A one-line summary of each install command, for table tests.
fn summarize(text: &str) -> String {
    let script = Script::from_file_piece(text, 0);
    let events = match scan_script(&script, &lookup) {
        Ok(e) => e,
        Err(e) => return format!("error {}..{}: {}", e.span.start, e.span.end, e.message),
    };
    let mut out = Vec::new();
    for e in events {
        let mut s = String::new();
        match e {
            ShellEvent::Install(c) => {
                write!(s, "{} {:?}", c.manager.as_str(), c.action).unwrap();
                if let Some(t) = &c.target {
                    let (k, v) = match t {
                        Target::CondaName(v) => ("name", v),
                        Target::CondaPrefix(v) => ("prefix", v),
                        Target::Python(v) => ("python", v),
                    };
                    write!(s, " {k}={}", show(v)).unwrap();
                }
                let specs: Vec<_> = c.specs.iter().map(show).collect();
                write!(s, " [{}]", specs.join(", ")).unwrap();
                for ch in &c.channels {
                    write!(s, " -c {}", show(ch)).unwrap();
                }
                if c.override_channels {
                    s.push_str(" override");
                }
                if let Some(i) = &c.index_url {
                    write!(s, " index={}", show(i)).unwrap();
                }
                for i in &c.extra_index_urls {
                    write!(s, " extra={}", show(i)).unwrap();
                }
                for f in &c.files {
                    write!(s, " {:?}={}", f.role, show(&f.path)).unwrap();
                }
                if !c.options.is_empty() {
                    write!(s, " opts={}", c.options.join("|")).unwrap();
                }
                // Spans point at the written text.
                assert_eq!(&text[c.span.start..c.span.end], c.text);
                for sp in &c.specs {
                    assert_eq!(&text[sp.span.start..sp.span.end], sp.written);
                }
            }
            ShellEvent::ChannelConfig(c) => {
                write!(s, "config {:?} {}", c.action, show(&c.channel)).unwrap();
            }
        }
        out.push(s);
    }
    out.join("\n")
}

#[rstest]
// pip spellings
#[case("pip install numpy", "pip Install [numpy]")]
#[case("pip3 install numpy", "pip Install [numpy]")]
#[case("pip3.11 install numpy", "pip Install python=pip3.11 [numpy]")]
#[case("python -m pip install numpy", "pip Install python=python [numpy]")]
#[case(
    "python3 -m pip install -U pip",
    "pip Install python=python3 [pip] opts=-U"
)]
#[case("python3.11 -m pip install x", "pip Install python=python3.11 [x]")]
#[case(
    "/opt/conda/bin/pip install x",
    "pip Install python=/opt/conda/bin/pip [x]"
)]
#[case(
    "/usr/local/bin/python3 -m pip install x",
    "pip Install python=/usr/local/bin/python3 [x]"
)]
#[case("python -u -m pip install x", "pip Install python=python [x]")]
#[case("uv pip install --system x", "uv-pip Install [x] opts=--system")]
#[case(
    "uv pip install -P lib --upgrade-package=b --resolution lowest x",
    "uv-pip Install [x] opts=-P lib|--upgrade-package=b|--resolution lowest"
)]
#[case(
    "uv pip install -p /usr/bin/python3 x",
    "uv-pip Install python=/usr/bin/python3 [x]"
)]
#[case("pip --no-cache-dir install x", "pip Install [x] opts=--no-cache-dir")]
#[case("pip download x", "")]
#[case("pip uninstall -y x", "")]
#[case("pip freeze > r.txt", "")]
// pip specs and options
#[case(
    "pip install 'pandas>=0.24.0' \"x[extra]>=1; python_version<'3.12'\"",
    "pip Install [pandas>=0.24.0, x[extra]>=1; python_version<'3.12']"
)]
#[case(
    "pip install -r requirements.txt -c constraints.txt",
    "pip Install [] Requirements=requirements.txt Constraints=constraints.txt"
)]
#[case(
    "pip install --requirement=req.txt --constraint c.txt",
    "pip Install [] Requirements=req.txt Constraints=c.txt"
)]
#[case("pip install -rreq.txt", "pip Install [] Requirements=req.txt")]
#[case(
    "pip install -e . -e ./pkg",
    "pip Install [] Editable=. Editable=./pkg"
)]
#[case(
    "pip install -i https://x/simple --extra-index-url https://y/simple a",
    "pip Install [a] index=https://x/simple extra=https://y/simple"
)]
#[case(
    "pip install --index-url=https://x/simple a",
    "pip Install [a] index=https://x/simple"
)]
#[case(
    "pip install -f https://x/links --pre --no-deps a",
    "pip Install [a] opts=--pre|--no-deps"
)]
#[case(
    "pip install --upgrade --user --no-cache-dir --break-system-packages --require-hashes a",
    "pip Install [a] opts=--upgrade|--user|--no-cache-dir|--break-system-packages|--require-hashes"
)]
#[case(
    "pip install --prefix /opt/x --target=/t --only-binary :all: --no-binary=x a",
    "pip Install [a] opts=--prefix /opt/x|--target=/t|--only-binary :all:|--no-binary=x"
)]
#[case(
    "pip install https://x.org/a-1.0-py3-none-any.whl git+https://github.com/o/r@v1.0#egg=r .",
    "pip Install [https://x.org/a-1.0-py3-none-any.whl, git+https://github.com/o/r@v1.0#egg=r, .]"
)]
#[case("pip install -- -weird", "pip Install [-weird]")]
// conda family
#[case("conda install -y numpy", "conda Install [numpy] opts=-y")]
#[case(
    "mamba install -n base -c conda-forge --override-channels 'pandas>=0.24.0'",
    "mamba Install name=base [pandas>=0.24.0] -c conda-forge override"
)]
#[case(
    "micromamba install -y -p /opt/env -c bioconda -c conda-forge samtools=1.19",
    "micromamba Install prefix=/opt/env [samtools=1.19] -c bioconda -c conda-forge opts=-y"
)]
#[case(
    "conda install --channel=conda-forge --name=x a",
    "conda Install name=x [a] -c conda-forge"
)]
#[case(
    "conda create -n py python=3.11 conda-forge::numpy",
    "conda Create name=py [python=3.11, conda-forge::numpy]"
)]
#[case(
    "conda install numpy=1.26=*openblas* \"numpy==1.26=*_0\" 'blas[build=mkl]'",
    "conda Install [numpy=1.26=*openblas*, numpy==1.26=*_0, blas[build=mkl]]"
)]
#[case(
    "conda install --file specs.txt -q --freeze-installed --no-update-deps --strict-channel-priority",
    "conda Install [] CondaSpecs=specs.txt opts=-q|--freeze-installed|--no-update-deps|--strict-channel-priority"
)]
#[case("conda update -y conda", "conda Update [conda] opts=-y")]
#[case("mamba upgrade --all", "mamba Update [] opts=--all")]
#[case(
    "conda env create -f environment.yml -n env",
    "conda EnvCreate name=env [] Environment=environment.yml"
)]
#[case(
    "conda env update --file env.yml --prune",
    "conda EnvUpdate [] Environment=env.yml opts=--prune"
)]
#[case(
    "mamba env update -n base -f /tmp/env.yaml",
    "mamba EnvUpdate name=base [] Environment=/tmp/env.yaml"
)]
#[case(
    "micromamba create -y -f env.yml",
    "micromamba Create [] Environment=env.yml opts=-y"
)]
#[case(
    "micromamba install -y -n base -f /tmp/env.yaml",
    "micromamba Install name=base [] Environment=/tmp/env.yaml opts=-y"
)]
#[case("/opt/conda/bin/conda install x", "conda Install [x]")]
#[case("$CONDA_DIR/bin/mamba install x", "mamba Install [x]")]
#[case("$UNKNOWN_DIR/bin/mamba install x", "mamba Install [x]")]
#[case("micromamba -r /opt/mm install x", "micromamba Install [x] opts=-r")]
#[case("conda clean -afy", "")]
#[case("conda activate base", "")]
#[case(
    "conda config --add channels conda-forge && conda config --append channels bioconda",
    "config Add conda-forge\nconfig Append bioconda"
)]
#[case("conda config --set channel_priority strict", "config Priority strict")]
#[case("conda run -n env pip install x", "pip Install name=env [x]")]
#[case(
    "micromamba run -p /opt/env python -m pip install x",
    "pip Install prefix=/opt/env [x]"
)]
// OS package managers
#[case(
    "apt-get update && apt-get install -y --no-install-recommends curl ca-certificates",
    "apt-get Install [curl, ca-certificates] opts=-y|--no-install-recommends"
)]
#[case(
    "apt-get -y -o Dpkg::Options::=--force-confdef install git",
    "apt-get Install [git] opts=-y|-o Dpkg::Options::=--force-confdef"
)]
#[case("apt install -y vim", "apt Install [vim] opts=-y")]
#[case(
    "dnf install -y --setopt=tsflags=nodocs gcc",
    "dnf Install [gcc] opts=-y|--setopt=tsflags=nodocs"
)]
#[case("microdnf install -y tar", "microdnf Install [tar] opts=-y")]
#[case("yum -y install epel-release", "yum Install [epel-release] opts=-y")]
#[case(
    "apk add --no-cache --virtual .build gcc musl-dev",
    "apk Install [gcc, musl-dev] opts=--no-cache|--virtual .build"
)]
#[case("apt-get remove -y x", "apt-get Remove [x] opts=-y")]
// shell structure
#[case(
    "set -eux; pip install a || true; pip install b | tee log & pip install c",
    "pip Install [a]\npip Install [b]\npip Install [c]"
)]
#[case("sudo -E -u root pip install a", "pip Install [a]")]
#[case("env PIP_NO_CACHE_DIR=1 pip install a", "pip Install [a]")]
#[case("PIP_NO_CACHE_DIR=1 pip install a", "pip Install [a]")]
#[case("exec pip install a", "pip Install [a]")]
#[case("time nice -n 10 pip install a", "pip Install [a]")]
#[case("find . -name x | xargs pip install", "pip Install []")]
#[case("(cd /x && pip install .)", "pip Install [.]")]
#[case("{ pip install a; }", "pip Install [a]")]
#[case(
    "if [ -f r.txt ]; then pip install -r r.txt; else pip install b; fi",
    "pip Install [] Requirements=r.txt\npip Install [b]"
)]
#[case("for p in a b; do pip install $p; done", "pip Install [?$p[\"p\"]]")]
#[case(
    "bash -c 'pip install a && conda install -y b'",
    "pip Install [a]\nconda Install [b] opts=-y"
)]
#[case("sh -ec \"pip install 'x>=1'\"", "pip Install [x>=1]")]
#[case(
    "pip install a # pip install b\npip install \\\n  c",
    "pip Install [a]\npip Install [c]"
)]
#[case(
    "cat > f <<EOF\npip install notme\nEOF\npip install a",
    "pip Install [a]"
)]
#[case(
    "cat > f <<-'EOF'\n\tpip install notme\n\tEOF\npip install a",
    "pip Install [a]"
)]
#[case("echo 'pip install notme' >> log 2>&1", "")]
#[case("case $x in a) pip install a ;; esac", "pip Install [a]")]
// expansion
#[case("pip install numpy==$NUMPY_VERSION", "pip Install [numpy==1.26.4]")]
#[case(
    "pip install \"numpy==${NUMPY_VERSION}\"",
    "pip Install [numpy==1.26.4]"
)]
#[case(
    "pip install x==${NOPE:-1.0} y==${EMPTY:-2} z${PY:+-py}",
    "pip Install [?x==${NOPE:-1.0}[\"NOPE\"], y==2, z-py]"
)]
#[case(
    "pip install y==${EMPTY-2} w${NOPE+x}",
    "pip Install [y==, ?w${NOPE+x}[\"NOPE\"]]"
)]
#[case("pip install $PKGS \"$PKGS\"", "pip Install [a, b, a b]")]
#[case("pip install $EMPTY a", "pip Install [a]")]
#[case(
    "pip install $(cat reqs) a",
    "pip Install [?$(cat reqs)[\"$(cat reqs)\"], a]"
)]
#[case("V=2.0; pip install x==$V", "pip Install [x==2.0]")]
#[case("export V=3.0 && pip install x==$V", "pip Install [x==3.0]")]
#[case("PY=$(python -V); pip install x$PY", "pip Install [?x$PY[\"PY\"]]")]
#[case("unset PY; pip install x${PY:-9}", "pip Install [x9]")]
#[case("conda install python=$PY", "conda Install [python=3.11]")]
#[case("pip install a\\ b 'c'\"d\"", "pip Install [a b, cd]")]
#[case("pip install $'a\\tb'", "pip Install [a\tb]")]
// errors
#[case("pip install 'pandas>=1", "error 12..13: unterminated single quote")]
#[case("pip install \"x", "error 12..13: unterminated double quote")]
#[case("echo ${X", "error 5..7: unterminated parameter expansion")]
#[case("echo $(ls", "error 5..7: unterminated command substitution")]
#[case("bash -c \"echo 'x\"", "error 14..15: unterminated single quote")]
fn recognises(#[case] text: &str, #[case] expected: &str) {
    assert_eq!(summarize(text), expected, "for {text:?}");
}

#[test]
fn spans_map_through_a_continuation_to_the_file() {
    let file = "RUN pip install a \\\n    b==${V}\n";
    let mut s = Script::new();
    s.push("pip install a ", 4);
    s.push("    b==${V}", 20);
    let cmds = find_install_commands(&s, &|_| None).unwrap();
    let c = &cmds[0];
    assert_eq!(
        &file[c.span.start..c.span.end],
        "pip install a \\\n    b==${V}"
    );
    let b = &c.specs[1];
    assert_eq!(&file[b.span.start..b.span.end], "b==${V}");
    assert_eq!(b.unresolved, vec!["V".to_string()]);
    assert_eq!(b.value, None);
}

#[test]
fn sh_c_spans_point_into_the_quoted_string() {
    let file = "bash -c 'pip install \"x>=1\" y'";
    let s = Script::from_file_piece(file, 0);
    let cmds = find_install_commands(&s, &|_| None).unwrap();
    let c = &cmds[0];
    assert_eq!(c.text, "pip install \"x>=1\" y");
    assert_eq!(&file[c.span.start..c.span.end], "pip install \"x>=1\" y");
    assert_eq!(
        &file[c.specs[0].span.start..c.specs[0].span.end],
        "\"x>=1\""
    );
    assert_eq!(c.specs[0].value.as_deref(), Some("x>=1"));
}

#[test]
fn option_value_span_covers_only_the_value() {
    let file = "pip install --index-url=https://x/simple a";
    let s = Script::from_file_piece(file, 0);
    let c = &find_install_commands(&s, &|_| None).unwrap()[0];
    let i = c.index_url.as_ref().unwrap();
    assert_eq!(&file[i.span.start..i.span.end], "https://x/simple");
    assert_eq!(i.written, "https://x/simple");
}

#[test]
fn error_span_is_a_file_span() {
    let s = Script::from_file_piece("pip install 'x", 100);
    let e = find_install_commands(&s, &|_| None).unwrap_err();
    assert_eq!(e.span, Span::new(112, 113));
    assert_eq!(e.to_string(), "unterminated single quote");
    assert!(e.hint.is_some());
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let text = format!("echo {}x{}", "${A:-".repeat(5000), "}".repeat(5000));
    let s = Script::from_file_piece(&text, 0);
    assert!(find_install_commands(&s, &|_| None).is_err());
    let text = format!("{}pip install x{}", "bash -c '".repeat(3), "'".repeat(3));
    let s = Script::from_file_piece(&text, 0);
    let _ = find_install_commands(&s, &|_| None);
}

proptest! {
    #[test]
    fn splitter_never_panics(text in r#"[a-z \t\n'"\\$`{}()|&;<>#=:+\-_./é]{0,80}"#) {
        let s = Script::from_file_piece(&text, 3);
        let _ = scan_script(&s, &lookup);
    }

    #[test]
    fn install_spans_stay_in_the_text(
        words in proptest::collection::vec(r#"[a-z0-9=<>.'"$\\{}:-]{1,8}"#, 0..6),
        prefix in prop::sample::select(vec!["pip install", "conda install -c x", "sudo pip3 install", "bash -c 'pip install"]),
    ) {
        let text = format!("{prefix} {}", words.join(" "));
        let s = Script::from_file_piece(&text, 0);
        if let Ok(cmds) = find_install_commands(&s, &lookup) {
            for c in cmds {
                prop_assert!(c.span.end <= text.len());
                for sp in &c.specs {
                    prop_assert!(sp.span.start <= sp.span.end && sp.span.end <= text.len());
                    prop_assert!(text.is_char_boundary(sp.span.start) && text.is_char_boundary(sp.span.end));
                }
            }
        }
    }
}

/// Regression: a quoted `--opt="…"` value kept its closing quote but lost
/// the opening one.
#[test]
fn quoted_option_value_is_written_whole() {
    let file =
        r#"mamba install --yes --prefix="${CONDA_DIR}" 'numpy' && pip install -i"https://x/s" a"#;
    let s = Script::from_file_piece(file, 0);
    let cmds = find_install_commands(&s, &|_| None).unwrap();
    let Some(Target::CondaPrefix(p)) = &cmds[0].target else {
        panic!("{:?}", cmds[0].target);
    };
    assert_eq!(p.written, "\"${CONDA_DIR}\"");
    assert_eq!(&file[p.span.start..p.span.end], "\"${CONDA_DIR}\"");
    let i = cmds[1].index_url.as_ref().unwrap();
    assert_eq!(i.written, "\"https://x/s\"");
    assert_eq!(i.value.as_deref(), Some("https://x/s"));
}

/// Like [`summarize`], with whether each command is conditional and what
/// in it could not be read.
fn summarize_flow(text: &str) -> String {
    let script = Script::from_file_piece(text, 0);
    let events = match scan_script(&script, &lookup) {
        Ok(e) => e,
        Err(e) => return format!("error {}..{}: {}", e.span.start, e.span.end, e.message),
    };
    let mut out = Vec::new();
    for e in events {
        match e {
            ShellEvent::Install(c) => {
                let specs: Vec<_> = c.specs.iter().map(show).collect();
                let mut s = format!(
                    "{} {} [{}]",
                    c.manager.as_str(),
                    c.action.as_str(),
                    specs.join(", ")
                );
                if let Some(t) = &c.target {
                    let v = match t {
                        Target::CondaName(v) | Target::CondaPrefix(v) | Target::Python(v) => v,
                    };
                    write!(s, " into={}", show(v)).unwrap();
                }
                for f in &c.files {
                    write!(s, " {:?}={}", f.role, show(&f.path)).unwrap();
                }
                for f in &c.find_links {
                    write!(s, " find-links={}", show(f)).unwrap();
                }
                if c.no_index {
                    s.push_str(" no-index");
                }
                if let Some(cond) = &c.conditional {
                    write!(s, " if({cond})").unwrap();
                }
                for u in &c.unresolved {
                    write!(s, " {}:{}", u.cause.as_str(), u.text).unwrap();
                    assert_eq!(&text[u.span.start..u.span.end], u.text);
                }
                out.push(s);
            }
            ShellEvent::ChannelConfig(c) => {
                let mut s = format!("config {:?} {}", c.action, show(&c.channel));
                if let Some(cond) = &c.conditional {
                    write!(s, " if({cond})").unwrap();
                }
                out.push(s);
            }
        }
    }
    out.join("\n")
}

// Issue 17, item 1: control flow.
#[rstest]
#[case(
    "S=a && if [[ x == y ]]; then S=b; fi && micromamba install \"$S\"",
    "micromamba install [a]"
)]
#[case(
    "if false; then pip install a==1; else pip install a==2; fi",
    "pip install [a==2]"
)]
#[case(
    "if [ \"$PY\" = \"3.11\" ]; then pip install a==1; elif true; then pip install a==2; else pip install a==3; fi",
    "pip install [a==1]"
)]
#[case(
    "if [ -f r.txt ]; then pip install -r r.txt; else pip install b; fi",
    "pip install [] Requirements=r.txt if([ -f r.txt ])\npip install [b] if(else of [ -f r.txt ])"
)]
#[case(
    "S=a; if [ -f x ]; then S=b; fi; pip install \"$S\"",
    "pip install [?\"$S\"[\"S\"]] unknown-variable:\"$S\""
)]
#[case(
    "[ -z \"$NOPE\" ] && pip install a || pip install b",
    "pip install [a] if([ -z \"$NOPE\" ])\npip install [b] if([ -z \"$NOPE\" ])"
)]
// An installer may fail and `||` catch it: what follows is conditional.
#[case(
    "[ -n \"$PY\" ] && pip install a || pip install b",
    "pip install [a]\npip install [b] if(pip install a)"
)]
#[case("test \"$PY\" != 3.11 && pip install a", "")]
#[case("[ ${PY%.*} -ge 3 ] && pip install a", "pip install [a]")]
#[case(
    "case \"$PY\" in\n  3.10) pip install a ;;\n  3.11|3.12) pip install b ;;\n  *) pip install c ;;\nesac",
    "pip install [b]"
)]
#[case(
    "case \"$(uname -m)\" in x86_64) pip install a ;; aarch64) pip install b ;; esac",
    "pip install [a] if(case \"$(uname -m)\")\npip install [b] if(case \"$(uname -m)\")"
)]
#[case("pip install a || true", "pip install [a]")]
// BioContainers samtools/1.9-4-deb: what follows a `( A || B )` group is
// not conditional.
#[case(
    "apt-get update && (apt-get install -t buster-backports -y samtools || apt-get install -y samtools) && apt-get purge",
    "apt-get install [samtools]\napt-get install [samtools] if(apt-get install -t buster-backports -y samtools)\napt-get remove []"
)]
#[case("false && (pip install a) && pip install b", "")]
#[case(
    "while read p; do pip install \"$p\"; done < r.txt",
    "pip install [?\"$p\"[\"p\"]] if(while read p) unknown-variable:\"$p\""
)]
#[case(
    "if [ -f x ]; then conda config --add channels bioconda; fi",
    "config Add bioconda if([ -f x ])"
)]
#[case(
    "bash -c 'if false; then pip install a; fi; pip install b'",
    "pip install [b]"
)]
fn control_flow(#[case] text: &str, #[case] expected: &str) {
    assert_eq!(summarize_flow(text), expected, "for {text:?}");
}

// Issue 17, items 4 to 8: commands, options, substitutions, expansions.
#[rstest]
// 4. conda semantics
#[case("conda update -n base conda", "conda update [conda] into=base")]
#[case("conda install --dry-run x", "conda no-change [x]")]
#[case("mamba install --download-only x", "mamba no-change [x]")]
#[case("conda clean -afy", "")]
#[case(
    "conda activate work && conda install x && pip install y",
    "conda install [x] into=work\npip install [y] into=work"
)]
#[case(
    "source activate /opt/env && pip install y",
    "pip install [y] into=/opt/env"
)]
#[case(
    "conda install --file <(grep -v '^#' specs.txt)",
    "conda install [] CondaSpecs=?<(grep -v '^#' specs.txt)[\"<(grep -v '^#' specs.txt)\"] unreadable-file:<(grep -v '^#' specs.txt)"
)]
// 5. pip options
#[case(
    "pip install -f https://storage.googleapis.com/jax-releases/jax_cuda_releases.html 'jax[cuda]'",
    "pip install [jax[cuda]] find-links=https://storage.googleapis.com/jax-releases/jax_cuda_releases.html"
)]
#[case(
    "pip install --no-index --find-links=/wheels x",
    "pip install [x] find-links=/wheels no-index"
)]
#[case("pip install $PKGS", "pip install [a, b]")]
#[case(
    "pip install scipy>=1.8 numpy",
    "pip install [scipy, numpy] redirect:scipy>=1.8"
)]
// 6. more installers
#[case("uv pip sync requirements.txt", "uv-pip sync [requirements.txt]")]
#[case("pip3.11 install x", "pip install [x] into=pip3.11")]
#[case(
    "xargs -a reqs.txt pip install",
    "pip install [] Requirements=reqs.txt"
)]
#[case(
    "cat conda.txt | xargs conda install -y",
    "conda install [] CondaSpecs=conda.txt"
)]
#[case(
    "grep -v '#' r.txt | xargs pip install",
    "pip install [] unreadable-file:xargs pip install"
)]
#[case(
    "rapids-mamba-retry install -y -n base cudf",
    "wrapper install [cudf] into=base unknown-wrapper:rapids-mamba-retry"
)]
#[case("Rscript -e 'BiocManager::install(\"DESeq2\")'", "r install []")]
#[case("install2.r --error dplyr", "r install [dplyr]")]
#[case("apt-get upgrade -y", "apt-get upgrade []")]
#[case("apt-get dist-upgrade -y", "apt-get dist-upgrade []")]
#[case(
    "dnf groupinstall -y 'Development Tools'",
    "dnf group-install [Development Tools]"
)]
#[case(
    "dnf group install -y 'Development Tools'",
    "dnf group-install [Development Tools]"
)]
#[case("dnf module enable -y nodejs:18", "dnf module-enable [nodejs:18]")]
#[case("yum update -y", "yum upgrade []")]
#[case("yum update -y openssl", "yum update [openssl]")]
#[case(
    "apk add --virtual .build-deps gcc && apk del .build-deps",
    "apk install [gcc]\napk remove [.build-deps]"
)]
// 7. command substitution
#[case(
    "CUDA=11.1.1; conda install cuda-command-line-tools-$(cut -f1,2 -d- <<< ${CUDA//./-})",
    "conda install [cuda-command-line-tools-11-1]"
)]
#[case(
    "pip install instructlab-training$([ -z \"${NOPE}\" ] && echo \"\" || echo \"==${NOPE}\")",
    "pip install [?instructlab-training$([ -z \"${NOPE}\" ] && echo \"\" || echo \"==${NOPE}\")[\"$([ -z \\\"${NOPE}\\\" ] && echo \\\"\\\" || echo \\\"==${NOPE}\\\")\"]] command-substitution:instructlab-training$([ -z \"${NOPE}\" ] && echo \"\" || echo \"==${NOPE}\")"
)]
#[case(
    "V=1.2; pip install x$([ -z \"$V\" ] && echo \"\" || echo \"==$V\")",
    "pip install [x==1.2]"
)]
#[case("pip install x==$(echo $PY | tr . _)", "pip install [x==3_11]")]
#[case("pip install x==$(echo $PY | sed s/3/4/)", "pip install [x==4.11]")]
#[case(
    "pip install torch-$(uname -m)",
    "pip install [?torch-$(uname -m)[\"$(uname -m)\"]] arch-dependent:torch-$(uname -m)"
)]
#[case(
    "pip install x==$(curl -s https://x/v)",
    "pip install [?x==$(curl -s https://x/v)[\"$(curl -s https://x/v)\"]] command-substitution:x==$(curl -s https://x/v)"
)]
// 8. parameter operators
#[case(
    "pip install x==${NUMPY_VERSION%.*} y==${NUMPY_VERSION#*.} z==${NUMPY_VERSION/./-} w==${#PY}",
    "pip install [x==1.26, y==26.4, z==1-26.4, w==4]"
)]
#[case("pip install x==${PY//./}", "pip install [x==311]")]
fn commands_and_expansions(#[case] text: &str, #[case] expected: &str) {
    assert_eq!(summarize_flow(text), expected, "for {text:?}");
}

/// Issue 15: variables that double each other stop at a bound with a
/// located error; deep nesting is refused before it reaches the stack.
#[test]
fn expansion_bombs_are_bounded() {
    // Ten levels of ten copies: 10^10 characters if expanded.
    let mut text = String::from("a0=xxxxxxxxxx\n");
    for i in 1..=10 {
        let prev = format!("$a{}", i - 1);
        writeln!(text, "a{i}=\"{}\"", prev.repeat(10)).unwrap();
    }
    text.push_str("pip install \"$a10\"\n");
    assert!(text.len() < 600, "{}", text.len());
    let start = std::time::Instant::now();
    let s = Script::from_file_piece(&text, 0);
    let e = scan_script(&s, &|_| None).unwrap_err();
    assert!(e.message.contains("expands to more than"), "{}", e.message);
    assert!(start.elapsed().as_secs() < 5);
    // The error is at the assignment that passes the bound.
    assert!(text[e.span.start..e.span.end].starts_with("a"), "{e:?}");

    let deep = format!(
        "pip install {}x{}",
        "${a:-".repeat(20_000),
        "}".repeat(20_000)
    );
    let s = Script::from_file_piece(&deep, 0);
    let e = scan_script(&s, &|_| None).unwrap_err();
    assert!(e.message.contains("nested too deeply"), "{}", e.message);
}

#[test]
fn channel_configuration_applies_in_order() {
    let text = "conda config --add channels bioconda && conda config --append channels r \
                && conda config --remove channels defaults && conda config --set channel_priority strict";
    let s = Script::from_file_piece(text, 0);
    let events: Vec<ChannelConfig> = scan_script(&s, &|_| None)
        .unwrap()
        .into_iter()
        .filter_map(|e| match e {
            ShellEvent::ChannelConfig(c) => Some(c),
            ShellEvent::Install(_) => None,
        })
        .collect();
    let base = vec!["conda-forge".to_string(), "defaults".to_string()];
    let (channels, priority, skipped) = effective_channels(&base, &events);
    assert_eq!(channels, ["bioconda", "conda-forge", "r"]);
    assert_eq!(priority.as_deref(), Some("strict"));
    assert!(skipped.is_empty());
}

//! pip's rules against what a base image already has, checked on a real
//! build: a base with older releases installed, a Dockerfile whose pip
//! steps keep ("Requirement already satisfied"), upgrade (`-U`, only the
//! requested package; `--upgrade-strategy eager`, its dependencies too)
//! and reinstall (`--force-reinstall`) them. imagelock's lock must say
//! what pip inside the built image lists, and verify must accept the image.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::common::buildah::{Buildah, prepared};
use crate::common::http::StaticServer;
use crate::common::pyindex::PyIndex;
use crate::common::registry::{AuthKind, server};
use crate::common::{self, imagelock, run};

fn normalized(name: &str) -> String {
    name.to_ascii_lowercase().replace(['_', '.'], "-")
}

#[test]
fn pip_installer_rules_match_a_real_build() {
    let Some(prepared) = prepared() else { return };
    if !(common::require_tool("buildah", "apt-get install -y buildah")
        && common::require_tool("skopeo", "apt-get install -y skopeo"))
    {
        return;
    }
    let Some(registry) = server(AuthKind::Open) else {
        return;
    };
    let tmp = common::tempdir();
    let path = |rel: &str| tmp.path().join(rel);

    let mut ix = PyIndex::new(&path("index"));
    for v in ["1.0", "2.0"] {
        ix.wheel("lib", v, &[]);
        ix.wheel("tool", v, &[]);
        ix.wheel("extra", v, &[]);
        ix.wheel("app", v, &["lib>=1"]);
    }
    let index = StaticServer::start(path("index"));
    let index_url = format!("{}/simple/", index.url());

    let mirror = format!("{}/e2e", registry.addr);
    std::fs::write(
        path("registries.conf"),
        format!(
            "unqualified-search-registries = [\"docker.io\"]\nshort-name-mode = \"permissive\"\n\
             [[registry]]\nprefix = \"docker.io\"\nlocation = \"{mirror}\"\ninsecure = true\n"
        ),
    )
    .unwrap();
    let buildah = Buildah::new(path("buildah"), path("registries.conf"));
    let index_env = format!("PIP_INDEX_URL={index_url}");
    buildah.debian_base(
        &prepared,
        "localhost/e2e-python",
        &[
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG=C.UTF-8",
            &index_env,
            "PIP_DISABLE_PIP_VERSION_CHECK=1",
        ],
    );
    // The base: every project at 1.0, installed by pip.
    std::fs::create_dir_all(path("base")).unwrap();
    std::fs::write(
        path("base/Dockerfile"),
        "FROM localhost/e2e-python\nRUN python -m pip install -q lib==1.0 tool==1.0 extra==1.0 app==1.0\n",
    )
    .unwrap();
    buildah.bud(&path("base"), "localhost/e2e-pip-base", &[]);
    let base = format!("{mirror}/lab/pip-base:1");
    buildah.ok(&[
        "push",
        "-q",
        "--tls-verify=false",
        "localhost/e2e-pip-base",
        &format!("docker://{base}"),
    ]);

    let ex = path("ex");
    std::fs::create_dir_all(ex.join("app")).unwrap();
    // Line 2 keeps everything (app 1.0 satisfies); line 3 moves tool only;
    // line 4 reinstalls extra at the newest; line 5 moves app and, eager,
    // lib with it.
    std::fs::write(
        ex.join("app/Dockerfile"),
        "FROM lab/pip-base:1\n\
         RUN python -m pip install -q app\n\
         RUN python -m pip install -q -U tool\n\
         RUN python -m pip install -q --force-reinstall extra\n\
         RUN python -m pip install -q -U --upgrade-strategy eager app\n",
    )
    .unwrap();
    std::fs::write(
        ex.join("imagelock.toml"),
        format!(
            "lock-dir = \"lockfiles\"\nplatforms = [\"linux/amd64\"]\n\n\
             [images.app]\nfile = \"app/Dockerfile\"\n\n\
             [registries.\"docker.io\"]\nlocation = \"{mirror}\"\n"
        ),
    )
    .unwrap();
    let cli = |args: &[&str]| {
        let mut cmd = imagelock();
        cmd.current_dir(&ex)
            .env("XDG_CACHE_HOME", path("cache"))
            .args(args);
        run(&mut cmd)
    };
    let (code, out, err) = cli(&["freeze"]);
    assert_eq!(code, 0, "freeze failed:\n{out}\n{err}");
    let lock = imagelock::lock::LockedImage::read(&ex.join("lockfiles/app.lock")).unwrap();
    let per_line: Vec<(u32, Vec<String>)> = lock
        .steps
        .iter()
        .map(|s| {
            let mut v: Vec<String> = s
                .pypi
                .iter()
                .map(|p| format!("{}=={}", p.name, p.version_or_unknown()))
                .collect();
            v.sort();
            (s.line, v)
        })
        .collect();
    assert_eq!(
        per_line,
        [
            (2, vec![]),
            (3, vec!["tool==2.0".to_string()]),
            (4, vec!["extra==2.0".to_string()]),
            (5, vec!["app==2.0".to_string(), "lib==2.0".to_string()]),
        ],
        "{lock:?}"
    );

    // The real build of the same file, and what pip lists in it.
    buildah.bud(&ex.join("app"), "localhost/e2e-pip-app", &[]);
    let c = buildah.ok(&["from", "--pull-never", "localhost/e2e-pip-app"]);
    let listed: Value = serde_json::from_str(&buildah.ok(&[
        "run",
        c.trim(),
        "--",
        "python",
        "-m",
        "pip",
        "list",
        "--format",
        "json",
    ]))
    .unwrap();
    let theirs: BTreeMap<String, String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                normalized(p["name"].as_str().unwrap()),
                p["version"].as_str().unwrap().to_string(),
            )
        })
        .filter(|(n, _)| ["app", "lib", "tool", "extra"].contains(&n.as_str()))
        .collect();
    // What the image has: the base's 1.0, replaced by what the lock's steps
    // install.
    let mut ours: BTreeMap<String, String> = ["app", "lib", "tool", "extra"]
        .iter()
        .map(|n| (n.to_string(), "1.0".to_string()))
        .collect();
    for p in lock.final_pypi("linux/amd64") {
        ours.insert(normalized(&p.name), p.version_or_unknown().to_string());
    }
    assert_eq!(ours, theirs, "the lock says what pip installed");

    let oci = buildah.to_layout("localhost/e2e-pip-app", &path("oci/app"));
    let (code, out, err) = cli(&["verify", "--image", &oci, "app"]);
    assert_eq!(code, 0, "verify:\n{out}\n{err}");
}

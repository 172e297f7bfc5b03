//! Settings precedence: which pip index a step resolves against when the
//! step, the image's ENV, `imagelock.toml` and the host each name one.
//! Every index is a local server; the base is the world's python image.

use std::path::Path;
use std::process::Command;

use crate::common::fixture;
use crate::common::http::StaticServer;

/// A project with one image `FROM python:3.11-slim` whose Dockerfile body is
/// `body`, and `toml` appended to its imagelock.toml.
pub(crate) fn project(body: &str, toml: &str) -> tempfile::TempDir {
    let dir = crate::common::tempdir();
    std::fs::create_dir_all(dir.path().join("app")).unwrap();
    std::fs::create_dir_all(dir.path().join("home")).unwrap();
    std::fs::write(
        dir.path().join("app/Dockerfile"),
        format!("FROM python:3.11-slim\n{body}"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("imagelock.toml"),
        format!(
            "platforms = [\"linux/amd64\"]\n[images.app]\nfile = \"app/Dockerfile\"\n[registries.\"docker.io\"]\nlocation = \"oci:{}\"\n{toml}",
            fixture("world/images/docker.io").display()
        ),
    )
    .unwrap();
    dir
}

/// `imagelock freeze` in `dir` with a host environment of nothing but
/// `vars`: no pip or conda variable or user file of the machine running the
/// tests leaks in.
pub(crate) fn freeze(dir: &Path, vars: &[(&str, String)]) -> (i32, String, String) {
    imagelock_in(dir, vars, &["freeze"])
}

/// `imagelock ARGS` in `dir` with the clean host environment of [`freeze`].
pub(crate) fn imagelock_in(
    dir: &Path,
    vars: &[(&str, String)],
    args: &[&str],
) -> (i32, String, String) {
    let mut cmd: Command = crate::common::imagelock();
    for (k, _) in std::env::vars() {
        if k.starts_with("PIP_")
            || k.starts_with("XDG_")
            || k.starts_with("CONDA")
            || k.starts_with("UV_")
            || k == "VIRTUAL_ENV"
        {
            cmd.env_remove(k);
        }
    }
    cmd.current_dir(dir)
        .env("HOME", dir.join("home"))
        .env("XDG_CONFIG_DIRS", dir.join("no-global"))
        .env("IMAGELOCK_CACHE_DIR", dir.join("cache"))
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .args(args);
    crate::common::run(&mut cmd)
}

/// The index the lock says the step used, and that it was asked.
fn used(dir: &Path) -> Vec<String> {
    let lock = imagelock::lock::LockedImage::read(&dir.join("lockfiles/app.lock")).unwrap();
    lock.steps[0]
        .indexes
        .iter()
        .map(ToString::to_string)
        .collect()
}

pub(crate) fn index() -> StaticServer {
    StaticServer::start(fixture("world/pypi"))
}

pub(crate) fn simple(s: &StaticServer) -> String {
    format!("{}/simple", s.url())
}

pub(crate) fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Regression: with `PIP_INDEX_URL` set on the host, freeze resolved
/// against the public index (a dependency-confusion risk).
#[test]
fn pip_host_environment_is_used_when_nothing_above_sets_an_index() {
    let host = index();
    let dir = project("RUN pip install idna\n", "");
    let (code, _, err) = freeze(dir.path(), &[("PIP_INDEX_URL", simple(&host))]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(used(dir.path()), [simple(&host)]);
    assert!(!host.seen().is_empty());
}

/// The host's pip.conf, each in pip's order: the global file, the user
/// files (legacy then XDG), the site file of `VIRTUAL_ENV`, then
/// `PIP_CONFIG_FILE`, then the variables.
#[test]
fn pip_host_config_files_in_pips_order() {
    let (global, legacy, user, site, env_file, var) =
        (index(), index(), index(), index(), index(), index());
    let dir = project("RUN pip install idna\n", "");
    let d = dir.path();
    let conf = |s: &StaticServer| format!("[global]\nindex-url = {}\n", simple(s));
    write(&d.join("no-global/pip/pip.conf"), &conf(&global));
    let (code, _, err) = freeze(d, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(used(d), [simple(&global)]);

    write(&d.join("home/.pip/pip.conf"), &conf(&legacy));
    let (code, _, err) = freeze(d, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(used(d), [simple(&legacy)]);

    write(&d.join("home/.config/pip/pip.conf"), &conf(&user));
    let (code, _, err) = freeze(d, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(used(d), [simple(&user)]);

    write(&d.join("venv/pip.conf"), &conf(&site));
    let venv = [("VIRTUAL_ENV", d.join("venv").display().to_string())];
    let (code, _, err) = freeze(d, &venv);
    assert_eq!(code, 0, "{err}");
    assert_eq!(used(d), [simple(&site)]);

    write(&d.join("env.conf"), &conf(&env_file));
    let mut vars = venv.to_vec();
    vars.push(("PIP_CONFIG_FILE", d.join("env.conf").display().to_string()));
    let (code, _, err) = freeze(d, &vars);
    assert_eq!(code, 0, "{err}");
    assert_eq!(used(d), [simple(&env_file)]);

    vars.push(("PIP_INDEX_URL", simple(&var)));
    let (code, _, err) = freeze(d, &vars);
    assert_eq!(code, 0, "{err}");
    assert_eq!(used(d), [simple(&var)]);
}

/// imagelock.toml wins over the host; the image's ENV over imagelock.toml;
/// the step's own options over the image's ENV.
#[test]
fn pip_levels_above_the_host() {
    let (host, cfg, image, step) = (index(), index(), index(), index());
    let host_env = [("PIP_INDEX_URL", simple(&host))];
    let toml = format!("[pypi]\nindex-url = \"{}\"\n", simple(&cfg));

    let dir = project("RUN pip install idna\n", &toml);
    let (code, _, err) = freeze(dir.path(), &host_env);
    assert_eq!(code, 0, "{err}");
    assert_eq!(used(dir.path()), [simple(&cfg)]);

    let dir = project(
        &format!(
            "ENV PIP_INDEX_URL={}\nRUN pip install idna\n",
            simple(&image)
        ),
        &toml,
    );
    let (code, _, err) = freeze(dir.path(), &host_env);
    assert_eq!(code, 0, "{err}");
    assert_eq!(used(dir.path()), [simple(&image)]);

    let dir = project(
        &format!(
            "ENV PIP_INDEX_URL={}\nRUN pip install --index-url {} idna\n",
            simple(&image),
            simple(&step)
        ),
        &toml,
    );
    let (code, _, err) = freeze(dir.path(), &host_env);
    assert_eq!(code, 0, "{err}");
    assert_eq!(used(dir.path()), [simple(&step)]);
    assert!(host.seen().is_empty(), "the host's index is never asked");
}

/// An extra index on the host is added, as pip adds it, and a step's
/// `--extra-index-url` adds to it rather than replacing it.
#[test]
fn pip_extra_indexes_add_up_as_pips_do() {
    let (main, host_extra, step_extra) = (index(), index(), index());
    let dir = project(
        &format!(
            "RUN pip install --extra-index-url {} idna\n",
            simple(&step_extra)
        ),
        &format!("[pypi]\nindex-url = \"{}\"\n", simple(&main)),
    );
    let (code, _, err) = freeze(dir.path(), &[("PIP_EXTRA_INDEX_URL", simple(&host_extra))]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        used(dir.path()),
        [simple(&main), simple(&host_extra), simple(&step_extra)]
    );
}

/// Find-links the build uses and `--no-index` from any level are refused
/// with where they were set, never resolved against an index pip would not
/// use.
#[test]
fn pip_find_links_and_no_index_are_refused_naming_their_origin() {
    let main = index();
    let toml = format!("[pypi]\nindex-url = \"{}\"\n", simple(&main));
    let dir = project("ENV PIP_FIND_LINKS=/wheels\nRUN pip install idna\n", &toml);
    let (code, _, err) = freeze(dir.path(), &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("find-links `/wheels`") && err.contains("`PIP_FIND_LINKS` in the image's ENV"),
        "{err}"
    );
    assert!(err.contains("app/Dockerfile:3"), "{err}");

    let dir = project("RUN pip install --no-index idna\n", &toml);
    let (code, _, err) = freeze(dir.path(), &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`--no-index` on the step"), "{err}");

    // `PIP_NO_INDEX` on the host forbids the index: never fall back to one.
    let dir = project("RUN pip install idna\n", &toml);
    let (code, _, err) = freeze(dir.path(), &[("PIP_NO_INDEX", "1".to_string())]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("`PIP_NO_INDEX` in the host environment"),
        "{err}"
    );

    let dir = project("ENV PIP_NO_INDEX=1\nRUN pip install idna\n", &toml);
    let (code, _, err) = freeze(dir.path(), &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`PIP_NO_INDEX` in the image's ENV"), "{err}");

    let dir = project("ENV PIP_NO_INDEX=perhaps\nRUN pip install idna\n", &toml);
    let (code, _, err) = freeze(dir.path(), &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a yes/no value"), "{err}");
    assert!(
        main.seen().is_empty(),
        "nothing was resolved: {:?}",
        main.seen()
    );
}

/// The host's find-links are a directory the build does not see: named in
/// a warning, and the step resolves from its index.
#[test]
fn pip_host_find_links_are_named_and_left_out() {
    let main = index();
    let toml = format!("[pypi]\nindex-url = \"{}\"\n", simple(&main));
    let dir = project("RUN pip install idna\n", &toml);
    let (code, _, err) = freeze(dir.path(), &[("PIP_FIND_LINKS", "/wheels".to_string())]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("find-links `/wheels` (`PIP_FIND_LINKS` in the host environment) is not used"),
        "{err}"
    );
    assert_eq!(used(dir.path()), [simple(&main)]);
}

/// `PIP_PRE` on the host lets pre-releases in, as it does for pip.
#[test]
fn pip_pre_from_the_host() {
    let main = index();
    let toml = format!("[pypi]\nindex-url = \"{}\"\n", simple(&main));
    let dir = project("RUN pip install 'idna>=0'\n", &toml);
    let (code, _, err) = freeze(dir.path(), &[("PIP_PRE", "yes".to_string())]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = freeze(dir.path(), &[("PIP_PRE", "nope".to_string())]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("`PIP_PRE` in the host environment is `nope`"),
        "{err}"
    );
}

/// With nothing set anywhere, the index is PyPI: seen here through a proxy
/// on 127.0.0.1 that records where the client wanted to go.
#[test]
fn pip_default_is_pypi() {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    {
        let seen = seen.clone();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let mut line = String::new();
                let _ = BufReader::new(&stream).read_line(&mut line);
                seen.lock().unwrap().push(line.trim().to_string());
                let _ = stream.write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n");
            }
        });
    }
    let dir = project("RUN pip install idna\n", "");
    let proxy = format!("http://{addr}");
    let (code, _, err) = freeze(
        dir.path(),
        &[
            ("HTTPS_PROXY", proxy.clone()),
            ("https_proxy", proxy),
            ("NO_PROXY", String::new()),
            ("no_proxy", String::new()),
        ],
    );
    assert_eq!(code, 2, "{err}");
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter().any(|l| l.starts_with("CONNECT pypi.org:443")),
        "{seen:?} {err}"
    );
}

/// A conda project `FROM condaforge/miniforge3` installing jinja2 with the
/// channels its settings give.
pub(crate) fn conda_project(body: &str, toml: &str) -> tempfile::TempDir {
    let dir = project("", toml);
    std::fs::write(
        dir.path().join("app/Dockerfile"),
        format!("FROM condaforge/miniforge3:24.3.0-0\n{body}"),
    )
    .unwrap();
    dir
}

fn channels_used(dir: &Path) -> Vec<String> {
    let lock = imagelock::lock::LockedImage::read(&dir.join("lockfiles/app.lock")).unwrap();
    lock.steps[0]
        .channels
        .iter()
        .map(ToString::to_string)
        .collect()
}

pub(crate) fn channel() -> (StaticServer, String) {
    let s = StaticServer::start(fixture("world/conda"));
    let url = format!("{}/conda-forge", s.url());
    (s, url)
}

/// The base image's `.condarc` over imagelock.toml and the host (whose
/// search path and merge order the unit tests of `resolve::conda` cover);
/// their channel alias still names where channels are; the definition's
/// `conda config` over the image; the step's `-c` over everything.
#[test]
fn conda_levels() {
    let ((_a, user), (_b, rc), (_c, var), (_d, cfg), (_e, step)) =
        (channel(), channel(), channel(), channel(), channel());
    // The miniforge base's own `/opt/conda/.condarc` says `conda-forge`:
    // its channels replace the host's and imagelock.toml's, and the host's
    // `channel_alias` says where `conda-forge` is.
    let dir = conda_project("RUN mamba install -y jinja2\n", "");
    let d = dir.path();
    let alias = user.trim_end_matches("/conda-forge").to_string();
    write(
        &d.join("home/.condarc"),
        &format!("channel_alias: {alias}\nchannels:\n  - {rc}\n"),
    );
    let (code, _, err) = freeze(d, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(channels_used(d), [user.as_str()]);

    let vars = vec![("CONDA_CHANNELS", var.clone())];
    let (code, _, err) = freeze(d, &vars);
    assert_eq!(code, 0, "{err}");
    assert_eq!(channels_used(d), [user.as_str()], "the image's level wins");

    let toml = format!("[conda]\nchannels = [\"{cfg}\"]\nchannel-alias = \"{alias}\"\n");
    let dir = conda_project("RUN mamba install -y jinja2\n", &toml);
    let (code, _, err) = freeze(dir.path(), &vars);
    assert_eq!(code, 0, "{err}");
    assert_eq!(channels_used(dir.path()), [user.as_str()]);
    let dir = conda_project(
        "RUN conda config --add channels extra && mamba install -y jinja2\n",
        &toml,
    );
    let (code, _, err) = freeze(dir.path(), &vars);
    assert_ne!(
        code, 0,
        "the definition's channel goes first and does not exist"
    );
    assert!(err.contains(&format!("{alias}/extra")), "{err}");

    let dir = conda_project(
        &format!("RUN mamba install -y --override-channels -c {step} jinja2\n"),
        &toml,
    );
    let (code, _, err) = freeze(dir.path(), &vars);
    assert_eq!(code, 0, "{err}");
    assert_eq!(channels_used(dir.path()), [step]);
}

/// A project `FROM nowhere.invalid/e2e/python:3.11-slim` (a registry that
/// does not exist) installing nothing, with `toml` in its imagelock.toml.
fn registry_project(toml: &str) -> tempfile::TempDir {
    let dir = crate::common::tempdir();
    write(
        &dir.path().join("app/Dockerfile"),
        "FROM nowhere.invalid/e2e/python:3.11-slim\nRUN echo built\n",
    );
    write(
        &dir.path().join("imagelock.toml"),
        &format!("platforms = [\"linux/amd64\"]\n[images.app]\nfile = \"app/Dockerfile\"\n{toml}"),
    );
    dir
}

/// The real registry, with the world's python image pushed, behind a
/// proxy that counts what it is asked.
fn pushed_registry() -> Option<crate::common::registry::FaultProxy> {
    use crate::common::registry::{AuthKind, FaultProxy, server};
    let registry = server(AuthKind::Open)?;
    registry.push(
        &fixture("world/images/docker.io/library/python"),
        "3.11-slim",
        "e2e/python:3.11-slim",
        false,
    );
    Some(FaultProxy::start(&registry.addr))
}

/// registries.conf as podman reads it: `CONTAINERS_REGISTRIES_CONF`, a
/// `[[registry]]` location, a mirror (tags too, podman's default), and
/// imagelock.toml's `[registries.X]` over them.
#[test]
fn registries_conf_locations_and_mirrors() {
    let Some(proxy) = pushed_registry() else {
        return;
    };
    let want = "sha256:b0bac9e435e7c26d0740198916fd9c8f34e946db179d7aaf1b27bffce47a6655";
    let base_digest = |dir: &Path| {
        let lock = imagelock::lock::LockedImage::read(&dir.join("lockfiles/app.lock")).unwrap();
        lock.bases[0].digest.to_string()
    };
    let conf = |dir: &Path, text: &str| {
        write(&dir.join("registries.conf"), text);
        vec![(
            "CONTAINERS_REGISTRIES_CONF",
            dir.join("registries.conf").display().to_string(),
        )]
    };

    let dir = registry_project("");
    let vars = conf(
        dir.path(),
        &format!(
            "[[registry]]\nprefix = \"nowhere.invalid\"\nlocation = \"{}\"\n",
            proxy.addr
        ),
    );
    let (code, _, err) = freeze(dir.path(), &vars);
    assert_eq!(code, 0, "{err}");
    assert_eq!(base_digest(dir.path()), want);
    let asked = proxy.count("/v2/e2e/python/manifests/");
    assert!(asked > 0);

    let dir = registry_project("");
    let vars = conf(
        dir.path(),
        &format!(
            "[[registry]]\nprefix = \"nowhere.invalid\"\n[[registry.mirror]]\nlocation = \"{}\"\n",
            proxy.addr
        ),
    );
    let (code, _, err) = freeze(dir.path(), &vars);
    assert_eq!(code, 0, "{err}");
    assert_eq!(base_digest(dir.path()), want);
    assert!(proxy.count("/v2/e2e/python/manifests/3.11-slim") > 0);

    // imagelock.toml's entry for the registry replaces registries.conf's.
    let layouts = crate::common::tempdir();
    std::fs::create_dir_all(layouts.path().join("e2e")).unwrap();
    std::os::unix::fs::symlink(
        fixture("world/images/docker.io/library/python"),
        layouts.path().join("e2e/python"),
    )
    .unwrap();
    let dir = registry_project(&format!(
        "[registries.\"nowhere.invalid\"]\nlocation = \"oci:{}\"\n",
        layouts.path().display()
    ));
    let before = proxy.count("/v2/");
    let vars = conf(
        dir.path(),
        &format!(
            "[[registry]]\nprefix = \"nowhere.invalid\"\nlocation = \"{}\"\n",
            proxy.addr
        ),
    );
    let (code, _, err) = freeze(dir.path(), &vars);
    assert_eq!(code, 0, "{err}");
    assert_eq!(base_digest(dir.path()), want);
    assert_eq!(
        proxy.count("/v2/"),
        before,
        "registries.conf's location is not asked"
    );

    // A registries.conf imagelock cannot follow is an error naming it.
    let dir = registry_project("");
    let vars = conf(
        dir.path(),
        "[[registry]]\nprefix = \"nowhere.invalid/e2e\"\nlocation = \"x\"\n",
    );
    let (code, _, err) = freeze(dir.path(), &vars);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("registries.conf`: prefix `nowhere.invalid/e2e` names a namespace"),
        "{err}"
    );
}

/// Registry credentials: `DOCKER_CONFIG`'s config.json, `REGISTRY_AUTH_FILE`
/// (containers auth.json), and Docker's first when both name the registry.
/// The password never reaches the lock or the output.
#[test]
fn registry_credentials_from_docker_config_and_registry_auth_file() {
    use crate::common::registry::{AuthKind, PASSWORD, USER, server};
    use base64::Engine as _;
    let Some(registry) = server(AuthKind::Htpasswd) else {
        return;
    };
    registry.push(
        &fixture("world/images/docker.io/library/python"),
        "3.11-slim",
        "e2e/python:3.11-slim",
        false,
    );
    let dir = crate::common::tempdir();
    let d = dir.path();
    write(
        &d.join("app/Dockerfile"),
        &format!("FROM {}/e2e/python:3.11-slim\n", registry.addr),
    );
    write(
        &d.join("imagelock.toml"),
        "platforms = [\"linux/amd64\"]\n[images.app]\nfile = \"app/Dockerfile\"\n",
    );
    let auths = |password: &str| {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{password}"));
        format!(
            "{{\"auths\": {{\"{}\": {{\"auth\": \"{auth}\"}}}}}}",
            registry.addr
        )
    };
    write(&d.join("docker/config.json"), &auths(PASSWORD));
    write(&d.join("docker-wrong/config.json"), &auths("wrong-pw"));
    write(&d.join("auth.json"), &auths(PASSWORD));
    let docker = |sub: &str| ("DOCKER_CONFIG", d.join(sub).display().to_string());
    let auth_file = (
        "REGISTRY_AUTH_FILE",
        d.join("auth.json").display().to_string(),
    );
    let none = ("DOCKER_CONFIG", d.join("no-docker").display().to_string());

    let (code, _, err) = freeze(d, std::slice::from_ref(&none));
    assert_eq!(code, 2, "anonymous is refused: {err}");
    let (code, out, err) = freeze(d, &[docker("docker")]);
    assert_eq!(code, 0, "{err}");
    // Each run asks the registry again rather than keep the locked pin.
    let again = ["freeze", "--update-base"];
    let (code, _, err) = imagelock_in(d, &[none, auth_file.clone()], &again);
    assert_eq!(code, 0, "{err}");
    // Docker's config.json is read first, as Docker reads only it.
    let (code, _, err) = imagelock_in(d, &[docker("docker-wrong"), auth_file], &again);
    assert_eq!(code, 2, "{err}");
    let lock = std::fs::read_to_string(d.join("lockfiles/app.lock")).unwrap();
    for text in [&lock, &out, &err] {
        assert!(
            !text.contains(PASSWORD) && !text.contains("wrong-pw"),
            "{text}"
        );
    }
}

/// A short name that podman and buildah would take elsewhere than Docker
/// (an alias, or several search registries) is named in a warning; the
/// lock follows Docker's rule.
#[test]
fn short_names_that_podman_reads_otherwise_are_named() {
    let dir = project("RUN echo built\n", "");
    let d = dir.path();
    // The user's drop-in is read last, after the system's (which may
    // alias `python` already).
    write(&d.join("registries.conf"), "");
    let drop_in = d.join("home/.config/containers/registries.conf.d/50-test.conf");
    write(&drop_in, "[aliases]\n\"python\" = \"quay.io/lab/python\"\n");
    let vars = [(
        "CONTAINERS_REGISTRIES_CONF",
        d.join("registries.conf").display().to_string(),
    )];
    let (code, _, err) = freeze(d, &vars);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("base `python:3.11-slim` is `docker.io/library/python` for Docker but `quay.io/lab/python` for podman and buildah"),
        "{err}"
    );

    write(
        &drop_in,
        "unqualified-search-registries = [\"registry.example\", \"docker.io\"]\n[aliases]\n\"python\" = \"\"\n",
    );
    let (code, _, err) = freeze(d, &vars);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(
            "`python` is a short name and registries.conf searches `registry.example`, `docker.io`"
        ),
        "{err}"
    );

    // An alias to Docker's own name says nothing.
    write(
        &drop_in,
        "[aliases]\n\"python\" = \"docker.io/library/python\"\n",
    );
    let (code, _, err) = freeze(d, &vars);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("podman"), "{err}");
}

/// A private index (401 without credentials): credentials from the index
/// URL's userinfo, from `.netrc`, and uv's `UV_INDEX` with
/// `UV_INDEX_<NAME>_USERNAME`/`_PASSWORD`; never in the lock or the output.
#[test]
fn private_index_credentials() {
    let private = StaticServer::start_private(fixture("world/pypi"), "alice:pa55-index");
    let host = private.addr.to_string();
    let secret = "pa55-index";
    let check = |dir: &Path, code: i32, out: &str, err: &str| {
        assert_eq!(code, 0, "{err}");
        let lock = std::fs::read_to_string(dir.join("lockfiles/app.lock")).unwrap();
        assert!(lock.contains(&format!("http://{host}/simple")), "{lock}");
        for text in [lock.as_str(), out, err] {
            assert!(!text.contains(secret) && !text.contains("alice"), "{text}");
        }
    };

    let dir = project("RUN pip install idna\n", "");
    let (code, _, err) = freeze(
        dir.path(),
        &[("PIP_INDEX_URL", format!("http://{host}/simple"))],
    );
    assert_eq!(code, 2, "401 without credentials: {err}");
    assert!(!err.contains(secret), "{err}");

    let (code, out, err) = imagelock_in(
        dir.path(),
        &[(
            "PIP_INDEX_URL",
            format!("http://alice:{secret}@{host}/simple"),
        )],
        &["-vv", "freeze"],
    );
    check(dir.path(), code, &out, &err);

    let dir = project("RUN pip install idna\n", "");
    write(
        &dir.path().join("home/.netrc"),
        &format!("machine 127.0.0.1 login alice password {secret}\n"),
    );
    let (code, out, err) = freeze(
        dir.path(),
        &[("PIP_INDEX_URL", format!("http://{host}/simple"))],
    );
    check(dir.path(), code, &out, &err);

    let dir = project("RUN uv pip install --system idna\n", "");
    let (code, out, err) = freeze(
        dir.path(),
        &[
            ("UV_INDEX", format!("internal=http://{host}/simple")),
            ("UV_INDEX_INTERNAL_USERNAME", "alice".to_string()),
            ("UV_INDEX_INTERNAL_PASSWORD", secret.to_string()),
        ],
    );
    check(dir.path(), code, &out, &err);
}

/// A private conda channel (401 without credentials): basic auth in the
/// channel URL, and `.netrc`; never in the lock or the output.
#[test]
fn private_channel_credentials() {
    let private = StaticServer::start_private(fixture("world/conda"), "bob:pa55-channel");
    let host = private.addr.to_string();
    let secret = "pa55-channel";
    // The base's own `.condarc` names `conda-forge`: the host's
    // `custom_channels` says where that channel is.
    let condarc = |dir: &Path, url: &str| {
        write(
            &dir.join("home/.condarc"),
            &format!(
                "custom_channels:\n  conda-forge: {}\n",
                url.trim_end_matches("/conda-forge")
            ),
        );
    };
    let dir = conda_project("RUN mamba install -y jinja2\n", "");
    condarc(dir.path(), &format!("http://{host}/conda-forge"));
    let (code, _, err) = freeze(dir.path(), &[]);
    assert_eq!(code, 2, "401 without credentials: {err}");
    // A wrong password fails, and the error does not show it.
    condarc(
        dir.path(),
        &format!("http://bob:wr0ng-pw@{host}/conda-forge"),
    );
    let (code, _, err) = imagelock_in(dir.path(), &[], &["-vv", "freeze"]);
    assert_eq!(code, 2, "{err}");
    assert!(!err.contains("wr0ng-pw"), "{err}");

    for netrc in [false, true] {
        let dir = conda_project("RUN mamba install -y jinja2\n", "");
        if netrc {
            condarc(dir.path(), &format!("http://{host}/conda-forge"));
            write(
                &dir.path().join("home/.netrc"),
                &format!("machine 127.0.0.1 login bob password {secret}\n"),
            );
        } else {
            condarc(
                dir.path(),
                &format!("http://bob:{secret}@{host}/conda-forge"),
            );
        }
        let (code, out, err) = imagelock_in(dir.path(), &[], &["-vv", "freeze"]);
        assert_eq!(code, 0, "netrc {netrc}: {err}");
        let lock = std::fs::read_to_string(dir.path().join("lockfiles/app.lock")).unwrap();
        assert!(
            lock.contains(&format!("http://{host}/conda-forge")),
            "{lock}"
        );
        for text in [lock.as_str(), &out, &err] {
            assert!(!text.contains(secret), "{text}");
        }
    }
}

/// Private channels with the credentials rattler stores (pixi,
/// rattler-build): `RATTLER_AUTH_FILE`, else `~/.rattler/credentials.json`,
/// holding user/password, a bearer token or a conda token per host; never
/// in the lock or the output. A broken file is an error naming it.
#[test]
fn rattler_credentials_file() {
    let basic = StaticServer::start_private(fixture("world/conda"), "erin:pa55-rattler");
    let bearer = StaticServer::start_expecting(fixture("world/conda"), "Bearer bt-51c0ffee");
    let token_root = crate::common::tempdir();
    std::fs::create_dir_all(token_root.path().join("t")).unwrap();
    std::os::unix::fs::symlink(
        fixture("world/conda"),
        token_root.path().join("t/ct-9d2e77aa"),
    )
    .unwrap();
    let token = StaticServer::start(token_root.path());
    let secrets = ["pa55-rattler", "bt-51c0ffee", "ct-9d2e77aa"];
    let cases = [
        (
            &basic,
            r#"{"127.0.0.1": {"BasicHTTP": {"username": "erin", "password": "pa55-rattler"}}}"#,
        ),
        (&bearer, r#"{"127.0.0.1": {"BearerToken": "bt-51c0ffee"}}"#),
        (&token, r#"{"127.0.0.1": {"CondaToken": "ct-9d2e77aa"}}"#),
    ];
    for (i, (server, file)) in cases.iter().enumerate() {
        for default_path in [false, true] {
            let dir = conda_project("RUN mamba install -y jinja2\n", "");
            write(
                &dir.path().join("home/.condarc"),
                &format!("custom_channels:\n  conda-forge: {}\n", server.url()),
            );
            let (code, _, err) = freeze(dir.path(), &[]);
            assert_eq!(code, 2, "case {i}: refused without credentials: {err}");

            let vars = if default_path {
                write(&dir.path().join("home/.rattler/credentials.json"), file);
                Vec::new()
            } else {
                write(&dir.path().join("auth.json"), file);
                vec![(
                    "RATTLER_AUTH_FILE",
                    dir.path().join("auth.json").display().to_string(),
                )]
            };
            let (code, out, err) = imagelock_in(dir.path(), &vars, &["-vv", "freeze"]);
            assert_eq!(code, 0, "case {i}, default path {default_path}: {err}");
            let lock = std::fs::read_to_string(dir.path().join("lockfiles/app.lock")).unwrap();
            assert!(
                lock.contains(&format!("{}/conda-forge", server.url())),
                "{lock}"
            );
            for text in [lock.as_str(), &out, &err] {
                for secret in secrets {
                    assert!(!text.contains(secret), "case {i}: {text}");
                }
            }
        }
    }

    let dir = conda_project("RUN mamba install -y jinja2\n", "");
    write(
        &dir.path().join("auth.json"),
        r#"{"127.0.0.1": {"BearerToken": "#,
    );
    let auth = dir.path().join("auth.json").display().to_string();
    let (code, _, err) = freeze(dir.path(), &[("RATTLER_AUTH_FILE", auth.clone())]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&auth), "{err}");
}

/// A conda channel that takes its token in the path, as anaconda.org and
/// quetz do (`https://host/t/<TOKEN>/channel`): without the token path the
/// channel is not found; with it, freeze locks the channel by its identity
/// with the token masked (`/t/<TOKEN>/`, as conda masks it; one mask, also
/// on each package's channel), and neither the lock, the exports, stdout nor
/// the `-vv` log show the token.
#[test]
fn channel_token_in_the_url() {
    let token = "tk-7f3e9a1c2b4d6e8f0a1b";
    let root = crate::common::tempdir();
    std::fs::create_dir_all(root.path().join("t")).unwrap();
    std::os::unix::fs::symlink(fixture("world/conda"), root.path().join("t").join(token)).unwrap();
    let server = StaticServer::start(root.path());
    let host = server.addr.to_string();
    // The test image's own `.condarc` names `conda-forge`, and the image's
    // channels win over the host's; the host maps that name to the local
    // server (with or without a token), as a mirror would.
    let condarc = |dir: &Path, url: &str| {
        let prefix = url.strip_suffix("/conda-forge").unwrap();
        write(
            &dir.join("home/.condarc"),
            &format!("custom_channels:\n  conda-forge: {prefix}\n"),
        );
    };
    // The channel without its token is not there.
    let dir = conda_project("RUN mamba install -y jinja2\n", "");
    condarc(dir.path(), &format!("http://{host}/conda-forge"));
    let (code, _, err) = freeze(dir.path(), &[]);
    assert_eq!(code, 2, "no channel without the token: {err}");
    // A wrong token fails, and the error does not show it.
    condarc(
        dir.path(),
        &format!("http://{host}/t/tk-wr0ng-t0ken/conda-forge"),
    );
    let (code, _, err) = imagelock_in(dir.path(), &[], &["-vv", "freeze"]);
    assert_eq!(code, 2, "{err}");
    assert!(!err.contains("tk-wr0ng-t0ken"), "{err}");

    let dir = conda_project("RUN mamba install -y jinja2\n", "");
    condarc(dir.path(), &format!("http://{host}/t/{token}/conda-forge"));
    let (code, out, err) = imagelock_in(dir.path(), &[], &["-vv", "freeze"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        server
            .seen()
            .iter()
            .any(|s| s.path.starts_with(&format!("/t/{token}/conda-forge/"))),
        "the token path was asked"
    );
    let lock = std::fs::read_to_string(dir.path().join("lockfiles/app.lock")).unwrap();
    assert!(
        lock.contains(&format!(
            "channels = [\"http://{host}/t/<TOKEN>/conda-forge\"]"
        )),
        "the channel's identity, without the token: {lock}"
    );
    for line in lock.lines().filter(|l| l.starts_with("channel = ")) {
        assert_eq!(
            line,
            format!("channel = \"http://{host}/t/<TOKEN>/conda-forge\""),
            "one mask for the channel"
        );
    }
    let mut texts = vec![lock, out, err];
    for args in [
        &[
            "export",
            "--to",
            "conda-explicit",
            "app",
            "--platform",
            "linux/amd64",
        ][..],
        &["export", "--to", "sbom", "app"][..],
        &["-vv", "verify"][..],
        &["-vv", "drift"][..],
    ] {
        let (code, out, err) = imagelock_in(dir.path(), &[], args);
        assert!(code == 0 || code == 1, "{args:?}: {out}\n{err}");
        texts.push(out);
        texts.push(err);
    }
    for text in &texts {
        assert!(!text.contains(token), "{text}");
    }
}

/// pip's keyring provider: with `PIP_KEYRING_PROVIDER=subprocess`, an
/// index login with a user and no password runs `keyring get INDEX-URL
/// USER` (the `keyring` on PATH) for the password, as pip does; without it
/// the index answers 401. The password never reaches the lock or the output.
#[test]
fn keyring_subprocess_gives_the_index_password() {
    use std::os::unix::fs::PermissionsExt as _;
    let private = StaticServer::start_private(fixture("world/pypi"), "dave:kr-5ecret");
    let host = private.addr.to_string();
    let bin = crate::common::tempdir();
    let log = bin.path().join("asked");
    let script = bin.path().join("keyring");
    write(
        &script,
        &format!(
            "#!/bin/sh\necho \"$*\" >> '{log}'\nif [ \"$1 $2 $3\" = \"get http://{host}/simple dave\" ]; then echo kr-5ecret; exit 0; fi\nexit 1\n",
            log = log.display()
        ),
    );
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let index = ("PIP_INDEX_URL", format!("http://dave@{host}/simple"));

    let dir = project("RUN pip install idna\n", "");
    let (code, _, err) = freeze(dir.path(), &[index.clone(), ("PATH", path.clone())]);
    assert_eq!(code, 2, "no keyring provider, no password: {err}");
    assert!(!log.exists(), "keyring is not asked unless configured");

    let (code, out, err) = imagelock_in(
        dir.path(),
        &[
            index.clone(),
            ("PATH", path.clone()),
            ("PIP_KEYRING_PROVIDER", "subprocess".to_string()),
        ],
        &["-vv", "freeze"],
    );
    assert_eq!(code, 0, "{err}");
    let asked = std::fs::read_to_string(&log).unwrap();
    assert!(
        asked
            .lines()
            .any(|l| l == format!("get http://{host}/simple dave")),
        "{asked}"
    );
    let lock = std::fs::read_to_string(dir.path().join("lockfiles/app.lock")).unwrap();
    assert!(lock.contains(&format!("http://{host}/simple")), "{lock}");
    for text in [lock.as_str(), &out, &err] {
        assert!(!text.contains("kr-5ecret"), "{text}");
    }

    // `[pypi] keyring-provider` in imagelock.toml says the same, and wins
    // over the host's variable.
    let _ = std::fs::remove_file(&log);
    let dir = project(
        "RUN pip install idna
",
        "[pypi]
keyring-provider = \"subprocess\"
",
    );
    let (code, _, err) = freeze(dir.path(), &[index.clone(), ("PATH", path.clone())]);
    assert_eq!(code, 0, "the configured provider gives the password: {err}");
    assert!(log.exists(), "keyring was asked");
    let _ = std::fs::remove_file(&log);
    let dir = project(
        "RUN pip install idna
",
        "[pypi]
keyring-provider = \"disabled\"
",
    );
    let (code, _, err) = freeze(
        dir.path(),
        &[
            index,
            ("PATH", path),
            ("PIP_KEYRING_PROVIDER", "subprocess".to_string()),
        ],
    );
    assert_eq!(code, 2, "disabled in the configuration: {err}");
    assert!(!log.exists(), "keyring is not asked when disabled");
}

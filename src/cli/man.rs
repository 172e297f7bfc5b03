//! `imagelock man`: the manual pages, with an ENVIRONMENT section listing
//! every variable imagelock reads.

use std::path::Path;

use clap::CommandFactory;

use crate::cli::Opts;

/// Every environment variable imagelock reads, and what for. A test checks
/// that each variable the code reads is here.
pub const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "IMAGELOCK_CONFIG",
        "The configuration file, as --config (which wins).",
    ),
    (
        "PIP_KEYRING_PROVIDER",
        "subprocess: a pip index login with a user and no password asks `keyring get INDEX-URL USER` (the index URL as configured, without credentials; then `keyring get HOST[:PORT] USER`), as pip does; killed after 30 seconds.",
    ),
    (
        "IMAGELOCK_CACHE_DIR",
        "Where index pages, repodata, image blobs and wheels are cached. Default: $XDG_CACHE_HOME/imagelock, else ~/.cache/imagelock. The cache-dir key of imagelock.toml wins.",
    ),
    ("XDG_CACHE_HOME", "The base of the default cache directory."),
    (
        "SOURCE_DATE_EPOCH",
        "Seconds since 1970: the creation time export --to spdx writes (reproducible SBOMs). Default: now.",
    ),
    (
        "HOME",
        "Where ~/.cache, ~/.condarc, ~/.docker/config.json and ~/.config/containers/auth.json are.",
    ),
    (
        "NO_COLOR",
        "When set and not empty, no colours with --color auto (no-color.org).",
    ),
    (
        "FORCE_COLOR",
        "When set and not empty, colours with --color auto even when stderr is not a terminal; NO_COLOR wins.",
    ),
    (
        "DOCKER_HOST",
        "The Docker Engine that docker-daemon: images are read from (unix:// or tcp://). Default: unix:///var/run/docker.sock.",
    ),
    (
        "DOCKER_CONFIG",
        "The directory of Docker's config.json (registry credentials and helpers). Default: ~/.docker.",
    ),
    (
        "REGISTRY_AUTH_FILE",
        "A containers auth.json with registry credentials, read before the others.",
    ),
    (
        "XDG_RUNTIME_DIR",
        "Where $XDG_RUNTIME_DIR/containers/auth.json (podman, buildah, skopeo logins) is.",
    ),
    (
        "XDG_CONFIG_HOME, XDG_CONFIG_DIRS",
        "Where the user's and the system's pip.conf, conda .condarc and containers registries.conf are looked for.",
    ),
    (
        "RATTLER_AUTH_FILE",
        "rattler's credentials file for private conda channels (else ~/.rattler/credentials.json).",
    ),
    (
        "CONDARC",
        "A .condarc read last of conda's search path (channels, channel aliases, custom channels, mirrors).",
    ),
    (
        "CONDA_ROOT, CONDA_PREFIX",
        "Conda installations whose .condarc files are on conda's search path.",
    ),
    (
        "CONDA_CHANNELS, CONDA_CHANNEL_ALIAS, CONDA_CHANNEL_PRIORITY, CONDA_ADD_PIP_AS_PYTHON_DEPENDENCY",
        "conda's own variables: they win over the host's .condarc files, and lose to imagelock.toml and the image's own settings.",
    ),
    (
        "PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_NO_INDEX, PIP_FIND_LINKS, PIP_PRE",
        "The host's pip settings: below a step's options, the image's ENV and imagelock.toml; above pip.conf (see the README's precedence table).",
    ),
    (
        "PIP_CONFIG_FILE",
        "A pip.conf read as pip reads it (os.devnull: no file at all).",
    ),
    (
        "VIRTUAL_ENV",
        "The site pip.conf of the active virtual environment.",
    ),
    (
        "UV_INDEX_URL, UV_DEFAULT_INDEX, UV_EXTRA_INDEX_URL, UV_INDEX, UV_FIND_LINKS, UV_NO_INDEX, UV_PRERELEASE",
        "The host's uv settings, for `uv pip` steps, at the same level as the PIP_ variables for pip.",
    ),
    (
        "UV_INDEX_<NAME>_USERNAME, UV_INDEX_<NAME>_PASSWORD",
        "Credentials for the uv index named NAME; never written to a lock or an output.",
    ),
    (
        "NETRC",
        "A .netrc with credentials for package indexes and conda channels. Default: ~/.netrc.",
    ),
    (
        "CONTAINERS_REGISTRIES_CONF",
        "The registries.conf used for registry mirrors and short-name checks, instead of the user's or /etc/containers/registries.conf.",
    ),
    (
        "CONTAINERS_STORAGE_CONF",
        "The storage.conf that names the containers-storage store `verify --image containers-storage:NAME` reads, instead of the user's or /etc/containers/storage.conf.",
    ),
    (
        "STORAGE_DRIVER",
        "The containers-storage driver (overlay, vfs) when neither the reference nor storage.conf names one.",
    ),
    (
        "XDG_DATA_HOME",
        "Where a rootless containers-storage store is by default: $XDG_DATA_HOME/containers/storage, else ~/.local/share/containers/storage.",
    ),
    (
        "USER",
        "Replaces $USER in the paths of storage.conf, as containers-storage does.",
    ),
    (
        "GIT_SSH_COMMAND",
        "The ssh command `git ls-remote` uses for ssh repositories; when unset, imagelock runs ssh in batch mode so it never prompts.",
    ),
    (
        "HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY",
        "Proxies for registries, indexes and channels, and the hosts reached without one (also lower case).",
    ),
    (
        "SSL_CERT_FILE, SSL_CERT_DIR",
        "Certificate authorities trusted besides the system's.",
    ),
];

/// The ENVIRONMENT section in roff.
fn environment_roff() -> String {
    let mut out = String::from(".SH ENVIRONMENT\n");
    for (name, what) in ENVIRONMENT {
        out.push_str(".TP\n\\fB");
        out.push_str(&roff(name));
        out.push_str("\\fR\n");
        out.push_str(&roff(what));
        out.push('\n');
    }
    out
}

/// Text for roff: backslashes and dashes escaped, no line starting with a
/// control character.
fn roff(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// The pages: `imagelock.1`, then `imagelock-COMMAND.1` for each command,
/// as (file name, roff).
pub fn pages() -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut pages = Vec::new();
    let mut main = Vec::new();
    clap_mangen::Man::new(Opts::command()).render(&mut main)?;
    main.extend_from_slice(environment_roff().as_bytes());
    pages.push(("imagelock.1".to_string(), main));
    for sub in Opts::command().get_subcommands() {
        if sub.is_hide_set() {
            continue;
        }
        let name = format!("imagelock-{}", sub.get_name());
        let mut page = Vec::new();
        clap_mangen::Man::new(
            sub.clone()
                .name(name.clone())
                .version(env!("CARGO_PKG_VERSION")),
        )
        .render(&mut page)?;
        page.extend_from_slice(environment_roff().as_bytes());
        pages.push((format!("{name}.1"), page));
    }
    Ok(pages)
}

/// Writes every page into `dir` (made if missing); returns the files.
pub fn write_pages(dir: &Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot make `{}`: {e}", dir.display()))?;
    let mut written = Vec::new();
    for (name, page) in pages()? {
        let path = dir.join(name);
        std::fs::write(&path, page)
            .map_err(|e| anyhow::anyhow!("cannot write `{}`: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

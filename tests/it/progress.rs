//! Progress where stderr is not a terminal (a CI log): nothing by default,
//! plain lines naming what is resolved and fetched, with counts, with `-v`.

use crate::settings::{
    channel, conda_project, freeze, imagelock_in, index, project, simple, write,
};

#[test]
fn plain_progress_lines_with_v_on_a_pipe() {
    let (_channels, conda_forge) = channel();
    let dir = conda_project("RUN mamba install -y jinja2\n", "");
    write(
        &dir.path().join("home/.condarc"),
        &format!(
            "channel_alias: {}\n",
            conda_forge.trim_end_matches("/conda-forge")
        ),
    );
    let (code, _, quiet) = freeze(dir.path(), &[]);
    assert_eq!(code, 0, "{quiet}");
    assert!(
        !quiet.contains("resolving"),
        "no progress without -v: {quiet}"
    );

    // Again with -v (stderr is a pipe here), without the lock: a current
    // lock would be kept without resolving anything.
    std::fs::remove_dir_all(dir.path().join("lockfiles")).unwrap();
    let (code, _, err) = imagelock_in(dir.path(), &[], &["-v", "freeze", "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    for want in [
        "resolving 1 of 1 images: app",
        "app: pinning bases",
        "app: linux/amd64: app/Dockerfile:2",
        "fetched repodata ",
        "/linux-64 (",
        " records)",
        "app: resolved (1 of 1 images done)",
    ] {
        assert!(err.contains(want), "`{want}` in:\n{err}");
    }

    // Two images: the counts go up to two.
    let index = index();
    let dir = project(
        "RUN pip install idna\n",
        &format!(
            "[pypi]\nindex-url = \"{}\"\n[images.other]\nfile = \"app/Dockerfile\"\n",
            simple(&index)
        ),
    );
    let (code, _, err) = imagelock_in(dir.path(), &[], &["-v", "freeze", "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("of 2 images: "), "{err}");
    assert!(err.contains("(2 of 2 images done)"), "{err}");
}

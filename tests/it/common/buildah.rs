//! buildah for the tests that build images for real, and what
//! `tests/e2e/prepare.py` made for them (a Debian root filesystem, wheels).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{repo_root, run};

/// What `tests/e2e/prepare.py` made, or `None` (skip) when it has not run.
pub fn prepared() -> Option<PathBuf> {
    let dir = std::env::var_os("IMAGELOCK_E2E_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/e2e"));
    let ready = dir.join("rootfs.tar").is_file() && dir.join("wheels").is_dir();
    if !ready {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the build end-to-end test needs `python3 tests/e2e/prepare.py` (as root) first"
        );
        eprintln!(
            "skipping: run `python3 tests/e2e/prepare.py` (as root) to prepare the build test"
        );
    }
    ready.then_some(dir)
}

pub struct Buildah {
    root: PathBuf,
    registries_conf: PathBuf,
}

impl Buildah {
    /// buildah with its own storage under `root` (vfs, chroot isolation) and
    /// the given registries.conf.
    pub fn new(root: PathBuf, registries_conf: PathBuf) -> Buildah {
        Buildah {
            root,
            registries_conf,
        }
    }

    /// Commits the prepared Debian root filesystem as `tag`, with `env`.
    pub fn debian_base(&self, prepared: &Path, tag: &str, env: &[&str]) {
        let c = self.ok(&["from", "scratch"]);
        let c = c.trim();
        self.ok(&[
            "add",
            "-q",
            c,
            prepared.join("rootfs.tar").to_str().unwrap(),
            "/",
        ]);
        let mut config = vec!["config", "--os", "linux", "--arch", "amd64"];
        for e in env {
            config.extend(["--env", e]);
        }
        config.push(c);
        self.ok(&config);
        self.ok(&["commit", "-q", c, tag]);
    }
    pub fn cmd(&self) -> Command {
        let mut c = Command::new("buildah");
        c.arg("--root")
            .arg(self.root.join("storage"))
            .arg("--runroot")
            .arg(self.root.join("run"))
            .args(["--storage-driver", "vfs"])
            .env("CONTAINERS_REGISTRIES_CONF", &self.registries_conf)
            .env("BUILDAH_ISOLATION", "chroot");
        c
    }

    pub fn ok(&self, args: &[&str]) -> String {
        self.checked(self.cmd().args(args))
    }

    pub fn bud(&self, dir: &Path, tag: &str, extra: &[&str]) {
        self.checked(
            self.cmd()
                .args(["bud", "--isolation", "chroot", "-q", "-t", tag])
                .args(extra)
                .arg(dir),
        );
    }

    /// Runs a buildah command that must succeed. On failure the message
    /// ends with buildah's own last words and the space left where its
    /// storage lives (vfs copies every layer whole), so a CI log that keeps
    /// only the tail of a panic still says why.
    fn checked(&self, cmd: &mut Command) -> String {
        let (code, out, err) = run(cmd);
        if code != 0 {
            let df = Command::new("df")
                .args(["-h", "--output=avail,size,target"])
                .arg(&self.root)
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            let tail: Vec<&str> = err.lines().rev().take(15).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            panic!(
                "{cmd:?} exited {code}\nstdout:\n{out}\nspace where buildah keeps its storage:\n{df}\nstderr (last lines):\n{}",
                tail.join("\n")
            );
        }
        out
    }

    /// Pushes `image` to an OCI layout and returns its `oci:` reference.
    pub fn to_layout(&self, image: &str, dir: &Path) -> String {
        std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
        let reference = format!("oci:{}:built", dir.display());
        self.ok(&["push", "-q", image, &reference]);
        reference
    }
}

pub fn ok(cmd: &mut Command) -> String {
    let (code, out, err) = run(cmd);
    assert_eq!(code, 0, "{cmd:?} failed:\n{out}\n{err}");
    out
}

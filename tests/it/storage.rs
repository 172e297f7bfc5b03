//! `verify --image containers-storage:…` on images really built with buildah
//! into a store of the test's own, with the `vfs` driver and, where the
//! kernel lets buildah mount overlayfs, `overlay`: the test world's Python
//! base, a wheel installed by real pip, a base package deleted (whiteouts)
//! and a directory replaced (opaque). The lock is made by `freeze`; the
//! right image matches it, one with another version of the wheel is
//! reported naming the package, and the store is never written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::pyindex::PyIndex;
use crate::common::{self, run};

const SITE: &str = "usr/local/lib/python3.11/site-packages";

/// buildah on one store: graph root, run root and driver.
struct Store {
    driver: &'static str,
    root: PathBuf,
    run: PathBuf,
}

impl Store {
    fn buildah(&self) -> Command {
        let mut c = Command::new("buildah");
        c.arg("--root")
            .arg(&self.root)
            .arg("--runroot")
            .arg(&self.run)
            .args(["--storage-driver", self.driver])
            .env("BUILDAH_ISOLATION", "chroot");
        c
    }

    fn ok(&self, args: &[&str]) -> Result<String, String> {
        let (code, out, err) = run(self.buildah().args(args));
        if code == 0 {
            Ok(out.trim().to_string())
        } else {
            Err(format!("buildah {args:?}: {err}"))
        }
    }

    /// `containers-storage:[DRIVER@ROOT+RUN]IMAGE`.
    fn reference(&self, image: &str) -> String {
        format!(
            "containers-storage:[{}@{}+{}]{image}",
            self.driver,
            self.root.display(),
            self.run.display()
        )
    }

    /// The world's `python:3.11-slim` with `wheel` installed by real pip,
    /// the base's `wheel` package deleted and `etc/ssl/certs` replaced,
    /// committed as `tag`.
    fn build(&self, world_python: &Path, wheel: &Path, tag: &str) -> Result<(), String> {
        let base = format!("oci:{}:3.11-slim", world_python.display());
        let c = self.ok(&["from", "-q", &base])?;
        let mount = PathBuf::from(self.ok(&["mount", &c])?);
        let site = mount.join(SITE);
        let (code, out, err) = run(Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "-q",
                "--no-deps",
                "--no-index",
                "--upgrade",
                "--target",
            ])
            .arg(&site)
            .arg(wheel));
        assert_eq!(code, 0, "pip install failed:\n{out}\n{err}");
        // Deleted from the base: whiteouts in the new layer.
        for gone in ["wheel", "wheel-0.45.1.dist-info"] {
            std::fs::remove_dir_all(site.join(gone)).unwrap();
        }
        // Replaced: an opaque directory.
        let certs = mount.join("etc/ssl/certs");
        std::fs::remove_dir_all(&certs).unwrap();
        std::fs::create_dir_all(&certs).unwrap();
        std::fs::write(certs.join("lab.pem"), "lab\n").unwrap();
        self.ok(&["umount", &c])?;
        self.ok(&["commit", "-q", &c, tag])?;
        self.ok(&["rm", &c])?;
        Ok(())
    }
}

/// buildah's overlay driver bind-mounts the store's `overlay` directory on
/// itself and leaves it mounted; unmount it so the store can be removed.
impl Drop for Store {
    fn drop(&mut self) {
        if self.driver == "overlay" {
            let _ = Command::new("umount")
                .arg(self.root.join("overlay"))
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// Every path of `dir` with its size and modification time: the store
/// before and after verify.
fn listing(dir: &Path) -> BTreeMap<PathBuf, (u64, std::time::SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let meta = std::fs::symlink_metadata(e.path()).unwrap();
            if meta.is_dir() {
                stack.push(e.path());
            }
            out.insert(e.path(), (meta.len(), meta.modified().unwrap()));
        }
    }
    out
}

#[test]
fn verify_images_in_containers_storage() {
    if !(common::require_tool("buildah", "apt-get install -y buildah")
        && common::require_tool("skopeo", "apt-get install -y skopeo")
        && common::require_tool("python3", "apt-get install -y python3 python3-pip"))
    {
        return;
    }
    let tmp = common::tempdir();
    let path = |rel: &str| tmp.path().join(rel);
    let world = common::repo_root().join("fixtures/world/images/docker.io");
    let world_python = world.join("library/python");

    let mut index = PyIndex::new(&path("index"));
    for v in ["1.0", "2.0"] {
        index.wheel("tinypkg", v, &[]);
    }
    let wheel = |v: &str| path(&format!("index/files/tinypkg-{v}-py3-none-any.whl"));

    // The lock, made by freeze against the world's base and the index.
    let ex = path("ex");
    std::fs::create_dir_all(ex.join("app")).unwrap();
    std::fs::write(
        ex.join("app/Dockerfile"),
        format!(
            "FROM python:3.11-slim\n\
             RUN pip install tinypkg==1.0 && rm -rf /{SITE}/wheel /{SITE}/wheel-0.45.1.dist-info\n"
        ),
    )
    .unwrap();
    std::fs::write(
        ex.join("imagelock.toml"),
        format!(
            "lock-dir = \"lockfiles\"\nplatforms = [\"linux/amd64\"]\n\n\
             [images.app]\nfile = \"app/Dockerfile\"\n\n\
             [pypi]\nindex-url = \"{}\"\n\n\
             [registries.\"docker.io\"]\nlocation = \"oci:{}\"\n",
            path("index/simple").display(),
            world.display()
        ),
    )
    .unwrap();
    let cli = |args: &[&str], env: &[(&str, &Path)]| {
        let mut cmd = common::imagelock();
        cmd.current_dir(&ex)
            .env("XDG_CACHE_HOME", path("cache"))
            .env_remove("CONTAINERS_STORAGE_CONF")
            .env_remove("STORAGE_DRIVER")
            .args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        run(&mut cmd)
    };
    let (code, out, err) = cli(&["freeze"], &[]);
    assert_eq!(code, 0, "freeze failed:\n{out}\n{err}");

    let mut checked = 0;
    for driver in ["vfs", "overlay"] {
        let store = Store {
            driver,
            root: path(&format!("{driver}/root")),
            run: path(&format!("{driver}/run")),
        };
        if let Err(why) = store.build(&world_python, &wheel("1.0"), "localhost/app:good") {
            // overlay needs the kernel to mount overlayfs for buildah.
            assert!(driver != "vfs", "{why}");
            eprintln!("skipping the overlay store: {why}");
            continue;
        }
        store
            .build(&world_python, &wheel("2.0"), "localhost/app:changed")
            .unwrap();
        let layout = format!("oci:{}:t", path(&format!("{driver}/layout")).display());
        store
            .ok(&["push", "-q", "localhost/app:good", &layout])
            .unwrap();
        // What buildah and skopeo say of the image (they take the store's
        // write locks, so before the store is listed).
        let id = store
            .ok(&["images", "-q", "--no-trunc", "localhost/app:good"])
            .unwrap();
        let id = id.trim().trim_start_matches("sha256:").to_string();
        let (code, skopeo_digest, err) = run(Command::new("skopeo").args([
            "inspect",
            "--format",
            "{{.Digest}}",
            &store.reference("localhost/app:good"),
        ]));
        assert_eq!(code, 0, "{err}");
        let before = listing(&store.root);
        if driver == "overlay" {
            // The overlay layers hold what the reader must apply: the
            // deleted package as 0/0 character devices, the replaced
            // directory marked opaque.
            use std::os::unix::fs::{FileTypeExt, MetadataExt};
            let whiteout = before.keys().any(|p| {
                p.ends_with(format!("diff/{SITE}/wheel"))
                    && std::fs::symlink_metadata(p)
                        .is_ok_and(|m| m.file_type().is_char_device() && m.rdev() == 0)
            });
            let opaque = before.keys().any(|p| {
                p.ends_with("diff/etc/ssl/certs")
                    && xattr::get(p, "trusted.overlay.opaque")
                        .is_ok_and(|v| v.as_deref() == Some(b"y".as_slice()))
            });
            assert!(whiteout && opaque, "whiteout {whiteout}, opaque {opaque}");
        }

        // The catalogue is the one the pushed copy's layers give: the
        // whiteouts and the opaque directory applied.
        let read = |reference: &str| {
            let location: imagelock::image::ImageLocation = reference.parse().unwrap();
            imagelock::image::read_catalogue(
                imagelock::image::open_local(&location).unwrap().as_ref(),
                &imagelock::image::Platform::linux_amd64(),
                &imagelock::image::ReadOptions::default(),
            )
            .unwrap()
        };
        let stored = read(&store.reference("localhost/app:good"));
        let pushed = read(&layout);
        let dists = |c: &imagelock::image::Catalogue| -> Vec<(String, String)> {
            c.python_dists
                .iter()
                .map(|d| (d.name.clone(), d.version.clone()))
                .collect()
        };
        assert_eq!(dists(&stored), dists(&pushed), "{driver}");
        assert!(
            dists(&stored)
                .iter()
                .any(|(n, v)| n == "tinypkg" && v == "1.0")
                && !dists(&stored).iter().any(|(n, _)| n == "wheel"),
            "{driver}: {:?}",
            dists(&stored)
        );
        assert_eq!(stored.os_packages, pushed.os_packages, "{driver}");
        assert_eq!(stored.image.config_digest, pushed.image.config_digest);
        // The manifest digest is the store's, as skopeo reads it there (a
        // push writes a manifest of its own).
        assert_eq!(
            stored
                .image
                .manifest_digest
                .as_ref()
                .map(ToString::to_string),
            Some(skopeo_digest.trim().to_string())
        );

        // verify: the right image matches, as its pushed copy does, and
        // says where it was read from.
        let good = store.reference("localhost/app:good");
        let (code, stdout, stderr) = cli(&["verify", "--image", &good], &[]);
        assert_eq!(code, 0, "{driver}: {stdout}{stderr}");
        assert!(
            stdout.contains("app linux/amd64: matches its lock"),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!(
                "note: read from containers-storage: manifest `{}`",
                stored.image.manifest_digest.as_ref().unwrap()
            )),
            "{stdout}"
        );
        let (code, pushed_out, stderr) = cli(&["verify", "--image", &layout], &[]);
        assert_eq!(code, 0, "{pushed_out}{stderr}");
        let without_note: String = stdout
            .lines()
            .filter(|l| !l.contains("note: read from containers-storage"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(without_note, pushed_out, "{driver}");

        // Another version of the wheel is reported, naming the package.
        let changed = store.reference("localhost/app:changed");
        let (code, stdout, stderr) = cli(&["verify", "--image", &changed], &[]);
        assert_eq!(code, 1, "{driver}: {stdout}{stderr}");
        assert!(
            stdout.contains("tinypkg: lock has 1.0") && stdout.contains("image has 2.0"),
            "{driver}: {stdout}"
        );

        // The store storage.conf names, found without a store in the
        // reference; by image ID too.
        let conf = path(&format!("{driver}/storage.conf"));
        std::fs::write(
            &conf,
            format!(
                "[storage]\ndriver = \"{driver}\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
                store.root.display(),
                store.run.display()
            ),
        )
        .unwrap();
        for reference in [
            "containers-storage:localhost/app:good".to_string(),
            format!("containers-storage:@{}", &id[..12]),
        ] {
            let (code, stdout, stderr) = cli(
                &["verify", "--image", &reference],
                &[("CONTAINERS_STORAGE_CONF", &conf)],
            );
            assert_eq!(code, 0, "{reference}: {stdout}{stderr}");
        }

        // Clear errors: an unknown image, a missing store, a driver
        // imagelock does not read.
        let (code, _, stderr) = cli(
            &["verify", "--image", &store.reference("localhost/nope:1")],
            &[],
        );
        assert_eq!(code, 2, "{stderr}");
        assert!(
            stderr.contains("no image `localhost/nope:1`")
                && stderr.contains("`localhost/app:good`"),
            "{stderr}"
        );
        let missing = format!(
            "containers-storage:[{driver}@{}]localhost/app:good",
            path("no-store").display()
        );
        let (code, _, stderr) = cli(&["verify", "--image", &missing], &[]);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains("there is no store at"), "{stderr}");
        let btrfs = format!(
            "containers-storage:[btrfs@{}]localhost/app:good",
            store.root.display()
        );
        let (code, _, stderr) = cli(&["verify", "--image", &btrfs], &[]);
        assert_eq!(code, 2, "{stderr}");
        assert!(
            stderr.contains("uses the `btrfs` storage driver, which imagelock does not read"),
            "{stderr}"
        );

        // A writer's lock is waited for, then the image is read.
        let lock = store.root.join(format!("{driver}-layers/layers.lock"));
        let mut holder = Command::new("python3")
            .args([
                "-c",
                "import fcntl, sys, time\n\
                 f = open(sys.argv[1], 'r+')\n\
                 fcntl.lockf(f, fcntl.LOCK_EX)\n\
                 print('locked', flush=True)\n\
                 time.sleep(2)\n",
            ])
            .arg(&lock)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "locked");
        let started = std::time::Instant::now();
        let (code, _, stderr) = cli(&["verify", "--image", &good], &[]);
        assert_eq!(code, 0, "{stderr}");
        assert!(
            started.elapsed() >= std::time::Duration::from_millis(1000),
            "verify did not wait for the writer's lock"
        );
        holder.wait().unwrap();

        // Nothing in the store was written.
        let after = listing(&store.root);
        let changed: Vec<_> = after
            .iter()
            .filter(|(p, m)| before.get(*p) != Some(m))
            .map(|(p, _)| p)
            .chain(before.keys().filter(|p| !after.contains_key(*p)))
            .collect();
        assert!(changed.is_empty(), "{driver}: verify changed {changed:?}");
        checked += 1;
    }
    assert!(checked >= 1);
}

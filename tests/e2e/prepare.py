#!/usr/bin/env python3
"""Fetches what the build end-to-end test (tests/it/build.rs) needs once.

The test freezes, rewrites, builds and verifies example images for real, so
it needs a real Debian base with a real Python and the real wheels its pip
steps install. Neither fits in the repository; this script makes them in a
cache directory before the hermetic test runs (CI calls it from .ci/test,
like the apt packages it installs):

  rootfs.tar   Debian 12 (bookworm) minbase with python3, python3-pip and
               python-is-python3, made with debootstrap (needs root and
               Debian's archive). Like the official python images, pip may
               install into the system (no EXTERNALLY-MANAGED marker).
  wheels/      the linux/amd64 wheels the committed locks of the example
               images in IMAGES install, fetched from PyPI by file name and
               checked against the locked sha256.

Usage: prepare.py [CACHE_DIR]   (default: target/e2e, or $IMAGELOCK_E2E_DIR)
Re-running does only what is missing.
"""
import hashlib
import re
import os
import shutil
import ssl
import subprocess
import sys
import tomllib
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGES = ["base-notebook", "scipy-ml-notebook"]
PLATFORM = "linux/amd64"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = "python3,python3-pip,python-is-python3"


def main():
    cache = (sys.argv[1] if len(sys.argv) > 1 else None) or os.environ.get(
        "IMAGELOCK_E2E_DIR"
    ) or os.path.join(ROOT, "target", "e2e")
    os.makedirs(cache, exist_ok=True)
    rootfs(cache)
    wheels(cache)


def rootfs(cache):
    out = os.path.join(cache, "rootfs.tar")
    if os.path.exists(out):
        return
    if os.geteuid() != 0 or not shutil.which("debootstrap"):
        sys.exit("prepare: making the Debian base needs root and debootstrap (apt-get install -y debootstrap)")
    work = os.path.join(cache, "rootfs")
    shutil.rmtree(work, ignore_errors=True)
    print(f"prepare: debootstrap {SUITE} with {PACKAGES}", file=sys.stderr)
    subprocess.run(
        ["debootstrap", "--variant=minbase", f"--include={PACKAGES}", SUITE, work, MIRROR],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    # What the official slim images leave out, and the PEP 668 marker they
    # do not have (pip installs into /usr/local there).
    for rel in ["var/cache/apt", "var/lib/apt/lists", "usr/share/doc", "usr/share/man",
                "usr/share/locale", "usr/share/info"]:
        path = os.path.join(work, rel)
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path, exist_ok=True)
    for managed in ["usr/lib/python3.11/EXTERNALLY-MANAGED"]:
        path = os.path.join(work, managed)
        if os.path.exists(path):
            os.remove(path)
    subprocess.run(
        ["tar", "-C", work, "--numeric-owner", "--sort=name", "-cf", out + ".part", "."],
        check=True,
    )
    os.rename(out + ".part", out)
    shutil.rmtree(work)


def wheels(cache):
    out = os.path.join(cache, "wheels")
    os.makedirs(out, exist_ok=True)
    cafile = os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt"
    context = ssl.create_default_context(cafile=cafile if os.path.exists(cafile) else None)
    wanted = {}
    for image in IMAGES:
        with open(os.path.join(ROOT, "lockfiles", f"{image}.lock"), "rb") as f:
            lock = tomllib.load(f)
        for step in lock.get("steps", []):
            for pkg in step.get("pypi", []):
                if PLATFORM in pkg.get("platforms", []):
                    wanted[pkg["file"]] = (pkg["name"], pkg["version"], pkg["sha256"])
    for file, (name, version, sha256) in sorted(wanted.items()):
        path = os.path.join(out, file)
        if os.path.exists(path) and digest(path) == sha256:
            continue
        # The simple API (PEP 503 HTML) is what every PyPI mirror serves.
        page = f"https://pypi.org/simple/{name}/"
        with urllib.request.urlopen(page, context=context) as r:
            html = r.read().decode()
        match = [h for h in re.findall(r'href="([^"]+)"', html)
                 if urllib.parse.unquote(h.split("#")[0].rsplit("/", 1)[-1]) == file]
        if not match:
            sys.exit(f"prepare: {page} has no file `{file}` ({name} {version})")
        url = urllib.parse.urljoin(page, match[0].split("#")[0])
        print(f"prepare: fetching {file}", file=sys.stderr)
        with urllib.request.urlopen(url, context=context) as r, open(path + ".part", "wb") as f:
            shutil.copyfileobj(r, f)
        if digest(path + ".part") != sha256:
            os.remove(path + ".part")
            sys.exit(f"prepare: `{file}` does not have the locked sha256 {sha256}")
        os.rename(path + ".part", path)


def digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


if __name__ == "__main__":
    main()

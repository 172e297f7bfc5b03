#!/usr/bin/env python3
"""Prepare the hermetic apt repository the apt tests serve on 127.0.0.1.

Network, once: fetch a handful of real .deb files from Debian's archive
(bookworm), each checked against the sha256 of a `Packages` file whose
`InRelease` gpgv verified with Debian's keyring; cache them under
`target/apt-fixture/debs/`. Then, offline, build signed repositories from
them with the real tools (`apt-ftparchive`, `gpg`) under
`target/apt-fixture/`:

  repo/dists/stable    InRelease signed with an RSA 4096 key
  repo/dists/edsuite   Release + Release.gpg signed with an Ed25519 key
  repo/dists/expired   InRelease (RSA) with a Valid-Until in the past
  keys/rsa.gpg, keys/ed25519.gpg, keys/other.gpg (a key that signed nothing)

    python3 tests/apt/prepare.py
"""

import gzip
import hashlib
import lzma
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OUT = os.path.join(ROOT, "target", "apt-fixture")
ARCHIVE = "http://deb.debian.org/debian"
SUITE = "bookworm"
PACKAGES = ["hello", "libc6", "libgcc-s1", "gcc-12-base", "mawk", "sensible-utils", "netbase"]
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


def get(url):
    with urllib.request.urlopen(url, timeout=120) as r:
        return r.read()


def fetch_debs():
    debs = os.path.join(OUT, "debs")
    os.makedirs(debs, exist_ok=True)
    if all(any(f.startswith(p + "_") for f in os.listdir(debs)) for p in PACKAGES):
        return debs
    with tempfile.TemporaryDirectory() as tmp:
        inrelease = os.path.join(tmp, "InRelease")
        with open(inrelease, "wb") as f:
            f.write(get(f"{ARCHIVE}/dists/{SUITE}/InRelease"))
        text = subprocess.run(["gpgv", "--keyring", KEYRING, "--output", "-", inrelease],
                              check=True, capture_output=True).stdout.decode()
    want = "main/binary-amd64/Packages.xz"
    digest = next(l.split()[0] for l in text.split("SHA256:")[1].splitlines() if l.strip().endswith(" " + want))
    packed = get(f"{ARCHIVE}/dists/{SUITE}/{want}")
    assert hashlib.sha256(packed).hexdigest() == digest, "Packages.xz does not match InRelease"
    stanzas = lzma.decompress(packed).decode().split("\n\n")
    for name in PACKAGES:
        st = next(s for s in stanzas if s.startswith(f"Package: {name}\n"))
        fields = dict(l.split(": ", 1) for l in st.splitlines() if ": " in l and not l.startswith(" "))
        data = get(f"{ARCHIVE}/{fields['Filename']}")
        if hashlib.sha256(data).hexdigest() != fields["SHA256"]:
            sys.exit(f"{fields['Filename']}: sha256 does not match Packages")
        with open(os.path.join(debs, os.path.basename(fields["Filename"])), "wb") as f:
            f.write(data)
    return debs


def gpg(home, *args, **kw):
    return subprocess.run(["gpg", "--batch", "--homedir", home, "--pinentry-mode", "loopback",
                           "--passphrase", ""] + list(args), check=True, capture_output=True, **kw)


def main():
    debs = fetch_debs()
    repo = os.path.join(OUT, "repo")
    shutil.rmtree(repo, ignore_errors=True)
    pool = os.path.join(repo, "pool", "main")
    os.makedirs(pool)
    for f in sorted(os.listdir(debs)):
        shutil.copy(os.path.join(debs, f), pool)
    keys = os.path.join(OUT, "keys")
    shutil.rmtree(keys, ignore_errors=True)
    os.makedirs(keys)
    home = tempfile.mkdtemp()
    try:
        for name, algo in [("rsa", "rsa4096"), ("ed25519", "ed25519"), ("other", "rsa3072")]:
            gpg(home, "--quick-gen-key", f"imagelock {name} <{name}@test.invalid>", algo, "sign", "never")
            with open(os.path.join(keys, f"{name}.gpg"), "wb") as f:
                f.write(gpg(home, "--export", f"{name}@test.invalid").stdout)
        for suite, key, detached, valid_until in [
            ("stable", "rsa", False, None),
            ("edsuite", "ed25519", True, None),
            ("expired", "rsa", False, "Thu, 01 Jan 2015 00:00:00 UTC"),
        ]:
            d = os.path.join(repo, "dists", suite, "main", "binary-amd64")
            os.makedirs(d)
            packages = subprocess.run(["apt-ftparchive", "packages", "pool"], cwd=repo,
                                      check=True, capture_output=True).stdout
            with open(os.path.join(d, "Packages"), "wb") as f:
                f.write(packages)
            with open(os.path.join(d, "Packages.gz"), "wb") as f:
                f.write(gzip.compress(packages, mtime=0))
            release = subprocess.run(
                ["apt-ftparchive",
                 "-o", "APT::FTPArchive::Release::Origin=imagelock-test",
                 "-o", "APT::FTPArchive::Release::Label=imagelock-test",
                 "-o", f"APT::FTPArchive::Release::Suite={suite}",
                 "-o", f"APT::FTPArchive::Release::Codename={suite}",
                 "-o", "APT::FTPArchive::Release::Architectures=amd64",
                 "-o", "APT::FTPArchive::Release::Components=main",
                 "release", "."],
                cwd=os.path.join(repo, "dists", suite), check=True, capture_output=True).stdout.decode()
            if valid_until:
                release = release.replace("\nDate:", f"\nValid-Until: {valid_until}\nDate:", 1)
            rel = os.path.join(repo, "dists", suite, "Release")
            with open(rel, "w") as f:
                f.write(release)
            uid = f"{key}@test.invalid"
            if detached:
                gpg(home, "--local-user", uid, "--armor", "--detach-sign", "--output", rel + ".gpg", rel)
            else:
                gpg(home, "--local-user", uid, "--clearsign", "--output",
                    os.path.join(repo, "dists", suite, "InRelease"), rel)
                os.remove(rel)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(f"apt fixture ready in {OUT}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Prepare the hermetic RPM repository and base root the rpm tests use.

Offline, with the real tools only: `rpmbuild` builds a handful of small
packages (noarch and x86_64, a multilib i686 twin, rich and file
dependencies, obsoletes, weak dependencies), `createrepo_c` makes the
repository and `gpg` signs its `repomd.xml`; then the real
`dnf --installroot` installs a base root from that repository, the way a
distribution's base image is made. Everything lands under
`target/rpm-fixture/`:

  repo/9/x86_64/       the repository (repodata/, *.rpm), repomd.xml.asc
  keys/repo.gpg        the key that signed repomd.xml
  root/                the base root dnf installed (rpmdb.sqlite inside)
  base.tar             that root as one layer
  root-qa.txt          `rpm -qa --root root` of it, one NEVRA a line

The base's `/etc/yum.repos.d/fixture.repo` names the repository at
`http://rpm.fixture.invalid/repo/$releasever/$basearch/`; the tests map that
host to the server they start on 127.0.0.1.

    python3 tests/rpm/prepare.py
"""

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import hashlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OUT = os.path.join(ROOT, "target", "rpm-fixture")


REPO_FILE = """[fixture]
name=imagelock fixture $releasever - $basearch
baseurl=http://rpm.fixture.invalid/repo/$releasever/$basearch/
enabled=1
gpgcheck=0
repo_gpgcheck=1
gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-fixture
"""

OS_RELEASE = """NAME="Fixture Linux"
ID=fixture
ID_LIKE="rhel fedora"
VERSION_ID="9"
PLATFORM_ID="platform:el9"
"""

# name, version-release, arch, fields (Requires, Provides, ...), files {path: content}
PACKAGES = [
    ("fixture-release", "9.0-1", "noarch",
     {"Provides": ["system-release", "system-release(releasever) = 9"]},
     {"/etc/os-release": OS_RELEASE, "/etc/yum.repos.d/fixture.repo": REPO_FILE}),
    ("libfoo", "1.0-1", "x86_64", {"Provides": ["libfoo.so.1()(64bit)"]}, {"/usr/lib64/libfoo.so.1": "foo 1.0\n"}),
    ("libfoo", "1.0-1", "i686", {"Provides": ["libfoo.so.1"]}, {"/usr/lib/libfoo.so.1": "foo 1.0 32\n"}),
    ("libfoo", "1.1-1", "x86_64", {"Provides": ["libfoo.so.1()(64bit)"]}, {"/usr/lib64/libfoo.so.1": "foo 1.1\n"}),
    ("libfoo", "1.1-1", "i686", {"Provides": ["libfoo.so.1"]}, {"/usr/lib/libfoo.so.1": "foo 1.1 32\n"}),
    ("tool", "1.0-1", "x86_64", {"Requires": ["libfoo.so.1()(64bit)"]}, {"/usr/bin/tool": "tool 1.0\n"}),
    ("tool", "2:0.9-1", "x86_64", {"Requires": ["libfoo.so.1()(64bit)", "libfoo >= 1.1"]},
     {"/usr/bin/tool": "tool 0.9 epoch 2\n"}),
    ("helper", "3.0-1", "noarch", {}, {"/usr/bin/helper": "helper\n"}),
    ("needs-file", "1.0-1", "noarch", {"Requires": ["/usr/bin/helper"]}, {"/usr/share/needs-file/x": "x\n"}),
    ("editor-a", "1.0-1", "noarch", {"Provides": ["editor"]}, {"/usr/share/editor-a/x": "a\n"}),
    ("editor-b", "1.0-1", "noarch", {"Provides": ["editor"]}, {"/usr/share/editor-b/x": "b\n"}),
    ("writer", "1.0-1", "noarch", {"Requires": ["(editor-b or editor-a)"]}, {"/usr/share/writer/x": "w\n"}),
    ("oldname", "1.0-1", "noarch", {}, {"/usr/share/oldname/x": "old\n"}),
    ("newname", "2.0-1", "noarch", {"Obsoletes": ["oldname < 2"], "Provides": ["oldname = 2"]},
     {"/usr/share/newname/x": "new\n"}),
    ("app", "1.0-1", "noarch", {"Requires": ["tool"], "Recommends": ["extra"], "Suggests": ["app-doc"]},
     {"/usr/share/app/x": "app\n"}),
    ("extra", "1.0-1", "noarch", {}, {"/usr/share/extra/x": "extra\n"}),
    ("app-doc", "1.0-1", "noarch", {}, {"/usr/share/doc/app/x": "doc\n"}),
    ("conflicted", "1.0-1", "noarch", {"Conflicts": ["editor-a"]}, {"/usr/share/conflicted/x": "c\n"}),
    ("addon", "1.0-1", "noarch", {"Requires": ["(helper if writer)"]}, {"/usr/share/addon/x": "addon\n"}),
    ("app-langpack", "1.0-1", "noarch", {"Supplements": ["app"]}, {"/usr/share/app-langpack/x": "l\n"}),
    ("broken", "1.0-1", "noarch", {"Requires": ["missing-capability >= 2"]}, {"/usr/share/broken/x": "b\n"}),
]


def spec(name, evr, arch, fields, files):
    epoch = None
    if ":" in evr:
        epoch, evr = evr.split(":", 1)
    version, release = evr.rsplit("-", 1)
    lines = [f"Name: {name}", f"Version: {version}", f"Release: {release}",
             "Summary: imagelock fixture package", "License: MIT",
             "AutoReqProv: no"]
    if arch == "noarch":
        # Archful packages take their arch from `--target` (rpmbuild refuses
        # a BuildArch the host cannot run, such as i686 here).
        lines.append("BuildArch: noarch")
    if epoch:
        lines.append(f"Epoch: {epoch}")
    for key, values in fields.items():
        lines += [f"{key}: {v}" for v in values]
    lines += ["%description", f"{name}, made by imagelock's tests.", "%install"]
    for path, content in files.items():
        lines.append(f"mkdir -p %{{buildroot}}{os.path.dirname(path)}")
        lines.append(f"cat > %{{buildroot}}{path} <<'EOF'\n{content}EOF")
    lines.append("%files")
    lines += list(files)
    return "\n".join(lines) + "\n"


def run(*args, **kw):
    return subprocess.run(list(args), check=True, capture_output=True, **kw)


def build_packages(repo, tmp):
    top = os.path.join(tmp, "top")
    for i, (name, evr, arch, fields, files) in enumerate(PACKAGES):
        path = os.path.join(tmp, f"{i}-{name}.spec")
        with open(path, "w") as f:
            f.write(spec(name, evr, arch, fields, files))
        run("rpmbuild", "-bb", "--quiet", "--target", arch, "--define", f"_topdir {top}",
            "--define", "_buildhost fixture.invalid", "--define", "use_source_date_epoch_as_buildtime 1",
            path, env={**os.environ, "SOURCE_DATE_EPOCH": "1700000000"})
    for d, _, fs in os.walk(os.path.join(top, "RPMS")):
        for f in fs:
            shutil.copy(os.path.join(d, f), repo)


def main():
    # The fixture is rebuilt whenever this script changes.
    with open(os.path.abspath(__file__), "rb") as f:
        VERSION = hashlib.sha256(f.read()).hexdigest()
    stamp = os.path.join(OUT, "VERSION")
    if os.path.exists(stamp) and open(stamp).read() == VERSION:
        print(f"rpm fixture ready in {OUT}")
        return
    for tool in ["rpmbuild", "createrepo_c", "dnf", "gpg"]:
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing (apt-get install rpm createrepo-c dnf gnupg)")
    shutil.rmtree(OUT, ignore_errors=True)
    repo = os.path.join(OUT, "repo", "9", "x86_64")
    keys = os.path.join(OUT, "keys")
    os.makedirs(repo)
    os.makedirs(keys)
    with tempfile.TemporaryDirectory() as tmp:
        build_packages(repo, tmp)
        run("createrepo_c", "--quiet", "--no-database", "--simple-md-filenames", "--revision", "1", repo)
        home = os.path.join(tmp, "gnupg")
        os.makedirs(home, mode=0o700)
        gpg = ["gpg", "--batch", "--homedir", home, "--pinentry-mode", "loopback", "--passphrase", ""]
        run(*gpg, "--quick-gen-key", "imagelock rpm fixture <rpm@test.invalid>", "rsa3072", "sign", "never")
        key = run(*gpg, "--armor", "--export", "rpm@test.invalid").stdout
        with open(os.path.join(keys, "repo.gpg"), "wb") as f:
            f.write(key)
        md = os.path.join(repo, "repodata", "repomd.xml")
        run(*gpg, "--armor", "--detach-sign", "--output", md + ".asc", md)

        # The base root, installed by dnf itself. rpm's own database path on
        # this host may be elsewhere (Debian's rpm uses ~/.rpmdb); the image
        # keeps it where RHEL-like distributions do.
        root = os.path.join(OUT, "root")
        os.makedirs(os.path.join(root, "etc", "pki", "rpm-gpg"))
        with open(os.path.join(root, "etc", "pki", "rpm-gpg", "RPM-GPG-KEY-fixture"), "wb") as f:
            f.write(key)
        rpmhome = os.path.join(tmp, "home")
        os.makedirs(rpmhome)
        with open(os.path.join(rpmhome, ".rpmmacros"), "w") as f:
            f.write("%_dbpath /var/lib/rpm\n")
        reposdir = os.path.join(tmp, "repos")
        os.makedirs(reposdir)
        with open(os.path.join(reposdir, "local.repo"), "w") as f:
            f.write(f"[fixture]\nname=fixture\nbaseurl=file://{os.path.abspath(repo)}\ngpgcheck=0\n")
        env = {**os.environ, "HOME": rpmhome}
        run("dnf", "-y", "-q", "--installroot", os.path.abspath(root), "--releasever", "9",
            "--forcearch", "x86_64", f"--setopt=reposdir={reposdir}",
            f"--setopt=cachedir={os.path.join(tmp, 'cache')}", "--setopt=install_weak_deps=False",
            "install", "fixture-release", "libfoo-1.0-1.x86_64", "oldname-1.0-1", env=env)
        # dnf's own logs and history are not part of a base image's state.
        shutil.rmtree(os.path.join(root, "var", "log"), ignore_errors=True)
        shutil.rmtree(os.path.join(root, "var", "cache"), ignore_errors=True)
        shutil.rmtree(os.path.join(root, "tmp"), ignore_errors=True)
        os.makedirs(os.path.join(root, "tmp"))
        qa = run("rpm", "-qa", "--root", os.path.abspath(root), "--qf", "%{NEVRA}\n", env=env).stdout.decode()
        with open(os.path.join(OUT, "root-qa.txt"), "w") as f:
            f.write("".join(sorted(qa.splitlines(keepends=True))))
        with tarfile.open(os.path.join(OUT, "base.tar"), "w") as tar:
            for name in sorted(os.listdir(root)):
                tar.add(os.path.join(root, name), arcname=name)
    with open(stamp, "w") as f:
        f.write(VERSION)
    print(f"rpm fixture ready in {OUT}")


if __name__ == "__main__":
    main()

"""Builds the core metadata of an sdist in a build environment that
imagelock resolved and downloaded itself (no pip anywhere).

Usage: python3 build_env.py SOURCE OUTDIR ENV WHEELS BACKEND BACKEND_PATH MODE
SOURCE is the sdist's top directory, unpacked by imagelock (the hooks run
there, and a second MODE runs in the same tree, as pip's build does).
ENV is the environment's directory (under the directory of all build
environments, which holds the locks); when ENV/.complete is missing it is
made here: `venv` without pip, then every wheel in the directory WHEELS
unpacked into it. BACKEND_PATH is a JSON list. MODE `auto` asks the
backend's get_requires_for_build_wheel first: when it names anything, the
list goes to OUTDIR/requires.json and the exit status is 3 (the caller
resolves the larger set and runs MODE `prepare` in its environment);
otherwise, in the same process, prepare_metadata_for_build_wheel (or
build_wheel when the backend has no such hook) writes OUTDIR/METADATA.

A wheel is installed as a build backend needs it: its files are extracted
into site-packages (purelib or platlib as its WHEEL says), `.data/purelib`
and `.data/platlib` are merged there and `.data/data` into the
environment's prefix. Not done: `.data/scripts` and `.data/headers`
(backends run as modules, not commands), console-script entry points,
RECORD rewriting, byte-compilation.
"""

import fcntl
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile

src, out, env, wheels, backend, backend_path, mode = sys.argv[1:8]
out = os.path.abspath(out)
os.makedirs(out, exist_ok=True)


def paths(prefix):
    """purelib, platlib of a venv at prefix, as `venv` lays it out."""
    scheme = "venv" if "venv" in sysconfig.get_scheme_names() else "posix_prefix"
    v = {
        "base": prefix,
        "platbase": prefix,
        "installed_base": prefix,
        "installed_platbase": prefix,
    }
    return (
        sysconfig.get_path("purelib", scheme, v),
        sysconfig.get_path("platlib", scheme, v),
    )


def merge(src, dst):
    for root, _dirs, files in os.walk(src):
        rel = os.path.relpath(root, src)
        target = os.path.normpath(os.path.join(dst, rel))
        os.makedirs(target, exist_ok=True)
        for f in files:
            os.replace(os.path.join(root, f), os.path.join(target, f))


def install(wheel, prefix, purelib, platlib):
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        info = [
            n
            for n in names
            if n.count("/") == 1 and n.endswith(".dist-info/WHEEL")
        ]
        if len(info) != 1:
            raise SystemExit(f"{os.path.basename(wheel)}: no single .dist-info/WHEEL")
        fields = z.read(info[0]).decode("utf-8", "replace").splitlines()
        pure = any(l.strip().lower() == "root-is-purelib: true" for l in fields)
        root = purelib if pure else platlib
        # zipfile drops `..` and leading `/` from member names.
        z.extractall(root)
        distinfo = info[0].split("/")[0]
    data = os.path.join(root, distinfo[: -len(".dist-info")] + ".data")
    if os.path.isdir(data):
        for kind in os.listdir(data):
            src = os.path.join(data, kind)
            if kind == "purelib":
                merge(src, purelib)
            elif kind == "platlib":
                merge(src, platlib)
            elif kind == "data":
                merge(src, prefix)
            # scripts, headers: not needed to run a backend (see above).
        shutil.rmtree(data)
    with open(os.path.join(root, distinfo, "INSTALLER"), "w") as f:
        f.write("imagelock\n")


def make(prefix):
    venv.create(prefix, with_pip=False, symlinks=True)
    purelib, platlib = paths(prefix)
    os.makedirs(purelib, exist_ok=True)
    os.makedirs(platlib, exist_ok=True)
    for name in sorted(os.listdir(wheels)):
        if name.endswith(".whl"):
            install(os.path.join(wheels, name), prefix, purelib, platlib)


# One environment per resolved set, made once under a lock beside it
# (scripts in a venv name its path: it is made in place, never moved);
# `.complete` marks it whole, a leftover of a build that died is made again.
done = os.path.join(env, ".complete")
if not os.path.exists(done):
    with open(env + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(done):
            shutil.rmtree(env, ignore_errors=True)
            make(env)
            open(done, "w").close()

HOOK = r"""
import importlib, json, os, sys, zipfile
mode, backend, paths, out = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
sys.path[:0] = [os.path.abspath(p) for p in paths]
sys.stdout = sys.stderr  # backends print; keep our channel clean
mod, _, obj = backend.partition(":")
b = importlib.import_module(mod)
for part in filter(None, obj.split(".")):
    b = getattr(b, part)
os.makedirs(out, exist_ok=True)
if mode == "auto":
    extra = list(getattr(b, "get_requires_for_build_wheel", lambda c=None: [])({}))
    if extra:
        open(os.path.join(out, "requires.json"), "w").write(json.dumps(extra))
        sys.exit(3)
if hasattr(b, "prepare_metadata_for_build_wheel"):
    d = b.prepare_metadata_for_build_wheel(out, {})
    os.replace(os.path.join(out, d, "METADATA"), os.path.join(out, "METADATA"))
else:
    w = b.build_wheel(out, {})
    with zipfile.ZipFile(os.path.join(out, w)) as z:
        name = [n for n in z.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")][0]
        open(os.path.join(out, "METADATA"), "wb").write(z.read(name))
"""

python = os.path.join(env, "bin", "python")
code = subprocess.call(
    [python, "-c", HOOK, mode, backend, backend_path, out], cwd=src, stdout=sys.stderr
)
sys.exit(code)

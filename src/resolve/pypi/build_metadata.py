"""Builds the core metadata of an sdist with its own PEP 517 backend.

Usage: python3 build_metadata.py SDIST OUTDIR
Unpacks SDIST, creates an isolated venv, installs the build requirements
(from PIP_INDEX_URL / PIP_EXTRA_INDEX_URL, which the caller sets),
calls prepare_metadata_for_build_wheel (or build_wheel when the backend has
no such hook) and writes OUTDIR/METADATA.
"""

import os
import subprocess
import sys
import tarfile
import tempfile
import venv
import zipfile

sdist, out = sys.argv[1], sys.argv[2]
work = tempfile.mkdtemp(dir=os.path.dirname(os.path.abspath(out)))
if sdist.endswith(".zip"):
    zipfile.ZipFile(sdist).extractall(work)
else:
    with tarfile.open(sdist) as t:
        if hasattr(tarfile, "data_filter"):
            t.extractall(work, filter="data")
        else:
            t.extractall(work)
src = os.path.join(work, sorted(os.listdir(work))[0])

requires = ["setuptools>=40.8.0"]
backend = "setuptools.build_meta:__legacy__"
backend_path = []
pyproject = os.path.join(src, "pyproject.toml")
if os.path.exists(pyproject):
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        tomllib = None
    if tomllib is not None:
        with open(pyproject, "rb") as f:
            system = tomllib.load(f).get("build-system", {})
        requires = system.get("requires", requires)
        backend = system.get("build-backend", "setuptools.build_meta:__legacy__")
        backend_path = system.get("backend-path", [])

env = os.path.join(work, ".venv")
# pip goes into the venv only when something must be installed: an in-tree
# backend with no requirements builds without it (and without a network).
venv.create(env, with_pip=False)
python = os.path.join(env, "bin", "python")
pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]


def install(reqs):
    if not reqs:
        return
    if subprocess.call([python, "-c", "import pip"], stderr=subprocess.DEVNULL):
        subprocess.check_call([python, "-m", "ensurepip", "--default-pip"], stdout=sys.stderr)
    subprocess.check_call(pip + list(reqs), stdout=sys.stderr)


try:
    install(requires)
except subprocess.CalledProcessError:
    sys.exit(1)

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
if mode == "requires":
    extra = getattr(b, "get_requires_for_build_wheel", lambda c=None: [])({})
    open(os.path.join(out, "requires.json"), "w").write(json.dumps(list(extra)))
elif hasattr(b, "prepare_metadata_for_build_wheel"):
    d = b.prepare_metadata_for_build_wheel(out, {})
    os.replace(os.path.join(out, d, "METADATA"), os.path.join(out, "METADATA"))
else:
    w = b.build_wheel(out, {})
    with zipfile.ZipFile(os.path.join(out, w)) as z:
        name = [n for n in z.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")][0]
        open(os.path.join(out, "METADATA"), "wb").write(z.read(name))
"""
import json

out = os.path.abspath(out)
hook = [python, "-c", HOOK]
args = [backend, json.dumps(backend_path), out]
try:
    subprocess.check_call(hook + ["requires"] + args, cwd=src, stdout=sys.stderr)
    with open(os.path.join(out, "requires.json")) as f:
        extra = json.load(f)
    install(extra)
    subprocess.check_call(hook + ["prepare"] + args, cwd=src, stdout=sys.stderr)
except subprocess.CalledProcessError:
    # The backend's (or pip's) own error is the last thing on stderr: the
    # caller shows it; this script's traceback would hide it.
    sys.exit(1)

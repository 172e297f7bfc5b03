"""Builds the core metadata of an sdist with its own PEP 517 backend.

Usage: python3 build_metadata.py SDIST OUTDIR
Unpacks SDIST, finds or makes the isolated venv of its resolved build
requirements (from PIP_INDEX_URL / PIP_EXTRA_INDEX_URL, which the caller
sets; kept under IMAGELOCK_BUILD_ENVS), calls prepare_metadata_for_build_wheel (or build_wheel when the backend has
no such hook) and writes OUTDIR/METADATA.
"""

import hashlib
import json
import os
import shutil
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

# Build environments are kept under ENVS (IMAGELOCK_BUILD_ENVS, else this
# build's own directory), one per resolved set of build requirements (name,
# version and file hash of each, and this interpreter), as uv keys them: a
# second sdist with the same backend reuses the environment, with no new venv
# and nothing installed. pip runs from one place for every environment (the
# host's own pip when it can target another interpreter, else a pip venv
# made once under ENVS), never bootstrapped into each.
envs = os.environ.get("IMAGELOCK_BUILD_ENVS") or work
os.makedirs(envs, exist_ok=True)
QUIET = ["-q", "--disable-pip-version-check"]


def lock(name):
    import fcntl

    f = open(os.path.join(envs, name + ".lock"), "w")
    fcntl.flock(f, fcntl.LOCK_EX)
    return f


def made(name, make):
    """ENVS/name, made in place by make(dir) once, under a lock (scripts in a
    venv name its path: it is never moved). `.complete` marks it whole; a
    leftover of a build that died is made again."""
    path = os.path.join(envs, name)
    done = os.path.join(path, ".complete")
    if os.path.exists(done):
        return path
    with lock(name):
        if not os.path.exists(done):
            shutil.rmtree(path, ignore_errors=True)
            make(path)
            open(done, "w").close()
    return path


def interpreter():
    return "\n".join([os.path.realpath(sys.executable), sys.version])


def pip_runner():
    try:
        import pip

        major, minor = (int(x) for x in pip.__version__.split(".")[:2])
        if (major, minor) >= (22, 3):  # `--python`
            return [sys.executable, "-m", "pip"]
    except (ImportError, ValueError):
        pass
    key = "pip-" + hashlib.sha256(interpreter().encode()).hexdigest()[:24]

    def make(d):
        venv.create(d, with_pip=False)
        subprocess.check_call(
            [os.path.join(d, "bin", "python"), "-m", "ensurepip", "--default-pip"],
            stdout=sys.stderr,
        )

    return [os.path.join(made(key, make), "bin", "python"), "-m", "pip"]


PIP = None


def pip():
    global PIP
    if PIP is None:
        PIP = pip_runner()
    return PIP


def resolved(reqs):
    """What pip would install for reqs here: [(name, version, file)]."""
    report = os.path.join(work, "report.json")
    subprocess.check_call(
        pip()
        + ["install", "--dry-run", "--ignore-installed", "--report", report]
        + QUIET
        + list(reqs),
        stdout=sys.stderr,
    )
    with open(report) as f:
        items = json.load(f).get("install", [])
    out = []
    for item in items:
        info = item.get("download_info", {})
        hashes = info.get("archive_info", {}).get("hashes", {})
        file = hashes.get("sha256") or info.get("url", "")
        meta = item["metadata"]
        out.append((meta["name"].lower(), meta["version"], file))
    return sorted(out)


# Within one run (IMAGELOCK_BUILD_RUN, removed with it) the indexes do not
# change: requirements written the same way resolve the same way, so the
# environment they resolved to is remembered and pip is not asked again.
run = os.environ.get("IMAGELOCK_BUILD_RUN")


def environment(reqs):
    """The environment holding reqs, resolved; its python."""
    asked = [interpreter(), sorted(reqs), os.environ.get("PIP_INDEX_URL", "")]
    asked.append(os.environ.get("PIP_EXTRA_INDEX_URL", ""))
    memo = run and os.path.join(
        run, hashlib.sha256(json.dumps(asked).encode()).hexdigest()[:32]
    )
    if memo and os.path.exists(memo):
        with open(memo) as f:
            path = os.path.join(envs, f.read())
        if os.path.exists(os.path.join(path, ".complete")):
            return os.path.join(path, "bin", "python")
    pins = resolved(reqs) if reqs else []
    key = hashlib.sha256(json.dumps([interpreter(), pins]).encode()).hexdigest()[:32]

    def make(d):
        venv.create(d, with_pip=False)
        if pins:
            exact = [f"{n}=={v}" for n, v, _ in pins]
            subprocess.check_call(
                pip()
                + ["--python", os.path.join(d, "bin", "python"), "install", "--no-deps"]
                + QUIET
                + exact,
                stdout=sys.stderr,
            )

    path = made("env-" + key, make)
    if memo:
        with open(memo + ".tmp", "w") as f:
            f.write("env-" + key)
        os.replace(memo + ".tmp", memo)
    return os.path.join(path, "bin", "python")


try:
    python = environment(requires)
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

out = os.path.abspath(out)
hook = [python, "-c", HOOK]
args = [backend, json.dumps(backend_path), out]
try:
    subprocess.check_call(hook + ["requires"] + args, cwd=src, stdout=sys.stderr)
    with open(os.path.join(out, "requires.json")) as f:
        extra = json.load(f)
    if extra:
        # The backend asked for more: the environment of everything.
        hook[0] = environment(list(requires) + list(extra))
    subprocess.check_call(hook + ["prepare"] + args, cwd=src, stdout=sys.stderr)
except subprocess.CalledProcessError:
    # The backend's (or pip's) own error is the last thing on stderr: the
    # caller shows it; this script's traceback would hide it.
    sys.exit(1)

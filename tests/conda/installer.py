#!/usr/bin/env python3
"""conda's installer inside a built image, with py-rattler standing in.

No conda, mamba or micromamba binary and no public channel can be reached
where the tests run, so py-rattler's `solve` + `install` (rattler, the
library pixi installs with) writes the prefix, with the defaults
the command of each set would use: its channels in order, its channel
priority (conda: flexible; mamba 2: strict; `--no-channel-priority`:
disabled), `add_pip_as_python_dependency: true`, the packages already in
the prefix kept, the prefix's `conda-meta/pinned`, and the virtual packages
conda detects inside the container: `__glibc` from the image's C library,
`__linux` and `__archspec` from the machine (the kernel and CPU a container
sees), `__cuda` only from `CONDA_OVERRIDE_CUDA`.

What this cannot show: conda and mamba solve with libmamba (libsolv), not
rattler's resolvo; where several solutions satisfy a request, they may
choose another one. (resolvo's choice depends even on the order of the
specs: `pysam edlib python-edlib` and `edlib pysam python-edlib` give
different libcurl builds on an empty prefix; imagelock keeps the order
written.)

The channels are the real repodata (fixtures/conda, fixtures/world/conda),
whole, so every solve sees every record it would see upstream. The real
package files are not here: for the records the sets' solutions need (and
only those) `prepare` writes a genuine package file (`.conda` or `.tar.bz2`
as the record's file name says) whose `info/index.json` is the record and
whose payload is one small file, and patches those records' sha256, md5
and size in the served repodata to the file's (imagelock and the installer
read the same repodata). Archives a fixture channel already has are used
as they are.

  installer.py prepare OUT        channels + package files + OUT/cases.json
                                  (re-running with the same script and
                                  repodata does nothing)
  installer.py install CASES IMAGE ROOT URLS OUT
                                  installs the steps of IMAGE (a name in
                                  CASES) into ROOT (a mounted image root),
                                  channels named in URLS (JSON name -> URL);
                                  writes OUT: per step the records the step
                                  installed
"""
import asyncio
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = os.path.join(ROOT, "fixtures")

# Channel name -> directory with the real repodata.
CHANNELS = {
    "conda-forge": os.path.join(FIX, "conda", "conda-forge"),
    "pytorch": os.path.join(FIX, "conda", "pytorch-2023"),
    "defaults": os.path.join(FIX, "conda", "defaults-2018"),
    "world-conda-forge": os.path.join(FIX, "world", "conda", "conda-forge"),
    "bioconda": os.path.join(FIX, "world", "conda", "bioconda"),
}
SUBDIR = "linux-64"
PREFIX = "/opt/conda"
# The base image's C library, as its libc.so.6 says (the test writes it).
BASE_GLIBC = "2.36"
LONGQC_1 = ["numpy", "pandas>=0.24.0", "scipy", "jinja2", "h5py", "matplotlib>=2.1.2", "scikit-learn"]
LONGQC_2 = ["edlib", "pysam", "python-edlib"]

# Each set is one image (`test`: run by the test suite; the others by
# benches/conda_install.sh): `env` (ENV lines), `files` (COPY lines: the file
# `src` of the build context with `text`, copied to `dest`), `steps`: the
# Dockerfile's RUN lines (`{name}` is the channel's URL) and how the
# installer reads each (channels, specs, priority; written out by hand, not
# parsed).
SETS = [
    dict(image="cf-python-numpy", test=True,
         what="conda-forge python=3.12 numpy, mamba (strict)",
         steps=[dict(run="mamba install -y --override-channels -c {conda-forge} python=3.12 numpy",
                     channels=["conda-forge"], specs=["python=3.12", "numpy"], priority="strict")]),
    dict(image="pinned-numpy", test=True,
         what="conda-forge python numpy with numpy <2 in the prefix's conda-meta/pinned, mamba",
         files=[dict(src="pinned", dest=PREFIX + "/conda-meta/pinned", text="numpy <2\n")],
         steps=[dict(run="mamba install -y --override-channels -c {conda-forge} python numpy",
                     channels=["conda-forge"], specs=["python", "numpy"], priority="strict")]),
    dict(image="priority-flexible",
         what="pytorch over conda-forge, conda's default flexible priority",
         steps=[dict(run="conda install -y --override-channels -c {pytorch} -c {conda-forge} libjpeg-turbo",
                     channels=["pytorch", "conda-forge"], specs=["libjpeg-turbo"], priority="flexible")]),
    dict(image="priority-disabled", test=True,
         what="pytorch over conda-forge, --no-channel-priority",
         steps=[dict(run="conda install -y --no-channel-priority --override-channels -c {pytorch} -c {conda-forge} libjpeg-turbo",
                     channels=["pytorch", "conda-forge"], specs=["libjpeg-turbo"], priority="disabled")]),
    dict(image="cuda-override", test=True,
         what="conda-forge ffmpeg with ENV CONDA_OVERRIDE_CUDA=12.4, mamba",
         env={"CONDA_OVERRIDE_CUDA": "12.4"},
         steps=[dict(run="mamba install -y --override-channels -c {conda-forge} ffmpeg",
                     channels=["conda-forge"], specs=["ffmpeg"], priority="strict")]),
    dict(image="cuda-command-prefix",
         what="conda-forge ffmpeg with the command's own CONDA_OVERRIDE_CUDA=12.4 prefix, mamba",
         steps=[dict(run="CONDA_OVERRIDE_CUDA=12.4 mamba install -y --override-channels -c {conda-forge} ffmpeg",
                     env={"CONDA_OVERRIDE_CUDA": "12.4"},
                     channels=["conda-forge"], specs=["ffmpeg"], priority="strict")]),
    dict(image="condarc-no-pip", test=True,
         what="the root prefix's .condarc turns add_pip_as_python_dependency off, conda",
         files=[dict(src="condarc", dest=PREFIX + "/.condarc", text="add_pip_as_python_dependency: false\n")],
         steps=[dict(run="conda install -y --override-channels -c {conda-forge} python=3.12",
                     channels=["conda-forge"], specs=["python=3.12"], priority="flexible", add_pip=False)]),
    dict(image="condarc-channels-disabled",
         what="channels and channel_priority: disabled from the root prefix's .condarc, conda without -c",
         files=[dict(src="condarc", dest=PREFIX + "/.condarc",
                     text="channels:\n  - {pytorch}\n  - {conda-forge}\nchannel_priority: disabled\n")],
         steps=[dict(run="conda install -y libjpeg-turbo",
                     channels=["pytorch", "conda-forge"], specs=["libjpeg-turbo"], priority="disabled")]),
    dict(image="create-env",
         what="mamba create -p of a new environment beside the root prefix: python=3.11 pandas",
         steps=[dict(run="mamba create -y -p /opt/envs/work --override-channels -c {conda-forge} python=3.11 pandas",
                     prefix="/opt/envs/work", create=True,
                     channels=["conda-forge"], specs=["python=3.11", "pandas"], priority="strict")]),
    dict(image="micromamba-bioconda", test=True,
         what="micromamba (strict, no implicit defaults): bioconda over conda-forge, pysam edlib python-edlib",
         steps=[dict(run="micromamba install -y -p /opt/conda -c {bioconda} -c {world-conda-forge} pysam edlib python-edlib",
                     channels=["bioconda", "world-conda-forge"], specs=["pysam", "edlib", "python-edlib"],
                     priority="strict")]),
    dict(image="mamba1-flexible", test=True,
         what="mamba 1.5 installed by conda, then mamba (1.x: conda's flexible priority) pytorch over conda-forge 'libjpeg-turbo>=3'",
         steps=[dict(run="conda install -y --override-channels -c {conda-forge} mamba=1.5.9",
                     channels=["conda-forge"], specs=["mamba=1.5.9"], priority="flexible"),
                dict(run="mamba install -y --override-channels -c {pytorch} -c {conda-forge} 'libjpeg-turbo>=3'",
                     channels=["pytorch", "conda-forge"], specs=["libjpeg-turbo>=3"], priority="flexible")]),
    dict(image="env-file",
         what="conda env create -p from an environment.yml (its channel and nodefaults; python=3.11, pandas<3), conda",
         files=[dict(src="environment.yml", dest="/tmp/environment.yml",
                     text="name: work\nchannels:\n  - {conda-forge}\n  - nodefaults\ndependencies:\n  - python=3.11\n  - pandas<3\n")],
         steps=[dict(run="conda env create -p /opt/envs/work -f /tmp/environment.yml",
                     prefix="/opt/envs/work", create=True,
                     channels=["conda-forge"], specs=["python=3.11", "pandas<3"], priority="flexible")]),
    dict(image="defaults-py36-numpy",
         what="defaults (2018) python=3.6 numpy, conda (flexible)",
         steps=[dict(run="conda install -y --override-channels -c {defaults} python=3.6 numpy",
                     channels=["defaults"], specs=["python=3.6", "numpy"], priority="flexible")]),
    dict(image="defaults-py27-dask",
         what="defaults (2018) python=2.7 matplotlib dask, conda (flexible)",
         steps=[dict(run="conda install -y --override-channels -c {defaults} python=2.7 matplotlib dask",
                     channels=["defaults"], specs=["python=2.7", "matplotlib", "dask"], priority="flexible")]),
    dict(image="longqc", test=True,
         what="LongQC: conda-forge, then bioconda over conda-forge into the same prefix, mamba",
         steps=[dict(run="mamba install -y --override-channels -c {world-conda-forge} "
                         + " ".join(f"'{s}'" if ">" in s else s for s in LONGQC_1),
                     channels=["world-conda-forge"], specs=LONGQC_1, priority="strict"),
                dict(run="mamba install -y --override-channels -c {bioconda} -c {world-conda-forge} "
                         + " ".join(LONGQC_2),
                     channels=["bioconda", "world-conda-forge"], specs=LONGQC_2, priority="strict")]),
]


def virtual_packages(glibc, cuda):
    """What conda detects inside the container: the image's glibc, the
    machine's kernel and CPU, CUDA only when overridden."""
    from rattler import BuildString, GenericVirtualPackage, PackageName, Version, VirtualPackage
    out = []
    for vp in VirtualPackage.detect():
        g = vp.into_generic()
        name = g.name.normalized
        if name in ("__glibc", "__cuda"):
            continue
        out.append(g)
    out.append(GenericVirtualPackage(PackageName("__glibc"), Version(glibc), BuildString("0")))
    if cuda:
        out.append(GenericVirtualPackage(PackageName("__cuda"), Version(cuda), BuildString("0")))
    return out


def set_pins(s, prefix):
    """The pins a set's COPY puts into `prefix` before its steps."""
    pins = []
    for f in s.get("files", []):
        if f["dest"] == prefix + "/conda-meta/pinned":
            pins += [l.strip() for l in f["text"].splitlines() if l.strip() and not l.startswith("#")]
    return pins


def spec_name(spec):
    return re.split(r"[=<>!~ \[]", spec.split("::")[-1], maxsplit=1)[0]


async def solve_step(step, urls, installed, pins, env, gateway):
    """The installer's solve of one step: installed records kept (preferred
    and asked for by name, as `conda install` keeps them), pins as
    constraints, the step's channels and priority."""
    import rattler
    from rattler import Channel, ChannelPriority
    named = {spec_name(s) for s in step["specs"]}
    specs = list(step["specs"]) + [r.name.normalized for r in installed if r.name.normalized not in named]
    return await rattler.solve(
        sources=[Channel(urls[c]) for c in step["channels"]],
        specs=[rattler.MatchSpec(s, strict=False) for s in specs],
        gateway=gateway,
        platforms=[SUBDIR, "noarch"],
        locked_packages=list(installed),
        virtual_packages=virtual_packages(BASE_GLIBC, env.get("CONDA_OVERRIDE_CUDA")),
        constraints=[rattler.MatchSpec(p, strict=False) for p in pins],
        add_pip_as_python_dependency=step.get("add_pip", True),
        channel_priority={"strict": ChannelPriority.Strict, "flexible": ChannelPriority.Flexible,
                          "disabled": ChannelPriority.Disabled}[step["priority"]],
    )


def key(r):
    return (r.name.normalized, str(r.version), str(r.build))


# ---------------------------------------------------------------- prepare

def stamp():
    h = hashlib.sha256()
    with open(os.path.abspath(__file__), "rb") as f:
        h.update(f.read())
    for name in sorted(CHANNELS):
        for sub in sorted(os.listdir(CHANNELS[name])):
            p = os.path.join(CHANNELS[name], sub, "repodata.json")
            if os.path.exists(p):
                h.update(name.encode() + sub.encode())
                with open(p, "rb") as f:
                    h.update(f.read())
    # The solver's version is part of the answer.
    from importlib.metadata import version
    h.update(version("py-rattler").encode())
    return h.hexdigest()


def tar_bytes(members, compress):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for arc, data in members:
            info = tarfile.TarInfo(arc)
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o644
            t.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    return compress(raw)


def zstd(raw):
    try:
        import zstandard
        return zstandard.ZstdCompressor(level=3).compress(raw)
    except ImportError:
        return subprocess.run(["zstd", "-q", "-c", "-3"], input=raw, capture_output=True, check=True).stdout


def bz2_tar(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:bz2") as t:
        for arc, data in members:
            info = tarfile.TarInfo(arc)
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o644
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_package(path, fn, record):
    """A genuine package file for `record`: info/index.json is the record
    (without the file's own hashes), one payload file."""
    index = {k: v for k, v in record.items() if k not in ("sha256", "md5", "size", "fn", "url", "legacy_bz2_md5", "legacy_bz2_size")}
    stem = fn[:-len(".conda")] if fn.endswith(".conda") else fn[:-len(".tar.bz2")]
    payload_path = f"share/imagelock-conda-fixture/{stem}.txt"
    payload = f"{record['name']} {record['version']} {record['build']}: a stand-in for the real package\n".encode()
    paths = {"paths_version": 1, "paths": [{
        "_path": payload_path, "path_type": "hardlink",
        "sha256": hashlib.sha256(payload).hexdigest(), "size_in_bytes": len(payload)}]}
    info = [("info/index.json", json.dumps(index, sort_keys=True, indent=2).encode()),
            ("info/paths.json", json.dumps(paths, sort_keys=True, indent=2).encode()),
            ("info/files", (payload_path + "\n").encode())]
    if fn.endswith(".tar.bz2"):
        data = bz2_tar(info + [(payload_path, payload)])
    else:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as z:
            def add(name, data):
                zi = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                z.writestr(zi, data)
            add("metadata.json", json.dumps({"conda_pkg_format_version": 2}).encode())
            add(f"info-{stem}.tar.zst", tar_bytes(info, zstd))
            add(f"pkg-{stem}.tar.zst", tar_bytes([(payload_path, payload)], zstd))
        data = buf.getvalue()
    with open(path, "wb") as f:
        f.write(data)
    return data


def prepare(out):
    want = stamp()
    stamp_file = os.path.join(out, "stamp")
    if os.path.exists(stamp_file) and open(stamp_file).read() == want:
        return
    shutil.rmtree(out, ignore_errors=True)
    chans = os.path.join(out, "channels")
    # Copies of the real repodata (and any real archives next to it).
    for name, src in CHANNELS.items():
        for sub in (SUBDIR, "noarch"):
            os.makedirs(os.path.join(chans, name, sub), exist_ok=True)
            p = os.path.join(src, sub, "repodata.json")
            if os.path.exists(p):
                shutil.copy(p, os.path.join(chans, name, sub, "repodata.json"))
                for f in os.listdir(os.path.join(src, sub)):
                    if f.endswith((".conda", ".tar.bz2")):
                        shutil.copy(os.path.join(src, sub, f), os.path.join(chans, name, sub, f))
            else:
                # A channel without noarch: an empty, valid subdir.
                with open(os.path.join(chans, name, sub, "repodata.json"), "w") as f:
                    json.dump({"info": {"subdir": sub}, "packages": {}, "packages.conda": {},
                               "repodata_version": 1}, f)
    urls = {name: "file://" + os.path.join(chans, name) for name in CHANNELS}
    needed = set()  # (channel, subdir, file name)
    solutions = {}

    async def run():
        from rattler import Gateway
        for s in SETS:
            prefixes = {}
            per_step = []
            for step in s["steps"]:
                gw = Gateway(cache_dir=os.path.join(out, "solve-cache"))
                prefix = step.get("prefix", PREFIX)
                installed = [] if step.get("create") else prefixes.get(prefix, [])
                recs = await solve_step(step, urls, installed, set_pins(s, prefix),
                                        {**s.get("env", {}), **step.get("env", {})}, gw)
                before = {key(r) for r in installed}
                per_step.append(sorted("=".join(key(r)) for r in recs if key(r) not in before))
                for r in recs:
                    chan = next(n for n, u in urls.items() if r.url.startswith(u + "/"))
                    needed.add((chan, r.subdir, r.file_name))
                prefixes[prefix] = recs
            solutions[s["image"]] = per_step
    asyncio.run(run())
    made = 0
    for name in CHANNELS:
        for sub in (SUBDIR, "noarch"):
            path = os.path.join(chans, name, sub, "repodata.json")
            with open(path) as f:
                repodata = json.load(f)
            changed = False
            for section in ("packages", "packages.conda"):
                for fn, rec in repodata.get(section, {}).items():
                    if (name, sub, fn) not in needed:
                        continue
                    archive = os.path.join(chans, name, sub, fn)
                    if os.path.exists(archive):
                        continue  # a real archive of the fixture channel
                    data = make_package(archive, fn, rec)
                    made += 1
                    rec["sha256"] = hashlib.sha256(data).hexdigest()
                    rec["md5"] = hashlib.md5(data).hexdigest()
                    rec["size"] = len(data)
                    changed = True
            if changed:
                with open(path, "w") as f:
                    json.dump(repodata, f, indent=1, sort_keys=True)
    shutil.rmtree(os.path.join(out, "solve-cache"), ignore_errors=True)
    with open(os.path.join(out, "cases.json"), "w") as f:
        json.dump({"prefix": PREFIX, "glibc": BASE_GLIBC, "sets": SETS,
                   "prepared_solutions": solutions}, f, indent=1)
    print(f"prepare: {len(needed)} records needed, {made} package files made", file=sys.stderr)
    with open(stamp_file, "w") as f:
        f.write(want)


# ---------------------------------------------------------------- install

def read_prefix(prefix):
    from rattler import PrefixRecord
    meta = os.path.join(prefix, "conda-meta")
    if not os.path.isdir(meta):
        return []
    return [PrefixRecord.from_path(os.path.join(meta, f)) for f in sorted(os.listdir(meta)) if f.endswith(".json")]


def install(cases_path, image, root, urls_json, out):
    import rattler
    from rattler import Gateway
    with open(cases_path) as f:
        cases = json.load(f)
    s = next(s for s in cases["sets"] if s["image"] == image)
    urls = json.loads(urls_json)
    cache = os.path.join(os.path.dirname(os.path.abspath(out)), "rattler-pkgs")
    report = []

    async def run():
        for step in s["steps"]:
            prefix = os.path.join(root, step.get("prefix", cases["prefix"]).lstrip("/"))
            if step.get("create"):
                assert not os.path.exists(prefix), f"{prefix} exists"
            installed = read_prefix(prefix)
            pins_file = os.path.join(prefix, "conda-meta", "pinned")
            pins = []
            if os.path.exists(pins_file):
                pins = [l.strip() for l in open(pins_file) if l.strip() and not l.startswith("#")]
            gw = Gateway(cache_dir=os.path.join(os.path.dirname(os.path.abspath(out)), "rattler-repodata"))
            recs = await solve_step(step, urls, installed, pins, {**s.get("env", {}), **step.get("env", {})}, gw)
            before = {key(r) for r in installed}
            await rattler.install(recs, target_prefix=prefix, cache_dir=cache, installed_packages=installed,
                                  show_progress=False)
            report.append([{"name": r.name.normalized, "version": str(r.version), "build": str(r.build),
                            "subdir": r.subdir, "url": r.url, "channel": str(r.channel),
                            "sha256": r.sha256.hex() if isinstance(r.sha256, bytes) else r.sha256}
                           for r in recs if key(r) not in before])
    asyncio.run(run())
    with open(out, "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    if sys.argv[1] == "prepare":
        prepare(os.path.abspath(sys.argv[2]))
    elif sys.argv[1] == "install":
        install(*sys.argv[2:7])
    else:
        sys.exit(__doc__)
    # py-rattler's background threads can crash the interpreter while it
    # finalizes, after the work is done: skip that.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)

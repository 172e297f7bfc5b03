"""Makes the conda side of the freeze end-to-end test.

conda_base.py CHAN URL PREFIX CACHE

Writes a small linux-64 channel into the directory CHAN (python, a library in two
versions, an app that needs the library, and a Python distribution that
ships its dist-info the way conda-forge packages do), indexes it with
py-rattler, and installs from URL (where CHAN is served) python, the older library and the distribution
into PREFIX with py-rattler's real installer (CACHE is its package cache),
so PREFIX/conda-meta holds the records an installer writes.
"""
import asyncio, hashlib, io, json, os, sys, tarfile

PY = "lib/python3.11/site-packages"

PACKAGES = [
    # name, version, build, depends, files
    ("python", "3.11.9", "h0_0_cpython", [],
     {"bin/python3.11": "#!/bin/sh\n", f"{PY}/README.txt": "site-packages\n"}),
    ("tinylib", "1.0", "h0_0", [], {"share/tinylib/VERSION": "1.0\n"}),
    ("tinylib", "2.0", "h0_0", [], {"share/tinylib/VERSION": "2.0\n"}),
    ("tinyapp", "1.0", "h0_0", ["tinylib >=1", "python >=3.11"],
     {"share/tinyapp/VERSION": "1.0\n"}),
    ("idna", "3.17", "pyh0_0", ["python >=3.11"],
     {f"{PY}/idna/__init__.py": "", f"{PY}/idna-3.17.dist-info/METADATA":
      "Metadata-Version: 2.1\nName: idna\nVersion: 3.17\n",
      f"{PY}/idna-3.17.dist-info/INSTALLER": "conda\n"}),
]
INSTALLED = ["python=3.11.9=h0_0_cpython", "tinylib=1.0=h0_0", "idna=3.17=pyh0_0"]


def package(chan, name, version, build, depends, files):
    sub = os.path.join(chan, "linux-64")
    os.makedirs(sub, exist_ok=True)
    index = {"name": name, "version": version, "build": build, "build_number": 0,
             "depends": depends, "subdir": "linux-64", "arch": "x86_64", "platform": "linux",
             "license": "MIT", "timestamp": 1704067200000}
    paths = {"paths_version": 1, "paths": [
        {"_path": p, "path_type": "hardlink", "sha256": hashlib.sha256(d.encode()).hexdigest(),
         "size_in_bytes": len(d.encode())} for p, d in sorted(files.items())]}
    members = [("info/index.json", json.dumps(index, sort_keys=True)),
               ("info/paths.json", json.dumps(paths, sort_keys=True))] + sorted(files.items())
    path = os.path.join(sub, f"{name}-{version}-{build}.tar.bz2")
    with tarfile.open(path, "w:bz2") as t:
        for arc, text in members:
            data = text.encode()
            info = tarfile.TarInfo(arc)
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o755 if arc.startswith("bin/") else 0o644
            t.addfile(info, io.BytesIO(data))


async def main(chan, url, prefix, cache):
    import rattler
    from rattler import Channel, PackageName, SparseRepoData
    for p in PACKAGES:
        package(chan, *p)
    await rattler.index.index_fs(chan)
    sparse = SparseRepoData(Channel(url), "linux-64",
                            os.path.join(chan, "linux-64", "repodata.json"))
    records = []
    for want in INSTALLED:
        name = want.split("=")[0]
        records += [r for r in sparse.load_records(PackageName(name))
                    if f"{r.name.normalized}={r.version}={r.build}" == want]
    assert len(records) == len(INSTALLED), records
    await rattler.install(records, target_prefix=os.path.abspath(prefix), cache_dir=cache)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
    # py-rattler's background threads can crash the interpreter while it
    # finalizes, after the work is done: skip that.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)

"""Host-side installers for the verify end-to-end tests.

wheel NAME VERSION OUT          write a one-module py3-none-any wheel
conda NAME VERSION BUILD N CHAN  write a one-file noarch-free linux-64 conda package
pip-install TARGET WHEEL...      real pip: pip install --no-deps --target
conda-install CHAN PREFIX NAME-VERSION-BUILD...
                                 real rattler: index the channel, install those records
"""
import asyncio, base64, hashlib, io, json, os, subprocess, sys, tarfile, zipfile


def wheel(name, version, out):
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"__version__ = '{version}'\n".encode(),
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: imagelock-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = os.path.join(out, f"{name}-{version}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w") as z:
        for p, data in files.items():
            z.writestr(zipfile.ZipInfo(p, (2024, 1, 1, 0, 0, 0)), data)
    print(path)


def conda(name, version, build, number, chan):
    sub = os.path.join(chan, "linux-64")
    os.makedirs(sub, exist_ok=True)
    payload = f"{name} {version} {build}\n".encode()
    rel = f"share/{name}/{name}.txt"
    index = {"name": name, "version": version, "build": build, "build_number": int(number),
             "depends": [], "subdir": "linux-64", "arch": "x86_64", "platform": "linux", "license": "MIT"}
    paths = {"paths_version": 1, "paths": [{"_path": rel, "path_type": "hardlink",
             "sha256": hashlib.sha256(payload).hexdigest(), "size_in_bytes": len(payload)}]}
    path = os.path.join(sub, f"{name}-{version}-{build}.tar.bz2")
    with tarfile.open(path, "w:bz2") as t:
        for arc, data in [("info/index.json", json.dumps(index).encode()),
                          ("info/paths.json", json.dumps(paths).encode()), (rel, payload)]:
            info = tarfile.TarInfo(arc)
            info.size = len(data)
            info.mtime = 0
            t.addfile(info, io.BytesIO(data))
    print(path)


def pip_install(target, *wheels):
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    "--disable-pip-version-check", "--target", target, *wheels], check=True)


async def conda_install(chan, prefix, *wanted):
    import rattler
    from rattler import Channel, PackageName, SparseRepoData
    if not os.path.exists(os.path.join(chan, "linux-64", "repodata.json")):
        await rattler.index.index_fs(chan)
    sparse = SparseRepoData(Channel("file://" + os.path.abspath(chan)), "linux-64",
                            os.path.join(chan, "linux-64", "repodata.json"))
    records = []
    for w in wanted:
        name = w.split("=")[0]
        for r in sparse.load_records(PackageName(name)):
            if f"{r.name.normalized}={r.version}={r.build}" == w:
                records.append(r)
    assert len(records) == len(wanted), (wanted, records)
    await rattler.install(records, target_prefix=os.path.abspath(prefix))


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    if cmd == "wheel":
        wheel(*args)
    elif cmd == "conda":
        conda(*args)
    elif cmd == "pip-install":
        pip_install(*args)
    elif cmd == "conda-install":
        asyncio.run(conda_install(*args))
        # py-rattler's background threads can crash the interpreter while it
        # finalizes (PyGILState_Release), after the work is done: skip that.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)

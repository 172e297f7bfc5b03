"""The conda side of the export consumer tests (tests/it/export.rs).

channel CHAN                     write a small linux-64 channel (tinylib 1.0, and
                                 tinyapp 2.1 which needs it) of genuine .tar.bz2
                                 packages into CHAN and index it with py-rattler
install-explicit FILE PREFIX CACHE
                                 install an @EXPLICIT file into PREFIX with
                                 py-rattler's installer (CACHE is its package
                                 cache); each archive is checked against the
                                 file's hash first, as conda does, and a mismatch
                                 installs nothing
"""
import asyncio, hashlib, io, json, os, sys, tarfile, urllib.parse

PACKAGES = [
    # name, version, build, depends, files
    ("tinylib", "1.0", "h0_0", [], {"share/tinylib/VERSION": "1.0\n"}),
    ("tinyapp", "2.1", "h0_0", ["tinylib >=1"],
     {"share/tinyapp/VERSION": "2.1\n", "bin/tinyapp": "#!/bin/sh\necho tinyapp 2.1\n"}),
]


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
               ("info/paths.json", json.dumps(paths, sort_keys=True)),
               ("info/files", "".join(f"{p}\n" for p in sorted(files)))] + sorted(files.items())
    with tarfile.open(os.path.join(sub, f"{name}-{version}-{build}.tar.bz2"), "w:bz2") as t:
        for arc, text in members:
            data = text.encode()
            info = tarfile.TarInfo(arc)
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o755 if arc.startswith("bin/") else 0o644
            t.addfile(info, io.BytesIO(data))


async def channel(chan):
    import rattler
    for p in PACKAGES:
        package(chan, *p)
    await rattler.index.index_fs(chan)


async def install_explicit(path, prefix, cache):
    import rattler
    from rattler import Channel, PackageName, SparseRepoData
    from rattler.explicit_environment import ExplicitEnvironmentSpec
    spec = ExplicitEnvironmentSpec.from_path(path)
    records = []
    for entry in spec.packages:
        url, _, anchor = entry.url.partition("#")
        assert url.startswith("file:///"), url
        archive = urllib.parse.unquote(urllib.parse.urlparse(url).path)
        data = open(archive, "rb").read()
        if anchor.startswith("sha256:"):
            got, want = hashlib.sha256(data).hexdigest(), anchor[len("sha256:"):]
        else:
            got, want = hashlib.md5(data).hexdigest(), anchor
        if got != want:
            sys.exit(f"hash mismatch for {url}: the file has {got}, the explicit file says {want}")
        chan_url, subdir, filename = url.rsplit("/", 2)
        chan_dir = os.path.dirname(os.path.dirname(archive))
        sparse = SparseRepoData(Channel(chan_url), subdir,
                                os.path.join(chan_dir, subdir, "repodata.json"))
        name = filename.rsplit("-", 2)[0]
        found = [r for r in sparse.load_records(PackageName(name)) if r.file_name == filename]
        assert len(found) == 1, (url, found)
        records.append(found[0])
    await rattler.install(records, target_prefix=os.path.abspath(prefix),
                          cache_dir=os.path.abspath(cache), show_progress=False)
    print(len(records))


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    if cmd == "channel":
        asyncio.run(channel(*args))
    elif cmd == "install-explicit":
        asyncio.run(install_explicit(*args))
    else:
        sys.exit(f"unknown command {cmd}")
    # py-rattler's background threads can crash the interpreter while it
    # finalizes (PyGILState_Release), after the work is done: skip that.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)

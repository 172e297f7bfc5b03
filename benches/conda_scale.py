#!/usr/bin/env python3
"""Scale run: synthesize a linux-64 channel of >= 200 MB of repodata from the
real conda-forge records (more versions and builds of the same packages) and
solve the same specs with imagelock's `conda_solve` program and py-rattler,
reporting time and peak memory of each (each side in its own process).

Usage: python3 benches/conda_scale.py [--bin PATH] [--copies N] [--dir DIR]
"""
import argparse, asyncio, json, os, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "fixtures" / "conda" / "conda-forge"
SPECS = ["python=3.12", "numpy", "pandas", "matplotlib", "requests"]


def synthesize(out, copies):
    """Each real record is kept, and `copies` variants are added per record:
    a new build number (and build string) of the same version for the
    first half, an extra version component for the rest. Dependencies stay
    as they are, so the variants are solvable like the originals."""
    for subdir in ("linux-64", "noarch"):
        data = json.load(open(SRC / subdir / "repodata.json"))
        (out / subdir).mkdir(parents=True, exist_ok=True)
        n = copies if subdir == "linux-64" else 1
        with open(out / subdir / "repodata.json", "w") as f:
            f.write('{"info":{"subdir":"%s"},"repodata_version":1' % subdir)
            for key in ("packages", "packages.conda"):
                f.write(',"%s":{' % key)
                first = True
                ext = ".conda" if key == "packages.conda" else ".tar.bz2"
                for fn, rec in data.get(key, {}).items():
                    for i in range(n):
                        r = dict(rec)
                        if i > 0:
                            if i % 2:
                                r["build_number"] = rec.get("build_number", 0) + 1000 + i
                                r["build"] = f'{rec["build"]}_s{i}'
                            else:
                                r["version"] = f'{rec["version"]}.0.{i}'
                            # Variants never win over real records: older.
                            if "timestamp" in r:
                                r["timestamp"] = r["timestamp"] - i
                        name = f'{r["name"]}-{r["version"]}-{r["build"]}{ext}'
                        f.write(("" if first else ",") + json.dumps(name) + ":" + json.dumps(r, separators=(",", ":")))
                        first = False
                f.write("}")
            f.write("}")
    return (out / "linux-64" / "repodata.json").stat().st_size


def run_theirs(channel, cache):
    code = f"""
import asyncio, time, resource, rattler
from rattler import BuildString, Channel, Gateway, GenericVirtualPackage, PackageName, Version
vps=[GenericVirtualPackage(PackageName(n),Version(v),BuildString(b)) for n,v,b in [("__unix","0","0"),("__linux","5.10","0"),("__glibc","2.28","0"),("__archspec","1","x86_64")]]
t=time.perf_counter()
recs=asyncio.run(rattler.solve(sources=[Channel({channel!r})],specs={SPECS!r},gateway=Gateway(cache_dir={cache!r}),platforms=["linux-64","noarch"],virtual_packages=vps))
print(len(recs), time.perf_counter()-t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024)
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if p.returncode:
        return f"failed: {p.stderr.strip().splitlines()[-1]}"
    n, t, mem = p.stdout.split()
    return f"packages={n} total_s={float(t):.3f} peak_rss_mib={float(mem):.0f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin")
    ap.add_argument("--copies", type=int, default=200)
    ap.add_argument("--dir")
    a = ap.parse_args()
    import glob
    binary = a.bin or max((p for p in glob.glob(str(ROOT / "target/release/deps/conda_solve-*")) if not p.endswith(".d")), key=os.path.getmtime)
    tmp = Path(a.dir or tempfile.mkdtemp())
    chan = tmp / "synthetic"
    if not (chan / "linux-64" / "repodata.json").exists():
        t = time.perf_counter()
        size = synthesize(chan, a.copies)
        print(f"synthesized {size / 1e6:.0f} MB linux-64 repodata in {time.perf_counter() - t:.0f}s")
    else:
        size = (chan / "linux-64" / "repodata.json").stat().st_size
        print(f"reusing {size / 1e6:.0f} MB linux-64 repodata")
    url = chan.resolve().as_uri()
    cmd = [binary, "--channel", url, "--platform", "linux-64", "--glibc", "2.28", "--cache", str(tmp / "cache-ours")] + SPECS
    p = subprocess.run(cmd, capture_output=True, text=True)
    ours = p.stderr.strip().splitlines()[-1] if p.stderr else "no output"
    print(f"imagelock : {ours}")
    print(f"py-rattler: {run_theirs(url, str(tmp / 'cache-theirs'))}")


if __name__ == "__main__":
    main()

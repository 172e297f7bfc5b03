#!/usr/bin/env python3
"""Compare imagelock's conda solve with py-rattler's on the same channels,
specs and virtual packages, and time both in the same run.

Usage: python3 benches/conda_vs_rattler.py [--bin PATH] [--world DIR] [--runs N]

Each side runs every set N times cold (an empty cache) and N times warm
(the cache the cold runs filled); the table gives the medians. Both sides
use the installers' default `add_pip_as_python_dependency: true` unless a
set turns it off, the same virtual packages (`__cuda` where a set names
it), channel priority, and the prefix pins as constraints.

--bin is the `conda_solve` bench program (built by
`cargo bench --bench conda_solve --no-run`); by default it is found under
target/release/deps. Channels are the fixtures under fixtures/conda (and
fixtures/world/conda for the LongQC case), read as file:// channels by both
sides so that no network time is measured.
"""
import argparse, asyncio, glob, os, subprocess, sys, tempfile, time, resource
from pathlib import Path

import rattler
from rattler import (BuildString, Channel, ChannelPriority, Gateway, GenericVirtualPackage,
                     PackageName, Version)

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "fixtures" / "conda"


def url(path):
    return Path(path).resolve().as_uri()


def virtual_packages(platform, glibc, cuda=None):
    vps = [("__unix", "0", "0"), ("__linux", "5.10", "0")]
    if glibc:
        vps.append(("__glibc", glibc, "0"))
    if cuda:
        vps.append(("__cuda", cuda, "0"))
    arch = {"linux-64": "x86_64", "linux-aarch64": "aarch64"}[platform]
    vps.append(("__archspec", "1", arch))
    return [GenericVirtualPackage(PackageName(n), Version(v), BuildString(b)) for n, v, b in vps]


def find_bin():
    cands = [p for p in glob.glob(str(ROOT / "target/release/deps/conda_solve-*"))
             + glob.glob(str(ROOT / "target/bench-release/release/deps/conda_solve-*"))
             if os.access(p, os.X_OK) and not p.endswith(".d")]
    if not cands:
        sys.exit("build it first: cargo bench --bench conda_solve --no-run")
    return max(cands, key=os.path.getmtime)


def ours(binary, case, cache, installed_json=None):
    cmd = [binary, "--platform", case["platform"], "--cache", cache]
    for c in case["channels"]:
        cmd += ["--channel", c]
    if case.get("glibc"):
        cmd += ["--glibc", case["glibc"]]
    if case.get("priority") in ("flexible", "disabled"):
        cmd.append("--" + case["priority"])
    if case.get("exclude_newer"):
        cmd += ["--exclude-newer", case["exclude_newer"]]
    if case.get("cuda"):
        cmd += ["--cuda", case["cuda"]]
    for pin in case.get("pins", []):
        cmd += ["--pin", pin]
    if case.get("add_pip") is False:
        cmd.append("--no-add-pip")
    if installed_json:
        cmd += ["--installed", installed_json]
    cmd += case["specs"]
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    # `work_s`: fetch and solve once the runtime and HTTP client exist,
    # printed on success and when the set is unsatisfiable.
    work = next((float(l.split("work_s=")[1].split()[0]) for l in p.stderr.splitlines()
                 if "work_s=" in l), wall)
    if p.returncode != 0:
        errors = [l for l in p.stderr.splitlines() if l.startswith("error:")]
        return None, wall, errors[0] if errors else "failed", work
    lines = {tuple(l.split()) for l in p.stdout.splitlines() if l.strip()}
    return lines, wall, None, work


async def theirs(case, cache, locked=None):
    gw = Gateway(cache_dir=cache)
    specs = list(case["specs"])
    if locked:
        # conda install keeps installed packages: ask for them by name too,
        # as imagelock does.
        named = {s.split("=")[0].split("<")[0].split(">")[0].split("::")[-1] for s in specs}
        specs += [r.name.normalized for r in locked if r.name.normalized not in named]
    import datetime
    kwargs = {}
    if case.get("exclude_newer"):
        kwargs["exclude_newer"] = datetime.datetime.fromisoformat(case["exclude_newer"]).replace(tzinfo=datetime.timezone.utc)
        # imagelock keeps records without a timestamp (old channels lack them).
        kwargs["timestamp_policy"] = "allow-missing"
    t = time.perf_counter()
    try:
        recs = await rattler.solve(
            sources=[Channel(c) for c in case["channels"]],
            specs=[rattler.MatchSpec(s, strict=False) for s in specs],
            gateway=gw,
            platforms=[case["platform"], "noarch"],
            locked_packages=locked or [],
            virtual_packages=virtual_packages(case["platform"], case.get("glibc"), case.get("cuda")),
            constraints=[rattler.MatchSpec(p, strict=False) for p in case.get("pins", [])],
            add_pip_as_python_dependency=case.get("add_pip", True),
            channel_priority={"flexible": ChannelPriority.Flexible, "disabled": ChannelPriority.Disabled}.get(
                case.get("priority"), ChannelPriority.Strict),
            **kwargs,
        )
    except Exception as e:  # unsolvable or other failure
        return None, time.perf_counter() - t, str(e).splitlines()[0], None
    wall = time.perf_counter() - t
    return {(r.name.normalized, str(r.version), str(r.build)) for r in recs}, wall, None, recs


def theirs_process(case, cache):
    """py-rattler as a user runs it: a new Python process that imports it,
    makes its `Gateway` and solves; the whole process timed."""
    import json
    t = time.perf_counter()
    p = subprocess.run([sys.executable, __file__, "--child", json.dumps(case), cache],
                       capture_output=True, text=True)
    wall = time.perf_counter() - t
    # py-rattler 0.28 sometimes crashes on exit after an unsatisfiable
    # solve (SIGSEGV once its answer is printed): the answer counts.
    assert p.returncode == 0 or p.stdout.strip(), (p.returncode, p.stderr)
    return wall


def child(case_json, cache):
    import json
    _, _, err, recs = asyncio.run(theirs(json.loads(case_json), cache))
    print(err or len(recs))


def cases(world):
    cf, df, pt = url(FIX / "conda-forge"), url(FIX / "defaults-2018"), url(FIX / "pytorch-2023")
    out = [
        dict(name="cf python=3.12 numpy", channels=[cf], platform="linux-64", glibc="2.28", specs=["python=3.12", "numpy"]),
        dict(name="cf python=3.11 pandas", channels=[cf], platform="linux-64", glibc="2.28", specs=["python=3.11", "pandas"]),
        dict(name="cf numpy<2 matplotlib", channels=[cf], platform="linux-64", glibc="2.28", specs=["numpy<2", "matplotlib"]),
        dict(name="cf numpy==1.26=*_0 style build", channels=[cf], platform="linux-64", glibc="2.28", specs=["numpy==2.2.2=*_0", "python"]),
        dict(name="cf aarch64 python requests", channels=[cf], platform="linux-aarch64", glibc="2.28", specs=["python", "requests"]),
        dict(name="cf glibc 2.17 c-ares", channels=[cf], platform="linux-64", glibc="2.17", specs=["c-ares"]),
        dict(name="pytorch+cf strict libjpeg-turbo", channels=[pt, cf], platform="linux-64", glibc="2.28", specs=["libjpeg-turbo"]),
        dict(name="pytorch+cf flexible libjpeg-turbo", channels=[pt, cf], platform="linux-64", glibc="2.28", specs=["libjpeg-turbo"], priority="flexible"),
        dict(name="pytorch+cf disabled libjpeg-turbo", channels=[pt, cf], platform="linux-64", glibc="2.28", specs=["libjpeg-turbo"], priority="disabled"),
        dict(name="defaults python=3.6 numpy", channels=[df], platform="linux-64", glibc="2.17", specs=["python=3.6", "numpy"]),
        dict(name="defaults pandas scikit-learn", channels=[df], platform="linux-64", glibc="2.17", specs=["pandas", "scikit-learn", "python=3.6"]),
        dict(name="defaults python=2.7 matplotlib dask", channels=[df], platform="linux-64", glibc="2.17", specs=["python=2.7", "matplotlib", "dask"]),
        dict(name="defaults numpy exclude-newer 2018-01-01", channels=[df], platform="linux-64", glibc="2.17", specs=["numpy", "python=3.6"], exclude_newer="2018-01-01"),
        dict(name="pytorch+defaults pytorch", channels=[pt, df], platform="linux-64", glibc="2.17", specs=["pytorch", "python=3.6"]),
    ]
    out += [
        # CUDA: ffmpeg's newest builds constrain `__cuda >=12.4`/`>=12.8`;
        # cuda-version 12.9 constrains `__cuda >=12`.
        dict(name="cf ffmpeg, no __cuda", channels=[cf], platform="linux-64", glibc="2.28", specs=["ffmpeg"]),
        dict(name="cf ffmpeg, __cuda 12.4", channels=[cf], platform="linux-64", glibc="2.28", specs=["ffmpeg"], cuda="12.4"),
        dict(name="cf ffmpeg, __cuda 12.9", channels=[cf], platform="linux-64", glibc="2.28", specs=["ffmpeg"], cuda="12.9"),
        dict(name="cf cuda-version, __cuda 11.8", channels=[cf], platform="linux-64", glibc="2.28", specs=["cuda-version"], cuda="11.8"),
        # Prefix pins (conda-meta/pinned) as constraints.
        dict(name="cf python numpy, pin numpy<2", channels=[cf], platform="linux-64", glibc="2.28", specs=["python", "numpy"], pins=["numpy <2"]),
        dict(name="cf pandas, pin python 3.11.*", channels=[cf], platform="linux-64", glibc="2.28", specs=["pandas"], pins=["python 3.11.*"]),
        dict(name="defaults numpy, pin numpy 1.13.*", channels=[df], platform="linux-64", glibc="2.17", specs=["python=3.6", "numpy"], pins=["numpy 1.13.*"]),
        # py-rattler's own default: python without pip.
        dict(name="cf python=3.12, add_pip off", channels=[cf], platform="linux-64", glibc="2.28", specs=["python=3.12"], add_pip=False),
    ]
    if world and (Path(world) / "bioconda").is_dir():
        wcf, wbio = url(Path(world) / "conda-forge"), url(Path(world) / "bioconda")
        for priority in ("strict", "flexible", "disabled"):
            out.append(dict(name=f"bioconda over cf {priority}: pysam edlib", channels=[wbio, wcf], platform="linux-64",
                            glibc="2.28", specs=["pysam", "edlib", "python-edlib"], priority=priority))

        wcf, wbio = url(Path(world) / "conda-forge"), url(Path(world) / "bioconda")
        out.append(dict(name="LongQC step 1 (conda-forge)", channels=[wcf], platform="linux-64", glibc="2.28",
                        specs=["numpy", "pandas>=0.24.0", "scipy", "jinja2", "h5py", "matplotlib>=2.1.2", "scikit-learn"], keep=True))
        out.append(dict(name="LongQC step 2 (bioconda on top)", channels=[wbio, wcf], platform="linux-64", glibc="2.28",
                        specs=["edlib", "pysam", "python-edlib"], installed_from_previous=True))
    return out


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin")
    ap.add_argument("--world", default=str(ROOT / "fixtures" / "world" / "conda"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--child", nargs=2)
    a = ap.parse_args()
    if a.child:
        child(*a.child)
        return
    binary = a.bin or find_bin()
    same = 0
    rows = []
    prev_ours_json = None
    prev_theirs = None
    with tempfile.TemporaryDirectory() as tmp:
        for i, case in enumerate(cases(a.world)):
            inst_json = prev_ours_json if case.get("installed_from_previous") else None
            locked = prev_theirs if case.get("installed_from_previous") else None
            times = {"oc": [], "ow": [], "tc": [], "tw": [], "opc": [], "tpc": []}
            for r in range(a.runs):
                ocache, tcache = os.path.join(tmp, f"o{i}-{r}"), os.path.join(tmp, f"t{i}-{r}")
                o, ot, oerr, owork = ours(binary, case, ocache, inst_json)
                times["oc"].append(owork)
                times["opc"].append(ot)
                t, tt, terr, recs = asyncio.run(theirs(case, tcache, locked))
                times["tc"].append(tt)
                if not locked:
                    times["tpc"].append(theirs_process(case, os.path.join(tmp, f"p{i}-{r}")))
                o2, ot2, _, owork2 = ours(binary, case, ocache, inst_json)
                times["ow"].append(owork2)
                t2, tt2, _, _ = asyncio.run(theirs(case, tcache, locked))
                times["tw"].append(tt2)
                assert o2 == o and t2 == t, f"{case['name']}: a warm run solved differently"
            if case.get("keep") and recs:
                prev_theirs = recs
                # Hand imagelock the same prefix: py-rattler's records as JSON.
                prev_ours_json = os.path.join(tmp, "installed.json")
                with open(prev_ours_json, "w") as f:
                    f.write("[" + ",".join(r.to_json() for r in recs) + "]")
            if o is None and t is None:
                verdict = "same (both unsatisfiable)"
                same += 1
            elif o == t:
                verdict = "same"
                same += 1
            elif o is None or t is None:
                verdict = f"DIFFERENT: imagelock={'error: ' + oerr if o is None else 'solved'} py-rattler={'error: ' + terr if t is None else 'solved'}"
            else:
                only_o = sorted(o - t)
                only_t = sorted(t - o)
                verdict = f"DIFFERENT: only imagelock {only_o[:6]} only py-rattler {only_t[:6]}"
            med = {k: median(v) if v else None for k, v in times.items()}
            rows.append((case["name"], len(o or ()), med, verdict))
    # In process: imagelock's fetch + solve once its runtime and HTTP client
    # exist, against py-rattler's `solve()` once its `Gateway` exists (an
    # unsatisfiable set too). Whole process: each
    # tool started as a user starts it (py-rattler: Python, its import, the
    # `Gateway`, `solve()`); n/a for the set that needs the previous prefix.
    print("| case | pkgs | imagelock cold s | py-rattler cold s | ratio | imagelock warm s | py-rattler warm s | ratio "
          "| whole process cold: imagelock s | python + py-rattler s | ratio | verdict |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, n, m, verdict in rows:
        whole = (f"{m['opc']:.3f} | {m['tpc']:.3f} | {m['opc'] / m['tpc']:.2f}x" if m["tpc"]
                 else f"{m['opc']:.3f} | n/a | n/a")
        print(f"| {name} | {n} | {m['oc']:.4f} | {m['tc']:.4f} | {m['oc'] / m['tc']:.2f}x "
              f"| {m['ow']:.4f} | {m['tw']:.4f} | {m['ow'] / m['tw']:.2f}x | {whole} | {verdict} |")
    print(f"\n{same}/{len(rows)} spec sets give the same solution (medians of {a.runs})")
    print(f"py-rattler process peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()

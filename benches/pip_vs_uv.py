#!/usr/bin/env python3
"""imagelock's pip resolution against `uv pip compile` on the live index.

Not a CI gate. Each set of benches/pip_sets.txt is resolved by both tools
for CPython 3.11 on manylinux_2_28 x86_64: RUNS times cold (a fresh cache
for each run) then RUNS times warm (the last cold run's cache), each timing
the median of its runs. The answers (`name==version` sets) are compared;
every difference is printed as `-name==v` (uv only) / `+name==v` (imagelock
only), and a summary gives the agreement count.

Usage: cargo bench --bench pip_compile --no-run   # the runner (release)
       python3 benches/pip_vs_uv.py [--runs 3] [--only NAME,...] [--skip NAME,...] [RUNNER]
Needs `uv` (pip install uv). RUNNER defaults to the newest release build,
else the debug one (`cargo test --bench pip_compile --no-run`; its timings
are then not comparable and are marked so).
"""

import argparse
import glob
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TIMEOUT = 900


def sets():
    out = []
    with open(os.path.join(HERE, "pip_sets.txt")) as f:
        for line in f:
            if not line.strip() or line.startswith("#"):
                continue
            kind, name, reqs = (x.strip() for x in line.split("|", 2))
            out.append((kind, name, [r.strip() for r in reqs.split("&")]))
    return out


def runner(given):
    if given:
        return given, "release" in given
    for profile in ["release", "debug"]:
        found = glob.glob(os.path.join(HERE, f"../target/{profile}/deps/pip_compile-*"))
        found = [f for f in found if os.access(f, os.X_OK) and not f.endswith(".d")]
        if found:
            return max(found, key=os.path.getmtime), profile == "release"
    sys.exit("build the runner first: cargo bench --bench pip_compile --no-run")


def pins(text):
    return {
        l.split(";")[0].strip().lower().replace("_", "-")
        for l in text.splitlines()
        if "==" in l and not l.lstrip().startswith("#")
    }


def timed(cmd, env):
    start = time.monotonic()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=TIMEOUT)
        code, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired:
        code, out, err = -1, "", f"timed out after {TIMEOUT}s"
    return time.monotonic() - start, code, out, err


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", default="")
    ap.add_argument("--skip", default="")
    ap.add_argument("runner", nargs="?")
    a = ap.parse_args()
    exe, release = runner(a.runner)
    only = set(filter(None, a.only.split(",")))
    skip = set(filter(None, a.skip.split(",")))
    # pip's own cache off (imagelock's pip path), the host's find-links off:
    # each cold run starts from nothing for both tools.
    env = dict(os.environ, UV_NATIVE_TLS="1", PIP_NO_CACHE_DIR="1")
    env.pop("PIP_FIND_LINKS", None)
    work = tempfile.mkdtemp(prefix="pip-vs-uv-")
    agree = total = 0
    differences = []
    note = "" if release else "  (debug runner: imagelock timings not comparable)"
    print(f"{'set':28} {'answer':8} {'il cold':>8} {'uv cold':>8} {'ratio':>6} {'il warm':>8} {'uv warm':>8} {'ratio':>6}{note}")
    try:
        for kind, name, reqs in sets():
            if (only and name not in only) or name in skip:
                continue
            total += 1
            req_in = os.path.join(work, "req.in")
            with open(req_in, "w") as f:
                f.write("\n".join(reqs) + "\n")
            il_cache, uv_cache = os.path.join(work, "il"), os.path.join(work, "uv")

            def il():
                return [exe, "--python-version", "3.11", "--platform", "linux/amd64",
                        "--glibc", "2.28", "--cache-dir", il_cache, *reqs]

            def uv():
                return ["uv", "pip", "compile", "--cache-dir", uv_cache, "--python-version", "3.11",
                        "--python-platform", "x86_64-manylinux_2_28", "--no-header",
                        "--no-annotate", "--quiet", req_in]

            times = {k: [] for k in ["ilc", "uvc", "ilw", "uvw"]}
            answers = {}
            for _ in range(a.runs):
                for d in (il_cache, uv_cache):
                    shutil.rmtree(d, ignore_errors=True)
                for key, cmd in (("ilc", il()), ("uvc", uv())):
                    t, code, out, err = timed(cmd, env)
                    times[key].append(t)
                    answers.setdefault(key, (code, out, err))
            for _ in range(a.runs):
                for key, cmd in (("ilw", il()), ("uvw", uv())):
                    t, code, out, err = timed(cmd, env)
                    times[key].append(t)
                    answers.setdefault(key, (code, out, err))
            (ic, io, ie), (uc, uo, ue) = answers["ilc"], answers["uvc"]
            if ic or uc:
                answer = "error"
                differences.append((kind, name, [f"uv exit {uc}: {(ue.strip().splitlines() or [''])[-1]}",
                                                 f"imagelock exit {ic}: {(ie.strip().splitlines() or [''])[-1]}"]))
            elif pins(io) == pins(uo):
                answer = "same"
                agree += 1
            else:
                answer = "differs"
                a_, b_ = pins(uo), pins(io)
                differences.append((kind, name, sorted(f"-{p}" for p in a_ - b_) + sorted(f"+{p}" for p in b_ - a_)))
            med = {k: statistics.median(v) for k, v in times.items()}
            # Each imagelock run is paired with the uv run right after it;
            # the ratio is the median of the pairs' ratios.
            cold = statistics.median(i / u for i, u in zip(times["ilc"], times["uvc"]))
            warm = statistics.median(i / u for i, u in zip(times["ilw"], times["uvw"]))
            print(f"{kind + '/' + name:28} {answer:8} {med['ilc']:7.2f}s {med['uvc']:7.2f}s {cold:5.2f}x "
                  f"{med['ilw']:7.2f}s {med['uvw']:7.2f}s {warm:5.2f}x", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{agree} of {total} sets give the same name==version set")
    for kind, name, lines in differences:
        print(f"\n{kind}/{name}:")
        for l in lines:
            print(f"  {l}")


if __name__ == "__main__":
    main()

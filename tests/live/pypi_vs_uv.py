#!/usr/bin/env python3
"""Compare imagelock's Python resolution with `uv pip compile` on live PyPI.

Not a CI gate. For every requirement set below, for Python 3.10, 3.11 and
3.12 on manylinux_2_28 x86_64 and aarch64, both tools resolve in the same
run; the script prints one line per case (same / differs) and writes the
differences to stdout as `-name==v` (uv only) / `+name==v` (imagelock only).
Explanations of the differences live in pypi_vs_uv.md beside this file.

Usage: cargo bench --bench pip_compile --no-run   # builds the runner
       python3 tests/live/pypi_vs_uv.py [RUNNER]   # needs `uv` (pip install uv)
"""

import glob
import os
import subprocess
import sys
import tempfile

SETS = {
    "driver": ["boto3", "luigi", "pystac-client", "pandas>=2.0", "requests", "pyyaml"],
    "notebook-base": ["ipykernel", "nbformat", "nbclient"],
    "jupyterlab": ["jupyterlab", "ipywidgets"],
    "notebook": ["notebook"],
    "scipy-ml": ["scikit-learn", "scipy", "matplotlib", "seaborn"],
    "ml-no-torch": ["xgboost", "lightgbm", "scikit-learn", "optuna"],
    "bio": ["biopython", "pysam", "scanpy"],
    "dask": ["dask[complete]"],
    "xarray": ["xarray", "netCDF4", "h5netcdf", "zarr"],
    "snakemake": ["snakemake"],
    "geo": ["geopandas", "shapely", "pyproj", "rasterio"],
    "stats": ["statsmodels", "pandas", "patsy"],
    "web-data": ["fastapi", "uvicorn", "sqlalchemy", "pydantic"],
    "plot": ["plotly", "bokeh", "altair"],
    "nlp-light": ["nltk", "spacy"],
    "astro": ["astropy", "astroquery"],
    "cloud": ["google-cloud-storage", "azure-storage-blob", "s3fs"],
}
PYTHONS = ["3.10", "3.11", "3.12"]
ARCHES = {"x86_64": "linux/amd64", "aarch64": "linux/arm64"}


def runner() -> str:
    if len(sys.argv) > 1:
        return sys.argv[1]
    here = os.path.dirname(os.path.abspath(__file__))
    found = sorted(glob.glob(os.path.join(here, "../../target/release/deps/pip_compile-*")), key=os.path.getmtime)
    found = [f for f in found if os.access(f, os.X_OK) and not f.endswith(".d")]
    if not found:
        sys.exit("build the runner first: cargo bench --bench pip_compile --no-run")
    return found[-1]


def pins(text: str) -> set[str]:
    return {l.strip().lower() for l in text.splitlines() if "==" in l and not l.startswith("#")}


def main() -> None:
    exe = runner()
    env = dict(os.environ, UV_NATIVE_TLS="1")
    same = total = 0
    for name, reqs in SETS.items():
        for py in PYTHONS:
            for arch, platform in ARCHES.items():
                total += 1
                with tempfile.NamedTemporaryFile("w", suffix=".in", delete=False) as f:
                    f.write("\n".join(reqs) + "\n")
                uv = subprocess.run(
                    ["uv", "pip", "compile", "--python-version", py, "--python-platform",
                     f"{arch}-manylinux_2_28", "--no-header", "--no-annotate", "--quiet", f.name],
                    capture_output=True, text=True, env=env)
                il = subprocess.run(
                    [exe, "--python-version", py, "--platform", platform, "--glibc", "2.28", *reqs],
                    capture_output=True, text=True, env=env)
                os.unlink(f.name)
                a, b = pins(uv.stdout), pins(il.stdout)
                if uv.returncode or il.returncode:
                    status = f"error uv={uv.returncode} imagelock={il.returncode}"
                    detail = (uv.stderr.strip().splitlines() or [""])[-1:] + (il.stderr.strip().splitlines() or [""])[-2:]
                elif a == b:
                    status, detail = f"same ({len(a)} packages)", []
                    same += 1
                else:
                    status = "differs"
                    detail = [f"-{p}" for p in sorted(a - b)] + [f"+{p}" for p in sorted(b - a)]
                print(f"{name:14} py{py} {arch:8} {status}", flush=True)
                for d in detail:
                    print(f"    {d}")
    print(f"\n{same}/{total} identical")


if __name__ == "__main__":
    main()

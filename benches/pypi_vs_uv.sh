#!/usr/bin/env bash
# Side-by-side timing of imagelock's Python resolution and `uv pip compile`
# on the same requirement sets against live PyPI, cold cache then warm
# cache, in one run. Not a CI gate. Needs `uv` (pip install uv).
#
#   cargo bench --bench pip_compile --no-run && benches/pypi_vs_uv.sh
set -euo pipefail
cd "$(dirname "$0")/.."
runner=$(ls -t target/release/deps/pip_compile-* | grep -v '\.d$' | head -1)
export UV_NATIVE_TLS=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

sets=(
  "boto3 luigi pystac-client pandas>=2.0 requests pyyaml"
  "jupyterlab ipywidgets"
  "scikit-learn scipy matplotlib seaborn"
  "dask[complete]"
  "biopython pysam scanpy"
)

now() { date +%s.%N; }
time_it() { local s e; s=$(now); "$@" >/dev/null 2>&1 || echo "  (failed: $*)" >&2; e=$(now); echo "$e - $s" | bc; }

printf '%-40s %10s %10s %10s %10s\n' "requirements" "il cold" "uv cold" "il warm" "uv warm"
for set in "${sets[@]}"; do
  read -r -a reqs <<<"$set"
  printf '%s\n' "${reqs[@]}" >"$work/req.in"
  rm -rf "$work/il" "$work/uv"
  ilc=$(time_it "$runner" --python-version 3.11 --platform linux/amd64 --glibc 2.28 --cache-dir "$work/il" "${reqs[@]}")
  uvc=$(time_it uv pip compile --cache-dir "$work/uv" --python-version 3.11 --python-platform x86_64-manylinux_2_28 --no-header --no-annotate --quiet "$work/req.in")
  ilw=$(time_it "$runner" --python-version 3.11 --platform linux/amd64 --glibc 2.28 --cache-dir "$work/il" "${reqs[@]}")
  uvw=$(time_it uv pip compile --cache-dir "$work/uv" --python-version 3.11 --python-platform x86_64-manylinux_2_28 --no-header --no-annotate --quiet "$work/req.in")
  printf '%-40s %9.2fs %9.2fs %9.2fs %9.2fs\n' "${set:0:40}" "$ilc" "$uvc" "$ilw" "$uvw"
done

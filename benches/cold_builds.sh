#!/usr/bin/env bash
# Cold sdist metadata builds: imagelock's Python resolution against
# `uv pip compile` on the live index, every run with empty caches (a fresh
# cache directory each, so no kept build environment either; pip's own
# cache off for imagelock's pip path), paired runs A B A B by `farm-bench`,
# median of RUNS. Not a CI gate. Needs `uv` and `farm-bench`.
#
#   cargo bench --bench pip_compile --no-run
#   benches/cold_builds.sh [RUNNER]      # RUNS=3 by default
set -euo pipefail
cd "$(dirname "$0")/.."
runner=${1:-$(ls -t target/release/deps/pip_compile-* | grep -v '\.d$' | head -1)}
runs=${RUNS:-3}
export UV_NATIVE_TLS=1 PIP_NO_CACHE_DIR=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# sdist-only sets with dynamic metadata: setuptools (connection_pool,
# snakemake's closure), flit_core (tomli 1.2.3) and hatchling with plugins
# (jsonschema 4.17.3), the last two as sdist URLs so both tools build them.
sets=(
  "connection_pool"
  "snakemake"
  "tomli @ https://files.pythonhosted.org/packages/fb/2e/d0a8276b0cf9b9e34fd0660c330acc59656f53bb2209adc75af863a3582d/tomli-1.2.3.tar.gz"
  "jsonschema @ https://files.pythonhosted.org/packages/36/3d/ca032d5ac064dff543aa13c984737795ac81abc9fb130cd2fcff17cfabc7/jsonschema-4.17.3.tar.gz"
)

for set in "${sets[@]}"; do
  printf '%s\n' "$set" >"$work/req.in"
  echo "== $set"
  farm-bench -n "$runs" --warmup 0 --timeout 1200 \
    --vs "sh -c 'exec uv pip compile --cache-dir \$(mktemp -d -p $work) --python-version 3.11 --python-platform x86_64-manylinux_2_28 --no-header --no-annotate --quiet $work/req.in'" \
    -- sh -c "exec $runner --python-version 3.11 --platform linux/amd64 --glibc 2.28 --cache-dir \$(mktemp -d -p $work) \"\$@\"" runner "$set"
done

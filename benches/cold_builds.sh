#!/usr/bin/env bash
# Cold Python resolution with sdist metadata builds: imagelock's resolver
# (the `pip_compile` bench program) against `uv pip compile` on the live
# index, every run with empty caches (a fresh cache directory each, so no
# kept build environment either; pip's own cache off for imagelock's pip
# path). Runs are paired, imagelock then uv, RUNS times; the ratio is taken
# pair by pair and the median of each column is printed. Each imagelock
# run's own report (time, request count, when each sdist build started and
# ended) is printed too, and both tools' answers are compared. Not a CI
# gate. Needs `uv`.
#
#   cargo bench --bench pip_compile --no-run
#   benches/cold_builds.sh [RUNNER]      # RUNS=3 by default; SETS="a|b" to pick
set -euo pipefail
cd "$(dirname "$0")/.."
runner=${1:-$(ls -t target/release/deps/pip_compile-* | grep -v '\.d$' | head -1)}
runs=${RUNS:-3}
export UV_NATIVE_TLS=1 PIP_NO_CACHE_DIR=1 LC_ALL=C
# pip's find-links of the host would add files that uv does not see.
unset PIP_FIND_LINKS
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

now() { date +%s.%N; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

printf '%-12s %10s %10s %8s\n' set imagelock uv ratio >"$work/table"
for set in "${sets[@]}"; do
  if [[ -n ${SETS:-} ]] && ! [[ $set =~ ^(${SETS}) ]]; then continue; fi
  printf '%s\n' "$set" >"$work/req.in"
  echo "== $set"
  : >"$work/a" && : >"$work/b" && : >"$work/r"
  for i in $(seq "$runs"); do
    cache=$(mktemp -d -p "$work")
    t0=$(now)
    "$runner" --python-version 3.11 --platform linux/amd64 --glibc 2.28 \
      --cache-dir "$cache" "$set" >"$work/mine.txt" 2>"$work/mine.err" || true
    t1=$(now)
    rm -rf "$cache"
    cache=$(mktemp -d -p "$work")
    t2=$(now)
    uv pip compile --cache-dir "$cache" --python-version 3.11 \
      --python-platform x86_64-manylinux_2_28 --no-header --no-annotate --quiet \
      "$work/req.in" 2>"$work/uv.err" | sed 's/ *#.*//; /^$/d; /^ /d' | sort >"$work/uv.txt" || true
    t3=$(now)
    rm -rf "$cache"
    a=$(echo "$t1 - $t0" | bc) b=$(echo "$t3 - $t2" | bc)
    echo "$a" >>"$work/a" && echo "$b" >>"$work/b"
    echo "scale=4; $a / $b" | bc >>"$work/r"
    printf 'run %d: imagelock %.2f s, uv %.2f s\n' "$i" "$a" "$b"
    sed 's/^/    /' "$work/mine.err"
    # uv names a direct URL requirement by its URL: compare names only there.
    if ! [[ -s $work/mine.txt && -s $work/uv.txt ]]; then
      echo "    no answer from one of the tools"
    elif [[ $set == *" @ "* ]]; then
      diff <(grep -v "^${set%% *}==" "$work/mine.txt" | sort) \
        <(grep -v "^${set%% *} @ " "$work/uv.txt") >/dev/null ||
        echo "    answers differ from uv's"
    else
      diff <(sort "$work/mine.txt") "$work/uv.txt" >/dev/null || echo "    answers differ from uv's"
    fi
  done
  short=${set%% *}
  printf '%-12s %9.2fs %9.2fs %7.2fx\n' "$short" "$(median <"$work/a")" \
    "$(median <"$work/b")" "$(median <"$work/r")" >>"$work/table"
done
echo "== median of $runs paired runs (ratio: median of the per-pair ratios)"
cat "$work/table"

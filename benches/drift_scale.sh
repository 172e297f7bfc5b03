#!/bin/sh
# `imagelock drift` over N copies of the examples (7 images per copy, each
# copy a directory with its own locks), cold (an empty cache directory) and
# with the cache directory a first drift left restored (what a CI matrix
# restores between scheduled runs), beside `imagelock verify` on the same
# images. Embedded world (`oci:` layouts, `file://` channels and index).
# Per N: one cold freeze to make the locks, then one cold drift, then three
# runs each of drift with the restored cache and of verify, in turn
# (medians).
#
# With BIG=DIR (a directory conda_scale.py made: DIR/synthetic holds a
# 206 MB linux-64 repodata) it also times drift of one image that creates
# an environment of `python=3.12 numpy pandas matplotlib requests` from that
# channel: cold, then with the cache the cold run left (three runs).
#
# Usage:  benches/drift_scale.sh [path/to/imagelock] [N ...]
#         (default: target/release/imagelock, N = 2 7 29: 14, 49, 203 images)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(realpath "${1:-$root/target/release/imagelock}")
[ $# -gt 0 ] && shift
[ -x "$bin" ] || { (cd "$root" && cargo build --release --quiet); bin="$root/target/release/imagelock"; }
sizes=${*:-2 7 29}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/fixtures"
cp -r "$root/fixtures/world" "$tmp/fixtures/world"

# seconds COMMAND...: wall seconds of one run (output discarded).
seconds() {
    start=$(date +%s.%N)
    "$@" >/dev/null 2>&1 || true
    end=$(date +%s.%N)
    echo "$end - $start" | bc
}
median() { sort -n | sed -n 2p; }

echo "| images | cold drift | drift, cache restored (median of 3) | verify (median of 3) | cold / restored | restored / verify |"
echo "|---:|---:|---:|---:|---:|---:|"
for n in $sizes; do
    ex="$tmp/fixtures/examples"
    rm -rf "$ex" "$tmp/lockfiles" "$tmp/cache" "$tmp/saved"
    mkdir -p "$ex"
    cp "$root/fixtures/examples/imagelock.toml" "$ex/imagelock.toml.in"
    sed -n '/^\[conda\]/,$p' "$ex/imagelock.toml.in" > "$ex/settings"
    sed -n '1,/^\[images/p' "$ex/imagelock.toml.in" | sed '$d' > "$ex/imagelock.toml"
    images=$(sed -n '/^\[images/,/^\[conda\]/p' "$ex/imagelock.toml.in" | sed '$d')
    per_copy=$(printf '%s\n' "$images" | grep -c '^\[images\.')
    i=1
    while [ "$i" -le "$n" ]; do
        mkdir -p "$ex/c$i"
        for d in driver longqc notebook-stack summation workbench; do
            cp -r "$root/fixtures/examples/$d" "$ex/c$i/$d"
        done
        printf '%s\n' "$images" | sed \
            -e "s|^\[images\.\(.*\)\]|[images.\1-$i]|" \
            -e "s|^file = \"|file = \"c$i/|" \
            -e "s|base-notebook:|base-notebook-$i:|" >> "$ex/imagelock.toml"
        sed -i "s|base-notebook:|base-notebook-$i:|" \
            "$ex/c$i/notebook-stack/scipy-ml-notebook/Dockerfile"
        i=$((i + 1))
    done
    cat "$ex/settings" >> "$ex/imagelock.toml"
    run() { (cd "$tmp" && IMAGELOCK_CACHE_DIR="$tmp/cache" "$bin" --config fixtures/examples/imagelock.toml "$@"); }
    run freeze >/dev/null 2>&1
    run verify >/dev/null 2>&1 || { echo "verify does not pass after the cold freeze" >&2; run verify >&2; exit 1; }
    rm -rf "$tmp/cache"
    cold=$(seconds run drift)
    run drift >/dev/null 2>&1 || { echo "drift fails" >&2; run drift >&2; exit 1; }
    rm -rf "$tmp/cache"
    run drift >/dev/null 2>&1 || true
    cp -a "$tmp/cache" "$tmp/saved"
    warm=""
    verify=""
    for _ in 1 2 3; do
        rm -rf "$tmp/cache"
        cp -a "$tmp/saved" "$tmp/cache"
        warm="$warm $(seconds run drift)"
        verify="$verify $(seconds run verify)"
    done
    w=$(printf '%s\n' $warm | median)
    v=$(printf '%s\n' $verify | median)
    printf '| %s | %.2f s | %.3f s | %.3f s | %.2f | %.2f |\n' "$((n * per_copy))" "$cold" "$w" "$v" \
        "$(echo "$cold / $w" | bc -l)" "$(echo "$w / $v" | bc -l)"
done

if [ -n "${BIG:-}" ]; then
    big=$(realpath "$BIG")
    [ -f "$big/synthetic/linux-64/repodata.json" ] || { echo "no $big/synthetic/linux-64/repodata.json (run benches/conda_scale.py --dir $BIG)" >&2; exit 1; }
    p="$tmp/big"
    mkdir -p "$p/chans"
    ln -s "$big/synthetic" "$p/chans/synthetic"
    printf 'FROM condaforge/miniforge3:24.3.0-0\nRUN mamba create -y -p /opt/env --override-channels -c synthetic python=3.12 numpy pandas matplotlib requests\n' > "$p/Dockerfile"
    printf 'platforms = ["linux/amd64"]\n[images.big]\nfile = "Dockerfile"\n[conda]\ncustom-channels = { synthetic = "file://%s/chans" }\n[registries."docker.io"]\nlocation = "oci:%s/fixtures/world/images/docker.io"\n' "$p" "$tmp" > "$p/imagelock.toml"
    brun() { (cd "$p" && HOME="$p" IMAGELOCK_CACHE_DIR="$p/cache" "$bin" "$@"); }
    brun freeze >/dev/null 2>&1 || { echo "freeze of the 206 MB image fails" >&2; brun freeze >&2; exit 1; }
    size=$(stat -c %s "$big/synthetic/linux-64/repodata.json")
    rm -rf "$p/cache"
    cold=$(seconds brun drift)
    warm=""
    for _ in 1 2 3; do warm="$warm $(seconds brun drift)"; done
    w=$(printf '%s\n' $warm | median)
    echo
    echo "| linux-64 repodata | cold drift | drift, cache kept (median of 3) | cold / kept |"
    echo "|---|---:|---:|---:|"
    printf '| %s MB | %.2f s | %.3f s | %.1f |\n' "$((size / 1000000))" "$cold" "$w" "$(echo "$cold / $w" | bc -l)"
fi

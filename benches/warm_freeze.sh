#!/bin/sh
# A warm freeze beside `imagelock verify` over N copies of the examples
# (every example image, each copy a directory of its own with its own lock),
# resolved against the embedded world (`oci:` layouts, `file://` channels
# and index). Per N: the cold freeze once, then three runs each of the warm
# freeze and of verify, in turn, and the ratio of their medians.
#
# Usage:  benches/warm_freeze.sh [path/to/imagelock] [N ...]
#         (default: target/release/imagelock, N = 10 50 200; copies of the
#         examples, so N copies are 8N images)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(realpath "${1:-$root/target/release/imagelock}")
[ $# -gt 0 ] && shift
[ -x "$bin" ] || { (cd "$root" && cargo build --release --quiet); bin="$root/target/release/imagelock"; }
sizes=${*:-10 50 200}
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

echo "| images | cold freeze | warm freeze (median of 3) | verify (median of 3) | warm / verify |"
echo "|---:|---:|---:|---:|---:|"
for n in $sizes; do
    ex="$tmp/fixtures/examples"
    rm -rf "$ex" "$tmp/lockfiles" "$tmp/cache"
    mkdir -p "$ex"
    cp "$root/fixtures/examples/imagelock.toml" "$ex/imagelock.toml.in"
    # The settings (everything but the images), then N copies of each image.
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
        # Each copy's images, renamed and moved into its directory; a copy's
        # notebook is built from its own base-notebook.
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
    cold=$(seconds run freeze)
    run verify >/dev/null 2>&1 || { echo "verify does not pass after the cold freeze" >&2; run verify >&2; exit 1; }
    warm=""
    verify=""
    for _ in 1 2 3; do
        warm="$warm $(seconds run freeze)"
        verify="$verify $(seconds run verify)"
    done
    w=$(printf '%s\n' $warm | median)
    v=$(printf '%s\n' $verify | median)
    printf '| %s | %.2f s | %.3f s | %.3f s | %.2f |\n' "$((n * per_copy))" "$cold" "$w" "$v" "$(echo "$w / $v" | bc -l)"
done

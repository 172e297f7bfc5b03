#!/bin/sh
# conda's installer inside a built image beside imagelock's conda locks, on
# every set of tests/conda/installer.py (the test suite runs the sets marked
# `test`): per set a real image is built with buildah from the pinned base,
# py-rattler's solve + install (the installer's defaults for the command)
# writes the prefix into the mounted image, and the result is compared with
# the lock freeze wrote for the same Dockerfile: step by step (name,
# version, build, URL, sha256), conda-meta against the lock's final prefix,
# and `imagelock verify --image` of the committed image.
#
# Needs what the test needs: buildah, skopeo, busybox, the CNCF registry
# binary the tests start, python3 with py-rattler. The channels (real
# repodata, package files made for the records the solutions need) are
# prepared once under target/conda-install.
#
# Usage:  benches/conda_install.sh [SET,SET...]   (default: all)
# Prints a Markdown table (installer and verify seconds are one run each)
# and the agreement count; exits non-zero when a set disagrees.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
IMAGELOCK_CONDA_SETS=${1:-all} cargo test --quiet --test it \
    conda_installer_in_a_built_image -- --nocapture >"$out" 2>&1 || status=$?
grep -E '^\||agrees with the lock|^skipping' "$out" || cat "$out"
if [ "$status" -ne 0 ]; then
    sed -n '/panicked/,/^stack backtrace/p' "$out"
fi
exit "$status"

#!/bin/sh
# Compares the FROM/stage extraction of `imagelock plan` with the independent
# Python parser dockerfile-parse over fixtures/corpus/dockerfile/.
#
# For every file and stage it compares: the number of stages, the stage name,
# the base image as written, and the base image after ARG expansion. Each
# difference is printed on one line; fixtures/corpus/DIFFERENCES.md explains
# every one of them.
#
# Usage:  benches/compare_corpus.sh [path/to/imagelock]
# Needs:  python3 with dockerfile-parse (pip install dockerfile-parse)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-"$root/target/debug/imagelock"}
[ -x "$bin" ] || (cd "$root" && cargo build --quiet)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 "$root/benches/corpus_stages.py" --out "$tmp/theirs.json"
cd "$root"
for f in fixtures/corpus/dockerfile/*.Dockerfile; do
    printf '%s\n' "$f"
done > "$tmp/files"
# One plan per file so that a file we reject does not hide the others.
while read -r f; do
    "$bin" plan --format json "$f" > "$tmp/ours-$(basename "$f").json" 2> "$tmp/err" \
        || { printf 'imagelock rejects %s: ' "$f"; head -1 "$tmp/err"; }
done < "$tmp/files"
python3 - "$tmp" <<'PY'
import json, sys, pathlib
tmp = pathlib.Path(sys.argv[1])
theirs = json.loads((tmp / "theirs.json").read_text())
files = same = 0
for rel, t in sorted(theirs.items()):
    files += 1
    p = tmp / f"ours-{pathlib.Path(rel).name}.json"
    if not p.exists() or not p.read_text().strip():
        continue
    ours = json.loads(p.read_text())["images"][0]["definition"]
    if ours is None or "error" in t:
        print(f"{rel}: one side failed: {t.get('error', 'imagelock')}")
        continue
    diffs = []
    os_, ts = ours["stages"], t["stages"]
    if len(os_) != len(ts):
        diffs.append(f"stage count: imagelock {len(os_)}, dockerfile-parse {len(ts)}")
    for i, (o, s) in enumerate(zip(os_, ts)):
        name = o["name"].lower() if o["name"] else None
        if name != s["name"]:
            diffs.append(f"stage {i} name: imagelock {name!r}, dockerfile-parse {s['name']!r}")
        ref = o["base"]["reference"]
        if ref["written"] != s["base"]:
            diffs.append(f"stage {i} base as written: imagelock {ref['written']!r}, dockerfile-parse {s['base']!r}")
        if ref["value"] != s["base_expanded"]:
            diffs.append(f"stage {i} base expanded: imagelock {ref['value']!r}, dockerfile-parse {s['base_expanded']!r}")
    if diffs:
        for d in diffs:
            print(f"{rel}: {d}")
    else:
        same += 1
print(f"\n{same} of {files} files: same stages, names and bases")
PY

#!/usr/bin/env python3
"""Reference stage listing for the Dockerfile corpus, made with dockerfile-parse.

What it is for: imagelock's Rust Dockerfile parser is compared against an
independent parser.  This script walks ``fixtures/corpus/dockerfile/`` (found
relative to this script, so it can be run from anywhere) and prints, as JSON,
one entry per file with the build stages that the PyPI package
``dockerfile-parse`` sees:

* ``base``          - the image of the FROM instruction as written
                      (``--platform`` and ``AS name`` removed),
* ``base_expanded`` - dockerfile-parse's own value for that stage
                      (``DockerfileParser.parent_images``: quotes removed and
                      ARGs declared before the first FROM substituted),
* ``name``          - the ``AS`` alias, lowercased, or null.

Each entry also carries ``baseimage`` (dockerfile-parse's final-stage image).
A file dockerfile-parse cannot read gets an ``error`` field instead of
failing the whole run.

Usage:  python3 benches/corpus_stages.py [--out FILE]
Needs:  pip install dockerfile-parse
"""

import argparse
import json
import sys
from pathlib import Path

from dockerfile_parse import DockerfileParser
from dockerfile_parse.parser import image_from

REPO_ROOT = Path(__file__).resolve().parent.parent
CORPUS = REPO_ROOT / "fixtures" / "corpus" / "dockerfile"


def stages_of(path: Path) -> dict:
    """Return the stages of one Dockerfile as seen by dockerfile-parse."""
    # cache_content=True + fileobj keeps dockerfile-parse from writing anything.
    with open(path, "rb") as fh:
        dfp = DockerfileParser(fileobj=fh, cache_content=True)
        froms = [i for i in dfp.structure if i["instruction"] == "FROM"]
        expanded = dfp.parent_images  # one entry per FROM whose image parsed
        baseimage = dfp.baseimage
    stages = []
    k = 0
    for instr in froms:
        image, name = image_from(instr["value"])
        if image is None:
            base_expanded = None  # dockerfile-parse skips such a FROM
        else:
            base_expanded = expanded[k] if k < len(expanded) else None
            k += 1
        stages.append({
            "base": image,
            "base_expanded": base_expanded,
            "name": name.lower() if name else None,
        })
    return {"stages": stages, "baseimage": baseimage}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", metavar="FILE", help="write the JSON here instead of stdout")
    args = ap.parse_args()

    result = {}
    for path in sorted(CORPUS.glob("*.Dockerfile")):
        rel = path.relative_to(REPO_ROOT).as_posix()
        try:
            result[rel] = stages_of(path)
        except Exception as exc:  # report, keep going
            result[rel] = {"error": f"{type(exc).__name__}: {exc}"}

    text = json.dumps(result, indent=2, sort_keys=True) + "\n"
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

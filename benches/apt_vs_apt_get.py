#!/usr/bin/env python3
"""Agreement of imagelock's apt resolution with the real apt.

For each install set, run `apt-get -s` (simulate) against a debootstrapped
root (apt reads the root's sources, keys, pins and dpkg status through
`-o Dir=ROOT`) and imagelock's resolver (`apt_resolve` example) against the
same root and the same live archive, and compare the package sets
(action, name, architecture, version). Both refusing a request counts as
agreement when both refuse.

    benches/apt_vs_apt_get.py --bin target/release/examples/apt_resolve \
        [--root NAME=DIR]… [--only SUBSTRING] [--no-update]

Roots: `bookworm` (Debian 12 minbase with bookworm, -updates, -security),
`bookworm-i386` (the same with `dpkg --add-architecture i386`) and `jammy`
(Ubuntu 22.04 minbase with main/universe, -updates, -security), made by
`benches/apt_roots.sh`.
"""

import argparse
import os
import re
import subprocess
import sys
import time

CASES = [
    ("bookworm", "install build-essential git curl"),
    ("bookworm", "install --no-install-recommends build-essential git curl"),
    ("bookworm", "install r-base-core"),
    ("bookworm", "install --no-install-recommends r-base-core"),
    ("bookworm", "install default-jre-headless"),
    ("bookworm", "install --no-install-recommends default-jre-headless"),
    ("bookworm", "install libgl1 libglib2.0-0"),
    ("bookworm", "install python3-venv"),
    ("bookworm", "install --no-install-recommends python3-venv"),
    ("bookworm", "install python3-pip"),
    ("bookworm", "install python3-numpy python3-scipy"),
    ("bookworm", "install gcc g++ make"),
    ("bookworm", "install wget ca-certificates"),
    ("bookworm", "install vim sudo openssh-client"),
    ("bookworm", "install postgresql-client"),
    ("bookworm", "install samtools"),
    ("bookworm", "install nginx"),
    ("bookworm", "install --no-install-recommends imagemagick"),
    ("bookworm", "install libopenblas-dev"),
    ("bookworm", "install --no-install-recommends texlive-latex-base"),
    ("bookworm", "install --no-install-recommends openjdk-17-jdk-headless"),
    ("bookworm", "install git-lfs"),
    ("bookworm", "install default-mta"),
    ("bookworm", "install mail-transport-agent"),
    ("bookworm", "install awk"),
    ("bookworm", "install -t bookworm openssl"),
    ("bookworm", "install libssl3/bookworm"),
    ("bookworm", "upgrade"),
    ("bookworm", "dist-upgrade"),
    ("bookworm", "remove tzdata"),
    ("bookworm", "purge tzdata"),
    ("bookworm", "autoremove"),
    ("bookworm-i386", "install libc6:i386"),
    ("bookworm-i386", "install libstdc++6:i386 zlib1g:i386"),
    ("bookworm-i386", "install --no-install-recommends gcc-multilib"),
    ("jammy", "install build-essential git curl"),
    ("jammy", "install --no-install-recommends python3-venv"),
    ("jammy", "install r-base-core"),
    ("jammy", "install default-jre-headless"),
    ("jammy", "install libgl1 libglib2.0-0"),
]

APT_LINE = re.compile(r"^(Inst|Remv|Purg) (\S+)(?: \[([^\]]+)\])?(?: \((\S+) .*\[(\S+)\]\))?")


def apt_cmd(root):
    # apt asks the host's dpkg for foreign architectures, not the root's.
    archs = []
    arch_file = os.path.join(root, "var/lib/dpkg/arch")
    if os.path.exists(arch_file):
        for a in open(arch_file).read().split():
            archs += ["-o", f"APT::Architectures::={a}"]
    return ["apt-get"] + archs + [
        "-o", f"Dir={root}",
        "-o", f"Dir::State::status={root}/var/lib/dpkg/status",
        "-o", "Debug::NoLocking=1",
        "-o", "APT::Sandbox::User=root",
        "-o", "APT::Get::Simulate=true",
    ]


def run_apt(root, args):
    p = subprocess.run(apt_cmd(root) + ["-q", "-y"] + args.split(), capture_output=True, text=True)
    if p.returncode != 0:
        errors = [l for l in (p.stdout + p.stderr).splitlines() if l.startswith("E:")]
        return None, " / ".join(errors) or f"exit {p.returncode}"
    out = set()
    for line in p.stdout.splitlines():
        m = APT_LINE.match(line)
        if not m:
            continue
        kind, name, old, new, arch = m.groups()
        name, _, qual = name.partition(":")
        if kind == "Inst":
            out.add(("Inst", name, arch, new))
        else:
            out.add(("Remv", name, qual or None, None))
    return out, None


def run_ours(binary, root, args, native, cache):
    extra = ["--cache", cache] if cache else []
    p = subprocess.run([binary, "--root", root, "--arch", native] + extra + args.split(), capture_output=True, text=True)
    if p.returncode != 0:
        errors = [l for l in p.stderr.splitlines() if l.startswith("Error:")]
        return None, errors[0] if errors else f"exit {p.returncode}", False
    out = set()
    approx = False
    for line in p.stdout.splitlines():
        if line.startswith("# problem resolver"):
            approx = True
            continue
        f = line.split()
        if f[0] == "Inst":
            out.add(("Inst", f[1], f[2], f[3]))
        elif f[0] == "Remv":
            out.add(("Remv", f[1], None, None))
    return out, None, approx


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--root", action="append", default=[])
    ap.add_argument("--only")
    ap.add_argument("--no-update", action="store_true")
    ap.add_argument("--cache", help="imagelock's cache of by-hash indexes")
    a = ap.parse_args()
    # apt takes a relative Dir::State::status relative to Dir::State.
    roots = {k: os.path.abspath(v) for k, v in (r.split("=", 1) for r in a.root)}
    if not a.no_update:
        for name, root in roots.items():
            t = time.time()
            subprocess.run(apt_cmd(root) + ["-qq", "update"], check=True)
            print(f"# apt-get update {name}: {time.time() - t:.1f}s", file=sys.stderr)
    agree = total = 0
    for root_name, args in CASES:
        if root_name not in roots or (a.only and a.only not in args):
            continue
        root = roots[root_name]
        total += 1
        theirs, their_err = run_apt(root, args)
        ours, our_err, approx = run_ours(a.bin, root, args, "amd64", a.cache)
        label = f"{root_name}: apt-get {args}"
        if theirs is not None and ours is not None:
            # apt prints removals without the architecture; compare names.
            t = {(k, n, ar if k == "Inst" else None, v) for k, n, ar, v in theirs}
            if t == ours:
                agree += 1
                print(f"AGREE   {label}: {len(ours)} packages{' (problem resolver approximated)' if approx else ''}")
            else:
                print(f"DIFFER  {label}: apt {len(t)}, ours {len(ours)}{' (problem resolver approximated)' if approx else ''}")
                for x in sorted(t - ours, key=str):
                    print(f"   only apt:  {x}")
                for x in sorted(ours - t, key=str):
                    print(f"   only ours: {x}")
        elif theirs is None and ours is None:
            agree += 1
            print(f"AGREE   {label}: both refuse\n   apt:  {their_err}\n   ours: {our_err}")
        else:
            print(f"DIFFER  {label}: apt {'refuses: ' + their_err if theirs is None else str(len(theirs)) + ' packages'}; ours {'refuses: ' + our_err if ours is None else str(len(ours)) + ' packages'}")
    print(f"agreement: {agree}/{total}")


if __name__ == "__main__":
    main()

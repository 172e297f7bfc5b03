#!/bin/sh
# Installs a released imagelock binary, after checking it against the
# release's SHA256SUMS. Linux on x86_64 or aarch64 (static musl builds).
#
#   curl -LsSf https://github.com/__REPOSITORY__/releases/latest/download/install.sh | sh
#   sh install.sh --version v0.1.0 --dir /usr/local/bin
#
# Options (or the environment variables after them):
#   --version TAG   release to install, e.g. v0.1.0       IMAGELOCK_VERSION (latest)
#   --dir DIR       where the binary goes                  IMAGELOCK_INSTALL_DIR ($HOME/.local/bin)
#   --repo O/N      GitHub repository of the releases      IMAGELOCK_REPO
#   --url URL       download from URL/<asset> instead      IMAGELOCK_DOWNLOAD_URL
set -eu

repo="${IMAGELOCK_REPO:-__REPOSITORY__}"
version="${IMAGELOCK_VERSION:-latest}"
dir="${IMAGELOCK_INSTALL_DIR:-${HOME:-/root}/.local/bin}"
url="${IMAGELOCK_DOWNLOAD_URL:-}"

fail() {
    printf 'install.sh: error: %s\n' "$1" >&2
    [ $# -gt 1 ] && printf '  hint: %s\n' "$2" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --version) [ $# -ge 2 ] || fail "--version needs a value"; version="$2"; shift 2 ;;
        --dir) [ $# -ge 2 ] || fail "--dir needs a value"; dir="$2"; shift 2 ;;
        --repo) [ $# -ge 2 ] || fail "--repo needs a value"; repo="$2"; shift 2 ;;
        --url) [ $# -ge 2 ] || fail "--url needs a value"; url="$2"; shift 2 ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) fail "unknown option \`$1\`" "see \`sh install.sh --help\`" ;;
    esac
done

[ "$(uname -s)" = Linux ] || fail "imagelock releases are built for Linux; this is \`$(uname -s)\`" "build from source: cargo install --locked imagelock"
case "$(uname -m)" in
    x86_64|amd64) arch=x86_64 ;;
    aarch64|arm64) arch=aarch64 ;;
    *) fail "no release binary for \`$(uname -m)\`" "build from source: cargo install --locked imagelock" ;;
esac
asset="imagelock-$arch-unknown-linux-musl.tar.gz"

if [ -z "$url" ]; then
    case "$repo" in
        __REPOSITORY__|"") fail "no repository to download from" "pass --repo OWNER/NAME or IMAGELOCK_REPO" ;;
    esac
    if [ "$version" = latest ]; then
        url="https://github.com/$repo/releases/latest/download"
    else
        url="https://github.com/$repo/releases/download/$version"
    fi
fi

fetch() {
    if command -v curl >/dev/null 2>&1; then
        curl --proto '=https,http' -fsSL -o "$2" "$1" || fail "could not download \`$1\`"
    elif command -v wget >/dev/null 2>&1; then
        wget -q -O "$2" "$1" || fail "could not download \`$1\`"
    else
        fail "neither curl nor wget is installed"
    fi
}

sha256() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d' ' -f1
    elif command -v shasum >/dev/null 2>&1; then
        shasum -a 256 "$1" | cut -d' ' -f1
    else
        fail "neither sha256sum nor shasum is installed"
    fi
}

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT INT TERM
fetch "$url/SHA256SUMS" "$tmp/SHA256SUMS"
fetch "$url/$asset" "$tmp/$asset"

expected="$(awk -v a="$asset" '$2 == a || $2 == "*" a { print $1 }' "$tmp/SHA256SUMS")"
[ -n "$expected" ] || fail "SHA256SUMS lists no \`$asset\`"
actual="$(sha256 "$tmp/$asset")"
[ "$expected" = "$actual" ] || fail "\`$asset\` has sha256 $actual, but SHA256SUMS says $expected" "the download is corrupt or was tampered with; nothing was installed"

tar -xzf "$tmp/$asset" -C "$tmp" imagelock || fail "\`$asset\` holds no \`imagelock\`"
mkdir -p "$dir"
# Rename into place so a running imagelock is never overwritten half-way.
cp "$tmp/imagelock" "$dir/.imagelock.tmp.$$"
chmod 0755 "$dir/.imagelock.tmp.$$"
mv -f "$dir/.imagelock.tmp.$$" "$dir/imagelock"
printf 'installed %s (sha256 %s) to %s\n' "$("$dir/imagelock" --version)" "$actual" "$dir/imagelock"
case ":${PATH:-}:" in
    *":$dir:"*) ;;
    *) printf 'note: %s is not on PATH\n' "$dir" ;;
esac

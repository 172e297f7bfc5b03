#!/bin/sh
# Resolves 50 distinct references on a local distribution registry with
# token auth, with imagelock and with 50 sequential `skopeo inspect` calls,
# and prints request counts and wall times as a table.
#
# Needs docker-registry, skopeo and openssl:
#   apt-get install -y docker-registry skopeo openssl
set -eu
cd "$(dirname "$0")/.."
for tool in docker-registry skopeo openssl; do
    command -v "$tool" >/dev/null || { echo "benches/registry.sh: install $tool (apt-get install -y $tool)" >&2; exit 2; }
done
# The client is I/O bound; the test profile avoids a second full build.
CI=true cargo test --test it -- --ignored --nocapture --exact registry::bench_registry_50_references

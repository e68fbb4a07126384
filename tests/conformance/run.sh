#!/usr/bin/env bash
# The official MCP conformance suite (@modelcontextprotocol/conformance) with
# the Node 22 it needs, both from npm, installed under target/ (ignored by git).
#
#   tests/conformance/run.sh --install      install only (what .ci/run does)
#   tests/conformance/run.sh URL [ARGS...]  run the server scenarios against URL
#
# Exit 3: the suite cannot be installed or started here (no npm, no registry).
# tests/conformance.rs starts the real binary, runs this, and compares the
# per-scenario results with expected-failures.txt.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
dir="${MAINTENANT_CONFORMANCE_DIR:-$root/target/conformance}"
version=0.1.16

install() {
    if [ -x "$dir/node_modules/.bin/conformance" ] && [ -x "$dir/node_modules/.bin/node" ]; then
        return 0
    fi
    command -v npm >/dev/null || { echo "conformance: npm is not installed" >&2; exit 3; }
    mkdir -p "$dir"
    (cd "$dir" && [ -f package.json ] || echo '{"private":true}' > package.json)
    (cd "$dir" && npm install --no-audit --no-fund --loglevel=error \
        node@22 "@modelcontextprotocol/conformance@$version" >&2) \
        || { echo "conformance: npm install failed" >&2; exit 3; }
}

install
[ "${1:-}" = "--install" ] && exit 0
url="${1:?usage: run.sh URL [ARGS...] | --install}"
shift
export PATH="$dir/node_modules/.bin:$PATH"
# The suite writes results/ into the working directory: keep it out of the repo.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
# The suite exits 1 when any scenario fails; the caller judges the summary.
conformance server --url "$url" "$@" || true

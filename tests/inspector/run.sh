#!/usr/bin/env bash
# The MCP Inspector CLI (@modelcontextprotocol/inspector, the TypeScript SDK
# that Claude Desktop, Claude Code and Cursor are built on) with the Node 22 it
# needs, both from npm, installed under target/ (ignored by git).
#
#   tests/inspector/run.sh --install   install only (what .ci/run does)
#   tests/inspector/run.sh ARGS...     run `mcp-inspector --cli ARGS...`
#
# Exit 3: the CLI cannot be installed here (no npm, no registry); otherwise
# the CLI's own exit code (5: the tool answered isError, 6: --strict found a
# schema portability error). tests/inspector.rs runs it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
dir="${MAINTENANT_INSPECTOR_DIR:-$root/target/inspector}"
version=2.12.0

install() {
    if [ -x "$dir/node_modules/.bin/mcp-inspector" ] && [ -x "$dir/node_modules/.bin/node" ]; then
        return 0
    fi
    command -v npm >/dev/null || { echo "inspector: npm is not installed" >&2; exit 3; }
    mkdir -p "$dir"
    (cd "$dir" && [ -f package.json ] || echo '{"private":true}' > package.json)
    (cd "$dir" && npm install --no-audit --no-fund --loglevel=error \
        node@22 "@modelcontextprotocol/inspector@$version" >&2) \
        || { echo "inspector: npm install failed" >&2; exit 3; }
}

install
[ "${1:-}" = "--install" ] && exit 0
export PATH="$dir/node_modules/.bin:$PATH"
# The CLI keeps a catalog under HOME: a scratch one, never the user's.
HOME="$(mktemp -d)"
export HOME
trap 'rm -rf "$HOME"' EXIT
mcp-inspector --cli "$@"

#!/usr/bin/env bash
# Durable pings per second: wrk against /ping/NAME on loopback, with the
# daemon built as shipped (the fat-LTO `dist` profile). Every 200 answered is on disk (group commit).
#
#   benches/pings.sh                 # 64 connections, 10 s
#   CONNS=256 DURATION=30s benches/pings.sh
#
# Needs wrk (Debian: apt-get install -y wrk). Not run in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install -y wrk)" >&2; exit 1; }
CARGO_INCREMENTAL=0 cargo build --profile dist --bin maintenant
port=${PORT:-18080}
dir=$(mktemp -d)
cat > "$dir/m.yaml" <<YAML
heartbeats:
  - name: bench
    period: 1h
YAML
MAINTENANT_DB="$dir/db" MAINTENANT_CONFIG="$dir/m.yaml" MAINTENANT_ADDR="127.0.0.1:$port" \
  MAINTENANT_LOG=warn MAINTENANT_RATE_LIMIT_PER_MINUTE=0 target/dist/maintenant &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
# The heartbeat is registered once the first reconcile pass ran.
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$port/ping/bench" >/dev/null 2>&1 && break
  sleep 0.1
done
wrk -t"${THREADS:-2}" -c"${CONNS:-64}" -d"${DURATION:-10s}" --latency "http://127.0.0.1:$port/ping/bench"

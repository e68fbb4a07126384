#!/usr/bin/env python3
"""What kubernetes-validate cannot check: the Monitor CRD is a structural
schema, every Monitor resource given validates against it, and every
monitors file in a rendered ConfigMap passes `maintenant check-config`.

usage: validate.py CRD.yaml MAINTENANT_BIN FILE.yaml...
"""
import os
import subprocess
import sys
import tempfile

import jsonschema
import yaml

crd_path, binary, files = sys.argv[1], sys.argv[2], sys.argv[3:]
crd = yaml.safe_load(open(crd_path))
problems = []


def structural(node, path):
    """Every node has a type (or is int-or-string), no bare anyOf/oneOf."""
    if not isinstance(node, dict):
        return
    if "type" not in node and not node.get("x-kubernetes-int-or-string") \
            and not node.get("x-kubernetes-preserve-unknown-fields"):
        problems.append(f"{crd_path}: {path}: no type (not a structural schema)")
    for k in ("anyOf", "oneOf", "allOf"):
        for i, sub in enumerate(node.get(k, [])):
            if "type" in sub or "properties" in sub:
                problems.append(f"{crd_path}: {path}.{k}[{i}]: type/properties inside {k}")
    for name, sub in node.get("properties", {}).items():
        structural(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        structural(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        structural(node["additionalProperties"], f"{path}{{}}")


def to_jsonschema(node):
    """OpenAPI v3 (nullable, int-or-string) to JSON Schema."""
    if isinstance(node, list):
        return [to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_jsonschema(v) for k, v in node.items() if not k.startswith("x-kubernetes")}
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = out["enum"] + [None]
    if node.get("x-kubernetes-int-or-string"):
        out["type"] = ["integer", "string"]
    out.pop("nullable", None)
    # kubectl's default field validation (Strict): an unknown field is an error.
    if "properties" in node and "additionalProperties" not in node \
            and not node.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


version = crd["spec"]["versions"][0]
schema = version["schema"]["openAPIV3Schema"]
structural(schema, "openAPIV3Schema")
validator = jsonschema.Draft7Validator(to_jsonschema(schema))
group = crd["spec"]["group"]
checked = {"Monitor": 0, "monitors file": 0}

for f in files:
    for doc in yaml.safe_load_all(open(f)):
        if not doc:
            continue
        if doc.get("kind") == crd["spec"]["names"]["kind"] and doc.get("apiVersion") == f"{group}/{version['name']}":
            checked["Monitor"] += 1
            body = {k: v for k, v in doc.items() if k not in ("apiVersion", "kind", "metadata")}
            for e in validator.iter_errors(body):
                problems.append(f"{f}: Monitor {doc['metadata'].get('name')}: {'.'.join(map(str, e.path))}: {e.message}")
        if doc.get("kind") == "ConfigMap":
            for key, text in (doc.get("data") or {}).items():
                if not key.endswith((".yaml", ".yml")):
                    continue
                checked["monitors file"] += 1
                with tempfile.TemporaryDirectory() as d:
                    p = os.path.join(d, key)
                    open(p, "w").write(text)
                    r = subprocess.run([binary, "check-config", p], capture_output=True, text=True)
                    if r.returncode != 0:
                        problems.append(f"{f}: ConfigMap {doc['metadata']['name']} key {key}:\n{r.stdout}{r.stderr}")

for p in problems:
    print("ERROR", p)
print(f"validate.py: CRD structural, {checked['Monitor']} Monitor resource(s), "
      f"{checked['monitors file']} monitors file(s) checked; {len(problems)} problem(s)")
sys.exit(1 if problems else 0)

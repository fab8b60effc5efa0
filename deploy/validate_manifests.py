#!/usr/bin/env python3
"""Validate deploy/kubernetes against the Kubernetes API schemas and KEDA's ScaledObject schema.

    .venv/bin/python deploy/validate_manifests.py [DIR] [--kubernetes-version 1.30.0 ...]

DIR (default: deploy/kubernetes beside this script) holds a kustomization.yaml; every file its
`resources` list names is read, every document in it validated:
- built-in kinds with `kubernetes-validate` (strict: unknown fields are errors), for each
  Kubernetes version given (default: 1.30.0, the oldest these manifests support, and the newest
  the package knows);
- keda.sh/v1alpha1 ScaledObject with jsonschema against schemas/keda-scaledobject-v1alpha1.schema.json;
- any other kind is an error (nothing goes unchecked).
Prints one JSON object: {"ok", "errors": [...], "versions": [...], "resources": [{"file", "index",
"kind", "name", "document"}]}; exits 1 when there is an error, 2 when it cannot run.
"""
import argparse
import json
import os
import sys

try:
    import jsonschema
    import kubernetes_validate
    import kubernetes_validate.utils as kv_utils
    import yaml
except ImportError as e:  # the test reports this as it is
    print(json.dumps({"ok": False, "errors": [f"missing Python package: {e} (pip install -r Tests/requirements.txt)"]}))
    sys.exit(2)

HERE = os.path.dirname(os.path.abspath(__file__))
KEDA = ("keda.sh/v1alpha1", "ScaledObject")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dir", nargs="?", default=os.path.join(HERE, "kubernetes"))
    parser.add_argument("--kubernetes-version", action="append", dest="versions")
    args = parser.parse_args()
    versions = args.versions or ["1.30.0", kv_utils.latest_version()]
    errors, resources = [], []

    kustomization = os.path.join(args.dir, "kustomization.yaml")
    with open(kustomization, encoding="utf-8") as f:
        files = (yaml.safe_load(f) or {}).get("resources") or []
    if not files:
        errors.append(f"{kustomization}: no resources listed")
    for name in sorted(os.listdir(args.dir)):
        if name.endswith((".yaml", ".yml")) and name != "kustomization.yaml" and name not in files:
            errors.append(f"{name}: not listed in kustomization.yaml's resources (never applied, never checked)")
    schema_path = os.path.join(args.dir, "schemas", "keda-scaledobject-v1alpha1.schema.json")
    with open(schema_path, encoding="utf-8") as f:
        keda_schema = json.load(f)
    jsonschema.Draft202012Validator.check_schema(keda_schema)
    keda = jsonschema.Draft202012Validator(keda_schema)

    for name in files:
        path = os.path.join(args.dir, name)
        try:
            with open(path, encoding="utf-8") as f:
                docs = [d for d in yaml.safe_load_all(f) if d is not None]
        except (OSError, yaml.YAMLError) as e:
            errors.append(f"{name}: cannot read: {e}")
            continue
        for index, doc in enumerate(docs):
            if not isinstance(doc, dict):
                errors.append(f"{name}[{index}]: not a mapping")
                continue
            kind, api = doc.get("kind"), doc.get("apiVersion")
            label = f"{name}[{index}] {kind}/{(doc.get('metadata') or {}).get('name')}"
            resources.append({"file": name, "index": index, "kind": kind, "apiVersion": api,
                              "name": (doc.get("metadata") or {}).get("name"), "document": doc})
            if (api, kind) == KEDA:
                for e in sorted(keda.iter_errors(doc), key=lambda e: list(e.absolute_path)):
                    where = ".".join(str(p) for p in e.absolute_path) or "(root)"
                    errors.append(f"{label}: {where}: {e.message}")
                continue
            for version in versions:
                try:
                    kubernetes_validate.validate(doc, version, strict=True)
                except kubernetes_validate.ValidationError as e:
                    where = ".".join(str(p) for p in e.path) or "(root)"
                    errors.append(f"{label}: Kubernetes {version}: {where}: {e.message}")
                except (kv_utils.SchemaNotFoundError, kv_utils.InvalidSchemaError) as e:
                    errors.append(f"{label}: Kubernetes {version}: no schema for {api} {kind}: {e}")

    errors = list(dict.fromkeys(errors))
    print(json.dumps({"ok": not errors, "errors": errors, "versions": versions, "resources": resources}))
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()

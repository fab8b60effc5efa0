#!/usr/bin/env python3
"""Validate deploy/kubernetes against the Kubernetes API schemas and KEDA's ScaledObject schema.

    .venv/bin/python deploy/validate_manifests.py [DIR ...] [--kubernetes-version 1.30.0 ...]

DIR (default: deploy/kubernetes beside this script) holds a kustomization.yaml; every file its
`resources` list names is read, every document in it validated:
- built-in kinds with `kubernetes-validate` (strict: unknown fields are errors), for each
  Kubernetes version given (default: 1.30.0, the oldest these manifests support, and the newest
  the package knows);
- keda.sh/v1alpha1 ScaledObject with jsonschema against schemas/keda-scaledobject-v1alpha1.schema.json;
- any other kind is an error (nothing goes unchecked).
Prints one JSON object per DIR, one a line, in the order given: {"dir", "ok", "errors": [...],
"versions": [...], "resources": [{"file", "index", "kind", "name", "document"}]}; exits 1 when
there is an error in any, 2 when it cannot run. Several DIRs share one start-up. --parse-only
reads the resources and checks no schema (versions: []), for consistency checks on edited copies.
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
    parser.add_argument("dirs", nargs="*", default=[os.path.join(HERE, "kubernetes")])
    parser.add_argument("--kubernetes-version", action="append", dest="versions")
    parser.add_argument("--parse-only", action="store_true",
                        help="read the resources, check no schema (for consistency checks on edited copies)")
    args = parser.parse_args()
    versions = [] if args.parse_only else (args.versions or ["1.30.0", kv_utils.latest_version()])
    failed = False
    for directory in args.dirs:
        errors, resources = validate(directory, versions)
        failed = failed or bool(errors)
        print(json.dumps({"dir": directory, "ok": not errors, "errors": errors, "versions": versions,
                          "resources": resources}), flush=True)
    sys.exit(1 if failed else 0)


def validate(directory, versions):
    """(errors, resources) of one directory."""
    errors, resources = [], []
    kustomization = os.path.join(directory, "kustomization.yaml")
    with open(kustomization, encoding="utf-8") as f:
        files = (yaml.safe_load(f) or {}).get("resources") or []
    if not files:
        errors.append(f"{kustomization}: no resources listed")
    for name in sorted(os.listdir(directory)):
        if name.endswith((".yaml", ".yml")) and name != "kustomization.yaml" and name not in files:
            errors.append(f"{name}: not listed in kustomization.yaml's resources (never applied, never checked)")
    schema_path = os.path.join(directory, "schemas", "keda-scaledobject-v1alpha1.schema.json")
    with open(schema_path, encoding="utf-8") as f:
        keda_schema = json.load(f)
    jsonschema.Draft202012Validator.check_schema(keda_schema)
    keda = jsonschema.Draft202012Validator(keda_schema)

    for name in files:
        path = os.path.join(directory, name)
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
            if not versions:  # --parse-only
                continue
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

    return list(dict.fromkeys(errors)), resources


if __name__ == "__main__":
    main()

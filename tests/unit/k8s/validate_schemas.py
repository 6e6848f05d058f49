"""Validates Kubernetes objects against JSON schemas, offline. Runs in the tools venv (.venv-tools).

Built-in kinds: the schemas bundled in the `kubernetes-validate` package, in
strict mode (unknown fields fail), for every Kubernetes version given. Custom
resources: the schemas in schemas/ beside this file, named
<kind lowercased>-<group>-<version>.json, or the openAPIV3Schema of a served version of
an upstream CustomResourceDefinition in k8s/schemas/ (made strict: an object with
`properties` admits no other field). A kind with neither is reported, not passed over.

stdin: JSON list of {"source": str, "object": {...}}; argv: Kubernetes versions.
stdout: JSON {"errors": [str], "checked": [[source, kind, name, how]]}.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

SCHEMAS = Path(__file__).resolve().parent / "schemas"
CRDS = Path(__file__).resolve().parents[3] / "k8s" / "schemas"


def strict(schema: dict) -> dict:
    """The schema with additionalProperties false wherever an object lists its properties and
    says nothing of others (the API server would prune unknown fields: a typo would vanish)."""
    out = dict(schema)
    if "properties" in out:
        out["properties"] = {name: strict(sub) for name, sub in out["properties"].items()}
        if "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    for keyword in ("items", "additionalProperties"):
        if isinstance(out.get(keyword), dict):
            out[keyword] = strict(out[keyword])
    for keyword in ("allOf", "anyOf", "oneOf"):
        if keyword in out:
            out[keyword] = [strict(sub) for sub in out[keyword]]
    return out


def crd_schemas() -> dict[tuple[str, str, str], tuple[dict, str]]:
    """(group, version, kind) -> (strict schema, CRD file name), for every served version."""
    found: dict[tuple[str, str, str], tuple[dict, str]] = {}
    for path in sorted(CRDS.rglob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd["spec"]
            for version in spec["versions"]:
                if version.get("served"):
                    schema = strict(version["schema"]["openAPIV3Schema"])
                    found[(spec["group"], version["name"], spec["names"]["kind"])] = (schema, path.name)
    return found


def crd_schema(obj: dict) -> Path | None:
    group, _, version = str(obj.get("apiVersion", "")).rpartition("/")
    if not group:
        return None
    path = SCHEMAS / f"{str(obj.get('kind', '')).lower()}-{group}-{version}.json"
    return path if path.is_file() else None


def main() -> int:
    versions = sys.argv[1:]
    items = json.load(sys.stdin)
    errors: list[str] = []
    checked: list[list[str]] = []
    crds = crd_schemas()
    for item in items:
        source, obj = item["source"], item["object"]
        kind, name = obj.get("kind", "?"), obj.get("metadata", {}).get("name", "?")
        where = f"{source}: {kind}/{name}"
        group, _, version = str(obj.get("apiVersion", "")).rpartition("/")
        if (group, version, kind) in crds:
            schema, crd_file = crds[(group, version, kind)]
            for error in jsonschema.Draft7Validator(schema).iter_errors(obj):
                path = "/".join(str(p) for p in error.absolute_path)
                errors.append(f"{where} (CRD {crd_file}) at /{path}: {error.message}")
            checked.append([source, kind, name, crd_file])
            continue
        schema_file = crd_schema(obj)
        if schema_file is not None:
            schema = json.loads(schema_file.read_text())
            validator = jsonschema.Draft202012Validator(schema)
            for error in validator.iter_errors(obj):
                path = "/".join(str(p) for p in error.absolute_path)
                errors.append(f"{where} (schema {schema_file.name}) at /{path}: {error.message}")
            checked.append([source, kind, name, schema_file.name])
            continue
        for version in versions:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                errors.append(f"{where}: no schema for {obj.get('apiVersion')} {kind} in Kubernetes {version}")
            except kubernetes_validate.ValidationError as error:
                path = "/".join(str(p) for p in error.path)
                errors.append(f"{where} (Kubernetes {version}) at /{path}: {error.message}")
        checked.append([source, kind, name, "kubernetes " + " ".join(versions)])
    json.dump({"errors": errors, "checked": checked}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Validates Kubernetes objects against JSON schemas, offline. Runs in the tools venv (.venv-tools).

Built-in kinds: the schemas bundled in the `kubernetes-validate` package, in
strict mode (unknown fields fail), for every Kubernetes version given. Custom
resources: the schemas in schemas/ beside this file, named
<kind lowercased>-<group>-<version>.json. A kind with neither is reported, not
passed over.

stdin: JSON list of {"source": str, "object": {...}}; argv: Kubernetes versions.
stdout: JSON {"errors": [str], "checked": [[source, kind, name, how]]}.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate

SCHEMAS = Path(__file__).resolve().parent / "schemas"


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
    for item in items:
        source, obj = item["source"], item["object"]
        kind, name = obj.get("kind", "?"), obj.get("metadata", {}).get("name", "?")
        where = f"{source}: {kind}/{name}"
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

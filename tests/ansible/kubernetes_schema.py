"""Validates manifests against the Kubernetes OpenAPI schema of the version the platform
runs, taken from that version's own source module, and strict: an unknown field is an error
(as kubeconform -strict has it), because a misspelt field is silently dropped by the API."""

import json
import shutil
import subprocess
from functools import cached_property
from pathlib import Path

import jsonschema
import yaml

from tests.support import REPO

CACHE = Path.home() / ".cache" / "invoicing-platform" / "openapi"

INT_OR_STRING = {"oneOf": [{"type": "string"}, {"type": "integer"}]}
QUANTITY = {"oneOf": [{"type": "string"}, {"type": "number"}]}


def pinned_kubernetes_version() -> str:
    defaults = yaml.safe_load((REPO / "roles/local_cluster/defaults/main.yml").read_text())
    return defaults["local_cluster_kubernetes_version"]


def swagger(version: str) -> dict:
    """The swagger.json shipped in k8s.io/kubernetes@version, cached outside the repo."""
    cached = CACHE / f"kubernetes-{version}-swagger.json"
    if not cached.exists():
        module = json.loads(
            subprocess.run(
                ["go", "mod", "download", "-json", f"k8s.io/kubernetes@{version}"],
                capture_output=True,
                text=True,
                check=True,
                timeout=900,
            ).stdout
        )
        CACHE.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(module["Dir"]) / "api/openapi-spec/swagger.json", cached)
    return json.loads(cached.read_text())


class KubernetesSchema:
    def __init__(self, version: str) -> None:
        self.version = version
        self.definitions = _strict(swagger(version)["definitions"])

    @cached_property
    def by_kind(self) -> dict[tuple[str, str], str]:
        kinds = {}
        for name, definition in self.definitions.items():
            for gvk in definition.get("x-kubernetes-group-version-kind", []):
                api_version = f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]
                kinds[(api_version, gvk["kind"])] = name
        return kinds

    def errors(self, document: dict) -> list[str]:
        key = (document.get("apiVersion"), document.get("kind"))
        if key not in self.by_kind:
            return [f"{key} is not a kind Kubernetes {self.version} serves"]
        schema = {"definitions": self.definitions, "$ref": f"#/definitions/{self.by_kind[key]}"}
        validator = jsonschema.Draft4Validator(schema)
        return [
            f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
            for error in validator.iter_errors(document)
        ]


def _strict(definitions: dict) -> dict:
    result = {}
    for name, definition in definitions.items():
        if name.endswith("intstr.IntOrString"):
            result[name] = INT_OR_STRING
        elif name.endswith("api.resource.Quantity"):
            result[name] = QUANTITY
        else:
            result[name] = _close(definition)
    return result


def _close(schema: object) -> object:
    if isinstance(schema, list):
        return [_close(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    closed = {key: _close(value) for key, value in schema.items()}
    if (
        "properties" in closed
        and "additionalProperties" not in closed
        and not closed.get("x-kubernetes-preserve-unknown-fields")
    ):
        closed["additionalProperties"] = False
    return closed

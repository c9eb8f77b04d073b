"""The Helm chart as the deploy tests see it: rendered by the real helm binary for each values
file, split into objects, and checked against the schemas a cluster would apply."""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from tests.deploy.tools import ROOT, run, tool

CHART = ROOT / "helm" / "dueflow"
VALUES_FILES = ("values.yaml", "values-minikube.yaml", "values-aks.yaml", "values-gke.yaml")
RELEASE, NAMESPACE = "dueflow", "tasks"
DAPR_SCHEMAS = Path(__file__).with_name("schemas") / "dapr-v1.18.3"
DAPR_CRDS = {
    "Component": "components.yaml",
    "Configuration": "configuration.yaml",
    "Resiliency": "resiliency.yaml",
    "Subscription": "subscription.yaml",
}
INFRA = {"postgresql", "redpanda"}  # the development-only components of values-minikube.yaml

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Rendered:
    """The objects of one rendering."""

    objects: list[Manifest]
    text: str

    def of(self, kind: str) -> list[Manifest]:
        return [obj for obj in self.objects if obj["kind"] == kind]

    def named(self, kind: str, name: str) -> Manifest:
        [found] = [obj for obj in self.of(kind) if obj["metadata"]["name"] == name]
        return found

    def deployments(self) -> dict[str, Manifest]:
        """Dueflow's Deployments by role (api, audit, ...)."""
        return {
            obj["metadata"]["labels"]["app.kubernetes.io/component"]: obj
            for obj in self.of("Deployment")
        }

    def components(self, type_prefix: str = "") -> list[Manifest]:
        return [c for c in self.of("Component") if c["spec"]["type"].startswith(type_prefix)]


def render(values_file: str, *settings: str) -> Rendered:
    """`helm template` of the chart with one values file and `--set` overrides."""
    return _render(values_file, settings)


@functools.cache
def _render(values_file: str, settings: tuple[str, ...]) -> Rendered:
    command: list[str | Path] = [tool("helm"), "template", RELEASE, CHART]
    command += ["--namespace", NAMESPACE, "--values", CHART / values_file]
    for setting in settings:
        command += ["--set", setting]
    text = run(*command)
    objects = [obj for obj in yaml.safe_load_all(text) if obj]
    return Rendered(objects, text)


def app_id(deployment: Manifest) -> str:
    annotations: dict[str, str] = deployment["spec"]["template"]["metadata"]["annotations"]
    return annotations["dapr.io/app-id"]


def container(deployment: Manifest) -> Manifest:
    first: Manifest = deployment["spec"]["template"]["spec"]["containers"][0]
    return first


def env_of(deployment: Manifest) -> dict[str, Manifest]:
    return {entry["name"]: entry for entry in container(deployment).get("env", [])}


def pod_containers(obj: Manifest) -> Iterator[Manifest]:
    pod = obj["spec"]["template"]["spec"]
    yield from pod.get("initContainers", [])
    yield from pod["containers"]


@functools.cache
def dapr_schema(kind: str) -> dict[str, Any]:
    """The openAPIV3Schema of a Dapr kind, with unknown fields refused."""
    crd = yaml.safe_load((DAPR_SCHEMAS / DAPR_CRDS[kind]).read_text())
    [version] = [v for v in crd["spec"]["versions"] if v.get("storage")]
    return _closed(copy.deepcopy(version["schema"]["openAPIV3Schema"]))


def _closed(schema: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI schema as JSON Schema in which objects accept only the fields they declare
    (the API server prunes the others without a word: daprd would never see them)."""
    if schema.get("type") == "str":  # configuration.yaml (v1.18.3) spells one type "str"
        schema["type"] = "string"
    if schema.pop("x-kubernetes-int-or-string", False):
        schema.pop("type", None)
        schema["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
        schema.setdefault("additionalProperties", False)
    for field in schema.get("properties", {}).values():
        _closed(field)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            _closed(schema[key])
    for key in ("anyOf", "allOf", "oneOf"):
        for option in schema.get(key, []):
            _closed(option)
    return schema


def dapr_errors(obj: Manifest) -> list[str]:
    """What Dapr's CRD schema says is wrong with a Dapr object."""
    validator = jsonschema.Draft7Validator(dapr_schema(obj["kind"]))
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(obj)
    ]

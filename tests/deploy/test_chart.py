"""The chart renders for every values file with the real Helm engine, lints clean, and every
object it renders is what a cluster would accept: Kubernetes objects against the Kubernetes
schemas with unknown fields refused, Dapr objects against Dapr's own CRD schemas."""

from __future__ import annotations

import copy
import subprocess

import kubernetes_validate
import pytest

from tests.deploy.chart import CHART, INFRA, VALUES_FILES, Manifest, dapr_errors, render
from tests.deploy.tools import run, tool

KUBERNETES = "1.35.0"  # the newest Kubernetes the pinned helm was built for (client v1.35)
EVERY_VALUES_FILE = pytest.mark.parametrize("values_file", VALUES_FILES)
OAUTH = (
    "config.oauth.issuer=https://login.example.com/realms/team,"
    "config.oauth.audience=https://tasks.example.com/mcp,"
    "config.oauth.jwksUrl=https://login.example.com/realms/team/certs"
)
OPTIONAL_PARTS = (  # what no values file turns on, rendered once so it is validated too
    "api.ingress.enabled=true,api.ingress.hosts[0].host=tasks.example.com",
    "networkPolicy.enabled=true,networkPolicy.metricsFrom[0].podSelector.matchLabels.app=prom",
    "kafka.auth.type=mtls,kafka.tls.caCert=true,config.auditRetentionDays=30",
    "dapr.config.tracing.otlpEndpoint=otel-collector:4317,image.digest=sha256:" + "0" * 64,
    OAUTH,
)


def kubernetes_errors(obj: Manifest) -> str | None:
    try:
        kubernetes_validate.validate(obj, KUBERNETES, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return f"{obj['kind']} {obj['metadata']['name']}: {exc.message}"
    return None


@EVERY_VALUES_FILE
def test_helm_lint_strict_is_clean(values_file: str) -> None:
    linted = run(tool("helm"), "lint", "--strict", CHART, "--values", CHART / values_file)

    assert "0 chart(s) failed" in linted
    assert "[WARNING]" not in linted and "[ERROR]" not in linted


@EVERY_VALUES_FILE
def test_every_kubernetes_object_validates_strictly(values_file: str) -> None:
    rendered = render(values_file)
    kube = [obj for obj in rendered.objects if not obj["apiVersion"].startswith("dapr.io/")]

    assert {obj["kind"] for obj in kube} >= {"Deployment", "Service", "Job", "ServiceAccount"}
    assert [kubernetes_errors(obj) for obj in kube if kubernetes_errors(obj)] == []


@EVERY_VALUES_FILE
def test_every_dapr_object_validates_against_dapr_crds(values_file: str) -> None:
    dapr = [obj for obj in render(values_file).objects if obj["apiVersion"].startswith("dapr.io/")]

    assert {obj["kind"] for obj in dapr} == {"Component", "Configuration", "Resiliency"}
    assert {(obj["kind"], obj["metadata"]["name"]): dapr_errors(obj) for obj in dapr} == {
        (obj["kind"], obj["metadata"]["name"]): [] for obj in dapr
    }


@pytest.mark.parametrize("settings", OPTIONAL_PARTS)
def test_the_optional_parts_validate_too(settings: str) -> None:
    rendered = render("values.yaml", settings)

    kube = [obj for obj in rendered.objects if not obj["apiVersion"].startswith("dapr.io/")]
    dapr = [obj for obj in rendered.objects if obj["apiVersion"].startswith("dapr.io/")]

    assert [kubernetes_errors(obj) for obj in kube if kubernetes_errors(obj)] == []
    assert [dapr_errors(obj) for obj in dapr if dapr_errors(obj)] == []


def test_the_checks_refuse_a_field_no_schema_knows() -> None:
    rendered = render("values.yaml")
    deployment = copy.deepcopy(rendered.of("Deployment")[0])
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    configuration = copy.deepcopy(rendered.of("Configuration")[0])
    configuration["spec"]["tracing"]["sampling"] = "1"

    assert kubernetes_errors(deployment) is not None
    assert any("sampling" in error for error in dapr_errors(configuration))


def test_a_missing_secret_setting_is_refused_by_name() -> None:
    done = subprocess.run(
        [str(tool("helm")), "template", "x", str(CHART), "--set", "secrets.existingSecret="],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0 and "secrets.existingSecret" in done.stderr


def test_the_development_infrastructure_is_only_in_the_minikube_values() -> None:
    for values_file in VALUES_FILES:
        roles = set(render(values_file).deployments()) | {
            obj["metadata"]["labels"]["app.kubernetes.io/component"]
            for obj in render(values_file).of("StatefulSet")
        }
        assert (roles & INFRA == INFRA) == (values_file == "values-minikube.yaml")

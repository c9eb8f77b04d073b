"""The chart's optional PodMonitor (the Prometheus operator): off by default; when on, it is valid
against the operator's own CRD schema (tests/deploy/prometheus_operator.mjs, with the schemas
./scripts/install-crd-models installs) and it selects every Dueflow Deployment's pods on a port
each of their containers names, at the path every Dueflow process serves its metrics on."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.deploy.chart import render
from tests.deploy.tools import ROOT

NODE_TOOLS = ROOT / ".venv" / "node-tools"
ON = "monitoring.podMonitor.enabled=true,monitoring.podMonitor.labels.release=kube-prometheus"


def operator_problems(objects: list[dict[str, object]]) -> list[str]:
    if not (NODE_TOOLS / "node_modules" / "@kubernetes-models").exists():
        pytest.fail(
            f"the operator's schemas are not at {NODE_TOOLS}: run ./scripts/install-crd-models"
        )
    checked = subprocess.run(
        ["node", str(ROOT / "tests" / "deploy" / "prometheus_operator.mjs"), str(NODE_TOOLS)],
        input=json.dumps(objects),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    problems: list[str] = json.loads(checked.stdout)
    return problems


def test_there_is_no_pod_monitor_unless_asked_for() -> None:
    assert render("values.yaml").of("PodMonitor") == []


def test_the_pod_monitor_is_valid_against_the_operator_s_schema() -> None:
    (monitor,) = render("values.yaml", ON).of("PodMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus"
    assert operator_problems([monitor]) == []
    # and the check refuses what the operator would
    broken = {**monitor, "spec": {**monitor["spec"], "podMetricsEndpoints": [{"port": 8000}]}}
    assert operator_problems([broken]) != []


def test_the_pod_monitor_scrapes_every_dueflow_deployment_on_a_port_it_names() -> None:
    rendered = render("values.yaml", ON)
    (monitor,) = rendered.of("PodMonitor")
    wanted = monitor["spec"]["selector"]["matchLabels"]
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["path"] == "/metrics"
    deployments = rendered.of("Deployment")
    assert {d["metadata"]["labels"]["app.kubernetes.io/component"] for d in deployments} >= {
        "api",
        "audit",
        "recurrence",
        "reminders",
        "notifications",
        "realtime",
    }
    for deployment in deployments:
        pod = deployment["spec"]["template"]
        assert wanted.items() <= pod["metadata"]["labels"].items(), deployment["metadata"]["name"]
        names = {
            port["name"]
            for container in pod["spec"]["containers"]
            if container["name"] != "daprd"
            for port in container.get("ports", [])
        }
        assert endpoint["port"] in names, deployment["metadata"]["name"]

"""The alert rules and the dashboard under deploy/monitoring/: promtool checks the rules and runs
their unit tests (one group per alert, alerts_test.yml); the dashboard is Grafana JSON whose
every panel queries Prometheus."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import yaml

from tests.support.metrics import DASHBOARD, RULE_TESTS, RULES, tool


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("promtool"), *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_promtool_accepts_the_rules() -> None:
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


def test_every_alert_passes_its_unit_tests() -> None:
    tested = promtool("test", "rules", str(RULE_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_a_unit_test_that_fires_it_and_one_that_keeps_it_quiet() -> None:
    rules: dict[str, Any] = yaml.safe_load(RULES.read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    cases: dict[str, Any] = yaml.safe_load(RULE_TESTS.read_text())
    fired, quiet = set(), set()
    for case in cases["tests"]:
        for check in case["alert_rule_test"]:
            (fired if check["exp_alerts"] else quiet).add(check["alertname"])
    assert fired == alerts
    assert quiet == alerts


def test_every_alert_says_what_it_is_about_and_links_its_runbook() -> None:
    rules: dict[str, Any] = yaml.safe_load(RULES.read_text())
    docs = (RULES.parents[2] / "docs" / "observability.md").read_text().lower()
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in ("page", "warning"), rule["alert"]
            assert rule["annotations"]["summary"], rule["alert"]
            anchor = rule["annotations"]["runbook_url"].split("#", 1)[1]
            assert anchor == rule["alert"].lower()
            assert f"### {rule['alert'].lower()}" in docs, f"no runbook for {rule['alert']}"


def test_the_dashboard_is_grafana_json_whose_panels_all_query_prometheus() -> None:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    assert len(panels) >= 20
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["datasource"]["type"] == "prometheus", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]

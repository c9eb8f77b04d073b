"""Reading what /metrics answers, and the metric names and labels the alert rules and the
dashboard's queries use (deploy/monitoring/)."""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

MONITORING = Path(__file__).resolve().parents[2] / "deploy" / "monitoring"
RULES = MONITORING / "alerts.yml"
RULE_TESTS = MONITORING / "alerts_test.yml"
DASHBOARD = MONITORING / "dashboard.json"

Labels = dict[str, str]


@dataclass
class Scraped:
    """One scrape: every sample's labels and value, by sample name (`..._total`, `..._bucket`)."""

    samples: dict[str, list[tuple[Labels, float]]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Scraped:
        scraped = cls()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                scraped.samples.setdefault(sample.name, []).append(
                    (dict(sample.labels), sample.value)
                )
        return scraped

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples of `name` whose labels include `labels` (0 if none)."""
        return sum(
            value
            for found, value in self.samples.get(name, [])
            if all(found.get(key) == wanted for key, wanted in labels.items())
        )

    def label_values(self, name: str, label: str) -> set[str]:
        return {found[label] for found, _ in self.samples.get(name, []) if label in found}


# ---- what the rules and the dashboard ask for

# series Prometheus makes itself (scrape health), not exported by any process
PROMETHEUS_OWN = frozenset({"up"})
STANDARD = re.compile(r"^(process|python)_")  # the client library's standard collectors
_NAME = re.compile(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*")
_SELECTED = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}")
_BRACES = re.compile(r"\{[^}]*\}")
_MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')
_GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
_RANGE = re.compile(r"\[[^\]]*\]")
_STRING = re.compile(r'"[^"]*"')
_WORDS = frozenset(
    {
        "sum",
        "rate",
        "increase",
        "histogram_quantile",
        "max",
        "min",
        "avg",
        "count",
        "by",
        "without",
        "or",
        "and",
        "unless",
        "on",
        "ignoring",
        "le",
        "abs",
        "absent",
        "irate",
        "delta",
        "topk",
        "bottomk",
    }
)


@dataclass(frozen=True)
class Use:
    """A metric an expression reads, the label matchers on it and the labels it groups by."""

    where: str
    metric: str
    matchers: tuple[tuple[str, str, str], ...]
    grouping: tuple[str, ...]


def uses(expression: str, where: str) -> list[Use]:
    """Every metric `expression` selects, with its matchers, and the expression's groupings."""
    grouping = tuple(
        label.strip()
        for group in _GROUPING.findall(expression)
        for label in group.split(",")
        if label.strip()
    )
    text = _RANGE.sub("", expression)
    found = [
        Use(where, name, tuple(_MATCHER.findall(selector)), grouping)
        for name, selector in _SELECTED.findall(text)
    ]
    bare = _STRING.sub("", _BRACES.sub("", _GROUPING.sub("", text)))
    for name in _NAME.findall(bare):
        if name not in _WORDS and ("_" in name or name in PROMETHEUS_OWN):
            found.append(Use(where, name, (), grouping))
    return found


def rule_expressions() -> list[tuple[str, str]]:
    """(alert name, expression) of every rule in alerts.yml."""
    document: dict[str, Any] = yaml.safe_load(RULES.read_text())
    return [
        (rule["alert"], rule["expr"]) for group in document["groups"] for rule in group["rules"]
    ]


def dashboard_expressions() -> list[tuple[str, str]]:
    """(panel title, expression) of every query of the dashboard."""
    document: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in document["panels"]
        for target in panel.get("targets", [])
    ]


def tool(name: str) -> str:
    """The path of a command the test needs: under CI its absence fails, otherwise it skips."""
    found = shutil.which(name)
    if found is None:
        reason = (
            f"{name} is not installed (Debian's `prometheus` package; ./scripts/test installs it)"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return found

"""/metrics of a real `dueflow serve --transport http` after a scripted workload through a real
MCP client: the counters moved with the right labels, and every metric and label the alert rules
and the dashboard use is exported."""

from __future__ import annotations

import asyncio
import re

import pytest
from fastmcp import Client

from tests.observability.conftest import Served
from tests.support.metrics import (
    PROMETHEUS_OWN,
    STANDARD,
    Scraped,
    Use,
    dashboard_expressions,
    rule_expressions,
    uses,
)
from tests.support.servers import ALICE_TOKEN
from tests.support.waiting import eventually

# the first test also starts the server and runs the workload (up to a minute on a busy machine)
pytestmark = pytest.mark.timeout(180)

# labels Prometheus attaches to every series it scrapes, not the process
TARGET_LABELS = frozenset({"job", "instance"})


def test_tool_calls_are_counted_by_tool_and_outcome(scraped: Scraped) -> None:
    calls = "dueflow_mcp_tool_calls_total"
    assert scraped.value(calls, tool="add_task", outcome="ok") == 5
    assert scraped.value(calls, tool="add_task", outcome="refused") == 1
    assert scraped.value(calls, tool="complete_task", outcome="ok") == 1
    # a name the server has no tool for is not a label value of its own
    assert scraped.value(calls, tool="unknown", outcome="refused") == 1
    assert "no_such_tool" not in scraped.label_values(calls, "tool")
    assert scraped.value(calls, outcome="internal_error") == 0
    count = "dueflow_mcp_tool_call_duration_seconds_count"
    assert scraped.value(count, tool="add_task") == 6
    assert scraped.value("dueflow_mcp_tool_call_duration_seconds_sum", tool="add_task") > 0


def test_refused_bearer_tokens_are_counted_by_reason(scraped: Scraped) -> None:
    failures = "dueflow_http_auth_failures_total"
    assert scraped.value(failures, reason="missing_token") == 1
    assert scraped.value(failures, reason="invalid_token") == 1


def test_the_relay_and_every_worker_counted_what_they_did(scraped: Scraped) -> None:
    published = scraped.value("dueflow_outbox_rows_published_total")
    assert published >= 8
    assert scraped.value("dueflow_outbox_publish_attempts_total") >= 1
    assert scraped.value("dueflow_outbox_publish_failures_total") == 0
    assert scraped.value("dueflow_outbox_backlog_rows") == 0
    assert scraped.value("dueflow_outbox_oldest_age_seconds") == 0
    handled = "dueflow_events_handled_total"
    for worker in ("audit", "recurrence", "reminders"):
        assert scraped.value(handled, worker=worker, topic="task-events", outcome="success") >= 7
    assert scraped.value(handled, worker="notifications", topic="reminders", outcome="success") >= 1
    assert scraped.value(handled, outcome="error") == scraped.value(handled, outcome="drop") == 0
    lag = "dueflow_event_lag_seconds_count"
    assert scraped.value(lag, worker="audit", topic="task-events") >= 7
    assert scraped.value("dueflow_audit_entries_written_total") == scraped.value(
        handled, worker="audit", outcome="success"
    )
    assert scraped.value("dueflow_recurrence_occurrences_created_total") == 1
    assert scraped.value("dueflow_reminders_scheduled_total") >= 1
    assert scraped.value("dueflow_reminders_fired_total") == 1
    assert scraped.value("dueflow_reminder_lateness_seconds_count") == 1
    assert scraped.value("dueflow_notifications_total", channel="log", outcome="delivered") == 1
    assert scraped.value("dueflow_dead_letters_total") == 0


def test_write_transactions_are_timed_and_the_connection_pool_is_read(scraped: Scraped) -> None:
    # five adds and a completion at least, besides the workers' own
    assert scraped.value("dueflow_db_transaction_duration_seconds_count") >= 6
    assert scraped.value("dueflow_db_transaction_duration_seconds_sum") > 0
    states = scraped.label_values("dueflow_db_pool_connections", "state")
    assert states == {"in_use", "idle"}
    # every unit of work checked a connection out, each timed
    assert scraped.value("dueflow_db_pool_wait_seconds_count") >= 6


@pytest.mark.parametrize(("mode", "counted"), [("legacy", 1), ("auto", 0)])
def test_open_mcp_connections_are_counted_by_transport(
    served: Served, mode: str, counted: int
) -> None:
    """A 2025-era session holds its event stream open; a 2026-07-28 client over HTTP holds
    nothing between requests, so there is nothing to count."""

    async def while_connected() -> tuple[float, float]:
        async with Client(f"{served.base}/mcp", auth=ALICE_TOKEN, mode=mode) as client:
            await client.call_tool("list_tasks", {})
            during = (await served.scrape()).value("dueflow_mcp_sessions", transport="http")

        async def closed() -> Scraped | None:
            found = await served.scrape()
            return found if found.value("dueflow_mcp_sessions", transport="http") == 0 else None

        after = await eventually(closed, timeout=10, what="the connection to be let go")
        return during, after.value("dueflow_mcp_sessions", transport="http")

    assert asyncio.run(while_connected()) == (counted, 0)


def test_the_standard_process_collectors_are_exported(scraped: Scraped) -> None:
    assert scraped.value("process_resident_memory_bytes") > 0
    assert "process_cpu_seconds_total" in scraped.samples


def test_no_label_holds_a_task_user_or_event_id(scraped: Scraped) -> None:
    uuid = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-")
    for name, found in scraped.samples.items():
        for labels, _ in found:
            for key, value in labels.items():
                assert not uuid.match(value), (name, key, value)
                assert value not in ("alice", "local"), (name, key, value)


ALL_USES = [
    use
    for source, expressions in (("rule", rule_expressions()), ("panel", dashboard_expressions()))
    for where, expression in expressions
    for use in uses(expression, f"{source} {where!r}")
]


def test_the_rules_and_the_dashboard_ask_for_metrics_at_all() -> None:
    assert len({use.metric for use in ALL_USES}) >= 25
    assert len(rule_expressions()) >= 9


@pytest.mark.parametrize("use", ALL_USES, ids=lambda use: f"{use.where}:{use.metric}")
def test_every_metric_and_label_the_rules_and_panels_use_is_exported(
    scraped: Scraped, use: Use
) -> None:
    if use.metric in PROMETHEUS_OWN:
        return
    assert use.metric in scraped.samples, f"{use.where} reads {use.metric}, which is not exported"
    found = scraped.samples[use.metric]
    for label, operator, pattern in use.matchers:
        if label in TARGET_LABELS:
            continue
        values = scraped.label_values(use.metric, label)
        assert values, f"{use.where}: {use.metric} has no label {label!r}"
        if operator == "=":
            assert pattern in values, f"{use.where}: no {use.metric}{{{label}={pattern!r}}}"
        elif operator == "=~":
            for alternative in pattern.split("|"):
                assert any(re.fullmatch(alternative, value) for value in values), (
                    f"{use.where}: no {use.metric}{{{label}=~{alternative!r}}}"
                )
    for label in use.grouping:
        if label in TARGET_LABELS or (label == "le" and use.metric.endswith("_bucket")):
            continue
        if STANDARD.match(use.metric):
            continue
        # an expression groups by labels of the metrics it reads: at least one must carry it
        assert any(label in labels for labels, _ in found) or label in _labels_elsewhere(
            use, scraped
        ), f"{use.where}: {use.metric} has no label {label!r} to group by"


def _labels_elsewhere(use: Use, scraped: Scraped) -> set[str]:
    """Labels of the other metrics the same expression reads (`a or b` groups both)."""
    return {
        label
        for other in ALL_USES
        if other.where == use.where and other.metric in scraped.samples
        for labels, _ in scraped.samples[other.metric]
        for label in labels
    }

"""`dueflow events` and `dueflow notifications` as an operator runs them: each command opens the
database it is configured with, and only that (no server, no relay, no workers)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from domain.service import NewTask
from dueflow.bootstrap import Runtime
from tests.support.notifications import publish, trigger
from tests.support.servers import run_dueflow


def dueflow(tmp_path: Path, database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_dueflow(tmp_path, *args, DUEFLOW_DATABASE_URL=database_url)


async def test_events_backlog_counts_the_rows_the_relay_has_not_published(
    runtime: Runtime, database_url: str, tmp_path: Path
) -> None:
    for title in ("one", "two"):
        await runtime.service.add("alice", NewTask(title=title))

    waiting = dueflow(tmp_path, database_url, "events", "backlog")
    await runtime.relay.drain()
    drained = dueflow(tmp_path, database_url, "events", "backlog")

    assert waiting.returncode == 0, waiting.stderr
    assert waiting.stdout.startswith("undelivered: 2  oldest: ")
    assert drained.stdout == "undelivered: 0  oldest: -\n"


async def test_a_dead_letter_is_listed_and_replayed_through_its_consumer(
    runtime: Runtime, database_url: str, tmp_path: Path
) -> None:
    broken = trigger()
    del broken["payload"]["reminder"]  # the notifications consumer cannot apply it
    await publish(runtime, broken)
    assert runtime.workers is not None
    [letter] = await runtime.workers.dead_letters.listed()

    listed = dueflow(tmp_path, database_url, "events", "dead-letters")
    replayed = dueflow(tmp_path, database_url, "events", "replay", str(letter.id))
    missing = dueflow(tmp_path, database_url, "events", "replay", "999999")

    assert listed.returncode == 0, listed.stderr
    [line] = listed.stdout.splitlines()
    assert line.startswith(f"{letter.id}\t") and "\tnotifications\tREMINDER_TRIGGERED\t" in line
    assert "\topen\t" in line
    # still broken, so the consumer refuses it again and it stays open
    assert replayed.returncode == 1 and replayed.stdout == f"dead letter {letter.id}: DROP\n"
    assert [d.id for d in await runtime.workers.dead_letters.listed()] == [letter.id]
    assert missing.returncode == 1 and "no dead letter 999999" in missing.stderr


async def test_notifications_failed_says_so_when_nothing_failed(
    runtime: Runtime, database_url: str, tmp_path: Path
) -> None:
    done = dueflow(tmp_path, database_url, "notifications", "failed")

    assert done.returncode == 0, done.stderr
    assert done.stdout == "no failed notifications\n"


def test_a_maintenance_command_refuses_a_database_behind_the_code(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"

    done = dueflow(tmp_path, url, "events", "backlog")

    assert done.returncode == 2
    assert "Fix: run `dueflow db upgrade`" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_refused_setting_names_the_variable_and_prints_no_value_given(tmp_path: Path) -> None:
    secret = "do-not-print-this-secret-0123456789"
    done = run_dueflow(
        tmp_path,
        "db",
        "current",
        DUEFLOW_DATA_DIR=str(tmp_path / "data"),
        DUEFLOW_WEBHOOKS="alice=http://0251.0376.0251.0376/hook",
        DUEFLOW_WEBHOOK_SECRET=secret,
    )

    assert done.returncode == 2
    assert "DUEFLOW_WEBHOOKS: the URL for 'alice' points at 169.254.169.254" in done.stderr
    assert secret not in done.stderr and secret not in done.stdout
    assert "input_value" not in done.stderr

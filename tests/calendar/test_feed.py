"""The private calendar feed: GET /calendar/<secret>.ics answers a user's open tasks with a due,
with ETag/Last-Modified and conditional GET (304), without a bearer token; unknown, forged,
revoked and orphaned secrets answer 404 and are logged without the secret; another user's feed
never shows this user's tasks. In process and as `dueflow serve` with the CLI, on both
databases."""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import icalendar
import pytest
import sqlalchemy as sa
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

from domain.adapters.sql import make_engine
from domain.clock import FixedClock
from dueflow.bootstrap import Runtime
from mcp_server.http_app import Reachable, http_app
from mcp_server.server import TokenUsers, build_server
from tests.support.database import rows, truncate
from tests.support.servers import (
    STARTUP_SECONDS,
    bearer,
    child_env,
    dueflow_command,
    free_port,
    run_dueflow,
    serving,
    wait_until_listening,
)
from tests.support.tools import call

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
async def base(runtime: Runtime) -> AsyncIterator[str]:
    """The HTTP transport of `runtime` (personal tokens only), with its calendar feeds."""
    server = build_server(
        runtime.service,
        None,
        TokenUsers({}, runtime.tokens),
        reminders=runtime.reminders,
        calendar=runtime.calendar,
        public_url="https://tasks.example.org/",
    )
    app = http_app(server, "http", "/mcp", Reachable("127.0.0.1"), calendar=runtime.calendar)
    async with serving(app) as url:
        yield url


def client(base: str, token: str) -> Client:
    return Client(StreamableHttpTransport(f"{base}/mcp", headers=bearer(token)))


def path_of(url: str) -> str:
    assert url.startswith("https://tasks.example.org/calendar/dfc_") and url.endswith(".ics")
    return url.removeprefix("https://tasks.example.org")


async def test_a_feed_answers_the_open_tasks_with_a_due_and_conditional_gets_answer_304(
    runtime: Runtime, base: str, clock: FixedClock
) -> None:
    _, token = await runtime.tokens.create("alice")
    async with client(base, token) as alice:
        await call(alice, "add_task", title="Rent", due="2026-12-01", reminders=["P1D"])
        await call(alice, "add_task", title="Call Bob", due="2026-11-24T17:00")
        await call(alice, "add_task", title="Someday")
        done = await call(alice, "add_task", title="Done", due="2026-11-20")
        await call(alice, "complete_task", task_id=done["task"]["id"])
        made = (await call(alice, "calendar_feeds", action="create", name="phone"))["feeds"][0]
        listed = (await call(alice, "calendar_feeds", action="list"))["feeds"]
    assert [feed["url"] for feed in listed] == [None]  # the URL is shown once
    path = path_of(made["url"])
    secret = path.removeprefix("/calendar/").removesuffix(".ics")
    stored = await rows(runtime, "SELECT * FROM calendar_feeds")
    assert secret not in repr(stored) and secret.rsplit("_", 1)[1] not in repr(stored)

    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        first = await http.get(path)
        assert first.status_code == 200
        assert first.headers["content-type"] == "text/calendar; charset=utf-8"
        todos = icalendar.Calendar.from_ical(first.text).walk("VTODO")
        assert sorted(str(t["SUMMARY"]) for t in todos) == ["Call Bob", "Rent"]
        etag, modified = first.headers["etag"], first.headers["last-modified"]
        assert (await http.get(path, headers={"If-None-Match": etag})).status_code == 304
        assert (await http.get(path, headers={"If-Modified-Since": modified})).status_code == 304
        assert (await http.head(path)).status_code == 200
        assert (await http.get(path)).text == first.text  # the same tasks, the same text

        clock.advance(dt.timedelta(minutes=5))
        async with client(base, token) as alice:
            await call(alice, "add_task", title="Dentist", due="2026-11-30T09:00")
        changed = await http.get(path, headers={"If-None-Match": etag})
        assert changed.status_code == 200 and changed.headers["etag"] != etag
        assert "SUMMARY:Dentist" in changed.text
        later = await http.get(path, headers={"If-Modified-Since": modified})
        assert later.status_code == 200 and later.headers["last-modified"] != modified


async def test_unknown_forged_revoked_and_orphaned_feeds_answer_404_logged_without_secret(
    runtime: Runtime, base: str, caplog: pytest.LogCaptureFixture
) -> None:
    token_id_alice, alice_token = await runtime.tokens.create("alice")
    _, bob_token = await runtime.tokens.create("bob")
    async with client(base, alice_token) as alice:
        await call(alice, "add_task", title="Alice's secret plan", due="2026-12-01")
        kept = path_of((await call(alice, "calendar_feeds", action="create"))["feeds"][0]["url"])
        revoked = (await call(alice, "calendar_feeds", action="create", events=True))["feeds"][0]
    async with client(base, bob_token) as bob:
        await call(bob, "add_task", title="Bob's errand", due="2026-12-02")
        bobs = path_of((await call(bob, "calendar_feeds", action="create"))["feeds"][0]["url"])
        refusal = (
            (
                await bob.call_tool(
                    "calendar_feeds",
                    {"action": "revoke", "feed_id": revoked["feed_id"]},
                    raise_on_error=False,
                )
            )
            .content[0]
            .text
        )  # type: ignore[union-attr]
    assert refusal.startswith("feed_id: no calendar feed")  # another user's feed is not found
    feed_id, secret = kept.removeprefix("/calendar/dfc_").removesuffix(".ics").split("_")

    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        events = await http.get(path_of(revoked["url"]))
        assert "BEGIN:VEVENT" in events.text and "BEGIN:VTODO" not in events.text
        assert "Bob" not in (await http.get(kept)).text
        assert "Alice" not in (await http.get(bobs)).text
        async with client(base, alice_token) as alice:
            await call(alice, "calendar_feeds", action="revoke", feed_id=revoked["feed_id"])
        caplog.set_level(logging.INFO)
        for path in (
            path_of(revoked["url"]),
            f"/calendar/dfc_{feed_id}_{'0' * 48}.ics",  # a forged secret
            f"/calendar/dfc_{'0' * 16}_{secret}.ics",  # an unknown id
            "/calendar/whatever.ics",
        ):
            answer = await http.get(path)
            assert answer.status_code == 404 and "Alice" not in answer.text
        assert (await http.get(kept)).status_code == 200
        await runtime.tokens.revoke(token_id_alice.id)  # what the token made dies with it
        assert (await http.get(kept)).status_code == 404
        assert (await http.get(bobs)).status_code == 200
    refusals = [r.getMessage() for r in caplog.records if "calendar feed" in r.getMessage()]
    assert len(refusals) == 5 and all("/calendar/…" in line for line in refusals)
    server_side = [r for r in caplog.records if r.name != "httpx"]  # httpx logs the client's URLs
    assert not [r.getMessage() for r in server_side if secret in r.getMessage()]


@pytest.mark.timeout(180)  # several processes: generous on a shared, loaded machine
async def test_the_cli_and_a_served_process_import_export_and_feed_on_one_database(
    tmp_path: Path, postgres_url: str
) -> None:
    """Each command as its own process, as deployed: on PostgreSQL (the storage tests above run
    on both databases; a process per command costs seconds on this machine)."""
    await truncate(postgres_url)
    env = {"DUEFLOW_DATABASE_URL": postgres_url, "DUEFLOW_TIMEZONE": "Europe/Berlin"}
    thunderbird = str(FIXTURES / "thunderbird.ics")
    imported = run_dueflow(tmp_path, "import", thunderbird, "--user", "ann", **env)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.count("created\t") == 3
    assert "PERCENT-COMPLETE: not imported" in imported.stdout and "3 created" in imported.stderr
    exported = run_dueflow(
        tmp_path, "export", "--format", "ics", "--status", "open", "--user", "ann", **env
    )
    assert exported.returncode == 0 and exported.stdout.count("BEGIN:VTODO") == 2
    created = run_dueflow(tmp_path, "feeds", "create", "--user", "ann", "--name", "phone", **env)
    assert created.returncode == 0, created.stderr
    path = created.stdout.strip()
    assert path.startswith("/calendar/dfc_") and "\n" not in path
    feed_id = path.split("_")[1]

    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as stderr:
        server = subprocess.Popen(
            dueflow_command("serve", "--transport", "http", "--port", str(port)),
            env=child_env(tmp_path, **env, DUEFLOW_TOKENS="x" * 20 + "=ann"),
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            await wait_until_listening(server, port)  # type: ignore[arg-type]
            await _served(port, path, feed_id, tmp_path, env)
        finally:
            server.terminate()
            server.wait(timeout=STARTUP_SECONDS)
    logged = log.read_text()
    assert "GET /calendar/… HTTP/1.1" in logged  # uvicorn's access log, masked
    assert path.split("_")[2] not in logged


async def _served(port: int, path: str, feed_id: str, home: Path, env: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        served = await http.get(path)
        assert served.status_code == 200
        assert "SUMMARY:Renew the car insurance" in served.text
        conditional = await http.get(path, headers={"If-None-Match": served.headers["etag"]})
        assert conditional.status_code == 304
        listed = run_dueflow(home, "feeds", "list", "--user", "ann", **env)
        assert f"{feed_id}\tphone\ttodos\tlive" in listed.stdout
        revoked = run_dueflow(home, "feeds", "revoke", "--user", "ann", feed_id, **env)
        assert revoked.returncode == 0
        assert (await http.get(path)).status_code == 404


@pytest.mark.timeout(180)  # several processes: generous on a shared, loaded machine
async def test_a_lone_cli_import_publishes_its_own_events_before_it_ends(
    tmp_path: Path, database_url: str
) -> None:
    """`dueflow import` as its own process with no server running: the events it recorded are
    applied by the workers (audit, reminders, the feed render cache) before it exits."""
    env = {"DUEFLOW_DATABASE_URL": database_url, "DUEFLOW_TIMEZONE": "Europe/Berlin"}
    if database_url.startswith("sqlite"):
        assert run_dueflow(tmp_path, "db", "upgrade", **env).returncode == 0
    assert run_dueflow(tmp_path, "feeds", "create", "--user", "ann", **env).returncode == 0
    thunderbird = str(FIXTURES / "thunderbird.ics")
    imported = run_dueflow(tmp_path, "import", thunderbird, "--user", "ann", **env)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.count("created\t") == 3 and "published 3 event(s)" in imported.stderr

    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            waiting = await conn.scalar(
                sa.text("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            )
            audited = await conn.scalar(sa.text("SELECT count(*) FROM audit_log"))
            scheduled = await conn.scalar(sa.text("SELECT count(*) FROM reminder_schedule"))
            kept = await conn.scalar(sa.text("SELECT count(*) FROM calendar_renders"))
    finally:
        await engine.dispose()
    assert (waiting, audited) == (0, 3)
    assert scheduled and scheduled > 0  # the open tasks' reminders
    assert kept == 2  # the two open tasks with a due, for the feed

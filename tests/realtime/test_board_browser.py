"""The board in a real headless Chromium (Debian's, driven by Playwright): signed in with the
link `dueflow board` prints, it shows each change made through the MCP tools within a second,
and catches up after its socket is dropped. A screenshot goes to tests/artifacts/ (ignored)."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport
from playwright.async_api import Page, async_playwright, expect

from tests.support.servers import ALICE_TOKEN, bearer, dueflow_http, free_port, run_dueflow
from tests.support.tools import call

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
WITHIN = 1_000  # ms: every change shows within a second


@pytest.fixture
async def board(tmp_path: Path) -> AsyncIterator[tuple[str, Page]]:
    """A served board (embedded, SQLite) opened in Chromium through a sign-in link."""
    assert shutil.which("chromium"), "Debian's chromium is missing: ./scripts/test installs it"
    port = free_port()
    env = {"DUEFLOW_DATA_DIR": str(tmp_path / "data"), "DUEFLOW_TIMEZONE": "Europe/Berlin"}
    async with dueflow_http(tmp_path, port, DUEFLOW_TOKENS=f"{ALICE_TOKEN}=alice", **env):
        base = f"http://127.0.0.1:{port}"
        link = run_dueflow(tmp_path, "board", "--user", "alice", "--url", base, **env)
        assert link.returncode == 0, link.stderr
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=[
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--no-first-run",
                ],
            )
            page = await browser.new_page(viewport={"width": 390, "height": 844})  # a phone
            await page.clock.install()  # the page's clock runs, and a test may jump it ahead
            await page.goto(link.stdout.strip())
            await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
            try:
                yield base, page
            finally:
                ARTIFACTS.mkdir(exist_ok=True)
                await page.screenshot(path=str(ARTIFACTS / "board.png"), full_page=True)
                await browser.close()


async def test_the_board_shows_every_change_live_and_catches_up_after_a_drop(
    board: tuple[str, Page],
) -> None:
    base, page = board
    yesterday = (dt.date.today() - dt.timedelta(days=2)).isoformat()
    transport = StreamableHttpTransport(f"{base}/mcp", headers=bearer(ALICE_TOKEN))
    async with Client(transport) as alice:
        task = (await call(alice, "add_task", title="Pay rent", priority="high", tags=["home"]))[
            "task"
        ]
        row = page.locator(f'li[data-task-id="{task["id"]}"]')
        await expect(row).to_be_visible(timeout=WITHIN)
        await expect(page.locator("#nodate li")).to_have_count(1, timeout=WITHIN)
        await expect(row).to_contain_text("#home", timeout=WITHIN)

        await call(alice, "update_task", task_id=task["id"], title="Pay rent now", due=yesterday)
        await expect(page.locator(f'#overdue li[data-task-id="{task["id"]}"]')).to_contain_text(
            "Pay rent now", timeout=WITHIN
        )

        await call(alice, "complete_task", task_id=task["id"])
        await expect(row).to_have_count(0, timeout=WITHIN)

        # the page's socket drops; changes are made while it is away; it reconnects and resumes
        await page.evaluate("window.dueflowBoard.drop()")
        missed = (await call(alice, "add_task", title="Call mum"))["task"]
        await call(alice, "delete_task", task_id=missed["id"])
        kept = (await call(alice, "add_task", title="Water plants", priority="low"))["task"]
        await expect(page.locator(f'li[data-task-id="{kept["id"]}"]')).to_be_visible(timeout=5_000)
        await expect(page.locator(f'li[data-task-id="{missed["id"]}"]')).to_have_count(0)
        await expect(page.locator("#connection")).to_have_attribute("data-state", "live")

        live = (await call(alice, "add_task", title="After the drop"))["task"]
        await expect(page.locator(f'li[data-task-id="{live["id"]}"]')).to_be_visible(timeout=WITHIN)
    # sign-out ends the session: the page asks for a token (a labelled, focused field)
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.locator("#signin")).to_be_visible(timeout=WITHIN)
    await expect(page.get_by_label("Personal token")).to_be_focused()
    status = await page.evaluate("fetch('/board/tasks').then(r => r.status)")
    assert status == 401


async def test_the_board_moves_a_task_from_today_to_overdue_when_its_due_passes(
    board: tuple[str, Page],
) -> None:
    base, page = board
    # far enough ahead to be seen in today first, even on a loaded machine
    soon = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=3)
    transport = StreamableHttpTransport(f"{base}/mcp", headers=bearer(ALICE_TOKEN))
    async with Client(transport) as alice:
        task = (await call(alice, "add_task", title="Call back", due=soon.isoformat()))["task"]
    today = page.locator(f'#today li[data-task-id="{task["id"]}"]')
    overdue = page.locator(f'#overdue li[data-task-id="{task["id"]}"]')
    if soon.astimezone(ZoneInfo("Europe/Berlin")).time() > dt.time(0, 0, 5):  # not at midnight
        await expect(today).to_be_visible(timeout=WITHIN)
    # the server's time message, not a reload nor the page's own minute-by-minute look
    await expect(overdue).to_be_visible(timeout=5_000)
    await expect(today).to_have_count(0)
    await expect(page.locator("#activity")).to_contain_text("Overdue now: “Call back”")
    await expect(page.locator('[data-count="overdue"]')).to_have_text("(1)")


async def test_the_board_regroups_by_its_own_clock_when_no_time_message_comes(
    board: tuple[str, Page],
) -> None:
    base, page = board
    today = await page.evaluate("window.dueflowBoard.today")  # the server's, in Berlin
    transport = StreamableHttpTransport(f"{base}/mcp", headers=bearer(ALICE_TOKEN))
    async with Client(transport) as alice:
        task = (await call(alice, "add_task", title="Pay the bill", due=today))["task"]
    row = f'li[data-task-id="{task["id"]}"]'
    await expect(page.locator(f"#today {row}")).to_be_visible(timeout=WITHIN)
    # a day later for the page only: the server's clock (and so its time messages) stays behind
    await page.clock.fast_forward("25:00:00")
    await expect(page.locator(f"#overdue {row}")).to_be_visible(timeout=WITHIN)
    assert await page.evaluate("window.dueflowBoard.today") > today

"""`dueflow chat` end to end: its own process, the real MCP server it spawns over stdio (or
reaches over HTTP), and a local fake of an OpenAI-compatible provider with a scripted model."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from fastmcp import Client

from tests.fakes.chat_provider import Call, Fail, Say, Stall
from tests.support.chat import (
    ZONE,
    provider,
    run_chat,
    session,
    tasks_at,
    tasks_left,
    today_in_zone,
)
from tests.support.servers import BOB_TOKEN, free_port
from tests.support.tools import call

# the tests below the first two reach one HTTP server by URL (conftest.py) instead of spawning
# one each: the chat works the same over either transport, and a spawn costs seconds


async def test_once_adds_the_task_the_model_asks_for_and_prints_its_answer(
    tmp_path: Path,
) -> None:
    script = (
        Call.one("add_task", title="Buy milk", due="tomorrow 5pm", priority="high"),
        Say("Added 'Buy milk' for tomorrow at 17:00, high priority."),
    )
    async with provider(*script) as (model, base):
        done = await run_chat(tmp_path, base, "--once", "add buy milk tomorrow 5pm, high priority")

    assert done.status == 0, done.stderr
    assert done.stdout == "Added 'Buy milk' for tomorrow at 17:00, high priority.\n"
    assert '> add_task(title="Buy milk", due="tomorrow 5pm", priority="high")' in done.stderr
    assert "-> ok: Created 'Buy milk'" in done.stderr
    [task] = await tasks_left(tmp_path)
    tomorrow = today_in_zone() + dt.timedelta(days=1)
    assert (task["title"], task["priority"]) == ("Buy milk", "high")
    assert task["due"].startswith(f"{tomorrow.isoformat()}T17:00:00")

    asked, answered = model.requests
    assert asked["stream"] is True and asked["model"] == "scripted/model"
    system = asked["messages"][0]
    assert system["role"] == "system"
    assert ZONE in system["content"] and f"{today_in_zone():%Y-%m-%d}" in system["content"]
    assert asked["messages"][1:] == [
        {"role": "user", "content": "add buy milk tomorrow 5pm, high priority"}
    ]
    offered = {tool["function"]["name"] for tool in asked["tools"]}
    assert {"add_task", "list_tasks", "delete_task"} <= offered
    result = answered["messages"][-1]
    assert result["role"] == "tool" and result["tool_call_id"] == "call_1"
    assert "Created 'Buy milk'" in result["content"] and task["id"] in result["content"]


async def test_a_session_keeps_the_conversation_asks_before_deleting_and_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    script = (
        Call.one("add_task", title="Call the plumber"),
        Say("Added it."),
        Call.one("delete_task", task_id="PLACEHOLDER"),
        Say("Kept it, as you asked."),
        Stall("Let me think about"),
        Say("One task is open."),
    )
    async with provider(*script) as (model, base), session(tmp_path, base) as chat:
        await chat.type("add call the plumber")
        await chat.read_until("Added it.")
        await chat.type("delete that task")
        await chat.notice_until('Allow delete_task(task_id="PLACEHOLDER")? [y/N]')
        await chat.type("n")
        await chat.read_until("Kept it, as you asked.")
        await chat.type("plan my week")
        await chat.read_until("Let me think about")
        chat.interrupt()
        await chat.notice_until("stopped. Ctrl-C again quits.")
        await chat.type("how many tasks are open?")
        await chat.read_until("One task is open.")
        chat.interrupt()
        # signals of one kind do not queue: the second must come after the first is handled
        await chat.notice_until("Ctrl-C again quits (or Ctrl-D).")
        chat.interrupt()
        done = await chat.finish()

    assert done.status == 130, done.stderr
    assert done.stdout == (
        "Added it.\nKept it, as you asked.\nLet me think about\nOne task is open.\n"
    )
    assert "-> x: refused by you; nothing changed" in done.stderr
    kept = model.requests[-1]["messages"]
    said = [message["content"] for message in kept if message["role"] == "user"]
    assert said == [
        "add call the plumber",
        "delete that task",
        "plan my week",
        "how many tasks are open?",
    ]
    refusal = next(m for m in kept if m["role"] == "tool" and "refused" in m["content"])
    assert refusal["content"].startswith("The person refused this delete_task call")
    assert kept[-2:] == [
        {"role": "assistant", "content": "Let me think about [stopped by the person]"},
        {"role": "user", "content": "how many tasks are open?"},
    ]
    [task] = await tasks_left(tmp_path)
    assert (task["title"], task["status"]) == ("Call the plumber", "open")


async def test_over_http_a_refused_call_goes_back_to_the_model_and_yes_deletes_unasked(
    tmp_path: Path, dueflow_url: str
) -> None:
    async with Client(dueflow_url, auth=BOB_TOKEN) as bob:
        old = (await call(bob, "add_task", title="Old newsletter"))["task"]
        script = (
            Call.one("add_task", title="Renew passport", due="someday soon"),
            Call.one("add_task", title="Renew passport", due="2027-01-15"),
            Call.one("delete_task", task_id=old["id"]),
            Say("Added 'Renew passport' for 15 January and deleted the newsletter."),
        )
        async with provider(*script) as (model, base):
            done = await run_chat(
                tmp_path,
                base,
                *by_url(dueflow_url),
                "--no-stream",
                "--yes",
                "--once",
                "renew my passport and drop the old newsletter",
                DUEFLOW_CHAT_TOKEN=BOB_TOKEN,
            )

        assert done.status == 0, done.stderr
        assert done.stdout == "Added 'Renew passport' for 15 January and deleted the newsletter.\n"
        assert "-> x: due:" in done.stderr
        assert "Allow" not in done.stderr
        assert f'> delete_task(task_id="{old["id"]}") -> ok: Deleted' in done.stderr
        refusal = model.requests[1]["messages"][-1]
        assert refusal["role"] == "tool" and refusal["content"].startswith("Error: due:")
        assert "Fix:" in refusal["content"]
        assert not any(request.get("stream") for request in model.requests)
        [task] = await tasks_at(dueflow_url, BOB_TOKEN, query="Renew passport")
        assert task["due"] == "2027-01-15"
        gone = await call(bob, "get_task", task_id=old["id"])
        assert gone["task"]["status"] == "deleted"


async def test_a_rate_limit_is_retried_and_one_that_lasts_is_reported(
    tmp_path: Path, dueflow_url: str
) -> None:
    slow_down = Fail(429, "Rate limit exceeded", {"retry-after-ms": "100"})
    script = (*[slow_down] * 4, slow_down, Say("Nothing is due today."))
    async with provider(*script) as (model, base):
        done = await run_chat(
            tmp_path, base, *by_url(dueflow_url), stdin="what is due today?\nand now?\n"
        )

    assert done.status == 0, done.stderr
    assert done.stdout == "Nothing is due today.\n"
    assert "rate limited by the provider; retrying in 0.1 s (try 2 of 4)" in done.stderr
    gave_up = "the provider is rate limited: gave up after 4 tries (Rate limit exceeded)."
    assert done.stderr.count(gave_up) == 1
    assert done.stderr.count("(try 2 of 4)") == 2
    assert len(model.requests) == 6 and model.left == 0
    said = [m["content"] for m in model.requests[-1]["messages"] if m["role"] == "user"]
    assert said == ["what is due today?", "and now?"]


async def test_a_refused_key_says_which_variable_to_fix(tmp_path: Path, dueflow_url: str) -> None:
    async with provider(Say("never reached"), key="sk-or-another-key") as (model, base):
        done = await run_chat(tmp_path, base, *by_url(dueflow_url), "--once", "hello")

    assert done.status == 2
    assert "refused the API key (401: Incorrect API key provided.)" in done.stderr
    assert "Fix: check OPENROUTER_API_KEY" in done.stderr
    assert model.left == 1


async def test_a_model_without_tool_support_is_named_with_the_fix(
    tmp_path: Path, dueflow_url: str
) -> None:
    no_tools = Fail(404, "No endpoints found that support tool use.")
    async with provider(no_tools) as (_, base):
        done = await run_chat(tmp_path, base, *by_url(dueflow_url), "--once", "hello")

    assert done.status == 2
    assert "the model 'scripted/model' does not support tool calls" in done.stderr
    assert "Fix: choose a model that does" in done.stderr


async def test_a_missing_key_stops_before_anything_starts(tmp_path: Path) -> None:
    async with provider() as (model, base):
        done = await run_chat(tmp_path, base, "--once", "hello", OPENROUTER_API_KEY="")

    assert done.status == 2
    assert "no API key: OPENROUTER_API_KEY is not set" in done.stderr
    assert model.requests == []
    assert not (tmp_path / "data").exists()


async def test_a_server_that_is_not_there_is_named_with_the_fix(tmp_path: Path) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}/mcp"
    async with provider(Say("never reached")) as (model, base):
        done = await run_chat(tmp_path, base, "--url", nowhere, "--once", "hello")

    assert done.status == 2
    assert f"cannot reach the Dueflow server at {nowhere}" in done.stderr
    assert "Fix: start it with `dueflow serve --transport http`" in done.stderr
    assert model.requests == []


async def test_a_server_that_refuses_the_token_says_how_to_get_one(
    tmp_path: Path, dueflow_url: str
) -> None:
    async with provider(Say("never reached")) as (model, base):
        done = await run_chat(
            tmp_path, base, *by_url(dueflow_url), "--once", "hi", DUEFLOW_CHAT_TOKEN="wrong-token"
        )

    assert done.status == 2
    assert "refused the connection (401 Unauthorized)" in done.stderr
    assert "dueflow tokens create" in done.stderr
    assert model.requests == []


def by_url(url: str) -> tuple[str, ...]:
    """The arguments that point the chat at `url`; its token comes from run_chat's env."""
    return ("--url", url)

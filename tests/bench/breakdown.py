"""Where the stdio round trip of noop / add_task / list_tasks goes: in-process timings, no profiler.

    .venv/bin/python tests/bench/breakdown.py [--db sqlite|postgres] [--tasks 10000] [--n 200]

Seeds like bench_stdio.py, then times, interleaved in --n rounds (p50, ms):
  service      TaskService.add / .list alone (database path)
  shape        the tool body's shaping of the answer alone: TaskOut.document / TaskSummary.page
  server       FastMCP.call_tool in-process: middleware, argument validation, tool body, shaping
  in-memory    fastmcp Client(mcp).call_tool_mcp over in-memory streams: the whole MCP stack
               on both sides in one process, minus the stdio pipes and the second process;
               in_memory_raw_no_jsonschema: the same with the SDK client's output-schema check
               patched out
  client-side  the parts of the client's work that grow with the answer: parsing the JSON
               into mcp_types.CallToolResult, the SDK's jsonschema check of structured_content
               against outputSchema (done by call_tool_mcp and call_tool), and fastmcp's typed
               parse (call_tool only)
Writes tests/bench/results/breakdown-<db>.json and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest.mock import patch

import mcp_types as mt
from bench_server import add_noop
from bench_stdio import (
    LIST_ARGS,
    LIST_LIMIT,
    LIST_PRIORITY,
    LIST_TAG,
    RESULTS,
    TIMEZONE,
    USER,
    add_args,
    reset_postgres,
    reset_sqlite,
    seed,
)
from fastmcp import Client
from fastmcp.utilities.json_schema_type import json_schema_to_type_adapter
from jsonschema.validators import validator_for
from mcp.client.session import ClientSession
from referencing import Registry

from domain.service import ListArguments, NewTask
from dueflow.bootstrap import bootstrap
from dueflow.settings import Settings
from mcp_server.schemas import TaskOut, TaskSummary
from mcp_server.server import build_server


async def skip_validation(self: Any, name: str, result: Any) -> None:
    return None


async def main(args: argparse.Namespace) -> None:
    env = {"DUEFLOW_USER": USER, "DUEFLOW_TIMEZONE": TIMEZONE}
    if args.db == "sqlite":
        data_dir = Path("/tmp/dueflow-bench-breakdown")
        reset_sqlite(data_dir)
        env["DUEFLOW_DATA_DIR"] = str(data_dir)
    else:
        env["DUEFLOW_DATABASE_URL"] = await reset_postgres()
    settings = Settings.from_env(env)
    await seed(settings, args.tasks)
    runtime = await bootstrap(settings)
    n = args.n
    rows: dict[str, dict[str, float]] = {"noop": {}, "add_task": {}, "list_tasks": {}}
    counter = iter(range(100_000, 10_000_000))
    try:
        service = runtime.service
        mcp = build_server(service, USER)
        add_noop(mcp)

        def next_add() -> dict[str, Any]:
            return add_args(next(counter))

        where = service.make_filter(ListArguments(priority=[LIST_PRIORITY], tags=[LIST_TAG]))
        page = await service.list_tasks(USER, where, LIST_LIMIT)
        one = page.tasks[0]
        calls: dict[str, Callable[[], dict[str, Any]]] = {
            "noop": dict,
            "add_task": next_add,
            "list_tasks": lambda: dict(LIST_ARGS),
        }

        async with Client(mcp) as client:
            tools = {t.name: t for t in await client.list_tools()}
            wire: dict[str, str] = {}
            for kind, make in calls.items():
                result = await client.call_tool_mcp(kind, make())
                wire[kind] = result.model_dump_json(by_alias=True, exclude_none=True)
            validators = {
                k: validator_for(t.output_schema)(t.output_schema, registry=Registry())
                for k, t in tools.items()
                if k in calls
            }
            adapters = {k: json_schema_to_type_adapter(tools[k].output_schema) for k in calls}
            contents = {
                k: mt.CallToolResult.model_validate_json(wire[k]).structured_content for k in calls
            }

            async def svc(kind: str) -> None:
                if kind == "add_task":
                    a = next_add()
                    new = NewTask(
                        title=a["title"], due=a["due"], priority=a["priority"], tags=a["tags"]
                    )
                    await service.add(USER, new)
                elif kind == "list_tasks":
                    w = service.make_filter(
                        ListArguments(priority=[LIST_PRIORITY], tags=[LIST_TAG])
                    )
                    assert len((await service.list_tasks(USER, w, LIST_LIMIT)).tasks) == LIST_LIMIT

            async def shape(kind: str) -> None:
                if kind == "add_task":
                    {"task": TaskOut.document(one, service.outlook()), "created": True}
                elif kind == "list_tasks":
                    TaskSummary.page(page, service.user_zone)

            async def server(kind: str) -> None:
                await mcp.call_tool(kind, calls[kind]())

            async def in_memory_raw(kind: str) -> None:
                result = await client.call_tool_mcp(kind, calls[kind]())
                assert not result.is_error, result.content

            async def in_memory_raw_no_jsonschema(kind: str) -> None:
                # the same without the SDK client's jsonschema check of structured_content
                with patch.object(ClientSession, "validate_tool_result", skip_validation):
                    await in_memory_raw(kind)

            async def client_parse_json(kind: str) -> None:
                mt.CallToolResult.model_validate_json(wire[kind])

            async def client_jsonschema(kind: str) -> None:
                list(validators[kind].iter_errors(contents[kind]))

            async def client_typed_parse(kind: str) -> None:
                adapters[kind].validate_python(contents[kind])

            steps = [
                svc,
                shape,
                server,
                in_memory_raw,
                in_memory_raw_no_jsonschema,
                client_parse_json,
                client_jsonschema,
                client_typed_parse,
            ]
            samples: dict[tuple[str, str], list[float]] = {}
            # interleaved: every round runs every step for every tool, so load shifts hit all alike
            for round_no in range(n + 10):
                for step in steps:
                    for kind in calls:
                        started = time.perf_counter()
                        await step(kind)
                        if round_no >= 10:  # warm-up rounds
                            samples.setdefault((kind, step.__name__), []).append(
                                time.perf_counter() - started
                            )
            for (kind, name), values in samples.items():
                rows[kind]["service" if name == "svc" else name] = statistics.median(values) * 1000
            for kind in calls:
                rows[kind]["answer_bytes"] = float(len(wire[kind].encode()))
    finally:
        await runtime.close()

    cols = [
        "service",
        "shape",
        "server",
        "in_memory_raw",
        "in_memory_raw_no_jsonschema",
        "client_parse_json",
        "client_jsonschema",
        "client_typed_parse",
        "answer_bytes",
    ]
    print(f"\n[{args.db}] p50 ms (answer_bytes in bytes), {args.tasks} tasks, n={n}")
    print("| tool | " + " | ".join(cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for kind, row in rows.items():
        print(
            f"| {kind} | "
            + " | ".join(f"{row[c]:.2f}" if c != "answer_bytes" else f"{row[c]:.0f}" for c in cols)
            + " |"
        )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"breakdown-{args.db}.json"
    out.write_text(
        json.dumps({"db": args.db, "tasks": args.tasks, "n": n, "p50_ms": rows}, indent=2) + "\n"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--n", type=int, default=200)
    asyncio.run(main(parser.parse_args()))

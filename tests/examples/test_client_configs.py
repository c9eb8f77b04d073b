"""Every example in examples/ in the format its client documents, the same DUEFLOW_USER in all,
and the command they share starting a server that answers as that user.

The formats, from each client's documentation:
- Claude Desktop (claude_desktop_config.json): `mcpServers` -> {command, args, env}.
- Claude Code (.mcp.json, project scope): `mcpServers` -> {type: stdio (the default), command,
  args, env} or {type: http | sse, url, headers}; values may use `${VAR}` / `${VAR:-default}`.
- VS Code (.vscode/mcp.json): `servers` -> {type: stdio, command, args, env, envFile} or
  {type: http | sse, url, headers}, and `inputs` [{type: promptString, id, description,
  password}] that `${input:ID}` refers to.
- Cursor (.cursor/mcp.json): `mcpServers` -> {command, args, env} or {url, headers}; values may
  use `${env:NAME}`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client
from fastmcp.client.transports import StdioTransport

from dueflow.chat.settings import ChatSettings
from dueflow.cli import parser
from tests.support.tools import call

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PLACEHOLDER = "/ABSOLUTE/PATH/TO/dueflow/.venv/bin/dueflow"
USER = "me"
DUEFLOW = Path(sys.executable).with_name("dueflow")

STDIO = {"command", "args", "env"}
REMOTE = {"url", "headers"}
CLIENTS = {
    # file: (servers key, keys a stdio server may have, keys a remote one may have, type values)
    "claude_desktop_config.json": ("mcpServers", STDIO, None, None),
    "claude_code_mcp.json": ("mcpServers", STDIO | {"type"}, REMOTE | {"type"}, {"stdio"}),
    "vscode_mcp.json": ("servers", STDIO | {"type", "envFile"}, REMOTE | {"type"}, {"stdio"}),
    "cursor_mcp.json": ("mcpServers", STDIO, REMOTE, None),
}
VARIABLES = {
    "claude_code_mcp.json": re.compile(r"\$\{[A-Z_][A-Z0-9_]*(:-[^}]*)?\}"),
    "vscode_mcp.json": re.compile(r"\$\{(input|env):[A-Za-z0-9_.-]+\}"),
    "cursor_mcp.json": re.compile(r"\$\{env:[A-Z_][A-Z0-9_]*\}"),
}


def example(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EXAMPLES / name).read_text())
    return loaded


def servers(name: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = example(name)[CLIENTS[name][0]]
    return found


def test_every_json_example_is_one_a_test_here_knows_the_format_of() -> None:
    assert {path.name for path in EXAMPLES.glob("*.json")} == set(CLIENTS)


@pytest.mark.parametrize("name", sorted(CLIENTS))
def test_an_example_has_only_the_keys_its_client_documents(name: str) -> None:
    key, stdio_keys, remote_keys, stdio_types = CLIENTS[name]
    assert set(example(name)) <= {key, "inputs"}, "unknown top-level keys"
    for server_name, server in servers(name).items():
        assert re.fullmatch(r"[a-zA-Z][a-zA-Z0-9_-]*", server_name)
        if "command" in server:
            assert set(server) <= stdio_keys, f"{server_name}: {set(server) - stdio_keys}"
            assert stdio_types is None or server.get("type", "stdio") in stdio_types
            if name == "vscode_mcp.json":
                assert server["type"] == "stdio"  # VS Code requires the type
            assert isinstance(server["command"], str)
            assert all(isinstance(arg, str) for arg in server.get("args", []))
            assert all(isinstance(value, str) for value in server.get("env", {}).values())
        else:
            assert remote_keys is not None, f"{name} documents no remote servers in its file"
            assert set(server) <= remote_keys, f"{server_name}: {set(server) - remote_keys}"
            if "type" in remote_keys:
                assert server["type"] == "http"  # streamable HTTP, which `dueflow serve` speaks
            assert all(isinstance(value, str) for value in server.get("headers", {}).values())


@pytest.mark.parametrize("name", sorted(VARIABLES))
def test_placeholders_use_the_variable_syntax_of_their_client(name: str) -> None:
    text = (EXAMPLES / name).read_text()
    used = re.findall(r"\$\{[^}]*\}", text)
    assert used, "the remote entry reads its token from a variable, never a literal"
    assert all(VARIABLES[name].fullmatch(variable) for variable in used), used


def test_vscode_inputs_define_every_input_the_servers_use() -> None:
    config = example("vscode_mcp.json")
    used = set(re.findall(r"\$\{input:([^}]+)\}", json.dumps(config["servers"])))
    inputs = {entry["id"]: entry for entry in config["inputs"]}
    assert used == set(inputs)
    for entry in inputs.values():
        assert entry["type"] == "promptString" and entry["password"] is True
        assert set(entry) <= {"id", "type", "description", "password", "default"}


def test_every_stdio_example_runs_the_same_command_as_the_same_user() -> None:
    stdio = [s for name in CLIENTS for s in servers(name).values() if "command" in s]
    assert len(stdio) == len(CLIENTS)
    for server in stdio:
        assert (server["command"], server["args"]) == (PLACEHOLDER, ["serve"])
        assert server["env"]["DUEFLOW_USER"] == USER
    chat = (EXAMPLES / "dueflow_chat.sh").read_text()
    assert f'export DUEFLOW_USER="{USER}"' in chat and PLACEHOLDER in chat


def test_every_remote_example_names_the_default_http_endpoint_with_a_bearer_token() -> None:
    serve = parser().parse_args(["serve", "--transport", "http"])
    remote = [s for name in CLIENTS for s in servers(name).values() if "url" in s]
    assert len(remote) == 3
    for server in remote:
        assert server["url"] == f"http://{serve.host}:{serve.port}/mcp"
        assert server["headers"]["Authorization"].startswith("Bearer ${")


async def test_the_shared_command_serves_the_tools_as_the_examples_user(tmp_path: Path) -> None:
    env = servers("claude_desktop_config.json")["dueflow"]["env"]
    transport = StdioTransport(
        str(DUEFLOW),
        ["serve"],
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), **env},
        cwd=str(tmp_path),
        keep_alive=False,
    )
    async with Client(transport) as client:
        names = {tool.name for tool in await client.list_tools()}
        added = await call(client, "add_task", title="Try Dueflow", due="tomorrow")
    assert {"add_task", "list_tasks", "delete_task"} <= names
    assert added["task"]["title"] == "Try Dueflow"
    assert (tmp_path / ".local" / "share" / "dueflow" / "dueflow.db").exists()


def test_the_chat_example_sets_what_the_chat_reads_and_runs_it(tmp_path: Path) -> None:
    script = (EXAMPLES / "dueflow_chat.sh").read_text()
    exported = dict(re.findall(r'^export ([A-Z_]+)="([^"]*)"$', script, flags=re.MULTILINE))
    assert set(exported) == {
        "DUEFLOW_USER",
        "DUEFLOW_TIMEZONE",
        "DUEFLOW_CHAT_MODEL",
        "DUEFLOW_CHAT_BASE_URL",
    }
    settings = ChatSettings.from_env({**exported, "OPENROUTER_API_KEY": "sk-or-example"})
    assert (settings.model, settings.base_url, settings.timezone) == (
        exported["DUEFLOW_CHAT_MODEL"],
        exported["DUEFLOW_CHAT_BASE_URL"],
        exported["DUEFLOW_TIMEZONE"],
    )
    copied = tmp_path / "dueflow_chat.sh"
    copied.write_text(script.replace(PLACEHOLDER, str(DUEFLOW)))
    shown = subprocess.run(
        ["sh", str(copied), "--help"],
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("usage: dueflow chat")

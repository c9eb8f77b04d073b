"""The chart's commands run as the pods would run them: each role's process started with the
rendered arguments and environment answers the rendered probes, and the migration Job's command
and the pods' wait-for-schema check do what the chart relies on."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.deploy.chart import Manifest, container, pod_containers, render
from tests.deploy.test_chart_contracts import SECRET_STANDINS, dueflow_deployments
from tests.fakes.dapr_sidecar import FakeDaprSidecar
from tests.support.servers import STARTUP_SECONDS, child_env, dueflow_command, free_port
from tests.support.waiting import eventually

PROBES = ("startupProbe", "livenessProbe", "readinessProbe")


def pod_env(deployment: Manifest, database_url: str, sidecar: FakeDaprSidecar) -> dict[str, str]:
    """The rendered environment; the Secret's values as stand-ins, the database a test one, and
    the sidecar's addresses the fake's (the pod's come from DAPR_*_PORT, set by injection)."""
    env = {}
    for entry in container(deployment)["env"]:
        env[entry["name"]] = entry["value"] if "value" in entry else SECRET_STANDINS[entry["name"]]
    env["DUEFLOW_DATABASE_URL"] = database_url
    env["DUEFLOW_DAPR_GRPC_ADDRESS"] = sidecar.grpc_address
    env["DUEFLOW_DAPR_HTTP_ENDPOINT"] = sidecar.http_endpoint
    return env


def probe_requests(deployment: Manifest) -> list[tuple[str, dict[str, str]]]:
    main = container(deployment)
    requests = []
    for probe in PROBES:
        get = main[probe]["httpGet"]
        headers = {h["name"]: h["value"] for h in get.get("httpHeaders", [])}
        requests.append((get["path"], headers))
    return requests


@pytest.mark.timeout(180)  # five processes: generous on a shared, loaded machine
async def test_every_role_answers_its_probes_as_rendered(
    tmp_path: Path, sidecar: FakeDaprSidecar
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'pods.db'}"
    upgraded = subprocess.run(
        dueflow_command("db", "upgrade"),
        env=child_env(tmp_path, DUEFLOW_DATABASE_URL=database_url),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert upgraded.returncode == 0, upgraded.stderr
    deployments = dueflow_deployments(render("values.yaml"))
    processes: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    with contextlib.ExitStack() as stack:
        try:
            for role, deployment in deployments.items():
                args = list(container(deployment)["args"])
                port = free_port()  # the rendered port may be taken on a shared machine
                args[args.index("--port") + 1] = str(port)
                env = {**child_env(tmp_path), **pod_env(deployment, database_url, sidecar)}
                processes[role] = (
                    subprocess.Popen(
                        dueflow_command(*args),
                        env=env,
                        cwd=tmp_path,
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=stack.enter_context((tmp_path / f"{role}.log").open("wb")),
                    ),
                    port,
                )
            answers = await asyncio.gather(
                *(
                    probe(role, *processes[role], deployments[role], tmp_path)
                    for role in deployments
                )
            )
        finally:
            for process, _ in processes.values():
                process.terminate()
            for process, _ in processes.values():
                process.wait(timeout=STARTUP_SECONDS)

    assert dict(answers) == {role: [200, 200, 200] for role in deployments}


async def probe(
    role: str, process: subprocess.Popen[bytes], port: int, deployment: Manifest, logs: Path
) -> tuple[str, list[int]]:
    """Each rendered probe's status once the process listens."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:

        async def listening() -> bool:
            if process.poll() is not None:
                log = (logs / f"{role}.log").read_text()[-2000:]
                raise AssertionError(f"{role} exited: {log}")
            try:
                await client.get("/")
            except httpx.TransportError:
                return False
            return True

        # five processes import and migrate at once: a minute at a load of 8 on two cores
        await eventually(listening, timeout=STARTUP_SECONDS * 4, what=f"{role} to listen")
        statuses = []
        for path, headers in probe_requests(deployment):
            statuses.append((await client.get(path, headers=headers)).status_code)
    return role, statuses


def test_the_schema_wait_holds_pods_until_the_migration_job_has_run(tmp_path: Path) -> None:
    rendered = render("values.yaml")
    [job] = rendered.of("Job")
    deployment = dueflow_deployments(rendered)["api"]
    [wait] = [c for c in pod_containers(deployment) if c["name"] == "wait-for-schema"]
    loop = wait["args"][0]
    check = loop.removeprefix("until ").split("; do")[0]  # one pass of the loop's condition
    env = child_env(tmp_path, DUEFLOW_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    env["PATH"] = f"{Path(dueflow_command()[0]).parent}:{env['PATH']}"

    def passes() -> bool:
        done = subprocess.run([*wait["command"], check], env=env, cwd=tmp_path, check=False)
        return done.returncode == 0

    assert loop.startswith("until ") and loop.endswith("done")
    assert not passes()  # no database yet
    migrate = subprocess.run(
        dueflow_command(*container(job)["args"]), env=env, cwd=tmp_path, check=False
    )
    assert migrate.returncode == 0
    assert passes()

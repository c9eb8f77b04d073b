"""The CI/CD workflows: clean under actionlint, and saying what the project relies on — CI runs
the README's test command against PostgreSQL, a release tag is the project's version, a deploy
rolls itself back when it does not become ready and smoke-tests what it deployed."""

from __future__ import annotations

import re
import subprocess
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.chart import CHART
from tests.deploy.tools import ROOT, run, tool
from tests.support.servers import (
    ALICE_TOKEN,
    STARTUP_SECONDS,
    child_env,
    dueflow_command,
    free_port,
)

WORKFLOWS = ROOT / ".github" / "workflows"


def workflow(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load((WORKFLOWS / name).read_text(), Loader=yaml.BaseLoader)
    return loaded


def steps(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def test_every_workflow_passes_actionlint() -> None:
    names = sorted(path.name for path in WORKFLOWS.glob("*.yaml"))

    assert names == ["ci.yaml", "deploy.yaml", "release.yaml"]
    run(tool("actionlint"), "-no-color", *(WORKFLOWS / name for name in names))


def test_ci_runs_the_readme_test_command_against_postgresql() -> None:
    job = workflow("ci.yaml")["jobs"]["test"]

    assert "bash .ci/run" in steps(job)
    assert job["services"]["postgres"]["image"].startswith("postgres:")
    assert job["env"]["CI"] == "true" and "DUEFLOW_TEST_PG_URL" in job["env"]


def test_a_release_is_tagged_with_the_version_the_chart_and_the_package_declare() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    job = workflow("release.yaml")["jobs"]["release"]

    assert chart["appVersion"] == pyproject["project"]["version"]
    assert "helm push" in steps(job)
    [build] = [s for s in job["steps"] if s.get("uses", "").startswith("docker/build-push")]
    assert build["with"]["platforms"] == "linux/amd64,linux/arm64"
    assert build["with"]["sbom"] == "true" and build["with"]["provenance"].startswith("mode=")


def test_deploys_roll_back_by_themselves_and_production_waits_for_staging() -> None:
    jobs = workflow("deploy.yaml")["jobs"]

    assert jobs["production"]["needs"] == "staging"
    assert jobs["production"]["environment"] == "production"
    for name in ("staging", "production"):
        upgrade = steps(jobs[name])
        assert "helm upgrade --install" in upgrade
        assert all(flag in upgrade for flag in ("--rollback-on-failure", "--wait", "--timeout"))
        assert "scripts/smoke-test" in upgrade
    assert "helm rollback" in steps(jobs["rollback"])


def test_the_workflows_use_the_helm_the_tests_use() -> None:
    pinned = re.search(r"# helm (v[\d.]+)", (ROOT / "scripts" / "install-helm").read_text())
    assert pinned is not None
    for name in ("release.yaml", "deploy.yaml"):
        assert workflow(name)["env"]["HELM_VERSION"] == pinned.group(1)
    assert pinned.group(1) in run(tool("helm"), "version", "--short")


@pytest.mark.timeout(180)  # starts a server: generous on a shared, loaded machine
def test_the_smoke_test_passes_against_a_serving_api_and_fails_a_wrong_token(
    tmp_path: Path,
) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'smoke.db'}"
    env = child_env(tmp_path, DUEFLOW_DATABASE_URL=database, DUEFLOW_TOKENS=f"{ALICE_TOKEN}=alice")
    subprocess.run(dueflow_command("db", "upgrade"), env=env, check=True, capture_output=True)
    port = free_port()
    command = dueflow_command("serve", "--transport", "http", "--port", str(port))
    with (
        (tmp_path / "api.log").open("wb") as log,
        subprocess.Popen(
            command, env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        ) as api,
    ):
        try:
            smoke = [str(ROOT / "scripts" / "smoke-test"), f"http://127.0.0.1:{port}"]
            passed = until_listening(smoke, {**env, "DUEFLOW_SMOKE_TOKEN": ALICE_TOKEN})
            refused = subprocess.run(
                smoke,
                env={**env, "DUEFLOW_SMOKE_TOKEN": "x" * 24},
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        finally:
            api.terminate()
            api.wait(timeout=STARTUP_SECONDS)

    assert passed.returncode == 0, passed.stderr + (tmp_path / "api.log").read_text()
    assert passed.stdout.splitlines() == ["readyz: ok", "tools/list: ok"]
    assert refused.returncode != 0 and "401" in refused.stderr


def until_listening(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the smoke test until the API has started (curl's exit 7: connection refused)."""
    deadline = time.monotonic() + STARTUP_SECONDS * 2
    while True:
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode == 0 or time.monotonic() > deadline or "(7)" not in done.stderr:
            return done
        time.sleep(0.2)

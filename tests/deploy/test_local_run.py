"""The Dapr multi-app run file (`dapr run -f dapr/dapr.yaml`) names real things: each app's
command is one the `dueflow` command accepts, listening on the port its sidecar is told, with the
app ids the code calls and the local components scope; the paths it gives exist."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from dueflow.cli import parser
from dueflow.settings import Settings
from tests.deploy.tools import ROOT
from workers.registry import WORKER_NAMES

RUN_FILE = ROOT / "dapr" / "dapr.yaml"


def run_file() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(RUN_FILE.read_text())
    return loaded


def apps() -> dict[str, dict[str, Any]]:
    return {app["appID"]: app for app in run_file()["apps"]}


def local_resources() -> list[dict[str, Any]]:
    folder = RUN_FILE.parent / run_file()["common"]["resourcesPath"]
    return [yaml.safe_load(path.read_text()) for path in sorted(folder.glob("*.yaml"))]


def test_it_is_a_version_1_run_file_whose_paths_exist() -> None:
    common = run_file()["common"]

    assert run_file()["version"] == 1
    assert (RUN_FILE.parent / common["resourcesPath"]).is_dir()
    assert (RUN_FILE.parent / common["configFilePath"]).is_file()
    for app in apps().values():
        assert (RUN_FILE.parent / app["appDirPath"]).resolve() == ROOT


def test_it_runs_the_api_and_every_worker_the_code_has() -> None:
    roles = set()
    for app in apps().values():
        args = parser().parse_args(app["command"][1:])
        roles.add("api" if args.command == "serve" else args.name)

    assert roles == {"api", *WORKER_NAMES}


@pytest.mark.parametrize("app_id", sorted(apps()))
def test_each_app_listens_where_its_sidecar_calls_it(app_id: str) -> None:
    app = apps()[app_id]
    args = parser().parse_args(app["command"][1:])

    assert app["command"][0] == ".venv/bin/dueflow"  # what ./scripts/serve installs
    assert args.port == app["appPort"]
    if args.command == "serve":
        assert args.transport == "http"  # the recurrence worker invokes its internal route


def test_the_ports_are_distinct() -> None:
    ports = [app["appPort"] for app in apps().values()]

    assert len(ports) == len(set(ports))


def test_the_app_ids_are_the_ones_the_code_calls() -> None:
    defaults = Settings.from_env({})
    ids = set(apps())

    assert {defaults.api_app_id, defaults.audit_app_id} <= ids
    assert ids == {"dueflow-api", *(f"dueflow-{name}" for name in WORKER_NAMES)}


def test_the_local_components_are_the_ones_the_apps_name_and_scope_apps_that_run() -> None:
    defaults = Settings.from_env({**run_file()["common"]["env"]})
    components = {r["metadata"]["name"]: r for r in local_resources() if r["kind"] == "Component"}

    assert components[defaults.dapr_pubsub]["spec"]["type"] == "pubsub.kafka"
    assert components[defaults.dapr_statestore]["spec"]["type"] == "state.postgresql"
    for resource in local_resources():
        assert set(resource.get("scopes", [])) <= set(apps()), resource["metadata"]["name"]
    assert run_file()["common"]["env"]["DUEFLOW_EVENT_BUS"] == "dapr"


def test_the_realtime_app_pushes_on_its_own_consumer_and_writes_the_feed_in_one_shared_group() -> (
    None
):
    app = apps()["dueflow-realtime"]
    settings = Settings.from_env({**run_file()["common"]["env"], **app["env"]})
    components = {r["metadata"]["name"]: r for r in local_resources() if r["kind"] == "Component"}
    push = components[settings.dapr_pubsub]
    feed = components[settings.realtime_feed_pubsub]

    def fields(component: dict[str, Any]) -> dict[str, Any]:
        return {entry["name"]: entry["value"] for entry in component["spec"]["metadata"]}

    # each replica its own consumer, from the newest message: it only pushes
    assert fields(push)["consumerID"] == "{podName}" and fields(push)["initialOffset"] == "newest"
    # one fixed, durable group for every replica, from the oldest message: it writes the feed
    assert "{" not in fields(feed)["consumerID"] and fields(feed)["initialOffset"] == "oldest"
    assert "consumerGroup" not in fields(push) and "consumerGroup" not in fields(feed)
    assert push["scopes"] == feed["scopes"] == ["dueflow-realtime"]
    resiliency = next(r for r in local_resources() if r["kind"] == "Resiliency")
    inbound = resiliency["spec"]["targets"]["components"]
    assert inbound[settings.realtime_feed_pubsub]["inbound"]["retry"] == "pubsubRetry"


def test_no_secret_is_written_in_the_run_file() -> None:
    text = Path(RUN_FILE).read_text()

    for name in ("DUEFLOW_TOKENS:", "DUEFLOW_INTERNAL_TOKEN:", "DUEFLOW_DATABASE_URL:"):
        assert name not in text

"""What would break a deployment that validates: the chart against the code. App ids are the ones
the code calls, every component is scoped to apps that exist and every app has the components its
code uses, every setting a role needs is set and valid, secrets reach pods only by reference, the
migration runs before any pod serves, and every pod is locked down."""

from __future__ import annotations

import re

import pytest
import yaml

from dueflow.settings import PREFIX, Settings
from tests.deploy.chart import (
    CHART,
    DAPR_SCHEMAS,
    INFRA,
    VALUES_FILES,
    Manifest,
    Rendered,
    app_id,
    container,
    env_of,
    pod_containers,
    render,
)
from tests.deploy.test_chart import OAUTH
from workers.audit_api import RETENTION_BINDING
from workers.registry import WORKER_NAMES
from workers.reminders import SWEEP_BINDING

EVERY_VALUES_FILE = pytest.mark.parametrize("values_file", VALUES_FILES)
# the apps that keep the reminder schedule in the Dapr state store (dueflow/bootstrap.py:
# `_dapr_state` wires it into the API process and into `dueflow worker reminders`)
STATE_STORE_APPS = {"api", "reminders"}
# a cron binding's name is the route daprd POSTs to, on the app that serves it
CRON_ROUTES = {SWEEP_BINDING: "reminders", RETENTION_BINDING: "audit"}
# what a pod would get from the Secret: valid stand-ins, so the settings can be checked
SECRET_STANDINS = {
    "DUEFLOW_DATABASE_URL": "postgresql://dueflow:pw@postgres:5432/dueflow",
    "DUEFLOW_TOKENS": "t" * 24 + "=alice",
    "DUEFLOW_INTERNAL_TOKEN": "i" * 24,
    "DUEFLOW_WEBHOOK_SECRET": "w" * 24,
}


def dueflow_deployments(rendered: Rendered) -> dict[str, Manifest]:
    return {role: d for role, d in rendered.deployments().items() if role not in INFRA}


def settings_of(deployment: Manifest) -> Settings:
    """The settings the role's process would read, secrets replaced by stand-ins."""
    env = {}
    for name, entry in env_of(deployment).items():
        env[name] = entry["value"] if "value" in entry else SECRET_STANDINS[name]
    return Settings.from_env(env)


@EVERY_VALUES_FILE
def test_there_is_a_deployment_for_the_api_and_every_worker_the_code_has(values_file: str) -> None:
    assert set(dueflow_deployments(render(values_file))) == {"api", *WORKER_NAMES}


@EVERY_VALUES_FILE
def test_every_app_id_the_code_calls_is_the_id_of_the_app_deployed(values_file: str) -> None:
    deployments = dueflow_deployments(render(values_file))
    called = [field for field in Settings.model_fields if field.endswith("_app_id")]

    assert called  # DUEFLOW_API_APP_ID, DUEFLOW_AUDIT_APP_ID, ...
    for deployment in deployments.values():
        settings = settings_of(deployment)
        for field in called:
            role = field.removesuffix("_app_id")
            assert getattr(settings, field) == app_id(deployments[role]), (field, deployment)


def test_the_default_app_ids_are_the_code_defaults() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    defaults = Settings.from_env({})

    assert values["api"]["appId"] == defaults.api_app_id
    assert values["workers"]["audit"]["appId"] == defaults.audit_app_id


@EVERY_VALUES_FILE
def test_every_component_is_scoped_to_apps_that_exist(values_file: str) -> None:
    rendered = render(values_file)
    apps = {app_id(d) for d in dueflow_deployments(rendered).values()}
    scoped = rendered.components() + rendered.of("Resiliency")

    assert all(obj.get("scopes") for obj in scoped)
    assert {obj["metadata"]["name"]: set(obj["scopes"]) - apps for obj in scoped} == {
        obj["metadata"]["name"]: set() for obj in scoped
    }


@EVERY_VALUES_FILE
def test_every_app_has_the_components_its_code_uses(values_file: str) -> None:
    rendered = render(values_file)
    deployments = dueflow_deployments(rendered)
    components = {c["metadata"]["name"]: c for c in rendered.components()}
    for role, deployment in deployments.items():
        settings, app = settings_of(deployment), app_id(deployment)
        pubsub = components[settings.dapr_pubsub]
        assert pubsub["spec"]["type"] == "pubsub.kafka" and app in pubsub["scopes"]
        store = components[settings.dapr_statestore]
        assert store["spec"]["type"] == "state.postgresql"
        assert (app in store["scopes"]) == (role in STATE_STORE_APPS)
    store = components[settings.dapr_statestore]
    assert store["spec"]["version"] == "v1"  # the state Query API
    assert {"name": "keyPrefix", "value": "none"} in store["spec"]["metadata"]


@EVERY_VALUES_FILE
def test_each_cron_binding_calls_a_route_of_the_one_app_in_its_scope(values_file: str) -> None:
    rendered = render(values_file)
    deployments = dueflow_deployments(rendered)
    bindings = rendered.components("bindings.cron")

    assert {b["metadata"]["name"]: b["scopes"] for b in bindings} == {
        route: [app_id(deployments[role])] for route, role in CRON_ROUTES.items()
    }


@EVERY_VALUES_FILE
def test_every_secret_a_component_reads_goes_through_a_secret_store_its_apps_load(
    values_file: str,
) -> None:
    rendered = render(values_file)
    stores = {c["metadata"]["name"]: c for c in rendered.components("secretstores.")}
    for component in rendered.components():
        refs = [item for item in component["spec"]["metadata"] if "secretKeyRef" in item]
        if not refs:
            continue
        store = stores[component["auth"]["secretStore"]]
        assert set(component["scopes"]) <= set(store["scopes"]), component["metadata"]["name"]


@EVERY_VALUES_FILE
def test_only_apps_whose_components_read_secrets_may_get_the_one_secret(values_file: str) -> None:
    rendered = render(values_file)
    [role] = rendered.of("Role")
    [binding] = rendered.of("RoleBinding")
    [store] = rendered.components("secretstores.kubernetes")
    by_account = {
        d["spec"]["template"]["spec"]["serviceAccountName"]: app_id(d)
        for d in dueflow_deployments(rendered).values()
    }
    secret = secret_name(rendered)

    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [secret], "verbs": ["get"]}
    ]
    assert {by_account[s["name"]] for s in binding["subjects"]} == set(store["scopes"])


def secret_name(rendered: Rendered) -> str:
    [name] = {
        entry["valueFrom"]["secretKeyRef"]["name"]
        for d in rendered.of("Deployment")
        for c in pod_containers(d)
        for entry in c.get("env", [])
        if "valueFrom" in entry
    }
    return name


@EVERY_VALUES_FILE
def test_every_setting_a_role_needs_is_set_and_valid(values_file: str) -> None:
    for role, deployment in dueflow_deployments(render(values_file)).items():
        names = set(env_of(deployment))
        unknown = {n for n in names if n.startswith(PREFIX)} - {
            PREFIX + field.upper() for field in Settings.model_fields
        }
        assert unknown == set(), role
        settings = settings_of(deployment)  # refuses what would stop the process at start-up
        assert settings.event_bus == "dapr" and not settings.embedded, role
        if role == "api":  # development tokens from the Secret, if it has them
            assert settings.token_users()
        if role in ("api", "audit", "recurrence"):  # service invocation, both sides
            assert settings.internal_token, role


def test_oauth_settings_reach_the_api_and_the_realtime_gateway_and_validate() -> None:
    rendered = render("values.yaml", OAUTH)
    settings = settings_of(dueflow_deployments(rendered)["api"])

    assert settings.oauth_issuer == "https://login.example.com/realms/team"
    assert settings.oauth_audience == "https://tasks.example.com/mcp"
    for role, deployment in dueflow_deployments(rendered).items():
        # the gateway trades bearer tokens for WebSocket tickets: it resolves them as the API does
        gateway = role in ("api", "realtime")
        assert (settings_of(deployment).oauth_issuer is not None) == gateway


@EVERY_VALUES_FILE
def test_secrets_reach_pods_only_by_reference(values_file: str) -> None:
    rendered = render(values_file)
    secret = secret_name(rendered)
    for obj in rendered.of("Deployment") + rendered.of("StatefulSet") + rendered.of("Job"):
        for entry in (e for c in pod_containers(obj) for e in c.get("env", [])):
            if re.search(r"TOKEN|SECRET|PASSWORD|DATABASE_URL", entry["name"]):
                assert entry["valueFrom"]["secretKeyRef"]["name"] == secret, entry


def test_no_secret_value_appears_outside_the_secret() -> None:
    values = {
        "databaseUrl": "postgresql://u:marker-db-password@db/dueflow",
        "daprConnectionString": "host=db password=marker-dapr-password",
        "tokens": "marker-token-0123456789=alice",
        "internalToken": "marker-internal-0123456789",
        "webhookSecret": "marker-webhook-0123456789",
        "kafkaPassword": "marker-kafka-password",
    }
    settings = ["secrets.existingSecret=", "secrets.create=true", "kafka.auth.type=password"]
    settings += ["kafka.auth.username=dueflow"]
    settings += [f"secrets.values.{key}={value}" for key, value in values.items()]
    rendered = render("values.yaml", *settings)
    [secret] = rendered.of("Secret")
    others = yaml.safe_dump_all([obj for obj in rendered.objects if obj is not secret])

    assert sorted(secret["stringData"].values()) == sorted(values.values())
    assert "marker" not in others
    assert render("values.yaml").of("Secret") == []  # production: the Secret is yours


@EVERY_VALUES_FILE
def test_the_database_is_migrated_before_any_pod_of_the_release_serves(values_file: str) -> None:
    rendered = render(values_file)
    [job] = rendered.of("Job")
    hooks = job["metadata"]["annotations"]["helm.sh/hook"].split(",")
    pod = job["spec"]["template"]

    assert container(job)["args"] == ["db", "upgrade"]
    assert pod["metadata"]["annotations"]["dapr.io/enabled"] == "false"  # or it never completes
    assert "pre-upgrade" in hooks
    if "pre-install" not in hooks:  # the development database comes with the release
        assert hooks == ["post-install", "pre-upgrade"]
    for deployment in dueflow_deployments(rendered).values():
        [wait] = deployment["spec"]["template"]["spec"]["initContainers"]
        assert wait["name"] == "wait-for-schema"


@EVERY_VALUES_FILE
def test_the_hook_resources_come_in_order(values_file: str) -> None:
    rendered = render(values_file)
    weights = {
        (obj["kind"], obj["metadata"]["name"]): int(
            obj["metadata"]["annotations"]["helm.sh/hook-weight"]
        )
        for obj in rendered.objects
        if "helm.sh/hook" in obj["metadata"].get("annotations", {})
    }
    job = next(w for (kind, _), w in weights.items() if kind == "Job")
    # what the Job needs exists before it: its service account, and the chart's Secret if any
    assert all(w < job for (kind, _), w in weights.items() if kind != "Job")


@EVERY_VALUES_FILE
def test_every_dueflow_pod_is_locked_down(values_file: str) -> None:
    rendered = render(values_file)
    pods = list(dueflow_deployments(rendered).values()) + rendered.of("Job")
    for obj in pods:
        spec = obj["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for each in pod_containers(obj):
            security = each["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            assert each["resources"]["requests"] and each["resources"]["limits"]
            assert {"name": "tmp", "mountPath": "/tmp"} in each["volumeMounts"]


@EVERY_VALUES_FILE
def test_the_sidecar_talks_to_the_port_the_process_listens_on(values_file: str) -> None:
    rendered = render(values_file)
    [configuration] = rendered.of("Configuration")
    for role, deployment in dueflow_deployments(rendered).items():
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        main = container(deployment)
        [port] = main["ports"]
        args = main["args"]
        listening = args[args.index("--port") + 1]

        assert annotations["dapr.io/app-port"] == listening == str(port["containerPort"])
        assert annotations["dapr.io/config"] == configuration["metadata"]["name"]
        assert args[:2] == (["serve", "--transport"] if role == "api" else ["worker", role])
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert main[probe]["httpGet"]["port"] == port["name"]


@EVERY_VALUES_FILE
def test_every_dapr_annotation_is_one_the_sidecar_injector_reads(values_file: str) -> None:
    known = {
        line
        for line in (DAPR_SCHEMAS / "injector-annotations.txt").read_text().splitlines()
        if line and not line.startswith("#")
    }
    for deployment in render(values_file).of("Deployment") + render(values_file).of("Job"):
        annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
        assert {a for a in annotations if a.startswith("dapr.io/")} <= known


@EVERY_VALUES_FILE
def test_scaling_objects_select_the_deployments(values_file: str) -> None:
    rendered = render(values_file)
    deployments = {d["metadata"]["name"]: d for d in rendered.of("Deployment")}
    for hpa in rendered.of("HorizontalPodAutoscaler"):
        target = deployments[hpa["spec"]["scaleTargetRef"]["name"]]
        assert "replicas" not in target["spec"]  # the HPA owns it
    for pdb in rendered.of("PodDisruptionBudget"):
        selected = [
            d
            for d in deployments.values()
            if pdb["spec"]["selector"]["matchLabels"].items()
            <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(selected) == 1

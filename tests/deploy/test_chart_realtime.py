"""The realtime gateway in the chart: every replica its own Kafka consumer, its Service and
Ingress, and the settings its process reads to resolve tokens and check origins."""

from __future__ import annotations

from typing import Any

from tests.deploy.chart import app_id, render
from tests.deploy.test_chart_contracts import EVERY_VALUES_FILE, dueflow_deployments, settings_of


def metadata(component: dict[str, Any]) -> dict[str, Any]:
    return {entry["name"]: entry.get("value") for entry in component["spec"]["metadata"]}


@EVERY_VALUES_FILE
def test_each_gateway_replica_consumes_every_message_on_its_own_bus(values_file: str) -> None:
    rendered = render(values_file)
    deployments = dueflow_deployments(rendered)
    gateway = deployments["realtime"]
    settings = settings_of(gateway)
    buses = {c["metadata"]["name"]: c for c in rendered.components("pubsub.")}
    own = buses[settings.dapr_pubsub]
    feed = buses[settings.realtime_feed_pubsub]

    assert metadata(own)["consumerID"] == "{podName}" and "consumerGroup" not in metadata(own)
    assert metadata(own)["initialOffset"] == "newest"
    assert own["scopes"] == [app_id(gateway)]
    # the feed: one fixed group every replica joins, durable from the oldest message, so a
    # change published while no replica ran is written when one starts
    group = metadata(feed)["consumerID"]
    assert (
        "{" not in group and group.startswith("dueflow") and "consumerGroup" not in metadata(feed)
    )
    assert metadata(feed)["initialOffset"] == "oldest"
    assert feed["scopes"] == [app_id(gateway)]
    for name, bus in buses.items():
        if name not in (settings.dapr_pubsub, settings.realtime_feed_pubsub):
            assert app_id(gateway) not in bus["scopes"]
            assert "consumerGroup" in metadata(bus)
    [resiliency] = rendered.of("Resiliency")
    targets = resiliency["spec"]["targets"]["components"]
    assert (
        targets[feed["metadata"]["name"]]["inbound"]["retry"]
        in resiliency["spec"]["policies"]["retries"]
    )
    # the other apps keep the shared bus, so their replicas still share the events
    for role, deployment in deployments.items():
        if role != "realtime":
            assert settings_of(deployment).dapr_pubsub != settings.dapr_pubsub, role


def test_the_feed_group_is_the_releases_unless_one_is_given() -> None:
    def group(*settings: str) -> str:
        rendered = render("values.yaml", *settings)
        gateway = dueflow_deployments(rendered)["realtime"]
        name = settings_of(gateway).realtime_feed_pubsub
        [feed] = [c for c in rendered.components("pubsub.") if c["metadata"]["name"] == name]
        found: str = metadata(feed)["consumerID"]
        return found

    assert group() == "dueflow-realtime-feed"
    assert group("workers.realtime.feedConsumerGroup=tasks-eu-feed") == "tasks-eu-feed"


def test_the_gateway_resolves_tokens_and_has_a_service_and_an_optional_sticky_ingress() -> None:
    rendered = render(
        "values.yaml",
        "workers.realtime.ingress.enabled=true",
        "workers.realtime.ingress.hosts[0].host=tasks.example.com",
        "workers.realtime.ingress.annotations.nginx\\.ingress\\.kubernetes\\.io/affinity=cookie",
        "config.allowedOrigins[0]=https://tasks.example.com",
    )
    gateway = dueflow_deployments(rendered)["realtime"]
    settings = settings_of(gateway)
    assert settings.token_users() and settings.allowed_origin_list() == [
        "https://tasks.example.com"
    ]
    assert container_args(gateway)[:2] == ["worker", "realtime"]

    service = rendered.named("Service", "dueflow-realtime")
    labels = gateway["spec"]["template"]["metadata"]["labels"]
    assert all(labels[key] == value for key, value in service["spec"]["selector"].items())
    ingress = rendered.named("Ingress", "dueflow-realtime")
    paths = {p["path"] for p in ingress["spec"]["rules"][0]["http"]["paths"]}
    assert paths == {"/realtime", "/board"}
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/affinity"] == "cookie"


def container_args(deployment: dict[str, Any]) -> list[str]:
    args: list[str] = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    return args

"""The webhook SSRF guard and the webhook settings: what is refused, and how it says so."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from dueflow.settings import Settings
from workers.address_guard import AddressGuard, TargetRefused

SECRET = "whsec-0123456789abcdef"

REFUSED = [
    ("http://127.0.0.1/hook", "loopback"),
    ("http://127.8.9.10:8080/hook", "loopback"),
    ("http://10.1.2.3/hook", "private"),
    ("http://172.16.0.5/hook", "private"),
    ("http://192.168.1.20/hook", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[::1]:8080/hook", "loopback"),
    ("http://[fc00::1]/hook", "private"),
    ("http://[fe80::1]/hook", "link-local"),
    ("http://[::ffff:127.0.0.1]/hook", "loopback"),
    ("http://0.0.0.0/hook", "unspecified"),
    ("http://224.0.0.1/hook", "multicast"),
    ("http://240.0.0.1/hook", "reserved"),
    ("http://localhost:9/hook", "loopback"),  # a name: refused for what it resolves to
]


@pytest.mark.parametrize(("url", "kind"), REFUSED)
async def test_the_guard_refuses_non_public_targets_naming_the_kind_and_the_fix(
    url: str, kind: str
) -> None:
    with pytest.raises(TargetRefused) as refused:
        await AddressGuard().check(url)

    assert f"a {kind} address" in str(refused.value)
    assert "DUEFLOW_WEBHOOK_ALLOW_PRIVATE=true" in str(refused.value)


@pytest.mark.parametrize("url", [u for u, _ in REFUSED])
async def test_allowing_private_targets_lets_each_of_them_through(url: str) -> None:
    target = await AddressGuard(allow_private=True).check(url)

    assert target.url.geturl() == url


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/x", "gopher://127.0.0.1/", "http:///nohost"]
)
@pytest.mark.parametrize("allow_private", [False, True])
async def test_only_http_and_https_urls_with_a_host_are_called_even_when_private_is_allowed(
    url: str, allow_private: bool
) -> None:
    with pytest.raises(TargetRefused):
        await AddressGuard(allow_private).check(url)


async def test_a_public_address_is_let_through_and_pinned() -> None:
    target = await AddressGuard().check("https://93.184.216.34:8443/hooks/a?x=1")

    assert (str(target.address), target.port, target.host) == (
        "93.184.216.34",
        8443,
        "93.184.216.34",
    )


def test_webhooks_without_a_secret_are_a_settings_error_naming_the_variable_and_the_fix() -> None:
    with pytest.raises(ValidationError) as error:
        Settings.from_env({"DUEFLOW_WEBHOOKS": "alice=https://hooks.example/a"})

    message = str(error.value)
    assert "DUEFLOW_WEBHOOK_SECRET is missing" in message
    assert "openssl rand -hex 32" in message


def test_a_short_webhook_secret_is_refused() -> None:
    with pytest.raises(ValidationError, match="shorter than 16 characters"):
        Settings.from_env(
            {"DUEFLOW_WEBHOOKS": "alice=https://hooks.example/a", "DUEFLOW_WEBHOOK_SECRET": "short"}
        )


@pytest.mark.parametrize(
    ("webhooks", "expected"),
    [
        ("alice", "'alice' is not user=URL"),
        ("=https://hooks.example/a", "is not user=URL"),
        ("alice=https://a.example,alice=https://b.example", "'alice' has two URLs"),
        ("alice=ftp://hooks.example/a", "must start with http:// or https://"),
        ("alice=https://10.0.0.8/hook", "points at 10.0.0.8, a private address"),
    ],
)
def test_a_malformed_webhook_map_is_a_settings_error_saying_what_to_write(
    webhooks: str, expected: str
) -> None:
    with pytest.raises(ValidationError) as error:
        Settings.from_env({"DUEFLOW_WEBHOOKS": webhooks, "DUEFLOW_WEBHOOK_SECRET": SECRET})

    assert "DUEFLOW_WEBHOOKS" in str(error.value)
    assert expected in str(error.value)


def test_a_well_formed_webhook_map_is_read_per_user() -> None:
    settings = Settings.from_env(
        {
            "DUEFLOW_WEBHOOKS": " alice=https://hooks.example/a , bob=http://10.0.0.8/b ",
            "DUEFLOW_WEBHOOK_SECRET": SECRET,
            "DUEFLOW_WEBHOOK_ALLOW_PRIVATE": "true",
        }
    )

    config = settings.notification_config(mcp=True)
    assert dict(config.webhooks) == {
        "alice": "https://hooks.example/a",
        "bob": "http://10.0.0.8/b",
    }
    assert config.channels_for("alice") == ("log", "webhook", "mcp")
    assert config.channels_for("carol") == ("log", "mcp")


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("0251.0376.0251.0376", "169.254.169.254"),  # octal
        ("0xa9fea9fe", "169.254.169.254"),  # hex
        ("2852039166", "169.254.169.254"),  # one number
        ("127.1", "127.0.0.1"),  # short form
    ],
)
def test_numeric_ipv4_spellings_are_read_as_the_address_they_reach(host: str, address: str) -> None:
    settings_error = f"points at {address}"
    with pytest.raises(ValidationError, match=settings_error):
        Settings.from_env(
            {"DUEFLOW_WEBHOOKS": f"alice=http://{host}/hook", "DUEFLOW_WEBHOOK_SECRET": SECRET}
        )


def test_a_webhook_port_out_of_range_is_refused_at_start_up() -> None:
    with pytest.raises(ValidationError, match="port that is not a number from 0 to 65535"):
        Settings.from_env(
            {
                "DUEFLOW_WEBHOOKS": "alice=https://example.com:99999/hook",
                "DUEFLOW_WEBHOOK_SECRET": SECRET,
            }
        )


@pytest.mark.parametrize("name", ["cafe", "deadbeef.example", "hooks.example"])
def test_host_names_that_merely_look_numeric_stay_names(name: str) -> None:
    settings = Settings.from_env(
        {"DUEFLOW_WEBHOOKS": f"alice=https://{name}/hook", "DUEFLOW_WEBHOOK_SECRET": SECRET}
    )

    assert settings.webhook_urls() == {"alice": f"https://{name}/hook"}

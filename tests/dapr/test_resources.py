"""The Dapr resources in dapr/ say only what Dapr reads: a field Dapr does not know is ignored
by daprd without a word, so a typo there silently changes behaviour."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

DAPR = Path(__file__).resolve().parents[2] / "dapr"
# the retry options of Dapr's resiliency spec (docs: operations/resiliency/policies)
RETRY_FIELDS = {"policy", "duration", "maxInterval", "maxRetries", "matching"}
# Dapr's exponential back-off: fixed first interval and multiplier
FIRST_INTERVAL, MULTIPLIER = 0.5, 1.5


def seconds(text: str) -> float:
    """A Dapr duration such as 200ms, 1500ms, 5s or 1m."""
    for suffix, scale in (("ms", 0.001), ("s", 1.0), ("m", 60.0)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * scale
    raise ValueError(f"not a duration: {text!r}")


def retry_policies() -> dict[str, dict[str, Any]]:
    resiliency = yaml.safe_load((DAPR / "components" / "resiliency.yaml").read_text())
    policies: dict[str, dict[str, Any]] = resiliency["spec"]["policies"]["retries"]
    return policies


def test_every_retry_policy_uses_only_fields_dapr_reads() -> None:
    strays = {name: sorted(set(policy) - RETRY_FIELDS) for name, policy in retry_policies().items()}
    assert {name: fields for name, fields in strays.items() if fields} == {}


def test_publish_and_delivery_retries_give_up_after_about_ten_seconds() -> None:
    policy = retry_policies()["pubsubRetry"]
    assert policy["policy"] == "exponential"
    cap = seconds(policy["maxInterval"])
    waits = [min(FIRST_INTERVAL * MULTIPLIER**n, cap) for n in range(policy["maxRetries"])]

    assert 8 <= sum(waits) <= 12

"""Traces, when an operator asks for them: with DUEFLOW_OTLP_ENDPOINT set, a long-running process
(`serve`, `relay`, `worker NAME`) records its spans with the OpenTelemetry SDK and exports them
in batches over OTLP/HTTP to `<endpoint>/v1/traces`, as service `dueflow-<role>` (or
OTEL_SERVICE_NAME). Unset, nothing here is imported and every span is the API's no-op. The spans
themselves — the MCP call (fastmcp's), the commit, each publish, each handling — and the
trace context in events are domain/adapters/tracing.py's. The SDK's own OTEL_* variables
(sampler, batch delays, exporter headers and timeout) apply as the SDK documents them."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

log = logging.getLogger("dueflow.telemetry")


def start_tracing(endpoint: str | None, role: str) -> Callable[[], None]:
    """Export this process's spans to `endpoint`, if set; answer what flushes and stops it."""
    if endpoint is None:
        return lambda: None
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    service = os.environ.get("OTEL_SERVICE_NAME") or f"dueflow-{role}"
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(f"{endpoint}/v1/traces")))
    trace.set_tracer_provider(provider)
    log.info("exporting traces as %s to %s/v1/traces", service, endpoint)
    return provider.shutdown

"""Trace context along the event path, and the ids a log line carries.

One trace runs from an MCP tool call through its transaction, the relay's publish of each event
and every worker's handling of it: the W3C `traceparent` of the span that recorded an event
travels in its envelope (`metadata.traceparent`) and, in Dapr mode, as the CloudEvent's
`traceparent` (docs/events.md). Only the OpenTelemetry API is used here: without an SDK
configured (dueflow/telemetry.py: off unless an OTLP endpoint is set) every span is a no-op and
no `traceparent` is written.

`correlated()` keeps the correlation and causation ids of the work in hand in a context
variable, so that every log line written meanwhile names them (dueflow/logs.py)."""

from __future__ import annotations

import contextvars
import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from domain.ports import OutboundMessage

TRACEPARENT = "traceparent"
tracer = trace.get_tracer("dueflow")

# (correlation_id, causation_id) of the work in hand, for the log lines written meanwhile
_CORRELATION: contextvars.ContextVar[tuple[str | None, str | None]] = contextvars.ContextVar(
    "dueflow_correlation", default=(None, None)
)


def recording() -> bool:
    """Whether spans are recorded at all: an SDK is configured (dueflow/telemetry.py). Without
    one a span is still work (the API's no-op objects and context switches), per event and
    consumer on the relay's path."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def current_traceparent() -> str | None:
    """The W3C traceparent of the span in hand; None when no span is being recorded."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get(TRACEPARENT)


@contextmanager
def span(
    name: str,
    *,
    parent: str | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Iterator[Span]:
    """A span named `name`, the child of `parent` (a traceparent) when given, else of the span
    in hand."""
    context = propagate.extract({TRACEPARENT: parent}) if parent else None
    with tracer.start_as_current_span(name, context=context, kind=kind, attributes=attributes) as s:
        yield s


@contextmanager
def publishing(messages: Sequence[OutboundMessage]) -> Iterator[list[OutboundMessage]]:
    """A producer span per message whose event was recorded in a trace, each the child of the
    span that recorded it and lasting the publish; yields the messages carrying their publish
    span's traceparent (the CloudEvent's, in Dapr mode). Untraced messages pass as they are."""
    spans: list[Span] = []
    sent: list[OutboundMessage] = []
    for message in messages:
        parent = traceparent_of(message.data)
        if parent is None:
            sent.append(message)
            continue
        producer = tracer.start_span(
            f"publish {message.topic}",
            context=propagate.extract({TRACEPARENT: parent}),
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.destination.name": message.topic,
                "messaging.message.id": message.event_id,
                "dueflow.event_type": message.event_type,
            },
        )
        spans.append(producer)
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(producer))
        sent.append(dataclasses.replace(message, traceparent=carrier.get(TRACEPARENT)))
    try:
        yield sent
    except Exception as exc:
        for producer in spans:
            producer.record_exception(exc)
            producer.set_status(Status(StatusCode.ERROR, str(exc)[:200]))
        raise
    finally:
        for producer in spans:
            producer.end()


def traceparent_of(envelope: Mapping[str, Any]) -> str | None:
    """The traceparent an event envelope carries, if any."""
    metadata = envelope.get("metadata")
    value = metadata.get(TRACEPARENT) if isinstance(metadata, Mapping) else None
    return value if isinstance(value, str) else None


def with_traceparent(envelope: dict[str, Any]) -> dict[str, Any]:
    """`envelope` with the traceparent of the span in hand in its metadata (unchanged when no
    span is being recorded)."""
    parent = current_traceparent()
    if parent is not None:
        envelope["metadata"] = {**envelope["metadata"], TRACEPARENT: parent}
    return envelope


@contextmanager
def correlated(correlation_id: str | None, causation_id: str | None = None) -> Iterator[None]:
    """Log lines written inside name these correlation and causation ids."""
    token = _CORRELATION.set((correlation_id, causation_id))
    try:
        yield
    finally:
        _CORRELATION.reset(token)


def set_correlation(correlation_id: str | None) -> None:
    """Name `correlation_id` in the log lines of the rest of this task (a tool call's)."""
    _CORRELATION.set((correlation_id, None))


def log_ids() -> dict[str, str]:
    """The ids the log line being written names: trace and span of the span in hand, and the
    correlation and causation ids of the work in hand (each only when there is one)."""
    ids: dict[str, str] = {}
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        ids["trace_id"] = format(context.trace_id, "032x")
        ids["span_id"] = format(context.span_id, "016x")
    correlation_id, causation_id = _CORRELATION.get()
    if correlation_id:
        ids["correlation_id"] = correlation_id
    if causation_id:
        ids["causation_id"] = causation_id
    return ids

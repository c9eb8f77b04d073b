"""How every `dueflow` process logs: one format on stderr, readable text by default or one JSON
object per line with DUEFLOW_LOG_FORMAT=json, each line naming the trace, span, correlation and
causation ids of the work in hand (domain/adapters/tracing.py). stdout stays the MCP stdio
channel's alone.

The libraries' records go the same way: fastmcp's own handler (rich, colours, wrapped lines) is
removed so its records reach ours, and two kinds of its records are dropped because Dueflow
answers them itself — the warning for every call with invalid arguments and the note for every
refused call (mcp_server/refusals.py words the refusal, counts it in
dueflow_mcp_tool_calls_total, and logs an unexpected failure with its traceback under a
reference). Alembic's plugin set-up notes are kept to DEBUG."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import sys
from typing import Any

from domain.adapters.tracing import log_ids

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FORMATS = ("text", "json")
# the secrets Dueflow hands out, by prefix: personal tokens, calendar feeds, realtime tickets,
# board sessions and sign-in links (domain/access.py, domain/calendar_feeds.py, workers/grants.py)
_SECRET = re.compile(r"\b(df[pctsl]_)[A-Za-z0-9_-]{16,}")
MASKED = "(masked)"
# records of fastmcp's tool-call path that a Dueflow refusal already stands for
_FASTMCP_REFUSAL_NOTES = ("Invalid arguments for tool", "Error calling tool")
# attributes every LogRecord has: anything else was passed in `extra` and is logged as a field
# (uvicorn's `color_message` repeats the message with terminal colours)
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "ids",
    "color_message",
}


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message`, then the ids of the work in hand as `key=value`."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = getattr(record, "ids", {})
        if not ids:
            return line
        head, newline, rest = line.partition("\n")
        return head + " " + " ".join(f"{k}={v}" for k, v in ids.items()) + newline + rest


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, the ids of the work in
    hand, any `extra` fields, and the traceback as `exception`."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "ids", {}),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES:
                document[key] = value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str, ensure_ascii=False)


def _secrets_masked(record: logging.LogRecord) -> bool:
    """A record whose text holds a secret Dueflow handed out keeps only its prefix: a request
    line's path or query may carry one (a calendar feed's URL, a realtime ticket, a sign-in
    link), and uvicorn logs request lines."""
    message = record.getMessage()
    if _SECRET.search(message):
        record.msg, record.args = _SECRET.sub(r"\1" + MASKED, message), None
    return True


def _with_ids(record: logging.LogRecord) -> bool:
    record.ids = log_ids()
    return True


def _not_a_refusal_note(record: logging.LogRecord) -> bool:
    return not (
        record.name.startswith("fastmcp")
        and isinstance(record.msg, str)
        and record.msg.startswith(_FASTMCP_REFUSAL_NOTES)
    )


def configure(level: str, log_format: str = "text") -> None:
    """Send every record of this process at `level` and above to stderr in `log_format`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(_secrets_masked)
    handler.addFilter(_with_ids)
    handler.addFilter(_not_a_refusal_note)
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # fastmcp installs its handler when first imported, unless told not to; if it was imported
    # already, its handler goes
    os.environ.setdefault("FASTMCP_LOG_ENABLED", "false")
    fastmcp = logging.getLogger("fastmcp")
    for old in fastmcp.handlers[:]:
        fastmcp.removeHandler(old)
    fastmcp.propagate = True
    fastmcp.setLevel(logging.NOTSET)
    if root.level > logging.DEBUG:
        logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

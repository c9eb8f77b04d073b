"""The one refusal style, `<field>: <problem>. Fix: <what to send>.`, for arguments a tool's input
schema refused (pydantic's errors, raised before the tool runs) and for failures nobody foresaw."""

from __future__ import annotations

import datetime as dt
import difflib
import json
import logging
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

log = logging.getLogger("dueflow.mcp")

SHOWN = 40  # characters of a sent value a refusal repeats; a value can be megabytes
DESCRIBED = 100  # an argument's description longer than this is left to the input schema
SENTENCES = 3  # refused arguments named in one answer; the rest are counted
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,49}$")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_PROBLEM = (
    "contains a lone surrogate (half of a UTF-16 pair). Fix: send valid Unicode text:"
    " a character beyond U+FFFF as one code point."
)
_JSON_KINDS = {
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    list: "array",
    dict: "object",
    type(None): "null",
}
_KIND_NAMES = {
    "string": "a string",
    "boolean": "a boolean",
    "integer": "a number",
    "number": "a number",
    "array": "a list",
    "object": "an object",
    "null": "null",
}
_MISSING = {"missing", "missing_argument", "missing_keyword_only_argument"}
_UNKNOWN = {"unexpected_keyword_argument", "extra_forbidden"}
_NOT_ONE_OF = {"literal_error", "enum"}
_TOO_SMALL = {"greater_than_equal": "the minimum", "greater_than": "the bound"}
_TOO_LARGE = {"less_than_equal": "the maximum", "less_than": "the bound"}


def argument_refusal(
    error: ValidationError, tool: str, schema: Mapping[str, Any], item: str = ""
) -> str:
    """What was wrong with the arguments of a call to `tool`, whose input schema is `schema`;
    with `item` (`tasks[3]`), what was wrong with that item of a batch, whose schema it is."""
    refused: dict[str, list[ErrorDetails]] = {}
    unknown: list[str] = []
    for detail in error.errors(include_url=False, include_context=True):
        argument = str(detail["loc"][0]) if detail["loc"] else "arguments"
        if detail["type"] in _UNKNOWN:
            unknown.append(argument)
        else:
            refused.setdefault(argument, []).append(detail)
    sentences = [
        _sentence(tool, argument, _closest(details), schema, f"{item}." if item else "")
        for argument, details in refused.items()
    ]
    known = list(schema.get("properties", {}))
    if unknown and item:
        sentences.append(
            f"{item}: has no field {_shown(unknown[0])}. Fix: leave it out"
            f"{_did_you_mean(unknown[0], known)}; an item takes {', '.join(known)}."
        )
    elif unknown:
        sentences.append(_unknown(tool, unknown, known))
    shown = sentences[:SENTENCES]
    if len(sentences) > SENTENCES:
        shown.append(f"{len(sentences) - SENTENCES} more argument(s) refused too.")
    return " ".join(shown)


def internal_error(tool: str, exc: BaseException) -> str:
    """Log `exc` with its traceback under a fresh reference; answer the masked refusal."""
    reference = uuid.uuid4().hex[:12]
    log.error("internal error %s in tool %s", reference, tool, exc_info=exc)
    now = dt.datetime.now(dt.UTC)
    return (
        f"internal error: {tool} failed unexpectedly; the details are in the server's log"
        f" (reference {reference}, {now:%Y-%m-%dT%H:%M:%SZ}). Fix: retry; if it persists,"
        " report it with that reference and time."
    )


def lone_surrogate(arguments: Mapping[str, Any]) -> str | None:
    """The refusal of arguments holding a lone surrogate (half of a UTF-16 pair), or None. The
    JSON transports refuse one while parsing; an in-process client passes it on, and neither
    the strict argument check (which serializes the arguments) nor any database can hold it."""
    for name, value in arguments.items():
        if _LONE_SURROGATE.search(name):
            return f"arguments: an argument's name {_SURROGATE_PROBLEM}"
        found, index = _holds_surrogate(value)
        if found:
            field = name + (f"[{index}]" if index is not None else "")
            return f"{field}: {_SURROGATE_PROBLEM}"
    return None


def _holds_surrogate(value: Any) -> tuple[bool, int | None]:
    """Whether `value` holds a lone surrogate at any depth, and in which top-level list item."""
    items = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
    for index, item in items:
        pending = [item]  # walked without recursion: an in-process value can nest deeper
        while pending:
            current = pending.pop()
            if isinstance(current, str):
                if _LONE_SURROGATE.search(current):
                    return True, index
            elif isinstance(current, list):
                pending.extend(current)
            elif isinstance(current, dict):
                pending.extend(current)
                pending.extend(current.values())
    return False, None


def unknown_tool(name: str, tools: Sequence[str]) -> str:
    """The refusal of a call to a tool this server does not have."""
    return (
        f"name: there is no tool {_shown(name)}. Fix: call one of {', '.join(sorted(tools))}"
        f"{_did_you_mean(name, tools)}."
    )


def _unknown(tool: str, names: list[str], arguments: list[str]) -> str:
    first, others = names[0], [_field(name) for name in names[1:]]
    nor = ""
    if others:
        more = f" and {len(others) - 2} more" if len(others) > 2 else ""
        nor = f" (nor {', '.join(others[:2])}{more})"
    return (
        f"{_field(first)}: {tool} has no such argument{nor}. Fix: leave it out"
        f"{_did_you_mean(first, arguments)}; {tool} takes {', '.join(arguments) or 'none'}."
    )


def _closest(details: list[ErrorDetails]) -> ErrorDetails:
    # A union argument fails once per branch; the error that reached furthest into the value
    # (a list item) says the most, and among equals a wrong value says more than a wrong type.
    return max(
        details,
        key=lambda d: (
            sum(isinstance(part, int) for part in d["loc"]),
            d["type"] in _NOT_ONE_OF or d["type"] in _TOO_SMALL or d["type"] in _TOO_LARGE,
        ),
    )


def _sentence(
    tool: str, argument: str, detail: ErrorDetails, schema: Mapping[str, Any], prefix: str = ""
) -> str:
    properties: Mapping[str, Any] = schema.get("properties", {})
    kind = detail["type"]
    # pydantic names union branches in loc (`list[str]`, `literal['a','b']`): only the indices
    # of list items belong in the name a client sees
    indices = [part for part in detail["loc"][1:] if isinstance(part, int)]
    field = prefix + argument + "".join(f"[{index}]" for index in indices)
    expected = _items(properties.get(argument, {}), len(indices))
    if kind in _MISSING:
        return (
            f"{field}: missing; {tool} needs it."
            f" Fix: send {field} as {_expects(expected)}{_described_by(expected)}."
        )
    sent = detail["input"]
    fix = _fix(expected, sent)
    if _kind(sent) not in _kinds(expected):
        return f"{field}: got {_described(sent)}. Fix: {fix}."
    context = detail.get("ctx", {})
    if kind in _NOT_ONE_OF:
        return f"{field}: {_shown(sent)} is not one of its values. Fix: {fix}."
    if kind in _TOO_SMALL:
        bound = context.get("ge", context.get("gt"))
        return f"{field}: {_shown(sent)} is below {_TOO_SMALL[kind]} of {bound}. Fix: {fix}."
    if kind in _TOO_LARGE:
        bound = context.get("le", context.get("lt"))
        return f"{field}: {_shown(sent)} is above {_TOO_LARGE[kind]} of {bound}. Fix: {fix}."
    if kind == "int_from_float":
        return f"{field}: {_shown(sent)} is not a whole number. Fix: {fix}."
    message = detail["msg"]
    return f"{field}: {message[:1].lower()}{message[1:]}. Fix: {fix}."


def _items(schema: Mapping[str, Any], depth: int) -> Mapping[str, Any]:
    """The schema of a value `depth` lists deep inside a value of `schema`."""
    for _ in range(depth):
        lists = [branch for branch in _branches(schema) if branch.get("type") == "array"]
        schema = lists[0].get("items", {}) if lists else {}
    return schema


def _branches(schema: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    branches: list[Mapping[str, Any]] = schema.get("anyOf") or schema.get("oneOf") or [schema]
    return branches


def _kinds(schema: Mapping[str, Any]) -> set[str]:
    kinds: set[str] = set()
    for branch in _branches(schema):
        kind = branch.get("type")
        kinds.update(kind if isinstance(kind, list) else [kind] if kind else [])
    if "number" in kinds:
        kinds.add("integer")
    return kinds or set(_KIND_NAMES)  # a schema that names no type accepts any kind


def _expects(schema: Mapping[str, Any]) -> str:
    """What `schema` accepts, as a phrase: "a whole number from 1 to 200", "one of a, b"."""
    branches = [branch for branch in _branches(schema) if branch.get("type") != "null"]
    phrases: list[str] = []
    for branch in branches:
        if branch.get("type") == "array" and any(
            _same(branch.get("items", {}), other) for other in branches
        ):
            phrases.append("a list of them")
        else:
            phrases.append(_expects_one(branch))
    return " or ".join(phrases)


def _expects_one(schema: Mapping[str, Any]) -> str:
    if "enum" in schema:
        return "one of " + ", ".join(str(value) for value in schema["enum"])
    kind = schema.get("type")
    if kind == "integer":
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and high is not None:
            return f"a whole number from {low} to {high}"
        if low is not None:
            return f"a whole number of at least {low}"
        return "a whole number"
    if kind == "boolean":
        return "true or false"
    if kind == "array":
        items = schema.get("items", {})
        if "enum" in items:
            return "a list of values from " + ", ".join(str(value) for value in items["enum"])
        return "a list of " + _KIND_NAMES.get(items.get("type", ""), "a value").split(" ")[1] + "s"
    return _KIND_NAMES.get(str(kind), "a value as the tool's input schema describes")


def _same(one: Mapping[str, Any], other: Mapping[str, Any]) -> bool:
    described = ("description", "title")
    return {k: v for k, v in one.items() if k not in described} == {
        k: v for k, v in other.items() if k not in described
    }


def _fix(schema: Mapping[str, Any], sent: Any) -> str:
    expects = _expects(schema)
    verb = "use" if expects.startswith("one of") else "send"
    kinds = _kinds(schema) - {"null"}
    items = [b.get("items", {}).get("type") for b in _branches(schema) if b.get("type") == "array"]
    if (
        isinstance(sent, str)
        and len(sent) <= SHOWN
        and kinds == {"array"}
        and "object" not in items
    ):
        return f"{verb} {expects}, e.g. [{json.dumps(sent)}]"
    return f"{verb} {expects}{_described_by(schema)}"


def _described_by(schema: Mapping[str, Any]) -> str:
    # "a string" alone says little; the argument's own description, when short, says which one
    description = schema.get("description")
    if _expects(schema) != "a string" or not isinstance(description, str):
        return ""
    return f" ({description})" if len(description) <= DESCRIBED else ""


def _kind(value: Any) -> str:
    return _JSON_KINDS.get(type(value), "object")


def _described(value: Any) -> str:
    kind = _kind(value)
    if kind == "array":
        return f"a list of {len(value)} item(s)"
    if kind == "object":
        return "an object"
    if kind == "null":
        return "null"
    return f"{_KIND_NAMES[kind]} ({_shown(value)})"


def _shown(value: Any) -> str:
    """`value` as a refusal repeats it: at most SHOWN characters of its text."""
    text = repr(value) if isinstance(value, str) else json.dumps(value, default=repr)
    return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"


def _field(name: str) -> str:
    """An argument name a client made up, fit to begin a refusal."""
    return name if _NAME.match(name) else _shown(name)


def _did_you_mean(name: str, names: Sequence[str]) -> str:
    close = difflib.get_close_matches(name[:100], names, n=1)
    return f" (did you mean {close[0]}?)" if close else ""

"""The rule every text a tool receives meets, whichever field it fills."""

from __future__ import annotations

import re

from domain.errors import ValidationFailed

# half of a UTF-16 pair on its own: no UTF-8 text (nor either database) can hold one
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def check_text(value: str, field_name: str) -> str:
    """`value`, unless it holds a NUL character (PostgreSQL cannot store one in text, SQLite can,
    and Python's ISO 8601 parser ignores one at the end) or a lone surrogate: refused everywhere."""
    if "\x00" in value:
        raise ValidationFailed(
            field_name, "contains a NUL character (\\u0000)", "remove the NUL character"
        )
    if _LONE_SURROGATE.search(value):
        raise ValidationFailed(
            field_name,
            "contains a lone surrogate (half of a UTF-16 pair)",
            "send valid Unicode text: a character beyond U+FFFF as one code point",
        )
    return value

"""The rule every text a tool receives meets, whichever field it fills."""

from __future__ import annotations

from domain.errors import ValidationFailed


def check_text(value: str, field_name: str) -> str:
    """`value`, unless it holds a NUL character: PostgreSQL cannot store one in text (SQLite
    can) and Python's ISO 8601 parser ignores one at the end, so it is refused everywhere."""
    if "\x00" in value:
        raise ValidationFailed(
            field_name, "contains a NUL character (\\u0000)", "remove the NUL character"
        )
    return value

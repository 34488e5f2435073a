"""The patient forms' fields, validated: each bad value gets a reason the page can show.

Nothing here trusts the browser: lengths are capped before anything else, numbers are digits
only, and the free-text reason is reduced to printable characters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Literal

from plugins.writers.sql_notes import REASON_LIMIT, clean

ACTIONS = ("confirm", "cancel", "callback")
Action = Literal["confirm", "cancel", "callback"]
FIELD_LIMIT = 4096


@dataclass(frozen=True)
class Invalid:
    """A field that cannot be used: ``field`` names it, ``problem`` is a message id."""

    field: str
    problem: str


def birth_date(day: str, month: str, year: str, today: date) -> date | Invalid:
    """Day, month and year as typed (digits, leading zeros allowed) into a date in the past."""
    parts = {"day": day.strip(), "month": month.strip(), "year": year.strip()}
    for name, value in parts.items():
        if not value:
            return Invalid(name, "missing")
        if not value.isascii() or not value.isdigit() or len(value) > 4:
            return Invalid(name, "not_a_number")
    if len(parts["year"]) != 4:
        return Invalid("year", "year_digits")
    try:
        born = date(int(parts["year"]), int(parts["month"]), int(parts["day"]))
    except ValueError:
        return Invalid("day", "no_such_date")
    if born > today or born.year < 1900:
        return Invalid("year", "out_of_range")
    return born


def action(value: str) -> Action | Invalid:
    if value == "confirm":
        return "confirm"
    if value == "cancel":
        return "cancel"
    if value == "callback":
        return "callback"
    return Invalid("action", "unknown_action")


def reason(value: str) -> str | Invalid:
    """The optional cancellation reason, cleaned; too long is an error, not a silent cut."""
    if len(value) > REASON_LIMIT:
        return Invalid("reason", "too_long")
    return clean(value)


def field(form: Mapping[str, object], name: str) -> str:
    """One text field of a posted form ('' when absent), capped in length."""
    value = form.get(name, "")
    return value[:FIELD_LIMIT] if isinstance(value, str) else ""

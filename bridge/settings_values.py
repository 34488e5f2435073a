"""Value types for settings: time zones, regions, phone numbers, emails, durations.

Each is an ``Annotated`` type whose validator raises ``ValueError`` with the expectation in
words; ``bridge.settings_errors`` turns that into the one-line message a clinic's IT sees.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict


def _check_timezone(value: str | None) -> str | None:
    """An IANA zone name; empty means none set (the host's zone is used)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError("expected an IANA time zone name such as Europe/Rome") from exc
    return value


def _blank_is_none(value: Any) -> Any:
    """An empty or blank string means "not set" (``BRIDGE_HOST__URL=`` unsets it)."""
    return None if isinstance(value, str) and not value.strip() else value


def _check_region(value: str) -> str:
    value = value.upper()
    if value not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError("expected a two-letter country code such as US or IT")
    return value


def _check_phone(value: str | None) -> str | None:
    """Accept an international number (``+39 06 ...``); return it in E.164."""
    if value is None or not str(value).strip():
        return None
    try:
        parsed = phonenumbers.parse(str(value), None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(
            "expected a phone number in international form, e.g. +15555550100"
        ) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError("expected a valid phone number in international form")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _check_email(value: str | None) -> str | None:
    if value is None or not str(value).strip():
        return None
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", str(value).strip()):
        raise ValueError("expected an email address")
    return str(value).strip()


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|h|d)?\s*$", re.IGNORECASE)
_UNIT_MINUTES = {"m": 1, "min": 1, "h": 60, "d": 1440}
_DURATION_EXPECTED = "expected a duration such as 90m, 2h or 2d"


def parse_duration(value: Any) -> timedelta:
    """``90m``, ``2h``, ``1.5h``, ``2d`` -> timedelta; a bare number (``2`` or ``"2"``) means hours.

    A negative duration is rejected: a negative lead time would remind after the appointment.
    """
    if isinstance(value, timedelta):
        minutes = value / timedelta(minutes=1)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        minutes = value * 60
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(_DURATION_EXPECTED)
        minutes = float(match.group(1)) * _UNIT_MINUTES[(match.group(2) or "h").lower()]
    if not math.isfinite(minutes):
        raise ValueError(_DURATION_EXPECTED)
    if minutes < 0:
        raise ValueError(f"{_DURATION_EXPECTED}, not negative")
    try:
        return timedelta(minutes=minutes)
    except OverflowError as exc:
        raise ValueError(f"{_DURATION_EXPECTED}, shorter than a million days") from exc


TimeZoneName = Annotated[str | None, AfterValidator(_check_timezone)]
Region = Annotated[str, AfterValidator(_check_region)]
PhoneNumber = Annotated[str | None, AfterValidator(_check_phone)]
Email = Annotated[str | None, AfterValidator(_check_email)]
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
OptionalText = Annotated[str | None, BeforeValidator(_blank_is_none)]

RESEND_INTERVALS: dict[str, timedelta] = {
    "immediate": timedelta(0),
    "3h": timedelta(hours=3),
    "6h": timedelta(hours=6),
    "12h": timedelta(hours=12),
    "24h": timedelta(hours=24),
}


class Section(BaseModel):
    """A settings section: unknown keys are errors, so a typo never passes silently.

    Feature modules define their own sections on this base (it lives here, not in
    ``bridge.settings``, so they can without an import cycle)."""

    model_config = ConfigDict(extra="forbid")

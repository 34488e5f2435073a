"""Host patient rows to ``Patient`` objects, and the value conversions every SQL row needs.

Facts behind the conversions: OpenEMR keeps dates as DATE and times as naive local TIME, which
pymysql returns as ``timedelta``; old rows hold ``'0000-00-00'`` dates, which pymysql returns as
strings; ``pc_pid`` is a varchar; phone and email fields are free text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any

from bridge.errors import BadHostRow
from bridge.mapping.sql import PatientTable
from bridge.model import Consent, Patient, ReminderType
from bridge.phone import normalize

ROW_KEY = "key"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def patient_from_row(
    row: Mapping[str, Any], table: PatientTable, languages: dict[str, str], region: str
) -> Patient:
    """One patient row to a ``Patient``: phones in E.164, consent per channel, ISO language."""
    key = as_text(row[ROW_KEY])
    bad: list[str] = []
    phones: dict[str, str | None] = {}
    for role in ("mobile", "home_phone", "work_phone"):
        raw = as_text(row.get(role))
        phones[role] = normalize(raw, region) if raw else None
        if raw and phones[role] is None:
            bad.append(role)
    email = as_text(row.get("email"))
    if email and not _EMAIL.match(email):
        bad.append("email")
        email = ""
    consent = {}
    for channel, rule in table.consent.items():
        value = as_text(row.get(f"consent_{channel.value}")).upper()
        if value in (v.upper() for v in rule.given):
            consent[channel] = Consent.YES
        elif value in (v.upper() for v in rule.refused):
            consent[channel] = Consent.NO
        else:
            consent[channel] = Consent.UNKNOWN
    preference = None
    if table.preference is not None:
        chosen = table.preference.values.get(as_text(row.get("preference")))
        preference = ReminderType(chosen) if chosen else None
    return Patient(
        key=key,
        first_name=as_text(row.get("first_name")),
        last_name=as_text(row.get("last_name")),
        mrn=as_text(row.get("mrn")),
        birth_date=optional_date(row.get("birth_date")),
        sex=as_text(row.get("sex")),
        language=_language(as_text(row.get("language")), languages),
        mobile=phones["mobile"],
        home_phone=phones["home_phone"],
        work_phone=phones["work_phone"],
        email=email or None,
        bad_contacts=tuple(bad),
        deceased=optional_datetime(row.get("deceased_date")) is not None,
        consent=consent,
        preference=preference,
        street=as_text(row.get("street")),
        city=as_text(row.get("city")),
        postal_code=as_text(row.get("postal_code")),
    )


def _language(value: str, languages: dict[str, str]) -> str:
    """The ISO 639-1 code for a host language value (``spanish`` -> ``es``), else ''.

    ``languages`` is keyed by the host's option ids in lower case: OpenEMR spells them
    inconsistently (``English``, ``french``) and MySQL compares them case-blind."""
    lowered = value.lower()
    if lowered in languages:
        return languages[lowered]
    return lowered if re.fullmatch(r"[a-z]{2}([-_][a-z]{2})?", lowered) else ""


# --- value conversions: each raises BadHostRow naming the row and the role ----------------------


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value).strip()


def as_int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def as_flag(value: Any) -> bool:
    return as_int(value, 0) != 0


def is_zero_date(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("0000-00-00")


def parse_date(value: Any, ref: str, role: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if value is None or is_zero_date(value):
        raise BadHostRow(ref, f"{role}: no date")
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError as exc:
        raise BadHostRow(ref, f"{role}: {str(value)[:20]!r} is not a date") from exc


def optional_date(value: Any) -> date | None:
    if value is None or is_zero_date(value) or value == "":
        return None
    try:
        return parse_date(value, "", "")
    except BadHostRow:
        return None


def end_date(value: Any) -> date | str | None:
    """A series' last date; ``'0000-00-00'`` is passed on (the recurrence rules know it)."""
    if value is None or isinstance(value, date):
        return value
    return str(value)


def parse_time(value: Any, ref: str, role: str) -> time:
    parsed = optional_time(value)
    if parsed is None:
        raise BadHostRow(ref, f"{role}: {str(value)[:20]!r} is not a time of day")
    return parsed


def optional_time(value: Any) -> time | None:
    if value is None:
        return None
    if isinstance(value, time):
        return value
    if isinstance(value, timedelta):
        seconds = int(value.total_seconds())
        if not 0 <= seconds < 86400:
            return None
        return time(seconds // 3600, seconds % 3600 // 60, seconds % 60)
    try:
        return time.fromisoformat(str(value).strip())
    except ValueError:
        return None


def parse_datetime(value: Any, ref: str, role: str) -> datetime:
    parsed = optional_datetime(value)
    if parsed is None:
        raise BadHostRow(ref, f"{role}: {str(value)[:20]!r} is not a date and time")
    return parsed


def optional_datetime(value: Any) -> datetime | None:
    if value is None or value == "" or is_zero_date(value):
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, date):
        return datetime.combine(value, time(0))
    try:
        return datetime.fromisoformat(str(value).strip())
    except ValueError:
        return None

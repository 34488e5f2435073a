"""Host rows to canonical ``Appointment`` and ``Patient`` objects.

Facts behind the conversions: OpenEMR keeps dates as DATE and times as naive local TIME, which
pymysql returns as ``timedelta``; old rows hold ``'0000-00-00'`` dates, which pymysql returns as
strings; ``pc_pid`` is a varchar; phone and email fields are free text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bridge.clock import local_to_utc
from bridge.errors import BadHostRow
from bridge.mapping.sql import PatientTable, SqlMapping
from bridge.model import Appointment, Consent, HostStatus, Patient, ReminderType
from bridge.phone import normalize
from bridge.plugin import Reference, RejectSink
from bridge.recurrence import occurrences, parse_rule

ROW_KEY = "key"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def appointments_from_rows(
    rows: list[dict[str, Any]],
    mapping: SqlMapping,
    reference: Reference,
    timezone: ZoneInfo,
    window: tuple[date, date],
    reject: RejectSink,
) -> Iterator[Appointment]:
    """Every occurrence the rows produce inside ``window``; a visit booked with several providers
    (rows sharing a group value) comes out once, keyed by its smallest host key."""
    groups: dict[tuple[str, date], list[Appointment]] = {}
    grouped = mapping.appointments.group_visits
    for row in rows:
        try:
            expanded = list(_occurrences(row, mapping, reference, timezone, window))
        except BadHostRow as exc:
            reject(exc)
            continue
        group = as_text(row.get("group")) if grouped else ""
        for appt in expanded:
            if group in ("", "0"):
                yield appt
            else:
                groups.setdefault((group, appt.occurrence), []).append(appt)
    for members in groups.values():
        yield _merge(members)


def _merge(members: list[Appointment]) -> Appointment:
    """One visit from its per-provider rows: the smallest key speaks for the group."""
    members.sort(key=lambda a: (_sort_key(a.key), a.key))
    head = members[0]
    if len(members) == 1:
        return head
    providers = tuple(dict.fromkeys(p for a in members for p in a.provider_keys))
    return replace(
        head,
        provider_keys=providers,
        host_keys=tuple(a.key for a in members),
    )


def _sort_key(key: str) -> int:
    return int(key) if key.isdigit() else 0


def _occurrences(
    row: Mapping[str, Any],
    mapping: SqlMapping,
    reference: Reference,
    timezone: ZoneInfo,
    window: tuple[date, date],
) -> Iterator[Appointment]:
    m = mapping.appointments
    key = as_text(row[ROW_KEY])
    ref = f"{m.table}.{m.key}={key}"
    service = as_text(row.get("service")) or None
    known_service = reference.services.get(service) if service else None
    if known_service is not None and not known_service.for_patients:
        return
    all_day = as_flag(row.get("all_day"))
    if "start" in row:
        start_local = _datetime(row.get("start"), ref, "start")
        first_day, start_time = start_local.date(), start_local.time()
    else:
        first_day = _date(row.get("date"), ref, "date")
        start_time = time(0) if all_day else _time(row.get("start_time"), ref, "start_time")

    recurrence_type = as_int(row.get("recurrence_type"), 0)
    if m.recurrence == "openemr" and recurrence_type > 0:
        try:
            rule = parse_rule(recurrence_type, row.get("recurrence_spec"))
            days = occurrences(rule, first_day, _end_date(row.get("end_date")), *window)
        except ValueError as exc:
            raise BadHostRow(ref, f"recurrence: {exc}") from exc
        recurring = True
    else:
        days = [first_day] if window[0] <= first_day <= window[1] else []
        recurring = False
    if not days:
        return

    code = as_text(row.get("status"))
    status = reference.statuses.get(code) or _unlisted(mapping, code)
    duration = _duration(row, mapping)
    end_time = _optional_time(row.get("end_time"))
    end_local = _optional_datetime(row.get("end")) if "end" in row else None
    provider = as_text(row.get("provider"))
    for day in days:
        start = local_to_utc(day, start_time, timezone)
        if all_day:
            end: datetime | None = local_to_utc(day + timedelta(days=1), time(0), timezone)
        elif end_local is not None and not recurring:
            end = local_to_utc(end_local.date(), end_local.time(), timezone)
        elif end_time is not None and end_time > start_time:
            end = local_to_utc(day, end_time, timezone)
        elif duration:
            end = start + duration
        else:
            end = None
        yield Appointment(
            key=key,
            occurrence=day,
            patient_key=as_text(row["patient"]),
            start=start,
            end=end,
            status=code,
            status_class=status.status_class,
            eligible=status.eligible,
            all_day=all_day,
            provider_keys=(provider,) if provider not in ("", "0") else (),
            facility_key=as_text(row.get("facility")) or None,
            service_key=service,
            room=as_text(row.get("room")),
            notes=as_text(row.get("notes")),
            recurring=recurring,
            host_keys=(key,),
        )


def _unlisted(mapping: SqlMapping, code: str) -> HostStatus:
    return mapping.statuses.host_status(code)


def _duration(row: Mapping[str, Any], mapping: SqlMapping) -> timedelta | None:
    amount = as_int(row.get("duration"), 0)
    if amount <= 0:
        return None
    unit = mapping.appointments.duration_unit
    return timedelta(seconds=amount) if unit == "seconds" else timedelta(minutes=amount)


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
        birth_date=_optional_date(row.get("birth_date")),
        sex=as_text(row.get("sex")),
        language=_language(as_text(row.get("language")), languages),
        mobile=phones["mobile"],
        home_phone=phones["home_phone"],
        work_phone=phones["work_phone"],
        email=email or None,
        bad_contacts=tuple(bad),
        deceased=_optional_datetime(row.get("deceased_date")) is not None,
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


def _is_zero_date(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("0000-00-00")


def _date(value: Any, ref: str, role: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if value is None or _is_zero_date(value):
        raise BadHostRow(ref, f"{role}: no date")
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError as exc:
        raise BadHostRow(ref, f"{role}: {str(value)[:20]!r} is not a date") from exc


def _optional_date(value: Any) -> date | None:
    if value is None or _is_zero_date(value) or value == "":
        return None
    try:
        return _date(value, "", "")
    except BadHostRow:
        return None


def _end_date(value: Any) -> date | str | None:
    """A series' last date; ``'0000-00-00'`` is passed on (the recurrence rules know it)."""
    if value is None or isinstance(value, date):
        return value
    return str(value)


def _time(value: Any, ref: str, role: str) -> time:
    parsed = _optional_time(value)
    if parsed is None:
        raise BadHostRow(ref, f"{role}: {str(value)[:20]!r} is not a time of day")
    return parsed


def _optional_time(value: Any) -> time | None:
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


def _datetime(value: Any, ref: str, role: str) -> datetime:
    parsed = _optional_datetime(value)
    if parsed is None:
        raise BadHostRow(ref, f"{role}: {str(value)[:20]!r} is not a date and time")
    return parsed


def _optional_datetime(value: Any) -> datetime | None:
    if value is None or value == "" or _is_zero_date(value):
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, date):
        return datetime.combine(value, time(0))
    try:
        return datetime.fromisoformat(str(value).strip())
    except ValueError:
        return None

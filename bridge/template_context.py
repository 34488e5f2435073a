"""What a message template sees: plain dicts of strings built from the model, never model objects.

Every value is a ``str`` (empty when the host has nothing), except ``testing`` (a ``bool``), so
``{% if appointment.room %}`` works everywhere and nothing with methods reaches the sandbox.
Dates and times are shown in the clinic's time zone and formatted with Babel for a *formatting
locale*: the template's language, refined by the patient's or the clinic's territory when they
name one (``en-GB``), else by the clinic's region when Babel knows that pair (``en`` + ``US`` ->
``en_US``, 12-hour clock; ``en`` + ``IT`` -> ``en_IT``, 24-hour clock).

Per-element limits (``TemplateLimits``) cut the patient's names, the provider's name, the
appointment's ``datetime`` and the room before rendering. The cut is plain: no "…", because that
character is not GSM-7 and would turn a whole SMS into UCS-2 (70 characters per segment instead of
160). Limits count characters (code points) and a cut never separates a letter from its accents
or an emoji from its modifiers.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
from babel import Locale, UnknownLocaleError, localedata
from babel.dates import format_date, format_time

from bridge.model import Appointment, Facility, Patient, Provider, Service, StatusClass
from bridge.settings import ClinicSettings, TemplateLimits

# The placeholders a template may use, for the README and for ``Templates.check``.
# fmt: off
CONTEXT_VARIABLES: dict[str, tuple[str, ...]] = {
    "clinic": ("name", "phone", "website", "email"),
    "patient": ("first_name", "last_name", "name", "mobile", "address"),
    "provider": ("name", "short_name", "phone", "address"),
    "appointment": (
        "date", "date_short", "date_long", "weekday", "month", "day", "year", "time", "start",
        "end", "datetime", "service", "price", "duration", "notes", "preparation", "room",
        "office",
    ),
    "location": ("name", "town", "phone", "address", "notes"),
    "link": (),
    "testing": (),
    # Messages that are not reminders fill these through ``MessageContext.extra``.
    "booking": ("map_url", "parking", "photo_url", "offer", "pending", "reference", "reason"),
    "recall": ("reason", "last_visit", "due"),
    "invite": ("expires", "new_patient", "reason"),
}
EXTRA_VARIABLES = ("booking", "recall", "invite")
# fmt: on


@dataclass(frozen=True)
class MessageContext:
    """Everything one message is rendered from. ``appointment.start`` is an aware UTC instant.

    ``appointment`` is None for a message about a patient rather than a visit (a recall, an
    invitation): its placeholders are then empty. ``extra`` holds the values of the
    ``EXTRA_VARIABLES`` groups (``{"recall": {"reason": ...}}``); a field not given is empty."""

    appointment: Appointment | None
    patient: Patient
    provider: Provider | None
    facility: Facility | None
    service: Service | None
    clinic: ClinicSettings
    timezone: ZoneInfo
    link: str | None = None
    testing: bool = False
    extra: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


# --- languages -------------------------------------------------------------------------------


def _fold(text: str) -> str:
    """Lower case without accents, for matching language names ("Español" == "espanol")."""
    decomposed = unicodedata.normalize("NFKD", text.strip().casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@lru_cache(maxsize=1)
def _english_names() -> dict[str, str]:
    names: dict[str, str] = {}
    for code, name in Locale("en").languages.items():
        names.setdefault(_fold(name), code)
    return names


@lru_cache(maxsize=256)
def _native_name(code: str) -> str:
    try:
        locale = Locale.parse(code)
    except (ValueError, UnknownLocaleError):
        return ""
    return _fold(locale.get_display_name(locale) or "")


def parse_language(value: str | None, natives: Iterable[str] = ()) -> Locale | None:
    """A host's language value as a Babel locale, or None when it names none.

    Accepts tags (``it``, ``en-GB``, ``pt_BR``, ``ita``), English names as OpenEMR stores them
    (``English``, ``spanish``) and the native names of the locales in ``natives`` (``Italiano``).
    Remembered: every message asks several times, and Babel reads its data files for each.
    """
    return _parse_language((value or "").strip(), tuple(sorted(natives)))


@lru_cache(maxsize=1024)
def _parse_language(text: str, natives: tuple[str, ...]) -> Locale | None:
    if not text:
        return None
    parts = re.split(r"[-_]", text)
    if all(part.isalpha() for part in parts):
        tag = "_".join(
            [parts[0].lower()]
            + [p.title() if len(p) == 4 else p.upper() if len(p) == 2 else p for p in parts[1:]]
        )
        try:
            return Locale.parse(tag)
        except (ValueError, UnknownLocaleError):
            pass
    folded = _fold(text)
    code = _english_names().get(folded)
    if code is None:
        code = next((c for c in natives if _native_name(c) and _native_name(c) == folded), None)
    if code is None:
        return None
    try:
        return Locale.parse(code)
    except (ValueError, UnknownLocaleError):
        return None


def locale_candidates(locale: Locale) -> list[str]:
    """Folder names to try for ``locale``, most specific first: ``zh_Hant_TW`` ... ``zh``."""
    names = [str(locale)]
    if locale.territory:
        names.append(f"{locale.language}_{locale.territory}")
    if locale.script:
        names.append(f"{locale.language}_{locale.script}")
    names.append(locale.language)
    return list(dict.fromkeys(names))


def format_locale(template_locale: str, patient: Patient, clinic: ClinicSettings) -> Locale:
    """The Babel locale dates and times are formatted in, for a template in ``template_locale``.

    The template's language decides; a territory comes from the patient's language, else the
    clinic's language, else the clinic's region when Babel has that pair. An unknown folder name
    formats as ``en``.
    """
    return _format_locale(template_locale, patient.language, clinic.language, clinic.region)


@lru_cache(maxsize=1024)
def _format_locale(
    template_locale: str, patient_language: str | None, clinic_language: str | None, region: str
) -> Locale:
    base = parse_language(template_locale)
    if base is None:
        base = Locale("en")
    if base.territory:
        return base
    for value in (patient_language, clinic_language):
        found = parse_language(value)
        if found is not None and found.language == base.language and found.territory:
            return found
    regional = f"{base.language}_{region}"
    if localedata.exists(regional):
        return Locale.parse(regional)
    return base


# --- text helpers ----------------------------------------------------------------------------

_ZWJ = "\u200d"
_JOINING = frozenset("\u200d\ufe0e\ufe0f\u20e3")


def _is_regional_indicator(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def _is_attached(ch: str) -> bool:
    """True for a character that belongs to the one before it (accents, emoji modifiers)."""
    code = ord(ch)
    return (
        unicodedata.category(ch) in ("Mn", "Mc", "Me")
        or ch in _JOINING
        or 0x1F3FB <= code <= 0x1F3FF
        or 0xE0020 <= code <= 0xE007F
    )


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters without breaking a character cluster.

    No ellipsis is added (see the module docstring); trailing spaces and separators are dropped.
    """
    if len(text) <= limit:
        return text
    cut = limit
    while cut > 0:
        if _is_attached(text[cut]) or text[cut - 1] == _ZWJ:
            cut -= 1
            continue
        if _is_regional_indicator(text[cut]) and _is_regional_indicator(text[cut - 1]):
            run = 0
            while cut - run > 0 and _is_regional_indicator(text[cut - run - 1]):
                run += 1
            if run % 2:
                cut -= 1
                continue
        break
    return text[:cut].rstrip(" ,;:-/")


def one_line(value: str | None) -> str:
    """Collapse every run of whitespace (newlines, tabs, no-break spaces) into one space."""
    return " ".join((value or "").split())


def paragraph(value: str | None) -> str:
    """Normalise line ends and no-break spaces in a free text, keeping its lines."""
    text = (value or "").replace("\r\n", "\n").replace("\r", "\n")
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return "\n".join(lines).strip()


@lru_cache(maxsize=4096)
def display_phone(value: str | None, region: str) -> str:
    """A phone number as patients read it: national form at home, international otherwise.

    Cached: the same few numbers (the clinic's, the locations') appear in every message, and
    parsing them costs more than the rest of a render."""
    raw = one_line(value)
    if not raw:
        return ""
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return raw
    if not phonenumbers.is_valid_number(parsed):
        return raw
    home = phonenumbers.region_code_for_number(parsed) == region
    style = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if home
        else (phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    )
    return phonenumbers.format_number(parsed, style)


# --- dates -----------------------------------------------------------------------------------


def _widen(pattern: str) -> str:
    """Turn an abbreviated CLDR pattern into a full one (``EEE d MMM`` -> ``EEEE d MMMM``)."""
    pieces = re.split(r"('[^']*')", pattern)
    for i, piece in enumerate(pieces):
        if not piece.startswith("'"):
            piece = re.sub(r"(?<!E)E{1,3}(?!E)", "EEEE", piece)
            pieces[i] = re.sub(r"(?<![ML])([ML])\1\1(?![ML])", r"\1\1\1\1", piece)
    return "".join(pieces)


def _skeleton(locale: Locale, *names: str) -> str:
    for name in names:
        if name in locale.datetime_skeletons:
            return str(locale.datetime_skeletons[name])
    raise LookupError(f"locale {locale} has none of the date skeletons {names}")


def long_date(day: date, locale: Locale) -> str:
    """Weekday, day and month in full, no year: ``lunedì 3 giugno``, ``Monday, June 3`` (en_US)."""
    pattern = _widen(_skeleton(locale, "MMMMEd", "MMMEd"))
    return one_line(format_date(day, pattern, locale=locale))


def format_dates(
    start: datetime, end: datetime | None, all_day: bool, locale: Locale
) -> dict[str, str]:
    """The date and time placeholders for a clinic-local ``start`` and ``end``."""
    numeric = one_line(format_date(start, _skeleton(locale, "yMd"), locale=locale))
    short = one_line(format_date(start, _skeleton(locale, "Md"), locale=locale))
    time = "" if all_day else one_line(format_time(start, "short", locale=locale))
    end_time = "" if all_day or end is None else one_line(format_time(end, "short", locale=locale))
    return {
        "date": numeric,
        "date_short": short,
        "date_long": long_date(start.date(), locale),
        "weekday": one_line(format_date(start, "cccc", locale=locale)),
        "month": one_line(format_date(start, "LLLL", locale=locale)),
        "day": str(start.day),
        "year": str(start.year),
        "time": time,
        "start": time,
        "end": end_time,
        "datetime": f"{short} {time}".strip(),
    }


def _local(instant: datetime, tz: ZoneInfo) -> datetime:
    """An instant in clinic time; a naive value is taken to be UTC, as the model stores it."""
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return instant.astimezone(tz)


# --- the context -----------------------------------------------------------------------------


def _address(street: str, postal_code: str, city: str) -> str:
    town = " ".join(p for p in (one_line(postal_code), one_line(city)) if p)
    return ", ".join(p for p in (one_line(street), town) if p)


def build_context(ctx: MessageContext, limits: TemplateLimits, locale: Locale) -> dict[str, Any]:
    """The variables a template renders with (see ``CONTEXT_VARIABLES``), limits applied."""
    clinic, patient, appt = ctx.clinic, ctx.patient, ctx.appointment
    provider, facility, service = ctx.provider, ctx.facility, ctx.service
    region = clinic.region
    duration = ""
    if appt is None:
        dates = dict.fromkeys(CONTEXT_VARIABLES["appointment"], "")
        room = ""
    else:
        start = _local(appt.start, ctx.timezone)
        end = _local(appt.end, ctx.timezone) if appt.end is not None else None
        if end is not None and end > start and not appt.all_day:
            duration = str(int((end - start).total_seconds() // 60))
        dates = format_dates(start, end, appt.all_day, locale)
        dates["datetime"] = truncate(dates["datetime"], limits.datetime)
        room = truncate(one_line(appt.room), limits.office)
    if not duration and service is not None and service.duration_minutes > 0:
        duration = str(service.duration_minutes)
    location_address = facility.address if facility is not None else ""
    provider_name = one_line(provider.display_name) if provider is not None else ""
    short_name = (
        one_line(" ".join(p for p in (provider.title, provider.last_name) if p))
        if provider is not None
        else ""
    )
    return {
        "clinic": {
            "name": one_line(clinic.name),
            "phone": display_phone(clinic.phone, region),
            "website": one_line(clinic.website),
            "email": one_line(clinic.email),
        },
        "patient": {
            "first_name": truncate(one_line(patient.first_name), limits.name),
            "last_name": truncate(one_line(patient.last_name), limits.name),
            "name": truncate(one_line(patient.full_name), limits.name),
            "mobile": display_phone(patient.mobile, region),
            "address": _address(patient.street, patient.postal_code, patient.city),
        },
        "provider": {
            "name": truncate(provider_name, limits.doctor),
            "short_name": truncate(short_name or provider_name, limits.doctor),
            "phone": display_phone(provider.phone, region) if provider is not None else "",
            # The model keeps no provider address: the provider receives at the facility.
            "address": one_line(location_address),
        },
        "appointment": {
            **dates,
            "service": one_line(service.name) if service is not None else "",
            # The model has no price yet; kept so templates written for it render (empty).
            "price": "",
            "duration": duration,
            "notes": paragraph(appt.notes) if appt is not None else "",
            "preparation": paragraph(service.preparation) if service is not None else "",
            "room": room,
            "office": room,
        },
        "location": {
            "name": one_line(facility.name) if facility is not None else "",
            "town": one_line(facility.city) if facility is not None else "",
            "phone": display_phone(facility.phone, region) if facility is not None else "",
            "address": one_line(location_address),
            "notes": paragraph(facility.notes) if facility is not None else "",
        },
        "link": one_line(ctx.link),
        "testing": bool(ctx.testing),
        **{
            group: {
                name: paragraph(str(ctx.extra.get(group, {}).get(name, "")))
                for name in CONTEXT_VARIABLES[group]
            }
            for group in EXTRA_VARIABLES
        },
    }


def sample_context(clinic: ClinicSettings, language: str, timezone: ZoneInfo) -> MessageContext:
    """A synthetic message (fictional patient and 555-01xx numbers), for previews and checks."""
    start = datetime(2024, 6, 3, 7, 30, tzinfo=UTC)
    appointment = Appointment(
        key="sample",
        occurrence=start.date(),
        patient_key="sample",
        start=start,
        end=start.replace(minute=50),
        status="-",
        status_class=StatusClass.SCHEDULED,
        eligible=True,
        provider_keys=("sample",),
        facility_key="sample",
        service_key="sample",
        room="12",
        notes="Sample note.",
    )
    patient = Patient(
        key="sample",
        first_name="Test",
        last_name="Patient",
        language=language,
        mobile="+12025550100",
        street="1 Sample Street",
        city="Springfield",
        postal_code="00000",
    )
    provider = Provider(
        key="sample", first_name="Sample", last_name="Provider", title="Dr.", phone="+12025550101"
    )
    facility = Facility(
        key="sample",
        name="Main Office",
        phone="+12025550102",
        street="2 Sample Avenue",
        city="Springfield",
        notes="Sample notes.",
    )
    service = Service(
        key="sample", name="Check-up", duration_minutes=20, preparation="Sample preparation."
    )
    return MessageContext(
        appointment=appointment,
        patient=patient,
        provider=provider,
        facility=facility,
        service=service,
        clinic=clinic,
        timezone=timezone,
        link="https://example.invalid/c/sample",
        extra={
            "booking": {
                "map_url": "https://example.invalid/map",
                "parking": "Sample parking.",
                "photo_url": "https://example.invalid/photo.jpg",
                "offer": "Sample offer.",
                "pending": "yes",
                "reference": "B1",
                "reason": "Check-up",
            },
            "recall": {"reason": "Check-up", "last_visit": "3/6/2024", "due": "3/12/2024"},
            "invite": {"expires": "17/6/2024", "new_patient": "yes", "reason": "Check-up"},
        },
    )

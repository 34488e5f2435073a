"""What the booking pages show, as plain values for the templates: slots grouped by day, a
slot's details, a booking's result. Names and places in full, dates in the page's language.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time

from bridge.booking.availability import Slot
from bridge.booking.reasons import Reason
from bridge.plugin import Reference

WEEK = 7


def locale_of(language: str, region: str) -> Locale:
    """The page's formatting locale (``it`` + ``IT`` -> ``it_IT``; ``en`` + ``US`` -> ``en_US``;
    a pair Babel does not know, such as ``it`` + ``US``, -> ``it``)."""
    try:
        return Locale.parse(f"{language}_{region}")
    except (ValueError, LookupError, UnknownLocaleError):
        return Locale.parse(language)


@dataclass(frozen=True)
class DaySlots:
    label: str
    slots: list[dict[str, str]]


def by_day(slots: Iterable[Slot], reference: Reference, locale: Locale) -> list[DaySlots]:
    """Slots grouped by day, each with its time, provider and place (when there are several)."""
    found = list(slots)
    places = {s.facility_key for s in found}
    days: dict[date, list[dict[str, str]]] = {}
    for slot in found:
        provider = reference.providers.get(slot.provider_key)
        place = reference.facilities.get(slot.facility_key or "")
        days.setdefault(slot.day, []).append(
            {
                "key": slot.key,
                "time": format_time(slot.start, "short", locale=locale),
                "provider": provider.display_name if provider is not None else "",
                "place": place.name if place is not None and len(places) > 1 else "",
            }
        )
    return [
        DaySlots(format_date(day, "full", locale=locale), items)
        for day, items in sorted(days.items())
    ]


def details(
    slot: Slot, reason: Reason, reference: Reference, language: str, locale: Locale
) -> dict[str, Any]:
    """When, with whom, what for and where, for the confirm and result pages."""
    provider = reference.providers.get(slot.provider_key)
    place = reference.facilities.get(slot.facility_key or "")
    return {
        "when": format_date(slot.day, "full", locale=locale),
        "time": format_time(slot.start, "short", locale=locale),
        "end": format_time(slot.end, "short", locale=locale),
        "provider": provider.display_name if provider is not None else "",
        "reason": reason.label(language),
        "minutes": reason.minutes,
        "place": place.name if place is not None else "",
        "address": place.address if place is not None else "",
    }


def week(start: date, today: date, last: date) -> dict[str, Any]:
    """The days a slots page shows and the links to the weeks around it (a start outside the
    booking horizon shows its first or last week)."""
    first = max(min(start, last - timedelta(days=WEEK - 1)), today)
    end = min(first + timedelta(days=WEEK - 1), last)
    return {
        "first": first,
        "last": end,
        "earlier": (first - timedelta(days=WEEK)).isoformat() if first > today else "",
        "later": (end + timedelta(days=1)).isoformat() if end < last else "",
    }


def result_details(
    booking: Any,
    reason: Reason | None,
    reference: Reference,
    language: str,
    locale: Locale,
    zone: Any,
) -> dict[str, Any]:
    """A stored booking as its result page shows it."""
    start: datetime = booking["start_at"].astimezone(zone)
    end: datetime = booking["end_at"].astimezone(zone)
    provider = reference.providers.get(booking["provider_key"])
    place = reference.facilities.get(booking["facility_key"] or "")
    return {
        "when": format_date(start.date(), "full", locale=locale),
        "time": format_time(start.time(), "short", locale=locale),
        "end": format_time(end.time(), "short", locale=locale),
        "provider": provider.display_name if provider is not None else "",
        "reason": reason.label(language) if reason is not None else "",
        "place": place.name if place is not None else "",
        "address": place.address if place is not None else "",
        "reference": booking["reference"],
    }

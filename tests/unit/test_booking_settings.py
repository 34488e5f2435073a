"""The ``booking`` and ``recall`` settings sections and calendar intervals (``6 months``)."""

from __future__ import annotations

from datetime import date, time
from typing import Any

import pytest
from pydantic import ValidationError

from bridge.booking.interval import Interval
from bridge.booking.settings import BookingSettings, RecallSettings
from bridge.model import Channel

# --- intervals ----------------------------------------------------------------------------------

PARSED = [
    ("6 months", Interval(months=6), "6 months"),
    ("1 month", Interval(months=1), "1 month"),
    ("6m", Interval(months=6), "6 months"),
    ("1 year", Interval(months=12), "1 year"),
    ("2y", Interval(months=24), "2 years"),
    ("18 months", Interval(months=18), "18 months"),
    ("24 months", Interval(months=24), "2 years"),
    ("90 days", Interval(days=90), "90 days"),
    ("1 day", Interval(days=1), "1 day"),
    ("2 weeks", Interval(days=14), "14 days"),
    ("1w", Interval(days=7), "7 days"),
    ("  3 MONTHS ", Interval(months=3), "3 months"),
]


@pytest.mark.parametrize(("text", "interval", "shown"), PARSED, ids=[p[0] for p in PARSED])
def test_intervals_parse_and_print(text: str, interval: Interval, shown: str) -> None:
    parsed = Interval.parse(text)
    assert parsed == interval
    assert str(parsed) == shown
    assert Interval.parse(str(parsed)) == parsed
    assert hash(parsed) == hash(interval)


@pytest.mark.parametrize(
    "text", ["", "six months", "6", "0 days", "-1 month", "6 fortnights", "1.5y"]
)
def test_intervals_refuse_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="expected an interval"):
        Interval.parse(text)


def test_an_interval_is_months_or_days_not_both() -> None:
    with pytest.raises(ValueError):
        Interval(months=1, days=1)
    with pytest.raises(ValueError):
        Interval(days=-1)


CALENDAR = [
    # interval, day, after, before
    ("6 months", date(2026, 8, 31), date(2027, 2, 28), date(2026, 2, 28)),
    ("6 months", date(2027, 8, 31), date(2028, 2, 29), date(2027, 2, 28)),
    ("1 month", date(2026, 1, 31), date(2026, 2, 28), date(2025, 12, 31)),
    ("1 month", date(2026, 3, 31), date(2026, 4, 30), date(2026, 2, 28)),
    ("1 year", date(2024, 2, 29), date(2025, 2, 28), date(2023, 2, 28)),
    ("12 months", date(2026, 12, 15), date(2027, 12, 15), date(2025, 12, 15)),
    ("13 months", date(2026, 12, 15), date(2028, 1, 15), date(2025, 11, 15)),
    ("90 days", date(2026, 1, 1), date(2026, 4, 1), date(2025, 10, 3)),
    ("2 weeks", date(2026, 12, 25), date(2027, 1, 8), date(2026, 12, 11)),
]


@pytest.mark.parametrize(("text", "day", "after", "before"), CALENDAR)
def test_intervals_count_calendar_months_to_the_months_last_day(
    text: str, day: date, after: date, before: date
) -> None:
    interval = Interval.parse(text)
    assert interval.after(day) == after
    assert interval.before(day) == before


# --- booking ------------------------------------------------------------------------------------


def booking(**values: Any) -> BookingSettings:
    return BookingSettings.model_validate(values)


def test_booking_is_off_by_default_and_new_patients_wait_for_approval() -> None:
    settings = BookingSettings()
    assert settings.enabled is False
    assert settings.approval == "new_patients"
    assert settings.reasons == [] and settings.blocks == []
    assert settings.confirmation_channels == [Channel.SMS, Channel.EMAIL]
    assert (settings.days_ahead, settings.min_notice_hours, settings.slot_minutes) == (60, 2, None)


def test_a_full_booking_section() -> None:
    settings = booking(
        enabled=True,
        approval="all",
        reasons=[
            {"key": "checkup", "name": {"en": "Check-up", "it": "Controllo"}, "service": "5"},
            {
                "key": "first",
                "name": "First visit",
                "service": "10",
                "minutes": 40,
                "providers": ["1"],
                "locations": ["2"],
                "flows": ["new"],
            },
        ],
        blocks=[
            {
                "provider": "1",
                "location": "2",
                "days": ["Monday", "wed"],
                "start": "09:00",
                "end": "12:30",
                "reasons": ["first"],
                "from_date": "2026-04-01",
            },
        ],
        confirmation_channels=["email", "email"],
        map_url="https://maps.example.test/clinic",
        provider_photos={"1": "https://clinic.example.test/ada.jpg"},
    )
    assert [r.key for r in settings.reasons] == ["checkup", "first"]
    assert settings.reason("first") is not None and settings.reason("first").minutes == 40
    assert settings.reason("nope") is None
    only = settings.blocks[0]
    assert (only.days, only.start, only.end, only.from_date) == (
        ["mon", "wed"],
        time(9),
        time(12, 30),
        date(2026, 4, 1),
    )
    assert only.covers(date(2026, 4, 1)) and not only.covers(date(2026, 3, 30))
    assert settings.confirmation_channels == [Channel.EMAIL]


REFUSED = [
    ({"reasons": [{"key": "A b", "name": "x", "service": "5"}]}, "lower-case letters"),
    (
        {
            "reasons": [
                {"key": "a", "name": "x", "service": "5"},
                {"key": "a", "name": "y", "service": "6"},
            ]
        },
        "key 'a' is used twice",
    ),
    (
        {
            "blocks": [
                {
                    "provider": "1",
                    "location": "1",
                    "days": ["mon"],
                    "start": "09:00",
                    "end": "10:00",
                    "reasons": ["ghost"],
                }
            ]
        },
        "reason 'ghost' is not in reasons",
    ),
    ({"confirmation_channels": ["sms", "voice"]}, "sms and email only"),
    (
        {"reasons": [{"key": "a", "name": "x", "service": "5", "minutes": 3}]},
        "greater than or equal to 5",
    ),
    ({"reasons": [{"key": "a", "name": "x", "service": "5", "flows": ["walk-in"]}]}, "flows"),
    ({"approval": "some"}, "approval"),
    ({"slot_minutes": 2}, "slot_minutes"),
    ({"surprise": 1}, "surprise"),
]


@pytest.mark.parametrize(("values", "message"), REFUSED, ids=[m for _, m in REFUSED])
def test_booking_settings_refuse_mistakes(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        booking(**values)


# --- recall -------------------------------------------------------------------------------------


def test_recall_intervals_per_service_with_a_default() -> None:
    settings = RecallSettings.model_validate(
        {"services": ["5", "9"], "intervals": {"9": "1 year"}, "default_interval": "6m"}
    )
    assert settings.interval_for("9") == Interval(months=12)
    assert settings.interval_for("5") == Interval(months=6)
    assert settings.interval_for(None) == Interval(months=6)
    assert settings.lookback == Interval(months=36)
    dumped = settings.model_dump(mode="json")
    assert dumped["intervals"] == {"9": "1 year"}
    assert dumped["default_interval"] == "6 months"


def test_recall_settings_refuse_voice_and_bad_intervals() -> None:
    with pytest.raises(ValidationError, match="sms and email only"):
        RecallSettings.model_validate({"channels": ["voice"]})
    with pytest.raises(ValidationError, match="expected an interval"):
        RecallSettings.model_validate({"intervals": {"5": "soon"}})

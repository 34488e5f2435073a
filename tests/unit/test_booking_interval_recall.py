"""Recall intervals (calendar months, not 30-day blocks) and the recall settings built on them."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from bridge.booking.interval import Interval
from bridge.booking.recall import RecallReport
from bridge.booking.settings import RecallSettings


@pytest.mark.parametrize(
    ("text", "months", "days"),
    [
        ("6 months", 6, 0),
        ("6m", 6, 0),
        ("1 year", 12, 0),
        ("2Y", 24, 0),
        ("90 days", 0, 90),
        ("2 weeks", 0, 14),
        (" 1 month ", 1, 0),
    ],
)
def test_parse(text: str, months: int, days: int) -> None:
    found = Interval.parse(text)
    assert (found.months, found.days) == (months, days)


@pytest.mark.parametrize("text", ["", "six months", "0 months", "6", "6 fortnights", "-1 m"])
def test_parse_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="expected an interval"):
        Interval.parse(text)


@pytest.mark.parametrize(
    ("start", "interval", "after"),
    [
        (date(2025, 9, 10), "6 months", date(2026, 3, 10)),
        (date(2025, 8, 31), "6 months", date(2026, 2, 28)),  # the month's last day
        (date(2023, 8, 31), "6 months", date(2024, 2, 29)),  # a leap year
        (date(2025, 12, 15), "3 months", date(2026, 3, 15)),  # across the year
        (date(2025, 3, 1), "1 year", date(2026, 3, 1)),
        (date(2026, 3, 1), "2 weeks", date(2026, 3, 15)),
    ],
)
def test_after_counts_calendar_months(start: date, interval: str, after: date) -> None:
    assert Interval.parse(interval).after(start) == after


def test_before_is_the_lookback() -> None:
    assert Interval.parse("36 months").before(date(2026, 3, 27)) == date(2023, 3, 27)
    assert Interval.parse("1 month").before(date(2026, 3, 31)) == date(2026, 2, 28)
    assert Interval.parse("10 days").before(date(2026, 3, 5)) == date(2026, 2, 23)


def test_str_and_equality() -> None:
    assert [str(Interval.parse(t)) for t in ("12m", "1 m", "7 d", "18 months")] == [
        "1 year",
        "1 month",
        "7 days",
        "18 months",
    ]
    assert Interval.parse("1 year") == Interval.parse("12 months")
    assert len({Interval.parse("1y"), Interval.parse("12m")}) == 1


def test_recall_settings_interval_per_service() -> None:
    settings = RecallSettings.model_validate(
        {"services": ["5", "9"], "default_interval": "6 months", "intervals": {"9": "1 year"}}
    )
    assert settings.interval_for("9") == Interval(months=12)
    assert settings.interval_for("5") == Interval(months=6)
    assert settings.interval_for(None) == Interval(months=6)
    assert settings.model_dump()["intervals"] == {"9": "1 year"}


def test_recall_settings_refuse_voice_and_bad_intervals() -> None:
    with pytest.raises(ValidationError, match="sms and email only"):
        RecallSettings.model_validate({"channels": ["sms", "voice"]})
    with pytest.raises(ValidationError, match="expected an interval"):
        RecallSettings.model_validate({"default_interval": "half a year"})
    assert RecallSettings.model_validate({"channels": ["email", "email"]}).channels == ["email"]


def test_a_report_read_back_from_an_older_run_still_loads() -> None:
    """Counts stored before a field was added read back with that field at zero."""
    report = RecallReport(**{"day": "2026-03-27", "due": 3, "recalled": 2, "over_cap": 1})
    assert report.summary().startswith("recall 2026-03-27: 3 due, 2 recalled")
    assert (report.deceased, report.unreachable) == (0, 0)

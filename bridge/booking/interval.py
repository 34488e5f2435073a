"""Calendar intervals for recalls: ``6 months``, ``1 year``, ``90 days``, ``2 weeks``.

A recall interval is a calendar span, not a fixed number of days: six months after 31 August is
28 (or 29) February, the last day of that month, as a clinic's diary counts it.
"""

from __future__ import annotations

import re
from calendar import monthrange
from datetime import date, timedelta
from typing import Annotated, Any

from pydantic import PlainSerializer, PlainValidator

_SHAPE = re.compile(r"^\s*(\d{1,4})\s*(d|days?|w|weeks?|m|months?|y|years?)\s*$", re.IGNORECASE)
_EXPECTED = "expected an interval such as 6 months, 1 year, 2 weeks or 90 days"


class Interval:
    """A whole number of months or days (weeks are 7 days, years 12 months)."""

    __slots__ = ("days", "months")

    def __init__(self, months: int = 0, days: int = 0) -> None:
        if months < 0 or days < 0 or (months and days):
            raise ValueError(_EXPECTED)
        self.months = months
        self.days = days

    @classmethod
    def parse(cls, value: Any) -> Interval:
        if isinstance(value, Interval):
            return value
        match = _SHAPE.match(str(value))
        if not match:
            raise ValueError(_EXPECTED)
        amount, unit = int(match.group(1)), match.group(2).lower()[0]
        if amount == 0:
            raise ValueError(f"{_EXPECTED}, not zero")
        if unit == "d":
            return cls(days=amount)
        if unit == "w":
            return cls(days=7 * amount)
        return cls(months=amount * (12 if unit == "y" else 1))

    def after(self, day: date) -> date:
        """``day`` plus this interval (the month's last day when the day does not exist)."""
        if self.days:
            return day + timedelta(days=self.days)
        index = day.year * 12 + day.month - 1 + self.months
        year, month = divmod(index, 12)
        return date(year, month + 1, min(day.day, monthrange(year, month + 1)[1]))

    def before(self, day: date) -> date:
        """``day`` minus this interval."""
        if self.days:
            return day - timedelta(days=self.days)
        index = day.year * 12 + day.month - 1 - self.months
        year, month = divmod(index, 12)
        return date(year, month + 1, min(day.day, monthrange(year, month + 1)[1]))

    def __str__(self) -> str:
        if self.days:
            return f"{self.days} day" + ("s" if self.days != 1 else "")
        if self.months % 12 == 0:
            years = self.months // 12
            return f"{years} year" + ("s" if years != 1 else "")
        return f"{self.months} month" + ("s" if self.months != 1 else "")

    def __repr__(self) -> str:
        return f"Interval({self})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Interval) and (self.months, self.days) == (
            other.months,
            other.days,
        )

    def __hash__(self) -> int:
        return hash((self.months, self.days))


IntervalValue = Annotated[
    Interval, PlainValidator(Interval.parse), PlainSerializer(str, return_type=str)
]

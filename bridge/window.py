"""The sending window: the hours of the clinic's day when messages may go out.

Hours are clinic-local (``reminders.start_hour`` up to, not including, ``reminders.end_hour``).
Every instant returned is aware UTC; an instant passed in may carry any offset, and a naive one
is taken as UTC. No message goes out at night, whatever a rule asks for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bridge.clock import as_utc, local_date, local_to_utc

LAST_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class SendingWindow:
    """``start_hour`` <= local hour < ``end_hour`` in ``zone``."""

    start_hour: int
    end_hour: int
    zone: ZoneInfo

    def opens(self, day: date) -> datetime:
        """When sending opens on a clinic-local ``day`` (UTC)."""
        return local_to_utc(day, time(self.start_hour), self.zone)

    def closes(self, day: date) -> datetime:
        """When sending closes on a clinic-local ``day`` (UTC); the close itself is outside."""
        if self.end_hour == 24:
            return local_to_utc(day + timedelta(days=1), time(0), self.zone)
        return local_to_utc(day, time(self.end_hour), self.zone)

    def contains(self, instant: datetime) -> bool:
        """Whether ``instant`` (naive = UTC) falls inside the window."""
        instant = as_utc(instant)
        day = local_date(instant, self.zone)
        return self.opens(day) <= instant < self.closes(day)

    def next_open(self, instant: datetime) -> datetime:
        """The earliest instant at or after ``instant`` inside the window (UTC)."""
        instant = as_utc(instant)
        day = local_date(instant, self.zone)
        if instant < self.opens(day):
            return self.opens(day)
        if instant < self.closes(day):
            return instant
        return self.opens(day + timedelta(days=1))

    def latest_before(self, instant: datetime) -> datetime:
        """The latest instant at or before ``instant`` inside the window (UTC), at the latest a
        minute before close."""
        instant = as_utc(instant)
        day = local_date(instant, self.zone)
        if instant < self.opens(day):
            return self.closes(day - timedelta(days=1)) - LAST_MINUTE
        if instant < self.closes(day):
            return instant
        return self.closes(day) - LAST_MINUTE

"""Time, injected: every component takes a ``Clock`` so that tests never sleep.

The bridge keeps every instant as an aware ``datetime`` in UTC. Clinic-local times exist only at
the edges (host rows, sending windows, message text) and are converted with ``zoneinfo``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from time import sleep as _sleep
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    """Where the bridge gets the time from and how it waits."""

    def now(self) -> datetime:
        """The current instant, aware, in UTC."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``; a test clock advances instead of waiting."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            _sleep(seconds)


class ManualClock:
    """A clock for tests and ``--now``: stands still until told to move; ``sleep`` advances it."""

    def __init__(self, start: datetime) -> None:
        self._now = as_utc(start)

    def now(self) -> datetime:
        return self._now

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._now += timedelta(seconds=seconds)

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward by ``delta``."""
        self._now += delta

    def set(self, instant: datetime) -> None:
        """Jump to ``instant`` (may go backwards, for tests of out-of-order input)."""
        self._now = as_utc(instant)


def as_utc(instant: datetime) -> datetime:
    """Return ``instant`` as an aware UTC datetime; a naive value is taken to be UTC already."""
    if instant.tzinfo is None:
        return instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC)


def parse_instant(text: str) -> datetime:
    """Parse an ISO 8601 instant (``Z`` allowed); a value without offset is taken as UTC."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    return as_utc(datetime.fromisoformat(value))


def iso_utc(instant: datetime) -> str:
    """Format an instant as ISO 8601 UTC with a ``Z`` suffix and whole seconds."""
    return as_utc(instant).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def local_to_utc(day: date, time_of_day: time, zone: ZoneInfo) -> datetime:
    """A clinic-local wall time to UTC. In the autumn overlap the first (summer) reading wins;
    a time in the spring gap is taken as the standard-time reading, as ``zoneinfo`` does."""
    return datetime.combine(day, time_of_day, tzinfo=zone).astimezone(UTC)


def local_date(instant: datetime, zone: ZoneInfo) -> date:
    """The clinic-local calendar date of an instant."""
    return as_utc(instant).astimezone(zone).date()

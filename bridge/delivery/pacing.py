"""Pacing per channel, and provider rate limits, kept in the store so they survive restarts.

Two consecutive sends on one channel start at least its delay apart (``delivery.pacing``, else
``reminders.delay_seconds``), so a backlog after an outage or a restart trickles out instead of
arriving as a burst of calls the front desk must answer. The moment of the last send is stored
(``state``: ``pace.<channel>``) before the request leaves, so a restarted dispatcher, or a second
one sharing a PostgreSQL store, waits out the same delay.

A provider that answers 429 with ``Retry-After`` holds the whole channel until then
(``hold.<channel>``); other channels go on.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection

from bridge.clock import Clock, parse_instant
from bridge.model import Channel
from bridge.settings import Settings
from bridge.store import Store
from bridge.store.state import get_state, set_state

PACE = "pace."
HOLD = "hold."


class Pacer:
    """When each channel may send next."""

    def __init__(self, store: Store, clock: Clock, settings: Settings) -> None:
        self.store = store
        self.clock = clock
        self.delays = {
            channel: settings.delivery.delay(channel, settings.reminders.delay_seconds)
            for channel in Channel
        }
        self._last: dict[Channel, datetime] = {}
        self._hold: dict[Channel, datetime] = {}

    def delay(self, channel: Channel) -> timedelta:
        return self.delays[channel]

    @property
    def longest_delay(self) -> timedelta:
        return max(self.delays.values())

    def load(self, connection: Connection) -> None:
        """Read the stored last sends and holds (another process may have sent since)."""
        for channel in Channel:
            for prefix, into in ((PACE, self._last), (HOLD, self._hold)):
                value = get_state(connection, prefix + channel.value)
                if value is not None:
                    into[channel] = parse_instant(value)

    def refresh(self, channel: Channel) -> None:
        """Re-read one channel's state before a paced send (cheap; only when paced)."""
        if not self.delays[channel]:
            return
        with self.store.begin("read pacing") as connection:
            value = get_state(connection, PACE + channel.value)
        if value is not None:
            self._last[channel] = max(parse_instant(value), self._last.get(channel, _EPOCH))

    def next_free(self, channel: Channel) -> datetime:
        """The first instant ``channel`` may send again."""
        free = _EPOCH
        last = self._last.get(channel)
        if last is not None and self.delays[channel]:
            free = last + self.delays[channel]
        return max(free, self._hold.get(channel, _EPOCH))

    def held_until(self, channel: Channel) -> datetime | None:
        hold = self._hold.get(channel)
        return hold if hold is not None and hold > self.clock.now() else None

    def note_send(self, connection: Connection, channel: Channel, at: datetime) -> None:
        """A send on ``channel`` starts at ``at``; stored in the caller's transaction, which
        commits before the request leaves."""
        self._last[channel] = at
        if self.delays[channel]:
            set_state(connection, PACE + channel.value, at.isoformat(), at)

    def hold(self, channel: Channel, until: datetime) -> None:
        """The provider asked us to wait: no send on ``channel`` before ``until``."""
        if until <= self._hold.get(channel, _EPOCH):
            return
        self._hold[channel] = until
        with self.store.begin("hold channel") as connection:
            set_state(connection, HOLD + channel.value, until.isoformat(), self.clock.now())


_EPOCH = parse_instant("1970-01-01T00:00:00Z")

"""The booking worker (entry point ``bridge.workers``), run by ``bridge run`` in its own thread:

- every ``ROUND_SECONDS``: bookings still waiting for the host (it was down when the patient
  booked) are settled once the write-back worker applied or refused them: confirmation, or a
  message saying it could not be booked;
- once a day, when the clinic's day reaches ``recall.hour``: the recall run (idempotent per
  day: a restart, or a second bridge process, runs nothing twice; a day missed while the service
  was stopped is not replayed, as ``schedule`` never replays missed runs either);
- every ``INVITATION_MINUTES``: invitations expire, and those whose patient's email changed on
  the host are revoked and sent again to the new address.

One failing step (the host away) is logged and tried again next round; it stops nothing else.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from threading import Event

from sqlalchemy import select

from bridge.booking.booking import QUEUED, REQUESTED, settle
from bridge.booking.invitations import follow_email_changes
from bridge.booking.recall import run_recall
from bridge.booking.tables import bookings, recall_runs
from bridge.clock import local_date
from bridge.errors import BridgeError
from bridge.runtime import Runtime

log = logging.getLogger(__name__)

ROUND_SECONDS = 15.0
INVITATION_MINUTES = 10
STALE_REQUEST = timedelta(minutes=1)  # a request the page never settled (the process died)


class BookingWorker:
    """One round at a time; the caller decides when (tests call ``round`` directly)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._invitations_at: datetime | None = None

    def round(self) -> None:
        for step in (self.settle_bookings, self.recall_if_due, self.invitations_if_due):
            try:
                step()
            except BridgeError as exc:
                log.warning("booking worker: %s: %s", step.__name__, exc)

    def settle_bookings(self) -> int:
        now = self.runtime.clock.now()
        with self.runtime.store.begin("read waiting bookings") as connection:
            ids = (
                connection.execute(
                    select(bookings.c.id).where(
                        (bookings.c.status == QUEUED)
                        | (
                            (bookings.c.status == REQUESTED)
                            & (bookings.c.created_at < now - STALE_REQUEST)
                        )
                    )
                )
                .scalars()
                .all()
            )
        for booking_id in ids:
            settle(self.runtime, int(booking_id))
        return len(ids)

    def recall_if_due(self) -> bool:
        settings = self.runtime.settings
        if not (settings.recall.enabled and settings.booking.enabled):
            return False
        zone = self.runtime.zone(self.runtime.source.reference())
        local = self.runtime.clock.now().astimezone(zone)
        if local.hour < settings.recall.hour:
            return False
        day = local_date(self.runtime.clock.now(), zone)
        with self.runtime.store.begin("read the recall run") as connection:
            finished = connection.execute(
                select(recall_runs.c.finished_at).where(recall_runs.c.run_on == day)
            ).scalar()
        if finished is not None:
            return False
        run_recall(self.runtime, day)
        return True

    def invitations_if_due(self) -> int:
        if not self.runtime.settings.booking.enabled:
            return 0
        now = self.runtime.clock.now()
        if self._invitations_at is not None and now - self._invitations_at < timedelta(
            minutes=INVITATION_MINUTES
        ):
            return 0
        self._invitations_at = now
        return follow_email_changes(self.runtime)


def run_worker(runtime: Runtime, stopping: Event) -> None:
    """The service's booking loop."""
    worker = BookingWorker(runtime)
    while not stopping.is_set():
        worker.round()
        stopping.wait(ROUND_SECONDS)

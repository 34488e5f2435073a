"""Redials and resends: when a failed message is tried again, if at all. Pure.

- A *redial* follows a failure within one round (a busy line, no answer, an undelivered SMS, a
  provider error): ``reminders.redials`` of them, the n-th after n x ``delivery.redial_spacing``
  (or later when the provider asked us to wait).
- A *resend* starts a new round once the redials are spent: after ``reminders.resend_interval``
  (immediately, 3, 6, 12 or 24 hours), ``reminders.resends`` times.
- Every retry falls inside the sending window (moved to its next opening, never at night) and
  before the appointment's last useful moment (``min_lead_hours`` before it); otherwise the
  message has failed for good.
- A permanent failure (an invalid number, a landline, a carrier opt-out) is never retried: the
  next try would fail the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bridge.delivery.jobstate import REDIAL, RESEND, Round
from bridge.delivery.settings import DeliverySettings
from bridge.settings import RemindersSettings, Settings
from bridge.window import SendingWindow


@dataclass(frozen=True)
class Retry:
    """The next try: when, and whether it is a redial or a resend (a new round)."""

    due: datetime
    kind: str


def sending_window(settings: Settings, zone: ZoneInfo) -> SendingWindow:
    """The clinic's sending window in its time zone."""
    return SendingWindow(settings.reminders.start_hour, settings.reminders.end_hour, zone)


class AttemptPolicy:
    """Decides the next try after a failure."""

    @classmethod
    def for_settings(cls, settings: Settings, zone: ZoneInfo) -> AttemptPolicy:
        return cls(settings.reminders, settings.delivery, sending_window(settings, zone))

    def __init__(
        self, reminders: RemindersSettings, delivery: DeliverySettings, window: SendingWindow
    ) -> None:
        self.reminders = reminders
        self.delivery = delivery
        self.window = window

    def after_failure(
        self,
        state: Round,
        now: datetime,
        appointment_start: datetime,
        *,
        permanent: bool = False,
        retry_after: float | None = None,
    ) -> Retry | None:
        """The next try after the ``state.attempts``-th attempt of round ``state.number``
        failed, or None when the message has failed for good."""
        if permanent:
            return None
        if state.attempts <= self.reminders.redials:
            wait = max(
                self.delivery.redial_spacing * max(state.attempts, 1),
                timedelta(seconds=retry_after or 0),
            )
            retry = Retry(self.window.next_open(now + wait), REDIAL)
        elif state.number <= self.reminders.resends:
            retry = Retry(self.window.next_open(now + self.reminders.resend_delay), RESEND)
        else:
            return None
        deadline = appointment_start - timedelta(hours=self.reminders.min_lead_hours)
        if retry.due >= min(deadline, appointment_start):
            return None
        return retry

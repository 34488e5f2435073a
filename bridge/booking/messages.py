"""Planning the messages of online booking (confirmations, refusals, recalls, invitations,
links): jobs in the same queue as reminders, gated by the same consent rules.

Each message is a ``JobPlan`` of its own event; ``reconcile`` stores it once per dedupe key
(event, subject, day, rule, channel), so planning the same message again changes nothing and
the dispatcher's exactly-once machinery applies unchanged. A channel the patient cannot be
reached on is stored as *skipped* with the reason, as reminders are.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from sqlalchemy import Connection

from bridge.delivery import consent
from bridge.delivery.policy import sending_window
from bridge.model import Channel, Patient
from bridge.planner import Planner
from bridge.plugin import Reference
from bridge.runtime import Runtime
from bridge.store.jobs import JobPlan, ReconcileCounts, reconcile


def plan_messages(
    runtime: Runtime,
    connection: Connection,
    *,
    event: str,
    subject: str,
    occurrence: date,
    patient: Patient,
    channels: Iterable[Channel],
    rule: str,
    deadline: datetime,
    reference: Reference,
) -> ReconcileCounts:
    """Plan ``event`` for ``patient`` on each of ``channels``, due at the next opening of the
    sending window; ``deadline`` ends its retries (the appointment's start, a link's expiry)."""
    now = runtime.clock.now()
    zone = runtime.zone(reference)
    opted_out = consent.opted_out_pairs(connection, {patient.key}) if patient.key else set()
    planner = Planner(runtime.settings.reminders, zone, reference, now, opted_out=opted_out)
    due = sending_window(runtime.settings, zone).next_open(now)
    plans = [
        JobPlan(
            event=event,
            appointment_key=subject,
            occurrence=occurrence,
            patient_key=patient.key,
            rule=rule,
            channel=channel,
            due=due,
            appointment_start=deadline,
            skip_reason=planner.channel_block(patient, channel),
        )
        for channel in dict.fromkeys(channels)
    ]
    return reconcile(connection, [], plans, now, events=(event,))


def channel_gate(
    runtime: Runtime, connection: Connection, patient: Patient, now: datetime, reference: Reference
) -> Planner:
    """A planner for the dispatcher's last check of a non-reminder message: consent, contacts
    and the patient's opt-outs as they are now."""
    zone = runtime.zone(reference)
    opted_out = consent.opted_out_pairs(connection, {patient.key}) if patient.key else set()
    return Planner(runtime.settings.reminders, zone, reference, now, opted_out=opted_out)

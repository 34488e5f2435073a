"""Recall and online booking statistics: counts only, never a patient.

A recall is *sent* once one of its messages went out; *booked online* when the patient booked
with its link; *booked otherwise* when the patient got an appointment some other way (by phone,
at the desk) while it was open; *expired* when its link ran out first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import Column, Connection, String, cast, func, literal, select

from bridge.booking.tables import bookings, invitations, recall_runs, recalls
from bridge.store.schema import JobStatus, jobs

SENT = (JobStatus.SENT.value, JobStatus.SENDING.value, JobStatus.UNKNOWN.value)


@dataclass
class RecallRow:
    """One month (``YYYY-MM``) and source kind (visit, manual)."""

    month: str
    kind: str
    recalls: int = 0
    sent: int = 0
    booked_online: int = 0
    booked_otherwise: int = 0
    expired: int = 0
    open: int = 0

    @property
    def booked_rate(self) -> str:
        booked = self.booked_online + self.booked_otherwise
        return f"{100 * booked / self.sent:.0f} %" if self.sent else "-"


@dataclass
class Stats:
    recalls: list[RecallRow] = field(default_factory=list)
    skipped_already_booked: int = 0
    runs: int = 0
    bookings: dict[str, int] = field(default_factory=dict)
    invitations: dict[str, int] = field(default_factory=dict)


def recall_stats(connection: Connection, first: date, last: date) -> Stats:
    """Recalls made from ``first`` to ``last`` (run dates, inclusive), with their outcomes."""
    subject = literal("recall:", String) + cast(recalls.c.id, String)
    went_out = (
        select(jobs.c.id).where(jobs.c.appointment_key == subject, jobs.c.status.in_(SENT)).exists()
    )
    rows = connection.execute(
        select(recalls.c.run_on, recalls.c.source, recalls.c.status, went_out).where(
            recalls.c.run_on.between(first, last)
        )
    ).all()
    table: dict[tuple[str, str], RecallRow] = {}
    for run_on, source, status, sent in rows:
        kind = "visit" if str(source).startswith("visit:") else "manual"
        month = f"{run_on:%Y-%m}"
        row = table.setdefault((month, kind), RecallRow(month, kind))
        row.recalls += 1
        row.sent += 1 if sent else 0
        row.booked_online += status == "booked"
        row.booked_otherwise += status == "scheduled"
        row.expired += status == "expired"
        row.open += status == "open"
    stats = Stats(recalls=[table[k] for k in sorted(table)])
    for (counts,) in connection.execute(
        select(recall_runs.c.counts).where(recall_runs.c.run_on.between(first, last))
    ):
        stats.runs += 1
        stats.skipped_already_booked += int(json.loads(counts or "{}").get("already_booked", 0))
    stats.bookings = counts_by_status(connection, bookings.c.status)
    stats.invitations = counts_by_status(connection, invitations.c.status)
    return stats


def counts_by_status(connection: Connection, column: Column[str]) -> dict[str, int]:
    """How many rows of ``column``'s table have each status."""
    rows = connection.execute(select(column, func.count()).group_by(column))
    return {str(name): int(count) for name, count in rows}

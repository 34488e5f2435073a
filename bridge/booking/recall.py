"""The daily recall: patients due for their next visit get a message with a personal booking
link, once per due date.

Who is due on a day:

- by their last visit: for each visit category in ``recall.services``, the patient's last visit
  (not cancelled, not missed; with ``attended_only`` checked in or out) plus the category's
  interval (``recall.intervals``, else ``recall.default_interval``) falls on or before the day,
  and that visit is within ``recall.lookback``;
- by hand: a recall staff set on the host (OpenEMR's Recall Board) or with ``bridge recall add``
  (on a patient, or on an appointment: due an interval after it), due on or before the day,
  unless the patient came in (any visit, not cancelled or missed) on or after its due date.

Then: one recall per patient per day (a manual one first, else the most overdue), none for a
patient who already has an appointment ahead or an open recall, none twice for the same due date
(``recalls`` is unique on patient, source and due date), none for the deceased, none for a
patient no channel may reach (no contact, no consent: counted as unreachable and not stored, so
they are recalled once that changes), at most ``recall.max_per_run`` recalls made. Each
recall gets its personal link (the booking pages, recall flow, its reason) and its messages
(``recall`` event, SMS and/or email, gated by consent) in the job queue.

A run is idempotent per day (``recall_runs``): the worker starts it once the clinic's day reaches
``recall.hour``, ``bridge recall run --date`` starts it by hand; running a finished day again
reports that day's counts and changes nothing. A run that died halfway is simply run again.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Connection, insert, select, update

from bridge.booking import passes
from bridge.booking.messages import channel_gate, plan_messages
from bridge.booking.passes import PassKeys
from bridge.booking.reasons import for_flow, resolve
from bridge.booking.tables import manual_recalls, recall_runs, recalls
from bridge.errors import ConfigError
from bridge.model import Patient
from bridge.patient.views import choose_language
from bridge.plugin import Reference
from bridge.runtime import Runtime
from bridge.store.engine import insert_ignore

log = logging.getLogger(__name__)

OPEN, BOOKED, SCHEDULED, EXPIRED, CANCELLED = "open", "booked", "scheduled", "expired", "cancelled"
EVENT = "recall"
RECALLED, EXISTS, UNREACHABLE = "recalled", "exists", "unreachable"


@dataclass
class RecallReport:
    """Counts of one day's run (no patient data)."""

    day: str
    due: int = 0
    recalled: int = 0
    already_booked: int = 0
    already_recalled: int = 0
    not_found: int = 0
    deceased: int = 0
    unreachable: int = 0
    over_cap: int = 0
    expired: int = 0
    repeated: bool = False

    def summary(self) -> str:
        text = (
            f"recall {self.day}: {self.due} due, {self.recalled} recalled, "
            f"{self.already_booked} already booked, {self.already_recalled} already recalled, "
            f"{self.not_found} not on the host, {self.deceased} deceased, "
            f"{self.unreachable} unreachable (no consent or no contact), "
            f"{self.over_cap} over the daily cap; "
            f"{self.expired} links expired"
        )
        return text + (" (this day had run already: nothing changed)" if self.repeated else "")


@dataclass(frozen=True)
class Due:
    """A patient due for a recall."""

    patient_key: str
    source: str
    due: date
    last_visit: date | None
    reason_key: str
    manual: bool


def run_recall(runtime: Runtime, day: date) -> RecallReport:
    """Recall everyone due on ``day`` (clinic-local), once."""
    settings = runtime.settings.recall
    if not runtime.settings.booking.enabled:
        raise ConfigError(
            "recall: booking.enabled is false (a recall's link opens the booking pages)"
        )
    now = runtime.clock.now()
    with runtime.store.begin("start a recall run") as connection:
        done = connection.execute(
            select(recall_runs.c.finished_at, recall_runs.c.counts).where(
                recall_runs.c.run_on == day
            )
        ).first()
        if done is not None and done.finished_at is not None:
            report = RecallReport(**json.loads(done.counts or "{}"))
            report.repeated = True
            return report
        insert_ignore(connection, recall_runs, {"run_on": day, "started_at": now}, keys=("run_on",))
        expired = _expire(connection, now)
    reference = runtime.source.reference()
    report = RecallReport(day=day.isoformat(), expired=expired)
    due = find_due(runtime, day, reference)
    report.due = len({d.patient_key for d in due})
    chosen = _choose(runtime, day, due, reference, report)
    found = {p.key: p for p in runtime.source.patients({d.patient_key for d in chosen}, _skip)}
    keys = PassKeys(runtime)
    for index, item in enumerate(chosen):
        if settings.max_per_run and report.recalled >= settings.max_per_run:
            report.over_cap = len(chosen) - index
            break
        patient = found.get(item.patient_key)
        if patient is None:
            report.not_found += 1
            continue
        if patient.deceased:
            report.deceased += 1
            continue
        outcome = _recall(runtime, keys, item, patient, day, reference)
        if outcome == RECALLED:
            report.recalled += 1
        elif outcome == UNREACHABLE:
            report.unreachable += 1
        else:
            report.already_recalled += 1
    with runtime.store.begin("finish a recall run") as connection:
        connection.execute(
            update(recall_runs)
            .where(recall_runs.c.run_on == day)
            .values(finished_at=runtime.clock.now(), counts=json.dumps(asdict(report)))
        )
    log.info("%s", report.summary())
    return report


def default_reason(runtime: Runtime, reference: Reference) -> str:
    """The booking reason a recall offers when its visit category names none."""
    settings = runtime.settings.recall
    if settings.reason:
        return settings.reason
    reasons, _ = resolve(runtime.settings.booking, reference)
    usable = for_flow(reasons, "recall")
    if not usable:
        raise ConfigError("recall: no booking reason has the recall flow (booking.reasons)")
    return usable[0].key


def find_due(runtime: Runtime, day: date, reference: Reference) -> list[Due]:
    """Everyone due on ``day``, before deciding whom to recall."""
    settings = runtime.settings.recall
    fallback = default_reason(runtime, reference)
    since = settings.lookback.before(day)
    found: list[Due] = []
    visits = runtime.source.last_visits(
        settings.services, since, day, reference, attended_only=settings.attended_only
    )
    for visit in visits:
        due_on = settings.interval_for(visit.service_key).after(visit.day)
        if due_on <= day:
            reason = settings.reasons.get(visit.service_key, fallback)
            found.append(
                Due(
                    visit.patient_key,
                    f"visit:{visit.service_key}",
                    due_on,
                    visit.day,
                    reason,
                    False,
                )
            )
    if settings.manual:
        found.extend(
            _unanswered(runtime, _manual_due(runtime, day, since, fallback), day, reference)
        )
    return found


def _manual_due(runtime: Runtime, day: date, since: date, fallback: str) -> list[Due]:
    """Recalls set by hand, on the host's list and here, due from ``since`` to ``day``."""
    found = [
        Due(recall.patient_key, "host-list", recall.due, None, fallback, True)
        for recall in runtime.source.recall_list(day)
        if recall.due >= since
    ]
    with runtime.store.begin("read manual recalls") as connection:
        rows = connection.execute(
            select(manual_recalls).where(
                manual_recalls.c.due_on <= day,
                manual_recalls.c.due_on >= since,
                manual_recalls.c.cancelled_at.is_(None),
            )
        ).all()
    for row in rows:
        m = row._mapping
        reason = m["reason_key"] or fallback
        found.append(Due(m["patient_key"], f"manual:{m['id']}", m["due_on"], None, reason, True))
    return found


def _unanswered(runtime: Runtime, due: list[Due], day: date, reference: Reference) -> list[Due]:
    """Manual recalls whose patient has not come in since they fell due.

    They stay on their list until staff remove them: a patient who booked by phone was skipped
    while the visit was ahead, and must not be recalled the day after it."""
    if not due:
        return []
    kinds = [key for key, service in reference.services.items() if service.for_patients]
    last: dict[str, date] = {}
    for visit in runtime.source.last_visits(kinds, min(d.due for d in due), day, reference):
        last[visit.patient_key] = max(visit.day, last.get(visit.patient_key, visit.day))
    return [d for d in due if last.get(d.patient_key, date.min) < d.due]


def _choose(
    runtime: Runtime, day: date, due: list[Due], reference: Reference, report: RecallReport
) -> list[Due]:
    """One recall per patient: none for those booked ahead or already holding an open recall.

    A due date already recalled is left out before choosing: a manual recall that was sent (and
    booked, or expired) stays on its list until staff remove it, and must not hide the
    patient's next recall by visit. Open recalls of patients now booked ahead (by phone, at the
    desk) are closed, whether or not they are due again today."""
    done = _recalled(runtime, due)
    fresh: dict[str, Due] = {}
    for item in sorted(due, key=lambda d: (not d.manual, d.due, d.source)):
        if (item.patient_key, item.source, item.due) not in done:
            fresh.setdefault(item.patient_key, item)
    with runtime.store.begin("read open recalls") as connection:
        holding = set(
            connection.execute(
                select(recalls.c.patient_key).where(recalls.c.status == OPEN)
            ).scalars()
        )
    due_patients = {d.patient_key for d in due}
    booked = runtime.source.booked_patients(due_patients | holding, day, reference)
    if booked & holding:
        with runtime.store.begin("close answered recalls") as connection:
            _close_booked(connection, booked & holding, runtime.clock.now())
    chosen = [d for key, d in fresh.items() if key not in booked and key not in holding]
    report.already_booked = len(booked & due_patients)
    report.already_recalled += len(due_patients - booked) - len(chosen)
    return sorted(chosen, key=lambda d: (not d.manual, d.due, d.patient_key))


def _recall(
    runtime: Runtime,
    keys: PassKeys,
    item: Due,
    patient: Patient,
    day: date,
    reference: Reference,
) -> str:
    """Store one recall, its link and its messages: ``RECALLED``; ``EXISTS`` when it was made
    already; ``UNREACHABLE`` when no channel may carry it (nothing is stored, so the patient is
    recalled once a contact or a consent appears)."""
    now = runtime.clock.now()
    expires = now + timedelta(days=runtime.settings.recall.link_days)
    with runtime.store.begin("record a recall") as connection:
        gate = channel_gate(runtime, connection, patient, now, reference)
        if all(gate.channel_block(patient, c) for c in runtime.settings.recall.channels):
            return UNREACHABLE
        created = insert_ignore(
            connection,
            recalls,
            {
                "patient_key": item.patient_key,
                "source": item.source,
                "due_on": item.due,
                "last_visit": item.last_visit,
                "reason_key": item.reason_key,
                "run_on": day,
                "status": OPEN,
                "created_at": now,
                "expires_at": expires,
                "updated_at": now,
            },
            keys=("patient_key", "source", "due_on"),
        )
        if not created:
            return EXISTS
        recall_id = connection.execute(
            select(recalls.c.id).where(
                recalls.c.patient_key == item.patient_key,
                recalls.c.source == item.source,
                recalls.c.due_on == item.due,
            )
        ).scalar_one()
        language = choose_language(patient.language, runtime.settings.clinic.language)
        _, link = passes.issue(
            connection,
            keys,
            f"recall|{recall_id}",
            flow="recall",
            language=language,
            now=now,
            days=runtime.settings.recall.link_days,
            patient_key=patient.key,
            reasons=[item.reason_key],
            recall_id=recall_id,
        )
        connection.execute(update(recalls).where(recalls.c.id == recall_id).values(pass_id=link.id))
        plan_messages(
            runtime,
            connection,
            event=EVENT,
            subject=f"recall:{recall_id}",
            occurrence=day,
            patient=patient,
            channels=runtime.settings.recall.channels,
            rule="manual" if item.manual else "visit",
            deadline=expires,
            reference=reference,
        )
    return RECALLED


def _recalled(runtime: Runtime, due: list[Due]) -> set[tuple[str, str, date]]:
    """Which of ``due`` were recalled already (patient, source, due date)."""
    found: set[tuple[str, str, date]] = set()
    with runtime.store.begin("read past recalls") as connection:
        for chunk in _chunks(sorted({d.patient_key for d in due})):
            rows = connection.execute(
                select(recalls.c.patient_key, recalls.c.source, recalls.c.due_on).where(
                    recalls.c.patient_key.in_(chunk)
                )
            )
            found.update((str(key), str(source), on) for key, source, on in rows)
    return found


def _expire(connection: Connection, now: datetime) -> int:
    """Open recalls whose link ran out are closed as expired."""
    moved = connection.execute(
        update(recalls)
        .where(recalls.c.status == OPEN, recalls.c.expires_at <= now)
        .values(status=EXPIRED, updated_at=now, closed_at=now)
    )
    return int(moved.rowcount or 0)


def _close_booked(connection: Connection, patient_keys: set[str], now: datetime) -> None:
    """Open recalls of patients who now have an appointment ahead were answered another way
    (by phone, at the desk): closed as *scheduled*, for the statistics."""
    for chunk in _chunks(sorted(patient_keys)):
        connection.execute(
            update(recalls)
            .where(recalls.c.status == OPEN, recalls.c.patient_key.in_(chunk))
            .values(status=SCHEDULED, updated_at=now, closed_at=now)
        )


def add_manual(
    connection: Connection,
    patient_key: str,
    due: date,
    now: datetime,
    *,
    reason_key: str | None = None,
    appointment_key: str | None = None,
    note: str | None = None,
) -> int:
    """A recall staff set by hand (``bridge recall add``)."""
    return int(
        connection.execute(
            insert(manual_recalls)
            .values(
                patient_key=patient_key,
                due_on=due,
                reason_key=reason_key,
                appointment_key=appointment_key,
                note=note,
                created_at=now,
            )
            .returning(manual_recalls.c.id)
        ).scalar_one()
    )


def _chunks(keys: list[str], size: int = 500) -> list[list[str]]:
    return [keys[i : i + size] for i in range(0, len(keys), size)]


def _skip(_: object) -> None:
    """Unreadable patient rows are reported by the cycle."""

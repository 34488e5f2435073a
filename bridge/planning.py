"""What the bridge would send now, without sending or storing anything (``bridge plan``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bridge.clock import iso_utc
from bridge.cycle import reference_and_planner
from bridge.errors import BadHostRow
from bridge.model import Appointment, Patient
from bridge.planner import Planner
from bridge.runtime import Runtime
from bridge.store.jobs import JobPlan, jobs_of_patients
from bridge.store.schema import DONE_STATUSES


@dataclass(frozen=True)
class DryPlan:
    """The reminders that would go out, with the appointments and patients they are for."""

    plans: list[JobPlan]
    skipped: list[JobPlan]
    appointments: dict[tuple[str, Any], Appointment]
    patients: dict[str, Patient]
    planner: Planner
    rejected: list[BadHostRow]


def dry_plan(runtime: Runtime) -> DryPlan:
    """Read the host and plan every appointment from tomorrow through ``days_ahead`` days out.

    Jobs the store already handed to a channel are left out: they will not be sent again.
    """
    now = runtime.clock.now()
    reference, planner = reference_and_planner(runtime, now)
    bad: list[BadHostRow] = []
    sightings = runtime.source.scan(planner.horizon, reference, planner.zone, bad.append)
    scanned = [sighting.appointment() for sighting in sightings]
    keys = {appt.patient_key for appt in scanned}
    patients = {p.key: p for p in runtime.source.patients(keys, bad.append)}
    with runtime.store.begin("read job history") as connection:
        history = jobs_of_patients(connection, keys)
    done = {job.dedupe_key for job in history if job.status in DONE_STATUSES}
    result = planner.plan(scanned, patients, history)
    first, last = planner.reminder_days
    listed = [
        plan
        for plan in result.plans
        if first <= plan.occurrence <= last and plan.dedupe_key not in done
    ]
    order = sorted(
        listed, key=lambda p: (p.due, p.occurrence, p.appointment_key, p.rule, p.channel)
    )
    return DryPlan(
        plans=[p for p in order if p.skip_reason is None],
        skipped=[p for p in order if p.skip_reason is not None],
        appointments={appt.ident: appt for appt in scanned},
        patients=patients,
        planner=planner,
        rejected=bad,
    )


def plan_record(plan: JobPlan) -> dict[str, Any]:
    """One ``bridge plan --json`` line (keys are the command-line contract)."""
    record: dict[str, Any] = {
        "appointment": plan.appointment_key,
        "occurrence": plan.occurrence.isoformat(),
        "patient": plan.patient_key,
        "channel": plan.channel.value,
        "due": iso_utc(plan.due),
        "rule": plan.rule,
        "event": plan.event,
        "start": iso_utc(plan.appointment_start),
    }
    if plan.skip_reason:
        record["skipped"] = plan.skip_reason
    return record

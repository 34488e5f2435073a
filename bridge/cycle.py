"""One poll-and-plan cycle: read the host's forward window, store what changed, re-plan it.

Only what changed is re-planned: new, changed and vanished occurrences, and every occurrence of a
patient whose data changed. A change to the planning settings (or the host's status list) is
detected through a signature and re-plans the whole window once.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from bridge.clock import local_date
from bridge.delivery import consent
from bridge.errors import BadHostRow
from bridge.model import Appointment, Patient
from bridge.planner import Planner, PlanResult
from bridge.plugin import Reference
from bridge.runtime import Runtime
from bridge.store import snapshots
from bridge.store.jobs import ReconcileCounts, jobs_of_patients, reconcile
from bridge.store.rejects import record_reject, resolve_rejects
from bridge.store.state import get_state, set_state

log = logging.getLogger(__name__)

WATERMARK = "patients.watermark"
SIGNATURE = "plan.signature"
HOST_ROW = "host-row"


@dataclass
class CycleReport:
    """What one cycle saw and did (counts only: no patient data)."""

    now: datetime
    window: tuple[date, date]
    scanned: int = 0
    new: int = 0
    changed: int = 0
    gone: int = 0
    patients_read: int = 0
    patients_changed: int = 0
    replanned_all: bool = False
    jobs: ReconcileCounts = field(default_factory=ReconcileCounts)
    rejected: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        j = self.jobs
        return (
            f"window {self.window[0]}..{self.window[1]}: {self.scanned} occurrences "
            f"({self.new} new, {self.changed} changed, {self.gone} gone), "
            f"{self.patients_changed}/{self.patients_read} patients changed; jobs "
            f"{j.planned} planned, {j.replanned} re-planned, {j.skipped} skipped, "
            f"{j.cancelled} cancelled; {self.rejected} bad rows; {self.seconds:.2f}s"
        )


def reference_and_planner(runtime: Runtime, now: datetime) -> tuple[Reference, Planner]:
    """Read the host's reference data and build this cycle's planner (with the patients'
    opt-outs and the appointments they already answered)."""
    reference = runtime.source.reference()
    zone = runtime.zone(reference)
    with runtime.store.begin("read opt-outs and answers") as connection:
        opted_out = consent.opted_out_pairs(connection)
        answered = consent.answered(connection, local_date(now, zone))
    planner = Planner(
        runtime.settings.reminders, zone, reference, now, opted_out=opted_out, answered=answered
    )
    return reference, planner


# The service's poll and a feed's prompt cycle (a new HL7 booking planned within seconds) run in
# different threads: cycles take turns, so two never diff and plan the same window at once.
_CYCLES = threading.Lock()


def run_cycle(runtime: Runtime) -> CycleReport:
    """Poll the host once and bring the job queue in line with what it holds."""
    with _CYCLES, paused_gc():
        return _run_cycle(runtime)


@contextmanager
def paused_gc() -> Iterator[None]:
    """A cycle allocates tens of thousands of small objects that all live until it ends: the
    collector's full passes over them cost more than half the cycle at 1,000,000 appointments,
    and find nothing to free. Collection resumes (and catches up) afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _run_cycle(runtime: Runtime) -> CycleReport:
    started = time.perf_counter()
    now = runtime.clock.now()
    reference, planner = reference_and_planner(runtime, now)
    window = planner.horizon
    report = CycleReport(now=now, window=window)
    bad: list[BadHostRow] = []

    scanned = runtime.source.scan(window, reference, planner.zone, bad.append)
    report.scanned = len(scanned)
    by_ident = {sighting.ident: sighting for sighting in scanned}
    window_patients = {sighting.patient_key for sighting in scanned}

    with runtime.store.begin("store the scan") as connection:
        changes = snapshots.sync_appointments(connection, scanned, window, now)
        known = snapshots.known_patient_keys(connection, window_patients)
        watermark = get_state(connection, WATERMARK)

    changed_on_host = runtime.source.changed_patient_keys(watermark)
    if changed_on_host is None:
        to_read = window_patients
        new_watermark = None
    else:
        changed_keys, new_watermark = changed_on_host
        to_read = (window_patients - known) | (changed_keys & window_patients)
    patients = list(runtime.source.patients(to_read, bad.append))
    report.patients_read = len(patients)

    with runtime.store.begin("plan") as connection:
        changed_patients = snapshots.sync_patients(connection, patients, now)
        report.patients_changed = len(changed_patients)
        if new_watermark is not None and new_watermark != watermark:
            set_state(connection, WATERMARK, new_watermark, now)

        signature = plan_signature(runtime, reference, planner)
        replan_all = get_state(connection, SIGNATURE) != signature
        report.replanned_all = replan_all
        for change in changes:
            setattr(report, change.kind, getattr(report, change.kind) + 1)

        if replan_all:
            targets = [sighting.appointment() for sighting in scanned]
        else:
            idents = {(c.key, c.occurrence) for c in changes if c.after is not None}
            idents |= {a.ident for a in scanned if a.patient_key in changed_patients}
            if runtime.settings.reminders.one_per_day:
                touched = {by_ident[i].patient_key for i in idents}
                idents |= {a.ident for a in scanned if a.patient_key in touched}
            targets = [by_ident[i].appointment() for i in sorted(idents)]

        result = plan_with_history(connection, planner, targets)
        for change in changes:
            if change.kind == "gone":
                result.scope.add((change.key, change.occurrence))
                result.reasons[(change.key, change.occurrence)] = "appointment gone from the host"
        report.jobs = reconcile(connection, result.scope, result.plans, now, result.reasons)
        set_state(connection, SIGNATURE, signature, now)

        for problem in bad:
            record_reject(connection, HOST_ROW, problem.ref, problem.reason, now)
        resolve_rejects(connection, HOST_ROW, {p.ref for p in bad}, now)
    report.rejected = len(bad)
    report.seconds = time.perf_counter() - started
    log.info("cycle: %s", report.summary())
    return report


def plan_with_history(connection: Any, planner: Planner, targets: list[Appointment]) -> PlanResult:
    """Plan ``targets`` with their patients (from the store) and those patients' job history."""
    keys = {appt.patient_key for appt in targets}
    patients: dict[str, Patient] = snapshots.load_patients(connection, keys)
    history = jobs_of_patients(connection, keys)
    return planner.plan(targets, patients, history)


def plan_signature(runtime: Runtime, reference: Reference, planner: Planner) -> str:
    """A hash of everything planning depends on besides the rows themselves."""
    parts = [
        runtime.settings.reminders.model_dump_json(),
        runtime.source.signature(),
        str(planner.zone),
        repr(sorted((code, s.eligible) for code, s in reference.statuses.items())),
        repr(sorted(k for k, s in reference.services.items() if not s.for_patients)),
        # Opt-outs are rare: one that changes re-plans the window (START must revive skips).
        repr(sorted(planner.opted_out)),
    ]
    return hashlib.blake2b("\n".join(parts).encode(), digest_size=16).hexdigest()

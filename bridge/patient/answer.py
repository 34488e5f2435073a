"""A patient's answer on a page: one write-back command, queued and applied at once.

The command goes into the queue first (durable, idempotent: a double click is one command) in the
same store transaction that records the link's one answer; then it is applied in the request
through the worker's own code path (``apply_now``), so the host row is updated before the page
answers instead of at the worker's next round. A host that is down leaves the command queued:
the worker retries it until it lands, and the page says the answer was received. If the worker
happens to hold the command already, the page waits a moment for its outcome.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bridge.model import Appointment
from bridge.patient.linkstore import Link, claim_answer, set_writeback
from bridge.runtime import Runtime
from bridge.store import writebacks as queue
from bridge.writeback import Command, CommandKind, Outcome
from bridge.writeback_expect import EXPECT, expectation
from bridge.writeback_worker import apply_now

ORIGIN = "link"
KINDS = {
    "confirm": CommandKind.CONFIRM,
    "cancel": CommandKind.CANCEL,
    "callback": CommandKind.CALLBACK,
}
WAIT_SECONDS = 3.0
POLL_SECONDS = 0.05
FINISHED = (Outcome.DONE, Outcome.REFUSED, Outcome.FAILED)


@dataclass(frozen=True)
class Answered:
    """What became of an answer: ``state`` is ``done``, ``queued`` (the host is away: it will
    land later), ``refused`` (staff must handle it) or ``already`` (the link had an answer)."""

    state: str
    detail: str = ""


def command_for(link: Link, action: str, appointment: Appointment, reason: str) -> Command:
    """The command for ``action`` on the appointment as the patient saw it."""
    payload: dict[str, object] = {EXPECT: expectation(appointment)}
    if action == "cancel" and reason:
        payload["reason"] = reason
    return Command(
        kind=KINDS[action],
        origin=ORIGIN,
        ref=f"link-{link.id}",
        patient_key=link.patient_key,
        appointment_key=appointment.key,
        occurrence=appointment.occurrence,
        channel=link.channel,
        payload=payload,
    )


def submit(runtime: Runtime, link: Link, command: Command, action: str) -> Answered:
    """Record the link's answer and its command; apply the command now."""
    now = runtime.clock.now()
    with runtime.store.begin("record a patient's answer") as connection:
        if not claim_answer(connection, link.id, action, now):
            return Answered("already")
        queue.enqueue(connection, command, now)
        queued = queue.find_by_key(connection, command.idempotency_key)
        assert queued is not None
        set_writeback(connection, link.id, queued.id)
    if apply_now(runtime, queued.id) not in FINISHED:
        _wait(runtime, queued.id)
    return outcome(runtime, queued.id)


def outcome(runtime: Runtime, writeback_id: int | None) -> Answered:
    """The answer's state as the queue holds it now."""
    if writeback_id is None:
        return Answered("queued")
    with runtime.store.begin("read a patient's answer") as connection:
        item = queue.find(connection, writeback_id)
    if item is None:
        return Answered("queued")
    if item.status == Outcome.DONE:
        return Answered("done", (item.result or {}).get("detail", ""))
    if item.status in (Outcome.REFUSED, Outcome.FAILED):
        return Answered("refused", item.last_error or "")
    return Answered("queued", item.last_error or "")


def _wait(runtime: Runtime, writeback_id: int) -> Outcome | None:
    """The worker holds the command (or an older one for this appointment goes first): give it
    a moment, then let the page say "received"."""
    deadline = time.monotonic() + WAIT_SECONDS
    status = None
    while time.monotonic() < deadline:
        with runtime.store.begin("read a patient's answer") as connection:
            item = queue.find(connection, writeback_id)
        status = item.status if item is not None else None
        if status in FINISHED or status == Outcome.PENDING:
            return status
        time.sleep(POLL_SECONDS)
    return status

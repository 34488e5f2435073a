"""Applies queued write-back commands to the host through the writer plugin.

A host that is down gets the command again with back-off (30 s, 1, 2, 4 ... up to 15 minutes)
for as long as it takes: nothing is dropped while the host is away. A refused command (protected
status, a row staff changed) stops at once and is kept for staff. A command the writer cannot
handle at all is failed with that reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from threading import Event
from typing import Any

from sqlalchemy import Connection

from bridge.errors import BridgeError, HostUnavailable, SourceError, WriteBackRefused
from bridge.plugin import Reference, WriteContext, Writer
from bridge.runtime import Runtime
from bridge.store import writebacks as queue
from bridge.store.writebacks import QueuedCommand
from bridge.writeback import Outcome

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(minutes=15)
IDLE_SECONDS = 1.0


@dataclass
class WriteBackReport:
    done: int = 0
    retried: int = 0
    refused: int = 0
    failed: int = 0

    def summary(self) -> str:
        return (
            f"{self.done} applied, {self.retried} to retry, {self.refused} refused, "
            f"{self.failed} failed"
        )


def retry_delay(attempts: int) -> timedelta:
    """Back-off after ``attempts`` failed tries: 30 s doubling, capped at 15 minutes."""
    delay: timedelta = FIRST_RETRY * 2 ** min(max(attempts - 1, 0), 10)
    return min(delay, LONGEST_RETRY)


def apply_due(runtime: Runtime, limit: int | None = None) -> WriteBackReport:
    """Apply every due command (at most ``limit``); stops early while the host is down."""
    report = WriteBackReport()
    writer = runtime.writer
    if writer is None:
        return report
    reference: list[Reference] = []
    while limit is None or report.done + report.refused + report.failed < limit:
        now = runtime.clock.now()
        with runtime.store.begin("claim write-backs") as connection:
            claimed = queue.claim(connection, now, LEASE, limit=1)
        if not claimed:
            break
        outcome = _apply(runtime, writer, claimed[0], reference)
        setattr(report, outcome, getattr(report, outcome) + 1)
        if outcome == "retried" and not reference:
            break  # the host is away: the rest waits for the next round
    return report


def apply_now(runtime: Runtime, command_id: int) -> Outcome | None:
    """Apply one queued command at once, exactly as the worker would (a patient's page does
    not wait for the next round). Returns its status afterwards; None when it was not due
    (an older command for the same appointment goes first, or the worker holds it)."""
    writer = runtime.writer
    if writer is None:
        return None
    with runtime.store.begin("claim write-back") as connection:
        claimed = queue.claim(connection, runtime.clock.now(), LEASE, limit=1, only=command_id)
    if not claimed:
        return None
    _apply(runtime, writer, claimed[0], [])
    with runtime.store.begin("read write-back") as connection:
        found = queue.find(connection, command_id)
    return found.status if found is not None else None


def _apply(
    runtime: Runtime, writer: Writer[Any], item: QueuedCommand, reference: list[Reference]
) -> str:
    """Apply one claimed command and record its outcome; returns the report field to count it
    under. ``reference`` caches the host's reference data across one round (empty when the
    host could not even be read, which ends the round)."""
    try:
        if not reference:
            reference.append(runtime.source.reference())
        context = WriteContext(reference[0], runtime.zone(reference[0]), runtime.clock.now())
        applied = writer.apply(item.command, context)
    except HostUnavailable as exc:
        reference.clear()
        _record_retry(runtime, item, str(exc))
        return "retried"
    except WriteBackRefused as exc:
        _record(runtime, queue.mark_refused, item, str(exc))
        log.warning("write-back %s (%s) refused: %s", item.id, item.command.kind.value, exc)
        return "refused"
    except NotImplementedError as exc:
        _record(runtime, queue.mark_failed, item, str(exc))
        return "failed"
    except (SourceError, BridgeError) as exc:
        _record_retry(runtime, item, str(exc))
        return "retried"
    with runtime.store.begin("record write-back") as connection:
        queue.mark_done(connection, item, runtime.clock.now(), applied)
    log.info("write-back %s (%s) applied: %s", item.id, item.command.kind.value, applied.detail)
    return "done"


def _record_retry(runtime: Runtime, item: QueuedCommand, error: str) -> None:
    now = runtime.clock.now()
    with runtime.store.begin("record write-back retry") as connection:
        queue.mark_retry(connection, item, now, now + retry_delay(item.attempts), error)


def _record(
    runtime: Runtime,
    action: Callable[[Connection, QueuedCommand, datetime, str], None],
    item: QueuedCommand,
    reason: str,
) -> None:
    with runtime.store.begin("record write-back") as connection:
        action(connection, item, runtime.clock.now(), reason)


def run_worker(runtime: Runtime, stopping: Event) -> None:
    """The service's write-back loop: apply what is due, then wait a second."""
    while not stopping.is_set():
        try:
            apply_due(runtime)
        except BridgeError as exc:
            log.error("write-back round failed: %s", exc)
        stopping.wait(IDLE_SECONDS)

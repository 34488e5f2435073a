"""Applying stored messages to the mirror, in a process of its own.

Mapping a message in full and applying it costs several times what receiving it costs (about a
millisecond of CPU against 0.2). Done on a thread of the listener's process it took the
interpreter lock from the thread that ACKs, a few milliseconds at a time, in the middle of a
burst; in its own process, at the lowest priority, it runs on CPU time the listener leaves.
The listener's process tells it each time it stored messages (one byte down a pipe, per batch);
it applies once the feed has been quiet for ``QUIET_SECONDS``, and during a flood at least every
``MAX_LAG_SECONDS``: hundreds of messages applied together cost a third of what they cost one by
one. It sends each ``ApplyReport`` back, for ``on_change`` (``bridge run`` plans a new booking
within seconds).

Its commits on PostgreSQL do not wait for the disk (``synchronous_commit=off``): a transaction
lost to a power cut takes the mirror's change and the message's ``applied`` status together, and
the message is applied again. Waiting would compete with the listener's journal for the disk.

The process is started with ``spawn``: a fork would copy the listener's threads' locks in
whatever state they were. It opens its own connection to the store; on SQLite it and the
listener's storing thread take turns through SQLite's own lock. Should it die, it is started
again; what was stored meanwhile waits in the store as ``pending`` and is applied then.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sqlalchemy import event

from bridge.clock import Clock
from bridge.errors import BridgeError
from bridge.hl7.feed import Feed
from bridge.hl7.intake import Intake
from bridge.hl7.mirror import BATCH, ApplyReport, apply_prepared, load_pending, prepare
from bridge.logs import setup_logging
from bridge.store import Store

log = logging.getLogger(__name__)

QUIET_SECONDS = 0.1
MAX_LAG_SECONDS = 5.0
RESTART_SECONDS = 1.0
MAX_RESTART_SECONDS = 60.0
NICENESS = 19
STORED, STOP = b"s", b"x"


def apply_all(store: Store, clock: Clock, intake: Intake) -> ApplyReport:
    """Apply what is pending, batch by batch, until a batch is not full (messages arriving
    meanwhile wait for the next round: applying them one by one as they come would cost more
    and hold the write lock as often). Each batch is read and mapped outside any write
    transaction."""
    total = ApplyReport()
    while True:
        with store.begin("read pending HL7 messages") as connection:
            rows = load_pending(connection, BATCH)
        if not rows:
            return total
        prepared = prepare(rows, intake)
        with store.begin("apply HL7 messages") as connection:
            total.add(apply_prepared(connection, prepared, clock.now()))
        if len(rows) < BATCH:
            return total


@dataclass(frozen=True)
class _Job:
    """What the applying process needs (it is sent there pickled)."""

    store_url: str
    feed: Feed
    clock: Clock
    log_level: int
    log_file: Path | None


class Applier:
    """Starts, feeds and stops the applying process; calls ``on_change`` with its reports."""

    def __init__(
        self,
        store_url: str,
        feed: Feed,
        clock: Clock,
        on_change: Callable[[ApplyReport], None] = lambda report: None,
    ) -> None:
        root = logging.getLogger()
        ours = [h for h in root.handlers if getattr(h, "_bridge", False)]  # setup_logging's
        log_file = getattr(ours[0], "baseFilename", None) if ours else None
        self._job = _Job(store_url, feed, clock, root.level, Path(log_file) if log_file else None)
        self.on_change = on_change
        self._context = multiprocessing.get_context("spawn")
        self._channel: Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self._sending = threading.Lock()
        self._stopping = threading.Event()
        self._reader = threading.Thread(target=self._read, name="hl7-apply-reports", daemon=True)

    def start(self) -> None:
        self._spawn()
        self._reader.start()

    @property
    def process_id(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def stored(self) -> None:
        """Messages to apply were stored (the storing thread calls this)."""
        self._send(STORED)

    def stop(self, timeout: float = 60) -> None:
        """Let the process apply what is pending and end; wait for it."""
        self._stopping.set()
        self._send(STOP)
        if self._process is not None:
            self._process.join(timeout)
            if self._process.is_alive():
                log.warning("the HL7 applying process did not stop in time; ending it")
                self._process.terminate()
                self._process.join(5)
        if self._reader.is_alive():
            self._reader.join(timeout=5)

    def _spawn(self) -> None:
        ours, theirs = self._context.Pipe()
        process = self._context.Process(
            target=_serve, args=(self._job, theirs), name="hl7-apply", daemon=True
        )
        process.start()
        theirs.close()
        self._channel, self._process = ours, process

    def _send(self, signal: bytes) -> None:
        with self._sending:
            if self._channel is None:
                return
            try:
                self._channel.send_bytes(signal)
            except OSError:  # the process ended; the reader restarts it
                log.debug("HL7 applying process not reachable", exc_info=True)

    def _read(self) -> None:
        pause = RESTART_SECONDS
        while True:
            channel = self._channel
            assert channel is not None
            try:
                report = channel.recv()
            except (EOFError, OSError):
                if self._stopping.is_set():
                    return
                code = self._process.exitcode if self._process is not None else None
                log.error(
                    "the HL7 applying process ended (exit code %s); starting it again in %.0f s",
                    code,
                    pause,
                )
                if self._stopping.wait(pause):
                    return
                pause = min(pause * 2, MAX_RESTART_SECONDS)
                with self._sending:
                    channel.close()
                    self._spawn()
                continue
            pause = RESTART_SECONDS  # it works: the next failure starts from a short pause
            try:
                self.on_change(report)
            except Exception:
                log.exception("HL7 change callback failed")


def _serve(job: _Job, channel: Connection) -> None:
    """The applying process: apply what a previous run left, then whenever the feed pauses (or
    at least every ``MAX_LAG_SECONDS``), and once more when asked to stop."""
    setup_logging(logging.getLevelName(job.log_level), job.log_file)
    _lower_priority()
    try:
        store = Store.open(job.store_url, apply_migrations=False)
    except BridgeError as exc:  # one line, not a traceback; the listener starts it again
        log.error("the HL7 applying process cannot open the store: %s", exc)
        raise SystemExit(1) from exc
    if store.dialect == "postgresql":
        event.listen(store.engine, "connect", _relaxed_commits)
    intake = job.feed.intake()
    try:
        _apply(store, job.clock, intake, channel)
        unapplied_since: float | None = None
        while True:
            if channel.poll(QUIET_SECONDS):
                try:
                    signal = channel.recv_bytes()
                except EOFError:  # the listener's process is gone
                    break
                if signal == STOP:
                    break
                unapplied_since = unapplied_since or time.monotonic()
                if time.monotonic() - unapplied_since < MAX_LAG_SECONDS:
                    continue  # a burst: the ACKs first, the mirror at the latest MAX_LAG later
            elif unapplied_since is None:
                continue
            unapplied_since = None
            if not _apply(store, job.clock, intake, channel):
                unapplied_since = time.monotonic()
                time.sleep(RESTART_SECONDS)
        _apply(store, job.clock, intake, channel)
    finally:
        store.close()
        channel.close()


def _lower_priority() -> None:
    """Background work: the applying process runs on CPU time nothing else wants (Linux's
    ``SCHED_IDLE``; elsewhere at the lowest ``nice``), so when it and the listener compete for a
    core, the ACKs go first, at once. The listener waits on its disk syncs much of the time, so
    even a flood leaves the mirror time to keep up; should the cores be busy for good, it
    catches up when they are not."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        return
    except (AttributeError, OSError):
        pass
    try:
        os.nice(NICENESS)
    except (AttributeError, OSError):  # not allowed: run as is
        log.debug("could not lower the applying process's priority", exc_info=True)


def _relaxed_commits(dbapi_connection: Any, _record: Any) -> None:
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
    dbapi_connection.commit()


def _apply(store: Store, clock: Clock, intake: Intake, channel: Connection) -> bool:
    """Apply what is pending and report it; False when the store failed (retried later)."""
    try:
        report = apply_all(store, clock, intake)
    except BridgeError as exc:
        log.error("applying HL7 messages failed, will retry: %s", exc)
        return False
    if report:
        log.debug("HL7: %d messages taken, %d applied", report.handled, report.applied)
        try:
            channel.send(report)
        except OSError:
            log.debug("the listener's process is gone", exc_info=True)
    return True

"""The listener with its two helper threads, started and stopped as one.

- the event loop thread: the MLLP listener;
- the storing thread (``Committer``): group commits, then the ACKs go out;
- the applying thread: maps and applies stored messages to the mirror in batches once the feed
  pauses (and at least every few seconds), then tells ``on_change`` (``bridge run`` uses it to
  plan a new booking within seconds).

Messages stored but not yet applied when the process dies are applied at the next start.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from bridge.clock import Clock
from bridge.errors import BridgeError
from bridge.hl7.committer import Committer
from bridge.hl7.feed import Feed
from bridge.hl7.intake import Intake
from bridge.hl7.listener import Listener, tls_context
from bridge.hl7.mirror import BATCH, ApplyReport, apply_prepared, load_pending, prepare
from bridge.store import Store

log = logging.getLogger(__name__)

# When to apply what was stored: once the feed has been quiet for QUIET seconds, and during a
# burst at least every MAX_LAG seconds. Applying costs CPU the ACKs need (one interpreter lock
# for all threads), and hundreds of messages applied together cost a third of what they cost
# one by one. The mirror is fresh within a fraction of a second on a real feed, and within
# MAX_LAG seconds under a sustained flood.
QUIET_SECONDS = 0.1
MAX_LAG_SECONDS = 5.0
# Python hands the GIL to another thread every 5 ms by default: the storing thread back from
# its disk sync would wait behind the applying thread's CPU work for that long, per message.
SWITCH_INTERVAL = 0.0005


def apply_all(
    store: Store, clock: Clock, intake: Intake, writing: AbstractContextManager[Any] | None = None
) -> ApplyReport:
    """Apply what is pending, batch by batch, until a batch is not full (messages arriving
    meanwhile wait for the next round: applying them one by one as they come would cost more
    and hold the write lock as often). Each batch is read and mapped outside any write
    transaction; ``writing`` (the listener's write lock) is held only to apply it."""
    total = ApplyReport()
    while True:
        with store.begin("read pending HL7 messages") as connection:
            rows = load_pending(connection, BATCH)
        if not rows:
            return total
        prepared = prepare(rows, intake)
        with writing or nullcontext(), store.begin("apply HL7 messages") as connection:
            total.add(apply_prepared(connection, prepared, clock.now()))
        if len(rows) < BATCH:
            return total


class Hl7Service:
    """Listener + storing thread + applying thread."""

    def __init__(
        self,
        store: Store,
        feed: Feed,
        clock: Clock,
        base_dir: Path,
        on_change: Callable[[ApplyReport], None] = lambda report: None,
    ) -> None:
        self.store = store
        self.feed = feed
        self.clock = clock
        self.on_change = on_change
        self._stopping = threading.Event()
        # Set (monotonic time) by the storing thread when it stored something to apply; plain
        # attributes, read by the applying thread every QUIET_SECONDS, so a busy feed does not
        # wake it a thousand times a second.
        self._unapplied_since: float | None = None
        self._last_stored = 0.0
        # SQLite has one writer at a time: the storing thread and the applying thread take
        # turns here rather than in SQLite's busy handler, which sleeps a millisecond or more
        # before it tries again. PostgreSQL locks rows, and they write different ones.
        self._writing = threading.Lock() if store.dialect == "sqlite" else None
        self.intake = feed.intake()
        self.committer = Committer(store, clock, on_stored=self._stored, writing=self._writing)
        self.listener = Listener(
            feed.settings,
            self.intake,
            self.committer,
            clock,
            feed.mapping.writeback.sending_application,
            tls_context(feed.settings, base_dir),
        )
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self._loop.run_forever, name="hl7-mllp")
        self._applier = threading.Thread(target=self._apply_loop, name="hl7-apply", daemon=True)
        self.port: int | None = None

    def start(self, host: str | None = None, port: int | None = None) -> int:
        """Start everything; returns the bound port. ``StoreError`` / ``OSError`` if it cannot."""
        settings = self.feed.settings
        if sys.getswitchinterval() > SWITCH_INTERVAL:
            sys.setswitchinterval(SWITCH_INTERVAL)
        # What exists now (modules, settings, engines, the mapping) lives as long as the
        # process: moved out of the collector's way, a full collection no longer walks it in
        # the middle of a burst of messages (tens of milliseconds, stalling every ACK).
        gc.collect()
        gc.freeze()
        self.committer.start()
        self._applier.start()
        self._loop_thread.start()
        bound: Future[int] = asyncio.run_coroutine_threadsafe(
            self.listener.start(
                host or settings.listen_host, settings.listen_port if port is None else port
            ),
            self._loop,
        )
        try:
            self.port = bound.result(timeout=30)
        except BaseException:
            self.stop()
            raise
        log.info("HL7 MLLP listener on %s:%s", host or settings.listen_host, self.port)
        return self.port

    def stop(self) -> None:
        """Stop accepting, finish what is stored, apply it, and stop the threads."""
        if self._loop.is_running():
            closing = asyncio.run_coroutine_threadsafe(self.listener.close(), self._loop)
            try:
                closing.result(timeout=10)
            except Exception:
                log.warning("HL7 listener did not close cleanly", exc_info=True)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._loop_thread.is_alive():
            self._loop_thread.join(timeout=10)
        if not self._loop.is_running() and not self._loop.is_closed():
            self._loop.close()
        self.committer.stop()
        self._stopping.set()
        if self._applier.is_alive():
            self._applier.join(timeout=30)

    def run(
        self, stopping: threading.Event, host: str | None = None, port: int | None = None
    ) -> None:
        """Serve until ``stopping`` is set."""
        self.start(host, port)
        try:
            stopping.wait()
        finally:
            self.stop()

    def _stored(self) -> None:
        """The storing thread committed messages to apply."""
        now = time.monotonic()
        self._last_stored = now
        if self._unapplied_since is None:
            self._unapplied_since = now

    def _apply_loop(self) -> None:
        self._apply_once()  # what a previous run stored but did not apply
        while not self._stopping.wait(QUIET_SECONDS):
            since = self._unapplied_since
            if since is None:
                continue
            now = time.monotonic()
            if now - self._last_stored < QUIET_SECONDS and now - since < MAX_LAG_SECONDS:
                continue  # a burst: the ACKs first, the mirror at the latest MAX_LAG later
            self._unapplied_since = None
            self._apply_once()
        self._apply_once()

    def _apply_once(self) -> None:
        try:
            report = apply_all(self.store, self.clock, self.intake, self._writing)
        except BridgeError as exc:
            log.error("applying HL7 messages failed, will retry: %s", exc)
            return
        if report:
            log.debug("HL7: %d messages taken, %d applied", report.handled, report.applied)
            try:
                self.on_change(report)
            except Exception:
                log.exception("HL7 change callback failed")

"""The listener with its two helper threads, started and stopped as one.

- the event loop thread: the MLLP listener;
- the storing thread (``Committer``): group commits, then the ACKs go out;
- the applying thread: applies stored messages to the mirror in batches, then tells
  ``on_change`` (``bridge run`` uses it to plan a new booking within seconds).

Messages stored but not yet applied when the process dies are applied at the next start.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

from bridge.clock import Clock
from bridge.errors import BridgeError
from bridge.hl7.committer import Committer
from bridge.hl7.feed import Feed
from bridge.hl7.listener import Listener, tls_context
from bridge.hl7.mirror import ApplyReport, apply_pending
from bridge.store import Store

log = logging.getLogger(__name__)

APPLY_IDLE_SECONDS = 1.0
# Between two rounds of applying: lets a burst gather into one batch instead of taking the
# store's write lock from the storing thread after every commit.
APPLY_PAUSE_SECONDS = 0.05


def apply_all(store: Store, clock: Clock) -> ApplyReport:
    """Apply every pending message, batch by batch."""
    total = ApplyReport()
    while True:
        with store.begin("apply HL7 messages") as connection:
            report = apply_pending(connection, clock.now())
        if not report:
            return total
        total.applied += report.applied
        total.stale += report.stale
        total.changed |= report.changed


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
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self.committer = Committer(store, clock, on_stored=self._wake.set)
        self.listener = Listener(
            feed.settings,
            feed.intake(),
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
        self._wake.set()
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

    def _apply_loop(self) -> None:
        self._apply_once()  # what a previous run stored but did not apply
        while not self._stopping.is_set():
            self._wake.wait(APPLY_IDLE_SECONDS)
            self._stopping.wait(APPLY_PAUSE_SECONDS)
            self._wake.clear()
            self._apply_once()
        self._apply_once()

    def _apply_once(self) -> None:
        try:
            report = apply_all(self.store, self.clock)
        except BridgeError as exc:
            log.error("applying HL7 messages failed, will retry: %s", exc)
            return
        if report:
            log.debug("HL7: %d messages applied, %d stale", report.applied, report.stale)
            try:
                self.on_change(report)
            except Exception:
                log.exception("HL7 change callback failed")

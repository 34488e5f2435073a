"""The listener, its storing thread, its journal and its applying process, started and stopped
as one.

- the event loop thread: the MLLP listener, which journals each message before its ACK;
- the storing thread (``Drainer``): journaled messages into the store, in batches;
- the applying process (``Applier``): maps and applies stored messages to the mirror in batches
  once the feed pauses (and at least every few seconds), then tells ``on_change`` (``bridge
  run`` uses it to plan a new booking within seconds).

Messages journaled but not yet stored when the process dies are stored at the next start, and
messages stored but not yet applied are applied then.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

from bridge.clock import Clock
from bridge.hl7.applier import Applier
from bridge.hl7.drainer import MARK, Drainer
from bridge.hl7.feed import Feed
from bridge.hl7.inbox import stored_up_to
from bridge.hl7.journal import SEGMENT_BYTES, Journal
from bridge.hl7.listener import Listener, tls_context
from bridge.hl7.mirror import ApplyReport
from bridge.store import Store

log = logging.getLogger(__name__)

# Python hands the GIL to another thread every 5 ms by default: the event loop back from the
# journal's sync would wait behind the storing thread's CPU work for that long, per message.
SWITCH_INTERVAL = 0.0005


class Hl7Service:
    """Listener + journal + storing thread + applying process."""

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
        self.intake = feed.intake()
        folder = feed.settings.journal
        self.journal = Journal(
            folder if folder.is_absolute() else base_dir / folder,
            max(SEGMENT_BYTES, 2 * feed.settings.max_frame_bytes),
        )
        self.applier = Applier(
            store.engine.url.render_as_string(hide_password=False), feed, clock, on_change
        )
        self.drainer = Drainer(
            store,
            clock,
            self.journal,
            feed.settings.store_timeout_seconds,
            on_stored=self.applier.stored,
        )
        self.listener = Listener(
            feed.settings,
            self.intake,
            self.journal,
            self.drainer,
            clock,
            feed.mapping.writeback.sending_application,
            tls_context(feed.settings, base_dir),
        )
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self._loop.run_forever, name="hl7-mllp")
        self.port: int | None = None

    def start(self, host: str | None = None, port: int | None = None) -> int:
        """Start everything; returns the bound port. ``StoreError`` / ``ConfigError`` (the
        journal) / ``OSError`` (the port) if it cannot."""
        settings = self.feed.settings
        if sys.getswitchinterval() > SWITCH_INTERVAL:
            sys.setswitchinterval(SWITCH_INTERVAL)
        with self.store.begin("read the HL7 journal mark") as connection:
            mark = stored_up_to(connection, MARK)
        store_name = self.store.engine.url.render_as_string(hide_password=True)
        recovered = self.journal.open(mark, store_name)
        limit = settings.max_frame_bytes
        self.drainer.put([(r.seq, self.intake.judge(r.entry, limit)) for r in recovered])
        self.drainer.start(mark)
        self.applier.start()
        # What exists now (modules, settings, engines, the mapping) lives as long as the
        # process: moved out of the collector's way, a full collection no longer walks it in
        # the middle of a burst of messages (tens of milliseconds, stalling every ACK).
        gc.collect()
        gc.freeze()
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
        """Stop accepting, store what is journaled, apply it, and stop the helpers."""
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
        self.journal.close(self.drainer.stop() if self.drainer.running else None)
        self.applier.stop()

    def run(
        self, stopping: threading.Event, host: str | None = None, port: int | None = None
    ) -> None:
        """Serve until ``stopping`` is set."""
        self.start(host, port)
        try:
            stopping.wait()
        finally:
            self.stop()

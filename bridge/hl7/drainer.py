"""The thread that moves journaled messages into the store, many per transaction.

The listener has already acknowledged these messages (they are in the receipt journal,
``bridge.hl7.journal``); here they get their row in ``hl7_messages``, and the transaction that
stores a batch also records the batch's last journal number, so after a crash the journal
gives the store exactly what it lacks, once. The thread waits ``GATHER_SECONDS`` after the first
message of a batch for more to come: a transaction per message would cost the listener's process
CPU it needs for the ACKs.

When the store fails, or has not taken a batch within ``store_timeout_seconds`` (a lock held
elsewhere, a database that does not answer), ``unavailable`` turns true and the listener answers
AR to new messages until the store takes messages again: the journal is a buffer for a store
that is a little slow, not a place to pile up a feed for a store that is gone. What was
journaled stays there and is stored when the store is back.

Most of these commits do not wait for the disk (SQLite ``synchronous=NORMAL``, PostgreSQL
``synchronous_commit=off``): they survive a crash of the process, and should the machine lose
power the journal still has what they held. Only a commit after which a journal segment may be
dropped waits for the disk, as does the last one before a clean stop. Every sync here would
otherwise compete with the journal's own, which the ACKs wait for.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection

from bridge.clock import Clock
from bridge.errors import StoreError
from bridge.hl7.inbox import accepted_before, mark_stored, store_batch
from bridge.hl7.intake import Received
from bridge.hl7.journal import Journal
from bridge.store import Store
from bridge.store.engine import store_errors

log = logging.getLogger(__name__)

MAX_BATCH = 500
GATHER_SECONDS = 0.25
RETRY_SECONDS = (0.2, 0.5, 1.0, 2.0)
MARK = "listener"


class Drainer:
    """Journal → store; ``put`` from the listener's thread, the rest runs on its own thread."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        journal: Journal,
        timeout: float,
        on_stored: Callable[[], None] = lambda: None,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self.store = store
        self.clock = clock
        self.journal = journal
        self.timeout = timeout
        self.on_stored = on_stored
        self.max_batch = max_batch
        self.stored_up_to = 0
        self.durable_up_to = 0  # stored and synced: the journal may drop what is below
        # (journal number, message, monotonic time handed over), oldest first; an entry leaves
        # only once its batch is committed.
        self._waiting: deque[tuple[int, Received, float]] = deque()
        self._changed = threading.Condition()
        self._stopping = False
        self._failing = False
        self._connection: Connection | None = None
        self._thread = threading.Thread(target=self._run, name="hl7-store", daemon=True)

    def start(self, stored_up_to: int) -> None:
        self.stored_up_to = self.durable_up_to = stored_up_to
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> int:
        """Store what is waiting (one try; what fails stays in the journal) and stop; returns
        the last journal number the store holds durably."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        self._thread.join(timeout=60)
        return self.durable_up_to

    def put(self, entries: Sequence[tuple[int, Received]]) -> None:
        now = time.monotonic()
        with self._changed:
            idle = not self._waiting
            self._waiting.extend((seq, item, now) for seq, item in entries)
            # Wake the thread only when it waits for a first message or a full batch: a wake-up
            # per message would take the interpreter lock from the listener a thousand times
            # a second.
            if idle or len(self._waiting) >= self.max_batch:
                self._changed.notify_all()

    @property
    def unavailable(self) -> bool:
        """The store failed, or has kept messages waiting longer than the time-out."""
        if self._failing:
            return True
        try:
            oldest = self._waiting[0][2]
        except IndexError:
            return False
        return time.monotonic() - oldest > self.timeout

    def wait_stored(self, timeout: float = 30) -> bool:
        """Wait until everything handed over is in the store (tests, shutdown)."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._waiting, timeout)

    def accepted_before(self, identity: tuple[str, str, str]) -> bool:
        """Whether a copy of this message was accepted: waiting here, or in the store. For a
        resend that the current mapping refuses (``StoreError`` when the store cannot say)."""
        with self._changed:
            waiting = list(self._waiting)
        if any(item.identity == identity and item.accepted for _, item, _ in waiting):
            return True
        with self.store.begin("look up an earlier copy of an HL7 message") as connection:
            return accepted_before(connection, identity)

    def _run(self) -> None:
        failures = 0
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._waiting or self._stopping)
                if not self._waiting:
                    break
                if not self._stopping and len(self._waiting) < self.max_batch:
                    self._changed.wait_for(
                        lambda: self._stopping or len(self._waiting) >= self.max_batch,
                        GATHER_SECONDS,
                    )
                batch = [self._waiting[n] for n in range(min(self.max_batch, len(self._waiting)))]
            if self._commit(batch):
                failures = 0
                continue
            if self._stopping:
                break  # the rest stays in the journal for the next start
            pause = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
            failures += 1
            with self._changed:
                self._changed.wait_for(lambda: self._stopping, pause)
        if self.durable_up_to < self.stored_up_to:
            self._commit([], durable=True)
        self._close()

    def _commit(self, batch: list[tuple[int, Received, float]], durable: bool = False) -> bool:
        """Store ``batch`` (none: only sync what is stored) and record its last number."""
        last = batch[-1][0] if batch else self.stored_up_to
        durable = durable or self.journal.releasable(last)
        try:
            results = self._store([item for _, item, _ in batch], last, durable)
        except StoreError as exc:
            if not self._failing:
                log.error("HL7 messages not stored, new ones are answered AR: %s", exc)
            self._failing = True
            self._close()
            return False
        except Exception:  # a bug must not stop the thread: the journal keeps the messages
            log.exception("storing %d HL7 messages failed", len(batch))
            self._failing = True
            self._close()
            return False
        if self._failing:
            log.warning("HL7 store is taking messages again")
        self._failing = False
        self.stored_up_to = last
        with self._changed:
            for _ in batch:
                self._waiting.popleft()
            self._changed.notify_all()
        if durable:
            self.durable_up_to = last
            self.journal.release(last)
        self.journal.keep_spare()
        if any(stored.accepted for stored in results):
            self.on_stored()
        return True

    def _store(self, items: list[Received], last: int, durable: bool) -> list[Any]:
        with store_errors("store HL7 messages"):
            connection = self._connect()
            sqlite = connection.dialect.name == "sqlite"
            if sqlite and durable:
                _set(connection, "PRAGMA synchronous=FULL")
            try:
                with connection.begin():
                    if durable and not sqlite:
                        connection.exec_driver_sql("SET LOCAL synchronous_commit = on")
                    now = self.clock.now()
                    results = store_batch(connection, items, now) if items else []
                    mark_stored(connection, MARK, last, now)
                    return results
            finally:
                if sqlite and durable and self._connection is not None:
                    _set(connection, "PRAGMA synchronous=NORMAL")

    def _connect(self) -> Connection:
        if self._connection is None:
            self._connection = self.store.engine.connect()
            if self._connection.dialect.name == "postgresql":
                _set(self._connection, "SET synchronous_commit = off")
        return self._connection

    def _close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except Exception:  # already broken; nothing to save
                log.debug("closing a broken store connection failed", exc_info=True)
            self._connection = None


def _set(connection: Connection, statement: str) -> None:
    """A session setting, outside any transaction."""
    connection.exec_driver_sql(statement)
    connection.commit()

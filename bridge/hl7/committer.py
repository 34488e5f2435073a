"""Group commit: one thread stores the messages of every connection, many per commit.

Each connection hands its message over and waits; the thread takes everything waiting (up to
``max_batch``), stores it with one INSERT statement (committed on its own), and only then lets
each connection send its ACK. One message costs one commit when it arrives alone (one
sender) and a share of one when many arrive together (eight senders), which is how the
listener keeps up when every commit waits for the disk. Per-connection order holds: a
connection sends its next ACK only after its previous message was stored.

On SQLite this thread's connection uses ``synchronous=FULL``: in WAL mode the default NORMAL
survives a crash of the process but may lose the last commits on power loss, and an ACK tells
the sender it may forget the message. PostgreSQL's default (``synchronous_commit=on``) already
waits for the disk.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from bridge.clock import Clock
from bridge.errors import StoreError
from bridge.hl7.inbox import Stored, store_batch
from bridge.hl7.intake import Received
from bridge.store import Store
from bridge.store.engine import store_errors

log = logging.getLogger(__name__)

MAX_BATCH = 256


@dataclass
class _Waiting:
    item: Received
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Stored]


class Committer:
    """The storing thread; connections ``submit`` from the event loop."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        on_stored: Callable[[], None] = lambda: None,
        max_batch: int = MAX_BATCH,
        writing: AbstractContextManager[Any] | None = None,
    ) -> None:
        self.store = store
        self.writing = writing or nullcontext()
        self.clock = clock
        self.on_stored = on_stored
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Waiting | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="hl7-store", daemon=True)
        self._connection: Connection | None = None
        self.batches = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def submit(self, item: Received) -> asyncio.Future[Stored]:
        """Hand ``item`` over (from the event loop); the future is done once it is committed,
        or fails with ``StoreError`` when it could not be."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Stored] = loop.create_future()
        self._queue.put(_Waiting(item, loop, future))
        return future

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            self._commit(batch)
            if stop:
                break
        self._close()

    def _commit(self, batch: list[_Waiting]) -> None:
        outcome: list[Stored] | BaseException
        try:
            outcome = self._store([w.item for w in batch])
        except StoreError as exc:
            outcome = exc
            self._close()
        except Exception as exc:  # never leave a sender waiting on a dead thread
            log.exception("storing %d HL7 messages failed", len(batch))
            outcome = StoreError(f"store: {type(exc).__name__}")
            self._close()
        self.batches += 1
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, Stored | BaseException]]] = {}
        for index, waiting in enumerate(batch):
            result = outcome if isinstance(outcome, BaseException) else outcome[index]
            by_loop.setdefault(waiting.loop, []).append((waiting.future, result))
        for loop, pairs in by_loop.items():
            loop.call_soon_threadsafe(_settle, pairs)
        if not isinstance(outcome, BaseException) and any(s.accepted for s in outcome):
            self.on_stored()

    def _store(self, items: list[Received]) -> list[Stored]:
        with store_errors("store HL7 messages"):
            if self._connection is None:
                # Autocommit: a batch is one INSERT statement, atomic on its own and committed
                # with it, one round trip instead of three (BEGIN, INSERT, COMMIT). The rare
                # statements for resends that follow are each atomic too.
                self._connection = self.store.engine.connect().execution_options(
                    isolation_level="AUTOCOMMIT"
                )
                if self._connection.dialect.name == "sqlite":
                    self._connection.exec_driver_sql("PRAGMA synchronous=FULL")
                    # Checkpoints (copying the WAL into the database, with their own syncs)
                    # are left to the other connections, off the ACK's path.
                    self._connection.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
            with self.writing:
                return store_batch(self._connection, items, self.clock.now())

    def _close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except Exception:  # already broken; nothing to save
                log.debug("closing a broken store connection failed", exc_info=True)
            self._connection = None


def _settle(pairs: list[tuple[Any, Stored | BaseException]]) -> None:
    for future, result in pairs:
        if future.done():  # the connection gave up waiting (time-out, closed)
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)

"""The MLLP listener on asyncio: persistent connections, many senders at once.

Per frame, in order: read the verdict (``Intake``), append the frame to the receipt journal and
sync it (``bridge.hl7.journal``), ACK, and hand the message to the storing thread
(``bridge.hl7.drainer``). The journal is written on the event loop's own thread, once per turn
of the loop for every frame that turn read (group commit): a hand-over to another thread and back
would cost two thread wake-ups per message, as much as the sync itself on a small virtual
machine. A connection's next message is read only after its previous ACK is written, so
per-connection order holds; connections do not wait for each other.
A connection that sends nothing for ``idle_timeout_seconds`` is closed; one over
``max_connections`` is refused. Nothing a sender does (junk, a huge frame, a broken message, a
dropped connection) stops the listener.

Test hook: when ``BRIDGE_HL7_PAUSE_BEFORE_ACK`` names a file, the listener writes the control
ids there once the frames are journaled, and then neither hands them to the storing thread nor
ACKs them, so a test can kill the process exactly between receipt and ACK, with the message in
the journal only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from pathlib import Path

from bridge.clock import Clock
from bridge.errors import ConfigError, StoreError
from bridge.hl7.ack import ACCEPTED, REFUSED, UNAVAILABLE, acks_for, stamp_of
from bridge.hl7.drainer import Drainer
from bridge.hl7.frame import Frame, FrameReader, wrap
from bridge.hl7.intake import Intake, Received
from bridge.hl7.journal import Entry, Journal
from bridge.hl7.problem import INTERNAL, Problem
from bridge.hl7.settings import Hl7Settings

log = logging.getLogger(__name__)

READ_SIZE = 65536
PAUSE_HOOK = "BRIDGE_HL7_PAUSE_BEFORE_ACK"
NOT_STORED = Problem(INTERNAL, "the message could not be stored now; send it again later")


class Listener:
    """Accepts MLLP connections and answers every frame."""

    def __init__(
        self,
        settings: Hl7Settings,
        intake: Intake,
        journal: Journal,
        drainer: Drainer,
        clock: Clock,
        application: str,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.settings = settings
        self.intake = intake
        self.journal = journal
        self.drainer = drainer
        self.clock = clock
        self.application = application
        self.tls = tls
        # Each open connection and when it last sent something (the event loop's clock).
        self.connections: dict[asyncio.StreamWriter, float] = {}
        self._pause_file = os.environ.get(PAUSE_HOOK) or None
        self._server: asyncio.Server | None = None
        self._watchdog: asyncio.Task[None] | None = None
        # Frames read this turn of the loop, journaled together by ``_write_journal``.
        self._unwritten: list[tuple[Entry, Received, asyncio.Future[bool]]] = []

    async def start(self, host: str, port: int) -> int:
        """Bind and start accepting; returns the port (useful when ``port`` is 0)."""
        self._server = await asyncio.start_server(
            self._connection,
            host,
            port,
            ssl=self.tls,
            ssl_handshake_timeout=30 if self.tls else None,
            limit=READ_SIZE,
        )
        self._watchdog = asyncio.get_running_loop().create_task(self._close_idle())
        bound: int = self._server.sockets[0].getsockname()[1]
        return bound

    async def _close_idle(self) -> None:
        """One timer for every connection's idle time-out (a time-out on each read would cost
        a timer and a task per message)."""
        limit = self.settings.idle_timeout_seconds
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(1.0, limit / 4))
            now = loop.time()
            for writer, last in list(self.connections.items()):
                if now - last > limit:
                    log.info("closing idle MLLP connection from %s", _peer(writer))
                    del self.connections[writer]
                    writer.close()

    async def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self._server is not None:
            self._server.close()
        for writer in list(self.connections):
            writer.close()
        if self._server is not None:
            await self._server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _peer(writer)
        if len(self.connections) >= self.settings.max_connections:
            log.warning(
                "refusing MLLP connection from %s: %d already open", peer, len(self.connections)
            )
            writer.close()
            return
        loop = asyncio.get_running_loop()
        self.connections[writer] = loop.time()
        frames = FrameReader(self.settings.max_frame_bytes)
        log.info("MLLP connection from %s", peer)
        try:
            while True:
                data = await reader.read(READ_SIZE)
                if not data:
                    break
                if writer in self.connections:
                    self.connections[writer] = loop.time()
                junk = frames.junk
                for frame in frames.feed(data):
                    await self._answer(frame, peer, writer)
                if frames.junk > junk:
                    log.warning(
                        "dropped %d bytes outside MLLP frames from %s", frames.junk - junk, peer
                    )
            if frames.inside_frame:
                log.warning("connection from %s closed in the middle of a message", peer)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
            log.info("MLLP connection from %s ended: %s", peer, type(exc).__name__)
        finally:
            self.connections.pop(writer, None)
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()

    async def _answer(self, frame: Frame, peer: str, writer: asyncio.StreamWriter) -> None:
        now = self.clock.now()
        origin = f"mllp {peer}"
        entry = Entry(now, origin, frame.payload, frame.size if frame.oversized else 0)
        item = self.intake.judge(entry, self.settings.max_frame_bytes)
        outcome, problem = await self._keep(entry, item)
        acks = acks_for(item.header, outcome, problem, stamp_of(now), self.application)
        for ack in acks:
            writer.write(wrap(ack.encode(item.charset, "replace")))
        await writer.drain()
        if outcome == ACCEPTED:
            log.debug("%s %s from %s: stored", item.header.kind, item.header.control_id, peer)
        else:
            where = problem.location if problem else ""
            log.info(
                "%s %s from %s: %s %s %s",
                item.header.kind or "(no type)",
                item.header.control_id[:40] or "(no id)",
                peer,
                "refused" if outcome == REFUSED else "not stored, asked to resend",
                problem.code if problem else "",
                where,
            )

    async def _keep(self, entry: Entry, item: Received) -> tuple[str, Problem | None]:
        """Journal the frame; the outcome the ACK reports."""
        if self.drainer.unavailable:
            return UNAVAILABLE, NOT_STORED
        loop = asyncio.get_running_loop()
        kept: asyncio.Future[bool] = loop.create_future()
        self._unwritten.append((entry, item, kept))
        if len(self.connections) <= 1:
            self._write_journal()  # no other sender to share the sync with: at once
        elif len(self._unwritten) == 1:
            loop.call_soon(self._write_journal)
        if not await kept:
            return UNAVAILABLE, NOT_STORED
        if item.accepted:
            return ACCEPTED, None
        if await self._accepted_before(item):
            return ACCEPTED, None
        return REFUSED, item.problem

    def _write_journal(self) -> None:
        """Journal every frame read this turn with one sync, then let their ACKs go. Blocks the
        loop for the sync: the frames that arrive meanwhile are read next turn, together."""
        batch, self._unwritten = self._unwritten, []
        if not batch:  # written at once since this call was planned
            return
        try:
            numbers = self.journal.append([entry for entry, _, _ in batch])
        except OSError as exc:
            log.error("HL7 journal not written, answering AR: %s", exc)
            for _, _, kept in batch:
                kept.set_result(False)
            return
        if self._pause_file is not None:
            ids = "\n".join(item.header.control_id for _, item, _ in batch)
            Path(self._pause_file).write_text(ids, encoding="utf-8")
            return
        self.drainer.put([(n, item) for n, (_, item, _) in zip(numbers, batch, strict=True)])
        for _, _, kept in batch:
            kept.set_result(True)

    async def _accepted_before(self, item: Received) -> bool:
        """A resend of a message accepted earlier is acknowledged as accepted again, even when
        the current mapping would refuse it: the message is in and will not be read again."""
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(self.drainer.accepted_before, item.identity),
                self.settings.store_timeout_seconds,
            )
        except (StoreError, TimeoutError):
            return False


def _peer(writer: asyncio.StreamWriter) -> str:
    address = writer.get_extra_info("peername")
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return str(address or "?")


def tls_context(settings: Hl7Settings, base: Path) -> ssl.SSLContext | None:
    """The listener's TLS context, or None for plain MLLP."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(base / settings.tls_cert, base / settings.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"hl7.tls_cert = {str(settings.tls_cert)!r}, hl7.tls_key: cannot load them ({exc})"
        ) from exc
    if settings.tls_client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        try:
            context.load_verify_locations(base / settings.tls_client_ca)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"hl7.tls_client_ca = {str(settings.tls_client_ca)!r}: cannot load it ({exc})"
            ) from exc
    return context

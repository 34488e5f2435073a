"""HL7 over real sockets: the listener in-process on a free port (SQLite and PostgreSQL stores),
a plain MLLP sender, and a test MLLP host (the write-back's peer) that can answer AA, AR or AE,
stay silent, or be down."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bridge.clock import SystemClock
from bridge.hl7.applier import apply_all
from bridge.hl7.feed import Feed
from bridge.hl7.frame import FrameReader, wrap
from bridge.hl7.parse import parse
from bridge.hl7.service import Hl7Service
from bridge.hl7.settings import Hl7Settings
from bridge.store import Store


@dataclass
class Running:
    """A listener on 127.0.0.1:``port`` and the store behind it."""

    service: Hl7Service
    store: Store
    port: int

    def settle(self) -> None:
        """Store what was journaled and apply it (the service's threads do it too, within a
        second)."""
        assert self.service.drainer.wait_stored(), "journaled messages were not stored"
        apply_all(self.store, SystemClock(), self.service.intake)


@pytest.fixture
def listener(store_url: str, tmp_path: Path) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(mapping: str = "hl7-siu", timezone: str = "Europe/London", **options: Any) -> Running:
        settings = Hl7Settings(**options)
        feed = Feed.load(mapping, tmp_path, timezone, "GB", settings)
        store = Store.open(store_url)
        try:
            service = Hl7Service(store, feed, SystemClock(), tmp_path)
        except Exception:
            store.close()
            raise
        port = service.start("127.0.0.1", 0)
        running = Running(service, store, port)
        started.append(running)
        return running

    yield start
    for running in started:
        running.service.stop()
        running.store.close()


class Sender:
    """One MLLP connection, as a sending system holds it."""

    def __init__(self, port: int, timeout: float = 10) -> None:
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.frames = FrameReader(1 << 20)
        self.pending: list[bytes] = []

    def send(self, message: bytes, acks: int = 1) -> list[str]:
        """Send one framed message; return the ``acks`` ACK messages that come back."""
        self.socket.sendall(wrap(message))
        return self.read(acks)

    def send_raw(self, data: bytes, acks: int) -> list[str]:
        self.socket.sendall(data)
        return self.read(acks)

    def read(self, count: int) -> list[str]:
        while len(self.pending) < count:
            data = self.socket.recv(65536)
            if not data:
                raise ConnectionError("the listener closed the connection")
            self.pending += [f.payload for f in self.frames.feed(data)]
        taken, self.pending = self.pending[:count], self.pending[count:]
        return [t.decode("utf-8", "replace") for t in taken]

    def closed_by_peer(self, within: float) -> bool:
        self.socket.settimeout(within)
        try:
            return self.socket.recv(1) == b""
        except TimeoutError:
            return False
        except ConnectionError:
            return True

    def close(self) -> None:
        self.socket.close()


def codes(acks: list[str]) -> list[str]:
    return [parse(ack).value("MSA-1") for ack in acks]


@dataclass
class Peer:
    """A host's inbound MLLP interface for write-back tests. ``answers`` is consumed one per
    message: ``AA``, ``AR``, ``AE`` or ``silent`` (no ACK); when empty, ``AA``. Like a real
    interface engine it applies a control id once: ``applied`` holds each message it accepted,
    de-duplicated on MSH-10."""

    port: int = 0
    answers: list[str] = field(default_factory=list)
    received: list[str] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    _server: socket.socket | None = None
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Peer:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen()
        server.settimeout(0.1)
        self.port = server.getsockname()[1]
        self._server = server
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._server is not None:
            self._server.close()
            self._server = None

    def _serve(self) -> None:
        assert self._server is not None
        connections: list[socket.socket] = []
        while not self._stop.is_set():
            try:
                connection, _ = self._server.accept()
            except TimeoutError:
                continue
            connections.append(connection)
            threading.Thread(target=self._talk, args=(connection,), daemon=True).start()
        for connection in connections:
            connection.close()

    def _talk(self, connection: socket.socket) -> None:
        frames = FrameReader(1 << 20)
        connection.settimeout(0.2)
        while not self._stop.is_set():
            try:
                data = connection.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            for frame in frames.feed(data):
                text = frame.payload.decode("utf-8")
                self.received.append(text)
                message = parse(text)
                control = message.value("MSH-10")
                answer = self.answers.pop(0) if self.answers else "AA"
                if answer == "silent":
                    if control not in [parse(m).value("MSH-10") for m in self.applied]:
                        self.applied.append(text)
                    continue
                if answer == "AA" and control not in [
                    parse(m).value("MSH-10") for m in self.applied
                ]:
                    self.applied.append(text)
                reason = "|unknown appointment" if answer == "AE" else ""
                header = f"MSH|^~\\&|HOST||BRIDGE||20260327||ACK|A{len(self.received)}|P|2.5.1"
                ack = f"{header}\rMSA|{answer}|{control}{reason}\r"
                try:
                    connection.sendall(wrap(ack.encode()))
                except OSError:
                    return


@pytest.fixture
def peer() -> Iterator[Peer]:
    running = Peer().start()
    yield running
    running.stop()


def wait_for(check: Callable[[], bool], seconds: float = 10) -> None:
    """Integration tests only: poll a condition on real time."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)

"""Fixtures for the patient pages and write-back against a real MariaDB OpenEMR host.

``tcp_proxy`` stands between the bridge and MariaDB so a test can take the host away and bring it
back (the database itself keeps running: other tests share it).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bridge.demo.host import OpenEmrHost

WRITE_BACK_TABLES = ("pnotes", "patient_tracker", "patient_tracker_element")


@pytest.fixture(autouse=True)
def _empty_write_back_tables(host: OpenEmrHost) -> None:
    """The genuine database is shared by the session: start each test without notes or trackers."""
    with host.engine.begin() as connection:
        for name in WRITE_BACK_TABLES:
            connection.execute(sa.text(f"DELETE FROM `{name}`"))


class TcpProxy:
    """Forwards a loopback port to MariaDB; ``down()`` refuses and cuts connections."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = True
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            server = socket.create_connection(self.target)
            with self._lock:
                self._open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def down(self) -> None:
        self.up = False
        with self._lock:
            for s in self._open:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self._open.clear()

    def close(self) -> None:
        self._stop = True
        self.down()
        self.listener.close()


@pytest.fixture
def tcp_proxy(host_url: str) -> Iterator[Any]:
    url = make_url(host_url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 3306))
    proxy.url = url.set(port=proxy.port).render_as_string(hide_password=False)  # type: ignore[attr-defined]
    yield proxy
    proxy.close()

"""A blocking MLLP client: send one message, wait for its ACK (the write-back's link to the host).

The connection is kept open between messages (hosts' inbound interfaces expect a persistent
sender) and dropped after any error or time-out, so a late ACK can never be taken for the next
message's. An ACK is matched to its message by MSA-2; other frames are skipped.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from dataclasses import dataclass

from bridge.errors import HostUnavailable
from bridge.hl7.frame import FrameReader, wrap
from bridge.hl7.parse import ParseError, parse
from bridge.hl7.text import decode

MAX_ACK_BYTES = 1 << 20


@dataclass(frozen=True)
class Ack:
    """What the host answered: MSA-1 (AA, AE, AR, CA, CE, CR), MSA-2, and its reason text."""

    code: str
    control_id: str
    text: str
    raw: str

    @property
    def accepted(self) -> bool:
        return self.code in ("AA", "CA")

    @property
    def refused(self) -> bool:
        """Bad content: sending it again as it is will not help."""
        return self.code in ("AE", "CE")


def read_ack(payload: bytes) -> Ack | None:
    """The ACK in one frame, or None when the frame is not an ACK."""
    try:
        message = parse(decode(payload).text)
    except ParseError:
        return None
    if not message.has("MSA"):
        return None
    value = message.value
    text = value("ERR-8") or value("MSA-3") or value("ERR-1.4.2") or value("ERR-3.2")
    return Ack(value("MSA-1").upper(), value("MSA-2"), text, message.text)


class MllpClient:
    """One persistent connection to a host's inbound MLLP port."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        connect_timeout: float = 10,
        ack_timeout: float = 30,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self.ack_timeout = ack_timeout
        self.tls = tls
        self._socket: socket.socket | None = None
        self._frames = FrameReader(MAX_ACK_BYTES)
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def exchange(self, message: bytes, control_id: str) -> Ack:
        """Send ``message`` and return the host's ACK to it. ``HostUnavailable`` when the host
        cannot be reached, drops the connection, or does not answer in time."""
        with self._lock:
            try:
                connection = self._connect()
                connection.sendall(wrap(message))
                return self._wait(connection, control_id)
            except (OSError, ssl.SSLError) as exc:
                self.close()
                raise HostUnavailable(
                    f"HL7 host {self.address}: {type(exc).__name__}: {exc}"
                ) from exc

    def _connect(self) -> socket.socket:
        if self._socket is None:
            raw = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
            if self.tls is not None:
                raw = self.tls.wrap_socket(raw, server_hostname=self.host)
            self._socket = raw
            self._frames = FrameReader(MAX_ACK_BYTES)
        return self._socket

    def _wait(self, connection: socket.socket, control_id: str) -> Ack:
        deadline = time.monotonic() + self.ack_timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.close()
                raise HostUnavailable(
                    f"HL7 host {self.address}: no ACK within {self.ack_timeout:g}s"
                )
            connection.settimeout(left)
            try:
                data = connection.recv(65536)
            except TimeoutError as exc:
                self.close()
                raise HostUnavailable(
                    f"HL7 host {self.address}: no ACK within {self.ack_timeout:g}s"
                ) from exc
            if not data:
                self.close()
                raise HostUnavailable(f"HL7 host {self.address} closed the connection")
            for frame in self._frames.feed(data):
                ack = read_ack(frame.payload)
                if ack is not None and ack.control_id.strip() == control_id.strip():
                    return ack

    def close(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.close()
            self._socket = None

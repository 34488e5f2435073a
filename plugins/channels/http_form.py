"""A small HTTP client for providers' form-encoded REST APIs (the standard library's
``http.client``, one kept-alive connection per thread).

Why not a bigger client: at hundreds of messages a second the client's own overhead is most of
the bridge's cost per message, and these APIs need nothing but a form POST, a GET and basic
auth. What matters for exactly-once is *where* a request failed, and this client says it:

- ``NotSent``: the connection could not be made (refused, DNS, connect time-out) or the request
  could not be written on a fresh connection: the provider never saw it; safe to retry.
- ``NoAnswer``: the request was written and no complete answer came (read time-out, the
  connection dropped): the provider may have acted on it.

A kept-alive connection the server closed while idle is replaced before use when it has been
idle longer than ``IDLE_SECONDS``; a failure on a reused connection is still reported as
``NoAnswer`` (the settling pass asks the provider), never retried blindly.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

IDLE_SECONDS = 20.0


class NotSent(Exception):
    """The request never reached the provider."""


class NoAnswer(Exception):
    """The request went out; no complete answer came back."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON; ``ValueError`` when it is not."""
        return json.loads(self.body.decode("utf-8"))


class FormClient:
    """Form POSTs and GETs to one base URL, with optional basic auth."""

    def __init__(
        self,
        base_url: str,
        timeout: float,
        connect_timeout: float,
        auth: tuple[str, str] | None = None,
        user_agent: str = "reminder-bridge",
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.headers = {"Accept": "application/json", "User-Agent": user_agent}
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            self.headers["Authorization"] = f"Basic {token}"
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def post_form(self, path: str, form: Mapping[str, str]) -> Answer:
        body = urlencode(form)
        headers = {**self.headers, "Content-Type": "application/x-www-form-urlencoded"}
        return self._request("POST", self.prefix + path, body.encode("utf-8"), headers)

    def get(self, path: str, params: Mapping[str, str] | None = None) -> Answer:
        target = self.prefix + path if path.startswith("/") else path
        if params:
            target += ("&" if "?" in target else "?") + urlencode(params)
        return self._request("GET", target, None, dict(self.headers))

    def _request(
        self, method: str, target: str, body: bytes | None, headers: dict[str, str]
    ) -> Answer:
        connection, fresh = self._connection()
        try:
            connection.request(method, target, body=body, headers=headers)
        except OSError as exc:
            self._drop(connection)
            if fresh:
                raise NotSent(f"cannot send the request ({type(exc).__name__})") from exc
            raise NoAnswer(f"connection lost while sending ({type(exc).__name__})") from exc
        try:
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self._drop(connection)
            raise NoAnswer(f"no answer ({type(exc).__name__})") from exc
        self._local.used = time.monotonic()
        if response.will_close:
            self._drop(connection)
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data)

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        existing: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        used = getattr(self._local, "used", 0.0)
        if existing is not None and time.monotonic() - used < IDLE_SECONDS:
            return existing, False
        if existing is not None:
            self._drop(existing)
        connection: http.client.HTTPConnection
        if self.scheme == "https":
            connection = http.client.HTTPSConnection(
                self.host,
                self.port,
                timeout=self.connect_timeout,
                context=ssl.create_default_context(),
            )
        else:
            connection = http.client.HTTPConnection(
                self.host, self.port, timeout=self.connect_timeout
            )
        try:
            connection.connect()
        except OSError as exc:
            connection.close()
            raise NotSent(f"cannot connect ({type(exc).__name__})") from exc
        if connection.sock is not None:
            connection.sock.settimeout(self.timeout)
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._local.connection = connection
        self._local.used = time.monotonic()
        with self._lock:
            self._all.append(connection)
        return connection, True

    def _drop(self, connection: http.client.HTTPConnection) -> None:
        connection.close()
        if getattr(self._local, "connection", None) is connection:
            self._local.connection = None

    def close(self) -> None:
        with self._lock:
            for connection in self._all:
                connection.close()
            self._all.clear()

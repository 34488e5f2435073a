"""Local servers speaking the providers' wire formats, for the delivery tests.

- ``FakeTwilio``: Twilio's REST API 2010-04-01 (``Messages.json`` and ``Calls.json``: form
  POSTs with basic auth, JSON resources with ``sid`` / ``status`` / ``num_segments``, errors as
  ``{"code", "message", "more_info", "status"}``, list resources newest first with
  ``next_page_uri`` paging), as documented at twilio.com/docs/sms/api/message-resource and
  /docs/voice/api/call-resource.
- ``FakeVonage``: the Vonage (Nexmo) SMS API ``POST /sms/json`` (HTTP 200 with a per-part
  ``status``; ``error-text`` when not "0"), as documented at developer.vonage.com/api/sms.

Each takes a script of what to do with the next requests (``queue("429", "timeout")``):
``ok``; ``429`` and ``503`` (nothing created, ``Retry-After``); ``500`` (created, then a server
error); ``timeout`` (created, then no answer until the client gives up); ``drop`` (created, then
the connection is closed); ``malformed`` (created, then a body that is not the resource);
``error:<code>`` (Twilio: a 400 with that error code; Vonage: that status). What was created is
kept in ``messages`` / ``calls`` so a test can count what a patient would have received.
"""

from __future__ import annotations

import base64
import json
import random
import socket
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from bridge.segments import count_segments

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "synthetic-auth-token"
API_KEY = "synthkey"
API_SECRET = "synthetic-secret"
HANG_SECONDS = 3.0

TWILIO_ERRORS = {
    "21211": "The 'To' number is not a valid phone number.",
    "21610": "Attempt to send to unsubscribed recipient",
    "21614": "'To' number is not a valid mobile number",
    "21408": "Permission to send an SMS has not been enabled for the region",
}
VONAGE_ERRORS = {
    "1": "Throttled",
    "2": "Missing Parameters",
    "3": "Invalid Parameters",
    "4": "Invalid Credentials",
    "5": "Internal Error",
    "6": "Invalid Message",
    "7": "Number Barred",
    "9": "Partner Quota Violation",
    "15": "Illegal Sender Address - rejected",
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that died mid-request (the fault test kills it) is not an error here."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class FakeProvider:
    """A provider on 127.0.0.1 in a thread, with a script of how to answer."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.script: deque[str] = deque()
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.hang_seconds = HANG_SECONDS
        self.latency = 0.0
        self.chaos: list[tuple[str, float]] = []
        self.random = random.Random(20260327)
        self.on_request: Callable[[], None] | None = None
        self.server = _Server(("127.0.0.1", 0), self._handler_class())
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def queue(self, *modes: str) -> None:
        with self.lock:
            self.script.extend(modes)

    def next_mode(self) -> str:
        """The scripted answer, else one drawn from ``chaos`` (mode, weight), else ``ok``."""
        if self.latency:
            time.sleep(self.latency)
        if self.on_request is not None:
            self.on_request()
        with self.lock:
            if self.script:
                return self.script.popleft()
            if self.chaos:
                modes, weights = zip(*self.chaos, strict=True)
                return self.random.choices(modes, weights)[0]
            return "ok"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        raise NotImplementedError

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in two writes: without this, Nagle's algorithm and
                # the client's delayed ACK add 40 ms to every request on loopback.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_POST(self) -> None:
                provider.handle(self, "POST")

            def do_GET(self) -> None:
                provider.handle(self, "GET")

            def log_message(self, *_: Any) -> None:
                return

        return Handler


def read_form(handler: BaseHTTPRequestHandler) -> dict[str, str] | None:
    """The form body, or None when it is not form-encoded."""
    length = int(handler.headers.get("Content-Length") or 0)
    raw = handler.rfile.read(length).decode("utf-8") if length else ""
    if "application/x-www-form-urlencoded" not in handler.headers.get("Content-Type", ""):
        return None
    return {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}


def reply(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: Any,
    headers: dict[str, str] | None = None,
) -> None:
    data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(data)


def hang_then_drop(provider: FakeProvider, handler: BaseHTTPRequestHandler, hang: bool) -> None:
    if hang:
        time.sleep(provider.hang_seconds)
    handler.close_connection = True
    handler.connection.shutdown(2)


class FakeTwilio(FakeProvider):
    """Twilio's Messages and Calls resources."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []
        super().__init__()

    def sent_to(self, number: str) -> list[dict[str, Any]]:
        with self.lock:
            return [m for m in self.messages if m["to"] == number]

    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        prefix = f"/2010-04-01/Accounts/{ACCOUNT_SID}/"
        if not parts.path.startswith(prefix) or not parts.path.endswith(".json"):
            reply(handler, 404, {"code": 20404, "message": "The requested resource was not found"})
            return
        resource = parts.path[len(prefix) : -len(".json")]
        if resource not in ("Messages", "Calls"):
            reply(handler, 404, {"code": 20404, "message": "The requested resource was not found"})
            return
        expected = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        if handler.headers.get("Authorization") != f"Basic {expected}":
            if method == "POST":
                read_form(handler)
            reply(handler, 401, _error(20003, "Authenticate", 401))
            return
        if method == "GET":
            self._list(handler, resource, {k: v[0] for k, v in parse_qs(parts.query).items()})
            return
        form = read_form(handler)
        if form is None:
            reply(handler, 400, _error(20001, "Content-Type must be form-encoded", 400))
            return
        with self.lock:
            self.requests.append((method, resource, form))
        mode = self.next_mode()
        if mode in ("429", "503"):
            code = 20429 if mode == "429" else 20503
            reply(
                handler,
                int(mode),
                _error(code, "Too Many Requests", int(mode)),
                {"Retry-After": "2"},
            )
            return
        if mode.startswith("error:"):
            code = mode.split(":", 1)[1]
            reply(handler, 400, _error(int(code), TWILIO_ERRORS.get(code, "Error"), 400))
            return
        if not form.get("To"):
            reply(handler, 400, _error(21604, "A 'To' phone number is required.", 400))
            return
        item = self._create(resource, form)
        if mode == "500":
            reply(handler, 500, _error(20500, "Internal Server Error", 500))
        elif mode in ("timeout", "drop"):
            hang_then_drop(self, handler, hang=mode == "timeout")
        elif mode == "malformed":
            reply(handler, 201, "<html><body>Created</body></html>")
        else:
            reply(handler, 201, item)

    def _create(self, resource: str, form: dict[str, str]) -> dict[str, Any]:
        now = datetime.now(UTC)
        prefix = "SM" if resource == "Messages" else "CA"
        sid = prefix + uuid.uuid4().hex
        base = f"/2010-04-01/Accounts/{ACCOUNT_SID}/{resource}/{sid}.json"
        item: dict[str, Any] = {
            "sid": sid,
            "account_sid": ACCOUNT_SID,
            "to": form["To"],
            "from": form.get("From") or None,
            "status": "queued",
            "date_created": format_datetime(now),
            "date_updated": format_datetime(now),
            "api_version": "2010-04-01",
            "price": None,
            "price_unit": "USD",
            "error_code": None,
            "error_message": None,
            "uri": base,
        }
        if resource == "Messages":
            segments = count_segments(form.get("Body", "")).segments
            item.update(
                body=form.get("Body", ""),
                num_segments=str(segments),
                direction="outbound-api",
                messaging_service_sid=form.get("MessagingServiceSid"),
                date_sent=None,
            )
        else:
            item.update(direction="outbound-api", start_time=None, duration=None)
        with self.lock:
            (self.messages if resource == "Messages" else self.calls).append(
                {**item, "_form": dict(form)}
            )
        return item

    def _list(self, handler: BaseHTTPRequestHandler, resource: str, query: dict[str, str]) -> None:
        with self.lock:
            items = list(self.messages if resource == "Messages" else self.calls)
        items.reverse()  # newest first, as Twilio lists them
        for field, key in (("To", "to"), ("From", "from")):
            if field in query:
                items = [i for i in items if i[key] == query[field]]
        size = int(query.get("PageSize", "50"))
        page = int(query.get("Page", "0"))
        chunk = items[page * size : (page + 1) * size]
        path = f"/2010-04-01/Accounts/{ACCOUNT_SID}/{resource}.json"
        following = {**query, "Page": str(page + 1), "PageToken": f"PA{page + 1}"}
        body = {
            resource.lower(): [{k: v for k, v in i.items() if k != "_form"} for i in chunk],
            "page": page,
            "page_size": size,
            "uri": f"{path}?{urlencode(query)}",
            "next_page_uri": f"{path}?{urlencode(following)}"
            if len(items) > (page + 1) * size
            else None,
        }
        reply(handler, 200, body)


def _error(code: int, message: str, status: int) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


class FakeVonage(FakeProvider):
    """Vonage's SMS API."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        super().__init__()

    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        if method != "POST" or urlsplit(handler.path).path != "/sms/json":
            reply(handler, 404, {"type": "not-found"})
            return
        form = read_form(handler)
        if form is None:
            reply(handler, 200, _vonage_failure("2", "Missing Parameters"))
            return
        with self.lock:
            self.requests.append((method, "sms", form))
        if form.get("api_key") != API_KEY or form.get("api_secret") != API_SECRET:
            reply(handler, 200, _vonage_failure("4", "Bad Credentials"))
            return
        mode = self.next_mode()
        if mode == "429":
            reply(handler, 429, {"type": "throttled", "title": "Too Many Requests"})
            return
        if mode.startswith("error:"):
            code = mode.split(":", 1)[1]
            reply(handler, 200, _vonage_failure(code, VONAGE_ERRORS.get(code, "Error")))
            return
        for field in ("from", "to", "text"):
            if not form.get(field):
                reply(handler, 200, _vonage_failure("2", f"Missing {field}"))
                return
        parts = max(count_segments(form["text"]).segments, 1)
        created = []
        for index in range(parts):
            entry = {
                "to": form["to"],
                "message-id": uuid.uuid4().hex[:16].upper(),
                "status": "0",
                "remaining-balance": "10.00000000",
                "message-price": "0.00680000",
                "network": "310090",
            }
            if form.get("client-ref"):
                entry["client-ref"] = form["client-ref"]
            if mode == "partial" and index == parts - 1:
                entry = {"status": "5", "error-text": "Internal Error"}
            created.append(entry)
        with self.lock:
            self.messages.append({**form, "_parts": created})
        body = {"message-count": str(parts), "messages": created}
        if mode == "500":
            reply(handler, 500, "Internal Server Error")
        elif mode in ("timeout", "drop"):
            hang_then_drop(self, handler, hang=mode == "timeout")
        elif mode == "malformed":
            reply(handler, 200, "<html>ok</html>")
        else:
            reply(handler, 200, body)


def _vonage_failure(code: str, text: str) -> dict[str, Any]:
    return {"message-count": "1", "messages": [{"status": code, "error-text": text}]}


@contextmanager
def running(provider: FakeProvider) -> Iterator[FakeProvider]:
    try:
        yield provider
    finally:
        provider.close()

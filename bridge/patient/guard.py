"""What stands between the internet and the patient pages: rate limits, the client's address,
CSRF tokens and security headers.

Rate limits are sliding windows kept in memory (one process; several bridge processes behind a
load balancer each keep their own), on the injected clock so tests never sleep. CSRF uses the
double-submit pattern: a random cookie (HttpOnly, SameSite=Strict) and, in each form, an HMAC of
that cookie, the link and the form's name, so a token works for one form of one link only;
``Origin``, when the browser sends it, must be the bridge's own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
import threading
from collections import OrderedDict, deque
from datetime import timedelta
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from bridge.clock import Clock
from bridge.web.app import SECURITY_HEADERS

CSRF_COOKIE = "rb_csrf"
MAX_KEYS = 50_000


def page_headers(https: bool) -> dict[str, str]:
    """Headers for every patient page: no caching, no framing, no scripts, no referrer."""
    headers = {
        **SECURITY_HEADERS,
        "Content-Security-Policy": (
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'"
        ),
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
        # Not no-referrer: with it Chromium sends "Origin: null" on the page's own form posts.
        # same-origin still keeps the link (the token) from every other site.
        "Referrer-Policy": "same-origin",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
    }
    if https:
        headers["Strict-Transport-Security"] = "max-age=31536000"
    return headers


class RateLimiter:
    """At most ``limit`` events per ``window`` for each key (thread-safe, memory-bounded)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._events: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, key: str, limit: int, window: timedelta) -> float | None:
        """Count one event; None when allowed, else the seconds until the next one is."""
        now = self.clock.now().timestamp()
        with self._lock:
            events = self._events.get(key)
            if events is None:
                events = self._events[key] = deque(maxlen=limit)
                while len(self._events) > MAX_KEYS:
                    self._events.popitem(last=False)
            self._events.move_to_end(key)
            horizon = now - window.total_seconds()
            while events and events[0] <= horizon:
                events.popleft()
            if len(events) >= limit:
                return max(events[0] - horizon, 1.0)
            events.append(now)
            return None

    def blocked(self, key: str, limit: int, window: timedelta) -> float | None:
        """Like ``hit`` but counts nothing: is ``key`` over its limit now?"""
        now = self.clock.now().timestamp()
        with self._lock:
            events = self._events.get(key)
            if not events:
                return None
            horizon = now - window.total_seconds()
            recent = [t for t in events if t > horizon]
            if len(recent) >= limit:
                return max(recent[0] - horizon, 1.0)
            return None


def client_address(request: Request, trusted: list[str]) -> str:
    """The patient's address: the peer, or behind a trusted proxy the last address in
    ``X-Forwarded-For`` that no trusted proxy added."""
    peer = request.client.host if request.client else "unknown"
    networks = [ipaddress.ip_network(t, strict=False) for t in trusted]
    if not networks or not _within(peer, networks):
        return peer
    forwarded = [a.strip() for a in request.headers.get("x-forwarded-for", "").split(",")]
    for address in reversed([a for a in forwarded if a]):
        if not _within(address, networks):
            return address
    return peer


def _within(address: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


class Csrf:
    """Double-submit CSRF tokens bound to one link and one form, with their cookie: ``name``
    on ``path``. A browser without the cookie gets a fresh one with the first form it is shown
    (``token_for``, then ``attach`` on that page's response)."""

    def __init__(self, key: bytes, cookie: str = CSRF_COOKIE, path: str = "/a/") -> None:
        self._key = key
        self.cookie = cookie
        self.path = path
        self._state = f"csrf_{cookie}"

    def token_for(self, request: Request, scope: str, form: str) -> str:
        """The token a form of ``scope`` carries, for this browser's cookie."""
        cookie = request.cookies.get(self.cookie)
        if not cookie:
            cookie = getattr(request.state, self._state, None) or self.new_cookie()
            setattr(request.state, self._state, cookie)
        return self.token(cookie, scope, form)

    def valid_for(
        self, request: Request, scope: str, form: str, submitted: object, base_url: str
    ) -> bool:
        """The post came from this site and carries the token of this browser's cookie."""
        return same_origin(request, base_url) and self.valid(
            request.cookies.get(self.cookie),
            scope,
            form,
            submitted if isinstance(submitted, str) else None,
        )

    def attach(self, request: Request, response: Response, https: bool) -> None:
        """Set the fresh cookie ``token_for`` made while this response's page was built."""
        fresh = getattr(request.state, self._state, None)
        if fresh and self.cookie not in request.cookies:
            response.set_cookie(
                self.cookie, fresh, path=self.path, secure=https, httponly=True, samesite="strict"
            )

    @staticmethod
    def new_cookie() -> str:
        return secrets.token_urlsafe(24)

    def token(self, cookie: str, scope: str, form: str) -> str:
        digest = hmac.new(self._key, f"{cookie}|{scope}|{form}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:18]).decode("ascii")

    def valid(self, cookie: str | None, scope: str, form: str, submitted: str | None) -> bool:
        if not cookie or not submitted:
            return False
        return hmac.compare_digest(self.token(cookie, scope, form), submitted)


def same_origin(request: Request, base_url: str) -> bool:
    """True unless the browser says the form came from another site (``Origin``)."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    allowed = {_origin(base_url), f"{request.url.scheme}://{request.headers.get('host', '')}"}
    return origin.rstrip("/") in allowed


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"

"""Rate limits on an injected clock, the client's address behind proxies, CSRF tokens."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request

from bridge.clock import ManualClock, parse_instant
from bridge.patient.guard import Csrf, RateLimiter, client_address, page_headers, same_origin

MINUTE = timedelta(minutes=1)


def request(peer: str = "203.0.113.9", headers: dict[str, str] | None = None) -> Request:
    scope: dict[str, Any] = {
        "type": "http",
        "method": "POST",
        "path": "/a/x",
        "scheme": "http",
        "server": ("127.0.0.1", 8470),
        "client": (peer, 5555),
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }
    return Request(scope)


def test_a_sliding_window_lets_the_limit_through_then_says_how_long_to_wait() -> None:
    clock = ManualClock(parse_instant("2026-03-27T08:00:00Z"))
    limiter = RateLimiter(clock)
    assert all(limiter.hit("ip", 3, MINUTE) is None for _ in range(3))
    wait = limiter.hit("ip", 3, MINUTE)
    assert wait is not None and 59 <= wait <= 60
    assert limiter.hit("other", 3, MINUTE) is None
    clock.advance(timedelta(seconds=61))
    assert limiter.hit("ip", 3, MINUTE) is None


def test_blocked_counts_nothing() -> None:
    limiter = RateLimiter(ManualClock(parse_instant("2026-03-27T08:00:00Z")))
    for _ in range(5):
        assert limiter.blocked("ip", 2, MINUTE) is None
    limiter.hit("ip", 2, MINUTE)
    limiter.hit("ip", 2, MINUTE)
    assert limiter.blocked("ip", 2, MINUTE) is not None


def test_forwarded_for_is_believed_only_from_a_trusted_proxy() -> None:
    spoofed = {"X-Forwarded-For": "198.51.100.1, 192.0.2.7"}
    assert client_address(request("203.0.113.9", spoofed), []) == "203.0.113.9"
    assert client_address(request("10.0.0.2", spoofed), ["10.0.0.0/8"]) == "192.0.2.7"
    chained = {"X-Forwarded-For": "192.0.2.7, 10.0.0.3"}
    assert client_address(request("10.0.0.2", chained), ["10.0.0.0/8"]) == "192.0.2.7"
    assert client_address(request("10.0.0.2", {}), ["10.0.0.0/8"]) == "10.0.0.2"


def test_a_csrf_token_works_for_one_cookie_one_link_and_one_form() -> None:
    csrf = Csrf(b"k" * 32)
    cookie = Csrf.new_cookie()
    token = csrf.token(cookie, "link1", "verify")
    assert csrf.valid(cookie, "link1", "verify", token)
    assert not csrf.valid(cookie, "link2", "verify", token)
    assert not csrf.valid(cookie, "link1", "answer", token)
    assert not csrf.valid(Csrf.new_cookie(), "link1", "verify", token)
    assert not csrf.valid(None, "link1", "verify", token)
    assert not csrf.valid(cookie, "link1", "verify", None)


def test_a_form_from_another_site_is_refused() -> None:
    base = "https://bridge.clinic.example"
    assert same_origin(request(headers={"Host": "bridge.clinic.example"}), base)
    assert same_origin(request(headers={"Origin": base}), base)
    assert not same_origin(request(headers={"Origin": "https://evil.example"}), base)


def test_pages_forbid_framing_scripts_and_caching() -> None:
    headers = page_headers(https=True)
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["Cache-Control"] == "no-store"
    assert headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" in headers
    assert "Strict-Transport-Security" not in page_headers(https=False)

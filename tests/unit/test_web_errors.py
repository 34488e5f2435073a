"""Errors of the web app: an unknown path and a bug are answered with the security headers and
nothing from the request echoed back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from starlette.requests import Request

from bridge.clock import SystemClock
from bridge.demo import DEMO_TIMEZONE, demo_overrides
from bridge.demo.scenario import seed_demo_host
from bridge.runtime import Runtime
from bridge.settings import load_settings
from bridge.web.app import SECURITY_HEADERS, create_app

Client = Callable[[str, str], httpx.Response]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    settings = load_settings(None, **demo_overrides(tmp_path, DEMO_TIMEZONE, None))
    clock = SystemClock()
    seed_demo_host(settings.host_url() or "", DEMO_TIMEZONE, clock.now())
    runtime = Runtime.build(settings, clock)
    app = create_app(runtime)

    def broken(_: Request) -> None:
        raise RuntimeError("patient Alice Sample +12025550101")

    app.add_route("/broken/{token}", broken)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)

    async def send(method: str, path: str) -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://bridge.test") as http:
            return await http.request(method, path)

    yield lambda method, path: asyncio.run(send(method, path))
    runtime.close()


def test_an_unknown_path_gets_the_headers_and_no_echo(client: Client) -> None:
    answer = client("GET", "/no-such-page/<script>")
    assert answer.status_code == 404
    assert "script" not in answer.text and "Not found" in answer.text
    for name, value in SECURITY_HEADERS.items():
        assert answer.headers[name] == value


def test_a_wrong_method_is_refused_with_the_headers(client: Client) -> None:
    answer = client("DELETE", "/health")
    assert answer.status_code == 405
    assert answer.headers["X-Frame-Options"] == "DENY"


def test_a_bug_is_a_short_page_and_a_log_line_without_the_token(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="bridge.web.app"):
        answer = client("GET", "/broken/SECRETTOKEN123")
    assert answer.status_code == 500
    assert answer.text.count("Something went wrong") == 2  # title and heading
    assert "Alice" not in answer.text and "SECRETTOKEN123" not in answer.text
    assert answer.headers["Content-Security-Policy"] == SECURITY_HEADERS["Content-Security-Policy"]
    [record] = [r for r in caplog.records if r.name == "bridge.web.app"]
    assert record.getMessage() == "web: RuntimeError on GET /broken/{token}"

"""Fixtures for the delivery tests: the local provider servers and plugins pointed at them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from bridge.clock import ManualClock, parse_instant
from bridge.plugin import PluginContext, load_plugin
from tests.integration.delivery.providers import (
    ACCOUNT_SID,
    API_KEY,
    API_SECRET,
    AUTH_TOKEN,
    FakeTwilio,
    FakeVonage,
)

NOW = "2026-03-27T10:00:00Z"
SENDER = "+12025550150"
PATIENT = "+12025550101"


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    server = FakeTwilio()
    yield server
    server.close()


@pytest.fixture
def vonage() -> Iterator[FakeVonage]:
    server = FakeVonage()
    yield server
    server.close()


@pytest.fixture
def context(tmp_path: Path) -> PluginContext:
    return PluginContext(clock=ManualClock(parse_instant(NOW)), base_dir=tmp_path)


def twilio_options(server: FakeTwilio, **extra: Any) -> dict[str, Any]:
    return {
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "api_base": server.url,
        "from_number": SENDER,
        "timeout_seconds": 1.0,
        "webhook_base": "https://bridge.example.test",
        **extra,
    }


def vonage_options(server: FakeVonage, **extra: Any) -> dict[str, Any]:
    return {
        "api_key": API_KEY,
        "api_secret": API_SECRET,
        "sender": SENDER,
        "api_base": server.url,
        "timeout_seconds": 1.0,
        "webhook_base": "https://bridge.example.test",
        "signature_secret": "synthetic-signature-secret",
        **extra,
    }


_OPEN: list[Any] = []


def plugin(kind: str, options: dict[str, Any], context: PluginContext) -> Any:
    """A channel plugin; closed when the test ends."""
    loaded = load_plugin("channel", kind, options, context, "channels.sms")
    _OPEN.append(loaded)
    return loaded


@pytest.fixture(autouse=True)
def _close_plugins() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def at(text: str) -> datetime:
    return parse_instant(text)


# --- a bridge with a SQLite OpenEMR host, a store on both dialects, the fake providers --------

import sqlalchemy as sa  # noqa: E402

from bridge.demo.host import OpenEmrHost  # noqa: E402
from bridge.demo.openemr_tables import create_openemr_tables  # noqa: E402
from tests.integration.conftest import Bridge, write_settings  # noqa: E402

IN_WINDOW = "2026-03-27T09:00:00Z"  # 10:00 in Rome, inside the 9-19 window
D28 = __import__("datetime").date(2026, 3, 28)


@pytest.fixture
def sqlite_host(tmp_path: Path) -> Iterator[OpenEmrHost]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'host.sqlite'}")
    create_openemr_tables(engine)
    host = OpenEmrHost(engine)
    host.seed_reference()
    host.add_facility(1, "Synthetic Clinic", phone="(202) 555-0199", city="Springfield")
    host.add_provider(1, "Ada", "Rossi", title="Dr.", facility_id=1)
    yield host
    engine.dispose()


def twilio_channels(
    server: FakeTwilio, channels: tuple[str, ...] = ("sms", "voice")
) -> dict[str, Any]:
    options = {
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "api_base": server.url,
        "timeout_seconds": 1.0,
        "webhook_base": "https://bridge.example.test",
    }
    found: dict[str, Any] = {"email": {"plugin": "outbox", "folder": "outbox"}}
    if "sms" in channels:
        found["sms"] = {"plugin": "twilio-sms", "from_number": SENDER, **options}
    if "voice" in channels:
        found["voice"] = {"plugin": "twilio-voice", **options}
    return found


@pytest.fixture
def make_bridge(
    tmp_path: Path, sqlite_host: OpenEmrHost, store_url: str, twilio: FakeTwilio
) -> Iterator[Any]:
    made: list[Bridge] = []

    def factory(now: str = IN_WINDOW, **sections: Any) -> Bridge:
        folder = tmp_path / f"bridge{len(made)}"
        folder.mkdir()
        sections.setdefault("channels", twilio_channels(twilio))
        sections["clinic"] = {
            "name": "Synthetic Clinic",
            "timezone": "Europe/Rome",
            "phone": "+12025550199",
            "caller_id": "+12025550150",
            **sections.get("clinic", {}),
        }
        path = write_settings(folder, str(sqlite_host.engine.url), store_url, **sections)
        bridge = Bridge(folder, path, ManualClock(parse_instant(now)))
        made.append(bridge)
        return bridge

    yield factory
    for bridge in made:
        bridge.close()


def patients(host: OpenEmrHost, count: int, **values: Any) -> None:
    names = ["Alice", "Bruno", "Chiara", "Dario", "Elena", "Fabio", "Giulia", "Hugo"]
    for pid in range(1, count + 1):
        host.add_patient(pid, names[(pid - 1) % len(names)], "Synthetic", **values)


# --- the bridge's web server, for the webhooks ------------------------------------------------

import socket  # noqa: E402
import time  # noqa: E402

import httpx  # noqa: E402

from bridge.web.server import start_in_thread  # noqa: E402
from plugins.channels.twilio_rest import signature as twilio_signature  # noqa: E402

PUBLIC = "https://bridge.example.test"


class Web:
    """The bridge's web app on a loopback port, and a client that can sign like Twilio."""

    def __init__(self, bridge: Bridge) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.server = start_in_thread(bridge.runtime, self.port)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10)

    def twilio(
        self, path: str, params: dict[str, str], *, token: str = AUTH_TOKEN, sign: bool = True
    ) -> httpx.Response:
        headers = {}
        if sign:
            headers["X-Twilio-Signature"] = twilio_signature(token, PUBLIC + path, params)
        return self.http.post(path, data=params, headers=headers)

    def close(self) -> None:
        self.http.close()
        self.server.should_exit = True
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.05)


@pytest.fixture
def web() -> Iterator[Any]:
    opened: list[Web] = []

    def start(bridge: Bridge) -> Web:
        opened.append(Web(bridge))
        return opened[-1]

    yield start
    for item in opened:
        item.close()

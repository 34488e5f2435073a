"""The patient pages over real HTTP (uvicorn on loopback): every unusable link looks the same,
forms need their CSRF token, addresses are rate-limited, a changed appointment is said so and
never answered blindly, confirmations open only inside the portal window."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from bridge.clock import parse_instant
from bridge.demo.host import OpenEmrHost
from bridge.web.server import start_in_thread
from tests.integration.conftest import Bridge
from tests.integration.patient.test_browser import free_port

pytestmark = pytest.mark.mariadb

NOW = "2026-03-27T08:00:00Z"
TOMORROW = date(2026, 3, 28)


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.sqlite'}"


@pytest.fixture
def site(make_bridge: Any, host: OpenEmrHost) -> Iterator[Any]:
    def start(**patient: Any) -> tuple[Bridge, str]:
        port = free_port()
        bridge: Bridge = make_bridge(
            NOW,
            web={"port": port, "base_url": f"http://127.0.0.1:{port}"},
            reminders={"days_ahead": 7, "channels": ["sms"], "start_hour": 0, "end_hour": 24},
            patient=patient,
        )
        bridge.cycle()
        bridge.dispatch()
        servers.append(start_in_thread(bridge.runtime, port))
        return bridge, f"http://127.0.0.1:{port}"

    servers: list[Any] = []
    for pid in (3, 4, 5, 6):
        host.add_patient(pid, "Pat", f"Synthetic{pid}", DOB=date(1980, 4, pid))
    yield start
    for server in servers:
        server.should_exit = True
    time.sleep(0.2)


def links(bridge: Bridge) -> list[str]:
    return [
        re.search(r"/a/[\w.-]+", m["text"]).group(0)  # type: ignore[union-attr]
        for m in sorted(bridge.outbox("sms"), key=lambda m: m["tags"]["appointment"])
    ]


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def verify(client: httpx.Client, path: str, pid: int, day: int | None = None) -> httpx.Response:
    page = client.get(path)
    form = {"csrf": csrf(page.text), "day": str(day or pid), "month": "4", "year": "1980"}
    return client.post(path, data=form)


def test_every_unusable_link_gets_the_same_answer(site: Any, host: OpenEmrHost) -> None:
    for pid in (3, 4, 5):
        host.add_appointment(pid, TOMORROW, f"1{pid}:00")
    bridge, base = site(failures_per_hour=100)
    answered, locked, expiring = links(bridge)
    with httpx.Client(base_url=base, follow_redirects=True) as patient:
        assert verify(patient, answered, 3).status_code == 200
        page = patient.get(answered)
        form = {
            "csrf": csrf(page.text),
            "v": re.search(r'name="v" value="(\w+)"', page.text).group(1),
        }  # type: ignore[union-attr]
        done = patient.post(f"{answered}/answer", data={**form, "action": "confirm"})
        assert "Your appointment is confirmed." in done.text
    with httpx.Client(base_url=base, follow_redirects=True) as guesser:
        tries = [verify(guesser, locked, 4, day=9) for _ in range(5)]
        assert [r.status_code for r in tries] == [400] * 4 + [404]  # the fifth locks it
        assert "You can try 1 more time." in tries[3].text
        token = answered.removeprefix("/a/")
        tampered = "/a/" + token[:5] + ("A" if token[5] != "A" else "B") + token[6:]
        other_purpose = "/a/" + "A" * 20 + "." + "B" * 16
        seen = {
            path: guesser.get(path)
            for path in (answered, locked, tampered, other_purpose, "/a/not-a-token", "/a/%00")
        }
        bridge.clock.set(parse_instant("2026-03-28T15:00:00Z"))  # past the third one's start
        seen[expiring] = guesser.get(expiring)
    assert {r.status_code for r in seen.values()} == {404}
    assert len({r.text for r in seen.values()}) == 1
    assert "This link cannot be used" in seen[answered].text
    shown = "".join(r.text for r in seen.values())
    assert not any(secret in shown for secret in ("Synthetic3", "Synthetic4", "Synthetic5", "1:00"))


def test_forms_need_their_own_csrf_token_and_origin(site: Any, host: OpenEmrHost) -> None:
    host.add_appointment(3, TOMORROW, "10:00")
    host.add_appointment(4, TOMORROW, "11:00")
    bridge, base = site()
    mine, other = links(bridge)
    with httpx.Client(base_url=base, follow_redirects=True) as client:
        token_for_other = csrf(client.get(other).text)
        client.get(mine)
        bad = [
            client.post(mine, data={"day": "3", "month": "4", "year": "1980"}),
            client.post(
                mine, data={"csrf": token_for_other, "day": "3", "month": "4", "year": "1980"}
            ),
            client.post(
                mine,
                data={
                    "csrf": csrf(client.get(mine).text),
                    "day": "3",
                    "month": "4",
                    "year": "1980",
                },
                headers={"Origin": "https://evil.example"},
            ),
        ]
        assert [r.status_code for r in bad] == [403, 403, 403]
        assert "This page has expired" in bad[0].text
        assert verify(client, mine, 3).status_code == 200  # no try was spent on them
    with bridge.runtime.store.begin() as connection:
        kept = connection.execute(sa.text("SELECT kind, ref, count FROM rejects")).all()
    assert ("patient-form", "verify:csrf:csrf_failed", 3) in [tuple(r) for r in kept]


def test_one_address_is_rate_limited(site: Any, host: OpenEmrHost) -> None:
    host.add_appointment(3, TOMORROW, "10:00")
    bridge, base = site(requests_per_minute=5)
    [path] = links(bridge)
    with httpx.Client(base_url=base, follow_redirects=True) as client:
        codes = [client.get(path).status_code for _ in range(6)]
        limited = client.get(path)
    assert codes == [200] * 5 + [429]
    assert int(limited.headers["retry-after"]) >= 1 and "Too many attempts" in limited.text
    bridge.clock.advance(timedelta(minutes=2))
    with httpx.Client(base_url=base, follow_redirects=True) as client:
        assert client.get(path).status_code == 200


def test_a_changed_appointment_is_shown_and_never_answered_blindly(
    site: Any, host: OpenEmrHost
) -> None:
    eid = host.add_appointment(3, TOMORROW, "10:00")
    bridge, base = site()
    [path] = links(bridge)
    host.set_appointment(eid, pc_startTime="11:30:00", pc_endTime="11:45:00")
    with httpx.Client(base_url=base, follow_redirects=True) as client:
        page = verify(client, path, 3)
        assert "Your appointment has changed" in page.text
        assert "10:00" in page.text and "11:30" in page.text
        form = {
            "csrf": csrf(page.text),
            "v": re.search(r'name="v" value="(\w+)"', page.text).group(1),
        }  # type: ignore[union-attr]
        host.set_appointment(eid, pc_startTime="12:00:00", pc_endTime="12:15:00")
        stale = client.post(f"{path}/answer", data={**form, "action": "confirm"})
    assert stale.status_code == 409 and "changed while this page was open" in stale.text
    assert host.rows("openemr_postcalendar_events", pc_eid=eid)[0]["pc_apptstatus"] == "-"


def test_confirming_opens_with_the_portal_window(site: Any, host: OpenEmrHost) -> None:
    host.add_appointment(3, TOMORROW + timedelta(days=5), "10:00")  # April 2, window 3 days
    bridge, base = site()
    [path] = links(bridge)
    with httpx.Client(base_url=base, follow_redirects=True) as client:
        page = verify(client, path, 3)
    assert "You can confirm from" in page.text, page.text
    assert "Monday, March 30, 2026" in page.text
    assert 'value="confirm"' not in page.text and 'value="callback"' in page.text

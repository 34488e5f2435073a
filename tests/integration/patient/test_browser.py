"""End to end in a real headless Chromium (Debian's ``chromium``, driven by Playwright): a patient
opens the link from an outbox message and confirms, another cancels with a reason; each result is
then read from OpenEMR's own tables the way its calendar reads them. Screenshots of every page are
kept under ``test-artifacts/patient/``.
"""

from __future__ import annotations

import re
import shutil
import socket
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bridge.demo.host import OpenEmrHost
from bridge.web.server import start_in_thread
from tests.conftest import ROOT, unavailable
from tests.integration.conftest import Bridge

pytestmark = pytest.mark.mariadb

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = ROOT / "test-artifacts" / "patient"
NOW = "2026-03-27T08:00:00Z"
TOMORROW = date(2026, 3, 28)
# What OpenEMR's fetchEvents() selects for single appointments (library/appointments.inc.php).
CALENDAR = sa.text(
    "SELECT pc_eid, pc_apptstatus FROM openemr_postcalendar_events "
    "WHERE ((pc_endDate >= :day AND pc_eventDate <= :day) OR "
    "(pc_endDate = '0000-00-00' AND pc_eventDate >= :day AND pc_eventDate <= :day)) "
    "AND pc_pid = :pid AND pc_eventstatus = 1"
)


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """One store is enough here: the store suites cover PostgreSQL."""
    return f"sqlite:///{tmp_path / 'store.sqlite'}"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        unavailable(f"{CHROMIUM} is missing: apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed: pip install -e '.[test]'")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            args=FLAGS,
            headless=True,
            viewport={"width": 390, "height": 844},
            is_mobile=True,
            locale="en-US",
        )
        yield context
        context.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(make_bridge: Any, host: OpenEmrHost, request: pytest.FixtureRequest) -> Iterator[Any]:
    host.add_patient(3, "Ada", "Synthetic", DOB=date(1980, 4, 7))
    host.add_patient(4, "Marco", "Prova", DOB=date(1975, 12, 1), language="italian")
    eids = (
        host.add_appointment(3, TOMORROW, "10:00"),
        host.add_appointment(4, TOMORROW, "11:30", provider=2),
    )
    port = free_port()
    bridge: Bridge = make_bridge(
        NOW,
        web={"host": "127.0.0.1", "port": port, "base_url": f"http://127.0.0.1:{port}"},
        reminders={"days_ahead": 3, "channels": ["sms", "email"], "start_hour": 0, "end_hour": 24},
    )
    bridge.cycle()
    bridge.dispatch()
    server = start_in_thread(bridge.runtime, port)
    folder = ARTIFACTS / re.sub(r"[^\w-]+", "_", request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    yield bridge, folder, eids
    server.should_exit = True
    time.sleep(0.2)


def link_in(bridge: Bridge, channel: str, appointment: str) -> str:
    for message in bridge.outbox(channel):
        if message["tags"]["appointment"] == appointment:
            found = re.search(r"http://127\.0\.0\.1:\d+/a/[\w.-]+", message["text"])
            assert found, message["text"]
            return found.group(0)
    raise AssertionError(f"no {channel} message for appointment {appointment}")


def shot(page: Any, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def calendar(host: OpenEmrHost, pid: int) -> list[tuple[int, str]]:
    with host.engine.connect() as connection:
        rows = connection.execute(CALENDAR, {"day": TOMORROW, "pid": str(pid)}).all()
    return [(int(r[0]), str(r[1])) for r in rows]


def test_a_patient_confirms_from_the_sms_link(served: Any, browser: Any, host: OpenEmrHost) -> None:
    bridge, folder, (eid, _) = served
    page = browser.new_page()
    page.goto(link_in(bridge, "sms", str(eid)))
    assert page.locator("h1").inner_text() == "Your appointment"
    assert "10:00" not in page.content()  # nothing about the visit before the birth date
    shot(page, folder, "1-confirm-birth-date")
    page.get_by_label("Month").fill("4")
    page.get_by_label("Day").fill("7")
    page.get_by_label("Year").fill("1980")
    page.get_by_role("button", name="Continue").click()
    assert "Saturday, March 28, 2026" in page.locator(".details").inner_text()
    shot(page, folder, "2-confirm-appointment")
    page.get_by_role("button", name="Confirm the appointment").click()
    assert "Your appointment is confirmed." in page.inner_text("main")
    shot(page, folder, "3-confirm-done")
    assert calendar(host, 3) == [(eid, "SMS")]
    page.goto(link_in(bridge, "sms", str(eid)))  # the same link again: its answer, not a new one
    assert "Your appointment is confirmed." in page.inner_text("main")


def test_a_patient_cancels_from_the_email_link_in_italian(
    served: Any, browser: Any, host: OpenEmrHost
) -> None:
    bridge, folder, (_, eid) = served
    page = browser.new_page()
    page.goto(link_in(bridge, "email", str(eid)))
    assert page.locator("html").get_attribute("lang") == "it"
    page.get_by_label("Giorno").fill("1")
    page.get_by_label("Mese").fill("12")
    page.get_by_label("Anno").fill("1976")  # wrong year first
    page.get_by_role("button", name="Continua").click()
    assert "non corrisponde" in page.inner_text("main")
    shot(page, folder, "4-cancel-wrong-birth-date")
    page.get_by_label("Anno").fill("1975")
    page.get_by_role("button", name="Continua").click()
    shot(page, folder, "5-cancel-appointment")
    page.get_by_role("link", name="Annullare l'appuntamento").click()
    page.get_by_label("Motivo (facoltativo)").fill("Sono in viaggio")
    shot(page, folder, "6-cancel-reason")
    page.get_by_role("button", name="Sì, annulla il mio appuntamento").click()
    assert "Il suo appuntamento è annullato." in page.inner_text("main")
    shot(page, folder, "7-cancel-done")
    assert calendar(host, 4) == [(eid, "x")]
    [note] = host.rows("pnotes", pid=4)
    assert note["body"].endswith("Reason: Sono in viaggio")
    with bridge.runtime.store.begin() as connection:
        links = connection.execute(
            sa.text("SELECT answer FROM patient_links WHERE answer IS NOT NULL")
        ).all()
    assert [tuple(r) for r in links] == [("cancel",)]

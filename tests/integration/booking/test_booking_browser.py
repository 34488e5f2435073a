"""End to end in a real headless Chromium (Debian's ``chromium``, driven by Playwright) on a
phone-sized screen: a patient due for a recall books from the link in the outbox message, and
someone new books on the public page; each booking is then read from OpenEMR's own tables the
way its calendar reads them. Every page is checked for what a phone and a screen reader need
(the patient's language, one heading, labels, nothing wider than the screen) and kept as a
screenshot under ``test-artifacts/booking/``.
"""

from __future__ import annotations

import re
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from bridge.demo.host import OpenEmrHost
from tests.conftest import ROOT
from tests.integration.booking.test_booking_pages import (
    FRIDAY,
    NOW,
    calendar,
    site,  # noqa: F401 (a fixture)
)
from tests.integration.patient.test_browser import browser  # noqa: F401 (a fixture)

pytestmark = pytest.mark.mariadb

ARTIFACTS = ROOT / "test-artifacts" / "booking"
MONDAY = date(2026, 3, 30)
# What every page must have, read in the page itself.
ACCESSIBILITY = """() => {
  const problems = [];
  const visible = (e) => e.offsetParent !== null || e.getClientRects().length > 0;
  if (document.querySelectorAll('h1').length !== 1) problems.push('not one h1');
  if (!document.title.trim()) problems.push('no title');
  let level = 0;
  for (const h of document.querySelectorAll('main h1, main h2, main h3')) {
    const next = Number(h.tagName[1]);
    if (next > level + 1) problems.push('heading skips to ' + h.tagName);
    level = next;
  }
  for (const field of document.querySelectorAll('input, select, textarea')) {
    if (field.type === 'hidden') continue;
    if (!field.labels.length && !field.getAttribute('aria-label'))
      problems.push('no label: ' + field.name);
  }
  for (const control of document.querySelectorAll('a, button')) {
    if (!visible(control)) continue;
    if (!control.innerText.trim()) problems.push('no text: ' + control.outerHTML);
    const box = control.getBoundingClientRect();
    if (control.matches('button, .button, .slot') && box.height < 44)
      problems.push('small target: ' + control.innerText);
  }
  if (document.documentElement.scrollWidth > window.innerWidth)
    problems.push('wider than the screen: ' + document.documentElement.scrollWidth);
  return {lang: document.documentElement.lang, problems: problems};
}"""


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    folder = ARTIFACTS / re.sub(r"[^\w-]+", "_", request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


class Pages:
    """One phone's tab, with a screenshot and the accessibility checks at each page."""

    def __init__(self, context: Any, folder: Path, language: str) -> None:
        self.page = context.new_page()
        self.folder = folder
        self.language = language
        self.taken: list[str] = []

    def shot(self, name: str, language: str | None = None) -> None:
        found = self.page.evaluate(ACCESSIBILITY)
        assert found == {"lang": language or self.language, "problems": []}, (name, found)
        path = self.folder / f"{len(self.taken) + 1}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.taken.append(path.name)

    def main(self) -> str:
        return " ".join(str(self.page.inner_text("main")).replace("\u202f", " ").split())


def link_in(message: dict[str, Any]) -> str:
    found = re.search(r"http://127\.0\.0\.1:\d+/b/[\w.-]+", message["text"])
    assert found, message["text"]
    return found.group(0)


def test_a_patient_books_a_recall_from_the_outbox_link(
    site: Any,  # noqa: F811
    host: OpenEmrHost,
    browser: Any,  # noqa: F811
    artifacts: Path,
) -> None:
    host.add_patient(7, "Giulietta", "Bianchini", DOB=date(1972, 5, 19), language="italian")
    host.add_appointment(7, date(2025, 9, 20), "10:00", status="@")  # a check-up, arrived
    site.start(recall={"enabled": True, "services": ["5"], "channels": ["sms", "email"]})
    bridge = site.bridge
    status, out = bridge.cli("recall", "run", "--date", FRIDAY.isoformat(), "--now", NOW)
    assert status == 0 and "1 due, 1 recalled" in out, out
    assert bridge.dispatch().sent == 2
    [sms] = bridge.outbox("sms")
    assert sms["to"] == "+12025550107" and sms["tags"]["event"] == "recall"
    assert "Controllo" in sms["text"]

    tab = Pages(browser, artifacts, "it")
    page = tab.page
    page.goto(link_in(sms))
    assert page.locator("h1").inner_text() == "Prenotare un appuntamento"
    assert not any(s in page.content() for s in ("Giulietta", "Bianchini", "Controllo"))
    tab.shot("recall-birth-date")
    page.get_by_label("Giorno").fill("19")
    page.get_by_label("Mese").fill("5")
    page.get_by_label("Anno").fill("1971")
    page.get_by_role("button", name="Continua").click()
    assert "La data di nascita non corrisponde ai nostri dati." in tab.main()
    assert page.get_by_label("Anno").input_value() == "1971"
    tab.shot("recall-wrong-birth-date")
    page.get_by_label("Anno").fill("1972")
    page.get_by_role("button", name="Continua").click()
    assert page.locator("h1").inner_text() == "Scelga un orario"
    assert "/slots?reason=checkup" in page.url  # the recall's one reason: straight to its times
    assert "venerdì 27 marzo 2026" in tab.main() and "Controllo (15 minuti)" in tab.main()
    tab.shot("recall-slots")
    page.locator("a.slot").first.click()
    assert page.locator("h1").inner_text() == "Prenotare questo orario"
    details = " ".join(page.inner_text(".details").split())
    assert "venerdì 27 marzo 2026, 11:00 – 11:15" in details and "Dr. Ada Rossi" in details
    page.get_by_label("Qualcosa che lo studio dovrebbe sapere (facoltativo)").fill("Di mattina")
    tab.shot("recall-confirm")
    page.get_by_role("button", name="Prenota questo appuntamento").click()
    assert page.locator("h1").inner_text() == "Il suo appuntamento è prenotato"
    found = re.search(r"Codice ([A-Z2-9]{8})", tab.main())
    assert found, tab.main()
    tab.shot("recall-done")

    # OpenEMR's calendar sees the appointment, marked as booked online.
    [row] = calendar(host, 7)
    assert {k: str(v) for k, v in row.items() if k != "pc_eid"} == {
        "pc_pid": "7",
        "pc_aid": "1",
        "pc_catid": "5",
        "pc_eventDate": "2026-03-27",
        "pc_startTime": "11:00:00",
        "pc_endTime": "11:15:00",
        "pc_apptstatus": "-",
        "pc_hometext": f"Booked online on 2026-03-27 at 09:00 (ref {found.group(1)}). Di mattina",
        "pc_facility": "1",
    }
    [(recall_status, booked)] = site.store("SELECT status, booking_id FROM recalls")
    [(booking_id, reference)] = site.store("SELECT id, reference FROM bookings")
    assert (recall_status, booked, reference) == ("booked", booking_id, found.group(1))
    assert bridge.dispatch().sent == 2
    confirmations = [
        m for m in bridge.outbox("sms") + bridge.outbox("email") if m["tags"]["event"] == "booked"
    ]
    assert [(m["channel"], m["tags"]["appointment"]) for m in confirmations] == [
        ("sms", str(row["pc_eid"])),
        ("email", str(row["pc_eid"])),
    ]
    assert "venerdì 27 marzo alle 11:00" in confirmations[0]["text"]
    assert found.group(1) in confirmations[1]["text"]
    page.goto(link_in(sms))  # the same link again, in the same session: its booking
    assert page.locator("h1").inner_text() == "Il suo appuntamento è prenotato"
    browser.clear_cookies()  # anyone else (another phone): the link is used
    page.goto(link_in(sms))
    assert page.locator("h1").inner_text() == "This link cannot be used"
    tab.shot("recall-link-used", "en")  # nothing says whose link it was: the browser's language
    assert len(tab.taken) == 6


def test_someone_new_books_on_the_public_page(
    site: Any,  # noqa: F811
    host: OpenEmrHost,
    browser: Any,  # noqa: F811
    artifacts: Path,
) -> None:
    site.start()
    base = site.base
    tab = Pages(browser, artifacts, "en")
    page = tab.page
    page.goto(f"{base}/book")
    tab.shot("landing")
    page.get_by_role("link", name="I am already a patient").click()
    page.get_by_label("Month").fill("4")
    page.get_by_label("Day").fill("7")
    page.get_by_label("Year").fill("1980")
    page.get_by_label("Mobile phone or email").fill("(202) 555-0103")
    tab.shot("link-request")
    page.get_by_role("button", name="Send me my link").click()
    assert page.locator("h1").inner_text() == "Thank you"
    tab.shot("link-requested")
    site.bridge.dispatch()  # the link went to the mobile on file: it opens every reason
    [sms] = site.bridge.outbox("sms")
    page.goto(link_in(sms))
    page.get_by_label("Month").fill("4")
    page.get_by_label("Day").fill("7")
    page.get_by_label("Year").fill("1980")
    page.get_by_role("button", name="Continue").click()
    assert page.locator("h1").inner_text() == "What is the appointment for?"
    names = page.locator("main a").all_inner_texts()
    assert [" ".join(n.split()) for n in names] == [
        "Check-up (15 minutes)",
        "Cleaning (45 minutes)",
    ]
    tab.shot("link-reasons")

    page.goto(f"{base}/book")
    page.get_by_role("link", name="I am a new patient").click()
    assert page.locator("h1").inner_text() == "Choose a time"
    page.get_by_role("link", name="Later days").click()
    assert "Friday, April 3, 2026" in tab.main()
    page.get_by_role("link", name="Earlier days").click()
    assert "Monday, March 30, 2026" in tab.main()
    tab.shot("new-slots")
    page.locator(f'a.slot[href$="slot=1.1.{MONDAY:%Y%m%d}0900"]').click()
    assert "Monday, March 30, 2026, 9:00 AM – 9:30 AM" in tab.main()
    page.get_by_label("First name").fill("Ninetta")
    page.get_by_label("Last name").fill("Newcomer")
    page.get_by_label("Month").fill("9")
    page.get_by_label("Day").fill("2")
    page.get_by_label("Year").fill("1990")
    page.get_by_label("Female").check()
    page.get_by_label("Mobile phone", exact=True).fill("(202) 555-0142")
    page.get_by_label("Email", exact=True).fill("ninetta@example")
    page.get_by_label("I agree to get text messages").check()
    tab.shot("new-details")
    page.get_by_role("button", name="Book this appointment").click()
    assert "There is a problem" in tab.main()
    assert page.get_by_label("Email", exact=True).get_attribute("aria-invalid") == "true"
    assert page.get_by_label("First name").input_value() == "Ninetta"
    tab.shot("new-error")
    page.get_by_label("Email", exact=True).fill("ninetta@example.test")
    page.get_by_role("button", name="Book this appointment").click()
    assert page.locator("h1").inner_text() == "Thank you for your booking"
    assert "The clinic will confirm your appointment shortly." in tab.main()
    tab.shot("new-done")

    [new] = [r for r in host.rows("patient_data") if r["fname"] == "Ninetta"]
    [row] = calendar(host, new["pid"], MONDAY)
    assert (row["pc_aid"], row["pc_catid"], row["pc_apptstatus"]) == ("1", 10, "^")
    assert (str(row["pc_startTime"]).zfill(8), str(row["pc_endTime"]).zfill(8)) == (
        "09:00:00",
        "09:30:00",
    )
    assert str(row["pc_hometext"]).startswith("Booked online on 2026-03-27 at 09:00 (ref ")
    site.bridge.dispatch()
    sent = sorted((m["to"], m["tags"]["event"]) for m in site.bridge.outbox("sms"))
    assert sent == [("+12025550103", "booking_link"), ("+12025550142", "booked")]
    assert site.bridge.outbox("email") == []  # no consent to email given
    assert len(tab.taken) == 8

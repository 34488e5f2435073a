"""The booking pages over real HTTP (uvicorn on loopback) against a real MariaDB OpenEMR host:
the public new-patient flow, personal links behind the birth date, the "send me my link" form,
CSRF on every post, invalid input, the public rate limit and unusable links.

Every response any test gets passes through ``Visitor``, which checks the security headers and
keeps every URL the pages lead to (redirects, links, form actions); each test then checks that
none of them carries patient data.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
import sqlalchemy as sa
from babel.messages.pofile import read_po
from jinja2.ext import babel_extract

from bridge.booking.invitations import invite
from bridge.booking.links import send_link
from bridge.booking.passes import PassKeys
from bridge.demo.host import OpenEmrHost
from bridge.patient.tokens import APPOINTMENT
from bridge.patient.views import LOCALES, TEMPLATES
from bridge.web.server import start_in_thread
from tests.integration.conftest import Bridge
from tests.integration.patient.test_browser import free_port

pytestmark = pytest.mark.mariadb

NOW = "2026-03-27T08:00:00Z"  # Friday, 09:00 in Rome: slots from 11:00 (two hours' notice)
FRIDAY = date(2026, 3, 27)
BOOKING: dict[str, Any] = {
    "enabled": True,
    "new_patients": True,
    "approval": "new_patients",
    "reasons": [
        {
            "key": "checkup",
            "name": {"en": "Check-up", "it": "Controllo"},
            "service": "5",
            "flows": ["existing", "recall", "treatment"],
        },
        {
            "key": "cleaning",
            "name": {"en": "Cleaning", "it": "Igiene"},
            "service": "9",
            "minutes": 45,
            "flows": ["existing", "treatment"],
        },
        {
            "key": "first",
            "name": {"en": "First visit", "it": "Prima visita"},
            "service": "10",
            "flows": ["new"],
        },
    ],
    "blocks": [
        {
            "provider": "1",
            "location": "1",
            "days": ["mon", "tue", "wed", "thu", "fri"],
            "start": "09:00",
            "end": "12:00",
        }
    ],
    "map_url": "https://maps.example.test/clinic",
    "parking": "Parking behind the building.",
}
# What OpenEMR's calendar selects for a day's single appointments (fetchEvents() in
# library/appointments.inc.php), with the columns a booking sets.
CALENDAR = sa.text(
    "SELECT pc_eid, pc_pid, pc_aid, pc_catid, pc_eventDate, pc_startTime, pc_endTime, "
    "pc_apptstatus, pc_hometext, pc_facility FROM openemr_postcalendar_events "
    "WHERE ((pc_endDate >= :day AND pc_eventDate <= :day) OR "
    "(pc_endDate = '0000-00-00' AND pc_eventDate >= :day AND pc_eventDate <= :day)) "
    "AND pc_pid = :pid AND pc_eventstatus = 1 ORDER BY pc_startTime"
)
# The synthetic patients, and what of them must never appear in a URL.
PATIENTS = {
    3: ("Agnese", "Moretti", date(1980, 4, 7)),
    5: ("Brunella", "Fittizio", date(1975, 12, 1)),
    6: ("Carlotta", "Provetta", date(1969, 6, 30)),
}
NEWCOMER = {
    "first_name": "Ninetta",
    "last_name": "Newcomer",
    "month": "9",
    "day": "2",
    "year": "1990",
    "sex": "female",
    "mobile": "(202) 555-0142",
    "email": "nina@example.test",
    "sms_ok": "yes",
    "email_ok": "yes",
    "comment": "First time here",
}
INVALID = "This link cannot be used"


def secrets_of(host: OpenEmrHost) -> list[str]:
    """Everything about the host's patients that would identify one in a URL."""
    found: list[str] = []
    for row in host.rows("patient_data"):
        born = row["DOB"]
        digits = re.sub(r"\D", "", str(row["phone_cell"] or ""))
        found += [row["fname"], row["lname"], str(row["email"]), digits, digits[-7:]]
        found += [born.isoformat(), born.strftime("%Y%m%d"), f"{born.day}/{born.month}/{born.year}"]
        found += [f"{born.month}/{born.day}/{born.year}", f"year={born.year}"]
    found += [NEWCOMER["first_name"], NEWCOMER["last_name"], NEWCOMER["email"], "5550142"]
    found += ["1990-09-02", "year=1990"]
    return [s.lower() for s in found if s and s != "none"]


def assert_secure(response: httpx.Response) -> None:
    """The headers every booking page and redirect carries."""
    headers = response.headers
    policy = headers.get("content-security-policy", "")
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy, response.url
    assert "form-action 'self'" in policy and "base-uri 'none'" in policy
    assert headers.get("x-frame-options") == "DENY"
    assert headers.get("referrer-policy") == "same-origin"
    assert headers.get("cache-control") == "no-store", response.url
    assert headers.get("x-content-type-options") == "nosniff"
    for cookie in headers.get_list("set-cookie"):
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie, cookie


class Visitor:
    """A browser without JavaScript: keeps its cookies and every URL the pages lead to."""

    def __init__(self, base: str, **headers: str) -> None:
        self.urls: list[str] = []
        self.client = httpx.Client(
            base_url=base, headers=headers, event_hooks={"response": [self._saw]}
        )

    def _saw(self, response: httpx.Response) -> None:
        response.read()
        assert_secure(response)
        self.urls.append(str(response.url))
        if "location" in response.headers:
            self.urls.append(response.headers["location"])
        self.urls += re.findall(r'(?:href|action|src)="([^"]*)"', response.text)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(path, **kwargs)

    def post(self, path: str, data: dict[str, str], **kwargs: Any) -> httpx.Response:
        return self.client.post(path, data=data, **kwargs)

    def follow(self, response: httpx.Response) -> httpx.Response:
        assert response.status_code == 303, (response.status_code, response.text[:500])
        return self.get(response.headers["location"])

    def close(self) -> None:
        self.client.close()


def assert_no_patient_data(visitors: list[Visitor], host: OpenEmrHost) -> None:
    secrets = secrets_of(host)
    urls = [unquote(unquote(u)).lower() for v in visitors for u in v.urls]
    assert urls
    for url in urls:
        leaked = [s for s in secrets if s in url]
        assert not leaked, (url, leaked)


@pytest.fixture
def site(make_bridge: Any, host: OpenEmrHost) -> Iterator[Any]:
    """Starts the bridge's web server with online booking on; yields a starter."""
    for pid, (first, last, born) in PATIENTS.items():
        host.add_patient(pid, first, last, DOB=born)
    servers: list[Any] = []
    visitors: list[Visitor] = []

    class Site:
        bridge: Bridge
        base: str

        def start(self, booking: dict[str, Any] | None = None, **sections: Any) -> Site:
            port = free_port()
            patient = {"requests_per_minute": 1000, **sections.pop("patient", {})}
            self.bridge = make_bridge(
                NOW,
                web={"port": port, "base_url": f"http://127.0.0.1:{port}"},
                booking={**BOOKING, **(booking or {})},
                reminders={"channels": ["sms", "email"], "start_hour": 0, "end_hour": 24},
                patient=patient,
                **sections,
            )
            servers.append(start_in_thread(self.bridge.runtime, port))
            self.base = f"http://127.0.0.1:{port}"
            return self

        def visitor(self, **headers: str) -> Visitor:
            visitors.append(Visitor(self.base, **headers))
            return visitors[-1]

        def check_urls(self) -> None:
            assert_no_patient_data(visitors, host)

        def store(self, query: str, **values: Any) -> list[tuple[Any, ...]]:
            with self.bridge.runtime.store.begin("test") as connection:
                return [tuple(r) for r in connection.execute(sa.text(query), values).all()]

    yield Site()
    for visitor in visitors:
        visitor.close()
    for server in servers:
        server.should_exit = True
    time.sleep(0.2)


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def main_html(html: str) -> str:
    found = re.search(r"<main[^>]*>(.*)</main>", html, re.S)
    assert found, html
    return found.group(1)


def main(html: str) -> str:
    """The page's main text, tags removed, spaces plain (Babel writes "11:00\u202fAM")."""
    found = re.search(r"<main[^>]*>(.*)</main>", html, re.S)
    assert found, html
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).replace("\u202f", " ").split())


def slot_links(html: str) -> list[str]:
    return [h.replace("&amp;", "&") for h in re.findall(r'class="slot" href="([^"]+)"', html)]


def slot_times(html: str, day_label: str) -> list[str]:
    """The times listed under one day's heading."""
    section = html.split(f"<h2>{day_label}</h2>", 1)[1].split("</ul>", 1)[0]
    found = re.findall(r'class="slot" href="[^"]+">([^<]+?) <span>', section)
    return [t.replace("\u202f", " ") for t in found]


def calendar(host: OpenEmrHost, pid: int | str, day: date = FRIDAY) -> list[dict[str, Any]]:
    with host.engine.connect() as connection:
        rows = connection.execute(CALENDAR, {"day": day, "pid": str(pid)}).all()
    return [dict(r._mapping) for r in rows]


def host_counts(host: OpenEmrHost) -> tuple[int, int]:
    """(appointments, patients) on the host."""
    return len(host.rows("openemr_postcalendar_events")), len(host.rows("patient_data"))


def personal_link(site: Any, patient: int, reason: str | None = "checkup") -> str:
    """A planned-treatment link sent to ``patient`` by SMS; its path, from the outbox."""
    send_link(site.bridge.runtime, str(patient), flow="treatment", reason=reason)
    site.bridge.dispatch()
    for message in reversed(site.bridge.outbox("sms")):
        if message["tags"]["event"] == "booking_link" and message["to"].endswith(f"{patient:02d}"):
            found = re.search(r"https?://[^/\s]+(/b/[\w.-]+)", message["text"])
            assert found, message["text"]
            return found.group(1)
    raise AssertionError(f"no booking link for patient {patient} in the outbox")


def verify(visitor: Visitor, path: str, born: date) -> httpx.Response:
    page = visitor.get(path)
    assert page.status_code == 200, page.text
    form = {"csrf": csrf(page.text), "day": str(born.day), "month": str(born.month)}
    return visitor.post(path, {**form, "year": str(born.year)})


# --- the public new-patient flow ---------------------------------------------------------------


def test_a_new_patient_books_on_the_public_page(site: Any, host: OpenEmrHost) -> None:
    site.start()
    before = host_counts(host)
    patient = site.visitor()
    landing = patient.get("/book")
    assert landing.status_code == 200 and '<html lang="en">' in landing.text
    assert 'href="/book/new"' in landing.text and 'href="/book/link"' in landing.text
    slots = patient.follow(patient.get("/book/new"))  # one reason for new patients: its slots
    assert str(slots.url).endswith("/book/new/slots?reason=first")
    assert "First visit (30 minutes)" in main(slots.text)
    # Two hours' notice from 09:00; the bridge's block ends at 12:00; a 30-minute visit.
    assert slot_times(slots.text, "Friday, March 27, 2026") == ["11:00 AM", "11:15 AM", "11:30 AM"]
    assert "Saturday" not in slots.text and "Sunday" not in slots.text
    first = slot_links(slots.text)[0]
    assert first == "/book/new/slot?reason=first&slot=1.1.202603271100"
    confirm = patient.get(first)
    text = main(confirm.text)
    assert "Friday, March 27, 2026, 11:00 AM – 11:30 AM" in text
    assert "Dr. Ada Rossi" in text and "First visit" in text and "Synthetic Clinic" in text
    form = {"csrf": csrf(confirm.text), "reason": "first", "slot": "1.1.202603271100"}
    booked = patient.post("/book/new/book", {**form, **NEWCOMER})
    assert booked.headers.get("location") == "/book/new/done", (
        booked.status_code,
        main(booked.text),
    )
    done = patient.follow(booked)
    text = main(done.text)
    assert "Thank you for your booking" in text  # new patients wait for approval
    assert "The clinic will confirm your appointment shortly." in text
    assert "Friday, March 27, 2026, 11:00 AM – 11:30 AM" in text
    assert 'href="https://maps.example.test/clinic"' in done.text
    assert "Parking behind the building." in text
    reference = re.search(r"Reference ([A-Z2-9]{8})", text)
    assert reference, text
    assert host_counts(host) == (before[0] + 1, before[1] + 1)
    [new] = [r for r in host.rows("patient_data") if r["fname"] == "Ninetta"]
    assert (new["lname"], new["DOB"], new["sex"]) == ("Newcomer", date(1990, 9, 2), "Female")
    assert new["pid"] == max(PATIENTS) + 1
    [row] = calendar(host, new["pid"])
    assert (row["pc_aid"], row["pc_catid"], row["pc_apptstatus"]) == ("1", 10, "^")
    assert (str(row["pc_startTime"]), str(row["pc_endTime"])) == ("11:00:00", "11:30:00")
    assert row["pc_hometext"] == (
        f"Booked online on 2026-03-27 at 09:00 (ref {reference.group(1)}). First time here"
    )
    assert site.bridge.dispatch().sent == 2
    [sms] = site.bridge.outbox("sms")
    assert sms["to"] == "+12025550142" and sms["tags"]["event"] == "booked"
    assert "we received your booking" in sms["text"]
    assert patient.get("/book/new/done").status_code == 200  # the result, again, on reload
    # A week asked for beyond the horizon (booking.days_ahead 60: May 26) shows the last one.
    last = patient.get("/book/new/slots?reason=first&from=2030-01-01")
    assert re.findall(r"<h2>([^<]+)</h2>", last.text)[::4] == [
        "Wednesday, May 20, 2026",
        "Tuesday, May 26, 2026",
    ]
    assert "from=2026-05-13" in last.text and "Later days" not in last.text
    site.check_urls()


def test_a_double_tap_books_once_and_shows_the_booking_twice(site: Any, host: OpenEmrHost) -> None:
    site.start()
    before = host_counts(host)
    patient = site.visitor()
    page = patient.get("/book/new/slot?reason=first&slot=1.1.202603271100")
    once = re.search(r'name="once" value="([\w-]{16,})"', page.text)
    assert once, page.text
    form = {"csrf": csrf(page.text), "once": once.group(1), "reason": "first", **NEWCOMER}
    form["slot"] = "1.1.202603271100"
    both = threading.Barrier(2)

    def tap() -> httpx.Response:
        both.wait()
        return patient.post("/book/new/book", form)

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: tap(), range(2)))
    assert [r.headers.get("location") for r in answers] == ["/book/new/done"] * 2
    cookies = {r.headers["set-cookie"].split(";")[0] for r in answers}
    assert len(cookies) == 1  # the same booking's result, twice
    assert host_counts(host) == (before[0] + 1, before[1] + 1)
    assert site.store("SELECT count(*) FROM bookings") == [(1,)]
    assert "Thank you for your booking" in main(patient.get("/book/new/done").text)
    site.check_urls()


LANGUAGES = [
    ("fr-FR,fr;q=0.9", "fr", "Choisissez un horaire", "vendredi 27 mars 2026"),
    ("es-MX", "es", "Elija una hora", "viernes, 27 de marzo de 2026"),
    ("de-DE, it;q=0.5", "it", "Scelga un orario", "venerdì 27 marzo 2026"),
    ("de-DE", "en", "Choose a time", "Friday, March 27, 2026"),
]


def test_the_public_pages_speak_the_browser_language(site: Any, host: OpenEmrHost) -> None:
    site.start()  # a US clinic: fr_US and it_US are no locales, the language alone is used
    for accept, lang, heading, day in LANGUAGES:
        visitor = site.visitor(**{"Accept-Language": accept})
        slots = visitor.follow(visitor.get("/book/new"))
        assert f'<html lang="{lang}">' in slots.text and f"<h1>{heading}</h1>" in slots.text
        assert f"<h2>{day}</h2>" in slots.text
        confirm = visitor.get(slot_links(slots.text)[0])
        assert confirm.status_code == 200 and f'<html lang="{lang}">' in confirm.text
    site.check_urls()


def test_the_landing_offers_only_links_without_new_patients(site: Any, host: OpenEmrHost) -> None:
    site.start({"new_patients": False})
    visitor = site.visitor()
    landing = visitor.get("/book")
    assert landing.status_code == 200
    assert 'href="/book/new"' not in landing.text and 'href="/book/link"' in landing.text
    for path in ("/book/new", "/book/new/slots?reason=first", "/book/new/done"):
        refused = visitor.get(path)
        assert refused.status_code == 404 and INVALID in refused.text
    site.check_urls()


# --- personal links -----------------------------------------------------------------------------


def test_a_personal_link_shows_nothing_before_the_birth_date(site: Any, host: OpenEmrHost) -> None:
    site.start()
    path = personal_link(site, 3)
    stranger = site.visitor()
    page = stranger.get(path)
    assert page.status_code == 200
    assert main(page.text).startswith("Book an appointment To keep your information private")
    for secret in ("Agnese", "Moretti", "Check-up", "Rossi", "11:00", "March"):
        assert secret not in page.text
    for step in (
        f"{path}/slots?reason=checkup",
        f"{path}/slot?reason=checkup&slot=1.1.202603271100",
    ):
        assert stranger.get(step).headers["location"] == path  # back to the birth date
    token = csrf(page.text)
    attempt = stranger.post(f"{path}/book", {"csrf": token, "reason": "checkup"})
    assert attempt.status_code == 303 and attempt.headers["location"] == path
    assert calendar(host, 3) == []
    patient = site.visitor()
    assert verify(patient, path, PATIENTS[3][2]).headers["location"] == path
    reasons = patient.get(path)  # a treatment link for one reason goes straight to its slots
    assert reasons.headers["location"] == f"{path}/slots?reason=checkup"
    slots = patient.follow(reasons)
    times = slot_times(slots.text, "Friday, March 27, 2026")
    assert times == ["11:00 AM", "11:15 AM", "11:30 AM", "11:45 AM"]
    confirm = patient.get(slot_links(slots.text)[1])
    assert "First name" not in confirm.text  # a patient on file types nothing about themselves
    form = {"csrf": csrf(confirm.text), "reason": "checkup", "slot": "1.1.202603271115"}
    done = patient.follow(patient.post(f"{path}/book", form))
    assert "Your appointment is booked" in main(done.text)
    [row] = calendar(host, 3)
    assert (row["pc_aid"], row["pc_catid"], row["pc_apptstatus"]) == ("1", 5, "-")
    assert str(row["pc_startTime"]) == "11:15:00"
    assert stranger.get(path).status_code == 404  # used: only its own session sees it now
    assert patient.get(path).headers["location"] == f"{path}/done"
    site.check_urls()


def test_a_link_for_one_provider_books_only_with_them(site: Any, host: OpenEmrHost) -> None:
    block = {**BOOKING["blocks"][0], "provider": "2"}
    site.start({"blocks": [*BOOKING["blocks"], block]})
    send_link(site.bridge.runtime, "3", flow="treatment", reason="checkup", provider="2")
    site.bridge.dispatch()
    [message] = site.bridge.outbox("sms")
    path = re.search(r"https?://[^/\s]+(/b/[\w.-]+)", message["text"]).group(1)  # type: ignore[union-attr]
    patient = site.visitor()
    slots = patient.follow(patient.follow(verify(patient, path, PATIENTS[3][2])))
    assert "Dr. Ben Okafor" in slots.text and "Dr. Ada Rossi" not in slots.text
    assert slot_links(slots.text)[0].endswith("slot=2.1.202603271100")
    other = "1.1.202603271100"  # Dr. Rossi's, free, but not this link's to book
    assert patient.get(f"{path}/slot?reason=checkup&slot={other}").status_code == 409
    confirm = patient.get(f"{path}/slot?reason=checkup&slot=2.1.202603271100")
    form = {"csrf": csrf(confirm.text), "reason": "checkup"}
    refused = patient.post(f"{path}/book", {**form, "slot": other})
    assert refused.status_code == 409 and "Sorry, that time was just taken" in main(refused.text)
    assert calendar(host, 3) == []
    done = patient.follow(patient.post(f"{path}/book", {**form, "slot": "2.1.202603271100"}))
    assert "Your appointment is booked" in main(done.text)
    assert [r["pc_aid"] for r in calendar(host, 3)] == ["2"]
    site.check_urls()


def test_wrong_birth_dates_lock_the_link_and_answer_like_no_link(
    site: Any, host: OpenEmrHost
) -> None:
    site.start(patient={"max_birth_date_tries": 3})
    path = personal_link(site, 3)
    gone = personal_link(site, 6)
    with host.engine.begin() as connection:  # the patient of a link is no longer on the host
        connection.execute(sa.text("DELETE FROM patient_data WHERE pid = 6"))
    guesser = site.visitor()
    wrong = date(1980, 4, 8)
    tries = [verify(guesser, path, wrong) for _ in range(2)]
    assert [r.status_code for r in tries] == [400, 400]
    assert "The date of birth does not match our records." in tries[0].text
    assert "You can try 2 more times." in tries[0].text
    assert "You can try 1 more time." in tries[1].text
    # The right birth date of a patient no longer on file gets the same answer as a wrong one.
    first_gone = verify(guesser, gone, PATIENTS[6][2])
    assert first_gone.status_code == 400

    def same(html: str, link: str) -> str:
        return re.sub(r'value="[^"]*"', "", html.replace(link, "LINK"))

    assert same(first_gone.text, gone) == same(tries[0].text, path)
    locked = verify(guesser, path, wrong)
    assert locked.status_code == 404
    [(count, locked_at)] = site.store(
        "SELECT tries, locked_at FROM booking_passes WHERE patient_key = '3'"
    )
    assert count == 3 and locked_at is not None
    right = site.visitor()
    assert right.get(path).status_code == 404  # locked for good, even with the right date
    keys = PassKeys(site.bridge.runtime)
    never_issued = "/b/" + keys.make("link|never-issued")[0]
    garbage = right.get("/b/not-a-token")
    answers = [locked, right.get(path), right.get(never_issued), garbage]
    assert {r.status_code for r in answers} == {404}
    assert len({r.text for r in answers}) == 1 and INVALID in garbage.text
    assert calendar(host, 3) == []
    site.check_urls()


def test_unusable_links_all_get_the_same_answer(site: Any, host: OpenEmrHost) -> None:
    site.start()
    used, revoked, expiring = (personal_link(site, p) for p in (3, 5, 6))
    patient = site.visitor()
    verify(patient, used, PATIENTS[3][2])
    slots = patient.get(f"{used}/slots?reason=checkup")
    confirm = patient.get(slot_links(slots.text)[0])
    form = {"csrf": csrf(confirm.text), "reason": "checkup", "slot": "1.1.202603271100"}
    assert patient.post(f"{used}/book", form).headers["location"] == f"{used}/done"
    with site.bridge.runtime.store.begin() as connection:
        connection.execute(
            sa.text("UPDATE booking_passes SET revoked_at = :now WHERE patient_key = '5'"),
            {"now": site.bridge.clock.now()},
        )
    token = used.removeprefix("/b/")
    tampered = "/b/" + token[:5] + ("A" if token[5] != "A" else "B") + token[6:]
    confirm_link = "/b/" + PassKeys(site.bridge.runtime).tokens.make(APPOINTMENT, "1")[0]
    visitor = site.visitor()
    seen = {p: visitor.get(p) for p in (used, revoked, tampered, confirm_link, "/b/%00")}
    seen["used, its book step"] = visitor.post(f"{used}/book", form)
    assert visitor.get(expiring).status_code == 200  # still open until...
    site.bridge.clock.advance(timedelta(days=15))  # ...past booking.link_days (14)
    seen[expiring] = visitor.get(expiring)
    assert {p: r.status_code for p, r in seen.items()} == {p: 404 for p in seen}
    assert len({r.text for r in seen.values()}) == 1
    shown = "".join(r.text for r in seen.values())
    assert not any(s in shown for s in ("Agnese", "Brunella", "Carlotta", "Moretti", "Check-up"))
    assert len(calendar(host, 3)) == 1
    site.check_urls()


def test_an_invitation_opens_the_new_patient_form_without_a_birth_date(
    site: Any, host: OpenEmrHost
) -> None:
    site.start()
    address = "invited.newcomer@example.test"
    invite(site.bridge.runtime, None, email=address, agreed=True, language="it")
    site.bridge.dispatch()
    [message] = site.bridge.outbox("email")
    path = re.search(r"https?://[^/\s]+(/b/[\w.-]+)", message["text"]).group(1)  # type: ignore[union-attr]
    person = site.visitor()
    slots = person.follow(person.get(path))  # nobody on file to check: straight to the times
    assert '<html lang="it">' in slots.text and "Prima visita (30 minuti)" in main(slots.text)
    confirm = person.get(slot_links(slots.text)[0])
    assert f'value="{address}"' in confirm.text  # the invited address, filled in
    form = {"csrf": csrf(confirm.text), "reason": "first", "slot": "1.1.202603271100"}
    details = {**NEWCOMER, "email": address, "email_ok": "yes"}
    done = person.follow(person.post(f"{path}/book", {**form, **details}))
    assert "Grazie per la sua prenotazione" in main(done.text)
    [new] = host.rows("patient_data", email=address)
    assert [r["pc_apptstatus"] for r in calendar(host, new["pid"])] == ["^"]
    assert site.store("SELECT status, patient_key FROM invitations") == [
        ("enrolled", str(new["pid"]))
    ]
    assert person.get(path).headers["location"] == f"{path}/done"  # its session: the result
    assert site.visitor().get(path).status_code == 404  # anyone else: used
    site.check_urls()


def test_the_link_request_answers_the_same_for_anyone(site: Any, host: OpenEmrHost) -> None:
    site.start()
    visitor = site.visitor()

    def ask(born: date, contact: str) -> httpx.Response:
        page = visitor.get("/book/link")
        assert page.status_code == 200 and 'action="/book/link"' in page.text
        form = {"csrf": csrf(page.text), "day": str(born.day), "month": str(born.month)}
        return visitor.post("/book/link", {**form, "year": str(born.year), "contact": contact})

    answers = [
        ask(PATIENTS[3][2], "(202) 555-0103"),  # patient 3, the mobile on file
        ask(date(1991, 1, 1), "(202) 555-0177"),  # nobody
        ask(PATIENTS[5][2], "someone@example.test"),  # patient 5, not their email
        ask(PATIENTS[6][2], "patient6@example.test"),  # patient 6, the email on file
    ]
    assert [r.status_code for r in answers] == [200] * 4
    assert len({r.text for r in answers}) == 1
    assert "If these details match our records" in main(answers[0].text)
    site.bridge.dispatch()
    sent = [
        (m["channel"], m["to"]) for m in site.bridge.outbox("sms") + site.bridge.outbox("email")
    ]
    assert sent == [("sms", "+12025550103"), ("email", "patient6@example.test")]
    # The link sent opens the existing-patient flow: every reason it may book, to choose from.
    [message] = site.bridge.outbox("sms")
    path = re.search(r"https?://[^/\s]+(/b/[\w.-]+)", message["text"]).group(1)  # type: ignore[union-attr]
    patient = site.visitor()
    reasons = patient.follow(verify(patient, path, PATIENTS[3][2]))
    assert re.findall(r'href="([^"]+)"', main_html(reasons.text)) == [
        f"{path}/slots?reason=checkup",
        f"{path}/slots?reason=cleaning",
    ]
    assert "Check-up (15 minutes)" in main(reasons.text)
    assert "Cleaning (45 minutes)" in main(reasons.text)
    bad_contact = ask(PATIENTS[3][2], "not a contact")
    assert bad_contact.status_code == 400
    assert "Enter a mobile phone number or an email address." in main(bad_contact.text)
    page = visitor.get("/book/link")
    form = {"csrf": csrf(page.text), "day": "31", "month": "2", "year": "1980", "contact": "x@y.it"}
    impossible = visitor.post("/book/link", form)
    assert impossible.status_code == 400 and "That date does not exist." in impossible.text
    site.bridge.dispatch()
    assert len(site.bridge.outbox("sms")) == 1  # no second link for a bad form
    site.check_urls()


# --- forms: CSRF, validation, rate limits --------------------------------------------------------


def test_every_post_needs_its_own_csrf_token(site: Any, host: OpenEmrHost) -> None:
    site.start()
    path = personal_link(site, 3)
    before = host_counts(host)
    visitor = site.visitor()
    verify_token = csrf(visitor.get(path).text)
    link_token = csrf(visitor.get("/book/link").text)
    public_token = csrf(visitor.get("/book/new/slot?reason=first&slot=1.1.202603271100").text)
    born = {"day": "7", "month": "4", "year": "1980"}
    posts = {
        "/book/link": {**born, "contact": "(202) 555-0103"},
        "/book/new/book": {"reason": "first", "slot": "1.1.202603271100", **NEWCOMER},
        path: born,
    }
    foreign = {"/book/link": public_token, "/book/new/book": link_token, path: public_token}
    own = {"/book/link": link_token, "/book/new/book": public_token, path: verify_token}
    answers = []
    for target, form in posts.items():
        answers.append(visitor.post(target, form))  # none
        answers.append(visitor.post(target, {**form, "csrf": foreign[target]}))  # another form's
        answers.append(visitor.post(target, {**form, "csrf": own[target] + "x"}))  # altered
        answers.append(
            visitor.post(
                target, {**form, "csrf": own[target]}, headers={"Origin": "https://x.test"}
            )
        )
    # The booking step of a verified link: its own form's token only.
    patient = site.visitor()
    verify(patient, path, PATIENTS[3][2])
    confirm = patient.get(f"{path}/slot?reason=checkup&slot=1.1.202603271100")
    book = {"reason": "checkup", "slot": "1.1.202603271100"}
    answers.append(patient.post(f"{path}/book", book))
    answers.append(patient.post(f"{path}/book", {**book, "csrf": verify_token}))
    stranger = site.visitor()  # another browser's token (another CSRF cookie)
    answers.append(stranger.post(f"{path}/book", {**book, "csrf": csrf(confirm.text)}))
    assert [r.status_code for r in answers[:-1]] == [403] * (len(answers) - 1)
    assert answers[-1].status_code == 303  # not verified in that browser: back to the birth date
    assert all("This page has expired" in r.text for r in answers[:-1])
    assert host_counts(host) == before
    assert site.store("SELECT count(*) FROM bookings") == [(0,)]
    assert site.store("SELECT tries FROM booking_passes") == [(0,)]
    [(count,)] = site.store("SELECT count FROM rejects WHERE ref = 'csrf:csrf:csrf_failed'")
    assert count == len(answers) - 1
    site.bridge.dispatch()
    assert [m["tags"]["event"] for m in site.bridge.outbox("sms")] == ["booking_link"]
    # The right token still works afterwards: nothing above spent a try or the link.
    ok = patient.post(f"{path}/book", {**book, "csrf": csrf(confirm.text)})
    assert ok.headers["location"] == f"{path}/done"
    site.check_urls()


CASES = [
    ({"day": "31", "month": "2"}, "day", "That date does not exist."),
    ({"year": "90"}, "year", "Enter the year with 4 digits."),
    ({"year": "2027"}, "year", "Enter a date of birth in the past."),
    ({"first_name": "N" * 61}, "first_name", "This is too long."),
    ({"last_name": "R2-D2"}, "last_name", "Use letters only."),
    ({"first_name": ""}, "first_name", "Please fill this in."),
    ({"email": "nina@example"}, "email", "Enter an email address like name@example.com."),
    ({"email": "x" * 250 + "@example.test"}, "email", "Enter an email address like"),
    ({"email": "nina@example.test,evil"}, "email", "Enter an email address like"),
    ({"email": '"Nina" <nina@example.test>'}, "email", "Enter an email address like"),
    ({"mobile": "12"}, "mobile", "Enter a mobile phone number."),
    ({"mobile": "5" * 40}, "mobile", "Enter a mobile phone number."),
    ({"mobile": "", "email": ""}, "mobile", "Give a mobile phone number or an email address."),
    ({"mobile": "", "sms_ok": "yes"}, "mobile", "Give a mobile phone number to get text messages."),
    ({"sex": "other"}, "sex", "Please fill this in."),
    ({"comment": "x" * 501}, "comment", "This is too long."),
]


def test_invalid_input_gets_a_clear_error_and_writes_nothing(site: Any, host: OpenEmrHost) -> None:
    site.start({"bookings_per_hour": 50})
    before = host_counts(host)
    visitor = site.visitor()
    slot = "1.1.202603271100"
    page = visitor.get(f"/book/new/slot?reason=first&slot={slot}")
    token = csrf(page.text)
    base = {"csrf": token, "reason": "first", "slot": slot, **NEWCOMER}
    for change, field, message in CASES:
        answer = visitor.post("/book/new/book", {**base, **change})
        assert answer.status_code == 400, (change, answer.status_code)
        text = main(answer.text)
        assert "There is a problem" in text and message in text, (change, text)
        if field != "sex":
            assert f'id="{field}"' in answer.text
            assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', answer.text), field
        kept = "email" if "email" not in change else "first_name"
        assert f'value="{NEWCOMER[kept]}"' in answer.text  # what was typed is kept
    # A reason this flow may not book, a slot never offered, a slot key that is not one.
    wrong_reason = visitor.post("/book/new/book", {**base, "reason": "checkup"})
    assert wrong_reason.status_code == 400
    assert "That cannot be booked here. Nothing was booked" in main(wrong_reason.text)
    assert 'href="/book/new/slots?reason=first"' in wrong_reason.text
    assert "reason=checkup" not in wrong_reason.text
    for key in ("1.1.202603281100", "1.1.202603270800", "2.1.202603271100", "x.y.z", "1" * 300):
        answer = visitor.post("/book/new/book", {**base, "slot": key})
        assert answer.status_code == 409, (key, answer.status_code)
        assert "Sorry, that time was just taken" in main(answer.text)
        assert visitor.get(f"/book/new/slot?reason=first&slot={key}").status_code == 409
    assert visitor.get("/book/new/slots?reason=checkup").headers["location"] == "/book/new"
    # The slot taken at the desk while the form was open: the week again, without it.
    host.add_appointment(5, FRIDAY, "11:00")
    taken = visitor.post("/book/new/book", base)
    assert taken.status_code == 409 and "Sorry, that time was just taken" in main(taken.text)
    assert slot_times(taken.text, "Friday, March 27, 2026") == ["11:15 AM", "11:30 AM"]
    before = (before[0] + 1, before[1])
    # Posts no page makes: more fields than a form has, a file.
    extra = visitor.post("/book/new/book", {**base, **{f"f{i}": "x" for i in range(20)}})
    upload = visitor.client.post("/book/new/book", data=base, files={"f": ("f.txt", b"x")})
    assert [extra.status_code, upload.status_code] == [400, 400]
    assert "This page has expired" in extra.text and "<html" in upload.text
    assert host_counts(host) == before
    assert site.store("SELECT count(*) FROM bookings") == [(0,)]
    rejected = dict(site.store("SELECT ref, count FROM rejects"))
    assert rejected["book:day:no_such_date"] == 1 and rejected["book:comment:too_long"] == 1
    assert rejected["book:reason:unknown_reason"] == 1
    assert all("Newcomer" not in str(r) for r in site.store("SELECT * FROM rejects"))
    site.check_urls()


def test_public_bookings_are_rate_limited(site: Any, host: OpenEmrHost) -> None:
    site.start({"bookings_per_hour": 2, "approval": "none"})
    visitor = site.visitor()

    def book(slot: str, n: int) -> httpx.Response:
        page = visitor.get(f"/book/new/slot?reason=first&slot={slot}")
        form = {"csrf": csrf(page.text), "reason": "first", "slot": slot, **NEWCOMER}
        return visitor.post("/book/new/book", {**form, "first_name": f"Ninetta{'x' * n}"})

    days = ("20260330", "20260331", "20260401", "20260402")
    codes = [book(f"1.1.{day}0900", n).status_code for n, day in enumerate(days)]
    limited = book("1.1.202604020900", 3)
    assert codes == [303, 303, 429, 429] and limited.status_code == 429
    assert "Too many attempts" in main(limited.text)
    assert int(limited.headers["retry-after"]) >= 1
    booked = [r for r in host.rows("openemr_postcalendar_events") if r["pc_hometext"]]
    assert len(booked) == 2 and {r["pc_apptstatus"] for r in booked} == {"-"}
    site.bridge.clock.advance(timedelta(minutes=61))
    assert book("1.1.202604020900", 4).status_code == 303
    site.check_urls()


def test_with_the_host_away_the_pages_say_so_and_change_nothing(
    site: Any, host: OpenEmrHost, tcp_proxy: Any
) -> None:
    site.start(host={"url": tcp_proxy.url, "mapping": "openemr"})
    path = personal_link(site, 3)
    visitor = site.visitor()
    confirm = visitor.get("/book/new/slot?reason=first&slot=1.1.202603301100")
    form = {"csrf": csrf(confirm.text), "reason": "first", "slot": "1.1.202603301100"}
    verify_page = visitor.get(path)
    tcp_proxy.down()
    site.bridge.clock.advance(timedelta(minutes=1))  # past the cached reference data
    born = {"csrf": csrf(verify_page.text), "day": "7", "month": "4", "year": "1980"}
    away = [
        visitor.get("/book/new/slots?reason=first"),
        visitor.post("/book/new/book", {**form, **NEWCOMER}),
        visitor.post(path, born),
    ]
    assert [r.status_code for r in away] == [503, 503, 503]
    assert all("We cannot reach the clinic's calendar right now." in r.text for r in away)
    assert site.store("SELECT count(*) FROM bookings") == [(0,)]
    assert site.store("SELECT tries FROM booking_passes") == [(0,)]  # no wrong date counted
    tcp_proxy.up = True
    booked = visitor.post("/book/new/book", {**form, **NEWCOMER})
    assert booked.headers.get("location") == "/book/new/done", (
        booked.status_code,
        main(booked.text),
    )
    assert [r["pc_apptstatus"] for r in host.rows("openemr_postcalendar_events")] == ["^"]
    assert visitor.post(path, born).headers["location"] == path
    site.check_urls()


def test_every_booking_page_text_is_translated() -> None:
    """The booking pages' texts are in every shipped catalog (the patient pages' own test reads
    only the templates at the top of the folder)."""
    options = {"extensions": "jinja2.ext.i18n", "trim_blocks": "true", "lstrip_blocks": "true"}
    texts: set[str] = set()
    for path in sorted(Path(TEMPLATES).glob("**/*.html")):
        with path.open("rb") as handle:
            for _, _, message, _ in babel_extract(handle, ["_", "ngettext"], [], options):
                texts.add(message[0] if isinstance(message, tuple) else message)
    assert len(texts) > 100
    for po in sorted(Path(LOCALES).glob("*.po")):
        with po.open("rb") as handle:
            catalog = read_po(handle)
        missing = [t for t in texts if t not in catalog or not catalog[t].string]
        assert not missing, (po.name, missing)

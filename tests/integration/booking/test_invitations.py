"""Invitations to book online against real OpenEMR tables on MariaDB (own DDL and the genuine
schema): invite a patient on file or someone new, the refusals (no email, no consent), the
listing with its statuses and masked addresses, revocation (the booking page refuses the link),
expiry, a changed email on the host (the booking worker revokes and invites again), and
enrolment once the patient books through the link."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from bridge.booking.access import Access
from bridge.booking.booking import NewPatient, Request, submit
from bridge.booking.offers import Offers
from bridge.booking.tables import invitations
from bridge.booking.worker import BookingWorker
from bridge.demo.host import OpenEmrHost
from bridge.web.app import create_app
from tests.integration.booking.test_recall import (
    BASE_URL,
    BOOKING,
    LINK,
    NOW,
    cli,
    sections,
    sent,
    table,
)
from tests.integration.conftest import Bridge

pytestmark = pytest.mark.mariadb

FIRST_VISIT = {
    "key": "first",
    "name": {"en": "First visit", "it": "Prima visita"},
    "service": "10",
    "flows": ["new"],
}
DUE = "it goes out with the next dispatch"


@pytest.fixture
def clinic(make_bridge: Any, host: OpenEmrHost) -> Iterator[Bridge]:
    """A clinic inviting patients, with patients 50-55 on file."""
    host.add_patient(50, "Pat", "Synthetic50")
    host.add_patient(51, "Pat", "Synthetic51", email="")
    host.add_patient(52, "Pat", "Synthetic52", hipaa_allowemail="NO")
    host.add_patient(53, "Pat", "Synthetic53", deceased_date="2026-01-02 00:00:00")
    host.add_patient(54, "Pat", "Synthetic54", hipaa_allowemail="")
    host.add_patient(55, "Pat", "Synthetic55", language="italian")
    settings = sections()
    settings["booking"] = {**BOOKING, "reasons": [*BOOKING["reasons"], FIRST_VISIT]}
    settings["booking"]["invitation_days"] = 5
    yield make_bridge(NOW, **settings)


def listing(bridge: Bridge, *args: str) -> list[list[str]]:
    status, out = cli(bridge, "invitations", *args)
    assert status == 0, out
    return table(out) if out != "no invitations\n" else []


def token_for(bridge: Bridge, address: str) -> str:
    """The booking link's token in the last invitation sent to ``address``."""
    [*_, message] = [m for m in sent(bridge, "email", "invitation") if m["to"] == address]
    match = LINK.search(message["text"])
    assert match, message["text"]
    return match.group(1)


def page_status(bridge: Bridge, token: str) -> tuple[int, str]:
    """What the booking page answers for the link (the birth-date page, or the 404), through
    the web app the service serves."""

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(bridge.runtime))
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            return await client.get(f"/b/{token}")

    page = asyncio.run(get())
    return page.status_code, page.text


def test_invite_a_patient_on_file(clinic: Bridge) -> None:
    assert cli(clinic, "invite", "50") == (
        0,
        f"invitation 1 queued for p***@example.test; {DUE}\n",
    )
    assert cli(clinic, "invite", "50") == (
        1,
        "bridge: not invited: already invited (invitation 1, invited, until 2026-04-01); "
        "use --resend to send it again\n",
    )
    report = clinic.dispatch()

    assert report.sent == 1
    [message] = sent(clinic, "email", "invitation")
    assert message["to"] == "patient50@example.test"
    assert message["subject"] == "Book your appointments online at Synthetic Clinic"
    assert message["text"].startswith("Dear Pat Synthetic50,")
    token = token_for(clinic, "patient50@example.test")
    assert "you will be asked for your date of birth" in message["text"]
    assert "The link can be used until April 1, 2026." in message["text"]
    link = Access(clinic.runtime).open(token, None)
    assert link is not None
    assert (link.flow, link.patient_key, link.invitation_id) == ("existing", "50", 1)
    status, html = page_status(clinic, token)
    assert status == 200 and "date of birth" in html.lower()
    assert listing(clinic) == [
        ["1", "50", "p***@example.test", "invited", "2026-03-27", "2026-04-01"]
    ]
    assert "patient50" not in cli(clinic, "invitations")[1]

    assert cli(clinic, "invite", "50", "--resend") == (
        0,
        f"invitation 1 sent again to p***@example.test; {DUE}\n",
    )
    clinic.dispatch()
    again = sent(clinic, "email", "invitation")
    assert len(again) == 2
    assert token_for(clinic, "patient50@example.test") == token  # the same link


def test_refusals_say_why_and_send_nothing(clinic: Bridge) -> None:
    refusals = {
        "51": "patient 51 has no email address: add one on the host, or give --email",
        "52": "patient 52: the patient does not consent to email (the host's email consent "
        "says no); nothing was sent",
        "53": "patient 53: the patient is recorded as deceased; nothing was sent",
        "999": "patient 999 is not on the host",
    }
    for pid, why in refusals.items():
        assert cli(clinic, "invite", pid) == (1, f"bridge: not invited: {why}\n")
    assert cli(clinic, "invite", "--new", "--email", "someone@example.test") == (
        1,
        "bridge: not invited: confirm the person agreed to get this email (--consent); "
        "nothing was sent\n",
    )
    assert cli(clinic, "invite", "--new", "--consent") == (
        1,
        "bridge: not invited: a new patient is invited by email: give --email\n",
    )
    assert cli(clinic, "invite")[0] == 2  # neither a patient nor --new
    assert cli(clinic, "invite", "50", "--new", "--email", "x@example.test")[0] == 2

    assert listing(clinic) == []
    assert clinic.jobs() == []
    assert clinic.dispatch().sent == 0
    assert clinic.outbox("email") == []


def test_consent_not_recorded_depends_on_the_clinic_rule(
    make_bridge: Any, host: OpenEmrHost
) -> None:
    host.add_patient(54, "Pat", "Synthetic54", hipaa_allowemail="")
    explicit = make_bridge(NOW, **{**sections(), "reminders": {"consent": "explicit"}})
    assert cli(explicit, "invite", "54") == (
        1,
        "bridge: not invited: patient 54: the patient's consent to email is not recorded "
        "(reminders.consent is explicit); nothing was sent\n",
    )


@pytest.mark.parametrize("store_url", ["sqlite", "postgresql"], indirect=True)
def test_someone_new_is_invited_and_enrolled_by_booking(clinic: Bridge, host: OpenEmrHost) -> None:
    address = "new.person@example.test"
    assert cli(clinic, "invite", "--new", "--email", address, "--consent", "--language", "it") == (
        0,
        f"invitation 1 queued for n***@example.test; {DUE}\n",
    )
    clinic.dispatch()
    [message] = sent(clinic, "email", "invitation")
    assert message["to"] == address
    assert message["subject"] == "Prenoti i suoi appuntamenti online da Synthetic Clinic"
    assert "1 aprile 2026" in message["text"]
    assert listing(clinic) == [
        ["1", "(new)", "n***@example.test", "invited", "2026-03-27", "2026-04-01"]
    ]
    token = token_for(clinic, address)
    link = Access(clinic.runtime).open(token, None)
    assert link is not None and (link.flow, link.patient_key) == ("new", None)

    offers = Offers(clinic.runtime)
    reason = offers.reason("first", "new")
    assert reason is not None
    slot = offers.slots(reason, date(2026, 3, 30), date(2026, 3, 30))[0]
    person = NewPatient(
        first_name="Nuova",
        last_name="Synthetic",
        birth_date=date(1990, 5, 17),
        sex="female",
        mobile="+12025550177",
        email=address,
        sms_ok=True,
        email_ok=True,
        language="it",
    )
    result = submit(
        clinic.runtime,
        Request(flow="new", reason=reason, slot=slot, language="it", new_patient=person, link=link),
    )

    assert result.state == "pending"  # new patients wait for approval (the default)
    [patient] = host.rows("patient_data", email=address)
    [row] = listing(clinic)
    assert row[:4] == [str(1), str(patient["pid"]), "n***@example.test", "enrolled"]
    assert Access(clinic.runtime).open(token, None) is None  # booked once
    with clinic.runtime.store.begin("read") as connection:
        enrolled = connection.execute(sa.select(invitations.c.enrolled_at)).scalar_one()
    assert enrolled is not None


def test_a_patient_on_file_is_enrolled_by_booking(clinic: Bridge, host: OpenEmrHost) -> None:
    assert cli(clinic, "invite", "50")[0] == 0
    clinic.dispatch()
    token = token_for(clinic, "patient50@example.test")
    runtime = clinic.runtime
    link = Access(runtime).open(token, None)
    assert link is not None
    offers = Offers(runtime)
    reason = offers.reason("checkup", "existing")
    assert reason is not None
    slot = offers.slots(reason, date(2026, 3, 31), date(2026, 3, 31))[0]
    request = Request(
        flow="existing", reason=reason, slot=slot, language="en", patient_key="50", link=link
    )

    assert submit(runtime, request).state == "booked"

    assert [r[3] for r in listing(clinic)] == ["enrolled"]
    assert len(host.rows("openemr_postcalendar_events", pc_pid="50")) == 1
    assert listing(clinic, "--status", "invited") == []


def test_revoked_by_staff_the_link_stops_working(clinic: Bridge) -> None:
    assert cli(clinic, "invite", "50")[0] == 0
    assert cli(clinic, "invite", "55")[0] == 0
    clinic.dispatch()
    token = token_for(clinic, "patient50@example.test")
    assert page_status(clinic, token)[0] == 200
    assert cli(clinic, "invite", "50", "--resend")[0] == 0  # planned, not sent yet

    assert cli(clinic, "invitations", "revoke", "1") == (0, "invitation 1 revoked\n")

    status, html = page_status(clinic, token)
    assert status == 404 and "This link cannot be used" in html
    assert Access(clinic.runtime).open(token, None) is None
    assert cli(clinic, "invitations", "revoke", "1") == (1, "invitation 1 is not open\n")
    assert cli(clinic, "invitations", "revoke", "99") == (1, "invitation 99 is not open\n")
    clinic.dispatch()
    assert len(sent(clinic, "email", "invitation")) == 2  # the resend was not sent
    assert [r[3:] for r in listing(clinic)] == [
        ["invited", "2026-03-27", "2026-04-01"],
        ["revoked", "2026-03-27", "2026-04-01", "revoked by staff"],
    ]
    assert [r[0] for r in listing(clinic, "--status", "revoked")] == ["1"]
    assert cli(clinic, "invite", "50")[1].startswith("invitation 3 queued")  # a new one
    assert "invitations: invited 2, revoked 1" in cli(clinic, "recall", "stats")[1].splitlines()


def test_an_invitation_expires_after_its_days(clinic: Bridge) -> None:
    assert cli(clinic, "invite", "50")[0] == 0
    clinic.dispatch()
    token = token_for(clinic, "patient50@example.test")
    clinic.at("2026-04-01T08:59:00Z")
    assert Access(clinic.runtime).open(token, None) is not None
    clinic.at("2026-04-01T09:00:00Z")  # five days later

    assert Access(clinic.runtime).open(token, None) is None
    assert page_status(clinic, token)[0] == 404
    assert cli(clinic, "invite", "50")[1].startswith("invitation 2 queued")  # not "already"
    assert [r[3] for r in listing(clinic)] == ["invited", "expired"]
    assert cli(clinic, "invite", "--new", "--email", "a@example.test", "--consent")[0] == 0
    clinic.at("2026-04-07T09:00:00Z")
    assert [r[3] for r in listing(clinic)] == ["expired", "expired", "expired"]  # listed so
    assert BookingWorker(clinic.runtime).invitations_if_due() == 0
    with clinic.runtime.store.begin("read") as connection:
        stored = connection.execute(sa.select(invitations.c.status)).scalars().all()
    assert stored == ["expired", "expired", "expired"]


def test_a_changed_email_revokes_and_invites_again(clinic: Bridge, host: OpenEmrHost) -> None:
    assert cli(clinic, "invite", "50")[0] == 0
    assert cli(clinic, "invite", "55")[0] == 0
    clinic.dispatch()
    old = token_for(clinic, "patient50@example.test")
    worker = BookingWorker(clinic.runtime)
    assert worker.invitations_if_due() == 0  # nothing changed

    host.set_patient(50, email="changed50@example.test")
    clinic.at("2026-03-27T09:05:00Z")
    assert worker.invitations_if_due() == 0  # checked every 10 minutes
    clinic.at("2026-03-27T09:10:00Z")
    assert worker.invitations_if_due() == 1

    assert [r[1:5] for r in listing(clinic)] == [
        ["50", "c***@example.test", "invited", "2026-03-27"],
        ["55", "p***@example.test", "invited", "2026-03-27"],
        ["50", "p***@example.test", "revoked", "2026-03-27"],
    ]
    assert listing(clinic)[2][6] == "the email on file changed"
    clinic.dispatch()
    new = token_for(clinic, "changed50@example.test")
    assert new != old
    assert Access(clinic.runtime).open(old, None) is None
    assert page_status(clinic, old)[0] == 404
    assert page_status(clinic, new)[0] == 200
    assert len(sent(clinic, "email", "invitation")) == 3


def test_an_email_changed_or_removed_before_the_invitation_went_out(
    clinic: Bridge, host: OpenEmrHost
) -> None:
    """The planned email is not sent to the old address; the worker revokes and invites again."""
    assert cli(clinic, "invite", "50")[0] == 0
    assert cli(clinic, "invite", "55")[0] == 0
    host.set_patient(50, email="")  # removed on the host
    host.set_patient(55, email="changed55@example.test")
    clinic.dispatch()  # the planned emails see the change too

    assert [m["to"] for m in sent(clinic, "email", "invitation")] == []
    assert BookingWorker(clinic.runtime).invitations_if_due() == 2
    rows = listing(clinic)
    assert [(r[1], r[2], r[3]) for r in rows] == [
        ("55", "c***@example.test", "invited"),
        ("55", "p***@example.test", "revoked"),
        ("50", "p***@example.test", "revoked"),
    ]
    clinic.dispatch()
    assert [m["to"] for m in sent(clinic, "email", "invitation")] == ["changed55@example.test"]


def test_a_planned_treatment_link(clinic: Bridge, host: OpenEmrHost) -> None:
    """``bridge booking link``: a personal link that books one treatment, by SMS and email."""
    assert cli(clinic, "booking", "link", "55", "--reason", "checkup") == (
        0,
        "booking link 1 for patient 55 queued by sms and email\n",
    )
    assert cli(clinic, "booking", "link", "52", "--reason", "checkup") == (
        0,
        "booking link 2 for patient 52 queued by sms\n",  # no email consent
    )
    refused = {
        ("55", "first"): "reason 'first' cannot be booked in the treatment flow",
        ("55", "nope"): "reason 'nope' is not in booking.reasons",
        ("999", "checkup"): "patient 999 is not on the host",
        ("53", "checkup"): "patient 53 is not on the host",  # deceased
    }
    for (pid, reason), why in refused.items():
        assert cli(clinic, "booking", "link", pid, "--reason", reason) == (
            1,
            f"bridge: no link sent: {why}\n",
        )
    clinic.dispatch()
    [sms, _] = sorted(m["to"] for m in sent(clinic, "sms", "booking_link"))
    [email] = sent(clinic, "email", "booking_link")
    assert email["to"] == "patient55@example.test"
    assert email["subject"] == "Il suo link per prenotare Controllo da Synthetic Clinic"
    match = LINK.search(email["text"])
    assert match is not None
    link = Access(clinic.runtime).open(match.group(1), None)
    assert link is not None
    assert (link.flow, link.patient_key, link.reasons) == ("treatment", "55", ["checkup"])
    assert sms == "+12025550152"

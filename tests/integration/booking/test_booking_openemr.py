"""Online booking into OpenEMR's own tables on MariaDB (the project's DDL as an old site, and
OpenEMR 8.2's genuine schema): the slots offered from the providers' In Office / Out Of Office
events, existing appointments, bridge blocks and clinic holidays; the row a booking writes, read
as OpenEMR's calendar reads it; a new patient registered as ``PatientService`` does; the slot
re-checked in the host transaction; a retry after the host committed; a request that expired;
the host away while a patient books; and the confirmation message in the outbox.

The week: Friday 27 March 2026, 08:00 in Rome, is "now"; Sunday 29 March is the change to
summer time, so Monday 30 March 09:00 in Rome is 07:00 UTC.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

import phpserialize
import pytest
import sqlalchemy as sa

from bridge.booking.booking import BookingResult, NewPatient, Request, submit
from bridge.booking.offers import Offers
from bridge.booking.tables import bookings
from bridge.booking.worker import BookingWorker
from bridge.clock import parse_instant
from bridge.demo.host import OpenEmrHost, Repeat
from bridge.errors import WriteBackRefused
from bridge.model import Channel
from bridge.plugin import WriteContext
from bridge.store import writebacks as queue
from bridge.store.schema import jobs, writebacks
from bridge.writeback import Command, CommandKind, Outcome
from bridge.writeback_worker import apply_due
from tests.integration.conftest import Bridge

pytestmark = pytest.mark.mariadb

NOW = "2026-03-27T07:00:00Z"  # Friday 08:00 in Rome
FRI, MON, TUE = date(2026, 3, 27), date(2026, 3, 30), date(2026, 3, 31)
IN_OFFICE, OUT_OF_OFFICE, OFFICE_VISIT, LUNCH, NEW_PATIENT, HOLIDAYS = 2, 3, 5, 8, 10, 6

BOOKING: dict[str, Any] = {
    "enabled": True,
    "reasons": [
        {"key": "checkup", "name": {"en": "Check-up", "it": "Controllo"}, "service": "5"},
        {"key": "first", "name": "First visit", "service": "10", "flows": ["new"]},
    ],
    "blocks": [
        {
            "provider": "2",
            "location": "2",
            "days": ["mon", "tue"],
            "start": "15:00",
            "end": "16:00",
        },
    ],
    "map_url": "https://maps.example.test/synthetic-clinic",
    "parking": "Free parking behind the building.",
    "offer": "Flu shots available this month.",
    "provider_photos": {"1": "https://clinic.example.test/photos/rossi.jpg"},
}
ALL_DAY = {
    "reminders": {"days_ahead": 3, "channels": ["sms", "email"], "start_hour": 0, "end_hour": 24}
}


def marker(
    host: OpenEmrHost,
    catid: int,
    day: date,
    at: str,
    *,
    provider: int = 1,
    prefcatid: int = 0,
    facility: int = 1,
) -> int:
    """An In Office / Out Of Office event as OpenEMR's calendar saves a provider event."""
    return host.add_appointment(
        None,
        day,
        at,
        minutes=0,
        catid=catid,
        provider=provider,
        facility=facility,
        pc_prefcatid=prefcatid,
        pc_title="In Office" if catid == IN_OFFICE else "Out Of Office",
    )


def ensure_category(host: OpenEmrHost, catid: int, constant: str, name: str, cattype: int) -> None:
    """The genuine schema seeds every OpenEMR category; the project's DDL only a few."""
    categories = host.table("openemr_postcalendar_categories")
    with host.engine.begin() as connection:
        known = connection.execute(
            sa.select(categories.c.pc_catid).where(categories.c.pc_catid == catid)
        ).first()
        values = {
            "pc_catid": catid,
            "pc_constant_id": constant,
            "pc_catname": name,
            "pc_duration": 0,
            "pc_cattype": cattype,
        }
        if known is None:
            connection.execute(sa.insert(categories).values(**values))


def holiday(host: OpenEmrHost, day: date) -> None:
    """A clinic holiday as Holidays_Storage::create_events() writes it: no provider, no patient,
    all day, no start time."""
    ensure_category(host, HOLIDAYS, "holidays", "Holidays", 2)
    events = host.table("openemr_postcalendar_events")
    with host.engine.begin() as connection:
        connection.execute(
            sa.insert(events).values(
                pc_catid=HOLIDAYS,
                pc_multiple=0,
                pc_aid="0",
                pc_pid="0",
                pc_title="Holiday",
                pc_time=datetime(2026, 1, 2, 9),
                pc_eventDate=day,
                pc_endDate=day,
                pc_duration=86400,
                pc_recurrtype=0,
                pc_alldayevent=1,
                pc_eventstatus=1,
                pc_facility=0,
                pc_sharing=2,
                pc_recurrspec='a:6:{s:17:"event_repeat_freq";s:1:"0";s:22:"event_repeat_freq_type";'
                's:1:"0";s:19:"event_repeat_on_num";s:1:"1";s:19:"event_repeat_on_day";s:1:"0";'
                's:20:"event_repeat_on_freq";s:1:"0";s:6:"exdate";s:0:"";}',
            )
        )


@pytest.fixture
def clinic(host: OpenEmrHost) -> OpenEmrHost:
    """Dr Rossi (1) is in office on Monday 09:00-12:00 for anything and 14:00-16:00 for new
    patients only, with a patient at 10:00-10:30 and a cancelled one at 11:00; on Tuesday from
    09:00, a clinic holiday. Dr Okafor (2) takes bookings in a bridge block, Monday and Tuesday
    15:00-16:00 at the North clinic, with lunch 15:00-15:30 on Monday."""
    host.add_facility(2, "North Clinic", street="1 Synthetic Road", city="Springfield")
    host.add_patient(3, "Ada", "Synthetic", DOB=date(1980, 4, 7))
    host.add_patient(4, "Ben", "Synthetic", language="italian", hipaa_allowsms="NO")
    marker(host, IN_OFFICE, MON, "09:00")
    marker(host, OUT_OF_OFFICE, MON, "12:00")
    marker(host, IN_OFFICE, MON, "14:00", prefcatid=NEW_PATIENT)
    marker(host, OUT_OF_OFFICE, MON, "16:00")
    host.add_appointment(3, MON, "10:00", minutes=30)
    host.add_appointment(4, MON, "11:00", minutes=30, status="x")
    host.add_appointment(None, MON, "15:00", minutes=30, catid=LUNCH, provider=2, facility=2)
    marker(host, IN_OFFICE, TUE, "09:00")
    holiday(host, TUE)
    return host


@pytest.fixture
def bridge(make_bridge: Any, clinic: OpenEmrHost) -> Bridge:
    made: Bridge = make_bridge(NOW, booking=BOOKING, **ALL_DAY)
    return made


def times(slots: list[Any]) -> list[tuple[str, str, str | None, str]]:
    return [(s.provider_key, f"{s.start:%H:%M}", s.facility_key, s.office) for s in slots]


def offer(bridge: Bridge, key: str, flow: Any, day: date, start: str, provider: str = "1") -> Any:
    offers = Offers(bridge.runtime)
    reason = offers.reason(key, flow)
    assert reason is not None
    found = [
        s for s in offers.slots(reason, day, day, provider=provider) if f"{s.start:%H:%M}" == start
    ]
    assert len(found) == 1, f"{key} {day} {start} is not offered"
    return reason, found[0]


def book(
    bridge: Bridge,
    start: str,
    *,
    patient: str | None = "3",
    key: str = "checkup",
    day: date = MON,
    provider: str = "1",
    new: NewPatient | None = None,
    comment: str = "",
) -> BookingResult:
    flow = "new" if new is not None else "existing"
    reason, slot = offer(bridge, key, flow, day, start, provider)
    request = Request(
        flow, reason, slot, "en", patient_key=patient, new_patient=new, comment=comment
    )
    return submit(bridge.runtime, request)


def booked_rows(host: OpenEmrHost) -> list[dict[str, Any]]:
    """The rows written online (OpenEMR's own rows have no reference in their comments)."""
    rows = host.rows("openemr_postcalendar_events")
    return [r for r in rows if "Booked online" in (r["pc_hometext"] or "")]


def store_rows(bridge: Bridge, table: sa.Table) -> list[dict[str, Any]]:
    with bridge.runtime.store.begin("read") as connection:
        return [dict(r._mapping) for r in connection.execute(sa.select(table).order_by(table.c.id))]


# --- what can be booked -------------------------------------------------------------------------


def test_slots_from_in_office_hours_appointments_blocks_and_holidays(bridge: Bridge) -> None:
    offers = Offers(bridge.runtime)
    assert offers.problems() == []
    checkup = offers.reason("checkup", "existing")
    first = offers.reason("first", "new")
    assert checkup is not None and first is not None
    assert (checkup.minutes, first.minutes) == (15, 30)  # the categories' own durations
    assert offers.reason("first", "existing") is None

    assert times(offers.slots(checkup, MON, TUE)) == [
        *[("1", at, "1", "host") for at in ("09:00", "09:15", "09:30", "09:45")],
        # 10:00-10:30 is taken; the cancelled 11:00 frees its time; 14:00 is for new patients
        *[("1", at, "1", "host") for at in ("10:30", "10:45", "11:00", "11:15", "11:30", "11:45")],
        ("2", "15:30", "2", "bridge"),
        ("2", "15:45", "2", "bridge"),
        # Tuesday is a clinic holiday, for the host's hours and the bridge's block alike
    ]
    assert times(offers.slots(first, MON, MON)) == [
        *[("1", at, "1", "host") for at in ("09:00", "09:15", "09:30")],
        *[("1", at, "1", "host") for at in ("10:30", "10:45", "11:00", "11:15", "11:30")],
        *[("1", at, "1", "host") for at in ("14:00", "14:15", "14:30", "14:45")],
        *[("1", at, "1", "host") for at in ("15:00", "15:15", "15:30")],
        ("2", "15:30", "2", "bridge"),
    ]
    assert times(offers.slots(checkup, MON, MON, provider="2")) == [
        ("2", "15:30", "2", "bridge"),
        ("2", "15:45", "2", "bridge"),
    ]
    assert times(offers.slots(checkup, MON, MON, location="2")) == times(
        offers.slots(checkup, MON, MON, provider="2")
    )
    assert offers.slots(checkup, MON, MON, location="9") == []
    assert [p.key for p in offers.places(checkup)] == ["1", "2"]


def test_the_minimum_notice_and_the_horizon(make_bridge: Any, clinic: OpenEmrHost) -> None:
    marker(clinic, IN_OFFICE, FRI, "08:00")
    marker(clinic, OUT_OF_OFFICE, FRI, "11:00")
    bridge = make_bridge(NOW, booking={**BOOKING, "min_notice_hours": 2.5, "days_ahead": 3})
    offers = Offers(bridge.runtime)
    checkup = offers.reason("checkup", "existing")
    assert checkup is not None
    # 08:00 + 2.5 h: the first slot on the grid is 10:30.
    assert times(offers.slots(checkup, FRI, FRI)) == [
        ("1", "10:30", "1", "host"),
        ("1", "10:45", "1", "host"),
    ]
    assert offers.slots(checkup, date(2026, 3, 31), date(2026, 4, 3)) == []  # holiday, horizon


def test_the_hosts_grid_and_day_from_its_globals(bridge: Bridge, clinic: OpenEmrHost) -> None:
    globals_ = clinic.table("globals")
    with clinic.engine.begin() as connection:
        connection.execute(
            sa.delete(globals_).where(
                globals_.c.gl_name.in_(["calendar_interval", "schedule_start", "schedule_end"])
            )
        )
        for name, value in (("calendar_interval", "20"), ("schedule_end", "11")):
            connection.execute(sa.insert(globals_).values(gl_name=name, gl_index=0, gl_value=value))
    try:
        offers = Offers(bridge.runtime)
        checkup = offers.reason("checkup", "existing")
        assert checkup is not None
        assert times(offers.slots(checkup, MON, MON, provider="1")) == [
            ("1", "09:00", "1", "host"),
            ("1", "09:20", "1", "host"),
            ("1", "09:40", "1", "host"),
            ("1", "10:40", "1", "host"),  # on the 20-minute grid after 10:30
        ]
    finally:
        with clinic.engine.begin() as connection:
            connection.execute(
                sa.delete(globals_).where(
                    globals_.c.gl_name.in_(["calendar_interval", "schedule_end"])
                )
            )


def test_booking_slots_command(bridge: Bridge) -> None:
    status, out = bridge.cli(
        "booking", "slots", "--date", "2026-03-30", "--days", "2", "--now", NOW
    )
    assert status == 0, out
    assert out.splitlines() == [
        "reason   minutes  free  first             per day",
        "-------  -------  ----  ----------------  --------",
        "checkup  15       12    2026-03-30 09:00  03-30:12",
        "first    30       16    2026-03-30 09:00  03-30:16",
    ]
    status, out = bridge.cli(
        "booking", "slots", "--reason", "first", "--date", "2026-03-31", "--now", NOW
    )
    assert status == 0
    # Tuesday's holiday and the days without hours give nothing; Monday 6 April has the block.
    assert out.splitlines()[2:] == ["first   30       3     2026-04-06 15:00  04-06:3"]


def test_booking_slots_names_reasons_it_cannot_offer(make_bridge: Any, clinic: OpenEmrHost) -> None:
    reasons = [*BOOKING["reasons"], {"key": "ghost", "name": "Ghost", "service": "99"}]
    bridge = make_bridge(NOW, booking={**BOOKING, "reasons": reasons})
    status, out = bridge.cli("booking", "slots", "--reason", "checkup", "--now", NOW)
    assert status == 1
    assert out.splitlines()[0] == (
        "problem: booking.reasons[2] (ghost): service '99' is not a visit category on the host"
    )


# --- an existing patient books ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("approval", "status", "state"),
    [
        ("new_patients", "-", "booked"),
        ("all", "^", "pending"),
    ],
)
def test_an_existing_patients_booking_as_openemrs_calendar_reads_it(
    make_bridge: Any, clinic: OpenEmrHost, approval: str, status: str, state: str
) -> None:
    bridge = make_bridge(NOW, booking={**BOOKING, "approval": approval}, **ALL_DAY)
    result = book(bridge, "09:30", comment="Tooth\x00 ache")
    assert result.state == state and len(result.reference) == 8
    [row] = booked_rows(clinic)
    present = set(row)
    expected: dict[str, Any] = {
        "pc_pid": "3",
        "pc_aid": "1",
        "pc_catid": OFFICE_VISIT,
        "pc_multiple": 0,
        "pc_eventDate": MON,
        "pc_endDate": MON,
        "pc_startTime": time(9, 30),
        "pc_endTime": time(9, 45),
        "pc_duration": 900,
        "pc_alldayevent": 0,
        "pc_apptstatus": status,
        "pc_recurrtype": 0,
        "pc_recurrfreq": 0,
        "pc_eventstatus": 1,
        "pc_sharing": 1,
        "pc_prefcatid": 0,
        "pc_facility": 1,
        "pc_billing_location": 1,
        "pc_title": "Office Visit",
        "pc_time": datetime(2026, 3, 27, 8, 0),
        "pc_hometext": f"Booked online on 2026-03-27 at 08:00 (ref {result.reference}). Tooth ache",
        "pc_informant": "online",
        "pc_gid": 0,
        "pc_room": "",
    }
    assert {k: row[k] for k in expected if k in present} == {
        k: v for k, v in expected.items() if k in present
    }
    spec = phpserialize.loads(row["pc_recurrspec"].encode(), decode_strings=True)
    assert spec == {
        "event_repeat_freq": "",
        "event_repeat_freq_type": "",
        "event_repeat_on_num": "1",
        "event_repeat_on_day": "0",
        "event_repeat_on_freq": "0",
        "exdate": "",
    }
    if "uuid" in present:
        assert (
            row["uuid"] is None
        )  # OpenEMR fills missing uuids itself; the bridge never keys on it

    # The staff note on the patient's chart.
    [note] = clinic.rows("pnotes")
    assert (note["pid"], note["title"], note["assigned_to"], note["message_status"]) == (
        3,
        "Patient Reminders",
        "admin",
        "New",
    )
    waits = "It waits for approval (status pending)." if status == "^" else "It is booked."
    assert note["body"] == (
        "2026-03-27 08:00 (bridge to admin) Patient booked Office Visit on 2026-03-30 at 09:30 "
        f"online with a personal booking link (ref {result.reference}). {waits} "
        "Comment: Tooth ache"
    )

    # Read back through the bridge's own source, as reminders read appointments.
    runtime = bridge.runtime
    reference = runtime.source.reference()
    zone = runtime.zone(reference)
    appointment = runtime.source.fetch(str(row["pc_eid"]), MON, reference, zone)
    assert appointment is not None
    assert (appointment.patient_key, appointment.provider_keys, appointment.facility_key) == (
        "3",
        ("1",),
        "1",
    )
    assert (appointment.start, appointment.end) == (
        parse_instant("2026-03-30T07:30:00Z"),
        parse_instant("2026-03-30T07:45:00Z"),
    )
    assert (appointment.status, appointment.service_key) == (status, "5")

    # The store: the booking done, its write-back done, the slot gone from the offer.
    [stored] = store_rows(bridge, bookings)
    assert (stored["status"], stored["appointment_key"], stored["patient_key"]) == (
        "booked",
        str(row["pc_eid"]),
        "3",
    )
    assert stored["approval"] is (status == "^")
    assert stored["start_at"] == parse_instant("2026-03-30T07:30:00Z")
    [item] = store_rows(bridge, writebacks)
    assert (item["kind"], item["status"], item["attempts"]) == ("book", "done", 1)
    offers = Offers(runtime)
    checkup = offers.reason("checkup", "existing")
    assert checkup is not None
    assert "09:30" not in [f"{s.start:%H:%M}" for s in offers.slots(checkup, MON, MON)]
    # The confirmation is planned on both channels.
    assert sorted((j["event"], j["channel"], j["status"]) for j in store_rows(bridge, jobs)) == [
        ("booked", "email", "planned"),
        ("booked", "sms", "planned"),
    ]
    # ...and says whether it waits for the clinic.
    assert bridge.dispatch().sent == 2
    said = bridge.outbox(Channel.SMS)[0]["text"]
    if status == "^":
        assert "we received your booking for" in said and "We will confirm it shortly." in said
    else:
        assert "your appointment is booked:" in said and "confirm it shortly" not in said


def test_a_booking_in_a_bridge_block_at_another_location(
    bridge: Bridge, clinic: OpenEmrHost
) -> None:
    result = book(bridge, "15:45", provider="2", patient="4")
    assert result.state == "booked"
    [row] = booked_rows(clinic)
    assert (row["pc_aid"], row["pc_pid"], row["pc_facility"], row["pc_billing_location"]) == (
        "2",
        "4",
        2,
        2,
    )
    assert (row["pc_startTime"], row["pc_endTime"], row["pc_duration"]) == (
        time(15, 45),
        time(16),
        900,
    )


# --- a new patient books ------------------------------------------------------------------------


def newcomer(**values: Any) -> NewPatient:
    base: dict[str, Any] = {
        "first_name": "Cleo",
        "last_name": "Synthetic",
        "birth_date": date(1991, 5, 17),
        "sex": "female",
        "mobile": "+12025550177",
        "email": "cleo@example.test",
        "sms_ok": True,
        "email_ok": False,
        "language": "it",
    }
    return NewPatient(**{**base, **values})


def test_a_new_patient_is_registered_as_openemr_registers_one(
    bridge: Bridge, clinic: OpenEmrHost
) -> None:
    result = book(bridge, "14:30", patient=None, key="first", new=newcomer())
    assert result.state == "pending"  # new patients wait for approval by default
    [patient] = clinic.rows("patient_data", pid=5)  # MAX(pid) + 1
    assert {
        k: patient[k]
        for k in (
            "pubpid",
            "fname",
            "lname",
            "DOB",
            "sex",
            "phone_cell",
            "email",
            "hipaa_allowsms",
            "hipaa_allowemail",
            "language",
            "date",
            "regdate",
        )
        if k in patient
    } == {
        k: v
        for k, v in {
            "pubpid": "5",
            "fname": "Cleo",
            "lname": "Synthetic",
            "DOB": date(1991, 5, 17),
            "sex": "Female",
            "phone_cell": "+12025550177",
            "email": "cleo@example.test",
            "hipaa_allowsms": "YES",
            "hipaa_allowemail": "NO",
            "language": "italian",
            "date": datetime(2026, 3, 27, 8, 0),
            "regdate": datetime(2026, 3, 27, 8, 0),
        }.items()
        if k in patient
    }
    [row] = booked_rows(clinic)
    assert (row["pc_pid"], row["pc_catid"], row["pc_apptstatus"], row["pc_duration"]) == (
        "5",
        NEW_PATIENT,
        "^",
        1800,
    )
    assert (row["pc_startTime"], row["pc_endTime"]) == (time(14, 30), time(15))
    [note] = clinic.rows("pnotes")
    assert note["pid"] == 5
    assert note["body"].endswith(
        f"as a new patient (ref {result.reference}). It waits for approval (status pending). "
        "New patient registered online: please check the chart."
    )
    [stored] = store_rows(bridge, bookings)
    assert (stored["patient_key"], stored["new_patient"], stored["status"]) == ("5", True, "booked")
    # The confirmation goes where the patient agreed: SMS yes, email no.
    assert sorted((j["channel"], j["status"]) for j in store_rows(bridge, jobs)) == [
        ("email", "skipped"),
        ("sms", "planned"),
    ]


def test_someone_on_file_registering_as_new_is_booked_on_their_chart(
    bridge: Bridge, clinic: OpenEmrHost
) -> None:
    before = clinic.rows("patient_data", pid=3)[0]
    typed = newcomer(
        first_name="ADA",
        last_name="synthetic",
        birth_date=date(1980, 4, 7),
        mobile="+12025550188",
        email="ada.new@example.test",
        email_ok=True,
    )
    result = book(bridge, "14:00", patient=None, key="first", new=typed)
    assert result.state == "pending"
    assert sorted(p["pid"] for p in clinic.rows("patient_data")) == [3, 4]  # nobody new
    [row] = booked_rows(clinic)
    assert row["pc_pid"] == "3"
    after = clinic.rows("patient_data", pid=3)[0]
    assert {k: after[k] for k in ("phone_cell", "email", "hipaa_allowsms", "hipaa_allowemail")} == {
        k: before[k] for k in ("phone_cell", "email", "hipaa_allowsms", "hipaa_allowemail")
    }
    [note] = clinic.rows("pnotes")
    assert note["pid"] == 3
    assert note["body"].endswith(
        "Registered as new but matched this chart by name and birth date; contact details were "
        "not changed: typed online mobile +12025550188, email ada.new@example.test."
    )


# --- the slot re-checked ------------------------------------------------------------------------


def test_a_slot_staff_just_filled_is_refused_and_the_link_can_book_again(
    bridge: Bridge, clinic: OpenEmrHost
) -> None:
    reason, slot = offer(bridge, "checkup", "existing", MON, "09:15")
    staff = clinic.add_appointment(4, MON, "09:00", minutes=30)  # a moment after the page showed it
    result = submit(bridge.runtime, Request("existing", reason, slot, "en", patient_key="3"))
    assert (result.state, result.detail) == ("taken", "the time was taken in the meantime")
    assert booked_rows(clinic) == []
    assert [
        r["pc_eid"]
        for r in clinic.rows("openemr_postcalendar_events", pc_startTime=time(9))
        if r["pc_pid"] == "4"
    ] == [staff]
    [stored] = store_rows(bridge, bookings)
    assert (stored["status"], stored["detail"]) == ("refused", "the time was taken in the meantime")
    [item] = store_rows(bridge, writebacks)
    assert item["status"] == "refused"
    assert store_rows(bridge, jobs) == []  # the page said so at once: no message
    assert clinic.rows("pnotes") == []


def test_a_slot_whose_in_office_hours_were_removed_is_refused(
    bridge: Bridge, clinic: OpenEmrHost
) -> None:
    reason, slot = offer(bridge, "checkup", "existing", MON, "11:30")
    out = [
        r
        for r in clinic.rows("openemr_postcalendar_events", pc_catid=OUT_OF_OFFICE)
        if r["pc_eventDate"] == MON and r["pc_startTime"] == time(12)
    ]
    clinic.set_appointment(out[0]["pc_eid"], pc_startTime=time(11), pc_endTime=time(11))
    result = submit(bridge.runtime, Request("existing", reason, slot, "en", patient_key="3"))
    assert (result.state, result.detail) == (
        "taken",
        "the provider no longer takes bookings at that time",
    )
    assert booked_rows(clinic) == []


def test_a_retry_after_the_host_committed_is_already_booked(
    bridge: Bridge, clinic: OpenEmrHost
) -> None:
    result = book(bridge, "09:45")
    assert result.state == "booked"
    [row] = booked_rows(clinic)
    runtime = bridge.runtime
    with runtime.store.begin() as connection:
        [item] = queue.recent(connection)
        # As if the bridge died after the host's commit and before recording it.
        connection.execute(
            sa.update(writebacks)
            .where(writebacks.c.id == item.id)
            .values(status=Outcome.APPLYING.value, lease_until=runtime.clock.now() - timedelta(1))
        )
    assert apply_due(runtime).done == 1
    with runtime.store.begin() as connection:
        again = queue.find(connection, item.id)
    assert again is not None and again.result is not None
    assert (again.status, again.result["detail"], again.result["host_ref"]) == (
        Outcome.DONE,
        "already booked",
        str(row["pc_eid"]),
    )
    assert again.result["values"]["patient"] == "3"
    # The writer itself, once more: still one row, still one note.
    reference = runtime.source.reference()
    context = WriteContext(reference, runtime.zone(reference), runtime.clock.now())
    assert runtime.writer is not None
    assert runtime.writer.apply(item.command, context).detail == "already booked"
    assert [r["pc_eid"] for r in booked_rows(clinic)] == [row["pc_eid"]]
    assert len(clinic.rows("pnotes")) == 1
    assert [j["channel"] for j in store_rows(bridge, jobs)] == ["sms", "email"]


# --- the host away ------------------------------------------------------------------------------


def booked_while_down(make_bridge: Any, tcp_proxy: Any, start: str) -> tuple[Bridge, Any]:
    """A bridge reaching the host through ``tcp_proxy``; Ada books ``start`` on Monday, after
    the page showed it and just as the host went away. The host is back when it returns."""
    bridge = make_bridge(
        NOW, booking=BOOKING, host={"url": tcp_proxy.url, "mapping": "openemr"}, **ALL_DAY
    )
    reason, slot = offer(bridge, "checkup", "existing", MON, start)
    tcp_proxy.down()
    result = submit(bridge.runtime, Request("existing", reason, slot, "en", patient_key="3"))
    assert result.state == "queued"
    return bridge, result


@pytest.mark.parametrize("store_url", ["sqlite", "postgresql"], indirect=True)
def test_a_booking_made_while_the_host_is_down_lands_when_it_is_back(
    make_bridge: Any, clinic: OpenEmrHost, tcp_proxy: Any
) -> None:
    bridge, result = booked_while_down(make_bridge, tcp_proxy, "11:00")
    assert booked_rows(clinic) == []
    [stored] = store_rows(bridge, bookings)
    assert stored["status"] == "queued"
    [item] = store_rows(bridge, writebacks)
    assert (item["status"], item["attempts"]) == ("pending", 1)

    tcp_proxy.up = True
    bridge.clock.advance(timedelta(minutes=2))
    assert apply_due(bridge.runtime).done == 1
    [row] = booked_rows(clinic)
    assert (row["pc_pid"], row["pc_startTime"], row["pc_apptstatus"]) == ("3", time(11), "-")
    # Booked at 08:02, when the host took it.
    assert row["pc_hometext"] == f"Booked online on 2026-03-27 at 08:02 (ref {result.reference})"
    # Away again before the worker settles it: nothing is lost, the next round settles it.
    tcp_proxy.down()
    assert BookingWorker(bridge.runtime).settle_bookings() == 1
    assert [b["status"] for b in store_rows(bridge, bookings)] == ["queued"]
    assert store_rows(bridge, jobs) == []
    tcp_proxy.up = True
    assert BookingWorker(bridge.runtime).settle_bookings() == 1
    [stored] = store_rows(bridge, bookings)
    assert (stored["status"], stored["appointment_key"]) == ("booked", str(row["pc_eid"]))
    assert sorted((j["event"], j["channel"]) for j in store_rows(bridge, jobs)) == [
        ("booked", "email"),
        ("booked", "sms"),
    ]
    assert BookingWorker(bridge.runtime).settle_bookings() == 0


def test_a_queued_booking_that_expired_is_refused_and_the_patient_told(
    make_bridge: Any, clinic: OpenEmrHost, tcp_proxy: Any
) -> None:
    bridge, _ = booked_while_down(make_bridge, tcp_proxy, "11:15")
    tcp_proxy.up = True
    bridge.clock.advance(timedelta(minutes=16))  # booking.pending_minutes is 15
    assert apply_due(bridge.runtime).refused == 1
    assert booked_rows(clinic) == []
    assert BookingWorker(bridge.runtime).settle_bookings() == 1
    [stored] = store_rows(bridge, bookings)
    assert (stored["status"], stored["detail"]) == (
        "refused",
        "the request expired before the host could take it",
    )
    assert sorted(
        (j["event"], j["channel"], j["appointment_key"]) for j in store_rows(bridge, jobs)
    ) == [
        ("booking_failed", "email", f"booking:{stored['id']}"),
        ("booking_failed", "sms", f"booking:{stored['id']}"),
    ]


# --- the confirmation ---------------------------------------------------------------------------


def test_the_confirmation_carries_the_clinics_extras_and_respects_consent(
    bridge: Bridge, clinic: OpenEmrHost
) -> None:
    assert book(bridge, "09:00").state == "booked"  # Ada: SMS and email
    assert book(bridge, "09:15", patient="4").state == "booked"  # Ben: no SMS consent
    report = bridge.dispatch()
    assert report.sent == 3
    sms = bridge.outbox(Channel.SMS)
    emails = bridge.outbox(Channel.EMAIL)
    assert len(sms) == 1 and len(emails) == 2
    text = sms[0]["text"]
    assert "your appointment is booked" in text and "with Dr. Ada Rossi" in text
    assert "Map: https://maps.example.test/synthetic-clinic" in text
    ada = next(e for e in emails if e["to"] == "patient3@example.test")
    body = ada["text"]
    for line in (
        "Your appointment is booked.",
        "With:  Dr. Ada Rossi",
        "For:   Check-up",  # the reason chosen, not the host's category behind it
        "Map and directions: https://maps.example.test/synthetic-clinic",
        "Parking: Free parking behind the building.",
        "Flu shots available this month.",
    ):
        assert line in body
    assert "https://clinic.example.test/photos/rossi.jpg" in (ada.get("html") or "")
    [skipped] = [j for j in store_rows(bridge, jobs) if j["status"] == "skipped"]
    assert (skipped["patient_key"], skipped["channel"]) == ("4", "sms")
    assert bridge.dispatch().sent == 0  # exactly once


# --- the host's calendar as it changes ----------------------------------------------------------


def test_repeating_in_office_events_open_every_day_of_their_series(
    bridge: Bridge, clinic: OpenEmrHost
) -> None:
    """Dr Okafor's In Office 13:00 / Out Of Office 14:00, repeating every workday (OpenEMR's
    ``pc_recurrtype`` 1, ``event_repeat_freq_type`` 4) at the North clinic."""
    workdays = Repeat(kind=1, freq=1, freq_type=4)
    for catid, at in ((IN_OFFICE, "13:00"), (OUT_OF_OFFICE, "14:00")):
        clinic.add_appointment(
            None,
            MON,
            at,
            minutes=0,
            catid=catid,
            provider=2,
            facility=2,
            repeat=workdays,
            end_date=date(2026, 4, 30),
        )
    offers = Offers(bridge.runtime)
    checkup = offers.reason("checkup", "existing")
    assert checkup is not None
    found = offers.slots(checkup, MON, date(2026, 4, 6), provider="2")
    by_day: dict[date, list[str]] = {}
    for slot in found:
        by_day.setdefault(slot.day, []).append(f"{slot.start:%H:%M} {slot.office}")
    hour = ["13:00 host", "13:15 host", "13:30 host", "13:45 host"]
    assert by_day == {
        MON: [*hour, "15:30 bridge", "15:45 bridge"],
        # Tuesday 31 March: the clinic's holiday
        date(2026, 4, 1): hour,
        date(2026, 4, 2): hour,
        date(2026, 4, 3): hour,
        # Saturday and Sunday: not workdays
        date(2026, 4, 6): [*hour, "15:00 bridge", "15:15 bridge", "15:30 bridge", "15:45 bridge"],
    }
    assert book(bridge, "13:30", provider="2", day=date(2026, 4, 2)).state == "booked"
    [row] = booked_rows(clinic)
    assert (row["pc_eventDate"], row["pc_startTime"], row["pc_facility"]) == (
        date(2026, 4, 2),
        time(13, 30),
        2,
    )


def test_the_writer_follows_the_hosts_day_end_as_the_pages_do(
    bridge: Bridge, clinic: OpenEmrHost
) -> None:
    wednesday = date(2026, 4, 1)
    marker(clinic, IN_OFFICE, wednesday, "16:00", provider=2, facility=2)  # open to the day's end
    assert book(bridge, "16:00", provider="2", day=wednesday).state == "booked"
    globals_ = clinic.table("globals")
    with clinic.engine.begin() as connection:
        connection.execute(
            sa.insert(globals_).values(gl_name="schedule_end", gl_index=0, gl_value="18")
        )
    try:
        bridge.clock.advance(timedelta(minutes=6))  # both read the host's grid every 5 minutes
        assert book(bridge, "17:15", provider="2", day=wednesday).state == "booked"
        assert [r["pc_startTime"] for r in booked_rows(clinic)] == [time(16), time(17, 15)]
    finally:
        with clinic.engine.begin() as connection:
            connection.execute(sa.delete(globals_).where(globals_.c.gl_name == "schedule_end"))


def test_a_booking_payload_the_host_cannot_take_is_refused(
    bridge: Bridge, clinic: OpenEmrHost
) -> None:
    runtime = bridge.runtime
    reference = runtime.source.reference()
    context = WriteContext(reference, runtime.zone(reference), runtime.clock.now())
    slot = {
        "provider": "1",
        "facility": "1",
        "date": "2026-03-30",
        "start": "09:00",
        "end": "09:15",
        "office": "host",
    }
    payloads = [
        ({"service": "5", "reference": "ABCD2345"}, "booking payload unusable: 'slot'"),
        (
            {"slot": {**slot, "end": "08:45"}, "service": "5", "reference": "ABCD2345"},
            "booking payload unusable: reference or times",
        ),
        (
            {
                "slot": slot,
                "service": "5",
                "reference": "ABCD2345",
                "patient": {"first_name": "Nobody", "last_name": "Synthetic"},
            },
            "a new patient needs a first name, a last name and a birth date",
        ),
        (
            {"slot": slot, "service": "5", "reference": "ABCD2345"},  # pid 77 is not on file
            "the patient is no longer on the host",
        ),
    ]
    assert runtime.writer is not None
    for payload, why in payloads:
        command = Command(CommandKind.BOOK, "booking", "booking-x", "77", None, MON, None, payload)
        with pytest.raises(WriteBackRefused) as refused:
            runtime.writer.apply(command, context)
        assert str(refused.value) == why
    assert booked_rows(clinic) == []

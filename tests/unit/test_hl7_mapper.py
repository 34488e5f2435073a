"""Every published valid fixture, read with the generic mapping and with the NHS one: the
appointment state each message lands as (table-driven), and the business checks."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bridge.hl7.header import read_header
from bridge.hl7.intake import Intake
from bridge.hl7.mapper import Mapper
from bridge.hl7.parse import parse
from bridge.hl7.problem import DATA_TYPE, REQUIRED_FIELD, Rejected
from bridge.model import Channel, Consent, StatusClass
from tests.hl7_samples import VALID, fixture, mapping, siu

LONDON = ZoneInfo("Europe/London")
NOW = datetime(2026, 3, 27, 8, tzinfo=UTC)
REGION = {"09": "GB", "10": "GB", "11": "GB", "12": "GB", "14": "US", "19": "FR", "20": "GB"}

# fixture prefix: meaning, key, start (UTC), end (UTC time), status, class, eligible, providers,
# facility, room, service, patient, mobile, home, email
GENERIC: dict[str, tuple[Any, ...]] = {
    "01": (
        "booked",
        "36996",
        "2021-09-24T07:15",
        "08:05",
        "Booked",
        "scheduled",
        True,
        ("1210",),
        "GH Clinic",
        "Room01",
        "76164006",
        "PATID1234",
        None,
        None,
        None,
    ),
    "02": (
        "booked",
        "36996",
        "2021-08-18T09:15",
        "10:15",
        "Booked",
        "scheduled",
        True,
        ("400", "500", "600"),
        "GHH Hospital",
        "Lab Room 01",
        "58410-2",
        "PATID1234",
        None,
        None,
        None,
    ),
    "03": (
        "moved",
        "36996",
        "2021-08-20T09:15",
        "10:15",
        "Booked",
        "scheduled",
        True,
        ("400", "500", "600"),
        "GHH Hospital",
        "Lab Room 01",
        "58410-2",
        "PATID1234",
        None,
        None,
        None,
    ),
    "04": (
        "modified",
        "36996",
        "2021-09-24T07:15",
        "08:05",
        "Booked",
        "scheduled",
        True,
        ("1210",),
        "GH Clinic",
        "Room02",
        "76164006",
        "PATID1234",
        None,
        None,
        None,
    ),
    "05": (
        "cancelled",
        "36996",
        "2021-09-24T07:15",
        "08:05",
        "Cancelled",
        "cancelled",
        False,
        ("1210",),
        "GH Clinic",
        "Room01",
        "76164006",
        "PATID1234",
        None,
        None,
        None,
    ),
    "06": (
        "discontinued",
        "36996",
        "2021-09-24T07:15",
        "08:05",
        "Dc",
        "cancelled",
        False,
        ("1210",),
        "GH Clinic",
        "Room01",
        "76164006",
        "PATID1234",
        None,
        None,
        None,
    ),
    "07": (
        "deleted",
        "36996",
        "2021-08-18T09:15",
        "10:15",
        "Deleted",
        "cancelled",
        False,
        ("400", "500", "600"),
        "GHH Hospital",
        "Lab Room 01",
        "58410-2",
        "PATID1234",
        None,
        None,
        None,
    ),
    "08": (
        "no_show",
        "36996",
        "2021-09-24T07:15",
        "08:05",
        "Noshow",
        "no_show",
        False,
        ("1210",),
        "GH Clinic",
        "Room01",
        "76164006",
        "PATID1234",
        None,
        None,
        None,
    ),
    "09": (
        "booked",
        "149549015",
        "2024-11-06T12:00",
        "12:30",
        "Confirmed",
        "confirmed",
        True,
        ("Z3590850",),
        "RNJ ROYALLONDON",
        "",
        "Nephrology New",
        "10769857",
        None,
        "+442011110111",
        "testrenal@test.co",
    ),
    "10": (
        "moved",
        "149549023",
        "2024-11-06T11:30",
        "12:00",
        "Confirmed",
        "confirmed",
        True,
        ("Z3590850",),
        "RNJ ROYALLONDON",
        "",
        "Nephrology New",
        "10769861",
        None,
        None,
        "testrenal@co.in",
    ),
    "11": (
        "cancelled",
        "149549027",
        "2024-11-13T10:00",
        "11:00",
        "Cancelled",
        "cancelled",
        False,
        ("C3590850",),
        "RNJ BARTS",
        "",
        "Nephrology Haemodialysis F/Up",
        "10769859",
        "+447898989898",
        None,
        "testemail@test.co",
    ),
    # The event wins over the status: an S26 sent with SCH-25 "Cancelled" is a no-show.
    "12": (
        "no_show",
        "149549027",
        "2024-11-13T10:00",
        "11:00",
        "Cancelled",
        "no_show",
        False,
        ("C3590850",),
        "RNJ BARTS",
        "",
        "Nephrology Haemodialysis F/Up",
        "10769859",
        "+447898989898",
        None,
        "testemail@test.co",
    ),
    "13": (
        "modified",
        "569576",
        "2010-04-07T15:10",
        "21:29",
        "Booked",
        "scheduled",
        True,
        ("51873", "33043", "102694", "T1240UHN"),
        "OR 4",
        "OR 4",
        "G014080",
        "990119205",
        None,
        None,
        None,
    ),
    "14": (
        "modified",
        "00331839401",
        "2008-03-06T10:00",
        "10:20",
        "Arrived",
        "checked_in",
        False,
        ("PBN",),
        "HHR",
        "FPCS NGUYEN, MD",
        "HLCK",
        "489671",
        None,
        "+18327958259",
        None,
    ),
    "15": (
        "modified",
        "A25335451569",
        "2018-09-12T14:48",
        "15:23",
        "Started",
        "checked_in",
        False,
        ("4827",),
        "9231",
        "",
        "SCANCEA",
        "031570943",
        None,
        None,
        None,
    ),
    "18": (
        "deleted",
        "APPTID123",
        "2021-04-06T12:30",
        "12:45",
        "deleted",
        "cancelled",
        False,
        (),
        None,
        "",
        "Activity",
        "53356",
        None,
        "+17705555555",
        None,
    ),
    "19": (
        "booked",
        "49849903800",
        "2016-12-31T11:00",
        "11:30",
        "Booked",
        "scheduled",
        True,
        ("10101041431",),
        None,
        "",
        None,
        "123456",
        None,
        "+33200000000",
        "dimitri.dobairro@clicrdv.com",
    ),
    # The generic mapping does not know the PAS's numeric status: kept, and not eligible.
    "20": (
        "booked",
        "APT001",
        "2019-10-24T08:45",
        "08:55",
        "1",
        "other",
        False,
        ("CONS001",),
        None,
        "",
        "1",
        "0123123",
        "+447999123123",
        None,
        "test@test.com",
    ),
}


def read(shared_dir: Path, name: str, mapping_name: str = "hl7-siu") -> Any:
    """The verdict at receipt, then the whole meaning (as the applier reads it)."""
    intake = Intake(mapping(mapping_name), LONDON, REGION.get(name[:2], "US"))
    raw = fixture(shared_dir, name)
    item = intake.receive(raw, "test", NOW)
    assert item.problem is None, item.problem.reason
    mapped, problem = intake.read(raw)
    assert problem is None and mapped is not None
    assert (mapped.meaning, mapped.key) == (item.meaning, item.key)
    return mapped


@pytest.mark.parametrize("name", VALID, ids=[n[:2] for n in VALID])
def test_each_valid_fixture_lands_as_its_appointment_state(shared_dir: Path, name: str) -> None:
    (meaning, key, start, end, status, status_class, eligible, providers, facility, room,
     service, patient, mobile, home, email) = GENERIC[name[:2]]  # fmt: skip
    mapped = read(shared_dir, name)
    appointment = mapped.appointment
    assert (mapped.meaning, mapped.key, mapped.status) == (meaning, key, status)
    assert mapped.status_class == StatusClass(status_class)
    assert appointment.start.strftime("%Y-%m-%dT%H:%M") == start
    assert appointment.end.strftime("%H:%M") == end
    assert appointment.occurrence == appointment.start.astimezone(LONDON).date()
    assert (appointment.status, appointment.status_class.value) == (status, status_class)
    assert appointment.eligible is eligible
    assert appointment.provider_keys == providers
    assert (appointment.facility_key, appointment.room) == (facility, room)
    assert appointment.service_key == service
    assert appointment.patient_key == patient == mapped.patient.key
    assert (mapped.patient.mobile, mapped.patient.home_phone) == (mobile, home)
    assert mapped.patient.email == email


def test_patient_details(shared_dir: Path) -> None:
    patient = read(shared_dir, "01_ms_fhirconv_siu_s12_v28.hl7").patient
    assert (patient.last_name, patient.first_name) == ("EVERYMAN", "ADAM")  # display name
    assert patient.birth_date.isoformat() == "1988-08-18"
    assert (patient.sex, patient.language) == ("M", "ar")
    assert patient.bad_contacts == ("mobile", "email")  # 78788788 is no number; no e-mail
    assert (patient.street, patient.city, patient.postal_code) == (
        "1000 Hospital Lane",
        "Ann Arbor",
        "99999",
    )
    barts = read(shared_dir, "09_renalware_barts_siu_s12_v24.hl7").patient
    assert barts.bad_contacts == ("mobile",)  # 0766655652: one digit short
    assert read(shared_dir, "18_embe7_test_siu_s17_v24_tq1.hl7").patient.language == "en"


def test_echo_keeps_identifiers_as_sent(shared_dir: Path) -> None:
    echo = read(shared_dir, "01_ms_fhirconv_siu_s12_v28.hl7").echo
    assert echo["filler"] == "36996" and echo["placer"] == "12345"
    assert echo["key_field"] == "SCH-2.1"
    assert echo["sending_application"] == "SCHApp"
    assert echo["patient_id"].startswith("PATID1234^5^M11^")


def test_a_new_feed_is_a_new_file_the_nhs_mapping(shared_dir: Path) -> None:
    pas = read(shared_dir, "20_nhs_pas_style_siu_s12_v24_zsegments.hl7", "hl7-siu-nhs")
    assert pas.appointment.status_class == StatusClass.SCHEDULED and pas.appointment.eligible
    assert pas.appointment.service_key == "GEN345_BAB"  # from the ZBX Z-segment
    assert pas.patient.key == "0123123"  # hospital number by type MRN
    assert pas.patient.mrn == "0000255355"  # NHS number
    assert pas.patient.sex == "F"  # NHS code 2
    assert pas.patient.consent == {Channel.SMS: Consent.YES}  # ZU1-1
    barts = read(shared_dir, "09_renalware_barts_siu_s12_v24.hl7", "hl7-siu-nhs")
    assert barts.appointment.room == "RNJ Renal OPD"
    assert barts.appointment.start.isoformat() == "2024-11-06T12:00:00+00:00"


def test_the_nhs_mapping_refuses_versions_it_does_not_take(shared_dir: Path) -> None:
    intake = Intake(mapping("hl7-siu-nhs"), LONDON, "GB")
    item = intake.receive(fixture(shared_dir, VALID[0]), "test", NOW)
    assert item.problem is not None and item.problem.code == 203


def mapped(raw: bytes, name: str = "hl7-siu") -> Any:
    message = parse(raw.decode().replace("\n", "\r"))
    return Mapper(mapping(name), LONDON, "US").map(message, read_header(message))


START = datetime(2026, 3, 30, 9, 30)


def test_a_missing_key_is_101() -> None:
    raw = siu("C1", "K1", "P1", START).replace(b"SCH|K1-P|K1|", b"SCH|||")
    with pytest.raises(Rejected) as caught:
        mapped(raw)
    problem = caught.value.problem
    assert (problem.code, problem.location) == (REQUIRED_FIELD, "SCH-2.1")
    assert "SCH-2.1, SCH-1.1, PV1-19.1" in problem.text


def test_an_unparseable_start_is_102_and_a_missing_one_101() -> None:
    raw = siu("C1", "K1", "P1", START)
    bad = raw.replace(b"^^30^20260330093000^", b"^^30^2026-03-30 09:30^")
    with pytest.raises(Rejected) as caught:
        mapped(bad.replace(b"AIS|1||CHECK^Check-up|20260330093000", b"AIS|1||CHECK"))
    assert (caught.value.problem.code, caught.value.problem.location) == (DATA_TYPE, "SCH-11.4")
    none = raw.replace(b"^^30^20260330093000^20260330100000", b"").replace(
        b"|CHECK^Check-up|20260330093000", b"|CHECK^Check-up|"
    )
    with pytest.raises(Rejected) as caught:
        mapped(none)
    assert caught.value.problem.code == REQUIRED_FIELD


def test_a_cancellation_without_timing_is_taken() -> None:
    raw = siu("C1", "K1", "P1", START, event="S15", status="Cancelled")
    raw = raw.replace(b"^^30^20260330093000^20260330100000", b"").replace(
        b"|CHECK^Check-up|20260330093000", b"|CHECK^Check-up|"
    )
    result = mapped(raw)
    assert result.appointment is None
    assert (result.key, result.status_class) == ("K1", StatusClass.CANCELLED)


def test_a_missing_patient_id_is_101() -> None:
    raw = siu("C1", "K1", "P1", START).replace(b"PID|1||P1^^^CLINIC^MR|", b"PID|1|||")
    with pytest.raises(Rejected) as caught:
        mapped(raw)
    assert (caught.value.problem.code, caught.value.problem.location) == (REQUIRED_FIELD, "PID-3")


def test_an_overlong_key_is_102() -> None:
    raw = siu("C1", "K" * 65, "P1", START)
    with pytest.raises(Rejected) as caught:
        mapped(raw)
    assert caught.value.problem.code == DATA_TYPE


def test_a_status_in_any_case_gets_the_mapping_spelling() -> None:
    result = mapped(siu("C1", "K1", "P1", START, status="CONFIRMED"))
    assert result.appointment.status == "Confirmed"
    assert result.appointment.status_class == StatusClass.CONFIRMED


def test_ignored_events_map_to_nothing() -> None:
    result = mapped(siu("C1", "K1", "P1", START, event="S23"))
    assert (result.meaning, result.appointment, result.patient) == ("ignore", None, None)


def test_uk_feeds_sending_pre_admissions_as_adt_a05_and_a38() -> None:
    base = (
        "MSH|^~\\&|PAS|TRUST|BRIDGE|CLINIC|20260327080000||ADT^{event}^ADT_A05|{control}|P|2.4\r"
        "EVN|{event}|20260327080000\r"
        "PID|1||555^^^TRUST^MRN||Synthetic^Pat||19800101|F|||||07911 123456^^CP\r"
        "PV1|1|O|CLINIC1^^^MAIN||||DR1^Rossi^Ada||||||||||||V123^^^TRUST^VN\r"
        "PV2||||||||20260330093000"
    )
    booked = mapped(base.format(event="A05", control="A1").encode())
    assert (booked.meaning, booked.key) == ("booked", "V123")  # PV1-19: no SCH in an ADT
    assert booked.appointment.start.isoformat() == "2026-03-30T08:30:00+00:00"
    assert booked.appointment.provider_keys == ("DR1",)
    assert booked.appointment.facility_key == "MAIN"
    cancelled = mapped(base.format(event="A38", control="A2").encode())
    assert (cancelled.meaning, cancelled.key) == ("cancelled", "V123")
    assert cancelled.status_class == StatusClass.CANCELLED

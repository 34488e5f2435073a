"""Write-back messages from the site templates: valid for hl7apy's strict mode in every
version offered, the template applied, patient text escaped, a stable control id."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from bridge.errors import WriteBackRefused
from bridge.hl7.outbound import build, control_id_for
from bridge.hl7.parse import parse
from bridge.mapping.hl7 import CommandTemplate, Hl7Mapping
from bridge.model import Appointment, Channel, Patient, StatusClass
from bridge.writeback import Command, CommandKind
from tests.hl7_samples import mapping

ROME = ZoneInfo("Europe/Rome")
NOW = datetime(2026, 3, 27, 8, tzinfo=UTC)
APPOINTMENT = Appointment(
    "K1",
    date(2026, 3, 30),
    "P1",
    datetime(2026, 3, 30, 7, 30, tzinfo=UTC),
    datetime(2026, 3, 30, 8, tzinfo=UTC),
    "Booked",
    StatusClass.SCHEDULED,
    True,
)
PATIENT = Patient("P1", first_name="Ada", last_name="Rossi")
ECHO = {
    "sending_application": "SCHED",
    "sending_facility": "NORTH",
    "placer": "K1-P",
    "filler": "K1^SCHED",
    "patient_id": "P1^^^CLINIC^MR",
}
VERSIONS = ["2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6"]


def command(kind: str, **payload: object) -> Command:
    return Command(
        CommandKind(kind), "sms-reply", "SM123", "P1", "K1", date(2026, 3, 30), Channel.SMS,
        dict(payload),
    )  # fmt: skip


def built(site: Hl7Mapping, kind: str, version: str, **payload: object) -> str:
    writeback = site.writeback.model_copy(update={"version": version})
    template = writeback.template_for(kind)
    assert template is not None
    appointment = None if kind == "book" else APPOINTMENT
    return build(
        command(kind, **payload), template, writeback, appointment, ECHO, PATIENT, ROME, NOW
    ).text


def strict(text: str) -> None:
    """hl7apy finds the structure of 2.3 messages only by the S12/S01 event: the structure of
    every SIU (and SRM) event is the same, so the event is swapped for the check."""
    text = re.sub(r"\|SIU\^S\d\d(\^SIU_S12)?\|", r"|SIU^S12\1|", text)
    text = re.sub(r"\|SRM\^S\d\d(\^SRM_S01)?\|", r"|SRM^S01\1|", text)
    parse_message(text, validation_level=VALIDATION_LEVEL.STRICT).validate()


CASES = [
    (name, kind) for name in ("hl7-siu", "hl7-siu-nhs") for kind in mapping(name).writeback.commands
]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("site", "kind"), CASES, ids=[f"{s}-{k}" for s, k in CASES])
def test_every_template_builds_a_valid_message(site: str, kind: str, version: str) -> None:
    text = built(mapping(site), kind, version, start="2026-04-02T08:00:00Z", duration_minutes=30)
    strict(text)
    message = parse(text)
    template = mapping(site).writeback.template_for(kind)
    assert template is not None
    assert message.value("MSH-9.1") + "^" + message.value("MSH-9.2") == template.message
    assert message.value("MSH-12") == version
    assert message.value("PID-3.1") == "P1" and message.value("PID-3.5") == "MR"
    for name, value in template.set.items():
        assert message.value(name) == value.split("^")[0]


def test_the_generic_confirmation_carries_status_reason_timing_and_note() -> None:
    message = parse(built(mapping(), "confirm", "2.5.1"))
    assert message.value("MSH-5") == "SCHED" and message.value("MSH-6") == "NORTH"
    assert message.value("SCH-1") == "K1-P"
    assert message.repetitions("SCH-2") == ["K1^SCHED"]
    assert message.value("SCH-25") == "Confirmed"
    assert message.value("SCH-6.2") == "Confirmed by the patient"
    assert message.value("SCH-11.4") == "20260330093000+0200"
    assert message.value("TQ1-7") == "20260330093000+0200"
    assert message.value("NTE-3") == "Confirmed by the patient (sms) at 2026-03-27 09:00"
    assert message.value("PID-5.1") == "Rossi"


def test_2_3_has_no_tq1_and_names_no_structure() -> None:
    message = parse(built(mapping(), "confirm", "2.3"))
    assert not message.has("TQ1")
    assert message.segments[0].raw(9) == "SIU^S14"


def test_patient_text_is_escaped_and_cannot_add_fields() -> None:
    message = parse(built(mapping(), "cancel", "2.5.1", reason="car | broke ^ down & ~ more"))
    assert message.value("NTE-3").endswith("car | broke ^ down & ~ more")
    assert message.value("SCH-25") == "Cancelled"


def test_nhs_requests_use_arq_and_a_z_segment() -> None:
    message = parse(built(mapping("hl7-siu-nhs"), "confirm", "2.4"))
    assert message.value("MSH-9.2") == "S03"
    assert message.value("ARQ-1") == "K1-P" and message.value("ARQ-2") == "K1"
    assert message.value("ARQ-6.1") == "CONF"
    assert message.value("ARQ-11.1") == "20260330093000+0200"
    assert [message.value(f"ZRB-{n}") for n in (1, 2, 3)] == [
        "CONFIRMED",
        "sms",
        "2026-03-27 09:00",
    ]
    assert message.value("MSH-5") == "TRUST_PAS"


def test_a_booking_request_takes_its_slot_from_the_payload() -> None:
    message = parse(
        built(mapping(), "book", "2.5.1", start="2026-04-02T08:00:00Z", end="2026-04-02T08:20:00Z")
    )
    assert message.value("MSH-9.2") == "S01"
    assert message.value("ARQ-11.1") == "20260402100000+0200"
    assert message.value("ARQ-11.2") == "20260402102000+0200"
    assert message.value("ARQ-7.1") == "ONLINE"


def test_the_control_id_is_stable_across_retries_and_short() -> None:
    first = parse(built(mapping(), "confirm", "2.5.1")).value("MSH-10")
    again = parse(built(mapping(), "confirm", "2.5.1")).value("MSH-10")
    assert first == again == control_id_for(command("confirm"))
    assert len(first) <= 20
    assert control_id_for(command("cancel")) != first


def test_a_template_naming_a_field_the_version_lacks_is_refused() -> None:
    template = CommandTemplate(message="SIU^S14", set={"SCH-99": "x"})
    writeback = mapping().writeback
    with pytest.raises(WriteBackRefused, match="cannot be built"):
        build(command("confirm"), template, writeback, APPOINTMENT, ECHO, PATIENT, ROME, NOW)

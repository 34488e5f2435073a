"""ACKs from the template, checked against hl7apy for every version the bridge accepts."""

from __future__ import annotations

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.exceptions import ValidationError
from hl7apy.parser import parse_message, parse_segment

from bridge.hl7.ack import ACCEPTED, REFUSED, UNAVAILABLE, acks_for, build_ack, next_control_id
from bridge.hl7.header import Header
from bridge.hl7.parse import parse
from bridge.hl7.problem import DATA_TYPE, REQUIRED_FIELD, Problem

STAMP = "20260327080000+0000"
VERSIONS = ["2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.8"]
PROBLEM = Problem(DATA_TYPE, "start 'x|y^z' is not a date and time", "SCH", 1, 11, 4)


def header(version: str = "2.4", accept: str = "", application: str = "") -> Header:
    return Header(
        sending_application="SCHED",
        sending_facility="NORTH",
        receiving_application="BRIDGE",
        receiving_facility="CLINIC",
        message_type="SIU",
        event="S12",
        control_id_sent=" 38762",
        processing_id="P",
        version=version,
        accept_ack=accept,
        application_ack=application,
    )


def strict(text: str, version: str) -> None:
    """hl7apy's strict check; before 2.4 it cannot find an ACK's structure, so each segment
    is checked on its own."""
    if version in ("2.3", "2.3.1"):
        for segment in text.strip("\r").split("\r"):
            parse_segment(segment, version=version, validation_level=VALIDATION_LEVEL.STRICT)
        return
    message = parse_message(text, validation_level=VALIDATION_LEVEL.STRICT)
    message.validate()


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("code", "problem"), [("AA", None), ("AE", PROBLEM), ("AR", PROBLEM)])
def test_acks_are_valid_hl7_for_each_version(
    version: str, code: str, problem: Problem | None
) -> None:
    text = build_ack(header(version), code, problem, STAMP, "RB")
    strict(text, version)
    message = parse(text)
    assert message.value("MSA-1") == code
    assert message.segments[1].raw(2) == " 38762"  # echoed as sent, not trimmed
    assert message.value("MSH-12") == version
    assert message.value("MSH-5") == "SCHED" and message.value("MSH-6") == "NORTH"
    assert message.value("MSH-3") == "BRIDGE"
    assert message.value("MSH-9.1") == "ACK"
    assert len(message.value("MSH-10")) <= 20
    assert message.has("ERR") == (problem is not None)


def test_err_for_2_5_and_later_has_location_code_severity_and_text() -> None:
    message = parse(build_ack(header("2.5.1"), "AE", PROBLEM, STAMP, "RB"))
    assert message.value("ERR-2.1") == "SCH"
    assert message.value("ERR-2.3") == "11"
    assert message.value("ERR-2.5") == "4"
    assert message.value("ERR-3.1") == "102"
    assert message.value("ERR-3.3") == "HL70357"
    assert message.value("ERR-4") == "E"
    assert message.value("ERR-8") == "start 'x|y^z' is not a date and time"


def test_err_before_2_5_uses_err_1_and_msa_3() -> None:
    message = parse(build_ack(header("2.3"), "AE", PROBLEM, STAMP, "RB"))
    assert message.value("ERR-1.1") == "SCH"
    assert message.value("ERR-1.3") == "11"
    assert message.value("ERR-1.4.1") == "102"
    assert message.value("MSA-3") == "start 'x|y^z' is not a date and time"


def test_a_message_without_header_fields_still_gets_a_well_formed_ack() -> None:
    broken = Header(control_id_sent="", version="", event="")
    problem = Problem(REQUIRED_FIELD, "no message type", "MSH", 1, 9)
    text = build_ack(broken, "AE", problem, STAMP, "RB")
    # The one thing strict validation misses is MSA-2: there was no control id to echo.
    with pytest.raises(ValidationError, match=r"MSA\.MSA_2"):
        strict(text, "2.5.1")
    message = parse(text)
    assert message.value("MSH-3") == "RB"
    assert message.value("MSH-12") == "2.5.1"
    assert message.value("MSA-1") == "AE"


def test_original_mode_gives_one_ack_per_outcome() -> None:
    for outcome, code in ((ACCEPTED, "AA"), (REFUSED, "AE"), (UNAVAILABLE, "AR")):
        acks = acks_for(header(), outcome, None if outcome == ACCEPTED else PROBLEM, STAMP, "RB")
        assert [parse(a).value("MSA-1") for a in acks] == [code]


@pytest.mark.parametrize(
    ("accept", "application", "outcome", "codes"),
    [
        ("AL", "AL", ACCEPTED, ["CA", "AA"]),
        ("AL", "NE", ACCEPTED, ["CA"]),
        ("NE", "AL", ACCEPTED, ["AA"]),
        ("ER", "AL", ACCEPTED, ["AA"]),
        ("SU", "SU", ACCEPTED, ["CA", "AA"]),
        ("AL", "AL", REFUSED, ["CE"]),
        ("ER", "AL", REFUSED, ["CE"]),
        ("SU", "AL", REFUSED, []),
        ("NE", "NE", UNAVAILABLE, ["CR"]),  # not stored: the sender must hear it
        ("AL", "AL", UNAVAILABLE, ["CR"]),
    ],
)
def test_enhanced_mode(accept: str, application: str, outcome: str, codes: list[str]) -> None:
    problem = None if outcome == ACCEPTED else PROBLEM
    acks = acks_for(header("2.5.1", accept, application), outcome, problem, STAMP, "RB")
    assert [parse(a).value("MSA-1") for a in acks] == codes
    for ack in acks:
        strict(ack, "2.5.1")
    if len(acks) == 2:
        assert parse(acks[0]).value("MSH-10") != parse(acks[1]).value("MSH-10")


def test_control_ids_are_unique_and_short() -> None:
    ids = {next_control_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert max(len(i) for i in ids) <= 20

"""Structure checks: the malformed fixtures and each header rule, with HL7 error codes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bridge.hl7.folder import split_messages
from bridge.hl7.frame import FrameReader
from bridge.hl7.intake import Intake
from tests.hl7_samples import LF_COPY, MALFORMED, fixture, mapping

NOW = datetime(2026, 3, 27, 8, tzinfo=UTC)
GOOD = (
    "MSH|^~\\&|A|B|C|D|20260327||SIU^S12|1|P|2.4\r"
    "SCH|K1|K1|||||||||^^^20260330093000\rPID|1||P1\rRGS|1"
)


def intake() -> Intake:
    return Intake(mapping(), ZoneInfo("Europe/London"), "GB")


def verdicts(raw: bytes) -> list[tuple[int, str]]:
    messages = [f.payload for f in FrameReader(1 << 20).feed(raw)] if b"\x0b" in raw else [raw]
    found = [intake().receive(m, "test", NOW).problem for m in messages]
    return [(p.code, p.location) if p else (0, "") for p in found]


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_fixtures_are_refused_with_their_code(shared_dir: Path, name: str) -> None:
    got = verdicts(fixture(shared_dir, name))
    assert [code for code, _ in got] == MALFORMED[name]


def test_where_each_malformed_fixture_is_wrong(shared_dir: Path) -> None:
    assert verdicts(fixture(shared_dir, "M1_gmed_siu_s12_v231_missing_SCH.hl7")) == [(100, "SCH")]
    m2 = fixture(shared_dir, "M2_ms_fhirconv_msh9_ADT_A60_with_SIU_body_LF.hl7")
    assert verdicts(m2) == [(201, "MSH-9.2")]
    m4 = fixture(shared_dir, "M4_embe7_test_second_MSH_without_encoding_chars.hl7")
    assert verdicts(m4) == [(100, "MSH[2]")]
    # A file reader must not split M4 at its second MSH either: it lacks encoding characters.
    assert len(split_messages(m4)) == 1


def test_the_lf_copy_of_14_is_a_good_message(shared_dir: Path) -> None:
    assert verdicts(fixture(shared_dir, LF_COPY)) == [(0, "")]


@pytest.mark.parametrize(
    ("old", "new", "code", "where"),
    [
        ("SIU^S12|1|P|2.4", "SIU^S12|1|P|2.2", 203, "MSH-12"),
        ("SIU^S12|1|P|2.4", "SIU^S12|1|T|2.4", 202, "MSH-11"),
        ("SIU^S12|1|P|2.4", "ORU^R01|1|P|2.4", 200, "MSH-9.1"),
        ("SIU^S12|1|P|2.4", "SIU^S99|1|P|2.4", 201, "MSH-9.2"),
        ("SIU^S12|1|P|2.4", "|1|P|2.4", 101, "MSH-9"),
        ("SIU^S12|1|P|2.4", "SIU^S12|  |P|2.4", 101, "MSH-10"),
        ("SIU^S12|1|P|2.4", "SIU^S12|1||2.4", 101, "MSH-11"),
        ("SIU^S12|1|P|2.4", "SIU^S12|1|P|", 101, "MSH-12"),
        ("\rPID|1||P1", "\rOops not a segment\rPID|1||P1", 100, "Oops not a"),
        ("\rPID|1||P1", "", 100, "PID"),
        ("MSH|^~\\&|", "MSH|^~|", 100, "MSH"),
    ],
)
def test_header_and_structure_rules(old: str, new: str, code: int, where: str) -> None:
    assert verdicts(GOOD.encode()) == [(0, "")]
    assert verdicts(GOOD.replace(old, new).encode()) == [(code, where)]


def test_ignored_events_need_no_sch() -> None:
    blocked = GOOD.replace("SIU^S12", "SIU^S23").split("\rSCH")[0]
    assert verdicts(blocked.encode()) == [(0, "")]

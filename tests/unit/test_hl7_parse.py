"""The tolerant pipe parser: field numbering, repetitions, components, escapes, nulls."""

from __future__ import annotations

import pytest

from bridge.hl7.parse import (
    FieldRef,
    ParseError,
    Separators,
    bad_segment_names,
    escape,
    field_ref,
    parse,
    unescape,
)

TEXT = "\r".join(
    [
        "MSH|^~\\&|APP|FAC^1.2^ISO|RCV|RFAC|20260327||SIU^S12^SIU_S12| 38762|P|2.4",
        "SCH|PLACER|FILLER^NS||||EV^Event reason|||20|MIN|^^20^20260328093000^20260328095000",
        "PID|1||111^^^AUTH^MR~222^^^^NHS||Doe&Van^Jane^^^Dr||19900101|F|||"
        'street^^City^^12345||""^BUSINESS~555^PRN^PH',
        "NTE|1||a \\F\\ b \\S\\ c \\T\\ d \\R\\ e \\E\\ f\\.br\\g \\X41\\\\H\\x\\N\\",
        "AIP|1||P1^Smith^Ann",
        "AIP|2||P2^Jones^Bob",
        "ZBX|1|CE|X",
    ]
)


def test_field_refs_parse_and_print() -> None:
    assert field_ref("SCH-11.4") == FieldRef("SCH", 11, 4)
    assert field_ref("pid-3.4.1") == FieldRef("PID", 3, 4, 1)
    assert str(field_ref("ZU1-1")) == "ZU1-1"
    for bad in ("SCH", "SCH-", "SCH11", "S-1", "SCH-1.x", "SCHE-1"):
        with pytest.raises(ValueError, match="is not a field such as"):
            field_ref(bad)


def test_msh_fields_are_numbered_as_the_standard_does() -> None:
    message = parse(TEXT)
    assert message.value("MSH-1") == "|"
    assert message.value("MSH-2") == "^~\\&"
    assert message.value("MSH-3") == "APP"
    assert message.value("MSH-4.2") == "1.2"
    assert message.value("MSH-9.2") == "S12"
    assert message.segments[0].raw(10) == " 38762"
    assert message.value("MSH-10") == "38762"


def test_components_repetitions_and_subcomponents() -> None:
    message = parse(TEXT)
    assert message.value("SCH-2") == "FILLER"
    assert message.value("SCH-2.2") == "NS"
    assert message.value("SCH-11.4") == "20260328093000"
    assert message.repetitions("PID-3") == ["111^^^AUTH^MR", "222^^^^NHS"]
    assert message.value("PID-5.1") == "Doe"
    assert message.value("PID-5.1.2") == "Van"
    assert message.value("PID-99") == ""
    assert message.value("PV1-3") == ""
    assert message.components("222^^^^NHS") == ["222", "", "", "", "NHS"]


def test_the_explicit_null_is_empty() -> None:
    message = parse(TEXT)
    assert message.value("PID-13.1") == ""
    assert message.part(message.repetitions("PID-13")[0], 2) == "BUSINESS"


def test_escapes_are_resolved() -> None:
    message = parse(TEXT)
    assert message.value("NTE-3") == "a | b ^ c & d ~ e \\ f\ng Ax"


def test_repeating_segments_each_read_on_their_own() -> None:
    message = parse(TEXT)
    aips = message.all("AIP")
    assert [message.value("AIP-3", seg) for seg in aips] == ["P1", "P2"]
    assert message.first("ZBX") is not None
    assert message.has("SCH") and not message.has("TQ1")


def test_own_separators_are_honoured() -> None:
    message = parse("MSH#*@/%#A#B\rPID#1##111*x*y*A%B*MR@222")
    assert message.separators == Separators("#", "*", "@", "/", "%")
    assert message.repetitions("PID-3") == ["111*x*y*A%B*MR", "222"]
    assert message.value("PID-3.4.2") == "B"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("PID|1", "does not start with an MSH"),
        ("MSH", "does not start with an MSH"),
        ("MSHA^~\\&|x|y", "field separator"),
        ("MSH|^~|A|B|C", "encoding characters"),
        ("MSH|abcd|A|B|C", "encoding characters"),
    ],
)
def test_unusable_headers(text: str, problem: str) -> None:
    with pytest.raises(ParseError, match=problem):
        parse(text)


def test_lines_that_are_not_segments_are_found() -> None:
    message = parse("MSH|^~\\&|A\rSCH|1\rthis is not\rpid|1\rZU1|Y")
    assert [s.name for s in bad_segment_names(message)] == ["this is not", "pid"]


@pytest.mark.parametrize("value", ["plain", "a|b^c&d~e\\f", "line\rbreak", "\\X41\\"])
def test_escape_and_unescape_round_trip(value: str) -> None:
    seps = Separators()
    escaped = escape(value)
    for char in "|^&~\r":
        assert char not in escaped
    assert unescape(escaped, seps) == value.replace("\r", "\n")


def test_a_lone_escape_character_is_kept() -> None:
    assert unescape("C:\\temp", Separators()) == "C:\\temp"
    assert unescape("\\Zunknown\\ text", Separators()) == "\\Zunknown\\ text"

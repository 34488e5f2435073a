"""Decoding by MSH-18 with a safe fallback, and segment terminators normalised."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.hl7.text import codec_for, declared_charset, decode, normalise

HL7 = "fixtures/hl7"


def header(charset: str) -> str:
    return "MSH|^~\\&|A|B|C|D|20260327||SIU^S12|1|P|2.4||||||" + charset


def test_msh_18_is_read_from_the_raw_bytes() -> None:
    assert declared_charset(header("8859/1").encode()) == "8859/1"
    assert declared_charset(header("unicode utf-8^x").encode()) == "UNICODE UTF-8"
    assert declared_charset(b"MSH|^~\\&|A|B") == ""
    assert declared_charset(b"PID|1") == ""


def test_latin1_declared_and_sent_is_read_as_latin1() -> None:
    raw = (header("8859/1") + "\rPID|1||1||P\xe9rez").encode("latin-1")
    decoded = decode(raw)
    assert decoded.charset == "iso8859-1"
    assert "Pérez" in decoded.text
    assert decoded.note == ""


def test_utf8_bytes_win_over_a_wrong_msh_18(shared_dir: Path) -> None:
    raw = (shared_dir / HL7 / "15_iris_training_orbis_siu_s14_v231_8859-1.hl7").read_bytes()
    decoded = decode(raw)
    assert decoded.charset == "utf-8"
    assert "Pédiatrie" in decoded.text
    assert "Hôpital" in decoded.text
    assert "8859/1" in decoded.note


def test_undeclared_non_utf8_bytes_fall_back_to_the_default_then_cp1252() -> None:
    raw = (header("") + "\rPID|1||1||café €").encode("cp1252")
    assert decode(raw, default="utf-8").charset == "cp1252"
    assert decode(raw, default="latin-1").charset == "iso8859-1"
    assert "café €" in decode(raw).text


def test_an_unknown_charset_never_fails() -> None:
    raw = header("KLINGON").encode() + b"\rPID|\xff\xfe"
    decoded = decode(raw)
    assert decoded.text.startswith("MSH")
    assert decoded.charset in ("cp1252", "iso8859-1")


@pytest.mark.parametrize(
    ("name", "codec"),
    [("8859/1", "iso8859-1"), ("UNICODE UTF-8", "utf-8"), ("utf8", "utf-8"), ("ASCII", "ascii")],
)
def test_hl7_charset_names(name: str, codec: str) -> None:
    assert codec_for(name) == codec
    assert codec_for("") is None
    assert codec_for("not-a-charset") is None


@pytest.mark.parametrize("terminator", ["\n", "\r\n", "\r", "\r\r\n"])
def test_terminators_become_cr(terminator: str) -> None:
    text = terminator.join(["MSH|^~\\&|A", "SCH|1", "PID|1", ""])
    assert normalise(text) == "MSH|^~\\&|A\rSCH|1\rPID|1"


def test_lf_terminated_fixture_parses_as_many_segments(shared_dir: Path) -> None:
    raw = (shared_dir / HL7 / "M3_corepoint_siu_s14_LF_terminators_asis.hl7").read_bytes()
    assert b"\r" not in raw
    text = decode(raw).text
    assert [line[:3] for line in text.split("\r")] == [
        "MSH",
        "SCH",
        "PID",
        "PV1",
        "RGS",
        "AIL",
        "NTE",
        "AIP",
    ]

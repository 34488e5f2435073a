"""From bytes to a verdict: never raises, the digest that recognises resends, oversized frames."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bridge.hl7.intake import Intake, content_digest
from bridge.hl7.mapper import Mapper
from tests.hl7_samples import LF_COPY, fixture, mapping, siu

NOW = datetime(2026, 3, 27, 8, tzinfo=UTC)
START = datetime(2026, 3, 30, 9, 30)


def intake() -> Intake:
    return Intake(mapping(), ZoneInfo("Europe/Rome"), "US")


def test_an_accepted_message_carries_its_meaning_and_identity() -> None:
    item = intake().receive(siu("C1", "K1", "P1", START), "mllp 10.0.0.5:4000", NOW)
    assert item.accepted and item.problem is None
    assert item.identity[:2] == ("SCHED|CLINIC", "C1")
    assert item.header.kind == "SIU^S12"
    assert item.message_time == datetime(2026, 3, 27, 7, tzinfo=UTC)  # 08:00 in Rome
    assert (item.meaning, item.key) == ("booked", "K1")
    mapped, problem = intake().read(item.raw)
    assert problem is None and mapped is not None and mapped.key == "K1"
    assert item.received_at == NOW and item.origin == "mllp 10.0.0.5:4000"


def test_the_digest_ignores_msh_7_so_a_restamped_resend_is_the_same_message() -> None:
    first = siu("C1", "K1", "P1", START, sent="20260327080000")
    again = siu("C1", "K1", "P1", START, sent="20260327090500")
    other = siu("C1", "K1", "P1", START, status="Cancelled")
    assert content_digest(first.decode()) == content_digest(again.decode())
    assert content_digest(first.decode()) != content_digest(other.decode())


def test_terminators_do_not_change_the_digest(shared_dir: Path) -> None:
    crlf = intake().receive(
        fixture(shared_dir, "14_corepoint_gpms_siu_s14_v23_arrived.hl7"), "", NOW
    )
    lf = intake().receive(fixture(shared_dir, LF_COPY), "", NOW)
    assert crlf.identity == lf.identity


def test_a_message_that_is_not_hl7_gets_a_verdict_not_an_exception() -> None:
    item = intake().receive(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "mllp x", NOW)
    assert item.problem is not None and item.problem.code == 100
    assert item.header.control_id == ""


def test_a_mapping_bug_is_an_internal_error_and_the_intake_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(self: Any, message: Any, header: Any) -> Any:
        raise KeyError("bug")

    raw = siu("C1", "K1", "P1", START)
    monkeypatch.setattr(Mapper, "map", broken)
    assert intake().receive(raw, "", NOW).problem is None  # the checks passed: AA
    mapped, problem = intake().read(raw)  # the applier then quarantines it with the reason
    assert mapped is None and problem is not None and problem.code == 207
    monkeypatch.setattr(Mapper, "check", broken)
    item = intake().receive(raw, "", NOW)
    assert item.problem is not None and item.problem.code == 207
    assert "KeyError" in item.problem.text


def test_an_oversized_frame_is_refused_from_its_head() -> None:
    raw = siu("C9", "K1", "P1", START)
    item = intake().oversized(raw[:200], 5_000_000, 1_048_576, "mllp x", NOW)
    assert item.problem is not None and item.problem.code == 207
    assert "5000000 bytes" in item.problem.text and "hl7.max_frame_kb" in item.problem.text
    assert item.header.control_id == "C9"  # so the ACK can name the message
    assert item.raw == raw[:200]

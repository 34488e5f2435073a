"""HL7 date/time values as real feeds send them."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bridge.hl7.hl7time import format_dtm, parse_dtm

LONDON = ZoneInfo("Europe/London")


@pytest.mark.parametrize(
    ("text", "utc", "has_time"),
    [
        ("20241106120000", "2024-11-06T12:00:00+00:00", True),  # winter: GMT
        ("20240606120000", "2024-06-06T11:00:00+00:00", True),  # summer: BST
        ("200803061000 ", "2008-03-06T10:00:00+00:00", True),  # trailing space (fixture 14)
        ("20210924093000+0215", "2021-09-24T07:15:00+00:00", True),  # offset wins over zone
        ("202109241000-0500", "2021-09-24T15:00:00+00:00", True),
        ("20191124", "2019-11-24T00:00:00+00:00", False),  # a date alone
        ("20191024", "2019-10-23T23:00:00+00:00", False),  # midnight BST
        ("2019112409", "2019-11-24T09:00:00+00:00", True),
        ("20191024094500.1234", "2019-10-24T08:45:00.123400+00:00", True),
    ],
)
def test_values_parse(text: str, utc: str, has_time: bool) -> None:
    parsed = parse_dtm(text)
    assert parsed is not None
    assert parsed.to_utc(LONDON).isoformat() == utc
    assert parsed.has_time is has_time


@pytest.mark.parametrize(
    "text", ["", "2019", "201910", "20191324", "20190230", "2019-10-24", "20191024+2500", "abc"]
)
def test_values_that_are_not_a_date(text: str) -> None:
    assert parse_dtm(text) is None


def test_format_with_offset() -> None:
    instant = datetime(2026, 3, 27, 8, 30, tzinfo=UTC)
    assert format_dtm(instant, ZoneInfo("Europe/Rome")) == "20260327093000+0100"
    assert format_dtm(instant, ZoneInfo("UTC"), seconds=False) == "202603270830+0000"

"""SMS segment counting: GSM-7 / UCS-2 choice, single and multipart limits, pairs at boundaries."""

from __future__ import annotations

import pytest

from bridge.segments import SegmentCount, count_segments, is_gsm7, non_gsm7

EMOJI = "\U0001f600"  # outside the BMP: a surrogate pair, 2 UTF-16 units

CASES = [
    # id, text, encoding, units, segments, per_segment
    ("empty", "", "GSM-7", 0, 0, 160),
    ("one char", "a", "GSM-7", 1, 1, 160),
    ("gsm 160 fits", "a" * 160, "GSM-7", 160, 1, 160),
    ("gsm 161 splits", "a" * 161, "GSM-7", 161, 2, 153),
    ("gsm 2x153", "a" * 306, "GSM-7", 306, 2, 153),
    ("gsm 2x153+1", "a" * 307, "GSM-7", 307, 3, 153),
    ("gsm 3x153", "a" * 459, "GSM-7", 459, 3, 153),
    ("gsm accents of the basic set", "èéùìòÇØøÅåÆæßÉÄÖÑÜäöñüà¿¡§£¥", "GSM-7", 28, 1, 160),
    ("greek capitals are gsm", "ΔΦΓΛΩΠΨΣΘΞ", "GSM-7", 10, 1, 160),
    ("newline and CR count 1", "a\r\nb", "GSM-7", 4, 1, 160),
    ("extension chars count 2", "^{}\\[~]|€", "GSM-7", 18, 1, 160),
    ("form feed is extension", "\f", "GSM-7", 2, 1, 160),
    ("80 euros fit one part", "€" * 80, "GSM-7", 160, 1, 160),
    ("159 + euro splits", "a" * 159 + "€", "GSM-7", 161, 2, 153),
    # 152 septets, then a 2-septet pair does not fit in the 1 left: the part ends early.
    ("escape pair not split", "a" * 152 + "€" + "a" * 152, "GSM-7", 306, 3, 153),
    ("escape pair fits exactly", "a" * 151 + "€" + "a" * 153, "GSM-7", 306, 2, 153),
    ("81 euros", "€" * 81, "GSM-7", 162, 2, 153),
    ("ucs2 70 fits", "á" * 70, "UCS-2", 70, 1, 70),
    ("ucs2 71 splits", "á" * 71, "UCS-2", 71, 2, 67),
    ("ucs2 2x67", "á" * 134, "UCS-2", 134, 2, 67),
    ("ucs2 2x67+1", "á" * 135, "UCS-2", 135, 3, 67),
    ("one non-gsm char switches all", "a" * 69 + "ç", "UCS-2", 70, 1, 70),
    ("lower c cedilla is not gsm", "ç", "UCS-2", 1, 1, 70),
    ("extension chars are 1 unit in ucs2", "€á", "UCS-2", 2, 1, 70),
    ("emoji is 2 units", EMOJI, "UCS-2", 2, 1, 70),
    ("35 emoji fit", EMOJI * 35, "UCS-2", 70, 1, 70),
    ("36 emoji split", EMOJI * 36, "UCS-2", 72, 2, 67),
    # 66 units, then a surrogate pair does not fit in the 1 left: the part ends early.
    ("surrogate pair not split", "a" * 66 + EMOJI + "a" * 66, "UCS-2", 134, 3, 67),
    ("surrogate pair fits exactly", "a" * 65 + EMOJI + "a" * 67, "UCS-2", 134, 2, 67),
    ("escape alone is not sendable", "\x1b", "UCS-2", 1, 1, 70),
]


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments", "per_segment"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_count_segments(
    text: str, encoding: str, units: int, segments: int, per_segment: int
) -> None:
    assert count_segments(text) == SegmentCount(encoding, units, segments, per_segment)  # type: ignore[arg-type]


def test_segment_count_is_frozen() -> None:
    count = count_segments("hello")
    with pytest.raises(AttributeError):
        count.units = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("Hello", True), ("€[]", True), ("Olá", False), ("naïve", False), ("", True)],
)
def test_is_gsm7(text: str, expected: bool) -> None:
    assert is_gsm7(text) is expected


def test_non_gsm7_lists_offenders_once_in_order() -> None:
    assert non_gsm7(f"Olá, sábado {EMOJI} á") == ["á", EMOJI]

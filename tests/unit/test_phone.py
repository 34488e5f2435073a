"""Phone numbers: free-text host fields to E.164 in the clinic's region, SMS capability, masking."""

from __future__ import annotations

import pytest

from bridge.phone import can_receive_sms, mask, normalize

NORMALIZE = [
    # id, raw, region, E.164
    ("us parentheses", "(202) 555-0123", "US", "+12025550123"),
    ("us dots", "202.555.0123", "US", "+12025550123"),
    ("us dashes", "202-555-0123", "US", "+12025550123"),
    ("us digits", "2025550123", "US", "+12025550123"),
    ("us with country code", "1 202 555 0123", "US", "+12025550123"),
    ("us padded", "  (202) 555-0199  ", "US", "+12025550199"),
    ("international read anywhere", "+1 202 555 0199", "IT", "+12025550199"),
    ("italian landline", "06 1234 5678", "IT", "+390612345678"),
    ("italian mobile", "347 123 4567", "IT", "+393471234567"),
    ("italian from the us", "+39 06 1234 5678", "US", "+390612345678"),
    ("00 prefix in italy", "0039 06 1234 5678", "IT", "+390612345678"),
    ("us number dialled from italy", "001 202 555 0123", "IT", "+12025550123"),
    ("uk", "+44 20 7946 0958", "US", "+442079460958"),
    # an extension cannot be dialled by an SMS gateway: E.164 drops it
    ("extension ext", "202-555-0123 ext 4", "US", "+12025550123"),
    ("extension x", "202.555.0123 x12", "US", "+12025550123"),
]


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [row[1:] for row in NORMALIZE],
    ids=[row[0] for row in NORMALIZE],
)
def test_normalize(raw: str, region: str, expected: str) -> None:
    assert normalize(raw, region) == expected


INVALID = [
    ("blank", "", "US"),
    ("spaces", "   ", "US"),
    ("words", "call the desk", "US"),
    ("too short", "12", "US"),
    ("seven digits, no area code", "555-0123", "US"),
    ("incomplete international", "+1 202 555 01", "US"),
    ("us number read in italy", "202 555 0123", "IT"),
    ("unknown region", "202 555 0123", "ZZ"),
]


@pytest.mark.parametrize(
    ("raw", "region"), [row[1:] for row in INVALID], ids=[row[0] for row in INVALID]
)
def test_normalize_invalid_is_none(raw: str, region: str) -> None:
    assert normalize(raw, region) is None


SMS_CAPABLE = [
    ("italian landline", "+390612345678", False),
    ("italian mobile", "+393471234567", True),
    ("uk landline", "+442079460958", False),
    ("uk mobile", "+447700900123", True),
    # NANP numbers do not tell mobiles from landlines: assume they can
    ("us fixed line or mobile", "+12025550123", True),
]


@pytest.mark.parametrize(
    ("e164", "expected"), [row[1:] for row in SMS_CAPABLE], ids=[row[0] for row in SMS_CAPABLE]
)
def test_can_receive_sms(e164: str, expected: bool) -> None:
    assert can_receive_sms(e164) is expected


MASKS = [
    ("none", None, "-"),
    ("empty", "", "-"),
    ("us", "+12025550123", "+1••••••0123"),
    ("italian", "+390612345678", "+3•••••••5678"),
]


@pytest.mark.parametrize(
    ("e164", "expected"), [row[1:] for row in MASKS], ids=[row[0] for row in MASKS]
)
def test_mask(e164: str | None, expected: str) -> None:
    assert mask(e164) == expected


@pytest.mark.parametrize("e164", ["+12025550123", "+390612345678", "+447700900123"])
def test_mask_keeps_length_and_hides_the_middle(e164: str) -> None:
    masked = mask(e164)
    assert len(masked) == len(e164)
    assert masked[:2] == e164[:2]
    assert masked[-4:] == e164[-4:]
    assert set(masked[2:-4]) == {"•"}

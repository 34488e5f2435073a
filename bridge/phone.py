"""Phone numbers from free-text host fields to E.164, with the ``phonenumbers`` library.

Host phone fields are free text (``(555) 010-0123``, ``555.010.0123 ext 4``, ``+39 06 1234567``);
a number written without a country code is read in the clinic's region. The result is cached:
the same numbers come back every cycle and parsing is the slow part of reading patients.
"""

from __future__ import annotations

from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

MOBILE_TYPES = frozenset(
    {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE, PhoneNumberType.PAGER}
)


@lru_cache(maxsize=200_000)
def normalize(raw: str, region: str) -> str | None:
    """E.164 form of ``raw`` read in ``region``, or None when it is not a valid number.

    Blank input is None too; the caller tells "missing" from "invalid" by looking at ``raw``.
    """
    text = raw.strip()
    if not text:
        return None
    try:
        parsed = phonenumbers.parse(text, region)
    except NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, PhoneNumberFormat.E164)


def can_receive_sms(e164: str) -> bool:
    """False only when the number is known to be a fixed line (regions that tell the two apart)."""
    number_type = phonenumbers.number_type(phonenumbers.parse(e164, None))
    return number_type in MOBILE_TYPES or number_type == PhoneNumberType.UNKNOWN


def mask(e164: str | None) -> str:
    """A number safe to show in logs and tables: ``+1•••••••0123``."""
    if not e164:
        return "-"
    return e164[:2] + "•" * max(len(e164) - 6, 0) + e164[-4:]

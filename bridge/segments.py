"""SMS segment counting, as phones and carriers count (3GPP TS 23.038 and TS 23.040).

A text made only of GSM 03.38 characters is sent as GSM-7: one septet per character of the basic
set, two for the extension table (``^{}\\[~]|€`` and form feed, sent as ESC + char). Any other
character switches the whole message to UCS-2, counted in UTF-16 code units, so an emoji (outside
the Basic Multilingual Plane) costs two units.

One message holds 160 septets / 70 units. A longer text is split in parts that each lose room to
the concatenation header (UDH, 6 bytes): 153 septets / 67 units per part. Phones never split an
escape pair or a surrogate pair across two parts; when such a pair does not fit in the room left,
the part ends one unit early and the pair opens the next part. So the number of parts is not
always ``ceil(units / 153)``.

An empty text counts as 0 segments: nothing would be sent (providers reject an empty body), and
callers should treat 0 as "refuse to send", not as "free".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Encoding = Literal["GSM-7", "UCS-2"]

# GSM 03.38 basic character set, in table order (0x00-0x7F); ESC (0x1B) is left out on purpose:
# it only introduces an extension character and cannot be sent alone.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each costs an escape septet plus its own.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

SINGLE_LIMIT: dict[Encoding, int] = {"GSM-7": 160, "UCS-2": 70}
MULTI_LIMIT: dict[Encoding, int] = {"GSM-7": 153, "UCS-2": 67}


@dataclass(frozen=True)
class SegmentCount:
    """How an SMS text is encoded and billed.

    ``units``: septets for GSM-7 (extension characters count 2), UTF-16 code units for UCS-2.
    ``segments``: parts sent and billed (0 for an empty text). ``per_segment``: room in each part,
    160/70 for a single part, 153/67 once the text is split.
    """

    encoding: Encoding
    units: int
    segments: int
    per_segment: int


def is_gsm7(text: str) -> bool:
    """True when every character of ``text`` is in the GSM 03.38 basic or extension table."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def non_gsm7(text: str) -> list[str]:
    """The distinct characters of ``text`` that force UCS-2, in order of first appearance."""
    outside = (ch for ch in text if ch not in GSM7_BASIC and ch not in GSM7_EXTENSION)
    return list(dict.fromkeys(outside))


def _weights(text: str, encoding: Encoding) -> list[int]:
    """Units each character costs; a weight of 2 is a pair that must stay in one part."""
    if encoding == "GSM-7":
        return [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def count_segments(text: str) -> SegmentCount:
    """Count the encoding, units and billed segments of ``text`` as a phone would send it."""
    encoding: Encoding = "GSM-7" if is_gsm7(text) else "UCS-2"
    weights = _weights(text, encoding)
    units = sum(weights)
    if units <= SINGLE_LIMIT[encoding]:
        return SegmentCount(encoding, units, 1 if units else 0, SINGLE_LIMIT[encoding])
    room = MULTI_LIMIT[encoding]
    segments, used = 1, 0
    for weight in weights:
        if used + weight > room:
            segments, used = segments + 1, 0
        used += weight
    return SegmentCount(encoding, units, segments, room)

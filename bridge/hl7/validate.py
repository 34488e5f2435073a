"""Structure checks before a message is mapped: header fields, version, type, segment order.

Tolerant where real feeds are sloppy (Z-segments anywhere, segments out of order, trailing
separators, EVN inside an SIU) and strict where the bridge would otherwise guess: a second MSH in
one frame (fixture M4), a line that is not a segment, a message type or event the mapping does
not know (fixture M2: MSH-9 says ADT^A60 over an SIU body), a required segment missing (M1: no
SCH). Each check raises ``Rejected`` with the HL7 error code and location.
"""

from __future__ import annotations

from bridge.hl7.header import Header
from bridge.hl7.parse import Message, bad_segment_names
from bridge.hl7.problem import (
    REQUIRED_FIELD,
    SEGMENT_SEQUENCE,
    UNSUPPORTED_EVENT,
    UNSUPPORTED_PROCESSING,
    UNSUPPORTED_TYPE,
    UNSUPPORTED_VERSION,
    Problem,
    Rejected,
)
from bridge.mapping.hl7 import Hl7Mapping


def check_structure(message: Message, header: Header, mapping: Hl7Mapping) -> None:
    """Raise ``Rejected`` for the first structural problem, in the order a vendor fixes them."""
    for segment in bad_segment_names(message):
        shown = segment.name[:10]
        where = f"line {segment.position + 1} ({shown!r})"
        raise Rejected(Problem(SEGMENT_SEQUENCE, f"{where} is not a segment", shown))
    extra = message.all("MSH")[1:]
    if extra:
        where = f"line {extra[0].position + 1}"
        text = f"a second MSH segment ({where}): one message per frame"
        raise Rejected(Problem(SEGMENT_SEQUENCE, text, "MSH", 2))
    if not (header.message_type and header.event):
        raise _header(REQUIRED_FIELD, 9, "no message type and event")
    if not header.control_id:
        raise _header(REQUIRED_FIELD, 10, "no message control id")
    if not header.processing_id:
        raise _header(REQUIRED_FIELD, 11, "no processing id")
    if not header.version:
        raise _header(REQUIRED_FIELD, 12, "no version id")
    accept = mapping.accept
    if header.version not in accept.versions:
        text = f"version {header.version!r} is not accepted ({', '.join(accept.versions)})"
        raise _header(UNSUPPORTED_VERSION, 12, text)
    if header.processing_id not in {p.upper() for p in accept.processing_ids}:
        listed = ", ".join(accept.processing_ids)
        text = f"processing id {header.processing_id!r} is not accepted ({listed})"
        raise _header(UNSUPPORTED_PROCESSING, 11, text)
    if header.kind not in mapping.events:
        if header.message_type not in {name.split("^")[0] for name in mapping.events}:
            text = f"message type {header.message_type!r} is not handled"
            raise _header(UNSUPPORTED_TYPE, 9, text, 1)
        raise _header(
            UNSUPPORTED_EVENT, 9, f"event {header.kind!r} is not handled by the mapping", 2
        )
    if mapping.events[header.kind] == "ignore":
        return
    for name in mapping.required_segments.get(header.message_type, []):
        if not message.has(name):
            raise Rejected(Problem(SEGMENT_SEQUENCE, f"required segment {name} is missing", name))


def _header(code: int, field: int, text: str, component: int | None = None) -> Rejected:
    """A problem with one MSH field."""
    return Rejected(Problem(code, text, "MSH", 1, field, component))

"""From received bytes to a verdict (``receive``), and later to their meaning (``read``).

``receive`` runs before the store, on the listener's hot path: decode, parse, the structure
checks and the business checks (``Mapper.check``), so the verdict is stored with the raw bytes in
the same transaction and the ACK can say AE with the reason. ``read`` maps the whole message
(patient, contacts, resources...) for the applier, after the ACK: what it reads beyond the
checks is read tolerantly and cannot refuse the message. The folder source and ``bridge hl7
replay`` run the very same code.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from bridge.hl7.header import Header, read_header
from bridge.hl7.journal import Entry
from bridge.hl7.mapper import Mapper
from bridge.hl7.parse import ParseError, parse
from bridge.hl7.problem import INTERNAL, SEGMENT_SEQUENCE, Problem, Rejected
from bridge.hl7.state import Mapped
from bridge.hl7.text import decode
from bridge.hl7.validate import check_structure
from bridge.mapping.hl7 import Hl7Mapping

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Received:
    """One message as received, with its verdict: accepted (its meaning and appointment key),
    or refused with ``problem``."""

    raw: bytes
    origin: str
    received_at: datetime
    header: Header
    digest: str
    charset: str
    message_time: datetime | None
    problem: Problem | None
    meaning: str = ""
    key: str = ""
    note: str = ""

    @property
    def accepted(self) -> bool:
        return self.problem is None

    @property
    def identity(self) -> tuple[str, str, str]:
        """(sender, control id, digest): the de-duplication key."""
        return (self.header.sender[:255], self.header.control_id[:255], self.digest)


class Intake:
    """Reads messages with one mapping, in one clinic time zone and phone region."""

    def __init__(
        self, mapping: Hl7Mapping, zone: ZoneInfo, region: str, charset: str = "utf-8"
    ) -> None:
        self.mapping = mapping
        self.zone = zone
        self.charset = charset
        self.mapper = Mapper(mapping, zone, region)

    def receive(self, raw: bytes, origin: str, now: datetime) -> Received:
        """The verdict on one message. Never raises: a bug while mapping is a 207 verdict."""
        decoded = decode(raw, self.charset)
        header = Header()
        meaning = key = ""
        problem = None
        try:
            message = parse(decoded.text)
            header = read_header(message)
            check_structure(message, header, self.mapping)
            meaning, key = self.mapper.check(message, header)
        except ParseError as exc:
            problem = Problem(SEGMENT_SEQUENCE, str(exc), "MSH", 1)
        except Rejected as exc:
            problem = exc.problem
        except Exception as exc:  # a mapping bug must not take the listener down
            problem = _internal(exc, header)
        return Received(
            raw=raw,
            origin=origin,
            received_at=now,
            header=header,
            digest=content_digest(decoded.text),
            charset=decoded.charset,
            message_time=header.message_time(self.zone),
            problem=problem,
            meaning=meaning,
            key=key,
            note=decoded.note,
        )

    def judge(self, entry: Entry, limit: int) -> Received:
        """The verdict on a frame as the journal keeps it: ``receive``, or ``oversized`` for a
        frame over ``limit`` bytes (the listener as it reads the frame, and again at a restart
        for what the store had not got)."""
        if entry.frame_size:
            return self.oversized(
                entry.raw, entry.frame_size, limit, entry.origin, entry.received_at
            )
        return self.receive(entry.raw, entry.origin, entry.received_at)

    def read(self, raw: bytes) -> tuple[Mapped | None, Problem | None]:
        """The whole meaning of a message that passed ``receive`` (for the applier). A problem
        now means the mapping changed since, or a bug: the message is quarantined then."""
        header = Header()
        try:
            message = parse(decode(raw, self.charset).text)
            header = read_header(message)
            check_structure(message, header, self.mapping)
            return self.mapper.map(message, header), None
        except ParseError as exc:
            return None, Problem(SEGMENT_SEQUENCE, str(exc), "MSH", 1)
        except Rejected as exc:
            return None, exc.problem
        except Exception as exc:
            return None, _internal(exc, header)

    def oversized(self, head: bytes, size: int, limit: int, origin: str, now: datetime) -> Received:
        """A frame larger than the cap: answered AE from its first bytes (enough for the MSH),
        which are kept with the reason; the rest was never held in memory."""
        first = self.receive(head, origin, now)
        text = f"message of {size} bytes is larger than the limit of {limit} (hl7.max_frame_kb)"
        return Received(
            raw=head,
            origin=origin,
            received_at=now,
            header=first.header,
            digest=hashlib.blake2b(head, digest_size=16).hexdigest(),
            charset=first.charset,
            message_time=first.message_time,
            problem=Problem(INTERNAL, text),
        )


def _internal(exc: Exception, header: Header) -> Problem:
    log.exception("internal error reading message %r", header.control_id[:40])
    return Problem(INTERNAL, f"internal error reading the message ({type(exc).__name__})")


def content_digest(text: str) -> str:
    """A hash of the message without MSH-7, so a resend stamped anew is still the same
    message (fixture 13's engine and others restamp on resend)."""
    first, sep, rest = text.partition("\r")
    if first.startswith("MSH") and len(first) > 3:
        fields = first.split(first[3])
        if len(fields) > 6:
            fields[6] = ""
            first = first[3].join(fields)
    return hashlib.blake2b((first + sep + rest).encode("utf-8"), digest_size=16).hexdigest()

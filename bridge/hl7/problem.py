"""What is wrong with a message, as HL7 says it: an error code (table 0357) and a location.

Codes used: 100 segment sequence error (a required segment missing, a second MSH, a line that is
not a segment), 101 required field missing, 102 data type error (a date that is not a date),
103 table value not found, 200 unsupported message type, 201 unsupported event code, 202
unsupported processing id, 203 unsupported version id, 207 application internal error.
"""

from __future__ import annotations

from dataclasses import dataclass

SEGMENT_SEQUENCE = 100
REQUIRED_FIELD = 101
DATA_TYPE = 102
TABLE_VALUE = 103
UNSUPPORTED_TYPE = 200
UNSUPPORTED_EVENT = 201
UNSUPPORTED_PROCESSING = 202
UNSUPPORTED_VERSION = 203
INTERNAL = 207

TEXTS = {
    SEGMENT_SEQUENCE: "Segment sequence error",
    REQUIRED_FIELD: "Required field missing",
    DATA_TYPE: "Data type error",
    TABLE_VALUE: "Table value not found",
    UNSUPPORTED_TYPE: "Unsupported message type",
    UNSUPPORTED_EVENT: "Unsupported event code",
    UNSUPPORTED_PROCESSING: "Unsupported processing id",
    UNSUPPORTED_VERSION: "Unsupported version id",
    INTERNAL: "Application internal error",
}


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a message is refused. ``text`` names what is wrong in words a vendor can act on;
    it may quote the offending value (it goes back to the sender and into the store, never to
    the log)."""

    code: int
    text: str
    segment: str = ""
    sequence: int = 1
    field: int | None = None
    component: int | None = None

    @property
    def location(self) -> str:
        """``SCH-11.4``, ``MSH-10``, ``SCH`` or '' (the message as a whole)."""
        where = self.segment
        if where and self.sequence > 1:
            where += f"[{self.sequence}]"
        if self.field is not None:
            where += f"-{self.field}"
            if self.component is not None:
                where += f".{self.component}"
        return where

    @property
    def reason(self) -> str:
        """One line: code, location and text."""
        where = f"{self.location}: " if self.location else ""
        return f"{self.code} {TEXTS.get(self.code, 'Error')}: {where}{self.text}"


class Rejected(Exception):
    """Raised while reading a message that must be answered AE and quarantined."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.reason)
        self.problem = problem

"""What the MSH segment says: who sent it, its control id, type, version and ACK modes.

MSH-10 is trimmed for de-duplication (fixture 13 sends ``" 38762"``) but echoed in the ACK as
it was sent, so a strict sender still matches the ACK to its message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from bridge.hl7.hl7time import parse_dtm
from bridge.hl7.parse import Message


@dataclass(frozen=True, slots=True)
class Header:
    """The fields of MSH the bridge uses. Built even from a broken message (empty fields)."""

    sending_application: str = ""
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""
    time_text: str = ""
    message_type: str = ""
    event: str = ""
    control_id_sent: str = ""
    processing_id: str = ""
    version: str = ""
    accept_ack: str = ""
    application_ack: str = ""

    @property
    def control_id(self) -> str:
        return self.control_id_sent.strip()

    @property
    def sender(self) -> str:
        """Sending application and facility: the namespace of its control ids."""
        return f"{self.sending_application}|{self.sending_facility}"

    @property
    def kind(self) -> str:
        """``SIU^S12``: type and event, upper case, as the mapping lists them."""
        return f"{self.message_type}^{self.event}".upper()

    @property
    def enhanced(self) -> bool:
        """Enhanced acknowledgment mode: MSH-15 or MSH-16 is valued."""
        return bool(self.accept_ack or self.application_ack)

    def message_time(self, zone: ZoneInfo) -> datetime | None:
        """MSH-7 as an aware UTC instant (local time without offset read in ``zone``)."""
        parsed = parse_dtm(self.time_text)
        return parsed.to_utc(zone) if parsed is not None else None


def read_header(message: Message) -> Header:
    """The header of a parsed message (fields stay raw text, escapes kept, except the codes)."""
    msh = message.segments[0]
    value = message.value
    return Header(
        sending_application=msh.raw(3),
        sending_facility=msh.raw(4),
        receiving_application=msh.raw(5),
        receiving_facility=msh.raw(6),
        time_text=value("MSH-7.1"),
        message_type=value("MSH-9.1").upper(),
        event=value("MSH-9.2").upper(),
        control_id_sent=msh.raw(10),
        processing_id=value("MSH-11.1").upper(),
        version=value("MSH-12.1"),
        accept_ack=value("MSH-15").upper(),
        application_ack=value("MSH-16").upper(),
    )


def ack_wanted(condition: str, success: bool) -> bool:
    """Whether an ACK of this outcome is sent under an MSH-15/16 condition (AL, NE, ER, SU);
    an empty or unknown condition means always."""
    if condition == "NE":
        return False
    if condition == "ER":
        return not success
    if condition == "SU":
        return success
    return True

"""ACK messages, built from a template string (the listener's hot path; hl7apy takes
milliseconds per message, this takes microseconds). The unit tests parse every shape built here
with hl7apy, for each version, to keep the template honest.

Original mode (MSH-15 and MSH-16 empty): one ACK, MSA-1 AA / AE / AR echoing MSH-10 as sent.
Enhanced mode: a commit ACK (CA / CE / CR) when MSH-15 asks for it, then, for a message committed
and accepted, an application ACK (AA) when MSH-16 asks for it. The mapping between the two:

    outcome                         original   enhanced
    stored and accepted             AA         CA, then AA if MSH-16 asks
    stored, content refused         AE + ERR   CE + ERR (nothing to apply, so no application ACK)
    not stored (store unavailable)  AR         CR, sent whatever MSH-15 says: the sender must resend

ERR: for 2.5 and later ERR-2 (location), ERR-3 (HL7 error code, table 0357), ERR-4 (severity E)
and ERR-8 (the reason in words); before 2.5, ERR-1 (ELD: segment^sequence^field^code&text).
MSA-3 carries the reason for versions before 2.5 too (deprecated later).
"""

from __future__ import annotations

import itertools
import os
from datetime import datetime

from bridge.hl7.header import Header, ack_wanted
from bridge.hl7.parse import escape
from bridge.hl7.problem import TEXTS, Problem

ACCEPTED, REFUSED, UNAVAILABLE = "accepted", "refused", "unavailable"
ORIGINAL = {ACCEPTED: "AA", REFUSED: "AE", UNAVAILABLE: "AR"}
COMMIT = {ACCEPTED: "CA", REFUSED: "CE", UNAVAILABLE: "CR"}
DEFAULT_VERSION = "2.5.1"

_counter = itertools.count(1)
_PREFIX = os.urandom(3).hex()


def next_control_id() -> str:
    """A control id for our own messages: unique per process, at most 20 characters (the
    limit of MSH-10 before 2.5)."""
    return f"RB{_PREFIX}{next(_counter) % 10**12:012d}"


def acks_for(
    header: Header, outcome: str, problem: Problem | None, stamp: str, application: str
) -> list[str]:
    """The ACK messages to send back, in order (none when the sender asked for none)."""
    if not header.enhanced:
        return [build_ack(header, ORIGINAL[outcome], problem, stamp, application)]
    acks: list[str] = []
    success = outcome == ACCEPTED
    if outcome == UNAVAILABLE or ack_wanted(header.accept_ack, success):
        acks.append(build_ack(header, COMMIT[outcome], problem, stamp, application))
    if success and ack_wanted(header.application_ack, True):
        acks.append(build_ack(header, "AA", None, stamp, application))
    return acks


def build_ack(
    header: Header, code: str, problem: Problem | None, stamp: str, application: str
) -> str:
    """One ACK message (CR-terminated segments, no frame). ``stamp`` is MSH-7 (HL7 time)."""
    version = header.version if _known_version(header.version) else DEFAULT_VERSION
    modern = _version_key(version) >= (2, 5)
    event = _field(header.event)
    if _version_key(version) >= (2, 4):  # MSH-9.3 names the structure from 2.4 on
        kind = f"ACK^{event}^ACK"
    else:
        kind = f"ACK^{event}" if event else "ACK"
    processing = _field(header.processing_id) or "P"
    msh = (
        f"MSH|^~\\&|{header.receiving_application or application}|{header.receiving_facility}|"
        f"{header.sending_application}|{header.sending_facility}|{stamp}||{kind}|"
        f"{next_control_id()}|{processing}|{version}"
    )
    msa = f"MSA|{code}|{header.control_id_sent}"
    segments = [msh, msa]
    if problem is not None:
        if not modern:
            msa += f"|{escape(problem.text[:80])}"
            segments[1] = msa
        segments.append(_err(problem, modern))
    return "\r".join(segments) + "\r"


def _err(problem: Problem, modern: bool) -> str:
    code = f"{problem.code}^{TEXTS.get(problem.code, 'Error')}^HL70357"
    segment = problem.segment or ""
    field = "" if problem.field is None else str(problem.field)
    if modern:
        component = "" if problem.component is None else str(problem.component)
        location = f"{segment}^{problem.sequence if segment else ''}^{field}^^{component}"
        return f"ERR||{location.rstrip('^')}|{code}|E||||{escape(problem.text)}"
    eld_code = f"{problem.code}&{TEXTS.get(problem.code, 'Error')}&HL70357"
    return f"ERR|{segment}^{problem.sequence if segment else ''}^{field}^{eld_code}"


def _field(value: str) -> str:
    """A value from the received message, safe inside one field of ours."""
    return "".join(c for c in value if c.isalnum() or c in "._-")


def _known_version(version: str) -> bool:
    return bool(version) and all(p.isdigit() for p in version.split(".")) and version >= "2"


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def stamp_of(now: datetime) -> str:
    """MSH-7 of our messages: UTC with its offset, to the second."""
    return now.strftime("%Y%m%d%H%M%S+0000")

"""Reading mapped fields out of a message: the first of several candidates, every repetition,
and the refusal that names where the value was looked for. Shared by the appointment and
patient halves of the mapper."""

from __future__ import annotations

from bridge.hl7.parse import FieldRef, Message
from bridge.hl7.problem import Problem, Rejected
from bridge.mapping.hl7 import Candidate

KEY_LIMIT = 64  # the store's key columns


def applicable(candidates: list[Candidate], version: str) -> list[Candidate]:
    """The candidates that exist in this HL7 version."""
    return [c for c in candidates if c.applies_to(version)]


def first_value(
    message: Message, candidates: list[Candidate], version: str
) -> tuple[str, FieldRef | None]:
    """The first non-empty value among the candidates, and where it was found."""
    for candidate in candidates:
        if not candidate.applies_to(version):
            continue
        ref = candidate.ref
        for segment in message.all(ref.segment):
            value = message.value(ref, segment)
            if value:
                return value, ref
    return "", None


def every(message: Message, ref: FieldRef) -> list[str]:
    """Every repetition of a field over every occurrence of its segment (AIP in each RGS)."""
    found: list[str] = []
    for segment in message.all(ref.segment):
        found.extend(message.repetitions(ref, segment))
    return found


def rejected(code: int, ref: FieldRef | None, text: str) -> Rejected:
    """The refusal of a message, located at ``ref``."""
    if ref is None:
        return Rejected(Problem(code, text))
    return Rejected(Problem(code, text, ref.segment, 1, ref.field, ref.component))

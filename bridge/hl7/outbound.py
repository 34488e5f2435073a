"""Outbound messages for write-back, built with hl7apy from the site's template in the mapping.

HL7 has no standard "the patient confirmed" message: sites take an SIU^S14 (or SIU^S15) into
their scheduling interface with their own SCH-25 status, SCH-6 event reason, an NTE note or a
Z-segment, or a request (SRM^S01 new booking, S03 modification, S04 cancellation). The mapping's
``writeback.commands`` say which, and which fields carry what; this module fills in what every
such message needs (who it is from and to, which appointment and patient, the timing) and then
applies the template. hl7apy builds the structure (segments in their groups, per version), which
the tests validate with hl7apy's strict mode; speed does not matter here.

The control id (MSH-10) is derived from the command, so a resend after a lost ACK carries the
same id and a host that de-duplicates (as the bridge itself does) applies it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Message as Hl7apyMessage
from hl7apy.exceptions import HL7apyException

from bridge.clock import parse_instant
from bridge.errors import WriteBackRefused
from bridge.hl7.hl7time import format_dtm
from bridge.hl7.parse import escape, field_ref
from bridge.mapping.hl7 import CommandTemplate, WriteBack
from bridge.model import Appointment, Patient
from bridge.writeback import Command

STRUCTURES = {"SIU": "SIU_S12", "SRM": "SRM_S01"}
GROUPS = {
    "SIU_S12": ("SIU_S12_PATIENT", "SIU_S12_RESOURCES"),
    "SRM_S01": ("SRM_S01_PATIENT", "SRM_S01_RESOURCES"),
}


@dataclass(frozen=True)
class Outbound:
    """One message to send: its text (CR-terminated segments) and control id."""

    text: str
    control_id: str


def control_id_for(command: Command) -> str:
    """Stable across retries; 20 characters, the MSH-10 limit before 2.5."""
    return "RB" + command.idempotency_key[:18]


def build(
    command: Command,
    template: CommandTemplate,
    writeback: WriteBack,
    appointment: Appointment | None,
    echo: dict[str, str],
    patient: Patient | None,
    zone: ZoneInfo,
    now: datetime,
) -> Outbound:
    """The outbound message for ``command``. ``WriteBackRefused`` when the template cannot be
    applied (a field the version does not have): retrying would not help."""
    version = writeback.version
    kind, event = template.message.split("^")
    structure = STRUCTURES[kind]
    values = placeholders(command, appointment, zone, now)
    control = control_id_for(command)
    try:
        message = Hl7apyMessage(
            structure, version=version, validation_level=VALIDATION_LEVEL.TOLERANT
        )
        msh = message.msh
        msh.msh_3 = escape(writeback.sending_application)
        msh.msh_4 = escape(writeback.sending_facility)
        msh.msh_5 = writeback.receiving_application or echo.get("sending_application", "")
        msh.msh_6 = writeback.receiving_facility or echo.get("sending_facility", "")
        msh.msh_7 = format_dtm(now, zone)
        msh.msh_9 = f"{kind}^{event}^{structure}" if _at_least(version, 2, 4) else f"{kind}^{event}"
        msh.msh_10 = control
        msh.msh_11 = "P"
        msh.msh_12 = version
        if kind == "SIU":
            _schedule(message, command, writeback, appointment, echo, zone, version)
        else:
            _request(message, command, writeback, appointment, echo, zone)
        if template.note:
            message.add_segment("NTE")
            message.nte.nte_1 = "1"
            message.nte.nte_3 = escape(render(template.note, values))
        patient_group, resources_group = GROUPS[structure]
        group = message.add_group(patient_group)
        group.pid.pid_1 = "1"
        group.pid.pid_3 = echo.get("patient_id") or escape(command.patient_key)
        if patient is not None and (patient.last_name or patient.first_name):
            group.pid.pid_5 = f"{escape(patient.last_name)}^{escape(patient.first_name)}"
        resources = message.add_group(resources_group)
        resources.rgs.rgs_1 = "1"
        for name, text in template.set.items():
            _set(message, name, render(text, values, escaped=True))
        for name, texts in template.segments.items():
            segment = message.add_segment(name)
            for number, text in enumerate(texts, start=1):
                setattr(segment, f"{name.lower()}_{number}", render(text, values, escaped=True))
        return Outbound(message.to_er7() + "\r", control)
    except (HL7apyException, AttributeError, ValueError) as exc:
        raise WriteBackRefused(
            f"the {command.kind.value} template ({template.message}, version {version}) "
            f"cannot be built: {exc}"
        ) from exc


def placeholders(
    command: Command, appointment: Appointment | None, zone: ZoneInfo, now: datetime
) -> dict[str, str]:
    """The template vocabulary (``bridge.mapping.hl7.PLACEHOLDERS``) for one command."""
    reason = str(command.payload.get("reason", "") or "")
    return {
        "channel": command.channel.value if command.channel else command.origin,
        "at": now.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
        "reason": reason,
        "command": command.kind.value,
        "origin": command.origin,
        "ref": command.ref,
        "appointment_key": command.appointment_key or "",
        "patient_key": command.patient_key,
        "status": appointment.status if appointment else "",
        "start": format_dtm(appointment.start, zone) if appointment else "",
    }


def render(text: str, values: dict[str, str], *, escaped: bool = False) -> str:
    """Fill ``{placeholders}``; in a field template the values are escaped, so a patient's
    free-text reason cannot add fields or components."""
    if escaped:
        values = {k: escape(v) for k, v in values.items()}
    return text.format_map(values).strip()


def _schedule(
    message: Any,
    command: Command,
    writeback: WriteBack,
    appointment: Appointment | None,
    echo: dict[str, str],
    zone: ZoneInfo,
    version: str,
) -> None:
    sch = message.sch
    sch.sch_1 = echo.get("placer") or escape(command.appointment_key or "")
    sch.sch_2 = echo.get("filler") or escape(command.appointment_key or "")
    sch.sch_6 = f"{command.kind.value.upper()}^{command.kind.value}"
    contact = escape(writeback.sending_application)
    sch.sch_16 = contact
    sch.sch_20 = contact
    if appointment is not None:
        start = format_dtm(appointment.start, zone)
        end = format_dtm(appointment.end, zone) if appointment.end else ""
        sch.sch_11 = f"^^{_minutes(appointment)}^{start}^{end}".rstrip("^")
        sch.sch_25 = escape(appointment.status)
        if _at_least(version, 2, 5):  # TQ1 carries the timing from 2.5 on
            message.add_segment("TQ1")
            message.tq1.tq1_7 = start
            if end:
                message.tq1.tq1_8 = end


def _request(
    message: Any,
    command: Command,
    writeback: WriteBack,
    appointment: Appointment | None,
    echo: dict[str, str],
    zone: ZoneInfo,
) -> None:
    arq = message.arq
    arq.arq_1 = echo.get("placer") or control_id_for(command)
    if command.appointment_key:
        arq.arq_2 = echo.get("filler") or escape(command.appointment_key)
    start, end = _requested_slot(command, appointment)
    if start is not None:
        arq.arq_11 = f"{format_dtm(start, zone)}^{format_dtm(end, zone) if end else ''}".rstrip("^")
    contact = escape(writeback.sending_application)
    arq.arq_15 = contact  # placer contact person (required)
    arq.arq_19 = contact  # entered by (required)
    payload = command.payload
    if payload.get("service"):
        arq.arq_8 = escape(str(payload["service"]))


def _requested_slot(
    command: Command, appointment: Appointment | None
) -> tuple[datetime | None, datetime | None]:
    """A booking's slot from its payload (``start``, ``end`` or ``duration_minutes``), else the
    appointment's own timing."""
    payload = command.payload
    if payload.get("start"):
        start = parse_instant(str(payload["start"]))
        end = parse_instant(str(payload["end"])) if payload.get("end") else None
        if end is None and payload.get("duration_minutes"):
            end = start + timedelta(minutes=float(payload["duration_minutes"]))
        return start, end
    if appointment is not None:
        return appointment.start, appointment.end
    return None, None


def _set(message: Any, name: str, value: str) -> None:
    """Set one field anywhere in the message (the first segment of that name)."""
    ref = field_ref(name)
    segment = _find(message, ref.segment)
    if segment is None:
        segment = message.add_segment(ref.segment)
    field_name = f"{ref.segment.lower()}_{ref.field}"
    if ref.component is None:
        setattr(segment, field_name, value)
        return
    field = getattr(segment, field_name)
    parts = (field.to_er7() if field.children else "").split("^")
    parts += [""] * (ref.component - len(parts))
    parts[ref.component - 1] = value
    setattr(segment, field_name, "^".join(parts).rstrip("^"))


def _find(element: Any, name: str) -> Any:
    for child in element.children:
        if child.name == name:
            return child
        if child.classname == "Group":
            found = _find(child, name)
            if found is not None:
                return found
    return None


def _minutes(appointment: Appointment) -> str:
    if appointment.end is None:
        return ""
    return str(int((appointment.end - appointment.start).total_seconds() // 60))


def _at_least(version: str, major: int, minor: int) -> bool:
    parts = [int(p) for p in version.split(".") if p.isdigit()]
    return tuple(parts[:2]) >= (major, minor)

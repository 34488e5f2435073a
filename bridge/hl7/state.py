"""What one accepted message says about the host, as the applier puts it into the mirror.

Built from the raw message when it is applied (with the mapping of that moment), never stored:
a replay after a mapping fix simply builds it again.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from bridge.codec import appointment_to_dict, patient_to_dict
from bridge.model import Appointment, Facility, Patient, Provider, Service, StatusClass

#: Meanings that end an appointment whatever its status says (the event wins).
ENDING = {
    "cancelled": StatusClass.CANCELLED,
    "discontinued": StatusClass.CANCELLED,
    "deleted": StatusClass.CANCELLED,
    "no_show": StatusClass.NO_SHOW,
}

Resource = Provider | Facility | Service
RESOURCE_KINDS: dict[str, type[Provider] | type[Facility] | type[Service]] = {
    "provider": Provider,
    "facility": Facility,
    "service": Service,
}


@dataclass(frozen=True)
class Mapped:
    """One message's meaning. ``appointment`` is None for an ignored event, and for an ending
    event that carries no timing (it then ends whatever the mirror holds). ``status`` and
    ``status_class`` are what the event and the status field decided; ``echo`` keeps the
    identifiers as sent, for write-back messages that must name the same appointment."""

    meaning: str
    key: str = ""
    appointment: Appointment | None = None
    patient: Patient | None = None
    status: str = ""
    status_class: StatusClass | None = None
    resources: list[tuple[str, Resource]] = field(default_factory=list)
    echo: dict[str, str] = field(default_factory=dict)

    def to_state(self) -> dict[str, Any]:
        """The plain form the applier works on (no object is rebuilt there)."""
        appointment, patient = self.appointment, self.patient
        return {
            "meaning": self.meaning,
            "key": self.key,
            "appointment": appointment_to_dict(appointment) if appointment else None,
            "patient": patient_to_dict(patient) if patient else None,
            "status": self.status,
            "status_class": self.status_class.value if self.status_class else None,
            "resources": [[kind, resource_dict(item)] for kind, item in self.resources],
            "echo": self.echo,
        }


def resource(kind: str, data: dict[str, Any]) -> Resource:
    """A provider, facility or service from its stored dict."""
    return RESOURCE_KINDS[kind](**data)


def resource_dict(item: Resource) -> dict[str, Any]:
    """A provider, facility or service as a dict (their fields are plain values)."""
    return {f.name: getattr(item, f.name) for f in fields(item)}

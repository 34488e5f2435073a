"""What one accepted message says about the host, as stored with it and applied to the mirror.

Kept as JSON beside the raw message: the applier then needs no second parse, and a replay after a
mapping fix rebuilds it from the raw bytes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from bridge.codec import (
    appointment_from_dict,
    appointment_to_dict,
    patient_from_dict,
    patient_to_dict,
)
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

    @property
    def deleted(self) -> bool:
        return self.meaning == "deleted"

    def to_json(self) -> str:
        return json.dumps(
            {
                "meaning": self.meaning,
                "key": self.key,
                "appointment": appointment_to_dict(self.appointment) if self.appointment else None,
                "patient": patient_to_dict(self.patient) if self.patient else None,
                "status": self.status,
                "status_class": self.status_class.value if self.status_class else None,
                "resources": [[kind, asdict(item)] for kind, item in self.resources],
                "echo": self.echo,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Mapped:
        data: dict[str, Any] = json.loads(text)
        return cls(
            meaning=data["meaning"],
            key=data.get("key", ""),
            appointment=appointment_from_dict(data["appointment"])
            if data.get("appointment")
            else None,
            patient=patient_from_dict(data["patient"]) if data.get("patient") else None,
            status=data.get("status", ""),
            status_class=StatusClass(data["status_class"]) if data.get("status_class") else None,
            resources=[(kind, resource(kind, item)) for kind, item in data.get("resources", [])],
            echo=dict(data.get("echo", {})),
        )


def resource(kind: str, data: dict[str, Any]) -> Resource:
    """A provider, facility or service from its stored dict."""
    return RESOURCE_KINDS[kind](**data)

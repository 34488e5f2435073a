"""The typed shape of an HL7 feed mapping (``kind: hl7``), e.g. ``mappings/hl7-siu.yaml``.

Every value is a field by its standard name (``SCH-2.1``), a list of them tried in order (the
first non-empty wins), or a table of the site's own codes. A new feed is a new YAML file: the
code that reads it (``bridge.hl7.mapper``) knows only these roles. No expressions anywhere; the
write-back templates accept a fixed vocabulary of ``{placeholders}``, checked at load.
"""

from __future__ import annotations

import string
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from bridge.hl7.parse import FieldRef, field_ref
from bridge.mapping.sql import Statuses
from bridge.model import Channel

Meaning = Literal[
    "booked", "moved", "modified", "cancelled", "discontinued", "deleted", "no_show", "ignore"
]
ContactKind = Literal["mobile", "home", "work", "email", "phone", "ignore"]
PhoneKind = Literal["home", "work", "mobile"]
DEFAULT_CONTACT_FIELDS: dict[str, PhoneKind] = {
    "PID-13": "home",
    "PID-14": "work",
    "PID-40": "home",
}
CommandName = Literal["confirm", "cancel", "callback", "opt_out", "opt_in", "book", "note"]

#: What a write-back template may say: ``{channel}`` and so on, nothing else.
PLACEHOLDERS = frozenset(
    {
        "channel",
        "at",
        "reason",
        "command",
        "origin",
        "ref",
        "appointment_key",
        "patient_key",
        "status",
        "start",
    }
)
DEFAULT_VERSIONS = ["2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_field(value: str) -> str:
    field_ref(value)
    return value.strip().upper()


#: A field by its standard name (``SCH-2.1``), checked at load.
FieldName = Annotated[str, AfterValidator(_check_field)]


@lru_cache(maxsize=64)
def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".") if p.isdigit())


class Candidate(Strict):
    """A field to try, optionally only for some versions (TQ1 exists from 2.5 on)."""

    field: FieldName
    from_version: str | None = None
    until_version: str | None = None

    @property
    def ref(self) -> FieldRef:
        return field_ref(self.field)

    def applies_to(self, version: str) -> bool:
        have = _version_key(version)
        if self.from_version and have < _version_key(self.from_version):
            return False
        return not (self.until_version and have > _version_key(self.until_version))


def _candidates(value: Any) -> Any:
    """``SCH-2.1``, ``[SCH-2.1, SCH-1.1]`` or objects with ``field`` all become a list."""
    items = value if isinstance(value, list) else [value]
    return [{"field": item} if isinstance(item, str) else item for item in items]


#: One field or a list of fields tried in order.
Candidates = Annotated[list[Candidate], BeforeValidator(_candidates)]


class Duration(Strict):
    """A duration value field and the field holding its unit (MIN, MINUTES, S, H...)."""

    value: FieldName
    unit: FieldName | None = None
    default_unit: Literal["seconds", "minutes", "hours"] = "minutes"


class Location(Strict):
    """Where (PL data type: point of care^room^bed^facility...): which components hold the
    key, the display name and the room."""

    fields: Candidates
    key: list[int] = Field(default_factory=lambda: [4, 1])
    name: list[int] = Field(default_factory=lambda: [4, 1])
    room: int | None = 2


class AppointmentRoles(Strict):
    key: Candidates
    start: Candidates
    end: Candidates = Field(default_factory=list)
    duration: list[Duration] = Field(default_factory=list)
    status: Candidates = Field(default_factory=list)
    default_status: str = "Booked"
    provider: Candidates = Field(default_factory=list)
    location: Location | None = None
    service: Candidates = Field(default_factory=list)
    notes: Candidates = Field(default_factory=list)


class Identifier(Strict):
    """A CX identifier chosen among the repetitions of some fields: the first whose type
    (CX-5) or assigning authority (CX-4) is listed, in the order listed; else the first."""

    fields: Candidates
    types: list[str] = Field(default_factory=list)
    authorities: list[str] = Field(default_factory=list)
    fallback_first: bool = True


class Coded(Strict):
    """A field whose site codes become the bridge's values (case-insensitive)."""

    field: FieldName
    values: dict[str, str] = Field(default_factory=dict)
    pass_through: bool = Field(
        True, description="Values not in the table are kept as they are (upper-cased codes)."
    )


class NameRole(Strict):
    """XPN name: family^given...; the repetition whose name type (XPN-7) comes first in
    ``types`` ('' = untyped), else the first repetition."""

    field: FieldName = "PID-5"
    types: list[str] = Field(default_factory=lambda: ["L", "D", ""])


class Address(Strict):
    field: FieldName = "PID-11"
    street: int = 1
    city: int = 3
    postal_code: int = 5


class Contacts(Strict):
    """Phones and e-mail from XTN fields, classified by equipment type (XTN-3), then use code
    (XTN-2), then the site's own words wherever it puts them, then the value's shape."""

    fields: dict[str, PhoneKind] = Field(default_factory=lambda: dict(DEFAULT_CONTACT_FIELDS))
    equipment: dict[str, ContactKind] = Field(default_factory=dict)
    use: dict[str, ContactKind] = Field(default_factory=dict)
    synonyms: dict[str, ContactKind] = Field(default_factory=dict)
    synonym_components: list[int] = Field(default_factory=lambda: [2, 3, 4])

    @field_validator("fields")
    @classmethod
    def _are_fields(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            field_ref(name)
        return value


class Flag(Strict):
    """A field whose listed values mean yes (PID-30 patient death indicator: Y)."""

    field: FieldName
    values: list[str] = Field(default_factory=lambda: ["Y"])


class ConsentRole(Strict):
    """One field holding "do not contact" (PD1-12 protection indicator, a Z-segment field)."""

    field: FieldName
    refused: list[str] = Field(default_factory=lambda: ["Y"])
    given: list[str] = Field(default_factory=list)
    channels: list[Channel] = Field(default_factory=lambda: list(Channel))


class PatientRoles(Strict):
    key: Identifier
    mrn: Identifier | None = None
    name: NameRole = Field(default_factory=NameRole)
    birth_date: FieldName | None = "PID-7"
    sex: Coded | None = None
    language: Coded | None = None
    address: Address | None = Field(default_factory=Address)
    deceased: Flag | None = None
    contacts: Contacts = Field(default_factory=Contacts)
    consent: ConsentRole | None = None


class Accept(Strict):
    versions: list[str] = Field(default_factory=lambda: list(DEFAULT_VERSIONS))
    processing_ids: list[str] = Field(default_factory=lambda: ["P"])


class CommandTemplate(Strict):
    """What one kind of write-back sends: the message, fields to set, a note, Z-segments."""

    message: Literal["SIU^S14", "SIU^S12", "SIU^S15", "SRM^S01", "SRM^S03", "SRM^S04"]
    set: dict[str, str] = Field(default_factory=dict)
    note: str | None = None
    segments: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("set")
    @classmethod
    def _fields_and_texts(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            field_ref(name)
            check_template(text)
        return value

    @field_validator("note")
    @classmethod
    def _note(cls, value: str | None) -> str | None:
        if value is not None:
            check_template(value)
        return value

    @field_validator("segments")
    @classmethod
    def _z_segments(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, texts in value.items():
            if len(name) != 3 or not name.startswith("Z") or not name.isalnum():
                raise ValueError(f"{name!r}: only Z-segments (ZXX) may be added")
            for text in texts:
                check_template(text)
        return value


def check_template(text: str) -> None:
    """Only ``{name}`` placeholders from ``PLACEHOLDERS``: no attributes, indexes or formats."""
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ValueError(f"{text!r}: {exc}") from exc
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            known = ", ".join(sorted(PLACEHOLDERS))
            raise ValueError(f"{text!r}: placeholder {{{name}}} is not one of {known}")


class WriteBack(Strict):
    """How write-back messages are built. Versions up to 2.6: hl7apy (which builds them) drops
    the fields 2.7 withdrew from SCH and shifts the rest, and hosts' inbound scheduling
    interfaces take 2.3 to 2.5.1 in practice."""

    version: Literal["2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6"] = "2.5.1"
    sending_application: str = "REMINDER_BRIDGE"
    sending_facility: str = ""
    receiving_application: str = Field(
        "", description="Empty: the application that sent the appointment (its MSH-3)."
    )
    receiving_facility: str = ""
    commands: dict[CommandName, CommandTemplate] = Field(default_factory=dict)

    def template_for(self, kind: str) -> CommandTemplate | None:
        """The template for a write-back command kind (``confirm``...), if the site has one."""
        return next((t for name, t in self.commands.items() if name == kind), None)


class Hl7Mapping(Strict):
    """A whole HL7 feed mapping."""

    version: Literal[1]
    kind: Literal["hl7"]
    name: str
    timezone: str | None = None
    accept: Accept = Field(default_factory=Accept)
    events: dict[str, Meaning]
    required_segments: dict[str, list[str]] = Field(default_factory=dict)
    appointment: AppointmentRoles
    statuses: Statuses
    patient: PatientRoles
    writeback: WriteBack = Field(default_factory=WriteBack)
    _spellings: dict[str, str] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        codes = sorted(self.statuses.known_codes() | {self.appointment.default_status})
        self._spellings.update({code.upper(): code for code in codes})

    @field_validator("events")
    @classmethod
    def _event_names(cls, value: dict[str, Meaning]) -> dict[str, Meaning]:
        for name in value:
            kind, _, trigger = name.partition("^")
            if not (kind.isalnum() and len(kind) == 3 and trigger.isalnum()):
                raise ValueError(f"{name!r} is not a message type and event such as SIU^S12")
        return {name.upper(): meaning for name, meaning in value.items()}

    @model_validator(mode="after")
    def _no_host_list(self) -> Hl7Mapping:
        if self.statuses.host_list is not None:
            raise ValueError("statuses.host_list: an HL7 feed has no status table to read")
        return self

    def status_code(self, sent: str) -> str:
        """The mapping's own spelling of a status code sent in any case (``ARRIVED``)."""
        return self._spellings.get(sent.upper(), sent)

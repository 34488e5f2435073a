"""The ``booking`` and ``recalls`` sections of a SQL host mapping: where availability comes
from, how a new appointment row and a new patient row are written, where staff keep recalls.

Still data only: column names, the host's own codes, and values from a fixed vocabulary.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Scalar = str | int | float | bool

BookingRole = Literal["title", "comment", "informant", "now", "facility", "provider", "empty"]
NewPatientRole = Literal["now", "key", "mrn", "empty"]


Sex = Literal["female", "male", "unknown"]


def _default_sex() -> dict[Sex, str]:
    return {"female": "Female", "male": "Male", "unknown": "UNK"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HostValue(_Strict):
    """One value in a host's settings table (OpenEMR ``globals``: ``gl_name`` / ``gl_value``)."""

    table: str
    name_column: str
    name: str
    value_column: str


class NewPatients(_Strict):
    """How a patient who books online for the first time is registered, as the host's own
    registration would (OpenEMR ``PatientService::insert``: ``pid`` = ``MAX(pid) + 1``, ``pubpid``
    = the new ``pid``, ``date`` and ``regdate`` = now). Name, birth date, sex, phone, email,
    language and consent go into the mapped ``patients`` columns."""

    next_key: Literal["max_plus_one"] = "max_plus_one"
    columns: dict[str, NewPatientRole] = Field(default_factory=dict)
    constants: dict[str, Scalar] = Field(default_factory=dict)
    sex: dict[Sex, str] = Field(default_factory=_default_sex)


class BookingMapping(_Strict):
    """Online booking on a SQL host.

    Availability markers are calendar events without a patient, by their category's stable code
    (OpenEMR ``pc_constant_id``): an ``in_office`` event opens a provider's day at its start time
    (until an ``out_of_office`` event or the end of the day, as OpenEMR's own "find available"
    reads them); ``preferred_service`` is the in-office column restricting the block to one
    visit category (``pc_prefcatid``, 0 = any). Clinic-wide events (no provider) of the
    ``clinic_closed`` categories close the clinic. Every other row of the provider that is not
    cancelled is busy.
    """

    in_office: list[str] = Field(default_factory=lambda: ["in_office"])
    out_of_office: list[str] = Field(default_factory=lambda: ["out_of_office"])
    clinic_closed: list[str] = Field(default_factory=lambda: ["holidays", "closed"])
    preferred_service: str | None = None
    pending_status: str = Field("^", description="Status of a booking staff must approve.")
    booked_status: str = Field("-", description="Status of a booking that needs no approval.")
    informant: str = Field("online", description="Written where the role 'informant' says.")
    columns: dict[str, BookingRole] = Field(default_factory=dict)
    constants: dict[str, Scalar] = Field(default_factory=dict)
    slot_minutes: HostValue | None = None
    day_start: HostValue | None = None
    day_end: HostValue | None = None
    new_patients: NewPatients | None = None


class RecallList(_Strict):
    """Where staff keep manual recalls on the host (OpenEMR's Recall Board: ``medex_recalls``,
    one row per patient with the date the patient is due back)."""

    table: str
    patient: str
    due: str
    provider: str | None = None
    facility: str | None = None
    reason: str | None = None

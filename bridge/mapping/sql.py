"""The typed shape of a SQL host mapping (``kind: sql``), e.g. ``mappings/openemr.yaml``.

Every name here is a table or column name of the host, or a value the host stores; the SQL is
built from them by SQLAlchemy Core (quoted per dialect), never pasted from the file.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bridge.mapping.sql_booking import BookingMapping, RecallList
from bridge.model import Channel, HostStatus, StatusClass

Scalar = str | int | float | bool

_ENDED = (StatusClass.CANCELLED, StatusClass.NO_SHOW, StatusClass.CHECKED_OUT)
_NEVER_ELIGIBLE = (*_ENDED, StatusClass.CHECKED_IN)


class Strict(BaseModel):
    """Mapping sections reject unknown keys so a typo is reported, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class AppointmentColumns(Strict):
    """Host columns of the appointment table, by the role they play.

    Either ``date`` + ``start_time`` (OpenEMR: DATE and naive local TIME) or ``start`` (one
    DATETIME column) must be given.
    """

    patient: str
    status: str
    date: str | None = None
    start_time: str | None = None
    end_time: str | None = None
    start: str | None = None
    end: str | None = None
    duration: str | None = None
    all_day: str | None = None
    provider: str | None = None
    facility: str | None = None
    service: str | None = None
    room: str | None = None
    notes: str | None = None
    end_date: str | None = None
    recurrence_type: str | None = None
    recurrence_spec: str | None = None
    group: str | None = None

    @model_validator(mode="after")
    def _timing(self) -> AppointmentColumns:
        if self.start is None and (self.date is None or self.start_time is None):
            raise ValueError("give either 'start' or both 'date' and 'start_time'")
        return self


class AppointmentTable(Strict):
    table: str
    key: str
    columns: AppointmentColumns
    duration_unit: Literal["seconds", "minutes"] = "seconds"
    recurrence: Literal["none", "openemr"] = "none"
    no_patient: list[str] = Field(
        default_factory=list, description="Patient values (besides NULL) meaning 'no patient'."
    )
    where: dict[str, Scalar | list[Scalar]] = Field(
        default_factory=dict, description="Only rows whose column equals (or is in) the value."
    )
    key_increases: bool = Field(
        False,
        description="New rows get larger keys (auto-increment): series are then read in full "
        "only every series_rescan_minutes, and incrementally in between.",
    )
    series_rescan_minutes: int = Field(10, ge=1, le=1440)
    group_visits: bool = Field(
        False,
        description="Rows sharing a non-zero 'group' value are one visit with several providers.",
    )

    @model_validator(mode="after")
    def _recurrence_columns(self) -> AppointmentTable:
        cols = self.columns
        if self.recurrence != "none" and not (
            cols.recurrence_type and cols.recurrence_spec and cols.end_date and cols.date
        ):
            raise ValueError(
                "recurrence needs columns date, recurrence_type, recurrence_spec and end_date"
            )
        if self.group_visits and not cols.group:
            raise ValueError("group_visits needs columns.group")
        return self


class ServiceTable(Strict):
    table: str
    key: str
    name: str
    duration: str | None = None
    duration_unit: Literal["seconds", "minutes"] = "seconds"
    code: str | None = None
    kind: str | None = None
    patient_kinds: list[Scalar] = Field(
        default_factory=list,
        description="Values of 'kind' that mean a patient appointment; others are skipped.",
    )


class ConsentColumn(Strict):
    """A consent flag column: values meaning consent given / refused; anything else unknown.

    (Not ``yes`` / ``no`` as keys: YAML reads those as booleans.)"""

    column: str
    given: list[str] = Field(default_factory=lambda: ["YES"])
    refused: list[str] = Field(default_factory=lambda: ["NO"])


class PreferenceColumn(Strict):
    column: str
    values: dict[str, Literal["call", "sms", "call_sms", "email", "none"]]


class LanguageList(Strict):
    """Translate the host's language values to ISO codes through a host lookup table."""

    table: str
    code: str
    iso: str
    where: dict[str, Scalar] = Field(default_factory=dict)


class PatientColumns(Strict):
    first_name: str
    last_name: str
    mrn: str | None = None
    birth_date: str | None = None
    sex: str | None = None
    language: str | None = None
    mobile: str | None = None
    home_phone: str | None = None
    work_phone: str | None = None
    email: str | None = None
    deceased_date: str | None = None
    street: str | None = None
    city: str | None = None
    postal_code: str | None = None


class PatientTable(Strict):
    table: str
    key: str
    columns: PatientColumns
    consent: dict[Channel, ConsentColumn] = Field(default_factory=dict)
    preference: PreferenceColumn | None = None
    changed_since: str | None = Field(
        None, description="An ON UPDATE timestamp column, used as a watermark if present."
    )
    language_list: LanguageList | None = None


class ProviderTable(Strict):
    table: str
    key: str
    first_name: str
    last_name: str
    title: str | None = None
    phone: str | None = None
    email: str | None = None
    facility: str | None = None
    username: str | None = None
    active: str | None = None


class FacilityTable(Strict):
    table: str
    key: str
    name: str
    phone: str | None = None
    street: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    website: str | None = None
    email: str | None = None
    notes: str | None = None


class StatusList(Strict):
    """Where the host keeps its status list, read at run time (sites add their own)."""

    table: str
    code: str
    title: str
    where: dict[str, Scalar] = Field(default_factory=dict)
    checked_in_flag: str | None = None
    checked_out_flag: str | None = None


class Statuses(Strict):
    """What each host status code means. Codes the host has but the mapping does not list get
    ``unknown`` (and ``bridge check`` names them)."""

    host_list: StatusList | None = None
    eligible: list[str]
    protected: list[str] = Field(default_factory=list)
    scheduled: list[str] = Field(default_factory=list)
    pending: list[str] = Field(default_factory=list)
    confirmed: dict[Channel, str] = Field(default_factory=dict)
    confirmed_other: list[str] = Field(default_factory=list)
    cancelled: list[str] = Field(default_factory=list)
    cancelled_late: str | None = None
    no_show: list[str] = Field(default_factory=list)
    checked_in: list[str] = Field(default_factory=list)
    checked_out: list[str] = Field(default_factory=list)
    callback: str | None = None
    unknown: Literal["ineligible", "eligible"] = "ineligible"

    def classify(self, code: str) -> StatusClass:
        """The bridge's meaning of one host status code."""
        if code in self.cancelled or code == self.cancelled_late:
            return StatusClass.CANCELLED
        if code in self.no_show:
            return StatusClass.NO_SHOW
        if code in self.checked_out:
            return StatusClass.CHECKED_OUT
        if code in self.checked_in:
            return StatusClass.CHECKED_IN
        if code in self.confirmed.values() or code in self.confirmed_other:
            return StatusClass.CONFIRMED
        if code in self.pending:
            return StatusClass.PENDING
        if code in self.scheduled:
            return StatusClass.SCHEDULED
        return StatusClass.OTHER

    def host_status(
        self, code: str, title: str = "", checked_in: bool = False, checked_out: bool = False
    ) -> HostStatus:
        """Classify one host status; the host's own check-in / check-out flags win."""
        status_class = self.classify(code)
        if checked_out and status_class not in _ENDED:
            status_class = StatusClass.CHECKED_OUT
        elif checked_in and status_class not in _ENDED:
            status_class = StatusClass.CHECKED_IN
        listed = code in self.known_codes()
        eligible = code in self.eligible or (not listed and self.unknown == "eligible")
        if status_class in _NEVER_ELIGIBLE:
            eligible = False
        protected = code in self.protected or status_class in _NEVER_ELIGIBLE
        return HostStatus(code, title or code, status_class, eligible, protected)

    def known_codes(self) -> set[str]:
        codes = set(self.eligible) | set(self.protected) | set(self.scheduled)
        codes |= set(self.pending) | set(self.confirmed.values()) | set(self.confirmed_other)
        codes |= set(self.cancelled) | set(self.no_show) | set(self.checked_in)
        codes |= set(self.checked_out)
        codes |= {c for c in (self.cancelled_late, self.callback) if c}
        return codes


class TimezoneLookup(Strict):
    """Where the host keeps its site time zone (OpenEMR: ``globals.gbl_time_zone``)."""

    table: str
    name_column: str
    name: str
    value_column: str


class LogRow(Strict):
    """A row added to a host log table after each send; values name what goes in each column.

    Value vocabulary (fixed, no expressions): ``patient_key``, ``appointment_key``,
    ``channel_label``, ``gateway``, ``message``, ``subject``, ``sender``, ``patient_info``,
    ``date``, ``end_date``, ``start_time``, ``end_time``, ``sent_at``, ``empty``.
    """

    table: str
    channels: dict[Channel, str]
    columns: dict[
        str,
        Literal[
            "patient_key",
            "appointment_key",
            "channel_label",
            "gateway",
            "message",
            "subject",
            "sender",
            "patient_info",
            "date",
            "end_date",
            "start_time",
            "end_time",
            "sent_at",
            "empty",
        ],
    ]


class AfterSend(Strict):
    """What the bridge writes on the host after a send, to live beside the host's own module."""

    enabled: bool = True
    set_on_appointment: dict[Channel, dict[str, Scalar]] = Field(default_factory=dict)
    only_non_recurring: bool = True
    log: LogRow | None = None


class CancelLate(Strict):
    """A cancellation this close to the start is written with its own status (OpenEMR ``%``)."""

    status: str
    within_hours: float = Field(24, gt=0, le=168)


class FlowBoard(Strict):
    """OpenEMR's Patient Flow Board: a status change on today's appointment also gets a
    ``patient_tracker`` row (one per appointment and day) and a ``patient_tracker_element`` row
    per status, numbered by ``lastseq``, as ``manage_tracker_status()`` writes them."""

    table: str = "patient_tracker"
    element_table: str = "patient_tracker_element"
    user: str = Field("bridge", description="Written as original_user / user.")


NoteRole = Literal["patient_key", "title", "body", "assigned_to", "user", "now", "empty"]
NoteEvent = Literal["cancel", "callback", "opt_out", "opt_in", "note", "book"]
_DEFAULT_NOTE_EVENTS: tuple[NoteEvent, ...] = ("cancel", "callback", "note")


class StaffNotes(Strict):
    """A note for staff in the host (OpenEMR ``pnotes``, shown in Messages) for some answers.

    ``columns`` names what goes in each column (fixed vocabulary, no expressions);
    ``constants`` are literal values for other columns. The body starts the way OpenEMR's own
    ``addPnote()`` starts it: ``YYYY-MM-DD HH:MM (user to assigned_to)``.
    """

    table: str
    columns: dict[str, NoteRole]
    constants: dict[str, Scalar] = Field(default_factory=dict)
    title: str = "Patient Reminders"
    assigned_to: str = Field("", description="Username whose inbox gets the note; '' = nobody.")
    user: str = "bridge"
    about: list[NoteEvent] = Field(default_factory=lambda: list(_DEFAULT_NOTE_EVENTS))


class WriteBack(Strict):
    """How patients' answers are written into the host's appointment book and patient record.

    Statuses it never overwrites: every ``statuses.protected`` code, every status the host flags
    as check-in / check-out, cancelled and no-show codes, and codes the mapping does not know
    (unless ``statuses.unknown`` is ``eligible``).
    """

    enabled: bool = True
    confirmed: dict[Channel, str] = Field(
        default_factory=dict, description="Status for a confirmation received on each channel."
    )
    confirmed_default: str | None = Field(
        None, description="Status for a confirmation that came on no channel in particular."
    )
    confirm_keeps: list[str] = Field(
        default_factory=list,
        description="Statuses a confirmation leaves as they are (a booking awaiting approval).",
    )
    cancelled: str | None = None
    cancelled_late: CancelLate | None = None
    callback: str | None = None
    series: Literal["split", "refuse"] = Field(
        "split",
        description="A change to one occurrence of a repeating appointment: 'split' excludes "
        "its date from the series and inserts a standalone row (as OpenEMR does); 'refuse'.",
    )
    flow_board: FlowBoard | None = None
    notes: StaffNotes | None = None


class SqlMapping(Strict):
    """A whole SQL host mapping."""

    version: Literal[1]
    kind: Literal["sql"]
    name: str
    appointments: AppointmentTable
    patients: PatientTable
    services: ServiceTable | None = None
    providers: ProviderTable | None = None
    facilities: FacilityTable | None = None
    statuses: Statuses
    timezone: TimezoneLookup | None = None
    after_send: AfterSend = Field(default_factory=lambda: AfterSend(enabled=False))
    write_back: WriteBack = Field(default_factory=lambda: WriteBack(enabled=False))
    booking: BookingMapping | None = None
    recalls: RecallList | None = None

"""Plugin contracts and discovery.

Three kinds of plugin, each found through an entry point group: ``bridge.sources`` (read a host),
``bridge.channels`` (deliver a message), ``bridge.writers`` (apply write-back on a host). Built-in
plugins are registered in ``pyproject.toml`` exactly like third-party ones.

Each plugin class carries its ``name`` and a typed ``Config`` (a pydantic model with
``extra="forbid"``) built from the settings; limits are class attributes. A plugin whose driver is
missing is reported with one actionable line instead of a traceback.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, ValidationError

from bridge.clock import Clock
from bridge.errors import BadHostRow, ConfigError
from bridge.model import (
    Appointment,
    Channel,
    Facility,
    HostStatus,
    Patient,
    Provider,
    Service,
)
from bridge.settings_errors import shown
from bridge.writeback import Applied, Command

GROUPS = {"source": "bridge.sources", "channel": "bridge.channels", "writer": "bridge.writers"}


class PluginConfig(BaseModel):
    """Base of every plugin's typed options; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


C = TypeVar("C", bound=PluginConfig)


@dataclass(frozen=True)
class PluginContext:
    """What every plugin may use besides its own options."""

    clock: Clock
    base_dir: Path
    region: str = "US"


class Plugin(Generic[C]):
    """Common shape: a name, a typed config, a context."""

    name: ClassVar[str]
    Config: ClassVar[type[PluginConfig]]

    def __init__(self, config: C, context: PluginContext) -> None:
        self.config = config
        self.context = context

    def close(self) -> None:
        """Release connections; the default has nothing to release."""

    @classmethod
    def options_from(cls, settings: Any) -> dict[str, Any] | None:
        """A host plugin's options built from the whole settings, or None for the ``host``
        section's url and mapping. A feed that has no host database (HL7) overrides it and
        reads its own section."""
        return None


# --- sources ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """The host's small lookup data, read each cycle (sites add statuses at run time)."""

    statuses: dict[str, HostStatus] = field(default_factory=dict)
    providers: dict[str, Provider] = field(default_factory=dict)
    facilities: dict[str, Facility] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)
    timezone: str | None = None


RejectSink = Callable[[BadHostRow], None]


class Sighting:
    """One occurrence a scan saw: its identity, a digest of the host data it came from, and how
    to build the full ``Appointment``.

    Building is deferred because most of a forward window is unchanged from one cycle to the
    next: the store compares digests and only changed occurrences are ever built.
    """

    __slots__ = ("_appointment", "_build", "digest", "key", "occurrence", "patient_key")

    def __init__(
        self,
        key: str,
        occurrence: date,
        patient_key: str,
        digest: str,
        build: Callable[[], Appointment],
    ) -> None:
        self.key = key
        self.occurrence = occurrence
        self.patient_key = patient_key
        self.digest = digest
        self._build = build
        self._appointment: Appointment | None = None

    @classmethod
    def of(cls, appointment: Appointment) -> Sighting:
        """A sighting of an appointment already built (feeds that push whole appointments)."""
        sighting = cls(
            appointment.key,
            appointment.occurrence,
            appointment.patient_key,
            appointment.fingerprint(),
            lambda: appointment,
        )
        sighting._appointment = appointment
        return sighting

    @property
    def ident(self) -> tuple[str, date]:
        return (self.key, self.occurrence)

    def appointment(self) -> Appointment:
        """The full appointment, built on first use."""
        if self._appointment is None:
            self._appointment = self._build()
        return self._appointment


@dataclass(frozen=True)
class CalendarEntry:
    """One entry of a provider's calendar on one clinic-local day, as online booking reads it.

    ``kind``: ``in_office`` (a marker: the provider takes appointments from ``start``),
    ``out_of_office`` (a marker: no more from ``start``), ``busy`` (an appointment or another
    event: ``start`` to ``end``, the whole day when ``all_day``), ``closed`` (the whole clinic,
    ``provider_key`` empty). An ``in_office`` entry with a ``service_key`` takes that visit
    category only."""

    kind: str
    day: date
    start: time
    end: time | None = None
    provider_key: str = ""
    facility_key: str | None = None
    service_key: str | None = None
    all_day: bool = False


@dataclass(frozen=True)
class CalendarSettings:
    """The host's own calendar grid: slot length and the hours of a day, where it keeps them."""

    slot_minutes: int | None = None
    day_start: time | None = None
    day_end: time | None = None


@dataclass(frozen=True)
class LastVisit:
    """A patient's most recent visit of one visit category (clinic-local date)."""

    patient_key: str
    service_key: str
    day: date


@dataclass(frozen=True)
class HostRecall:
    """A recall staff set on the host (OpenEMR's Recall Board): the patient is due back."""

    patient_key: str
    due: date
    provider_key: str | None = None
    facility_key: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class CheckLine:
    """One line of ``bridge check``: ``level`` is ok, warning or error."""

    level: str
    text: str


class Source(Plugin[C], ABC):
    """Reads a host's appointments and patients into the canonical model."""

    #: True when the host pushes changes (a feed) instead of being rescanned each cycle.
    pushes: ClassVar[bool] = False

    @abstractmethod
    def reference(self) -> Reference:
        """Statuses, providers, facilities, services and the host's time zone, if it has one."""

    @abstractmethod
    def scan(
        self,
        window: tuple[date, date],
        reference: Reference,
        timezone: ZoneInfo,
        reject: RejectSink,
    ) -> list[Sighting]:
        """Every patient appointment occurrence inside ``window`` (clinic-local dates, inclusive).

        A row that cannot be mapped is passed to ``reject`` and skipped; the scan goes on. The
        digests must change whenever anything mapped into the appointment changes, and must be
        stable otherwise; ``signature`` covers what the rows do not (the mapping itself).
        """

    def signature(self) -> str:
        """Changes when the way rows become appointments changes (a mapping edit)."""
        return ""

    @abstractmethod
    def patients(self, keys: Iterable[str], reject: RejectSink) -> Iterator[Patient]:
        """The patients with these keys (unknown keys are simply not returned)."""

    def changed_patient_keys(self, watermark: str | None) -> tuple[set[str], str | None] | None:
        """Keys of patients changed since ``watermark`` and the new watermark, or None when the
        host keeps no change timestamp (then every patient in the window is read each cycle)."""
        return None

    @abstractmethod
    def occurrences_of(
        self, key: str, window: tuple[date, date], reference: Reference, timezone: ZoneInfo
    ) -> list[Appointment]:
        """Every occurrence of host appointment ``key`` inside ``window``, read now."""

    def fetch(
        self, key: str, occurrence: date, reference: Reference, timezone: ZoneInfo
    ) -> Appointment | None:
        """Read one occurrence again, just before sending; None when it no longer exists."""
        for appt in self.occurrences_of(key, (occurrence, occurrence), reference, timezone):
            if appt.occurrence == occurrence:
                return appt
        return None

    def check(self) -> list[CheckLine]:
        """Validate the mapping against the live host for ``bridge check``."""
        return []

    # --- online booking and recalls: hosts that keep a calendar the bridge can read --------
    # Each raises ``NotImplementedError`` on a host that cannot answer (an HL7 feed).

    def calendar(
        self, providers: Collection[str], window: tuple[date, date], reference: Reference
    ) -> list[CalendarEntry]:
        """The calendar of ``providers`` (host keys) inside ``window`` (clinic-local dates,
        inclusive), repeating events expanded, plus clinic-wide closures; cancelled
        appointments are left out."""
        raise NotImplementedError(f"the {self.name} source cannot read a calendar")

    def calendar_settings(self) -> CalendarSettings:
        """The host's slot length and day hours (empty where it keeps none)."""
        return CalendarSettings()

    def last_visits(
        self,
        services: Collection[str],
        since: date,
        before: date,
        reference: Reference,
        *,
        attended_only: bool = False,
    ) -> list[LastVisit]:
        """Each patient's last visit of each of ``services`` in ``[since, before)``: visits not
        cancelled and not missed (with ``attended_only``, checked in or out)."""
        raise NotImplementedError(f"the {self.name} source cannot read past visits")

    def booked_patients(
        self, patient_keys: Collection[str] | None, since: date, reference: Reference
    ) -> set[str]:
        """Which patients (of ``patient_keys``; None: all) have an appointment on or after
        ``since`` that is not cancelled."""
        raise NotImplementedError(f"the {self.name} source cannot read future appointments")

    def recall_list(self, until: date) -> list[HostRecall]:
        """The recalls staff set on the host that are due on or before ``until``."""
        return []

    def find_patients(self, birth_date: date, contact: str, reject: RejectSink) -> list[Patient]:
        """Patients born on ``birth_date`` whose mobile (E.164) or email is ``contact``."""
        raise NotImplementedError(f"the {self.name} source cannot look patients up")


# --- channels ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboundMessage:
    """One message for one recipient. ``idempotency_key`` is stable across retries of a job
    (a redial after the provider accepted and then failed a message is a new send: its key
    gets ``#2``, ``#3``...)."""

    idempotency_key: str
    channel: Channel
    to: str
    text: str
    subject: str | None = None
    html: str | None = None
    sender: str | None = None
    voicemail: str | None = None
    testing: bool = False
    job_id: int | None = None
    tags: dict[str, str] = field(default_factory=dict)
    #: Opaque per-attempt reference for callback URLs and provider client references.
    token: str | None = None


@dataclass(frozen=True)
class SendResult:
    """What a channel says after accepting a message."""

    provider_ref: str | None = None
    cost: float | None = None
    segments: int | None = None
    #: The provider's own status for the message when it said one (queued, accepted...).
    status: str | None = None


@dataclass(frozen=True)
class SendProbe:
    """What the bridge knows of an interrupted send, to ask a provider whether it went out.

    ``since`` is when the attempt started (the provider's record cannot be older);
    ``body_digest`` is ``text_digest`` of the text sent. Providers without idempotency keys
    (Twilio) match on recipient, body and time instead.
    """

    idempotency_key: str
    token: str
    channel: Channel
    to: str
    body_digest: str
    since: datetime
    exclude_refs: frozenset[str] = frozenset()


def text_digest(text: str) -> str:
    """A short digest of a message body (whitespace at the ends ignored)."""
    return hashlib.blake2b(text.strip().encode("utf-8"), digest_size=16).hexdigest()


class ChannelPlugin(Plugin[C], ABC):
    """Delivers messages. Raises ``TransientDeliveryError`` / ``PermanentDeliveryError``;
    never returns a bare bool."""

    channels: ClassVar[frozenset[Channel]] = frozenset()
    body_maxlen: ClassVar[int | None] = None

    @abstractmethod
    def send(self, message: OutboundMessage) -> SendResult:
        """Hand ``message`` to the provider, passing its idempotency key where the API has one."""

    def lookup(self, idempotency_key: str) -> SendResult | None:
        """Ask the provider whether a message with this key went out (None: it did not).

        Raises ``NotImplementedError`` when the provider cannot tell; the dispatcher then
        resolves an ``unknown`` job by policy.
        """
        raise NotImplementedError

    def find_sent(self, probe: SendProbe) -> SendResult | None:
        """Like ``lookup`` with everything known of the attempt; providers that keep no
        idempotency key override this to search their message log. Raises
        ``NotImplementedError`` when the provider cannot tell, ``TransientDeliveryError``
        when it cannot be asked now."""
        return self.lookup(probe.idempotency_key)


# --- writers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SentNote:
    """What a writer records on the host after a message went out."""

    appointment: Appointment
    patient: Patient
    channel: Channel
    text: str
    subject: str | None
    sender: str
    gateway: str
    sent_at: datetime
    timezone: ZoneInfo


@dataclass(frozen=True)
class WriteContext:
    """What a writer may need besides the command: the host's reference data and clock."""

    reference: Reference
    timezone: ZoneInfo
    now: datetime


class Writer(Plugin[C], ABC):
    """Applies the bridge's results to the host."""

    @abstractmethod
    def note_sent(self, note: SentNote) -> None:
        """Record a sent reminder the way the host's own module would (flags, log rows)."""

    def note_sent_many(self, notes: Sequence[SentNote]) -> None:
        """Record a batch of sends; a writer that can should do it in one host transaction."""
        for note in notes:
            self.note_sent(note)

    def apply(self, command: Command, context: WriteContext) -> Applied:
        """Apply one write-back command, read the result back, and report it.

        Raises ``HostUnavailable`` when the host cannot take it now (it is retried),
        ``WriteBackRefused`` when it must not (a protected status, a row staff changed).
        A writer that does not handle a command kind raises ``NotImplementedError``.
        """
        raise NotImplementedError(f"the {self.name} writer cannot apply {command.kind.value}")


# --- discovery --------------------------------------------------------------------------------


def plugin_class(kind: str, name: str) -> type[Plugin[Any]]:
    """The class registered as ``name`` in the entry point group of ``kind``."""
    group = GROUPS[kind]
    found = [ep for ep in entry_points(group=group) if ep.name == name]
    if not found:
        known = sorted(ep.name for ep in entry_points(group=group))
        raise ConfigError(f"{kind} plugin {name!r} is not installed (known: {', '.join(known)})")
    try:
        cls = found[0].load()
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"{kind} plugin {name!r} needs {exc.name}, which is not installed: "
            f"pip install 'reminder-bridge[{_extra_for(exc.name)}]'"
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, Plugin)):
        raise ConfigError(f"{kind} plugin {name!r} ({found[0].value}) is not a bridge plugin")
    return cls


def load_plugin(
    kind: str, name: str, options: dict[str, Any], context: PluginContext, where: str
) -> Plugin[Any]:
    """Instantiate plugin ``name`` with ``options`` validated by its ``Config``.

    ``where`` is the settings path of the options, so an error names the key to fix.
    """
    cls = plugin_class(kind, name)
    try:
        config = cls.Config.model_validate(options)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(p) for p in (where, *error["loc"]))
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            raise ConfigError(f"{key}: unknown option for plugin {name!r}") from exc
        raise ConfigError(f"{key} = {shown(key, error.get('input'))}: {message}") from exc
    return cls(config, context)


def _extra_for(module: str | None) -> str:
    return {"pyodbc": "odbc", "psycopg": "postgres", "win32serviceutil": "windows"}.get(
        module or "", module or "?"
    )

"""Message events: what a job's message is about, and how the dispatcher checks it just before
it goes out.

A job names its event (``jobs.event``); the event decides everything that differs between a
reminder and, say, a recall: what to read again from the host and the store just before the
send, what stops the message (the appointment was cancelled, the patient booked in the
meantime, the invitation was revoked), and what the template renders with. Sending itself
(claims, leases, the ledger written before the request, settling, pacing, retries) is the
dispatcher's and the same for every event.

Events are found through the entry point group ``bridge.events`` (``name = module:Class``);
``reminder`` is registered like any other. A job whose event is not installed fails with that
reason rather than going out unchecked.

For an event that is not about an appointment (``about_appointment`` False) the job's
``appointment_key`` holds the event's own subject key (``recall:17``, ``invite:4``): it keeps the
job's identity unique and is never read as a host key; the ledger then records no appointment,
so a reply to such a message never answers an appointment.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, ClassVar
from zoneinfo import ZoneInfo

from bridge.errors import ConfigError
from bridge.model import Appointment, Patient
from bridge.plugin import Reference
from bridge.store.jobs import Job
from bridge.store.schema import JobStatus
from bridge.template_context import MessageContext

if TYPE_CHECKING:
    from bridge.runtime import Runtime

GROUP = "bridge.events"


@dataclass(frozen=True)
class Batch:
    """What every check of one dispatch batch shares: one instant, one host reference read."""

    now: datetime
    reference: Reference
    zone: ZoneInfo
    pool: ThreadPoolExecutor


@dataclass(frozen=True)
class Subject:
    """A job that may go out: who it is for and what its template renders with.

    ``patient`` gives the recipient's address (for an invitation, the invited address);
    ``appointment`` is set when the message is about one (the ledger records it, and the host's
    writer notes the send when the event asks for it)."""

    patient: Patient
    context: MessageContext
    appointment: Appointment | None = None


@dataclass(frozen=True)
class Drop:
    """A job that must not go out: ``cancelled`` (its reason is gone) or ``skipped`` (this
    channel cannot be used), with the reason recorded on the job."""

    status: JobStatus
    reason: str


Checked = Subject | Drop


class MessageEvent(ABC):
    """One kind of message. Subclasses set ``name`` and implement ``check``."""

    name: ClassVar[str]
    #: Deliveries name the appointment (a reply to the message answers it).
    about_appointment: ClassVar[bool] = False
    #: The host's writer records each send (OpenEMR's sent flags and notification_log rows).
    note_on_host: ClassVar[bool] = False

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    @abstractmethod
    def check(self, jobs: Sequence[Job], batch: Batch) -> list[Checked]:
        """One entry per job, in order: a ``Subject`` to send or a ``Drop``.

        Raises ``HostUnavailable`` when the host cannot be read now: every job of the batch is
        then tried again later."""


def load_events(runtime: Runtime) -> dict[str, MessageEvent]:
    """Every installed event for ``runtime``, by name."""
    found: dict[str, MessageEvent] = {}
    for entry in entry_points(group=GROUP):
        try:
            cls = entry.load()
        except ModuleNotFoundError as exc:
            raise ConfigError(
                f"message event {entry.name!r} needs {exc.name}, which is not installed"
            ) from exc
        if not (isinstance(cls, type) and issubclass(cls, MessageEvent)):
            raise ConfigError(f"message event {entry.name!r} ({entry.value}) is not an event")
        if cls.name != entry.name:
            raise ConfigError(f"message event {entry.name!r} ({entry.value}) is named {cls.name}")
        found[entry.name] = cls(runtime)
    return found

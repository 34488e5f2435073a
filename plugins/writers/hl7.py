"""``hl7``: write-back over HL7 v2 to the host's inbound scheduling interface (MLLP).

Each write-back command (confirmed, cancelled, call me back, an online booking) becomes the
site's own message, as its mapping's ``writeback.commands`` template says (SIU^S14 with SCH-25 /
SCH-6 / NTE / a Z-segment, or SRM^S01 / S03 / S04), sent to ``hl7.outbound_host`` /
``outbound_port``; then the host's ACK decides:

- AA (or CA): applied; the ACK is the host's word, HL7 has no way to read the row back. The host
  usually echoes the change on its feed, and the mirror follows.
- AR (or CR), no answer, connection refused: ``HostUnavailable``: the queue retries with
  back-off, in order per appointment, for as long as it takes. The control id is the same on
  every try, so a host that de-duplicates applies a resend after a lost ACK once.
- AE (or CE): ``WriteBackRefused``: the content is wrong; staff see it (``bridge writebacks``).

Before sending, a command for an appointment whose status is protected (checked in or out,
cancelled, no-show, or listed in ``statuses.protected``) is refused without sending. ``note_sent``
does nothing for HL7 hosts: their interfaces take appointments, not reminder logs.
"""

from __future__ import annotations

import ssl
from typing import Any

from bridge.errors import ConfigError, HostUnavailable, WriteBackRefused
from bridge.hl7.client import MllpClient
from bridge.hl7.feed import Feed, LazyStore, options_for
from bridge.hl7.mirror import held_appointment, read_patients
from bridge.hl7.outbound import build
from bridge.hl7.source import Hl7SourceConfig
from bridge.model import Appointment, Patient, StatusClass
from bridge.plugin import PluginContext, SentNote, WriteContext, Writer
from bridge.writeback import Applied, Command, CommandKind

ENDED = (
    StatusClass.CANCELLED,
    StatusClass.NO_SHOW,
    StatusClass.CHECKED_IN,
    StatusClass.CHECKED_OUT,
)


class Hl7Writer(Writer[Hl7SourceConfig]):
    """Sends write-back commands to the host as HL7 messages over MLLP."""

    name = "hl7"
    Config = Hl7SourceConfig

    def __init__(self, config: Hl7SourceConfig, context: PluginContext) -> None:
        super().__init__(config, context)
        self.feed = Feed.load(
            config.mapping, context.base_dir, config.timezone, context.region, config.hl7
        )
        settings = config.hl7
        if not settings.outbound_host or settings.outbound_port is None:
            raise ConfigError(
                "hl7.outbound_host / hl7.outbound_port: missing: the host's inbound MLLP "
                "address for write-back (writer hl7)"
            )
        tls = None
        if settings.outbound_tls:
            ca = settings.outbound_tls_ca
            tls = ssl.create_default_context(
                cafile=str(context.base_dir / ca) if ca is not None else None
            )
        self.client = MllpClient(
            settings.outbound_host,
            settings.outbound_port,
            connect_timeout=settings.connect_timeout_seconds,
            ack_timeout=settings.ack_timeout_seconds,
            tls=tls,
        )
        self._store = LazyStore(config.store_url)

    @classmethod
    def options_from(cls, settings: Any) -> dict[str, Any]:
        return options_for(settings)

    def note_sent(self, note: SentNote) -> None:
        """Nothing: an HL7 host's inbound interface takes appointments, not reminder logs."""

    def apply(self, command: Command, context: WriteContext) -> Applied:
        mapping = self.feed.mapping
        template = mapping.writeback.template_for(command.kind.value)
        if template is None:
            raise NotImplementedError(
                f"mapping {self.feed.mapping_file.name} has no writeback.commands."
                f"{command.kind.value} template"
            )
        appointment: Appointment | None = None
        echo: dict[str, str] = {}
        patient: Patient | None = None
        if command.appointment_key:
            with self._store.get().begin("read the HL7 mirror") as connection:
                appointment, echo = held_appointment(connection, command.appointment_key)
            if appointment is None and command.kind != CommandKind.BOOK:
                raise WriteBackRefused(
                    f"appointment {command.appointment_key} is not in the feed "
                    "(deleted, or never sent by the host)"
                )
        if appointment is not None:
            status = mapping.statuses.host_status(appointment.status)
            if status.protected or appointment.status_class in ENDED:
                raise WriteBackRefused(
                    f"appointment {appointment.key} has status {appointment.status!r} "
                    f"({appointment.status_class.value}), which write-back must not change"
                )
            patient = self._patient(appointment.patient_key)
        outbound = build(
            command,
            template,
            mapping.writeback,
            appointment,
            echo,
            patient,
            context.timezone,
            context.now,
        )
        ack = self.client.exchange(outbound.text.encode("utf-8"), outbound.control_id)
        what = f"{template.message} {outbound.control_id} to {self.client.address}"
        if ack.accepted:
            return Applied(
                f"{what}: {ack.code}",
                host_ref=outbound.control_id,
                values={"message": template.message, **template.set},
            )
        if ack.refused:
            raise WriteBackRefused(f"{what}: host answered {ack.code}: {ack.text or 'no reason'}")
        raise HostUnavailable(f"{what}: host answered {ack.code or '?'}: {ack.text or 'retry'}")

    def _patient(self, key: str) -> Patient | None:
        with self._store.get().begin("read the HL7 mirror") as connection:
            found = read_patients(connection, [key])
        return found[0] if found else None

    def close(self) -> None:
        self.client.close()
        self._store.close()

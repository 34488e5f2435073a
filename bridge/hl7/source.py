"""What the HL7 sources share: reading the mirror as a host.

The planner, the dispatcher and ``bridge plan`` work the same whatever feeds them because an HL7
source answers the same questions as the SQL source, from the mirror the listener (or the folder
reader) keeps: ``scan`` returns a ``Sighting`` per mirrored occurrence whose digest is a hash
of the mirrored state, so the cycle diffs and plans exactly as for a SQL host; a deleted
appointment is simply absent (the cycle sees it gone); ``fetch`` before a send reads the mirror
again, so a cancellation that arrived a second ago stops the message.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from pydantic import Field
from sqlalchemy import func, select

from bridge.codec import appointment_from_dict
from bridge.hl7.feed import Feed, LazyStore, options_for
from bridge.hl7.mirror import read_patients
from bridge.hl7.settings import Hl7Settings
from bridge.hl7.state import resource
from bridge.hl7.tables import MessageStatus, appointments, messages, patients, resources
from bridge.model import Appointment, Facility, Patient, Provider, Service
from bridge.plugin import (
    CheckLine,
    PluginConfig,
    PluginContext,
    Reference,
    RejectSink,
    Sighting,
    Source,
)
from bridge.store import Store


class Hl7SourceConfig(PluginConfig):
    mapping: str = "hl7-siu"
    store_url: str
    timezone: str | None = None
    hl7: Hl7Settings = Field(default_factory=Hl7Settings)


class MirrorSource(Source[Hl7SourceConfig]):
    """Base of ``hl7-mllp`` and ``hl7-files``: the host as the mirror holds it."""

    Config = Hl7SourceConfig
    pushes: ClassVar[bool] = True

    def __init__(self, config: Hl7SourceConfig, context: PluginContext) -> None:
        super().__init__(config, context)
        self.feed = Feed.load(
            config.mapping, context.base_dir, config.timezone, context.region, config.hl7
        )
        self.mapping = self.feed.mapping
        self._store = LazyStore(config.store_url)
        self._signature = hashlib.blake2b(
            self.mapping.model_dump_json().encode(), digest_size=16
        ).hexdigest()

    @classmethod
    def options_from(cls, settings: Any) -> dict[str, Any]:
        return options_for(settings)

    @property
    def store(self) -> Store:
        """The bridge's own store, where the mirror lives."""
        return self._store.get()

    def signature(self) -> str:
        return self._signature

    def reference(self) -> Reference:
        statuses = self.mapping.statuses
        codes = statuses.known_codes() | {self.mapping.appointment.default_status}
        found: dict[str, dict[str, Any]] = {"provider": {}, "facility": {}, "service": {}}
        with self.store.begin("read HL7 resources") as connection:
            for row in connection.execute(select(resources.c.kind, resources.c.data)):
                item = resource(row.kind, json.loads(row.data))
                found[row.kind][item.key] = item
        providers: dict[str, Provider] = found["provider"]
        facilities: dict[str, Facility] = found["facility"]
        services: dict[str, Service] = found["service"]
        return Reference(
            statuses={code: statuses.host_status(code) for code in sorted(codes)},
            providers=providers,
            facilities=facilities,
            services=services,
            timezone=self.mapping.timezone,
        )

    def scan(
        self,
        window: tuple[date, date],
        reference: Reference,
        timezone: ZoneInfo,
        reject: RejectSink,
    ) -> list[Sighting]:
        query = select(
            appointments.c.key,
            appointments.c.occurrence,
            appointments.c.patient_key,
            appointments.c.digest,
            appointments.c.data,
        ).where(
            appointments.c.deleted.is_(False),
            appointments.c.data.is_not(None),
            appointments.c.occurrence.between(*window),
        )
        with self.store.begin("read the HL7 mirror") as connection:
            rows = connection.execute(query).all()
        return [
            Sighting(r.key, r.occurrence, r.patient_key, r.digest, _builder(r.data)) for r in rows
        ]

    def patients(self, keys: Iterable[str], reject: RejectSink) -> Iterator[Patient]:
        with self.store.begin("read HL7 patients") as connection:
            found = read_patients(connection, sorted(set(keys)))
        yield from found

    def occurrences_of(
        self, key: str, window: tuple[date, date], reference: Reference, timezone: ZoneInfo
    ) -> list[Appointment]:
        query = select(appointments.c.data).where(
            appointments.c.key == key,
            appointments.c.deleted.is_(False),
            appointments.c.data.is_not(None),
            appointments.c.occurrence.between(*window),
        )
        with self.store.begin("read the HL7 mirror") as connection:
            return [appointment_from_dict(json.loads(r.data)) for r in connection.execute(query)]

    def check(self) -> list[CheckLine]:
        lines = [CheckLine("ok", f"mapping {self.mapping.name} ({self.feed.mapping_file})")]
        with self.store.begin("check the HL7 mirror") as connection:
            held = connection.execute(
                select(func.count())
                .select_from(appointments)
                .where(appointments.c.deleted.is_(False))
            ).scalar_one()
            people = connection.execute(select(func.count()).select_from(patients)).scalar_one()
            last = connection.execute(select(func.max(messages.c.received_at))).scalar()
            quarantined = connection.execute(
                select(func.count())
                .select_from(messages)
                .where(messages.c.status == MessageStatus.QUARANTINED.value)
            ).scalar_one()
            seen = {
                json.loads(r.data)["status"]
                for r in connection.execute(
                    select(appointments.c.data).where(appointments.c.data.is_not(None))
                )
            }
        when = last.strftime("%Y-%m-%d %H:%M UTC") if last else "never"
        lines.append(
            CheckLine("ok", f"mirror: {held} appointments, {people} patients; last message {when}")
        )
        if quarantined:
            lines.append(
                CheckLine(
                    "warning",
                    f"{quarantined} HL7 messages quarantined: bridge hl7 list --status quarantined",
                )
            )
        known = {c.upper() for c in self.mapping.statuses.known_codes()}
        unknown = sorted(c for c in seen if c.upper() not in known)
        if unknown:
            rule = self.mapping.statuses.unknown
            listed = ", ".join(unknown[:10])
            lines.append(
                CheckLine("warning", f"statuses the mapping does not list ({rule}): {listed}")
            )
        return lines + self.check_feed()

    def check_feed(self) -> list[CheckLine]:
        """The feed's own checks (the listener answers, the folder is there)."""
        return []

    def close(self) -> None:
        self._store.close()


def _builder(data: str) -> Any:
    return lambda: appointment_from_dict(json.loads(data))

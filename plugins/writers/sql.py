"""``sql``: write the bridge's results into a SQL host, as the mapping describes.

After a send it does what OpenEMR's own Fax/SMS module does (``cron_updateentry`` and
``cron_InsertNotificationLogEntry`` in ``modules/sms_email_reminder/cron_functions.php``): flag the
appointment row (``pc_sendalertsms`` / ``pc_sendalertemail`` = ``'YES'``, which that module's own
query excludes, so it does not send a second reminder) and add a ``notification_log`` row, so the
host's reports show the bridge's messages beside its own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import SecretStr
from sqlalchemy import MetaData, Table, insert, update

from bridge.errors import ConfigError
from bridge.host_sql import HostDatabase, key_value
from bridge.mapping import mapping_path, read_mapping_data, validate_mapping
from bridge.mapping.sql import SqlMapping
from bridge.plugin import PluginConfig, PluginContext, SentNote, Writer


class SqlWriterConfig(PluginConfig):
    url: str
    mapping: str = "openemr"
    password: SecretStr | None = None


class SqlWriter(Writer[SqlWriterConfig]):
    """Writes to a SQL host described by a ``kind: sql`` mapping."""

    name = "sql"
    Config = SqlWriterConfig

    def __init__(self, config: SqlWriterConfig, context: PluginContext) -> None:
        super().__init__(config, context)
        self.mapping_file = mapping_path(config.mapping, context.base_dir)
        data = read_mapping_data(self.mapping_file)
        if data.get("kind") != "sql":
            raise ConfigError(f"{self.mapping_file}: the sql writer needs a mapping of kind sql")
        self.mapping = validate_mapping(SqlMapping, data, self.mapping_file)
        self.db = HostDatabase(config.url, self.mapping_file)
        self._tables: dict[str, Table] = {}

    def note_sent(self, note: SentNote) -> None:
        after = self.mapping.after_send
        if not after.enabled:
            return
        appointments = self.mapping.appointments
        flags = after.set_on_appointment.get(note.channel, {})
        present = {
            name: value
            for name, value in flags.items()
            if self.db.optional(
                appointments.table, name, f"after_send.set_on_appointment.{note.channel.value}"
            )
        }
        with self.db.begin() as connection:
            if present and not (after.only_non_recurring and note.appointment.recurring):
                host = self._table(appointments.table)
                keys = [key_value(k) for k in note.appointment.host_keys or (note.appointment.key,)]
                connection.execute(
                    update(host).where(host.c[appointments.key].in_(keys)).values(**present)
                )
            if after.log is not None and note.channel in after.log.channels:
                label = after.log.channels[note.channel]
                values = self._log_values(note, label)
                connection.execute(insert(self._table(after.log.table)).values(**values))

    def _table(self, name: str) -> Table:
        """The host table, reflected once: its column types convert dates and times per dialect."""
        if name not in self._tables:
            with self.db.errors():
                self._tables[name] = Table(name, MetaData(), autoload_with=self.db.engine)
        return self._tables[name]

    def _log_values(self, note: SentNote, label: str) -> dict[str, Any]:
        assert self.mapping.after_send.log is not None
        appt, patient, zone = note.appointment, note.patient, note.timezone
        start = appt.start.astimezone(zone)
        end = appt.end.astimezone(zone) if appt.end else start
        vocabulary: dict[str, Any] = {
            "patient_key": key_value(patient.key),
            "appointment_key": key_value(appt.key),
            "channel_label": label,
            "gateway": note.gateway,
            "message": note.text,
            "subject": note.subject or "",
            "sender": note.sender,
            # OpenEMR's own module writes "title fname mname lname|||phone_cell|||email".
            "patient_info": f"{patient.full_name}|||{patient.mobile or ''}|||{patient.email or ''}",
            "date": appt.occurrence,
            "end_date": end.date(),
            "start_time": start.time().replace(microsecond=0),
            "end_time": end.time().replace(microsecond=0),
            "sent_at": _naive(note.sent_at, zone),
            "empty": "",
        }
        return {
            name: vocabulary[role] for name, role in self.mapping.after_send.log.columns.items()
        }

    def close(self) -> None:
        self.db.close()


def _naive(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None, microsecond=0)

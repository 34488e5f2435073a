"""``sql``: write the bridge's results into a SQL host, as the mapping describes.

After a send it does what OpenEMR's own Fax/SMS module does (``cron_updateentry`` and
``cron_InsertNotificationLogEntry`` in ``modules/sms_email_reminder/cron_functions.php``): flag the
appointment row (``pc_sendalertsms`` / ``pc_sendalertemail`` = ``'YES'``, which that module's own
query excludes, so it does not send a second reminder) and add a ``notification_log`` row, so the
host's reports show the bridge's messages beside its own.

Write-back (``apply``), driven by the mapping's ``write_back`` section: confirmed by channel,
cancelled (late cancellations with their own status), call-back requested, consent withdrawn or
given back, staff notes. Each command runs in one host transaction: the visit's rows are locked,
the rules decide (``sql_status``), the row is changed (one occurrence of a series is split off
first, as OpenEMR does), today's appointments get a Flow Board row and some answers a staff note
(``sql_staff``); after the commit the row is read again to verify. Applying a command twice
finds it done and changes nothing. Online bookings (``CommandKind.BOOK``) are inserted by
``sql_booking``, in a transaction holding the provider's day.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import SecretStr
from sqlalchemy import Connection, MetaData, Table, insert, select, update

from bridge.errors import ConfigError, SourceError, WriteBackRefused
from bridge.host_sql import HostDatabase, key_value
from bridge.mapping import mapping_path, read_mapping_data, validate_mapping
from bridge.mapping.sql import SqlMapping
from bridge.model import Appointment, Channel
from bridge.plugin import (
    PluginConfig,
    PluginContext,
    SentNote,
    WriteContext,
    Writer,
)
from bridge.writeback import Applied, Command, CommandKind
from bridge.writeback_expect import EXPECT, differences
from plugins.sources.sql_appointments import AppointmentReader
from plugins.writers.sql_booking import Booker
from plugins.writers.sql_notes import booking_text, note_text
from plugins.writers.sql_occurrence import Locked, Occurrences
from plugins.writers.sql_staff import add_note, track
from plugins.writers.sql_status import Decision, decide, host_status

_APPOINTMENT_KINDS = (CommandKind.CONFIRM, CommandKind.CANCEL, CommandKind.CALLBACK)


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
        reader = AppointmentReader(self.db, self.mapping, context.clock)
        self.occurrences = Occurrences(reader, self.mapping)
        self.booker = Booker(self)

    def note_sent(self, note: SentNote) -> None:
        self.note_sent_many([note])

    def note_sent_many(self, notes: Sequence[SentNote]) -> None:
        """Flags and log rows for a batch of sends in one host transaction: one UPDATE per
        channel for the flags, one multi-row INSERT for the log."""
        after = self.mapping.after_send
        if not after.enabled or not notes:
            return
        appointments = self.mapping.appointments
        flagged: dict[Channel, list[Any]] = {}
        log_rows: list[dict[str, Any]] = []
        for note in notes:
            if not (after.only_non_recurring and note.appointment.recurring):
                keys = note.appointment.host_keys or (note.appointment.key,)
                flagged.setdefault(note.channel, []).extend(key_value(k) for k in keys)
            if after.log is not None and note.channel in after.log.channels:
                log_rows.append(self._log_values(note, after.log.channels[note.channel]))
        with self.db.begin() as connection:
            for channel, rows in flagged.items():
                present = self._flags(channel)
                if present:
                    host = self._table(appointments.table)
                    connection.execute(
                        update(host).where(host.c[appointments.key].in_(rows)).values(**present)
                    )
            if log_rows and after.log is not None:
                connection.execute(insert(self._table(after.log.table)), log_rows)

    def _flags(self, channel: Channel) -> dict[str, Any]:
        """The mapped flag columns for ``channel`` that this host version has."""
        table = self.mapping.appointments.table
        flags = self.mapping.after_send.set_on_appointment.get(channel, {})
        dotted = f"after_send.set_on_appointment.{channel.value}"
        return {
            name: value for name, value in flags.items() if self.db.optional(table, name, dotted)
        }

    def table(self, name: str) -> Table:
        """The host table ``name``, reflected once."""
        return self._table(name)

    def booking_note(
        self,
        connection: Connection,
        command: Command,
        context: WriteContext,
        patient_key: str,
        registered: bool,
        matched: bool,
    ) -> int | None:
        """The staff note about an online booking, on the booked patient's chart."""
        notes = self.mapping.write_back.notes
        if notes is None or "book" not in notes.about:
            return None
        text = booking_text(command, context.timezone, registered=registered, matched=matched)
        return add_note(
            connection,
            self._table(notes.table),
            notes,
            patient_key=patient_key,
            text=text,
            now=_naive(context.now, context.timezone),
        )

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

    # --- write-back ---------------------------------------------------------------------------

    def apply(self, command: Command, context: WriteContext) -> Applied:
        if not self.mapping.write_back.enabled:
            raise NotImplementedError(f"{self.mapping_file}: write_back is not enabled")
        if command.kind in _APPOINTMENT_KINDS:
            return self._answer(command, context)
        if command.kind in (CommandKind.OPT_OUT, CommandKind.OPT_IN):
            return self._consent(command, context)
        if command.kind == CommandKind.BOOK:
            return self.booker.book(command, context)
        if command.kind == CommandKind.NOTE:
            with self.db.begin() as connection:
                note = self._note(connection, command, context, "note", None)
            if note is None:
                raise NotImplementedError(f"{self.mapping_file}: write_back.notes is not set")
            return Applied("note added for staff", host_ref=str(note), values={"note": note})
        raise NotImplementedError(f"the sql writer cannot apply {command.kind.value} yet")

    def _answer(self, command: Command, context: WriteContext) -> Applied:
        """Confirm, cancel or call-back on one occurrence, then read it back."""
        if command.appointment_key is None or command.occurrence is None:
            raise WriteBackRefused(f"a {command.kind.value} must name an appointment occurrence")
        zone, reference = context.timezone, context.reference
        values: dict[str, Any] = {}
        with self.db.begin() as connection:
            locked = self.occurrences.lock(
                connection, command.appointment_key, command.occurrence, reference, zone
            )
            if locked is None:
                raise WriteBackRefused("the appointment is no longer on the host as it was")
            appt = locked.appointment
            if appt.patient_key != command.patient_key:
                raise WriteBackRefused("the appointment now belongs to another patient")
            current = host_status(appt.status, reference.statuses, self.mapping.statuses)
            decision = decide(
                command, appt, current, self.mapping.write_back, self.mapping.statuses, context.now
            )
            written = appt.key
            if decision.status is not None:
                changed = differences(command.payload.get(EXPECT), appt)
                if changed:
                    raise WriteBackRefused(
                        "changed on the host since the patient answered: " + "; ".join(changed)
                    )
                written = self._set_status(connection, locked, decision.status, context, values)
            if decision.note:
                note = self._note(connection, command, context, command.kind.value, appt)
                if note is not None:
                    values["note"] = note
        if decision.status is not None:
            self._read_back(command, written, decision, context)
            values.update(status=decision.status, previous=appt.status)
        return Applied(decision.detail, host_ref=written, values=values)

    def _set_status(
        self,
        connection: Connection,
        locked: Locked,
        status: str,
        context: WriteContext,
        values: dict[str, Any],
    ) -> str:
        """Write ``status`` on the occurrence (splitting it off its series first); today's
        appointments also reach the Flow Board. Returns the key now holding the occurrence."""
        appt, m = locked.appointment, self.mapping.appointments
        host = self._table(m.table)
        status_column = m.columns.status
        if appt.recurring:
            if self.mapping.write_back.series == "refuse":
                raise WriteBackRefused(
                    "one occurrence of a repeating appointment: write_back.series is refuse"
                )
            written = self.occurrences.split(connection, host, locked, {"status": status})
            values["split_from"] = appt.key
        else:
            keys = [key_value(k) for k in appt.host_keys]
            connection.execute(
                update(host).where(host.c[m.key].in_(keys)).values({status_column: status})
            )
            written = appt.key
        board = self.mapping.write_back.flow_board
        local_now = _naive(context.now, context.timezone)
        if board is not None and appt.occurrence == local_now.date():
            head = locked.rows[0]
            start = appt.start.astimezone(context.timezone).time().replace(tzinfo=None)
            values["tracker"] = track(
                connection,
                self._table(board.table),
                self._table(board.element_table),
                board,
                eid=written,
                pid=appt.patient_key,
                day=appt.occurrence,
                start=start,
                status=status,
                room=str(head.get("room") or ""),
                now=local_now,
            )
        return written

    def _note(
        self,
        connection: Connection,
        command: Command,
        context: WriteContext,
        event: str,
        appointment: Appointment | None,
    ) -> int | None:
        """A staff note about ``command`` when the mapping wants one for ``event``."""
        notes = self.mapping.write_back.notes
        if notes is None or event not in notes.about:
            return None
        text = note_text(command, appointment, context.timezone)
        return add_note(
            connection,
            self._table(notes.table),
            notes,
            patient_key=command.patient_key,
            text=text,
            now=_naive(context.now, context.timezone),
        )

    def _read_back(
        self, command: Command, key: str, decision: Decision, context: WriteContext
    ) -> None:
        """The row as the host now holds it must carry the status just written."""
        assert command.occurrence is not None
        with self.db.connect() as connection:
            found = self.occurrences.lock(
                connection, key, command.occurrence, context.reference, context.timezone, lock=False
            )
        if found is None or found.appointment.status != decision.status:
            now = "missing" if found is None else repr(found.appointment.status)
            raise SourceError(f"read back: status {now}, expected {decision.status!r}")

    def _consent(self, command: Command, context: WriteContext) -> Applied:
        """Withdraw (``opt_out``) or give back (``opt_in``) consent on one channel, or on every
        channel when the command names none (STOPALL)."""
        m = self.mapping.patients
        refusing = command.kind == CommandKind.OPT_OUT
        channels = [command.channel] if command.channel else list(m.consent)
        values: dict[str, Any] = {}
        for channel in channels:
            rule = m.consent.get(channel)
            if rule is None:
                continue
            dotted = f"patients.consent.{channel.value}.column"
            if self.db.optional(m.table, rule.column, dotted):
                values[rule.column] = (rule.refused if refusing else rule.given)[0]
        if not values:
            raise NotImplementedError(
                f"{self.mapping_file}: no consent column for {_names(channels)}"
            )
        patients = self._table(m.table)
        key = patients.c[m.key] == key_value(command.patient_key)
        with self.db.begin() as connection:
            if (
                connection.execute(select(patients.c[m.key]).where(key).with_for_update()).first()
                is None
            ):
                raise WriteBackRefused("the patient is no longer on the host")
            connection.execute(update(patients).where(key).values(**values))
            note = self._note(connection, command, context, command.kind.value, None)
        with self.db.connect() as connection:
            row = connection.execute(select(*(patients.c[c] for c in values)).where(key)).first()
        if row is None or dict(row._mapping) != values:
            raise SourceError(f"read back: consent columns hold {row and dict(row._mapping)}")
        shown = ", ".join(f"{column} = {value!r}" for column, value in values.items())
        result = {**values, **({"note": note} if note is not None else {})}
        return Applied(shown, host_ref=command.patient_key, values=result)

    def close(self) -> None:
        self.db.close()


def _naive(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None, microsecond=0)


def _names(channels: list[Channel]) -> str:
    return ", ".join(c.value for c in channels) or "no channel"

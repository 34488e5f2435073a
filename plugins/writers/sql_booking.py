"""Online bookings into a SQL host's appointment book (``CommandKind.BOOK``), as its own
calendar would insert them, without ever giving one slot to two patients.

One host transaction per booking, in this order:

1. the provider's day is locked: a named lock on MySQL / MariaDB (``GET_LOCK``, taken before
   the transaction so its snapshot sees every booking committed before), an advisory
   transaction lock on PostgreSQL, a write lock on SQLite (one writer at a time);
2. a booking already written under the request's reference (a retry after the host committed
   and the bridge did not hear of it) is reported done, not written twice;
3. the request's validity (``valid_until``) is checked: a request queued while the host was
   down does not land hours later;
4. the calendar of that provider and day is read again and the slot re-checked exactly as the
   pages computed it (``bridge.booking.availability.fits``): inside the provider's hours when
   it came from them, overlapping nothing;
5. the patient: the one named, or a new one registered as the host's own registration would
   (``plugins.writers.sql_new_patient``);
6. the row: every mapped appointment column, the ``booking`` section's extra columns and
   constants (OpenEMR: ``pc_multiple`` supplied, ``pc_eventstatus = 1``, the status pending
   ``^`` or booked ``-``, "Booked online on ... (ref ...)" in the comments, then the patient's
   comment as printable text on one line, ``pc_informant``);
7. a staff note when the mapping asks for one;

then the row is read back through the same code that reads appointments for reminders.

What the transaction needs to know about the host's tables is read before the lock (see
``Booker._prepare``), and a transaction the host picks as a deadlock's victim (two new patients
registered at once: ``MAX(pid) ... FOR UPDATE`` then ``INSERT`` take InnoDB gap locks) is run
again, from step 1, a few times.
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from time import sleep
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, and_, insert, select, text, update
from sqlalchemy.exc import TimeoutError as PoolTimeout

from bridge.booking.availability import BRIDGE, HOST, Opening, Slot, fits, host_openings
from bridge.clock import local_to_utc, parse_instant
from bridge.errors import HostUnavailable, SourceError, WriteBackRefused
from bridge.host_sql import key_value
from bridge.mapping.sql_booking import BookingMapping
from bridge.plugin import WriteContext
from bridge.writeback import Applied, Command
from plugins.sources.sql_calendar import CalendarReader
from plugins.sources.sql_history import History
from plugins.writers.sql_new_patient import resolve_patient
from plugins.writers.sql_notes import clean
from plugins.writers.sql_occurrence import NO_REPEAT, _serialize

if TYPE_CHECKING:
    from plugins.writers.sql import SqlWriter

LOCK_SECONDS = 10
GRID_SECONDS = 300  # as bridge.booking.offers reads the host's grid
DEADLOCK_TRIES = 4
# The host chose this transaction as a deadlock's victim (MySQL / MariaDB 1213, PostgreSQL
# 40P01) or a lock wait ran out (1205): run it again, as InnoDB's manual asks.
_DEADLOCK_CODES = {1205, 1213, "40P01", "40001"}
DAY_END = time(17)  # OpenEMR's schedule_end default, when the host keeps none


@dataclass(frozen=True)
class Request:
    """A booking command's payload, checked."""

    slot: Slot
    service_key: str
    status: str
    title: str
    reference: str
    comment: str
    valid_until: datetime | None
    new_patient: dict[str, Any] | None


def parse_request(command: Command, booking: BookingMapping) -> Request:
    """The payload as a ``Request``; a malformed one is refused (it can never apply)."""
    payload = command.payload
    try:
        slot = payload["slot"]
        day = date.fromisoformat(str(slot["date"]))
        start = time.fromisoformat(str(slot["start"]))
        end = time.fromisoformat(str(slot["end"]))
        office = str(slot.get("office") or HOST)
        request = Request(
            slot=Slot(
                day,
                start,
                end,
                str(slot["provider"]),
                str(slot["facility"]) if slot.get("facility") else None,
                office if office in (HOST, BRIDGE) else HOST,
            ),
            service_key=str(payload["service"]),
            status=booking.pending_status if payload.get("approval") else booking.booked_status,
            title=str(payload.get("title") or "")[:150],
            reference=str(payload["reference"]),
            comment=clean(payload.get("comment")),
            valid_until=parse_instant(str(payload["valid_until"]))
            if payload.get("valid_until")
            else None,
            new_patient=payload.get("patient")
            if isinstance(payload.get("patient"), dict)
            else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise WriteBackRefused(f"booking payload unusable: {exc}") from exc
    if not request.reference.isalnum() or end <= start:
        raise WriteBackRefused("booking payload unusable: reference or times")
    return request


class Booker:
    """Writes bookings for one ``SqlWriter``."""

    def __init__(self, writer: SqlWriter) -> None:
        self.writer = writer
        self.db = writer.db
        self.mapping = writer.mapping
        self._calendar: CalendarReader | None = None
        self._preparing = threading.Lock()
        self._grid: tuple[datetime, time] | None = None

    @property
    def booking(self) -> BookingMapping:
        if self.mapping.booking is None:
            raise NotImplementedError(f"{self.writer.mapping_file}: no 'booking' section")
        return self.mapping.booking

    def calendar(self) -> CalendarReader:
        if self._calendar is None:
            columns = self.writer.occurrences.reader.columns()
            self._calendar = CalendarReader(self.db, self.mapping, columns)
        return self._calendar

    def comment_column(self) -> str:
        named = [c for c, role in self.booking.columns.items() if role == "comment"]
        column = named[0] if named else self.mapping.appointments.columns.notes
        if column is None:
            raise NotImplementedError(
                f"{self.writer.mapping_file}: booking needs a comment column (booking.columns) "
                "to mark online bookings"
            )
        return column

    # --- the booking ------------------------------------------------------------------------

    def book(self, command: Command, context: WriteContext) -> Applied:
        request = parse_request(command, self.booking)
        slot = request.slot
        zone = context.timezone
        local_now = context.now.astimezone(zone).replace(tzinfo=None, microsecond=0)
        self._prepare(request, context.now)
        for attempt in range(1, DEADLOCK_TRIES + 1):
            try:
                key, patient_key, detail, values = self._locked_book(
                    command, request, context, local_now
                )
                break
            except SourceError as exc:
                if attempt == DEADLOCK_TRIES or not _deadlock(exc):
                    raise
                sleep(random.uniform(0.01, 0.05) * attempt)
        self._read_back(key, patient_key, request, context)
        values.update(patient=patient_key, status=request.status, date=slot.day.isoformat())
        return Applied(detail, host_ref=key, values=values)

    def _locked_book(
        self, command: Command, request: Request, context: WriteContext, local_now: datetime
    ) -> tuple[str, str, str, dict[str, Any]]:
        """Steps 1 to 7 in one transaction: (key, patient key, detail, values)."""
        slot = request.slot
        values: dict[str, Any] = {}
        with self._locked_day(slot.provider_key, slot.day) as connection:
            found = self._already(connection, request)
            if found is not None:
                return found[0], found[1], "already booked", values
            if request.valid_until is not None and context.now > request.valid_until:
                raise WriteBackRefused("the request expired before the host could take it")
            self._check_slot(connection, request, context)
            patient_key, created, matched = resolve_patient(
                connection, self.writer, command, request.new_patient, local_now
            )
            values.update(new_patient=created, matched_patient=matched)
            key = self._insert(connection, request, patient_key, local_now)
            note = self.writer.booking_note(
                connection, command, context, patient_key, created, matched
            )
            if note is not None:
                values["note"] = note
        return key, patient_key, f"booked with status {request.status!r}", values

    def _prepare(self, request: Request, now: datetime) -> None:
        """Read the host's shape (tables, columns, calendar grid) before taking the lock, one
        booking at a time: each is read once, on connections of its own, and bookings waiting
        for the lock hold the rest of the pool, so a first read inside the lock (or twenty
        bookings reading at once) could wait for the pool until it times out."""
        with self._preparing:
            self.calendar()
            self.writer.table(self.mapping.appointments.table)
            self.writer.table(self.mapping.patients.table)
            notes = self.mapping.write_back.notes
            if notes is not None and "book" in notes.about:
                self.writer.table(notes.table)
            languages = self.mapping.patients.language_list
            if request.new_patient is not None and languages is not None:
                self.writer.table(languages.table)
            if request.slot.office == HOST:
                self._read_grid(now)

    def _read_grid(self, now: datetime) -> None:
        """The host's day end, read again after ``GRID_SECONDS`` as the booking pages read it
        (a clinic that moves its day's end is followed by both alike)."""
        if self._grid is not None and abs((now - self._grid[0]).total_seconds()) < GRID_SECONDS:
            return
        booking = self.booking
        for where in (booking.slot_minutes, booking.day_start, booking.day_end):
            if where is not None:  # read apart: the grid's reader nests connections
                self.db.columns(where.table, "booking")
        columns = self.writer.occurrences.reader.columns()
        found = History(self.db, self.mapping, columns).calendar_settings()
        self._grid = (now, found.day_end or DAY_END)

    def _check_slot(self, connection: Connection, request: Request, context: WriteContext) -> None:
        slot = request.slot
        entries = self.calendar().entries(
            connection, [slot.provider_key], (slot.day, slot.day), context.reference
        )
        if slot.office == HOST:
            day_end = self._grid[1] if self._grid is not None else DAY_END
            mine = [e for e in entries if e.provider_key == slot.provider_key]
            openings = host_openings(mine, request.service_key, day_end)
        else:
            openings = [Opening(slot.start, slot.end, slot.facility_key, BRIDGE)]
        why = fits(entries, openings, slot)
        if why is not None:
            raise WriteBackRefused(why)

    def _already(self, connection: Connection, request: Request) -> tuple[str, str] | None:
        """The row an earlier try of this request wrote, with its patient."""
        columns = self.writer.occurrences.reader.columns()
        host = self.writer.table(self.mapping.appointments.table)
        marker = host.c[self.comment_column()]
        row = connection.execute(
            select(host.c[self.mapping.appointments.key], host.c[columns["patient"]]).where(
                and_(
                    host.c[columns["date"]] == request.slot.day,
                    host.c[columns["provider"]] == request.slot.provider_key,
                    marker.like(f"%(ref {request.reference})%"),
                )
            )
        ).first()
        return (str(row[0]), str(row[1])) if row is not None else None

    def _insert(
        self, connection: Connection, request: Request, patient_key: str, local_now: datetime
    ) -> str:
        m = self.mapping.appointments
        columns = self.writer.occurrences.reader.columns()
        host = self.writer.table(m.table)
        slot = request.slot
        minutes = int(
            (datetime.combine(slot.day, slot.end) - datetime.combine(slot.day, slot.start))
            / timedelta(minutes=1)
        )
        marked = (
            f"Booked online on {local_now:%Y-%m-%d} at {local_now:%H:%M} (ref {request.reference})"
        )
        comment = f"{marked}. {request.comment}".strip() if request.comment else marked
        roles: dict[str, Any] = {
            "patient": patient_key,
            "provider": slot.provider_key,
            "facility": key_value(slot.facility_key) if slot.facility_key else 0,
            "service": key_value(request.service_key),
            "date": slot.day,
            "start_time": slot.start,
            "end_time": slot.end,
            "duration": minutes * 60 if m.duration_unit == "seconds" else minutes,
            "all_day": 0,
            "status": request.status,
            "room": "",
            "notes": comment,
            "end_date": slot.day,
            "recurrence_type": 0,
            "recurrence_spec": _serialize(NO_REPEAT),
            "group": 0,
        }
        row = {columns[role]: value for role, value in roles.items() if role in columns}
        vocabulary: dict[str, Any] = {
            "title": request.title,
            "comment": comment,
            "informant": self.booking.informant,
            "now": local_now,
            "facility": key_value(slot.facility_key) if slot.facility_key else 0,
            "provider": slot.provider_key,
            "empty": "",
        }
        present = set(host.c.keys())
        row.update({c: v for c, v in self.booking.constants.items() if c in present})
        row.update(
            {c: vocabulary[role] for c, role in self.booking.columns.items() if c in present}
        )
        result = connection.execute(insert(host).values(**row))
        inserted = result.inserted_primary_key
        if not inserted or inserted[0] is None:
            raise SourceError("the host returned no key for the new appointment")
        return str(inserted[0])

    def _read_back(
        self, key: str, patient_key: str, request: Request, context: WriteContext
    ) -> None:
        with self.db.connect() as connection:
            found = self.writer.occurrences.lock(
                connection, key, request.slot.day, context.reference, context.timezone, lock=False
            )
        expected = local_to_utc(request.slot.day, request.slot.start, context.timezone)
        if (
            found is None
            or found.appointment.patient_key != patient_key
            or found.appointment.start.astimezone(UTC) != expected
        ):
            raise SourceError(f"read back: booking {key} is not on the host as written")

    # --- locking ---------------------------------------------------------------------------

    @contextmanager
    def _locked_day(self, provider: str, day: date) -> Iterator[Connection]:
        """A write transaction holding the lock on ``provider``'s ``day``."""
        name = (
            "rb-book-"
            + hashlib.blake2b(
                f"{self.db.url.database}|{provider}|{day.isoformat()}".encode(), digest_size=16
            ).hexdigest()
        )
        dialect = self.db.dialect
        with self.db.errors(), _pooled(self.db.engine) as connection:
            if dialect in ("mysql", "mariadb"):
                got = connection.execute(
                    text("SELECT GET_LOCK(:name, :wait)"), {"name": name, "wait": LOCK_SECONDS}
                ).scalar()
                connection.commit()  # the booking's own transaction (and snapshot) starts after
                if got != 1:
                    raise HostUnavailable("the provider's day is locked by another booking")
                try:
                    with connection.begin():
                        yield connection
                finally:
                    connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": name})
                    connection.commit()
                return
            with connection.begin():
                if dialect == "postgresql":
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name}
                    )
                elif dialect == "sqlite":
                    host = self.writer.table(self.mapping.appointments.table)
                    key = host.c[self.mapping.appointments.key]
                    # A write first, so SQLite takes its one write lock before anything is read.
                    connection.execute(update(host).where(key.is_(None)).values({key.name: key}))
                yield connection


@contextmanager
def _pooled(engine: Engine) -> Iterator[Connection]:
    """A connection from the pool; none free in time (bookings queued on the host) means the
    host is busy: the booking waits in the queue like one made while the host is down."""
    try:
        connection = engine.connect()
    except PoolTimeout as exc:
        raise HostUnavailable("no free connection to the host in time") from exc
    with connection:
        yield connection


def _deadlock(exc: SourceError) -> bool:
    """True when the host gave up on the transaction for another's locks (worth one more try)."""
    cause = exc.__cause__
    orig = getattr(cause, "orig", None)
    args = getattr(orig, "args", ())
    code = args[0] if args and isinstance(args[0], int) else getattr(orig, "sqlstate", None)
    return code in _DEADLOCK_CODES

"""Write synthetic rows into OpenEMR tables the way OpenEMR itself writes them.

Used by ``bridge demo`` (an embedded SQLite host), by the integration tests (MariaDB, on the
project's own DDL and on OpenEMR's genuine schema) and by the benchmark. Only synthetic patients.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import phpserialize
from sqlalchemy import Connection, Engine, MetaData, Table, delete, insert, select, update

# OpenEMR's seeded appointment statuses (sql/database.sql): option id, title, seq, check-in flag
# (toggle_setting_1), check-out flag (toggle_setting_2).
APPOINTMENT_STATUSES = (
    ("-", "- None", 5, 0, 0),
    ("*", "* Reminder done", 10, 0, 0),
    ("+", "+ Chart pulled", 15, 0, 0),
    ("x", "x Canceled", 20, 0, 0),
    ("?", "? No show", 25, 0, 0),
    ("@", "@ Arrived", 30, 1, 0),
    ("~", "~ Arrived late", 35, 1, 0),
    ("!", "! Left w/o visit", 40, 0, 1),
    ("#", "# Ins/fin issue", 45, 0, 0),
    ("<", "< In exam room", 50, 0, 0),
    (">", "> Checked out", 55, 0, 1),
    ("$", "$ Coding done", 60, 0, 0),
    ("%", "% Canceled < 24h", 65, 0, 0),
    ("^", "^ Pending", 70, 0, 0),
    ("AVM", "AVM Confirmed", 80, 0, 0),
    ("SMS", "SMS Confirmed", 85, 0, 0),
    ("EMAIL", "EMAIL Confimed", 90, 0, 0),
    ("CALL", "Callback requested", 95, 0, 0),
)

LANGUAGES = (
    ("english", "English", "en"),
    ("italian", "Italian", "it"),
    ("spanish", "Spanish", "es"),
    ("french", "French", "fr"),
)

# OpenEMR's seeded categories that matter here: id, constant, name, duration (s), type.
CATEGORIES = (
    (2, "in_office", "In Office", 0, 1),
    (3, "out_of_office", "Out Of Office", 0, 1),
    (5, "office_visit", "Office Visit", 900, 0),
    (9, "established_patient", "Established Patient", 900, 0),
    (10, "new_patient", "New Patient", 1800, 0),
    (15, "group_therapy", "Group Therapy", 3600, 3),
)

IN_OFFICE = 2
OFFICE_VISIT = 5


@dataclass(frozen=True)
class Repeat:
    """An OpenEMR repeat: ``kind`` is ``pc_recurrtype``; the rest becomes ``pc_recurrspec``."""

    kind: int = 1
    freq: int | str = 1
    freq_type: int = 1
    on_num: int = 1
    on_day: int = 0
    on_freq: int = 0
    exdates: tuple[str, ...] = ()

    def spec(self) -> str:
        """The PHP-serialized ``pc_recurrspec``, with string values as OpenEMR writes them."""
        data: dict[str, str] = {
            "event_repeat_freq": str(self.freq),
            "event_repeat_freq_type": str(self.freq_type),
            "event_repeat_on_num": str(self.on_num),
            "event_repeat_on_day": str(self.on_day),
            "event_repeat_on_freq": str(self.on_freq),
            "exdate": ",".join(self.exdates),
        }
        if self.kind == 2:
            data["rt2_pf_flag"] = "1"
        return str(phpserialize.dumps(data).decode("utf-8"))


NO_REPEAT_SPEC = Repeat(kind=0, freq=0, freq_type=0).spec()


class OpenEmrHost:
    """Synthetic rows for OpenEMR tables reachable through ``engine``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.metadata = MetaData()
        self.metadata.reflect(engine, only=_tables_present(engine))
        self._next_multiple = 1000

    def table(self, name: str) -> Table:
        return self.metadata.tables[name]

    def _columns(self, name: str) -> set[str]:
        return {c.name for c in self.table(name).columns}

    def _insert(self, connection: Connection, name: str, values: dict[str, Any]) -> Any:
        present = self._columns(name)
        row = {k: v for k, v in values.items() if k in present}
        return connection.execute(insert(self.table(name)).values(**row)).inserted_primary_key

    def seed_reference(self, timezone: str | None = None) -> None:
        """Statuses, languages, categories and the site time zone, where not already there."""
        with self.engine.begin() as connection:
            options = self.table("list_options")
            query = select(options.c.list_id, options.c.option_id)
            # OpenEMR's own ids vary in case ('English', 'french'); MySQL compares them blind.
            have = {(lst, option.lower()) for lst, option in connection.execute(query)}
            for code, title, seq, checked_in, checked_out in APPOINTMENT_STATUSES:
                if ("apptstat", code.lower()) not in have:
                    self._insert(
                        connection,
                        "list_options",
                        {
                            "list_id": "apptstat",
                            "option_id": code,
                            "title": title,
                            "seq": seq,
                            "notes": "FEFDCF|0",
                            "toggle_setting_1": checked_in,
                            "toggle_setting_2": checked_out,
                        },
                    )
            for option, title, iso in LANGUAGES:
                if ("language", option.lower()) not in have:
                    self._insert(
                        connection,
                        "list_options",
                        {"list_id": "language", "option_id": option, "title": title, "notes": iso},
                    )
            categories = self.table("openemr_postcalendar_categories")
            known = set(connection.execute(select(categories.c.pc_catid)).scalars())
            for catid, constant, name, duration, cattype in CATEGORIES:
                if catid not in known:
                    self._insert(
                        connection,
                        "openemr_postcalendar_categories",
                        {
                            "pc_catid": catid,
                            "pc_constant_id": constant,
                            "pc_catname": name,
                            "pc_duration": duration,
                            "pc_cattype": cattype,
                            "pc_catcolor": "#ffecb4",
                            "pc_catdesc": name,
                            "pc_recurrspec": NO_REPEAT_SPEC,
                            "aco_spec": "encounters|notes",
                        },
                    )
            if timezone is not None:
                globals_ = self.table("globals")
                connection.execute(delete(globals_).where(globals_.c.gl_name == "gbl_time_zone"))
                self._insert(
                    connection,
                    "globals",
                    {"gl_name": "gbl_time_zone", "gl_index": 0, "gl_value": timezone},
                )

    def add_facility(self, facility_id: int, name: str, **values: Any) -> int:
        with self.engine.begin() as connection:
            self._insert(connection, "facility", {"id": facility_id, "name": name, **values})
        return facility_id

    def add_provider(
        self, user_id: int, fname: str, lname: str, *, facility_id: int = 0, **values: Any
    ) -> int:
        with self.engine.begin() as connection:
            self._insert(
                connection,
                "users",
                {
                    "id": user_id,
                    "username": f"{fname}{lname}".lower(),
                    "fname": fname,
                    "lname": lname,
                    "authorized": 1,
                    "calendar": 1,
                    "active": 1,
                    "facility_id": facility_id,
                    **values,
                },
            )
        return user_id

    def add_patient(self, pid: int, fname: str, lname: str, **values: Any) -> int:
        """A patient; consent and contacts default to "YES" and synthetic numbers."""
        row = {
            "pid": pid,
            "pubpid": f"MRN{pid:05d}",
            "fname": fname,
            "lname": lname,
            "DOB": date(1980, 1, 1) + timedelta(days=pid * 97 % 15000),
            "sex": "Female" if pid % 2 else "Male",
            "language": "english",
            "phone_cell": f"(202) 555-{100 + pid % 100:04d}",
            "email": f"patient{pid}@example.test",
            "hipaa_allowsms": "YES",
            "hipaa_allowemail": "YES",
            "hipaa_voice": "YES",
            **values,
        }
        with self.engine.begin() as connection:
            self._insert(connection, "patient_data", row)
        return pid

    def add_appointment(
        self,
        pid: int | str | None,
        day: date,
        start: time | str,
        *,
        minutes: int = 15,
        provider: int | str = 1,
        facility: int = 1,
        catid: int = OFFICE_VISIT,
        status: str = "-",
        repeat: Repeat | None = None,
        end_date: date | str | None = None,
        multiple: int = 0,
        **values: Any,
    ) -> int:
        """One row of ``openemr_postcalendar_events`` as OpenEMR's calendar inserts it."""
        start_time = start if isinstance(start, time) else time.fromisoformat(start)
        end_time = (datetime.combine(day, start_time) + timedelta(minutes=minutes)).time()
        row = {
            "pc_catid": catid,
            "pc_multiple": multiple,
            "pc_aid": str(provider),
            "pc_pid": "" if pid is None else str(pid),
            "pc_title": "Office Visit",
            "pc_time": datetime.combine(day, time(8, 0)) - timedelta(days=7),
            "pc_hometext": "",
            "pc_informant": "1",
            "pc_eventDate": day,
            "pc_endDate": end_date if repeat else (end_date or day),
            "pc_duration": minutes * 60,
            "pc_recurrtype": repeat.kind if repeat else 0,
            "pc_recurrspec": repeat.spec() if repeat else NO_REPEAT_SPEC,
            "pc_recurrfreq": 0,
            "pc_startTime": start_time,
            "pc_endTime": end_time,
            "pc_alldayevent": 0,
            "pc_apptstatus": status,
            "pc_prefcatid": 0,
            "pc_location": "",
            "pc_eventstatus": 1,
            "pc_sharing": 1,
            "pc_facility": facility,
            "pc_billing_location": facility,
            "pc_room": "",
            **values,
        }
        with self.engine.begin() as connection:
            key = self._insert(connection, "openemr_postcalendar_events", row)
        return int(key[0])

    def add_group_visit(
        self, pid: int, day: date, start: str, providers: Iterable[int], **values: Any
    ) -> list[int]:
        """One visit booked with several providers: one row each, sharing ``pc_multiple``."""
        self._next_multiple += 1
        return [
            self.add_appointment(
                pid, day, start, provider=p, multiple=self._next_multiple, **values
            )
            for p in providers
        ]

    def set_appointment(self, eid: int, **values: Any) -> None:
        events = self.table("openemr_postcalendar_events")
        with self.engine.begin() as connection:
            connection.execute(update(events).where(events.c.pc_eid == eid).values(**values))

    def delete_appointment(self, eid: int) -> None:
        events = self.table("openemr_postcalendar_events")
        with self.engine.begin() as connection:
            connection.execute(delete(events).where(events.c.pc_eid == eid))

    def set_patient(self, pid: int, **values: Any) -> None:
        patients = self.table("patient_data")
        with self.engine.begin() as connection:
            connection.execute(update(patients).where(patients.c.pid == pid).values(**values))

    def rows(self, name: str, **where: Any) -> list[dict[str, Any]]:
        """Rows of a host table (for tests reading back what the bridge wrote)."""
        table = self.table(name)
        query = select(table)
        for column, value in where.items():
            query = query.where(table.c[column] == value)
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]


def _tables_present(engine: Engine) -> list[str]:
    from sqlalchemy import inspect

    from bridge.demo.openemr_tables import TABLES

    present = set(inspect(engine).get_table_names())
    return [name for name in TABLES if name in present]

"""The host's small lookup tables, read every cycle: statuses, providers, places, visit types.

Statuses are read at run time because sites add their own (OpenEMR ``list_options`` with
``list_id='apptstat'``); the mapping decides what each one means, and the host's own check-in /
check-out flags (``toggle_setting_1`` / ``toggle_setting_2``) protect statuses it does not list.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, column, select, table

from bridge.host_sql import HostDatabase
from bridge.mapping.sql import SqlMapping
from bridge.model import Facility, HostStatus, Provider, Service
from bridge.plugin import Reference
from plugins.sources.sql_rows import as_flag, as_text


def read_reference(db: HostDatabase, mapping: SqlMapping) -> Reference:
    """Everything small the planner and templates need from the host, in one connection."""
    with db.connect() as connection:
        return Reference(
            statuses=_statuses(db, connection, mapping),
            providers=_providers(db, connection, mapping),
            facilities=_facilities(db, connection, mapping),
            services=_services(db, connection, mapping),
            timezone=_timezone(db, connection, mapping),
        )


def _rows(
    db: HostDatabase,
    connection: Connection,
    name: str,
    roles: dict[str, str | None],
    dotted: str,
    where: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Select the mapped roles that exist on the host table ``name``."""
    present = {
        role: db.optional(name, col, f"{dotted}.{role}") for role, col in roles.items() if col
    }
    cols = {role: col for role, col in present.items() if col}
    host = table(name, *(column(c) for c in {*cols.values(), *(where or {})}))
    query = select(*(host.c[c].label(role) for role, c in cols.items()))
    for col, value in (where or {}).items():
        query = query.where(host.c[col] == value)
    return [dict(row._mapping) for row in connection.execute(query)]


def _statuses(
    db: HostDatabase, connection: Connection, mapping: SqlMapping
) -> dict[str, HostStatus]:
    statuses = mapping.statuses
    found = {code: statuses.host_status(code) for code in statuses.known_codes()}
    source = statuses.host_list
    if source is None:
        return found
    db.columns(source.table, "statuses.host_list.table")
    rows = _rows(
        db,
        connection,
        source.table,
        {
            "code": source.code,
            "title": source.title,
            "checked_in": source.checked_in_flag,
            "checked_out": source.checked_out_flag,
        },
        "statuses.host_list",
        source.where,
    )
    for row in rows:
        code = as_text(row.get("code"))
        found[code] = statuses.host_status(
            code,
            as_text(row.get("title")),
            checked_in=as_flag(row.get("checked_in")),
            checked_out=as_flag(row.get("checked_out")),
        )
    return found


def _providers(
    db: HostDatabase, connection: Connection, mapping: SqlMapping
) -> dict[str, Provider]:
    m = mapping.providers
    if m is None:
        return {}
    db.columns(m.table, "providers.table")
    roles = m.model_dump(exclude={"table"})
    found = {}
    for row in _rows(db, connection, m.table, roles, "providers"):
        key = as_text(row["key"])
        found[key] = Provider(
            key=key,
            first_name=as_text(row.get("first_name")),
            last_name=as_text(row.get("last_name")),
            title=as_text(row.get("title")),
            phone=as_text(row.get("phone")),
            email=as_text(row.get("email")),
            facility_key=as_text(row.get("facility")) or None,
            username=as_text(row.get("username")),
            active=row.get("active") is None or as_flag(row.get("active")),
        )
    return found


def _facilities(
    db: HostDatabase, connection: Connection, mapping: SqlMapping
) -> dict[str, Facility]:
    m = mapping.facilities
    if m is None:
        return {}
    db.columns(m.table, "facilities.table")
    found = {}
    for row in _rows(db, connection, m.table, m.model_dump(exclude={"table"}), "facilities"):
        key = as_text(row["key"])
        found[key] = Facility(key=key, **{r: as_text(row.get(r)) for r in row if r != "key"})
    return found


def _services(db: HostDatabase, connection: Connection, mapping: SqlMapping) -> dict[str, Service]:
    m = mapping.services
    if m is None:
        return {}
    db.columns(m.table, "services.table")
    roles = {"key": m.key, "name": m.name, "duration": m.duration, "code": m.code, "kind": m.kind}
    patient_kinds = {str(k) for k in m.patient_kinds}
    found = {}
    for row in _rows(db, connection, m.table, roles, "services"):
        key = as_text(row["key"])
        amount = int(row.get("duration") or 0)
        minutes = amount // 60 if m.duration_unit == "seconds" else amount
        kind = as_text(row.get("kind"))
        found[key] = Service(
            key=key,
            name=as_text(row.get("name")),
            duration_minutes=minutes,
            code=as_text(row.get("code")),
            for_patients=not patient_kinds or kind in patient_kinds or "kind" not in row,
        )
    return found


def _timezone(db: HostDatabase, connection: Connection, mapping: SqlMapping) -> str | None:
    m = mapping.timezone
    if m is None:
        return None
    db.columns(m.table, "timezone.table")
    host = table(m.table, column(m.name_column), column(m.value_column))
    value = connection.execute(
        select(host.c[m.value_column]).where(host.c[m.name_column] == m.name)
    ).scalar()
    return as_text(value) or None

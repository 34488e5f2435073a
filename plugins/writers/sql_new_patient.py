"""The patient of an online booking: the one the booking names, or a new patient registered the
way the host's own registration does it.

OpenEMR (``PatientService::insert``): ``pid`` is ``MAX(pid) + 1`` (read here with a lock, so two
registrations at once cannot take the same number), ``pubpid`` the new ``pid``, ``date`` and
``regdate`` now; name, birth date, sex, mobile, email and language in their columns; consent to
SMS and email as the patient ticked it on the form (``YES`` / ``NO``).

Someone who registers as new but is already on file (same first and last name, case-blind, and
birth date) is not registered twice: the booking goes to the existing chart, whose contact
details and consent are left as they are (the staff note says what was typed online), and the
confirmation goes to the contacts on file. The page says the same either way, so nobody learns
whether a chart exists.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, func, insert, select

from bridge.errors import WriteBackRefused
from bridge.host_sql import key_value
from bridge.model import Channel
from bridge.writeback import Command
from plugins.sources.sql_rows import as_text

if TYPE_CHECKING:
    from plugins.writers.sql import SqlWriter


def resolve_patient(
    connection: Connection,
    writer: SqlWriter,
    command: Command,
    details: dict[str, Any] | None,
    local_now: datetime,
) -> tuple[str, bool, bool]:
    """(patient key, registered now, matched an existing chart)."""
    m = writer.mapping.patients
    patients = writer.table(m.table)
    key_column = patients.c[m.key]
    if details is None:
        found = connection.execute(
            select(key_column).where(key_column == key_value(command.patient_key))
        ).first()
        if found is None:
            raise WriteBackRefused("the patient is no longer on the host")
        return command.patient_key, False, False
    new = writer.mapping.booking.new_patients if writer.mapping.booking else None
    if new is None:
        raise NotImplementedError(f"{writer.mapping_file}: booking.new_patients is not set")
    first = str(details.get("first_name") or "").strip()
    last = str(details.get("last_name") or "").strip()
    try:
        born = date.fromisoformat(str(details.get("birth_date")))
    except ValueError:
        born = None
    cols = m.columns
    if not (first and last and born and cols.birth_date):
        raise WriteBackRefused("a new patient needs a first name, a last name and a birth date")
    match = connection.execute(
        select(key_column).where(
            and_(
                func.lower(patients.c[cols.first_name]) == first.lower(),
                func.lower(patients.c[cols.last_name]) == last.lower(),
                patients.c[cols.birth_date] == born,
            )
        )
    ).first()
    if match is not None:
        return as_text(match[0]), False, True
    query = select(func.max(key_column))
    if connection.dialect.name != "sqlite":
        query = query.with_for_update()
    newest = connection.execute(query).scalar()
    key = int(newest or 0) + 1
    present = set(patients.c.keys())
    roles: dict[str, Any] = {
        "first_name": first,
        "last_name": last,
        "birth_date": born,
        "sex": new.sex.get(details.get("sex") or "unknown", ""),
        "mobile": details.get("mobile") or "",
        "email": details.get("email") or "",
        "language": _language_code(connection, writer, str(details.get("language") or "")),
    }
    row: dict[str, Any] = {m.key: key}
    for role, value in roles.items():
        column = getattr(cols, role, None)
        if column and column in present and value not in (None, ""):
            row[column] = value
    consent = details.get("consent") or {}
    for channel in (Channel.SMS, Channel.EMAIL):
        rule = m.consent.get(channel)
        if rule is not None and rule.column in present and channel.value in consent:
            row[rule.column] = (rule.given if consent[channel.value] else rule.refused)[0]
    vocabulary: dict[str, Any] = {"now": local_now, "key": key, "mrn": str(key), "empty": ""}
    row.update({c: v for c, v in new.constants.items() if c in present})
    row.update({c: vocabulary[role] for c, role in new.columns.items() if c in present})
    connection.execute(insert(patients).values(**row))
    return str(key), True, False


def _language_code(connection: Connection, writer: SqlWriter, iso: str) -> str:
    """The host's own language value for an ISO code (OpenEMR: ``list_options`` of the
    ``language`` list whose notes hold the code), else empty."""
    lookup = writer.mapping.patients.language_list
    if lookup is None or not iso:
        return ""
    options = writer.table(lookup.table)
    query = select(options.c[lookup.code]).where(func.lower(options.c[lookup.iso]) == iso.lower())
    for column, value in lookup.where.items():
        query = query.where(options.c[column] == value)
    found = connection.execute(query.limit(1)).scalar()
    return as_text(found)

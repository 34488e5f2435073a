"""Opt-outs and answers as the store keeps them, read by the planner and the dispatcher.

An opt-out belongs to a channel and an *address* (carriers opt a number out, not a patient) and,
when known, to the patient it was sent to: the planner skips that patient's channel, the
dispatcher refuses any send to that address on that channel. ``START`` turns it back on.

An answer (confirm, cancel, call me back) marks its appointment occurrence: the planner and the
dispatcher stop every other attempt for it.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Connection, insert, select, update

from bridge.delivery.tables import answers, opt_outs
from bridge.model import Channel


def opted_out_pairs(
    connection: Connection, patient_keys: set[str] | None = None
) -> set[tuple[str, Channel]]:
    """(patient, channel) pairs opted out, for ``Planner(opted_out=...)``."""
    query = select(opt_outs.c.patient_key, opt_outs.c.channel).where(
        opt_outs.c.opted_out.is_(True), opt_outs.c.patient_key.is_not(None)
    )
    if patient_keys is not None:
        query = query.where(opt_outs.c.patient_key.in_(sorted(patient_keys)))
    return {(key, Channel(channel)) for key, channel in connection.execute(query)}


def is_address_opted_out(connection: Connection, channel: Channel, address: str) -> bool:
    row = connection.execute(
        select(opt_outs.c.opted_out).where(
            opt_outs.c.channel == channel.value, opt_outs.c.address == address
        )
    ).first()
    return bool(row and row[0])


def opted_out_addresses(connection: Connection, channel: Channel, addresses: set[str]) -> set[str]:
    """Which of ``addresses`` are opted out of ``channel``."""
    if not addresses:
        return set()
    rows = connection.execute(
        select(opt_outs.c.address).where(
            opt_outs.c.channel == channel.value,
            opt_outs.c.address.in_(sorted(addresses)),
            opt_outs.c.opted_out.is_(True),
        )
    )
    return {address for (address,) in rows}


def set_opt_out(
    connection: Connection,
    channel: Channel,
    address: str,
    patient_key: str | None,
    opted_out: bool,
    source: str,
    now: datetime,
) -> bool:
    """Record an opt-out (or opt back in) for ``address``; True when it changed anything."""
    row = connection.execute(
        select(opt_outs.c.id, opt_outs.c.opted_out, opt_outs.c.patient_key).where(
            opt_outs.c.channel == channel.value, opt_outs.c.address == address
        )
    ).first()
    if row is None:
        if not opted_out:
            return False
        connection.execute(
            insert(opt_outs).values(
                channel=channel.value,
                address=address,
                patient_key=patient_key,
                opted_out=True,
                source=source,
                changed_at=now,
            )
        )
        return True
    if bool(row.opted_out) == opted_out and (patient_key is None or row.patient_key == patient_key):
        return False
    connection.execute(
        update(opt_outs)
        .where(opt_outs.c.id == row.id)
        .values(
            opted_out=opted_out,
            patient_key=patient_key or row.patient_key,
            source=source,
            changed_at=now,
        )
    )
    return bool(row.opted_out) != opted_out


def record_answer(
    connection: Connection,
    appointment_key: str,
    occurrence: date,
    patient_key: str,
    kind: str,
    channel: Channel | None,
    origin: str,
    now: datetime,
) -> None:
    connection.execute(
        insert(answers).values(
            appointment_key=appointment_key,
            occurrence=occurrence,
            patient_key=patient_key,
            kind=kind,
            channel=channel.value if channel else None,
            origin=origin,
            at=now,
        )
    )


def answered(
    connection: Connection, since: date, idents: set[tuple[str, date]] | None = None
) -> dict[tuple[str, date], str]:
    """Occurrences from ``since`` on that the patient answered, with the first answer in words,
    for ``Planner(answered=...)``."""
    query = (
        select(answers.c.appointment_key, answers.c.occurrence, answers.c.kind, answers.c.channel)
        .where(answers.c.occurrence >= since)
        .order_by(answers.c.id)
    )
    if idents is not None:
        keys = sorted({key for key, _ in idents})
        query = query.where(answers.c.appointment_key.in_(keys))
    found: dict[tuple[str, date], str] = {}
    for key, occurrence, kind, channel in connection.execute(query):
        if idents is not None and (key, occurrence) not in idents:
            continue
        found.setdefault((key, occurrence), f"{kind} by {channel or 'link'}")
    return found

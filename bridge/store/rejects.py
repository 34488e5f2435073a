"""Bad input kept for inspection: a host row that cannot be mapped, a malformed request.

One row per (kind, ref); seeing the same problem again bumps its count instead of piling up
copies. ``ref`` and ``reason`` never hold patient data; ``payload`` may (it stays in the store).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select, update

from bridge.store.engine import upsert
from bridge.store.schema import rejects


@dataclass(frozen=True, slots=True)
class Reject:
    id: int
    kind: str
    ref: str
    reason: str
    count: int
    first_seen: datetime
    last_seen: datetime
    resolved_at: datetime | None


def record_bad_form(
    connection: Connection,
    kind: str,
    form: str,
    field: str,
    problem: str,
    posted: Iterable[tuple[str, object]],
    now: datetime,
    label: str = "",
) -> None:
    """Keep a bad form post for inspection: which form, field and problem, and the length of
    each posted field, never a value (a patient typed them)."""
    shape = {name: len(str(value)) for name, value in posted}
    record_reject(
        connection,
        kind,
        f"{form}:{field}:{problem}",
        f"{label}{form} form: {field} {problem.replace('_', ' ')}",
        now,
        payload=json.dumps({"field_lengths": shape}),
    )


def record_reject(
    connection: Connection,
    kind: str,
    ref: str,
    reason: str,
    now: datetime,
    payload: str | None = None,
) -> None:
    """Keep (or bump) one bad input; a resolved one that comes back is open again."""
    existing = connection.execute(
        select(rejects.c.id, rejects.c.count.label("seen")).where(
            rejects.c.kind == kind, rejects.c.ref == ref
        )
    ).first()
    if existing is None:
        upsert(
            connection,
            rejects,
            [
                {
                    "kind": kind,
                    "ref": ref,
                    "reason": reason,
                    "payload": payload,
                    "first_seen": now,
                    "last_seen": now,
                    "count": 1,
                    "resolved_at": None,
                }
            ],
            keys=("kind", "ref"),
            update=("reason", "payload", "last_seen", "resolved_at"),
        )
        return
    connection.execute(
        update(rejects)
        .where(rejects.c.id == existing.id)
        .values(
            reason=reason,
            payload=payload,
            last_seen=now,
            count=existing.seen + 1,
            resolved_at=None,
        )
    )


def resolve_rejects(connection: Connection, kind: str, open_refs: set[str], now: datetime) -> None:
    """Mark resolved every open reject of ``kind`` whose ref is not in ``open_refs`` any more."""
    rows = connection.execute(
        select(rejects.c.id, rejects.c.ref).where(
            rejects.c.kind == kind, rejects.c.resolved_at.is_(None)
        )
    ).all()
    fixed = [row.id for row in rows if row.ref not in open_refs]
    if fixed:
        connection.execute(update(rejects).where(rejects.c.id.in_(fixed)).values(resolved_at=now))


def open_rejects(connection: Connection, kind: str | None = None) -> list[Reject]:
    """Unresolved rejects, newest first."""
    query = select(rejects).where(rejects.c.resolved_at.is_(None))
    if kind is not None:
        query = query.where(rejects.c.kind == kind)
    rows = connection.execute(query.order_by(rejects.c.last_seen.desc())).all()
    return [
        Reject(
            id=r.id,
            kind=r.kind,
            ref=r.ref,
            reason=r.reason,
            count=r._mapping["count"],
            first_seen=r.first_seen,
            last_seen=r.last_seen,
            resolved_at=r.resolved_at,
        )
        for r in rows
    ]

"""The record of every send attempt (``deliveries``), written before the provider is called.

Exactly-once rests on this order: the attempt row is committed (status ``sending``) before the
request leaves, and updated with the provider's answer after. A crash in between leaves a row
in ``sending`` that the settling pass (``bridge.delivery.settle``) resolves by asking the
provider; no row at all means the request never left.

Statuses: ``sending`` (request may be in flight), ``accepted`` (the provider took it),
``delivered`` / ``failed`` (the provider's final word; ``failed`` also for a permanent refusal),
``not_sent`` (the provider surely did not take it: refused connection, 429, 503), ``unknown``
(an ambiguous time-out, to be settled).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Float, Integer, String, case, cast, func, insert, select, update
from sqlalchemy.engine import Row

from bridge.delivery.tables import call_scripts, deliveries
from bridge.model import Channel
from bridge.plugin import OutboundMessage, SendResult, text_digest
from bridge.store.engine import upsert
from bridge.store.state import get_state, set_state

SENDING = "sending"
ACCEPTED = "accepted"
DELIVERED = "delivered"
FAILED = "failed"
NOT_SENT = "not_sent"
UNKNOWN = "unknown"
IN_FLIGHT = (SENDING, UNKNOWN)
WENT_OUT = (ACCEPTED, DELIVERED, FAILED)
TOKEN_SECRET = "delivery.token_secret"


def attempt_key(dedupe_key: str, send_number: int) -> str:
    """The idempotency key of the ``send_number``-th message of a job: the job's key for the
    first, ``key#2``... for redials and resends (each a new message on purpose)."""
    return dedupe_key if send_number <= 1 else f"{dedupe_key}#{send_number}"


def token_for(idempotency_key: str, secret: str) -> str:
    """The opaque reference that stands for an attempt in URLs and provider references: keyed
    with the store's secret, so nobody can forge one from an appointment's key and date (an
    email's unsubscribe link is authorised by its token alone)."""
    return hashlib.blake2b(
        idempotency_key.encode("utf-8"), key=secret.encode("ascii")[:64], digest_size=12
    ).hexdigest()


def token_secret(connection: Connection, now: datetime) -> str:
    """The store's token secret, made on first use."""
    value = get_state(connection, TOKEN_SECRET)
    if value is None:
        value = secrets.token_hex(32)
        set_state(connection, TOKEN_SECRET, value, now)
    return value


@dataclass(frozen=True)
class Delivery:
    """One attempt as the ledger holds it."""

    id: int
    token: str
    idempotency_key: str
    job_id: int | None
    attempt: int
    channel: Channel
    plugin: str
    event: str
    appointment_key: str | None
    occurrence: date | None
    patient_key: str | None
    recipient: str
    body_digest: str
    testing: bool
    status: str
    provider_ref: str | None
    error_code: str | None
    cost: float | None
    segments: int | None
    started_at: datetime

    @classmethod
    def from_row(cls, row: Row[Any]) -> Delivery:
        m = row._mapping
        return cls(
            id=m["id"],
            token=m["token"],
            idempotency_key=m["idempotency_key"],
            job_id=m["job_id"],
            attempt=m["attempt"],
            channel=Channel(m["channel"]),
            plugin=m["plugin"],
            event=m["event"],
            appointment_key=m["appointment_key"],
            occurrence=m["occurrence"],
            patient_key=m["patient_key"],
            recipient=m["recipient"],
            body_digest=m["body_digest"],
            testing=m["testing"],
            status=m["status"],
            provider_ref=m["provider_ref"],
            error_code=m["error_code"],
            cost=m["cost"],
            segments=m["segments"],
            started_at=m["started_at"],
        )


@dataclass(frozen=True)
class Target:
    """Who an attempt is about (empty for a sample message)."""

    job_id: int | None = None
    event: str = "sample"
    appointment_key: str | None = None
    occurrence: date | None = None
    patient_key: str | None = None


def begin(
    connection: Connection,
    message: OutboundMessage,
    plugin: str,
    target: Target,
    attempt: int,
    now: datetime,
) -> str:
    """Record that ``message`` (its ``token`` set) is about to leave; returns the token.

    A retry of the same key (the provider surely never got the earlier try) reuses its row.
    """
    token = message.token
    if token is None:
        raise ValueError("a message must carry its attempt token before it is recorded")
    values = {
        "status": SENDING,
        "recipient": message.to,
        "body_digest": text_digest(message.text),
        "testing": message.testing,
        "attempt": attempt,
        "started_at": now,
        "updated_at": now,
        "error": None,
        "error_code": None,
    }
    updated = connection.execute(
        update(deliveries)
        .where(deliveries.c.token == token, deliveries.c.status == NOT_SENT)
        .values(**values)
    )
    _keep_script(connection, message, token, now)
    if updated.rowcount:
        return token
    connection.execute(
        insert(deliveries).values(
            token=token,
            idempotency_key=message.idempotency_key,
            job_id=target.job_id,
            channel=message.channel.value,
            plugin=plugin,
            event=target.event,
            appointment_key=target.appointment_key,
            occurrence=target.occurrence,
            patient_key=target.patient_key,
            **values,
        )
    )
    return token


@dataclass(frozen=True)
class Start:
    """One attempt about to leave, for ``begin_many``."""

    message: OutboundMessage
    plugin: str
    target: Target
    attempt: int


def begin_many(connection: Connection, starts: list[Start], now: datetime) -> None:
    """``begin`` for a batch: one query for the retried attempts, one insert for the rest."""
    tokens = [str(s.message.token) for s in starts]
    if any(t == "None" for t in tokens):
        raise ValueError("a message must carry its attempt token before it is recorded")
    reused = set(
        connection.execute(
            select(deliveries.c.token).where(deliveries.c.token.in_(tokens))
        ).scalars()
    )
    fresh = []
    for start in starts:
        if start.message.token in reused:
            begin(connection, start.message, start.plugin, start.target, start.attempt, now)
            continue
        _keep_script(connection, start.message, str(start.message.token), now)
        fresh.append(
            {
                "token": start.message.token,
                "idempotency_key": start.message.idempotency_key,
                "job_id": start.target.job_id,
                "channel": start.message.channel.value,
                "plugin": start.plugin,
                "event": start.target.event,
                "appointment_key": start.target.appointment_key,
                "occurrence": start.target.occurrence,
                "patient_key": start.target.patient_key,
                "status": SENDING,
                "recipient": start.message.to,
                "body_digest": text_digest(start.message.text),
                "testing": start.message.testing,
                "attempt": start.attempt,
                "started_at": now,
                "updated_at": now,
            }
        )
    if fresh:
        connection.execute(insert(deliveries), fresh)


def accepted_many(
    connection: Connection, results: list[tuple[str, SendResult, float]], now: datetime
) -> None:
    """``accepted`` for a batch, in one statement."""
    if not results:
        return
    # One statement with CASE (not executemany): PostgreSQL would pay a round trip per row.
    by_token = {token: (r, cost) for token, r, cost in results}
    token_col = deliveries.c.token
    connection.execute(
        update(deliveries)
        .where(deliveries.c.token.in_(sorted(by_token)))
        .values(
            status=ACCEPTED,
            # CAST: PostgreSQL cannot type a CASE whose branches are all NULL.
            provider_ref=cast(
                case({t: r.provider_ref for t, (r, _) in by_token.items()}, value=token_col),
                String(128),
            ),
            segments=cast(
                case({t: r.segments for t, (r, _) in by_token.items()}, value=token_col), Integer
            ),
            cost=cast(case({t: c for t, (_, c) in by_token.items()}, value=token_col), Float),
            accepted_at=now,
            updated_at=now,
        )
    )


def _keep_script(
    connection: Connection, message: OutboundMessage, token: str, now: datetime
) -> None:
    """A call's script and voicemail, for the provider to fetch once the call is answered."""
    if message.channel != Channel.VOICE:
        return
    upsert(
        connection,
        call_scripts,
        [
            {
                "token": token,
                "script": message.text,
                "voicemail": message.voicemail or message.text,
                "created_at": now,
            }
        ],
        keys=("token",),
        update=("script", "voicemail", "created_at"),
    )


def call_script(connection: Connection, token: str) -> tuple[str, str] | None:
    """(script, voicemail) of a call attempt."""
    row = connection.execute(
        select(call_scripts.c.script, call_scripts.c.voicemail).where(call_scripts.c.token == token)
    ).first()
    return (row[0], row[1]) if row else None


def accepted(
    connection: Connection, token: str, result: SendResult, cost: float, now: datetime
) -> None:
    """The provider took the message."""
    connection.execute(
        update(deliveries)
        .where(deliveries.c.token == token)
        .values(
            status=ACCEPTED,
            provider_ref=result.provider_ref,
            segments=result.segments,
            cost=cost,
            accepted_at=now,
            updated_at=now,
        )
    )


def finish(
    connection: Connection,
    token: str,
    status: str,
    now: datetime,
    error: str | None = None,
    code: str | None = None,
) -> None:
    """Record a final or failed status for the attempt."""
    values: dict[str, Any] = {"status": status, "updated_at": now, "error": error}
    if code is not None:
        values["error_code"] = code
    if status in (DELIVERED, FAILED):
        values["final_at"] = now
    connection.execute(update(deliveries).where(deliveries.c.token == token).values(**values))


def set_ref(connection: Connection, token: str, provider_ref: str, now: datetime) -> None:
    """A callback or a lookup told us the provider's id for an attempt."""
    connection.execute(
        update(deliveries)
        .where(deliveries.c.token == token, deliveries.c.provider_ref.is_(None))
        .values(provider_ref=provider_ref, updated_at=now)
    )


def set_cost(connection: Connection, delivery_id: int, cost: float, now: datetime) -> None:
    """The provider reported the real price (a status callback, a call's duration)."""
    connection.execute(
        update(deliveries).where(deliveries.c.id == delivery_id).values(cost=cost, updated_at=now)
    )


def by_token(connection: Connection, token: str) -> Delivery | None:
    row = connection.execute(select(deliveries).where(deliveries.c.token == token)).first()
    return Delivery.from_row(row) if row else None


def by_ref(connection: Connection, provider_ref: str) -> Delivery | None:
    row = connection.execute(
        select(deliveries).where(deliveries.c.provider_ref == provider_ref)
    ).first()
    return Delivery.from_row(row) if row else None


def latest_for_job(connection: Connection, job_id: int) -> Delivery | None:
    row = connection.execute(
        select(deliveries).where(deliveries.c.job_id == job_id).order_by(deliveries.c.id.desc())
    ).first()
    return Delivery.from_row(row) if row else None


def sends_of_job(connection: Connection, job_id: int) -> int:
    """How many messages of this job reached the provider (the next one is number n + 1)."""
    count = connection.execute(
        select(func.count())
        .select_from(deliveries)
        .where(deliveries.c.job_id == job_id, deliveries.c.status.in_(WENT_OUT))
    ).scalar()
    return int(count or 0)


def sends_of_jobs(connection: Connection, job_ids: list[int]) -> dict[int, int]:
    """``sends_of_job`` for several jobs in one query."""
    if not job_ids:
        return {}
    rows = connection.execute(
        select(deliveries.c.job_id, func.count())
        .where(deliveries.c.job_id.in_(job_ids), deliveries.c.status.in_(WENT_OUT))
        .group_by(deliveries.c.job_id)
    )
    return {job_id: int(count) for job_id, count in rows}


def last_to(
    connection: Connection, channel: Channel, recipient: str, testing: bool | None = None
) -> Delivery | None:
    """The newest message that went out to ``recipient`` on ``channel`` (for replies)."""
    query = select(deliveries).where(
        deliveries.c.channel == channel.value,
        deliveries.c.recipient == recipient,
        deliveries.c.status.in_((*WENT_OUT, *IN_FLIGHT)),
        deliveries.c.appointment_key.is_not(None),
    )
    if testing is not None:
        query = query.where(deliveries.c.testing == testing)
    row = connection.execute(query.order_by(deliveries.c.id.desc())).first()
    return Delivery.from_row(row) if row else None


def known_refs(connection: Connection, channel: Channel, recipient: str) -> frozenset[str]:
    """Provider ids already tied to attempts to ``recipient``: a lookup must not claim them."""
    rows = connection.execute(
        select(deliveries.c.provider_ref).where(
            deliveries.c.channel == channel.value,
            deliveries.c.recipient == recipient,
            deliveries.c.provider_ref.is_not(None),
        )
    )
    return frozenset(ref for (ref,) in rows)

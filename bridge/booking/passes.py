"""Personal booking links ("passes"): a signed token for one purpose (``booking``), whose meaning
lives in the store under a keyed hash of the token, never in the URL.

A pass says which flow it opens (``existing``, ``recall``, ``treatment``, or ``new`` for an
invitation to someone not yet a patient), for which patient, which reasons it may book (a
recall's or a planned treatment's; none listed = every reason of the flow) and with which
provider, until when. A pass for a known patient asks the birth date first (five wrong dates
lock it, as the confirm links do); it books once: after that it shows its booking, within the
session, and nothing else. Tokens are derived from the pass's identity (``recall|17``), so a
retried message shows the same link.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, update

from bridge.booking.settings import Flow
from bridge.booking.tables import booking_passes
from bridge.patient import linkstore, tokens
from bridge.patient.secret import derive, master_key
from bridge.runtime import Runtime
from bridge.store.engine import insert_ignore

PATH = "/b/"


@dataclass(frozen=True)
class Pass:
    """A pass as the store holds it."""

    id: int
    lookup: str
    identity: str
    flow: Flow
    patient_key: str | None
    reasons: list[str] | None
    provider_key: str | None
    language: str
    created_at: datetime
    expires_at: datetime
    tries: int
    locked_at: datetime | None
    session: str | None
    session_until: datetime | None
    used_at: datetime | None
    revoked_at: datetime | None
    booking_id: int | None
    recall_id: int | None
    invitation_id: int | None

    def is_open(self, now: datetime) -> bool:
        """Not expired, locked or revoked (a used pass stays open for its session's result)."""
        return self.locked_at is None and self.revoked_at is None and now < self.expires_at

    def has_session(self, session_hash: str | None, now: datetime) -> bool:
        return (
            session_hash is not None
            and self.session == session_hash
            and self.session_until is not None
            and now < self.session_until
        )

    @property
    def needs_birth_date(self) -> bool:
        """A pass for a known patient opens only for that patient."""
        return self.patient_key is not None


class PassKeys:
    """Token, lookup and session keys, derived from the link key (``bridge.patient.secret``)."""

    def __init__(self, runtime: Runtime) -> None:
        master = master_key(runtime)
        self.tokens = tokens.Tokens(
            derive(master, "token-id"), derive(master, "token-mac"), derive(master, "lookup")
        )
        self.csrf = derive(master, "csrf")
        self._session = derive(master, "booking-session")
        self.base = runtime.settings.web.base_url.rstrip("/")

    def make(self, identity: str) -> tuple[str, str]:
        """(token, lookup) for a pass identity such as ``recall|17``."""
        return self.tokens.make(tokens.BOOKING, identity)

    def check(self, token: str) -> str | None:
        return self.tokens.check(tokens.BOOKING, token)

    def url(self, token: str) -> str:
        return f"{self.base}{PATH}{token}"

    def url_of(self, link: Pass) -> str:
        """The link of a stored pass (its token is derived again from its identity)."""
        return self.url(self.make(link.identity)[0])

    def session_hash(self, session: str | None) -> str | None:
        if not session or len(session) > 64:
            return None
        return hmac.new(self._session, session.encode(), hashlib.sha256).hexdigest()[:32]

    @staticmethod
    def new_session() -> str:
        return secrets.token_urlsafe(24)


def issue(
    connection: Connection,
    keys: PassKeys,
    identity: str,
    *,
    flow: Flow,
    language: str,
    now: datetime,
    days: int,
    patient_key: str | None = None,
    reasons: list[str] | None = None,
    provider_key: str | None = None,
    recall_id: int | None = None,
    invitation_id: int | None = None,
) -> tuple[str, Pass]:
    """Store the pass for ``identity`` (once; a second call returns the same) and its token."""
    token, lookup = keys.make(identity)
    insert_ignore(
        connection,
        booking_passes,
        {
            "lookup": lookup,
            "identity": identity,
            "flow": flow,
            "patient_key": patient_key,
            "reasons": json.dumps(reasons) if reasons is not None else None,
            "provider_key": provider_key,
            "language": language,
            "created_at": now,
            "expires_at": now + timedelta(days=days),
            "tries": 0,
            "recall_id": recall_id,
            "invitation_id": invitation_id,
        },
        keys=("lookup",),
    )
    found = find(connection, lookup)
    assert found is not None
    return token, found


def find(connection: Connection, lookup: str) -> Pass | None:
    row = connection.execute(
        select(booking_passes).where(booking_passes.c.lookup == lookup)
    ).first()
    return _from_row(dict(row._mapping)) if row is not None else None


def get(connection: Connection, pass_id: int) -> Pass | None:
    row = connection.execute(select(booking_passes).where(booking_passes.c.id == pass_id)).first()
    return _from_row(dict(row._mapping)) if row is not None else None


def _from_row(values: dict[str, Any]) -> Pass:
    raw = values.pop("reasons")
    values["reasons"] = json.loads(raw) if raw else None
    return Pass(**values)


def record_wrong_birth_date(
    connection: Connection, pass_id: int, now: datetime, limit: int
) -> None:
    """Count one wrong birth date; the ``limit``-th locks the pass (as a confirm link)."""
    linkstore.record_wrong_answer(connection, pass_id, now, limit, booking_passes)


def start_session(connection: Connection, pass_id: int, session_hash: str, until: datetime) -> None:
    linkstore.start_session(connection, pass_id, session_hash, until, booking_passes)


def claim(connection: Connection, pass_id: int, now: datetime) -> bool:
    """Take the pass for one booking; False when another request took it first."""
    result = connection.execute(
        update(booking_passes)
        .where(booking_passes.c.id == pass_id, booking_passes.c.used_at.is_(None))
        .values(used_at=now)
    )
    return bool(result.rowcount == 1)


def release(connection: Connection, pass_id: int) -> None:
    """The booking did not happen (the slot was taken): the pass may book again."""
    connection.execute(
        update(booking_passes)
        .where(booking_passes.c.id == pass_id)
        .values(used_at=None, booking_id=None)
    )


def attach_booking(connection: Connection, pass_id: int, booking_id: int) -> None:
    connection.execute(
        update(booking_passes).where(booking_passes.c.id == pass_id).values(booking_id=booking_id)
    )


def revoke(connection: Connection, pass_id: int, now: datetime) -> None:
    connection.execute(
        update(booking_passes)
        .where(booking_passes.c.id == pass_id, booking_passes.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )

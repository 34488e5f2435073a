"""Who may use a personal booking link now, without HTTP.

Every way a link can be unusable ends in the same ``None`` from ``open``: not a token, tampered,
made for another purpose (a confirm link), unknown, expired, locked after wrong birth dates,
revoked, its invitation revoked or expired or its address on file changed, its recall closed,
or used and out of its session. The page then shows the same 404 for all of them, so nobody
learns whether a patient, an invitation or a recall exists.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select, update

from bridge.booking import passes
from bridge.booking.invitations import ENROLLED, INVITED, revoke
from bridge.booking.passes import Pass, PassKeys
from bridge.booking.tables import invitations, recalls
from bridge.model import Patient
from bridge.runtime import Runtime


class Access:
    """Opening and verifying personal booking links for one runtime."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.keys = PassKeys(runtime)

    def open(self, token: str, session: str | None) -> Pass | None:
        lookup = self.keys.check(token)
        with self.runtime.store.begin("read a booking link") as connection:
            # Looked up even for a bad token, so a tampered link costs what a real one does.
            link = passes.find(connection, lookup or "-")
        now = self.runtime.clock.now()
        if lookup is None or link is None or not link.is_open(now):
            return None
        verified = link.has_session(self.keys.session_hash(session), now)
        if link.used_at is not None and not verified:
            return None
        if link.used_at is None and not self._still_valid(link):
            return None
        return link

    def _still_valid(self, link: Pass) -> bool:
        """What the link stands for is still there: an open recall, an open invitation whose
        address on file did not change."""
        with self.runtime.store.begin("read what a link is for") as connection:
            if link.recall_id is not None:
                status = connection.execute(
                    select(recalls.c.status).where(recalls.c.id == link.recall_id)
                ).scalar()
                if status != "open":
                    return False
            if link.invitation_id is None:
                return True
            row = connection.execute(
                select(invitations.c.status, invitations.c.host_email).where(
                    invitations.c.id == link.invitation_id
                )
            ).first()
        if row is None or row.status not in (INVITED, ENROLLED):
            return False
        if link.patient_key is None:
            return True
        patient = self.patient(link)
        if patient is None or (patient.email or None) != (row.host_email or None):
            with self.runtime.store.begin("revoke an invitation") as connection:
                revoke(
                    connection, link.invitation_id, self.runtime.clock.now(), "the email changed"
                )
            return False
        return True

    def verified(self, link: Pass, session: str | None) -> bool:
        if not link.needs_birth_date:
            return True
        return link.has_session(self.keys.session_hash(session), self.runtime.clock.now())

    def patient(self, link: Pass) -> Patient | None:
        if link.patient_key is None:
            return None
        found = list(self.runtime.source.patients([link.patient_key], lambda _: None))
        return found[0] if found else None

    def check_birth_date(self, link: Pass, born: date) -> str | None:
        """A new session when ``born`` is the patient's birth date (the invitation, if any, is
        then *enrolled*); None, with one more wrong try counted, when it is not."""
        patient = self.patient(link)
        settings = self.runtime.settings.patient
        now = self.runtime.clock.now()
        if patient is None or patient.birth_date is None or patient.birth_date != born:
            with self.runtime.store.begin("count a wrong birth date") as connection:
                passes.record_wrong_birth_date(
                    connection, link.id, now, settings.max_birth_date_tries
                )
            return None
        session = self.keys.new_session()
        hashed = self.keys.session_hash(session)
        assert hashed is not None
        with self.runtime.store.begin("start a booking session") as connection:
            passes.start_session(
                connection, link.id, hashed, now + timedelta(minutes=settings.session_minutes)
            )
            if link.invitation_id is not None:
                connection.execute(
                    update(invitations)
                    .where(invitations.c.id == link.invitation_id, invitations.c.status == INVITED)
                    .values(status=ENROLLED, enrolled_at=now, updated_at=now)
                )
        return session

    def tries_left(self, link: Pass) -> int:
        with self.runtime.store.begin("read a booking link") as connection:
            fresh = passes.get(connection, link.id)
        limit = self.runtime.settings.patient.max_birth_date_tries
        return max(limit - (fresh.tries if fresh is not None else limit), 0)

"""The steps behind the patient pages, without HTTP: open a link, check the birth date, read the
appointment as the host has it now, take an answer.

Every way a link can be unusable (not a token, tampered, made for another purpose, unknown,
expired, locked after wrong birth dates, already answered and out of its session) ends in the
same ``None`` from ``open``, so the page cannot tell anyone whether an appointment exists.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from babel import Locale
from babel.dates import format_date

from bridge.clock import local_date
from bridge.model import Appointment, Patient, StatusClass
from bridge.patient import linkstore, tokens
from bridge.patient.linkstore import Link
from bridge.patient.secret import derive, master_key
from bridge.patient.settings import PatientSettings
from bridge.plugin import Reference
from bridge.runtime import Runtime
from bridge.settings import TemplateLimits
from bridge.store.writebacks import for_appointment
from bridge.template_context import (
    MessageContext,
    build_context,
    format_dates,
    format_locale,
)
from bridge.writeback import Outcome
from bridge.writeback_expect import expectation

REFERENCE_SECONDS = 30
# Pages show names and places in full: the SMS limits do not apply on a screen.
PAGE_LIMITS = TemplateLimits(name=200, datetime=200, doctor=200, office=200)


def visit_digest(appointment: Appointment) -> str:
    """When, with whom and where: what makes "your appointment changed" (not its status)."""
    parts = expectation(appointment)
    text = "|".join((parts["start"], parts["providers"], parts["facility"]))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def answer_digest(appointment: Appointment) -> str:
    """The appointment as a page showed it, status included (sent back with an answer)."""
    text = "|".join(f"{k}={v}" for k, v in sorted(expectation(appointment).items()))
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


@dataclass
class Visit:
    """The appointment behind a link as the host has it now, and what the patient may do.

    ``state``: ``open`` (may answer), ``cancelled``, ``closed`` (checked in, no-show...),
    ``past`` or ``gone`` (no longer on the host as it was)."""

    state: str
    appointment: Appointment | None = None
    changed: bool = False
    can_confirm: bool = False
    confirm_from: date | None = None
    details: dict[str, Any] = field(default_factory=dict)
    version: str = ""
    sent: dict[str, str] | None = None


class PatientFlow:
    """The link's life for one runtime (one per web app)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings: PatientSettings = runtime.settings.patient
        master = master_key(runtime)
        self.tokens = tokens.Tokens(
            derive(master, "token-id"), derive(master, "token-mac"), derive(master, "lookup")
        )
        self.csrf_key = derive(master, "csrf")
        self._session_key = derive(master, "session")
        self._reference: tuple[datetime, Reference] | None = None

    # --- the link -----------------------------------------------------------------------------

    def open(self, token: str, session: str | None = None) -> Link | None:
        """The link behind ``token`` if it may be used now; None for every other case."""
        lookup = self.tokens.check(tokens.APPOINTMENT, token)
        with self.runtime.store.begin("read a link") as connection:
            # Looked up even for a bad token, so a tampered link costs the same as a real one.
            link = linkstore.find_link(connection, lookup or "-")
        now = self.runtime.clock.now()
        if lookup is None or link is None or not link.is_open(now):
            return None
        if link.used_at is not None and not link.has_session(self.session_hash(session), now):
            return None
        return link

    def session_hash(self, session: str | None) -> str | None:
        if not session or len(session) > 64:
            return None
        return hmac.new(self._session_key, session.encode(), hashlib.sha256).hexdigest()[:32]

    def verified(self, link: Link, session: str | None) -> bool:
        return link.has_session(self.session_hash(session), self.runtime.clock.now())

    def check_birth_date(self, link: Link, born: date) -> str | None:
        """A new session id when ``born`` is the patient's birth date; None (and one more
        wrong try counted) when it is not. A patient without a birth date never matches."""
        patient = self.patient(link)
        now = self.runtime.clock.now()
        if patient is None or patient.birth_date is None or patient.birth_date != born:
            with self.runtime.store.begin("count a wrong birth date") as connection:
                linkstore.record_wrong_answer(
                    connection, link.id, now, self.settings.max_birth_date_tries
                )
            return None
        session = secrets.token_urlsafe(24)
        until = now + timedelta(minutes=self.settings.session_minutes)
        with self.runtime.store.begin("start a patient session") as connection:
            hashed = self.session_hash(session)
            assert hashed is not None
            linkstore.start_session(connection, link.id, hashed, until)
        return session

    def tries_left(self, link: Link) -> int:
        with self.runtime.store.begin("read a link") as connection:
            fresh = linkstore.find_link(connection, link.lookup)
        tries = fresh.tries if fresh is not None else self.settings.max_birth_date_tries
        return max(self.settings.max_birth_date_tries - tries, 0)

    # --- the host -----------------------------------------------------------------------------

    def reference(self) -> Reference:
        """The host's reference data, read at most every 30 seconds."""
        now = self.runtime.clock.now()
        if (
            self._reference is None
            or (now - self._reference[0]).total_seconds() > REFERENCE_SECONDS
        ):
            self._reference = (now, self.runtime.source.reference())
        return self._reference[1]

    def patient(self, link: Link) -> Patient | None:
        found = list(self.runtime.source.patients([link.patient_key], lambda _: None))
        return found[0] if found else None

    def appointment(self, link: Link) -> Appointment | None:
        """The occurrence as the host has it now, following a split made by an earlier answer
        (one occurrence of a series becomes a row of its own)."""
        reference = self.reference()
        zone = self.runtime.zone(reference)
        source = self.runtime.source
        found = source.fetch(link.appointment_key, link.occurrence, reference, zone)
        if found is None:
            with self.runtime.store.begin("read write-backs") as connection:
                done = for_appointment(connection, link.appointment_key, link.occurrence)
            for item in reversed(done):
                values = (item.result or {}).get("values", {})
                moved_to = (item.result or {}).get("host_ref")
                if item.status == Outcome.DONE and values.get("split_from") and moved_to:
                    found = source.fetch(str(moved_to), link.occurrence, reference, zone)
                    break
        if found is None or found.patient_key != link.patient_key:
            return None
        return found

    def visit(self, link: Link, patient: Patient | None = None) -> Visit:
        """What the appointment page shows now."""
        appt = self.appointment(link)
        if appt is None:
            return Visit("gone")
        reference = self.reference()
        zone = self.runtime.zone(reference)
        now = self.runtime.clock.now()
        status = reference.statuses.get(appt.status)
        state = "open"
        if appt.status_class == StatusClass.CANCELLED:
            state = "cancelled"
        elif appt.status_class in (
            StatusClass.NO_SHOW,
            StatusClass.CHECKED_IN,
            StatusClass.CHECKED_OUT,
        ) or (status is not None and status.protected):
            state = "closed"
        elif appt.start <= now:
            state = "past"
        days = self.runtime.settings.reminders.portal_confirmation_days
        local_day = local_date(appt.start, zone)
        confirm_from = local_day - timedelta(days=days)
        who = patient or self.patient(link) or Patient(key=appt.patient_key)
        locale = format_locale(link.language, who, self.runtime.settings.clinic)
        changed = visit_digest(appt) != link.sent_digest
        sent = None
        if changed:
            was = link.sent_start.astimezone(zone)
            sent = {
                "date": format_date(was, "full", locale=locale),
                "time": format_dates(was, None, appt.all_day, locale)["time"],
            }
        return Visit(
            state=state,
            appointment=appt,
            changed=changed,
            can_confirm=local_date(now, zone) >= confirm_from,
            confirm_from=confirm_from,
            details={
                **self._details(appt, who, reference, locale),
                "when": format_date(appt.start.astimezone(zone), "full", locale=locale),
                "confirm_from": format_date(confirm_from, "full", locale=locale),
            },
            version=answer_digest(appt),
            sent=sent,
        )

    def _details(
        self, appt: Appointment, who: Patient, reference: Reference, locale: Locale
    ) -> dict[str, Any]:
        """Clinic, provider, appointment and location as the page shows them."""
        context = MessageContext(
            appointment=appt,
            patient=who,
            provider=reference.providers.get(appt.provider_keys[0]) if appt.provider_keys else None,
            facility=reference.facilities.get(appt.facility_key or ""),
            service=reference.services.get(appt.service_key or ""),
            clinic=self.runtime.settings.clinic,
            timezone=self.runtime.zone(reference),
        )
        return build_context(context, PAGE_LIMITS, locale)

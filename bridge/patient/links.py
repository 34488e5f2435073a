"""The confirm / cancel link a reminder carries (entry point ``bridge.links``).

The dispatcher asks for a link each time it renders a message. SMS and email get one; a call
does not (nobody can tap a link in a voice call). No link either when the patient has no birth
date on file (the page could never let them in) or when the appointment starts too soon for a
link to be of use; the templates then fall back to "call us".

The link expires at the appointment's start, and at most ``patient.link_max_days`` after it was
made.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bridge.model import Appointment, Channel, Patient
from bridge.patient import linkstore, tokens
from bridge.patient.flow import PatientFlow, visit_digest
from bridge.patient.views import choose_language, languages
from bridge.runtime import LinkMaker, Runtime
from bridge.template import locale_for

PATH = "/a/"


def make(runtime: Runtime) -> LinkMaker:
    """The link maker for ``runtime`` (keys are read from the store once, here)."""
    settings = runtime.settings.patient
    if not settings.links:
        return lambda job, appointment, patient: None
    flow = PatientFlow(runtime)
    base = runtime.settings.web.base_url.rstrip("/")

    def link_for(job: Any, appointment: Appointment, patient: Patient) -> str | None:
        channel = getattr(job, "channel", None)
        if channel == Channel.VOICE or patient.birth_date is None:
            return None
        now = runtime.clock.now()
        expires = min(now + timedelta(days=settings.link_max_days), appointment.start)
        if expires <= now:
            return None
        identity = getattr(job, "dedupe_key", None) or "|".join(
            (appointment.key, appointment.occurrence.isoformat(), patient.key, str(channel))
        )
        token, lookup = flow.tokens.make(tokens.APPOINTMENT, identity)
        language = choose_language(
            locale_for(patient, runtime.settings.clinic, languages()),
            runtime.settings.clinic.language,
        )
        with runtime.store.begin("record a link") as connection:
            linkstore.add_link(
                connection,
                {
                    "lookup": lookup,
                    "purpose": tokens.APPOINTMENT,
                    "job_id": getattr(job, "id", None),
                    "appointment_key": appointment.key,
                    "occurrence": appointment.occurrence,
                    "patient_key": patient.key,
                    "channel": Channel(channel).value if channel else None,
                    "language": language,
                    "sent_start": appointment.start,
                    "sent_digest": visit_digest(appointment),
                    "created_at": now,
                    "expires_at": expires,
                },
            )
        return f"{base}{PATH}{token}"

    return link_for

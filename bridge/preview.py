"""``bridge preview``: the text of a message for one real appointment, with its length and SMS
segments, exactly as the dispatcher would render it (testing marker included)."""

from __future__ import annotations

from datetime import date, timedelta

from bridge.clock import Clock, local_date
from bridge.errors import SourceError
from bridge.model import Channel
from bridge.plugin import Reference
from bridge.runtime import Runtime
from bridge.settings import Settings
from bridge.template import MessageContext

LOOK_AHEAD = timedelta(days=366)


def run_preview(
    settings: Settings,
    clock: Clock,
    key: str,
    occurrence: date | None,
    channels: list[Channel],
    event: str,
) -> int:
    runtime = Runtime.build(settings, clock)
    try:
        reference = runtime.source.reference()
        zone = runtime.zone(reference)
        today = local_date(clock.now(), zone)
        window = (occurrence, occurrence) if occurrence else (today, today + LOOK_AHEAD)
        found = runtime.source.occurrences_of(key, window, reference, zone)
        if not found:
            raise SourceError(
                f"appointment {key}: no occurrence on the host in {window[0]}..{window[1]}"
            )
        appt = found[0]
        patients = list(runtime.source.patients([appt.patient_key], lambda _: None))
        if not patients:
            raise SourceError(
                f"appointment {key}: patient {appt.patient_key} not found on the host"
            )
        context = MessageContext(
            appointment=appt,
            patient=patients[0],
            provider=_first(reference, appt.provider_keys),
            facility=reference.facilities.get(appt.facility_key or ""),
            service=reference.services.get(appt.service_key or ""),
            clinic=settings.clinic,
            timezone=zone,
            testing=settings.mode == "testing",
        )
        start = appt.start.astimezone(zone)
        print(f"appointment {appt.key} on {start:%Y-%m-%d %H:%M} ({zone}), status {appt.status!r}")
        for channel in channels:
            rendered = runtime.templates.render(event, channel, context)
            print(f"\n--- {channel.value} ({rendered.locale}) ---")
            if rendered.subject:
                print(f"Subject: {rendered.subject}\n")
            print(rendered.text)
            if rendered.segments is not None:
                s = rendered.segments
                print(
                    f"[{s.units} characters, {s.encoding}, {s.segments} segment"
                    f"{'s' if s.segments != 1 else ''} of {s.per_segment}]"
                )
            else:
                print(f"[{rendered.chars} characters]")
            for warning in rendered.warnings:
                print(f"warning: {warning}")
            if channel == Channel.VOICE:
                voicemail = runtime.templates.render(event, channel, context, voicemail=True)
                print(f"\nvoicemail: {voicemail.text}")
        return 0
    finally:
        runtime.close()


def _first(reference: Reference, keys: tuple[str, ...]):  # type: ignore[no-untyped-def]
    return reference.providers.get(keys[0]) if keys else None

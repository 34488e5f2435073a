"""Apply a ``kind: hl7`` mapping to one parsed message: its meaning, or why it is refused.

Checks here are the business checks the standard's parsers do not do (both common Python parsers
accept a message with no SCH): the appointment key, a parseable start, a patient key. Anything
else is read tolerantly: an unknown status is kept and classified by the mapping's ``unknown``
rule, an unusable phone is recorded as a bad contact, a bad birth date is left out.
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from bridge.clock import local_date
from bridge.hl7.fields import KEY_LIMIT, applicable, every, first_value, rejected
from bridge.hl7.header import Header
from bridge.hl7.hl7time import Hl7Time, parse_dtm
from bridge.hl7.parse import FieldRef, Message, Separators
from bridge.hl7.patient import patient_key, read_patient
from bridge.hl7.problem import DATA_TYPE, REQUIRED_FIELD
from bridge.hl7.state import ENDING, Mapped, Resource
from bridge.mapping.hl7 import Hl7Mapping
from bridge.model import Appointment, Facility, Provider, Service, StatusClass

UNITS = {"S": 1 / 60, "SEC": 1 / 60, "M": 1, "MIN": 1, "H": 60, "HR": 60, "D": 1440}


class Mapper:
    """Reads messages with one mapping, in one clinic time zone and phone region."""

    def __init__(self, mapping: Hl7Mapping, zone: ZoneInfo, region: str) -> None:
        self.mapping = mapping
        self.zone = zone
        self.region = region

    def check(self, message: Message, header: Header) -> tuple[str, str]:
        """The business checks alone (the listener runs them before the ACK): ``Rejected``
        when the message cannot be used, else its meaning and appointment key. ``map`` makes
        the same checks; everything else it reads is taken tolerantly."""
        meaning = self.mapping.events[header.kind]
        if meaning == "ignore":
            return meaning, ""
        key = self._key(message, header)[0]
        patient_key(message, header.version, self.mapping.patient.key)
        self._start(message, header, meaning)
        return meaning, key

    def map(self, message: Message, header: Header) -> Mapped:
        """The message's meaning; ``Rejected`` with the problem when it cannot be used."""
        meaning = self.mapping.events[header.kind]
        if meaning == "ignore":
            return Mapped(meaning)
        key, key_ref = self._key(message, header)
        status, status_class, eligible = self._status(message, header, meaning)
        patient, patient_id = read_patient(
            message, header.version, self.mapping.patient, self.region
        )
        resources: list[tuple[str, Resource]] = []
        appointment = self._appointment(
            message, header, key, patient.key, meaning, (status, status_class, eligible), resources
        )
        return Mapped(
            meaning=meaning,
            key=key,
            appointment=appointment,
            patient=patient,
            status=status,
            status_class=status_class,
            resources=resources,
            echo=self._echo(message, header, key_ref, patient_id),
        )

    # --- appointment ------------------------------------------------------------------------

    def _key(self, message: Message, header: Header) -> tuple[str, FieldRef | None]:
        roles = self.mapping.appointment
        key, key_ref = first_value(message, roles.key, header.version)
        if not key:
            wanted = ", ".join(c.field for c in roles.key)
            raise rejected(REQUIRED_FIELD, roles.key[0].ref, f"no appointment key (tried {wanted})")
        if len(key) > KEY_LIMIT:
            raise rejected(DATA_TYPE, key_ref, f"appointment key longer than {KEY_LIMIT}")
        return key, key_ref

    def _start(self, message: Message, header: Header, meaning: str) -> Hl7Time | None:
        """The start; None for an ending event that sends no timing (the mirror's stays)."""
        roles = self.mapping.appointment
        text, ref = first_value(message, roles.start, header.version)
        if not text:
            if meaning in ENDING:
                return None
            wanted = ", ".join(c.field for c in roles.start)
            raise rejected(REQUIRED_FIELD, roles.start[0].ref, f"no start time (tried {wanted})")
        parsed = parse_dtm(text)
        if parsed is None:
            raise rejected(DATA_TYPE, ref, f"start {text!r} is not a date and time")
        return parsed

    def _status(
        self, message: Message, header: Header, meaning: str
    ) -> tuple[str, StatusClass, bool]:
        sent, _ = first_value(message, self.mapping.appointment.status, header.version)
        code = self.mapping.status_code(sent) if sent else ""
        if meaning in ENDING:
            return code or meaning, ENDING[meaning], False
        code = code or self.mapping.appointment.default_status
        host = self.mapping.statuses.host_status(code)
        return code, host.status_class, host.eligible

    def _appointment(
        self,
        message: Message,
        header: Header,
        key: str,
        patient_key: str,
        meaning: str,
        status: tuple[str, StatusClass, bool],
        resources: list[tuple[str, Resource]],
    ) -> Appointment | None:
        roles = self.mapping.appointment
        parsed = self._start(message, header, meaning)
        if parsed is None:
            return None  # "cancel 123": the mirror's own timing stays
        start = parsed.to_utc(self.zone)
        end = None
        end_text, _ = first_value(message, roles.end, header.version)
        end_parsed = parse_dtm(end_text) if end_text else None
        if end_parsed is not None and end_parsed.to_utc(self.zone) > start:
            end = end_parsed.to_utc(self.zone)
        elif (minutes := self._duration(message)) is not None:
            end = start + timedelta(minutes=minutes)
        providers = self._providers(message, header, resources)
        facility_key, room = self._location(message, header, resources)
        service_key = self._service(message, header, resources)
        notes, _ = first_value(message, roles.notes, header.version)
        code, status_class, eligible = status
        return Appointment(
            key=key,
            occurrence=local_date(start, self.zone),
            patient_key=patient_key,
            start=start,
            end=end,
            status=code,
            status_class=status_class,
            eligible=eligible,
            all_day=not parsed.has_time,
            provider_keys=providers,
            facility_key=facility_key,
            service_key=service_key,
            room=room,
            notes=notes,
        )

    def _duration(self, message: Message) -> float | None:
        for rule in self.mapping.appointment.duration:
            value = message.value(rule.value)
            try:
                amount = float(value)
            except ValueError:
                continue
            unit = message.value(rule.unit).upper() if rule.unit else ""
            factor = UNITS.get(unit[:3] if unit[:3] in UNITS else unit[:1])
            if factor is None:
                factor = {"seconds": 1 / 60, "minutes": 1.0, "hours": 60.0}[rule.default_unit]
            if amount > 0:
                return amount * factor
        return None

    def _providers(
        self, message: Message, header: Header, resources: list[tuple[str, Resource]]
    ) -> tuple[str, ...]:
        for candidate in applicable(self.mapping.appointment.provider, header.version):
            keys: list[str] = []
            for rep in every(message, candidate.ref):
                parts = [*message.components(rep), ""] * 6
                key = parts[0] or " ".join(p for p in (parts[2], parts[1]) if p)
                if not key or key in keys or len(key) > KEY_LIMIT:
                    continue
                keys.append(key)
                provider = Provider(key, first_name=parts[2], last_name=parts[1], title=parts[5])
                resources.append(("provider", provider))
            if keys:
                return tuple(keys)
        return ()

    def _location(
        self, message: Message, header: Header, resources: list[tuple[str, Resource]]
    ) -> tuple[str | None, str]:
        rule = self.mapping.appointment.location
        if rule is None:
            return None, ""
        for candidate in applicable(rule.fields, header.version):
            for rep in every(message, candidate.ref):
                parts = message.components(rep)
                key = _pick(parts, rule.key)[:KEY_LIMIT]
                room = _pick(parts, [rule.room]) if rule.room else ""
                if key:
                    resources.append(
                        ("facility", Facility(key, name=_pick(parts, rule.name) or key))
                    )
                    return key, room
        return None, ""

    def _service(
        self, message: Message, header: Header, resources: list[tuple[str, Resource]]
    ) -> str | None:
        for candidate in applicable(self.mapping.appointment.service, header.version):
            for rep in every(message, candidate.ref):
                parts = [*message.components(rep), ""]
                key = (parts[0] or parts[1])[:KEY_LIMIT]
                if key:
                    resources.append(("service", Service(key, name=parts[1] or parts[0])))
                    return key
        return None

    # --- helpers ----------------------------------------------------------------------------

    def _echo(
        self, message: Message, header: Header, key_ref: FieldRef | None, patient_id: str
    ) -> dict[str, str]:
        """Identifiers as sent (in standard separators), for write-back."""
        return {
            "sending_application": _standard(header.sending_application, message.separators),
            "sending_facility": _standard(header.sending_facility, message.separators),
            "version": header.version,
            "key_field": str(key_ref) if key_ref else "",
            "placer": _standard(_first_repetition(message, "SCH-1"), message.separators),
            "filler": _standard(_first_repetition(message, "SCH-2"), message.separators),
            "patient_id": _standard(patient_id, message.separators),
        }


def _standard(raw: str, seps: Separators) -> str:
    """A raw field rewritten with the standard separators (a feed may use its own)."""
    standard = Separators()
    if seps == standard:
        return raw
    table = str.maketrans(
        {
            seps.component: standard.component,
            seps.repetition: standard.repetition,
            seps.subcomponent: standard.subcomponent,
            seps.escape: standard.escape,
        }
    )
    return raw.translate(table)


def _first_repetition(message: Message, name: str) -> str:
    reps = message.repetitions(name)
    return reps[0] if reps else ""


def _pick(parts: list[str], numbers: list[int]) -> str:
    """The first non-empty of the numbered components."""
    return next((parts[n - 1] for n in numbers if 0 < n <= len(parts) and parts[n - 1]), "")

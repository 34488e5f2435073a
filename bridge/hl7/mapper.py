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
from bridge.hl7.contacts import read_contacts
from bridge.hl7.header import Header
from bridge.hl7.hl7time import Hl7Time, parse_dtm
from bridge.hl7.parse import FieldRef, Message, Separators
from bridge.hl7.problem import DATA_TYPE, REQUIRED_FIELD, Problem, Rejected
from bridge.hl7.state import ENDING, Mapped, Resource
from bridge.mapping.hl7 import Candidate, Coded, Hl7Mapping, Identifier
from bridge.model import (
    Appointment,
    Channel,
    Consent,
    Facility,
    Patient,
    Provider,
    Service,
    StatusClass,
)

KEY_LIMIT = 64  # the store's key columns
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
        self._patient_key(message, header)
        self._start(message, header, meaning)
        return meaning, key

    def map(self, message: Message, header: Header) -> Mapped:
        """The message's meaning; ``Rejected`` with the problem when it cannot be used."""
        meaning = self.mapping.events[header.kind]
        if meaning == "ignore":
            return Mapped(meaning)
        key, key_ref = self._key(message, header)
        status, status_class, eligible = self._status(message, header, meaning)
        patient, patient_id = self._patient(message, header)
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
        key, key_ref = self._first(message, roles.key, header.version)
        if not key:
            wanted = ", ".join(c.field for c in roles.key)
            raise _problem(REQUIRED_FIELD, roles.key[0].ref, f"no appointment key (tried {wanted})")
        if len(key) > KEY_LIMIT:
            raise _problem(DATA_TYPE, key_ref, f"appointment key longer than {KEY_LIMIT}")
        return key, key_ref

    def _start(self, message: Message, header: Header, meaning: str) -> Hl7Time | None:
        """The start; None for an ending event that sends no timing (the mirror's stays)."""
        roles = self.mapping.appointment
        text, ref = self._first(message, roles.start, header.version)
        if not text:
            if meaning in ENDING:
                return None
            wanted = ", ".join(c.field for c in roles.start)
            raise _problem(REQUIRED_FIELD, roles.start[0].ref, f"no start time (tried {wanted})")
        parsed = parse_dtm(text)
        if parsed is None:
            raise _problem(DATA_TYPE, ref, f"start {text!r} is not a date and time")
        return parsed

    def _status(
        self, message: Message, header: Header, meaning: str
    ) -> tuple[str, StatusClass, bool]:
        sent, _ = self._first(message, self.mapping.appointment.status, header.version)
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
        end_text, _ = self._first(message, roles.end, header.version)
        end_parsed = parse_dtm(end_text) if end_text else None
        if end_parsed is not None and end_parsed.to_utc(self.zone) > start:
            end = end_parsed.to_utc(self.zone)
        elif (minutes := self._duration(message)) is not None:
            end = start + timedelta(minutes=minutes)
        providers = self._providers(message, header, resources)
        facility_key, room = self._location(message, header, resources)
        service_key = self._service(message, header, resources)
        notes, _ = self._first(message, roles.notes, header.version)
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
        for candidate in self._applicable(self.mapping.appointment.provider, header):
            keys: list[str] = []
            for rep in self._every(message, candidate.ref):
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
        for candidate in self._applicable(rule.fields, header):
            for rep in self._every(message, candidate.ref):
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
        for candidate in self._applicable(self.mapping.appointment.service, header):
            for rep in self._every(message, candidate.ref):
                parts = [*message.components(rep), ""]
                key = (parts[0] or parts[1])[:KEY_LIMIT]
                if key:
                    resources.append(("service", Service(key, name=parts[1] or parts[0])))
                    return key
        return None

    # --- patient ----------------------------------------------------------------------------

    def _patient_key(self, message: Message, header: Header) -> tuple[str, str]:
        """The patient's key and its identifier (CX) as sent."""
        rule = self.mapping.patient.key
        key, sent = self._identifier(message, header, rule)
        if not key:
            wanted = ", ".join(c.field for c in rule.fields)
            raise _problem(REQUIRED_FIELD, rule.fields[0].ref, f"no patient id ({wanted})")
        if len(key) > KEY_LIMIT:
            raise _problem(DATA_TYPE, rule.fields[0].ref, f"patient id longer than {KEY_LIMIT}")
        return key, sent

    def _patient(self, message: Message, header: Header) -> tuple[Patient, str]:
        """The patient, and its identifier (CX) as sent."""
        roles = self.mapping.patient
        key, sent = self._patient_key(message, header)
        mrn = self._identifier(message, header, roles.mrn)[0] if roles.mrn else ""
        family, given = self._name(message)
        birth = parse_dtm(message.value(roles.birth_date)) if roles.birth_date else None
        contacts = read_contacts(message, roles.contacts, self.region)
        street = city = postal = ""
        if roles.address is not None:
            reps = message.repetitions(roles.address.field)
            if reps:
                a = roles.address
                street = message.spelled(reps[0], a.street)
                city = message.spelled(reps[0], a.city)
                postal = message.spelled(reps[0], a.postal_code)
        patient = Patient(
            key=key,
            first_name=given,
            last_name=family,
            mrn=mrn,
            birth_date=birth.moment.date() if birth else None,
            sex=self._coded(message, roles.sex),
            language=self._language(message),
            mobile=contacts.mobile,
            home_phone=contacts.home,
            work_phone=contacts.work,
            email=contacts.email,
            bad_contacts=tuple(contacts.bad),
            deceased=bool(
                roles.deceased
                and message.value(roles.deceased.field).upper()
                in {v.upper() for v in roles.deceased.values}
            ),
            consent=self._consent(message),
            street=street,
            city=city,
            postal_code=postal,
        )
        return patient, sent

    def _identifier(
        self, message: Message, header: Header, rule: Identifier | None
    ) -> tuple[str, str]:
        """(id, the CX repetition as sent) by type, then authority, else the first."""
        if rule is None:
            return "", ""
        first: tuple[str, str] = ("", "")
        for candidate in self._applicable(rule.fields, header):
            reps = [r for r in message.repetitions(candidate.ref) if message.part(r, 1)]
            if not reps:
                continue
            for wanted in rule.types:
                for rep in reps:
                    if message.part(rep, 5).upper() == wanted.upper():
                        return message.part(rep, 1), rep
            for wanted in rule.authorities:
                for rep in reps:
                    if message.part(rep, 4).upper() == wanted.upper():
                        return message.part(rep, 1), rep
            if not first[0]:
                first = (message.part(reps[0], 1), reps[0])
        return first if rule.fallback_first else ("", "")

    def _name(self, message: Message) -> tuple[str, str]:
        rule = self.mapping.patient.name
        reps = message.repetitions(rule.field)
        if not reps:
            return "", ""
        by_type = {message.part(rep, 7).upper(): rep for rep in reversed(reps)}
        chosen = next((by_type[t.upper()] for t in rule.types if t.upper() in by_type), reps[0])
        return message.part(chosen, 1), message.part(chosen, 2)

    def _coded(self, message: Message, rule: Coded | None) -> str:
        if rule is None:
            return ""
        value = message.value(rule.field)
        table = {k.upper(): v for k, v in rule.values.items()}
        if value.upper() in table:
            return table[value.upper()]
        return value.upper() if rule.pass_through else ""

    def _language(self, message: Message) -> str:
        rule = self.mapping.patient.language
        if rule is None:
            return ""
        value = message.value(rule.field).lower()
        table = {k.lower(): v.lower() for k, v in rule.values.items()}
        if value in table:
            return table[value]
        return value if len(value) == 2 and value.isalpha() and rule.pass_through else ""

    def _consent(self, message: Message) -> dict[Channel, Consent]:
        rule = self.mapping.patient.consent
        if rule is None:
            return {}
        value = message.value(rule.field).upper()
        if value in {v.upper() for v in rule.refused}:
            return {channel: Consent.NO for channel in rule.channels}
        if value in {v.upper() for v in rule.given}:
            return {channel: Consent.YES for channel in rule.channels}
        return {}

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

    def _applicable(self, candidates: list[Candidate], header: Header) -> list[Candidate]:
        return [c for c in candidates if c.applies_to(header.version)]

    def _first(
        self, message: Message, candidates: list[Candidate], version: str
    ) -> tuple[str, FieldRef | None]:
        """The first non-empty value among the candidates, and where it was found."""
        for candidate in candidates:
            if not candidate.applies_to(version):
                continue
            ref = candidate.ref
            for segment in message.all(ref.segment):
                value = message.value(ref, segment)
                if value:
                    return value, ref
        return "", None

    def _every(self, message: Message, ref: FieldRef) -> list[str]:
        """Every repetition of a field over every occurrence of its segment (AIP in each RGS)."""
        found: list[str] = []
        for segment in message.all(ref.segment):
            found.extend(message.repetitions(ref, segment))
        return found


def _problem(code: int, ref: FieldRef | None, text: str) -> Rejected:
    if ref is None:
        return Rejected(Problem(code, text))
    return Rejected(Problem(code, text, ref.segment, 1, ref.field, ref.component))


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

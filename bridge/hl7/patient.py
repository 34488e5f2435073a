"""The patient half of an HL7 mapping: identifier by type or assigning authority, name, birth
date, sex and language tables, address, contacts, consent, death indicator.

Only the identifier can refuse a message (no patient, no reminder); everything else is read
tolerantly: an unusable phone becomes a bad contact, a bad birth date is left out.
"""

from __future__ import annotations

from bridge.hl7.contacts import read_contacts
from bridge.hl7.fields import KEY_LIMIT, applicable, rejected
from bridge.hl7.hl7time import parse_dtm
from bridge.hl7.parse import Message
from bridge.hl7.problem import DATA_TYPE, REQUIRED_FIELD
from bridge.mapping.hl7 import Coded, ConsentRole, Identifier, NameRole, PatientRoles
from bridge.model import Channel, Consent, Patient


def patient_key(message: Message, version: str, rule: Identifier) -> tuple[str, str]:
    """The patient's key and its identifier (CX) as sent; ``Rejected`` without one."""
    key, sent = identifier(message, version, rule)
    if not key:
        wanted = ", ".join(c.field for c in rule.fields)
        raise rejected(REQUIRED_FIELD, rule.fields[0].ref, f"no patient id ({wanted})")
    if len(key) > KEY_LIMIT:
        raise rejected(DATA_TYPE, rule.fields[0].ref, f"patient id longer than {KEY_LIMIT}")
    return key, sent


def read_patient(
    message: Message, version: str, roles: PatientRoles, region: str
) -> tuple[Patient, str]:
    """The patient, and its identifier (CX) as sent."""
    key, sent = patient_key(message, version, roles.key)
    mrn = identifier(message, version, roles.mrn)[0] if roles.mrn else ""
    family, given = _name(message, roles.name)
    birth = parse_dtm(message.value(roles.birth_date)) if roles.birth_date else None
    contacts = read_contacts(message, roles.contacts, region)
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
        sex=_coded(message, roles.sex),
        language=_language(message, roles.language),
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
        consent=_consent(message, roles.consent),
        street=street,
        city=city,
        postal_code=postal,
    )
    return patient, sent


def identifier(message: Message, version: str, rule: Identifier | None) -> tuple[str, str]:
    """(id, the CX repetition as sent) by type, then authority, else the first."""
    if rule is None:
        return "", ""
    first: tuple[str, str] = ("", "")
    for candidate in applicable(rule.fields, version):
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


def _name(message: Message, rule: NameRole) -> tuple[str, str]:
    reps = message.repetitions(rule.field)
    if not reps:
        return "", ""
    by_type = {message.part(rep, 7).upper(): rep for rep in reversed(reps)}
    chosen = next((by_type[t.upper()] for t in rule.types if t.upper() in by_type), reps[0])
    return message.part(chosen, 1), message.part(chosen, 2)


def _coded(message: Message, rule: Coded | None) -> str:
    if rule is None:
        return ""
    value = message.value(rule.field)
    table = {k.upper(): v for k, v in rule.values.items()}
    if value.upper() in table:
        return table[value.upper()]
    return value.upper() if rule.pass_through else ""


def _language(message: Message, rule: Coded | None) -> str:
    if rule is None:
        return ""
    value = message.value(rule.field).lower()
    table = {k.lower(): v.lower() for k, v in rule.values.items()}
    if value in table:
        return table[value]
    return value if len(value) == 2 and value.isalpha() and rule.pass_through else ""


def _consent(message: Message, rule: ConsentRole | None) -> dict[Channel, Consent]:
    if rule is None:
        return {}
    value = message.value(rule.field).upper()
    if value in {v.upper() for v in rule.refused}:
        return {channel: Consent.NO for channel in rule.channels}
    if value in {v.upper() for v in rule.given}:
        return {channel: Consent.YES for channel in rule.channels}
    return {}

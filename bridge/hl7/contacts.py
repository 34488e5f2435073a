"""Phones and e-mail from XTN fields (PID-13 home, PID-14 business, PID-40 telecom in 2.7+).

XTN components used: 1 the number as written (old style), 2 use code (PRN, ORN, WPN, NET...),
3 equipment type (PH, CP, Internet...), 4 e-mail, 5 country code, 6 area code, 7 local number,
12 unformatted number (2.7+). Real feeds put MOBILE / HOME / EMAIL in the wrong component
(fixture 09: component 2; fixture 20: component 4) or send bare numbers, so each value is
classified by equipment, then use code, then the site's own words, then its shape: an ``@`` is an
e-mail; a number the numbering plan knows as mobile is a mobile; else the field's own kind.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import phonenumbers

from bridge.hl7.parse import Message, field_ref
from bridge.mapping.hl7 import Contacts
from bridge.phone import normalize

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass
class Found:
    """The first usable value of each kind, and the kinds whose value was unusable."""

    mobile: str | None = None
    home: str | None = None
    work: str | None = None
    email: str | None = None
    bad: list[str] = field(default_factory=list)

    def put(self, kind: str, value: str | None, raw: str) -> None:
        role = {"mobile": "mobile", "home": "home_phone", "work": "work_phone", "email": "email"}
        if value is None:
            if raw and role[kind] not in self.bad and getattr(self, kind) is None:
                self.bad.append(role[kind])
            return
        if getattr(self, kind) is None:
            setattr(self, kind, value)
            if role[kind] in self.bad:
                self.bad.remove(role[kind])


def read_contacts(message: Message, rules: Contacts, region: str) -> Found:
    """Every XTN repetition of the configured fields, classified and normalised."""
    found = Found()
    equipment = {k.upper(): v for k, v in rules.equipment.items()}
    use = {k.upper(): v for k, v in rules.use.items()}
    synonyms = {k.upper(): v for k, v in rules.synonyms.items()}
    for name, default in rules.fields.items():
        for rep in message.repetitions(field_ref(name)):
            parts = message.components(rep)
            parts += [""] * (12 - len(parts))
            kind = _kind(parts, equipment, use, synonyms, rules.synonym_components)
            email = next((p for p in (parts[3], parts[0]) if "@" in p), "")
            if kind == "ignore":
                continue
            if kind == "email" or (kind in (None, "phone") and email):
                found.put("email", email if _EMAIL.match(email) else None, email or parts[0])
                continue
            raw = _number(parts)
            if not raw:
                continue
            number = normalize(raw, region)
            if kind in (None, "phone"):
                kind = "mobile" if number and _is_mobile(number) else default
            found.put(kind, number, raw)
    return found


def _kind(
    parts: list[str],
    equipment: Mapping[str, str],
    use: Mapping[str, str],
    synonyms: Mapping[str, str],
    synonym_components: list[int],
) -> str | None:
    """The kind of one XTN value; "phone" means a phone whose use is still unknown, None
    that nothing says (the shape and the field decide)."""
    by_equipment = equipment.get(parts[2].upper())
    if by_equipment not in (None, "phone"):
        return by_equipment
    by_use = use.get(parts[1].upper())
    if by_use is not None:
        return by_use
    for index in synonym_components:
        word = parts[index - 1].upper() if index - 1 < len(parts) else ""
        if word in synonyms:
            return synonyms[word]
    return by_equipment


def _number(parts: list[str]) -> str:
    """The number as written (XTN-1), else the unformatted one (XTN-12), else +country area
    local (XTN-5/6/7). An ``@`` is never a number."""
    for text in (parts[0], parts[11]):
        if text and "@" not in text and any(c.isdigit() for c in text):
            return text
    country, area, local = parts[4], parts[5], parts[6]
    if local:
        return (f"+{country.lstrip('+')} " if country else "") + f"{area} {local}".strip()
    return ""


def _is_mobile(e164: str) -> bool:
    """Only a number the plan says is a mobile: North American numbers are "fixed line or
    mobile", and a home number is not to be texted on a guess."""
    kind = phonenumbers.number_type(phonenumbers.parse(e164, None))
    return kind == phonenumbers.PhoneNumberType.MOBILE

"""The booking forms' fields, validated: each bad value gets a field name and a message id the
page shows next to it (and the store's rejects keep, without the value).

Nothing trusts the browser: lengths are capped first; names are letters, spaces, apostrophes,
dots and hyphens; phone numbers are read in the clinic's region into E.164 and must be able to
take an SMS when the patient asks for SMS; emails have one ``@``, a dotted domain and nothing
that would make a list of addresses of them; the comment is reduced to printable characters.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from bridge.booking.booking import NewPatient
from bridge.patient.forms import Invalid, birth_date, field
from bridge.phone import can_receive_sms, normalize
from plugins.writers.sql_notes import REASON_LIMIT, clean

NAME_LIMIT = 60
EMAIL_LIMIT = 254
SEXES = ("female", "male", "unknown")
# One address: no spaces, controls, or the characters that make a header or a list of addresses
# of it (``a@b.test,c@d.test`` or ``"x" <a@b.test>`` would be sent as written).
_NOT_IN_EMAIL = r'@\s<>()\[\],;:"\\\x00-\x1f\x7f'  # a regex character class
_EMAIL = re.compile(
    rf"^[^{_NOT_IN_EMAIL}]{{1,64}}@(?:[^{_NOT_IN_EMAIL}.]+\.)+[^{_NOT_IN_EMAIL}.]{{2,}}$"
)
_NAME_MARKS = frozenset(" '-.’")


@dataclass(frozen=True)
class Problems:
    """Every field that cannot be used, in form order."""

    items: tuple[Invalid, ...]

    def __bool__(self) -> bool:
        return bool(self.items)

    def of(self, name: str) -> str | None:
        return next((i.problem for i in self.items if i.field == name), None)


def person_name(value: str, name: str) -> str | Invalid:
    text = " ".join(value.split())
    if not text:
        return Invalid(name, "missing")
    if len(text) > NAME_LIMIT:
        return Invalid(name, "too_long")
    for ch in text:
        if not (ch in _NAME_MARKS or unicodedata.category(ch).startswith(("L", "M"))):
            return Invalid(name, "not_a_name")
    return text


def email(value: str) -> str | Invalid | None:
    text = value.strip()
    if not text:
        return None
    if len(text) > EMAIL_LIMIT or not _EMAIL.match(text):
        return Invalid("email", "not_an_email")
    return text


def mobile(value: str, region: str) -> str | Invalid | None:
    text = value.strip()
    if not text:
        return None
    if len(text) > 32:
        return Invalid("mobile", "not_a_phone")
    found = normalize(text, region)
    if found is None:
        return Invalid("mobile", "not_a_phone")
    return found


def comment(value: str) -> str | Invalid:
    if len(value) > REASON_LIMIT:
        return Invalid("comment", "too_long")
    return clean(value)


def new_patient(
    form: Mapping[str, object], today: date, region: str, language: str
) -> NewPatient | Problems:
    """A new patient's details, or every problem with them."""
    values = {name: field(form, name) for name in FIELDS}
    problems: list[Invalid] = []

    def check(result: object) -> object:
        if isinstance(result, Invalid):
            problems.append(result)
        return result

    first = check(person_name(values["first_name"], "first_name"))
    last = check(person_name(values["last_name"], "last_name"))
    born = check(birth_date(values["day"], values["month"], values["year"], today))
    sex = values["sex"] if values["sex"] in SEXES else None
    if sex is None:
        problems.append(Invalid("sex", "missing"))
    phone = check(mobile(values["mobile"], region))
    address = check(email(values["email"]))
    sms_ok = values["sms_ok"] == "yes"
    email_ok = values["email_ok"] == "yes"
    if phone is None and address is None:
        problems.append(Invalid("mobile", "no_contact"))
    if sms_ok and phone is None and not any(p.field == "mobile" for p in problems):
        problems.append(Invalid("mobile", "sms_needs_mobile"))
    if sms_ok and isinstance(phone, str) and not can_receive_sms(phone):
        problems.append(Invalid("mobile", "landline"))
    if email_ok and address is None and not any(p.field == "email" for p in problems):
        problems.append(Invalid("email", "email_needs_address"))
    if problems:
        return Problems(tuple(problems))
    assert isinstance(first, str) and isinstance(last, str) and isinstance(born, date)
    return NewPatient(
        first_name=first,
        last_name=last,
        birth_date=born,
        sex=str(sex),
        mobile=phone if isinstance(phone, str) else None,
        email=address if isinstance(address, str) else None,
        sms_ok=sms_ok,
        email_ok=email_ok,
        language=language,
    )


def contact(value: str, region: str) -> str | Invalid:
    """A mobile (E.164) or an email, for "send me my link"."""
    text = value.strip()
    if not text:
        return Invalid("contact", "missing")
    if "@" in text:
        found = email(text)
        return found if isinstance(found, str) else Invalid("contact", "not_a_contact")
    phone = mobile(text, region)
    if isinstance(phone, Invalid) or phone is None:
        return Invalid("contact", "not_a_contact")
    return phone


FIELDS = (
    "first_name",
    "last_name",
    "day",
    "month",
    "year",
    "sex",
    "mobile",
    "email",
    "sms_ok",
    "email_ok",
)

"""The patient half of a mapping: identifiers by type, then assigning authority, else the first;
names by type; site code tables; consent from any field; the death indicator."""

from __future__ import annotations

import pytest

from bridge.hl7.parse import parse
from bridge.hl7.patient import identifier, patient_key, read_patient
from bridge.hl7.problem import Rejected
from bridge.mapping.hl7 import ConsentRole, Identifier, PatientRoles
from bridge.model import Channel, Consent
from tests.hl7_samples import mapping

ROLES = mapping().patient


def message(pid: str, extra: str = "") -> object:
    return parse(f"MSH|^~\\&|A|B|C|D|20260327||SIU^S12|1|P|2.5\r{pid}" + extra)


def test_identifier_by_type_then_authority_then_the_first() -> None:
    msg = message("PID|1|OLD1|111^^^NORTH^XX~222^^^SOUTH^MR~333^^^EAST^PI")
    rule = Identifier.model_validate({"fields": ["PID-3"], "types": ["MR"]})
    assert identifier(msg, "2.5", rule) == ("222", "222^^^SOUTH^MR")
    rule = Identifier.model_validate({"fields": ["PID-3"], "authorities": ["east"]})
    assert identifier(msg, "2.5", rule)[0] == "333"
    rule = Identifier.model_validate({"fields": ["PID-3"], "types": ["NHS"]})
    assert identifier(msg, "2.5", rule)[0] == "111"
    rule = Identifier.model_validate(
        {"fields": ["PID-3"], "types": ["NHS"], "fallback_first": False}
    )
    assert identifier(msg, "2.5", rule) == ("", "")
    rule = Identifier.model_validate({"fields": ["PID-4", "PID-2"]})
    assert identifier(msg, "2.5", rule)[0] == "OLD1"  # PID-4 empty: the next field


def test_no_patient_id_is_refused() -> None:
    with pytest.raises(Rejected) as caught:
        patient_key(message("PID|1||"), "2.5", ROLES.key)
    assert caught.value.problem.code == 101


def test_details_tables_and_flags() -> None:
    pid = (
        "PID|1||7^^^CLINIC^MR||Rossi^Ada^^^^^L~Ada R^^^^^^D||19800229|A|||"
        "Via Roma 1^^Roma^^00100||||FRENCH|||||||||||||||Y"
    )
    patient, sent = read_patient(message(pid), "2.5", ROLES, "IT")
    assert sent == "7^^^CLINIC^MR"
    assert (patient.last_name, patient.first_name) == ("Ada R", "")  # D is preferred here
    assert patient.birth_date is not None and patient.birth_date.isoformat() == "1980-02-29"
    assert patient.sex == "O"  # table: A (ambiguous) -> O
    assert patient.language == "fr"
    assert (patient.street, patient.city, patient.postal_code) == ("Via Roma 1", "Roma", "00100")
    assert patient.deceased


def test_unknown_codes_pass_through_or_not() -> None:
    patient, _ = read_patient(message("PID|1||7||X^Y||1980|Q||||||||klingon"), "2.5", ROLES, "US")
    assert patient.sex == "Q"  # kept, upper-cased
    assert patient.language == ""  # not a two-letter code: unknown
    assert patient.birth_date is None  # a year alone is not a birth date


@pytest.mark.parametrize(
    ("value", "expected"),
    [("Y", Consent.NO), ("N", Consent.YES), ("", None), ("maybe", None)],
)
def test_consent_from_a_z_segment(value: str, expected: Consent | None) -> None:
    roles = PatientRoles.model_validate(
        {
            **ROLES.model_dump(),
            "consent": ConsentRole(
                field="ZCN-2", refused=["Y"], given=["n"], channels=[Channel.SMS]
            ),
        }
    )
    patient, _ = read_patient(message("PID|1||7", f"\rZCN|1|{value}"), "2.5", roles, "US")
    assert patient.consent == ({Channel.SMS: expected} if expected else {})

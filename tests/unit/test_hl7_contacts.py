"""XTN classification: equipment, then use code, then the site's words, then the shape."""

from __future__ import annotations

import pytest

from bridge.hl7.contacts import read_contacts
from bridge.hl7.parse import parse
from bridge.mapping.hl7 import Contacts
from tests.hl7_samples import mapping

RULES = mapping("hl7-siu").patient.contacts


def found(pid13: str, pid14: str = "", region: str = "US", rules: Contacts = RULES) -> object:
    message = parse(f"MSH|^~\\&|A\rPID|1||1||X^Y||||||||{pid13}|{pid14}")
    return read_contacts(message, rules, region)


@pytest.mark.parametrize(
    ("pid13", "kind", "value"),
    [
        ("(202) 555-0123^^CP", "mobile", "+12025550123"),  # equipment CP
        ("(202) 555-0123^PRN^PH", "home", "+12025550123"),  # use PRN
        ("(202) 555-0123^WPN^PH", "work", "+12025550123"),
        ("^NET^Internet^ann@example.test", "email", "ann@example.test"),
        ("ann@example.test^NET", "email", "ann@example.test"),  # e-mail in XTN-1
        ("^^^ann@example.test", "email", "ann@example.test"),  # fixture 19: XTN-4 alone
        ("(202) 555-0123^MOBILE", "mobile", "+12025550123"),  # fixture 09: word in XTN-2
        ("2025550123^^^MOBILE^^^^^N", "mobile", "+12025550123"),  # fixture 20: word in XTN-4
        ("^PRN^PH^^1^202^5550123", "home", "+12025550123"),  # country, area, local
        ("^PRN^PH^^^^^^^^^2025550123", "home", "+12025550123"),  # XTN-12 (2.7)
        ("2025550123", "home", "+12025550123"),  # bare: the field's kind (North America)
    ],
)
def test_classification(pid13: str, kind: str, value: str) -> None:
    result = found(pid13)
    assert getattr(result, kind) == value


def test_a_bare_number_the_plan_knows_as_mobile_is_a_mobile() -> None:
    assert found("07911 123456", region="GB").mobile == "+447911123456"
    assert found("020 7946 0123", region="GB").home == "+442079460123"


def test_pid_14_is_work_and_ignored_kinds_are_skipped() -> None:
    result = found("(202) 555-0100^^FX~(202) 555-0123^^BP", "(202) 555-0199")
    assert result.home is None and result.mobile is None
    assert result.work == "+12025550199"


def test_unusable_values_are_named_never_kept() -> None:
    result = found("12^^CP~not-an-email^NET^Internet")
    assert result.mobile is None and result.email is None
    assert result.bad == ["mobile", "email"]


def test_a_later_good_value_clears_the_bad_mark_and_the_first_good_one_wins() -> None:
    result = found("12^PRN^PH~(202) 555-0123^PRN^PH~(202) 555-0199^PRN^PH")
    assert result.home == "+12025550123"
    assert result.bad == []


def test_the_explicit_null_is_not_a_bad_value() -> None:
    result = found("", '""^BUSINESS')
    assert result.work is None and result.bad == []

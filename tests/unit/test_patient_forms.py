"""Form fields: every bad value is named, nothing is silently cut."""

from __future__ import annotations

from datetime import date

import pytest

from bridge.patient import forms

TODAY = date(2026, 3, 27)


@pytest.mark.parametrize(
    ("day", "month", "year", "field", "problem"),
    [
        ("", "3", "1980", "day", "missing"),
        ("7", "", "1980", "month", "missing"),
        ("x", "3", "1980", "day", "not_a_number"),
        ("٣", "3", "1980", "day", "not_a_number"),
        ("-1", "3", "1980", "day", "not_a_number"),
        ("7", "3", "80", "year", "year_digits"),
        ("31", "2", "1980", "day", "no_such_date"),
        ("7", "13", "1980", "day", "no_such_date"),
        ("7", "3", "2027", "year", "out_of_range"),
        ("7", "3", "1850", "year", "out_of_range"),
        ("11111", "3", "1980", "day", "not_a_number"),
    ],
)
def test_bad_birth_dates_say_which_field_and_why(
    day: str, month: str, year: str, field: str, problem: str
) -> None:
    assert forms.birth_date(day, month, year, TODAY) == forms.Invalid(field, problem)


def test_a_good_birth_date_allows_leading_zeros_and_blanks() -> None:
    assert forms.birth_date(" 07", "04 ", "1980", TODAY) == date(1980, 4, 7)


def test_actions_are_a_closed_list() -> None:
    assert forms.action("confirm") == "confirm"
    assert forms.action("callback") == "callback"
    assert forms.action("delete") == forms.Invalid("action", "unknown_action")


def test_a_reason_is_cleaned_and_a_long_one_refused() -> None:
    assert forms.reason("  sick\x00\n  today\u202e ") == "sick today"
    assert forms.reason("x" * 501) == forms.Invalid("reason", "too_long")
    assert forms.reason("") == ""


def test_fields_are_capped_and_files_ignored() -> None:
    assert forms.field({"a": "x" * 10_000}, "a") == "x" * forms.FIELD_LIMIT
    assert forms.field({"a": object()}, "a") == ""
    assert forms.field({}, "a") == ""

"""Link tokens: stable per identity, opaque, single-purpose, and any change breaks them."""

from __future__ import annotations

import pytest

from bridge.patient import tokens
from bridge.patient.tokens import Tokens


def make(seed: bytes = b"k") -> Tokens:
    return Tokens(seed * 32, seed * 31 + b"m", seed * 30 + b"lu")


def test_the_same_message_gets_the_same_link_and_another_message_another() -> None:
    t = make()
    first, lookup = t.make(tokens.APPOINTMENT, "reminder|12|2026-03-28|days_ahead|sms")
    again, lookup_again = t.make(tokens.APPOINTMENT, "reminder|12|2026-03-28|days_ahead|sms")
    other, other_lookup = t.make(tokens.APPOINTMENT, "reminder|12|2026-03-28|days_ahead|email")
    assert (first, lookup) == (again, lookup_again)
    assert other != first and other_lookup != lookup
    assert t.check(tokens.APPOINTMENT, first) == lookup


def test_a_token_says_nothing_about_the_appointment_or_patient() -> None:
    token, lookup = make().make(tokens.APPOINTMENT, "reminder|12|2026-03-28|days_ahead|sms")
    assert len(token) == 37
    assert "2026" not in token and "reminder" not in token and lookup not in token


def test_every_tampered_character_is_refused() -> None:
    t = make()
    token, _ = t.make(tokens.APPOINTMENT, "x")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for i, ch in enumerate(token):
        if ch == ".":
            continue
        swapped = alphabet[(alphabet.index(ch) + 1) % len(alphabet)]
        assert t.check(tokens.APPOINTMENT, token[:i] + swapped + token[i + 1 :]) is None


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a" * 37, "a" * 20 + "." + "b" * 17, "../../etc", "a" * 20 + "." + "=" * 16],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    assert make().check(tokens.APPOINTMENT, token) is None


def test_a_token_from_another_key_is_refused() -> None:
    token, _ = make(b"k").make(tokens.APPOINTMENT, "x")
    assert make(b"z").check(tokens.APPOINTMENT, token) is None


def test_a_purpose_must_be_known() -> None:
    with pytest.raises(ValueError):
        make().make("booking-of-anything", "x")

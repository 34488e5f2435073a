"""Twilio's request signature (checked against Twilio's published example) and the small parsers
of its resources."""

from __future__ import annotations

from datetime import UTC, datetime

from plugins.channels.twilio_rest import created_at, is_signed, price_of, signature

# The example in Twilio's "Webhooks security" documentation.
DOC_TOKEN = "12345"
DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOC_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}
DOC_SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_twilios_published_example() -> None:
    assert signature(DOC_TOKEN, DOC_URL, DOC_PARAMS) == DOC_SIGNATURE
    assert is_signed(DOC_TOKEN, DOC_URL, DOC_PARAMS, DOC_SIGNATURE)


def test_anything_changed_breaks_it() -> None:
    assert not is_signed(DOC_TOKEN, DOC_URL, {**DOC_PARAMS, "Digits": "9"}, DOC_SIGNATURE)
    assert not is_signed("54321", DOC_URL, DOC_PARAMS, DOC_SIGNATURE)
    assert not is_signed(DOC_TOKEN, DOC_URL.replace("foo=1", "foo=2"), DOC_PARAMS, DOC_SIGNATURE)
    assert not is_signed(DOC_TOKEN, DOC_URL, DOC_PARAMS, None)
    assert not is_signed(DOC_TOKEN, DOC_URL, DOC_PARAMS, "")


def test_price_and_date() -> None:
    assert price_of({"price": "-0.00750"}) == 0.0075
    assert price_of({"price": None}) is None
    assert price_of({"price": "n/a"}) is None
    assert created_at({"date_created": "Thu, 26 Mar 2026 20:12:31 +0000"}) == datetime(
        2026, 3, 26, 20, 12, 31, tzinfo=UTC
    )
    assert created_at({"date_created": "yesterday"}) is None
    assert created_at({}) is None

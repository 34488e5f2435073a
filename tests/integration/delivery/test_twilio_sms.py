"""``twilio-sms`` against a local server speaking Twilio's Messages API: every answer a provider
gives maps to the right place in the error tree, and nothing ambiguous looks like "not sent"."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bridge.errors import (
    ConfigError,
    DeliveryOutcomeUnknown,
    PermanentDeliveryError,
    RecipientOptedOut,
    TransientDeliveryError,
)
from bridge.model import Channel
from bridge.plugin import OutboundMessage, PluginContext, SendProbe, text_digest
from tests.integration.delivery.conftest import NOW, PATIENT, SENDER, at, plugin, twilio_options
from tests.integration.delivery.providers import AUTH_TOKEN, FakeTwilio

MESSAGE = OutboundMessage(
    idempotency_key="reminder|101|2026-03-28|days_ahead|sms",
    channel=Channel.SMS,
    to=PATIENT,
    text="Synthetic Clinic: Hi Alice, your appointment is on Saturday 28 March at 09:00.",
    token="0123456789abcdef01234567",
)

# mode, the error raised (None: accepted), messages the provider holds afterwards, retry_after
CASES: list[tuple[str, type[Exception] | None, int, float | None]] = [
    ("ok", None, 1, None),
    ("429", TransientDeliveryError, 0, 2.0),
    ("503", TransientDeliveryError, 0, 2.0),
    ("500", DeliveryOutcomeUnknown, 1, None),
    ("timeout", DeliveryOutcomeUnknown, 1, None),
    ("drop", DeliveryOutcomeUnknown, 1, None),
    ("malformed", DeliveryOutcomeUnknown, 1, None),
    ("error:21211", PermanentDeliveryError, 0, None),
    ("error:21610", RecipientOptedOut, 0, None),
]


@pytest.mark.parametrize(("mode", "raised", "held", "retry_after"), CASES)
def test_each_provider_answer(
    twilio: FakeTwilio,
    context: PluginContext,
    mode: str,
    raised: type[Exception] | None,
    held: int,
    retry_after: float | None,
) -> None:
    sms = plugin("twilio-sms", twilio_options(twilio), context)
    twilio.queue(mode)
    if raised is None:
        result = sms.send(MESSAGE)
        assert result.provider_ref == twilio.messages[0]["sid"]
        assert result.segments == 1
        assert result.status == "queued"
    else:
        with pytest.raises(raised) as caught:
            sms.send(MESSAGE)
        error: Any = caught.value
        if retry_after is not None:
            assert error.retry_after == retry_after
        if mode.startswith("error:"):
            assert error.code == mode.split(":")[1]
    assert len(twilio.messages) == held


def test_the_request_is_twilio_shaped(twilio: FakeTwilio, context: PluginContext) -> None:
    sms = plugin("twilio-sms", twilio_options(twilio), context)
    sms.send(MESSAGE)
    _, resource, form = twilio.requests[0]
    assert resource == "Messages"
    assert form == {
        "To": PATIENT,
        "From": SENDER,
        "Body": MESSAGE.text,
        "StatusCallback": f"https://bridge.example.test/webhooks/twilio/status/{MESSAGE.token}",
    }


def test_messaging_service_instead_of_a_number(twilio: FakeTwilio, context: PluginContext) -> None:
    service = "MG" + "ab" * 16
    options = twilio_options(twilio, messaging_service_sid=service)
    del options["from_number"]
    plugin("twilio-sms", options, context).send(MESSAGE)
    assert twilio.requests[0][2]["MessagingServiceSid"] == service
    assert "From" not in twilio.requests[0][2]


def test_wrong_credentials_hold_the_channel(twilio: FakeTwilio, context: PluginContext) -> None:
    sms = plugin("twilio-sms", twilio_options(twilio, auth_token="wrong"), context)
    with pytest.raises(TransientDeliveryError) as caught:
        sms.send(MESSAGE)
    assert caught.value.retry_after == 300
    assert twilio.messages == []


def test_a_provider_that_is_not_there_is_transient(context: PluginContext) -> None:
    options = {
        "account_sid": "AC" + "0" * 32,
        "auth_token": AUTH_TOKEN,
        "api_base": "http://127.0.0.1:9",
        "from_number": SENDER,
    }
    with pytest.raises(TransientDeliveryError, match="cannot connect"):
        plugin("twilio-sms", options, context).send(MESSAGE)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"from_number": None}, "set from_number"),
        ({"account_sid": "not-a-sid"}, "account_sid"),
        ({"colour": "blue"}, "unknown option"),
    ],
)
def test_bad_options_are_one_line(
    twilio: FakeTwilio, context: PluginContext, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        plugin("twilio-sms", twilio_options(twilio, **options), context)


def test_find_sent_matches_body_and_time(twilio: FakeTwilio, context: PluginContext) -> None:
    sms = plugin("twilio-sms", twilio_options(twilio), context)
    twilio.queue("timeout")
    with pytest.raises(DeliveryOutcomeUnknown):
        sms.send(MESSAGE)
    probe = SendProbe(
        idempotency_key=MESSAGE.idempotency_key,
        token=str(MESSAGE.token),
        channel=Channel.SMS,
        to=PATIENT,
        body_digest=text_digest(MESSAGE.text),
        since=at(NOW) - timedelta(seconds=5),
    )
    found = sms.find_sent(probe)
    assert found is not None and found.provider_ref == twilio.messages[0]["sid"]
    # Another attempt that already owns that message does not claim it again.
    assert sms.find_sent(_replace(probe, exclude_refs=frozenset({found.provider_ref}))) is None
    # Another body is another message.
    assert sms.find_sent(_replace(probe, body_digest=text_digest("something else"))) is None


def test_find_sent_pages_through_a_busy_number(twilio: FakeTwilio, context: PluginContext) -> None:
    sms = plugin("twilio-sms", twilio_options(twilio), context)
    first = OutboundMessage("k1", Channel.SMS, PATIENT, "the one we look for")
    sms.send(first)
    for n in range(230):  # newer messages to the same number push it to the third page
        sms.send(OutboundMessage(f"n{n}", Channel.SMS, PATIENT, f"other {n}"))
    probe = SendProbe("k1", "t", Channel.SMS, PATIENT, text_digest(first.text), at(NOW))
    found = sms.find_sent(probe)
    assert found is not None and found.provider_ref == twilio.messages[0]["sid"]


def _replace(probe: SendProbe, **changes: Any) -> SendProbe:
    from dataclasses import replace

    return replace(probe, **changes)

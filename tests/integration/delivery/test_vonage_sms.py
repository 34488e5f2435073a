"""``vonage-sms`` against a local server speaking the Vonage SMS API: a different wire format
(HTTP 200 with a status per part) mapped to the same error tree as Twilio's."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.errors import (
    DeliveryOutcomeUnknown,
    PermanentDeliveryError,
    RecipientOptedOut,
    TransientDeliveryError,
)
from bridge.model import Channel
from bridge.plugin import OutboundMessage, PluginContext, SendProbe, text_digest
from plugins.channels.vonage_sms import sign
from tests.integration.delivery.conftest import PATIENT, at, plugin, vonage_options
from tests.integration.delivery.providers import FakeVonage

MESSAGE = OutboundMessage(
    idempotency_key="reminder|101|2026-03-28|days_ahead|sms",
    channel=Channel.SMS,
    to=PATIENT,
    text="Synthetic Clinic: your appointment is on Saturday 28 March at 09:00.",
    token="0123456789abcdef01234567",
)

CASES: list[tuple[str, type[Exception] | None, int, str | None]] = [
    ("ok", None, 1, None),
    ("error:1", TransientDeliveryError, 0, "1"),
    ("error:5", TransientDeliveryError, 0, "5"),
    ("error:9", TransientDeliveryError, 0, "9"),
    ("error:3", PermanentDeliveryError, 0, "3"),
    ("error:7", RecipientOptedOut, 0, "7"),
    ("429", TransientDeliveryError, 0, None),
    ("500", DeliveryOutcomeUnknown, 1, None),
    ("timeout", DeliveryOutcomeUnknown, 1, None),
    ("drop", DeliveryOutcomeUnknown, 1, None),
    ("malformed", DeliveryOutcomeUnknown, 1, None),
    ("partial", DeliveryOutcomeUnknown, 1, "5"),
]


@pytest.mark.parametrize(("mode", "raised", "held", "code"), CASES)
def test_each_provider_answer(
    vonage: FakeVonage,
    context: PluginContext,
    mode: str,
    raised: type[Exception] | None,
    held: int,
    code: str | None,
) -> None:
    sms = plugin("vonage-sms", vonage_options(vonage), context)
    vonage.queue(mode)
    text = MESSAGE.text * (3 if mode == "partial" else 1)
    message = OutboundMessage(MESSAGE.idempotency_key, Channel.SMS, PATIENT, text, token="t1")
    if raised is None:
        result = sms.send(message)
        assert result.provider_ref == vonage.messages[0]["_parts"][0]["message-id"]
        assert result.cost == pytest.approx(0.0068)
        assert result.segments == 1
    else:
        with pytest.raises(raised) as caught:
            sms.send(message)
        error: Any = caught.value
        if code is not None and mode != "partial":
            assert error.code == code
    assert len(vonage.messages) == held


def test_the_request_is_vonage_shaped(vonage: FakeVonage, context: PluginContext) -> None:
    plugin("vonage-sms", vonage_options(vonage), context).send(MESSAGE)
    form = vonage.requests[0][2]
    assert form["to"] == PATIENT.lstrip("+")  # international digits without "+"
    assert form["type"] == "text"
    assert form["client-ref"] == MESSAGE.token
    assert form["callback"] == "https://bridge.example.test/webhooks/vonage/dlr"


def test_unicode_text_is_sent_as_unicode(vonage: FakeVonage, context: PluginContext) -> None:
    sms = plugin("vonage-sms", vonage_options(vonage), context)
    sms.send(OutboundMessage("k", Channel.SMS, PATIENT, "Ciao 😀, a domani"))
    assert vonage.requests[0][2]["type"] == "unicode"


def test_bad_credentials_hold_the_channel(vonage: FakeVonage, context: PluginContext) -> None:
    sms = plugin("vonage-sms", vonage_options(vonage, api_secret="wrong"), context)
    with pytest.raises(TransientDeliveryError) as caught:
        sms.send(MESSAGE)
    assert caught.value.retry_after == 300


def test_the_sms_api_cannot_look_a_message_up(vonage: FakeVonage, context: PluginContext) -> None:
    sms = plugin("vonage-sms", vonage_options(vonage), context)
    probe = SendProbe("k", "t", Channel.SMS, PATIENT, text_digest("x"), at("2026-03-27T10:00:00Z"))
    with pytest.raises(NotImplementedError):
        sms.find_sent(probe)


def test_signatures_follow_vonage(vonage: FakeVonage, context: PluginContext) -> None:
    sms = plugin("vonage-sms", vonage_options(vonage), context)
    now = context.clock.now().timestamp()
    params = {"msisdn": "12025550101", "text": "Yes & thanks=1", "timestamp": str(int(now))}
    # md5hash: "&key=value" pairs sorted by key, "&" and "=" in values made "_", secret appended.
    expected = (
        __import__("hashlib")
        .md5(
            (
                "&msisdn=12025550101&text=Yes _ thanks_1&timestamp="
                + str(int(now))
                + "synthetic-signature-secret"
            ).encode()
        )
        .hexdigest()
    )
    assert sign("synthetic-signature-secret", "md5hash", params) == expected
    assert sms.verify_webhook("/webhooks/vonage/inbound", {**params, "sig": expected}, {})
    assert not sms.verify_webhook("/x", {**params, "sig": expected.replace("a", "b", 1)}, {})
    stale = {**params, "timestamp": str(int(now) - 3600)}
    assert not sms.verify_webhook(
        "/x", {**stale, "sig": sign("synthetic-signature-secret", "md5hash", stale)}, {}
    )
    assert not sms.verify_webhook("/x", params, {})

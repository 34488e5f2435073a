"""``twilio-voice`` against a local server speaking Twilio's Calls API."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bridge.errors import DeliveryOutcomeUnknown, PermanentDeliveryError, TransientDeliveryError
from bridge.model import Channel
from bridge.plugin import OutboundMessage, PluginContext, SendProbe, text_digest
from tests.integration.delivery.conftest import NOW, PATIENT, SENDER, at, plugin, twilio_options
from tests.integration.delivery.providers import FakeTwilio

CALL = OutboundMessage(
    idempotency_key="reminder|101|2026-03-28|days_ahead|voice",
    channel=Channel.VOICE,
    to=PATIENT,
    text="Hello, this is Synthetic Clinic calling for Alice.",
    voicemail="Hello, this is Synthetic Clinic with a reminder.",
    token="abcdefabcdefabcdefabcdef",
    tags={"caller_id": SENDER},
)


def voice_options(server: FakeTwilio, **extra: object) -> dict[str, object]:
    options = twilio_options(server, **extra)
    del options["from_number"]
    return options


@pytest.mark.parametrize(
    ("mode", "raised", "held"),
    [
        ("ok", None, 1),
        ("429", TransientDeliveryError, 0),
        ("500", DeliveryOutcomeUnknown, 1),
        ("timeout", DeliveryOutcomeUnknown, 1),
        ("malformed", DeliveryOutcomeUnknown, 1),
        ("error:21211", PermanentDeliveryError, 0),
    ],
)
def test_each_provider_answer(
    twilio: FakeTwilio,
    context: PluginContext,
    mode: str,
    raised: type[Exception] | None,
    held: int,
) -> None:
    voice = plugin("twilio-voice", voice_options(twilio), context)
    twilio.queue(mode)
    if raised is None:
        assert voice.send(CALL).provider_ref == twilio.calls[0]["sid"]
    else:
        with pytest.raises(raised):
            voice.send(CALL)
    assert len(twilio.calls) == held


def test_the_call_asks_for_the_script_and_its_outcome(
    twilio: FakeTwilio, context: PluginContext
) -> None:
    plugin("twilio-voice", voice_options(twilio), context).send(CALL)
    form = twilio.requests[0][2]
    base = "https://bridge.example.test/webhooks/twilio"
    assert form["From"] == SENDER  # the clinic's caller ID
    assert form["Url"] == f"{base}/voice/{CALL.token}"
    assert form["StatusCallback"] == f"{base}/call-status/{CALL.token}"
    assert form["MachineDetection"] == "Enable"
    assert "Twiml" not in form


def test_without_webhooks_the_script_goes_inline(
    twilio: FakeTwilio, context: PluginContext
) -> None:
    options = voice_options(twilio)
    del options["webhook_base"]
    plugin("twilio-voice", options, context).send(CALL)
    assert twilio.requests[0][2]["Twiml"] == (
        "<Response><Say>Hello, this is Synthetic Clinic calling for Alice.</Say></Response>"
    )


def test_no_caller_id_is_permanent(twilio: FakeTwilio, context: PluginContext) -> None:
    voice = plugin("twilio-voice", voice_options(twilio), context)
    bare = OutboundMessage(CALL.idempotency_key, Channel.VOICE, PATIENT, CALL.text)
    with pytest.raises(PermanentDeliveryError, match="caller ID"):
        voice.send(bare)


def test_find_sent_finds_the_call(twilio: FakeTwilio, context: PluginContext) -> None:
    voice = plugin("twilio-voice", voice_options(twilio, caller_id=SENDER), context)
    twilio.queue("timeout")
    with pytest.raises(DeliveryOutcomeUnknown):
        voice.send(CALL)
    probe = SendProbe(
        CALL.idempotency_key,
        "t",
        Channel.VOICE,
        PATIENT,
        text_digest(CALL.text),
        at(NOW) - timedelta(seconds=5),
    )
    found = voice.find_sent(probe)
    assert found is not None and found.provider_ref == twilio.calls[0]["sid"]
    taken = frozenset({twilio.calls[0]["sid"]})
    assert voice.find_sent(SendProbe(**{**probe.__dict__, "exclude_refs": taken})) is None

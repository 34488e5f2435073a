"""``twilio-voice``: reminder calls through Twilio's Calls resource.

With ``webhook_base`` set (the bridge's public URL), Twilio fetches the call script from
``/webhooks/twilio/voice/<token>`` once the call is answered: the full script with "press 1 to
confirm, 2 to cancel, 3 to speak to the office" for a person, the shorter voicemail when
answering-machine detection says a machine answered. Call outcomes (completed, busy, no answer,
failed) come back to ``/webhooks/twilio/call-status/<token>`` and drive the redials. Without
``webhook_base`` the script is sent inline and read once (no keypresses, no voicemail branch).

Caller ID: ``caller_id`` here, else the clinic's (``clinic.caller_id``).
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from pydantic import Field

from bridge.errors import PermanentDeliveryError
from bridge.model import Channel
from bridge.plugin import OutboundMessage, SendProbe, SendResult
from bridge.settings_values import PhoneNumber
from plugins.channels.twilio_rest import TwilioChannel, TwilioConfig

CALLER_ID_TAG = "caller_id"


class TwilioVoiceConfig(TwilioConfig):
    caller_id: PhoneNumber = None
    ring_seconds: int = Field(30, ge=5, le=600)
    machine_detection: bool = True


class TwilioVoice(TwilioChannel[TwilioVoiceConfig]):
    """Voice calls through Twilio."""

    name = "twilio-voice"
    Config = TwilioVoiceConfig
    channels = frozenset({Channel.VOICE})
    body_maxlen = 4000

    def send(self, message: OutboundMessage) -> SendResult:
        caller_id = self.config.caller_id or message.tags.get(CALLER_ID_TAG)
        if not caller_id:
            raise PermanentDeliveryError(
                "twilio-voice: no caller ID: set clinic.caller_id or channels.voice.caller_id"
            )
        form = {"To": message.to, "From": caller_id, "Timeout": str(self.config.ring_seconds)}
        base = self.config.webhook_base
        if base and message.token:
            form["Url"] = f"{base}/webhooks/twilio/voice/{message.token}"
            form["Method"] = "POST"
            form["StatusCallback"] = f"{base}/webhooks/twilio/call-status/{message.token}"
            form["StatusCallbackMethod"] = "POST"
            if self.config.machine_detection:
                form["MachineDetection"] = "Enable"
        else:
            form["Twiml"] = inline_script(message.text)
        body = self.client.create("Calls", form)
        return SendResult(provider_ref=str(body["sid"]), status=str(body.get("status") or ""))

    def find_sent(self, probe: SendProbe) -> SendResult | None:
        """A call to the recipient placed since the attempt started and not tied to another
        attempt (calls carry no body to compare)."""
        params = {"To": probe.to}
        if self.config.caller_id:
            params["From"] = str(self.config.caller_id)
        for sid, _ in self.candidates("Calls", params, probe):
            return SendResult(provider_ref=sid)
        return None


def inline_script(text: str) -> str:
    """TwiML reading ``text`` once (used when Twilio cannot reach the bridge's webhooks)."""
    return f"<Response><Say>{escape(text)}</Say></Response>"

"""``twilio-sms``: text messages through Twilio's Messages resource.

Sends from ``from_number`` or a ``messaging_service_sid``; with ``webhook_base`` set (the
bridge's public URL) every message asks for status callbacks at
``/webhooks/twilio/status/<token>``, and the number's incoming-message webhook should point at
``/webhooks/twilio/sms``. Twilio's Advanced Opt-Out answers STOP, START and HELP itself
(``provider_handles_opt_out``), and treats CANCEL as an opt-out too.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, model_validator

from bridge.model import Channel
from bridge.plugin import (
    OutboundMessage,
    SendProbe,
    SendResult,
    text_digest,
)
from bridge.settings_values import PhoneNumber
from plugins.channels.twilio_rest import (
    TwilioChannel,
    TwilioConfig,
    price_of,
)


class TwilioSmsConfig(TwilioConfig):
    from_number: PhoneNumber = None
    messaging_service_sid: str | None = Field(None, pattern=r"^MG[0-9a-fA-F]{32}$")
    provider_handles_opt_out: bool = True

    @model_validator(mode="after")
    def _has_sender(self) -> TwilioSmsConfig:
        if not self.from_number and not self.messaging_service_sid:
            raise ValueError("set from_number (E.164) or messaging_service_sid")
        return self


class TwilioSms(TwilioChannel[TwilioSmsConfig]):
    """SMS through Twilio."""

    name = "twilio-sms"
    Config = TwilioSmsConfig
    channels = frozenset({Channel.SMS})
    body_maxlen = 1600
    #: Keywords the provider itself treats as an opt-out (a reply CANCEL stops all texts).
    opt_out_keywords: ClassVar[frozenset[str]] = frozenset(
        {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
    )

    @property
    def replies_to_keywords(self) -> bool:
        """True when Twilio answers STOP / START / HELP itself (we must not answer twice)."""
        return self.config.provider_handles_opt_out

    def send(self, message: OutboundMessage) -> SendResult:
        form = {"To": message.to, "Body": message.text[: self.body_maxlen]}
        if self.config.messaging_service_sid:
            form["MessagingServiceSid"] = self.config.messaging_service_sid
        else:
            form["From"] = str(self.config.from_number)
        if self.config.webhook_base and message.token:
            form["StatusCallback"] = (
                f"{self.config.webhook_base}/webhooks/twilio/status/{message.token}"
            )
        body = self.client.create("Messages", form)
        return SendResult(
            provider_ref=str(body["sid"]),
            cost=price_of(body),
            segments=_int(body.get("num_segments")),
            status=str(body.get("status") or ""),
        )

    def find_sent(self, probe: SendProbe) -> SendResult | None:
        """The recipient's messages, newest first, down to the attempt's start: the one with
        the same body not already tied to another attempt."""
        params = {"To": probe.to}
        if self.config.from_number:
            params["From"] = str(self.config.from_number)
        for sid, item in self.candidates("Messages", params, probe):
            if text_digest(str(item.get("body") or "")) == probe.body_digest:
                return SendResult(provider_ref=sid, segments=_int(item.get("num_segments")))
        return None


def _int(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None

"""``vonage-sms``: text messages through the Vonage (Nexmo) SMS API, a second wire format.

``POST {api_base}/sms/json`` with form fields ``api_key``, ``api_secret``, ``from``, ``to``
(international digits, no ``+``), ``text``, ``type`` (``unicode`` when the text is not GSM-7),
``client-ref`` (our opaque attempt token, echoed in delivery receipts) and ``callback``. The
answer is HTTP 200 even for a refused message: ``{"message-count": "2", "messages": [{"status":
"0", "message-id": ..., "message-price": ..., "remaining-balance": ...}, ...]}``, one entry per
part, each with its own status (``error-text`` when not ``"0"``).

Status codes: 1 throttled and 5 internal error (not processed: retry), 4 bad credentials and 9
out of credit (hold the channel), 7 number barred (an opt-out), the rest permanent. HTTP 429
holds the channel; a time-out after the request or a 5xx leaves the outcome unknown. The SMS API
has no way to look a message up by ``client-ref``: an interrupted send is settled by its
delivery receipt if one arrived, else by ``delivery.unknown_policy``.

Webhook signatures: the ``sig`` parameter over the other parameters sorted by name, each as
``&name=value`` with ``&`` and ``=`` in values replaced by ``_``; ``md5hash`` appends the
signature secret and takes MD5, the HMAC methods key the hash with it (Vonage's own SDKs).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr

from bridge.errors import (
    DeliveryOutcomeUnknown,
    PermanentDeliveryError,
    RecipientOptedOut,
    TransientDeliveryError,
)
from bridge.model import Channel
from bridge.plugin import ChannelPlugin, OutboundMessage, PluginConfig, PluginContext, SendResult
from bridge.segments import is_gsm7
from plugins.channels.http_form import Answer, FormClient, NoAnswer, NotSent

RETRY_NOW = {"1": 1.0, "5": 5.0}
HOLD = {"4": 300.0, "9": 3600.0}
OPTED_OUT = {"7"}
SIGNATURE_AGE_SECONDS = 300


class VonageSmsConfig(PluginConfig):
    api_key: str = Field(min_length=4)
    api_secret: SecretStr
    sender: str = Field(min_length=1, max_length=15, description="number or alphanumeric ID")
    api_base: str = "https://rest.nexmo.com"
    webhook_base: str | None = None
    signature_secret: SecretStr | None = None
    signature_method: Literal["md5hash", "md5", "sha1", "sha256", "sha512"] = "md5hash"
    timeout_seconds: float = Field(10.0, gt=0, le=120)


class VonageSms(ChannelPlugin[VonageSmsConfig]):
    """SMS through Vonage's SMS API."""

    name = "vonage-sms"
    Config = VonageSmsConfig
    channels = frozenset({Channel.SMS})
    body_maxlen = 3200
    opt_out_keywords: ClassVar[frozenset[str]] = frozenset(
        {"STOP", "STOPALL", "UNSUBSCRIBE", "END", "QUIT"}
    )
    replies_to_keywords = False

    def __init__(self, config: VonageSmsConfig, context: PluginContext) -> None:
        super().__init__(config, context)
        self.http = FormClient(
            config.api_base,
            timeout=config.timeout_seconds,
            connect_timeout=min(config.timeout_seconds, 5.0),
        )

    def send(self, message: OutboundMessage) -> SendResult:
        form = {
            "api_key": self.config.api_key,
            "api_secret": self.config.api_secret.get_secret_value(),
            "from": self.config.sender.lstrip("+"),
            "to": message.to.lstrip("+"),
            "text": message.text[: self.body_maxlen],
            "type": "text" if is_gsm7(message.text) else "unicode",
        }
        if message.token:
            form["client-ref"] = message.token
        if self.config.webhook_base:
            form["callback"] = f"{self.config.webhook_base.rstrip('/')}/webhooks/vonage/dlr"
            form["status-report-req"] = "1"
        try:
            answer = self.http.post_form("/sms/json", form)
        except NotSent as exc:
            raise TransientDeliveryError(f"vonage: {exc}") from exc
        except NoAnswer as exc:
            raise DeliveryOutcomeUnknown(
                f"vonage: no answer after the request was sent ({exc})"
            ) from exc
        return _result(answer)

    webhook_provider = "vonage"

    def verify_webhook(
        self, path: str, params: Mapping[str, str], headers: Mapping[str, str]
    ) -> bool:
        """True when Vonage signed these parameters (``sig``) in the last five minutes."""
        return self.is_signed(params, self.context.clock.now().timestamp())

    def close(self) -> None:
        self.http.close()

    def is_signed(self, params: Mapping[str, str], now_epoch: float) -> bool:
        """True when ``params`` carry a valid, recent ``sig``; always False without a secret."""
        secret = self.config.signature_secret
        given = params.get("sig", "")
        if secret is None or not given:
            return False
        try:
            stamp = float(params.get("timestamp", ""))
        except ValueError:
            return False
        if abs(now_epoch - stamp) > SIGNATURE_AGE_SECONDS:
            return False
        expected = sign(secret.get_secret_value(), self.config.signature_method, params)
        return hmac.compare_digest(expected.lower(), given.lower())


def sign(secret: str, method: str, params: Mapping[str, str]) -> str:
    """Vonage's signature of ``params`` (the ``sig`` parameter itself left out)."""
    parts = []
    for key in sorted(k for k in params if k != "sig"):
        value = str(params[key]).replace("&", "_").replace("=", "_")
        parts.append(f"&{key}={value}")
    text = "".join(parts)
    if method == "md5hash":
        return hashlib.md5((text + secret).encode("utf-8")).hexdigest()
    return hmac.new(secret.encode(), text.encode("utf-8"), method).hexdigest()


def _result(answer: Answer) -> SendResult:
    status = answer.status
    if status == 429:
        raise TransientDeliveryError("vonage: too many requests (HTTP 429)", retry_after=1.0)
    if status >= 500:
        raise DeliveryOutcomeUnknown(f"vonage: server error (HTTP {status})")
    if status == 401:
        raise TransientDeliveryError("vonage: credentials refused (HTTP 401)", retry_after=300.0)
    try:
        body: Any = answer.json()
    except (ValueError, UnicodeDecodeError) as exc:
        if status >= 400:
            raise PermanentDeliveryError(f"vonage: HTTP {status}") from exc
        raise DeliveryOutcomeUnknown(f"vonage: HTTP {status} with a body that is not JSON") from exc
    parts = body.get("messages") if isinstance(body, dict) else None
    if status >= 400 or not isinstance(parts, list) or not parts:
        raise DeliveryOutcomeUnknown(f"vonage: HTTP {status} without message results")
    failed = [p for p in parts if not isinstance(p, dict) or str(p.get("status")) != "0"]
    if failed:
        first = failed[0] if isinstance(failed[0], dict) else {}
        code = str(first.get("status", "?"))
        text = f"vonage status {code}: {first.get('error-text') or 'refused'}"
        if len(failed) < len(parts):
            # Some parts went out: retrying would resend them; the message counts as sent.
            raise DeliveryOutcomeUnknown(f"{text} (only some parts were accepted)")
        error: PermanentDeliveryError | TransientDeliveryError
        if code in RETRY_NOW or code in HOLD:
            error = TransientDeliveryError(text, retry_after=RETRY_NOW.get(code) or HOLD[code])
        elif code in OPTED_OUT:
            error = RecipientOptedOut(text)
        else:
            error = PermanentDeliveryError(text)
        error.code = code
        raise error
    price = 0.0
    for part in parts:
        with contextlib.suppress(TypeError, ValueError):
            price += float(part.get("message-price") or 0)
    return SendResult(
        provider_ref=str(parts[0].get("message-id") or "") or None,
        cost=round(price, 6) if price else None,
        segments=len(parts),
        status="accepted",
    )

"""Twilio's REST API (2010-04-01) as the Twilio channels use it: one client, one error mapping.

Requests are form-encoded with HTTP basic auth (account SID, auth token); answers are JSON.
What a failure means for the bridge is decided here and nowhere else:

- the connection could not be made (refused, DNS, connect time-out): the request never left,
  ``TransientDeliveryError``;
- 429 (Twilio error 20429) or 503: not processed, ``TransientDeliveryError`` with the
  ``Retry-After`` seconds (60 when absent), which holds the channel;
- 401 / 403 (credentials): ``TransientDeliveryError`` held 5 minutes, logged as an error, so a
  typo in the token does not fail every reminder of the day;
- other 4xx with Twilio's ``{"code", "message"}``: ``PermanentDeliveryError`` with the code
  (21610, the recipient replied STOP, is ``RecipientOptedOut``);
- a read time-out, a dropped connection after the request was written, 500 / 502 / 504, or a
  2xx whose body is not the resource: the message may exist, ``DeliveryOutcomeUnknown``.

Twilio keeps no idempotency key for messages or calls; interrupted sends are found again by
listing the recipient's messages (newest first) and matching body and time.

Webhook signatures (``X-Twilio-Signature``): base64 HMAC-SHA1, keyed with the auth token, of the
full public URL followed by every POST parameter name and value, sorted by name.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from pydantic import Field, SecretStr, field_validator

from bridge.errors import (
    DeliveryOutcomeUnknown,
    PermanentDeliveryError,
    RecipientOptedOut,
    TransientDeliveryError,
)
from bridge.plugin import ChannelPlugin, PluginConfig, PluginContext, SendProbe
from plugins.channels.http_form import Answer, FormClient, NoAnswer, NotSent

log = logging.getLogger(__name__)

API_VERSION = "2010-04-01"
DEFAULT_RETRY_AFTER = 60.0
AUTH_HOLD = 300.0
OPTED_OUT_CODES = {"21610"}
# How far a provider's clock may be from ours when matching an interrupted send by time.
CLOCK_SLACK = timedelta(minutes=10)
MAX_PAGES = 20


class TwilioConfig(PluginConfig):
    """Options shared by ``twilio-sms`` and ``twilio-voice``."""

    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")
    auth_token: SecretStr
    api_base: str = "https://api.twilio.com"
    webhook_base: str | None = None
    timeout_seconds: float = Field(10.0, gt=0, le=120)

    @field_validator("api_base", "webhook_base")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value


class TwilioClient:
    """A small client for the resources the bridge uses (Messages, Calls)."""

    def __init__(self, config: TwilioConfig) -> None:
        self.config = config
        self.http = FormClient(
            config.api_base,
            timeout=config.timeout_seconds,
            connect_timeout=min(config.timeout_seconds, 5.0),
            auth=(config.account_sid, config.auth_token.get_secret_value()),
        )

    def path(self, resource: str) -> str:
        return f"/{API_VERSION}/Accounts/{self.config.account_sid}/{resource}.json"

    def create(self, resource: str, form: Mapping[str, str]) -> dict[str, Any]:
        """POST a new resource; returns its JSON, or raises from the error tree."""
        try:
            answer = self.http.post_form(self.path(resource), form)
        except NotSent as exc:
            raise TransientDeliveryError(f"twilio: {exc}") from exc
        except NoAnswer as exc:
            raise DeliveryOutcomeUnknown(
                f"twilio: no answer after the request was sent ({exc})"
            ) from exc
        return self._resource(answer, resource)

    def list(self, resource: str, params: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        """Every item of a list resource, newest first, following ``next_page_uri``."""
        url: str | None = self.path(resource)
        query: dict[str, str] | None = {**params, "PageSize": "100"}
        key = resource.lower()
        for _ in range(MAX_PAGES):
            if url is None:
                return
            try:
                answer = self.http.get(url, query)
            except (NotSent, NoAnswer) as exc:
                raise TransientDeliveryError(f"twilio: cannot list {resource} ({exc})") from exc
            if answer.status >= 400:
                raise TransientDeliveryError(
                    f"twilio: listing {resource} failed (HTTP {answer.status})"
                )
            page = _json(answer)
            items = page.get(key)
            if not isinstance(items, list):
                raise TransientDeliveryError(f"twilio: {resource} list without '{key}'")
            yield from (item for item in items if isinstance(item, dict))
            next_uri = page.get("next_page_uri")
            url, query = (next_uri if isinstance(next_uri, str) else None), None

    def _resource(self, answer: Answer, resource: str) -> dict[str, Any]:
        status = answer.status
        if status in (429, 503):
            raise TransientDeliveryError(
                f"twilio: {_describe(answer)} (HTTP {status})",
                retry_after=_retry_after(answer),
            )
        if status in (401, 403):
            log.error("twilio refused the credentials of account %s", self.config.account_sid)
            raise TransientDeliveryError(
                f"twilio: credentials refused (HTTP {status})", retry_after=AUTH_HOLD
            )
        if status >= 500:
            raise DeliveryOutcomeUnknown(f"twilio: server error (HTTP {status})")
        body = _json(answer)
        if status >= 400:
            code = str(body.get("code") or "")
            message = str(body.get("message") or f"HTTP {status}")
            cls = RecipientOptedOut if code in OPTED_OUT_CODES else PermanentDeliveryError
            error = cls(f"twilio error {code or status}: {message}")
            error.code = code or str(status)
            raise error
        if not isinstance(body.get("sid"), str) or not body["sid"]:
            raise DeliveryOutcomeUnknown(
                f"twilio: HTTP {status} without a {resource} sid: the message may exist"
            )
        return body

    def close(self) -> None:
        self.http.close()


def _json(answer: Answer) -> dict[str, Any]:
    try:
        body = answer.json()
    except (ValueError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


def _describe(answer: Answer) -> str:
    body = _json(answer)
    if body.get("message"):
        return f"error {body.get('code', '')}: {body['message']}"
    return "request not processed"


def _retry_after(answer: Answer) -> float:
    value = answer.headers.get("retry-after", "")
    try:
        return max(float(value), 1.0)
    except ValueError:
        return DEFAULT_RETRY_AFTER


def created_at(item: Mapping[str, Any]) -> datetime | None:
    """A resource's ``date_created`` (RFC 2822, as Twilio writes it)."""
    value = item.get("date_created")
    if not isinstance(value, str):
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None


def price_of(item: Mapping[str, Any]) -> float | None:
    """Twilio's ``price`` is a negative string (``"-0.00750"``) or null until known."""
    value = item.get("price")
    try:
        return abs(float(value)) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """The ``X-Twilio-Signature`` Twilio computes for a form POST to ``url``."""
    payload = url + "".join(f"{key}{params[key]}" for key in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def is_signed(auth_token: str, url: str, params: Mapping[str, str], given: str | None) -> bool:
    """True when ``given`` is Twilio's signature of this request (compared in constant time)."""
    if not given:
        return False
    return hmac.compare_digest(signature(auth_token, url, params), given)


def verify(
    config: TwilioConfig, path: str, params: Mapping[str, str], headers: Mapping[str, str]
) -> bool:
    """Check a webhook to ``path`` (with its query) against the public URL Twilio called:
    ``webhook_base`` + ``path`` (behind a proxy the bridge cannot see that URL itself)."""
    if not config.webhook_base:
        return False
    url = config.webhook_base + path
    return is_signed(
        config.auth_token.get_secret_value(), url, params, headers.get("x-twilio-signature")
    )


TC = TypeVar("TC", bound=TwilioConfig)


class TwilioChannel(ChannelPlugin[TC]):
    """What the Twilio channels share: the client, webhook signatures, finding a send again."""

    webhook_provider = "twilio"

    def __init__(self, config: TC, context: PluginContext) -> None:
        super().__init__(config, context)
        self.client = TwilioClient(config)

    def verify_webhook(
        self, path: str, params: Mapping[str, str], headers: Mapping[str, str]
    ) -> bool:
        """True when Twilio signed this request to ``path`` (``X-Twilio-Signature``)."""
        return verify(self.config, path, params, headers)

    def candidates(
        self, resource: str, params: Mapping[str, str], probe: SendProbe
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """The recipient's messages or calls since the attempt started (less the clock
        slack), newest first, that no other attempt has claimed."""
        oldest = probe.since - CLOCK_SLACK
        for item in self.client.list(resource, params):
            when = created_at(item)
            if when is not None and when < oldest:
                return
            sid = str(item.get("sid") or "")
            if sid and sid not in probe.exclude_refs:
                yield sid, item

    def close(self) -> None:
        self.client.close()

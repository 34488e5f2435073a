"""Provider callbacks on the bridge's web server (entry point ``bridge.web``), signature-checked.

Twilio (``X-Twilio-Signature``, checked against ``webhook_base`` + path of the configured Twilio
channel): ``/webhooks/twilio/status/<token>`` (SMS status), ``/webhooks/twilio/sms`` (replies),
``/webhooks/twilio/voice/<token>`` (the call script, TwiML), ``.../gather`` (keypresses),
``.../transfer`` (the result of "3: speak to the office"), ``/webhooks/twilio/call-status/<token>``.
Vonage (``sig``): ``/webhooks/vonage/dlr`` (delivery receipts), ``/webhooks/vonage/inbound``.
Email: ``/webhooks/email/unsubscribe/<token>`` (the List-Unsubscribe one-click link; the keyed
token is its authority).

A request that is unsigned, forged or names no known attempt is refused (403 / 404) and kept in
``rejects`` (kind ``webhook``) with its body for inspection. A callback the provider retries is
handled once (``inbound`` is unique per provider id). URLs carry only opaque tokens.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol
from xml.sax.saxutils import escape, quoteattr
from zoneinfo import ZoneInfo

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from bridge.delivery import ledger
from bridge.delivery.inbound import Inbound, answer_message, handle_reply, record_inbound
from bridge.delivery.replies import Intent
from bridge.delivery.status import TWILIO_CALL, TWILIO_SMS, VONAGE_DLR, apply_status, call_cost
from bridge.errors import SourceError
from bridge.model import Channel
from bridge.plugin import Reference
from bridge.runtime import Runtime
from bridge.store.rejects import record_reject

log = logging.getLogger(__name__)

WEBHOOK = "webhook"
TWIML = "application/xml"
MACHINE = {"machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax"}
KEYS = {"1": Intent.CONFIRM, "2": Intent.CANCEL, "3": Intent.CALLBACK}
SAID = {
    Intent.CONFIRM: "Thank you. Your appointment is confirmed. Goodbye.",
    Intent.CANCEL: "Your appointment has been cancelled. Thank you for letting us know. Goodbye.",
}


class Verifier(Protocol):
    webhook_provider: str

    def verify_webhook(
        self, path: str, params: Mapping[str, str], headers: Mapping[str, str]
    ) -> bool: ...


Handler = Callable[[Request, dict[str, str]], Awaitable[Response]]


def routes(runtime: Runtime) -> list[BaseRoute]:
    """The delivery webhooks for one runtime."""
    hooks = Webhooks(runtime)
    twilio, vonage = hooks.signed("twilio"), hooks.signed("vonage")
    return [
        Route("/webhooks/twilio/status/{token}", twilio(hooks.twilio_status), methods=["POST"]),
        Route("/webhooks/twilio/sms", twilio(hooks.twilio_sms), methods=["POST"]),
        Route("/webhooks/twilio/voice/{token}", twilio(hooks.twilio_script), methods=["POST"]),
        Route(
            "/webhooks/twilio/voice/{token}/gather", twilio(hooks.twilio_gather), methods=["POST"]
        ),
        Route(
            "/webhooks/twilio/voice/{token}/transfer",
            twilio(hooks.twilio_transfer),
            methods=["POST"],
        ),
        Route("/webhooks/twilio/call-status/{token}", twilio(hooks.twilio_call), methods=["POST"]),
        Route("/webhooks/vonage/dlr", vonage(hooks.vonage_dlr), methods=["GET", "POST"]),
        Route("/webhooks/vonage/inbound", vonage(hooks.vonage_inbound), methods=["GET", "POST"]),
        Route(
            "/webhooks/email/unsubscribe/{token}", hooks.email_unsubscribe, methods=["GET", "POST"]
        ),
    ]


async def read_params(request: Request) -> tuple[dict[str, str], str]:
    """The request's parameters (query, form or JSON body) and its raw body for the record."""
    raw = (await request.body()).decode("utf-8", "replace")
    params = {k: v for k, v in request.query_params.items()}
    kind = request.headers.get("content-type", "")
    if request.method == "POST" and raw:
        if kind.startswith("application/json"):
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            if isinstance(body, dict):
                params.update({str(k): str(v) for k, v in body.items() if v is not None})
        else:
            form = await request.form()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
    return params, raw


class Webhooks:
    """The handlers, sharing one runtime."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._zone: ZoneInfo | None = None

    @property
    def zone(self) -> ZoneInfo:
        """The clinic's zone (the settings', else the host's: read once, when first needed)."""
        if self._zone is None:
            reference = Reference() if self.runtime.settings.clinic.timezone else None
            try:
                reference = reference or self.runtime.source.reference()
            except SourceError:
                return self.runtime.zone(Reference())  # the host is away: ask again next time
            self._zone = self.runtime.zone(reference)
        return self._zone

    def verifiers(self, provider: str) -> list[Verifier]:
        found = []
        for plugin in dict.fromkeys(self.runtime.channels.values()):
            if getattr(plugin, "webhook_provider", None) == provider:
                found.append(plugin)
        return found  # type: ignore[return-value]

    def signed(
        self, provider: str
    ) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
        """Wrap a handler: it runs only for a request the provider signed."""

        def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
            async def endpoint(request: Request) -> Response:
                params, raw = await read_params(request)
                path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                verifiers = self.verifiers(provider)
                if not verifiers:
                    return await self.refuse(request, raw, f"no {provider} channel is configured")
                headers = {k.lower(): v for k, v in request.headers.items()}
                if not any(v.verify_webhook(path, params, headers) for v in verifiers):
                    return await self.refuse(request, raw, "missing or wrong signature")
                return await handler(request, params)

            return endpoint

        return wrap

    async def refuse(self, request: Request, raw: str, reason: str, status: int = 403) -> Response:
        """Refuse a request and keep it for inspection (no patient data in the log line)."""
        ref = f"{request.url.path} {uuid.uuid4().hex[:12]}"
        now = self.runtime.clock.now()

        def keep() -> None:
            with self.runtime.store.begin("keep refused webhook") as connection:
                record_reject(connection, WEBHOOK, ref, reason, now, raw[:20000])

        await run_in_threadpool(keep)
        log.warning("webhook refused (%s): %s", request.url.path.split("/")[2], reason)
        return PlainTextResponse(f"refused: {reason}", status_code=status)

    async def attempt(self, request: Request, raw: str) -> ledger.Delivery | Response:
        token = request.path_params["token"]

        def find() -> ledger.Delivery | None:
            with self.runtime.store.begin("find attempt") as connection:
                return ledger.by_token(connection, token)

        found = await run_in_threadpool(find)
        if found is None:
            return await self.refuse(request, raw, "no such message", status=404)
        return found

    # --- Twilio ------------------------------------------------------------------------------

    async def twilio_status(self, request: Request, params: dict[str, str]) -> Response:
        found = await self.attempt(request, json.dumps(params))
        if isinstance(found, Response):
            return found
        status = params.get("MessageStatus", params.get("SmsStatus", ""))
        await self._status(
            found,
            "twilio-status",
            f"{params.get('MessageSid', '')}:{status}",
            TWILIO_SMS.get(status),
            params.get("MessageSid"),
            params.get("ErrorCode") or None,
            None,
        )
        return Response(status_code=204)

    async def twilio_call(self, request: Request, params: dict[str, str]) -> Response:
        found = await self.attempt(request, json.dumps(params))
        if isinstance(found, Response):
            return found
        status = params.get("CallStatus", "")
        cost = call_cost(self.runtime.settings, params.get("CallDuration")) if status else None
        await self._status(
            found,
            "twilio-call",
            f"{params.get('CallSid', '')}:{status}",
            TWILIO_CALL.get(status),
            params.get("CallSid"),
            status if TWILIO_CALL.get(status) == ledger.FAILED else None,
            cost if status == "completed" else None,
        )
        return Response(status_code=204)

    async def twilio_sms(self, request: Request, params: dict[str, str]) -> Response:
        plugin = self.runtime.channels.get(Channel.SMS)
        inbound = Inbound(
            kind="twilio-sms",
            provider_ref=params.get("MessageSid", params.get("SmsSid", "")),
            channel=Channel.SMS,
            sender=params.get("From", ""),
            text=params.get("Body", ""),
        )
        if not inbound.provider_ref or not inbound.sender:
            return await self.refuse(request, json.dumps(params), "no MessageSid or From", 400)
        await run_in_threadpool(handle_reply, self.runtime, inbound, plugin)
        return Response("<Response/>", media_type=TWIML)

    async def twilio_script(self, request: Request, params: dict[str, str]) -> Response:
        found = await self.attempt(request, json.dumps(params))
        if isinstance(found, Response):
            return found
        token = found.token

        def script() -> tuple[str, str] | None:
            with self.runtime.store.begin("read call script") as connection:
                if params.get("CallSid"):
                    ledger.set_ref(connection, token, params["CallSid"], self.runtime.clock.now())
                return ledger.call_script(connection, token)

        texts = await run_in_threadpool(script)
        if texts is None:
            return twiml("<Hangup/>")
        full, voicemail = texts
        if params.get("AnsweredBy", "") in MACHINE:
            return twiml(f"<Say>{escape(voicemail)}</Say><Hangup/>")
        action = quoteattr(f"{request.url.path}/gather")
        gather = (
            f'<Gather numDigits="1" timeout="8" method="POST" action={action}>'
            f"<Say>{escape(full)}</Say></Gather>"
        )
        return twiml(gather + f"<Say>{escape(_goodbye(self.runtime))}</Say><Hangup/>")

    async def twilio_gather(self, request: Request, params: dict[str, str]) -> Response:
        found = await self.attempt(request, json.dumps(params))
        if isinstance(found, Response):
            return found
        digit = params.get("Digits", "")[:1]
        intent = KEYS.get(digit)
        if intent is None:
            script = escape(request.url.path.removesuffix("/gather"))
            return twiml(
                "<Say>Sorry, that is not an option.</Say>"
                f'<Redirect method="POST">{script}</Redirect>'
            )
        ref = f"{params.get('CallSid', found.token)}:{digit}"
        if intent == Intent.CALLBACK:
            phone = self.runtime.settings.clinic.phone
            if phone:
                action = quoteattr(request.url.path.removesuffix("/gather") + "/transfer")
                caller = self.runtime.settings.clinic.caller_id
                caller_attr = f" callerId={quoteattr(caller)}" if caller else ""
                return twiml(
                    "<Say>Please hold while we connect you to the office.</Say>"
                    f'<Dial action={action} method="POST"{caller_attr}>{escape(phone)}</Dial>'
                )
        await run_in_threadpool(answer_message, self.runtime, found, intent, ref)
        said = SAID.get(intent, "The office will call you back. Goodbye.")
        return twiml(f"<Say>{escape(said)}</Say><Hangup/>")

    async def twilio_transfer(self, request: Request, params: dict[str, str]) -> Response:
        found = await self.attempt(request, json.dumps(params))
        if isinstance(found, Response):
            return found
        if params.get("DialCallStatus", "") == "completed":
            return twiml("<Hangup/>")
        ref = f"{params.get('CallSid', found.token)}:transfer"
        await run_in_threadpool(answer_message, self.runtime, found, Intent.CALLBACK, ref)
        return twiml(
            "<Say>Nobody could take your call right now. The office will call you back. "
            "Goodbye.</Say><Hangup/>"
        )

    # --- Vonage ------------------------------------------------------------------------------

    async def vonage_dlr(self, request: Request, params: dict[str, str]) -> Response:
        token = params.get("client-ref", "")

        def find() -> ledger.Delivery | None:
            with self.runtime.store.begin("find attempt") as connection:
                return ledger.by_token(connection, token) if token else None

        found = await run_in_threadpool(find)
        if found is None:
            return await self.refuse(request, json.dumps(params), "no such message", 404)
        status = params.get("status", "")
        code = params.get("err-code") or None
        await self._status(
            found,
            "vonage-dlr",
            f"{params.get('messageId', '')}:{status}",
            VONAGE_DLR.get(status),
            params.get("messageId"),
            code if code not in (None, "0") else None,
            None,
        )
        return Response(status_code=204)

    async def vonage_inbound(self, request: Request, params: dict[str, str]) -> Response:
        plugin = self.runtime.channels.get(Channel.SMS)
        sender = params.get("msisdn", "")
        inbound = Inbound(
            kind="vonage-sms",
            provider_ref=params.get("messageId", ""),
            channel=Channel.SMS,
            sender=f"+{sender.lstrip('+')}" if sender else "",
            text=params.get("text", ""),
        )
        if not inbound.provider_ref or not sender:
            return await self.refuse(request, json.dumps(params), "no messageId or msisdn", 400)
        await run_in_threadpool(handle_reply, self.runtime, inbound, plugin)
        return Response(status_code=204)

    # --- email -------------------------------------------------------------------------------

    async def email_unsubscribe(self, request: Request) -> Response:
        _, raw = await read_params(request)
        found = await self.attempt(request, raw)
        if isinstance(found, Response):
            return found
        if found.channel != Channel.EMAIL:
            return await self.refuse(request, raw, "not an email", 404)
        if request.method == "GET":
            return HTMLResponse(_unsubscribe_page(self.runtime.settings.clinic.name))
        await run_in_threadpool(answer_message, self.runtime, found, Intent.OPT_OUT, found.token)
        return HTMLResponse(
            "<!doctype html><meta charset='utf-8'><title>Unsubscribed</title>"
            "<p>You will not get appointment emails any more.</p>"
        )

    # --- shared ------------------------------------------------------------------------------

    async def _status(
        self,
        delivery: ledger.Delivery,
        kind: str,
        ref: str,
        outcome: str | None,
        provider_ref: str | None,
        code: str | None,
        cost: float | None,
    ) -> None:
        def apply() -> None:
            now = self.runtime.clock.now()
            with self.runtime.store.begin("apply provider status") as connection:
                inbound = Inbound(kind, ref, delivery.channel, "", "")
                if not record_inbound(connection, inbound, delivery.id, now):
                    return  # the provider retried a callback already handled
                apply_status(
                    connection,
                    self.runtime.settings,
                    self.zone,
                    ledger.by_token(connection, delivery.token) or delivery,
                    outcome,
                    now,
                    provider_ref=provider_ref,
                    code=code,
                    cost=cost,
                )

        await run_in_threadpool(apply)


def twiml(body: str) -> Response:
    return Response(
        f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>', media_type=TWIML
    )


def _goodbye(runtime: Runtime) -> str:
    phone = runtime.settings.clinic.phone
    return f"To reach the office, call {phone}. Goodbye." if phone else "Goodbye."


def _unsubscribe_page(clinic: str) -> str:
    return (
        "<!doctype html><meta charset='utf-8'><title>Unsubscribe</title>"
        f"<h1>{escape(clinic)}</h1><p>Stop appointment emails to this address?</p>"
        "<form method='post'><button type='submit'>Unsubscribe</button></form>"
    )

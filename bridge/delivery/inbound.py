"""Replies and keypresses: recorded once, understood, answered.

Every reply is stored in ``inbound`` (once per provider id: a retried webhook is a no-op), tied
to the newest message sent to that address, parsed (``bridge.delivery.replies``) and applied
(``bridge.delivery.answers``). Free text waits for staff (``bridge replies``) and gets an
auto-reply with the clinic's phone. Where the provider answers STOP / START / HELP itself
(Twilio's Advanced Opt-Out), the bridge does not answer them a second time; after an opt-out,
the address gets no reply to anything but START and HELP.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, update

from bridge.delivery import consent, ledger
from bridge.delivery.answers import COMMANDS, Answer, apply_answer
from bridge.delivery.direct import Direct, send_direct
from bridge.delivery.replies import OPT_OUT_WORDS, Intent, normalize, parse
from bridge.delivery.tables import inbound as inbound_table
from bridge.errors import DeliveryError
from bridge.model import Channel
from bridge.runtime import Runtime
from bridge.store.engine import insert_ignore

log = logging.getLogger(__name__)

DONE = "done"
STAFF = "staff"
KEYWORD_REPLIES = (Intent.OPT_OUT, Intent.OPT_IN, Intent.HELP)


@dataclass(frozen=True)
class Inbound:
    """One thing a provider told us: a reply, a keypress, a status."""

    kind: str
    provider_ref: str
    channel: Channel
    sender: str
    text: str


def record_inbound(
    connection: Connection, item: Inbound, delivery_id: int | None, now: datetime
) -> bool:
    """Store ``item`` unless the same provider id was stored before; True when new."""
    return insert_ignore(
        connection,
        inbound_table,
        {
            "kind": item.kind,
            "provider_ref": item.provider_ref[:128],
            "delivery_id": delivery_id,
            "channel": item.channel.value,
            "sender": item.sender or None,
            "text": item.text or None,
            "status": "received",
            "received_at": now,
        },
        keys=("kind", "provider_ref"),
    )


def _close(
    connection: Connection,
    item: Inbound,
    delivery_id: int | None,
    intent: Intent,
    status: str,
    detail: str,
    now: datetime,
) -> None:
    connection.execute(
        update(inbound_table)
        .where(
            inbound_table.c.kind == item.kind,
            inbound_table.c.provider_ref == item.provider_ref[:128],
        )
        .values(
            delivery_id=delivery_id,
            intent=intent.value,
            status=status,
            detail=detail,
            handled_at=now,
        )
    )


def handle_reply(runtime: Runtime, item: Inbound, plugin: Any) -> Intent | None:
    """Record, understand and answer one SMS reply; None when it was a retried duplicate."""
    words = getattr(plugin, "opt_out_keywords", OPT_OUT_WORDS)
    intent = parse(item.text, words)
    now = runtime.clock.now()
    with runtime.store.begin("record reply") as connection:
        if not record_inbound(connection, item, None, now):
            return None
        was_out = consent.is_address_opted_out(connection, item.channel, item.sender)
        delivery = ledger.last_to(connection, item.channel, item.sender)
        answer = Answer(intent, "sms-reply", item.provider_ref, item.channel, item.sender, delivery)
        if intent in COMMANDS:
            detail = apply_answer(connection, answer, now)
        else:
            detail = "for staff" if intent == Intent.STAFF else intent.value
        status = STAFF if intent == Intent.STAFF or "for staff" in detail else DONE
        if intent == Intent.OPT_OUT and normalize(item.text) == "CANCEL":
            # The provider opted the number out on CANCEL; the patient may have meant the visit.
            status, detail = STAFF, detail + "; replied CANCEL: ask whether the visit is cancelled"
        _close(connection, item, delivery.id if delivery else None, intent, status, detail, now)
    log.info("reply %s: %s", item.kind, intent.value)
    _auto_reply(runtime, item, intent, plugin, was_out, delivery is not None)
    return intent


def answer_message(runtime: Runtime, delivery: ledger.Delivery, intent: Intent, ref: str) -> str:
    """A keypress on a call (or an email's unsubscribe link): record and apply it."""
    origin = "email-unsubscribe" if delivery.channel == Channel.EMAIL else "voice-keypress"
    item = Inbound(origin, ref, delivery.channel, delivery.recipient, "")
    now = runtime.clock.now()
    with runtime.store.begin("record answer") as connection:
        if not record_inbound(connection, item, delivery.id, now):
            return "already handled"
        answer = Answer(intent, origin, ref, delivery.channel, delivery.recipient, delivery)
        detail = apply_answer(connection, answer, now)
        _close(connection, item, delivery.id, intent, DONE, detail, now)
    log.info("%s: %s", origin, intent.value)
    return detail


def reply_text(runtime: Runtime, intent: Intent, found: bool) -> str:
    """The auto-reply to ``intent`` (English; the clinic's name and phone filled in)."""
    clinic = runtime.settings.clinic
    call = f" call us at {clinic.phone}" if clinic.phone else " call the office"
    if intent in (Intent.CONFIRM, Intent.CANCEL, Intent.CALLBACK) and not found:
        return f"{clinic.name}: we could not find your appointment; please{call}."
    return {
        Intent.CONFIRM: f"{clinic.name}: thank you, your appointment is confirmed.",
        Intent.CANCEL: f"{clinic.name}: your appointment is cancelled. To book again,{call}.",
        Intent.CALLBACK: f"{clinic.name}: thank you, the office will call you back.",
        Intent.OPT_OUT: f"{clinic.name}: you will get no more texts from us. Reply START to "
        "get them again.",
        Intent.OPT_IN: f"{clinic.name}: you will get appointment texts again. Reply STOP to stop.",
        Intent.HELP: f"{clinic.name} appointment reminders. For help,{call}. Reply STOP to stop.",
        Intent.STAFF: f"{clinic.name}: we could not read your reply. Please{call}.",
    }[intent]


def _auto_reply(
    runtime: Runtime, item: Inbound, intent: Intent, plugin: Any, was_out: bool, found: bool
) -> None:
    if not runtime.settings.delivery.auto_reply or plugin is None:
        return
    if intent in KEYWORD_REPLIES and getattr(plugin, "replies_to_keywords", False):
        return  # the provider answered the keyword itself
    if was_out and intent not in (Intent.OPT_IN, Intent.HELP):
        return  # an opted-out address gets nothing else
    direct = Direct(
        channel=item.channel,
        to=item.sender,
        text=reply_text(runtime, intent, found),
        key=f"reply|{item.kind}|{item.provider_ref}",
        event="reply",
        testing=runtime.settings.mode == "testing",
        over_budget_ok=intent == Intent.OPT_OUT,
    )
    try:
        send_direct(runtime, direct)
    except DeliveryError as exc:
        # The provider's text may quote the number: the log gets the kind and code only.
        log.warning("auto-reply to %s not sent: %s %s", item.kind, type(exc).__name__, exc.code)

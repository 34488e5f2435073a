"""Messages that are not reminder jobs: samples and auto-replies, recorded like any other.

Each goes through the channel plugin with its own idempotency key and lands in the ledger with
its cost under its own notification type (``sample``, ``reply``), so the cost report and the
monthly budget see them. The budget's hard stop applies to them too, except the one reply that
confirms an opt-out (carriers require it, and it is the last message that address gets).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bridge.delivery import ledger
from bridge.delivery.costs import load_budget
from bridge.errors import DeliveryError, DeliveryOutcomeUnknown
from bridge.model import Channel
from bridge.plugin import OutboundMessage, Reference, SendResult
from bridge.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Direct:
    """One message outside the job queue."""

    channel: Channel
    to: str
    text: str
    key: str
    event: str
    subject: str | None = None
    html: str | None = None
    voicemail: str | None = None
    testing: bool = False
    tags: dict[str, str] | None = None
    over_budget_ok: bool = False


class OverBudget(DeliveryError):
    """The monthly budget is spent: nothing more goes out this month."""


def send_direct(runtime: Runtime, direct: Direct) -> SendResult:
    """Send one message and record it; raises the channel's ``DeliveryError`` or
    ``OverBudget``. A message already sent under ``key`` is not sent again."""
    plugin = runtime.channels[direct.channel]
    now = runtime.clock.now()
    zone = runtime.zone(Reference())  # the clinic's zone from the settings: no host read
    prices = runtime.settings.delivery.prices
    estimate = prices.estimate(direct.channel, 1)
    with runtime.store.begin("record direct message") as connection:
        secret = ledger.token_secret(connection, now)
        token = ledger.token_for(direct.key, secret)
        existing = ledger.by_token(connection, token)
        if existing is not None and existing.status not in (ledger.NOT_SENT,):
            return SendResult(provider_ref=existing.provider_ref, status=existing.status)
        if not direct.over_budget_ok:
            budget = load_budget(connection, runtime.settings.delivery, now, zone)
            if not budget.allows(estimate):
                raise OverBudget(f"monthly budget reached ({budget.describe()}): not sent")
        message = OutboundMessage(
            idempotency_key=direct.key,
            channel=direct.channel,
            to=direct.to,
            text=direct.text,
            subject=direct.subject,
            html=direct.html,
            sender=runtime.settings.clinic.name,
            voicemail=direct.voicemail,
            testing=direct.testing,
            tags=direct.tags or {},
            token=token,
        )
        ledger.begin(connection, message, plugin.name, ledger.Target(event=direct.event), 1, now)
    try:
        result = plugin.send(message)
    except DeliveryOutcomeUnknown as exc:
        _finish(runtime, token, ledger.UNKNOWN, str(exc))
        raise
    except DeliveryError as exc:
        _finish(runtime, token, ledger.NOT_SENT, str(exc))
        raise
    cost = result.cost if result.cost is not None else estimate
    with runtime.store.begin("record direct sent") as connection:
        ledger.accepted(connection, token, result, cost, runtime.clock.now())
    return result


def _finish(runtime: Runtime, token: str, status: str, error: str) -> None:
    with runtime.store.begin("record direct failure") as connection:
        ledger.finish(connection, token, status, runtime.clock.now(), error)

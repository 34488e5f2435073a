"""The low-budget warning: one email a month to the clinic admin, and a log line.

Sent through the clinic's own email channel (an admin alert, so the budget's hard stop does not
hold it back) with an idempotency key per month, and remembered in the store, so a restart
does not send it again.
"""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from bridge.delivery.costs import WARNED, Budget
from bridge.errors import DeliveryError
from bridge.model import Channel
from bridge.plugin import OutboundMessage
from bridge.runtime import Runtime
from bridge.store.state import get_state, set_state

log = logging.getLogger(__name__)


def warn_if_low(runtime: Runtime, budget: Budget, zone: ZoneInfo) -> bool:
    """Warn once this month when the budget is running low; True when a warning went out."""
    if not budget.low:
        return False
    month = budget.month.strftime("%Y-%m")
    name = WARNED + month
    with runtime.store.begin("read budget warning") as connection:
        if get_state(connection, name) is not None:
            return False
    log.warning("budget running low: %s", budget.describe())
    settings = runtime.settings
    admin = settings.delivery.admin_email
    channel = runtime.channels.get(Channel.EMAIL)
    if admin and channel is not None:
        clinic = settings.clinic.name
        text = (
            f"Reminder Bridge for {clinic}: {budget.describe()}.\n"
            "When the budget is reached no reminder, call or email goes out until next month "
            "or until delivery.monthly_budget is raised."
        )
        try:
            channel.send(
                OutboundMessage(
                    idempotency_key=f"budget-warning|{month}",
                    channel=Channel.EMAIL,
                    to=admin,
                    text=text,
                    subject=f"{clinic}: reminder budget running low",
                    sender=clinic,
                )
            )
        except DeliveryError as exc:
            log.error("could not email the budget warning: %s %s", type(exc).__name__, exc.code)
            return False
    with runtime.store.begin("record budget warning") as connection:
        set_state(connection, name, runtime.clock.now().isoformat(), runtime.clock.now())
    return True

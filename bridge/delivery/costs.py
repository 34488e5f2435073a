"""Costs: the price of every message, per notification type, and the monthly budget.

Each attempt that reaches the provider records a cost: the provider's own price when it says
one (Vonage in its answer, Twilio in a later status callback), else the clinic's price list
(``delivery.prices``: per SMS segment, per started call minute, per email). The budget
(``delivery.monthly_budget``) covers every send, automated or a sample: once the month's spend
reaches it nothing more goes out until the next month or a higher budget. When the spend first
passes ``low_balance_warning`` of it, the clinic admin gets one email that month.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select

from bridge.clock import local_date, local_to_utc
from bridge.delivery import ledger
from bridge.delivery.settings import DeliverySettings
from bridge.delivery.tables import deliveries
from bridge.model import Channel

log = logging.getLogger(__name__)

WARNED = "budget.warned."


def month_start(now: datetime, zone: ZoneInfo) -> datetime:
    """The first instant of the clinic-local calendar month of ``now``, in UTC."""
    day = local_date(now, zone).replace(day=1)
    return local_to_utc(day, datetime.min.time(), zone)


def spent_since(connection: Connection, since: datetime) -> float:
    """What the attempts started since ``since`` cost (those in flight included)."""
    total = connection.execute(
        select(func.coalesce(func.sum(deliveries.c.cost), 0.0)).where(
            deliveries.c.started_at >= since,
            deliveries.c.status.in_((*ledger.WENT_OUT, *ledger.IN_FLIGHT)),
        )
    ).scalar()
    return float(total or 0.0)


@dataclass
class Budget:
    """The month's spend against the budget, kept current while a run sends."""

    settings: DeliverySettings
    month: date
    spent: float

    @property
    def limit(self) -> float | None:
        return self.settings.monthly_budget

    def allows(self, estimate: float) -> bool:
        """False once sending ``estimate`` more would pass the budget (the hard stop)."""
        return self.limit is None or self.spent + estimate <= self.limit + 1e-9

    def add(self, cost: float) -> None:
        self.spent += cost

    @property
    def low(self) -> bool:
        return (
            self.limit is not None and self.spent >= self.limit * self.settings.low_balance_warning
        )

    def describe(self) -> str:
        currency = self.settings.prices.currency
        if self.limit is None:
            return f"{self.spent:.2f} {currency} spent this month (no budget set)"
        return f"{self.spent:.2f} of {self.limit:.2f} {currency} spent this month"


def load_budget(
    connection: Connection, settings: DeliverySettings, now: datetime, zone: ZoneInfo
) -> Budget:
    start = month_start(now, zone)
    return Budget(settings, local_date(now, zone).replace(day=1), spent_since(connection, start))


@dataclass(frozen=True)
class CostLine:
    """Messages and their cost for one notification type and channel."""

    event: str
    channel: Channel
    messages: int
    segments: int
    cost: float


def cost_report(connection: Connection, since: datetime, until: datetime) -> list[CostLine]:
    """Cost per notification type (``event``: reminder, sample...) and channel."""
    rows = connection.execute(
        select(
            deliveries.c.event,
            deliveries.c.channel,
            func.count(),
            func.coalesce(func.sum(deliveries.c.segments), 0),
            func.coalesce(func.sum(deliveries.c.cost), 0.0),
        )
        .where(
            deliveries.c.started_at >= since,
            deliveries.c.started_at < until,
            deliveries.c.status.in_((*ledger.WENT_OUT, *ledger.IN_FLIGHT)),
        )
        .group_by(deliveries.c.event, deliveries.c.channel)
        .order_by(deliveries.c.event, deliveries.c.channel)
    )
    return [
        CostLine(event, Channel(channel), int(count), int(segments), round(float(cost), 6))
        for event, channel, count, segments, cost in rows
    ]

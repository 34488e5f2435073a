"""Prices, the month's spend against the budget, and the cost report per notification type."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bridge.clock import parse_instant
from bridge.delivery import ledger
from bridge.delivery.costs import Budget, cost_report, load_budget, month_start
from bridge.delivery.settings import DeliverySettings, Prices
from bridge.model import Channel
from bridge.plugin import OutboundMessage, SendResult
from bridge.store import Store

ROME = ZoneInfo("Europe/Rome")
NOW = parse_instant("2026-03-27T09:00:00Z")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'store.sqlite'}")
    yield opened
    opened.close()


def sent(store: Store, key: str, channel: Channel, event: str, cost: float, at: str) -> None:
    when = parse_instant(at)
    message = OutboundMessage(key, channel, "+12025550101", "text", token=key[:24])
    with store.begin() as connection:
        ledger.begin(connection, message, "test", ledger.Target(event=event), 1, when)
        ledger.accepted(connection, key[:24], SendResult("ref-" + key, segments=2), cost, when)


def test_estimates() -> None:
    prices = Prices()
    assert prices.estimate(Channel.SMS, 3) == pytest.approx(0.0237)
    assert prices.estimate(Channel.SMS, 0) == pytest.approx(0.0079)
    assert prices.estimate(Channel.VOICE, None) == pytest.approx(0.014)
    assert prices.estimate(Channel.EMAIL, None) == 0.0


def test_the_month_is_the_clinics() -> None:
    # 23:30 UTC on 31 March is already 1 April in Rome.
    late = parse_instant("2026-03-31T23:30:00Z")
    assert month_start(late, ROME) == parse_instant("2026-03-31T22:00:00Z")
    assert month_start(NOW, ROME) == parse_instant("2026-02-28T23:00:00Z")


def test_budget_hard_stop_and_warning() -> None:
    settings = DeliverySettings(monthly_budget=1.0, low_balance_warning=0.8)
    budget = Budget(settings, NOW.date(), 0.70)
    assert budget.allows(0.3) and not budget.low
    budget.add(0.15)
    assert budget.low
    assert not budget.allows(0.2)
    assert "0.85 of 1.00 USD" in budget.describe()
    assert Budget(DeliverySettings(), NOW.date(), 1e6).allows(1.0)  # no budget, no stop


def test_spend_and_report(store: Store) -> None:
    sent(store, "a" * 24, Channel.SMS, "reminder", 0.0158, "2026-03-02T10:00:00Z")
    sent(store, "b" * 24, Channel.SMS, "reminder", 0.0079, "2026-03-20T10:00:00Z")
    sent(store, "c" * 24, Channel.VOICE, "reminder", 0.028, "2026-03-20T11:00:00Z")
    sent(store, "d" * 24, Channel.SMS, "reply", 0.0079, "2026-03-21T10:00:00Z")
    sent(store, "e" * 24, Channel.SMS, "reminder", 5.0, "2026-02-27T10:00:00Z")  # last month
    with store.begin() as connection:
        budget = load_budget(connection, DeliverySettings(monthly_budget=10), NOW, ROME)
        start = month_start(NOW, ROME)
        lines = cost_report(connection, start, start + timedelta(days=31))
    assert budget.spent == pytest.approx(0.0596)
    assert [(line.event, line.channel, line.messages, line.cost) for line in lines] == [
        ("reminder", Channel.SMS, 2, pytest.approx(0.0237)),
        ("reminder", Channel.VOICE, 1, pytest.approx(0.028)),
        ("reply", Channel.SMS, 1, pytest.approx(0.0079)),
    ]
    assert lines[0].segments == 4

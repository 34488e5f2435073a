"""``bridge costs`` (spend per notification type and channel, against the budget) and
``bridge replies`` (what patients answered; free text waiting for staff)."""

from __future__ import annotations

import argparse
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bridge.clock import SystemClock, local_to_utc
from bridge.delivery.costs import cost_report, load_budget, month_start
from bridge.delivery.tables import inbound
from bridge.errors import ConfigError
from bridge.settings import Settings
from bridge.store import Store
from bridge.table import format_table


def register_costs(commands: Any) -> None:
    parser = commands.add_parser("costs", help="message costs per notification type and channel")
    parser.add_argument("--month", help="YYYY-MM (default: this month)")
    parser.set_defaults(handler=show_costs)


def register_replies(commands: Any) -> None:
    parser = commands.add_parser("replies", help="patients' replies; --staff: those for staff")
    parser.add_argument("--staff", action="store_true", help="only replies waiting for staff")
    parser.add_argument("--limit", type=int, default=50)
    parser.set_defaults(handler=show_replies)


def show_costs(settings: Settings, args: argparse.Namespace) -> int:
    zone = ZoneInfo(settings.clinic.timezone or "UTC")
    now = SystemClock().now()
    if args.month:
        try:
            first = date.fromisoformat(f"{args.month}-01")
        except ValueError as exc:
            raise ConfigError(f"--month = {args.month!r}: expected YYYY-MM") from exc
    else:
        first = date.fromisoformat(month_start(now, zone).astimezone(zone).strftime("%Y-%m-01"))
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    since = local_to_utc(first, datetime.min.time(), zone)
    until = local_to_utc(following, datetime.min.time(), zone)
    store = Store.open(settings.store_url())
    try:
        with store.begin("read costs") as connection:
            lines = cost_report(connection, since, until)
            budget = load_budget(connection, settings.delivery, now, zone)
    finally:
        store.close()
    currency = settings.delivery.prices.currency
    rows = [
        (line.event, line.channel.value, line.messages, line.segments, f"{line.cost:.4f}")
        for line in lines
    ]
    total = sum(line.cost for line in lines)
    print(f"Costs for {first:%Y-%m} ({currency}, clinic time zone {zone})")
    if rows:
        print(format_table(["type", "channel", "messages", "SMS segments", "cost"], rows))
    print(f"total {total:.4f} {currency}; {budget.describe()}")
    return 0


def show_replies(settings: Settings, args: argparse.Namespace) -> int:
    store = Store.open(settings.store_url())
    try:
        with store.begin("read replies") as connection:
            query = (
                select(inbound)
                .where(inbound.c.sender.is_not(None))
                .order_by(inbound.c.id.desc())
                .limit(args.limit)
            )
            if args.staff:
                query = query.where(inbound.c.status == "staff")
            items = connection.execute(query).all()
    finally:
        store.close()
    if not items:
        print("no replies")
        return 0
    rows = [
        (
            item.id,
            item.received_at.strftime("%Y-%m-%d %H:%M"),
            item.kind,
            item.sender,
            item.intent or "",
            item.status,
            (item.text or "")[:60],
            item.detail or "",
        )
        for item in items
    ]
    # Staff run this on the clinic's server: the sender and text are what they need to act on.
    print(
        format_table(
            ["id", "received (UTC)", "via", "from", "intent", "status", "text", "done"], rows
        )
    )
    return 0

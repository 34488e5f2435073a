"""``bridge writebacks``: what became of the patients' answers on the host."""

from __future__ import annotations

import argparse
from typing import Any

from bridge.settings import Settings
from bridge.store import Store
from bridge.store.writebacks import recent
from bridge.table import format_table
from bridge.writeback import Outcome


def register(commands: Any) -> None:
    parser = commands.add_parser("writebacks", help="list write-back commands and their outcome")
    parser.add_argument("--status", choices=[o.value for o in Outcome], help="only this status")
    parser.add_argument("--limit", type=int, default=50)
    parser.set_defaults(handler=show)


def show(settings: Settings, args: argparse.Namespace) -> int:
    store = Store.open(settings.store_url())
    try:
        with store.begin("read write-backs") as connection:
            items = recent(connection, args.limit, Outcome(args.status) if args.status else None)
    finally:
        store.close()
    if not items:
        print("no write-back commands")
        return 0
    rows = [
        (
            item.id,
            item.created_at.strftime("%Y-%m-%d %H:%M"),
            item.command.kind.value,
            item.command.origin,
            item.command.appointment_key or "",
            item.command.patient_key,
            item.status.value,
            item.attempts,
            item.last_error or (item.result or {}).get("detail", ""),
        )
        for item in items
    ]
    headers = ["id", "created (UTC)", "kind", "from", "appointment", "patient", "status", "tries"]
    print(format_table([*headers, "detail"], rows))
    return 0

"""Commands: ``bridge listen`` and ``bridge hl7 list | show | replay``.

``list`` and ``show`` print keys, codes and reasons, never patient data; ``show --raw`` prints
the message itself (for the person fixing a mapping, on their own terminal, never to a log).
"""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

from bridge.clock import SystemClock
from bridge.errors import ConfigError
from bridge.hl7.applier import apply_all
from bridge.hl7.feed import Feed
from bridge.hl7.inbox import StoredMessage, quarantined_ids, recent, requeue, stored_message
from bridge.hl7.inspect import structure_report
from bridge.hl7.service import Hl7Service
from bridge.hl7.tables import MessageStatus
from bridge.hl7.text import decode
from bridge.settings import Settings
from bridge.store import Store
from bridge.table import format_table


def register(commands: Any) -> None:
    listen = commands.add_parser("listen", help="run the HL7 MLLP listener in the foreground")
    listen.add_argument("--host", help="address to bind (default hl7.listen_host)")
    listen.add_argument("--port", type=int, help="port (default hl7.listen_port)")
    listen.set_defaults(handler=run_listen)

    hl7 = commands.add_parser("hl7", help="HL7 messages received: list, show, replay")
    actions = hl7.add_subparsers(dest="hl7_action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="the newest messages and what became of them")
    listing.add_argument("--status", choices=[s.value for s in MessageStatus])
    listing.add_argument("--appointment", help="only messages about this appointment key")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(handler=run_list)
    show = actions.add_parser("show", help="one message: verdict, structure, hl7apy's remarks")
    show.add_argument("id", type=int)
    show.add_argument("--raw", action="store_true", help="also print the message (patient data)")
    show.set_defaults(handler=run_show)
    replay = actions.add_parser(
        "replay", help="judge messages again with the current mapping (after fixing it)"
    )
    replay.add_argument("ids", type=int, nargs="*", metavar="ID")
    replay.add_argument("--quarantined", action="store_true", help="every quarantined message")
    replay.set_defaults(handler=run_replay)


def run_listen(settings: Settings, args: argparse.Namespace) -> int:
    feed = Feed.from_settings(settings)
    store = Store.open(settings.store_url())
    service = Hl7Service(store, feed, SystemClock(), settings.base_dir)
    stopping = threading.Event()
    for name in ("SIGINT", "SIGTERM", "SIGBREAK"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), lambda *_: stopping.set())
    host = args.host or settings.hl7.listen_host
    try:
        port = service.start(args.host, args.port)
    except OSError as exc:
        store.close()
        wanted = args.port if args.port is not None else settings.hl7.listen_port
        raise ConfigError(
            f"hl7.listen_port = {wanted}: cannot listen on {host}:{wanted} ({exc.strerror or exc})"
        ) from exc
    print(
        f"listening for HL7 on {host}:{port} (mapping {feed.mapping.name}); Ctrl-C stops",
        flush=True,
    )
    try:
        while not stopping.wait(1.0):
            pass
    finally:
        service.stop()
        store.close()
    return 0


def run_list(settings: Settings, args: argparse.Namespace) -> int:
    store = Store.open(settings.store_url())
    try:
        with store.begin("read HL7 messages") as connection:
            found = recent(connection, args.limit, args.status, args.appointment)
    finally:
        store.close()
    if not found:
        print("no HL7 messages")
        return 0
    rows = [
        (
            m.id,
            m.received_at.strftime("%Y-%m-%d %H:%M:%S"),
            m.kind or "?",
            m.control_id[:24] or "?",
            m.appointment_key or "",
            m.status + (f" x{m.times_seen}" if m.times_seen > 1 else ""),
            (m.reason or "")[:90],
        )
        for m in found
    ]
    headers = ["id", "received (UTC)", "type", "control id", "appointment", "status", "reason"]
    print(format_table(headers, rows))
    return 0


def run_show(settings: Settings, args: argparse.Namespace) -> int:
    store = Store.open(settings.store_url())
    try:
        with store.begin("read an HL7 message") as connection:
            found = stored_message(connection, args.id)
    finally:
        store.close()
    if found is None:
        print(f"no HL7 message {args.id}")
        return 1
    text = decode(found.raw, settings.hl7.charset).text
    for line in _describe(found):
        print(line)
    for line in structure_report(text):
        print(line)
    if args.raw:
        print()
        print(text.replace("\r", "\n"))
    return 0


def run_replay(settings: Settings, args: argparse.Namespace) -> int:
    feed = Feed.from_settings(settings)
    intake = feed.intake()
    clock = SystemClock()
    store = Store.open(settings.store_url())
    try:
        with store.begin("read HL7 messages") as connection:
            ids = list(args.ids) + (quarantined_ids(connection) if args.quarantined else [])
        if not ids:
            print("nothing to replay (give message ids, or --quarantined)")
            return 0
        for message_id in dict.fromkeys(ids):
            with store.begin("replay an HL7 message") as connection:
                found = stored_message(connection, message_id)
                if found is None:
                    print(f"message {message_id}: not found")
                    continue
                item = intake.receive(found.raw, found.origin, clock.now())
                requeue(connection, message_id, item)
        apply_all(store, clock, intake)
        still = 0
        with store.begin("read HL7 messages") as connection:
            for message_id in dict.fromkeys(ids):
                after = stored_message(connection, message_id)
                if after is None:
                    continue
                still += after.status == MessageStatus.QUARANTINED
                detail = f": {after.reason}" if after.reason else ""
                key = f" (appointment {after.appointment_key})" if after.appointment_key else ""
                print(f"message {message_id}: {after.status}{key}{detail}")
    finally:
        store.close()
    return 1 if still else 0


def _describe(message: StoredMessage) -> list[str]:
    when = message.message_time.strftime("%Y-%m-%d %H:%M:%S UTC") if message.message_time else "?"
    return [
        f"message {message.id}: {message.kind or '?'} version {message.version or '?'}, "
        f"control id {message.control_id!r}",
        f"from {message.sender} via {message.origin}; received "
        f"{message.received_at:%Y-%m-%d %H:%M:%S} UTC ({message.times_seen}x); MSH-7 {when}",
        f"status {message.status}" + (f": {message.reason}" if message.reason else ""),
        f"appointment {message.appointment_key or '-'}; {len(message.raw)} bytes, "
        f"read as {message.charset}",
    ]

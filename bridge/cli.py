"""The ``bridge`` command line. Its commands and options are a contract (ARCHITECTURE.md).

Every command exits 0 on success, 1 when a check finds problems, 2 on a usage or settings error;
errors are one line on standard error, never a traceback (``--debug`` shows it).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from datetime import date

from bridge import __version__, extensions
from bridge.clock import Clock, ManualClock, SystemClock, parse_instant
from bridge.errors import BridgeError, ConfigError
from bridge.logs import setup_logging
from bridge.model import Channel
from bridge.settings import Settings, load_settings

log = logging.getLogger("bridge")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bridge",
        description="Reminder Bridge: reminders and answers for an existing practice system.",
    )
    parser.add_argument(
        "--config", help="settings file (default: $BRIDGE_CONFIG or ./settings.yaml)"
    )
    parser.add_argument("--debug", action="store_true", help="debug logging and tracebacks")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser("check", help="validate settings and mapping against the live host")

    plan = commands.add_parser("plan", help="print the reminders the bridge would send")
    plan.add_argument("--now", help="pretend it is this instant (ISO 8601)")
    plan.add_argument("--json", action="store_true", help="one JSON object per line")
    plan.add_argument("--all", action="store_true", help="also list skipped reminders and why")

    run = commands.add_parser("run", help="the service: poll, plan, dispatch, serve")
    run.add_argument("--once", action="store_true", help="one cycle, then exit")

    preview = commands.add_parser("preview", help="show a message for one appointment")
    preview.add_argument("appointment", help="host appointment key (OpenEMR pc_eid)")
    preview.add_argument("--occurrence", help="date of the occurrence (YYYY-MM-DD)")
    preview.add_argument(
        "--channel", choices=[c.value for c in Channel], default=None, help="default: all"
    )
    preview.add_argument("--event", default="reminder")
    preview.add_argument("--now", help="pretend it is this instant (ISO 8601)")

    demo = commands.add_parser("demo", help="run the whole flow on a built-in demo host")
    demo.add_argument("--no-serve", action="store_true", help="exit after the first cycle")
    demo.add_argument("--port", type=int, default=None, help="web port (default from settings)")
    demo.add_argument("--dir", default=None, help="demo folder (default ./bridge-demo)")

    commands.add_parser("migrate", help="bring the store's schema up to date and exit")
    for _, register in extensions.load(extensions.COMMANDS):
        register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _dispatch(args)
    except ConfigError as exc:
        _fail(args, exc)
        return 2
    except BridgeError as exc:
        _fail(args, exc)
        return 1
    except KeyboardInterrupt:
        return 130


def _fail(args: argparse.Namespace, exc: BaseException) -> None:
    if args.debug:
        log.exception("failed")
    print(f"bridge: {exc}", file=sys.stderr)


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from bridge.demo import run_demo

        return run_demo(args.config, no_serve=args.no_serve, port=args.port, folder=args.dir)
    settings = load_settings(args.config)
    setup_logging("DEBUG" if args.debug else settings.log.level, settings.log.file)
    handler = getattr(args, "handler", None)
    if handler is not None:
        return int(handler(settings, args))
    if args.command == "check":
        from bridge.check import run_check

        return run_check(settings)
    if args.command == "migrate":
        from bridge.store import Store

        Store.open(settings.store_url()).close()
        print("store is up to date")
        return 0
    if args.command == "plan":
        return _plan(settings, _clock(args.now), as_json=args.json, show_all=args.all)
    if args.command == "run":
        from bridge.service import run_service

        return run_service(settings, once=args.once)
    if args.command == "preview":
        from bridge.preview import run_preview

        occurrence = date.fromisoformat(args.occurrence) if args.occurrence else None
        channels = [Channel(args.channel)] if args.channel else list(Channel)
        return run_preview(
            settings, _clock(args.now), args.appointment, occurrence, channels, args.event
        )
    raise AssertionError(args.command)


def _clock(now: str | None) -> Clock:
    if now is None:
        return SystemClock()
    try:
        return ManualClock(parse_instant(now))
    except ValueError as exc:
        raise ConfigError(f"--now = {now!r}: expected an ISO 8601 instant") from exc


def _plan(settings: Settings, clock: Clock, *, as_json: bool, show_all: bool) -> int:
    from bridge.planning import dry_plan, plan_record
    from bridge.runtime import Runtime
    from bridge.table import format_table

    runtime = Runtime.build(settings, clock)
    try:
        result = dry_plan(runtime)
    finally:
        runtime.close()
    listed = result.plans + (result.skipped if show_all else [])
    if as_json:
        for plan in sorted(
            listed, key=lambda p: (p.due, p.occurrence, p.appointment_key, p.rule, p.channel)
        ):
            print(json.dumps(plan_record(plan), sort_keys=True))
        return 0
    zone = result.planner.zone
    rows = [
        (
            plan.due.astimezone(zone).strftime("%a %d %b %H:%M"),
            plan.appointment_key,
            plan.occurrence.isoformat(),
            plan.appointment_start.astimezone(zone).strftime("%H:%M"),
            plan.patient_key,
            plan.channel.value,
            plan.rule,
            plan.skip_reason or "",
        )
        for plan in listed
    ]
    headers = ["due (clinic time)", "appointment", "date", "time", "patient", "channel", "rule"]
    print(format_table([*headers, "skipped because"], rows) if rows else "nothing to send")
    print(
        f"\n{len(result.plans)} reminders to send, {len(result.skipped)} skipped "
        f"(clinic time zone {zone}, mode {settings.mode})"
    )
    if result.rejected:
        print(f"{len(result.rejected)} host rows could not be read; `bridge check` lists them")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

"""Commands for online booking, recalls and invitations (entry points ``bridge.commands``).

    bridge recall run [--date YYYY-MM-DD] [--now ISO8601]   the day's recall (idempotent)
    bridge recall stats [--from DATE] [--to DATE]           recalls sent and booked, counts only
    bridge recall add PATIENT (--due DATE | --appointment KEY --after 6m) [--reason KEY]
    bridge recall list | cancel ID                          manual recalls set here
    bridge invite PATIENT [--email ADDRESS] [--resend]      invite a patient to book online
    bridge invite --new --email ADDRESS --consent           invite someone not yet a patient
    bridge invitations [--status S] | invitations revoke ID
    bridge booking slots [--reason KEY] [--date DATE] [--days N]   what patients can book now
    bridge booking list [--status S]                        online bookings and their outcome
    bridge booking link PATIENT --reason KEY [--provider KEY]  a planned-treatment link

Each command also takes ``--now ISO8601`` (pretend it is then: tests, a replayed day). Outputs
name patients by their host key only; an invitation's address is masked. ``bridge invitations``
first marks invitations past their date as expired, so the list never shows a dead link as
invited.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select, update

from bridge.booking.interval import Interval
from bridge.booking.invitations import (
    expire,
    invite,
    listed,
    mask,
    revoke,
)
from bridge.booking.links import send_link
from bridge.booking.offers import Offers
from bridge.booking.recall import add_manual, run_recall
from bridge.booking.stats import recall_stats
from bridge.booking.tables import bookings, manual_recalls
from bridge.clock import Clock, ManualClock, SystemClock, local_date, parse_instant
from bridge.errors import ConfigError, InvitationRefused
from bridge.runtime import Runtime
from bridge.settings import Settings
from bridge.table import format_table

Handler = Callable[[Runtime, argparse.Namespace], int]


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a date YYYY-MM-DD") from exc


def _interval(text: str) -> Interval:
    try:
        return Interval.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from exc


def _now_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--now", help="pretend it is this instant (ISO 8601)")


def _with_runtime(handler: Handler) -> Callable[[Settings, argparse.Namespace], int]:
    def run(settings: Settings, args: argparse.Namespace) -> int:
        clock: Clock = SystemClock()
        if getattr(args, "now", None):
            try:
                clock = ManualClock(parse_instant(args.now))
            except ValueError as exc:
                raise ConfigError(f"--now {args.now!r}: expected an ISO 8601 instant") from exc
        runtime = Runtime.build(settings, clock)
        try:
            return handler(runtime, args)
        finally:
            runtime.close()

    return run


def register_recall(commands: Any) -> None:
    recall = commands.add_parser("recall", help="recalls: run the day's, statistics, manual ones")
    actions = recall.add_subparsers(dest="recall_action", required=True, metavar="ACTION")
    run = actions.add_parser("run", help="recall everyone due (once per day)")
    run.add_argument("--date", type=_day, help="the clinic-local day (default today)")
    _now_option(run)
    run.set_defaults(handler=_with_runtime(_run_recall))
    stats = actions.add_parser("stats", help="recalls sent and booked, by month")
    stats.add_argument("--from", dest="first", type=_day, help="first run day")
    stats.add_argument("--to", dest="last", type=_day, help="last run day")
    _now_option(stats)
    stats.set_defaults(handler=_with_runtime(_recall_stats))
    add = actions.add_parser("add", help="recall a patient by hand")
    add.add_argument("patient", help="the patient's host key")
    add.add_argument("--due", type=_day, help="the day the patient is due")
    add.add_argument("--appointment", help="set on this appointment: due --after it")
    add.add_argument("--after", type=_interval, help="with --appointment: e.g. 6 months")
    add.add_argument("--reason", help="booking reason offered (default recall.reason)")
    add.add_argument("--note", help="a note for staff (kept in the bridge)")
    _now_option(add)
    add.set_defaults(handler=_with_runtime(_recall_add))
    listing = actions.add_parser("list", help="the manual recalls set with recall add")
    _now_option(listing)
    listing.set_defaults(handler=_with_runtime(_recall_list))
    cancel = actions.add_parser("cancel", help="cancel a manual recall")
    cancel.add_argument("id", type=int)
    _now_option(cancel)
    cancel.set_defaults(handler=_with_runtime(_recall_cancel))


def _run_recall(runtime: Runtime, args: argparse.Namespace) -> int:
    day = args.date or local_date(runtime.clock.now(), runtime.zone(runtime.source.reference()))
    print(run_recall(runtime, day).summary())
    return 0


def _recall_stats(runtime: Runtime, args: argparse.Namespace) -> int:
    today = local_date(runtime.clock.now(), runtime.zone(runtime.source.reference()))
    last = args.last or today
    first = args.first or (last - timedelta(days=365))
    with runtime.store.begin("read recall statistics") as connection:
        stats = recall_stats(connection, first, last)
    print(f"recall runs {first} .. {last}: {stats.runs} days")
    rows = [
        (
            r.month,
            r.kind,
            r.recalls,
            r.sent,
            r.booked_online,
            r.booked_otherwise,
            r.expired,
            r.open,
            r.booked_rate,
        )
        for r in stats.recalls
    ]
    headers = ["month", "kind", "recalls", "sent", "booked online", "booked otherwise"]
    print(format_table([*headers, "expired", "open", "booked"], rows) if rows else "no recalls")
    print(f"patients due but already booked (not recalled): {stats.skipped_already_booked}")
    for label, counts in (("online bookings", stats.bookings), ("invitations", stats.invitations)):
        shown = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"
        print(f"{label}: {shown}")
    return 0


def _recall_add(runtime: Runtime, args: argparse.Namespace) -> int:
    due = args.due
    reference = runtime.source.reference()
    zone = runtime.zone(reference)
    if args.appointment:
        if args.after is None:
            raise ConfigError("recall add --appointment needs --after (e.g. 6 months)")
        today = local_date(runtime.clock.now(), zone)
        found = runtime.source.occurrences_of(
            args.appointment,
            (today - timedelta(days=3650), today + timedelta(days=730)),
            reference,
            zone,
        )
        mine = sorted(a.occurrence for a in found if a.patient_key == args.patient)
        if not mine:
            raise ConfigError(f"appointment {args.appointment}: not on the host for this patient")
        # A repeating appointment: its latest occurrence so far, else its first one ahead.
        past = [day for day in mine if day <= today]
        due = args.after.after(past[-1] if past else mine[0])
    if due is None:
        raise ConfigError("recall add: give --due DATE, or --appointment KEY --after INTERVAL")
    if args.reason and runtime.settings.booking.reason(args.reason) is None:
        raise ConfigError(f"--reason {args.reason!r}: not in booking.reasons")
    if not list(runtime.source.patients([args.patient], lambda _: None)):
        raise ConfigError(f"patient {args.patient} is not on the host")
    with runtime.store.begin("add a manual recall") as connection:
        recall_id = add_manual(
            connection,
            args.patient,
            due,
            runtime.clock.now(),
            reason_key=args.reason,
            appointment_key=args.appointment,
            note=args.note,
        )
    print(f"manual recall {recall_id}: patient {args.patient} due on {due}")
    return 0


def _recall_list(runtime: Runtime, args: argparse.Namespace) -> int:
    with runtime.store.begin("read manual recalls") as connection:
        rows = connection.execute(select(manual_recalls).order_by(manual_recalls.c.due_on)).all()
    shown = [
        (
            m["id"],
            m["patient_key"],
            m["due_on"],
            m["reason_key"] or "",
            m["appointment_key"] or "",
            "cancelled" if m["cancelled_at"] else "",
        )
        for m in (row._mapping for row in rows)
    ]
    headers = ["id", "patient", "due", "reason", "appointment", "state"]
    print(format_table(headers, shown) if shown else "no manual recalls")
    return 0


def _recall_cancel(runtime: Runtime, args: argparse.Namespace) -> int:
    with runtime.store.begin("cancel a manual recall") as connection:
        moved = connection.execute(
            update(manual_recalls)
            .where(manual_recalls.c.id == args.id, manual_recalls.c.cancelled_at.is_(None))
            .values(cancelled_at=runtime.clock.now())
        )
    if not moved.rowcount:
        print(f"manual recall {args.id}: not found or already cancelled")
        return 1
    print(f"manual recall {args.id} cancelled")
    return 0


def register_invite(commands: Any) -> None:
    parser = commands.add_parser("invite", help="invite a patient (or someone new) to book online")
    parser.add_argument("patient", nargs="?", help="the patient's host key")
    parser.add_argument("--email", help="send to this address (default: the one on file)")
    parser.add_argument("--new", action="store_true", help="someone not yet a patient")
    parser.add_argument("--consent", action="store_true", help="they agreed to get this email")
    parser.add_argument("--language", help="for someone new: en, it, es, fr")
    parser.add_argument("--resend", action="store_true", help="send an open invitation again")
    _now_option(parser)
    parser.set_defaults(handler=_with_runtime(_invite))


def _invite(runtime: Runtime, args: argparse.Namespace) -> int:
    if args.new == bool(args.patient):
        raise ConfigError("bridge invite: name a PATIENT, or --new --email ADDRESS --consent")
    try:
        _, said = invite(
            runtime,
            args.patient,
            email=args.email,
            agreed=args.consent,
            language=args.language,
            resend=args.resend,
        )
    except InvitationRefused as exc:
        print(f"bridge: not invited: {exc}")
        return 1
    print(f"{said}; it goes out with the next dispatch")
    return 0


def register_invitations(commands: Any) -> None:
    parser = commands.add_parser("invitations", help="invitations and their status; revoke")
    parser.add_argument("--status", choices=["invited", "enrolled", "expired", "revoked"])
    parser.add_argument("--limit", type=int, default=100)
    _now_option(parser)
    parser.set_defaults(handler=_with_runtime(_invitations), invitation_action=None)
    actions = parser.add_subparsers(dest="invitation_action", metavar="ACTION")
    revoking = actions.add_parser("revoke", help="revoke an open invitation (its link stops)")
    revoking.add_argument("id", type=int)
    _now_option(revoking)
    revoking.set_defaults(handler=_with_runtime(_revoke))


def _invitations(runtime: Runtime, args: argparse.Namespace) -> int:
    with runtime.store.begin("read invitations") as connection:
        expire(connection, runtime.clock.now())
        found = listed(connection, args.status, args.limit)
    rows = [
        (
            i.id,
            i.patient_key or "(new)",
            mask(i.email),
            i.status,
            f"{i.created_at:%Y-%m-%d}",
            f"{i.expires_at:%Y-%m-%d}",
            i.detail,
        )
        for i in found
    ]
    headers = ["id", "patient", "email", "status", "invited", "expires", "detail"]
    print(format_table(headers, rows) if rows else "no invitations")
    return 0


def _revoke(runtime: Runtime, args: argparse.Namespace) -> int:
    with runtime.store.begin("revoke an invitation") as connection:
        done = revoke(connection, args.id, runtime.clock.now(), "revoked by staff")
    print(f"invitation {args.id} revoked" if done else f"invitation {args.id} is not open")
    return 0 if done else 1


def register_booking(commands: Any) -> None:
    parser = commands.add_parser("booking", help="online booking: slots, bookings, links")
    actions = parser.add_subparsers(dest="booking_action", required=True, metavar="ACTION")
    slots = actions.add_parser("slots", help="the free slots patients see now (counts per day)")
    slots.add_argument("--reason", help="one reason (default: each)")
    slots.add_argument("--date", type=_day, help="first day (default today)")
    slots.add_argument("--days", type=int, default=7)
    _now_option(slots)
    slots.set_defaults(handler=_with_runtime(_slots))
    listing = actions.add_parser("list", help="online bookings and what became of them")
    listing.add_argument("--status", choices=["requested", "queued", "booked", "refused"])
    listing.add_argument("--limit", type=int, default=50)
    _now_option(listing)
    listing.set_defaults(handler=_with_runtime(_bookings))
    link = actions.add_parser("link", help="send a patient a link to book a planned treatment")
    link.add_argument("patient")
    link.add_argument("--reason", required=True, help="the treatment's booking reason")
    link.add_argument("--provider", help="only with this provider (host key)")
    _now_option(link)
    link.set_defaults(handler=_with_runtime(_link))


def _slots(runtime: Runtime, args: argparse.Namespace) -> int:
    if not runtime.settings.booking.enabled:
        print("online booking is off (booking.enabled)")
    offers = Offers(runtime)
    problems = offers.problems()
    for problem in problems:
        print(f"problem: {problem}")
    first = args.date or offers.today()
    last = first + timedelta(days=max(args.days, 1) - 1)
    rows = []
    for reason in offers.all_reasons():
        if args.reason and reason.key != args.reason:
            continue
        found = offers.slots(reason, first, last)
        per_day: dict[date, int] = {}
        for slot in found:
            per_day[slot.day] = per_day.get(slot.day, 0) + 1
        first_free = f"{found[0].day} {found[0].start:%H:%M}" if found else ""
        shown = " ".join(f"{d:%m-%d}:{n}" for d, n in sorted(per_day.items()))
        rows.append((reason.key, reason.minutes, len(found), first_free, shown))
    headers = ["reason", "minutes", "free", "first", "per day"]
    print(format_table(headers, rows) if rows else "no reasons to book (booking.reasons)")
    return 1 if problems else 0


def _bookings(runtime: Runtime, args: argparse.Namespace) -> int:
    query = select(bookings).order_by(bookings.c.id.desc()).limit(args.limit)
    if args.status:
        query = query.where(bookings.c.status == args.status)
    with runtime.store.begin("read bookings") as connection:
        found = [row._mapping for row in connection.execute(query)]
    rows = [
        (
            b["id"],
            b["reference"],
            f"{b['created_at']:%Y-%m-%d %H:%M}",
            b["flow"],
            b["reason_key"],
            b["patient_key"] or "(new)",
            f"{b['start_at']:%Y-%m-%d %H:%M}",
            b["status"],
            b["appointment_key"] or "",
            b["detail"] or "",
        )
        for b in found
    ]
    headers = ["id", "ref", "made (UTC)", "flow", "reason", "patient", "start (UTC)", "status"]
    print(format_table([*headers, "appointment", "detail"], rows) if rows else "no bookings")
    return 0


def _link(runtime: Runtime, args: argparse.Namespace) -> int:
    try:
        said = send_link(
            runtime, args.patient, flow="treatment", reason=args.reason, provider=args.provider
        )
    except InvitationRefused as exc:
        print(f"bridge: no link sent: {exc}")
        return 1
    print(said)
    return 0

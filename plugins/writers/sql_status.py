"""Which status an answer writes, or why it writes none: pure rules, no SQL.

The order of the checks is what makes a command idempotent: "already done" is decided before
"protected", so a cancellation applied twice (the bridge died after the host committed and before
the queue heard of it) reports "already cancelled" instead of being refused over its own ``x``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bridge.errors import WriteBackRefused
from bridge.mapping.sql import Statuses, WriteBack
from bridge.model import Appointment, HostStatus, StatusClass
from bridge.writeback import Command, CommandKind


@dataclass(frozen=True)
class Decision:
    """``status``: what to write (None: leave the row as it is); ``detail``: what happened, for
    ``bridge writebacks``; ``note``: whether staff should get a note."""

    status: str | None
    detail: str
    note: bool = False


def host_status(code: str, reference: dict[str, HostStatus], statuses: Statuses) -> HostStatus:
    """The host's status as the reference read it (with the host's check-in / check-out flags),
    else as the mapping alone classifies it."""
    return reference.get(code) or statuses.host_status(code)


def decide(
    command: Command,
    appointment: Appointment,
    current: HostStatus,
    write_back: WriteBack,
    statuses: Statuses,
    now: datetime,
) -> Decision:
    """The change ``command`` makes to an appointment whose status is ``current``.

    Raises ``WriteBackRefused`` over a protected status, ``NotImplementedError`` when the mapping
    has no status for this kind of answer (a configuration gap: the command fails, for staff).
    """
    code = current.code
    if command.kind == CommandKind.CONFIRM:
        target = _confirm_status(command, write_back)
        if code == target or current.status_class == StatusClass.CONFIRMED:
            return Decision(None, f"already confirmed (status {code!r})")
        if code in write_back.confirm_keeps:
            return Decision(None, f"status {code!r} kept: it waits for staff approval")
        _guard(current, statuses)
        return Decision(target, f"status {code!r} -> {target!r}")
    if command.kind == CommandKind.CANCEL:
        if current.status_class == StatusClass.CANCELLED:
            return Decision(None, f"already cancelled (status {code!r})")
        _guard(current, statuses)
        target = cancel_status(appointment, write_back, now)
        return Decision(target, f"status {code!r} -> {target!r}", note=True)
    if command.kind == CommandKind.CALLBACK:
        if write_back.callback is None:
            raise NotImplementedError("the mapping's write_back has no callback status")
        if code == write_back.callback:
            return Decision(None, f"call-back already requested (status {code!r})")
        _guard(current, statuses)
        return Decision(write_back.callback, f"status {code!r} -> {write_back.callback!r}", True)
    raise NotImplementedError(f"{command.kind.value} does not change an appointment's status")


def cancel_status(appointment: Appointment, write_back: WriteBack, now: datetime) -> str:
    """``x``, or the late-cancellation status (``%``) when the clinic records those and the
    appointment starts within its hours."""
    late = write_back.cancelled_late
    if late is not None and appointment.start - now <= timedelta(hours=late.within_hours):
        return late.status
    if write_back.cancelled is None:
        raise NotImplementedError("the mapping's write_back has no cancelled status")
    return write_back.cancelled


def _confirm_status(command: Command, write_back: WriteBack) -> str:
    target = write_back.confirmed.get(command.channel) if command.channel else None
    target = target or write_back.confirmed_default
    if target is None:
        how = command.channel.value if command.channel else "no channel"
        raise NotImplementedError(f"the mapping's write_back has no confirmed status for {how}")
    return target


def _guard(current: HostStatus, statuses: Statuses) -> None:
    """Refuse to write over a protected status, or over one the mapping does not know."""
    if current.protected:
        raise WriteBackRefused(
            f"status {current.code!r} ({current.status_class.value}) is protected: not overwritten"
        )
    if current.code not in statuses.known_codes() and statuses.unknown != "eligible":
        raise WriteBackRefused(
            f"status {current.code!r} is not in the mapping's statuses: not overwritten"
        )

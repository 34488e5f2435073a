"""What status an answer writes: by channel, late cancellations, protected and unknown codes,
and "already done" before "protected" so a command applied twice is not refused."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from bridge.clock import parse_instant
from bridge.errors import WriteBackRefused
from bridge.mapping import mapping_path, read_mapping_data, validate_mapping
from bridge.mapping.sql import SqlMapping
from bridge.model import Appointment, Channel, StatusClass
from bridge.writeback import Command, CommandKind
from plugins.writers.sql_status import Decision, cancel_status, decide, host_status

NOW = parse_instant("2026-03-27T08:00:00Z")
MAPPING = validate_mapping(
    SqlMapping, read_mapping_data(mapping_path("openemr")), mapping_path("openemr")
)


def appointment(status: str = "-", hours: float = 48) -> Appointment:
    code = MAPPING.statuses.host_status(status)
    return Appointment(
        key="12",
        occurrence=date(2026, 3, 29),
        patient_key="3",
        start=NOW + timedelta(hours=hours),
        end=None,
        status=status,
        status_class=code.status_class,
        eligible=code.eligible,
    )


def command(kind: CommandKind, channel: Channel | None = Channel.SMS) -> Command:
    return Command(kind, "link", "link-1", "3", "12", date(2026, 3, 29), channel)


def run(
    kind: CommandKind, status: str = "-", channel: Channel | None = Channel.SMS, hours: float = 48
) -> Decision:
    appt = appointment(status, hours)
    current = host_status(status, {}, MAPPING.statuses)
    return decide(command(kind, channel), appt, current, MAPPING.write_back, MAPPING.statuses, NOW)


@pytest.mark.parametrize(
    ("channel", "status"),
    [(Channel.SMS, "SMS"), (Channel.EMAIL, "EMAIL"), (Channel.VOICE, "AVM"), (None, "SMS")],
)
def test_a_confirmation_writes_the_status_of_its_channel(
    channel: Channel | None, status: str
) -> None:
    assert run(CommandKind.CONFIRM, channel=channel).status == status


def test_confirming_again_or_over_another_confirmation_changes_nothing() -> None:
    assert run(CommandKind.CONFIRM, "SMS").status is None
    assert run(CommandKind.CONFIRM, "EMAIL", Channel.SMS).status is None


def test_a_pending_booking_stays_pending() -> None:
    decision = run(CommandKind.CONFIRM, "^")
    assert decision.status is None and "approval" in decision.detail


def test_cancel_is_x_but_percent_inside_24_hours() -> None:
    assert run(CommandKind.CANCEL, hours=48).status == "x"
    assert run(CommandKind.CANCEL, hours=23).status == "%"
    assert run(CommandKind.CANCEL, hours=48).note is True
    no_late = MAPPING.write_back.model_copy(update={"cancelled_late": None})
    assert cancel_status(appointment(hours=1), no_late, NOW) == "x"


@pytest.mark.parametrize("status", ["@", "~", "<", ">", "!", "$", "?"])
@pytest.mark.parametrize("kind", [CommandKind.CONFIRM, CommandKind.CANCEL, CommandKind.CALLBACK])
def test_protected_statuses_are_never_overwritten(status: str, kind: CommandKind) -> None:
    with pytest.raises(WriteBackRefused, match="protected"):
        run(kind, status)


def test_cancelling_a_cancelled_appointment_is_already_done_not_refused() -> None:
    for status in ("x", "%"):
        decision = run(CommandKind.CANCEL, status)
        assert decision.status is None and "already" in decision.detail


def test_a_confirmation_of_a_cancelled_appointment_is_refused() -> None:
    with pytest.raises(WriteBackRefused):
        run(CommandKind.CONFIRM, "x")


def test_a_status_the_mapping_does_not_know_is_left_alone() -> None:
    with pytest.raises(WriteBackRefused, match="not in the mapping"):
        run(CommandKind.CONFIRM, "TELE")


def test_call_back_is_call_and_asks_once() -> None:
    first = run(CommandKind.CALLBACK, "-")
    assert (first.status, first.note) == ("CALL", True)
    again = run(CommandKind.CALLBACK, "CALL")
    assert (again.status, again.note) == (None, False)


def test_the_hosts_own_check_in_flag_wins() -> None:
    flagged = MAPPING.statuses.host_status("*", checked_in=True)
    assert flagged.status_class == StatusClass.CHECKED_IN
    appt = appointment("*")
    with pytest.raises(WriteBackRefused):
        decide(
            command(CommandKind.CONFIRM),
            appt,
            host_status("*", {"*": flagged}, MAPPING.statuses),
            MAPPING.write_back,
            MAPPING.statuses,
            NOW,
        )


def test_a_mapping_without_the_status_fails_the_command_for_staff() -> None:
    empty = MAPPING.write_back.model_copy(update={"confirmed": {}, "confirmed_default": None})
    with pytest.raises(NotImplementedError, match="confirmed"):
        decide(
            command(CommandKind.CONFIRM),
            appointment(),
            host_status("-", {}, MAPPING.statuses),
            empty,
            MAPPING.statuses,
            NOW,
        )

"""The write-back queue and worker, on SQLite and PostgreSQL stores, with a test writer plugin
that plays a host that is down, refuses, or applies."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from bridge.clock import ManualClock, parse_instant
from bridge.errors import HostUnavailable, WriteBackRefused
from bridge.model import Channel
from bridge.plugin import PluginConfig, PluginContext, Reference, Source, WriteContext, Writer
from bridge.runtime import Runtime
from bridge.settings import Settings
from bridge.store import Store
from bridge.store import writebacks as queue
from bridge.template import Templates
from bridge.writeback import Applied, Command, CommandKind, Outcome
from bridge.writeback_worker import apply_due, retry_delay

NOW = parse_instant("2026-03-27T08:00:00Z")


class HostPlay(Writer[PluginConfig]):
    """A writer whose host answers from a script: 'down', 'refuse', 'unknown' or 'ok'."""

    name = "host-play"
    Config = PluginConfig

    def __init__(self, context: PluginContext) -> None:
        super().__init__(PluginConfig(), context)
        self.answers: list[str] = []
        self.applied: list[Command] = []

    def note_sent(self, note: Any) -> None:  # pragma: no cover - not used here
        raise AssertionError

    def apply(self, command: Command, context: WriteContext) -> Applied:
        answer = self.answers.pop(0) if self.answers else "ok"
        if answer == "down":
            raise HostUnavailable("host database unavailable: test")
        if answer == "refuse":
            raise WriteBackRefused("status '@' (checked in) is protected")
        if answer == "unknown":
            raise NotImplementedError(f"the host-play writer cannot apply {command.kind.value}")
        self.applied.append(command)
        return Applied("status set to SMS", host_ref=command.appointment_key, values={"s": "SMS"})


class NoHost(Source[PluginConfig]):
    name = "no-host"
    Config = PluginConfig

    def reference(self) -> Reference:
        return Reference(timezone="Europe/Rome")

    def scan(self, *args: Any) -> list[Any]:  # pragma: no cover
        return []

    def patients(self, *args: Any) -> Any:  # pragma: no cover
        return iter(())

    def occurrences_of(self, *args: Any) -> list[Any]:  # pragma: no cover
        return []


@pytest.fixture
def runtime(store_url: str, tmp_path: Path) -> Any:
    clock = ManualClock(NOW)
    context = PluginContext(clock=clock, base_dir=tmp_path)
    settings = Settings(base_dir=tmp_path)
    store = Store.open(store_url)
    built = Runtime(
        settings=settings,
        clock=clock,
        store=store,
        source=NoHost(PluginConfig(), context),
        writer=HostPlay(context),
        channels={},
        templates=Templates(settings.templates, settings.clinic),
    )
    yield built
    store.close()


def confirm(ref: str = "SM1", key: str = "12") -> Command:
    return Command(
        kind=CommandKind.CONFIRM,
        origin="sms-reply",
        ref=ref,
        patient_key="3",
        appointment_key=key,
        occurrence=date(2026, 3, 28),
        channel=Channel.SMS,
        payload={"text": "YES"},
    )


def items(runtime: Runtime) -> list[queue.QueuedCommand]:
    with runtime.store.begin() as connection:
        return queue.recent(connection)


def test_the_same_answer_twice_is_one_command(runtime: Runtime) -> None:
    with runtime.store.begin() as connection:
        assert queue.enqueue(connection, confirm(), NOW) is True
        assert queue.enqueue(connection, confirm(), NOW) is False
        assert queue.enqueue(connection, confirm(ref="SM2"), NOW) is True
    assert len(items(runtime)) == 2


def test_applied_commands_are_done_with_the_read_back_result(runtime: Runtime) -> None:
    with runtime.store.begin() as connection:
        queue.enqueue(connection, confirm(), NOW)
    report = apply_due(runtime)
    assert (report.done, report.retried) == (1, 0)
    [item] = items(runtime)
    assert item.status == Outcome.DONE
    assert item.result == {"detail": "status set to SMS", "host_ref": "12", "values": {"s": "SMS"}}
    assert item.command == confirm()
    assert apply_due(runtime).done == 0  # nothing applied twice


def test_a_host_that_is_down_gets_it_again_until_it_lands(runtime: Runtime) -> None:
    writer = runtime.writer
    assert isinstance(writer, HostPlay)
    writer.answers = ["down", "down", "down", "ok"]
    with runtime.store.begin() as connection:
        queue.enqueue(connection, confirm(), NOW)
    waits = []
    for _ in range(3):
        assert apply_due(runtime).retried == 1
        [item] = items(runtime)
        assert item.status == Outcome.PENDING and "unavailable" in (item.last_error or "")
        waits.append(item.next_attempt_at - runtime.clock.now())
        assert apply_due(runtime).retried == 0  # not before its time
        runtime.clock.sleep(waits[-1].total_seconds())
    assert waits == [timedelta(seconds=30), timedelta(seconds=60), timedelta(seconds=120)]
    assert apply_due(runtime).done == 1
    assert [c.ref for c in writer.applied] == ["SM1"]


def test_refused_and_unsupported_commands_stop_for_staff(runtime: Runtime) -> None:
    writer = runtime.writer
    assert isinstance(writer, HostPlay)
    writer.answers = ["refuse", "unknown"]
    with runtime.store.begin() as connection:
        queue.enqueue(connection, confirm(ref="A"), NOW)
        queue.enqueue(connection, confirm(ref="B"), NOW)
    report = apply_due(runtime)
    assert (report.refused, report.failed, report.done) == (1, 1, 0)
    by_ref = {item.command.ref: item for item in items(runtime)}
    assert by_ref["A"].status == Outcome.REFUSED
    assert by_ref["A"].last_error == "status '@' (checked in) is protected"
    assert by_ref["B"].status == Outcome.FAILED
    runtime.clock.advance(timedelta(hours=1))
    assert apply_due(runtime).done == 0  # neither is tried again


def test_a_worker_that_died_mid_apply_is_replaced_after_its_lease(runtime: Runtime) -> None:
    with runtime.store.begin() as connection:
        queue.enqueue(connection, confirm(), NOW)
        [claimed] = queue.claim(connection, NOW, timedelta(minutes=2))
        assert claimed.status == Outcome.APPLYING
    assert apply_due(runtime).done == 0  # leased by the dead worker
    runtime.clock.advance(timedelta(minutes=3))
    assert apply_due(runtime).done == 1


def test_retry_delay_is_capped() -> None:
    assert [retry_delay(n) for n in (1, 2, 3)] == [
        timedelta(seconds=30),
        timedelta(seconds=60),
        timedelta(seconds=120),
    ]
    assert retry_delay(50) == timedelta(minutes=15)


def test_commands_for_one_appointment_apply_in_order(runtime: Runtime) -> None:
    writer = runtime.writer
    assert isinstance(writer, HostPlay)
    writer.answers = ["down"]
    cancel = Command(
        kind=CommandKind.CANCEL,
        origin="link",
        ref="T2",
        patient_key="3",
        appointment_key="12",
        occurrence=date(2026, 3, 28),
    )
    other = confirm(ref="SM9", key="99")
    with runtime.store.begin() as connection:
        queue.enqueue(connection, confirm(), NOW)  # will meet a host that is down
        queue.enqueue(connection, cancel, NOW)
        queue.enqueue(connection, other, NOW)
    first = apply_due(runtime)
    assert first.retried == 1 and first.done == 0
    runtime.clock.advance(timedelta(seconds=1))
    # The cancel must wait behind the confirm; another appointment's command need not.
    second = apply_due(runtime)
    assert [c.ref for c in writer.applied] == ["SM9"] and second.done == 1
    runtime.clock.advance(timedelta(minutes=1))
    apply_due(runtime)
    assert [c.ref for c in writer.applied] == ["SM9", "SM1", "T2"]

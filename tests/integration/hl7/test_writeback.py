"""Write-back over HL7 to a test MLLP host on real sockets, through the real write-back queue
and worker: applied on AA; a host that is down for a while or answers AR still gets every
message exactly once in the end, in order per appointment; AE stops and is kept for staff; a
protected status is never written over."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bridge.clock import ManualClock
from bridge.hl7.inbox import store_batch
from bridge.hl7.intake import Intake
from bridge.hl7.mirror import apply_pending
from bridge.hl7.parse import parse
from bridge.model import Channel
from bridge.runtime import Runtime
from bridge.settings import Settings
from bridge.store import writebacks as queue
from bridge.writeback import Command, CommandKind, Outcome
from bridge.writeback_worker import apply_due
from tests.hl7_samples import siu
from tests.integration.hl7.conftest import Peer

NOW = datetime(2026, 3, 27, 8, tzinfo=UTC)
START = datetime(2026, 3, 30, 9, 30)


@pytest.fixture
def bridge(store_url: str, tmp_path: Path, peer: Peer) -> Iterator[Any]:
    made: list[Runtime] = []

    def build(mapping: str = "hl7-siu") -> Runtime:
        settings = Settings(
            base_dir=tmp_path,
            host={"source": "hl7-mllp", "mapping": mapping, "writer": "hl7"},
            store={"url": store_url},
            clinic={"timezone": "Europe/Rome"},
            hl7={
                "outbound_host": "127.0.0.1",
                "outbound_port": peer.port,
                "ack_timeout_seconds": 1,
                "connect_timeout_seconds": 1,
            },
        )
        runtime = Runtime.build(settings, ManualClock(NOW))
        made.append(runtime)
        feed(runtime, siu("C1", "K1", "P1", START), siu("C2", "K2", "P2", START))
        return runtime

    yield build
    for runtime in made:
        runtime.close()


def feed(runtime: Runtime, *messages: bytes) -> None:
    source: Any = runtime.source
    intake = Intake(source.feed.mapping, source.feed.zone, "US")
    now = runtime.clock.now()
    with runtime.store.begin() as connection:
        store_batch(connection, [intake.receive(m, "test", now) for m in messages], now)
        apply_pending(connection, now, intake)


def command(kind: str, key: str | None = "K1", ref: str = "SM1", **payload: Any) -> Command:
    return Command(
        CommandKind(kind), "sms-reply", ref, "P1", key, date(2026, 3, 30), Channel.SMS, payload
    )


def enqueue(runtime: Runtime, *commands: Command) -> None:
    with runtime.store.begin() as connection:
        for item in commands:
            queue.enqueue(connection, item, runtime.clock.now())


def outcomes(runtime: Runtime) -> list[tuple[str, str]]:
    with runtime.store.begin() as connection:
        return [(q.command.kind.value, q.status.value) for q in reversed(queue.recent(connection))]


def later(runtime: Runtime, minutes: float = 20) -> None:
    clock: Any = runtime.clock
    clock.advance(timedelta(minutes=minutes))


def test_applied_when_the_host_answers_aa(bridge: Any, peer: Peer) -> None:
    runtime = bridge()
    enqueue(runtime, command("confirm"))
    assert apply_due(runtime).done == 1
    assert outcomes(runtime) == [("confirm", "done")]
    message = parse(peer.applied[0])
    assert message.value("MSH-9.2") == "S14"
    assert message.value("SCH-2") == "K1" and message.value("SCH-25") == "Confirmed"
    assert message.value("PID-3") == "P1"
    assert message.value("NTE-3").startswith("Confirmed by the patient (sms)")


def test_a_host_down_for_a_while_gets_the_message_once_when_back(bridge: Any, peer: Peer) -> None:
    runtime = bridge()
    port = peer.port
    peer.stop()
    enqueue(runtime, command("confirm"))
    for _ in range(3):
        assert apply_due(runtime).retried == 1
        later(runtime)
    assert outcomes(runtime) == [("confirm", "pending")]
    back = Peer(port=port).start()
    try:
        assert apply_due(runtime).done == 1
        assert len(back.received) == len(back.applied) == 1
    finally:
        back.stop()
    assert outcomes(runtime) == [("confirm", "done")]


def test_ar_is_retried_and_lands_once(bridge: Any, peer: Peer) -> None:
    runtime = bridge()
    peer.answers = ["AR", "AR"]
    enqueue(runtime, command("cancel", reason="flu"))
    assert apply_due(runtime).retried == 1
    assert apply_due(runtime).retried == 0  # not due again before its back-off
    later(runtime)
    assert apply_due(runtime).retried == 1
    later(runtime)
    assert apply_due(runtime).done == 1
    ids = {parse(m).value("MSH-10") for m in peer.received}
    assert len(peer.received) == 3 and len(ids) == 1  # the same message each time
    assert len(peer.applied) == 1
    assert parse(peer.applied[0]).value("NTE-3").endswith("flu")


def test_a_lost_ack_is_resent_with_the_same_control_id(bridge: Any, peer: Peer) -> None:
    runtime = bridge()
    peer.answers = ["silent"]  # the host took it, the ACK never came
    enqueue(runtime, command("callback"))
    assert apply_due(runtime).retried == 1
    later(runtime)
    assert apply_due(runtime).done == 1
    assert len(peer.received) == 2
    assert len(peer.applied) == 1  # the host recognised the resend by its MSH-10


def test_ae_stops_and_is_kept_for_staff(bridge: Any, peer: Peer) -> None:
    runtime = bridge()
    peer.answers = ["AE"]
    enqueue(runtime, command("confirm"))
    assert apply_due(runtime).refused == 1
    later(runtime, 120)
    assert apply_due(runtime).refused == 0
    with runtime.store.begin() as connection:
        item = queue.recent(connection)[0]
    assert item.status == Outcome.REFUSED
    assert item.last_error is not None and "AE: unknown appointment" in item.last_error
    assert peer.applied == [] and len(peer.received) == 1


def test_order_per_appointment_holds_through_an_outage(bridge: Any, peer: Peer) -> None:
    runtime = bridge()
    port = peer.port
    peer.stop()
    enqueue(runtime, command("confirm", ref="SM1"), command("confirm", "K2", "SM2"))
    enqueue(runtime, command("cancel", ref="SM3"))
    apply_due(runtime)
    later(runtime)
    back = Peer(port=port).start()
    try:
        for _ in range(3):
            apply_due(runtime)
            later(runtime)
        received = [(parse(m).value("SCH-2"), parse(m).value("SCH-25")) for m in back.applied]
    finally:
        back.stop()
    k1 = [status for key, status in received if key == "K1"]
    assert k1 == ["Confirmed", "Cancelled"]
    assert sorted(received) == [("K1", "Cancelled"), ("K1", "Confirmed"), ("K2", "Confirmed")]
    assert {status for _, status in outcomes(runtime)} == {"done"}


def test_a_protected_status_or_an_unknown_appointment_is_refused_unsent(
    bridge: Any, peer: Peer
) -> None:
    runtime = bridge()
    feed(
        runtime, siu("C9", "K1", "P1", START, event="S14", status="Arrived", sent="20260327090000")
    )
    enqueue(runtime, command("cancel"), command("confirm", "K404", "SM9"))
    report = apply_due(runtime)
    assert report.refused == 2
    with runtime.store.begin() as connection:
        errors = {q.command.appointment_key: q.last_error for q in queue.recent(connection)}
    assert "'Arrived' (checked_in)" in (errors["K1"] or "")
    assert "not in the feed" in (errors["K404"] or "")
    assert peer.received == []


def test_a_command_without_a_template_fails_with_the_reason(bridge: Any, peer: Peer) -> None:
    runtime = bridge()
    enqueue(runtime, command("opt_out"))
    assert apply_due(runtime).failed == 1
    with runtime.store.begin() as connection:
        item = queue.recent(connection)[0]
    assert item.last_error is not None and "writeback.commands.opt_out" in item.last_error


def test_the_nhs_site_sends_requests_with_its_z_segment(bridge: Any, peer: Peer) -> None:
    runtime = bridge("hl7-siu-nhs")
    enqueue(runtime, command("confirm", "K1-P"))  # this PAS keys appointments on SCH-1
    assert apply_due(runtime).done == 1
    message = parse(peer.applied[0])
    assert message.value("MSH-9.1") == "SRM" and message.value("MSH-9.2") == "S03"
    assert message.value("MSH-5") == "TRUST_PAS"
    assert message.value("ZRB-1") == "CONFIRMED" and message.value("ZRB-2") == "sms"


def test_an_online_booking_is_a_request_with_its_slot(bridge: Any, peer: Peer) -> None:
    runtime = bridge()
    booking = command("book", None, "BK1", start="2026-04-02T08:00:00Z", duration_minutes=20)
    enqueue(runtime, booking)
    assert apply_due(runtime).done == 1
    message = parse(peer.applied[0])
    assert message.value("MSH-9.2") == "S01"
    assert message.value("ARQ-11.1") == "20260402100000+0200"
    assert message.value("ARQ-11.2") == "20260402102000+0200"

"""The dispatcher with real channels: Twilio's wire format on loopback, a SQLite OpenEMR host,
the store on SQLite and PostgreSQL. Provider answers, ambiguous time-outs, redials and resends,
pacing, caps and the budget."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from bridge.delivery.jobstate import Round, current_round
from bridge.delivery.tables import deliveries
from bridge.demo.host import OpenEmrHost
from bridge.dispatcher import Dispatcher
from bridge.store.schema import job_events
from tests.integration.conftest import Bridge
from tests.integration.delivery.conftest import D28, patients
from tests.integration.delivery.providers import FakeTwilio

SMS_ONLY = {"channels": ["sms"], "redials": 2, "resends": 1, "resend_interval": "3h"}


def ledger(bridge: Bridge) -> list[dict[str, Any]]:
    with bridge.runtime.store.begin("read") as connection:
        rows = connection.execute(sa.select(deliveries).order_by(deliveries.c.id)).all()
    return [dict(row._mapping) for row in rows]


def events(bridge: Bridge, job_id: int) -> list[str]:
    with bridge.runtime.store.begin("read") as connection:
        rows = connection.execute(
            sa.select(job_events.c.kind)
            .where(job_events.c.job_id == job_id)
            .order_by(job_events.c.id)
        ).scalars()
        return list(rows)


def test_a_reminder_goes_out_through_twilio(
    sqlite_host: OpenEmrHost, make_bridge: Any, twilio: FakeTwilio
) -> None:
    patients(sqlite_host, 1)
    sqlite_host.add_appointment(1, D28, "09:00")
    bridge: Bridge = make_bridge(reminders=SMS_ONLY)
    bridge.cycle()
    report = bridge.dispatch()
    assert report.sent == 1
    [message] = twilio.messages
    assert message["to"] == "+12025550101"
    assert message["body"].startswith("Synthetic Clinic: Hi Alice")
    [job] = bridge.jobs()
    assert (job["status"], job["provider_ref"]) == ("sent", message["sid"])
    [attempt] = ledger(bridge)
    assert attempt["status"] == "accepted"
    segments = int(message["num_segments"])
    assert attempt["segments"] == segments
    assert attempt["cost"] == round(0.0079 * segments, 6)  # the default price per segment
    # The status callback names the attempt by its opaque token only.
    assert message["_form"]["StatusCallback"].endswith(f"/status/{attempt['token']}")
    assert "101" not in attempt["token"] and len(attempt["token"]) == 24


def test_testing_mode_sends_to_the_testing_phone(
    sqlite_host: OpenEmrHost, make_bridge: Any, twilio: FakeTwilio
) -> None:
    patients(sqlite_host, 1)
    sqlite_host.add_appointment(1, D28, "09:00")
    bridge: Bridge = make_bridge(mode="testing", reminders=SMS_ONLY)
    bridge.cycle()
    bridge.dispatch()
    [message] = twilio.messages
    assert message["to"] == "+12025550100"  # testing.phone
    assert message["body"].startswith("TEST: ")


def test_a_rate_limit_holds_the_channel_without_spending_a_redial(
    sqlite_host: OpenEmrHost, make_bridge: Any, twilio: FakeTwilio
) -> None:
    patients(sqlite_host, 3)
    for pid in (1, 2, 3):
        sqlite_host.add_appointment(pid, D28, f"{8 + pid:02d}:00")
    bridge: Bridge = make_bridge(reminders=SMS_ONLY)
    bridge.cycle()
    twilio.queue("429", "429", "429")
    report = bridge.dispatch()
    # The batch's requests were already in flight side by side: all three met the limit.
    assert (report.sent, report.retried) == (0, 3)
    bridge.clock.advance(timedelta(seconds=1))
    assert bridge.dispatch().sent == 0  # Retry-After: 2 seconds, for the whole channel
    bridge.clock.advance(timedelta(seconds=2))
    assert bridge.dispatch().sent == 3
    assert len(twilio.messages) == 3
    first = bridge.jobs()[0]
    assert "rate-limited" in events(bridge, first["id"])
    # A limit is not the message's fault: no redial was spent.
    with bridge.runtime.store.begin() as connection:
        assert current_round(connection, first["id"]) == Round(1, 1)


def test_an_ambiguous_time_out_is_never_sent_twice(
    sqlite_host: OpenEmrHost, make_bridge: Any, twilio: FakeTwilio
) -> None:
    patients(sqlite_host, 1)
    sqlite_host.add_appointment(1, D28, "09:00")
    bridge: Bridge = make_bridge(reminders=SMS_ONLY)
    bridge.cycle()
    twilio.queue("timeout")
    report = bridge.dispatch()
    assert report.sent == 0
    [job] = bridge.jobs()
    assert job["status"] == "unknown"
    assert bridge.dispatch().sent == 0  # it waits delivery.unknown_settle before asking
    bridge.clock.advance(timedelta(minutes=2))
    report = bridge.dispatch()
    assert report.unknown == 1 and report.sent == 0
    [job] = bridge.jobs()
    assert job["status"] == "sent"
    assert len(twilio.messages) == 1
    [attempt] = ledger(bridge)
    assert attempt["provider_ref"] == twilio.messages[0]["sid"]


def test_a_message_the_provider_never_got_is_sent_after_asking(
    sqlite_host: OpenEmrHost, make_bridge: Any, twilio: FakeTwilio
) -> None:
    patients(sqlite_host, 1)
    sqlite_host.add_appointment(1, D28, "09:00")
    bridge: Bridge = make_bridge(reminders=SMS_ONLY)
    bridge.cycle()
    twilio.queue("timeout")
    bridge.dispatch()
    twilio.messages.clear()  # as if the request had died before Twilio stored it
    bridge.clock.advance(timedelta(minutes=2))
    report = bridge.dispatch()
    assert report.unknown == 1 and report.sent == 1
    assert len(twilio.messages) == 1
    # The same attempt (same key, same token) was tried again: one ledger row.
    assert len(ledger(bridge)) == 1


def test_permanent_errors_fail_at_once(
    sqlite_host: OpenEmrHost, make_bridge: Any, twilio: FakeTwilio
) -> None:
    patients(sqlite_host, 1)
    sqlite_host.add_appointment(1, D28, "09:00")
    bridge: Bridge = make_bridge(reminders=SMS_ONLY)
    bridge.cycle()
    twilio.queue("error:21211")
    report = bridge.dispatch()
    assert report.failed == 1
    [job] = bridge.jobs()
    assert job["status"] == "failed" and "21211" in job["last_error"]
    [attempt] = ledger(bridge)
    assert (attempt["status"], attempt["error_code"]) == ("failed", "21211")


def test_a_carrier_opt_out_is_recorded(
    sqlite_host: OpenEmrHost, make_bridge: Any, twilio: FakeTwilio
) -> None:
    patients(sqlite_host, 1)
    sqlite_host.add_appointment(1, D28, "09:00")
    sqlite_host.add_appointment(1, D28 + timedelta(days=3), "09:00")  # planned tomorrow
    bridge: Bridge = make_bridge(reminders=SMS_ONLY)
    bridge.cycle()
    twilio.queue("error:21610")
    bridge.dispatch()
    assert len(twilio.messages) == 0
    bridge.clock.advance(timedelta(days=1))
    bridge.cycle()
    assert bridge.dispatch().sent == 0
    jobs = sorted(
        (job["occurrence"].day, job["status"], job["last_error"]) for job in bridge.jobs()
    )
    assert jobs[0][:2] == (28, "failed") and "21610" in jobs[0][2]
    assert jobs[1] == (31, "skipped", "patient opted out of sms")  # never tried


def test_server_errors_are_settled_by_asking(
    sqlite_host: OpenEmrHost, make_bridge: Any, twilio: FakeTwilio
) -> None:
    patients(sqlite_host, 1)
    sqlite_host.add_appointment(1, D28, "09:00")
    bridge: Bridge = make_bridge(reminders=SMS_ONLY)
    bridge.cycle()
    twilio.queue("500")
    bridge.dispatch()
    bridge.clock.advance(timedelta(minutes=2))
    bridge.dispatch()
    assert len(twilio.messages) == 1
    assert bridge.jobs()[0]["status"] == "sent"


def test_a_transient_refusal_is_redialled_then_failed(
    sqlite_host: OpenEmrHost, make_bridge: Any, twilio: FakeTwilio
) -> None:
    patients(sqlite_host, 1)
    sqlite_host.add_appointment(1, D28, "18:00")
    bridge: Bridge = make_bridge(reminders={**SMS_ONLY, "resends": 0})
    bridge.cycle()
    twilio.queue("503", "503", "503")
    # 503 carries Retry-After (a provider limit): those never spend the redials.
    for _ in range(3):
        bridge.dispatch()
        bridge.clock.advance(timedelta(seconds=3))
    assert bridge.dispatch().sent == 1


def test_a_slow_provider_never_keeps_a_batch_past_half_its_lease(
    sqlite_host: OpenEmrHost, make_bridge: Any, twilio: FakeTwilio
) -> None:
    patients(sqlite_host, 8)
    for pid in range(1, 9):
        sqlite_host.add_appointment(pid, D28, f"{8 + pid:02d}:00")
    bridge: Bridge = make_bridge(reminders=SMS_ONLY, delivery={"lease": "1m"})
    bridge.cycle()
    # Each request takes 10 s of the bridge's clock: by the fourth, half the lease is gone.
    twilio.on_request = lambda: bridge.clock.advance(timedelta(seconds=10))
    report = Dispatcher(bridge.runtime).run_due()
    # What was left when half the lease had gone went back to the queue unsent, and out in a
    # fresh batch: every message exactly once.
    assert report.sent == len(twilio.messages) == 8
    assert len({m["to"] for m in twilio.messages}) == 8
    with bridge.runtime.store.begin() as connection:
        deferred = connection.execute(
            sa.select(job_events.c.job_id).where(
                job_events.c.detail == "not sent: the batch's lease was running out"
            )
        ).all()
    assert deferred
    assert {job["status"] for job in bridge.jobs()} == {"sent"}

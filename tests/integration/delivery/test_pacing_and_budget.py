"""Pacing between sends (across a restart), the per-run cap, the monthly budget's warning and
hard stop, resends after the interval, and ``bridge send-sample``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bridge.delivery.sample import send_sample
from bridge.demo.host import OpenEmrHost
from bridge.dispatcher import Dispatcher
from bridge.errors import DeliveryError
from bridge.model import Channel
from bridge.store.writebacks import recent
from tests.integration.conftest import Bridge
from tests.integration.delivery.conftest import D28, patients
from tests.integration.delivery.providers import FakeTwilio
from tests.integration.delivery.test_dispatch import ledger


def five_calls(host: OpenEmrHost, make_bridge: Any, **sections: Any) -> Bridge:
    patients(host, 5)
    for pid in range(1, 6):
        host.add_appointment(pid, D28, f"{9 + pid}:00")
    bridge: Bridge = make_bridge(reminders={"channels": ["voice"]}, **sections)
    bridge.cycle()
    return bridge


def test_calls_are_paced_even_across_a_restart(
    sqlite_host: OpenEmrHost, make_bridge: Any, twilio: FakeTwilio
) -> None:
    bridge = five_calls(sqlite_host, make_bridge, delivery={"pacing": {"voice": 30}})
    start = bridge.clock.now()
    assert Dispatcher(bridge.runtime).run_due(limit=2).sent == 2
    # A new dispatcher (a restarted service) does not send the backlog in a burst.
    assert Dispatcher(bridge.runtime).run_due().sent == 3
    times = [row["started_at"] for row in ledger(bridge)]
    assert [t - start for t in times] == [timedelta(seconds=30 * n) for n in range(5)]
    assert len(twilio.calls) == 5


def test_the_cap_per_run(sqlite_host: OpenEmrHost, make_bridge: Any, twilio: FakeTwilio) -> None:
    bridge = five_calls(sqlite_host, make_bridge, delivery={"max_per_run": 2})
    assert [bridge.dispatch().sent for _ in range(4)] == [2, 2, 1, 0]


def test_the_budget_warns_then_stops_everything(
    sqlite_host: OpenEmrHost, make_bridge: Any, twilio: FakeTwilio
) -> None:
    # Five calls at 0.014 each; the budget covers three; the warning comes at 80 % (0.032).
    bridge = five_calls(
        sqlite_host,
        make_bridge,
        delivery={"monthly_budget": 0.042, "admin_email": "admin@clinic.example.test"},
    )
    report = bridge.dispatch()
    assert (report.sent, report.budget_stop) == (3, True)
    assert len(twilio.calls) == 3
    [warning] = bridge.outbox("email")
    assert warning["to"] == "admin@clinic.example.test"
    assert "0.04 of 0.04 USD spent this month" in warning["text"]
    assert bridge.dispatch().sent == 0
    assert len(bridge.outbox("email")) == 1  # warned once a month
    # Samples are held back too.
    with pytest.raises(DeliveryError, match="monthly budget reached"):
        send_sample(bridge.runtime, Channel.VOICE)
    assert len(twilio.calls) == 3


def test_resends_after_the_redials(
    sqlite_host: OpenEmrHost, make_bridge: Any, web: Any, twilio: FakeTwilio
) -> None:
    patients(sqlite_host, 1)
    sqlite_host.add_appointment(1, D28 + timedelta(days=1), "17:00")
    bridge: Bridge = make_bridge(
        reminders={"channels": ["sms"], "redials": 1, "resends": 1, "resend_interval": "6h"}
    )
    bridge.cycle()
    server = web(bridge)
    waits = []
    for _ in range(4):
        before = bridge.clock.now()
        assert bridge.dispatch().sent == 1
        attempt = ledger(bridge)[-1]
        message = twilio.messages[-1]
        path = f"/webhooks/twilio/status/{attempt['token']}"
        server.twilio(path, {"MessageSid": message["sid"], "MessageStatus": "undelivered"})
        job = bridge.jobs()[0]
        if job["status"] != "planned":
            break
        waits.append(job["due_at"] - before)
        bridge.clock.set(job["due_at"])
    # first try, a redial 10 min later, a resend 6 h later, its redial: then failed.
    assert waits == [timedelta(minutes=10), timedelta(hours=6), timedelta(minutes=10)]
    assert bridge.jobs()[0]["status"] == "failed"
    assert len(twilio.messages) == 4
    keys = [row["idempotency_key"].rsplit("|", 1)[1] for row in ledger(bridge)]
    assert keys == ["sms", "sms#2", "sms#3", "sms#4"]


def test_send_sample(sqlite_host: OpenEmrHost, make_bridge: Any, twilio: FakeTwilio) -> None:
    bridge: Bridge = make_bridge(mode="live")
    status, out = bridge.cli("send-sample", "--sms")
    assert status == 0, out
    assert "sample sms sent through twilio-sms to testing.phone" in out
    [message] = twilio.messages
    assert message["to"] == "+12025550100"  # the testing phone, in live mode too
    assert message["body"].startswith("TEST: Synthetic Clinic: Hi Test")
    status, out = bridge.cli("send-sample", "--call")
    assert status == 0 and twilio.calls[0]["to"] == "+12025550100"
    status, out = bridge.cli("send-sample", "--email")
    assert status == 0
    [mail] = bridge.outbox("email")
    assert mail["subject"].startswith("[TEST] ") and mail["to"] == "front-desk@example.test"
    status, out = bridge.cli("costs")
    assert status == 0 and "sample" in out and "sms" in out
    with bridge.runtime.store.begin() as connection:
        assert recent(connection) == []  # samples never touch the host

"""Provider webhooks on the bridge's real web server: signatures, replies and keywords, call
scripts and keypresses, delivery statuses, email unsubscribe; each answer a write-back command."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from bridge.delivery.tables import deliveries, inbound, opt_outs
from bridge.demo.host import OpenEmrHost
from bridge.store.rejects import open_rejects
from bridge.store.writebacks import recent
from tests.integration.conftest import Bridge
from tests.integration.delivery.conftest import D28, patients
from tests.integration.delivery.providers import FakeTwilio

PATIENT = "+12025550101"
TWO_RULES = {"channels": ["sms"], "lead_times": ["2h"], "redials": 2}


def sent_bridge(host: OpenEmrHost, make_bridge: Any, **reminders: Any) -> Bridge:
    """One patient, one appointment tomorrow, its first reminder sent."""
    patients(host, 1)
    host.add_appointment(1, D28, "17:00")
    bridge: Bridge = make_bridge(reminders={**TWO_RULES, **reminders})
    bridge.cycle()
    assert bridge.dispatch().sent == 1
    return bridge


def commands(bridge: Bridge) -> list[tuple[str, str | None, str]]:
    with bridge.runtime.store.begin("read") as connection:
        items = recent(connection, 50)
    return sorted((i.command.kind.value, i.command.channel, i.command.origin) for i in items)


def rows(bridge: Bridge, table: sa.Table) -> list[dict[str, Any]]:
    with bridge.runtime.store.begin("read") as connection:
        return [dict(r._mapping) for r in connection.execute(sa.select(table).order_by(table.c.id))]


def statuses(bridge: Bridge) -> dict[str, str]:
    return {job["rule"]: job["status"] for job in bridge.jobs()}


def sms(web: Any, body: str, sid: str = "SM" + "1" * 32, sender: str = PATIENT) -> Any:
    return web.twilio(
        "/webhooks/twilio/sms",
        {"MessageSid": sid, "From": sender, "To": "+12025550150", "Body": body, "NumMedia": "0"},
    )


def test_a_yes_confirms_and_stops_the_other_reminders(
    sqlite_host: OpenEmrHost, make_bridge: Any, web: Any, twilio: FakeTwilio
) -> None:
    bridge = sent_bridge(sqlite_host, make_bridge)
    assert statuses(bridge) == {"days_ahead": "sent", "lead_2h": "planned"}
    server = web(bridge)
    answer = sms(server, "  Yes!! 👍")
    assert answer.status_code == 200 and answer.text == "<Response/>"
    assert commands(bridge) == [("confirm", "sms", "sms-reply")]
    assert statuses(bridge) == {"days_ahead": "sent", "lead_2h": "cancelled"}
    # The next cycle does not bring it back, and nothing more goes out.
    bridge.clock.advance(timedelta(hours=25))
    bridge.cycle()
    assert statuses(bridge)["lead_2h"] == "cancelled"
    assert bridge.dispatch().sent == 0
    # Twilio retries the webhook: the answer counts once.
    assert sms(server, "  Yes!! 👍").status_code == 200
    assert commands(bridge) == [("confirm", "sms", "sms-reply")]


def test_stop_is_honoured_before_the_next_send(
    sqlite_host: OpenEmrHost, make_bridge: Any, web: Any, twilio: FakeTwilio
) -> None:
    bridge = sent_bridge(sqlite_host, make_bridge)
    server = web(bridge)
    assert sms(server, "stop").status_code == 200
    assert commands(bridge) == [("opt_out", "sms", "sms-reply")]
    [opt_out] = rows(bridge, opt_outs)
    assert (opt_out["address"], opt_out["patient_key"], opt_out["opted_out"]) == (
        PATIENT,
        "1",
        True,
    )
    assert statuses(bridge)["lead_2h"] == "skipped"
    bridge.clock.advance(timedelta(hours=25))
    bridge.cycle()
    assert bridge.dispatch().sent == 0
    assert len(twilio.messages) == 1  # no confirmation from us: Twilio answers STOP itself
    # START opts back in: the next cycle plans the skipped reminder again.
    assert sms(server, "START", sid="SM" + "2" * 32).status_code == 200
    assert ("opt_in", "sms", "sms-reply") in commands(bridge)
    bridge.cycle()
    assert statuses(bridge)["lead_2h"] == "planned"


def test_free_text_goes_to_staff(
    sqlite_host: OpenEmrHost, make_bridge: Any, web: Any, twilio: FakeTwilio
) -> None:
    bridge = sent_bridge(sqlite_host, make_bridge)
    server = web(bridge)
    sms(server, "Can I come at 10 instead? My car broke down")
    [reply] = rows(bridge, inbound)
    assert (reply["status"], reply["intent"]) == ("staff", "staff")
    assert commands(bridge) == []
    assert statuses(bridge)["lead_2h"] == "planned"
    status, out = bridge.cli("replies", "--staff")
    assert status == 0
    assert "Can I come at 10 instead?" in out and "staff" in out and PATIENT in out
    auto = twilio.messages[-1]
    assert auto["to"] == PATIENT
    assert (
        auto["body"]
        == "Synthetic Clinic: we could not read your reply. Please call us at +12025550199."
    )


def test_unsigned_and_forged_requests_are_refused_and_kept(
    sqlite_host: OpenEmrHost, make_bridge: Any, web: Any
) -> None:
    bridge = sent_bridge(sqlite_host, make_bridge)
    server = web(bridge)
    params = {"MessageSid": "SM" + "9" * 32, "From": PATIENT, "Body": "C"}
    unsigned = server.twilio("/webhooks/twilio/sms", params, sign=False)
    forged = server.twilio("/webhooks/twilio/sms", params, token="not-the-token")
    tampered_params = {**params, "Body": "N"}
    signed = server.twilio("/webhooks/twilio/sms", params)
    tampered = server.http.post(
        "/webhooks/twilio/sms",
        data=tampered_params,
        headers={"X-Twilio-Signature": signed.request.headers["X-Twilio-Signature"]},
    )
    assert [r.status_code for r in (unsigned, forged, tampered)] == [403, 403, 403]
    with bridge.runtime.store.begin("read") as connection:
        kept = open_rejects(connection, "webhook")
    assert len(kept) == 3
    assert {r.reason for r in kept} == {"missing or wrong signature"}
    assert commands(bridge) == [("confirm", "sms", "sms-reply")]  # only the signed one


def test_an_undelivered_sms_is_redialled_with_a_new_key(
    sqlite_host: OpenEmrHost, make_bridge: Any, web: Any, twilio: FakeTwilio
) -> None:
    bridge = sent_bridge(sqlite_host, make_bridge)
    server = web(bridge)
    [attempt] = rows(bridge, deliveries)
    sid = twilio.messages[0]["sid"]
    path = f"/webhooks/twilio/status/{attempt['token']}"
    for status in ("sent", "undelivered"):
        params = {"MessageSid": sid, "MessageStatus": status, "ErrorCode": "30003"}
        assert server.twilio(path, params).status_code == 204
    assert statuses(bridge)["days_ahead"] == "planned"
    assert bridge.dispatch().sent == 0  # spaced out: redial_spacing
    bridge.clock.advance(timedelta(minutes=10))
    assert bridge.dispatch().sent == 1
    first, second = rows(bridge, deliveries)
    assert (first["status"], first["error_code"]) == ("failed", "30003")
    assert second["idempotency_key"] == first["idempotency_key"] + "#2"
    assert len(twilio.messages) == 2
    # A late "delivered" for the first attempt changes nothing.
    late = {"MessageSid": sid, "MessageStatus": "delivered"}
    assert server.twilio(path, late).status_code == 204
    assert rows(bridge, deliveries)[0]["status"] == "failed"


def test_unknown_tokens_are_refused(sqlite_host: OpenEmrHost, make_bridge: Any, web: Any) -> None:
    bridge = sent_bridge(sqlite_host, make_bridge)
    server = web(bridge)
    answer = server.twilio("/webhooks/twilio/status/" + "0" * 24, {"MessageStatus": "delivered"})
    assert answer.status_code == 404

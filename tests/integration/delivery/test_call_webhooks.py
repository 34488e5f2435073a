"""Calls through Twilio end to end: the call script Twilio fetches (full script for a person,
the voicemail for a machine), keypresses 1 / 2 / 3 and the transfer, call outcomes and redials;
Vonage receipts and replies; the email unsubscribe link."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from bridge.delivery.tables import deliveries, opt_outs
from bridge.demo.host import OpenEmrHost
from bridge.dispatcher import Dispatcher
from plugins.channels.vonage_sms import sign
from tests.integration.conftest import Bridge
from tests.integration.delivery.conftest import D28, patients, vonage_options
from tests.integration.delivery.providers import FakeTwilio, FakeVonage
from tests.integration.delivery.test_webhooks import commands, rows, statuses


def call_once(host: OpenEmrHost, make_bridge: Any, twilio: FakeTwilio) -> tuple[Bridge, str]:
    patients(host, 1)
    host.add_appointment(1, D28, "17:00")
    bridge: Bridge = make_bridge(reminders={"channels": ["voice"], "redials": 1})
    bridge.cycle()
    assert bridge.dispatch().sent == 1
    [attempt] = rows(bridge, deliveries)
    return bridge, attempt["token"]


def test_the_call_script_for_a_person_and_for_a_machine(
    sqlite_host: OpenEmrHost, make_bridge: Any, web: Any, twilio: FakeTwilio
) -> None:
    bridge, token = call_once(sqlite_host, make_bridge, twilio)
    server = web(bridge)
    call = twilio.calls[0]
    assert call["_form"]["From"] == "+12025550150"  # clinic.caller_id
    person = server.twilio(
        f"/webhooks/twilio/voice/{token}", {"CallSid": call["sid"], "AnsweredBy": "human"}
    )
    assert person.headers["content-type"].startswith("application/xml")
    body = person.text
    assert f'action="/webhooks/twilio/voice/{token}/gather"' in body
    assert '<Gather numDigits="1"' in body
    assert "Synthetic Clinic" in body and "Alice" in body
    assert "Press 1 to confirm, 2 to cancel, or 3 to speak to the office." in body
    machine = server.twilio(
        f"/webhooks/twilio/voice/{token}",
        {"CallSid": call["sid"], "AnsweredBy": "machine_end_beep"},
    ).text
    assert "<Gather" not in machine and "<Hangup/>" in machine
    assert "To confirm or cancel, please call us at (202) 555-0199." in machine
    # Twilio named the call when it fetched the script: the attempt knows its sid.
    assert rows(bridge, deliveries)[0]["provider_ref"] == call["sid"]


def test_keypresses(
    sqlite_host: OpenEmrHost, make_bridge: Any, web: Any, twilio: FakeTwilio
) -> None:
    bridge, token = call_once(sqlite_host, make_bridge, twilio)
    server = web(bridge)
    gather = f"/webhooks/twilio/voice/{token}/gather"
    sid = twilio.calls[0]["sid"]
    wrong = server.twilio(gather, {"CallSid": sid, "Digits": "7"}).text
    assert "not an option" in wrong and f"/webhooks/twilio/voice/{token}</Redirect>" in wrong
    transfer = server.twilio(gather, {"CallSid": sid, "Digits": "3"}).text
    assert "<Dial" in transfer and "+12025550199</Dial>" in transfer
    assert 'callerId="+12025550150"' in transfer
    assert commands(bridge) == []  # the office took the call itself
    missed = server.twilio(
        f"/webhooks/twilio/voice/{token}/transfer", {"CallSid": sid, "DialCallStatus": "no-answer"}
    ).text
    assert "call you back" in missed
    assert commands(bridge) == [("callback", "voice", "voice-keypress")]
    confirmed = server.twilio(gather, {"CallSid": sid, "Digits": "1"}).text
    assert "confirmed" in confirmed
    assert ("confirm", "voice", "voice-keypress") in commands(bridge)


def test_a_busy_line_is_redialled_and_a_completed_call_costs_its_minutes(
    sqlite_host: OpenEmrHost, make_bridge: Any, web: Any, twilio: FakeTwilio
) -> None:
    bridge, token = call_once(sqlite_host, make_bridge, twilio)
    server = web(bridge)
    status = f"/webhooks/twilio/call-status/{token}"
    first = twilio.calls[0]["sid"]
    assert server.twilio(status, {"CallSid": first, "CallStatus": "busy"}).status_code == 204
    assert statuses(bridge) == {"days_ahead": "planned"}
    bridge.clock.advance(timedelta(minutes=10))
    assert bridge.dispatch().sent == 1
    second = rows(bridge, deliveries)[1]
    again = f"/webhooks/twilio/call-status/{second['token']}"
    done = {"CallSid": twilio.calls[1]["sid"], "CallStatus": "completed", "CallDuration": "75"}
    assert server.twilio(again, done).status_code == 204
    first_row, second_row = rows(bridge, deliveries)
    assert (first_row["status"], first_row["error_code"]) == ("failed", "busy")
    assert second_row["status"] == "delivered"
    assert second_row["cost"] == 0.028  # two started minutes at 0.014


def test_an_answer_on_the_call_stops_the_sms(
    sqlite_host: OpenEmrHost, make_bridge: Any, web: Any, twilio: FakeTwilio
) -> None:
    patients(sqlite_host, 1)
    sqlite_host.add_appointment(1, D28, "17:00")
    bridge: Bridge = make_bridge(reminders={"default_type": "call_sms", "channels": None})
    bridge.cycle()
    assert Dispatcher(bridge.runtime).run_due(limit=1).sent == 1  # the call goes first
    [call] = rows(bridge, deliveries)
    assert call["channel"] == "voice"
    server = web(bridge)
    server.twilio(
        f"/webhooks/twilio/voice/{call['token']}/gather",
        {"CallSid": twilio.calls[0]["sid"], "Digits": "2"},
    )
    assert commands(bridge) == [("cancel", "voice", "voice-keypress")]
    jobs = {job["channel"]: job["status"] for job in bridge.jobs()}
    assert jobs == {"voice": "sent", "sms": "cancelled"}
    assert bridge.dispatch().sent == 0
    assert twilio.messages == []


def test_vonage_receipts_and_replies(
    sqlite_host: OpenEmrHost, make_bridge: Any, web: Any, vonage: FakeVonage
) -> None:
    patients(sqlite_host, 1)
    sqlite_host.add_appointment(1, D28, "17:00")
    channels = {
        "sms": {"plugin": "vonage-sms", **vonage_options(vonage)},
        "email": {"plugin": "outbox", "folder": "outbox"},
        "voice": {"plugin": "outbox", "folder": "outbox"},
    }
    bridge: Bridge = make_bridge(channels=channels, reminders={"channels": ["sms"]})
    bridge.cycle()
    assert bridge.dispatch().sent == 1
    server = web(bridge)
    secret = "synthetic-signature-secret"
    [attempt] = rows(bridge, deliveries)
    assert vonage.messages[0]["client-ref"] == attempt["token"]
    now = str(int(bridge.clock.now().timestamp()))
    receipt = {
        "msisdn": "12025550101",
        "to": "12025550150",
        "messageId": vonage.messages[0]["_parts"][0]["message-id"],
        "status": "delivered",
        "err-code": "0",
        "price": "0.00680000",
        "client-ref": attempt["token"],
        "timestamp": now,
    }
    unsigned = server.http.post("/webhooks/vonage/dlr", data=receipt)
    assert unsigned.status_code == 403
    signed = {**receipt, "sig": sign(secret, "md5hash", receipt)}
    assert server.http.get("/webhooks/vonage/dlr", params=signed).status_code == 204
    assert rows(bridge, deliveries)[0]["status"] == "delivered"
    reply = {
        "msisdn": "12025550101",
        "to": "12025550150",
        "messageId": "0B00000001",
        "text": "HELP",
        "type": "text",
        "timestamp": now,
    }
    reply["sig"] = sign(secret, "md5hash", reply)
    assert server.http.post("/webhooks/vonage/inbound", data=reply).status_code == 204
    # Vonage does not answer HELP itself: the bridge does, with the clinic's name and phone.
    help_text = vonage.messages[-1]["text"]
    assert help_text.startswith("Synthetic Clinic appointment reminders.")
    assert "+12025550199" in help_text
    stop = {**reply, "messageId": "0B00000002", "text": "Stop."}
    stop.pop("sig")
    stop["sig"] = sign(secret, "md5hash", stop)
    server.http.post("/webhooks/vonage/inbound", data=stop)
    assert vonage.messages[-1]["text"].startswith("Synthetic Clinic: you will get no more texts")
    assert ("opt_out", "sms", "sms-reply") in commands(bridge)
    # After the opt-out the address gets nothing else, not even an auto-reply.
    count = len(vonage.messages)
    chat = {**reply, "messageId": "0B00000003", "text": "ok thanks"}
    chat.pop("sig")
    chat["sig"] = sign(secret, "md5hash", chat)
    server.http.post("/webhooks/vonage/inbound", data=chat)
    time.sleep(0.05)
    assert len(vonage.messages) == count


def test_the_email_unsubscribe_link(sqlite_host: OpenEmrHost, make_bridge: Any, web: Any) -> None:
    patients(sqlite_host, 1)
    sqlite_host.add_appointment(1, D28, "17:00")
    bridge: Bridge = make_bridge(reminders={"channels": ["email"]})
    bridge.cycle()
    assert bridge.dispatch().sent == 1
    [attempt] = rows(bridge, deliveries)
    server = web(bridge)
    path = f"/webhooks/email/unsubscribe/{attempt['token']}"
    page = server.http.get(path)
    assert page.status_code == 200 and "<form method='post'>" in page.text
    assert rows(bridge, opt_outs) == []  # a link scanner's GET changes nothing
    done = server.http.post(path, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200
    [out] = rows(bridge, opt_outs)
    assert (out["channel"], out["address"], out["opted_out"]) == (
        "email",
        "patient1@example.test",
        True,
    )
    assert commands(bridge) == [("opt_out", "email", "email-unsubscribe")]
    assert server.http.post("/webhooks/email/unsubscribe/" + "f" * 24).status_code == 404

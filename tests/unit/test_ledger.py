"""The attempt ledger: keys and tokens, recording before the request, retries of the same key."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from bridge.clock import parse_instant
from bridge.delivery import ledger
from bridge.model import Channel
from bridge.plugin import OutboundMessage, SendResult, text_digest
from bridge.store import Store
from bridge.store import jobs as queue
from bridge.store.jobs import JobPlan

NOW = parse_instant("2026-03-27T09:00:00Z")
KEY = "reminder|101|2026-03-28|days_ahead|sms"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A store holding jobs 1 to 8 (attempts point at their job)."""
    opened = Store.open(f"sqlite:///{tmp_path / 'store.sqlite'}")
    plans = [
        JobPlan("reminder", f"10{n}", date(2026, 3, 28), "1", "days_ahead", Channel.SMS, NOW, NOW)
        for n in range(8)
    ]
    with opened.begin() as connection:
        queue.reconcile(connection, [], plans, NOW)
    yield opened
    opened.close()


def message(token: str, key: str = KEY, channel: Channel = Channel.SMS) -> OutboundMessage:
    return OutboundMessage(
        key, channel, "+12025550101", " Hi Alice ", voicemail="short", token=token
    )


def test_keys_and_tokens(store: Store) -> None:
    assert ledger.attempt_key(KEY, 1) == KEY
    assert ledger.attempt_key(KEY, 3) == KEY + "#3"
    with store.begin() as connection:
        secret = ledger.token_secret(connection, NOW)
        assert ledger.token_secret(connection, NOW) == secret  # made once, then kept
    token = ledger.token_for(KEY, secret)
    assert token == ledger.token_for(KEY, secret) and len(token) == 24
    assert token != ledger.token_for(KEY, "another store's secret")  # cannot be guessed
    assert "101" not in token


def test_an_attempt_is_recorded_then_accepted(store: Store) -> None:
    with store.begin() as connection:
        ledger.begin(connection, message("t" * 24), "twilio-sms", ledger.Target(7), 1, NOW)
    with store.begin() as connection:
        row = ledger.by_token(connection, "t" * 24)
    assert row is not None
    assert (row.status, row.job_id, row.recipient) == ("sending", 7, "+12025550101")
    assert row.body_digest == text_digest("Hi Alice")
    later = NOW + timedelta(seconds=1)
    with store.begin() as connection:
        ledger.accepted(connection, "t" * 24, SendResult("SM1", segments=2), 0.0158, later)
        assert ledger.by_ref(connection, "SM1") is not None
        assert ledger.sends_of_job(connection, 7) == 1
        assert ledger.sends_of_jobs(connection, [7, 8]) == {7: 1}


def test_a_retry_of_a_key_the_provider_never_got_reuses_its_row(store: Store) -> None:
    with store.begin() as connection:
        ledger.begin(connection, message("t" * 24), "twilio-sms", ledger.Target(7), 1, NOW)
        ledger.finish(connection, "t" * 24, ledger.NOT_SENT, NOW, "503")
    with store.begin() as connection:
        starts = [ledger.Start(message("t" * 24), "twilio-sms", ledger.Target(7), 1)]
        ledger.begin_many(connection, starts, NOW + timedelta(minutes=1))
        row = ledger.by_token(connection, "t" * 24)
        assert row is not None and row.status == "sending"
        assert row.started_at == NOW + timedelta(minutes=1)
        assert ledger.sends_of_job(connection, 7) == 0  # never reached the provider


def test_a_call_keeps_its_script(store: Store) -> None:
    with store.begin() as connection:
        call = message("c" * 24, KEY.replace("sms", "voice"), Channel.VOICE)
        ledger.begin(connection, call, "twilio-voice", ledger.Target(8), 1, NOW)
        assert ledger.call_script(connection, "c" * 24) == (" Hi Alice ", "short")
        assert ledger.call_script(connection, "x" * 24) is None


def test_the_newest_message_to_an_address(store: Store) -> None:
    with store.begin() as connection:
        for n, token in enumerate(("a" * 24, "b" * 24)):
            target = ledger.Target(n + 1, appointment_key=f"10{n}")
            key = KEY.replace("101", f"10{n}")
            ledger.begin(connection, message(token, key), "twilio-sms", target, 1, NOW)
            ledger.accepted(connection, token, SendResult(f"SM{n}"), 0.0079, NOW)
        last = ledger.last_to(connection, Channel.SMS, "+12025550101")
        assert last is not None and last.appointment_key == "101"
        assert ledger.known_refs(connection, Channel.SMS, "+12025550101") == {"SM0", "SM1"}
        assert ledger.last_to(connection, Channel.EMAIL, "+12025550101") is None


def test_a_message_without_its_token_is_refused(store: Store) -> None:
    with store.begin() as connection, pytest.raises(ValueError, match="token"):
        bare = OutboundMessage(KEY, Channel.SMS, "+12025550101", "x")
        ledger.begin(connection, bare, "twilio-sms", ledger.Target(1), 1, NOW)

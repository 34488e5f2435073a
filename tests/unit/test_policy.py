"""Redials and resends: spacing, rounds, the sending window and the appointment's deadline."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bridge.clock import parse_instant
from bridge.delivery.jobstate import REDIAL, RESEND, Round
from bridge.delivery.policy import AttemptPolicy
from bridge.delivery.settings import DeliverySettings
from bridge.settings import RemindersSettings
from bridge.window import SendingWindow

ROME = ZoneInfo("Europe/Rome")
NOW = parse_instant("2026-03-27T09:00:00Z")  # 10:00 in Rome
VISIT = parse_instant("2026-03-30T08:00:00Z")


def policy(**reminders: object) -> AttemptPolicy:
    settings = RemindersSettings.model_validate({"redials": 2, "resends": 1, **reminders})
    return AttemptPolicy(settings, DeliverySettings(), SendingWindow(9, 19, ROME))


@pytest.mark.parametrize(
    ("state", "kind", "wait"),
    [
        (Round(1, 1), REDIAL, timedelta(minutes=10)),
        (Round(1, 2), REDIAL, timedelta(minutes=20)),
        (Round(1, 3), RESEND, timedelta(hours=3)),
        (Round(2, 1), REDIAL, timedelta(minutes=10)),
        (Round(2, 3), None, None),
    ],
)
def test_redials_then_resends(state: Round, kind: str | None, wait: timedelta | None) -> None:
    retry = policy().after_failure(state, NOW, VISIT)
    if kind is None:
        assert retry is None
    else:
        assert retry is not None and (retry.kind, retry.due - NOW) == (kind, wait)


@pytest.mark.parametrize(
    ("interval", "wait"),
    [("immediate", timedelta(0)), ("6h", timedelta(hours=6)), ("24h", timedelta(hours=24))],
)
def test_resend_intervals(interval: str, wait: timedelta) -> None:
    retry = policy(resend_interval=interval).after_failure(Round(1, 3), NOW, VISIT)
    assert retry is not None and retry.due - NOW == wait


def test_a_retry_never_falls_at_night() -> None:
    evening = parse_instant("2026-03-27T17:55:00Z")  # 18:55 in Rome
    retry = policy().after_failure(Round(1, 1), evening, VISIT)
    assert retry is not None
    assert retry.due == datetime(2026, 3, 28, 9, 0, tzinfo=ROME)


def test_a_provider_asking_to_wait_longer_is_obeyed() -> None:
    retry = policy().after_failure(Round(1, 1), NOW, VISIT, retry_after=3600)
    assert retry is not None and retry.due - NOW == timedelta(hours=1)


def test_nothing_after_the_last_useful_moment() -> None:
    soon = NOW + timedelta(hours=2)
    assert policy().after_failure(Round(1, 1), NOW, soon) is not None
    assert policy(min_lead_hours=2).after_failure(Round(1, 1), NOW, soon) is None
    assert policy().after_failure(Round(1, 3), NOW, soon) is None  # a 3 h resend is too late


def test_permanent_failures_are_not_retried() -> None:
    assert policy().after_failure(Round(1, 1), NOW, VISIT, permanent=True) is None


def test_no_redials_configured() -> None:
    retry = policy(redials=0, resends=0).after_failure(Round(1, 1), NOW, VISIT)
    assert retry is None

"""Pacing per channel and provider holds, kept in the store across restarts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bridge.clock import ManualClock, parse_instant
from bridge.delivery.pacing import Pacer
from bridge.model import Channel
from bridge.settings import Settings
from bridge.store import Store

NOW = parse_instant("2026-03-27T09:00:00Z")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'store.sqlite'}")
    yield opened
    opened.close()


def settings() -> Settings:
    return Settings(
        reminders={"delay_seconds": 5},  # type: ignore[arg-type]
        delivery={"pacing": {"voice": 30}},  # type: ignore[arg-type]
    )


def pacer(store: Store, clock: ManualClock) -> Pacer:
    made = Pacer(store, clock, settings())
    with store.begin() as connection:
        made.load(connection)
    return made


def test_each_channel_has_its_delay(store: Store) -> None:
    paced = pacer(store, ManualClock(NOW))
    assert paced.delay(Channel.VOICE) == timedelta(seconds=30)
    assert paced.delay(Channel.SMS) == timedelta(seconds=5)  # reminders.delay_seconds
    assert paced.longest_delay == timedelta(seconds=30)


def test_a_send_spaces_the_next_and_survives_a_restart(store: Store) -> None:
    clock = ManualClock(NOW)
    paced = pacer(store, clock)
    assert paced.next_free(Channel.VOICE) <= NOW
    with store.begin() as connection:
        paced.note_send(connection, Channel.VOICE, NOW)
    assert paced.next_free(Channel.VOICE) == NOW + timedelta(seconds=30)
    assert paced.next_free(Channel.SMS) <= NOW  # another channel is not held up
    restarted = pacer(store, clock)
    assert restarted.next_free(Channel.VOICE) == NOW + timedelta(seconds=30)


def test_a_send_by_another_worker_is_seen_before_the_next(store: Store) -> None:
    clock = ManualClock(NOW)
    mine, theirs = pacer(store, clock), pacer(store, clock)
    later = NOW + timedelta(seconds=10)
    with store.begin() as connection:
        theirs.note_send(connection, Channel.SMS, later)
    assert mine.next_free(Channel.SMS) <= NOW
    mine.refresh(Channel.SMS)
    assert mine.next_free(Channel.SMS) == later + timedelta(seconds=5)


def test_a_provider_hold_is_kept(store: Store) -> None:
    clock = ManualClock(NOW)
    paced = pacer(store, clock)
    paced.hold(Channel.SMS, NOW + timedelta(minutes=2))
    paced.hold(Channel.SMS, NOW + timedelta(minutes=1))  # a shorter hold does not shorten it
    assert paced.held_until(Channel.SMS) == NOW + timedelta(minutes=2)
    assert pacer(store, clock).next_free(Channel.SMS) == NOW + timedelta(minutes=2)
    clock.advance(timedelta(minutes=3))
    assert paced.held_until(Channel.SMS) is None


def test_unpaced_channels_write_nothing(store: Store) -> None:
    clock = ManualClock(NOW)
    free = Pacer(store, clock, Settings())
    with store.begin() as connection:
        free.note_send(connection, Channel.SMS, NOW)
    assert pacer(store, clock).next_free(Channel.SMS) <= NOW

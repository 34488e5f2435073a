"""The receipt journal on a real folder: what a restart gets back (and what it must not: torn
writes, records of a recycled segment's previous life, records the store already holds),
segments recycled once stored, one listener per folder, and journals of another store."""

from __future__ import annotations

import errno
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridge.errors import ConfigError
from bridge.hl7.journal import _HEAD, SUFFIX, Entry, Journal, records

WHEN = datetime(2026, 3, 27, 8, 0, 0, 123456, tzinfo=UTC)
STORE = "sqlite:///var/bridge.sqlite"


def entry(n: int, size: int = 100) -> Entry:
    return Entry(WHEN, f"mllp 127.0.0.1:{n}", f"MSH|{n}|".encode() + b"x" * size)


def test_a_restart_gets_back_what_the_store_lacks_in_order(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    assert journal.open(0, STORE) == []
    assert journal.append([entry(1), entry(2)]) == [1, 2]
    assert journal.append([entry(3, size=0), Entry(WHEN, "x", b"head", frame_size=9_000_000)])
    journal.close()  # as a crash leaves it: nothing removed; the store held up to 2
    again = Journal(tmp_path)
    pending = again.open(2, STORE)
    assert [r.seq for r in pending] == [3, 4]
    assert pending[0].entry == entry(3, size=0)
    assert pending[1].entry.frame_size == 9_000_000 and pending[1].entry.received_at == WHEN
    assert again.append([entry(5)]) == [5]  # numbering goes on, in a new segment
    assert len(list(tmp_path.glob("*" + SUFFIX))) == 2


def test_a_torn_last_record_is_not_read(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.open(0, STORE)
    journal.append([entry(1), entry(2)])
    segment = next(tmp_path.glob("*" + SUFFIX))
    data = bytearray(segment.read_bytes())
    first = _HEAD.size + len(entry(1).origin) + len(entry(1).raw)
    data[first + _HEAD.size + 5] ^= 0xFF  # a byte of the second record's origin
    segment.write_bytes(bytes(data))
    assert [r.seq for r in records(tmp_path)] == [1]


def test_stored_segments_are_recycled_and_their_old_records_never_come_back(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path, segment_bytes=4096)
    journal.open(0, STORE)
    for n in range(1, 61):  # about 15 records per segment
        journal.append([entry(n, size=200)])
    segments = sorted(tmp_path.glob("*" + SUFFIX))
    assert len(segments) >= 4
    assert journal.releasable(60)
    journal.release(60)
    for n in range(61, 91):  # written into recycled files, over their old records
        journal.append([entry(n, size=200)])
    assert len(list(tmp_path.glob("*" + SUFFIX))) <= 6  # no more files than needed
    found = [r.seq for r in records(tmp_path)]
    # What was released is gone for good; the rest is one unbroken run (the segment that was
    # being written when 60 was stored is kept until a later one is released).
    assert found == list(range(found[0], 91)) and found[0] > 30
    journal.close()
    assert [r.seq for r in Journal(tmp_path, segment_bytes=4096).open(75, STORE)] == list(
        range(76, 91)
    )


def test_a_clean_close_with_everything_stored_leaves_the_folder_empty(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.open(0, STORE)
    journal.append([entry(1)])
    journal.close(stored_up_to=0)  # not stored: kept
    assert [r.seq for r in records(tmp_path)] == [1]
    journal = Journal(tmp_path)
    assert [r.seq for r in journal.open(0, STORE)] == [1]
    journal.close(stored_up_to=1)
    assert records(tmp_path) == []


def test_one_listener_per_folder(tmp_path: Path) -> None:
    first = Journal(tmp_path)
    first.open(0, STORE)
    with pytest.raises(ConfigError, match="another listener is using it"):
        Journal(tmp_path).open(0, STORE)
    first.close()
    Journal(tmp_path).open(0, STORE)


def test_messages_received_for_another_store_are_not_slipped_into_this_one(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path)
    journal.open(0, STORE)
    journal.append([entry(1)])
    journal.close()
    with pytest.raises(ConfigError, match="1 messages received for another store"):
        Journal(tmp_path).open(0, "postgresql+psycopg://bridge@db/bridge")
    assert [r.seq for r in Journal(tmp_path).open(0, STORE)] == [1]


def test_a_write_the_disk_refused_leaves_no_gap_in_the_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = Journal(tmp_path)
    journal.open(0, STORE)
    assert journal.append([entry(1)]) == [1]
    real_sync = os.fdatasync

    def disk_full(fd: int) -> None:
        monkeypatch.setattr(os, "fdatasync", real_sync)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fdatasync", disk_full)
    with pytest.raises(OSError):
        journal.append([entry(2), entry(3)])  # answered AR; the sender resends
    assert journal.append([entry(2), entry(3)]) == [2, 3]
    assert [r.entry for r in records(tmp_path)] == [entry(1), entry(2), entry(3)]

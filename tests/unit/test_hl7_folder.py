"""The folder feed: files split into messages, stored like MLLP messages, moved only after the
commit; files still being written wait; a file read twice changes nothing."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridge.clock import ManualClock
from bridge.errors import ConfigError
from bridge.hl7.feed import Feed
from bridge.hl7.folder import FolderReader, split_messages
from bridge.hl7.frame import wrap
from bridge.hl7.inbox import recent
from bridge.hl7.mirror import held_appointment
from bridge.hl7.settings import Hl7Settings
from bridge.store import Store
from tests.hl7_samples import fixture, siu, store_fixture  # noqa: F401 (the store fixture)

NOW = datetime(2026, 3, 27, 8, tzinfo=UTC)
START = datetime(2026, 3, 30, 9, 30)
ONE = siu("C1", "K1", "P1", START)
TWO = siu("C2", "K2", "P2", START)


def test_split_text_batches_frames_and_envelopes() -> None:
    assert split_messages(ONE) == [ONE]
    assert split_messages(ONE + TWO) == [ONE, TWO]
    lf = ONE.replace(b"\r", b"\n") + TWO.replace(b"\r", b"\n")
    assert [m.replace(b"\n", b"\r") for m in split_messages(lf)] == [ONE, TWO]
    batch = b"FHS|^~\\&|X\rBHS|^~\\&|X\r" + ONE + TWO + b"BTS|2\rFTS|1\r"
    assert split_messages(batch) == [ONE, TWO]
    assert split_messages(wrap(ONE) + b"\r\n" + wrap(TWO)) == [ONE, TWO]
    assert split_messages(b"junk line\r" + ONE) == [b"junk line\r", ONE]
    assert split_messages(b"  \r\n") == []


def reader(tmp_path: Path, settle: float = 0) -> tuple[FolderReader, Path]:
    folder = tmp_path / "drop"
    folder.mkdir()
    settings = Hl7Settings(folder=Path("drop"), folder_settle_seconds=settle)
    feed = Feed.load("hl7-siu", tmp_path, "Europe/Rome", "US", settings)
    return FolderReader(feed, tmp_path, ManualClock(NOW)), folder


def test_files_are_stored_applied_and_moved(store: Store, tmp_path: Path, shared_dir: Path) -> None:
    files, folder = reader(tmp_path)
    (folder / "a.hl7").write_bytes(ONE + TWO)
    (folder / "b.hl7").write_bytes(fixture(shared_dir, "M1_gmed_siu_s12_v231_missing_SCH.hl7"))
    (folder / ".hidden").write_bytes(ONE)
    (folder / "c.hl7.part").write_bytes(ONE)
    report = files.read(store)
    assert (report.files, report.messages, report.refused, report.applied) == (2, 3, 1, 2)
    assert sorted(p.name for p in (folder / "processed").iterdir()) == ["a.hl7"]
    assert sorted(p.name for p in (folder / "rejected").iterdir()) == ["b.hl7"]
    assert sorted(p.name for p in folder.iterdir() if p.is_file()) == [".hidden", "c.hl7.part"]
    with store.begin() as connection:
        assert held_appointment(connection, "K2")[0] is not None
        origins = {m.control_id: (m.origin, m.status) for m in recent(connection)}
    assert origins["C1"] == ("file a.hl7", "applied")
    assert origins["FA0DC9EA-5446-42E6-G6D5-A8414B663676"][1] == "quarantined"


def test_a_file_read_again_after_a_crash_changes_nothing(store: Store, tmp_path: Path) -> None:
    files, folder = reader(tmp_path)
    (folder / "a.hl7").write_bytes(ONE)
    files.read(store)
    # As if the process died after the commit and before the move: the file is back.
    (folder / "processed" / "a.hl7").replace(folder / "a.hl7")
    report = files.read(store)
    assert report.applied == 0
    assert sorted(p.name for p in (folder / "processed").iterdir()) == ["a.hl7"]
    with store.begin() as connection:
        rows = recent(connection)
    assert len(rows) == 1 and rows[0].times_seen == 2


def test_a_file_still_being_written_waits(store: Store, tmp_path: Path) -> None:
    files, folder = reader(tmp_path, settle=60)
    path = folder / "new.hl7"
    path.write_bytes(ONE)
    assert files.read(store).files == 0
    old = time.time() - 120
    os.utime(path, (old, old))
    assert files.read(store).files == 1


def test_no_folder_is_a_clear_error(tmp_path: Path) -> None:
    feed = Feed.load("hl7-siu", tmp_path, None, "US", Hl7Settings())
    files = FolderReader(feed, tmp_path, ManualClock(NOW))
    with pytest.raises(ConfigError, match=r"hl7\.folder: missing"):
        files.require_folder()
    assert files.check()[0].level == "error"

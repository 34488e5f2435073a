"""The receipt journal: where a received message is durably kept before its ACK.

Why a journal in front of the store: an MLLP sender waits for each ACK before it sends the next
message, so one connection gets at most one message per durable write. A commit of the store is
the slowest durable write there is (SQLite syncs its WAL and every index page, PostgreSQL adds a
round trip to another process), about a millisecond on the project's machine; an append to a
preallocated file plus ``fdatasync`` is a third of that. So the listener appends each message
here, syncs, ACKs, and a thread moves journaled messages into the store in batches
(``bridge.hl7.drainer``), recording there, in the same transaction, the last journal
sequence number it stored. Interface engines keep their own logs the same way.

Layout: a folder of segment files named by the sequence number of their first record
(``0000000000000042.seg``), each written full of zeros when made. A sync then only has the
data to write: into blocks merely reserved (``fallocate``) the file system must also record, in
its own journal, that they now hold data, and that commit waits behind every other file's. The
first segment is made when the journal opens, the next ones in advance by the storing thread
(``keep_spare``), so the event loop never waits for one. A record is::

    magic u32 | crc32 u32 | seq u64 | received_at µs i64 | frame size u32 | origin len u16 |
    raw len u32 | origin | raw

with the CRC over everything after it. Records are numbered without gaps, so reading a segment
stops at the first record that is torn, zero, or left over from the segment's previous life (a
drained segment is recycled by renaming it, its old bytes stay): none of those carries the next
number. A restarted listener reads what the store has not got yet and starts a new segment.

One process at a time: the folder is locked (``flock``) while open.
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import threading
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bridge.errors import ConfigError

log = logging.getLogger(__name__)

MAGIC = 0x4A424252  # "RBBJ" little-endian: Reminder Bridge journal
_HEAD = struct.Struct("<IIQqIHI")
_AFTER_CRC = 8  # magic and crc come first; the CRC covers the rest
SEGMENT_BYTES = 16 << 20
SPARE_SEGMENTS = 2
SUFFIX = ".seg"
SPARE_SUFFIX = ".spare"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Entry:
    """One received frame as the journal keeps it. ``frame_size`` is set for a frame over the
    size cap, of which only the first bytes (``raw``) were kept."""

    received_at: datetime
    origin: str
    raw: bytes
    frame_size: int = 0


@dataclass(frozen=True, slots=True)
class Record:
    seq: int
    entry: Entry


@dataclass
class _Segment:
    path: Path
    first: int
    last: int  # the last sequence number written into it (first - 1 while empty)


class Journal:
    """Append (the listener's thread), release (the draining thread), recover (at start)."""

    def __init__(self, folder: Path, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.folder = folder
        self.segment_bytes = segment_bytes
        self.syncs = 0
        self._lock = threading.Lock()
        self._segments: list[_Segment] = []  # oldest first; the last one is written
        self._spares: list[Path] = []
        self._fd: int | None = None
        self._offset = 0
        self._next = 1
        self._lock_fd: int | None = None

    def open(self, stored_up_to: int, store_name: str) -> list[Record]:
        """Lock the folder and read it; returns the records the store has not got (sequence
        numbers above ``stored_up_to``), in order. New records start a new segment.

        ``store_name`` says which store the journal feeds: records written for another store
        (the settings changed after a crash) are not slipped into this one."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(self.folder / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ConfigError(f"hl7.journal = {str(self.folder)!r}: cannot use it ({exc})") from exc
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(self._lock_fd)
            self._lock_fd = None
            raise ConfigError(
                f"hl7.journal = {str(self.folder)!r}: another listener is using it"
            ) from exc
        pending: list[Record] = []
        last = stored_up_to
        self._spares = sorted(self.folder.glob("*" + SPARE_SUFFIX))
        for path in sorted(self.folder.glob("*" + SUFFIX)):
            first = _first_of(path)
            if first is None:
                continue
            records = list(_read(path, first))
            segment = _Segment(path, first, first + len(records) - 1)
            if not records or segment.last <= stored_up_to:
                self._spares.append(path)
                continue
            self._segments.append(segment)
            pending += [r for r in records if r.seq > stored_up_to]
            last = max(last, segment.last)
        self._next = last + 1
        owner = self.folder / "store"
        previous = owner.read_text(encoding="utf-8") if owner.exists() else store_name
        if previous != store_name and pending:
            self.close()
            raise ConfigError(
                f"hl7.journal = {str(self.folder)!r} holds {len(pending)} messages received for "
                f"another store ({previous}); start once with that store to store them, or "
                "remove the folder to drop them"
            )
        owner.write_text(store_name, encoding="utf-8")
        if pending:
            log.warning(
                "HL7 journal: %d received messages were not in the store yet; storing them now",
                len(pending),
            )
        self._trim_spares()
        self._start_segment(self._next, 0)
        return pending

    def keep_spare(self) -> None:
        """Make a segment in advance when none is ready (the storing thread calls this)."""
        with self._lock:
            if self._spares or self._lock_fd is None:
                return
        path = self.folder / f"{time.time_ns()}{SPARE_SUFFIX}"
        try:
            _zero_filled(path, self.segment_bytes)
            _sync_folder(self.folder)
        except OSError as exc:  # the next segment will be made when needed, or fail then
            log.warning("HL7 journal: could not prepare a segment: %s", exc)
            path.unlink(missing_ok=True)
            return
        with self._lock:
            self._spares.append(path)

    def append(self, entries: Sequence[Entry]) -> list[int]:
        """Write ``entries`` and sync; their sequence numbers. ``OSError`` if the disk
        refuses (nothing written then counts: those messages get AR)."""
        numbers: list[int] = []
        chunk = bytearray()
        try:
            for entry in entries:
                record = _encode(self._next, entry)
                if self._fd is None or self._offset + len(chunk) + len(record) > self.segment_bytes:
                    self._write(chunk)
                    chunk = bytearray()
                    self._start_segment(self._next, len(record))
                chunk += record
                numbers.append(self._next)
                self._next += 1
            self._write(chunk)
        except OSError:
            # Numbers run without gaps (a reader stops at a gap): the next record takes the
            # first number that did not reach the disk.
            self._next = (
                self._segments[-1].last + 1 if self._segments else self._next - len(numbers)
            )
            raise
        return numbers

    def releasable(self, stored_up_to: int) -> bool:
        """Whether storing up to ``stored_up_to`` durably would let a segment go."""
        with self._lock:
            return len(self._segments) > 1 and self._segments[0].last <= stored_up_to

    def release(self, stored_up_to: int) -> None:
        """The store holds everything up to ``stored_up_to``: segments wholly below it (not the
        one being written) become spares."""
        with self._lock:
            while len(self._segments) > 1 and self._segments[0].last <= stored_up_to:
                self._spares.append(self._segments.pop(0).path)
            self._trim_spares()

    def close(self, stored_up_to: int | None = None) -> None:
        """Close; when the store holds everything, the segments are removed too, so the folder
        is empty after a clean stop."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if stored_up_to is not None and stored_up_to >= self._next - 1:
            with self._lock:
                for path in [s.path for s in self._segments] + self._spares:
                    path.unlink(missing_ok=True)
                self._segments, self._spares = [], []
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _write(self, chunk: bytearray) -> None:
        if not chunk or self._fd is None:
            return
        os.pwrite(self._fd, chunk, self._offset)
        os.fdatasync(self._fd)
        self._offset += len(chunk)
        self.syncs += 1
        self._segments[-1].last = self._next - 1

    def _start_segment(self, first: int, record_bytes: int) -> None:
        """Close the segment being written and open a new one starting at ``first``: a spare
        renamed (its blocks already written) or a new file full of zeros."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        size = max(self.segment_bytes, record_bytes)
        path = self.folder / f"{first:016d}{SUFFIX}"
        with self._lock:
            spare = self._spares.pop() if self._spares and size == self.segment_bytes else None
        if spare is not None:
            os.replace(spare, path)
        else:
            _zero_filled(path, size)
        fd = os.open(path, os.O_RDWR, 0o600)
        try:
            # The first record goes where a recovery starts reading: a leftover record of the
            # spare's previous life there must not look valid (its number could not match, but
            # a zeroed head makes an empty segment plainly empty).
            os.pwrite(fd, bytes(_HEAD.size), 0)
            os.fsync(fd)
            _sync_folder(self.folder)
        except OSError:
            os.close(fd)
            raise
        self._fd, self._offset = fd, 0
        with self._lock:
            self._segments.append(_Segment(path, first, first - 1))

    def _trim_spares(self) -> None:
        while len(self._spares) > SPARE_SEGMENTS:
            self._spares.pop(0).unlink(missing_ok=True)


def records(folder: Path) -> list[Record]:
    """Every record the folder holds, drained or not, oldest first (for inspection)."""
    found: list[Record] = []
    for path in sorted(folder.glob("*" + SUFFIX)):
        first = _first_of(path)
        if first is not None:
            found += _read(path, first)
    return sorted(found, key=lambda record: record.seq)


def _encode(seq: int, entry: Entry) -> bytes:
    origin = entry.origin.encode("utf-8")[:255]
    micros = (entry.received_at - _EPOCH) // timedelta(microseconds=1)
    body = _HEAD.pack(0, 0, seq, micros, entry.frame_size, len(origin), len(entry.raw))
    rest = body[_AFTER_CRC:] + origin + entry.raw
    return struct.pack("<II", MAGIC, zlib.crc32(rest)) + rest


def _read(path: Path, first: int) -> list[Record]:
    """The valid records of one segment, in order (see the module docstring for "valid")."""
    data = path.read_bytes()
    records: list[Record] = []
    offset, expected = 0, first
    while offset + _HEAD.size <= len(data):
        magic, crc, seq, micros, frame_size, origin_len, raw_len = _HEAD.unpack_from(data, offset)
        end = offset + _HEAD.size + origin_len + raw_len
        if magic != MAGIC or seq != expected or end > len(data):
            break
        if zlib.crc32(data[offset + _AFTER_CRC : end]) != crc:
            break
        start = offset + _HEAD.size
        origin = data[start : start + origin_len].decode("utf-8", "replace")
        raw = data[start + origin_len : end]
        received_at = _EPOCH + timedelta(microseconds=micros)
        records.append(Record(seq, Entry(received_at, origin, raw, frame_size)))
        offset, expected = end, expected + 1
    return records


def _first_of(path: Path) -> int | None:
    stem = path.name.removesuffix(SUFFIX)
    return int(stem) if stem.isdigit() else None


def _zero_filled(path: Path, size: int) -> None:
    zeros = bytes(1 << 20)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for start in range(0, size, len(zeros)):
            os.pwrite(fd, zeros[: size - start], start)
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_folder(folder: Path) -> None:
    """A new or renamed file survives a power loss only once its folder is synced."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

"""The folder feed: hosts that drop message files instead of speaking MLLP.

A file may hold one message or many (a batch, with or without FHS/BHS envelope segments, or MLLP
frames). Each message is judged and stored exactly as the listener does (same intake, same
store, same de-duplication), then the file moves to ``processed/`` (or ``rejected/`` when a message
in it was quarantined, so a person finds the file as well as the reason). The file moves only
after the commit: a crash in between reads it again, and the store recognises every message.
A file younger than ``folder_settle_seconds`` may still be being written and waits; names
starting with a dot or ending in ``.tmp`` / ``.part`` are never read.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from bridge.clock import Clock
from bridge.errors import ConfigError
from bridge.hl7.applier import apply_all
from bridge.hl7.feed import Feed
from bridge.hl7.frame import START, FrameReader
from bridge.hl7.inbox import store_batch
from bridge.plugin import CheckLine
from bridge.store import Store

log = logging.getLogger(__name__)

PROCESSED, REJECTED = "processed", "rejected"
SKIPPED_SUFFIXES = (".tmp", ".part", ".partial")
_MESSAGE_START = re.compile(rb"(?:^|(?<=[\r\n]))MSH([^A-Za-z0-9\r\n])[^A-Za-z0-9\r\n]{3}")
_ENVELOPE = re.compile(rb"(?:^|(?<=[\r\n]))(?:FHS|BHS|BTS|FTS)[^\r\n]*[\r\n]*")
_LOCKS: dict[Path, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


@dataclass
class FolderReport:
    files: int = 0
    messages: int = 0
    refused: int = 0
    applied: int = 0


def split_messages(raw: bytes) -> list[bytes]:
    """The messages in one file's bytes (MLLP frames, or text split at each real MSH: an
    ``MSH`` line without encoding characters is not the start of a message, fixture M4)."""
    if START in raw:
        frames = FrameReader(max(len(raw), 1)).feed(raw)
        return [f.payload for f in frames if f.payload.strip()]
    body = _ENVELOPE.sub(b"", raw)
    starts = [m.start() for m in _MESSAGE_START.finditer(body)]
    if not starts:
        return [body] if body.strip() else []
    if body[: starts[0]].strip():  # text before the first MSH is a message of its own (bad)
        starts.insert(0, 0)
    return [body[a:b] for a, b in pairwise([*starts, len(body)]) if body[a:b].strip()]


class FolderReader:
    """Reads ``hl7.folder`` into the store."""

    def __init__(self, feed: Feed, base_dir: Path, clock: Clock) -> None:
        self.feed = feed
        self.clock = clock
        self.intake = feed.intake()
        folder = feed.settings.folder
        self.folder = None if folder is None else (base_dir / folder).resolve()

    def require_folder(self) -> Path:
        if self.folder is None:
            raise ConfigError(
                "hl7.folder: missing: the folder the host drops message files into "
                "(needed by host.source hl7-files)"
            )
        return self.folder

    def read(self, store: Store) -> FolderReport:
        """Store every settled file's messages, move the files, apply to the mirror."""
        folder = self.require_folder()
        report = FolderReport()
        with _lock_for(folder):
            for path in self._ready_files(folder):
                self._read_file(store, path, report)
            applied = apply_all(store, self.clock, self.intake)
        report.applied = applied.applied
        if report.files:
            log.info(
                "HL7 folder: %d files, %d messages (%d refused)",
                report.files,
                report.messages,
                report.refused,
            )
        return report

    def _ready_files(self, folder: Path) -> list[Path]:
        if not folder.is_dir():
            raise ConfigError(f"hl7.folder = {str(folder)!r}: not a folder")
        settle = self.feed.settings.folder_settle_seconds
        now = time.time()
        ready = []
        for path in folder.iterdir():
            if not path.is_file() or path.name.startswith(".") or path.suffix in SKIPPED_SUFFIXES:
                continue
            modified = path.stat().st_mtime
            if now - modified < settle:
                continue
            ready.append((modified, path.name, path))
        return [path for _, _, path in sorted(ready)]

    def _read_file(self, store: Store, path: Path, report: FolderReport) -> None:
        now = self.clock.now()
        raw = path.read_bytes()
        items = [self.intake.receive(m, f"file {path.name}", now) for m in split_messages(raw)]
        refused = sum(1 for item in items if not item.accepted)
        if items:
            with store.begin("store HL7 file") as connection:
                stored = store_batch(connection, items, now)
            refused = sum(1 for s in stored if not s.accepted)
        else:
            log.warning("HL7 file %s holds no message", path.name)
        target = REJECTED if refused or not items else PROCESSED
        _move(path, path.parent / target)
        report.files += 1
        report.messages += len(items)
        report.refused += refused

    def check(self) -> list[CheckLine]:
        try:
            folder = self.require_folder()
        except ConfigError as exc:
            return [CheckLine("error", str(exc))]
        if not folder.is_dir():
            return [CheckLine("error", f"hl7.folder {folder}: not a folder")]
        waiting = sum(1 for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        return [CheckLine("ok", f"hl7.folder {folder}: {waiting} files waiting")]


def _move(path: Path, target_dir: Path) -> None:
    target_dir.mkdir(exist_ok=True)
    target = target_dir / path.name
    number = 1
    while target.exists():
        target = target_dir / f"{path.stem}.{number}{path.suffix}"
        number += 1
    path.replace(target)


def _lock_for(folder: Path) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(folder, threading.Lock())

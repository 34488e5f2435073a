"""``bridge run``'s HL7 worker (entry point ``bridge.workers``): the feed inside the service.

- ``host.source: hl7-mllp``: runs the listener (unless ``hl7.listen_in_run`` is false because
  ``bridge listen`` runs as its own process);
- ``host.source: hl7-files``: reads the folder every ``hl7.folder_poll_seconds``;
- any other source: returns at once.

Whenever messages change the mirror, a cycle runs within about a second instead of at the next
poll, so a booking made a minute before is planned (and a cancellation stops its reminder) at
once. Cycles take turns with the service's own poll (``bridge.cycle``).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from bridge.cycle import run_cycle
from bridge.errors import BridgeError
from bridge.hl7.feed import HL7_SOURCES, Feed
from bridge.hl7.folder import FolderReader
from bridge.hl7.service import Hl7Service
from bridge.hl7.source import MirrorSource
from bridge.runtime import Runtime
from bridge.service import guarded

log = logging.getLogger(__name__)

PROMPT_SPACING_SECONDS = 1.0


class PromptCycles:
    """Runs a cycle soon after ``request()``; requests during a cycle fold into the next one."""

    def __init__(self, runtime: Runtime, stopping: threading.Event) -> None:
        self.stopping = stopping
        self._wanted = threading.Event()
        self._cycle = guarded("prompt cycle", lambda: run_cycle(runtime))
        self._thread = threading.Thread(target=self._run, name="hl7-cycle", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def request(self, *_: Any) -> None:
        self._wanted.set()

    def _run(self) -> None:
        while not self.stopping.is_set():
            if not self._wanted.wait(0.5):
                continue
            self._wanted.clear()
            self._cycle()
            self.stopping.wait(PROMPT_SPACING_SECONDS)


def run_worker(runtime: Runtime, stopping: threading.Event) -> None:
    """Run the configured HL7 feed until ``stopping`` is set."""
    settings = runtime.settings
    if settings.host.source not in HL7_SOURCES:
        return
    source = runtime.source
    feed = source.feed if isinstance(source, MirrorSource) else Feed.from_settings(settings)
    prompt = PromptCycles(runtime, stopping)
    prompt.start()
    if settings.host.source == "hl7-files":
        _read_folder(runtime, feed, prompt, stopping)
        return
    if not settings.hl7.listen_in_run:
        log.info("hl7.listen_in_run is false: the MLLP listener runs in `bridge listen`")
        return
    service = Hl7Service(runtime.store, feed, runtime.clock, settings.base_dir, prompt.request)
    try:
        service.run(stopping)
    except OSError as exc:
        log.error(
            "HL7 listener cannot listen on %s:%s: %s",
            settings.hl7.listen_host,
            settings.hl7.listen_port,
            exc,
        )


def _read_folder(
    runtime: Runtime, feed: Feed, prompt: PromptCycles, stopping: threading.Event
) -> None:
    reader = FolderReader(feed, runtime.settings.base_dir, runtime.clock)
    while not stopping.is_set():
        try:
            report = reader.read(runtime.store)
        except BridgeError as exc:
            log.error("reading the HL7 folder failed, will retry: %s", exc)
        else:
            if report.applied:
                prompt.request()
        stopping.wait(feed.settings.folder_poll_seconds)

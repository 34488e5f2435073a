"""``hl7-files``: a host that drops HL7 v2 message files into a folder.

Each cycle (and, under ``bridge run``, every ``hl7.folder_poll_seconds``) the folder is read
(``bridge.hl7.folder``): every message is stored and judged exactly as the listener does, the file
moves to ``processed/`` (or ``rejected/`` when a message in it was quarantined), and the mirror
is brought up to date before it is read.
"""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from bridge.hl7.folder import FolderReader
from bridge.hl7.source import Hl7SourceConfig, MirrorSource
from bridge.plugin import CheckLine, PluginContext, Reference, RejectSink, Sighting


class Hl7Files(MirrorSource):
    """An HL7 v2 feed dropped as files into ``hl7.folder``."""

    name = "hl7-files"

    def __init__(self, config: Hl7SourceConfig, context: PluginContext) -> None:
        super().__init__(config, context)
        self.reader = FolderReader(self.feed, context.base_dir, context.clock)

    def scan(
        self,
        window: tuple[date, date],
        reference: Reference,
        timezone: ZoneInfo,
        reject: RejectSink,
    ) -> list[Sighting]:
        self.reader.read(self.store)
        return super().scan(window, reference, timezone, reject)

    def check_feed(self) -> list[CheckLine]:
        return self.reader.check()

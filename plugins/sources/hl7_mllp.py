"""``hl7-mllp``: a host that sends an HL7 v2 SIU feed over MLLP.

The listener (``bridge listen``, or ``bridge run`` itself) stores each message and keeps the
mirror; this source reads the mirror (``bridge.hl7.source``). ``bridge check`` also tells whether
a listener answers on the configured port.
"""

from __future__ import annotations

import socket

from bridge.hl7.source import MirrorSource
from bridge.plugin import CheckLine


class Hl7Mllp(MirrorSource):
    """An HL7 v2 feed received over MLLP."""

    name = "hl7-mllp"

    def check_feed(self) -> list[CheckLine]:
        settings = self.feed.settings
        host = (
            "127.0.0.1" if settings.listen_host in ("0.0.0.0", "::", "") else settings.listen_host
        )
        address = f"{settings.listen_host}:{settings.listen_port}"
        try:
            with socket.create_connection((host, settings.listen_port), timeout=2):
                pass
        except OSError:
            return [
                CheckLine(
                    "warning",
                    f"no MLLP listener answers on {address} yet "
                    "(bridge run starts it; bridge listen runs it alone)",
                )
            ]
        return [CheckLine("ok", f"MLLP listener answers on {address}")]

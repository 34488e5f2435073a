"""``outbox``: every message goes to a local folder as JSON lines (testing and the demo).

One file per channel (``sms.jsonl``, ``email.jsonl``, ``voice.jsonl``). Each line is flushed and
fsynced before ``send`` returns, so a message the bridge recorded as sent is on disk. A message
whose idempotency key is already in the file is not written twice: the outbox answers ``lookup``
like a provider that keeps idempotency keys.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from pathlib import Path
from typing import Any

from bridge.clock import iso_utc
from bridge.errors import TransientDeliveryError
from bridge.model import Channel
from bridge.plugin import ChannelPlugin, OutboundMessage, PluginConfig, PluginContext, SendResult


class OutboxConfig(PluginConfig):
    folder: Path = Path("outbox")


class Outbox(ChannelPlugin[OutboxConfig]):
    """Writes messages to ``<folder>/<channel>.jsonl`` instead of sending them."""

    name = "outbox"
    Config = OutboxConfig
    channels = frozenset(Channel)

    def __init__(self, config: OutboxConfig, context: PluginContext) -> None:
        super().__init__(config, context)
        folder = config.folder
        self.folder = folder if folder.is_absolute() else (context.base_dir / folder).resolve()
        self._lock = threading.Lock()
        self._seen: dict[Channel, dict[str, str]] = {}

    def path(self, channel: Channel) -> Path:
        return self.folder / f"{channel.value}.jsonl"

    def send(self, message: OutboundMessage) -> SendResult:
        with self._lock:
            seen = self._index(message.channel)
            if message.idempotency_key in seen:
                return SendResult(provider_ref=seen[message.idempotency_key])
            ref = f"outbox-{uuid.uuid4().hex[:16]}"
            record: dict[str, Any] = {
                "id": ref,
                "at": iso_utc(self.context.clock.now()),
                "idempotency_key": message.idempotency_key,
                "channel": message.channel.value,
                "to": message.to,
                "sender": message.sender,
                "subject": message.subject,
                "text": message.text,
                "html": message.html,
                "voicemail": message.voicemail,
                "testing": message.testing,
                "job_id": message.job_id,
                "tags": message.tags,
            }
            line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                with self.path(message.channel).open("a+b") as handle:
                    if handle.seek(0, os.SEEK_END) > 0:
                        handle.seek(-1, os.SEEK_END)
                        if handle.read(1) != b"\n":
                            line = b"\n" + line  # end a line torn by a crash mid-write
                    handle.write(line)
                    handle.flush()
                    os.fsync(handle.fileno())
            except OSError as exc:
                raise TransientDeliveryError(f"outbox: cannot write ({exc.strerror})") from exc
            seen[message.idempotency_key] = ref
            return SendResult(provider_ref=ref)

    def lookup(self, idempotency_key: str) -> SendResult | None:
        with self._lock:
            for channel in Channel:
                ref = self._index(channel).get(idempotency_key)
                if ref is not None:
                    return SendResult(provider_ref=ref)
        return None

    def messages(self, channel: Channel) -> list[dict[str, Any]]:
        """Every message written for ``channel``, oldest first (for tests and the demo)."""
        path = self.path(channel)
        if not path.exists():
            return []
        records = []
        # Split on the newline byte only: json.dumps(ensure_ascii=False) writes U+2028, U+2029
        # and U+0085 raw inside strings, and str.splitlines() would cut a message there. Each
        # line is decoded on its own so that a character torn in half spoils only its line.
        for line in path.read_bytes().split(b"\n"):
            if not line:
                continue
            try:
                records.append(json.loads(line.decode("utf-8")))
            except ValueError:  # JSONDecodeError or UnicodeDecodeError
                continue  # a line torn by a crash mid-write was never acknowledged as sent
        return records

    def _index(self, channel: Channel) -> dict[str, str]:
        """Idempotency key -> message id, read from the file once, then kept current."""
        if channel not in self._seen:
            self._seen[channel] = {
                record["idempotency_key"]: record["id"] for record in self.messages(channel)
            }
        return self._seen[channel]

"""MLLP framing: ``0x0B message 0x1C 0x0D``.

A read may hold half a frame or several; bytes outside a frame (junk between frames, a lone CR
after the end block) are dropped and counted; a frame larger than the cap is cut to its first
bytes (enough for the MSH, to answer it) and the rest is thrown away up to its end block, so one
runaway sender cannot eat the machine's memory. A start block inside an unfinished frame means
the sender gave up on it and started again: the unfinished part is dropped and counted as junk.
The end block's CR is optional (some senders omit it).
"""

from __future__ import annotations

from dataclasses import dataclass

START = b"\x0b"
END = b"\x1c"
TRAILER = b"\x1c\x0d"


@dataclass(frozen=True, slots=True)
class Frame:
    """One framed message. ``size`` is the full payload size; ``payload`` is cut to the cap
    when ``oversized``."""

    payload: bytes
    size: int

    @property
    def oversized(self) -> bool:
        return self.size > len(self.payload)


def wrap(message: bytes) -> bytes:
    """Put one message in an MLLP frame."""
    return START + message + TRAILER


class FrameReader:
    """Turns a byte stream into frames; feed it whatever each read returned."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.junk = 0  # bytes dropped outside frames, for the log
        self._buffer = bytearray()
        self._in_frame = False
        self._dropped = 0  # bytes of the current oversized frame thrown away

    @property
    def inside_frame(self) -> bool:
        """True while a frame has started and not ended (a sender mid-message)."""
        return self._in_frame

    def feed(self, data: bytes) -> list[Frame]:
        frames: list[Frame] = []
        pos = 0
        while pos < len(data):
            if not self._in_frame:
                start = data.find(START, pos)
                if start < 0:
                    self.junk += _junk(data[pos:])
                    return frames
                self.junk += _junk(data[pos:start])
                self._in_frame = True
                self._buffer.clear()
                self._dropped = 0
                pos = start + 1
                continue
            end = data.find(END, pos)
            restart = data.find(START, pos, end if end >= 0 else len(data))
            if restart >= 0:  # a new frame began before this one ended
                self.junk += len(self._buffer) + self._dropped + (restart - pos)
                self._in_frame = False
                pos = restart
                continue
            stop = end if end >= 0 else len(data)
            self._take(data[pos:stop])
            if end < 0:
                return frames
            frames.append(Frame(bytes(self._buffer), len(self._buffer) + self._dropped))
            self._buffer.clear()
            self._in_frame = False
            pos = end + 1
            if data[pos : pos + 1] == b"\x0d":
                pos += 1
        return frames

    def _take(self, chunk: bytes) -> None:
        room = self.max_bytes - len(self._buffer)
        if len(chunk) <= room:
            self._buffer += chunk
            return
        if room > 0:
            self._buffer += chunk[:room]
        self._dropped += len(chunk) - max(room, 0)


def _junk(chunk: bytes) -> int:
    """Junk worth counting: a stray CR or LF between frames is normal, not junk."""
    return len(chunk.strip(b"\r\n"))

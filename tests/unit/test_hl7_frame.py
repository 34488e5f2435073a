"""MLLP framing: half frames, several frames per read, junk, the size cap, a restart."""

from __future__ import annotations

import pytest

from bridge.hl7.frame import FrameReader, wrap

ONE = b"MSH|^~\\&|A|B|C|D|20260327||SIU^S12|1|P|2.4\rSCH|1\r"
TWO = b"MSH|^~\\&|A|B|C|D|20260327||SIU^S12|2|P|2.4\rSCH|2\r"


def test_one_frame_in_one_read() -> None:
    frames = FrameReader(1024).feed(wrap(ONE))
    assert [f.payload for f in frames] == [ONE]
    assert not frames[0].oversized


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 50])
def test_a_frame_split_over_many_reads(chunk: int) -> None:
    reader = FrameReader(1024)
    data = wrap(ONE) + wrap(TWO)
    found = []
    for start in range(0, len(data), chunk):
        found += reader.feed(data[start : start + chunk])
    assert [f.payload for f in found] == [ONE, TWO]
    assert reader.junk == 0
    assert not reader.inside_frame


def test_several_frames_in_one_read_and_junk_between_them() -> None:
    reader = FrameReader(1024)
    frames = reader.feed(b"garbage" + wrap(ONE) + b"\r\n  more junk" + wrap(TWO) + b"tail")
    assert [f.payload for f in frames] == [ONE, TWO]
    assert reader.junk == len(b"garbage") + len(b"  more junk") + len(b"tail")


def test_the_end_block_cr_is_optional() -> None:
    reader = FrameReader(1024)
    frames = reader.feed(b"\x0b" + ONE + b"\x1c" + b"\x0b" + TWO + b"\x1c\r")
    assert [f.payload for f in frames] == [ONE, TWO]
    assert reader.junk == 0


def test_a_lone_cr_arriving_after_the_end_block_is_not_junk() -> None:
    reader = FrameReader(1024)
    assert [f.payload for f in reader.feed(b"\x0b" + ONE + b"\x1c")] == [ONE]
    assert reader.feed(b"\r") == []
    assert reader.junk == 0


def test_an_oversized_frame_keeps_its_head_and_the_reader_goes_on() -> None:
    reader = FrameReader(16)
    big = ONE * 10
    frames = reader.feed(wrap(big)[:40])
    assert frames == []
    frames = reader.feed(wrap(big)[40:] + wrap(b"MSH|small"))
    assert len(frames) == 2
    assert frames[0].oversized
    assert frames[0].payload == big[:16]
    assert frames[0].size == len(big)
    assert frames[1].payload == b"MSH|small"
    assert not frames[1].oversized


def test_a_start_block_inside_an_unfinished_frame_starts_again() -> None:
    reader = FrameReader(1024)
    frames = reader.feed(b"\x0bMSH|half a message" + wrap(TWO))
    assert [f.payload for f in frames] == [TWO]
    assert reader.junk == len(b"MSH|half a message")


def test_a_connection_closed_mid_frame_is_visible() -> None:
    reader = FrameReader(1024)
    reader.feed(wrap(ONE)[:10])
    assert reader.inside_frame

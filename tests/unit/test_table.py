"""Plain-text tables for the terminal."""

from __future__ import annotations

import pytest

from bridge.table import format_table

TABLES = [
    # id, headers, rows, expected text
    (
        "columns as wide as the widest cell",
        ["appointment", "channel", "due"],
        [[1234, "sms", "2026-03-28T08:00:00Z"], [56, "email", "2026-03-28T09:00:00Z"]],
        "appointment  channel  due\n"
        "-----------  -------  --------------------\n"
        "1234         sms      2026-03-28T08:00:00Z\n"
        "56           email    2026-03-28T09:00:00Z",
    ),
    (
        "header wider than cells",
        ["occurrence", "rule"],
        [["2026-03-28", "day-before"], ["x", "y"]],
        "occurrence  rule\n----------  ----------\n2026-03-28  day-before\nx           y",
    ),
    (
        "None is blank and the line keeps no trailing spaces",
        ["key", "skip"],
        [[7, None], [8, "opted out"]],
        "key  skip\n---  ---------\n7\n8    opted out",
    ),
    (
        "newline inside a cell stays on one line",
        ["key", "note"],
        [["a1", "first\nsecond"]],
        "key  note\n---  ------------\na1   first second",
    ),
    ("no rows", ["key", "channel"], [], "key  channel\n---  -------"),
]


@pytest.mark.parametrize(
    ("headers", "rows", "expected"),
    [row[1:] for row in TABLES],
    ids=[row[0] for row in TABLES],
)
def test_format_table(headers: list[str], rows: list[list[object]], expected: str) -> None:
    assert format_table(headers, rows) == expected


def test_a_row_longer_than_the_headers_is_an_error() -> None:
    with pytest.raises(ValueError):
        format_table(["key"], [["1", "extra"]])

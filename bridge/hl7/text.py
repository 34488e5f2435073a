"""From the bytes a sender framed (or dropped in a file) to message text.

Two traps found on real feeds (HL7.md, fixtures 15 and M1-M3):

- MSH-18 is often empty or wrong: fixture 15 declares ``8859/1`` but its bytes are UTF-8. Bytes
  that decode as UTF-8 and hold non-ASCII characters are read as UTF-8 whatever MSH-18 says (a
  Latin-1 text is practically never valid UTF-8 by accident); otherwise the declared character
  set, then the configured default, then Windows-1252 and finally Latin-1, which cannot fail.
- Segments end with CR, but files and some engines use LF or CRLF; both common Python parsers
  then silently see ONE segment. Terminators are normalised to CR before anything else.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

# HL7 table 0211 names (and common misspellings) -> Python codecs.
CHARSETS = {
    "ASCII": "ascii",
    "8859/1": "latin-1",
    "8859/2": "iso8859-2",
    "8859/3": "iso8859-3",
    "8859/4": "iso8859-4",
    "8859/5": "iso8859-5",
    "8859/6": "iso8859-6",
    "8859/7": "iso8859-7",
    "8859/8": "iso8859-8",
    "8859/9": "iso8859-9",
    "8859/15": "iso8859-15",
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
    "UTF8": "utf-8",
    "ISO-8859-1": "latin-1",
    "ISO8859-1": "latin-1",
    "LATIN1": "latin-1",
    "WINDOWS-1252": "cp1252",
    "CP1252": "cp1252",
}


@dataclass(frozen=True, slots=True)
class Decoded:
    """Message text with CR terminators, the codec used, and a note when MSH-18 was wrong."""

    text: str
    charset: str
    note: str = ""


def declared_charset(raw: bytes) -> str:
    """MSH-18 (first repetition, first component) read from the raw bytes, upper case; '' if
    absent. The MSH segment itself is ASCII in every feed seen, so it is read before decoding."""
    if len(raw) < 8 or not raw.startswith(b"MSH"):
        return ""
    end = len(raw)
    for terminator in (b"\r", b"\n"):
        found = raw.find(terminator)
        if 0 <= found < end:
            end = found
    separator = raw[3:4]
    fields = raw[:end].split(separator)
    # fields[0] is "MSH" and fields[1] the encoding characters, so MSH-n is fields[n - 1].
    if len(fields) < 18:
        return ""
    encoding = fields[1]
    value = fields[17]
    for cut in (encoding[1:2], encoding[0:1]):  # repetition, then component separator
        if cut:
            value = value.split(cut, 1)[0]
    return value.decode("ascii", "replace").strip().upper()


def codec_for(name: str) -> str | None:
    """The Python codec's canonical name for an HL7 character set name (or a codec name), None
    if unknown."""
    if not name:
        return None
    try:
        return codecs.lookup(CHARSETS.get(name.upper(), name)).name
    except LookupError:
        return None


def decode(raw: bytes, default: str = "utf-8") -> Decoded:
    """Decode ``raw`` as described in the module docstring and normalise its terminators."""
    declared = declared_charset(raw)
    wanted = codec_for(declared)
    if raw.isascii():
        return Decoded(normalise(raw.decode("ascii")), "ascii")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        note = ""
        if wanted not in (None, "utf-8"):
            note = f"MSH-18 says {declared} but the bytes are UTF-8; read as UTF-8"
        return Decoded(normalise(text), "utf-8", note)
    for codec in dict.fromkeys(c for c in (wanted, codec_for(default), "cp1252") if c):
        try:
            text = raw.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
        note = "" if codec == wanted else f"MSH-18 {declared or '(empty)'}: read as {codec}"
        return Decoded(normalise(text), codec, note)
    return Decoded(normalise(raw.decode("latin-1")), "iso8859-1", "read as Latin-1")


def normalise(text: str) -> str:
    """CR-terminated segments: CRLF and LF become CR, blank segments and surrounding
    whitespace go (a trailing CR is not required by the parser)."""
    if "\n" in text:
        text = text.replace("\r\n", "\r").replace("\n", "\r")
    if "\r\r" in text:
        text = "\r".join(part for part in text.split("\r") if part.strip())
    return text.strip("\r\n\t \x00")

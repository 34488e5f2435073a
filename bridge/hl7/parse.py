"""A small tolerant HL7 v2 pipe parser: the hot path of the listener.

Why not hl7apy here: hl7apy parses about 90 SIU messages a second on this machine (22 for an
18-segment one) and its STRICT mode rejects most real messages; the listener must take well
over 1,000 a second and ACK each one. This parser splits segments and fields once (about 20
microseconds for a 20-segment message) and splits repetitions, components and subcomponents only
for the few fields the mapping reads, unescaping on the way. hl7apy is still used where
structure matters more than speed: building outbound messages (``bridge.hl7.outbound``) and the
structural report of ``bridge hl7 show``.

Fields are named as the standard names them (``SCH-11.4``: segment SCH, field 11, component 4),
so MSH-1 is the field separator and MSH-2 the encoding characters, as python-hl7 counts them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

DEFAULT_ENCODING = "^~\\&"
_SEGMENT_NAME = re.compile(r"^[A-Z][A-Z0-9]{2}$")
_REF = re.compile(r"^([A-Z][A-Z0-9]{2})-(\d{1,3})(?:\.(\d{1,3}))?(?:\.(\d{1,3}))?$")


class ParseError(ValueError):
    """The text is not an HL7 v2 message at all (no usable MSH)."""


@dataclass(frozen=True, slots=True)
class FieldRef:
    """A field position by its standard name: ``SCH-11.4`` or ``PID-3``."""

    segment: str
    field: int
    component: int | None = None
    subcomponent: int | None = None

    def __str__(self) -> str:
        text = f"{self.segment}-{self.field}"
        if self.component is not None:
            text += f".{self.component}"
        if self.subcomponent is not None:
            text += f".{self.subcomponent}"
        return text


@lru_cache(maxsize=1024)
def field_ref(text: str) -> FieldRef:
    """Parse ``SEG-F[.C[.S]]``; ``ValueError`` naming the expected form otherwise."""
    match = _REF.match(text.strip().upper())
    if not match:
        raise ValueError(f"{text!r} is not a field such as SCH-2 or SCH-11.4")
    segment, field, component, sub = match.groups()
    return FieldRef(
        segment,
        int(field),
        int(component) if component else None,
        int(sub) if sub else None,
    )


@dataclass(frozen=True, slots=True)
class Separators:
    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"


class Segment:
    """One segment: ``fields[n]`` is field n (for MSH too: ``fields[1]`` is the separator)."""

    __slots__ = ("fields", "name", "position")

    def __init__(self, name: str, fields: list[str], position: int) -> None:
        self.name = name
        self.fields = fields
        self.position = position

    def raw(self, number: int) -> str:
        """The field's text as sent (all repetitions, escapes kept); '' when absent."""
        return self.fields[number] if number < len(self.fields) else ""


class Message:
    """A parsed message: segments in order, found by name; values by field reference."""

    __slots__ = ("_by_name", "segments", "separators", "text")

    def __init__(self, text: str, separators: Separators, segments: list[Segment]) -> None:
        self.text = text
        self.separators = separators
        self.segments = segments
        self._by_name: dict[str, list[Segment]] = {}
        for segment in segments:
            self._by_name.setdefault(segment.name, []).append(segment)

    def first(self, name: str) -> Segment | None:
        found = self._by_name.get(name)
        return found[0] if found else None

    def all(self, name: str) -> list[Segment]:
        return self._by_name.get(name, [])

    def has(self, name: str) -> bool:
        return name in self._by_name

    def repetitions(self, ref: FieldRef | str, segment: Segment | None = None) -> list[str]:
        """Every repetition of the field (raw text of each, escapes kept)."""
        ref = field_ref(ref) if isinstance(ref, str) else ref
        seg = segment or self.first(ref.segment)
        if seg is None:
            return []
        raw = seg.raw(ref.field)
        if not raw:
            return []
        if ref.segment == "MSH" and ref.field <= 2:
            return [raw]
        return raw.split(self.separators.repetition)

    def value(self, ref: FieldRef | str, segment: Segment | None = None) -> str:
        """The first repetition's component / subcomponent, unescaped and stripped; '' if
        absent. ``segment`` picks one occurrence of a repeating segment."""
        ref = field_ref(ref) if isinstance(ref, str) else ref
        reps = self.repetitions(ref, segment)
        if not reps:
            return ""
        if ref.segment == "MSH" and ref.field <= 2:  # the separators themselves
            return reps[0]
        return self.part(reps[0], ref.component, ref.subcomponent)

    def part(self, text: str, component: int | None, subcomponent: int | None = None) -> str:
        """One component (and subcomponent) of one repetition's text, unescaped and stripped.
        Without a component number, the first component (a field read as a plain value)."""
        seps = self.separators
        parts = text.split(seps.component)
        index = (component or 1) - 1
        value = parts[index] if index < len(parts) else ""
        subs = value.split(seps.subcomponent)
        sub_index = (subcomponent or 1) - 1
        value = subs[sub_index] if sub_index < len(subs) else ""
        return _plain(value, seps)

    def spelled(self, text: str, component: int) -> str:
        """One component with all its subcomponents joined by spaces (an address's street:
        ``1000&Hospital Lane`` is "1000 Hospital Lane")."""
        parts = text.split(self.separators.component)
        if component > len(parts):
            return ""
        subs = parts[component - 1].split(self.separators.subcomponent)
        return " ".join(p for p in (_plain(s, self.separators) for s in subs) if p)

    def components(self, text: str) -> list[str]:
        """Every component of one repetition's text, each unescaped and stripped (the first
        subcomponent of each)."""
        seps = self.separators
        found = []
        for component in text.split(seps.component):
            if seps.subcomponent in component:
                component = component.split(seps.subcomponent, 1)[0]
            if seps.escape in component or component.startswith('"'):
                found.append(_plain(component, seps))
            else:  # the usual case, kept cheap: a message has dozens of these
                found.append(component.strip())
        return found


def parse(text: str) -> Message:
    """Split normalised text (CR-terminated segments) into a ``Message``.

    Tolerant: unknown and Z segments are kept, fields may be missing, a trailing field
    separator is fine. ``ParseError`` only when there is no usable MSH segment first.
    """
    if not text.startswith("MSH") or len(text) < 8:
        raise ParseError("the message does not start with an MSH segment")
    field_sep = text[3]
    if field_sep.isalnum() or field_sep in "\r\n ":
        raise ParseError(f"MSH-1 field separator {field_sep!r} is not usable")
    lines = text.split("\r")
    header = lines[0].split(field_sep)
    encoding = header[1] if len(header) > 1 else ""
    if len(encoding) < 4 or any(c.isalnum() for c in encoding[:4]):
        raise ParseError(f"MSH-2 encoding characters {encoding!r} are not usable")
    seps = Separators(field_sep, encoding[0], encoding[1], encoding[2], encoding[3])
    segments = [Segment("MSH", ["MSH", field_sep, *header[1:]], 0)]
    for position, line in enumerate(lines[1:], start=1):
        if not line:
            continue
        fields = line.split(field_sep)
        segments.append(Segment(fields[0].strip(), fields, position))
    return Message(text, seps, segments)


def bad_segment_names(message: Message) -> list[Segment]:
    """Segments whose name is not three upper-case letters or digits (garbage lines)."""
    return [s for s in message.segments if not _SEGMENT_NAME.match(s.name)]


def _plain(value: str, seps: Separators) -> str:
    """Unescaped and stripped; ``""`` (HL7's explicit null, "delete this value") is empty."""
    if seps.escape in value:
        value = unescape(value, seps)
    value = value.strip()
    return "" if value == '""' else value


_HIGHLIGHT = frozenset({"H", "N"})


def unescape(value: str, seps: Separators) -> str:
    """Resolve HL7 escape sequences: ``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\``, ``\\Xhh..\\``
    (hex bytes, read as UTF-8, else Latin-1), ``\\.br\\`` (a line break); highlighting and
    character-set switches (``\\H\\ \\N\\ \\C..\\ \\M..\\``) are dropped."""
    esc = seps.escape
    if not esc or esc not in value:
        return value
    simple = {
        "F": seps.field,
        "S": seps.component,
        "T": seps.subcomponent,
        "R": seps.repetition,
        "E": esc,
        ".br": "\n",
    }
    out: list[str] = []
    i = 0
    while i < len(value):
        char = value[i]
        end = value.find(esc, i + 1) if char == esc else -1
        if end < 0:
            out.append(char)
            i += 1
            continue
        code = value[i + 1 : end]
        i = end + 1
        if code in simple:
            out.append(simple[code])
        elif code[:1] == "X" and len(code) > 1:
            out.append(_hex_text(code[1:]))
        elif code in _HIGHLIGHT or code[:1] in ("C", "M") or code.startswith("."):
            continue
        else:  # not an escape after all: keep it as written
            out.append(esc + code + esc)
    return "".join(out)


def _hex_text(digits: str) -> str:
    try:
        data = bytes.fromhex(digits)
    except ValueError:
        return ""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def escape(value: str, seps: Separators | None = None) -> str:
    """Escape the separators in ``value`` so it can be placed in a field."""
    seps = seps or Separators()
    esc = seps.escape
    value = value.replace(esc, f"{esc}E{esc}")
    for char, code in (
        (seps.field, "F"),
        (seps.component, "S"),
        (seps.subcomponent, "T"),
        (seps.repetition, "R"),
    ):
        value = value.replace(char, f"{esc}{code}{esc}")
    return value.replace("\r", f"{esc}.br{esc}").replace("\n", f"{esc}.br{esc}")

"""hl7apy's view of one stored message, for ``bridge hl7 show`` (the slow path: hl7apy takes
milliseconds per message, which is fine for one message a person looks at)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.exceptions import HL7apyException
from hl7apy.parser import parse_message
from hl7apy.validation import Validator


def structure_report(text: str) -> list[str]:
    """The message structure hl7apy finds (groups and segments) and what its strict
    validation says, one line each. Real feeds rarely pass strict validation; the report says
    what a vendor would have to change, and it is information, not the bridge's verdict."""
    try:
        message = parse_message(text, validation_level=VALIDATION_LEVEL.TOLERANT, find_groups=True)
    except (HL7apyException, ValueError, KeyError) as exc:
        return [f"hl7apy cannot parse it: {type(exc).__name__}: {exc}"]
    lines = [f"structure {message.name or '(unknown to hl7apy)'}: " + _tree(message)]
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.txt"
        try:
            Validator.validate(message, report_file=str(report))
            lines.append("hl7apy strict validation: valid")
        except (HL7apyException, ValueError, KeyError) as exc:
            found = report.read_text(encoding="utf-8").splitlines() if report.exists() else []
            lines.append(
                "hl7apy strict validation: " + (f"{len(found)} remarks" if found else str(exc))
            )
            lines.extend(f"  {line}" for line in found)
    return lines


def _tree(element: object) -> str:
    parts = []
    for child in getattr(element, "children", []):
        if getattr(child, "classname", "") == "Group":
            parts.append(f"{child.name}[{_tree(child)}]")
        else:
            parts.append(child.name)
    return " ".join(parts)

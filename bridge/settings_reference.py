"""The settings reference in the README, generated from the settings models themselves.

``python -m bridge.settings_reference`` prints it; a test keeps the README's copy identical, so
the documentation cannot drift from what the code accepts.
"""

from __future__ import annotations

import json
from enum import Enum
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from bridge.settings import Settings

BEGIN = "<!-- settings-reference:begin -->"
END = "<!-- settings-reference:end -->"


def markdown_reference() -> str:
    """A Markdown table: key, environment variable, default, meaning."""
    rows = ["| key | environment variable | default | meaning |", "|---|---|---|---|"]
    for key, field in _fields(Settings, ""):
        env = "BRIDGE_" + key.upper().replace(".", "__")
        rows.append(f"| `{key}` | `{env}` | {_default(field)} | {field.description or ''} |")
    return "\n".join(rows)


def _fields(model: type[BaseModel], prefix: str) -> list[tuple[str, FieldInfo]]:
    found: list[tuple[str, FieldInfo]] = []
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        key = f"{prefix}{name}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found += _fields(annotation, f"{key}.")
        else:
            found.append((key, field))
    return found


def _default(field: FieldInfo) -> str:
    value: Any = field.get_default(call_default_factory=True)
    if value is PydanticUndefined or value is None:
        return "(none)"
    if isinstance(value, dict):
        value = {
            str(k): (v.model_dump() if isinstance(v, BaseModel) else v) for k, v in value.items()
        }
    if isinstance(value, list):
        value = [v.value if isinstance(v, Enum) else v for v in value]
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool | dict | list) or value == "":
        return f"`{json.dumps(value, default=str)}`"
    return f"`{value}`"


if __name__ == "__main__":  # pragma: no cover
    print(markdown_reference())

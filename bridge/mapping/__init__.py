"""Mapping files: versioned YAML that tells the bridge how a host spells its data.

A mapping is data, never code: no expressions, no SQL fragments, no eval. It is loaded into
pydantic models with ``extra="forbid"`` so a misspelt key is an error, and every error cites the
file and the dotted path inside it (``mappings/openemr.yaml: statuses.confirmed.sms: ...``).

``load_mapping("openemr")`` reads the built-in ``mappings/openemr.yaml``; a value containing a
path separator or ending in ``.yaml`` is read as a path instead.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from bridge.errors import MappingError
from bridge.yamlfile import read_yaml

M = TypeVar("M", bound=BaseModel)


def mapping_path(name: str, base_dir: Path | None = None) -> Path:
    """Where the mapping called ``name`` lives: a built-in name or a path (relative to base_dir)."""
    if name.endswith((".yaml", ".yml")) or "/" in name or "\\" in name:
        path = Path(name).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        return path.resolve()
    builtin = resources.files("mappings") / f"{name}.yaml"
    return Path(str(builtin))


def read_mapping_data(path: Path) -> dict[str, Any]:
    """Parse the YAML file; a missing or unreadable file, text that is not UTF-8, bad YAML or a
    wrong version is a ``MappingError``."""
    if not path.is_file():
        raise MappingError(f"{path}: mapping file not found")
    data = read_yaml(path, MappingError, "mapping file")
    if not isinstance(data, dict):
        raise MappingError(f"{path}: expected a mapping with 'version: 1' at the top")
    if data.get("version") != 1:
        raise MappingError(f"{path}: version = {data.get('version')!r}: expected 1")
    return data


def validate_mapping(model: type[M], data: dict[str, Any], path: Path) -> M:
    """Build the typed mapping or raise ``MappingError`` citing the file and the dotted path."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise MappingError(describe(exc, path)) from exc


def describe(exc: ValidationError, path: Path) -> str:
    """One line for the first validation error: file, dotted path, value, what was expected.

    A check across keys is reported by pydantic on the whole section; its dotted path is then the
    section's and its value is not repeated (a section would not fit on one line).
    """
    error = exc.errors()[0]
    dotted = ".".join(str(part) for part in error["loc"]) or "(top level)"
    message = str(error["msg"]).removeprefix("Value error, ")
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    if error["type"] == "extra_forbidden":
        return f"{path}: {dotted}: unknown key{more}"
    if error["type"] == "missing":
        return f"{path}: {dotted}: missing, a value is required{more}"
    value = error.get("input")
    if _is_section(value):
        return f"{path}: {dotted}: {message}{more}"
    return f"{path}: {dotted} = {value!r}: {message}{more}"


def _is_section(value: Any) -> bool:
    return isinstance(value, dict) or (
        isinstance(value, list | tuple) and any(isinstance(item, dict) for item in value)
    )

"""Reading a YAML file a person wrote (settings, mappings): every way it can be wrong becomes one
line naming the file and, where there is one, the line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bridge.errors import ConfigError


def read_yaml(path: Path, error: type[ConfigError], what: str) -> Any:
    """The parsed content of ``path``; ``error`` (naming ``what`` the file is) when it cannot be
    read, is not UTF-8 or is not YAML."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise error(f"{path}: cannot read {what} ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise error(f"{path}: line {line}: not UTF-8 text (save the file as UTF-8)") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "?"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"{path}: {where}: not valid YAML ({problem})") from exc

"""One-line settings errors: where the bad value came from, the key, the value, the rule.

The origin is the environment variable (``BRIDGE_WEB__PORT``, or ``BRIDGE_REMINDERS__CHANNELS``
for one item of that list), the secrets file, or the YAML file. A secret's value is never
repeated.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import (
    DotEnvSettingsSource,
    EnvSettingsSource,
    InitSettingsSource,
    NestedSecretsSettingsSource,
    PydanticBaseSettingsSource,
    SettingsError,
    YamlConfigSettingsSource,
)

ENV_PREFIX = "BRIDGE_"


def describe_validation_error(
    exc: ValidationError,
    path: Path | None,
    sources: Sequence[PydanticBaseSettingsSource] = (),
) -> str:
    """One line for the first error: where the value came from, the key, the value, the rule.

    ``sources`` are those the settings were read from, highest priority first; the first that
    holds the key is named (the variable, the secrets file), else the settings file.
    """
    error = exc.errors()[0]
    loc = tuple(part for part in error["loc"] if not str(part).startswith("function-"))
    key = ".".join(str(part) for part in loc) or "(top level)"
    origin, from_secrets_file = _origin(loc, sources, path)
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return f"{origin}: {key}: unknown key"
    if error["type"] == "missing":
        return f"{origin}: {key}: missing, a value is required"
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    value = error.get("input")
    if from_secrets_file or is_secret(key):
        return f"{origin}: {key} = '***': {message}{more}"
    if _is_section(value):  # a check across keys that pydantic reports on the whole section
        return f"{origin}: {key}: {message}{more}"
    return f"{origin}: {key} = {value!r}: {message}{more}"


_UNPARSABLE = re.compile(r'field "(\w+)" from source "EnvSettingsSource"')


def describe_settings_error(exc: SettingsError) -> str:
    """pydantic-settings could not parse a value at all: a section set in one variable
    (``BRIDGE_REMINDERS``, ``BRIDGE_CHANNELS``) whose value is not JSON."""
    found = _UNPARSABLE.search(str(exc))
    if found is None:
        return f"settings: {exc}"
    field = found.group(1)
    return f"environment {ENV_PREFIX}{field.upper()}: {field}: expected a JSON object"


def _origin(
    loc: tuple[int | str, ...], sources: Sequence[PydanticBaseSettingsSource], path: Path | None
) -> tuple[str, bool]:
    """Where the value at ``loc`` came from, and whether that is a secrets file."""
    # Subclasses before their bases: the secrets and .env sources are EnvSettingsSources, the
    # YAML source an InitSettingsSource.
    for source in sources:
        if not _holds(source(), loc):
            continue
        if isinstance(source, YamlConfigSettingsSource):
            break
        if isinstance(source, NestedSecretsSettingsSource):
            folder, name = source.secrets_paths[0], _source_name(source, "", loc).lower()
            file = next((f for f in folder.iterdir() if f.name.lower() == name), folder / name)
            return str(file), True
        if isinstance(source, DotEnvSettingsSource):
            return f".env {_source_name(source, ENV_PREFIX, loc).upper()}", False
        if isinstance(source, EnvSettingsSource):
            return f"environment {_source_name(source, ENV_PREFIX, loc).upper()}", False
        if isinstance(source, InitSettingsSource):
            return "settings passed in code", False
    return str(path or "settings"), False


def _holds(data: Any, loc: tuple[int | str, ...]) -> bool:
    """Whether a source's nested data has a value at ``loc`` (keys and list indexes)."""
    for part in loc:
        is_key = isinstance(data, dict) and part in data
        is_index = isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        if not (is_key or is_index):
            return False
        data = data[part]
    return True


def _source_name(source: EnvSettingsSource, prefix: str, loc: tuple[int | str, ...]) -> str:
    """The variable (or secrets file) that set ``loc``: the longest ``__``-joined prefix of it
    the source has, so one item of a JSON list names the variable holding the list."""
    names = {name.lower(): name for name in source.env_vars}
    for end in range(len(loc), 0, -1):
        name = prefix + "__".join(str(part) for part in loc[:end])
        if name.lower() in names:
            return names[name.lower()]
    return prefix + "__".join(str(part) for part in loc)


def _is_section(value: Any) -> bool:
    return isinstance(value, dict) or (
        isinstance(value, list | tuple) and any(isinstance(item, dict) for item in value)
    )


def is_secret(key: str) -> bool:
    """Whether a key names a secret (password, token, key): its value is never shown."""
    return any(word in key.lower() for word in ("password", "secret", "token", "key"))


def shown(key: str, value: Any) -> str:
    """A value as an error message may show it: secrets masked, sections elided."""
    if is_secret(key):
        return "'***'"
    if _is_section(value):
        return "{...}"
    return repr(value)

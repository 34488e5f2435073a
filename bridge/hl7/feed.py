"""One HL7 feed's configuration, loaded once: the mapping, the clinic's zone and phone region,
the ``hl7`` settings. Shared by the listener, the folder source, the sources, the writer and the
commands, so they all read messages the same way."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bridge.errors import ConfigError, MappingError
from bridge.hl7.intake import Intake
from bridge.hl7.settings import Hl7Settings
from bridge.mapping import mapping_path, read_mapping_data, validate_mapping
from bridge.mapping.hl7 import Hl7Mapping
from bridge.store import Store

HL7_SOURCES = ("hl7-mllp", "hl7-files")


@dataclass(frozen=True)
class Feed:
    mapping: Hl7Mapping
    mapping_file: Path
    zone: ZoneInfo
    region: str
    settings: Hl7Settings

    @classmethod
    def load(
        cls,
        mapping: str,
        base_dir: Path,
        clinic_timezone: str | None,
        region: str,
        settings: Hl7Settings,
    ) -> Feed:
        """Read and check the mapping; the zone is the clinic's, else the mapping's, else UTC."""
        path = mapping_path(mapping, base_dir)
        data = read_mapping_data(path)
        if data.get("kind") != "hl7":
            raise ConfigError(
                f"{path}: kind = {data.get('kind')!r}: an HL7 source or writer needs a mapping "
                "of kind hl7 (host.mapping: hl7-siu, or your own)"
            )
        loaded = validate_mapping(Hl7Mapping, data, path)
        name = clinic_timezone or loaded.timezone or "UTC"
        try:
            zone = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise MappingError(f"{path}: timezone = {name!r}: not an IANA time zone") from exc
        return cls(loaded, path, zone, region, settings)

    @classmethod
    def from_settings(cls, settings: Any) -> Feed:
        """The feed ``bridge.settings.Settings`` describe (host.mapping, clinic, hl7)."""
        return cls.load(
            settings.host.mapping,
            settings.base_dir,
            settings.clinic.timezone,
            settings.clinic.region,
            settings.hl7,
        )

    def intake(self) -> Intake:
        return Intake(self.mapping, self.zone, self.region, self.settings.charset)


def options_for(settings: Any) -> dict[str, Any]:
    """The options of the HL7 source and writer plugins, from the whole settings."""
    return {
        "mapping": settings.host.mapping,
        "store_url": settings.store_url(),
        "timezone": settings.clinic.timezone,
        "hl7": settings.hl7,
    }


class LazyStore:
    """The bridge's own store as a host plugin sees it: opened on first use (the runtime has
    applied the migrations by then), closed with the plugin."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._store: Store | None = None

    def get(self) -> Store:
        if self._store is None:
            self._store = Store.open(self.url, apply_migrations=False)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

"""Reasons for a visit as the clinic offers them online, matched to the host's visit categories
(their durations) and to the providers and locations that see them.

A reason whose category the host does not have (or keeps for provider events) is a
configuration mistake: it is left out with a problem line for ``bridge booking check`` and the
log, and the rest of the booking pages keep working.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bridge.booking.settings import BookingSettings, Flow, ReasonSettings
from bridge.plugin import Reference

DEFAULT_MINUTES = 15


@dataclass(frozen=True)
class Reason:
    """One reason, resolved against the host's reference data."""

    settings: ReasonSettings
    service_key: str
    service_name: str
    minutes: int
    providers: tuple[str, ...]
    locations: tuple[str, ...]

    @property
    def key(self) -> str:
        return self.settings.key

    def label(self, language: str) -> str:
        return self.settings.label(language)

    def allows(self, flow: Flow) -> bool:
        return flow in self.settings.flows


def resolve(settings: BookingSettings, reference: Reference) -> tuple[list[Reason], list[str]]:
    """The usable reasons, in the order configured, and a line per reason left out."""
    reasons: list[Reason] = []
    problems: list[str] = []
    active = sorted(k for k, p in reference.providers.items() if p.active)
    for index, item in enumerate(settings.reasons):
        where = f"booking.reasons[{index}] ({item.key})"
        service = reference.services.get(item.service)
        if service is None:
            problems.append(
                f"{where}: service {item.service!r} is not a visit category on the host"
            )
            continue
        if not service.for_patients:
            problems.append(f"{where}: service {item.service!r} is for provider or clinic events")
            continue
        minutes = item.minutes or service.duration_minutes or DEFAULT_MINUTES
        unknown = [p for p in item.providers if p not in reference.providers]
        if unknown:
            problems.append(f"{where}: provider {unknown[0]!r} is not on the host")
        providers = tuple(p for p in item.providers if p in active) if item.providers else ()
        if item.providers and not providers:
            problems.append(f"{where}: none of its providers is active on the host")
            continue
        missing = [f for f in item.locations if f not in reference.facilities]
        if missing:
            problems.append(f"{where}: location {missing[0]!r} is not a facility on the host")
        reasons.append(
            Reason(
                settings=item,
                service_key=item.service,
                service_name=service.name,
                minutes=minutes,
                providers=providers or tuple(active),
                locations=tuple(item.locations),
            )
        )
    return reasons, problems


def for_flow(
    reasons: Iterable[Reason], flow: Flow, allowed: Iterable[str] | None = None
) -> list[Reason]:
    """The reasons ``flow`` may book, narrowed to ``allowed`` keys when the link names some."""
    keys = set(allowed) if allowed is not None else None
    return [r for r in reasons if r.allows(flow) and (keys is None or r.key in keys)]

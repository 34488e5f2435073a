"""The ``patient`` settings section: links and the pages they open."""

from __future__ import annotations

import ipaddress

from pydantic import Field, field_validator

from bridge.settings_values import Section


class PatientSettings(Section):
    """Confirm / cancel links in messages and the patient pages behind them."""

    links: bool = Field(True, description="Put a confirm/cancel link in SMS and email reminders.")
    link_max_days: int = Field(
        30,
        ge=1,
        le=365,
        description="A link expires this many days after it was sent at most "
        "(always at the appointment's start).",
    )
    session_minutes: int = Field(
        15, ge=1, le=240, description="How long a patient stays verified after the birth date."
    )
    max_birth_date_tries: int = Field(
        5, ge=1, le=20, description="Wrong birth dates before a link is locked for good."
    )
    requests_per_minute: int = Field(
        60, ge=1, description="Page requests one address may make per minute."
    )
    failures_per_hour: int = Field(
        20, ge=1, description="Bad links and wrong birth dates one address may send per hour."
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks of reverse proxies whose X-Forwarded-For is "
        "believed (the patient's address is then the last one they did not add).",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                ipaddress.ip_network(value.strip(), strict=False)
            except ValueError as exc:
                raise ValueError(f"{value!r} is not an IP address or network") from exc
        return [value.strip() for value in values]

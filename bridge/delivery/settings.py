"""The ``delivery`` settings section: pacing, caps, attempts, the unknown-job policy, prices and
the budget. Provider credentials are not here: they are each channel plugin's own options
(``channels.sms.account_sid``...), secrets from the environment or the secrets folder."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field

from bridge.model import Channel
from bridge.settings_values import Duration, Email, Section


class Prices(Section):
    """What one message costs, when the provider does not say (it usually says later)."""

    currency: str = Field("USD", description="Currency of the prices and the budget.")
    sms_segment: float = Field(0.0079, ge=0, description="Price of one SMS segment.")
    voice_minute: float = Field(0.014, ge=0, description="Price of one started call minute.")
    email: float = Field(0.0, ge=0, description="Price of one email.")

    def estimate(self, channel: Channel, segments: int | None, minutes: int = 1) -> float:
        """The price of one message before the provider reports the real one."""
        if channel == Channel.SMS:
            return round(self.sms_segment * max(segments or 1, 1), 6)
        if channel == Channel.VOICE:
            return round(self.voice_minute * max(minutes, 1), 6)
        return self.email


class DeliverySettings(Section):
    """How messages go out and how answers come back."""

    pacing: dict[Channel, float] = Field(
        default_factory=dict,
        description='Seconds between two sends per channel (e.g. {"voice": 30}); a channel '
        "not listed uses reminders.delay_seconds.",
    )
    max_per_run: int = Field(
        0, ge=0, description="At most this many sends per dispatch run; 0 = no cap."
    )
    lease: Duration = Field(
        timedelta(minutes=5),
        description="How long one send may take before another worker treats it as "
        "interrupted (then it is settled by asking the provider).",
    )
    redial_spacing: Duration = Field(
        timedelta(minutes=10),
        description="Wait before a redial; the n-th redial waits n times this.",
    )
    unknown_settle: Duration = Field(
        timedelta(minutes=1),
        description="After an ambiguous time-out, wait this long before asking the provider.",
    )
    unknown_policy: Literal["assume_sent", "fail"] = Field(
        "assume_sent",
        description="When the channel cannot tell whether an interrupted send went out: count "
        "it as sent, or fail it for staff. Never a blind resend.",
    )
    auto_reply: bool = Field(
        True, description="Answer SMS replies (confirmations, STOP, HELP, anything else)."
    )
    prices: Prices = Field(default_factory=Prices)
    monthly_budget: float | None = Field(
        None, ge=0, description="Spending limit per calendar month; reached = every send stops."
    )
    low_balance_warning: float = Field(
        0.8, gt=0, le=1, description="Warn the clinic admin once this share of the budget is spent."
    )
    admin_email: Email = Field(None, description="Clinic admin warned of a low budget.")

    def delay(self, channel: Channel, default_seconds: float) -> timedelta:
        """The pacing delay of ``channel``."""
        return timedelta(seconds=self.pacing.get(channel, default_seconds))

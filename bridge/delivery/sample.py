"""``bridge send-sample --sms|--call|--email``: one sample reminder to the testing contact.

The message is the clinic's own reminder template rendered for a fictional patient, marked as a
test, and sent through the configured channel plugin exactly as a reminder would be (recorded
with its cost as a ``sample``, held back by the monthly budget). It always goes to
``testing.phone`` / ``testing.email``, in live mode too: a sample never reaches a patient.
"""

from __future__ import annotations

import argparse
import uuid
from dataclasses import replace
from typing import Any

from bridge.delivery.compose import message_tags, recipient
from bridge.delivery.direct import Direct, send_direct
from bridge.errors import ConfigError, DeliveryError, Skipped
from bridge.model import Channel
from bridge.plugin import Reference
from bridge.runtime import Runtime
from bridge.settings import Settings
from bridge.template_context import sample_context

FLAGS = {"sms": Channel.SMS, "call": Channel.VOICE, "email": Channel.EMAIL}


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "send-sample", help="send one sample SMS, call or email to the testing contact"
    )
    group = parser.add_mutually_exclusive_group(required=True)
    for flag, channel in FLAGS.items():
        group.add_argument(
            f"--{flag}",
            dest="channel",
            action="store_const",
            const=channel.value,
            help=f"a sample {channel.value} message",
        )
    parser.add_argument("--event", default="reminder", help="template event (default reminder)")
    parser.set_defaults(handler=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    runtime = Runtime.build(settings)
    try:
        result = send_sample(runtime, Channel(args.channel), args.event)
    finally:
        runtime.close()
    print(result)
    return 0


def send_sample(runtime: Runtime, channel: Channel, event: str = "reminder") -> str:
    """Send one sample on ``channel``; returns a line for the operator (no patient data)."""
    settings = runtime.settings
    if channel not in runtime.channels:
        raise ConfigError(f"channels.{channel.value}: no channel plugin configured")
    try:
        to = recipient(settings, channel, None, testing=True)
    except Skipped as exc:
        raise ConfigError(f"cannot send a sample: {exc.reason}") from exc
    zone = runtime.zone(Reference())
    context = replace(sample_context(settings.clinic, settings.clinic.language, zone), testing=True)
    templates = runtime.templates
    rendered = templates.render(event, channel, context)
    voicemail = None
    if channel == Channel.VOICE:
        voicemail = templates.render(event, channel, context, voicemail=True).text
    direct = Direct(
        channel=channel,
        to=to,
        text=rendered.text,
        key=f"sample|{channel.value}|{uuid.uuid4().hex}",
        event="sample",
        subject=rendered.subject,
        html=rendered.html,
        voicemail=voicemail,
        testing=True,
        tags=message_tags(settings, "sample", "sample"),
    )
    plugin = runtime.channels[channel].name
    try:
        result = send_direct(runtime, direct)
    except DeliveryError as exc:
        raise DeliveryFailed(f"sample {channel.value} not sent through {plugin}: {exc}") from exc
    target = "testing.email" if channel == Channel.EMAIL else "testing.phone"
    return (
        f"sample {channel.value} sent through {plugin} to {target} "
        f"(provider id {result.provider_ref or '-'})"
    )


class DeliveryFailed(DeliveryError):
    """A sample could not be sent (the command exits 1 with this line)."""

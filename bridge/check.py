"""``bridge check``: settings, plugins, templates, store and the live host, one line each.

Exit status 1 when any line is an error; warnings (an older host version, a status the mapping
does not list) are printed but do not fail the check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bridge.clock import SystemClock
from bridge.errors import BridgeError
from bridge.plugin import CheckLine, PluginContext
from bridge.runtime import build_channels, build_source, build_writer
from bridge.settings import Settings
from bridge.store import Store
from bridge.template import Templates

MARKS = {"ok": "ok  ", "warning": "warn", "error": "FAIL"}


def run_check(settings: Settings) -> int:
    """Print every check line; 0 if nothing failed, else 1."""
    lines = collect(settings)
    for line in lines:
        print(f"[{MARKS[line.level]}] {line.text}")
    errors = sum(1 for line in lines if line.level == "error")
    warnings = sum(1 for line in lines if line.level == "warning")
    print(f"\n{errors} errors, {warnings} warnings")
    return 1 if errors else 0


def collect(settings: Settings) -> list[CheckLine]:
    """All check lines, in the order a person would fix them."""
    lines = [CheckLine("ok", f"settings: {settings.source_file or 'defaults and environment'}")]
    lines += _mode(settings)
    context = PluginContext(SystemClock(), settings.base_dir, settings.clinic.region)

    def attempt(label: str, action: Callable[[], Any]) -> Any:
        try:
            result = action()
        except BridgeError as exc:
            lines.append(CheckLine("error", f"{label}: {exc}"))
            return None
        lines.append(CheckLine("ok", label))
        return result

    store = attempt(f"store: {settings.store.url}", lambda: Store.open(settings.store_url()))
    if store is not None:
        store.close()
    attempt("channels: " + _channel_names(settings), lambda: build_channels(settings, context))
    templates = attempt("templates load", lambda: Templates(settings.templates, settings.clinic))
    if templates is not None:
        problems = templates.check()
        lines += [CheckLine("error", f"template {p}") for p in problems]
    writer = attempt(
        f"writer: {settings.host.writer or 'none'}", lambda: build_writer(settings, context)
    )
    if writer is not None:
        writer.close()
    source = attempt(
        f"source: {settings.host.source} with mapping {settings.host.mapping}",
        lambda: build_source(settings, context),
    )
    if source is not None:
        try:
            lines += source.check()
        finally:
            source.close()
    return lines


def _mode(settings: Settings) -> list[CheckLine]:
    lines = []
    if settings.mode == "testing":
        lines.append(CheckLine("ok", "mode: testing (every message goes to the testing contacts)"))
        if not settings.testing.phone:
            lines.append(CheckLine("warning", "testing.phone is empty: SMS and calls are skipped"))
        if not settings.testing.email:
            lines.append(CheckLine("warning", "testing.email is empty: emails are skipped"))
    else:
        lines.append(CheckLine("ok", "mode: live (messages go to patients)"))
        for channel, config in settings.channels.items():
            if config.plugin == "outbox":
                lines.append(
                    CheckLine("warning", f"live mode but channels.{channel.value} is the outbox")
                )
    if not settings.clinic.timezone:
        lines.append(CheckLine("ok", "clinic.timezone empty: the host's time zone is used"))
    return lines


def _channel_names(settings: Settings) -> str:
    return ", ".join(f"{c.value}={cfg.plugin}" for c, cfg in settings.channels.items())

"""Everything one bridge process works with, built once from the settings.

The CLI, the service loop, the demo and the tests all build a ``Runtime`` the same way, so what
the tests exercise is what runs at a clinic.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bridge import extensions
from bridge.clock import Clock, SystemClock
from bridge.errors import ConfigError
from bridge.model import Appointment, Channel, Patient
from bridge.plugin import (
    ChannelPlugin,
    PluginContext,
    Reference,
    Source,
    Writer,
    load_plugin,
    plugin_class,
)
from bridge.settings import Settings
from bridge.store import Store
from bridge.template import Templates

log = logging.getLogger(__name__)

LinkMaker = Callable[[Any, Appointment, Patient], str | None]
"""(job, appointment, patient) -> the confirm/cancel link for a message, or None."""


@dataclass
class Runtime:
    """Settings, clock, store, host source and writer, channels and templates."""

    settings: Settings
    clock: Clock
    store: Store
    source: Source[Any]
    writer: Writer[Any] | None
    channels: dict[Channel, ChannelPlugin[Any]]
    templates: Templates
    link_for: LinkMaker = field(default=lambda job, appointment, patient: None, repr=False)
    _zone_warned: bool = field(default=False, repr=False)

    @classmethod
    def build(cls, settings: Settings, clock: Clock | None = None) -> Runtime:
        """Open the store (applying migrations) and load every configured plugin."""
        clock = clock or SystemClock()
        context = PluginContext(
            clock=clock, base_dir=settings.base_dir, region=settings.clinic.region
        )
        source = build_source(settings, context)
        writer = build_writer(settings, context)
        channels = build_channels(settings, context)
        templates = Templates(settings.templates, settings.clinic)
        store = Store.open(settings.store_url())
        runtime = cls(settings, clock, store, source, writer, channels, templates)
        for _, make in extensions.load(extensions.LINKS)[:1]:
            runtime.link_for = make(runtime)
        return runtime

    def zone(self, reference: Reference) -> ZoneInfo:
        """The clinic's time zone: from the settings, else the host's, else UTC."""
        name = self.settings.clinic.timezone or reference.timezone or "UTC"
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            if not self._zone_warned:
                log.warning("host time zone %r is not a valid zone name; using UTC", name)
                self._zone_warned = True
            return ZoneInfo("UTC")

    def close(self) -> None:
        for plugin in [self.source, self.writer, *self.channels.values()]:
            if plugin is not None:
                plugin.close()
        self.store.close()


def host_options(settings: Settings) -> dict[str, Any]:
    """The options every host plugin gets from the ``host`` section."""
    url = settings.host_url()
    if url is None:
        raise ConfigError(
            "host.url: missing: the SQLAlchemy URL of the host database, "
            "e.g. mysql+pymysql://bridge@127.0.0.1/openemr (or BRIDGE_HOST__URL)"
        )
    return {"url": url, "mapping": settings.host.mapping}


def plugin_options(kind: str, name: str, settings: Settings) -> dict[str, Any]:
    """A host plugin's options: its own (``Plugin.options_from``), else ``host_options``."""
    own = plugin_class(kind, name).options_from(settings)
    return own if own is not None else host_options(settings)


def build_source(settings: Settings, context: PluginContext) -> Source[Any]:
    options = plugin_options("source", settings.host.source, settings)
    plugin = load_plugin("source", settings.host.source, options, context, "host")
    if not isinstance(plugin, Source):
        raise ConfigError(f"host.source = {settings.host.source!r}: not a source plugin")
    return plugin


def build_writer(settings: Settings, context: PluginContext) -> Writer[Any] | None:
    if not settings.host.writer:
        return None
    options = plugin_options("writer", settings.host.writer, settings)
    plugin = load_plugin("writer", settings.host.writer, options, context, "host")
    if not isinstance(plugin, Writer):
        raise ConfigError(f"host.writer = {settings.host.writer!r}: not a writer plugin")
    return plugin


def build_channels(settings: Settings, context: PluginContext) -> dict[Channel, ChannelPlugin[Any]]:
    """One plugin instance per channel; channels sharing a plugin and options share an instance."""
    built: dict[tuple[str, str], ChannelPlugin[Any]] = {}
    result: dict[Channel, ChannelPlugin[Any]] = {}
    for channel, config in settings.channels.items():
        identity = (config.plugin, repr(sorted(config.options.items())))
        plugin = built.get(identity)
        if plugin is None:
            loaded = load_plugin(
                "channel", config.plugin, config.options, context, f"channels.{channel.value}"
            )
            if not isinstance(loaded, ChannelPlugin):
                raise ConfigError(f"channels.{channel.value}.plugin: not a channel plugin")
            plugin = built[identity] = loaded
        if channel not in plugin.channels:
            raise ConfigError(
                f"channels.{channel.value}.plugin = {config.plugin!r}: cannot send {channel.value}"
            )
        result[channel] = plugin
    return result

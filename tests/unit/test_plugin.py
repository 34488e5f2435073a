"""Plugin discovery through entry points, and ConfigErrors that name the key to fix.

Third-party plugins are installed for real: a ``*.dist-info`` folder with ``entry_points.txt`` on
``sys.path``, which ``importlib.metadata`` finds exactly like a pip-installed package.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from bridge.clock import ManualClock
from bridge.errors import ConfigError
from bridge.plugin import (
    ChannelPlugin,
    PluginContext,
    Source,
    Writer,
    load_plugin,
    plugin_class,
)
from plugins.channels.outbox import Outbox
from plugins.sources.hl7_files import Hl7Files
from plugins.sources.hl7_mllp import Hl7Mllp
from plugins.sources.sql_poll import SqlPoll
from plugins.writers.hl7 import Hl7Writer
from plugins.writers.sql import SqlWriter


@pytest.fixture
def context(tmp_path: Path) -> PluginContext:
    return PluginContext(clock=ManualClock(datetime(2026, 3, 27, 8, tzinfo=UTC)), base_dir=tmp_path)


BUILT_IN = [
    # kind, entry point name, group, class, base class
    ("source", "sql-poll", "bridge.sources", SqlPoll, Source),
    ("channel", "outbox", "bridge.channels", Outbox, ChannelPlugin),
    ("writer", "sql", "bridge.writers", SqlWriter, Writer),
    ("source", "hl7-mllp", "bridge.sources", Hl7Mllp, Source),
    ("source", "hl7-files", "bridge.sources", Hl7Files, Source),
    ("writer", "hl7", "bridge.writers", Hl7Writer, Writer),
]


@pytest.mark.parametrize(
    ("kind", "name", "group", "cls", "base"), BUILT_IN, ids=[row[1] for row in BUILT_IN]
)
def test_built_in_plugin_is_found_through_its_entry_point(
    kind: str, name: str, group: str, cls: type, base: type
) -> None:
    registered = {ep.name: ep.value for ep in entry_points(group=group)}
    assert registered[name] == f"{cls.__module__}:{cls.__name__}"
    found = plugin_class(kind, name)
    assert found is cls
    assert issubclass(found, base)
    assert found.name == name


UNKNOWN = [
    ("source", "fhir-poll", "source plugin 'fhir-poll' is not installed (known: ", "sql-poll"),
    ("channel", "twilio-smss", "channel plugin 'twilio-smss' is not installed (known: ", "outbox"),
    ("writer", "odbc", "writer plugin 'odbc' is not installed (known: ", "sql"),
]


@pytest.mark.parametrize(
    ("kind", "name", "start", "known"), UNKNOWN, ids=[row[0] for row in UNKNOWN]
)
def test_unknown_plugin_lists_the_known_ones(
    context: PluginContext, kind: str, name: str, start: str, known: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_plugin(kind, name, {}, context, "somewhere")
    message = str(caught.value)
    assert message.startswith(start)
    listed = message.removeprefix(start).removesuffix(")").split(", ")
    assert known in listed


BAD_OPTIONS = [
    # id, options, exact message
    ("unknown option", {"bogus": 1}, "channels.sms.bogus: unknown option for plugin 'outbox'"),
    (
        "wrong type",
        {"folder": [1]},
        "channels.sms.folder = [1]: Input is not a valid path for <class 'pathlib.Path'>",
    ),
]


@pytest.mark.parametrize(
    ("options", "expected"), [row[1:] for row in BAD_OPTIONS], ids=[row[0] for row in BAD_OPTIONS]
)
def test_bad_options_name_the_settings_key(
    context: PluginContext, options: dict[str, object], expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_plugin("channel", "outbox", options, context, "channels.sms")
    assert str(caught.value) == expected


def test_good_options_build_the_plugin_with_its_typed_config(context: PluginContext) -> None:
    plugin = load_plugin("channel", "outbox", {"folder": "mail"}, context, "channels.email")
    assert isinstance(plugin, Outbox)
    assert plugin.config.folder == Path("mail")
    assert plugin.context is context


# --- third-party plugins ----------------------------------------------------------------------

MODULE = "bridge_test_thirdparty_plugin"
BROKEN = "bridge_test_thirdparty_broken"

PLUGIN_SOURCE = """
from pydantic import SecretStr

from bridge.plugin import ChannelPlugin, PluginConfig


class TokenConfig(PluginConfig):
    account: str
    auth_token: SecretStr


class TokenChannel(ChannelPlugin[TokenConfig]):
    name = "token-sms"
    Config = TokenConfig

    def send(self, message):
        raise NotImplementedError


class NotAPlugin:
    pass
"""


@pytest.fixture
def third_party(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Install a distribution with three channel entry points into a folder on sys.path."""
    site = tmp_path / "site"
    info = site / "bridge_test_thirdparty-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: bridge-test-thirdparty\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text(
        textwrap.dedent(f"""\
            [bridge.channels]
            token-sms = {MODULE}:TokenChannel
            odbc-thing = {BROKEN}:Missing
            not-a-plugin = {MODULE}:NotAPlugin
            """)
    )
    (site / f"{MODULE}.py").write_text(PLUGIN_SOURCE)
    # a plugin whose driver is not installed (always, whatever this machine has)
    (site / f"{BROKEN}.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'pyodbc'\", name='pyodbc')\n"
    )
    monkeypatch.syspath_prepend(str(site))
    try:
        yield site
    finally:
        for name in (MODULE, BROKEN):
            sys.modules.pop(name, None)


def test_third_party_plugin_is_discovered(third_party: Path, context: PluginContext) -> None:
    plugin = load_plugin(
        "channel",
        "token-sms",
        {"account": "AC-test", "auth_token": "tok-test"},
        context,
        "channels.sms",
    )
    assert type(plugin).__name__ == "TokenChannel"
    assert isinstance(plugin, ChannelPlugin)


def test_known_list_includes_third_party_plugins(third_party: Path, context: PluginContext) -> None:
    with pytest.raises(ConfigError) as caught:
        load_plugin("channel", "nope", {}, context, "channels.sms")
    assert str(caught.value) == (
        "channel plugin 'nope' is not installed "
        "(known: not-a-plugin, odbc-thing, outbox, smtp-email, token-sms, twilio-sms, "
        "twilio-voice, vonage-sms)"
    )


def test_missing_driver_is_one_actionable_line(third_party: Path, context: PluginContext) -> None:
    with pytest.raises(ConfigError) as caught:
        load_plugin("channel", "odbc-thing", {}, context, "channels.sms")
    assert str(caught.value) == (
        "channel plugin 'odbc-thing' needs pyodbc, which is not installed: "
        "pip install 'reminder-bridge[odbc]'"
    )


def test_entry_point_that_is_not_a_plugin(third_party: Path, context: PluginContext) -> None:
    with pytest.raises(ConfigError) as caught:
        load_plugin("channel", "not-a-plugin", {}, context, "channels.sms")
    assert str(caught.value) == (
        f"channel plugin 'not-a-plugin' ({MODULE}:NotAPlugin) is not a bridge plugin"
    )


def test_missing_required_option(third_party: Path, context: PluginContext) -> None:
    with pytest.raises(ConfigError) as caught:
        load_plugin("channel", "token-sms", {"auth_token": "tok-test"}, context, "channels.sms")
    assert str(caught.value).startswith("channels.sms.account = ")


SECRET = "tok-hunter2-do-not-print"


@pytest.mark.parametrize("value", [[SECRET], {"value": SECRET}])
def test_secret_option_value_is_never_echoed(
    third_party: Path, context: PluginContext, value: object
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_plugin(
            "channel", "token-sms", {"account": "AC-test", "auth_token": value}, context, "x.sms"
        )
    message = str(caught.value)
    assert message.startswith("x.sms.auth_token")
    assert SECRET not in message

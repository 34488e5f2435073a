"""Settings: defaults, the YAML file, ``BRIDGE_<SECTION>__<KEY>`` overrides, the secrets folder and
one-line errors that name the file (or variable), the dotted key, the value and the expectation."""

from __future__ import annotations

import os
from datetime import timedelta
from functools import reduce
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from bridge.errors import ConfigError
from bridge.model import Channel, ReminderType
from bridge.settings import (
    RemindersSettings,
    Settings,
    load_settings,
    parse_duration,
    resolve_sqlite_url,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No ``BRIDGE_*`` variable from the developer's shell, and a cwd without settings.yaml."""
    for name in list(os.environ):
        if name.startswith("BRIDGE_"):
            monkeypatch.delenv(name)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def write_settings(tmp_path: Path, text: str, name: str = "settings.yaml") -> Path:
    folder = tmp_path / "conf"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def dig(settings: Any, dotted: str) -> Any:
    return reduce(getattr, dotted.split("."), settings)


def error_of(path: Path | None, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    """The ConfigError message of loading ``path`` with ``env``; it must be exactly one line."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert "\n" not in message, message
    return message


# --- defaults ---------------------------------------------------------------------------------

DEFAULTS = [
    ("mode", "testing"),
    ("clinic.name", "Demo Clinic"),
    ("clinic.phone", None),
    ("clinic.caller_id", None),
    ("clinic.timezone", None),
    ("clinic.region", "US"),
    ("clinic.language", "en"),
    ("testing.phone", None),
    ("testing.email", None),
    ("host.source", "sql-poll"),
    ("host.url", None),
    ("host.password", None),
    ("host.mapping", "openemr"),
    ("host.writer", "sql"),
    ("host.poll_seconds", 30),
    ("store.url", "sqlite:///var/bridge.sqlite"),
    ("reminders.enabled", True),
    ("reminders.days_ahead", 2),
    ("reminders.lead_times", []),
    ("reminders.start_hour", 9),
    ("reminders.end_hour", 19),
    ("reminders.channels", None),
    ("reminders.default_type", ReminderType.SMS),
    ("reminders.clinic_channels", (Channel.SMS,)),
    ("reminders.resend_interval", "3h"),
    ("reminders.resend_delay", timedelta(hours=3)),
    ("reminders.consent", "explicit"),
    ("templates.sms_budget", 160),
    ("templates.limits.name", 25),
    ("web.port", 8470),
    ("web.secret_key", None),
    ("log.level", "INFO"),
]


@pytest.mark.parametrize(("dotted", "expected"), DEFAULTS, ids=[d[0] for d in DEFAULTS])
def test_default(dotted: str, expected: Any) -> None:
    assert dig(load_settings(), dotted) == expected


def test_defaults_send_every_channel_through_the_outbox() -> None:
    settings = load_settings()
    assert {channel: config.plugin for channel, config in settings.channels.items()} == {
        Channel.SMS: "outbox",
        Channel.EMAIL: "outbox",
        Channel.VOICE: "outbox",
    }
    assert settings.reminders.allowed_types == [
        ReminderType.CALL,
        ReminderType.SMS,
        ReminderType.CALL_SMS,
        ReminderType.EMAIL,
    ]


def test_without_a_file_the_base_dir_is_the_cwd(clean_environment: Path) -> None:
    settings = load_settings()
    assert settings.source_file is None
    assert settings.base_dir == clean_environment
    assert settings.store_url() == f"sqlite:///{clean_environment / 'var' / 'bridge.sqlite'}"


def test_settings_yaml_in_the_cwd_is_read_when_nothing_is_named(clean_environment: Path) -> None:
    (clean_environment / "settings.yaml").write_text("clinic:\n  name: Cwd Clinic\n")
    settings = load_settings()
    assert settings.clinic.name == "Cwd Clinic"
    assert settings.source_file == clean_environment / "settings.yaml"


def test_the_shipped_settings_file_loads() -> None:
    settings = load_settings(ROOT / "settings.yaml")
    assert settings.mode == "testing"
    assert settings.reminders.clinic_channels == (Channel.SMS,)
    assert settings.store_url() == f"sqlite:///{ROOT / 'var' / 'bridge.sqlite'}"
    assert set(settings.channels) == set(Channel)


# --- the YAML file ----------------------------------------------------------------------------

YAML_VALUES = [
    ("mode", "mode: live\n", "mode", "live"),
    ("clinic name", "clinic:\n  name: Test Clinic\n", "clinic.name", "Test Clinic"),
    (
        "phone to E.164",
        "clinic:\n  phone: '+1 (202) 555-0199'\n",
        "clinic.phone",
        "+12025550199",
    ),
    ("caller id", "clinic:\n  caller_id: '+1 202 555 0100'\n", "clinic.caller_id", "+12025550100"),
    ("blank phone is none", "testing:\n  phone: '  '\n", "testing.phone", None),
    ("region upper-cased", "clinic:\n  region: it\n", "clinic.region", "IT"),
    ("time zone", "clinic:\n  timezone: Europe/Rome\n", "clinic.timezone", "Europe/Rome"),
    (
        "email",
        "testing:\n  email: front.desk@example.test\n",
        "testing.email",
        "front.desk@example.test",
    ),
    ("days ahead", "reminders:\n  days_ahead: 7\n", "reminders.days_ahead", 7),
    (
        "channel list",
        "reminders:\n  channels: [email, voice]\n",
        "reminders.channels",
        [Channel.EMAIL, Channel.VOICE],
    ),
    (
        "lead times",
        "reminders:\n  lead_times: [48h, 90m, 2]\n",
        "reminders.lead_times",
        [timedelta(hours=48), timedelta(minutes=90), timedelta(hours=2)],
    ),
    ("window", "reminders:\n  start_hour: 8\n  end_hour: 24\n", "reminders.end_hour", 24),
    ("empty file", "", "clinic.name", "Demo Clinic"),
    ("only a comment", "# nothing set\n", "reminders.start_hour", 9),
]


@pytest.mark.parametrize(
    ("text", "dotted", "expected"),
    [case[1:] for case in YAML_VALUES],
    ids=[case[0] for case in YAML_VALUES],
)
def test_yaml_value(tmp_path: Path, text: str, dotted: str, expected: Any) -> None:
    settings = load_settings(write_settings(tmp_path, text))
    assert dig(settings, dotted) == expected


def test_yaml_file_is_remembered_with_its_folder(tmp_path: Path) -> None:
    path = write_settings(tmp_path, "mode: testing\n")
    settings = load_settings(path)
    assert settings.source_file == path
    assert settings.base_dir == path.parent


# --- environment overrides --------------------------------------------------------------------

ENV_OVERRIDES = [
    ("env only", "", {"BRIDGE_MODE": "live"}, "mode", "live"),
    (
        "env beats yaml",
        "reminders:\n  start_hour: 8\n",
        {"BRIDGE_REMINDERS__START_HOUR": "10"},
        "reminders.start_hour",
        10,
    ),
    (
        "list as JSON",
        "",
        {"BRIDGE_REMINDERS__CHANNELS": '["sms","email"]'},
        "reminders.channels",
        [Channel.SMS, Channel.EMAIL],
    ),
    (
        "JSON list beats yaml list",
        "reminders:\n  channels: [voice]\n",
        {"BRIDGE_REMINDERS__CHANNELS": '["sms","email"]'},
        "reminders.clinic_channels",
        (Channel.SMS, Channel.EMAIL),
    ),
    (
        "host url",
        "host:\n  url: sqlite:///yaml.sqlite\n",
        {"BRIDGE_HOST__URL": "mysql+pymysql://bridge@127.0.0.1:3306/openemr"},
        "host.url",
        "mysql+pymysql://bridge@127.0.0.1:3306/openemr",
    ),
    (
        "time zone",
        "",
        {"BRIDGE_CLINIC__TIMEZONE": "America/New_York"},
        "clinic.timezone",
        "America/New_York",
    ),
    (
        "other keys of the section stay",
        "reminders:\n  start_hour: 8\n  days_ahead: 5\n",
        {"BRIDGE_REMINDERS__START_HOUR": "10"},
        "reminders.days_ahead",
        5,
    ),
]


@pytest.mark.parametrize(
    ("text", "env", "dotted", "expected"),
    [case[1:] for case in ENV_OVERRIDES],
    ids=[case[0] for case in ENV_OVERRIDES],
)
def test_environment_override(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    env: dict[str, str],
    dotted: str,
    expected: Any,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(write_settings(tmp_path, text))
    assert dig(settings, dotted) == expected


def test_env_sets_one_option_of_a_channel_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BRIDGE_CHANNELS__SMS__FOLDER", "elsewhere")
    text = "channels:\n  sms: {plugin: outbox, folder: outbox}\n  email: {plugin: outbox}\n"
    settings = load_settings(write_settings(tmp_path, text))
    sms = settings.channels[Channel.SMS]
    assert (sms.plugin, sms.options) == ("outbox", {"folder": "elsewhere"})
    assert settings.channels[Channel.EMAIL].options == {}


def test_bridge_config_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_settings(tmp_path, "clinic:\n  name: Named Clinic\n")
    monkeypatch.setenv("BRIDGE_CONFIG", str(path))
    settings = load_settings()
    assert settings.clinic.name == "Named Clinic"
    assert settings.source_file == path


def test_an_explicit_file_beats_bridge_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BRIDGE_CONFIG", str(write_settings(tmp_path, "clinic:\n  name: Env\n")))
    explicit = write_settings(tmp_path, "clinic:\n  name: Explicit\n", name="other.yaml")
    assert load_settings(explicit).clinic.name == "Explicit"


def test_relative_bridge_config_is_read_from_the_cwd(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clean_environment / "site.yaml").write_text("clinic:\n  name: Relative\n")
    monkeypatch.setenv("BRIDGE_CONFIG", "site.yaml")
    settings = load_settings()
    assert settings.clinic.name == "Relative"
    assert settings.base_dir == clean_environment


# --- the secrets folder -----------------------------------------------------------------------

SECRETS = [
    pytest.param(
        "",
        {},
        "s3cret-from-file",
        id="file only",
    ),
    pytest.param(
        "host:\n  password: from-yaml\n",
        {},
        "s3cret-from-file",
        id="file beats yaml",
    ),
    pytest.param(
        "host:\n  password: from-yaml\n",
        {"BRIDGE_HOST__PASSWORD": "from-env"},
        "from-env",
        id="env beats file",
    ),
]


@pytest.mark.parametrize(("text", "env", "expected"), SECRETS)
def test_secrets_folder(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    env: dict[str, str],
    expected: str,
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "host__password").write_text("s3cret-from-file")
    monkeypatch.setenv("BRIDGE_SECRETS_DIR", str(secrets))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(write_settings(tmp_path, text))
    assert settings.host.password is not None
    assert settings.host.password.get_secret_value() == expected
    assert expected not in repr(settings.host)


def test_password_is_filled_into_the_host_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BRIDGE_HOST__PASSWORD", "p@ss word")
    path = write_settings(tmp_path, "host:\n  url: mysql+pymysql://bridge@127.0.0.1:3306/openemr\n")
    url = make_url(load_settings(path).host_url() or "")
    assert (url.username, url.password, url.host, url.database) == (
        "bridge",
        "p@ss word",
        "127.0.0.1",
        "openemr",
    )


def test_missing_secrets_folder_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no-such-secrets"
    message = error_of(None, {"BRIDGE_SECRETS_DIR": str(missing)}, monkeypatch)
    assert "BRIDGE_SECRETS_DIR" in message
    assert str(missing) in message


def test_bad_secret_file_value_names_the_secret_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "reminders__start_hour").write_text("25")
    path = write_settings(tmp_path, "mode: testing\n")
    message = error_of(path, {"BRIDGE_SECRETS_DIR": str(secrets)}, monkeypatch)
    assert str(secrets / "reminders__start_hour") in message
    assert str(path) not in message


# --- errors -----------------------------------------------------------------------------------

FILE = "<file>"  # replaced by the settings file's path

ERRORS = [
    # id, yaml text, env, fragments the one-line message must contain
    (
        "invalid yaml",
        "mode: testing\nclinic:\n  name: x\n  - item\n",
        {},
        [FILE, "line 4", "not valid YAML"],
    ),
    ("tab in yaml", "clinic:\n\tname: x\n", {}, [FILE, "line 2", "not valid YAML"]),
    ("top level is a list", "- clinic\n- host\n", {}, [FILE, "expected a mapping"]),
    ("top level is text", "just some text\n", {}, [FILE, "expected a mapping"]),
    ("unknown section", "clinc:\n  name: x\n", {}, [FILE, "clinc", "unknown key"]),
    ("unknown key", "clinic:\n  nmae: x\n", {}, [FILE, "clinic.nmae", "unknown key"]),
    (
        "unknown key from env",
        "",
        {"BRIDGE_CLINIC__NMAE": "x"},
        ["environment BRIDGE_CLINIC__NMAE", "clinic.nmae", "unknown key"],
    ),
    (
        "start_hour 25",
        "reminders:\n  start_hour: 25\n",
        {},
        [FILE, "reminders.start_hour = 25", "less than or equal to 23"],
    ),
    (
        "start_hour 25 from env",
        "reminders:\n  start_hour: 8\n",
        {"BRIDGE_REMINDERS__START_HOUR": "25"},
        ["environment BRIDGE_REMINDERS__START_HOUR", "reminders.start_hour = '25'", "23"],
    ),
    (
        "negative start_hour",
        "reminders:\n  start_hour: -1\n",
        {},
        [FILE, "reminders.start_hour = -1", "greater than or equal to 0"],
    ),
    (
        "end_hour equal to start_hour",
        "reminders:\n  start_hour: 10\n  end_hour: 10\n",
        {},
        [FILE, "reminders.end_hour = 10", "must be after start_hour (10)"],
    ),
    (
        "end_hour before start_hour",
        "reminders:\n  start_hour: 9\n  end_hour: 8\n",
        {},
        [FILE, "reminders.end_hour = 8", "must be after start_hour (9)"],
    ),
    (
        "caller_id not a number",
        "clinic:\n  caller_id: '12345'\n",
        {},
        [FILE, "clinic.caller_id = '12345'", "phone number in international form"],
    ),
    (
        "clinic phone too short",
        "clinic:\n  phone: '+1 202 555 01'\n",
        {},
        [FILE, "clinic.phone = '+1 202 555 01'", "valid phone number"],
    ),
    (
        "clinic phone is words",
        "clinic:\n  phone: call the desk\n",
        {},
        [FILE, "clinic.phone = 'call the desk'", "phone number"],
    ),
    (
        "bad time zone",
        "clinic:\n  timezone: Mars/Olympus\n",
        {},
        [FILE, "clinic.timezone = 'Mars/Olympus'", "IANA time zone"],
    ),
    (
        "bad time zone from env",
        "",
        {"BRIDGE_CLINIC__TIMEZONE": "Nowhere/Town"},
        ["environment BRIDGE_CLINIC__TIMEZONE", "clinic.timezone = 'Nowhere/Town'", "IANA"],
    ),
    (
        "bad region",
        "clinic:\n  region: XX\n",
        {},
        [FILE, "clinic.region = 'XX'", "two-letter country code"],
    ),
    (
        "bad resend_interval",
        "reminders:\n  resend_interval: 5h\n",
        {},
        [FILE, "reminders.resend_interval = '5h'", "'immediate', '3h', '6h', '12h' or '24h'"],
    ),
    (
        "default_type not allowed",
        "reminders:\n  default_type: email\n  allowed_types: [sms]\n",
        {},
        [FILE, "reminders", "default_type email is not in allowed_types"],
    ),
    (
        "unknown channel",
        "reminders:\n  channels: [sms, fax]\n",
        {},
        [FILE, "reminders.channels.1 = 'fax'", "'sms', 'email' or 'voice'"],
    ),
    (
        "channel list not JSON",
        "",
        {"BRIDGE_REMINDERS__CHANNELS": "sms"},
        ["environment BRIDGE_REMINDERS__CHANNELS", "reminders.channels = 'sms'", "list"],
    ),
    ("bad mode", "mode: production\n", {}, [FILE, "mode = 'production'", "'testing' or 'live'"]),
    ("port too big", "web:\n  port: 99999\n", {}, [FILE, "web.port = 99999", "65535"]),
    (
        "port not a number from env",
        "",
        {"BRIDGE_WEB__PORT": "abc"},
        ["environment BRIDGE_WEB__PORT", "web.port = 'abc'", "integer"],
    ),
    (
        "bad lead time",
        "reminders:\n  lead_times: [soon]\n",
        {},
        [FILE, "reminders.lead_times.0 = 'soon'", "duration such as 90m, 2h or 2d"],
    ),
    (
        "bad email",
        "testing:\n  email: not-an-email\n",
        {},
        [FILE, "testing.email = 'not-an-email'", "email address"],
    ),
    (
        "days_ahead 0",
        "reminders:\n  days_ahead: 0\n",
        {},
        [FILE, "reminders.days_ahead = 0", "greater than or equal to 1"],
    ),
]


@pytest.mark.parametrize(
    ("text", "env", "fragments"),
    [case[1:] for case in ERRORS],
    ids=[case[0] for case in ERRORS],
)
def test_error_is_one_line_naming_where_key_value_and_rule(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    env: dict[str, str],
    fragments: list[str],
) -> None:
    path = write_settings(tmp_path, text)
    message = error_of(path, env, monkeypatch)
    for fragment in fragments:
        assert fragment.replace(FILE, str(path)) in message
    if not any(f.startswith("environment") for f in fragments):
        assert message.startswith(str(path))


@pytest.mark.parametrize("source", ["--config", "BRIDGE_CONFIG"])
def test_named_file_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str) -> None:
    missing = tmp_path / "conf" / "missing.yaml"
    if source == "BRIDGE_CONFIG":
        message = error_of(None, {"BRIDGE_CONFIG": str(missing)}, monkeypatch)
    else:
        message = error_of(missing, {}, monkeypatch)
    assert message == f"{missing}: settings file not found (named by {source})"


SECRET_VALUE = "hunter2-do-not-print"

SECRET_ERRORS = [
    ("secret_key as a list", f"web:\n  secret_key: [{SECRET_VALUE}]\n", "web.secret_key"),
    ("secret_key as a mapping", f"web:\n  secret_key: {{k: {SECRET_VALUE}}}\n", "web.secret_key"),
    ("password as a list", f"host:\n  password: [{SECRET_VALUE}]\n", "host.password"),
]


@pytest.mark.parametrize(
    ("text", "key"),
    [case[1:] for case in SECRET_ERRORS],
    ids=[case[0] for case in SECRET_ERRORS],
)
def test_secret_value_is_never_echoed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, key: str
) -> None:
    path = write_settings(tmp_path, text)
    message = error_of(path, {}, monkeypatch)
    assert SECRET_VALUE not in message
    assert f"{key} = '***'" in message
    assert message.startswith(str(path))


def test_bad_list_item_from_env_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_settings(tmp_path, "reminders:\n  channels: [sms]\n")
    message = error_of(path, {"BRIDGE_REMINDERS__CHANNELS": '["sms","fax"]'}, monkeypatch)
    assert message.startswith("environment BRIDGE_REMINDERS__CHANNELS")
    assert str(path) not in message


def test_bad_window_from_env_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_settings(tmp_path, "reminders:\n  start_hour: 9\n")
    message = error_of(path, {"BRIDGE_REMINDERS__END_HOUR": "5"}, monkeypatch)
    assert "BRIDGE_REMINDERS__END_HOUR" in message
    assert str(path) not in message


def test_settings_file_not_utf8_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "conf" / "settings.yaml"
    path.parent.mkdir()
    path.write_bytes("clinic:\n  name: Clinica Sant'Agnese è\n".encode("cp1252"))
    message = error_of(path, {}, monkeypatch)
    assert message.startswith(str(path))
    assert "UTF-8" in message


@pytest.mark.parametrize("where", ["yaml", "env"])
def test_empty_time_zone_means_the_hosts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    if where == "env":
        monkeypatch.setenv("BRIDGE_CLINIC__TIMEZONE", "")
        path = write_settings(tmp_path, "")
    else:
        path = write_settings(tmp_path, "clinic:\n  timezone: ''\n")
    assert not load_settings(path).clinic.timezone


# --- relative paths ---------------------------------------------------------------------------


def test_relative_sqlite_store_url_is_resolved_against_the_settings_folder(
    tmp_path: Path, clean_environment: Path
) -> None:
    path = write_settings(tmp_path, "store:\n  url: sqlite:///var/store.sqlite\n")
    settings = load_settings(path)
    assert settings.store_url() == f"sqlite:///{tmp_path / 'conf' / 'var' / 'store.sqlite'}"
    assert str(clean_environment) not in settings.store_url()


def test_relative_store_url_from_env_is_resolved_against_the_settings_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BRIDGE_STORE__URL", "sqlite:///data/env.sqlite")
    settings = load_settings(write_settings(tmp_path, ""))
    assert settings.store_url() == f"sqlite:///{tmp_path / 'conf' / 'data' / 'env.sqlite'}"


def test_relative_sqlite_host_url_is_resolved_against_the_settings_folder(tmp_path: Path) -> None:
    settings = load_settings(write_settings(tmp_path, "host:\n  url: sqlite:///host.sqlite\n"))
    assert settings.host_url() == f"sqlite:///{tmp_path / 'conf' / 'host.sqlite'}"


SQLITE_URLS = [
    ("relative", "sqlite:///var/x.sqlite", "sqlite:///{base}/var/x.sqlite"),
    ("dot relative", "sqlite:///./x.sqlite", "sqlite:///{base}/x.sqlite"),
    ("parent", "sqlite:///../x.sqlite", "sqlite:///{parent}/x.sqlite"),
    ("absolute", "sqlite:////srv/bridge/x.sqlite", "sqlite:////srv/bridge/x.sqlite"),
    ("memory", "sqlite:///:memory:", "sqlite:///:memory:"),
    ("bare memory", "sqlite://", "sqlite://"),
    (
        "not sqlite",
        "postgresql+psycopg://bridge@db/bridge",
        "postgresql+psycopg://bridge@db/bridge",
    ),
]


@pytest.mark.parametrize(
    ("url", "expected"), [case[1:] for case in SQLITE_URLS], ids=[case[0] for case in SQLITE_URLS]
)
def test_resolve_sqlite_url(tmp_path: Path, url: str, expected: str) -> None:
    base = tmp_path / "conf"
    assert resolve_sqlite_url(url, base) == expected.format(base=base, parent=tmp_path)


def test_settings_path_resolves_against_the_settings_folder(tmp_path: Path) -> None:
    settings = load_settings(write_settings(tmp_path, "templates:\n  folder: my-templates\n"))
    assert settings.templates.folder is not None
    assert settings.path(settings.templates.folder) == tmp_path / "conf" / "my-templates"
    assert settings.path("/srv/abs") == Path("/srv/abs")


# --- reminders helpers ------------------------------------------------------------------------

CLINIC_CHANNELS = [
    pytest.param({}, (Channel.SMS,), id="default sms"),
    pytest.param({"default_type": "email"}, (Channel.EMAIL,), id="default_type email"),
    pytest.param({"default_type": "call"}, (Channel.VOICE,), id="default_type call"),
    pytest.param(
        {"default_type": "call_sms"}, (Channel.VOICE, Channel.SMS), id="default_type call_sms"
    ),
    pytest.param({"default_type": "none"}, (), id="default_type none"),
    pytest.param(
        {"channels": ["email"], "default_type": "call"},
        (Channel.EMAIL,),
        id="channels beat default_type",
    ),
    pytest.param({"channels": ["voice", "sms"]}, (Channel.VOICE, Channel.SMS), id="order kept"),
    pytest.param(
        {"channels": ["email", "sms", "email"]},
        (Channel.EMAIL, Channel.SMS),
        id="duplicates dropped",
    ),
    pytest.param(
        {"channels": [], "default_type": "email"},
        (Channel.EMAIL,),
        id="empty channels means default_type",
    ),
]


@pytest.mark.parametrize(("values", "expected"), CLINIC_CHANNELS)
def test_clinic_channels(values: dict[str, Any], expected: tuple[Channel, ...]) -> None:
    assert RemindersSettings(**values).clinic_channels == expected


RESEND = [
    ("immediate", timedelta(0)),
    ("3h", timedelta(hours=3)),
    ("6h", timedelta(hours=6)),
    ("12h", timedelta(hours=12)),
    ("24h", timedelta(hours=24)),
]


@pytest.mark.parametrize(("interval", "delay"), RESEND, ids=[r[0] for r in RESEND])
def test_resend_delay(interval: str, delay: timedelta) -> None:
    assert RemindersSettings(resend_interval=interval).resend_delay == delay


DURATIONS = [
    ("90m", timedelta(minutes=90)),
    ("45 min", timedelta(minutes=45)),
    ("2h", timedelta(hours=2)),
    ("1.5h", timedelta(minutes=90)),
    ("3H", timedelta(hours=3)),
    (" 2d ", timedelta(days=2)),
    ("0m", timedelta(0)),
    (2, timedelta(hours=2)),
    (1.5, timedelta(minutes=90)),
    (timedelta(minutes=5), timedelta(minutes=5)),
    pytest.param(
        "2",
        timedelta(hours=2),
        id="text bare number",
    ),
]


@pytest.mark.parametrize(("value", "expected"), DURATIONS)
def test_parse_duration(value: Any, expected: timedelta) -> None:
    assert parse_duration(value) == expected


BAD_DURATIONS = [
    "",
    "h",
    "2w",
    "two hours",
    "-1h",
    "2h30m",
    pytest.param(
        -1,
    ),
]


@pytest.mark.parametrize("value", BAD_DURATIONS)
def test_parse_duration_rejects(value: Any) -> None:
    with pytest.raises(ValueError, match="expected a duration such as 90m, 2h or 2d"):
        parse_duration(value)


def test_settings_can_be_built_in_code_with_overrides(tmp_path: Path) -> None:
    settings = load_settings(write_settings(tmp_path, "mode: testing\n"), mode="live")
    assert settings.mode == "live"
    assert isinstance(settings, Settings)


def test_dotenv_beside_the_settings_file(tmp_path: Path) -> None:
    folder = tmp_path / "install"
    folder.mkdir()
    (folder / "settings.yaml").write_text("host:\n  url: mysql+pymysql://bridge@db/openemr\n")
    (folder / ".env").write_text("BRIDGE_HOST__PASSWORD=from-dotenv\nBRIDGE_WEB__PORT=9001\n")
    settings = load_settings(folder / "settings.yaml")
    assert settings.host.password is not None
    assert settings.host.password.get_secret_value() == "from-dotenv"
    assert settings.web.port == 9001
    assert "from-dotenv" in (settings.host_url() or "")

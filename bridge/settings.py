"""Settings: ``settings.yaml`` read by pydantic-settings, overridden by ``BRIDGE_<SECTION>__<KEY>``.

Priority, highest first: values passed in code, environment variables, a ``.env`` file beside the
settings file (``BRIDGE_...=value`` lines; handy for a Windows service, which only sees machine
environment variables after a reboot), files in the secrets folder, then the YAML file. Lists
are overridden with JSON: ``BRIDGE_REMINDERS__CHANNELS='["sms","email"]'``.

The secrets folder is the one ``BRIDGE_SECRETS_DIR`` names (a named folder that does not exist is
an error). It holds one file per key, named ``<section>__<key>`` *without* the ``BRIDGE_`` prefix
(``host__password``, ``web__secret_key``; case does not matter); the file's content, stripped of
surrounding whitespace, is the value. A value read from it is never repeated in an error message.

An error names where the bad value came from: the environment variable (``BRIDGE_WEB__PORT``, or
``BRIDGE_REMINDERS__CHANNELS`` for one item of that list), the secrets file, or the YAML file.

Two surprises handled here: pydantic-settings silently skips a YAML file that does not exist (a
named file that is missing is an error here), and a Windows service does not start in the install
folder (relative paths in the file are resolved against the file's own folder, not the cwd).
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    NestedSecretsSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    YamlConfigSettingsSource,
)

from bridge.booking.settings import BookingSettings, RecallSettings
from bridge.delivery.settings import DeliverySettings
from bridge.errors import ConfigError
from bridge.hl7.settings import Hl7Settings
from bridge.model import Channel, ReminderType
from bridge.patient.settings import PatientSettings
from bridge.settings_errors import (
    ENV_PREFIX,
    describe_settings_error,
    describe_validation_error,
)
from bridge.settings_values import (
    RESEND_INTERVALS,
    Duration,
    Email,
    OptionalText,
    PhoneNumber,
    Region,
    Section,
    TimeZoneName,
    parse_duration,
)
from bridge.yamlfile import read_yaml

__all__ = ["Settings", "load_settings", "parse_duration"]

SECRETS_DIR_VARIABLE = f"{ENV_PREFIX}SECRETS_DIR"
DEFAULT_FILE = "settings.yaml"

_yaml_path: ContextVar[Path | None] = ContextVar("_yaml_path", default=None)
# The sources the last ``Settings()`` of this context read, in priority order: an error message
# asks them where the bad value came from.
_sources_read: ContextVar[list[PydanticBaseSettingsSource] | None] = ContextVar(
    "_sources_read", default=None
)


class ClinicSettings(Section):
    """Who the messages come from."""

    name: str = Field("Demo Clinic", description="Agency name announced in calls and SMS.")
    phone: PhoneNumber = Field(None, description="Agency phone patients call back (E.164).")
    caller_id: PhoneNumber = Field(None, description="Number shown on caller ID; must be valid.")
    website: str = Field("", description="Clinic website, for templates.")
    email: Email = Field(None, description="Clinic email, for templates and replies.")
    timezone: TimeZoneName = Field(
        None, description="IANA time zone of the clinic; empty = read from the host, else UTC."
    )
    region: Region = Field("US", description="Country for phone numbers written without +code.")
    language: str = Field("en", description="Language for patients whose language is unknown.")


class TestingSettings(Section):
    """Where everything goes in testing mode."""

    phone: PhoneNumber = Field(None, description="Testing phone: every SMS and call goes here.")
    email: Email = Field(None, description="Testing email: every email goes here.")


class HostSettings(Section):
    """The practice system the bridge reads and writes back to."""

    source: str = Field("sql-poll", description="Source plugin (entry point bridge.sources).")
    url: OptionalText = Field(None, description="SQLAlchemy URL of the host database.")
    password: SecretStr | None = Field(
        None, description="Host database password, if not in the URL (use the environment)."
    )
    mapping: str = Field("openemr", description="Mapping name (mappings/NAME.yaml) or a path.")
    writer: str | None = Field(
        "sql", description="Writer plugin for the host (entry point bridge.writers); empty = none."
    )
    poll_seconds: int = Field(30, ge=1, description="Seconds between two polls of the host.")


class StoreSettings(Section):
    """The bridge's own database."""

    url: str = Field("sqlite:///var/bridge.sqlite", description="SQLAlchemy URL of the store.")


class RemindersSettings(Section):
    """When and how reminders go out."""

    enabled: bool = Field(True, description="Global switch: false stops every automated send.")
    days_ahead: int = Field(
        2, ge=1, le=60, description="Remind appointments from tomorrow through N days out."
    )
    lead_times: list[Duration] = Field(
        default_factory=list, description="Extra reminders this long before the start (48h, 2h)."
    )
    start_hour: int = Field(9, ge=0, le=23, description="First hour (clinic time) to send.")
    end_hour: int = Field(19, ge=1, le=24, description="Sending stops at this hour (clinic time).")
    delay_seconds: float = Field(0, ge=0, description="Delay between two reminders (pacing).")
    min_lead_hours: float = Field(
        0,
        ge=0,
        description="No reminder goes out later than this many hours before the appointment "
        "(so none for one booked at shorter notice).",
    )
    one_per_day: bool = Field(False, description="At most one reminder per patient per day.")
    channels: list[Channel] | None = Field(
        None, description="Channels the clinic sends on; empty = those of default_type."
    )
    default_type: ReminderType = Field(
        ReminderType.SMS, description="Reminder type for patients without a preference."
    )
    allowed_types: list[ReminderType] = Field(
        default_factory=lambda: [
            ReminderType.CALL,
            ReminderType.SMS,
            ReminderType.CALL_SMS,
            ReminderType.EMAIL,
        ],
        description="Reminder types a patient's preference may choose.",
    )
    redials: int = Field(2, ge=0, le=10, description="Retries of a failed call or SMS.")
    resends: int = Field(0, ge=0, le=10, description="Resends of failed messages after a job.")
    resend_interval: Literal["immediate", "3h", "6h", "12h", "24h"] = Field(
        "3h", description="Wait before a resend."
    )
    portal_confirmation_days: int = Field(
        3, ge=0, le=60, description="Days before the appointment a patient may confirm online."
    )
    consent: Literal["explicit", "unless_refused"] = Field(
        "explicit",
        description="explicit: send only on a recorded YES; unless_refused: all but a recorded NO.",
    )
    providers_off: list[str] = Field(
        default_factory=list, description="Host keys of providers whose patients get no reminders."
    )
    services_off: list[str] = Field(
        default_factory=list, description="Host keys of services (visit types) with no reminders."
    )

    # Checks across keys are field validators on the later key (they see the earlier ones in
    # ``info.data``), so that an error names that key and its value rather than the section.

    @field_validator("end_hour")
    @classmethod
    def _after_start(cls, end_hour: int, info: ValidationInfo) -> int:
        start_hour = info.data.get("start_hour")
        if start_hour is not None and end_hour <= start_hour:
            raise ValueError(f"must be after start_hour ({start_hour})")
        return end_hour

    @field_validator("channels")
    @classmethod
    def _empty_means_unset(cls, channels: list[Channel] | None) -> list[Channel] | None:
        return channels or None

    @field_validator("allowed_types")
    @classmethod
    def _allow_default(
        cls, allowed: list[ReminderType], info: ValidationInfo
    ) -> list[ReminderType]:
        default = info.data.get("default_type")
        if default is not None and default != ReminderType.NONE and default not in allowed:
            raise ValueError(f"default_type {default.value} is not in allowed_types")
        return allowed

    @property
    def clinic_channels(self) -> tuple[Channel, ...]:
        """The channels the clinic sends on: ``channels`` if set (not empty), else
        ``default_type``'s."""
        if self.channels is not None:
            return tuple(dict.fromkeys(self.channels))
        return self.default_type.channels

    @property
    def resend_delay(self) -> timedelta:
        return RESEND_INTERVALS[self.resend_interval]


class TemplateLimits(Section):
    """Per-element character limits (the seed products' defaults)."""

    name: int = Field(25, ge=1, description="Patient name.")
    datetime: int = Field(16, ge=1, description="Appointment date and time.")
    doctor: int = Field(22, ge=1, description="Provider name.")
    office: int = Field(5, ge=1, description="Office or room.")


class TemplateSettings(Section):
    """Message templates."""

    folder: Path | None = Field(
        None, description="Folder of clinic templates overriding built-ins."
    )
    limits: TemplateLimits = Field(default_factory=TemplateLimits)
    sms_budget: int = Field(
        160, ge=70, le=1600, description="Warn when an SMS is longer (133 or 160 typical)."
    )


class ChannelConfig(BaseModel):
    """Which plugin delivers one channel; other keys are that plugin's own typed options."""

    model_config = ConfigDict(extra="allow")

    plugin: str = Field("outbox", description="Channel plugin (entry point bridge.channels).")

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


def _default_channels() -> dict[Channel, ChannelConfig]:
    return {channel: ChannelConfig() for channel in Channel}


class WebSettings(Section):
    """The bridge's web server: patient pages and provider webhooks."""

    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8470, ge=1, le=65535, description="Port to listen on.")
    base_url: str = Field("http://127.0.0.1:8470", description="Public URL used in links.")
    secret_key: SecretStr | None = Field(
        None, description="Key that signs patient links (set it in the environment)."
    )


class LogSettings(Section):
    """Logging; patient data never reaches the log at any level."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="DEBUG, INFO, WARNING or ERROR."
    )
    file: Path | None = Field(None, description="Log file; empty = standard error.")


class Settings(BaseSettings):
    """Every option of the bridge. See the README's settings reference."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
    )

    mode: Literal["testing", "live"] = Field(
        "testing", description="testing sends everything to the testing contacts; live to patients."
    )
    clinic: ClinicSettings = Field(default_factory=ClinicSettings)
    testing: TestingSettings = Field(default_factory=TestingSettings)
    host: HostSettings = Field(default_factory=HostSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    reminders: RemindersSettings = Field(default_factory=RemindersSettings)
    templates: TemplateSettings = Field(default_factory=TemplateSettings)
    channels: dict[Channel, ChannelConfig] = Field(
        default_factory=_default_channels,
        description="Per channel (sms, email, voice): `plugin` and that plugin's own options.",
    )
    web: WebSettings = Field(default_factory=WebSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    # Feature sections: each is defined in its feature's own module and added here, one line
    # each, below this comment (HL7 feed, delivery channels, patient pages...).
    hl7: Hl7Settings = Field(default_factory=Hl7Settings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    patient: PatientSettings = Field(default_factory=PatientSettings)
    booking: BookingSettings = Field(default_factory=BookingSettings)
    recall: RecallSettings = Field(default_factory=RecallSettings)

    # Where the settings came from; relative paths are resolved against ``base_dir``.
    source_file: Path | None = Field(None, exclude=True)
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _yaml_path.get()
        dotenv = (path.parent if path is not None else Path.cwd()) / ".env"
        if dotenv.is_file():
            sources.append(DotEnvSettingsSource(settings_cls, env_file=dotenv))
        secrets_dir = secrets_folder()
        if secrets_dir is not None:
            sources.append(
                NestedSecretsSettingsSource(
                    file_secret_settings,
                    secrets_dir=secrets_dir,
                    secrets_dir_missing="error",
                    # Without it the source would inherit env_prefix and read BRIDGE_host__password.
                    secrets_prefix="",
                    secrets_nested_delimiter="__",
                    secrets_case_sensitive=False,
                )
            )
        if path is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        read = _sources_read.get()
        if read is not None:
            read[:] = sources
        return tuple(sources)

    def path(self, value: Path | str) -> Path:
        """Resolve a path from the settings against the settings file's folder."""
        candidate = Path(value).expanduser()
        return candidate if candidate.is_absolute() else (self.base_dir / candidate).resolve()

    def store_url(self) -> str:
        """The store URL with a relative SQLite path resolved against ``base_dir``."""
        return resolve_sqlite_url(self.store.url, self.base_dir)

    def host_url(self) -> str | None:
        """The host URL, with a relative SQLite path resolved and the password filled in."""
        if self.host.url is None:
            return None
        url = resolve_sqlite_url(self.host.url, self.base_dir)
        if self.host.password is not None:
            from sqlalchemy.engine import make_url

            url = (
                make_url(url)
                .set(password=self.host.password.get_secret_value())
                .render_as_string(hide_password=False)
            )
        return url


def resolve_sqlite_url(url: str, base_dir: Path) -> str:
    """``sqlite:///var/x.sqlite`` relative to ``base_dir``; absolute and memory URLs unchanged."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return url
    rest = url[len(prefix) :]
    if not rest or rest.startswith("/") or rest.startswith(":memory:") or rest.startswith("file:"):
        return url
    return prefix + str((base_dir / rest).resolve())


def resolve_file(explicit: str | os.PathLike[str] | None) -> Path | None:
    """Which settings file to read: ``--config``, else ``BRIDGE_CONFIG``, else ``./settings.yaml``.

    A named file is returned whether or not it exists (the caller reports it missing); an
    unnamed ``./settings.yaml`` that does not exist means "defaults and environment only".
    """
    named = explicit or os.environ.get("BRIDGE_CONFIG")
    if named:
        return Path(named).expanduser().resolve()
    default = Path.cwd() / DEFAULT_FILE
    return default.resolve() if default.exists() else None


def secrets_folder() -> Path | None:
    """The secrets folder ``BRIDGE_SECRETS_DIR`` names, if any; a named folder must exist."""
    named = os.environ.get(SECRETS_DIR_VARIABLE)
    if not named:
        return None
    folder = Path(named).expanduser().resolve()
    if not folder.is_dir():
        problem = "not a folder" if folder.exists() else "secrets folder not found"
        raise ConfigError(f"environment {SECRETS_DIR_VARIABLE}: {folder}: {problem}")
    return folder


def load_settings(explicit: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Load settings or raise ``ConfigError`` with one line naming file, key, value, expectation."""
    path = resolve_file(explicit)
    if path is not None and not path.is_file():
        where = "--config" if explicit else "BRIDGE_CONFIG"
        raise ConfigError(f"{path}: settings file not found (named by {where})")
    if path is not None:
        _check_yaml(path)
    sources: list[PydanticBaseSettingsSource] = []
    path_token, sources_token = _yaml_path.set(path), _sources_read.set(sources)
    try:
        base = path.parent if path is not None else Path.cwd()
        return Settings(source_file=path, base_dir=base, **overrides)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, path, sources)) from exc
    except SettingsError as exc:
        raise ConfigError(describe_settings_error(exc)) from exc
    finally:
        _yaml_path.reset(path_token)
        _sources_read.reset(sources_token)


def _check_yaml(path: Path) -> None:
    """Fail with the file and line when the file is not UTF-8, not YAML or not a mapping."""
    data = read_yaml(path, ConfigError, "settings file")
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")

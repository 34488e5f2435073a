"""Mappings: the shipped OpenEMR mapping, status classification, and errors that cite the file and
the dotted path inside it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from bridge.errors import ConfigError, MappingError
from bridge.mapping import mapping_path, read_mapping_data, validate_mapping
from bridge.mapping.sql import SqlMapping, Statuses
from bridge.model import Channel, StatusClass

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "mappings" / "openemr.yaml"


def load(path: Path) -> SqlMapping:
    return validate_mapping(SqlMapping, read_mapping_data(path), path)


@pytest.fixture(scope="module")
def shipped_data() -> dict[str, Any]:
    return read_mapping_data(SHIPPED)


@pytest.fixture(scope="module")
def openemr() -> SqlMapping:
    return load(mapping_path("openemr"))


# --- the shipped OpenEMR mapping --------------------------------------------------------------


def test_builtin_name_finds_the_shipped_file() -> None:
    assert mapping_path("openemr") == SHIPPED
    assert SHIPPED.is_file()


SHIPPED_FACTS = [
    ("kind", "sql"),
    ("name", "OpenEMR"),
    ("appointments.table", "openemr_postcalendar_events"),
    ("appointments.key", "pc_eid"),
    ("appointments.columns.patient", "pc_pid"),
    ("appointments.columns.status", "pc_apptstatus"),
    ("appointments.columns.start_time", "pc_startTime"),
    ("appointments.columns.group", "pc_multiple"),
    ("appointments.recurrence", "openemr"),
    ("appointments.group_visits", True),
    ("appointments.no_patient", ["", "0"]),
    ("appointments.duration_unit", "seconds"),
    ("services.patient_kinds", [0]),
    ("patients.key", "pid"),
    ("patients.columns.mobile", "phone_cell"),
    ("statuses.host_list.where", {"list_id": "apptstat"}),
    ("statuses.host_list.checked_in_flag", "toggle_setting_1"),
    ("statuses.callback", "CALL"),
    ("statuses.unknown", "ineligible"),
    ("timezone.name", "gbl_time_zone"),
    ("after_send.enabled", True),
]


@pytest.mark.parametrize(("dotted", "expected"), SHIPPED_FACTS, ids=[f[0] for f in SHIPPED_FACTS])
def test_shipped_mapping_value(openemr: SqlMapping, dotted: str, expected: Any) -> None:
    value: Any = openemr
    for part in dotted.split("."):
        value = getattr(value, part)
    assert value == expected


def test_shipped_consent_columns_send_only_on_yes(openemr: SqlMapping) -> None:
    consent = {
        channel: (c.column, c.given, c.refused) for channel, c in openemr.patients.consent.items()
    }
    assert consent == {
        Channel.SMS: ("hipaa_allowsms", ["YES"], ["NO"]),
        Channel.EMAIL: ("hipaa_allowemail", ["YES"], ["NO"]),
        Channel.VOICE: ("hipaa_voice", ["YES"], ["NO"]),
    }


def test_shipped_confirmed_codes_per_channel(openemr: SqlMapping) -> None:
    assert openemr.statuses.confirmed == {
        Channel.SMS: "SMS",
        Channel.EMAIL: "EMAIL",
        Channel.VOICE: "AVM",
    }


# Every status of OpenEMR's stock apptstat list (docs: OPENEMR.md).
OPENEMR_CODES = {"-", "*", "+", "x", "?", "@", "~", "!", "#", "<", ">", "$", "%", "^"}
OPENEMR_CODES |= {"AVM", "SMS", "EMAIL", "CALL"}


def test_shipped_mapping_lists_every_stock_openemr_status(openemr: SqlMapping) -> None:
    assert openemr.statuses.known_codes() == OPENEMR_CODES


STATUS_TABLE = [
    # code, class, eligible, protected
    ("-", StatusClass.SCHEDULED, True, False),
    ("*", StatusClass.SCHEDULED, True, False),
    ("+", StatusClass.SCHEDULED, True, False),
    ("#", StatusClass.SCHEDULED, True, False),
    ("x", StatusClass.CANCELLED, False, True),
    ("%", StatusClass.CANCELLED, False, True),
    ("?", StatusClass.NO_SHOW, False, True),
    ("@", StatusClass.CHECKED_IN, False, True),
    ("~", StatusClass.CHECKED_IN, False, True),
    ("<", StatusClass.CHECKED_IN, False, True),
    (">", StatusClass.CHECKED_OUT, False, True),
    ("!", StatusClass.CHECKED_OUT, False, True),
    ("$", StatusClass.CHECKED_OUT, False, True),
    ("SMS", StatusClass.CONFIRMED, True, False),
    ("EMAIL", StatusClass.CONFIRMED, True, False),
    ("AVM", StatusClass.CONFIRMED, True, False),
    ("^", StatusClass.PENDING, True, False),
    ("CALL", StatusClass.OTHER, True, False),
    # a status a site added that the mapping does not list: unknown = ineligible
    ("ZZ", StatusClass.OTHER, False, False),
]


@pytest.mark.parametrize(
    ("code", "status_class", "eligible", "protected"),
    STATUS_TABLE,
    ids=[row[0] for row in STATUS_TABLE],
)
def test_openemr_status(
    openemr: SqlMapping, code: str, status_class: StatusClass, eligible: bool, protected: bool
) -> None:
    status = openemr.statuses.host_status(code)
    assert (status.code, status.status_class, status.eligible, status.protected) == (
        code,
        status_class,
        eligible,
        protected,
    )
    assert openemr.statuses.classify(code) == status_class


HOST_FLAGS = [
    # id, code, checked_in, checked_out, class, eligible, protected
    ("unknown site status checked in", "ZZ", True, False, StatusClass.CHECKED_IN, False, True),
    ("unknown site status checked out", "ZZ", False, True, StatusClass.CHECKED_OUT, False, True),
    ("scheduled but flagged in", "-", True, False, StatusClass.CHECKED_IN, False, True),
    ("confirmed but flagged out", "SMS", False, True, StatusClass.CHECKED_OUT, False, True),
    ("out beats in", "-", True, True, StatusClass.CHECKED_OUT, False, True),
    ("cancelled stays cancelled", "x", True, False, StatusClass.CANCELLED, False, True),
    ("no-show stays no-show", "?", False, True, StatusClass.NO_SHOW, False, True),
]


@pytest.mark.parametrize(
    ("code", "checked_in", "checked_out", "status_class", "eligible", "protected"),
    [row[1:] for row in HOST_FLAGS],
    ids=[row[0] for row in HOST_FLAGS],
)
def test_host_flags_win(
    openemr: SqlMapping,
    code: str,
    checked_in: bool,
    checked_out: bool,
    status_class: StatusClass,
    eligible: bool,
    protected: bool,
) -> None:
    status = openemr.statuses.host_status(code, checked_in=checked_in, checked_out=checked_out)
    assert (status.status_class, status.eligible, status.protected) == (
        status_class,
        eligible,
        protected,
    )


def test_title_defaults_to_the_code(openemr: SqlMapping) -> None:
    assert openemr.statuses.host_status("-", "None").title == "None"
    assert openemr.statuses.host_status("AVM").title == "AVM"


UNKNOWN_POLICY = [
    # id, unknown, code, checked_in, eligible, protected
    ("ineligible policy", "ineligible", "NEW", False, False, False),
    ("eligible policy", "eligible", "NEW", False, True, False),
    ("eligible policy but checked in", "eligible", "NEW", True, False, True),
    ("listed ineligible code ignores policy", "eligible", "HOLD", False, False, True),
    ("eligible list cannot make cancelled eligible", "eligible", "x", False, False, True),
]


@pytest.mark.parametrize(
    ("unknown", "code", "checked_in", "eligible", "protected"),
    [row[1:] for row in UNKNOWN_POLICY],
    ids=[row[0] for row in UNKNOWN_POLICY],
)
def test_unknown_policy(
    unknown: str, code: str, checked_in: bool, eligible: bool, protected: bool
) -> None:
    statuses = Statuses.model_validate(
        {"eligible": ["-", "x"], "protected": ["HOLD"], "cancelled": ["x"], "unknown": unknown}
    )
    status = statuses.host_status(code, checked_in=checked_in)
    assert (status.eligible, status.protected) == (eligible, protected)


# --- errors -----------------------------------------------------------------------------------


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        data = data[part]
    data[last] = value


def _delete(data: dict[str, Any], dotted: str) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        data = data[part]
    del data[last]


EDIT_ERRORS = [
    # id, edits (dotted path -> value, or None to delete), fragments of the message
    (
        "unknown key deep inside",
        {"appointments.columns.pateint": "pc_pid"},
        ["appointments.columns.pateint: unknown key"],
    ),
    (
        "unknown top-level key",
        {"statusses": {}},
        ["statusses: unknown key"],
    ),
    (
        "typo in consent",
        {"patients.consent.sms.colum": "hipaa_allowsms"},
        ["patients.consent.sms.colum: unknown key"],
    ),
    (
        "missing required column",
        {"appointments.columns.patient": None},
        ["appointments.columns.patient: missing, a value is required"],
    ),
    (
        "missing required section",
        {"statuses.eligible": None},
        ["statuses.eligible: missing, a value is required"],
    ),
    ("wrong version", {"version": 2}, ["version = 2: expected 1"]),
    ("version as text", {"version": "1"}, ["version = '1': expected 1"]),
    ("no version", {"version": None}, ["version = None: expected 1"]),
    ("wrong kind", {"kind": "hl7"}, ["kind = 'hl7'", "'sql'"]),
    (
        "recurrence without recurrence columns",
        {"appointments.columns.recurrence_spec": None},
        [
            "appointments",
            "recurrence needs columns",
            "recurrence_type, recurrence_spec and end_date",
        ],
    ),
    (
        "recurrence without end date",
        {"appointments.columns.end_date": None},
        ["appointments", "recurrence needs columns"],
    ),
    (
        "group_visits without group column",
        {"appointments.columns.group": None},
        ["appointments", "group_visits needs columns.group"],
    ),
    (
        "no start",
        {"appointments.columns.start_time": None},
        ["appointments.columns", "give either 'start' or both 'date' and 'start_time'"],
    ),
    (
        "unknown channel",
        {"statuses.confirmed.fax": "FAX"},
        ["statuses.confirmed.fax", "'sms', 'email' or 'voice'"],
    ),
    (
        "bad unknown policy",
        {"statuses.unknown": "maybe"},
        ["statuses.unknown = 'maybe'", "'ineligible' or 'eligible'"],
    ),
    (
        "log column not in the vocabulary",
        {"after_send.log.columns.pid": "patient_name"},
        ["after_send.log.columns.pid = 'patient_name'", "'patient_key'"],
    ),
    (
        "bad duration unit",
        {"appointments.duration_unit": "hours"},
        ["appointments.duration_unit = 'hours'", "'seconds' or 'minutes'"],
    ),
]


@pytest.mark.parametrize(
    ("edits", "fragments"),
    [row[1:] for row in EDIT_ERRORS],
    ids=[row[0] for row in EDIT_ERRORS],
)
def test_error_cites_file_and_dotted_path(
    tmp_path: Path, shipped_data: dict[str, Any], edits: dict[str, Any], fragments: list[str]
) -> None:
    data = copy.deepcopy(shipped_data)
    for dotted, value in edits.items():
        if value is None:
            _delete(data, dotted)
        else:
            _set(data, dotted, value)
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(MappingError) as caught:
        load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


TEXT_ERRORS = [
    (
        "not yaml",
        "version: 1\nkind: sql\nappointments:\n  table: t\n  - item\n",
        ["line 5", "not valid YAML"],
    ),
    ("unclosed list", "version: 1\nkind: [sql\n", ["not valid YAML"]),
    ("a list", "- version\n- kind\n", ["expected a mapping with 'version: 1' at the top"]),
    ("empty file", "", ["expected a mapping with 'version: 1' at the top"]),
    ("text", "OpenEMR mapping\n", ["expected a mapping"]),
]


@pytest.mark.parametrize(
    ("text", "fragments"),
    [row[1:] for row in TEXT_ERRORS],
    ids=[row[0] for row in TEXT_ERRORS],
)
def test_unreadable_mapping(tmp_path: Path, text: str, fragments: list[str]) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MappingError) as caught:
        read_mapping_data(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_missing_mapping_file(tmp_path: Path) -> None:
    for path in (mapping_path("no-such-host"), tmp_path / "absent.yaml"):
        with pytest.raises(MappingError) as caught:
            read_mapping_data(path)
        assert str(caught.value) == f"{path}: mapping file not found"
    assert mapping_path("no-such-host") == SHIPPED.parent / "no-such-host.yaml"


def test_mapping_error_is_a_config_error() -> None:
    assert issubclass(MappingError, ConfigError)


def test_mapping_not_utf8_is_a_mapping_error(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_bytes("version: 1\nkind: sql\nname: Clinica è\n".encode("cp1252"))
    with pytest.raises(MappingError) as caught:
        read_mapping_data(path)
    assert str(caught.value).startswith(str(path))


# --- where a mapping lives --------------------------------------------------------------------

MAPPING_PATHS = [
    # id, name, expected relative to the base dir (or an absolute path)
    ("file name", "site.yaml", "conf/site.yaml"),
    ("yml", "site.yml", "conf/site.yml"),
    ("sub folder", "maps/site.yaml", "conf/maps/site.yaml"),
    ("path without extension", "maps/site", "conf/maps/site"),
    ("parent folder", "../shared/site.yaml", "shared/site.yaml"),
    ("absolute", "/srv/bridge/site.yaml", "/srv/bridge/site.yaml"),
]


@pytest.mark.parametrize(
    ("name", "expected"),
    [row[1:] for row in MAPPING_PATHS],
    ids=[row[0] for row in MAPPING_PATHS],
)
def test_mapping_path_relative_to_base_dir(tmp_path: Path, name: str, expected: str) -> None:
    assert mapping_path(name, tmp_path / "conf") == tmp_path / expected


def test_builtin_name_ignores_base_dir(tmp_path: Path) -> None:
    assert mapping_path("openemr", tmp_path) == SHIPPED


def test_path_without_base_dir_is_relative_to_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert mapping_path("site.yaml") == tmp_path / "site.yaml"


def test_own_mapping_by_relative_path_loads(
    tmp_path: Path, shipped_data: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = copy.deepcopy(shipped_data)
    data["name"] = "Test Host"
    (tmp_path / "conf" / "maps").mkdir(parents=True)
    (tmp_path / "conf" / "maps" / "site.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # not the base dir: the path must not be read from the cwd
    mapping = load(mapping_path("maps/site.yaml", tmp_path / "conf"))
    assert mapping.name == "Test Host"
    assert mapping.appointments.table == "openemr_postcalendar_events"

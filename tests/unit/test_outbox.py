"""The ``outbox`` channel: JSON lines per channel, idempotent by key, a torn write ignored."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bridge.clock import ManualClock
from bridge.errors import TransientDeliveryError
from bridge.model import Channel
from bridge.plugin import OutboundMessage, PluginContext, load_plugin
from plugins.channels.outbox import Outbox, OutboxConfig

START = datetime(2026, 3, 27, 8, 0, tzinfo=UTC)


def context(base_dir: Path, clock: ManualClock | None = None) -> PluginContext:
    return PluginContext(clock=clock or ManualClock(START), base_dir=base_dir)


def outbox(tmp_path: Path, folder: Path | str = "out", clock: ManualClock | None = None) -> Outbox:
    return Outbox(OutboxConfig(folder=Path(folder)), context(tmp_path, clock))


def lines(path: Path) -> list[str]:
    """The file's lines, split on newline bytes only (what a JSON-lines reader does)."""
    return path.read_bytes().decode("utf-8").split("\n")[:-1]


SMS = OutboundMessage(
    idempotency_key="appt-1234:2026-03-28:day-before:sms",
    channel=Channel.SMS,
    to="+12025550101",
    text="Test Patient, your visit is tomorrow at 09:30. Reply C to confirm.",
    sender="+12025550100",
    testing=True,
    job_id=17,
    tags={"rule": "day-before"},
)
EMAIL = OutboundMessage(
    idempotency_key="appt-1234:2026-03-28:day-before:email",
    channel=Channel.EMAIL,
    to="test.patient@example.test",
    text="Your visit is tomorrow at 09:30.",
    subject="Appointment reminder",
    html="<p>Your visit is tomorrow at 09:30.</p>",
    sender="front.desk@example.test",
    job_id=18,
)
VOICE = OutboundMessage(
    idempotency_key="appt-1234:2026-03-28:day-before:voice",
    channel=Channel.VOICE,
    to="+12025550102",
    text="This is Demo Clinic calling.",
    voicemail="Please call us back.",
)

RECORDS = [
    # id, message, file, fields expected in its line
    (
        "sms",
        SMS,
        "sms.jsonl",
        {
            "at": "2026-03-27T08:00:00Z",
            "idempotency_key": SMS.idempotency_key,
            "channel": "sms",
            "to": "+12025550101",
            "sender": "+12025550100",
            "subject": None,
            "text": SMS.text,
            "html": None,
            "voicemail": None,
            "testing": True,
            "job_id": 17,
            "tags": {"rule": "day-before"},
        },
    ),
    (
        "email",
        EMAIL,
        "email.jsonl",
        {
            "channel": "email",
            "to": "test.patient@example.test",
            "subject": "Appointment reminder",
            "html": "<p>Your visit is tomorrow at 09:30.</p>",
            "testing": False,
            "job_id": 18,
        },
    ),
    (
        "voice",
        VOICE,
        "voice.jsonl",
        {"channel": "voice", "voicemail": "Please call us back.", "job_id": None, "tags": {}},
    ),
]


@pytest.mark.parametrize(
    ("message", "file_name", "fields"),
    [row[1:] for row in RECORDS],
    ids=[row[0] for row in RECORDS],
)
def test_writes_one_json_line_in_the_channels_file(
    tmp_path: Path, message: OutboundMessage, file_name: str, fields: dict[str, Any]
) -> None:
    box = outbox(tmp_path)
    result = box.send(message)
    path = tmp_path / "out" / file_name
    assert box.path(message.channel) == path
    [line] = lines(path)
    record = json.loads(line)
    assert record["id"] == result.provider_ref
    assert result.provider_ref is not None and result.provider_ref.startswith("outbox-")
    for key, value in fields.items():
        assert record[key] == value, key
    others = {f"{c.value}.jsonl" for c in Channel} - {file_name}
    assert not any((tmp_path / "out" / other).exists() for other in others)


def test_each_channel_gets_its_own_file(tmp_path: Path) -> None:
    box = outbox(tmp_path)
    refs = {m.channel: box.send(m).provider_ref for m in (SMS, EMAIL, VOICE)}
    for channel, ref in refs.items():
        assert [r["id"] for r in box.messages(channel)] == [ref]
    assert len(set(refs.values())) == 3


def test_time_comes_from_the_injected_clock(tmp_path: Path) -> None:
    clock = ManualClock(START)
    box = outbox(tmp_path, clock=clock)
    box.send(SMS)
    clock.advance(timedelta(minutes=90, microseconds=500))
    box.send(OutboundMessage("second", Channel.SMS, "+12025550103", "second"))
    assert [r["at"] for r in box.messages(Channel.SMS)] == [
        "2026-03-27T08:00:00Z",
        "2026-03-27T09:30:00Z",
    ]


def test_send_is_idempotent_by_key(tmp_path: Path) -> None:
    box = outbox(tmp_path)
    first = box.send(SMS)
    before = (tmp_path / "out" / "sms.jsonl").read_bytes()
    again = box.send(SMS)
    assert again.provider_ref == first.provider_ref
    assert (tmp_path / "out" / "sms.jsonl").read_bytes() == before


def test_idempotency_survives_a_restart(tmp_path: Path) -> None:
    first = outbox(tmp_path).send(SMS)
    before = (tmp_path / "out" / "sms.jsonl").read_bytes()
    restarted = outbox(tmp_path)
    assert restarted.send(SMS).provider_ref == first.provider_ref
    assert (tmp_path / "out" / "sms.jsonl").read_bytes() == before


def test_same_key_on_another_channel_is_another_message(tmp_path: Path) -> None:
    box = outbox(tmp_path)
    sms = box.send(OutboundMessage("shared-key", Channel.SMS, "+12025550101", "a"))
    email = box.send(OutboundMessage("shared-key", Channel.EMAIL, "test@example.test", "b"))
    assert sms.provider_ref != email.provider_ref
    assert len(box.messages(Channel.SMS)) == len(box.messages(Channel.EMAIL)) == 1


LOOKUPS = [
    # id, restart before lookup
    ("same instance", False),
    ("after a restart", True),
]


@pytest.mark.parametrize("restart", [row[1] for row in LOOKUPS], ids=[row[0] for row in LOOKUPS])
def test_lookup(tmp_path: Path, restart: bool) -> None:
    box = outbox(tmp_path)
    refs = {m.idempotency_key: box.send(m).provider_ref for m in (SMS, EMAIL, VOICE)}
    if restart:
        box = outbox(tmp_path)
    for key, ref in refs.items():
        found = box.lookup(key)
        assert found is not None and found.provider_ref == ref
    assert box.lookup("never-sent") is None


def test_lookup_on_an_empty_outbox(tmp_path: Path) -> None:
    box = outbox(tmp_path)
    assert box.lookup(SMS.idempotency_key) is None
    assert box.messages(Channel.SMS) == []
    assert not (tmp_path / "out").exists()


TORN = '{"id": "outbox-torn", "at": "2026-03-27T08:00:00Z", "idempotency_key": "torn-key", "cha'


def test_torn_last_line_is_ignored_and_the_next_message_gets_its_own_line(tmp_path: Path) -> None:
    first = outbox(tmp_path).send(SMS)
    path = tmp_path / "out" / "sms.jsonl"
    with path.open("a", encoding="utf-8") as handle:
        handle.write(TORN)  # a crash half way through the second write
    restarted = outbox(tmp_path)
    assert [r["id"] for r in restarted.messages(Channel.SMS)] == [first.provider_ref]
    assert restarted.lookup("torn-key") is None
    second = restarted.send(OutboundMessage("after-crash", Channel.SMS, "+12025550104", "next"))
    raw = lines(path)
    assert len(raw) == 3
    assert raw[1] == TORN
    assert json.loads(raw[2])["id"] == second.provider_ref
    assert [r["idempotency_key"] for r in outbox(tmp_path).messages(Channel.SMS)] == [
        SMS.idempotency_key,
        "after-crash",
    ]


def test_torn_message_is_sent_again_after_restart(tmp_path: Path) -> None:
    path = tmp_path / "out" / "sms.jsonl"
    path.parent.mkdir()
    path.write_text(TORN, encoding="utf-8")
    box = outbox(tmp_path)
    result = box.send(OutboundMessage("torn-key", Channel.SMS, "+12025550105", "again"))
    assert result.provider_ref != "outbox-torn"
    assert [r["id"] for r in box.messages(Channel.SMS)] == [result.provider_ref]


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85"])
def test_text_with_unicode_line_separator_stays_one_message(tmp_path: Path, separator: str) -> None:
    message = OutboundMessage("sep-key", Channel.SMS, "+12025550106", f"Line one{separator}two")
    first = outbox(tmp_path).send(message)
    restarted = outbox(tmp_path)
    assert [r["text"] for r in restarted.messages(Channel.SMS)] == [message.text]
    assert restarted.send(message).provider_ref == first.provider_ref
    assert len(lines(tmp_path / "out" / "sms.jsonl")) == 1


FOLDERS = [
    # id, folder option, expected location relative to tmp_path
    ("relative to base_dir", "outbox", "install/outbox"),
    ("nested relative", "var/outbox", "install/var/outbox"),
    ("parent", "../shared-outbox", "shared-outbox"),
]


@pytest.mark.parametrize(
    ("folder", "expected"), [row[1:] for row in FOLDERS], ids=[row[0] for row in FOLDERS]
)
def test_relative_folder_is_resolved_against_base_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, folder: str, expected: str
) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    box = Outbox(OutboxConfig(folder=Path(folder)), context(tmp_path / "install"))
    box.send(SMS)
    assert box.folder == tmp_path / expected
    assert (tmp_path / expected / "sms.jsonl").is_file()
    assert list(cwd.iterdir()) == []


def test_absolute_folder_is_used_as_is(tmp_path: Path) -> None:
    box = Outbox(OutboxConfig(folder=tmp_path / "abs"), context(tmp_path / "install"))
    box.send(SMS)
    assert (tmp_path / "abs" / "sms.jsonl").is_file()


def test_loaded_as_a_plugin_with_a_string_folder(tmp_path: Path) -> None:
    box = load_plugin("channel", "outbox", {"folder": "mail"}, context(tmp_path), "channels.sms")
    assert isinstance(box, Outbox)
    assert box.folder == tmp_path / "mail"


def test_default_folder_is_outbox_beside_the_settings(tmp_path: Path) -> None:
    box = Outbox(OutboxConfig(), context(tmp_path))
    assert box.folder == tmp_path / "outbox"


def test_unwritable_folder_is_a_transient_error(tmp_path: Path) -> None:
    (tmp_path / "blocked").write_text("a file where the folder should be")
    box = outbox(tmp_path, folder=tmp_path / "blocked" / "out")
    with pytest.raises(TransientDeliveryError, match="outbox: cannot write"):
        box.send(SMS)
    assert box.lookup(SMS.idempotency_key) is None

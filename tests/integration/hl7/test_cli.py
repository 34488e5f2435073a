"""``bridge hl7 list | show | replay`` and ``bridge check`` as a clinic's IT person uses them:
a message the mapping cannot read is quarantined with its reason, and once the mapping is fixed
a replay brings it in."""

from __future__ import annotations

import contextlib
import io
from datetime import datetime
from pathlib import Path

import yaml

from bridge.cli import main
from bridge.mapping import mapping_path
from tests.hl7_samples import siu
from tests.integration.hl7.test_feed_cycle import settings_file

MONDAY = datetime(2026, 3, 30, 9, 30)


def run(settings: Path, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["--config", str(settings), *args])
    return status, out.getvalue(), err.getvalue()


def site(tmp_path: Path, store_url: str, without_s14: bool) -> Path:
    """A site mapping (a copy of hl7-siu.yaml), optionally missing the S14 event."""
    data = yaml.safe_load(mapping_path("hl7-siu").read_text())
    if without_s14:
        del data["events"]["SIU^S14"]
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(data))
    return settings_file(
        tmp_path,
        store_url,
        host={"source": "hl7-files", "mapping": "site.yaml"},
        hl7={"folder": "drop", "folder_settle_seconds": 0},
    )


def test_quarantine_list_show_and_replay(store_url: str, tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    settings = site(tmp_path, store_url, without_s14=True)
    (drop / "feed.hl7").write_bytes(
        siu("Q1", "K1", "P1", MONDAY)
        + siu("Q2", "K1", "P1", MONDAY, event="S14", sent="20260327090000")
    )
    status, out, _ = run(settings, "plan", "--now", "2026-03-28T06:00:00Z")
    assert status == 0
    assert (drop / "rejected" / "feed.hl7").exists()

    status, out, _ = run(settings, "hl7", "list")
    assert status == 0
    lines = out.splitlines()
    assert any("Q2" in line and "quarantined" in line and "201" in line for line in lines)
    assert any("Q1" in line and "applied" in line for line in lines)
    assert "Synthetic" not in out and "+1202" not in out  # no patient data

    status, out, _ = run(settings, "hl7", "list", "--status", "quarantined")
    assert [line for line in out.splitlines() if "Q1" in line] == []
    message_id = next(line.split()[0] for line in out.splitlines() if "Q2" in line)

    status, out, _ = run(settings, "hl7", "show", message_id)
    assert status == 0
    assert "status quarantined: 201 Unsupported event code" in out
    assert "structure SIU_S12" in out and "hl7apy strict validation" in out
    assert "Synthetic" not in out
    status, out, _ = run(settings, "hl7", "show", message_id, "--raw")
    assert "PID|1||P1^^^CLINIC^MR||Synthetic^PatP1" in out

    status, out, _ = run(settings, "hl7", "replay", message_id)
    assert status == 1 and "still" not in out and "quarantined" in out  # not fixed yet

    site(tmp_path, store_url, without_s14=False)  # the vendor fixes the mapping
    status, out, _ = run(settings, "hl7", "replay", "--quarantined")
    assert status == 0
    assert f"message {message_id}: applied (appointment K1)" in out
    status, out, _ = run(settings, "hl7", "replay", "--quarantined")
    assert "nothing to replay" in out
    status, out, _ = run(settings, "hl7", "show", "999")
    assert status == 1 and "no HL7 message 999" in out


def test_bridge_check_on_an_hl7_site(store_url: str, tmp_path: Path) -> None:
    (tmp_path / "drop").mkdir()
    settings = site(tmp_path, store_url, without_s14=False)
    status, out, _ = run(settings, "check")
    assert status == 0, out
    assert "source: hl7-files with mapping site.yaml" in out
    assert "mirror: 0 appointments" in out
    assert "hl7.folder" in out and "0 files waiting" in out


def test_an_hl7_source_with_a_sql_mapping_is_one_clear_line(store_url: str, tmp_path: Path) -> None:
    settings = settings_file(tmp_path, store_url, host={"mapping": "openemr"})
    status, _, err = run(settings, "plan")
    assert status == 2
    assert err.strip().endswith("needs a mapping of kind hl7 (host.mapping: hl7-siu, or your own)")
    assert len(err.strip().splitlines()) == 1

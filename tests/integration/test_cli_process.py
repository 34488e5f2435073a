"""The ``bridge`` command as a separate process, the way IT staff and outside tests run it:
the demo (also from a fresh virtual environment), the service loop, the plan contract, and
the one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bridge.demo.host import OpenEmrHost
from tests.conftest import ROOT
from tests.integration.conftest import Bridge

BRIDGE = str(Path(sys.executable).with_name("bridge"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    env.update(extra)
    return env


def wait_for(predicate: Any, seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()


def test_demo_no_serve(tmp_path: Path) -> None:
    done = subprocess.run(
        [BRIDGE, "demo", "--no-serve", "--dir", str(tmp_path / "demo")],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Messages planned" in done.stdout
    assert "no consent for sms (refused)" in done.stdout
    assert "1 due, 1 recalled" in done.stdout
    sms = (tmp_path / "demo" / "outbox" / "sms.jsonl").read_text().strip().split("\n")
    assert len(sms) >= 5
    assert {json.loads(line)["to"] for line in sms} == {"+12025550100"}  # testing mode
    recall = [json.loads(line) for line in sms if "/b/" in json.loads(line)["text"]]
    assert len(recall) == 1 and "Book online" in recall[0]["text"]
    assert done.stderr == ""


def test_demo_serves_the_status_page(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [BRIDGE, "demo", "--port", str(port), "--dir", str(tmp_path / "demo")],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        status, body = wait_for(lambda: _try_get(f"http://127.0.0.1:{port}/health"))
        assert status == 200 and json.loads(body)["mode"] == "testing"
        status, page = get(f"http://127.0.0.1:{port}/")
        assert status == 200 and "<table>" in page and "sent" in page
        status, page = get(f"http://127.0.0.1:{port}/book")
        assert status == 200 and 'href="/book/new"' in page
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err


def _try_get(url: str) -> tuple[int, str] | None:
    try:
        return get(url)
    except OSError:
        return None


@pytest.mark.mariadb
def test_service_polls_sends_and_stops_cleanly(
    host: OpenEmrHost, make_bridge: Any, tmp_path: Path
) -> None:
    zone = ZoneInfo("Europe/Rome")
    tomorrow = (datetime.now(zone) + timedelta(days=1)).date()
    host.add_patient(1, "Service", "Synthetic")
    bridge: Bridge = make_bridge(
        reminders={"channels": ["sms"], "start_hour": 0, "end_hour": 24},
        host={"poll_seconds": 1},
        web={"port": free_port()},
    )
    process = subprocess.Popen(
        [BRIDGE, "--config", str(bridge.settings_file), "run"],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The appointment is booked while the service runs: the next poll finds it.
        time.sleep(1.5)
        host.add_appointment(1, tomorrow, "10:00")
        sent = wait_for(lambda: bridge.outbox("sms"))
        assert [m["to"] for m in sent] == ["+12025550101"]
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "Synthetic" not in err and "+1202555" not in err  # no patient data in the log


@pytest.mark.mariadb
def test_plan_contract_through_the_console_script(host: OpenEmrHost, make_bridge: Any) -> None:
    host.add_patient(1, "Contract", "Synthetic")
    appt = host.add_appointment(1, datetime(2026, 3, 28).date(), "09:00")
    bridge: Bridge = make_bridge()
    done = subprocess.run(
        [BRIDGE, "plan", "--json", "--now", "2026-03-27T06:30:00Z"],
        env=clean_env(
            BRIDGE_CONFIG=str(bridge.settings_file), BRIDGE_REMINDERS__CHANNELS='["sms"]'
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines == [
        {
            "appointment": str(appt),
            "occurrence": "2026-03-28",
            "patient": "1",
            "channel": "sms",
            "due": "2026-03-27T08:00:00Z",
            "rule": "days_ahead",
            "event": "reminder",
            "start": "2026-03-28T08:00:00Z",
        }
    ]


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (
            ["--config", "/nonexistent/settings.yaml", "check"],
            {},
            "bridge: /nonexistent/settings.yaml: settings file not found (named by --config)",
        ),
        (
            ["plan"],
            {"BRIDGE_REMINDERS__START_HOUR": "25"},
            "bridge: environment BRIDGE_REMINDERS__START_HOUR: reminders.start_hour = '25': "
            "Input should be less than or equal to 23",
        ),
        (
            ["plan"],
            {"BRIDGE_HOST__URL": ""},
            "bridge: host.url: missing: the SQLAlchemy URL of the host database",
        ),
    ],
)
def test_errors_are_one_line(
    tmp_path: Path, args: list[str], env: dict[str, str], expected: str
) -> None:
    done = subprocess.run(
        [BRIDGE, *args],
        cwd=tmp_path,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith(expected), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_readme_commands_in_a_fresh_venv(tmp_path: Path) -> None:
    """What a new user does on a fresh machine: install the package, run the demo from a folder
    that holds no project files (mappings, templates and migrations come with the package)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    source = tmp_path / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", "*.egg-info", "__pycache__", "bridge-demo", "var", "outbox", ".*_cache"
        ),
    )
    subprocess.run([*pip, str(source)], check=True, timeout=600)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run(
        [str(venv / "bin" / "bridge"), "demo", "--no-serve"],
        cwd=elsewhere,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Messages planned" in done.stdout
    assert (elsewhere / "bridge-demo" / "outbox" / "sms.jsonl").exists()

"""``kill -9`` of ``bridge listen`` between receipt and ACK loses nothing: the message is in the
receipt journal (synced) before the ACK, the restarted listener stores it, the sender (which got
no ACK) resends, and the bridge acknowledges it and processes it once. The listener runs as a
real process from the command line; a test hook (``BRIDGE_HL7_PAUSE_BEFORE_ACK``) holds it right
after the journal's sync, before the message reaches the store."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from bridge.hl7.inbox import recent
from bridge.hl7.journal import records
from bridge.hl7.listener import PAUSE_HOOK
from bridge.hl7.mirror import held_appointment
from bridge.hl7.tables import appointments
from bridge.store import Store
from tests.hl7_samples import answers, free_port, siu
from tests.integration.hl7.conftest import Sender, codes, wait_for

BRIDGE = [sys.executable, "-m", "bridge"]


def start(settings: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``bridge listen`` as a process; its output goes to ``output.log`` beside the settings."""
    log = settings.parent / "output.log"
    with log.open("ab") as output:
        process = subprocess.Popen(
            [*BRIDGE, "--config", str(settings), "listen", "--port", str(port)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    wait_for(lambda: answers(port) or process.poll() is not None, 30)
    assert process.poll() is None, log.read_text()
    return process


@pytest.mark.timeout(120)
def test_kill_9_between_store_and_ack_loses_nothing(store_url: str, tmp_path: Path) -> None:
    settings = tmp_path / "settings.yaml"
    settings.write_text(
        yaml.safe_dump(
            {
                "host": {"source": "hl7-mllp", "mapping": "hl7-siu", "writer": None},
                "store": {"url": store_url},
                "clinic": {"timezone": "Europe/Rome"},
                "log": {"level": "WARNING"},
            }
        )
    )
    Store.open(store_url).close()
    port = free_port()
    pause = tmp_path / "paused"
    env = {**os.environ, PAUSE_HOOK: str(pause)}
    raw = siu("KILL1", "K1", "P1", datetime(2026, 3, 30, 9, 30))

    first = start(settings, port, env)
    sender = Sender(port)
    sender.socket.sendall(b"\x0b" + raw + b"\x1c\r")
    wait_for(pause.exists, 30)  # journaled and synced; the ACK is not sent yet
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    assert sender.closed_by_peer(within=10)  # no ACK ever came
    sender.close()
    # Durable before any ACK went out: in the journal, not yet in the store.
    assert [r.entry.raw for r in records(tmp_path / "var" / "hl7-journal")] == [raw]
    store = Store.open(store_url)
    with store.begin() as connection:
        assert recent(connection) == []
    store.close()

    env.pop(PAUSE_HOOK)
    second = start(settings, port, env)
    try:
        resend = Sender(port)
        assert codes(resend.send(raw)) == ["AA"]
        resend.close()
        store = Store.open(store_url)
        try:
            wait_for(lambda: _applied(store), 30)
            with store.begin() as connection:
                rows = recent(connection)
                mirror = connection.execute(sa.select(appointments)).all()
                appointment, _ = held_appointment(connection, "K1")
        finally:
            store.close()
        assert len(rows) == 1
        assert rows[0].times_seen == 2 and rows[0].status == "applied"
        assert [row.message_id for row in mirror] == [rows[0].id]
        assert appointment is not None and appointment.patient_key == "P1"
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    assert second.returncode == 0, (tmp_path / "output.log").read_text()
    assert records(tmp_path / "var" / "hl7-journal") == []  # a clean stop leaves it empty


def _applied(store: Store) -> bool:
    with store.begin() as connection:
        return [r.status for r in recent(connection)] == ["applied"]


def test_the_listener_says_where_it_listens_and_stops_on_sigterm(
    store_url: str, tmp_path: Path
) -> None:
    settings = tmp_path / "settings.yaml"
    settings.write_text(yaml.safe_dump({"host": {"source": "hl7-mllp", "mapping": "hl7-siu",
                                                 "writer": None},
                                        "store": {"url": store_url}}))  # fmt: skip
    port = free_port()
    process = start(settings, port, dict(os.environ))
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    assert process.returncode == 0
    assert f"listening for HL7 on 127.0.0.1:{port}" in (tmp_path / "output.log").read_text()
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    busy = blocker.getsockname()[1]
    done = subprocess.run(
        [*BRIDGE, "--config", str(settings), "listen", "--port", str(busy)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    blocker.close()
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{busy}" in done.stderr.decode()

"""A client nobody here wrote: python-hl7's ``mllp_send`` (PyPI package ``hl7``) sends the
published fixtures to the listener, as a separate process; every valid one is acknowledged and
lands, every malformed one is answered with an error and kept."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from bridge.hl7.inbox import recent
from tests.conftest import unavailable
from tests.hl7_samples import FIXTURES, MALFORMED, VALID
from tests.integration.hl7.test_listener import FINAL, held


def mllp_send() -> str:
    found = shutil.which("mllp_send", path=str(Path(sys.executable).parent))
    if found is None:
        unavailable("python-hl7's mllp_send is not installed: pip install 'reminder-bridge[test]'")
    assert found is not None
    return found


def send_file(path: Path, port: int) -> list[str]:
    """One ``mllp_send`` run for one file; returns the MSA lines it printed."""
    command = [mllp_send(), "--port", str(port)]
    if path.suffix != ".mllp":  # a plain file: --loose splits at MSH and fixes LF terminators
        command += ["--loose"]
    done = subprocess.run(
        [*command, "--file", str(path), "127.0.0.1"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    text = done.stdout.decode("utf-8", "replace").replace("\r", "\n")
    return [line for line in text.splitlines() if line.startswith("MSA|")]


def test_mllp_send_delivers_every_fixture(listener: Any, shared_dir: Path) -> None:
    running = listener()
    folder = shared_dir / FIXTURES
    for name in VALID:
        answers = send_file(folder / name, running.port)
        # mllp_send reads one reply per message; enhanced-mode fixtures get CA first.
        assert answers and answers[0].split("|")[1] in ("AA", "CA"), (name, answers)
    for name in MALFORMED:
        answers = send_file(folder / name, running.port)
        assert answers, name
        assert all(a.split("|")[1] in ("AE", "CE") for a in answers), (name, answers)
    running.settle()
    for key, (status, status_class) in FINAL.items():
        appointment = held(running, key)
        assert (appointment.status, appointment.status_class) == (status, status_class), key
    with running.store.begin() as connection:
        rows = recent(connection, 100)
    assert {r.status for r in rows} == {"applied", "stale", "quarantined"}
    assert sum(1 for r in rows if r.status == "quarantined") == 4

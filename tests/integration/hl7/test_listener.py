"""The MLLP listener over real sockets, on SQLite and PostgreSQL stores: every published fixture
(AA and the right state, or AE with a reason and quarantined, and the listener keeps serving),
framing as senders really do it, resends, size cap, idle time-out, connection limit, eight
senders at once, and AR once the store is unavailable."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bridge.hl7.frame import wrap
from bridge.hl7.inbox import recent
from bridge.hl7.mirror import held_appointment
from bridge.hl7.parse import parse
from bridge.hl7.tables import appointments
from bridge.model import StatusClass
from tests.hl7_samples import LF_COPY, MALFORMED, VALID, fixture, siu
from tests.integration.hl7.conftest import Running, Sender, codes, wait_for

START = datetime(2026, 3, 30, 9, 30)

# The ACKs each fixture gets. 18 asks for enhanced mode (MSH-15/16 AL): CA, then AA; 20 asks
# for the commit ACK only (AL / NE); M4 has 18's header, so its refusal is a CE.
ENHANCED = {
    "18_embe7_test_siu_s17_v24_tq1.hl7": ["CA", "AA"],
    "20_nhs_pas_style_siu_s12_v24_zsegments.hl7": ["CA"],
    "M4_embe7_test_second_MSH_without_encoding_chars.hl7": ["CE"],
}

# What the mirror holds once every valid fixture was sent in file order. Out-of-order messages
# (02, 03, 06, 07 are older than 01 for appointment 36996) changed nothing.
FINAL = {
    "36996": ("Noshow", StatusClass.NO_SHOW),
    "149549015": ("Confirmed", StatusClass.CONFIRMED),
    "149549023": ("Confirmed", StatusClass.CONFIRMED),  # "Undo Cancel"
    "149549027": ("Cancelled", StatusClass.NO_SHOW),  # S26 wins over its SCH-25
    "569576": ("Booked", StatusClass.SCHEDULED),
    "00331839401": ("Arrived", StatusClass.CHECKED_IN),
    "A25335451569": ("Started", StatusClass.CHECKED_IN),
    "49849903800": ("Booked", StatusClass.SCHEDULED),
    "APT001": ("1", StatusClass.OTHER),
}
STALE = {"MSG00012": 1, "MSG00013": 1, "MSG00016": 1, "MSG00017": 1}


def held(running: Running, key: str) -> Any:
    with running.store.begin() as connection:
        return held_appointment(connection, key)[0]


def test_every_published_fixture_over_one_connection(listener: Any, shared_dir: Path) -> None:
    running = listener()
    sender = Sender(running.port)
    for name in VALID:
        got = codes(sender.send(fixture(shared_dir, name), len(ENHANCED.get(name, ["AA"]))))
        assert got == ENHANCED.get(name, ["AA"]), name
    for name, errors in MALFORMED.items():
        raw = fixture(shared_dir, name)
        framed = name.endswith(".mllp")  # M5 is two MLLP frames, as published
        acks = sender.send_raw(raw, len(errors)) if framed else sender.send(raw, 1)
        assert codes(acks) == ENHANCED.get(name, ["AE"] * len(errors)), name
        for ack in acks:
            message = parse(ack)
            assert message.has("ERR"), name
            code = message.value("ERR-3.1") or message.value("ERR-1.4.1")  # 2.5+ / older
            assert code in {str(code) for code in errors}, name
            assert message.value("ERR-8") or message.value("MSA-3"), name
    # The LF copy of 14 is 14 again: acknowledged, not processed a second time.
    assert codes(sender.send(fixture(shared_dir, LF_COPY))) == ["AA"]
    # ... and the listener keeps serving, on this connection and on a new one.
    assert codes(sender.send(siu("AFTER1", "K1", "P1", START))) == ["AA"]
    sender.close()
    again = Sender(running.port)
    assert codes(again.send(siu("AFTER2", "K2", "P1", START))) == ["AA"]
    again.close()

    running.settle()
    for key, (status, status_class) in FINAL.items():
        appointment = held(running, key)
        assert (appointment.status, appointment.status_class) == (status, status_class), key
    assert held(running, "APPTID123") is None  # 18 deleted it
    with running.store.begin() as connection:
        rows = recent(connection, 100)
    by_status: dict[str, list[Any]] = {}
    for row in rows:
        by_status.setdefault(row.status, []).append(row)
    assert len(by_status["quarantined"]) == 4  # M1, M2, M4 and M5's two identical frames
    assert all(row.reason for row in by_status["quarantined"])
    assert {r.control_id for r in by_status["stale"]} == set(STALE)
    fourteen = next(r for r in rows if r.control_id == "20080306953450")
    assert fourteen.times_seen == 2 and fourteen.status == "applied"
    m5 = next(r for r in rows if r.kind == "" and r.status == "quarantined")
    assert m5.times_seen == 2


def test_half_frames_several_frames_per_read_and_junk(listener: Any) -> None:
    running = listener()
    sender = Sender(running.port)
    data = b"".join(wrap(siu(f"B{n}", f"K{n}", "P1", START)) for n in range(3))
    for byte in range(len(data)):
        sender.socket.sendall(data[byte : byte + 1])
    assert codes(sender.read(3)) == ["AA", "AA", "AA"]
    noisy = (
        b"\r\n"
        + b"garbage"
        + wrap(siu("J1", "K7", "P1", START))
        + b"\x00\x00"
        + wrap(siu("J2", "K8", "P1", START))
    )
    assert codes(sender.send_raw(noisy, 2)) == ["AA", "AA"]
    sender.close()


def test_a_resent_message_is_acknowledged_again_and_processed_once(listener: Any) -> None:
    running = listener()
    raw = siu("R1", "K1", "P1", START)
    first = Sender(running.port)
    ack = parse(first.send(raw)[0])
    first.close()
    running.settle()
    second = Sender(running.port)
    again = parse(second.send(raw)[0])
    second.close()
    assert ack.value("MSA-1") == again.value("MSA-1") == "AA"
    assert ack.value("MSA-2") == again.value("MSA-2") == "R1"
    running.settle()
    with running.store.begin() as connection:
        rows = recent(connection)
        held_rows = connection.execute(sa.select(appointments)).all()
    assert len(rows) == 1 and rows[0].times_seen == 2 and rows[0].status == "applied"
    assert [r.message_id for r in held_rows] == [rows[0].id]


def test_a_frame_over_the_cap_gets_ae_and_the_connection_goes_on(listener: Any) -> None:
    running = listener(max_frame_kb=4)
    sender = Sender(running.port)
    big = siu("BIG1", "K1", "P1", START) + b"NTE|1||" + b"x" * 20_000 + b"\r"
    ack = parse(sender.send(big)[0])
    assert ack.value("MSA-1") == "AE" and ack.value("MSA-2") == "BIG1"
    assert "larger than the limit" in ack.value("ERR-8")
    assert codes(sender.send(siu("SMALL1", "K2", "P1", START))) == ["AA"]
    sender.close()
    running.settle()
    with running.store.begin() as connection:
        kept = next(r for r in recent(connection) if r.control_id == "BIG1")
    assert kept.status == "quarantined" and len(kept.raw) == 4096


def test_an_idle_connection_is_closed(listener: Any) -> None:
    running = listener(idle_timeout_seconds=0.5)
    sender = Sender(running.port)
    assert codes(sender.send(siu("I1", "K1", "P1", START))) == ["AA"]
    assert sender.closed_by_peer(within=5)
    sender.close()


def test_connections_over_the_limit_are_refused(listener: Any) -> None:
    running = listener(max_connections=2)
    held_open = [Sender(running.port), Sender(running.port)]
    for n, sender in enumerate(held_open):
        assert codes(sender.send(siu(f"L{n}", f"K{n}", "P1", START))) == ["AA"]
    extra = Sender(running.port)
    assert extra.closed_by_peer(within=5)
    extra.close()
    held_open[0].close()
    wait_for(lambda: len(running.service.listener.connections) < 2)
    late = Sender(running.port)
    assert codes(late.send(siu("L9", "K9", "P1", START))) == ["AA"]
    for sender in [late, held_open[1]]:
        sender.close()


def test_eight_senders_at_once_keep_their_own_order(listener: Any) -> None:
    running = listener()
    failures: list[str] = []

    def send_all(lane: int) -> None:
        sender = Sender(running.port)
        for n in range(40):
            # Each lane moves its own appointment forward a minute per message.
            start = datetime(2026, 3, 30, 9, n)
            raw = siu(f"C{lane}-{n}", f"K{lane}", f"P{lane}", start, sent=f"202603270800{n:02d}")
            if codes(sender.send(raw)) != ["AA"]:
                failures.append(f"{lane}/{n}")
        sender.close()

    threads = [threading.Thread(target=send_all, args=(lane,)) for lane in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    running.settle()
    with running.store.begin() as connection:
        rows = recent(connection, 1000)
    assert len(rows) == 320
    for lane in range(8):
        ids = [
            r.id
            for r in sorted(rows, key=lambda r: int(r.control_id.split("-")[1]))
            if r.control_id.startswith(f"C{lane}-")
        ]
        assert ids == sorted(ids)  # stored in the order the lane sent them
        assert held(running, f"K{lane}").start.minute == 39
    assert {r.status for r in rows} == {"applied"}
    assert running.service.journal.syncs < 320  # several connections shared syncs


def test_ar_once_the_store_cannot_take_messages_then_aa_once(listener: Any, store_url: str) -> None:
    running = listener(store_timeout_seconds=0.5)
    kept = siu("S0", "K0", "P0", START)
    raw = siu("S1", "K1", "P1", START)
    release = _lock_store(store_url)
    try:
        sender = Sender(running.port)
        # Journaled and acknowledged: so far the store is only slow.
        assert codes(sender.send(kept)) == ["AA"]
        # Once the store has kept it waiting longer than the time-out, new messages get AR.
        wait_for(lambda: running.service.drainer.unavailable)
        ack = parse(sender.send(raw)[0])
        assert ack.value("MSA-1") == "AR"
        assert "send it again later" in (ack.value("ERR-8") or ack.value("MSA-3"))
    finally:
        release()
    # The sender resends as AR asks; each message is there once, applied once.
    wait_for(lambda: codes(send_once(running.port, raw)) == ["AA"])
    running.settle()
    with running.store.begin() as connection:
        rows = [r for r in recent(connection) if r.control_id in ("S0", "S1")]
    assert sorted((r.control_id, r.times_seen, r.status) for r in rows) == [
        ("S0", 1, "applied"),
        ("S1", 1, "applied"),
    ]
    sender.close()


def send_once(port: int, raw: bytes) -> list[str]:
    sender = Sender(port)
    try:
        return sender.send(raw)
    finally:
        sender.close()


def _lock_store(store_url: str) -> Any:
    """Take the messages table away from the listener; returns the release."""
    if store_url.startswith("sqlite"):
        connection = sqlite3.connect(store_url.removeprefix("sqlite:///"), isolation_level=None)
        connection.execute("BEGIN EXCLUSIVE")

        def release_sqlite() -> None:
            connection.execute("COMMIT")
            connection.close()

        return release_sqlite
    engine = sa.create_engine(store_url)
    held_connection = engine.connect()
    transaction = held_connection.begin()
    held_connection.execute(sa.text("LOCK TABLE hl7_messages IN ACCESS EXCLUSIVE MODE"))

    def release_postgres() -> None:
        transaction.commit()
        held_connection.close()
        engine.dispose()

    return release_postgres


def test_the_applying_process_is_started_again_when_it_dies(listener: Any) -> None:
    running = listener()
    first = running.service.applier.process_id
    assert first is not None
    os.kill(first, signal.SIGKILL)
    sender = Sender(running.port)
    assert codes(sender.send(siu("R1", "K1", "P1", START))) == ["AA"]
    sender.close()
    wait_for(lambda: held(running, "K1") is not None, 30)  # applied by the new process
    assert running.service.applier.process_id not in (None, first)


def test_mirror_rows_hold_whole_appointments(listener: Any) -> None:
    running = listener()
    sender = Sender(running.port)
    assert codes(sender.send(siu("W1", "K1", "P1", START))) == ["AA"]
    sender.close()
    running.settle()
    with running.store.begin() as connection:
        row = connection.execute(sa.select(appointments.c.data)).one()
    assert json.loads(row.data)["provider_keys"] == ["P1"]

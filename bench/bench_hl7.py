"""Benchmark: SIU messages per second through the MLLP listener, each ACKed after durable storage.

    .venv/bin/python bench/bench_hl7.py [--store sqlite|postgresql|both] [--messages N]

Starts ``bridge listen`` as its own process on a fresh store (a SQLite file, or a new
PostgreSQL database on 127.0.0.1:5432), then sends synthetic SIU^S12 messages (synthetic
patients, a new appointment each, 7 segments, ~700 bytes) from this process the way interface
engines do: each connection sends a message and waits for its ACK before the next. Two runs per
store: one connection, and eight connections at once. Every ACK must be AA; afterwards the
store must hold every message (durable before its ACK) and the mirror every appointment.

Figures: messages/s from the first send to the last ACK; ACK latency p50/p99; how long the
mirror needed after the last ACK to hold everything (it is applied in batches after the ACKs,
when the feed pauses and at least every 5 s: a run of 16,000 messages lasts long enough that
this work happens during it and weighs on the figure). Target on the project's 2-core
machine: >= 1,000 messages/s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bridge.hl7.frame import END, wrap  # noqa: E402
from tests.conftest import POSTGRES_ADMIN, drop_postgres, fresh_postgres  # noqa: E402
from tests.hl7_samples import answers, free_port, siu  # noqa: E402

WARM_UP = 200


def messages(run: str, lane: int, count: int) -> list[bytes]:
    """``count`` framed S12 messages for one connection; every appointment and patient new."""
    base = datetime(2026, 4, 1, 8, 0)
    framed = []
    for n in range(count):
        start = base + timedelta(minutes=(lane * count + n) % 50_000)
        key = f"{run}-{lane}-{n}"
        raw = siu(
            f"{run}{lane:02d}{n:07d}",
            key,
            f"P{lane}{n:07d}",
            start,
            mobile=f"+1202555{n % 10_000:04d}",
        )
        framed.append(wrap(raw))
    return framed


def lane(port: int, frames: list[bytes], latencies: list[float], counts: list[int]) -> None:
    """One sender (a thread with a blocking socket, as light as an engine's sender): a
    message, wait for its ACK, the next."""
    accepted = 0
    buffer = b""
    with socket.create_connection(("127.0.0.1", port)) as connection:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for frame in frames:
            sent = time.perf_counter()
            connection.sendall(frame)
            while END not in buffer:
                chunk = connection.recv(65536)
                if not chunk:
                    raise ConnectionError("listener closed the connection")
                buffer += chunk
            ack, _, buffer = buffer.partition(END)
            buffer = buffer.lstrip(b"\r")
            latencies.append(time.perf_counter() - sent)
            accepted += b"\rMSA|AA|" in ack
    counts.append(accepted)


def send(port: int, lanes: list[list[bytes]]) -> tuple[float, int, list[float]]:
    latencies: list[float] = []
    counts: list[int] = []
    threads = [threading.Thread(target=lane, args=(port, f, latencies, counts)) for f in lanes]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, sum(counts), latencies


def wait_until(check: object, seconds: float) -> float:
    """Seconds until ``check()`` is true."""
    started = time.perf_counter()
    while not check():  # type: ignore[operator]
        if time.perf_counter() - started > seconds:
            raise SystemExit("timed out waiting for the mirror")
        time.sleep(0.02)
    return time.perf_counter() - started


def count(engine: sa.Engine, table: str, where: str = "") -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.text(f"SELECT COUNT(*) FROM {table} {where}")).scalar())


def bench_store(kind: str, total: int) -> list[tuple[str, ...]]:
    folder = Path(tempfile.mkdtemp(prefix="bench_hl7_"))
    pg_name = None
    if kind == "sqlite":
        url = f"sqlite:///{folder / 'store.sqlite'}"
    else:
        pg_name, url = fresh_postgres(POSTGRES_ADMIN, "bench_hl7")
    port = free_port()
    settings = folder / "settings.yaml"
    settings.write_text(
        yaml.safe_dump(
            {
                "host": {"source": "hl7-mllp", "mapping": "hl7-siu", "writer": None},
                "store": {"url": url},
                "clinic": {"timezone": "Europe/Rome"},
                "log": {"level": "WARNING"},
            }
        )
    )
    with (folder / "listener.log").open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bridge",
                "--config",
                str(settings),
                "listen",
                "--port",
                str(port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    rows: list[tuple[str, ...]] = []
    engine = sa.create_engine(url)
    try:
        deadline = time.monotonic() + 60
        while not answers(port):
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit((folder / "listener.log").read_text())
            time.sleep(0.1)
        send(port, [messages("W", 0, WARM_UP)])
        sent_before = WARM_UP
        for connections in (1, 8):
            per_lane = total // connections
            run = f"C{connections}"
            lanes = [messages(run, n, per_lane) for n in range(connections)]
            seconds, accepted, latencies = send(port, lanes)
            sent = per_lane * connections
            assert accepted == sent, f"{sent - accepted} messages were not AA"
            sent_before += sent
            stored = wait_until(
                lambda n=sent_before: count(engine, "hl7_messages") == n,
                120,
            )
            catch_up = wait_until(
                lambda n=sent_before: (
                    count(engine, "hl7_messages", "WHERE status = 'applied'") == n
                ),
                120,
            )
            latencies.sort()
            rows.append(
                (
                    kind,
                    str(connections),
                    str(sent),
                    f"{sent / seconds:,.0f}",
                    f"{statistics.median(latencies) * 1000:.2f}",
                    f"{latencies[int(len(latencies) * 0.99)] * 1000:.2f}",
                    f"{stored:.2f}",
                    f"{stored + catch_up:.2f}",
                )
            )
        held = count(engine, "hl7_appointments")
        assert held == sent_before, f"mirror holds {held} of {sent_before} appointments"
    finally:
        engine.dispose()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
        if pg_name is not None:
            drop_postgres(POSTGRES_ADMIN, pg_name)
        shutil.rmtree(folder, ignore_errors=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument(
        "--messages",
        type=int,
        default=16000,
        help="per run (default 16000: long enough that the mirror is applied during the run, "
        "so its cost is in the figure, not after it)",
    )
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.store == "both" else [args.store]
    rows = []
    for kind in kinds:
        rows += bench_store(kind, args.messages)
    headers = ("store", "connections", "messages", "msg/s", "ACK p50 ms", "ACK p99 ms",
               "stored +s", "mirror +s")  # fmt: skip
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print(" | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    for row in rows:
        print(" | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
    print(f"\n{os.cpu_count()} CPUs; every message ACKed AA after it was stored (durably).")


if __name__ == "__main__":
    main()

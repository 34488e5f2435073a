"""Benchmark: due jobs to the provider, and pacing accuracy.

    .venv/bin/python bench/bench_delivery.py [--store sqlite|postgresql] [--messages 3000]

1. Throughput: a SQLite OpenEMR host with N synthetic patients and appointments tomorrow, one
   cycle plans N SMS reminders (not timed), then ``Dispatcher.run_due()`` sends them all to a
   local server speaking Twilio's Messages API, running in its own process (the bridge's
   second core), pacing off. Everything a real send does is timed: claim, the last check
   against the host, rendering, the ledger row committed before the request, the HTTP request,
   recording the answer. Target: >= 500 messages/s on the project's 2-core machine.
2. Pacing: 16 calls with ``delivery.pacing.voice = 2`` seconds, on the real clock; the gaps
   between request starts are measured at the provider. Target: every gap within 5 % of 2 s.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bridge.clock import SystemClock  # noqa: E402
from bridge.cycle import run_cycle  # noqa: E402
from bridge.demo.host import OpenEmrHost  # noqa: E402
from bridge.demo.openemr_tables import create_openemr_tables  # noqa: E402
from bridge.dispatcher import Dispatcher  # noqa: E402
from bridge.runtime import Runtime  # noqa: E402
from bridge.settings import load_settings  # noqa: E402
from tests.integration.conftest import write_settings  # noqa: E402
from tests.integration.delivery.providers import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio  # noqa: E402

POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
WRITER = ["sql"]


def serve(queue: Any, stop: Any) -> None:
    """The provider, in its own process; reports its URL, then the request start times."""
    server = FakeTwilio()
    starts: list[float] = []
    original = server.next_mode

    def timed() -> str:
        starts.append(time.time())
        return original()

    server.next_mode = timed  # type: ignore[method-assign]
    queue.put(server.url)
    stop.wait()
    queue.put((len(server.messages) + len(server.calls), starts))
    server.close()


def host_with(folder: Path, count: int) -> str:
    url = f"sqlite:///{folder / 'host.sqlite'}"
    engine = sa.create_engine(url)
    create_openemr_tables(engine)
    host = OpenEmrHost(engine)
    host.seed_reference()
    host.add_facility(1, "Synthetic Clinic", phone="(202) 555-0199")
    host.add_provider(1, "Ada", "Rossi", title="Dr.", facility_id=1)
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date()
    with engine.begin() as connection:
        patients = host.table("patient_data")
        events = host.table("openemr_postcalendar_events")
        connection.execute(
            sa.insert(patients),
            [
                {
                    "pid": pid,
                    "pubpid": f"MRN{pid:06d}",
                    "fname": "Alice",
                    "lname": f"Synthetic{pid}",
                    "language": "english",
                    "phone_cell": f"(202) 555-{100 + pid % 100:04d}",
                    "hipaa_allowsms": "YES",
                    "hipaa_voice": "YES",
                }
                for pid in range(1, count + 1)
            ],
        )
    for pid in range(1, count + 1):
        minute = pid % 600
        host.add_appointment(pid, tomorrow, f"{8 + minute // 60:02d}:{minute % 60:02d}")
    del events
    engine.dispose()
    return url


def store_url(kind: str, folder: Path) -> tuple[str, str | None]:
    if kind == "sqlite":
        return f"sqlite:///{folder / 'store.sqlite'}", None
    name = f"bridge_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return POSTGRES_ADMIN.rsplit("/", 1)[0] + "/" + name, name


def drop(name: str | None) -> None:
    if name is None:
        return
    admin = sa.create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def runtime_for(
    folder: Path, host: str, store: str, provider: str, channel: str, **sections: Any
) -> Runtime:
    options = {
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "api_base": provider,
        "webhook_base": "https://bridge.example.test",
    }
    channels: dict[str, Any] = {
        "sms": {"plugin": "twilio-sms", "from_number": "+12025550150", **options},
        "voice": {"plugin": "twilio-voice", **options},
        "email": {"plugin": "outbox", "folder": "outbox"},
    }
    path = write_settings(
        folder,
        host,
        store,
        host={"url": host, "mapping": "openemr", "writer": WRITER[0]},
        clinic={"name": "Synthetic Clinic", "timezone": "UTC", "caller_id": "+12025550150"},
        reminders={"channels": [channel], "start_hour": 0, "end_hour": 24, "days_ahead": 2},
        channels=channels,
        **sections,
    )
    return Runtime.build(load_settings(path), SystemClock())


def with_provider(work: Any) -> tuple[Any, int, list[float]]:
    context = multiprocessing.get_context("spawn")
    queue, stop = context.Queue(), context.Event()
    process = context.Process(target=serve, args=(queue, stop), daemon=True)
    process.start()
    url = queue.get(timeout=30)
    try:
        result = work(url)
    finally:
        stop.set()
        held, starts = queue.get(timeout=30)
        process.join(timeout=10)
    return result, held, starts


def throughput(kind: str, count: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        host = host_with(folder, count)
        store, name = store_url(kind, folder)
        try:

            def work(provider: str) -> tuple[float, int]:
                runtime = runtime_for(folder, host, store, provider, "sms")
                try:
                    run_cycle(runtime)
                    started = time.perf_counter()
                    report = Dispatcher(runtime).run_due()
                    return time.perf_counter() - started, report.sent
                finally:
                    runtime.close()

            (seconds, sent), held, _ = with_provider(work)
        finally:
            drop(name)
    assert sent == held == count, (sent, held, count)
    print(
        f"throughput, {kind} store: {count} messages in {seconds:.2f} s = {count / seconds:.0f}/s"
    )


def pacing(kind: str, calls: int = 16, delay: float = 2.0) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        host = host_with(folder, calls)
        store, name = store_url(kind, folder)
        try:

            def work(provider: str) -> int:
                runtime = runtime_for(
                    folder, host, store, provider, "voice", delivery={"pacing": {"voice": delay}}
                )
                try:
                    run_cycle(runtime)
                    return Dispatcher(runtime).run_due().sent
                finally:
                    runtime.close()

            sent, held, starts = with_provider(work)
        finally:
            drop(name)
    assert sent == held == calls, (sent, held, calls)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    worst = max(abs(g - delay) / delay for g in gaps)
    print(
        f"pacing {delay:g} s, {kind} store: {calls} calls, gaps {min(gaps):.3f}-{max(gaps):.3f} s "
        f"(mean {statistics.mean(gaps):.3f} s), worst deviation {worst:.2%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--skip-pacing", action="store_true")
    parser.add_argument(
        "--no-writer", action="store_true", help="no host writer (no sent flags on the host)"
    )
    args = parser.parse_args()
    if args.no_writer:
        WRITER[0] = ""
    throughput(args.store, args.messages)
    if not args.skip_pacing:
        pacing(args.store)


if __name__ == "__main__":
    main()

"""Benchmark: from a patient's click on "Confirm" to the OpenEMR row holding the new status.

    .venv/bin/python bench/bench_patient.py [--answers 300] [--store sqlite|postgresql]

Builds a fresh MariaDB database with OpenEMR-shaped tables (the project's DDL, as 8.x has them),
ANSWERS synthetic patients with one appointment each two days out, and one weekly series per ten
patients (so a tenth of the answers split an occurrence off a series, the heaviest write). The
bridge runs as the service does: web server (uvicorn) on loopback and the write-back worker
thread polling its queue. Links come from a real poll, plan and dispatch to the outbox.

For each patient, not timed: open the link, pass the birth-date check, load the appointment page.
Timed: from sending the "Confirm" (or, one in four, "Cancel") form until a separate MariaDB
connection reads the new status in ``openemr_postcalendar_events`` (the standalone row for a
series). Prints p50 / p90 / p99 / max. Target: p99 <= 1 s.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import sqlalchemy as sa
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bridge.clock import SystemClock  # noqa: E402
from bridge.cycle import run_cycle  # noqa: E402
from bridge.demo.host import OpenEmrHost, Repeat  # noqa: E402
from bridge.demo.openemr_tables import create_openemr_tables  # noqa: E402
from bridge.dispatcher import Dispatcher  # noqa: E402
from bridge.runtime import Runtime  # noqa: E402
from bridge.settings import load_settings  # noqa: E402
from bridge.web.server import start_in_thread  # noqa: E402
from bridge.writeback_worker import run_worker  # noqa: E402

ADMIN = "mysql+pymysql://root@127.0.0.1:3306/"
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
ZONE = "Europe/Rome"
PORT = 8479


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=300)
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    name = f"bridge_bench_patient_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(ADMIN)
    with admin.begin() as connection:
        connection.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    store_db = None
    try:
        host_url = f"{ADMIN}{name}?charset=utf8mb4"
        store_url, store_db = store(args.store)
        run(host_url, store_url, args.answers)
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        if store_db is not None:
            engine = sa.create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
            with engine.connect() as connection:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{store_db}" WITH (FORCE)'))
    return 0


def store(kind: str) -> tuple[str, str | None]:
    if kind == "sqlite":
        return f"sqlite:///{tempfile.mkdtemp()}/store.sqlite", None
    name = f"bridge_bench_store_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    return POSTGRES.rsplit("/", 1)[0] + f"/{name}", name


def run(host_url: str, store_url: str, answers: int) -> None:
    engine = sa.create_engine(host_url)
    create_openemr_tables(engine)
    host = OpenEmrHost(engine)
    host.seed_reference(ZONE)
    host.add_facility(1, "Bench Clinic")
    host.add_provider(1, "Ada", "Rossi", title="Dr.", facility_id=1)
    day = datetime.now(ZoneInfo(ZONE)).date() + timedelta(days=2)
    for pid in range(1, answers + 1):
        host.add_patient(pid, "Bench", f"Patient{pid}", DOB=date(1970, 1, 1) + timedelta(days=pid))
        start = f"{8 + pid % 10:02d}:{pid % 4 * 15:02d}"
        if pid % 10 == 0:
            host.add_appointment(
                pid,
                day - timedelta(days=7),
                start,
                repeat=Repeat(),
                end_date=day + timedelta(days=60),
            )
        else:
            host.add_appointment(pid, day, start)
    folder = Path(tempfile.mkdtemp())
    settings_file = folder / "settings.yaml"
    settings_file.write_text(
        yaml.safe_dump(
            {
                "mode": "live",
                "clinic": {"name": "Bench Clinic", "timezone": ZONE},
                "host": {"url": host_url},
                "store": {"url": store_url},
                "reminders": {
                    "days_ahead": 3,
                    "channels": ["sms"],
                    "start_hour": 0,
                    "end_hour": 24,
                },
                "channels": {"sms": {"plugin": "outbox", "folder": str(folder / "outbox")}},
                "web": {"port": PORT, "base_url": f"http://127.0.0.1:{PORT}"},
                "patient": {"requests_per_minute": 100_000, "failures_per_hour": 100_000},
                "log": {"level": "ERROR"},
            }
        )
    )
    runtime = Runtime.build(load_settings(settings_file), SystemClock())
    run_cycle(runtime)
    Dispatcher(runtime).run_due()
    lines = (folder / "outbox" / "sms.jsonl").read_text().splitlines()
    links: dict[int, str] = {}
    for line in lines:
        text = re.search(r"(/a/[\w.-]+)", line)
        key = re.search(r'"appointment": "(\d+)"', line)
        if text and key:
            links[int(key.group(1))] = text.group(1)
    server = start_in_thread(runtime, PORT)
    stopping = threading.Event()
    worker = threading.Thread(target=run_worker, args=(runtime, stopping), daemon=True)
    worker.start()
    reader = sa.create_engine(host_url)
    timings: list[float] = []
    try:
        for n, (eid, path) in enumerate(sorted(links.items())):
            pid = eid  # one appointment per patient, inserted in order
            born = date(1970, 1, 1) + timedelta(days=pid)
            with httpx.Client(base_url=f"http://127.0.0.1:{PORT}", follow_redirects=True) as client:
                page = client.get(path)
                csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
                form = {
                    "csrf": csrf,
                    "day": str(born.day),
                    "month": str(born.month),
                    "year": str(born.year),
                }
                page = client.post(path, data=form)
                csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
                version = re.search(r'name="v" value="(\w+)"', page.text).group(1)  # type: ignore[union-attr]
                action = "cancel" if n % 4 == 3 else "confirm"
                started = time.perf_counter()
                client.post(
                    f"{path}/answer",
                    data={"csrf": csrf, "v": version, "action": action},
                    follow_redirects=False,
                )
                while not changed(reader, pid, day):
                    time.sleep(0.002)
                timings.append(time.perf_counter() - started)
    finally:
        stopping.set()
        server.should_exit = True
        worker.join(timeout=5)
        runtime.close()
    timings.sort()

    def pct(p: float) -> float:
        return timings[min(len(timings) - 1, max(round(p / 100 * len(timings)) - 1, 0))] * 1000

    series = sum(1 for eid in links if eid % 10 == 0)
    print(f"{len(timings)} answers ({series} on series), store {store_url.split(':')[0]}")
    mean = statistics.mean(timings) * 1000
    print(
        f"click -> host row updated: p50 {pct(50):.0f} ms, p90 {pct(90):.0f} ms, "
        f"p99 {pct(99):.0f} ms, max {timings[-1] * 1000:.0f} ms, mean {mean:.0f} ms"
    )


def changed(reader: sa.Engine, pid: int, day: date) -> bool:
    with reader.connect() as connection:
        status = connection.execute(
            sa.text(
                "SELECT pc_apptstatus FROM openemr_postcalendar_events "
                "WHERE pc_pid = :pid AND pc_eventDate = :day AND pc_recurrtype = 0"
            ),
            {"pid": str(pid), "day": day},
        ).scalar()
    return status is not None and status != "-"


if __name__ == "__main__":
    raise SystemExit(main())

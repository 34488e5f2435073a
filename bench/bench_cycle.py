"""Benchmark: one poll-and-plan cycle on an OpenEMR host of 1,000,000 appointments.

    .venv/bin/python bench/bench_cycle.py [--store sqlite|postgresql] [--reseed]

Seeds (once; reused while its shape matches) a MariaDB database ``bridge_bench`` with OpenEMR's
genuine schema (``../shared``; the project's own DDL where that is missing), 100,000 synthetic
patients and 1,000,000 appointments spread over 700 days around "now" (about 20,000 in the
14-day window, 500 weekly series among them). Then, in a fresh process so that peak memory is the
bridge's own, it times: the first cycle (everything new), cycles with no change, and cycles after
1 % of the window's appointments changed on the host. Targets on the 2-core machine: no-change
cycle <= 1 s, 1 %-changed cycle <= 2 s, peak RSS <= 300 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import phpserialize
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ADMIN = "mysql+pymysql://root@127.0.0.1:3306/"
DATABASE = "bridge_bench"
NOW = "2026-06-01T05:00:00Z"  # Monday 07:00 in Rome, before the sending window
TODAY = date(2026, 6, 1)
APPOINTMENTS = 1_000_000
PATIENTS = 100_000
SERIES = 500
DAYS_BACK, DAYS_AHEAD = 600, 100
GENUINE = ROOT.parent / "shared/fixtures/openemr/openemr-8.2.0-dev-database.sql"
STATUSES = ["-"] * 80 + ["*"] * 5 + ["x"] * 5 + ["@"] * 3 + [">"] * 3 + ["?"] * 2 + ["SMS"] * 2


def seed(reseed: bool) -> str:
    """Create and fill the bench database unless a matching one exists; returns its URL."""
    url = f"{ADMIN}{DATABASE}?charset=utf8mb4&local_infile=1"
    admin = sa.create_engine(ADMIN)
    with admin.connect() as connection:
        exists = connection.execute(sa.text(f"SHOW DATABASES LIKE '{DATABASE}'")).first()
    if exists and not reseed:
        engine = sa.create_engine(url)
        with engine.connect() as connection:
            count = connection.execute(
                sa.text("SELECT COUNT(*) FROM openemr_postcalendar_events")
            ).scalar()
        if count == APPOINTMENTS + SERIES:
            print(f"reusing {DATABASE}: {count} appointment rows")
            return url
    started = time.perf_counter()
    with admin.begin() as connection:
        connection.execute(sa.text(f"DROP DATABASE IF EXISTS {DATABASE}"))
        connection.execute(sa.text(f"CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4"))
    client = shutil.which("mariadb") or shutil.which("mysql")
    if GENUINE.exists() and client:
        subprocess.run(
            [client, "-h127.0.0.1", "-uroot", DATABASE],
            input=GENUINE.read_bytes(),
            check=True,
        )
        schema = "genuine OpenEMR 8.2 schema"
    else:
        from bridge.demo.openemr_tables import create_openemr_tables

        create_openemr_tables(sa.create_engine(url))
        schema = "the project's own OpenEMR DDL"
    engine = sa.create_engine(url)
    from bridge.demo.host import OpenEmrHost

    host = OpenEmrHost(engine)
    host.seed_reference()
    for provider in range(1, 41):
        host.add_provider(provider, f"Prov{provider}", "Synthetic", title="Dr.", facility_id=1)
    host.add_facility(1, "Bench Clinic")
    _load(engine, "patient_data", _patients())
    _load(engine, "openemr_postcalendar_events", _appointments())
    print(f"seeded {DATABASE} ({schema}) in {time.perf_counter() - started:.0f}s")
    return url


def _load(engine: sa.Engine, table: str, rows: tuple[list[str], list[tuple[object, ...]]]) -> None:
    """Bulk load through a TSV file and LOAD DATA LOCAL INFILE (the fastest MariaDB path)."""
    columns, values = rows
    with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False) as handle:
        for row in values:
            handle.write("\t".join("\\N" if v is None else str(v) for v in row) + "\n")
        path = handle.name
    with engine.begin() as connection:
        connection.exec_driver_sql(
            f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE {table} ({', '.join(columns)})"
        )
    Path(path).unlink()


def _patients() -> tuple[list[str], list[tuple[object, ...]]]:
    rng = random.Random(1)
    columns = [
        "pid",
        "pubpid",
        "fname",
        "lname",
        "DOB",
        "sex",
        "language",
        "phone_cell",
        "phone_home",
        "email",
        "hipaa_allowsms",
        "hipaa_allowemail",
        "hipaa_voice",
    ]
    rows = []
    for pid in range(1, PATIENTS + 1):
        rows.append(
            (
                pid,
                f"MRN{pid}",
                f"First{pid}",
                f"Last{pid}",
                date(1940, 1, 1) + timedelta(days=rng.randrange(29000)),
                rng.choice(["Female", "Male"]),
                rng.choice(["english", "italian", "spanish"]),
                f"(202) 555-{rng.randrange(100, 200):04d}" if rng.random() < 0.9 else "",
                f"(202) 555-{rng.randrange(100, 200):04d}",
                f"p{pid}@example.test" if rng.random() < 0.8 else "",
                "YES" if rng.random() < 0.85 else "NO",
                "YES" if rng.random() < 0.7 else "",
                "YES",
            )
        )
    return columns, rows


def _appointments() -> tuple[list[str], list[tuple[object, ...]]]:
    rng = random.Random(2)
    columns = [
        "pc_catid",
        "pc_multiple",
        "pc_aid",
        "pc_pid",
        "pc_title",
        "pc_time",
        "pc_hometext",
        "pc_eventDate",
        "pc_endDate",
        "pc_duration",
        "pc_recurrtype",
        "pc_recurrspec",
        "pc_startTime",
        "pc_endTime",
        "pc_apptstatus",
        "pc_eventstatus",
        "pc_facility",
    ]
    none = phpserialize.dumps({"event_repeat_freq": "0", "exdate": ""}).decode()
    weekly = phpserialize.dumps(
        {
            "event_repeat_freq": "1",
            "event_repeat_freq_type": "1",
            "event_repeat_on_num": "1",
            "event_repeat_on_day": "0",
            "event_repeat_on_freq": "0",
            "exdate": "",
        }
    ).decode()
    # Rows go in in booking order, as in a real OpenEMR (pc_eid grows with time): each visit is
    # booked 0-60 days before it, so the coming weeks' visits sit in the newest pages.
    planned: list[tuple[date, tuple[object, ...]]] = []
    for n in range(APPOINTMENTS + SERIES):
        series = n >= APPOINTMENTS
        day = TODAY + timedelta(days=rng.randrange(-DAYS_BACK, DAYS_AHEAD))
        if series:
            day = TODAY - timedelta(days=rng.randrange(7, 300))
        booked = day - timedelta(days=rng.randrange(0, 61))
        minute = rng.randrange(8 * 60, 18 * 60, 15)
        start = f"{minute // 60:02d}:{minute % 60:02d}:00"
        end = f"{(minute + 15) // 60:02d}:{(minute + 15) % 60:02d}:00"
        provider_event = not series and rng.random() < 0.05
        planned.append(
            (
                booked,
                (
                    2 if provider_event else 5,
                    0,
                    rng.randrange(1, 41),
                    "" if provider_event else rng.randrange(1, PATIENTS + 1),
                    "Office Visit",
                    datetime.combine(booked, datetime.min.time()),
                    "",
                    day,
                    (TODAY + timedelta(days=200)) if series else day,
                    900,
                    1 if series else 0,
                    weekly if series else none,
                    start,
                    end,
                    rng.choice(STATUSES),
                    1,
                    1,
                ),
            )
        )
    planned.sort(key=lambda item: item[0])
    return columns, [row for _, row in planned]


# --- the measured part, in its own process ------------------------------------------------------


def peak_rss_mb() -> float:
    """This process's peak RSS. ``VmHWM`` where Linux gives it: ``ru_maxrss`` survives
    fork and exec, so after a seeding run it would report the seeding parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def measure(host_url: str, store_url: str, folder: Path) -> dict[str, object]:
    """Time the cycles; with BRIDGE_BENCH_PROFILE set, print a cProfile of one no-change cycle."""
    from bridge.clock import ManualClock, parse_instant
    from bridge.cycle import run_cycle
    from bridge.runtime import Runtime
    from bridge.settings import load_settings

    settings = load_settings(
        None,
        host={"url": host_url},
        store={"url": store_url},
        clinic={"timezone": "Europe/Rome"},
        reminders={"days_ahead": 14, "channels": ["sms", "email"]},
        channels={
            c: {"plugin": "outbox", "folder": str(folder / "outbox")}
            for c in ("sms", "email", "voice")
        },
        log={"level": "WARNING"},
    )
    clock = ManualClock(parse_instant(NOW))
    runtime = Runtime.build(settings, clock)
    engine = sa.create_engine(host_url)
    rng = random.Random(3)
    result: dict[str, object] = {}

    started = time.perf_counter()
    first = run_cycle(runtime)
    result["first_cycle_s"] = round(time.perf_counter() - started, 3)
    result["window_occurrences"] = first.scanned
    result["jobs_planned"] = first.jobs.planned
    result["jobs_skipped"] = first.jobs.skipped

    no_change = []
    for _ in range(5):
        clock.advance(timedelta(seconds=30))
        started = time.perf_counter()
        report = run_cycle(runtime)
        no_change.append(time.perf_counter() - started)
        assert report.changed == report.new == report.gone == 0, report.summary()
    if os.environ.get("BRIDGE_BENCH_PROFILE"):
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        clock.advance(timedelta(seconds=30))
        profiler.runcall(run_cycle, runtime)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(35)
    result["no_change_cycle_s"] = round(statistics.median(no_change), 3)
    result["no_change_cycle_max_s"] = round(max(no_change), 3)

    with engine.connect() as connection:
        window_keys = [
            row[0]
            for row in connection.execute(
                sa.text(
                    "SELECT pc_eid FROM openemr_postcalendar_events WHERE pc_recurrtype = 0 "
                    "AND pc_pid <> '' AND pc_eventDate BETWEEN :a AND :b"
                ),
                {"a": TODAY, "b": TODAY + timedelta(days=14)},
            )
        ]
    changed_runs = []
    per_run = max(1, len(window_keys) // 100)
    for _ in range(3):
        picked = rng.sample(window_keys, per_run)
        with engine.begin() as connection:
            for index, key in enumerate(picked):
                if index % 2:
                    connection.execute(
                        sa.text(
                            "UPDATE openemr_postcalendar_events SET pc_apptstatus = "
                            "IF(pc_apptstatus = 'x', '-', 'x') WHERE pc_eid = :k"
                        ),
                        {"k": key},
                    )
                else:
                    connection.execute(
                        sa.text(
                            "UPDATE openemr_postcalendar_events SET pc_startTime = "
                            "ADDTIME(pc_startTime, '00:15:00') WHERE pc_eid = :k"
                        ),
                        {"k": key},
                    )
        clock.advance(timedelta(seconds=30))
        started = time.perf_counter()
        report = run_cycle(runtime)
        changed_runs.append(time.perf_counter() - started)
        assert report.changed == len(picked), report.summary()
    result["changed_rows_per_run"] = per_run
    result["one_percent_changed_cycle_s"] = round(statistics.median(changed_runs), 3)
    result["one_percent_changed_cycle_max_s"] = round(max(changed_runs), 3)
    result["peak_rss_mb"] = peak_rss_mb()
    runtime.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument(
        "--measure", nargs=3, metavar=("HOST", "STORE", "DIR"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure[0], args.measure[1], Path(args.measure[2]))))
        return 0
    host_url = seed(args.reseed)
    folder = Path(tempfile.mkdtemp(prefix="bridge-bench-"))
    if args.store == "sqlite":
        store_url = f"sqlite:///{folder / 'store.sqlite'}"
    else:
        pg = sa.create_engine(
            "postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT"
        )
        with pg.connect() as connection:
            connection.execute(sa.text("DROP DATABASE IF EXISTS bridge_bench_store WITH (FORCE)"))
            connection.execute(sa.text("CREATE DATABASE bridge_bench_store"))
        store_url = "postgresql+psycopg://postgres@127.0.0.1:5432/bridge_bench_store"
    done = subprocess.run(
        [sys.executable, __file__, "--measure", host_url, store_url, str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or os.environ.get("BRIDGE_BENCH_PROFILE"):
        print(done.stderr, file=sys.stderr)
        return done.returncode
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"store: {args.store}")
    for name, value in figures.items():
        print(f"  {name:34} {value}")
    ok = (
        figures["no_change_cycle_s"] <= 1.0
        and figures["one_percent_changed_cycle_s"] <= 2.0
        and figures["peak_rss_mb"] <= 300
    )
    print(
        "targets (no change <= 1 s, 1 % changed <= 2 s, RSS <= 300 MB):", "met" if ok else "NOT met"
    )
    shutil.rmtree(folder, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

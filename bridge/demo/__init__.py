"""``bridge demo``: the whole flow on an embedded demo host, on a fresh machine.

It builds an OpenEMR-shaped host in SQLite (``bridge-demo/demo-host.sqlite``) with synthetic
patients and appointments around today, runs one cycle (poll, plan, dispatch to the outbox in
testing mode) and the day's recall, prints what was planned and sent, and keeps serving the web
pages (status, confirm / cancel links, online booking) until stopped.
Each run starts from a fresh demo folder, so it shows the same story every time.
"""

from __future__ import annotations

import shutil
import signal
import threading
from pathlib import Path
from typing import Any

from bridge.booking.recall import run_recall
from bridge.clock import SystemClock, local_date
from bridge.cycle import run_cycle
from bridge.demo.report import print_report
from bridge.demo.scenario import seed_demo_host
from bridge.dispatcher import Dispatcher
from bridge.logs import setup_logging
from bridge.runtime import Runtime
from bridge.settings import load_settings

DEMO_TIMEZONE = "America/New_York"


def demo_overrides(folder: Path, timezone: str, port: int | None) -> dict[str, Any]:
    """Settings the demo always uses, whatever the settings file says."""
    overrides: dict[str, Any] = {
        "mode": "testing",
        "host": {"url": f"sqlite:///{folder / 'demo-host.sqlite'}", "mapping": "openemr"},
        "store": {"url": f"sqlite:///{folder / 'bridge.sqlite'}"},
        "testing": {"phone": "+12025550100", "email": "front-desk@example.test"},
        "clinic": {"name": "Demo Family Clinic", "phone": "+12025550199", "timezone": timezone},
        # A demo must show sends whatever the hour it is run at: the window is the whole day.
        "reminders": {
            "days_ahead": 3,
            "channels": ["sms", "email"],
            "start_hour": 0,
            "end_hour": 24,
            "delay_seconds": 0,
        },
        "channels": {
            name: {"plugin": "outbox", "folder": str(folder / "outbox")}
            for name in ("sms", "email", "voice")
        },
        # Online booking on the providers' In Office hours, and the recall that offers it.
        "booking": {
            "enabled": True,
            "min_notice_hours": 0,
            "map_url": "https://maps.example.test/demo-family-clinic",
            "parking": "Free parking behind the building.",
            "reasons": [
                {
                    "key": "checkup",
                    "name": {"en": "Check-up", "it": "Controllo", "es": "Revisión", "fr": "Bilan"},
                    "service": "9",
                    "flows": ["existing", "recall", "treatment"],
                },
                {
                    "key": "first-visit",
                    "name": {
                        "en": "First visit",
                        "it": "Prima visita",
                        "es": "Primera visita",
                        "fr": "Première visite",
                    },
                    "service": "10",
                    "flows": ["new"],
                },
            ],
        },
        "recall": {"enabled": True, "services": ["5"], "reason": "checkup"},
    }
    if port is not None:
        overrides["web"] = {"port": port, "base_url": f"http://127.0.0.1:{port}"}
    return overrides


def run_demo(config: str | None, *, no_serve: bool, port: int | None, folder: str | None) -> int:
    """Build the demo host, run one cycle, report it, then serve until Ctrl-C (or exit)."""
    base = Path(folder or "bridge-demo").resolve()
    if base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True)
    settings = load_settings(config, **demo_overrides(base, DEMO_TIMEZONE, port))
    setup_logging("WARNING", None)
    clock = SystemClock()
    seed_demo_host(settings.host_url() or "", DEMO_TIMEZONE, clock.now())
    runtime = Runtime.build(settings, clock)
    try:
        cycle = run_cycle(runtime)
        recall = run_recall(
            runtime, local_date(clock.now(), runtime.zone(runtime.source.reference()))
        )
        dispatch = Dispatcher(runtime).run_due()
        print_report(runtime, base, cycle, recall, dispatch)
        if no_serve:
            return 0
        from bridge.web.server import start_in_thread

        stop = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        server = start_in_thread(runtime)
        print(f"\nStatus page: {settings.web.base_url}/  (Ctrl-C to stop)")
        print(f"Online booking: {settings.web.base_url}/book")
        stop.wait()
        server.should_exit = True
        return 0
    finally:
        runtime.close()

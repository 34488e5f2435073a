"""The dispatcher as its own process, for the SIGKILL fault test.

``python -m tests.integration.delivery.fault_worker SETTINGS --zygote`` imports everything once,
then forks a fresh dispatcher process for each ``run`` (or ``drain``) line on its standard input,
prints ``child PID``, and ``exit PID STATUS`` when that child ends. Each child builds its own
runtime from the settings file, prints ``ready`` and dispatches in a loop until it is killed
(``run``) or until no job is planned, sending or unknown (``drain``). Forking after the imports
makes 200 real processes, each killed with SIGKILL, affordable.
"""

from __future__ import annotations

import os
import sys
import time

import sqlalchemy as sa

import plugins.channels.twilio_sms  # noqa: F401  (imported before the fork, not in each child)
from bridge.dispatcher import Dispatcher
from bridge.runtime import Runtime
from bridge.settings import load_settings
from bridge.store.schema import jobs

OPEN = ("planned", "sending", "unknown")


def dispatch(settings_file: str, drain: bool) -> int:
    runtime = Runtime.build(load_settings(settings_file))
    dispatcher = Dispatcher(runtime)
    print("ready", flush=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        dispatcher.run_due()
        if drain:
            with runtime.store.begin("count open jobs") as connection:
                left = connection.execute(
                    sa.select(sa.func.count()).select_from(jobs).where(jobs.c.status.in_(OPEN))
                ).scalar()
            if not left:
                runtime.close()
                return 0
        time.sleep(0.05)
    return 1


def zygote(settings_file: str) -> None:
    for line in sys.stdin:
        command = line.strip()
        if command not in ("run", "drain"):
            return
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = dispatch(settings_file, command == "drain")
            finally:
                sys.stdout.flush()
                os._exit(code)
        print(f"child {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"exit {pid} {status}", flush=True)


if __name__ == "__main__":
    if "--zygote" in sys.argv[2:]:
        zygote(sys.argv[1])
    else:
        sys.exit(dispatch(sys.argv[1], "--drain" in sys.argv[2:]))

"""``bridge run``: the long-running service.

One ``schedule.Scheduler`` polls the host and plans every ``host.poll_seconds``; a second thread
dispatches due jobs (it may wait for pacing, which must not hold up polling); the web server runs
in a third. Every scheduled job is wrapped so one exception does not stop the loop (``schedule``
lets it escape) and each is idempotent over its window (``schedule`` never replays missed runs).
SIGTERM / SIGINT stop the service cleanly between two jobs.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

import schedule

from bridge import extensions
from bridge.cycle import run_cycle
from bridge.dispatcher import Dispatcher
from bridge.errors import BridgeError, HostUnavailable, StoreError
from bridge.runtime import Runtime
from bridge.settings import Settings

log = logging.getLogger(__name__)

DISPATCH_IDLE_SECONDS = 1.0


def run_service(settings: Settings, *, once: bool = False) -> int:
    """Build the runtime and run one cycle (``once``) or serve until stopped."""
    runtime = Runtime.build(settings)
    try:
        if once:
            report = run_cycle(runtime)
            sent = Dispatcher(runtime).run_due()
            print(f"cycle: {report.summary()}")
            print(f"dispatch: {sent.summary()}")
            return 0
        Service(runtime).serve()
        return 0
    finally:
        runtime.close()


def guarded(name: str, job: Callable[[], Any]) -> Callable[[], None]:
    """Run ``job``, logging instead of raising, so the scheduler keeps going."""

    def wrapper() -> None:
        try:
            job()
        except HostUnavailable as exc:
            log.warning("%s: host unavailable, will retry: %s", name, exc)
        except StoreError as exc:
            log.error("%s: store failed, will retry: %s", name, exc)
        except BridgeError as exc:
            log.error("%s failed: %s", name, exc)
        except Exception:
            log.exception("%s failed unexpectedly", name)

    return wrapper


class Service:
    """Poll, plan, dispatch and serve until asked to stop."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.stopping = threading.Event()
        self.scheduler = schedule.Scheduler()
        poll = runtime.settings.host.poll_seconds
        self.scheduler.every(poll).seconds.do(guarded("poll", lambda: run_cycle(runtime)))
        self.dispatcher = Dispatcher(runtime)

    def serve(self) -> None:
        # SIGBREAK is what the Windows service wrapper sends (Ctrl+Break) to stop the child.
        for name in ("SIGINT", "SIGTERM", "SIGBREAK"):
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), lambda *_: self.stopping.set())
        web = self._start_web()
        dispatch = threading.Thread(target=self._dispatch_loop, name="dispatch", daemon=True)
        workers = [
            threading.Thread(target=run, args=(self.runtime, self.stopping), name=name, daemon=True)
            for name, run in extensions.load(extensions.WORKERS)
        ]
        guarded("poll", lambda: run_cycle(self.runtime))()
        dispatch.start()
        for worker in workers:
            worker.start()
        log.info("bridge running (mode %s)", self.runtime.settings.mode)
        while not self.stopping.is_set():
            self.scheduler.run_pending()
            idle = self.scheduler.idle_seconds
            self.stopping.wait(min(max(idle or 1.0, 0.1), 1.0))
        log.info("stopping")
        dispatch.join(timeout=30)
        for worker in workers:
            worker.join(timeout=30)
        if web is not None:
            web.should_exit = True

    def _dispatch_loop(self) -> None:
        run = guarded("dispatch", self.dispatcher.run_due)
        while not self.stopping.is_set():
            run()
            self.stopping.wait(DISPATCH_IDLE_SECONDS)

    def _start_web(self) -> Any:
        from bridge.web.server import start_in_thread

        return start_in_thread(self.runtime)

"""Run the ASGI app with uvicorn in a background thread of the service."""

from __future__ import annotations

import logging
import threading
import time

import uvicorn

from bridge.runtime import Runtime
from bridge.web.app import create_app

log = logging.getLogger(__name__)


def start_in_thread(runtime: Runtime, port: int | None = None) -> uvicorn.Server:
    """Start serving; returns the server (set ``should_exit`` to stop it)."""
    web = runtime.settings.web
    config = uvicorn.Config(
        create_app(runtime),
        host=web.host,
        port=port or web.port,
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="web", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    if server.started:
        log.info("web server on http://%s:%s", web.host, port or web.port)
    else:
        log.error("web server did not start on %s:%s", web.host, port or web.port)
    return server

"""The ASGI application (Starlette). No page shows patient data unless the patient proved who
they are; the status page shows counts only."""

from __future__ import annotations

import logging
from html import escape

from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bridge import __version__, extensions
from bridge.runtime import Runtime
from bridge.store.schema import jobs

log = logging.getLogger(__name__)

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'",
    "Cache-Control": "no-store",
}


def job_counts(runtime: Runtime) -> dict[str, dict[str, int]]:
    """Jobs by channel and status."""
    counts: dict[str, dict[str, int]] = {}
    with runtime.store.begin("count jobs") as connection:
        rows = connection.execute(
            select(jobs.c.channel, jobs.c.status, func.count()).group_by(
                jobs.c.channel, jobs.c.status
            )
        )
        for channel, status, count in rows:
            counts.setdefault(channel, {})[status] = count
    return counts


def create_app(runtime: Runtime) -> Starlette:
    """The web app for one runtime."""

    async def health(_: Request) -> JSONResponse:
        return JSONResponse(
            {"status": "ok", "version": __version__, "mode": runtime.settings.mode},
            headers=SECURITY_HEADERS,
        )

    async def status(_: Request) -> HTMLResponse:
        counts = job_counts(runtime)
        statuses = sorted({s for by_status in counts.values() for s in by_status})
        head = "".join(f"<th>{escape(s)}</th>" for s in statuses)
        body = "".join(
            f"<tr><th>{escape(channel)}</th>"
            + "".join(f"<td>{by_status.get(s, 0)}</td>" for s in statuses)
            + "</tr>"
            for channel, by_status in sorted(counts.items())
        )
        page = (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{escape(runtime.settings.clinic.name)} - Reminder Bridge</title></head>"
            f"<body><h1>Reminder Bridge</h1><p>Mode: {escape(runtime.settings.mode)}</p>"
            f"<table><tr><th>channel</th>{head}</tr>{body}</table></body></html>"
        )
        return HTMLResponse(page, headers=SECURITY_HEADERS)

    routes: list[BaseRoute] = [Route("/health", health), Route("/", status)]
    for _, make in extensions.load(extensions.WEB):
        routes.extend(make(runtime))
    return Starlette(
        routes=routes,
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )


def _plain_page(status: int, title: str) -> Response:
    page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title></head><body><h1>{escape(title)}</h1></body></html>"
    )
    return HTMLResponse(page, status_code=status, headers=SECURITY_HEADERS)


async def http_error(_: Request, exc: Exception) -> Response:
    """An unknown path or method answered like every page: with the security headers and
    nothing echoed back from the request (features answer their own errors themselves)."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    return _plain_page(status, "Not found" if status == 404 else "Request refused")


async def server_error(request: Request, exc: Exception) -> Response:
    """A bug answered with a short page and the security headers; logged with the path's
    route only (a path can hold a link token, never shown in a log)."""
    route = request.scope.get("route")
    log.error(
        "web: %s on %s %s",
        type(exc).__name__,
        request.method,
        getattr(route, "path", "?"),
        exc_info=exc,
    )
    return _plain_page(500, "Something went wrong")

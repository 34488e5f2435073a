"""What every booking page shares, apart from the booking itself: the guarded handler (rate
limits, the host away answered 503), CSRF tokens, the session cookie, signed results, page
rendering with the patient pages' headers, and the refusals (expired form, 404, 429).

Handlers run in Starlette's thread pool: every step here may block on the store or the host.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from bridge.booking import passes
from bridge.booking.access import Access
from bridge.booking.passes import Pass
from bridge.booking.settings import Flow
from bridge.errors import SourceError
from bridge.patient import forms
from bridge.patient.guard import Csrf, RateLimiter, client_address
from bridge.patient.views import browser_language, page_response, see_other
from bridge.runtime import Runtime
from bridge.store.rejects import record_bad_form

SESSION_COOKIE = "rb_bsession"
CSRF_COOKIE = "rb_bcsrf"
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Visit:
    """One request's way in: the public new-patient pages, or a personal link."""

    base: str
    flow: Flow
    language: str
    link: Pass | None = None
    scope: str = "public"


class PageBase:
    """The plumbing of the booking pages for one runtime (``BookingPages`` adds the steps)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.limits = runtime.settings.patient
        self.access = Access(runtime)
        self.limiter = RateLimiter(runtime.clock)
        self.csrf = Csrf(self.access.keys.csrf, CSRF_COOKIE, "/")
        self.base_url = runtime.settings.web.base_url.rstrip("/")
        self.https = self.base_url.startswith("https://")

    def handler(
        self, step: Callable[..., Response], *, form: bool = False
    ) -> Callable[[Request], Any]:
        async def handle(request: Request) -> Response:
            try:
                data = await request.form(max_files=0, max_fields=20) if form else None
            except HTTPException:  # too many fields, a file, a field over 1 MB
                return await run_in_threadpool(self._guarded, self._unreadable, request, None)
            return await run_in_threadpool(self._guarded, step, request, data)

        return handle

    def _guarded(self, step: Callable[..., Response], request: Request, data: Any) -> Response:
        address = client_address(request, self.limits.trusted_proxies)
        wait = self.limiter.hit(f"req|{address}", self.limits.requests_per_minute, MINUTE)
        wait = wait or self.limiter.blocked(f"fail|{address}", self.limits.failures_per_hour, HOUR)
        if wait is not None:
            return self._limited(request, self._browser_language(request), wait)
        try:
            return step(request, data) if data is not None else step(request)
        except SourceError:
            return self._page(
                request, "unavailable.html", self._browser_language(request), status=503
            )

    def _start_session(self, link: Pass, session: str) -> None:
        hashed = self.access.keys.session_hash(session)
        assert hashed is not None
        until = self.runtime.clock.now() + timedelta(minutes=self.limits.session_minutes)
        with self.runtime.store.begin("start a booking session") as connection:
            passes.start_session(connection, link.id, hashed, until)

    def _session_cookie(self, response: Response, visit: Visit, session: str) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            session,
            max_age=self.limits.session_minutes * 60,
            path=visit.base,
            secure=self.https,
            httponly=True,
            samesite="strict",
        )

    def _signed(self, booking_id: int) -> str:
        mac = hmac.new(self.access.keys.csrf, f"booked|{booking_id}".encode(), hashlib.sha256)
        return f"{booking_id}.{mac.hexdigest()[:24]}"

    def _unsigned(self, value: str) -> int | None:
        head, _, _ = value.partition(".")
        if not head.isdigit() or len(value) > 64:
            return None
        return int(head) if hmac.compare_digest(self._signed(int(head)), value) else None

    def _page(
        self, request: Request, name: str, language: str, status: int = 200, **values: Any
    ) -> Response:
        response = page_response(
            self.runtime, request, name, language, status, https=self.https, **values
        )
        self.csrf.attach(request, response, self.https)
        return response

    def _csrf_token(self, request: Request, scope: str, form: str) -> str:
        return self.csrf.token_for(request, scope, form)

    def _csrf_ok(self, request: Request, scope: str, form: str, data: FormData) -> bool:
        return self.csrf.valid_for(request, scope, form, data.get("csrf"), self.base_url)

    def _expired(self, request: Request, language: str, start: str) -> Response:
        self._reject("csrf", forms.Invalid("csrf", "csrf_failed"), None)
        return self._page(request, "expired.html", language, 403, start=start)

    def _limited(self, request: Request, language: str, wait: float) -> Response:
        response = self._page(request, "limited.html", language, 429)
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response

    def _unreadable(self, request: Request) -> Response:
        """A post no page's form makes (files, extra fields, a huge field): refused as an
        expired form is, with the pages' headers, never Starlette's bare text answer."""
        self._reject("form", forms.Invalid("form", "unreadable"), None)
        token = request.path_params.get("token")
        start = f"/b/{token}" if token else "/book"
        language = self._browser_language(request)
        return self._page(request, "expired.html", language, 400, start=start)

    def _invalid(self, request: Request) -> Response:
        return self._page(request, "invalid.html", self._browser_language(request), 404)

    def _failed(self, request: Request) -> None:
        address = client_address(request, self.limits.trusted_proxies)
        self.limiter.hit(f"fail|{address}", self.limits.failures_per_hour, HOUR)

    def _browser_language(self, request: Request) -> str:
        return browser_language(request, self.runtime.settings.clinic.language)

    def _redirect(self, path: str) -> Response:
        return see_other(path, self.https)

    def _reject(self, form: str, problem: forms.Invalid, data: FormData | None) -> None:
        with self.runtime.store.begin("record a bad booking form") as connection:
            record_bad_form(
                connection,
                "booking-form",
                form,
                problem.field,
                problem.problem,
                (data or {}).items(),
                self.runtime.clock.now(),
                label="booking ",
            )

"""The patient pages (entry point ``bridge.web``), server-rendered, no JavaScript needed.

    GET  /a/{token}          birth-date form, or the appointment once the patient is verified
    POST /a/{token}          the birth date
    GET  /a/{token}/cancel   cancel, with an optional reason
    POST /a/{token}/answer   confirm / cancel / call me back
    GET  /a/{token}/done     what became of the answer
    GET  /p/static/...       the stylesheet

Every POST needs the form's CSRF token and is answered with a redirect (so a reload never posts
twice). Every request counts against the address's rate limit; bad links and wrong birth dates
count against a tighter one. An unusable link of any kind gets the same 404 page.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from bridge.errors import SourceError
from bridge.patient import forms
from bridge.patient.answer import command_for, outcome, submit
from bridge.patient.flow import PatientFlow, Visit
from bridge.patient.guard import (
    Csrf,
    RateLimiter,
    client_address,
)
from bridge.patient.linkstore import Link
from bridge.patient.views import (
    HERE,
    browser_language,
    date_order,
    page_response,
    see_other,
)
from bridge.runtime import Runtime
from bridge.store.rejects import record_bad_form

T = TypeVar("T")
SESSION_COOKIE = "rb_session"
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def routes(runtime: Runtime) -> list[BaseRoute]:
    """The patient pages for ``runtime``."""
    pages = Pages(runtime)
    return [
        Route("/a/{token}", pages.show, methods=["GET"]),
        Route("/a/{token}", pages.verify, methods=["POST"]),
        Route("/a/{token}/cancel", pages.cancel, methods=["GET"]),
        Route("/a/{token}/answer", pages.answer, methods=["POST"]),
        Route("/a/{token}/done", pages.done, methods=["GET"]),
        Mount("/p/static", app=StaticFiles(directory=HERE / "static"), name="patient-static"),
    ]


class Pages:
    """Request handlers; blocking work (store, host) runs in Starlette's thread pool."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings.patient
        self.flow = PatientFlow(runtime)
        self.limiter = RateLimiter(runtime.clock)
        self.csrf = Csrf(self.flow.csrf_key)
        self.base_url = runtime.settings.web.base_url.rstrip("/")
        self.https = self.base_url.startswith("https://")

    # --- handlers -----------------------------------------------------------------------------

    async def show(self, request: Request) -> Response:
        return await run_in_threadpool(self._show, request)

    async def verify(self, request: Request) -> Response:
        form = await request.form(max_files=0, max_fields=10)
        return await run_in_threadpool(self._verify, request, form)

    async def cancel(self, request: Request) -> Response:
        return await run_in_threadpool(self._cancel, request)

    async def answer(self, request: Request) -> Response:
        form = await request.form(max_files=0, max_fields=10)
        return await run_in_threadpool(self._answer, request, form)

    async def done(self, request: Request) -> Response:
        return await run_in_threadpool(self._done, request)

    # --- the steps ----------------------------------------------------------------------------

    def _show(self, request: Request) -> Response:
        link, refused = self._open(request)
        if link is None:
            return refused
        token = request.path_params["token"]
        if not self.flow.verified(link, request.cookies.get(SESSION_COOKIE)):
            return self._verify_page(request, link)
        if link.used_at is not None:
            return self._redirect(f"/a/{token}/done")
        return self._host(request, link, lambda: self._appointment_page(request, link))

    def _verify(self, request: Request, form: FormData) -> Response:
        link, refused = self._open(request)
        if link is None:
            return refused
        values = {name: forms.field(dict(form), name) for name in ("day", "month", "year")}
        if not self._csrf_ok(request, link, "verify", form):
            return self._expired(request, link, "verify")
        zone = self.runtime.zone(self.flow.reference())
        today = self.runtime.clock.now().astimezone(zone).date()
        born = forms.birth_date(values["day"], values["month"], values["year"], today)
        if isinstance(born, forms.Invalid):
            self._reject("verify", born, form)
            return self._verify_page(request, link, error=born, values=values, status=400)
        session = self._host(request, link, lambda: self.flow.check_birth_date(link, born))
        if isinstance(session, Response):
            return session
        if session is None:
            self.limiter.hit(
                f"fail|{self._address(request)}", self.settings.failures_per_hour, HOUR
            )
            if self.flow.tries_left(link) == 0:
                return self._invalid(request)
            wrong = forms.Invalid("day", "no_match")
            return self._verify_page(request, link, error=wrong, values=values, status=400)
        token = request.path_params["token"]
        response = self._redirect(f"/a/{token}")
        response.set_cookie(
            SESSION_COOKIE,
            session,
            max_age=self.settings.session_minutes * 60,
            path=f"/a/{token}",
            secure=self.https,
            httponly=True,
            samesite="strict",
        )
        return response

    def _cancel(self, request: Request) -> Response:
        link = self._verified(request)
        if isinstance(link, Response):
            return link
        return self._host(request, link, lambda: self._cancel_page(request, link))

    def _answer(self, request: Request, form: FormData) -> Response:
        link = self._verified(request)
        if isinstance(link, Response):
            return link
        if not self._csrf_ok(request, link, "answer", form):
            return self._expired(request, link, "answer")
        fields = dict(form)
        chosen = forms.action(forms.field(fields, "action"))
        reason = forms.reason(forms.field(fields, "reason"))
        if isinstance(chosen, forms.Invalid) or isinstance(reason, forms.Invalid):
            problem = chosen if isinstance(chosen, forms.Invalid) else reason
            assert isinstance(problem, forms.Invalid)
            self._reject("answer", problem, form)
            if problem.field == "reason":
                return self._host(
                    request,
                    link,
                    lambda: self._cancel_page(request, link, error=problem, status=400),
                )
            return self._host(request, link, lambda: self._appointment_page(request, link, 400))

        def act() -> Response:
            visit = self.flow.visit(link)
            stale = forms.field(fields, "v") != visit.version
            if visit.state != "open" or stale or (chosen == "confirm" and not visit.can_confirm):
                return self._appointment_page(request, link, 409, visit=visit, stale=stale)
            assert visit.appointment is not None and not isinstance(chosen, forms.Invalid)
            command = command_for(link, chosen, visit.appointment, str(reason))
            submit(self.runtime, link, command, chosen)
            return self._redirect(f"/a/{request.path_params['token']}/done")

        return self._host(request, link, act)

    def _done(self, request: Request) -> Response:
        link = self._verified(request)
        if isinstance(link, Response):
            return link
        if link.used_at is None:
            return self._redirect(f"/a/{request.path_params['token']}")
        result = outcome(self.runtime, link.writeback_id)
        return self._page(request, "done.html", link.language, action=link.answer, result=result)

    # --- pieces -------------------------------------------------------------------------------

    def _open(self, request: Request) -> tuple[Link | None, Response]:
        """The usable link of this request, or the response refusing it (rate limit, 404)."""
        address = self._address(request)
        wait = self.limiter.hit(f"req|{address}", self.settings.requests_per_minute, MINUTE)
        wait = wait or self.limiter.blocked(
            f"fail|{address}", self.settings.failures_per_hour, HOUR
        )
        if wait is not None:
            return None, self._limited(request, wait)
        token = request.path_params["token"]
        link = self.flow.open(token, request.cookies.get(SESSION_COOKIE))
        if link is None:
            self.limiter.hit(f"fail|{address}", self.settings.failures_per_hour, HOUR)
            return None, self._invalid(request)
        return link, Response()

    def _verified(self, request: Request) -> Link | Response:
        link, refused = self._open(request)
        if link is None:
            return refused
        if not self.flow.verified(link, request.cookies.get(SESSION_COOKIE)):
            return self._redirect(f"/a/{request.path_params['token']}")
        return link

    def _host(self, request: Request, link: Link, step: Callable[[], T]) -> T | Response:
        """Run ``step``; a host that cannot be read now gets a "try again later" page."""
        try:
            return step()
        except SourceError:
            return self._page(request, "unavailable.html", link.language, status=503)

    def _appointment_page(
        self,
        request: Request,
        link: Link,
        status: int = 200,
        *,
        visit: Visit | None = None,
        stale: bool = False,
    ) -> Response:
        visit = visit or self.flow.visit(link)
        return self._page(
            request,
            "appointment.html",
            link.language,
            status=status,
            link=link,
            visit=visit,
            stale=stale,
            csrf=self._csrf_token(request, link, "answer"),
        )

    def _cancel_page(
        self,
        request: Request,
        link: Link,
        error: forms.Invalid | None = None,
        status: int = 200,
    ) -> Response:
        visit = self.flow.visit(link)
        if visit.state != "open":
            return self._appointment_page(request, link, 409, visit=visit)
        return self._page(
            request,
            "cancel.html",
            link.language,
            status=status,
            link=link,
            visit=visit,
            error=error,
            csrf=self._csrf_token(request, link, "answer"),
        )

    def _verify_page(
        self,
        request: Request,
        link: Link,
        error: forms.Invalid | None = None,
        values: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        order, example = date_order(link.language, self.runtime.settings.clinic.region)
        return self._page(
            request,
            "verify.html",
            link.language,
            status=status,
            error=error,
            values=values or {},
            tries_left=self.flow.tries_left(link)
            if error and error.problem == "no_match"
            else None,
            csrf=self._csrf_token(request, link, "verify"),
            order=order,
            example=example,
        )

    def _page(
        self, request: Request, name: str, language: str, status: int = 200, **values: Any
    ) -> Response:
        response = page_response(
            self.runtime, request, name, language, status, https=self.https, **values
        )
        self.csrf.attach(request, response, self.https)
        return response

    def _csrf_token(self, request: Request, link: Link, form: str) -> str:
        return self.csrf.token_for(request, link.lookup, form)

    def _csrf_ok(self, request: Request, link: Link, form: str, data: FormData) -> bool:
        return self.csrf.valid_for(request, link.lookup, form, data.get("csrf"), self.base_url)

    def _expired(self, request: Request, link: Link, form: str) -> Response:
        self._reject(form, forms.Invalid("csrf", "csrf_failed"), None)
        return self._page(request, "expired.html", link.language, status=403)

    def _invalid(self, request: Request) -> Response:
        language = self._browser_language(request)
        return self._page(request, "invalid.html", language, status=404)

    def _limited(self, request: Request, wait: float) -> Response:
        response = self._page(request, "limited.html", self._browser_language(request), status=429)
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response

    def _browser_language(self, request: Request) -> str:
        return browser_language(request, self.runtime.settings.clinic.language)

    def _redirect(self, path: str) -> Response:
        return see_other(path, self.https)

    def _address(self, request: Request) -> str:
        return client_address(request, self.settings.trusted_proxies)

    def _reject(self, form: str, problem: forms.Invalid, data: FormData | None) -> None:
        with self.runtime.store.begin("record a bad form post") as connection:
            record_bad_form(
                connection,
                "patient-form",
                form,
                problem.field,
                problem.problem,
                (data or {}).items(),
                self.runtime.clock.now(),
                label="",
            )

"""The booking pages (entry point ``bridge.web``), server-rendered, no JavaScript needed.

    GET  /book                  new patient, or "send me my link" for a patient on file
    GET  /book/link   POST      a patient on file asks for a personal link (same answer always)
    GET  /book/new ...          the new-patient flow (public)
    GET  /b/{token}   POST      a personal link: birth date first, then the same steps:
    GET  {base}                 the reasons (straight to the slots when there is one)
    GET  {base}/slots           a week of free slots for a reason (and a place)
    GET  {base}/slot            one slot: details, and the form that books it
    POST {base}/book            the booking (redirects to its result)
    GET  {base}/done            what became of it

Every request counts against the address's rate limit; bad links and wrong birth dates against
a tighter one; bookings on the public page against ``booking.bookings_per_hour``. Every POST
needs its form's CSRF token (double-submit, bound to the link and the form) and is answered by
a redirect; the same public booking form posted twice (a double tap) gets the first post's
result (``repeats``). An unusable link of any kind gets the patient pages' one 404 page.
"""

from __future__ import annotations

import secrets
from datetime import date, timedelta
from typing import TypeVar

from sqlalchemy import select
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bridge.booking import forms as booking_forms
from bridge.booking.availability import Slot
from bridge.booking.booking import NewPatient, settle, submit
from bridge.booking.booking import Request as BookingRequest
from bridge.booking.links import link_on_request
from bridge.booking.offers import Offers
from bridge.booking.page_base import HOUR, SESSION_COOKIE, PageBase, Visit
from bridge.booking.pages import by_day, details, locale_of, result_details, week
from bridge.booking.reasons import Reason
from bridge.booking.repeats import Repeat, Repeats
from bridge.booking.tables import bookings, invitations
from bridge.patient import forms
from bridge.patient.guard import client_address
from bridge.patient.views import choose_language, date_order
from bridge.runtime import Runtime

T = TypeVar("T")
DONE_COOKIE = "rb_booked"
PUBLIC = "/book/new"
REPEAT_WAIT_SECONDS = 15.0


def routes(runtime: Runtime) -> list[BaseRoute]:
    """The booking pages, when online booking is on."""
    if not runtime.settings.booking.enabled:
        return []
    pages = BookingPages(runtime)
    get, post = ["GET"], ["POST"]
    return [
        Route("/book", pages.handler(pages.landing), methods=get),
        Route("/book/link", pages.handler(pages.request_form), methods=get),
        Route("/book/link", pages.handler(pages.request_link, form=True), methods=post),
        Route(PUBLIC, pages.handler(pages.entry), methods=get),
        Route(f"{PUBLIC}/slots", pages.handler(pages.slots), methods=get),
        Route(f"{PUBLIC}/slot", pages.handler(pages.slot), methods=get),
        Route(f"{PUBLIC}/book", pages.handler(pages.book, form=True), methods=post),
        Route(f"{PUBLIC}/done", pages.handler(pages.done), methods=get),
        Route("/b/{token}", pages.handler(pages.entry), methods=get),
        Route("/b/{token}", pages.handler(pages.verify, form=True), methods=post),
        Route("/b/{token}/slots", pages.handler(pages.slots), methods=get),
        Route("/b/{token}/slot", pages.handler(pages.slot), methods=get),
        Route("/b/{token}/book", pages.handler(pages.book, form=True), methods=post),
        Route("/b/{token}/done", pages.handler(pages.done), methods=get),
    ]


class BookingPages(PageBase):
    """Request handlers, one per step; blocking work (store, host) runs in Starlette's thread
    pool (``PageBase.handler``)."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self.settings = runtime.settings.booking
        self.offers = Offers(runtime)
        self.repeats = Repeats()

    # --- ways in ----------------------------------------------------------------------------

    def _visit(self, request: Request, *, verified: bool = True) -> Visit | Response:
        """The request's way in, or the response refusing it."""
        token = request.path_params.get("token")
        if token is None:
            if not self.settings.new_patients:
                return self._invalid(request)
            return Visit(PUBLIC, "new", self._browser_language(request))
        link = self.access.open(token, request.cookies.get(SESSION_COOKIE))
        if link is None:
            self._failed(request)
            return self._invalid(request)
        visit = Visit(f"/b/{token}", link.flow, choose_language(link.language), link, link.lookup)
        if verified and not self.access.verified(link, request.cookies.get(SESSION_COOKIE)):
            return self._redirect(visit.base)
        return visit

    def landing(self, request: Request) -> Response:
        language = self._browser_language(request)
        return self._page(request, "booking/landing.html", language, new=self.settings.new_patients)

    def request_form(self, request: Request) -> Response:
        return self._request_page(request, self._browser_language(request))

    def request_link(self, request: Request, data: FormData) -> Response:
        language = self._browser_language(request)
        if not self._csrf_ok(request, "public", "link", data):
            return self._expired(request, language, "/book/link")
        address = client_address(request, self.limits.trusted_proxies)
        values = {n: forms.field(dict(data), n) for n in ("day", "month", "year", "contact")}
        born = forms.birth_date(values["day"], values["month"], values["year"], self._today())
        contact = booking_forms.contact(values["contact"], self.runtime.settings.clinic.region)
        for problem in (born, contact):
            if isinstance(problem, forms.Invalid):
                self._reject("link", problem, data)
                return self._request_page(request, language, problem, values, 400)
        wait = self.limiter.hit(f"link|{address}", self.settings.bookings_per_hour, HOUR)
        if wait is None:
            assert not isinstance(born, forms.Invalid) and not isinstance(contact, forms.Invalid)
            link_on_request(self.runtime, born, contact)
        return self._page(request, "booking/requested.html", language)

    def _request_page(
        self,
        request: Request,
        language: str,
        error: forms.Invalid | None = None,
        values: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        order, example = date_order(language, self.runtime.settings.clinic.region)
        return self._page(
            request,
            "booking/request.html",
            language,
            status,
            error=error,
            values=values or {},
            order=order,
            example=example,
            csrf=self._csrf_token(request, "public", "link"),
        )

    # --- a personal link's birth date ------------------------------------------------------

    def verify(self, request: Request, data: FormData) -> Response:
        visit = self._visit(request, verified=False)
        if isinstance(visit, Response):
            return visit
        assert visit.link is not None
        if not self._csrf_ok(request, visit.scope, "verify", data):
            return self._expired(request, visit.language, visit.base)
        values = {n: forms.field(dict(data), n) for n in ("day", "month", "year")}
        born = forms.birth_date(values["day"], values["month"], values["year"], self._today())
        if isinstance(born, forms.Invalid):
            self._reject("verify", born, data)
            return self._verify_page(request, visit, born, values, 400)
        session = self.access.check_birth_date(visit.link, born)
        if session is None:
            self._failed(request)
            if self.access.tries_left(visit.link) == 0:
                return self._invalid(request)
            wrong = forms.Invalid("day", "no_match")
            return self._verify_page(request, visit, wrong, values, 400)
        response = self._redirect(visit.base)
        self._session_cookie(response, visit, session)
        return response

    def _verify_page(
        self,
        request: Request,
        visit: Visit,
        error: forms.Invalid | None = None,
        values: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        assert visit.link is not None
        order, example = date_order(visit.language, self.runtime.settings.clinic.region)
        tries = (
            self.access.tries_left(visit.link) if error and error.problem == "no_match" else None
        )
        return self._page(
            request,
            "verify.html",
            visit.language,
            status,
            error=error,
            values=values or {},
            tries_left=tries,
            csrf=self._csrf_token(request, visit.scope, "verify"),
            order=order,
            example=example,
            action=visit.base,
            booking=True,
        )

    # --- the steps --------------------------------------------------------------------------

    def entry(self, request: Request) -> Response:
        visit = self._visit(request, verified=False)
        if isinstance(visit, Response):
            return visit
        link = visit.link
        if link is not None and not self.access.verified(link, request.cookies.get(SESSION_COOKIE)):
            return self._verify_page(request, visit)
        if link is not None and link.used_at is not None:
            return self._redirect(f"{visit.base}/done")
        reasons = self._reasons(visit)
        if len(reasons) == 1:
            return self._redirect(f"{visit.base}/slots?reason={reasons[0].key}")
        return self._reasons_page(request, visit)

    def _reasons_page(
        self, request: Request, visit: Visit, notice: str = "", status: int = 200
    ) -> Response:
        return self._page(
            request,
            "booking/reasons.html",
            visit.language,
            status,
            base=visit.base,
            notice=notice,
            reasons=[
                {"key": r.key, "name": r.label(visit.language), "minutes": r.minutes}
                for r in self._reasons(visit)
            ],
        )

    def slots(
        self, request: Request, notice: str = "", status: int = 200, reason_key: str = ""
    ) -> Response:
        """A week of slots; ``reason_key`` when a post (which has no query) shows them again."""
        visit = self._visit(request)
        if isinstance(visit, Response):
            return visit
        reason = self._reason(visit, reason_key or request.query_params.get("reason", ""))
        if reason is None:
            return self._redirect(visit.base)
        places = self.offers.places(reason)
        location = request.query_params.get("location") or None
        if location not in {p.key for p in places}:
            location = None
        today, last = self.offers.horizon()
        start = _date(request.query_params.get("from")) or today
        shown = week(start, today, last)
        provider = visit.link.provider_key if visit.link is not None else None
        found = self.offers.slots(reason, shown["first"], shown["last"], provider, location)
        locale = locale_of(visit.language, self.runtime.settings.clinic.region)
        later = ""
        if not found and shown["later"]:
            ahead = self.offers.slots(
                reason, shown["last"] + timedelta(days=1), last, provider, location
            )
            later = ahead[0].day.isoformat() if ahead else ""
        return self._page(
            request,
            "booking/slots.html",
            visit.language,
            status,
            base=visit.base,
            reason={
                "key": reason.key,
                "name": reason.label(visit.language),
                "minutes": reason.minutes,
            },
            places=[{"key": p.key, "name": p.name} for p in places],
            location=location or "",
            days=by_day(found, self.offers.reference(), locale),
            week=shown,
            next_free=later,
            notice=notice,
        )

    def slot(self, request: Request) -> Response:
        visit = self._visit(request)
        if isinstance(visit, Response):
            return visit
        reason = self._reason(visit, request.query_params.get("reason", ""))
        if reason is None:
            return self._redirect(visit.base)
        found = self._find(visit, reason, request.query_params.get("slot", ""))
        if found is None:
            return self.slots(request, notice="taken", status=409)
        return self._confirm_page(request, visit, reason, found.key)

    def _confirm_page(
        self,
        request: Request,
        visit: Visit,
        reason: Reason,
        slot_key: str,
        problems: booking_forms.Problems | None = None,
        values: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        found = self._find(visit, reason, slot_key)
        if found is None:
            return self.slots(request, notice="taken", status=409, reason_key=reason.key)
        locale = locale_of(visit.language, self.runtime.settings.clinic.region)
        order, example = date_order(visit.language, self.runtime.settings.clinic.region)
        new = self._is_new(visit)
        shown = dict(values or {})
        if new and not shown and visit.link is not None and visit.link.invitation_id:
            shown["email"] = self._invited_email(visit.link.invitation_id)
        return self._page(
            request,
            "booking/confirm.html",
            visit.language,
            status,
            base=visit.base,
            reason_key=reason.key,
            slot_key=found.key,
            details=details(found, reason, self.offers.reference(), visit.language, locale),
            new=new,
            problems=problems,
            values=shown,
            order=order,
            example=example,
            csrf=self._csrf_token(request, visit.scope, "book"),
            once=secrets.token_urlsafe(16) if visit.link is None else "",
        )

    def book(self, request: Request, data: FormData) -> Response:
        visit = self._visit(request)
        if isinstance(visit, Response):
            return visit
        if not self._csrf_ok(request, visit.scope, "book", data):
            return self._expired(request, visit.language, visit.base)
        fields = dict(data)
        reason = self._reason(visit, forms.field(fields, "reason"))
        slot_key = forms.field(fields, "slot")
        if reason is None:  # not one this way in may book (only a forged form sends it)
            self._reject("book", forms.Invalid("reason", "unknown_reason"), data)
            return self._reasons_page(request, visit, notice="unknown_reason", status=400)
        note = booking_forms.comment(forms.field(fields, "comment"))
        patient: NewPatient | None = None
        problems: list[forms.Invalid] = []
        if isinstance(note, forms.Invalid):
            problems.append(note)
        if self._is_new(visit):
            typed = booking_forms.new_patient(
                fields, self._today(), self.runtime.settings.clinic.region, visit.language
            )
            if isinstance(typed, booking_forms.Problems):
                problems.extend(typed.items)
            else:
                patient = typed
        if problems:
            for problem in problems:
                self._reject("book", problem, data)
            values = {n: forms.field(fields, n) for n in (*booking_forms.FIELDS, "comment")}
            found = booking_forms.Problems(tuple(problems))
            return self._confirm_page(request, visit, reason, slot_key, found, values, 400)
        once = forms.field(fields, "once")[:64] if visit.link is None else ""
        first, done = self.repeats.first(once)
        if not first:  # the same form again (a double tap): the first post's result
            booked = done.result(REPEAT_WAIT_SECONDS)
            if booked is not None:
                return self._public_done(booked)
        try:
            return self._submit(request, visit, reason, slot_key, patient, str(note), done)
        finally:
            done.finish()

    def _submit(
        self,
        request: Request,
        visit: Visit,
        reason: Reason,
        slot_key: str,
        patient: NewPatient | None,
        note: str,
        done: Repeat,
    ) -> Response:
        if visit.link is None:
            address = client_address(request, self.limits.trusted_proxies)
            wait = self.limiter.hit(f"book|{address}", self.settings.bookings_per_hour, HOUR)
            if wait is not None:
                return self._limited(request, visit.language, wait)
        slot = self._find(visit, reason, slot_key)
        if slot is None:
            return self.slots(request, notice="taken", status=409, reason_key=reason.key)
        outcome = submit(
            self.runtime,
            BookingRequest(
                flow=visit.flow,
                reason=reason,
                slot=slot,
                language=visit.language,
                patient_key=visit.link.patient_key if visit.link is not None else None,
                new_patient=patient,
                link=visit.link,
                comment=note,
            ),
        )
        if outcome.state == "taken":
            return self.slots(request, notice="taken", status=409, reason_key=reason.key)
        if visit.link is None and outcome.booking_id is not None:
            done.booked(outcome.booking_id)
            return self._public_done(outcome.booking_id)
        response = self._redirect(f"{visit.base}/done")
        if visit.link is not None and not visit.link.needs_birth_date:
            session = self.access.keys.new_session()
            self._start_session(visit.link, session)
            self._session_cookie(response, visit, session)
        return response

    def _public_done(self, booking_id: int) -> Response:
        """To the result of a public booking, which only this browser may see (a signed
        cookie: the public pages have no link to hold it)."""
        response = self._redirect(f"{PUBLIC}/done")
        response.set_cookie(
            DONE_COOKIE,
            self._signed(booking_id),
            max_age=self.limits.session_minutes * 60,
            path=PUBLIC,
            secure=self.https,
            httponly=True,
            samesite="strict",
        )
        return response

    def done(self, request: Request) -> Response:
        visit = self._visit(request)
        if isinstance(visit, Response):
            return visit
        booking_id = visit.link.booking_id if visit.link is not None else None
        if visit.link is None:
            booking_id = self._unsigned(request.cookies.get(DONE_COOKIE, ""))
        if booking_id is None:
            return self._redirect(visit.base)
        outcome = settle(self.runtime, booking_id)
        with self.runtime.store.begin("read a booking") as connection:
            row = connection.execute(select(bookings).where(bookings.c.id == booking_id)).first()
        if row is None:
            return self._redirect(visit.base)
        reference = self.offers.reference()
        locale = locale_of(visit.language, self.runtime.settings.clinic.region)
        zone = self.runtime.zone(reference)
        shown = result_details(
            row._mapping,
            self._reason_any(row._mapping["reason_key"]),
            reference,
            visit.language,
            locale,
            zone,
        )
        return self._page(
            request,
            "booking/done.html",
            visit.language,
            base=visit.base,
            state=outcome.state,
            details=shown,
            extras={"map_url": self.settings.map_url, "parking": self.settings.parking},
        )

    # --- pieces ------------------------------------------------------------------------------

    def _reasons(self, visit: Visit) -> list[Reason]:
        allowed = visit.link.reasons if visit.link is not None else None
        return self.offers.reasons(visit.flow, allowed)

    def _reason(self, visit: Visit, key: str) -> Reason | None:
        return next((r for r in self._reasons(visit) if r.key == key), None)

    def _find(self, visit: Visit, reason: Reason, slot_key: str) -> Slot | None:
        """The posted slot if it is free now and this way in offers it (a link for one
        provider offers only theirs, whatever slot key comes back)."""
        found = self.offers.find(reason, slot_key)
        wanted = visit.link.provider_key if visit.link is not None else None
        if found is None or wanted not in (None, found.provider_key):
            return None
        return found

    def _reason_any(self, key: str) -> Reason | None:
        return next((r for r in self.offers.all_reasons() if r.key == key), None)

    def _is_new(self, visit: Visit) -> bool:
        return visit.link is None or visit.link.patient_key is None

    def _invited_email(self, invitation_id: int) -> str:
        with self.runtime.store.begin("read an invitation") as connection:
            found = connection.execute(
                select(invitations.c.email).where(invitations.c.id == invitation_id)
            ).scalar()
        return str(found or "")

    def _today(self) -> date:
        return self.offers.today()


def _date(value: str | None) -> date | None:
    if not value or len(value) != 10:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None

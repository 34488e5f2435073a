"""The dispatcher: claim a due job, check it again against the host, render, send, record.

Exactly once, in this order: the job is claimed under a lease; the attempt is written to the
ledger (``bridge.delivery.ledger``) and committed *before* the request leaves; the provider's
answer is recorded after. A crash in between leaves the job ``sending``; when its lease runs out
it becomes ``unknown`` and is settled by asking the channel (``bridge.delivery.settle``), never by
sending again blindly. A time-out after the request went out (``DeliveryOutcomeUnknown``) makes
the job ``unknown`` at once, to be settled once the provider had time to record the message.

The last check before each send re-reads the appointment and the patient from the host and the
opt-outs and answers from the store: a STOP or an answer that arrived a moment ago wins.

Pacing (``bridge.delivery.pacing``): consecutive sends on one channel start at least its delay
apart, across restarts; a provider's 429 holds that channel only. ``delivery.max_per_run`` caps
one run; the monthly budget stops every send once reached. Nothing goes out outside the sending
window, and failures are tried again as ``bridge.delivery.policy`` says (redials, resends).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from bridge.delivery import consent, jobstate, ledger
from bridge.delivery.budget_alert import warn_if_low
from bridge.delivery.costs import Budget, load_budget
from bridge.delivery.pacing import Pacer
from bridge.delivery.policy import AttemptPolicy, sending_window
from bridge.delivery.settle import settle_due
from bridge.errors import (
    DeliveryOutcomeUnknown,
    HostUnavailable,
    PermanentDeliveryError,
    RecipientOptedOut,
    Skipped,
    SourceError,
    TemplateError,
    TransientDeliveryError,
)
from bridge.model import Appointment, Channel, Patient
from bridge.planner import Planner
from bridge.plugin import OutboundMessage, Reference, SentNote
from bridge.runtime import Runtime
from bridge.store import jobs as queue
from bridge.store.jobs import Job
from bridge.store.rejects import record_reject
from bridge.store.schema import JobStatus, jobs
from bridge.template import MessageContext, Rendered
from bridge.window import SendingWindow

log = logging.getLogger(__name__)

HOST_RETRY = timedelta(minutes=2)
AFTER_SEND = "after-send"
BATCH = 32  # jobs claimed at once on an unpaced channel
# "Call & SMS": when both are due, the call goes first; an answer on it stops the SMS.
CHANNEL_ORDER = {Channel.VOICE.value: 0, Channel.SMS.value: 1, Channel.EMAIL.value: 2}


@dataclass
class DispatchReport:
    """Counts of what one dispatch run did."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    dropped: int = 0
    unknown: int = 0
    budget_stop: bool = False

    @property
    def handled(self) -> int:
        return self.sent + self.failed + self.dropped

    def summary(self) -> str:
        text = (
            f"{self.sent} sent, {self.retried} to retry, {self.failed} failed, "
            f"{self.dropped} dropped at the last check, {self.unknown} unknown settled"
        )
        return text + ("; monthly budget reached: sending stopped" if self.budget_stop else "")


@dataclass
class _Ready:
    """A job that passed the last check, with its message."""

    job: Job
    appointment: Appointment
    patient: Patient
    message: OutboundMessage
    rendered: Rendered
    attempt: int


class Dispatcher:
    """Sends what is due, paced per channel."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.clock = runtime.clock
        self.pacer = Pacer(runtime.store, runtime.clock, runtime.settings)
        # Pacing waits happen before a claim, so the lease covers one send only.
        self.lease = runtime.settings.delivery.lease
        self._zone = ZoneInfo("UTC")
        self._secret = ""

    # --- the run -------------------------------------------------------------------------

    def run_due(self, limit: int | None = None) -> DispatchReport:
        """Settle unknown jobs, then send every due job (at most ``limit``, and at most
        ``delivery.max_per_run``) while the sending window is open."""
        report = DispatchReport()
        with self.runtime.store.begin("expire leases") as connection:
            queue.expire_leases(connection, self.clock.now())
        report.unknown = settle_due(self.runtime).total
        cap = self.settings.delivery.max_per_run or None
        if limit is not None:
            cap = limit if cap is None else min(cap, limit)
        reference = self.runtime.source.reference()
        zone = self._zone = self.runtime.zone(reference)
        now = self.clock.now()
        with self.runtime.store.begin("read pacing and spend") as connection:
            self.pacer.load(connection)
            self._secret = ledger.token_secret(connection, now)
            budget = load_budget(connection, self.settings.delivery, now, zone)
        while cap is None or report.handled < cap:
            now = self.clock.now()
            if not self._window(zone).contains(now):
                break
            if not budget.allows(0.0) or not budget.allows(self._cheapest()):
                report.budget_stop = True
                break
            channel = self._next_channel(now)
            if channel is None:
                break
            room = BATCH if not self.pacer.delay(channel) else 1
            if cap is not None:
                room = min(room, cap - report.handled)
            with self.runtime.store.begin("claim") as connection:
                claimed = queue.claim_due(connection, now, self.lease, room, channel)
            if not claimed:
                continue
            for index, job in enumerate(claimed):
                held = self.pacer.held_until(channel)
                if held is not None or not budget.allows(0.0):
                    # The provider asked us to wait (or the budget ran out) mid-batch: the rest
                    # go back, unspent, to wait with their channel.
                    self._release(claimed[index:], held or now, "waiting with its channel")
                    break
                outcome = self._process(job, reference, zone, budget)
                setattr(report, outcome, getattr(report, outcome) + 1)
        warn_if_low(self.runtime, budget, zone)
        if report.sent or report.failed or report.retried or report.dropped or report.unknown:
            log.info("dispatch: %s", report.summary())
        if report.budget_stop:
            log.warning("dispatch: monthly budget reached (%s): nothing sent", budget.describe())
        return report

    def _release(self, claimed: list[Job], due: datetime, why: str) -> None:
        now = self.clock.now()
        with self.runtime.store.begin("release claimed jobs") as connection:
            for job in claimed:
                jobstate.retry(connection, job, now, due, why, kind=jobstate.RATE_LIMITED)

    def _window(self, zone: ZoneInfo) -> SendingWindow:
        return sending_window(self.settings, zone)

    def _cheapest(self) -> float:
        prices = self.settings.delivery.prices
        return min(prices.estimate(channel, 1) for channel in self.runtime.channels)

    def _next_channel(self, now: datetime) -> Channel | None:
        """The channel to send on next: one with due jobs and free to send now; else wait for
        the paced one that frees first (a pacing wait, never a provider's hold)."""
        with self.runtime.store.begin("due channels") as connection:
            rows = connection.execute(
                select(jobs.c.channel, func.min(jobs.c.due_at))
                .where(jobs.c.status == JobStatus.PLANNED.value, jobs.c.due_at <= now)
                .group_by(jobs.c.channel)
            ).all()
        waiting: list[tuple[datetime, Channel]] = []
        for name, _due in sorted(rows, key=lambda r: (r[1], CHANNEL_ORDER.get(r[0], 9))):
            channel = Channel(name)
            if channel not in self.runtime.channels or self.pacer.held_until(channel):
                continue
            self.pacer.refresh(channel)
            free = self.pacer.next_free(channel)
            if free <= now:
                return channel
            waiting.append((free, channel))
        if not waiting:
            return None
        free, channel = min(waiting)
        self.clock.sleep((free - now).total_seconds())
        return channel

    # --- one job -------------------------------------------------------------------------

    def _process(self, job: Job, reference: Reference, zone: ZoneInfo, budget: Budget) -> str:
        """Check, render, send one claimed job; returns the report field to count it under."""
        checked = self._last_check(job, reference, zone)
        if isinstance(checked, str):
            return checked
        ready = checked
        plugin = self.runtime.channels[job.channel]
        estimate = self.settings.delivery.prices.estimate(
            job.channel, ready.rendered.segments.segments if ready.rendered.segments else 1
        )
        target = ledger.Target(
            job.id, job.event, job.appointment_key, job.occurrence, job.patient_key
        )
        started = self.clock.now()
        with self.runtime.store.begin("record attempt") as connection:
            ledger.begin(connection, ready.message, plugin.name, target, ready.attempt, started)
            self.pacer.note_send(connection, job.channel, started)
        token = str(ready.message.token)
        try:
            result = plugin.send(ready.message)
        except DeliveryOutcomeUnknown as exc:
            now = self.clock.now()
            settle_at = now + self.settings.delivery.unknown_settle
            with self.runtime.store.begin("record unknown") as connection:
                ledger.finish(connection, token, ledger.UNKNOWN, now, str(exc))
                jobstate.to_unknown(connection, job, now, settle_at, str(exc))
            log.warning("job %s: outcome unknown (%s); settled by asking later", job.id, exc)
            return "retried"
        except TransientDeliveryError as exc:
            return self._failed_now(job, token, exc, permanent=False, retry_after=exc.retry_after)
        except RecipientOptedOut as exc:
            with self.runtime.store.begin("record carrier opt-out") as connection:
                patient = None if ready.message.testing else job.patient_key
                consent.set_opt_out(
                    connection, job.channel, ready.message.to, patient, True, "carrier", started
                )
            return self._failed_now(job, token, exc, permanent=True, retry_after=None)
        except PermanentDeliveryError as exc:
            return self._failed_now(job, token, exc, permanent=True, retry_after=None)
        sent_at = self.clock.now()
        cost = result.cost if result.cost is not None else estimate
        with self.runtime.store.begin("record sent") as connection:
            ledger.accepted(connection, token, result, cost, sent_at)
            queue.mark_sent(connection, job, sent_at, result.provider_ref)
        budget.add(cost)
        log.info("job %s sent (%s, appointment %s)", job.id, job.channel.value, job.appointment_key)
        self._note_on_host(job, ready, sent_at, zone)
        return "sent"

    def _last_check(self, job: Job, reference: Reference, zone: ZoneInfo) -> _Ready | str:
        """Everything that may stop a job just before it goes out, then its message."""
        now = self.clock.now()
        try:
            appt = self.runtime.source.fetch(job.appointment_key, job.occurrence, reference, zone)
            found = list(self.runtime.source.patients([job.patient_key], lambda _: None))
        except HostUnavailable as exc:
            self._record(queue.mark_retry, job, now, now + HOST_RETRY, f"host unavailable: {exc}")
            return "retried"
        patient = found[0] if found else None
        if appt is None:
            return self._drop(job, JobStatus.CANCELLED, "appointment is no longer on the host")
        with self.runtime.store.begin("read opt-outs and answers") as connection:
            opted_out = consent.opted_out_pairs(connection, {job.patient_key})
            answered = consent.answered(connection, job.occurrence, {appt.ident})
            sends = ledger.sends_of_job(connection, job.id)
        planner = Planner(
            self.settings.reminders, zone, reference, now, opted_out=opted_out, answered=answered
        )
        reason = planner.blocked(appt, patient)
        if reason:
            return self._drop(job, JobStatus.CANCELLED, reason)
        assert patient is not None
        reason = planner.channel_block(patient, job.channel)
        if reason:
            return self._drop(job, JobStatus.SKIPPED, reason)
        deadline = appt.start - timedelta(hours=self.settings.reminders.min_lead_hours)
        if now > deadline:
            return self._drop(job, JobStatus.SKIPPED, "too late to remind")
        attempt = sends + 1
        try:
            message, rendered = self._compose(job, appt, patient, reference, zone, attempt)
        except TemplateError as exc:
            log.error("job %s: template problem: %s", job.id, exc)
            self._record(queue.mark_failed, job, now, f"template: {exc}")
            return "failed"
        except Skipped as exc:
            return self._drop(job, JobStatus.SKIPPED, exc.reason)
        with self.runtime.store.begin("read address opt-out") as connection:
            stopped = consent.is_address_opted_out(connection, job.channel, message.to)
        if stopped:
            return self._drop(job, JobStatus.SKIPPED, f"the {job.channel.value} address opted out")
        return _Ready(job, appt, patient, message, rendered, attempt)

    def _failed_now(
        self,
        job: Job,
        token: str,
        exc: TransientDeliveryError | PermanentDeliveryError,
        *,
        permanent: bool,
        retry_after: float | None,
    ) -> str:
        """The provider refused the message: record it, then retry as the policy says."""
        now = self.clock.now()
        code = getattr(exc, "code", None)
        if retry_after:
            self.pacer.hold(job.channel, now + timedelta(seconds=retry_after))
        with self.runtime.store.begin("record failure") as connection:
            ledger.finish(
                connection,
                token,
                ledger.FAILED if permanent else ledger.NOT_SENT,
                now,
                str(exc),
                str(code) if code is not None else None,
            )
            if retry_after:  # a provider's rate limit: not the message's fault
                until = now + timedelta(seconds=retry_after)
                jobstate.retry(connection, job, now, until, str(exc), kind=jobstate.RATE_LIMITED)
                return "retried"
            state = jobstate.current_round(connection, job.id)
            policy = AttemptPolicy.for_settings(self.settings, self._zone)
            retry = policy.after_failure(state, now, job.appointment_start, permanent=permanent)
            if retry is None:
                queue.mark_failed(connection, job, now, f"gave up after {state.attempts}: {exc}")
                return "failed"
            jobstate.retry(connection, job, now, retry.due, str(exc), kind=retry.kind)
        return "retried"

    def _compose(
        self,
        job: Job,
        appt: Appointment,
        patient: Patient,
        reference: Reference,
        zone: ZoneInfo,
        attempt: int,
    ) -> tuple[OutboundMessage, Rendered]:
        testing = self.settings.mode == "testing"
        provider = reference.providers.get(appt.provider_keys[0]) if appt.provider_keys else None
        context = MessageContext(
            appointment=appt,
            patient=patient,
            provider=provider,
            facility=reference.facilities.get(appt.facility_key or ""),
            service=reference.services.get(appt.service_key or ""),
            clinic=self.settings.clinic,
            timezone=zone,
            link=self.runtime.link_for(job, appt, patient),
            testing=testing,
        )
        templates = self.runtime.templates
        rendered = templates.render(job.event, job.channel, context)
        voicemail = None
        if job.channel == Channel.VOICE:
            voicemail = templates.render(job.event, job.channel, context, voicemail=True).text
        key = ledger.attempt_key(job.dedupe_key, attempt)
        message = OutboundMessage(
            idempotency_key=key,
            channel=job.channel,
            to=recipient(self.settings, job.channel, patient, testing),
            text=rendered.text,
            subject=rendered.subject,
            html=rendered.html,
            sender=self.settings.clinic.name,
            voicemail=voicemail,
            testing=testing,
            job_id=job.id,
            tags=message_tags(self.settings, job.appointment_key, job.rule),
            token=ledger.token_for(key, self._secret),
        )
        return message, rendered

    def _note_on_host(self, job: Job, ready: _Ready, sent_at: datetime, zone: ZoneInfo) -> None:
        """Tell the host (flags, log row); a failure here never un-sends the message."""
        writer = self.runtime.writer
        if writer is None:
            return
        note = SentNote(
            appointment=ready.appointment,
            patient=ready.patient,
            channel=job.channel,
            text=ready.rendered.text,
            subject=ready.rendered.subject,
            sender=ready.message.sender or "",
            gateway=self.settings.channels[job.channel].plugin,
            sent_at=sent_at,
            timezone=zone,
        )
        try:
            writer.note_sent(note)
        except SourceError as exc:
            log.warning("job %s: could not record the send on the host: %s", job.id, exc)
            with self.runtime.store.begin("record reject") as connection:
                record_reject(connection, AFTER_SEND, f"job {job.id}", str(exc), sent_at)

    def _drop(self, job: Job, status: JobStatus, reason: str) -> str:
        self._record(queue.mark_dropped, job, self.clock.now(), status, reason)
        return "dropped"

    def _record(self, action: Any, job: Job, now: datetime, *args: Any) -> None:
        with self.runtime.store.begin("record outcome") as connection:
            action(connection, job, now, *args)


def recipient(settings: Any, channel: Channel, patient: Patient | None, testing: bool) -> str:
    """Who gets it: the patient in live mode, the testing contact in testing mode."""
    if testing:
        contact = settings.testing.email if channel == Channel.EMAIL else settings.testing.phone
        if not contact:
            key = "testing.email" if channel == Channel.EMAIL else "testing.phone"
            raise Skipped(f"testing mode and no {key} set")
        return str(contact)
    if patient is None:
        raise Skipped("no patient")
    if channel == Channel.EMAIL:
        target = patient.email
    elif channel == Channel.SMS:
        target = patient.mobile
    else:
        target = patient.mobile or patient.home_phone
    if not target:
        raise Skipped(f"no {channel.value} contact")
    return target


def message_tags(settings: Any, appointment_key: str, rule: str) -> dict[str, str]:
    """Tags every message carries: what it is about, and the clinic's caller ID for calls."""
    tags = {"appointment": appointment_key, "rule": rule}
    if settings.clinic.caller_id:
        tags["caller_id"] = str(settings.clinic.caller_id)
    return tags

"""The dispatcher: claim a due job, check it again against the host, render, send, record.

Exactly once, in this order: the job is claimed under a lease; the attempt is written to the
ledger (``bridge.delivery.ledger``) and committed *before* the request leaves; the provider's
answer is recorded after. A crash in between leaves the job ``sending``; when its lease runs out
it becomes ``unknown`` and is settled by asking the channel (``bridge.delivery.settle``), never by
sending again blindly. A time-out after the request went out (``DeliveryOutcomeUnknown``) makes
the job ``unknown`` at once, to be settled once the provider had time to record the message.

The last check before each send belongs to the job's event (``bridge.events``): a reminder
re-reads the appointment and the patient from the host and the opt-outs and answers from the
store (a STOP or an answer that arrived a moment ago wins); a recall checks that the patient has
not booked meanwhile; an invitation that it was not revoked. Every event's message then goes
through the same steps here.

Pacing (``bridge.delivery.pacing``): consecutive sends on one channel start at least its delay
apart, across restarts; a provider's 429 holds that channel only. ``delivery.max_per_run`` caps
one run; the monthly budget stops every send once reached. Nothing goes out outside the sending
window, and failures are tried again as ``bridge.delivery.policy`` says (redials, resends).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from bridge.delivery import consent, jobstate, ledger
from bridge.delivery.budget_alert import warn_if_low
from bridge.delivery.compose import Sent, compose, note_on_host
from bridge.delivery.costs import Budget, load_budget
from bridge.delivery.failures import LeaseRunningOut, record_failure
from bridge.delivery.pacing import Pacer
from bridge.delivery.policy import sending_window
from bridge.delivery.settle import settle_due
from bridge.errors import (
    DeliveryError,
    HostUnavailable,
    Skipped,
    TemplateError,
)
from bridge.events import Batch, Drop, MessageEvent, Subject, load_events
from bridge.model import Channel
from bridge.plugin import OutboundMessage, Reference, SendResult
from bridge.runtime import Runtime
from bridge.store import jobs as queue
from bridge.store.jobs import Job
from bridge.store.schema import JobStatus, jobs
from bridge.template import Rendered
from bridge.window import SendingWindow

log = logging.getLogger(__name__)

HOST_RETRY = timedelta(minutes=2)
BATCH = 128  # jobs claimed at once on an unpaced channel
SENDERS = 4  # requests of one batch in flight side by side
OVER_BUDGET = "over budget"
BUDGET_WAIT = timedelta(minutes=15)  # a job held by the budget looks again this much later
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
    subject: Subject
    event: MessageEvent
    message: OutboundMessage
    rendered: Rendered
    attempt: int
    estimate: float = 0.0


class Dispatcher:
    """Sends what is due, paced per channel."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.clock = runtime.clock
        self.pacer = Pacer(runtime.store, runtime.clock, runtime.settings)
        # Pacing waits happen before a claim, so the lease covers one send only.
        self.lease = runtime.settings.delivery.lease
        self.events = load_events(runtime)
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
        with ThreadPoolExecutor(max_workers=SENDERS, thread_name_prefix="send") as pool:
            self._send_due(report, cap, reference, zone, budget, pool)
        warn_if_low(self.runtime, budget, zone)
        if report.sent or report.failed or report.retried or report.dropped or report.unknown:
            log.info("dispatch: %s", report.summary())
        if report.budget_stop:
            log.warning("dispatch: monthly budget reached (%s): sending stopped", budget.describe())
        return report

    def _send_due(
        self,
        report: DispatchReport,
        cap: int | None,
        reference: Reference,
        zone: ZoneInfo,
        budget: Budget,
        pool: ThreadPoolExecutor,
    ) -> None:
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
            held = self.pacer.held_until(channel)
            if held is not None:
                self._release(claimed, held, "waiting with its channel")
                continue
            self._process_batch(claimed, reference, zone, budget, report, pool)
            if report.budget_stop:
                break

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

    # --- a batch of claimed jobs ---------------------------------------------------------

    def _process_batch(
        self,
        claimed: list[Job],
        reference: Reference,
        zone: ZoneInfo,
        budget: Budget,
        report: DispatchReport,
        pool: ThreadPoolExecutor,
    ) -> None:
        """Check, render and send claimed jobs: the host and the store are read once for the
        batch, every attempt is recorded (one commit) before any request leaves, the requests
        go out side by side, and the answers are recorded in one commit."""
        checked = self._last_check(claimed, reference, zone, pool)
        ready: list[_Ready] = []
        for item in checked:
            if isinstance(item, str):
                setattr(report, item, getattr(report, item) + 1)
            else:
                ready.append(item)
        allowed: list[_Ready] = []
        for index, item in enumerate(ready):
            if not budget.allows(_estimate(self.settings, item) + sum(i.estimate for i in allowed)):
                report.budget_stop = True
                later = self.clock.now() + BUDGET_WAIT
                self._release([i.job for i in ready[index:]], later, "monthly budget reached")
                break
            item.estimate = _estimate(self.settings, item)
            allowed.append(item)
        if not allowed:
            return
        started = self.clock.now()
        plugin = self.runtime.channels[allowed[0].job.channel].name
        starts = [ledger.Start(i.message, plugin, _target(i), i.attempt) for i in allowed]
        with self.runtime.store.begin("record attempts") as connection:
            ledger.begin_many(connection, starts, started)
            self.pacer.note_send(connection, allowed[0].job.channel, started)
        # A slow provider must not keep a batch sending past its lease: another worker would
        # then settle the rest as interrupted and send them too. What is left at half the
        # lease is not sent, and waits for the next claim.
        deadline = started + self.lease / 2

        def send(item: _Ready) -> SendResult | Exception:
            if self.clock.now() > deadline:
                return LeaseRunningOut("not sent: the batch's lease was running out")
            return _send(self.runtime, item)

        outcomes = [send(allowed[0])] if len(allowed) == 1 else list(pool.map(send, allowed))
        accepted = [
            (item, out)
            for item, out in zip(allowed, outcomes, strict=True)
            if isinstance(out, SendResult)
        ]
        if accepted:
            sent_at = self.clock.now()
            costs = [
                (str(item.message.token), result, _cost(result, item)) for item, result in accepted
            ]
            with self.runtime.store.begin("record sent") as connection:
                ledger.accepted_many(connection, costs, sent_at)
                refs = {item.job.id: result.provider_ref for item, result in accepted}
                jobstate.sent_many(connection, refs, sent_at)
            for _, _, cost in costs:
                budget.add(cost)
            report.sent += len(accepted)
            log.info("dispatch: %s %s message(s) sent", len(accepted), allowed[0].job.channel.value)
            note_on_host(
                self.runtime,
                [
                    Sent(
                        item.job,
                        item.subject.appointment,
                        item.subject.patient,
                        item.rendered,
                        item.message,
                    )
                    for item, _ in accepted
                    if item.event.note_on_host and item.subject.appointment is not None
                ],
                sent_at,
                zone,
            )
        for item, out in zip(allowed, outcomes, strict=True):
            if isinstance(out, Exception):
                outcome = record_failure(
                    self.runtime, self.pacer, zone, item.job, item.message, out, started
                )
                setattr(report, outcome, getattr(report, outcome) + 1)

    def _last_check(
        self, claimed: list[Job], reference: Reference, zone: ZoneInfo, pool: ThreadPoolExecutor
    ) -> list[_Ready | str]:
        """Everything that may stop a job just before it goes out, then its message; one entry
        per job: ready, or the report field it was counted under. Each job's event
        (``bridge.events``) checks its own jobs of the batch."""
        now = self.clock.now()
        batch = Batch(now, reference, zone, pool)
        with self.runtime.store.begin("count sends") as connection:
            sends = ledger.sends_of_jobs(connection, [j.id for j in claimed])
        results: list[_Ready | str] = ["failed"] * len(claimed)
        by_event: dict[str, list[int]] = {}
        for index, job in enumerate(claimed):
            by_event.setdefault(job.event, []).append(index)
        for name, indexes in by_event.items():
            group = [claimed[i] for i in indexes]
            event = self.events.get(name)
            if event is None:
                for job in group:
                    reason = f"no message event {name!r} is installed"
                    self._record(queue.mark_failed, job, now, reason)
                continue
            try:
                checked = event.check(group, batch)
            except HostUnavailable as exc:
                with self.runtime.store.begin("host unavailable") as connection:
                    for job in group:
                        queue.mark_retry(
                            connection, job, now, now + HOST_RETRY, f"host unavailable: {exc}"
                        )
                for index in indexes:
                    results[index] = "retried"
                continue
            for index, job, outcome in zip(indexes, group, checked, strict=True):
                if isinstance(outcome, Drop):
                    results[index] = self._drop(job, outcome.status, outcome.reason)
                elif outcome.appointment and outcome.appointment.patient_key != job.patient_key:
                    # Staff moved the visit to another chart since it was planned: whatever the
                    # event, its message must not reach the old patient (a cycle re-plans it).
                    reason = "the appointment is now another patient's"
                    results[index] = self._drop(job, JobStatus.CANCELLED, reason)
                else:
                    attempt = sends.get(job.id, 0) + 1
                    results[index] = self._compose(job, outcome, event, attempt)
        addresses = {r.message.to for r in results if isinstance(r, _Ready)}
        if addresses:
            with self.runtime.store.begin("read address opt-outs") as connection:
                stopped = consent.opted_out_addresses(connection, claimed[0].channel, addresses)
            for index, item in enumerate(results):
                if isinstance(item, _Ready) and item.message.to in stopped:
                    reason = f"the {item.job.channel.value} address opted out"
                    results[index] = self._drop(item.job, JobStatus.SKIPPED, reason)
        return results

    def _compose(
        self, job: Job, subject: Subject, event: MessageEvent, attempt: int
    ) -> _Ready | str:
        try:
            message, rendered = compose(
                self.runtime, job, subject, attempt, self._secret, event.about_appointment
            )
        except TemplateError as exc:
            log.error("job %s: template problem: %s", job.id, exc)
            self._record(queue.mark_failed, job, self.clock.now(), f"template: {exc}")
            return "failed"
        except Skipped as exc:
            return self._drop(job, JobStatus.SKIPPED, exc.reason)
        return _Ready(job, subject, event, message, rendered, attempt)

    def _drop(self, job: Job, status: JobStatus, reason: str) -> str:
        self._record(queue.mark_dropped, job, self.clock.now(), status, reason)
        return "dropped"

    def _record(self, action: Any, job: Job, now: datetime, *args: Any) -> None:
        with self.runtime.store.begin("record outcome") as connection:
            action(connection, job, now, *args)


def _send(runtime: Runtime, item: _Ready) -> SendResult | Exception:
    """One request; a delivery error is returned, not raised, so a batch's sends run side by
    side and every outcome is recorded."""
    try:
        return runtime.channels[item.job.channel].send(item.message)
    except DeliveryError as exc:
        return exc


def _estimate(settings: Any, item: _Ready) -> float:
    segments = item.rendered.segments.segments if item.rendered.segments else 1
    return float(settings.delivery.prices.estimate(item.job.channel, segments))


def _cost(result: SendResult, item: _Ready) -> float:
    return result.cost if result.cost is not None else item.estimate


def _target(item: _Ready) -> ledger.Target:
    """Who an attempt is about: the appointment only when the event is about one."""
    job = item.job
    if not item.event.about_appointment:
        return ledger.Target(job.id, job.event, None, None, job.patient_key)
    return ledger.Target(job.id, job.event, job.appointment_key, job.occurrence, job.patient_key)

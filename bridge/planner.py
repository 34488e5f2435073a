"""The planner: from an appointment and its patient to the reminders that should go out, and when.

Pure: it reads settings, the host's reference data and the jobs already sent, and returns
``JobPlan`` objects; the store reconciles them with what it holds. Rules:

- ``days_ahead``: every eligible appointment from tomorrow through ``days_ahead`` days out gets a
  reminder, due as soon as the sending window is open once its day is in range.
- ``lead_<time>`` (``reminders.lead_times``): a reminder that long before the start, moved earlier
  into the sending window when it would fall outside it (never later: a "2 h before" must not
  arrive after the visit). A lead moment already past when planned goes out at the next opening.
- Nothing closer to the start than ``min_lead_hours``; two reminders of one appointment on one
  channel less than ``MIN_GAP`` apart collapse into the first (a late booking would otherwise get
  the days-ahead and the 48 h reminder in the same minute).
- Channels: the clinic's, narrowed by the patient's preference (falling back to the clinic's when
  the two have nothing in common), then each one gated by consent, a usable contact and opt-outs.
  A gated channel is planned as *skipped* with the reason, so "why did nobody get a message" has
  an answer.
- A visit already reminded under another host key (OpenEMR edits one occurrence of a series by
  excluding its date and inserting a new row) is not reminded again: same patient, same start,
  same rule, same channel = already sent.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from bridge.clock import local_date
from bridge.model import Appointment, Channel, Consent, Patient, ReminderType
from bridge.phone import can_receive_sms
from bridge.plugin import Reference
from bridge.settings import RemindersSettings
from bridge.store.jobs import PLANNED_EVENT, Job, JobPlan
from bridge.store.schema import JobStatus
from bridge.window import SendingWindow

EVENT = PLANNED_EVENT
DAYS_AHEAD = "days_ahead"
MIN_GAP = timedelta(hours=1)


@dataclass(frozen=True)
class Rule:
    """A reminder rule: the days-ahead rule (``lead`` None) or a lead time before the start."""

    name: str
    lead: timedelta | None = None


def rules_from(settings: RemindersSettings) -> list[Rule]:
    """The clinic's rules, days-ahead first, then lead times longest first."""
    rules = [Rule(DAYS_AHEAD)]
    for lead in sorted(set(settings.lead_times), reverse=True):
        rules.append(Rule(f"lead_{_lead_name(lead)}", lead))
    return rules


def _lead_name(lead: timedelta) -> str:
    """``48h``, ``2h``, ``90m``: in hours whenever whole, as clinics say "48 hours before"."""
    minutes = int(lead.total_seconds() // 60)
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


@dataclass
class PlanResult:
    """Plans for the occurrences in ``scope``; occurrences with no plan carry a reason."""

    plans: list[JobPlan] = field(default_factory=list)
    scope: set[tuple[str, date]] = field(default_factory=set)
    reasons: dict[tuple[str, date], str] = field(default_factory=dict)


class Planner:
    """Turns appointments into job plans for one cycle (one ``now``, one reference snapshot)."""

    def __init__(
        self,
        settings: RemindersSettings,
        zone: ZoneInfo,
        reference: Reference,
        now: datetime,
        opted_out: set[tuple[str, Channel]] | None = None,
        answered: dict[tuple[str, date], str] | None = None,
    ) -> None:
        self.settings = settings
        self.zone = zone
        self.reference = reference
        self.now = now
        self.today = local_date(now, zone)
        self.window = SendingWindow(settings.start_hour, settings.end_hour, zone)
        self.rules = rules_from(settings)
        self.opted_out = opted_out or set()
        # Occurrences the patient already answered (confirmed, cancelled, asked for a call):
        # the other attempts for them stop.
        self.answered = answered or {}

    @property
    def horizon(self) -> tuple[date, date]:
        """The clinic-local dates whose appointments this planner looks at: from today through
        ``days_ahead`` days out, or further when a lead time reaches further (a 72 h reminder
        must be planned before its moment, even with ``days_ahead: 1``)."""
        longest = max(self.settings.lead_times, default=timedelta(0))
        days = max(self.settings.days_ahead, math.ceil(longest / timedelta(days=1)))
        return (self.today, self.today + timedelta(days=days))

    @property
    def reminder_days(self) -> tuple[date, date]:
        """The dates the days-ahead rule covers (and ``bridge plan`` lists): from tomorrow
        through ``days_ahead`` days out."""
        return (
            self.today + timedelta(days=1),
            self.today + timedelta(days=self.settings.days_ahead),
        )

    def plan(
        self,
        appointments: Iterable[Appointment],
        patients: dict[str, Patient],
        history: Sequence[Job] = (),
    ) -> PlanResult:
        """Plans for ``appointments``; ``history``: the stored jobs of the same patients (only
        their reminders count: a recall or a booking confirmation takes no reminder's day)."""
        history = [job for job in history if job.event == EVENT]
        result = PlanResult()
        for appt in appointments:
            result.scope.add(appt.ident)
            reason = self.blocked(appt, patients.get(appt.patient_key))
            if reason:
                result.reasons[appt.ident] = reason
                continue
            result.plans.extend(self._plan_one(appt, patients[appt.patient_key]))
        result.plans = self._already_reminded(result.plans, history)
        if self.settings.one_per_day:
            result.plans = self._one_per_day(result.plans, history)
        return result

    def blocked(self, appt: Appointment, patient: Patient | None) -> str | None:
        """Why this appointment gets no reminder at all, or None."""
        if not self.settings.enabled:
            return "reminders are switched off"
        if patient is None:
            return f"patient {appt.patient_key} not found on the host"
        if not appt.eligible:
            return f"status {appt.status!r} ({appt.status_class.value}) is not eligible"
        if appt.start <= self.now:
            return "appointment has started"
        if appt.ident in self.answered:
            return f"patient already answered ({self.answered[appt.ident]})"
        off = set(self.settings.providers_off)
        if appt.provider_keys and off and all(p in off for p in appt.provider_keys):
            return "reminders are off for this provider"
        if appt.service_key and appt.service_key in set(self.settings.services_off):
            return "reminders are off for this service"
        return None

    def _plan_one(self, appt: Appointment, patient: Patient) -> list[JobPlan]:
        channels, preference_reason = self.channels_for(patient)
        plans: list[JobPlan] = []
        for rule in self.rules:
            due, late_reason = self.due(rule, appt)
            if due is None and late_reason is None:
                continue
            for channel in channels:
                reason = late_reason or preference_reason or self.channel_block(patient, channel)
                plans.append(
                    JobPlan(
                        event=EVENT,
                        appointment_key=appt.key,
                        occurrence=appt.occurrence,
                        patient_key=appt.patient_key,
                        rule=rule.name,
                        channel=channel,
                        due=due or self.window.next_open(self.now),
                        appointment_start=appt.start,
                        skip_reason=reason,
                    )
                )
        return self._collapse(plans)

    def channels_for(self, patient: Patient) -> tuple[tuple[Channel, ...], str | None]:
        """The channels to plan for this patient, and a reason if all of them are to be skipped."""
        clinic = self.settings.clinic_channels
        preference = patient.preference
        if preference is None or (
            preference not in self.settings.allowed_types and preference != ReminderType.NONE
        ):
            return clinic, None
        if preference == ReminderType.NONE:
            return clinic, "patient asked for no reminders"
        narrowed = tuple(c for c in clinic if c in preference.channels)
        return (narrowed or clinic), None

    def channel_block(self, patient: Patient, channel: Channel) -> str | None:
        """Why ``channel`` cannot be used for this patient, or None."""
        if patient.deceased:
            return "patient is deceased"
        if (patient.key, channel) in self.opted_out:
            return f"patient opted out of {channel.value}"
        consent = patient.consent_for(channel)
        if consent == Consent.NO:
            return f"no consent for {channel.value} (refused)"
        if consent != Consent.YES and self.settings.consent == "explicit":
            return f"no consent for {channel.value} on record"
        if channel == Channel.SMS:
            if patient.mobile is None:
                bad = "mobile" in patient.bad_contacts
                return "mobile number is not valid" if bad else "no mobile number"
            if not can_receive_sms(patient.mobile):
                return "mobile number is a landline"
        elif channel == Channel.VOICE:
            if not (patient.mobile or patient.home_phone):
                invalid = {"mobile", "home_phone"} & set(patient.bad_contacts)
                return "phone number is not valid" if invalid else "no phone number"
        elif channel == Channel.EMAIL and not patient.email:
            return "email address is not valid" if "email" in patient.bad_contacts else "no email"
        return None

    def due(self, rule: Rule, appt: Appointment) -> tuple[datetime | None, str | None]:
        """When ``rule`` sends for ``appt``: (due, None), (None, None) when the rule does not
        apply, or (None, reason) when its moment cannot be met."""
        if rule.lead is None:
            first, last = self.reminder_days
            if not first <= appt.occurrence <= last:
                return None, None
            opens = self.window.opens(appt.occurrence - timedelta(days=self.settings.days_ahead))
            due = self.window.next_open(max(opens, self.now))
        else:
            due = self.window.latest_before(appt.start - rule.lead)
            if due < self.now:
                due = self.window.next_open(self.now)
        if due >= appt.start:
            return None, "too late: the sending window closes before the appointment"
        if due > appt.start - timedelta(hours=self.settings.min_lead_hours):
            return None, (
                f"too late: less than {self.settings.min_lead_hours:g} h before the appointment"
            )
        return due, None

    def _collapse(self, plans: list[JobPlan]) -> list[JobPlan]:
        """Skip a reminder due within ``MIN_GAP`` after an earlier one of the same channel."""
        kept: list[JobPlan] = []
        last: dict[Channel, datetime] = {}
        for plan in sorted(plans, key=lambda p: (p.due, p.rule)):
            if plan.skip_reason is None:
                previous = last.get(plan.channel)
                if previous is not None and plan.due - previous < MIN_GAP:
                    plan = replace(plan, skip_reason="within an hour of another reminder")
                else:
                    last[plan.channel] = plan.due
            kept.append(plan)
        return kept

    def _already_reminded(self, plans: list[JobPlan], history: Sequence[Job]) -> list[JobPlan]:
        sent = {
            (job.patient_key, job.appointment_start, job.rule, job.channel): job
            for job in history
            if job.status in (JobStatus.SENT, JobStatus.SENDING, JobStatus.UNKNOWN)
        }
        result = []
        for plan in plans:
            twin = sent.get((plan.patient_key, plan.appointment_start, plan.rule, plan.channel))
            if plan.skip_reason is None and twin is not None and twin.dedupe_key != plan.dedupe_key:
                plan = replace(
                    plan,
                    skip_reason=f"already reminded for this visit (as {twin.appointment_key})",
                )
            result.append(plan)
        return result

    def _one_per_day(self, plans: list[JobPlan], history: Sequence[Job]) -> list[JobPlan]:
        """At most one reminder (one appointment and rule, any channels) per patient per day;
        a later one moves to the next day while that is still in time, else it is skipped."""
        Owner = tuple[str, date, str]  # appointment, occurrence, rule: one reminder
        taken: dict[tuple[str, date], Owner] = {}
        handed_over = set()
        for job in history:
            if job.status not in (JobStatus.SENT, JobStatus.SENDING, JobStatus.UNKNOWN):
                continue
            handed_over.add(job.dedupe_key)
            # A job in flight (sending, or unknown after a crash) has no sent_at yet: it went
            # out, or may have, on the day it was due.
            day = local_date(job.sent_at or job.due_at, self.zone)
            owner = (job.appointment_key, job.occurrence, job.rule)
            taken.setdefault((job.patient_key, day), owner)
        by_reminder: dict[Owner, list[JobPlan]] = defaultdict(list)
        for plan in plans:
            if plan.dedupe_key in handed_over:
                continue  # already sent (reconcile keeps it as is): it takes no new day
            by_reminder[(plan.appointment_key, plan.occurrence, plan.rule)].append(plan)
        result: list[JobPlan] = [p for p in plans if p.dedupe_key in handed_over]
        ordered = sorted(
            by_reminder.values(), key=lambda g: (min(p.due for p in g), g[0].appointment_start)
        )
        for group in ordered:
            active = [p for p in group if p.skip_reason is None]
            if not active:
                result.extend(group)
                continue
            owner = (group[0].appointment_key, group[0].occurrence, group[0].rule)
            due = min(p.due for p in active)
            deadline = group[0].appointment_start - timedelta(hours=self.settings.min_lead_hours)
            while taken.get((group[0].patient_key, local_date(due, self.zone)), owner) != owner:
                due = self.window.opens(local_date(due, self.zone) + timedelta(days=1))
            if due >= deadline:
                result.extend(
                    p
                    if p.skip_reason
                    else replace(p, skip_reason="one reminder per day: already reminded today")
                    for p in group
                )
                continue
            taken[(group[0].patient_key, local_date(due, self.zone))] = owner
            result.extend(p if p.skip_reason else replace(p, due=max(p.due, due)) for p in group)
        return result

"""The built-in templates of online booking's messages (booked, booking_failed, booking_link,
invitation, recall) in every language: each renders with a realistic message, leaves no
placeholder or empty gap behind, shows dates in the reader's language, and keeps an SMS to two
GSM-7 segments with a real link in it.

Synthetic data only: "Giulia Synthetic", numbers in the fictional 555-01xx range.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bridge.booking.events import reader_date
from bridge.model import Appointment, Channel, Facility, Patient, Provider, Service, StatusClass
from bridge.settings import ClinicSettings, TemplateSettings
from bridge.template import BUILTIN_FOLDER, MessageContext, Rendered, Templates

ROME = ZoneInfo("Europe/Rome")
LOCALES = ("en", "it", "es", "fr")
# A link as long as a real one: the clinic's address and a token (20 + 1 + 16 characters).
LINK = "https://prenota.studiosynthetic.example/b/Ab12Cd34Ef56Gh78Ij90.Kl12Mn34Op56Qr78"
CLINIC = ClinicSettings(
    name="Studio Dentistico Synthetic",
    phone="+12025550199",
    region="IT",
    language="it",
    website="https://studiosynthetic.example",
)
START = datetime(2026, 3, 30, 7, 30, tzinfo=UTC)  # Monday 30 March, 09:30 in Rome
LAST_VISIT, EXPIRES = date(2025, 9, 10), date(2026, 4, 10)
WEEKDAY = {"en": "Monday", "it": "lunedì", "es": "lunes", "fr": "lundi"}
LONG_DATES = {  # LAST_VISIT and EXPIRES as each language writes them
    "en": ("10 September 2025", "10 April 2026"),
    "it": ("10 settembre 2025", "10 aprile 2026"),
    "es": ("10 de septiembre de 2025", "10 de abril de 2026"),
    "fr": ("10 septembre 2025", "10 avril 2026"),
}
PARTS = {
    "booked": ("sms", "email", "email.subject", "email.html"),
    "booking_failed": ("sms", "email", "email.subject"),
    "booking_link": ("sms", "email", "email.subject"),
    "invitation": ("email", "email.subject"),
    "recall": ("sms", "email", "email.subject"),
}
RENDERS = [
    (event, channel, locale)
    for event, parts in PARTS.items()
    for channel in ("sms", "email")
    if channel in parts
    for locale in LOCALES
]


@pytest.fixture(scope="module")
def templates() -> Templates:
    return Templates(TemplateSettings(), CLINIC)


def patient(language: str, **values: Any) -> Patient:
    return Patient(
        key="40",
        first_name="Giulia",
        last_name="Synthetic",
        language=language,
        mobile="+12025550140",
        email="giulia@example.test",
        **values,
    )


def dated(language: str, value: date, templates: Templates, event: str) -> str:
    return reader_date(templates, CLINIC, event, Channel.EMAIL, patient(language), value, ROME)


def context(
    event: str, language: str, templates: Templates, **extra: dict[str, str]
) -> MessageContext:
    """The message as the booking events build it (``bridge.booking.events``)."""
    appointment = Appointment(
        key="77",
        occurrence=START.date(),
        patient_key="40",
        start=START,
        end=START.replace(minute=45),
        status="-",
        status_class=StatusClass.SCHEDULED,
        eligible=True,
        provider_keys=("1",),
        facility_key="1",
        service_key="5",
    )
    values = {
        "booked": {
            "booking": {
                "map_url": "https://maps.example/studio",
                "parking": "Free parking <behind> the building & in Via Roma.",
                "photo_url": "https://studiosynthetic.example/rossi.jpg",
                "offer": "Whitening 20% off in April.",
                "pending": "",
                "reference": "K7M2P9QX",
            }
        },
        "booking_failed": {"booking": {"reference": "K7M2P9QX"}},
        "recall": {
            "recall": {
                "reason": "Check-up",
                "last_visit": dated(language, LAST_VISIT, templates, event),
                "due": dated(language, date(2026, 3, 10), templates, event),
            }
        },
        "invitation": {
            "invite": {"expires": dated(language, EXPIRES, templates, event), "new_patient": ""}
        },
        "booking_link": {
            "invite": {"expires": dated(language, EXPIRES, templates, event), "reason": "Check-up"}
        },
    }[event]
    for group, fields in extra.items():
        values[group] = {**values.get(group, {}), **fields}
    about_visit = event in ("booked", "booking_failed")
    return MessageContext(
        appointment=appointment if about_visit else None,
        patient=patient(language),
        provider=Provider(key="1", first_name="Ada", last_name="Rossi", title="Dr."),
        facility=Facility(key="1", name="Main Office", street="Via Roma 1", city="Milano"),
        service=Service(key="5", name="Check-up", duration_minutes=15),
        clinic=CLINIC,
        timezone=ROME,
        link=LINK,
        extra=values,
    )


def gaps(text: str) -> list[str]:
    """Lines with what an empty or missing value leaves behind."""
    marks = ("{{", "}}", "{%", "%}", "None", " ,", " .", "()", "( ", " )", ": .")
    return [line for line in text.splitlines() if any(m in line for m in marks)]


def render(templates: Templates, event: str, channel: str, ctx: MessageContext) -> Rendered:
    return templates.render(event, Channel(channel), ctx)


def test_every_event_has_every_part_in_every_language() -> None:
    missing = [
        f"{locale}/{event}.{part}.j2"
        for event, parts in PARTS.items()
        for part in parts
        for locale in LOCALES
        if not (BUILTIN_FOLDER / locale / f"{event}.{part}.j2").is_file()
    ]
    assert missing == []


def test_the_built_in_templates_pass_the_check(templates: Templates) -> None:
    assert templates.check() == []


@pytest.mark.parametrize(("event", "channel", "locale"), RENDERS)
def test_renders_in_each_language(
    templates: Templates, event: str, channel: str, locale: str
) -> None:
    rendered = render(templates, event, channel, context(event, locale, templates))

    assert rendered.locale == locale
    assert gaps(rendered.text) == []
    assert LINK in rendered.text
    assert "Studio Dentistico Synthetic" in rendered.text
    if event in ("booked", "booking_failed"):
        assert WEEKDAY[locale] in rendered.text
        assert "09:30" in rendered.text or "9:30" in rendered.text
    if channel == "sms":
        assert rendered.segments is not None
        assert (rendered.segments.encoding, rendered.segments.segments <= 2) == ("GSM-7", True)
        assert "\n\n" not in rendered.text
        return
    assert rendered.subject and "\n" not in rendered.subject
    assert gaps(rendered.subject) == []
    assert rendered.text.splitlines()[0].rstrip(",:").endswith("Giulia Synthetic")
    if event == "recall":
        assert LONG_DATES[locale][0] in rendered.text
    if event in ("invitation", "booking_link"):
        assert LONG_DATES[locale][1] in rendered.text
    if event == "booked":
        assert WEEKDAY[locale] in rendered.subject
        for shown in ("https://maps.example/studio", "K7M2P9QX", "Whitening 20% off in April."):
            assert shown in rendered.text
        assert rendered.html is not None
        assert "https://studiosynthetic.example/rossi.jpg" in rendered.html
        assert "&lt;behind&gt; the building &amp; in Via Roma" in rendered.html
        assert f'href="{LINK}"' in rendered.html
        assert gaps(rendered.html) == []
    else:
        assert rendered.html is None


@pytest.mark.parametrize("locale", LOCALES)
def test_booked_sms_keeps_the_map_on_its_own_line(templates: Templates, locale: str) -> None:
    for pending in ("", "yes"):
        ctx = context("booked", locale, templates, booking={"pending": pending})
        lines = render(templates, "booked", "sms", ctx).text.splitlines()
        assert len(lines) == 3
        assert lines[0].endswith(".")
        assert lines[1].split(":")[0].strip() in ("Map", "Mappa", "Mapa", "Plan")
        assert lines[2].endswith(LINK)


@pytest.mark.parametrize("locale", LOCALES)
def test_pending_bookings_are_said_to_wait(templates: Templates, locale: str) -> None:
    booked = context("booked", locale, templates)
    pending = context("booked", locale, templates, booking={"pending": "yes"})
    for channel in ("sms", "email"):
        one = render(templates, "booked", channel, booked)
        other = render(templates, "booked", channel, pending)
        assert one.text != other.text
        assert gaps(other.text) == []
        if channel == "email":
            assert one.subject != other.subject


@pytest.mark.parametrize("locale", LOCALES)
def test_without_the_optional_values_nothing_is_left_dangling(
    templates: Templates, locale: str
) -> None:
    """A manual recall (no last visit, no reason), an invitation to someone new (no name), a
    link for no reason in particular, a confirmation without the clinic's extras."""
    empty = {"reason": "", "last_visit": "", "due": ""}
    bare_booking = {"map_url": "", "parking": "", "photo_url": "", "offer": "", "reference": ""}
    cases = [
        ("recall", context("recall", locale, templates, recall=empty)),
        ("booking_link", context("booking_link", locale, templates, invite={"reason": ""})),
        ("booked", context("booked", locale, templates, booking=bare_booking)),
    ]
    newcomer = context("invitation", locale, templates, invite={"new_patient": "yes"})
    cases.append(("invitation", replace(newcomer, patient=Patient(key="", email="a@example.test"))))
    for event, ctx in cases:
        for channel in ("sms", "email"):
            if channel not in PARTS[event]:
                continue
            rendered = render(templates, event, channel, ctx)
            assert gaps(rendered.text) == [], (event, channel)
            assert gaps(rendered.subject or "") == [], (event, channel)
            assert LINK in rendered.text
    text = render(templates, "invitation", "email", cases[-1][1]).text
    assert "Giulia" not in text and "None" not in text
    assert LONG_DATES[locale][0] not in render(templates, "recall", "email", cases[0][1]).text


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("it", "10 aprile 2026"),
        ("es", "10 de abril de 2026"),
        ("fr", "10 avril 2026"),
        ("en", "10 April 2026"),  # the clinic is in Italy: day before month
        ("de", "10 aprile 2026"),  # no German templates: the clinic's language
    ],
)
def test_dates_in_messages_are_in_the_readers_language(
    templates: Templates, language: str, expected: str
) -> None:
    late = datetime(2026, 4, 9, 22, 30, tzinfo=UTC)  # already the 10th in Rome
    who = patient(language)
    assert reader_date(templates, CLINIC, "recall", Channel.SMS, who, late, ROME) == expected
    assert reader_date(templates, CLINIC, "invitation", Channel.EMAIL, who, None, ROME) == ""


def test_an_american_clinic_writes_the_month_first(templates: Templates) -> None:
    clinic = CLINIC.model_copy(update={"region": "US", "language": "en"})
    found = reader_date(templates, clinic, "recall", Channel.EMAIL, patient("en"), EXPIRES, ROME)
    assert found == "April 10, 2026"


def test_an_sms_marks_a_test_message(templates: Templates) -> None:
    ctx = replace(context("recall", "it", templates), testing=True)
    rendered = render(templates, "recall", "sms", ctx)
    assert rendered.text.startswith("TEST: Studio Dentistico Synthetic")


def test_the_weekday_follows_the_clinic_zone(templates: Templates) -> None:
    ctx = context("booked", "it", templates)
    late = replace(
        ctx,
        appointment=replace(
            ctx.appointment,  # type: ignore[arg-type]
            start=datetime(2026, 3, 29, 22, 30, tzinfo=UTC),
            end=datetime(2026, 3, 29, 23, 0, tzinfo=UTC),
        ),
    )
    subject = render(templates, "booked", "email", late).subject or ""
    assert re.search(r"lunedì 30 marzo alle 00:30", subject), subject

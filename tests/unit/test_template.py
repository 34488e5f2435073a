"""Message templates: context, locales, time zones, limits, sandbox, overrides, check().

Synthetic data only: "Test Patient", numbers in the fictional 555-01xx range.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import pytest

from bridge.errors import ConfigError, TemplateError
from bridge.model import Appointment, Channel, Facility, Patient, Provider, Service, StatusClass
from bridge.settings import ClinicSettings, TemplateLimits, TemplateSettings
from bridge.template import BUILTIN_FOLDER, MessageContext, Rendered, Templates, locale_for
from bridge.template_context import build_context, format_locale, truncate

ROME = ZoneInfo("Europe/Rome")
NEW_YORK = ZoneInfo("America/New_York")
LINK = "https://example.invalid/c/Ab12Cd34Ef"
LOCALES = ("en", "it", "es", "fr")


def make_ctx(
    *,
    start: datetime = datetime(2024, 6, 3, 7, 30, tzinfo=UTC),
    minutes: int = 20,
    language: str = "en",
    region: str = "US",
    clinic_language: str = "en",
    timezone: ZoneInfo = ROME,
    link: str | None = LINK,
    testing: bool = False,
    first_name: str = "Test",
    last_name: str = "Patient",
    provider_last: str = "Example",
    room: str = "12",
    clinic_name: str = "Demo Clinic",
) -> MessageContext:
    appointment = Appointment(
        key="1",
        occurrence=start.date(),
        patient_key="p1",
        start=start,
        end=start + (datetime(2000, 1, 1, 0, minutes) - datetime(2000, 1, 1)),
        status="-",
        status_class=StatusClass.SCHEDULED,
        eligible=True,
        room=room,
    )
    patient = Patient(
        key="p1",
        first_name=first_name,
        last_name=last_name,
        language=language,
        mobile="+12025550123",
    )
    clinic = ClinicSettings(
        name=clinic_name, phone="+12025550100", region=region, language=clinic_language
    )
    return MessageContext(
        appointment=appointment,
        patient=patient,
        provider=Provider(key="d1", first_name="Ada", last_name=provider_last, title="Dr."),
        facility=Facility(key="f1", name="Main Office", city="Springfield", phone="+12025550101"),
        service=Service(key="s1", name="Check-up", duration_minutes=20),
        clinic=clinic,
        timezone=timezone,
        link=link,
        testing=testing,
    )


def context_of(ctx: MessageContext, template_locale: str = "en", **limits: int) -> dict[str, Any]:
    locale = format_locale(template_locale, ctx.patient, ctx.clinic)
    return build_context(ctx, TemplateLimits(**limits), locale)


@pytest.fixture
def templates() -> Templates:
    return Templates(TemplateSettings(), ClinicSettings())


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def with_override(folder: Path) -> Templates:
    return Templates(TemplateSettings(folder=folder), ClinicSettings())


# --- dates, times and locales ----------------------------------------------------------------

DATE_CASES = [
    # template locale, patient language, clinic region, date_long, date, date_short, time, end
    ("it", "it", "IT", "lunedì 3 giugno", "03/06/2024", "03/06", "09:30", "09:50"),
    ("en", "en", "US", "Monday, June 3", "6/3/2024", "6/3", "9:30 AM", "9:50 AM"),
    ("en", "en-GB", "US", "Monday 3 June", "03/06/2024", "03/06", "09:30", "09:50"),
    ("en", "English", "GB", "Monday 3 June", "03/06/2024", "03/06", "09:30", "09:50"),
    ("es", "es", "ES", "lunes, 3 de junio", "3/6/2024", "3/6", "9:30", "9:50"),
    ("es", "Spanish", "US", "lunes, 3 de junio", "3/6/2024", "3/6", "9:30 a.m.", "9:50 a.m."),
    ("fr", "fr", "FR", "lundi 3 juin", "03/06/2024", "03/06", "09:30", "09:50"),
]


@pytest.mark.parametrize(
    ("folder", "language", "region", "date_long", "date", "date_short", "time", "end"),
    DATE_CASES,
    ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in DATE_CASES],
)
def test_dates_per_locale(
    folder: str,
    language: str,
    region: str,
    date_long: str,
    date: str,
    date_short: str,
    time: str,
    end: str,
) -> None:
    appt = context_of(make_ctx(language=language, region=region), folder)["appointment"]
    assert appt["date_long"] == date_long
    assert appt["date"] == date
    assert appt["date_short"] == date_short
    assert appt["time"] == appt["start"] == time
    assert appt["end"] == end
    assert appt["datetime"] == f"{date_short} {time}"
    assert appt["day"] == "3"
    assert appt["duration"] == "20"


@pytest.mark.parametrize(
    ("folder", "weekday", "month"),
    [
        ("it", "lunedì", "giugno"),
        ("en", "Monday", "June"),
        ("es", "lunes", "junio"),
        ("fr", "lundi", "juin"),
    ],
)
def test_weekday_and_month(folder: str, weekday: str, month: str) -> None:
    appt = context_of(make_ctx(language=folder), folder)["appointment"]
    assert (appt["weekday"], appt["month"]) == (weekday, month)


def test_no_break_spaces_from_babel_become_plain_spaces() -> None:
    # CLDR puts U+202F before AM/PM; it is not GSM-7 and would make every SMS UCS-2.
    appt = context_of(make_ctx(region="US"))["appointment"]
    assert "\u202f" not in appt["time"] and "\u00a0" not in appt["datetime"]


TZ_CASES = [
    # UTC instant, zone, folder, region, expected date_long, expected time
    (datetime(2024, 6, 3, 7, 30, tzinfo=UTC), ROME, "it", "IT", "lunedì 3 giugno", "09:30"),
    (datetime(2024, 1, 15, 8, 0, tzinfo=UTC), ROME, "it", "IT", "lunedì 15 gennaio", "09:00"),
    (datetime(2024, 6, 3, 7, 30, tzinfo=UTC), NEW_YORK, "en", "US", "Monday, June 3", "3:30 AM"),
    (
        datetime(2024, 1, 15, 8, 0, tzinfo=UTC),
        NEW_YORK,
        "en",
        "US",
        "Monday, January 15",
        "3:00 AM",
    ),
    # Late UTC evening is already the next day in Rome.
    (datetime(2024, 6, 3, 23, 30, tzinfo=UTC), ROME, "it", "IT", "martedì 4 giugno", "01:30"),
    # DST change days: Europe 2024-03-31 01:00Z, United States 2024-03-10 07:00Z.
    (datetime(2024, 3, 31, 0, 30, tzinfo=UTC), ROME, "it", "IT", "domenica 31 marzo", "01:30"),
    (datetime(2024, 3, 31, 1, 30, tzinfo=UTC), ROME, "it", "IT", "domenica 31 marzo", "03:30"),
    (datetime(2024, 3, 10, 6, 30, tzinfo=UTC), NEW_YORK, "en", "US", "Sunday, March 10", "1:30 AM"),
    (datetime(2024, 3, 10, 7, 30, tzinfo=UTC), NEW_YORK, "en", "US", "Sunday, March 10", "3:30 AM"),
    (
        datetime(2024, 11, 3, 5, 30, tzinfo=UTC),
        NEW_YORK,
        "en",
        "US",
        "Sunday, November 3",
        "1:30 AM",
    ),
    (
        datetime(2024, 11, 3, 6, 30, tzinfo=UTC),
        NEW_YORK,
        "en",
        "US",
        "Sunday, November 3",
        "1:30 AM",
    ),
]


@pytest.mark.parametrize(("start", "zone", "folder", "region", "date_long", "time"), TZ_CASES)
def test_times_are_shown_in_the_clinic_zone(
    start: datetime, zone: ZoneInfo, folder: str, region: str, date_long: str, time: str
) -> None:
    ctx = make_ctx(start=start, timezone=zone, language=folder, region=region)
    appt = context_of(ctx, folder)["appointment"]
    assert (appt["date_long"], appt["time"]) == (date_long, time)


def test_naive_start_is_taken_as_utc() -> None:
    ctx = make_ctx(start=datetime(2024, 6, 3, 7, 30), language="it", region="IT")
    assert context_of(ctx, "it")["appointment"]["time"] == "09:30"


@pytest.mark.parametrize(
    ("patient", "clinic", "available", "expected"),
    [
        ("it", "en", {"en", "it"}, "it"),
        ("Italian", "en", {"en", "it"}, "it"),
        ("Italiano", "en", {"en", "it"}, "it"),
        ("it-IT", "en", {"en", "it"}, "it"),
        ("ita", "en", {"en", "it"}, "it"),
        ("Español", "en", {"en", "es"}, "es"),
        ("de", "fr", {"en", "fr"}, "fr"),
        ("", "fr", {"en", "fr"}, "fr"),
        ("de", "de", {"en", "fr"}, "en"),
        ("gibberish", "", {"en"}, "en"),
        ("pt-BR", "en", {"en", "pt", "pt_BR"}, "pt_BR"),
        ("pt-PT", "en", {"en", "pt", "pt_BR"}, "pt"),
    ],
)
def test_locale_fallback(patient: str, clinic: str, available: set[str], expected: str) -> None:
    result = locale_for(
        Patient(key="p", language=patient), ClinicSettings(language=clinic), available
    )
    assert result == expected


def test_locale_for_without_any_match_raises() -> None:
    with pytest.raises(TemplateError, match="no template"):
        locale_for(Patient(key="p", language="de"), ClinicSettings(language="de"), {"it"})


def test_render_falls_back_to_clinic_language(templates: Templates) -> None:
    ctx = make_ctx(language="de", clinic_language="it", region="IT")
    rendered = templates.render("reminder", Channel.SMS, ctx)
    assert rendered.locale == "it"
    assert "lunedì 3 giugno" in rendered.text


# --- limits ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("Short", 25, "Short"),
        ("Bartholomew Alexander Fitzgerald", 25, "Bartholomew Alexander Fit"),
        ("Anna Maria Test", 11, "Anna Maria"),  # the cut lands on a space: dropped
        ("Room 12B", 5, "Room"),
        ("Test-Patient", 5, "Test"),  # a dangling separator is dropped
        ("Jose\u0301 Test", 4, "Jos"),  # never keep a letter without its accent
        ("Jos\u00e9 Test", 4, "Jos\u00e9"),
        ("ab\U0001f44d\U0001f3fdcd", 3, "ab"),  # emoji + skin tone stay together
        ("ab\U0001f1ee\U0001f1f9cd", 3, "ab"),  # a flag is two regional indicators
        ("ab\U0001f1ee\U0001f1f9cd", 4, "ab\U0001f1ee\U0001f1f9"),
        ("a\U0001f468\u200d\U0001f469b", 3, "a"),  # a ZWJ sequence is one character
    ],
)
def test_truncate(text: str, limit: int, expected: str) -> None:
    assert truncate(text, limit) == expected


def test_limits_are_applied_before_rendering() -> None:
    ctx = make_ctx(
        first_name="Bartholomew Alexander Fitzgerald",
        last_name="Test",
        provider_last="Examplewithaverylongsurname",
        room="Room 12B",
    )
    context = context_of(ctx)
    assert context["patient"]["first_name"] == "Bartholomew Alexander Fit"
    assert context["patient"]["name"] == "Bartholomew Alexander Fit"
    assert context["provider"]["name"] == "Dr. Ada Examplewithave"
    assert len(context["provider"]["name"]) == 22
    assert context["appointment"]["room"] == context["appointment"]["office"] == "Room"
    assert context_of(ctx, datetime=7)["appointment"]["datetime"] == "6/3 9:3"


def test_limits_from_settings_reach_the_rendered_text(tmp_path: Path) -> None:
    write(tmp_path, "en/reminder.sms.j2", "{{ patient.name }}|{{ appointment.datetime }}")
    settings = TemplateSettings(folder=tmp_path, limits=TemplateLimits(name=4, datetime=3))
    rendered = Templates(settings, ClinicSettings()).render("reminder", Channel.SMS, make_ctx())
    assert rendered.text == "Test|6/3"


# --- rendering the built-in templates -------------------------------------------------------


@pytest.mark.parametrize("locale", LOCALES)
def test_builtin_sms_fits_one_gsm7_segment(templates: Templates, locale: str) -> None:
    ctx = make_ctx(language=locale, region={"en": "US"}.get(locale, locale.upper()))
    rendered = templates.render("reminder", Channel.SMS, ctx)
    assert rendered.locale == locale
    assert rendered.segments is not None
    assert (rendered.segments.encoding, rendered.segments.segments) == ("GSM-7", 1), rendered.text
    assert rendered.warnings == ()
    assert LINK in rendered.text and "Test" in rendered.text and "Dr. Ada Example" in rendered.text


def test_builtin_english_sms_exact(templates: Templates) -> None:
    rendered = templates.render("reminder", Channel.SMS, make_ctx(timezone=NEW_YORK))
    assert rendered.text == (
        "Demo Clinic: Hi Test, your appointment is on Monday, June 3 at 3:30 AM with "
        f"Dr. Ada Example.\nConfirm or cancel: {LINK}"
    )
    assert rendered.chars == len(rendered.text)


def test_builtin_sms_without_link_gives_the_clinic_phone(templates: Templates) -> None:
    rendered = templates.render("reminder", Channel.SMS, make_ctx(link=None))
    assert rendered.text.endswith("To change it, call (202) 555-0100.")


@pytest.mark.parametrize("locale", LOCALES)
def test_builtin_voice_scripts(templates: Templates, locale: str) -> None:
    ctx = make_ctx(language=locale)
    call = templates.render("reminder", Channel.VOICE, ctx)
    machine = templates.render("reminder", Channel.VOICE, ctx, voicemail=True)
    for rendered in (call, machine):
        assert rendered.locale == locale
        assert "\n" not in rendered.text
        assert "Demo Clinic" in rendered.text and "Test" in rendered.text
        assert rendered.segments is None
    assert "Dr. Ada Example" in call.text and "Main Office" in call.text
    assert all(digit in call.text for digit in "123")
    assert len(machine.text) < len(call.text)


@pytest.mark.parametrize("locale", LOCALES)
def test_builtin_email(templates: Templates, locale: str) -> None:
    rendered = templates.render("reminder", Channel.EMAIL, make_ctx(language=locale))
    assert rendered.subject and "\n" not in rendered.subject
    assert rendered.html is not None and rendered.html.startswith("<!DOCTYPE html>")
    assert f'href="{LINK}"' in rendered.html
    assert "Test Patient" in rendered.text and LINK in rendered.text


def test_html_is_escaped_and_text_is_not(templates: Templates) -> None:
    rendered = templates.render("reminder", Channel.EMAIL, make_ctx(clinic_name="A&B <Clinic>"))
    assert rendered.html is not None
    assert "A&amp;B &lt;Clinic&gt;" in rendered.html and "<Clinic>" not in rendered.html
    assert "A&B <Clinic>" in rendered.text


def test_typographic_punctuation_is_folded_in_sms(tmp_path: Path, templates: Templates) -> None:
    write(tmp_path, "en/reminder.sms.j2", "It’s “soon” – see you… {{ patient.last_name }}")
    ctx = make_ctx(last_name="D’Test")
    rendered = with_override(tmp_path).render("reminder", Channel.SMS, ctx)
    assert rendered.text == "It's \"soon\" - see you... D'Test"
    assert rendered.segments is not None and rendered.segments.encoding == "GSM-7"


def test_non_gsm_sms_is_warned(tmp_path: Path) -> None:
    write(tmp_path, "en/reminder.sms.j2", "Olá {{ patient.first_name }}")
    rendered = with_override(tmp_path).render("reminder", Channel.SMS, make_ctx())
    assert rendered.segments is not None and rendered.segments.encoding == "UCS-2"
    assert any("outside GSM-7 (á)" in w for w in rendered.warnings)


# --- testing mode ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "voicemail"), [(Channel.SMS, False), (Channel.VOICE, False), (Channel.VOICE, True)]
)
def test_testing_marks_sms_and_calls(
    templates: Templates, channel: Channel, voicemail: bool
) -> None:
    live = templates.render("reminder", channel, make_ctx(), voicemail=voicemail)
    test = templates.render("reminder", channel, make_ctx(testing=True), voicemail=voicemail)
    assert not live.text.startswith("TEST")
    assert test.text == "TEST: " + live.text


def test_testing_marks_email_subject(templates: Templates) -> None:
    live = templates.render("reminder", Channel.EMAIL, make_ctx())
    test = templates.render("reminder", Channel.EMAIL, make_ctx(testing=True))
    assert test.subject == f"[TEST] {live.subject}"


def test_testing_mark_cannot_be_forgotten_by_an_override(tmp_path: Path) -> None:
    write(tmp_path, "en/reminder.sms.j2", "Hi {{ patient.first_name }}")
    rendered = with_override(tmp_path).render("reminder", Channel.SMS, make_ctx(testing=True))
    assert rendered.text == "TEST: Hi Test"
    assert rendered.segments is not None and rendered.segments.units == len("TEST: Hi Test")


# --- overrides -------------------------------------------------------------------------------


def test_override_wins_over_builtin(tmp_path: Path) -> None:
    write(tmp_path, "en/reminder.sms.j2", "Custom {{ patient.first_name }} {{ testing }}")
    rendered = with_override(tmp_path).render("reminder", Channel.SMS, make_ctx())
    assert rendered.text == "Custom Test False"


def test_patient_language_beats_override_folder(tmp_path: Path) -> None:
    write(tmp_path, "en/reminder.sms.j2", "Custom")
    rendered = with_override(tmp_path).render("reminder", Channel.SMS, make_ctx(language="it"))
    assert rendered.locale == "it" and "lunedì" in rendered.text


def test_override_can_add_a_locale_and_an_event(tmp_path: Path) -> None:
    write(
        tmp_path, "de/recall.sms.j2", "Hallo {{ patient.first_name }}, {{ appointment.date_long }}"
    )
    ctx = make_ctx(language="de", region="DE")
    rendered = with_override(tmp_path).render("recall", Channel.SMS, ctx)
    assert (rendered.locale, rendered.text) == ("de", "Hallo Test, Montag, 3. Juni")


def test_email_html_only_from_the_text_body_folder(tmp_path: Path) -> None:
    write(tmp_path, "en/reminder.email.j2", "Custom body")
    rendered = with_override(tmp_path).render("reminder", Channel.EMAIL, make_ctx())
    assert rendered.text == "Custom body"
    assert rendered.html is None  # the built-in HTML would contradict the clinic's text
    assert rendered.subject is not None and rendered.subject.startswith("Appointment reminder")


def test_missing_override_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"templates\.folder"):
        with_override(tmp_path / "nope")


# --- errors and the sandbox -----------------------------------------------------------------


def test_missing_template_names_the_file(templates: Templates) -> None:
    with pytest.raises(TemplateError, match=r"birthday\.sms\.j2"):
        templates.render("birthday", Channel.SMS, make_ctx())


def test_bad_event_name_is_refused(templates: Templates) -> None:
    with pytest.raises(TemplateError, match="event"):
        templates.render("../en/reminder", Channel.SMS, make_ctx())


def test_voicemail_is_for_voice_only(templates: Templates) -> None:
    with pytest.raises(ValueError, match="voice"):
        templates.render("reminder", Channel.SMS, make_ctx(), voicemail=True)


@pytest.mark.parametrize(
    ("source", "line", "words"),
    [
        ("Hello\n{{ patient.frist_name }}", 2, "frist_name"),
        ("{{ pateint.name }}", 1, "'pateint' is undefined"),
        ("Hi\n\n{% if appointment.room %}\n{{ appointment.rom }}\n{% endif %}", 4, "rom"),
    ],
)
def test_undefined_placeholder_names_file_and_line(
    tmp_path: Path, source: str, line: int, words: str
) -> None:
    path = write(tmp_path, "en/reminder.sms.j2", source)
    with pytest.raises(TemplateError) as info:
        with_override(tmp_path).render("reminder", Channel.SMS, make_ctx())
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: undefined placeholder")
    assert words in message
    assert isinstance(info.value.__cause__, jinja2.UndefinedError)


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "en/reminder.sms.j2", "Hi\n{% if patient.first_name %}\nno end")
    with pytest.raises(TemplateError, match="syntax error") as info:
        with_override(tmp_path).render("reminder", Channel.SMS, make_ctx())
    assert str(info.value).startswith(f"{path}:")
    assert isinstance(info.value.__cause__, jinja2.TemplateSyntaxError)


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__ }}",
        "{{ clinic.__class__.__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ patient.items.__self__ }}",
        "{{ ().__class__.__base__.__subclasses__() }}",
        "{{ clinic.update({'name': 'x'}) }}",
        "{{ 'a' * 100000000 }}",
        "{{ 10 ** 100000000 }}",
        "{{ '{0.__class__}'.format(clinic) }}",
        "{{ link|attr('__class__') }}",
    ],
)
def test_sandbox_refuses_python_internals(tmp_path: Path, source: str) -> None:
    path = write(tmp_path, "en/reminder.sms.j2", source)
    with pytest.raises(TemplateError, match="refused by the sandbox") as info:
        with_override(tmp_path).render("reminder", Channel.SMS, make_ctx())
    assert str(info.value).startswith(f"{path}:1:")
    assert isinstance(info.value.__cause__, jinja2.TemplateError)


def test_python_errors_in_a_template_are_template_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "en/reminder.sms.j2", "Hi\n{{ 1 / 0 }}")
    with pytest.raises(TemplateError, match="ZeroDivisionError") as info:
        with_override(tmp_path).render("reminder", Channel.SMS, make_ctx())
    assert str(info.value).startswith(f"{path}:2:")
    assert isinstance(info.value.__cause__, ZeroDivisionError)


def test_include_cannot_leave_the_template_folders(tmp_path: Path) -> None:
    write(tmp_path, "en/reminder.sms.j2", "{% include '../../../etc/passwd' %}")
    with pytest.raises(TemplateError, match="not found"):
        with_override(tmp_path).render("reminder", Channel.SMS, make_ctx())


def test_partials_can_be_included(tmp_path: Path) -> None:
    write(tmp_path, "en/_sign.j2", "-- {{ clinic.name }}")
    write(tmp_path, "en/reminder.sms.j2", "Hi {{ patient.first_name }} {% include 'en/_sign.j2' %}")
    rendered = with_override(tmp_path).render("reminder", Channel.SMS, make_ctx())
    assert rendered.text == "Hi Test -- Demo Clinic"
    assert with_override(tmp_path).check() == []


# --- check() ---------------------------------------------------------------------------------


def test_check_builtin_templates_are_clean(templates: Templates) -> None:
    assert templates.check() == []


def test_builtin_set_is_complete() -> None:
    parts = ("sms", "voice", "voicemail", "email", "email.subject", "email.html")
    for locale in LOCALES:
        for part in parts:
            assert (BUILTIN_FOLDER / locale / f"reminder.{part}.j2").is_file(), (locale, part)


def test_check_reports_broken_overrides(tmp_path: Path) -> None:
    syntax = write(tmp_path, "en/reminder.sms.j2", "Hi\n{% if %}")
    unknown = write(tmp_path, "en/reminder.voice.j2", "Hi\n\n{{ pateint.first_name }}")
    attr = write(tmp_path, "it/reminder.sms.j2", "Ciao {{ patient.frist_name }}")
    name = write(tmp_path, "en/reminder.smss.j2", "Hi")
    locale = write(tmp_path, "zz/reminder.sms.j2", "Hi")
    body = write(tmp_path, "zz/other.email.j2", "Body")
    problems = with_override(tmp_path).check()
    assert any(p.startswith(f"{syntax}:2:") and "syntax error" in p for p in problems)
    assert f"{unknown}:3: unknown placeholder 'pateint'" in problems
    assert any(p.startswith(f"{attr}:1: undefined placeholder") for p in problems)
    assert any(p.startswith(f"{name}: unknown template name") for p in problems)
    assert any(p.startswith(f"{locale}: 'zz' is not a locale") for p in problems)
    assert f"{body}: no other.email.subject.j2 beside it" in problems
    assert not any(str(BUILTIN_FOLDER) in p for p in problems)


def test_rendered_is_frozen() -> None:
    rendered = Rendered(Channel.SMS, "en", "Hi")
    assert rendered.chars == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        rendered.text = "x"  # type: ignore[misc]


@pytest.mark.parametrize(("hour", "words"), [(1, "a la 1:30"), (11, "a las 11:30")])
def test_spanish_one_o_clock_is_singular(templates: Templates, hour: int, words: str) -> None:
    start = datetime(2024, 6, 3, hour, 30, tzinfo=UTC)
    ctx = make_ctx(start=start, language="es", region="ES", timezone=ZoneInfo("UTC"))
    assert words in templates.render("reminder", Channel.SMS, ctx).text

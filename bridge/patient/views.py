"""The patient pages' HTML: Jinja2 (autoescaped) in the patient's language.

Page texts are English in the templates and translated through gettext catalogs shipped as
``locales/<language>.po`` (plain text a translator edits; compiled in memory when first used, so
no build step). One Jinja environment per language, made once: environments are shared by
every request thread and never change after.

The page language is the link's (the patient's language when the message went out), else the
browser's ``Accept-Language``, else the clinic's language, else English.
"""

from __future__ import annotations

import io
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse

from bridge.patient.guard import page_headers
from bridge.template_context import display_phone

if TYPE_CHECKING:
    from bridge.runtime import Runtime

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
LOCALES = HERE / "locales"
SOURCE_LANGUAGE = "en"


@lru_cache(maxsize=1)
def languages() -> tuple[str, ...]:
    """The languages the pages are written in: English and every shipped catalog."""
    return (SOURCE_LANGUAGE, *sorted(p.stem for p in LOCALES.glob("*.po")))


@cache
def translations(language: str) -> NullTranslations:
    """The compiled catalog for ``language`` (English: the texts as written)."""
    path = LOCALES / f"{language}.po"
    if language == SOURCE_LANGUAGE or not path.is_file():
        return NullTranslations()
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(fp=compiled)


@cache
def environment(language: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    return env


def render(name: str, language: str, **values: Any) -> str:
    """Render page ``name`` in ``language`` (one of ``languages()``)."""
    return environment(language).get_template(name).render(lang=language, **values)


def browser_language(request: Request, clinic_language: str | None) -> str:
    """The page's language for someone not yet known: the browser's choice, else the clinic's."""
    accept = request.headers.get("accept-language", "")
    return choose_language(accept=accept) if accept else choose_language(clinic_language)


def see_other(path: str, https: bool) -> RedirectResponse:
    """The answer to every form post and every step forward (303), with the pages' headers."""
    return RedirectResponse(path, status_code=303, headers=page_headers(https))


def page_response(
    runtime: Runtime,
    request: Request,
    name: str,
    language: str,
    status: int = 200,
    *,
    https: bool,
    **values: Any,
) -> HTMLResponse:
    """Page ``name`` with what every patient page shows (the clinic, testing mode, the link's
    token for its forms) and the patient pages' headers."""
    clinic = runtime.settings.clinic
    html = render(
        name,
        language,
        clinic={"name": clinic.name, "phone": display_phone(clinic.phone, clinic.region)},
        testing=runtime.settings.mode == "testing",
        token=request.path_params.get("token", ""),
        **values,
    )
    return HTMLResponse(html, status_code=status, headers=page_headers(https))


def choose_language(*candidates: str | None, accept: str = "") -> str:
    """The first supported language among ``candidates`` (codes like ``es`` or ``es_MX``), else
    the browser's best supported choice, else English."""
    available = languages()
    for candidate in candidates:
        found = _supported(candidate, available)
        if found:
            return found
    for tag in _accepted(accept):
        found = _supported(tag, available)
        if found:
            return found
    return SOURCE_LANGUAGE


def _supported(tag: str | None, available: tuple[str, ...]) -> str | None:
    if not tag:
        return None
    base = tag.replace("-", "_").split("_")[0].strip().lower()
    return base if base in available else None


def _accepted(header: str) -> list[str]:
    """``Accept-Language`` tags, best first (a malformed weight counts as 0)."""
    weighted = []
    for position, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        if tag and tag != "*":
            weighted.append((-weight, position, tag))
    return [tag for _, _, tag in sorted(weighted)]


@lru_cache(maxsize=64)
def date_order(language: str, region: str) -> tuple[tuple[str, ...], str]:
    """The order people in ``language`` and ``region`` write a date in (``month``, ``day``,
    ``year`` in the US) and an example in that order, for the birth-date fields."""
    try:
        locale = Locale.parse(f"{language}_{region}")
    except (ValueError, UnknownLocaleError):
        locale = Locale.parse(language)
    pattern = str(locale.date_formats["short"].pattern)
    positions = {
        part: pattern.find(letter) for part, letter in (("day", "d"), ("month", "M"), ("year", "y"))
    }
    order = tuple(
        sorted(positions, key=lambda part: positions[part] if positions[part] >= 0 else 99)
    )
    example = {"day": "27", "month": "3", "year": "1980"}
    return order, " ".join(example[part] for part in order)

"""Page texts: every text of every template is translated in every shipped language."""

from __future__ import annotations

from pathlib import Path

import pytest
from jinja2.ext import babel_extract

from bridge.patient.views import (
    TEMPLATES,
    choose_language,
    date_order,
    languages,
    render,
    translations,
)

OPTIONS = {"extensions": "jinja2.ext.i18n", "trim_blocks": "true", "lstrip_blocks": "true"}


def template_texts() -> list[str | tuple[str, ...]]:
    found: list[str | tuple[str, ...]] = []
    for path in sorted(Path(TEMPLATES).glob("*.html")):
        with path.open("rb") as handle:
            for _, _, message, _ in babel_extract(handle, ["_", "ngettext"], [], OPTIONS):
                found.append(message)
    return found


def test_the_pages_come_in_the_languages_of_the_message_templates() -> None:
    assert set(languages()) >= {"en", "es", "fr", "it"}


@pytest.mark.parametrize("language", [lang for lang in languages() if lang != "en"])
def test_every_text_is_translated(language: str) -> None:
    catalog = translations(language)
    texts = template_texts()
    assert len(texts) > 40
    for text in texts:
        if isinstance(text, tuple) and text[1] is not None:
            singular, plural = text[0], text[1]
            assert catalog.ngettext(singular, plural, 2) != plural, (language, singular)
        else:
            message = text[0] if isinstance(text, tuple) else text
            assert catalog.gettext(message) != message, (language, message)


def test_placeholders_survive_translation() -> None:
    for language in languages():
        html = render(
            "base.html", language, clinic={"name": "C", "phone": "(202) 555-0199"}, testing=False
        )
        assert "(202) 555-0199" in html and f'lang="{language}"' in html


def test_texts_are_escaped() -> None:
    html = render("invalid.html", "en", clinic={"name": "<script>x</script>", "phone": ""})
    assert "<script>x" not in html and "&lt;script&gt;" in html


def test_the_language_is_the_links_else_the_browsers_else_english() -> None:
    assert choose_language("it", accept="es") == "it"
    assert choose_language("pt", accept="pt-BR, es;q=0.8, fr;q=0.9") == "fr"
    assert choose_language(None, accept="de, *;q=0.5") == "en"
    assert choose_language("es_MX") == "es"
    assert choose_language(accept="fr;q=bad, it") == "it"


def test_birth_date_fields_follow_the_local_order() -> None:
    assert date_order("en", "US") == (("month", "day", "year"), "3 27 1980")
    assert date_order("en", "GB")[0] == ("day", "month", "year")
    assert date_order("it", "IT")[0] == ("day", "month", "year")

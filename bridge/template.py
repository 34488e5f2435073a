"""Message templates: sandboxed Jinja2 files per event, channel and locale.

A template is the file ``<locale>/<event>.<part>.j2`` where ``part`` is ``sms``, ``voice`` (the
call script), ``voicemail`` (the shorter script left on an answering machine), ``email`` (the
plain-text body), ``email.subject`` and ``email.html`` (optional). Adding an event is adding
files. Files starting with ``_`` are partials for ``{% include "it/_footer.j2" %}``.

Each file is looked up first in the clinic's folder (``templates.folder``), then in the built-in
``bridge/templates``. The locale is the patient's language, else the clinic's, else ``en``: the
first for which the file exists in either folder (a built-in Italian template beats an English
override for an Italian patient). An email's HTML part is used only from the folder its text body
came from, so a clinic that rewrites the text never sends a stale built-in HTML beside it.

Templates run in ``ImmutableSandboxedEnvironment`` with ``StrictUndefined``: a misspelt
placeholder is an error, not an empty string, and ``''.__class__`` is refused. Autoescape is on
for ``.html.j2`` files only. Every failure is a ``bridge.errors.TemplateError`` whose message
starts with ``file:line:``.

After rendering, code (not templates) tidies whitespace, folds typographic punctuation in SMS to
GSM-7 (’ -> ', “” -> ", – -> -, … -> ...) and marks test messages: ``TEST: `` before an SMS or
a call script, ``[TEST] `` before an email subject.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from jinja2 import FileSystemLoader, StrictUndefined, Template, meta, nodes
from jinja2 import TemplateError as JinjaError
from jinja2.exceptions import SecurityError, TemplateNotFound, TemplateSyntaxError, UndefinedError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from bridge.errors import ConfigError, TemplateError
from bridge.model import Channel, Patient
from bridge.segments import SegmentCount, count_segments, non_gsm7
from bridge.settings import ClinicSettings, TemplateSettings
from bridge.template_context import (
    CONTEXT_VARIABLES,
    MessageContext,
    build_context,
    format_locale,
    locale_candidates,
    parse_language,
    sample_context,
)

__all__ = ["BUILTIN_FOLDER", "MessageContext", "Rendered", "Templates", "locale_for"]

BUILTIN_FOLDER = Path(__file__).resolve().parent / "templates"
FALLBACK_LOCALE = "en"
PARTS = ("sms", "voice", "voicemail", "email", "email.subject", "email.html")
TEST_PREFIX = "TEST: "
TEST_SUBJECT_PREFIX = "[TEST] "
LOOKUP_SECONDS = 5.0
T = TypeVar("T")

_EVENT = re.compile(r"[a-z][a-z0-9_]*\Z")
_FILE = re.compile(
    r"(?P<event>[a-z][a-z0-9_]*)\.(?P<part>"
    + "|".join(re.escape(p) for p in sorted(PARTS, key=len, reverse=True))
    + r")\.j2\Z"
)
_GSM_FOLD = str.maketrans(
    dict.fromkeys("\u2018\u2019\u201a\u201b\u2032", "'")
    | dict.fromkeys("\u201c\u201d\u201e\u2033\u00ab\u00bb", '"')
    | dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2212", "-")
    | dict.fromkeys("\u00a0\u202f\u2009\u2007", " ")
    | {"\u2026": "..."}
)
_MAX_SEQUENCE = 10_000


@dataclass(frozen=True)
class Rendered:
    """One rendered message. ``segments`` is set for SMS only; ``warnings`` are for previews."""

    channel: Channel
    locale: str
    text: str
    subject: str | None = None
    html: str | None = None
    segments: SegmentCount | None = None
    warnings: tuple[str, ...] = ()

    @property
    def chars(self) -> int:
        """Characters (code points) of ``text``; billing uses ``segments.units``."""
        return len(self.text)


class _Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox, also refusing ``'x' * 10**9`` and huge powers (a template cannot hog memory)."""

    intercepted_binops = frozenset(["*", "**"])

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int) and abs(right) > 64:
            raise SecurityError("exponent too large in a template")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(times, int)
                    and len(seq) * times > _MAX_SEQUENCE
                ):
                    raise SecurityError("repetition too large in a template")
        return super().call_binop(context, operator, left, right)


def _is_html(name: str | None) -> bool:
    return bool(name) and str(name).endswith((".html.j2", ".html"))


def locale_for(patient: Patient, clinic: ClinicSettings, available: Collection[str]) -> str:
    """The template locale for ``patient``: their language, else the clinic's, else ``en``.

    ``available`` holds the locale folder names that have the template; the most specific match
    wins (``pt_BR`` before ``pt``). Raises ``TemplateError`` when none of the three is available.
    """
    folders = {name.replace("-", "_").casefold(): name for name in available}
    tried: list[str] = []
    for value in (patient.language, clinic.language, FALLBACK_LOCALE):
        raw = (value or "").strip()
        if not raw:
            continue
        names = [raw]
        parsed = parse_language(raw, natives=available)
        if parsed is not None:
            names += locale_candidates(parsed)
        for name in names:
            key = name.replace("-", "_").casefold()
            if key in folders:
                return folders[key]
        if raw not in tried:
            tried.append(raw)
    raise TemplateError(f"no template for languages {', '.join(tried)}; have {sorted(available)}")


def _error_site(exc: BaseException, default: str) -> str:
    """``file:line`` of the innermost template frame of ``exc`` (Jinja rewrites tracebacks)."""
    if isinstance(exc, TemplateSyntaxError):
        return f"{exc.filename or default}:{exc.lineno}"
    where = default
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            where = f"{filename}:{tb.tb_lineno}"
        tb = tb.tb_next
    return where


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TemplateSyntaxError):
        return f"syntax error: {exc.message}"
    if isinstance(exc, SecurityError):
        return f"refused by the sandbox: {exc}"
    if isinstance(exc, UndefinedError):
        return f"undefined placeholder: {exc}"
    if isinstance(exc, TemplateNotFound):
        return f"included template not found: {exc.name}"
    if isinstance(exc, JinjaError):
        return f"{type(exc).__name__}: {exc}"
    return f"{type(exc).__name__} while rendering: {exc}"


def _tidy(text: str, *, single_line: bool = False, keep_spaces: bool = False) -> str:
    """Strip line ends and runs of blank lines; collapse spaces unless ``keep_spaces``.

    ``single_line`` joins everything with single spaces (subjects, call scripts).
    """
    if single_line:
        return " ".join(text.split())
    lines = [
        line.rstrip() if keep_spaces else re.sub(r"[ \t]+", " ", line).strip()
        for line in text.splitlines()
    ]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


class Templates:
    """The clinic's templates over the built-in ones; renders and checks them.

    ``settings.folder`` should be absolute (``Settings.path`` resolves it against the settings
    file). ``clinic`` is used by ``check`` for its sample messages; ``render`` takes the clinic
    from the ``MessageContext``.
    """

    def __init__(self, settings: TemplateSettings, clinic: ClinicSettings) -> None:
        folders: list[Path] = []
        if settings.folder is not None:
            folder = Path(settings.folder).expanduser().resolve()
            if not folder.is_dir():
                raise ConfigError(f"templates.folder = '{settings.folder}': folder not found")
            folders.append(folder)
        folders.append(BUILTIN_FOLDER)
        self.folders: tuple[Path, ...] = tuple(folders)
        self.settings = settings
        self.clinic = clinic
        self._env = _Sandbox(
            loader=FileSystemLoader([str(f) for f in self.folders], encoding="utf-8"),
            undefined=StrictUndefined,
            autoescape=_is_html,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=True,
        )
        self._lookups: dict[tuple[str, ...], tuple[float, Any]] = {}

    # --- lookup ---------------------------------------------------------------------------

    def _find(self, name: str) -> Path | None:
        return self._remembered(("find", name), lambda: self._find_now(name))

    def _find_now(self, name: str) -> Path | None:
        for folder in self.folders:
            path = folder / name
            if path.is_file():
                return path
        return None

    def available_locales(self, event: str, part: str) -> frozenset[str]:
        """Locale folders (clinic or built-in) that hold ``<event>.<part>.j2``."""
        return self._remembered(("locales", event, part), lambda: self._locales_now(event, part))

    def _locales_now(self, event: str, part: str) -> frozenset[str]:
        found: set[str] = set()
        for folder in self.folders:
            found.update(p.parent.name for p in folder.glob(f"*/{event}.{part}.j2") if p.is_file())
        return frozenset(found)

    def _remembered(self, key: tuple[str, ...], look: Callable[[], T]) -> T:
        """``look()``, asked of the file system at most every ``LOOKUP_SECONDS`` per key: a
        template added or removed while the bridge runs counts within seconds, without a
        folder listing for every message (Jinja still checks each file's date on use)."""
        now = time.monotonic()
        found = self._lookups.get(key)
        if found is None or now - found[0] > LOOKUP_SECONDS:
            found = (now, look())
            self._lookups[key] = found
        return found[1]

    # --- rendering ------------------------------------------------------------------------

    def _render_file(self, name: str, context: dict[str, Any]) -> tuple[str, Path]:
        path = self._find(name)
        if path is None:
            folders = ", ".join(map(str, self.folders))
            raise TemplateError(f"{name}: template not found in {folders}")
        try:
            return self._env.get_template(name).render(context), path
        except Exception as exc:
            raise TemplateError(f"{_error_site(exc, str(path))}: {_describe(exc)}") from exc

    def render(
        self, event: str, channel: Channel, ctx: MessageContext, *, voicemail: bool = False
    ) -> Rendered:
        """Render ``event`` for ``channel`` (the voicemail script if ``voicemail``) for ``ctx``."""
        channel = Channel(channel)
        if not _EVENT.match(event):
            raise TemplateError(f"event {event!r}: expected lower-case letters, digits and _")
        if voicemail and channel is not Channel.VOICE:
            raise ValueError("voicemail=True is only for the voice channel")
        part = "voicemail" if voicemail else channel.value
        filename = f"{event}.{part}.j2"
        available = self.available_locales(event, part)
        if not available:
            folders = ", ".join(map(str, self.folders))
            raise TemplateError(f"{filename}: no such template in any locale of {folders}")
        try:
            locale = locale_for(ctx.patient, ctx.clinic, available)
        except TemplateError as exc:
            raise TemplateError(f"{filename}: {exc}") from exc
        context = build_context(
            ctx, self.settings.limits, format_locale(locale, ctx.patient, ctx.clinic)
        )
        text, text_path = self._render_file(f"{locale}/{filename}", context)

        if channel is Channel.EMAIL:
            subject, _ = self._render_file(f"{locale}/{event}.email.subject.j2", context)
            subject = _tidy(subject, single_line=True)
            html: str | None = None
            html_name = f"{locale}/{event}.email.html.j2"
            html_path = self._find(html_name)
            if html_path is not None and html_path.parent.parent == text_path.parent.parent:
                html = self._render_file(html_name, context)[0].strip()
            if ctx.testing:
                subject = TEST_SUBJECT_PREFIX + subject
            return Rendered(
                channel, locale, _tidy(text, keep_spaces=True), subject=subject, html=html
            )

        if channel is Channel.VOICE:
            text = _tidy(text, single_line=True)
            return Rendered(channel, locale, TEST_PREFIX + text if ctx.testing else text)

        text = _tidy(text.translate(_GSM_FOLD))
        if ctx.testing:
            text = TEST_PREFIX + text
        segments = count_segments(text)
        return Rendered(
            channel, locale, text, segments=segments, warnings=self._sms_warnings(text, segments)
        )

    def _sms_warnings(self, text: str, segments: SegmentCount) -> tuple[str, ...]:
        warnings: list[str] = []
        if not text:
            warnings.append("SMS is empty")
        if segments.units > self.settings.sms_budget:
            warnings.append(
                f"SMS is {segments.units} characters, over the budget of "
                f"{self.settings.sms_budget} ({segments.segments} segments)"
            )
        if segments.encoding == "UCS-2":
            shown = " ".join(non_gsm7(text)[:5])
            warnings.append(
                f"SMS has characters outside GSM-7 ({shown}): sent as UCS-2, "
                f"{segments.per_segment} characters per segment"
            )
        return tuple(warnings)

    # --- checking -------------------------------------------------------------------------

    def check(self) -> list[str]:
        """Compile every template (clinic and built-in) and render it with a sample message.

        Returns one line per problem, ``file:line: what`` (empty list when all is well): bad file
        or folder names, syntax errors, unknown placeholders, render failures, and email bodies
        without a subject.
        """
        problems: list[str] = []
        for folder in self.folders:
            for path in sorted(folder.rglob("*.j2")):
                problems.extend(self._check_file(folder, path))
        for folder in self.folders:
            for body in sorted(folder.glob("*/*.email.j2")):
                event = body.name.removesuffix(".email.j2")
                if self._find(f"{body.parent.name}/{event}.email.subject.j2") is None:
                    problems.append(f"{body}: no {event}.email.subject.j2 beside it")
        return problems

    def _check_file(self, folder: Path, path: Path) -> list[str]:
        rel = path.relative_to(folder)
        if len(rel.parts) != 2:
            return [f"{path}: expected <locale>/<event>.<part>.j2 directly in {folder}"]
        locale_name, filename = rel.parts
        problems: list[str] = []
        if parse_language(locale_name) is None:
            problems.append(f"{path}: '{locale_name}' is not a locale (expected en, it, pt_BR...)")
        partial = filename.startswith("_")
        if not partial and not _FILE.match(filename):
            problems.append(
                f"{path}: unknown template name (expected <event>.<part>.j2 with part "
                f"one of {', '.join(PARTS)})"
            )
        try:
            source = path.read_text(encoding="utf-8")
            tree = self._env.parse(source, rel.as_posix(), str(path))
            code = self._env.compile(source, rel.as_posix(), str(path))
        except (OSError, UnicodeDecodeError) as exc:
            return [*problems, f"{path}: cannot read: {exc}"]
        except TemplateSyntaxError as exc:
            return [*problems, f"{_error_site(exc, str(path))}: {_describe(exc)}"]
        known = set(CONTEXT_VARIABLES) | set(self._env.globals)
        unknown = sorted(meta.find_undeclared_variables(tree) - known)
        for name in unknown:
            line = next((n.lineno for n in tree.find_all(nodes.Name) if n.name == name), 0)
            problems.append(f"{path}:{line}: unknown placeholder '{name}'")
        if partial or unknown or problems:
            return problems
        template = Template.from_code(self._env, code, self._env.make_globals(None), None)
        ctx = sample_context(self.clinic, locale_name, ZoneInfo(self.clinic.timezone or "UTC"))
        context = build_context(
            ctx, self.settings.limits, format_locale(locale_name, ctx.patient, self.clinic)
        )
        try:
            template.render(context)
        except Exception as exc:
            problems.append(f"{_error_site(exc, str(path))}: {_describe(exc)}")
        return problems

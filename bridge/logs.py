"""Logging set-up. Patient data never reaches a log line, at any level.

The bridge's own code logs keys and counts only. As a second line of defence, a filter masks
anything in a formatted record that looks like an email address or a phone number (a run of 7 or
more digits, with the usual separators), in messages from libraries too.
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
# An ISO date is not a phone number, also inside longer text ("due 2026-03-29 3 jobs",
# "2026-03-29..2026-03-31"): it is matched first and kept, so no phone match starts inside it.
# The price: a number written exactly as 4-2-2 digits is kept too.
_DATE = r"(?<!\d)\d{4}-[01]\d-[0-3]\d(?!\d)"
# A "." or ":" beside a number ends a sentence or labels it ("is 202-555-0123.", "to:2025550123")
# unless a digit follows it: then it is part of an address, a time or a version
# ("127.0.0.1:8470", "09:30:00.123456"), which is not a phone number.
_PHONE = r"(?<![\w-])(?<!\d[.:])\+?\d[\d ().-]{5,}\d(?![\w-])(?![.:]\d)"
_DATE_OR_PHONE = re.compile(rf"(?P<date>{_DATE})|(?P<phone>{_PHONE})")
_DIGITS = re.compile(r"\d")
_TRACEBACKS = logging.Formatter()


def redact(text: str) -> str:
    """Mask email addresses and phone-like numbers; leave dates, times and short keys alone."""
    text = _EMAIL.sub("[email]", text)

    def phone(match: re.Match[str]) -> str:
        value = match.group(0)
        if match.group("date") is not None or len(_DIGITS.findall(value)) < 7:
            return value
        return "[phone]"

    return _DATE_OR_PHONE.sub(phone, text)


class RedactingFilter(logging.Filter):
    """Redacts each record before any handler formats it: the message, the traceback of
    ``logger.exception`` and ``stack_info``.

    The traceback is formatted here, with ``formatter``'s ``formatException`` (the standard one
    if not given), and stored redacted in ``record.exc_text``, which ``logging.Formatter`` uses
    instead of formatting the exception again.
    """

    def __init__(self, formatter: logging.Formatter | None = None) -> None:
        super().__init__()
        self.formatter = formatter or _TRACEBACKS

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def setup_logging(level: str = "INFO", file: Path | None = None) -> None:
    """Configure the root logger: one line per record, redacted; called again, it replaces (and
    closes) the handler it set before and leaves other handlers alone."""
    handler: logging.Handler
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(file, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler.setFormatter(formatter)
    handler.addFilter(RedactingFilter(formatter))
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_bridge", False):
            root.removeHandler(existing)
            existing.close()  # else the old log file stays open (and locked, on Windows)
    setattr(handler, "_bridge", True)  # noqa: B010 - a marker to replace our own handler only
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("alembic", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))

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
_PHONE = re.compile(r"(?<![\w.:-])\+?\d[\d ().-]{5,}\d(?![\w.:-])")
_DIGITS = re.compile(r"\d")


def redact(text: str) -> str:
    """Mask email addresses and phone-like numbers; leave dates, times and short keys alone."""
    text = _EMAIL.sub("[email]", text)

    def phone(match: re.Match[str]) -> str:
        value = match.group(0)
        if len(_DIGITS.findall(value)) < 7 or re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return value
        return "[phone]"

    return _PHONE.sub(phone, text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message with ``redact`` before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def setup_logging(level: str = "INFO", file: Path | None = None) -> None:
    """Configure the root logger once: one line per record, redacted."""
    handler: logging.Handler
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(file, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_bridge", False):
            root.removeHandler(existing)
    setattr(handler, "_bridge", True)  # noqa: B010 - a marker to replace our own handler only
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("alembic", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))

"""Log redaction: emails and phone numbers are masked in every shape, keys, dates, times and
durations are kept, and the filter rewrites real log records (with %-style arguments too)."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.logs import RedactingFilter, redact, setup_logging

DIGIT = re.compile(r"\d")

EMAILS = [
    "test.patient@example.test",
    "Test.Patient+reminders@mail.example.test",
    "front_desk@clinic-1.example.test",
    "a@b.example.test",
]


@pytest.mark.parametrize("email", EMAILS)
def test_email_is_masked(email: str) -> None:
    assert redact(f"email to {email} queued") == "email to [email] queued"


@pytest.mark.parametrize("email", EMAILS)
def test_email_in_brackets_is_masked(email: str) -> None:
    assert redact(f"From: <{email}>") == "From: <[email]>"


PHONES = [
    "+1 202 555 0123",
    "(202) 555-0123",
    "(202)555-0123",
    "202.555.0123",
    "202-555-0123",
    "2025550123",
    "+12025550123",
    "+1-202-555-0123",
    "+1 (202) 555-0123",
    "+390612345678",
    "+39 06 1234 5678",
    "+39 347 123 4567",
    "+44 20 7946 0958",
]


@pytest.mark.parametrize("phone", PHONES)
def test_phone_is_masked(phone: str) -> None:
    cleaned = redact(f"sms to {phone} for appointment 1234")
    assert "[phone]" in cleaned
    assert cleaned.endswith(" for appointment 1234")
    assert not DIGIT.search(cleaned.removesuffix(" for appointment 1234")), cleaned


@pytest.mark.parametrize("phone", ["+12025550123", "202.555.0123", "(202) 555-0123"])
@pytest.mark.parametrize("wrap", ["'{}'", '"{}"', "[{}]", "to={}", "{},", "({})"])
def test_phone_inside_punctuation_is_masked(phone: str, wrap: str) -> None:
    cleaned = redact(wrap.format(phone))
    assert "[phone]" in cleaned
    assert not DIGIT.search(cleaned), cleaned


def test_several_contacts_in_one_line() -> None:
    line = "to +1 202 555 0123, 202.555.0199 and test.patient@example.test"
    assert redact(line) == "to [phone], [phone] and [email]"


LEAKS = [
    pytest.param("Patient phone is 202-555-0123.", id="end of sentence"),
    pytest.param("to:2025550123", id="after a colon"),
    pytest.param("phone 202 555 0123: invalid", id="before a colon"),
]


@pytest.mark.parametrize("line", LEAKS)
def test_phone_next_to_dot_or_colon_is_masked(line: str) -> None:
    cleaned = redact(line)
    assert "[phone]" in cleaned
    assert not DIGIT.search(cleaned), cleaned


KEPT = [
    "2026-03-29",
    "due 2026-03-29T09:30:00Z",
    "due 2026-03-29T09:30:00+02:00",
    "at 2026-03-29 09:30:00",
    "at 09:30",
    "at 09:30:00.123456",
    "appointment 1234",
    "appointment 1234 on 2026-03-29",
    "appointment 1234 at 09:30:00",
    "job 17 claimed",
    "job 987654 sent",
    "job-id 4f3a2b1c",
    "took 0.25s",
    "took 12.5s",
    "sent 3 of 10",
    "cycle 2026-03-29T09:30:00Z 1234 rows",
    "2026-03-29, 12 jobs",
    "from 2026-03-29 to 2026-03-30",
    "outbox-0123456789abcdef",
    "uuid 123e4567-e89b-12d3-a456-426614174000",
    "listening on 127.0.0.1:8470",
    "version 1.2.3",
    "15 min",
    "12:00-13:00",
    pytest.param(
        "due 2026-03-29 3 jobs",
        id="date before a count",
    ),
    pytest.param(
        "window 2026-03-29..2026-03-31",
        id="date range",
    ),
]


@pytest.mark.parametrize("line", KEPT)
def test_non_personal_data_is_kept(line: str) -> None:
    assert redact(line) == line


# --- the filter on real records ---------------------------------------------------------------


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger whose only handler has the redacting filter and writes to a buffer."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("bridge.tests.redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, buffer
    finally:
        logger.removeHandler(handler)
        handler.close()
        logger.propagate = True


RECORDS = [
    # id, format, args, expected output line
    ("literal phone", "sms to +12025550123 failed", (), "sms to [phone] failed"),
    (
        "%s phone",
        "sms to %s for appointment %d",
        ("+1 202 555 0123", 1234),
        "sms to [phone] for appointment 1234",
    ),
    ("%s email", "email to %s", ("test.patient@example.test",), "email to [email]"),
    ("mapping args", "email to %(to)s", ({"to": "test.patient@example.test"},), "email to [email]"),
    (
        "clean args kept",
        "appointment %d due %s",
        (1234, "2026-03-29T09:30:00Z"),
        "appointment 1234 due 2026-03-29T09:30:00Z",
    ),
    ("debug level too", "from %s", ("(202) 555-0123",), None),
]


@pytest.mark.parametrize(
    ("fmt", "args", "expected"),
    [row[1:] for row in RECORDS],
    ids=[row[0] for row in RECORDS],
)
def test_filter_rewrites_output(
    captured: tuple[logging.Logger, io.StringIO],
    fmt: str,
    args: tuple[Any, ...],
    expected: str | None,
) -> None:
    logger, buffer = captured
    logger.debug(fmt, *args)
    line = buffer.getvalue().rstrip("\n")
    if expected is None:
        assert line.startswith("DEBUG from ")
        assert "[phone]" in line
        assert not DIGIT.search(line), line
    else:
        assert line == f"DEBUG {expected}"


def _record(msg: str, args: Any) -> logging.LogRecord:
    return logging.LogRecord("bridge.test", logging.INFO, __file__, 1, msg, args, None)


def test_filter_replaces_message_and_drops_args() -> None:
    record = _record("sms to %s for job %d", ("+12025550123", 17))
    assert RedactingFilter().filter(record) is True
    assert (record.msg, record.args) == ("sms to [phone] for job 17", None)
    assert record.getMessage() == "sms to [phone] for job 17"


def test_filter_leaves_clean_records_alone() -> None:
    record = _record("job %d sent in %ss", (17, "0.25"))
    assert RedactingFilter().filter(record) is True
    assert (record.msg, record.args) == ("job %d sent in %ss", (17, "0.25"))


def test_traceback_text_is_redacted(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, buffer = captured
    number, email = "+12025550123", "test.patient@example.test"
    try:
        raise ValueError(f"invalid number {number} for {email}")  # source line shows no PHI
    except ValueError:
        logger.exception("send failed for job %d", 17)
    output = buffer.getvalue()
    assert "send failed for job 17" in output
    assert "ValueError" in output
    assert "+12025550123" not in output
    assert "test.patient@example.test" not in output


# --- setup_logging ----------------------------------------------------------------------------


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """Restore the root logger (level, our handlers, noisy loggers) after a test."""
    root = logging.getLogger()
    level = root.level
    noisy = {name: logging.getLogger(name).level for name in ("alembic", "uvicorn.access")}
    try:
        yield root
    finally:
        for handler in list(root.handlers):
            if getattr(handler, "_bridge", False):
                root.removeHandler(handler)
                handler.close()
        root.setLevel(level)
        for name, old in noisy.items():
            logging.getLogger(name).setLevel(old)


def _bridge_handlers(root: logging.Logger) -> list[logging.Handler]:
    return [h for h in root.handlers if getattr(h, "_bridge", False)]


def test_setup_logging_to_a_file_redacts(tmp_path: Path, root_logger: logging.Logger) -> None:
    log_file = tmp_path / "logs" / "bridge.log"
    setup_logging("INFO", log_file)
    logging.getLogger("bridge.tests.file").info("sms to %s for job %d", "+12025550123", 17)
    logging.getLogger("bridge.tests.file").debug("not at INFO %s", "job 18")
    for handler in _bridge_handlers(root_logger):
        handler.flush()
    text = log_file.read_text(encoding="utf-8")
    assert text.rstrip("\n").endswith("INFO bridge.tests.file: sms to [phone] for job 17")
    assert "+12025550123" not in text
    assert "job 18" not in text
    assert logging.getLogger("alembic").level == logging.WARNING


def test_setup_logging_twice_keeps_one_bridge_handler(
    tmp_path: Path, root_logger: logging.Logger
) -> None:
    foreign = logging.NullHandler()
    root_logger.addHandler(foreign)
    try:
        setup_logging("INFO")
        setup_logging("DEBUG")
        assert len(_bridge_handlers(root_logger)) == 1
        assert foreign in root_logger.handlers
        assert root_logger.level == logging.DEBUG
    finally:
        root_logger.removeHandler(foreign)


def test_setup_logging_again_closes_the_previous_file(
    tmp_path: Path, root_logger: logging.Logger
) -> None:
    setup_logging("INFO", tmp_path / "first.log")
    first = _bridge_handlers(root_logger)[0]
    assert isinstance(first, logging.FileHandler)
    try:
        setup_logging("INFO", tmp_path / "second.log")
        assert first not in root_logger.handlers
        assert first.stream is None or first.stream.closed
    finally:
        first.close()

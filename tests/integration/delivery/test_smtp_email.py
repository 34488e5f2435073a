"""``smtp-email`` against a real SMTP server on loopback (aiosmtpd): STARTTLS and implicit TLS
with a certificate from a test CA, login, text and HTML parts, List-Unsubscribe, and the
server's refusals mapped to the error tree."""

from __future__ import annotations

import email
import socket
import ssl
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from bridge.errors import ConfigError, PermanentDeliveryError, TransientDeliveryError
from bridge.model import Channel
from bridge.plugin import OutboundMessage, PluginContext
from tests.integration.delivery.conftest import plugin

USER, PASSWORD = "bridge", "synthetic-password"
MAIL = OutboundMessage(
    idempotency_key="reminder|101|2026-03-28|days_ahead|email",
    channel=Channel.EMAIL,
    to="patient101@example.test",
    text="Dear Alice,\nyour appointment is on Saturday 28 March at 09:00.\n",
    subject="[TEST] Your appointment on Saturday 28 March",
    html="<p>Dear Alice,</p><p>your appointment is on <b>Saturday 28 March</b>.</p>",
    sender="Synthetic Clinic",
    token="0123456789abcdef01234567",
)


class Inbox:
    """An aiosmtpd handler keeping what it accepted; some recipients are refused."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 No such user"
        if address.startswith("busy@"):
            return "451 4.3.0 Mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 Message accepted"


def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture(params=["starttls", "tls"])
def smtp(request: pytest.FixtureRequest, ca: trustme.CA) -> Iterator[tuple[str, int, Inbox]]:
    inbox = Inbox()
    tls = server_context(ca)
    port = free_port()
    if request.param == "starttls":
        controller = Controller(
            inbox,
            hostname="127.0.0.1",
            port=port,
            tls_context=tls,
            require_starttls=True,
            authenticator=authenticate,
            auth_require_tls=True,
        )
    else:
        controller = Controller(
            inbox,
            hostname="127.0.0.1",
            port=port,
            ssl_context=tls,
            authenticator=authenticate,
            auth_require_tls=False,
        )
    controller.start()
    try:
        yield request.param, port, inbox
    finally:
        controller.stop()


def options(security: str, port: int, ca_file: Path, **extra: Any) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": port,
        "security": security,
        "username": USER,
        "password": PASSWORD,
        "from_address": "reminders@clinic.example.test",
        "ca_file": str(ca_file),
        "timeout_seconds": 5,
        "webhook_base": "https://bridge.example.test",
        "unsubscribe_mailto": "unsubscribe@clinic.example.test",
        **extra,
    }


def test_text_html_and_unsubscribe(
    smtp: tuple[str, int, Inbox], ca_file: Path, context: PluginContext
) -> None:
    security, port, inbox = smtp
    mailer = plugin("smtp-email", options(security, port, ca_file), context)
    result = mailer.send(MAIL)
    [got] = inbox.messages
    assert got["To"] == MAIL.to
    assert got["Subject"] == MAIL.subject
    assert got["From"] == "Synthetic Clinic <reminders@clinic.example.test>"
    assert got["Message-ID"] == f"<{MAIL.token}@clinic.example.test>" == result.provider_ref
    assert got["List-Unsubscribe"] == (
        f"<https://bridge.example.test/webhooks/email/unsubscribe/{MAIL.token}>, "
        "<mailto:unsubscribe@clinic.example.test?subject=unsubscribe>"
    )
    assert got["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert got.get_content_type() == "multipart/alternative"
    text, html = got.get_payload()
    assert text.get_content_type() == "text/plain" and "Saturday 28 March" in text.get_payload()
    assert (
        html.get_content_type() == "text/html" and "<b>Saturday 28 March</b>" in html.get_payload()
    )


@pytest.mark.parametrize(
    ("to", "raised", "code"),
    [
        ("nobody@example.test", PermanentDeliveryError, "550"),
        ("busy@example.test", TransientDeliveryError, "451"),
    ],
)
def test_refused_recipients(
    smtp: tuple[str, int, Inbox],
    ca_file: Path,
    context: PluginContext,
    to: str,
    raised: type[Exception],
    code: str,
) -> None:
    security, port, inbox = smtp
    mailer = plugin("smtp-email", options(security, port, ca_file), context)
    with pytest.raises(raised) as caught:
        mailer.send(OutboundMessage("k", Channel.EMAIL, to, "text", subject="s"))
    assert getattr(caught.value, "code", None) == code
    assert inbox.messages == []


def test_a_wrong_password_holds_the_channel(
    smtp: tuple[str, int, Inbox], ca_file: Path, context: PluginContext
) -> None:
    security, port, _ = smtp
    mailer = plugin("smtp-email", options(security, port, ca_file, password="wrong"), context)
    with pytest.raises(TransientDeliveryError, match="login refused") as caught:
        mailer.send(MAIL)
    assert caught.value.retry_after == 300


def test_an_untrusted_certificate_is_refused(
    smtp: tuple[str, int, Inbox], context: PluginContext
) -> None:
    security, port, inbox = smtp
    opts = options(security, port, Path("unused"))
    del opts["ca_file"]  # the system's CAs do not know the test CA
    with pytest.raises(TransientDeliveryError, match="TLS"):
        plugin("smtp-email", opts, context).send(MAIL)
    assert inbox.messages == []


def test_no_server_is_transient(ca_file: Path, context: PluginContext) -> None:
    with pytest.raises(TransientDeliveryError, match="cannot reach"):
        plugin("smtp-email", options("starttls", 9, ca_file), context).send(MAIL)


def test_plain_smtp_only_on_this_machine(ca_file: Path, context: PluginContext) -> None:
    with pytest.raises(ConfigError, match="security 'none'"):
        plugin("smtp-email", {**options("none", 25, ca_file), "host": "mail.example.test"}, context)


def test_smtp_keeps_no_log_to_ask(ca_file: Path, context: PluginContext) -> None:
    mailer = plugin("smtp-email", options("starttls", 25, ca_file), context)
    with pytest.raises(NotImplementedError):
        mailer.lookup("k")

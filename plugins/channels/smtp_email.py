"""``smtp-email``: email through the clinic's mail server (STARTTLS, implicit TLS, or plain on
loopback only), a plain-text part and an HTML part, and a List-Unsubscribe header.

``List-Unsubscribe`` carries a one-click HTTPS link (RFC 8058, with ``List-Unsubscribe-Post``)
to ``/webhooks/email/unsubscribe/<token>`` when ``webhook_base`` is set, and a ``mailto:`` when
``unsubscribe_mailto`` is: mail clients show an "unsubscribe" button that opts the address out
of email at once. The ``Message-ID`` is built from the attempt's opaque token.

Errors: a server that cannot be reached or refuses the login (the channel is held 5 minutes, so
a wrong password does not fail the day's emails), a 4xx answer: try again later; a 5xx answer
to the recipient or the content: permanent; a connection lost or timed out after the message
was handed over: unknown (SMTP keeps no log to ask, so ``delivery.unknown_policy`` settles it).
"""

from __future__ import annotations

import smtplib
import ssl
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from bridge.errors import (
    DeliveryError,
    DeliveryOutcomeUnknown,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from bridge.model import Channel
from bridge.plugin import ChannelPlugin, OutboundMessage, PluginConfig, SendResult
from bridge.settings_values import Email

SMTP_POLICY = policy.SMTP.clone(max_line_length=998)
LOGIN_HOLD = 300.0
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


class SmtpEmailConfig(PluginConfig):
    host: str = Field(min_length=1)
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    from_address: Email = Field(...)
    from_name: str | None = None
    reply_to: Email = None
    ca_file: Path | None = None
    timeout_seconds: float = Field(20.0, gt=0, le=300)
    webhook_base: str | None = None
    unsubscribe_mailto: Email = None

    @model_validator(mode="after")
    def _plain_only_on_loopback(self) -> SmtpEmailConfig:
        if self.security == "none" and self.host not in LOOPBACK:
            raise ValueError("security 'none' is allowed only for a server on this machine")
        return self


class SmtpEmail(ChannelPlugin[SmtpEmailConfig]):
    """Email through an SMTP server."""

    name = "smtp-email"
    Config = SmtpEmailConfig
    channels = frozenset({Channel.EMAIL})

    def send(self, message: OutboundMessage) -> SendResult:
        mail = self.compose(message)
        smtp = self._connect()
        try:
            try:
                smtp.send_message(mail)
            except smtplib.SMTPRecipientsRefused as exc:
                code, reply = next(iter(exc.recipients.values()))
                raise _by_code(code, f"recipient refused: {_text(reply)}") from exc
            except smtplib.SMTPResponseException as exc:
                raise _by_code(exc.smtp_code, _text(exc.smtp_error)) from exc
            except (smtplib.SMTPServerDisconnected, OSError) as exc:
                raise DeliveryOutcomeUnknown(
                    f"smtp: connection lost while handing the message over ({exc})"
                ) from exc
        finally:
            _quit(smtp)
        return SendResult(provider_ref=str(mail["Message-ID"]), status="accepted")

    def compose(self, message: OutboundMessage) -> EmailMessage:
        """The MIME message: text, then HTML as the alternative, with the unsubscribe headers."""
        config = self.config
        # RFC 5322 allows 998-character lines; the default 78 would fold the long one-click URL
        # of List-Unsubscribe into an encoded word that mail clients do not parse.
        mail = EmailMessage(policy=SMTP_POLICY)
        sender = str(config.from_address)
        mail["From"] = str(
            Address(display_name=config.from_name or message.sender or "", addr_spec=sender)
        )
        mail["To"] = message.to
        mail["Subject"] = message.subject or ""
        mail["Date"] = formatdate(self.context.clock.now().timestamp(), usegmt=True)
        domain = sender.rsplit("@", 1)[-1]
        token = message.token or message.idempotency_key.replace("|", ".")
        mail["Message-ID"] = f"<{token}@{domain}>"
        if config.reply_to:
            mail["Reply-To"] = str(config.reply_to)
        unsubscribe = []
        if config.webhook_base and message.token:
            unsubscribe.append(
                f"<{config.webhook_base.rstrip('/')}/webhooks/email/unsubscribe/{message.token}>"
            )
        if config.unsubscribe_mailto:
            unsubscribe.append(f"<mailto:{config.unsubscribe_mailto}?subject=unsubscribe>")
        if unsubscribe:
            mail["List-Unsubscribe"] = ", ".join(unsubscribe)
            if config.webhook_base and message.token:
                mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        mail.set_content(message.text)
        if message.html:
            mail.add_alternative(message.html, subtype="html")
        return mail

    def _connect(self) -> smtplib.SMTP:
        config = self.config
        context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
        smtp: smtplib.SMTP | None = None
        try:
            if config.security == "tls":
                smtp = smtplib.SMTP_SSL(
                    config.host, config.port, timeout=config.timeout_seconds, context=context
                )
            else:
                smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout_seconds)
                if config.security == "starttls":
                    smtp.starttls(context=context)
            if config.username:
                password = config.password.get_secret_value() if config.password else ""
                smtp.login(config.username, password)
            return smtp
        except smtplib.SMTPAuthenticationError as exc:
            _quit(smtp)
            raise TransientDeliveryError(
                f"smtp: login refused ({exc.smtp_code})", retry_after=LOGIN_HOLD
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            _quit(smtp)
            raise TransientDeliveryError(
                f"smtp: {config.host} does not offer STARTTLS", retry_after=LOGIN_HOLD
            ) from exc
        except ssl.SSLError as exc:
            _quit(smtp)
            raise TransientDeliveryError(
                f"smtp: TLS with {config.host} failed ({exc.reason})", retry_after=LOGIN_HOLD
            ) from exc
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            _quit(smtp)
            raise TransientDeliveryError(
                f"smtp: cannot reach {config.host}:{config.port} ({exc})"
            ) from exc


def _by_code(code: int, text: str) -> DeliveryError:
    error: DeliveryError
    if 400 <= code < 500:
        error = TransientDeliveryError(f"smtp {code}: {text}")
    else:
        error = PermanentDeliveryError(f"smtp {code}: {text}")
    error.code = str(code)
    return error


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _quit(smtp: smtplib.SMTP | None) -> None:
    if smtp is None:
        return
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()

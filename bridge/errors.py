"""The bridge's one exception tree, split by what the caller does next.

    BridgeError
    ├── ConfigError                 fatal: fix settings.yaml and restart
    │   └── MappingError            fatal: fix the mapping file (names file and dotted path)
    ├── SourceError                 the host could not be read
    │   ├── HostUnavailable         retriable: the host is down or refused us; next cycle retries
    │   └── BadHostRow              skippable: one row cannot be mapped; kept for inspection
    ├── StoreError                  the bridge's own database failed; retriable
    ├── TemplateError               a template does not render; fix the template
    ├── WriteBackRefused            a write-back must not be applied (protected status, a row
    │                               changed by staff): record it for staff, never retry
    ├── DeliveryError               a channel could not deliver
    │   ├── TransientDeliveryError  retry later (refused connection, 503, 429 with retry_after)
    │   ├── PermanentDeliveryError  fail now (bad number, rejected content)
    │   │   └── RecipientOptedOut   the provider says the recipient opted out (STOP at the
    │   │                           carrier): recorded as an opt-out, nothing more is sent
    │   └── DeliveryOutcomeUnknown  the provider may have it (a time-out after the request
    │                               went out): never retried blindly; the job becomes unknown
    ├── Skipped                     not an error: no consent, opted out; record and move on
    └── InvitationRefused           staff asked for something that cannot be sent (no email,
                                    no consent, an unknown patient): the message says why

Driver exceptions (pymysql, psycopg, smtplib, HTTP clients) are converted at the one place that
calls the driver, with ``raise ... from exc``, so the rest of the bridge only sees this tree.
"""

from __future__ import annotations


class BridgeError(Exception):
    """Base of every error the bridge raises on purpose."""


class ConfigError(BridgeError):
    """Settings are missing or invalid: one line naming file, key, value and expectation."""


class MappingError(ConfigError):
    """A mapping file is invalid; the message cites the file and the dotted path inside it."""


class SourceError(BridgeError):
    """The host system could not be read."""


class HostUnavailable(SourceError):
    """The host database or feed is unreachable; the next cycle tries again."""


class BadHostRow(SourceError):
    """One host row cannot be turned into an appointment or patient.

    ``ref`` names the row (table and key) without patient data, ``reason`` says what is wrong.
    """

    def __init__(self, ref: str, reason: str) -> None:
        super().__init__(f"{ref}: {reason}")
        self.ref = ref
        self.reason = reason


class StoreError(BridgeError):
    """The bridge's own store failed (disk full, database down)."""


class TemplateError(BridgeError):
    """A message template is missing, does not compile or does not render."""


class WriteBackRefused(BridgeError):
    """The host must not take this change (protected status, changed by staff in between)."""


class DeliveryError(BridgeError):
    """A channel could not deliver a message. ``code`` is the provider's error code, if any."""

    code: str | None = None


class TransientDeliveryError(DeliveryError):
    """Delivery may succeed later; ``retry_after`` (seconds) is the provider's hint, if any."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    """Delivery will never succeed as is (invalid number, content rejected)."""


class Skipped(BridgeError):
    """Nothing is sent, on purpose (no consent, opted out, no contact); ``reason`` is recorded."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvitationRefused(BridgeError):
    """An invitation or a personal link cannot be sent; the message says why and what to do."""


class RecipientOptedOut(PermanentDeliveryError):
    """The provider refuses the address because it opted out there (Twilio 21610)."""


class DeliveryOutcomeUnknown(DeliveryError):
    """The request may have reached the provider (a read time-out, a gateway error after the
    body was sent): retrying could send twice, so the job becomes ``unknown`` and is settled by
    asking the provider once it had time to record the message."""

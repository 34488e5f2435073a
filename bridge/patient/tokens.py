"""Signed, single-purpose link tokens that carry nothing about the patient.

A token is ``<id>.<mac>``: ``id`` is 15 bytes (120 bits) that look random, ``mac`` the first 12
bytes of HMAC-SHA256 over the purpose and the id, both base64url. The id says nothing: what the
link is for lives in the store under a keyed hash of the id (``lookup``), so neither the URL nor a
copy of the store gives anything away. A token made for one purpose (``appointment``: confirm,
cancel, call back) fails verification under any other (``booking``: a personal booking link).

Ids are derived from the message's identity (the job's dedupe key) with a key, so a job that is
retried renders the very same link (an SMS provider's idempotency and the exactly-once dispatch
see the same text), while nobody without the key can compute one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

ID_BYTES = 15
MAC_BYTES = 12
_SHAPE = re.compile(r"^[A-Za-z0-9_-]{20}\.[A-Za-z0-9_-]{16}$")

APPOINTMENT = "appointment"
BOOKING = "booking"  # a personal booking link (recall, invitation, treatment, on request)
PURPOSES = frozenset({APPOINTMENT, BOOKING})


class Tokens:
    """Makes and checks tokens with keys derived from the link key."""

    def __init__(self, id_key: bytes, mac_key: bytes, lookup_key: bytes) -> None:
        self._id_key = id_key
        self._mac_key = mac_key
        self._lookup_key = lookup_key

    def make(self, purpose: str, identity: str) -> tuple[str, str]:
        """The token for ``identity`` (stable: same identity, same token) and its lookup key."""
        _check_purpose(purpose)
        raw = hmac.new(self._id_key, f"{purpose}|{identity}".encode(), hashlib.sha256).digest()
        token_id = raw[:ID_BYTES]
        return f"{_b64(token_id)}.{_b64(self._mac(purpose, token_id))}", self._lookup(token_id)

    def check(self, purpose: str, token: str) -> str | None:
        """The lookup key of a genuine token for ``purpose``; None for anything else (bad shape,
        tampered, another purpose), without saying which."""
        _check_purpose(purpose)
        if not _SHAPE.match(token):
            return None
        encoded_id, encoded_mac = token.split(".")
        token_id, mac = _unb64(encoded_id), _unb64(encoded_mac)
        if not hmac.compare_digest(mac, self._mac(purpose, token_id)):
            return None
        return self._lookup(token_id)

    def _mac(self, purpose: str, token_id: bytes) -> bytes:
        return hmac.new(self._mac_key, purpose.encode() + b"|" + token_id, hashlib.sha256).digest()[
            :MAC_BYTES
        ]

    def _lookup(self, token_id: bytes) -> str:
        return hashlib.blake2b(token_id, key=self._lookup_key[:64], digest_size=16).hexdigest()


def _check_purpose(purpose: str) -> None:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

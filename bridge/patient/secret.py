"""The key that signs patient links: ``web.secret_key``, else one generated and kept in the store.

A generated key is written to the store's ``state`` table on first start (the first writer wins
when several processes start together), so links keep working across restarts. Whoever can read
the store can then forge links: set ``web.secret_key`` in the environment where the store is
shared or backed up elsewhere. Changing the key invalidates every link already sent.

Separate keys for separate uses are derived from it (HMAC with a label), so a token signature
can never be replayed as a CSRF token or the other way round.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from bridge.runtime import Runtime
from bridge.store.engine import insert_ignore
from bridge.store.schema import state
from bridge.store.state import get_state

STATE_NAME = "patient.secret_key"


def master_key(runtime: Runtime) -> bytes:
    """The configured key, else the stored one, else a new one stored now."""
    configured = runtime.settings.web.secret_key
    if configured is not None and configured.get_secret_value().strip():
        return configured.get_secret_value().strip().encode("utf-8")
    with runtime.store.begin("read the link key") as connection:
        stored = get_state(connection, STATE_NAME)
        if stored is None:
            insert_ignore(
                connection,
                state,
                {
                    "name": STATE_NAME,
                    "value": secrets.token_urlsafe(32),
                    "updated_at": runtime.clock.now(),
                },
                keys=("name",),
            )
            stored = get_state(connection, STATE_NAME)
    assert stored is not None
    return stored.encode("utf-8")


def derive(master: bytes, label: str) -> bytes:
    """A key for one use (``"token"``, ``"csrf"``, ``"lookup"``...)."""
    return hmac.new(master, f"reminder-bridge/{label}".encode(), hashlib.sha256).digest()

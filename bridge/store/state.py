"""Small named values the bridge keeps between cycles (watermarks, plan signature)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select

from bridge.store.engine import upsert
from bridge.store.schema import state


def get_state(connection: Connection, name: str) -> str | None:
    """The stored value of ``name``, or None."""
    return connection.execute(select(state.c.value).where(state.c.name == name)).scalar()


def set_state(connection: Connection, name: str, value: str, now: datetime) -> None:
    """Store ``value`` under ``name`` (insert or replace)."""
    upsert(
        connection,
        state,
        [{"name": name, "value": value, "updated_at": now}],
        keys=("name",),
        update=("value", "updated_at"),
    )

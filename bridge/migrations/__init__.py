"""Alembic migrations of the store; applied at every start by ``bridge.store.engine.migrate``."""

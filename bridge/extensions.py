"""Extension points besides the three plugin kinds, found through entry points as well.

- ``bridge.commands``: ``register(subparsers)`` adds a ``bridge`` subcommand whose parser sets
  ``handler=fn`` with ``fn(settings, args) -> int`` (exit status).
- ``bridge.web``: ``routes(runtime) -> list[BaseRoute]`` mounted in the web app.
- ``bridge.workers``: ``run(runtime, stopping: threading.Event) -> None``, run in its own thread
  by ``bridge run`` until ``stopping`` is set (the write-back worker is one).
- ``bridge.links``: ``make(runtime) -> LinkMaker`` giving the confirm/cancel link templates use.
- ``bridge.events``: a ``bridge.events.MessageEvent`` subclass per kind of message (reminder,
  booking confirmation, recall, invitation...): how the dispatcher checks and renders its jobs.

Built-in features register exactly like outside ones (``pyproject.toml``), so a feature is
added without editing the command line, the web app or the service loop.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from bridge.errors import ConfigError

COMMANDS = "bridge.commands"
WEB = "bridge.web"
WORKERS = "bridge.workers"
LINKS = "bridge.links"


def load(group: str) -> list[tuple[str, Callable[..., Any]]]:
    """Every callable registered in ``group``, by entry point name."""
    found = []
    for entry in sorted(entry_points(group=group), key=lambda e: e.name):
        try:
            target = entry.load()
        except ModuleNotFoundError as exc:
            raise ConfigError(
                f"extension {entry.name!r} ({group}) needs {exc.name}, which is not installed"
            ) from exc
        found.append((entry.name, target))
    return found

"""Public booking forms posted already: a double tap answered with the first post's result."""

from __future__ import annotations

import threading
from collections import OrderedDict


class Repeat:
    """One public booking form's post: what became of it, for the same form posted again."""

    def __init__(self) -> None:
        self._finished = threading.Event()
        self._booking_id: int | None = None

    def booked(self, booking_id: int) -> None:
        self._booking_id = booking_id

    def finish(self) -> None:
        self._finished.set()

    def result(self, timeout: float) -> int | None:
        """The booking the first post made (waiting for it to finish), or None."""
        self._finished.wait(timeout)
        return self._booking_id


class Repeats:
    """Public booking forms posted already, by the random ``once`` field of each form.

    A double tap sends the same form twice at once: the second post would find the slot just
    taken by the first and say so to a patient who did book. It waits for the first instead and
    answers with its result. Kept in memory per process like the rate limits (the form is posted
    again within seconds, to the same process behind a sticky balancer), the oldest forgotten
    first. A personal link needs none of this: its pass is claimed once."""

    LIMIT = 10_000

    def __init__(self) -> None:
        self._seen: OrderedDict[str, Repeat] = OrderedDict()
        self._lock = threading.Lock()

    def first(self, once: str) -> tuple[bool, Repeat]:
        """(True, a new record) the first time ``once`` is posted; (False, the first post's)
        after. An empty ``once`` (a personal link's form) is always a first post."""
        if not once:
            return True, Repeat()
        with self._lock:
            found = self._seen.get(once)
            if found is not None:
                return False, found
            found = self._seen[once] = Repeat()
            while len(self._seen) > self.LIMIT:
                self._seen.popitem(last=False)
            return True, found

"""Fair turns at training: the process-wide FIFO of training slots.

At most ``GRADLAB_MAX_WORKERS`` sessions of a server process train at once (default
:func:`app.env.default_slots`: the cores this process may use, shared among the hosted
worker processes); the others wait in line and start by themselves. A Trainer talks to its
queue only through :class:`TurnQueue`, so another scheduler can take the queue's place.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Protocol

from app.env import default_slots, env_int


class TurnQueue(Protocol):
    """What a Trainer needs from its scheduler: a place in line, a turn, and its release."""

    def acquire(self, owner: object, cancelled: Callable[[], bool],
                poll_s: float = 0.1) -> bool:
        """Block until ``owner`` holds a turn (True), or ``cancelled()`` holds (False)."""
        ...

    def enqueue(self, owner: object, *, fresh: bool = False) -> None:
        """Take a place in line now; ``fresh``: a first turn since Play."""
        ...

    def leave_line(self, owner: object) -> None:
        """Give up a place in line (a turn already held is kept)."""
        ...

    def release(self, owner: object) -> None:
        """End the owner's turn and leave the line."""
        ...

    def position(self, owner: object) -> int | None:
        """1-based place in line, or None if not waiting."""
        ...

    def holds(self, owner: object) -> bool:
        """True while ``owner`` holds a turn."""
        ...

    def someone_waiting(self) -> bool:
        """True when another owner waits (a holder then yields at the end of its slice)."""
        ...


class SlotQueue:
    """At most ``cap`` owners train at once; the others wait in line.

    FIFO in two classes: owners that just pressed Play (``enqueue(..., fresh=True)``) stand
    before owners queueing again after a turn, so every student sees a first chart early
    (deploy/README.md, "Fair turns"). All state sits behind one condition variable."""

    def __init__(self, cap: int | None = None) -> None:
        self._cv = threading.Condition()
        self._cap = cap if cap is not None else env_int("GRADLAB_MAX_WORKERS", default_slots())
        self._active: set[int] = set()
        self._waiting: deque[int] = deque()
        self._fresh: set[int] = set()          # waiting for their first turn since Play

    @property
    def cap(self) -> int:
        return self._cap

    @cap.setter
    def cap(self, value: int) -> None:
        with self._cv:
            self._cap = max(1, int(value))
            self._cv.notify_all()

    def acquire(self, owner: object, cancelled: Callable[[], bool], poll_s: float = 0.1) -> bool:
        """Wait for a slot. True once held; False if ``cancelled()`` became true first."""
        oid = id(owner)
        with self._cv:
            if oid in self._active:
                return True
            if oid not in self._waiting:
                self._waiting.append(oid)
            while True:
                if oid not in self._waiting:       # released from another thread
                    return oid in self._active
                if self._head_locked() == oid and len(self._active) < self._cap:
                    self._waiting.remove(oid)
                    self._fresh.discard(oid)
                    self._active.add(oid)
                    self._cv.notify_all()
                    return True
                if cancelled():
                    self._waiting.remove(oid)
                    self._fresh.discard(oid)
                    self._cv.notify_all()
                    return False
                self._cv.wait(poll_s)

    def _order_locked(self) -> list[int]:
        """The line as it will be served: first turns, then returning holders, FIFO each."""
        return ([o for o in self._waiting if o in self._fresh]
                + [o for o in self._waiting if o not in self._fresh])

    def _head_locked(self) -> int | None:
        order = self._order_locked()
        return order[0] if order else None

    def enqueue(self, owner: object, *, fresh: bool = False) -> None:
        """Take a place in line now (when Play is pressed), so the order is the order of
        the presses, not of the worker threads waking up. ``fresh``: a first turn since
        Play (stands before those who queue again after a turn)."""
        oid = id(owner)
        with self._cv:
            if oid not in self._active and oid not in self._waiting:
                self._waiting.append(oid)
                if fresh:
                    self._fresh.add(oid)
                self._cv.notify_all()

    def leave_line(self, owner: object) -> None:
        """Give up a place in line (a slot already held is kept)."""
        oid = id(owner)
        with self._cv:
            if oid in self._waiting:
                self._waiting.remove(oid)
                self._fresh.discard(oid)
                self._cv.notify_all()

    def release(self, owner: object) -> None:
        """Free the owner's slot (if held) and its place in line (if any)."""
        oid = id(owner)
        with self._cv:
            self._active.discard(oid)
            if oid in self._waiting:
                self._waiting.remove(oid)
            self._fresh.discard(oid)
            self._cv.notify_all()

    def position(self, owner: object) -> int | None:
        """1-based place in the waiting line, or None if not waiting."""
        with self._cv:
            oid = id(owner)
            if oid not in self._waiting:
                return None
            return self._order_locked().index(oid) + 1

    def holds(self, owner: object) -> bool:
        with self._cv:
            return id(owner) in self._active

    def someone_waiting(self) -> bool:
        with self._cv:
            return bool(self._waiting)

    def stats(self) -> dict[str, int]:
        with self._cv:
            return {"cap": self._cap, "active": len(self._active), "waiting": len(self._waiting)}


#: The one queue shared by every session of this server process.
SLOTS = SlotQueue()

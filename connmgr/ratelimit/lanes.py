"""Priority lanes: who among the callers waiting for a slot goes next.

Each waiting caller is in a lane: ``"interactive"`` (lane 0, the default),
``"background"`` (lane 1), or a small integer (0-9, lower goes first). The
rule, in full:

1. the waiter in the lowest lane goes next, and within a lane the one that
   came first (FIFO within a lane);
2. **no starvation**: a waiter is *overtaken* each time a slot goes to a
   waiter that arrived after it. The oldest waiter, once overtaken
   ``max_overtaken`` times (default 4), goes next whatever its lane.

So while interactive requests keep coming, a queued background request
still gets at least one slot in every ``max_overtaken + 1``; and an
interactive request that arrives behind fifty queued background requests
waits about one emission interval, not fifty.
"""

from __future__ import annotations

import threading
from typing import Final, Literal, TypeAlias

__all__ = ["BACKGROUND", "INTERACTIVE", "Priority", "WaitQueue", "Waiter", "lane_of"]

#: What ``wait(priority=...)`` accepts.
Priority: TypeAlias = Literal["interactive", "background"] | int

#: The lane of ``priority="interactive"``, the default.
INTERACTIVE: Final = 0
#: The lane of ``priority="background"``.
BACKGROUND: Final = 1
_LOWEST: Final = 9
_NAMED: Final = {"interactive": INTERACTIVE, "background": BACKGROUND}


def lane_of(priority: object) -> int:
    """The lane of a ``priority``: ``"interactive"`` 0, ``"background"`` 1, or an int 0-9.

    ``TypeError`` for anything else than a str or an int (bools included),
    ``ValueError`` for an unknown name or an int outside 0-9; both name ``priority``.

    Example::

        >>> lane_of("background"), lane_of(3)
        (1, 3)
    """
    if isinstance(priority, str):
        lane = _NAMED.get(priority)
        if lane is None:
            raise ValueError(
                f"priority must be 'interactive', 'background' or 0-9, got {priority!r}"
            )
        return lane
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise TypeError(f"priority must be 'interactive', 'background' or an int, got {priority!r}")
    if not 0 <= priority <= _LOWEST:
        raise ValueError(f"priority must be an int from 0 to {_LOWEST}, got {priority!r}")
    return priority


class Waiter:
    """One blocked caller: its lane, its place in arrival order, a wake event."""

    __slots__ = ("event", "lane", "overtaken", "seq")

    def __init__(self, lane: int, seq: int) -> None:
        self.event = threading.Event()
        self.lane = lane
        self.seq = seq
        self.overtaken = 0

    def __repr__(self) -> str:
        return f"Waiter(lane={self.lane}, seq={self.seq}, overtaken={self.overtaken})"


class WaitQueue:
    """The callers waiting for a slot, in arrival order; not thread-safe (the limiter locks).

    Memory is one :class:`Waiter` per blocked thread; every operation is
    O(waiters), which is a handful (one per thread of the application).
    """

    __slots__ = ("_max_overtaken", "_seq", "_waiters")

    def __init__(self, max_overtaken: int = 4) -> None:
        if isinstance(max_overtaken, bool) or not isinstance(max_overtaken, int):
            raise TypeError(f"max_overtaken must be an int >= 0, got {max_overtaken!r}")
        if max_overtaken < 0:
            raise ValueError(f"max_overtaken must be an int >= 0, got {max_overtaken!r}")
        self._max_overtaken = max_overtaken
        self._waiters: list[Waiter] = []
        self._seq = 0

    def __len__(self) -> int:
        return len(self._waiters)

    def __bool__(self) -> bool:
        return bool(self._waiters)

    def join(self, lane: int) -> Waiter:
        """A new waiter at the end of the arrival order."""
        self._seq += 1
        waiter = Waiter(lane, self._seq)
        for other in self._waiters:
            if other.lane > lane:
                # Pushed back a place: wake it to re-plan (its slot may no longer fit).
                other.event.set()
        self._waiters.append(waiter)
        return waiter

    def ahead(self, lane: int, waiter: Waiter | None = None) -> int:
        """How many waiters go before ``waiter`` (or a newcomer in ``lane``) as things stand."""
        seq = waiter.seq if waiter is not None else self._seq + 1
        first = self._waiters[0] if self._waiters else None
        forced = first is not None and first.overtaken >= self._max_overtaken
        if forced and first is waiter:
            return 0
        count = 1 if forced else 0
        for other in self._waiters:
            if other is waiter or (forced and other is first):
                continue
            if (other.lane, other.seq) < (lane, seq):
                count += 1
        return count

    def next(self) -> Waiter | None:
        """The waiter that goes next (``None``: nobody waits)."""
        if not self._waiters:
            return None
        first = self._waiters[0]
        if first.overtaken >= self._max_overtaken:
            return first
        return min(self._waiters, key=_order)

    def served(self, waiter: Waiter) -> None:
        """``waiter`` got its slot: it leaves, and everyone who came before it was overtaken."""
        self._waiters.remove(waiter)
        for other in self._waiters:
            if other.seq < waiter.seq:
                other.overtaken += 1
        head = self.next()
        if head is not None:
            head.event.set()

    def leave(self, waiter: Waiter) -> bool:
        """``waiter`` gave up (timeout, cancel); ``False`` if it had already left."""
        try:
            self._waiters.remove(waiter)
        except ValueError:
            return False
        return True

    def wake_all(self) -> None:
        """Wake every waiter to re-plan its sleep (the rate or a pause changed)."""
        for waiter in self._waiters:
            waiter.event.set()


def _order(waiter: Waiter) -> tuple[int, int]:
    return waiter.lane, waiter.seq

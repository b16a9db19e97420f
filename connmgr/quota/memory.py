"""The default store: every key's state in this process's memory.

What every limiter did before quotas could be shared, and still the default:
about a microsecond a grant, on the limiter's own clock (monotonic, or a
:class:`~connmgr.testing.FakeClock` in tests). One ``MemoryStore`` passed to
several :class:`~connmgr.ratelimit.OriginRateLimits` makes them share one
quota inside the process.
"""

from __future__ import annotations

import threading
import weakref

from connmgr import forksafe
from connmgr.quota import gcra
from connmgr.quota.base import Answer, Feedback, Pace

__all__ = ["MemoryBucket", "MemoryStore"]


class MemoryBucket:
    """One key's state in memory; thread-safe (one small lock of its own).

    It runs on the caller's clock: every ``now`` passed in is used as is.
    Shared stores use it as their fallback while they are unreachable.
    """

    __slots__ = ("__weakref__", "_cell", "_feedback", "_granted", "_lock", "_version")

    shared = False

    def __init__(self, cell: gcra.Cell | None = None) -> None:
        self._lock = threading.Lock()
        self._cell = cell if cell is not None else gcra.Cell()
        self._feedback: Feedback | None = None
        self._version = 0
        # The answer to nearly every take: granted, no pause. Built once per version.
        self._granted = Answer(0.0, 0.0, 0)
        forksafe.register(self)

    def _after_fork(self) -> None:
        # Every limiter takes this lock; one a parent's thread held at the fork stays held.
        self._lock = threading.Lock()

    def take(self, pace: Pace, *, fresh: bool, now: float) -> Answer:
        """Take a slot if one is free now; ``wait == 0.0`` when it was taken."""
        with self._lock:
            wait = gcra.take(self._cell, pace, now, fresh=fresh)
            paused = self._cell.paused_until - now
            if wait == 0.0 and paused <= 0.0:
                return self._granted
            return Answer(wait, max(0.0, paused), self._version)

    def peek(self, pace: Pace, *, fresh: bool, now: float) -> Answer:
        """Seconds until a slot would be free, without taking it."""
        with self._lock:
            wait = gcra.peek(self._cell, pace, now, fresh=fresh)
            return Answer(wait, max(0.0, self._cell.paused_until - now), self._version)

    def pause(self, seconds: float, *, now: float) -> None:
        """Hold every sharer ``seconds`` from now (pauses only extend)."""
        with self._lock:
            gcra.pause(self._cell, now + seconds, now)

    def clear_pause(self, *, now: float) -> None:
        """End the server's pause now."""
        with self._lock:
            gcra.clear_pause(self._cell)

    def shorten_pause(self, seconds: float, *, now: float) -> None:
        """End the pause ``seconds`` sooner (this bucket runs on the caller's clock)."""
        with self._lock:
            gcra.shorten_pause(self._cell, seconds, now)

    def sent_rate(self, pace: Pace, *, now: float) -> float:
        """Grants per second over about the last ``pace.measure`` seconds."""
        with self._lock:
            return self._cell.sent.rate(now, tau=pace.measure)

    def feedback(self, *, now: float) -> tuple[int, Feedback | None]:
        """The latest published feedback and its version."""
        with self._lock:
            return self._version, self._feedback

    def publish(self, feedback: Feedback | None, *, now: float) -> int:
        """Publish feedback for every sharer; returns the new version."""
        with self._lock:
            self._feedback = feedback
            self._version += 1
            self._granted = Answer(0.0, 0.0, self._version)
            return self._version


class MemoryStore:
    """Keys kept in this process: today's behaviour, and the default.

    A key's bucket lives as long as some limiter uses it.

    Example::

        store = MemoryStore()
        search = OriginRateLimits(default=RateLimit(5, 1.0), store=store)
        sync = OriginRateLimits(default=RateLimit(5, 1.0), store=store)
        # search and sync now share 5 a second per origin
    """

    shared = False

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # A key's state lives as long as a limiter holds it: an origin the registry
        # forgets (idle, evicted) takes its bucket with it.
        self._buckets: weakref.WeakValueDictionary[str, MemoryBucket] = (
            weakref.WeakValueDictionary()
        )
        forksafe.register(self)

    def _after_fork(self) -> None:
        # A lock a parent's thread held at the fork stays held in the child.
        self._lock = threading.Lock()

    def bucket(self, key: str) -> MemoryBucket:
        """The bucket of ``key``, created on first use."""
        with self._lock:
            found = self._buckets.get(key)
            if found is None:
                found = self._buckets[key] = MemoryBucket()
            return found

    def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"MemoryStore(keys={len(self._buckets)})"

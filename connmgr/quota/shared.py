"""What every shared store does the same way: fall back to local limiting when it is down.

A :class:`SharedStore` subclass implements the raw operations against its
engine (SQLite, Redis) and raises :class:`~connmgr.quota.QuotaStoreError` when
the engine cannot be used. This base turns that into the promised behaviour:

- requests never block on a dead store: an operation that fails is answered
  at once by a local :class:`~connmgr.quota.MemoryBucket` per key, at the pace
  the limiter asked for (its configured rate and what it learned);
- a circuit keeps the store out of the way while it is down: it is tried
  again after ``retry_interval`` seconds (doubling to at most 60 s while it
  stays down), by one caller at a time, so an outage costs one socket timeout
  per interval, not one per request;
- the outage is logged once (WARNING, logger ``connmgr.quota``) and announced
  with :data:`connmgr.signals.quota_store_failed`; the recovery with
  :data:`connmgr.signals.quota_store_recovered` (INFO).

Local state kept during an outage is not merged back: once the store answers
again, the shared state is what counts.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, TypeVar

from connmgr.quota import gcra
from connmgr.quota.base import Answer, Feedback, Pace, QuotaStoreError
from connmgr.quota.memory import MemoryBucket
from connmgr.signals import SafeSignal, quota_store_failed, quota_store_recovered

__all__ = ["SharedBucket", "SharedStore"]

logger = logging.getLogger("connmgr.quota")

_T = TypeVar("_T")

#: The longest gap between two tries of a store that stays down.
_MAX_RETRY_INTERVAL = 60.0


class SharedBucket:
    """One key of a shared store: the store's answer, or the local fallback's while it is down.

    Shared stores run on their own clock: the ``now`` a caller passes is only
    used by the local fallback.
    """

    __slots__ = ("__weakref__", "_key", "_local", "_store")

    shared = True

    def __init__(self, store: SharedStore, key: str) -> None:
        self._store = store
        self._key = key
        # A fallback that starts as if it had just granted: it paces from the first
        # request, so losing the store mid-run never lets a fresh burst through.
        self._local = MemoryBucket(gcra.Cell(last=math.inf))

    def take(self, pace: Pace, *, fresh: bool, now: float) -> Answer:
        """Take a slot if one is free now; ``wait == 0.0`` when it was taken."""
        return self._store.run(
            lambda: self._store.raw_take(self._key, pace, fresh=fresh, take=True),
            lambda: self._local.take(pace, fresh=fresh, now=now),
        )

    def peek(self, pace: Pace, *, fresh: bool, now: float) -> Answer:
        """Seconds until a slot would be free, without taking it."""
        return self._store.run(
            lambda: self._store.raw_take(self._key, pace, fresh=fresh, take=False),
            lambda: self._local.peek(pace, fresh=fresh, now=now),
        )

    def pause(self, seconds: float, *, now: float) -> None:
        """Hold every sharer ``seconds`` from now (and this process, if the store is down)."""
        self._local.pause(seconds, now=now)
        self._store.run(lambda: self._store.raw_pause(self._key, seconds), lambda: None)

    def clear_pause(self, *, now: float) -> None:
        """End the server's pause now, for every sharer."""
        self._local.clear_pause(now=now)
        self._store.run(lambda: self._store.raw_clear_pause(self._key), lambda: None)

    def shorten_pause(self, seconds: float, *, now: float) -> None:
        """The store's clock counted the time slept; only the local fallback needs it."""
        self._local.shorten_pause(seconds, now=now)

    def sent_rate(self, pace: Pace, *, now: float) -> float:
        """Grants per second of every sharer (of this process while the store is down)."""
        return self._store.run(
            lambda: self._store.raw_sent_rate(self._key, pace),
            lambda: self._local.sent_rate(pace, now=now),
        )

    def feedback(self, *, now: float) -> tuple[int, Feedback | None]:
        """The latest published feedback and its version."""
        return self._store.run(
            lambda: self._store.raw_feedback(self._key),
            lambda: self._local.feedback(now=now),
        )

    def publish(self, feedback: Feedback | None, *, now: float) -> int:
        """Publish feedback for every sharer; returns the new version."""
        local = self._local.publish(feedback, now=now)
        return self._store.run(lambda: self._store.raw_publish(self._key, feedback), lambda: local)


class SharedStore(ABC):
    """The base of the stores that processes share; see the module for the failure rules.

    Subclasses implement the ``raw_*`` operations (atomic in the engine, on
    the engine's clock, raising :class:`~connmgr.quota.QuotaStoreError` on any
    failure) and :meth:`describe`.
    """

    shared = True

    def __init__(self, *, retry_interval: float = 5.0) -> None:
        if isinstance(retry_interval, bool) or not isinstance(retry_interval, int | float):
            raise TypeError(f"retry_interval must be a number of seconds, got {retry_interval!r}")
        if not 0.0 < retry_interval <= _MAX_RETRY_INTERVAL:
            raise ValueError(
                f"retry_interval must be in (0, {_MAX_RETRY_INTERVAL:g}] s, got {retry_interval!r}"
            )
        self._retry_interval = float(retry_interval)
        self._lock = threading.Lock()
        # Held while a limiter holds them (the state itself is in the store).
        self._buckets: weakref.WeakValueDictionary[str, SharedBucket] = (
            weakref.WeakValueDictionary()
        )
        # The circuit: None while the store answers; else when the outage began.
        self._down_since: float | None = None
        self._next_try = 0.0
        self._backoff = self._retry_interval
        self._probing = False

    # -- what subclasses provide -------------------------------------------------

    @abstractmethod
    def describe(self) -> str:
        """The store in words for logs and signals, with any password redacted."""

    @abstractmethod
    def raw_take(self, key: str, pace: Pace, *, fresh: bool, take: bool) -> Answer:
        """Take (``take=True``) or peek at a slot, atomically, on the store's clock."""

    @abstractmethod
    def raw_pause(self, key: str, seconds: float) -> None:
        """Extend the key's pause to ``seconds`` from the store's now."""

    @abstractmethod
    def raw_clear_pause(self, key: str) -> None:
        """End the key's pause."""

    @abstractmethod
    def raw_sent_rate(self, key: str, pace: Pace) -> float:
        """The key's grant meter, read at the store's now."""

    @abstractmethod
    def raw_feedback(self, key: str) -> tuple[int, Feedback | None]:
        """The key's feedback version and value, read at the store's now."""

    @abstractmethod
    def raw_publish(self, key: str, feedback: Feedback | None) -> int:
        """Store the key's feedback and bump its version; returns the new version."""

    # -- the store ------------------------------------------------------------------

    def bucket(self, key: str) -> SharedBucket:
        """The bucket of ``key`` (an origin); cheap, no round trip."""
        if not isinstance(key, str) or not key:
            raise TypeError(f"key must be a non-empty str, got {key!r}")
        with self._lock:
            found = self._buckets.get(key)
            if found is None:
                found = self._buckets[key] = SharedBucket(self, key)
            return found

    @property
    def available(self) -> bool:
        """Whether the store answered the last time it was asked."""
        return self._down_since is None

    @abstractmethod
    def close(self) -> None:
        """Release the connection; buckets then reconnect or limit locally."""

    def run(self, raw: Callable[[], _T], local: Callable[[], _T]) -> _T:
        """``raw()``, or ``local()`` when the store is down (or just failed)."""
        if self._down_since is not None and not self._may_try():
            return local()
        try:
            result = raw()
        except QuotaStoreError as exc:
            self._failed(exc)
            return local()
        if self._down_since is not None:
            self._recovered()
        return result

    def _may_try(self) -> bool:
        """While down: whether this caller is the one to try the store again now."""
        with self._lock:
            if self._probing or time.monotonic() < self._next_try:
                return False
            self._probing = True
            return True

    def _failed(self, exc: QuotaStoreError) -> None:
        with self._lock:
            self._probing = False
            first = self._down_since is None
            if first:
                self._down_since = time.monotonic()
                self._backoff = self._retry_interval
            else:
                self._backoff = min(_MAX_RETRY_INTERVAL, self._backoff * 2.0)
            self._next_try = time.monotonic() + self._backoff
            retry_in = self._backoff
        if first:
            logger.warning(
                "quota store %s is unreachable (%s): limiting locally at the configured rate; "
                "trying again in %.0f s",
                self.describe(),
                exc,
                retry_in,
            )
            _announce(
                quota_store_failed,
                self,
                store=self.describe(),
                error=str(exc),
                retry_in=retry_in,
            )

    def _recovered(self) -> None:
        with self._lock:
            since, self._down_since = self._down_since, None
            self._probing = False
        if since is None:
            return
        down_for = time.monotonic() - since
        logger.info("quota store %s answers again after %.1f s", self.describe(), down_for)
        _announce(quota_store_recovered, self, store=self.describe(), down_for=down_for)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()})"


def _announce(signal: SafeSignal, sender: object, **payload: Any) -> None:
    """Send ``signal`` from a thread of its own, never under a limiter's lock.

    A store fails inside a limiter's critical section; a receiver that asked
    the limiter for its status there would deadlock, so the signal waits for
    a thread of its own. (A receiver that raises is logged by the signal.)
    """
    threading.Thread(
        target=signal.send,
        args=(sender,),
        kwargs=payload,
        name=f"connmgr-{signal.name}",
        daemon=True,
    ).start()

"""What a quota store is: the values it trades in and the two protocols it implements.

A :class:`QuotaStore` holds, per key (an origin), the state a limiter would
otherwise keep to itself: the GCRA pacing state, the server's pause, a meter
of grants, and the feedback the server gave (the adaptive rate, the quota
headers' pace). :meth:`QuotaStore.bucket` hands out a :class:`Bucket` for
one key; every operation on it is atomic, in the store, so many threads,
processes or hosts can share one key.

Times never cross the boundary as clock readings: a caller passes its own
``now`` (used only by stores that run on the caller's clock, i.e.
:class:`~connmgr.quota.MemoryStore`) and gets durations back ("the next
slot is 0.2 s away", "the pause has 38 s left"). Shared stores run on a
clock every process agrees on (the Redis server's ``TIME``, the machine's
``time.time()`` for SQLite), so neither skewed host clocks nor different
monotonic epochs matter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

from connmgr.frozen import explain_frozen

__all__ = [
    "Answer",
    "Bucket",
    "Feedback",
    "Pace",
    "QuotaStore",
    "QuotaStoreError",
]


class QuotaStoreError(Exception):
    """A shared store could not be used (unreachable, locked too long, a disk error).

    Raised by the raw operations of :class:`~connmgr.quota.SQLiteStore` and
    :class:`~connmgr.quota.RedisStore`; their buckets catch it and fall back
    to a local limiter, so a limiter's caller never sees it.
    """


@explain_frozen
@dataclass(frozen=True, slots=True)
class Pace:
    """How a key is paced right now, as the limiter computed it.

    - ``interval``: seconds between grants (``0.0``: no limit);
    - ``burst``: grants that may go back to back after an idle ``window``;
    - ``window``: the configured window in seconds (a burst needs one idle window);
    - ``measure``: the time constant (s) of the grant meter (:meth:`Bucket.sent_rate`).

    Example::

        Pace(interval=0.2, burst=5, window=1.0, measure=1.0)   # 5 per second
    """

    interval: float
    burst: int
    window: float
    measure: float = 1.0


#: A pace that never holds anyone: what a limiter without a rate passes.
UNLIMITED = Pace(interval=0.0, burst=1, window=1.0)


class Answer(NamedTuple):
    """A bucket's answer to :meth:`Bucket.take` or :meth:`Bucket.peek`.

    - ``wait``: ``0.0`` when the slot was taken (``take``) or one is free now
      (``peek``); else seconds until the next slot (at least the pause);
    - ``paused``: seconds left of the server's pause (``0.0``: none);
    - ``version``: the key's feedback version; it changes whenever any sharer
      publishes feedback, so a limiter re-reads :meth:`Bucket.feedback` only then.
    """

    wait: float
    paused: float
    version: int


@explain_frozen
@dataclass(frozen=True, slots=True)
class Feedback:
    """What the server taught one sharer about a key, to be applied by all.

    Times are durations relative to the moment the value is read or written
    (the store turns them into its own clock's times and back):

    - ``plateau``, ``start``, ``hold``: the adaptive rule's state
      (:class:`~connmgr.ratelimit.AdaptiveRate`); ``plateau=None`` when no
      adaptive limit is in force;
    - ``since_throttle``, ``since_decrease``: seconds since the throttle the
      curve starts from, and since the last cut;
    - ``header_rate``, ``header_left``: the pace quota headers asked for
      (requests per second) and how many more seconds it holds (``None``: none).

    Example::

        Feedback(plateau=19.0, start=14.0, hold=5.0, since_throttle=0.0, since_decrease=0.0)
    """

    plateau: float | None = None
    start: float = 0.0
    hold: float = 0.0
    since_throttle: float = math.inf
    since_decrease: float = math.inf
    header_rate: float | None = None
    header_left: float = 0.0

    def to_times(self, now: float) -> dict[str, float | None]:
        """The value with clock times at ``now`` (the store's clock), for storing."""
        return {
            "plateau": self.plateau,
            "start": self.start,
            "hold": self.hold,
            "t0": _minus(now, self.since_throttle),
            "dec": _minus(now, self.since_decrease),
            "hrate": self.header_rate,
            "huntil": now + self.header_left if self.header_rate is not None else None,
        }

    @classmethod
    def from_times(cls, times: dict[str, float | None], now: float) -> Feedback:
        """The value :meth:`to_times` stored, read back at ``now`` (the store's clock)."""
        t0, dec, until = times.get("t0"), times.get("dec"), times.get("huntil")
        rate = times.get("hrate")
        return cls(
            plateau=times.get("plateau"),
            start=times.get("start") or 0.0,
            hold=times.get("hold") or 0.0,
            since_throttle=math.inf if t0 is None else max(0.0, now - t0),
            since_decrease=math.inf if dec is None else max(0.0, now - dec),
            header_rate=rate,
            header_left=0.0 if until is None or rate is None else max(0.0, until - now),
        )


def _minus(now: float, age: float) -> float | None:
    # "Never" is stored as None: JSON and SQL have no infinity.
    return None if math.isinf(age) else now - age


@runtime_checkable
class Bucket(Protocol):
    """One key's shared limiter state; every method is atomic in the store.

    ``now`` is the caller's clock reading; shared stores ignore it and use
    their own clock. ``fresh`` says the caller arrived with nobody waiting
    before it in its own process, so it may open a burst after an idle window.
    ``shared`` is ``True`` when other processes take from the same key.
    """

    @property
    def shared(self) -> bool:
        """Whether other processes or hosts take slots from this bucket too."""
        ...

    def take(self, pace: Pace, *, fresh: bool, now: float) -> Answer:
        """Take a slot if one is free now; ``wait == 0.0`` when it was taken."""
        ...

    def peek(self, pace: Pace, *, fresh: bool, now: float) -> Answer:
        """Like :meth:`take`, without taking: ``wait`` until a slot would be free."""
        ...

    def pause(self, seconds: float, *, now: float) -> None:
        """Hold every sharer ``seconds`` from now (pauses only extend)."""
        ...

    def clear_pause(self, *, now: float) -> None:
        """End the server's pause now."""
        ...

    def shorten_pause(self, seconds: float, *, now: float) -> None:
        """End the pause ``seconds`` sooner: time passed that the caller's clock missed.

        After a suspend a monotonic clock has not counted the time slept.
        Stores on a clock of their own (wall clock, Redis ``TIME``) counted it,
        and ignore this.
        """
        ...

    def sent_rate(self, pace: Pace, *, now: float) -> float:
        """Grants per second over about the last ``pace.measure`` seconds, all sharers."""
        ...

    def feedback(self, *, now: float) -> tuple[int, Feedback | None]:
        """The latest published feedback and its version (``None``: none yet)."""
        ...

    def publish(self, feedback: Feedback | None, *, now: float) -> int:
        """Publish feedback for every sharer; returns the new version."""
        ...


@runtime_checkable
class QuotaStore(Protocol):
    """Where limiters keep the state they share: one :class:`Bucket` per key.

    ``shared`` is ``True`` for stores that other processes can reach (their
    operations cost a round trip, and they run on their own clock).
    """

    @property
    def shared(self) -> bool:
        """Whether other processes or hosts can share this store's keys."""
        ...

    def bucket(self, key: str) -> Bucket:
        """The bucket of ``key`` (an origin), created on first use."""
        ...

    def close(self) -> None:
        """Release connections; buckets handed out fall back to local limiting."""
        ...

"""The pacing decision itself: GCRA with a paid-back burst, on one key's state.

Pure functions over a :class:`Cell` (a handful of numbers): the memory and
SQLite stores run them in Python, the Redis store runs the same rules as a
Lua script inside Redis. A request at ``now`` is granted when ``now`` has
reached the theoretical arrival time (``tat``); then ``tat = now + interval``.
A burst of up to ``burst`` back-to-back grants opens only for a caller that
arrives after a whole idle ``window`` with nobody waiting, and the burst is
paid back before pacing resumes: after ``m`` burst grants the next is due
``m × interval`` after the last of them. At a constant rate no ``window``
therefore holds more than ``window / interval`` grants. A server's pause
(``paused_until``) holds every grant until it ends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

from connmgr.quota.base import Pace

__all__ = ["EPS", "Cell", "Meter", "clear_pause", "pause", "peek", "shorten_pause", "take"]

#: Float slack for "is it time yet": a sleep of exactly (slot - now) must not need a
#: second, 1e-16 s sleep to get past rounding.
EPS: Final = 1e-9


@dataclass(slots=True)
class Meter:
    """Events per second over roughly the last ``tau`` seconds, in O(1).

    An exponentially decaying count, divided by the decayed length of the
    time it has been counting: a steady rate ``r`` reads ``r`` from the first
    events on, instead of creeping up over ``tau`` (which would make the first
    throttle of a run underestimate the server by the meter's age).

    Example::

        >>> m = Meter()
        >>> for i in range(20):
        ...     m.add(i / 10, tau=1.0)
        >>> round(m.rate(1.9, tau=1.0))
        10
    """

    count: float = 0.0
    stamp: float = -math.inf
    start: float = -math.inf

    def add(self, now: float, *, tau: float) -> None:
        """Count one event at ``now``."""
        # Events closer than tau/128 to the last decay are counted as if they came
        # then: the rate reads at most 1% low, and a busy key pays one exp() per
        # step, not one per request.
        if now - self.stamp < tau / 128:
            self.count += 1.0
            return
        count = self._decayed(now, tau)
        if count < 0.01:
            self.start = now
        self.count = count + 1.0
        self.stamp = now

    def _decayed(self, now: float, tau: float) -> float:
        if self.count == 0.0:
            return 0.0
        return self.count * math.exp(-max(0.0, now - self.stamp) / tau)

    def rate(self, now: float, *, tau: float) -> float:
        """Events per second at ``now``."""
        count = self._decayed(now, tau)
        if count == 0.0:
            return 0.0
        # A tenth of tau at least: two events a microsecond apart are not a rate.
        span = max(0.1 * tau, now - self.start)
        return count / (tau * -math.expm1(-span / tau))


@dataclass(slots=True)
class Cell:
    """One key's pacing state (times on the store's clock).

    - ``tat``: the theoretical arrival time, when the next paced grant is due;
    - ``last``: the last grant;
    - ``epoch_open`` / ``epoch_count``: the burst in progress;
    - ``paused_until``: end of the server's pause;
    - ``interval``: the interval ``tat`` was computed at (``None``: never paced),
      so a change of pace converts the debt instead of forgetting it;
    - ``sent``: the meter of grants;
    - ``seen``: the latest clock reading an operation ran at, so a clock that
      steps back (a wall clock set back by NTP or by hand) moves the state
      with it instead of holding every sharer until it catches up.
    """

    tat: float = -math.inf
    last: float = -math.inf
    epoch_open: bool = False
    epoch_count: int = 0
    paused_until: float = -math.inf
    interval: float | None = None
    sent: Meter = field(default_factory=Meter)
    seen: float = -math.inf


def _follow_clock(cell: Cell, now: float) -> None:
    """Keep the state's times relative to ``now`` when the clock stepped back."""
    if now < cell.seen:
        shift = now - cell.seen
        cell.tat += shift
        cell.last += shift
        cell.paused_until += shift
        cell.sent.stamp += shift
        cell.sent.start += shift
    cell.seen = now


def _settle(cell: Cell, pace: Pace, now: float) -> None:
    """Adopt ``pace``: the debt already owed is kept in requests, not seconds.

    ``(tat - base)`` seconds at the old interval is ``(tat - base) / old``
    requests, owed at the new interval, so lowering the rate never lets a
    burst through and raising it takes effect at once.
    """
    old, new = cell.interval, pace.interval
    if old is None:
        cell.interval = new
        return
    if abs(new - old) > 1e-12 * old:
        if old > 0.0:
            base = max(now, cell.paused_until)
            if cell.tat > base:
                cell.tat = base + (cell.tat - base) * (new / old)
            cell.epoch_open = False
        cell.interval = new


def _conformant(cell: Cell, pace: Pace, now: float, fresh: bool) -> bool:
    if now < cell.paused_until - EPS:
        return False
    if now >= cell.tat - EPS:
        return True
    return fresh and cell.epoch_open and cell.epoch_count < pace.burst


def _head_wait(cell: Cell, now: float) -> float:
    return max(cell.tat, cell.paused_until, now) - now


def take(cell: Cell, pace: Pace, now: float, *, fresh: bool) -> float:
    """Grant a slot if one is free at ``now``: ``0.0``, else seconds until the next (> 0)."""
    _follow_clock(cell, now)
    if cell.interval != pace.interval:
        _settle(cell, pace, now)
    if now < cell.paused_until - EPS:
        return _head_wait(cell, now)
    if now >= cell.tat - EPS:
        # A paced grant; a fresh caller after a whole idle window opens a burst.
        if fresh and now - cell.last >= pace.window - EPS:
            cell.epoch_open = pace.burst > 1
            cell.epoch_count = 1
        else:
            cell.epoch_open = False
            cell.epoch_count = 0
        cell.tat = max(now, cell.paused_until) + pace.interval
    elif fresh and cell.epoch_open and cell.epoch_count < pace.burst:
        # A burst grant: count the whole burst as if it went now, so pacing
        # resumes only once every burst request is a full interval behind.
        cell.epoch_count += 1
        cell.tat = now + cell.epoch_count * pace.interval
        if cell.epoch_count >= pace.burst:
            cell.epoch_open = False
    else:
        return _head_wait(cell, now)
    cell.last = now
    cell.sent.add(now, tau=pace.measure)
    return 0.0


def peek(cell: Cell, pace: Pace, now: float, *, fresh: bool) -> float:
    """Seconds until a slot would be free (``0.0``: now), without taking it."""
    _follow_clock(cell, now)
    if cell.interval != pace.interval:
        _settle(cell, pace, now)
    if fresh and _conformant(cell, pace, now, fresh):
        return 0.0
    return _head_wait(cell, now)


def pause(cell: Cell, until: float, now: float) -> None:
    """Hold every grant until ``until``; pauses only extend. No burst right after one."""
    _follow_clock(cell, now)
    if until <= cell.paused_until or until <= now:
        return
    cell.paused_until = until
    # Pace for one window after the pause ends: no burst into a server that just said wait.
    cell.last = max(cell.last, until)
    cell.epoch_open = False


def shorten_pause(cell: Cell, seconds: float, now: float) -> None:
    """End the pause ``seconds`` sooner (time passed that the clock did not count)."""
    if cell.paused_until <= now:
        return
    cell.paused_until = max(now, cell.paused_until - seconds)
    cell.last = max(now, cell.last - seconds)


def clear_pause(cell: Cell) -> None:
    """Forget the server's pause."""
    cell.paused_until = -math.inf

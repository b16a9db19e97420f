"""The fair GCRA limiter: ``max_requests`` per ``time_window``, or no limit at all.

:class:`RateLimiter` paces requests with the Generic Cell Rate Algorithm
(GCRA, :mod:`connmgr.quota.gcra`): one "theoretical arrival time" per key,
so memory does not grow with the number of requests. That state lives in a
:class:`~connmgr.quota.Bucket` (in memory by default; SQLite or Redis to
share one quota between processes and hosts). Waiting callers are served by
priority lane, first come first served within a lane
(:mod:`~connmgr.ratelimit.lanes`); waits are cancellable, never longer than
the timeout they are given, and run on an injected
:class:`~connmgr.clock.Clock`. A server's pause (:meth:`RateLimiter.pause`)
is remembered for at most ``max_pause`` seconds, and
:meth:`RateLimiter.pause_remaining` tells the caller how long it has left, so
the caller applies its own cap before it waits.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Final

from connmgr import forksafe
from connmgr.clock import SYSTEM_CLOCK, CancelToken, Clock, interruptible_sleep
from connmgr.frozen import explain_frozen
from connmgr.quota.base import Answer, Bucket, Pace
from connmgr.quota.gcra import EPS
from connmgr.quota.memory import MemoryBucket
from connmgr.ratelimit.lanes import Priority, Waiter, WaitQueue, lane_of

__all__ = ["DEFAULT_MAX_PAUSE", "LimiterStatus", "RateLimiter"]

#: How long a server's pause is remembered at most, unless the owner says otherwise.
DEFAULT_MAX_PAUSE: Final = 300.0

#: How often a waiter that is not next re-checks at the latest, in case a wake-up was lost.
_LOST_WAKE: Final = 0.05


def check_number(name: str, value: object, *, positive: bool = True) -> float:
    """``value`` as a finite float (> 0, or >= 0 with ``positive=False``).

    ``TypeError`` naming ``name`` for a non-number (bools included), ``ValueError``
    naming it for a number out of range. Shared by the limiters' settings.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or (positive and number <= 0) or number < 0:
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return number


def _check_rate(max_requests: object, time_window: object) -> tuple[float | None, float]:
    """Validate a rate; ``max_requests=None`` means no limit (``time_window`` is still checked)."""
    window = check_number("time_window", time_window)
    if max_requests is None:
        return None, window
    return check_number("max_requests", max_requests), window


def check_burst(burst: object) -> int | None:
    """A burst setting: ``None`` or an int >= 1 (``TypeError``/``ValueError`` naming it)."""
    if burst is None:
        return None
    if isinstance(burst, bool) or not isinstance(burst, int):
        raise TypeError(f"burst must be an int >= 1 or None, got {burst!r}")
    if burst < 1:
        raise ValueError(f"burst must be an int >= 1 or None, got {burst!r}")
    return burst


@explain_frozen
@dataclass(frozen=True, slots=True)
class LimiterStatus:
    """A cheap snapshot of a limiter for the state machine and the UI.

    - ``wait``: seconds a caller arriving now would wait (0 = it would go at once);
    - ``resume_at``: the limiter clock's time of that slot, ``None`` when ``wait`` is 0;
    - ``rate`` / ``configured_rate``: effective and configured requests per second;
    - ``waiting``: callers blocked in :meth:`RateLimiter.wait` right now;
    - ``paused_until``: end of a pause the server asked for (``Retry-After``,
      quota exhausted), ``None`` when there is none;
    - ``reason``: why a caller would wait or the rate is below the configured
      one: ``"paused"`` (the server said wait), ``"adaptive"`` (slowed after
      429s), ``"headers"`` (spreading the remaining quota), ``"reduced"``
      (:meth:`RateLimiter.set_rate_factor` below 1, e.g. the degraded state),
      else ``"pacing"`` (the client's own limit) when it would wait, or ``"ready"``.

    Example::

        >>> LimiterStatus(wait=12.2, resume_at=1012.2, rate=0.5, configured_rate=10.0,
        ...               waiting=3, paused_until=1012.2, reason="paused").describe()
        'Rate limited by the server — resuming in 13 s'
    """

    wait: float
    resume_at: float | None
    rate: float
    configured_rate: float
    waiting: int
    paused_until: float | None
    reason: str

    @property
    def would_wait(self) -> bool:
        """Whether a caller arriving now would have to wait."""
        return self.wait > 0.0

    def describe(self) -> str:
        """One plain-words line for a status bar."""
        if self.wait <= 0.0:
            return "Ready"
        seconds = math.ceil(self.wait)
        if self.reason == "paused":
            return f"Rate limited by the server — resuming in {seconds} s"
        if self.wait < 1.0:
            return f"Pacing requests ({self.rate:.3g}/s)"
        if self.reason in ("adaptive", "headers"):
            return f"Slowing down for the server ({self.rate:.3g}/s) — next request in {seconds} s"
        return f"Rate limited — next request in {seconds} s"


class RateLimiter:
    """A thread-safe, fair rate limiter: ``max_requests`` per ``time_window`` seconds.

    ``max_requests=None`` means no limit of its own: every request goes at
    once (``acquire()`` costs a lock, a clock read and the bucket's lock),
    until a rate is set (:meth:`set_rate`) or, in
    :class:`~connmgr.ratelimit.AdaptiveRateLimiter`, the server asks for one.
    A server's pause (:meth:`pause`) holds callers even without a rate.

    The algorithm is GCRA (the Generic Cell Rate Algorithm, a token bucket
    written as one timestamp): requests are spaced at least
    ``time_window / max_requests`` seconds apart, and after a whole
    ``time_window`` with no request (nobody waiting) up to ``burst`` may go
    back to back; the burst is then paid for before pacing resumes, so any
    ``time_window``-long window holds at most ``max_requests`` grants at a
    constant rate. ``burst=None`` means ``max_requests`` (the original plan's
    window: ``max_requests`` at once, then no more until the window has
    passed); ``burst=1`` spaces every request evenly.

    Memory is O(1): a few floats in the bucket, plus one small entry per
    *blocked thread* (never per request). Waiting callers are served by lane
    (``priority=`` of :meth:`wait`, see :mod:`~connmgr.ratelimit.lanes`),
    first come first served within a lane; a waiter overtaken
    ``max_overtaken`` times goes next whatever its lane. A caller that gives
    up (timeout, cancel) leaves the queue, so nobody behind it pays for its slot.

    ``bucket`` holds the pacing state and the server's pause: a
    :class:`~connmgr.quota.MemoryBucket` of its own by default, or a shared
    store's (``SQLiteStore(path).bucket(key)``) so that several processes
    share one quota; the queue and the priorities stay in this process.

    The plan's methods keep their meaning: :meth:`acquire` never blocks,
    :meth:`wait_if_needed` blocks until a slot is granted, :meth:`get_wait_time`
    says how long a caller would wait now. :meth:`wait` adds a timeout decided
    up front (``False`` at once when the slot would come too late) and a
    :class:`~connmgr.clock.CancelToken`; it never waits longer than its timeout.

    ``max_pause`` bounds what a pause remembers: a longer one is shortened to
    it (default 300 s). The owner passes its own bound (the manager's
    ``max_retry_after``); the caller's cap for a single wait is the
    ``timeout`` it gives :meth:`wait`.

    Example::

        limiter = RateLimiter(max_requests=10, time_window=1.0)
        for url in urls:
            limiter.wait_if_needed()          # at most 10 a second, fairly shared
            session.get(url)

        if not limiter.acquire():             # never blocks
            status_bar.show(f"busy, try again in {limiter.get_wait_time():.1f} s")
    """

    def __init__(
        self,
        max_requests: float | None = 10,
        time_window: float = 1.0,
        *,
        burst: int | None = None,
        clock: Clock | None = None,
        max_pause: float = DEFAULT_MAX_PAUSE,
        bucket: Bucket | None = None,
        max_overtaken: int = 4,
    ) -> None:
        self._max_requests, self._time_window = _check_rate(max_requests, time_window)
        self._burst_setting = check_burst(burst)
        self._max_pause = check_number("max_pause", max_pause)
        self._clock: Clock = clock if clock is not None else SYSTEM_CLOCK
        if bucket is not None and not isinstance(bucket, Bucket):
            raise TypeError(f"bucket must be a connmgr.quota.Bucket, got {bucket!r}")
        self._bucket: Bucket = bucket if bucket is not None else MemoryBucket()
        self._queue = WaitQueue(max_overtaken)
        self._lock = threading.Lock()
        self._factor = 1.0
        self._pace = Pace(interval=0.0, burst=1, window=self._time_window)
        self._rate = 0.0
        self._reason: str | None = None
        with self._lock:
            self._update_rate_locked(self._clock.now())
        forksafe.register(self)

    def _after_fork(self) -> None:
        # In a forked child the queued callers' threads are gone: their places would
        # block the queue for ever, as would a lock one of them held.
        self._lock = threading.Lock()
        self._queue = WaitQueue(self._queue._max_overtaken)

    # -- configuration -----------------------------------------------------

    @property
    def max_requests(self) -> float | None:
        """Configured requests per :attr:`time_window` (an int if given as one); ``None``: none."""
        m = self._max_requests
        if m is None:
            return None
        return int(m) if m.is_integer() else m

    @property
    def time_window(self) -> float:
        """Configured window in seconds."""
        return self._time_window

    @property
    def burst(self) -> int:
        """Requests that may currently go back to back after an idle window."""
        return self._pace.burst

    @property
    def configured_rate(self) -> float:
        """``max_requests / time_window``: the ceiling the effective rate never exceeds.

        ``math.inf`` when there is no configured limit.
        """
        if self._max_requests is None:
            return math.inf
        return self._max_requests / self._time_window

    @property
    def max_pause(self) -> float:
        """The longest pause this limiter remembers, in seconds."""
        return self._max_pause

    @property
    def bucket(self) -> Bucket:
        """Where the pacing state lives (shared with other processes for a shared store)."""
        return self._bucket

    @property
    def rate(self) -> float:
        """The effective rate in requests per second (after factor and server feedback)."""
        with self._lock:
            self._refresh_locked(self._clock.now())
            return self._rate

    @property
    def rate_factor(self) -> float:
        """The factor set by :meth:`set_rate_factor` (1.0 by default)."""
        return self._factor

    @property
    def clock(self) -> Clock:
        """The clock this limiter reads and waits on."""
        return self._clock

    def set_rate(self, max_requests: float | None, time_window: float | None = None) -> None:
        """Change the configured rate at runtime; waiting callers are rescheduled.

        The debt already owed (how far ahead of the old pace the limiter is)
        is kept in requests, not seconds, so lowering the rate never lets a
        burst through and raising it takes effect at once. ``None`` lifts the
        configured limit.

        Example::

            limiter.set_rate(2, 1.0)     # from now on 2 requests a second
            limiter.set_rate(None)       # no limit of our own
        """
        max_requests, window = _check_rate(
            max_requests, self._time_window if time_window is None else time_window
        )
        with self._lock:
            self._max_requests = max_requests
            self._time_window = window
            self._update_rate_locked(self._clock.now())

    def set_rate_factor(self, factor: float) -> None:
        """Scale the configured rate by ``factor`` in (0, 1] (the degraded state uses 0.5).

        Example::

            limiter.set_rate_factor(0.5)   # degraded: half the configured rate
            limiter.set_rate_factor(1.0)   # online again
        """
        value = check_number("factor", factor)
        if value > 1.0:
            raise ValueError(f"factor must be in (0, 1], got {factor!r}")
        with self._lock:
            self._factor = value
            self._update_rate_locked(self._clock.now())

    def pause(self, seconds: float) -> None:
        """Hold every caller for ``seconds`` from now (e.g. the server sent ``Retry-After``).

        Pauses only ever extend: a shorter pause than the current one is
        ignored. A pause longer than :attr:`max_pause` is shortened to it.
        After a pause requests are paced (no burst) for one window. With a
        shared store the pause holds every process sharing the key.
        """
        seconds = min(check_number("seconds", seconds, positive=False), self._max_pause)
        with self._lock:
            now = self._clock.now()
            self._pause_locked(seconds, now)
            self._update_rate_locked(now)

    def shorten_pause(self, seconds: float) -> None:
        """A pause ends ``seconds`` sooner: time passed that the clock did not count.

        After a suspend a monotonic clock has not moved for the time the
        machine slept, while the server's clock has; the manager calls this with
        the slept time so a ``Retry-After`` ends when the server meant.
        """
        seconds = check_number("seconds", seconds, positive=False)
        with self._lock:
            now = self._clock.now()
            self._bucket.shorten_pause(seconds, now=now)
            self._update_rate_locked(now)
            self._queue.wake_all()

    # -- hooks for subclasses ------------------------------------------------

    def _target_rate_locked(self, now: float) -> tuple[float, str | None]:
        """The rate to pace at and why it is below the configured one (``None``: it is not)."""
        rate = self.configured_rate * self._factor
        # Halving "no limit" is still no limit: the reduction only shows once a rate is known.
        return rate, ("reduced" if self._factor < 1.0 and math.isfinite(rate) else None)

    def _next_change_locked(self, now: float) -> float:
        """When the target rate will next change on its own (so sleepers re-check then)."""
        return math.inf

    def _refresh_locked(self, now: float) -> None:
        """Bring time-dependent state up to date (subclasses recompute the rate)."""

    def _answered_locked(self, answer: Answer, now: float, *, granted: bool) -> None:
        """Every answer of the bucket passes here (``granted``: a slot was taken at ``now``).

        Subclasses count grants and read the answer's feedback version.
        """

    def _meter_window(self) -> float:
        """The time constant (s) the bucket's grant meter measures over."""
        return 1.0

    # -- pacing (callers hold the lock) ------------------------------------------

    def _update_rate_locked(self, now: float) -> None:
        rate, why = self._target_rate_locked(now)
        rate = max(rate, 1e-9)
        if math.isinf(rate):
            # No limit: every grant is due at once (interval 0), bursts do not matter.
            interval, burst = 0.0, 1
        elif why is None:
            interval = 1.0 / rate
            window_count = math.floor(rate * self._time_window + 1e-9)
            setting = self._burst_setting if self._burst_setting is not None else window_count
            burst = max(1, min(setting, window_count))
        else:
            # Slowed down for a reason (server feedback, degraded): no bursts.
            interval, burst = 1.0 / rate, 1
        old = self._pace
        self._rate = rate
        self._reason = why
        if (
            old.burst != burst
            or old.window != self._time_window
            or abs(interval - old.interval) > 1e-12 * old.interval
        ):
            self._pace = Pace(interval, burst, self._time_window, self._meter_window())
            if abs(interval - old.interval) > 1e-12 * old.interval:
                # The bucket converts the debt it carries to the new interval when it
                # sees it: show it now, so the debt is converted as of this moment.
                answer = self._bucket.peek(self._pace, fresh=False, now=now)
                self._answered_locked(answer, now, granted=False)
                self._queue.wake_all()

    def _pause_locked(self, seconds: float, now: float) -> None:
        if seconds > 0.0:
            self._bucket.pause(seconds, now=now)
            self._queue.wake_all()

    def _take_locked(self, now: float, *, fresh: bool) -> float:
        """Take a slot from the bucket: ``0.0`` when granted, else seconds to the next."""
        answer = self._bucket.take(self._pace, fresh=fresh, now=now)
        self._answered_locked(answer, now, granted=answer.wait == 0.0)
        return answer.wait

    def _peek_locked(self, now: float, *, fresh: bool) -> Answer:
        answer = self._bucket.peek(self._pace, fresh=fresh, now=now)
        self._answered_locked(answer, now, granted=False)
        return answer

    def _wait_time_locked(self, now: float) -> tuple[float, float]:
        """(seconds a newcomer behind every waiter would wait, seconds of pause left)."""
        answer = self._peek_locked(now, fresh=not self._queue)
        if answer.wait == 0.0 and not self._queue:
            return 0.0, answer.paused
        return answer.wait + len(self._queue) * self._pace.interval, answer.paused

    # -- the plan's API ------------------------------------------------------------

    def acquire(self) -> bool:
        """Take a slot if one is free now; never blocks.

        Returns ``False`` when the rate is used up, or when other callers are
        already waiting (they were first, whatever their lane).
        :meth:`get_wait_time` says how long until a slot frees up.
        """
        with self._lock:
            now = self._clock.now()
            self._refresh_locked(now)
            if self._queue:
                return False
            return self._take_locked(now, fresh=True) == 0.0

    def wait_if_needed(self) -> None:
        """Block until a slot is granted (first come, first served)."""
        self.wait()

    def get_wait_time(self) -> float:
        """Seconds a caller arriving now would wait for its slot (0.0 if none).

        Counts every caller already waiting as ahead of it. Cheap with the
        memory store (a lock and a few float operations), so a UI can poll
        it; a shared store answers in one round trip.
        """
        with self._lock:
            now = self._clock.now()
            self._refresh_locked(now)
            return self._wait_time_locked(now)[0]

    # -- waiting -------------------------------------------------------------

    def wait(
        self,
        timeout: float | None = None,
        cancel: CancelToken | None = None,
        *,
        priority: Priority = "interactive",
    ) -> bool:
        """Wait for a slot; ``True`` once granted.

        ``False`` means no slot: the slot would come too late, or the wait was
        cancelled (the caller checks ``cancel.cancelled`` and raises its own
        error). It never waits longer than ``timeout`` seconds:

        - the answer is decided up front: if the slot (a server pause
          included) would come later than ``timeout`` from now, ``False`` is
          returned at once, without sleeping and without taking a place in the
          queue; ``timeout=0`` is a non-blocking, queue-respecting try;
        - if the slot moves later while waiting (the server asked for a pause,
          the rate dropped, higher-priority callers arrived, another process
          took it) so that it no longer fits, ``False`` is returned as soon as
          that is known;
        - a ``cancel`` token that is cancelled returns ``False`` at once, or
          within the clock's wake-up latency while waiting.

        ``priority`` is the caller's lane: ``"interactive"`` (the default),
        ``"background"``, or an int 0-9 (lower goes first); see
        :mod:`~connmgr.ratelimit.lanes` for the rule that keeps background
        requests from starving. A caller that leaves, by timeout or cancel,
        frees its place: callers behind it move up. ``timeout=None`` waits
        as long as it takes.

        Example::

            if not limiter.wait(timeout=min(deadline.remaining(), max_wait), cancel=token):
                if token.cancelled:
                    raise RequestCancelledError()
                raise RateLimitError(retry_after=limiter.get_wait_time())
        """
        lane = lane_of(priority)
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, int | float):
                raise TypeError(f"timeout must be a number of seconds or None, got {timeout!r}")
            if math.isnan(timeout):
                raise ValueError(f"timeout must be a number of seconds or None, got {timeout!r}")
            timeout = max(0.0, float(timeout))
        if cancel is not None and cancel.cancelled:
            return False
        clock = self._clock
        with self._lock:
            now = clock.now()
            self._refresh_locked(now)
            if not self._queue:
                head = self._take_locked(now, fresh=True)
                if head == 0.0:
                    return True
            else:
                head = self._peek_locked(now, fresh=False).wait
            deadline = math.inf if timeout is None else now + timeout
            slot = now + head + self._queue.ahead(lane) * self._pace.interval
            if slot > deadline + EPS:
                return False
            me = self._queue.join(lane)
        granted = False
        try:
            while True:
                with self._lock:
                    now = clock.now()
                    self._refresh_locked(now)
                    ahead = self._queue.ahead(lane, me)
                    if ahead == 0:
                        head = self._take_locked(now, fresh=False)
                        if head == 0.0:
                            self._queue.served(me)
                            granted = True
                            return True
                    else:
                        head = self._peek_locked(now, fresh=False).wait
                    slot = now + head + ahead * self._pace.interval
                    if slot > deadline + EPS or now >= deadline:
                        return False
                    me.event.clear()
                    until = min(slot, self._next_change_locked(now))
                    # Not next yet but already due: the one ahead is late to wake; its
                    # grant will wake us. The bound only guards against a lost wake.
                    delay = until - now if until > now + EPS else _LOST_WAKE
                    # Never sleep past the caller's timeout, not even by that guard.
                    delay = min(delay, deadline - now)
                interruptible_sleep(clock, delay, cancel=cancel, wake=me.event)
                if cancel is not None and cancel.cancelled:
                    return False
        finally:
            if not granted:
                with self._lock:
                    self._leave_locked(me)

    def _leave_locked(self, waiter: Waiter) -> None:
        if self._queue.leave(waiter):
            # Everyone behind moves up a place: wake them to re-plan their sleep.
            self._queue.wake_all()

    # -- status ---------------------------------------------------------------

    @property
    def resume_at(self) -> float | None:
        """The clock time a caller arriving now would be served, ``None`` if at once."""
        with self._lock:
            now = self._clock.now()
            self._refresh_locked(now)
            wait = self._wait_time_locked(now)[0]
            return now + wait if wait > 0 else None

    def pause_remaining(self) -> float:
        """Seconds left of the server's pause (:meth:`pause`), ``0.0`` when there is none.

        The caller's cap rule reads this before it waits: a pause longer than
        the caller may wait is an error to raise at once, not a wait. With a
        shared store this is the pause any sharer was given.
        """
        with self._lock:
            return self._peek_locked(self._clock.now(), fresh=False).paused

    @property
    def paused_until(self) -> float | None:
        """End of a server-requested pause on the limiter's clock, ``None`` if not paused."""
        with self._lock:
            now = self._clock.now()
            paused = self._peek_locked(now, fresh=False).paused
            return now + paused if paused > 0.0 else None

    @property
    def waiting(self) -> int:
        """How many callers are blocked in :meth:`wait` now."""
        return len(self._queue)

    def status(self) -> LimiterStatus:
        """A :class:`LimiterStatus` snapshot (one lock, one answer from the bucket)."""
        with self._lock:
            now = self._clock.now()
            self._refresh_locked(now)
            wait, paused = self._wait_time_locked(now)
            if paused > 0.0:
                reason = "paused"
            elif self._reason is not None:
                reason = self._reason
            else:
                reason = "pacing" if wait > 0 else "ready"
            return LimiterStatus(
                wait=wait,
                resume_at=now + wait if wait > 0 else None,
                rate=self._rate,
                configured_rate=self.configured_rate,
                waiting=len(self._queue),
                paused_until=now + paused if paused > 0.0 else None,
                reason=reason,
            )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(max_requests={self.max_requests!r}, "
            f"time_window={self._time_window!r}, burst={self._burst_setting!r}, "
            f"rate={self._rate:.4g}/s)"
        )

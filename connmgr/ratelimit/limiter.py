"""The fair GCRA limiter: ``max_requests`` per ``time_window``, or no limit at all.

:class:`RateLimiter` paces requests with the Generic Cell Rate Algorithm
(GCRA): one "theoretical arrival time" per limiter, so memory does not grow
with the number of requests. Waiting callers are served first come, first
served; waits are cancellable, never longer than the timeout they are given,
and run on an injected :class:`~connmgr.clock.Clock`. A server's pause
(:meth:`RateLimiter.pause`) is remembered for at most ``max_pause`` seconds,
and :meth:`RateLimiter.pause_remaining` tells the caller how long it has left,
so the caller applies its own cap before it waits.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass
from typing import Final

from connmgr import forksafe
from connmgr.clock import SYSTEM_CLOCK, CancelToken, Clock, interruptible_sleep
from connmgr.frozen import explain_frozen

__all__ = ["DEFAULT_MAX_PAUSE", "LimiterStatus", "RateLimiter"]

#: How long a server's pause is remembered at most, unless the owner says otherwise.
DEFAULT_MAX_PAUSE: Final = 300.0


# Float slack for "is it time yet": a sleep of exactly (slot - now) must not need a
# second, 1e-16 s sleep to get past rounding.
_EPS: Final = 1e-9


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


class _Waiter:
    """One blocked caller in the FIFO queue: a wake event, nothing per request."""

    __slots__ = ("event",)

    def __init__(self) -> None:
        self.event = threading.Event()


class RateMeter:
    """Events per second over roughly the last ``tau`` seconds, in O(1).

    An exponentially decaying count, divided by the decayed length of the
    time it has been counting: a steady rate ``r`` reads ``r`` from the first
    events on, instead of creeping up over ``tau`` (which would make the first
    throttle of a run underestimate the server by the meter's age).
    """

    __slots__ = ("_count", "_stamp", "_start", "_step", "_tau")

    def __init__(self, tau: float) -> None:
        self._tau = tau
        # Events closer than this to the last decay are counted as if they came then:
        # the rate reads at most 1% low, and a busy origin pays one exp() per step, not
        # one per request.
        self._step = tau / 128
        self._count = 0.0
        self._stamp = -math.inf
        self._start = -math.inf

    def add(self, now: float) -> None:
        if now - self._stamp < self._step:
            self._count += 1.0
            return
        count = self._decayed(now)
        if count < 0.01:
            self._start = now
        self._count = count + 1.0
        self._stamp = now

    def _decayed(self, now: float) -> float:
        if self._count == 0.0:
            return 0.0
        return self._count * math.exp(-max(0.0, now - self._stamp) / self._tau)

    def rate(self, now: float) -> float:
        count = self._decayed(now)
        if count == 0.0:
            return 0.0
        # A tenth of tau at least: two events a microsecond apart are not a rate.
        span = max(0.1 * self._tau, now - self._start)
        return count / (self._tau * -math.expm1(-span / self._tau))


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
    once (``acquire()`` costs a lock and a clock read), until a rate is set
    (:meth:`set_rate`) or, in :class:`~connmgr.ratelimit.AdaptiveRateLimiter`,
    the server asks for one. A server's pause (:meth:`pause`) holds callers
    even without a rate.

    The algorithm is GCRA (the Generic Cell Rate Algorithm, a token bucket
    written as one timestamp): requests are spaced at least
    ``time_window / max_requests`` seconds apart, and after a whole
    ``time_window`` with no request (nobody waiting) up to ``burst`` may go
    back to back; the burst is then paid for before pacing resumes, so any
    ``time_window``-long window holds at most ``max_requests`` grants at a
    constant rate. ``burst=None`` means ``max_requests`` (the original plan's
    window: ``max_requests`` at once, then no more until the window has
    passed); ``burst=1`` spaces every request evenly.

    Memory is O(1): a few floats, plus one small entry per *blocked thread*
    (never per request). Waiting callers are served first come, first served:
    a slot is only handed to the head of the queue, and a caller that gives up
    (timeout, cancel) leaves the queue, so nobody behind it pays for its slot.

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
    ) -> None:
        self._max_requests, self._time_window = _check_rate(max_requests, time_window)
        self._burst_setting = check_burst(burst)
        self._max_pause = check_number("max_pause", max_pause)
        self._clock: Clock = clock if clock is not None else SYSTEM_CLOCK
        self._lock = threading.Lock()
        self._factor = 1.0
        # GCRA state. _tat: the theoretical arrival time, when the next paced
        # request is due. _last: the last grant. _epoch_*: the current burst.
        self._tat = -math.inf
        self._last = -math.inf
        self._epoch_open = False
        self._epoch_count = 0
        self._paused_until = -math.inf
        self._queue: deque[_Waiter] = deque()
        self._sent = RateMeter(1.0)
        self._interval = 0.0
        self._burst = 1
        self._rate = 0.0
        self._reason: str | None = None
        with self._lock:
            self._update_rate_locked(self._clock.now())
        forksafe.register(self)

    def _after_fork(self) -> None:
        # In a forked child the queued callers' threads are gone: their places would
        # block the queue for ever, as would a lock one of them held.
        self._lock = threading.Lock()
        self._queue = deque()

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
        return self._burst

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
        After a pause requests are paced (no burst) for one window.
        """
        seconds = min(check_number("seconds", seconds, positive=False), self._max_pause)
        with self._lock:
            now = self._clock.now()
            self._pause_until_locked(now + seconds, now)
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
            if self._paused_until <= now:
                return
            self._paused_until = max(now, self._paused_until - seconds)
            self._last = max(now, self._last - seconds)
            self._update_rate_locked(now)
            self._wake_all_locked()

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

    # -- GCRA core (callers hold the lock) -------------------------------------

    def _update_rate_locked(self, now: float) -> None:
        rate, why = self._target_rate_locked(now)
        rate = max(rate, 1e-9)
        interval = 1.0 / rate
        if math.isinf(rate):
            # No limit: every grant is due at once (interval 0), bursts do not matter.
            burst = 1
        elif why is None:
            window_count = math.floor(rate * self._time_window + 1e-9)
            setting = self._burst_setting if self._burst_setting is not None else window_count
            burst = max(1, min(setting, window_count))
        else:
            # Slowed down for a reason (server feedback, degraded): no bursts.
            burst = 1
        old = self._interval
        self._rate = rate
        self._burst = burst
        self._reason = why
        if old and abs(interval - old) > 1e-12 * old:
            # Keep the debt in requests: (tat - base) seconds at the old pace is
            # (tat - base) / old requests, owed at the new pace.
            base = max(now, self._paused_until)
            if self._tat > base:
                self._tat = base + (self._tat - base) * (interval / old)
            self._epoch_open = False
            self._interval = interval
            self._wake_all_locked()
        else:
            self._interval = interval
            if self._epoch_count >= burst:
                self._epoch_open = False

    def _pause_until_locked(self, until: float, now: float) -> None:
        if until <= self._paused_until or until <= now:
            return
        self._paused_until = until
        # No burst right after a pause: pace for one window after it ends.
        self._last = max(self._last, until)
        self._epoch_open = False
        self._wake_all_locked()

    def _conformant_locked(self, now: float, fresh: bool) -> bool:
        if now < self._paused_until - _EPS:
            return False
        if now >= self._tat - _EPS:
            return True
        return fresh and self._epoch_open and self._epoch_count < self._burst

    def _grant_locked(self, now: float, fresh: bool) -> None:
        if now >= self._tat - _EPS:
            idle = now - self._last >= self._time_window - _EPS
            if fresh and idle and not self._queue:
                self._epoch_open = self._burst > 1
                self._epoch_count = 1
            else:
                self._epoch_open = False
                self._epoch_count = 0
            self._tat = max(now, self._paused_until) + self._interval
        else:
            # A burst grant: count the whole burst as if it went now, so pacing
            # resumes only once every burst request is a full interval behind.
            self._epoch_count += 1
            self._tat = now + self._epoch_count * self._interval
            if self._epoch_count >= self._burst:
                self._epoch_open = False
        self._last = now
        self._sent.add(now)

    def _slot_locked(self, now: float, position: int) -> float:
        """When the caller at ``position`` in the queue (0 = head) would be served."""
        head = max(self._tat, self._paused_until, now)
        return head + position * self._interval

    def _wake_all_locked(self) -> None:
        for waiter in self._queue:
            waiter.event.set()

    def _wait_time_locked(self, now: float) -> float:
        if not self._queue and self._conformant_locked(now, fresh=True):
            return 0.0
        return max(0.0, self._slot_locked(now, len(self._queue)) - now)

    # -- the plan's API ------------------------------------------------------------

    def acquire(self) -> bool:
        """Take a slot if one is free now; never blocks.

        Returns ``False`` when the rate is used up, or when other callers are
        already waiting (they were first). :meth:`get_wait_time` says how long
        until a slot frees up.
        """
        with self._lock:
            now = self._clock.now()
            self._refresh_locked(now)
            if self._queue or not self._conformant_locked(now, fresh=True):
                return False
            self._grant_locked(now, fresh=True)
            return True

    def wait_if_needed(self) -> None:
        """Block until a slot is granted (first come, first served)."""
        self.wait()

    def get_wait_time(self) -> float:
        """Seconds a caller arriving now would wait for its slot (0.0 if none).

        Counts the callers already waiting ahead of it. Cheap (a lock and a
        few float operations), so a UI can poll it.
        """
        with self._lock:
            now = self._clock.now()
            self._refresh_locked(now)
            return self._wait_time_locked(now)

    # -- waiting -------------------------------------------------------------

    def wait(self, timeout: float | None = None, cancel: CancelToken | None = None) -> bool:
        """Wait for a slot, first come first served; ``True`` once granted.

        ``False`` means no slot: the slot would come too late, or the wait was
        cancelled (the caller checks ``cancel.cancelled`` and raises its own
        error). It never waits longer than ``timeout`` seconds:

        - the answer is decided up front: if the slot (a server pause
          included) would come later than ``timeout`` from now, ``False`` is
          returned at once, without sleeping and without taking a place in the
          queue; ``timeout=0`` is a non-blocking, queue-respecting try;
        - if the slot moves later while waiting (the server asked for a pause,
          the rate dropped) so that it no longer fits, ``False`` is returned as
          soon as that is known;
        - a ``cancel`` token that is cancelled returns ``False`` at once, or
          within the clock's wake-up latency while waiting.

        A caller that leaves, by timeout or cancel, frees its place: callers
        behind it move up. ``timeout=None`` waits as long as it takes.

        Example::

            if not limiter.wait(timeout=min(deadline.remaining(), max_wait), cancel=token):
                if token.cancelled:
                    raise RequestCancelledError()
                raise RateLimitError(retry_after=limiter.get_wait_time())
        """
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
            if not self._queue and self._conformant_locked(now, fresh=True):
                self._grant_locked(now, fresh=True)
                return True
            deadline = math.inf if timeout is None else now + timeout
            if self._slot_locked(now, len(self._queue)) > deadline + _EPS:
                return False
            me = _Waiter()
            self._queue.append(me)
        granted = False
        try:
            while True:
                with self._lock:
                    now = clock.now()
                    self._refresh_locked(now)
                    position = self._queue.index(me)
                    if position == 0 and self._conformant_locked(now, fresh=False):
                        self._queue.popleft()
                        self._grant_locked(now, fresh=False)
                        if self._queue:
                            self._queue[0].event.set()
                        granted = True
                        return True
                    slot = self._slot_locked(now, position)
                    if slot > deadline + _EPS or now >= deadline:
                        return False
                    me.event.clear()
                    until = min(slot, self._next_change_locked(now))
                    # Not the head yet but already due: the head is late to wake;
                    # its grant will wake us. The bound only guards against a lost wake.
                    delay = until - now if until > now + _EPS else 0.05
                    # Never sleep past the caller's timeout, not even by that guard.
                    delay = min(delay, deadline - now)
                interruptible_sleep(clock, delay, cancel=cancel, wake=me.event)
                if cancel is not None and cancel.cancelled:
                    return False
        finally:
            if not granted:
                with self._lock:
                    self._leave_locked(me)

    def _leave_locked(self, waiter: _Waiter) -> None:
        try:
            self._queue.remove(waiter)
        except ValueError:
            return
        # Everyone behind moves up a place: wake them to re-plan their sleep.
        self._wake_all_locked()

    # -- status ---------------------------------------------------------------

    @property
    def resume_at(self) -> float | None:
        """The clock time a caller arriving now would be served, ``None`` if at once."""
        with self._lock:
            now = self._clock.now()
            self._refresh_locked(now)
            wait = self._wait_time_locked(now)
            return now + wait if wait > 0 else None

    def pause_remaining(self) -> float:
        """Seconds left of the server's pause (:meth:`pause`), ``0.0`` when there is none.

        The caller's cap rule reads this before it waits: a pause longer than
        the caller may wait is an error to raise at once, not a wait.
        """
        with self._lock:
            return max(0.0, self._paused_until - self._clock.now())

    @property
    def paused_until(self) -> float | None:
        """End of a server-requested pause on the limiter's clock, ``None`` if not paused."""
        with self._lock:
            until = self._paused_until
            return until if until > self._clock.now() else None

    @property
    def waiting(self) -> int:
        """How many callers are blocked in :meth:`wait` now."""
        return len(self._queue)

    def status(self) -> LimiterStatus:
        """A :class:`LimiterStatus` snapshot (cheap: one lock, no allocation beyond it)."""
        with self._lock:
            now = self._clock.now()
            self._refresh_locked(now)
            wait = self._wait_time_locked(now)
            paused = self._paused_until > now
            if paused:
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
                paused_until=self._paused_until if paused else None,
                reason=reason,
            )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(max_requests={self.max_requests!r}, "
            f"time_window={self._time_window!r}, burst={self._burst_setting!r}, "
            f"rate={self._rate:.4g}/s)"
        )

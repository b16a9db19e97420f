"""A fake clock so that tests never wait for wall time."""

from __future__ import annotations

import threading

__all__ = ["FakeClock"]


class FakeClock:
    """A :class:`~connmgr.clock.Clock` whose time moves only when told to.

    With ``auto_advance=True`` (the default) ``sleep(s)`` returns at once and
    moves time forward by ``s``, so code that waits 30 s runs in microseconds
    and the test can assert what was waited (``clock.sleeps``).

    With ``auto_advance=False``, ``sleep`` blocks the calling thread until
    another thread calls :meth:`advance` far enough, or the ``wake`` event is
    set: use it to step a multi-threaded scenario deterministically.

    Example::

        clock = FakeClock()
        limiter = RateLimiter(max_requests=1, time_window=1.0, clock=clock)
        limiter.wait_if_needed(); limiter.wait_if_needed()
        assert clock.sleeps == [1.0]
    """

    def __init__(self, start: float = 1000.0, *, auto_advance: bool = True) -> None:
        self._now = float(start)
        self.auto_advance = auto_advance
        #: Every requested sleep, in seconds, in call order.
        self.sleeps: list[float] = []
        self._cond = threading.Condition()

    def now(self) -> float:
        """The fake current time."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` and wake blocked sleepers that are due."""
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds!r}")
        with self._cond:
            self._now += seconds
            self._cond.notify_all()

    def set(self, now: float) -> None:
        """Jump to an absolute time (never backwards)."""
        with self._cond:
            if now < self._now:
                raise ValueError(f"time cannot go backwards: {now!r} < {self._now!r}")
            self._now = now
            self._cond.notify_all()

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> bool:
        """Record the sleep; advance (auto mode) or block until advanced (manual mode).

        Returns ``True`` if ``wake`` was set (before or, in manual mode, during the wait).
        """
        seconds = max(0.0, float(seconds))
        with self._cond:
            self.sleeps.append(seconds)
            if wake is not None and wake.is_set():
                return True
            if self.auto_advance:
                self._now += seconds
                self._cond.notify_all()
                return False
            until = self._now + seconds
            while self._now < until:
                if wake is not None and wake.is_set():
                    return True
                # Poll the wake event: Condition cannot wait on an Event too.
                self._cond.wait(0.005)
            return False

    @property
    def total_slept(self) -> float:
        """Sum of every recorded sleep."""
        return sum(self.sleeps)

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now!r}, auto_advance={self.auto_advance})"

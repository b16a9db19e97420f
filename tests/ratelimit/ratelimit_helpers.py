"""Helpers shared by the rate-limit tests: polling, window counts, waiting threads."""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable

from connmgr.clock import CancelToken
from connmgr.ratelimit import RateLimiter
from connmgr.ratelimit.lanes import Priority
from connmgr.testing.clock import FakeClock

START = 1000.0


def until(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    """Poll (for real) until ``predicate`` holds; the fake clock does not move."""
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("condition not reached")
        time.sleep(0.001)


def max_in_window(times: list[float], window: float, slack: float = 1e-6) -> int:
    """The most grants in any half-open window ``[t, t + window)``."""
    times = sorted(times)
    return max(
        (bisect.bisect_left(times, t + window - slack) - i for i, t in enumerate(times)),
        default=0,
    )


class Waiter(threading.Thread):
    """A thread blocked in ``limiter.wait``; records what came of it and when."""

    def __init__(
        self,
        limiter: RateLimiter,
        clock: FakeClock,
        *,
        timeout: float | None = None,
        cancel: CancelToken | None = None,
        log: list[tuple[str, float]] | None = None,
        priority: Priority = "interactive",
        name: str | None = None,
    ) -> None:
        super().__init__(daemon=True, name=name)
        self.limiter, self.clock, self.timeout, self.cancel = limiter, clock, timeout, cancel
        self.priority = priority
        self.log = log if log is not None else []
        self.result: bool | BaseException | None = None
        self.at: float | None = None

    def run(self) -> None:
        try:
            self.result = self.limiter.wait(
                timeout=self.timeout, cancel=self.cancel, priority=self.priority
            )
        except BaseException as exc:
            self.result = exc
        self.at = self.clock.now()
        self.log.append((self.name, self.at))


def queue_up(limiter: RateLimiter, *waiters: Waiter) -> None:
    """Start the waiters one by one, each queued before the next arrives."""
    for waiter in waiters:
        before = limiter.waiting
        waiter.start()
        until(lambda before=before: limiter.waiting == before + 1)


def serve_in_steps(clock: FakeClock, log: list[tuple[str, float]], steps: int, step: float) -> None:
    """Advance the fake clock ``steps`` times by ``step``, each time until one more was served."""
    served = len(log)
    for n in range(1, steps + 1):
        clock.advance(step)
        until(lambda n=n: len(log) == served + n)

"""SleepDetector: notice that the machine slept (suspend/resume) by comparing two clocks.

``time.monotonic()`` (``CLOCK_MONOTONIC`` on Linux, ``mach_absolute_time`` on
macOS) stops while the machine sleeps, so after an hour's sleep every cooldown,
pause and deadline measured with it resumes as if no time had passed. A second
clock that keeps counting shows the gap:

* Linux: ``CLOCK_BOOTTIME`` counts the time asleep, so ``boottime - monotonic``
  grows by exactly the time slept (and by nothing else);
* elsewhere: the wall clock (``time.time()``). It also jumps when the user or
  NTP sets it, so only a forward jump beyond ``threshold`` counts; a backward
  jump is ignored.
* Windows: ``time.monotonic()`` already counts sleep (``GetTickCount64``), so
  waits measured with it see the real time; the wall-clock comparison then
  sees no gap and reports no sleep.

Example::

    detector = SleepDetector()              # the system's clocks
    slept = detector.check()                # 0.0, or the seconds slept since the last check
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from connmgr import forksafe

__all__ = ["SleepDetector"]

#: Gaps below this (seconds) are clock noise, not a sleep, on the boot-time clock.
_BOOTTIME_THRESHOLD = 1.0
#: The wall clock drifts and is slewed by NTP: ask for a larger gap there.
_WALL_THRESHOLD = 5.0


def _boottime() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)


class SleepDetector:
    """Report the seconds the machine slept since the previous :meth:`check`.

    Args:
        monotonic: the clock that stops during sleep (default ``time.monotonic``).
        awake_clock: a clock that keeps counting during sleep (default
            ``CLOCK_BOOTTIME`` where it exists, else ``time.time``).
        threshold: the least gap (seconds) that counts as a sleep (default 1 s
            on the boot-time clock, 5 s on the wall clock).

    Thread-safe; a check is two clock reads and a compare.

    Example (an injected clock pair: no real sleeping)::

        mono, boot = [100.0], [100.0]
        detector = SleepDetector(monotonic=lambda: mono[0], awake_clock=lambda: boot[0])
        boot[0] += 3600.0                   # the lid was closed for an hour
        detector.check()                    # 3600.0
        detector.check()                    # 0.0: each sleep is reported once
    """

    __slots__ = ("__weakref__", "_awake", "_last_gap", "_lock", "_monotonic", "source", "threshold")

    def __init__(
        self,
        *,
        monotonic: Callable[[], float] | None = None,
        awake_clock: Callable[[], float] | None = None,
        threshold: float | None = None,
    ) -> None:
        if monotonic is not None and not callable(monotonic):
            raise TypeError(f"monotonic must be a callable returning seconds, got {monotonic!r}")
        if awake_clock is not None and not callable(awake_clock):
            raise TypeError(
                f"awake_clock must be a callable returning seconds, got {awake_clock!r}"
            )
        if awake_clock is not None:
            self.source = "injected"
            default_threshold = _BOOTTIME_THRESHOLD
        elif hasattr(time, "CLOCK_BOOTTIME"):
            awake_clock = _boottime
            self.source = "boottime"
            default_threshold = _BOOTTIME_THRESHOLD
        else:
            awake_clock = time.time
            self.source = "wall clock"
            default_threshold = _WALL_THRESHOLD
        if threshold is None:
            threshold = default_threshold
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, int | float)
            or not math.isfinite(threshold)
            or threshold <= 0
        ):
            raise ValueError(
                f"SleepDetector.threshold must be a finite number of seconds > 0, got {threshold!r}"
            )
        self._monotonic = monotonic if monotonic is not None else time.monotonic
        self._awake = awake_clock
        self.threshold = float(threshold)
        self._lock = threading.Lock()
        self._last_gap = self._gap()
        forksafe.register(self)

    def _after_fork(self) -> None:
        # The monitor's watcher checks under this lock; a fork mid-check leaves it held.
        self._lock = threading.Lock()

    def _gap(self) -> float:
        return self._awake() - self._monotonic()

    def check(self) -> float:
        """Seconds slept since the previous check (``0.0`` if none); each sleep counts once.

        Each check moves the baseline, so slow drift between the two clocks
        never adds up to a sleep, and a clock set back reports nothing.
        """
        with self._lock:
            gap = self._gap()
            grown = gap - self._last_gap
            self._last_gap = gap
        return grown if grown >= self.threshold else 0.0

    def __repr__(self) -> str:
        return f"SleepDetector(source={self.source!r}, threshold={self.threshold!r})"

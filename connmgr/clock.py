"""Time, waiting and cancellation, injected everywhere so tests never really wait.

Every component that reads the time or waits takes a ``clock`` argument that
follows the :class:`Clock` protocol. Production code uses :class:`SystemClock`
(``time.monotonic`` and an interruptible ``threading.Event.wait``); tests use
:class:`connmgr.testing.FakeClock`, which moves time forward instantly.

Waits are interruptible: :meth:`Clock.sleep` returns early when the ``wake``
event is set, and :func:`interruptible_sleep` ties that event to a
:class:`CancelToken` so a cancelled request stops waiting within milliseconds.

Example::

    token = CancelToken()
    threading.Timer(0.1, token.cancel).start()
    woke_early = interruptible_sleep(SystemClock(), 30.0, cancel=token)   # True after ~0.1 s
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

__all__ = ["CancelToken", "Clock", "SystemClock", "interruptible_sleep"]


@runtime_checkable
class Clock(Protocol):
    """A monotonic clock that can wait.

    ``now()`` returns seconds on a monotonic scale (only differences matter).
    ``sleep(seconds, wake)`` waits up to ``seconds`` and returns ``True`` if it
    returned early because ``wake`` was set, ``False`` if the full time passed.
    """

    def now(self) -> float:
        """Seconds on a monotonic scale."""
        ...

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> bool:
        """Wait up to ``seconds``; return ``True`` if ``wake`` cut the wait short."""
        ...


#: The longest ``threading`` can wait; longer waits are clamped to it.
_LONGEST_WAIT = threading.TIMEOUT_MAX


class SystemClock:
    """The production clock: ``time.monotonic`` and ``threading.Event.wait``.

    Never calls ``time.sleep``: a wait with no ``wake`` event still waits on a
    private event, so the same code path serves both cases.
    """

    __slots__ = ()

    def now(self) -> float:
        """Return ``time.monotonic()``."""
        return time.monotonic()

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> bool:
        """Wait up to ``seconds`` on ``wake``; ``True`` if it was set before the time ran out.

        A wait longer than the platform can wait (``threading.TIMEOUT_MAX``, about
        292 years; an infinity) is clamped to it rather than raising ``OverflowError``.
        """
        event = wake if wake is not None else threading.Event()
        if seconds <= 0:
            return event.is_set()
        if not seconds <= _LONGEST_WAIT:  # NaN too
            seconds = _LONGEST_WAIT
        return event.wait(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"


#: The clock used when none is injected. Stateless, so sharing it is safe.
SYSTEM_CLOCK = SystemClock()


class CancelToken:
    """A thread-safe, one-way cancellation flag that callers hand to a request.

    ``cancel()`` wakes every wait that was given this token (within the wake-up
    latency of ``threading.Event``, well under 50 ms) and runs the callbacks
    registered with :meth:`add_callback`, e.g. closing a socket mid-read.

    Example::

        token = connmgr.CancelToken()
        # in a worker thread
        mgr.get(url, cancel=token)          # raises RequestCancelledError once cancelled
        # in the GUI thread
        token.cancel()
    """

    __slots__ = ("_callbacks", "_cancelled", "_event", "_lock", "reason")

    def __init__(self) -> None:
        # The Event is made only when someone blocks in wait(): most tokens are
        # created per request and never waited on directly (waits use callbacks).
        self._cancelled = False
        self._event: threading.Event | None = None
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], object]] = []
        self.reason: str | None = None

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` has been called."""
        return self._cancelled

    def cancel(self, reason: str = "cancelled by the caller") -> None:
        """Cancel: wake all waits and run the registered callbacks (once)."""
        with self._lock:
            if self._cancelled:
                return
            self.reason = reason
            self._cancelled = True
            if self._event is not None:
                self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def add_callback(self, callback: Callable[[], object]) -> Callable[[], None]:
        """Run ``callback`` on cancellation (at once if already cancelled).

        Returns a function that unregisters the callback; call it when the
        guarded operation ends so the token does not keep it alive.
        """
        with self._lock:
            if not self._cancelled:
                self._callbacks.append(callback)

                def remove() -> None:
                    with self._lock, contextlib.suppress(ValueError):
                        self._callbacks.remove(callback)

                return remove
        callback()
        return _noop

    def wait(self, timeout: float | None = None) -> bool:
        """Block until cancelled or ``timeout`` passes; ``True`` if cancelled."""
        with self._lock:
            if self._cancelled:
                return True
            if self._event is None:
                self._event = threading.Event()
            event = self._event
        return event.wait(timeout)

    def __repr__(self) -> str:
        return f"CancelToken(cancelled={self.cancelled})"


def _noop() -> None:
    return None


def interruptible_sleep(
    clock: Clock,
    seconds: float,
    *,
    cancel: CancelToken | None = None,
    wake: threading.Event | None = None,
) -> bool:
    """Wait ``seconds`` on ``clock``; return ``True`` if cut short.

    The wait ends early when ``cancel`` is cancelled or ``wake`` is set (the
    manager's "retry now"). It does not raise: callers check
    ``cancel.cancelled`` afterwards, so the decision stays theirs.
    """
    if cancel is None:
        return clock.sleep(seconds, wake)
    event = wake if wake is not None else threading.Event()
    if cancel.cancelled:
        return True
    remove = cancel.add_callback(event.set)
    try:
        return clock.sleep(seconds, event)
    finally:
        remove()

"""The waits of one manager, so that ``close()`` and ``cancel_all()`` can end them.

Every wait in the request loop (the gate, the limiter, a retry delay, waiting
for the network) runs on the call's :class:`~connmgr.CancelToken` and is
registered here for its duration. Cancelling the registered tokens wakes each
wait at once, and its call raises :class:`~connmgr.RequestCancelledError`.

Requests that never wait register nothing: the hot path pays for no token.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from connmgr import forksafe, shutdown
from connmgr.clock import CancelToken

__all__ = ["WaitRegistry"]


class WaitRegistry:
    """The tokens of the calls that are waiting now; thread-safe.

    Example::

        waits = WaitRegistry()
        with waits.waiting(token):        # in a worker, around one wait
            clock.sleep(5.0, wake_event)
        waits.cancel_all("closing")       # elsewhere: every registered wait ends
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: set[CancelToken] = set()
        self._closed_reason: str | None = None
        forksafe.register(self)
        shutdown.register(self)

    def _after_fork(self) -> None:
        # In a forked child the waiting threads are gone, and a lock they held stays held.
        self._lock = threading.Lock()
        self._tokens = set()

    def _at_shutdown(self) -> None:
        # Python joins non-daemon threads at exit: none may sit in a retry delay.
        self.close("the interpreter is shutting down")

    @property
    def count(self) -> int:
        """How many waits are registered now."""
        return len(self._tokens)

    @contextmanager
    def waiting(self, token: CancelToken) -> Iterator[CancelToken]:
        """Register ``token`` for one wait; after :meth:`close` it is cancelled at once."""
        with self._lock:
            closed = self._closed_reason
            self._tokens.add(token)
        if closed is not None:
            token.cancel(closed)
        try:
            yield token
        finally:
            with self._lock:
                self._tokens.discard(token)

    def cancel_all(self, reason: str) -> int:
        """Cancel every registered token; return how many."""
        with self._lock:
            tokens = list(self._tokens)
        for token in tokens:
            token.cancel(reason)
        return len(tokens)

    def close(self, reason: str) -> int:
        """Cancel every wait now and every wait registered from now on."""
        with self._lock:
            self._closed_reason = reason
        return self.cancel_all(reason)

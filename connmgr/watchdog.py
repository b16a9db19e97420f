"""The one thread that enforces total deadlines: a heap of timers for the whole process.

:mod:`connmgr.transport` arms one :class:`Scheduled` item per attempt that
has a deadline; when the deadline passes, the watchdog thread calls the
item's :meth:`Scheduled.fire`, which shuts the attempt's socket down. Most
attempts finish long before their deadline, so arming and cancelling are
the hot path and cost a few stores; the thread does the heap work.

The thread cannot be killed by what it is asked to wait for: every wait is
clamped to :data:`LONGEST_WAIT` (far below ``threading.TIMEOUT_MAX``, so a
deadline of ``1e10`` seconds or ``10**400`` simply means "not in this
process's lifetime"), a callback that raises is logged and skipped, and if
the thread dies anyway it logs why and is started again by the next
:meth:`Watchdog.schedule`. After ``os.fork()`` the child starts with an
empty watchdog (the parent's thread does not exist there).

Example::

    timer = Timer(lambda: log.warning("late"))
    WATCHDOG.schedule(0.5, timer)      # logs "late" in ~0.5 s ...
    WATCHDOG.cancel(timer)             # ... unless cancelled first
"""

from __future__ import annotations

import collections
import heapq
import itertools
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from typing import Final

__all__ = [
    "COMPACT_FLOOR",
    "INBOX_LIMIT",
    "LONGEST_WAIT",
    "WATCHDOG",
    "Scheduled",
    "Timer",
    "Watchdog",
]

logger = logging.getLogger(__name__)

#: An item's state: armed, cancelled by its owner, or fired by the thread.
PENDING, CANCELLED, FIRED = 0, 1, 2
#: The inbox is drained by the watchdog thread when it wakes anyway, or when
#: it holds this many entries (one wake-up per this many requests).
INBOX_LIMIT: Final = 256
#: The heap is compacted (cancelled entries dropped) when it has doubled since
#: the last compaction and holds at least this many entries.
COMPACT_FLOOR: Final = 64
#: The longest the thread sleeps in one wait (seconds). Every platform can wait
#: a day (``threading.TIMEOUT_MAX`` is about 49 days on Windows, 292 years on
#: Linux), and a thread that wakes once a day to look again costs nothing.
LONGEST_WAIT: Final = 86_400.0
#: Delays beyond this (about 31 years) are stored as this: "never", without
#: float overflow for ``10**400`` or a NaN in the heap's ordering.
_FOREVER: Final = 1e9


class Scheduled:
    """Something the watchdog can fire; subclasses implement :meth:`fire`.

    The watchdog holds these directly, so arming a deadline allocates nothing
    but the heap entry (made by the watchdog thread). :attr:`state` is
    ``PENDING`` until it is cancelled or fired; :attr:`when` is the
    ``time.monotonic()`` instant it is due.
    """

    __slots__ = ("state", "when")

    def __init__(self) -> None:
        self.state = PENDING
        self.when = math.inf

    def fire(self) -> None:
        """Called once, in the watchdog thread, when the item is due."""
        raise NotImplementedError


class Timer(Scheduled):
    """A plain callback on the watchdog."""

    __slots__ = ("callback",)

    def __init__(self, callback: Callable[[], None]) -> None:
        super().__init__()
        self.callback = callback

    def fire(self) -> None:
        """Run the callback."""
        self.callback()


class Watchdog:
    """One daemon thread and a heap of deadlines for every request in the process.

    Arming is lock-free and O(1): the item goes into an inbox (a deque) and
    the thread is woken (under the lock) only when the new deadline is due
    before the thread's next planned look, or when the inbox has grown past
    :data:`INBOX_LIMIT`. The thread moves the inbox into its heap (O(log n) per
    entry, skipping entries already cancelled, which most are: requests
    usually finish long before their deadline), fires what is due outside the
    lock, and sleeps until the earliest deadline (at most :data:`LONGEST_WAIT`).
    Cancelling is a store, and takes the entry back out of the inbox when the
    thread has not drained it yet (the usual case); cancelled entries in the
    heap leave it when they reach its top, or at a compaction (when the heap
    has doubled), so memory stays bounded by the inbox limit plus about twice
    the live deadlines.

    Times are ``time.monotonic``: the watchdog guards real sockets, whatever
    clock a deadline runs on.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Start afresh: no thread, nothing armed (used in a forked child)."""
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._inbox: collections.deque[Scheduled] = collections.deque()
        self._heap: list[tuple[float, int, Scheduled]] = []
        self._seq = itertools.count()
        self._compacted_at = COMPACT_FLOOR
        self._thread: threading.Thread | None = None
        #: When the thread will next look (inf: not before it is woken, so the
        #: next schedule wakes it, or starts it when no thread is running).
        self._wake_at = math.inf
        #: A wake-up is on its way: arming need not send another.
        self._waking = False
        #: How many times the thread died and was started again.
        self.restarts = 0

    @property
    def thread(self) -> threading.Thread | None:
        """The running thread, if one was started (for benchmarks and tests)."""
        return self._thread

    def schedule(self, delay: float, item: Scheduled) -> None:
        """Fire ``item`` in the watchdog thread after ``delay`` seconds."""
        if not delay <= _FOREVER:  # huge, infinite or NaN: never in this process
            delay = _FOREVER
        when = time.monotonic() + delay
        item.when = when
        inbox = self._inbox
        inbox.append(item)
        # Handshake with _loop, without the lock: the thread publishes
        # _wake_at and then looks at the inbox; we append and then look at
        # _wake_at (the GIL orders these), so an entry due earlier than the
        # thread's plan is either seen by the thread or wakes it.
        if (when < self._wake_at or len(inbox) > INBOX_LIMIT) and not self._waking:
            self._wake()

    def _wake(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="connmgr-watchdog", daemon=True
                )
                self._thread.start()
            self._waking = True
            self._cond.notify()

    def cancel(self, item: Scheduled) -> None:
        """Forget ``item`` unless it already fired (no lock).

        An item cancelled just as it fires is fired anyway; its owner must
        tolerate that (an attempt checks whether it is done, under a lock).
        """
        if item.state == PENDING:
            item.state = CANCELLED
            # Most attempts end before the thread ever drains them: take the item back
            # out of the inbox (about one entry per request in flight, so the C-level
            # scan is short), so finished attempts do not pile up there. Held until
            # the next drain, they outlived their request and cost the app a cyclic-GC
            # pass every few hundred requests, which plain requests never triggers.
            # try/except, not suppress(): that would cost a context manager per request.
            try:  # noqa: SIM105
                self._inbox.remove(item)
            except ValueError:
                pass  # already drained into the heap

    def stats(self) -> tuple[int, int]:
        """``(entries held, of which cancelled)``, for tests and benchmarks."""
        with self._lock:
            items = [e[2] for e in self._heap] + list(self._inbox)
        return len(items), sum(1 for item in items if item.state != PENDING)

    def inbox_size(self) -> int:
        """Entries armed but not yet moved into the heap (for tests)."""
        return len(self._inbox)

    def _drain(self) -> None:
        """Move the inbox into the heap (thread, under the lock)."""
        heap, inbox = self._heap, self._inbox
        while inbox:
            item = inbox.popleft()
            if item.state == PENDING:
                heapq.heappush(heap, (item.when, next(self._seq), item))
        if len(heap) > 2 * self._compacted_at:
            heap[:] = [e for e in heap if e[2].state == PENDING]
            heapq.heapify(heap)
            self._compacted_at = max(len(heap), COMPACT_FLOOR)

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException:
            # Nothing should get here; if something does, every deadline in the
            # process would silently stop holding. Say why, and let the next
            # schedule() start a new thread (the heap keeps what is armed).
            logger.exception("connmgr watchdog thread died; it restarts with the next request")
        finally:
            with self._lock:
                if self._thread is threading.current_thread():
                    self._thread = None
                    self._waking = False
                    self._wake_at = math.inf
                    self.restarts += 1

    def _loop(self) -> None:
        cond, heap = self._cond, self._heap
        with cond:
            while True:
                self._waking = False
                self._drain()
                while heap and heap[0][2].state != PENDING:
                    heapq.heappop(heap)
                delay: float | None = None
                if heap:
                    due = heap[0][0]
                    delay = due - time.monotonic()
                    if delay <= 0:
                        item = heapq.heappop(heap)[2]
                        item.state = FIRED
                        cond.release()
                        try:
                            item.fire()
                        except Exception:
                            logger.exception("connmgr watchdog callback failed")
                        finally:
                            del item  # do not keep the last attempt alive while idle
                            cond.acquire()
                        continue
                    self._wake_at = due
                    delay = min(delay, LONGEST_WAIT)
                else:
                    self._wake_at = math.inf
                if self._inbox:  # armed after the drain, before _wake_at was published
                    continue
                cond.wait(delay)


#: The process's watchdog.
WATCHDOG: Final = Watchdog()
if hasattr(os, "register_at_fork"):
    # The thread does not survive a fork, and a lock held by another thread
    # at the fork would stay held forever in the child: start afresh.
    os.register_at_fork(after_in_child=WATCHDOG.reset)

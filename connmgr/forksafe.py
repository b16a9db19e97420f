"""Fork safety: what a child process must rebuild before it uses connmgr.

``os.fork()`` copies one thread, the one that forks. Every other thread of the
parent is gone in the child, but whatever it held is copied as it was: a lock
another thread had taken stays taken for ever, a waiter queued by a thread
that no longer exists stays at the head of its queue, a probe round that a
thread was running never concludes. A child that touched any of them would
hang.

So every object of connmgr that owns such state registers itself here when it
is made, and the one ``after_in_child`` hook calls each live object's
``_after_fork()``, which replaces its locks and conditions and forgets what
belonged to the parent's threads. Objects are held weakly: registering keeps
nothing alive. (The transport's pools and the watchdog have hooks of their own.)

This module imports nothing of connmgr, so any module can register.

Example::

    class Meter:
        def __init__(self) -> None:
            self._lock = threading.Lock()
            forksafe.register(self)

        def _after_fork(self) -> None:
            self._lock = threading.Lock()
"""

from __future__ import annotations

import itertools
import logging
import os
import weakref
from typing import Protocol

__all__ = ["AfterFork", "register", "registered"]

logger = logging.getLogger(__name__)


class AfterFork(Protocol):
    """An object that can rebuild its process-bound state in a forked child."""

    def _after_fork(self) -> None: ...


# Keyed by a counter, not by the object: some registered objects are unhashable
# or compare by value. Each weak reference removes its own key when its object dies.
_refs: dict[int, weakref.ref[AfterFork]] = {}
_keys = itertools.count()


def register(obj: AfterFork) -> None:
    """Call ``obj._after_fork()`` in every child forked while ``obj`` is alive."""
    key = next(_keys)

    def forget(_ref: object, key: int = key) -> None:
        _refs.pop(key, None)

    # dict assignment and itertools.count are atomic under the GIL: no lock here,
    # so there is none that a fork could copy while taken.
    _refs[key] = weakref.ref(obj, forget)


def registered() -> int:
    """How many live objects are registered (for tests and diagnostics)."""
    return sum(1 for ref in list(_refs.values()) if ref() is not None)


def _reset_all() -> None:
    # The child has one thread, this one: nothing can register meanwhile.
    for ref in list(_refs.values()):
        obj = ref()
        if obj is None:
            continue
        try:
            obj._after_fork()
        except Exception:
            # One object that cannot reset must not leave the others locked.
            logger.exception("resetting %r after fork failed", obj)


if hasattr(os, "register_at_fork"):  # POSIX; Windows has no fork
    os.register_at_fork(after_in_child=_reset_all)

"""Interpreter shutdown: connmgr's waits end before Python joins the threads.

When the main thread returns, Python joins every non-daemon thread *before*
it runs ``atexit`` handlers. A worker sitting in a 20 s retry delay would hold
the exit for 20 s, and nothing registered with ``atexit`` could stop it.
``threading._register_atexit`` (the hook ``concurrent.futures`` uses for the
same reason) runs before that join, so the hook here cancels the waits of
every live manager there: each waiting call raises
:class:`~connmgr.RequestCancelledError` at once and its thread can end.

Managers register themselves when they are made, held weakly. This module
imports nothing of connmgr.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import threading
import weakref
from typing import Protocol

__all__ = ["AtShutdown", "register"]

logger = logging.getLogger(__name__)


class AtShutdown(Protocol):
    """An object whose waits must end when the interpreter exits."""

    def _at_shutdown(self) -> None: ...


# Keyed by a counter (registered objects need not be hashable); each weak
# reference removes its own key when its object dies.
_refs: dict[int, weakref.ref[AtShutdown]] = {}
_keys = itertools.count()


def register(obj: AtShutdown) -> None:
    """Call ``obj._at_shutdown()`` when the interpreter exits, if ``obj`` is alive then."""
    key = next(_keys)

    def forget(_ref: object, key: int = key) -> None:
        _refs.pop(key, None)

    _refs[key] = weakref.ref(obj, forget)


def _shutdown() -> None:
    for ref in list(_refs.values()):
        obj = ref()
        if obj is None:
            continue
        try:
            obj._at_shutdown()
        except Exception:
            # One failing object must not keep the others' waits (and the exit) going.
            logger.exception("cancelling the waits of %r at exit failed", obj)


def _install() -> None:
    register_early = getattr(threading, "_register_atexit", None)
    if register_early is not None:
        try:
            register_early(_shutdown)
            return
        except RuntimeError:
            # Imported while the interpreter is already shutting down: too late
            # for the early hook; atexit still cancels what waits after the join.
            pass
    atexit.register(_shutdown)


_install()

"""Import PySide6 for :mod:`connmgr.qt`, and work around a reference-count bug.

PySide6 6.12.0 returns ``None``, ``True`` and ``False`` from its bindings without
taking a reference (on CPython 3.12 and later those objects are immortal, so it
goes unnoticed there). On CPython 3.11 every ``QLabel.setText``, every
``postEvent`` and every ``Signal.emit`` then drops one reference that was never
taken, and after a few thousand calls the interpreter aborts with
``Fatal Python error: none_dealloc``. Measured here: ``QLabel.setText`` costs
``None`` one reference a call; ``Signal.emit`` costs ``True`` one.

The workaround gives those three singletons a reference count so large that it
cannot reach zero in the life of a process, which is exactly what CPython 3.12
does for them. They are statically allocated and never freed, so the extra
count changes nothing else. It is applied only to the affected combination.
"""

from __future__ import annotations

import ctypes
import logging
import platform
import sys

logger = logging.getLogger(__name__)

__all__ = ["PYSIDE6_VERSION", "needs_refcount_workaround"]

try:
    import PySide6
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "connmgr.qt needs PySide6: install the extra with `pip install 'connmgr[qt]'`"
    ) from exc

PYSIDE6_VERSION: tuple[int, ...] = tuple(int(p) for p in PySide6.__version_info__[:3])

# 2**48 lost references is about nine years at a million Qt calls a second.
_HEADROOM = 1 << 48


def needs_refcount_workaround(
    pyside: tuple[int, ...] = PYSIDE6_VERSION,
    python: tuple[int, ...] = tuple(sys.version_info[:2]),
    implementation: str = platform.python_implementation(),
) -> bool:
    """Whether this PySide6 and Python combination has the lost-reference bug."""
    return implementation == "CPython" and python < (3, 12) and pyside[:2] == (6, 12)


def _make_singletons_immortal() -> None:
    for obj in (None, True, False):
        # ob_refcnt is the first field of every CPython object (a Py_ssize_t).
        count = ctypes.c_ssize_t.from_address(id(obj))
        if count.value < _HEADROOM:
            count.value += _HEADROOM


if needs_refcount_workaround():
    _make_singletons_immortal()
    logger.debug(
        "PySide6 %s on CPython %s: None/True/False made immortal (lost-reference bug)",
        PySide6.__version__,
        platform.python_version(),
    )

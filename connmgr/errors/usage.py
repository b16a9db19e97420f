"""Errors of using connmgr wrongly: programming errors, outside the network tree by design.

A :class:`~connmgr.NetworkError` says what the network did; these say what the
code did. Catching ``NetworkError`` to show "the network failed" never
swallows them.
"""

from __future__ import annotations

__all__ = ["ManagerClosedError"]


class ManagerClosedError(RuntimeError):
    """The manager was used after :meth:`ConnectionManager.close`.

    A programming error, not a network outcome (as httpx does for a closed
    client): it is not a :class:`~connmgr.NetworkError`, and nothing was sent.
    """

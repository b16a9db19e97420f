"""The outbox's own errors: about the queue file and its owner, never about the network.

Network outcomes of a delivery are not raised at all: they become the entry's
state and ``last_error``. These are raised to the caller of the
:class:`~connmgr.outbox.Outbox` methods.
"""

from __future__ import annotations

__all__ = [
    "OutboxClosedError",
    "OutboxFullError",
    "OutboxLockedError",
    "OutboxSchemaError",
    "OutboxStorageError",
]


class OutboxSchemaError(RuntimeError):
    """The file is an outbox of a newer schema version (or not an outbox at all).

    Refused rather than touched: a newer release of the app wrote it, and an
    older one must not rewrite its entries.
    """


class OutboxLockedError(RuntimeError):
    """The outbox file is already open, by this process or another one.

    One owner at a time: two owners would deliver the same entries twice.
    """


class OutboxClosedError(RuntimeError):
    """The outbox was closed: nothing more can be submitted or delivered through it."""


class OutboxStorageError(OSError):
    """The entry could not be stored (disk full, read-only file, I/O error).

    Nothing was queued by the failing call, and every entry stored before it is
    intact; the caller still owns the request.
    """


class OutboxFullError(OutboxStorageError):
    """The outbox reached its size limit (``max_bytes``) or the disk is full."""

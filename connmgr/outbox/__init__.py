"""The outbox: a durable queue of requests, delivered when the network allows.

:class:`Outbox` stores each request in one SQLite file before
:meth:`~Outbox.submit` returns, gives it its own ``Idempotency-Key``, and
delivers it through a :class:`~connmgr.ConnectionManager` in submission order
per origin once the network is validated online, across restarts and crashes.
See ``docs/offline.md``.

- :mod:`connmgr.outbox.outbox`: :class:`Outbox` (the API and the delivery loop);
- :mod:`connmgr.outbox.store`: the SQLite file (schema, durability, damage);
- :mod:`connmgr.outbox.request`: what is stored of a request, and URL rebasing;
- :mod:`connmgr.outbox.verdict`: what an answer decides (delivered, failed, retry);
- :mod:`connmgr.outbox.entry`: :class:`Entry` and the state names;
- :mod:`connmgr.outbox.errors`: the outbox's own errors.

The names are loaded on first use, so that the submodules can import each
other without importing this package's ``__init__`` in a cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from connmgr import lazy

if TYPE_CHECKING:
    from connmgr.outbox.entry import Entry
    from connmgr.outbox.errors import (
        OutboxClosedError,
        OutboxFullError,
        OutboxLockedError,
        OutboxSchemaError,
        OutboxStorageError,
    )
    from connmgr.outbox.outbox import DEFAULT_TTL, Outbox, WallClock

__all__ = [
    "DEFAULT_TTL",
    "Entry",
    "Outbox",
    "OutboxClosedError",
    "OutboxFullError",
    "OutboxLockedError",
    "OutboxSchemaError",
    "OutboxStorageError",
    "WallClock",
]

_HOME = {
    "DEFAULT_TTL": "connmgr.outbox.outbox",
    "Entry": "connmgr.outbox.entry",
    "Outbox": "connmgr.outbox.outbox",
    "OutboxClosedError": "connmgr.outbox.errors",
    "OutboxFullError": "connmgr.outbox.errors",
    "OutboxLockedError": "connmgr.outbox.errors",
    "OutboxSchemaError": "connmgr.outbox.errors",
    "OutboxStorageError": "connmgr.outbox.errors",
    "WallClock": "connmgr.outbox.outbox",
}

__getattr__, __dir__ = lazy.exports(__name__, _HOME, __all__)

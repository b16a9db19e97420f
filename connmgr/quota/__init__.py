"""Quota stores: where rate limiters keep the state they share.

An API key's quota belongs to the key, not to one process. A
:class:`QuotaStore` holds, per origin, the limiter's pacing state (GCRA), the
server's pauses and what the server taught about the rate, so that every
limiter using the same store and key spends one quota:

- :class:`MemoryStore`: this process only (the default; about 1 µs a grant);
- :class:`SQLiteStore`: the processes of one machine (a file; stdlib ``sqlite3``);
- :class:`RedisStore`: processes on many hosts (a Redis server; extra ``quota``).

Example::

    from connmgr.quota import SQLiteStore
    from connmgr.ratelimit import OriginRateLimits, RateLimit

    limits = OriginRateLimits(default=RateLimit(5, 1.0), store=SQLiteStore("~/.cache/app/quota.db"))
    limits.for_origin("https://api.example.com").wait()   # 5 a second across every process

See ``docs/rate-limiting.md`` ("Sharing a quota") for which store to pick,
what is shared and what is not, and what happens when a store is unreachable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from connmgr import lazy

if TYPE_CHECKING:  # at run time each name loads from its module on first use
    from connmgr.quota.base import Answer, Bucket, Feedback, Pace, QuotaStore, QuotaStoreError
    from connmgr.quota.memory import MemoryBucket, MemoryStore
    from connmgr.quota.redis_store import RedisStore
    from connmgr.quota.shared import SharedBucket, SharedStore
    from connmgr.quota.sqlite_store import SQLiteStore

#: Where each name lives: the SQLite and Redis stores load only when an app uses one.
_HOMES = {
    **dict.fromkeys(
        ("Answer", "Bucket", "Feedback", "Pace", "QuotaStore", "QuotaStoreError"),
        "connmgr.quota.base",
    ),
    "MemoryBucket": "connmgr.quota.memory",
    "MemoryStore": "connmgr.quota.memory",
    "RedisStore": "connmgr.quota.redis_store",
    "SharedBucket": "connmgr.quota.shared",
    "SharedStore": "connmgr.quota.shared",
    "SQLiteStore": "connmgr.quota.sqlite_store",
}


__all__ = [
    "Answer",
    "Bucket",
    "Feedback",
    "MemoryBucket",
    "MemoryStore",
    "Pace",
    "QuotaStore",
    "QuotaStoreError",
    "RedisStore",
    "SQLiteStore",
    "SharedBucket",
    "SharedStore",
]

__getattr__, __dir__ = lazy.exports(__name__, _HOMES, __all__)

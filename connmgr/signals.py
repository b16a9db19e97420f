"""Every signal connmgr sends, in one blinker namespace.

Each signal is sent with the :class:`~connmgr.ConnectionManager` (or, for
``network_changed``, the :class:`~connmgr.NetworkMonitor`) as sender and the
keyword arguments documented on it. Signals are sent from whatever thread did
the work, never while connmgr holds a lock; :mod:`connmgr.qt` moves them onto
the GUI thread.

Receivers are held **weakly** by default (blinker's rule): a receiver that is a
bound method or a local function disappears with its object. Keep a reference,
or connect with ``weak=False``.

Example::

    from connmgr import signals

    def on_change(sender, *, origin, old, new, reason, **_):
        log.info("%s: %s -> %s (%s)", origin, old.value, new.value, reason)

    signals.state_changed.connect(on_change)            # every manager
    signals.state_changed.connect(on_change, sender=mgr)  # one manager

Receivers should accept ``**kwargs`` so that new, documented arguments can be
added without breaking them.
"""

from __future__ import annotations

from blinker import Namespace

__all__ = [
    "namespace",
    "network_changed",
    "quota_store_failed",
    "quota_store_recovered",
    "rate_limited",
    "request_failed",
    "request_finished",
    "request_started",
    "retry_scheduled",
    "state_changed",
]

namespace = Namespace()

state_changed = namespace.signal(
    "state_changed",
    doc="""An origin's connection state changed.

    Keyword arguments: ``origin`` (str, ``scheme://host:port``), ``old`` and
    ``new`` (:class:`~connmgr.ConnectionState`), ``reason`` (str, plain words),
    ``snapshot`` (:class:`~connmgr.ConnectionSnapshot` after the change).
    """,
)

request_started = namespace.signal(
    "request_started",
    doc="""A logical request began (before the gate).

    Keyword arguments: ``request_id`` (int), ``method``, ``url`` (redacted),
    ``operation`` (str), ``cancel`` (the request's :class:`~connmgr.CancelToken`).
    """,
)

request_finished = namespace.signal(
    "request_finished",
    doc="""A logical request ended, successfully or not.

    Keyword arguments: ``request_id``, ``method``, ``url`` (redacted),
    ``operation``, ``outcome`` (str: ``"success"``, ``"slow"``, ``"transient"``,
    ``"throttled"``, ``"unreachable"``, ``"fatal"``, ``"cancelled"``,
    ``"gated"``), ``status`` (int or None), ``elapsed`` (seconds),
    ``attempts`` (int).
    """,
)

retry_scheduled = namespace.signal(
    "retry_scheduled",
    doc="""A retry will be sent after ``delay`` seconds.

    Keyword arguments: ``request_id``, ``attempt`` (the attempt about to be
    made, 2 for the first retry), ``max_attempts``, ``delay`` (seconds),
    ``error`` (the classified :class:`~connmgr.NetworkError`), ``url``
    (redacted), ``operation``, ``cancel`` (the request's
    :class:`~connmgr.CancelToken`: cancelling it ends the wait).
    """,
)

request_failed = namespace.signal(
    "request_failed",
    doc="""A logical request failed for good (retries exhausted, gated, fatal).

    Keyword arguments: ``request_id``, ``error`` (the
    :class:`~connmgr.NetworkError` about to be raised), ``url`` (redacted),
    ``operation``.
    """,
)

rate_limited = namespace.signal(
    "rate_limited",
    doc="""An origin is rate limited, by the server or by the client limiter.

    Keyword arguments: ``origin``, ``resume_at`` (clock time when requests may
    go again), ``wait`` (seconds from now).
    """,
)

network_changed = namespace.signal(
    "network_changed",
    doc="""The network status changed (sent by the NetworkMonitor, only on change).

    Keyword arguments: ``online`` (bool), ``status``
    (:class:`~connmgr.NetworkStatus`).
    """,
)

quota_store_failed = namespace.signal(
    "quota_store_failed",
    doc="""A shared quota store (SQLite, Redis) stopped answering; limiting is local now.

    Sent by the store (:class:`~connmgr.quota.SQLiteStore`,
    :class:`~connmgr.quota.RedisStore`) once per outage, from a short-lived
    thread of its own. Keyword arguments: ``store`` (str, the store with any
    password redacted), ``error`` (str, what went wrong), ``retry_in``
    (seconds until the store is tried again).
    """,
)

quota_store_recovered = namespace.signal(
    "quota_store_recovered",
    doc="""A shared quota store answers again after :data:`quota_store_failed`.

    Sent by the store, from a short-lived thread of its own. Keyword
    arguments: ``store`` (str, redacted), ``down_for`` (seconds the store was
    unreachable).
    """,
)

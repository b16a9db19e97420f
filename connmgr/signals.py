"""Every signal connmgr sends, in one blinker namespace.

Each signal is sent with the :class:`~connmgr.ConnectionManager` (or, for
``network_changed`` and ``network_epoch_changed``, the
:class:`~connmgr.NetworkMonitor`; for ``outbox_changed``, the
:class:`~connmgr.outbox.Outbox`) as sender and the
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

A receiver that raises never changes what the request returns or raises: the
exception is logged once (logger ``connmgr.signals``, level ERROR, with the
receiver's name and the traceback) and the other receivers still run. This
differs from plain blinker, where the first exception propagates to the sender:
a bug in a status-bar handler must not turn a successful download into an error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from blinker import ANY, NamedSignal

logger = logging.getLogger(__name__)

__all__ = [
    "ANY",
    "SafeSignal",
    "namespace",
    "network_changed",
    "network_epoch_changed",
    "outbox_changed",
    "quota_store_failed",
    "quota_store_recovered",
    "rate_limited",
    "request_failed",
    "request_finished",
    "request_started",
    "retry_scheduled",
    "state_changed",
]


class SafeSignal(NamedSignal):
    """A blinker signal whose receivers cannot break the code that sends it.

    Same API as :class:`blinker.NamedSignal`; :meth:`send` catches what a
    receiver raises, logs it once with the receiver's name, and goes on.

    Example::

        sig = SafeSignal("demo")
        sig.connect(lambda sender, **kw: 1 / 0, weak=False)
        sig.send(None)        # logged, not raised; returns [(receiver, None)]
    """

    def send(
        self,
        sender: Any | None = None,
        /,
        *,
        _async_wrapper: Callable[..., Any] | None = None,
        **kwargs: Any,
    ) -> list[tuple[Callable[..., Any], Any]]:
        """Call every receiver of ``sender`` (and of ANY); a raising receiver is logged."""
        if self.is_muted:
            return []
        results: list[tuple[Callable[..., Any], Any]] = []
        for receiver in self.receivers_for(sender):
            try:
                result = receiver(sender, **kwargs)
            except Exception:
                logger.exception(
                    "a receiver of connmgr signal %r raised; ignored: %s",
                    self.name,
                    _receiver_name(receiver),
                )
                result = None
            results.append((receiver, result))
        return results


def _receiver_name(receiver: Callable[..., Any]) -> str:
    module = getattr(receiver, "__module__", None) or "?"
    name = getattr(receiver, "__qualname__", None) or repr(receiver)
    return f"{module}.{name}"


class _Namespace(dict[str, SafeSignal]):
    """The connmgr signals by name (blinker's Namespace, made of :class:`SafeSignal`)."""

    def signal(self, name: str, doc: str | None = None) -> SafeSignal:
        """The signal called ``name``, created on first use."""
        if name not in self:
            self[name] = SafeSignal(name, doc)
        return self[name]


namespace = _Namespace()

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
    ``"gated"``, or ``"stale"`` when the session's cache answered instead),
    ``status`` (int or None), ``elapsed`` (seconds), ``attempts`` (int).
    Sent for an answer only: ``stale_age`` (seconds since the cached answer was
    stored, :func:`connmgr.stale_age`; ``None`` unless ``outcome`` is
    ``"stale"``), so a banner can say "Showing results from 5 minutes ago".
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

    Keyword arguments: ``online`` (bool, ``status is ONLINE``), ``status``
    (:class:`~connmgr.NetworkStatus`: ``ONLINE``, ``LIMITED``,
    ``CAPTIVE_PORTAL``, ``OFFLINE``), ``reason`` (str, plain words, e.g. "name
    lookup (DNS) failing"), ``epoch`` (int, the network epoch the new status
    starts; every status change starts one, see ``network_epoch_changed``).
    """,
)

network_epoch_changed = namespace.signal(
    "network_epoch_changed",
    doc="""A new network epoch began (sent by the NetworkMonitor).

    Sent on every status change (just before its ``network_changed``), every
    OS change hint (netlink, ``QNetworkInformation``) and every detected resume
    from sleep. Connections, proxy settings and cooldowns learned in an older
    epoch may belong to another network: drop or re-check them.

    Keyword arguments: ``epoch`` (int, increasing from 1), ``cause``
    (:class:`~connmgr.network.EpochCause`: ``STATUS``, ``OS_EVENT``,
    ``RESUME``), ``reason`` (str, plain words), ``slept`` (float, seconds the
    machine slept; 0.0 unless ``cause`` is ``RESUME``), ``status`` (the
    :class:`~connmgr.NetworkStatus` when the epoch began).
    """,
)

outbox_changed = namespace.signal(
    "outbox_changed",
    doc="""An outbox entry changed state (sent by the Outbox).

    Keyword arguments: ``entry`` (the :class:`~connmgr.outbox.Entry` after the
    change, URL redacted), ``state`` (str: ``"queued"`` when stored or
    rescheduled after an attempt that did not deliver, ``"sending"``,
    ``"delivered"``, ``"failed"``, ``"expired"``), ``pending`` (int: entries
    still to be sent, for a "3 changes waiting to be sent" label).
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

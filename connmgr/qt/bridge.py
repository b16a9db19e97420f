"""Move connmgr's blinker signals onto the GUI thread, coalescing bursts.

connmgr sends its signals from whatever thread did the work. Qt widgets may
only be touched from the GUI thread. :class:`SignalBridge` sits between the
two: its blinker receivers run on the worker threads, put the payload in a
small inbox under a lock and, for the first payload only, post one event to
the bridge. When the GUI thread gets to that event it takes the whole inbox at
once and re-emits it as Qt signals, in this order: ``network_changed``,
``state_changed``, ``rate_limited``, ``retry_scheduled``, then
``request_failed`` / ``request_finished`` in the order they happened,
``outbox_changed`` (for outboxes given to :meth:`SignalBridge.watch_outbox`), then
``flushed``.

Workers never block on the GUI (the lock is held for a dictionary update), and
a burst never piles up: while one flush is pending, a newer state change of the
same origin replaces the older one (``old`` is kept from the first, so the net
change is reported), a newer retry of the same request replaces the older one,
the latest network status wins, and a newer change of the same outbox entry
replaces the older one (the latest ``pending`` count wins with it). The ends
of requests that the bridge saw retrying are always delivered; the ends of
other requests are kept up to ``max_pending_ends`` per flush, the oldest
dropped beyond that (counted in :attr:`SignalBridge.dropped`).

Receivers are held weakly by blinker; the bridge keeps them alive itself and
disconnects them in :meth:`SignalBridge.close`, which also runs when the bridge
is destroyed.

Example::

    bridge = SignalBridge(mgr, parent=window)
    bridge.state_changed.connect(lambda e: status_label.setText(e.new.value))   # GUI thread
"""

from __future__ import annotations

import collections
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QThread, Signal

from connmgr import signals
from connmgr.clock import SYSTEM_CLOCK, CancelToken, Clock
from connmgr.frozen import explain_frozen
from connmgr.machine import ConnectionState

__all__ = [
    "NetworkChangedEvent",
    "OutboxChangedEvent",
    "RateLimitedEvent",
    "RequestFailedEvent",
    "RequestFinishedEvent",
    "RetryScheduledEvent",
    "SignalBridge",
    "StateChangedEvent",
]

logger = logging.getLogger(__name__)

_FLUSH_EVENT = QEvent.Type(QEvent.registerEventType())


# --------------------------------------------------------------------------- payloads


@explain_frozen
@dataclass(frozen=True, slots=True)
class StateChangedEvent:
    """``state_changed`` on the GUI thread (net change since the last flush)."""

    origin: str
    old: ConnectionState
    new: ConnectionState
    reason: str
    snapshot: Any = None


@explain_frozen
@dataclass(frozen=True, slots=True)
class RetryScheduledEvent:
    """``retry_scheduled`` on the GUI thread.

    ``due_at`` is the manager's clock time when the retry will be sent
    (``scheduled_at + delay``, both read on the worker thread when the signal
    was sent), so a countdown stays right however late the GUI gets to it.
    """

    request_id: int
    attempt: int
    max_attempts: int
    delay: float
    error: Any
    url: str
    operation: str
    cancel: CancelToken | None
    scheduled_at: float
    due_at: float


@explain_frozen
@dataclass(frozen=True, slots=True)
class RequestFinishedEvent:
    """``request_finished`` on the GUI thread."""

    request_id: int
    outcome: str
    url: str = ""
    method: str = ""
    operation: str = ""
    status: int | None = None
    elapsed: float = 0.0
    attempts: int = 0
    #: Seconds since a cached answer was stored, when ``outcome`` is ``"stale"``.
    stale_age: float | None = None

    @property
    def succeeded(self) -> bool:
        """The request got a live response (``success`` or ``slow``; a stale answer is not one)."""
        return self.outcome in ("success", "slow")

    @property
    def stale(self) -> bool:
        """The session's cache answered because no live answer could be had."""
        return self.outcome == "stale"


@explain_frozen
@dataclass(frozen=True, slots=True)
class RequestFailedEvent:
    """``request_failed`` on the GUI thread: the error is about to be raised."""

    request_id: int
    error: Any
    url: str = ""
    operation: str = ""


@explain_frozen
@dataclass(frozen=True, slots=True)
class RateLimitedEvent:
    """``rate_limited`` on the GUI thread (latest per origin)."""

    origin: str
    resume_at: float
    wait: float


@explain_frozen
@dataclass(frozen=True, slots=True)
class OutboxChangedEvent:
    """``outbox_changed`` on the GUI thread (latest per entry).

    ``outbox`` is the sender, ``entry`` the :class:`~connmgr.outbox.Entry`
    after the change (URL redacted), ``state`` its state, ``pending`` how many
    entries that outbox still has to send.
    """

    outbox: Any
    entry: Any
    state: str
    pending: int


@explain_frozen
@dataclass(frozen=True, slots=True)
class NetworkChangedEvent:
    """``network_changed`` on the GUI thread (latest only)."""

    online: bool
    status: Any = None


# --------------------------------------------------------------------------- inbox


def _seconds_or_none(value: object) -> float | None:
    """A payload's seconds as a float; anything else (a bug elsewhere) as ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = float(value)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _never_raise(receiver: Callable[..., None]) -> Callable[..., None]:
    """A receiver runs inside the worker's ``send()``: a UI problem must never fail a request."""

    def guarded(sender: object, **kwargs: Any) -> None:
        try:
            receiver(sender, **kwargs)
        except Exception:
            logger.exception("connmgr.qt could not take a %s signal", receiver.__name__)

    guarded.__name__ = receiver.__name__
    return guarded


@dataclass(slots=True)
class _Batch:
    network: NetworkChangedEvent | None = None
    states: dict[str, StateChangedEvent] = field(default_factory=dict)
    rate_limited: dict[str, RateLimitedEvent] = field(default_factory=dict)
    retries: dict[int, RetryScheduledEvent] = field(default_factory=dict)
    ends: collections.deque[RequestFinishedEvent | RequestFailedEvent] = field(
        default_factory=collections.deque
    )
    untracked_ends: int = 0
    outbox: dict[tuple[int, int], OutboxChangedEvent] = field(default_factory=dict)


class _Inbox:
    """What the worker threads share with the GUI thread: one lock, one batch.

    Kept apart from the QObject so that the receivers never touch a Qt object
    except through :meth:`QCoreApplication.postEvent`, and never after
    :meth:`close` (which takes the same lock).
    """

    def __init__(self, target: QObject, clock: Clock, max_pending_ends: int) -> None:
        self._lock = threading.Lock()
        self._target: QObject | None = target
        self._clock = clock
        self._max_untracked = max_pending_ends
        self._batch = _Batch()
        self._posted = False
        # Requests seen retrying: their end is always delivered.
        self._tracked: set[int] = set()
        self.received = 0
        self.coalesced = 0
        self.dropped = 0
        # (signal, receiver, sender): blinker holds receivers weakly, this list
        # is what keeps them alive until close().
        self.connections: list[tuple[Any, Callable[..., None], Any]] = []

    def connect(self, signal: Any, receiver: Callable[..., None], sender: Any) -> None:
        safe = _never_raise(receiver)
        signal.connect(safe, sender=sender)
        self.connections.append((signal, safe, sender))

    def close(self, *_args: object) -> None:
        """Stop posting and disconnect the receivers (any thread; idempotent)."""
        with self._lock:
            self._target = None
            connections, self.connections = self.connections, []
        for signal, receiver, sender in connections:
            signal.disconnect(receiver, sender=sender)

    @property
    def closed(self) -> bool:
        return self._target is None

    def _post_locked(self) -> None:
        # Caller holds the lock. One flush event at a time: the GUI thread takes
        # everything that arrived before it ran.
        if not self._posted and self._target is not None:
            self._posted = True
            QCoreApplication.postEvent(self._target, QEvent(_FLUSH_EVENT))

    def take(self) -> _Batch:
        with self._lock:
            batch, self._batch = self._batch, _Batch()
            self._posted = False
            return batch

    # -- producers (worker threads) ----------------------------------------------------

    def put_state(self, event: StateChangedEvent) -> None:
        with self._lock:
            if self._target is None:
                return
            self.received += 1
            states = self._batch.states
            previous = states.get(event.origin)
            if previous is not None:
                self.coalesced += 1
                event = replace(event, old=previous.old)
                # Re-insert so that dictionary order follows the latest change.
                del states[event.origin]
            states[event.origin] = event
            self._post_locked()

    def put_rate_limited(self, event: RateLimitedEvent) -> None:
        with self._lock:
            if self._target is None:
                return
            self.received += 1
            if event.origin in self._batch.rate_limited:
                self.coalesced += 1
            self._batch.rate_limited[event.origin] = event
            self._post_locked()

    def put_network(self, event: NetworkChangedEvent) -> None:
        with self._lock:
            if self._target is None:
                return
            self.received += 1
            if self._batch.network is not None:
                self.coalesced += 1
            self._batch.network = event
            self._post_locked()

    def put_retry(self, kwargs: dict[str, Any]) -> None:
        now = self._clock.now()
        delay = float(kwargs.get("delay") or 0.0)
        event = RetryScheduledEvent(
            request_id=int(kwargs["request_id"]),
            attempt=int(kwargs.get("attempt", 0)),
            max_attempts=int(kwargs.get("max_attempts", 0)),
            delay=delay,
            error=kwargs.get("error"),
            url=str(kwargs.get("url", "")),
            operation=str(kwargs.get("operation", "")),
            cancel=kwargs.get("cancel"),
            scheduled_at=now,
            due_at=now + delay,
        )
        with self._lock:
            if self._target is None:
                return
            self.received += 1
            self._tracked.add(event.request_id)
            if event.request_id in self._batch.retries:
                self.coalesced += 1
            self._batch.retries[event.request_id] = event
            self._post_locked()

    def put_outbox(self, event: OutboxChangedEvent) -> None:
        key = (id(event.outbox), int(getattr(event.entry, "id", 0)))
        with self._lock:
            if self._target is None:
                return
            self.received += 1
            changes = self._batch.outbox
            if key in changes:
                self.coalesced += 1
                # Re-insert so that the last change delivered carries the latest count.
                del changes[key]
            changes[key] = event
            self._post_locked()

    def put_end(self, event: RequestFinishedEvent | RequestFailedEvent) -> None:
        with self._lock:
            if self._target is None:
                return
            self.received += 1
            batch = self._batch
            tracked = event.request_id in self._tracked
            if isinstance(event, RequestFinishedEvent) and tracked:
                self._tracked.discard(event.request_id)
            if not tracked:
                if batch.untracked_ends >= self._max_untracked:
                    self._drop_oldest_untracked_locked()
                batch.untracked_ends += 1
            batch.ends.append(event)
            self._post_locked()

    def _drop_oldest_untracked_locked(self) -> None:
        # Rare (a GUI stalled under a flood of short requests): linear is fine.
        ends = self._batch.ends
        for index, old in enumerate(ends):
            if old.request_id not in self._tracked and not isinstance(old, RequestFailedEvent):
                del ends[index]
                self._batch.untracked_ends -= 1
                self.dropped += 1
                return
        # Only failures are pending: drop the oldest of those.
        for index, old in enumerate(ends):
            if old.request_id not in self._tracked:
                del ends[index]
                self._batch.untracked_ends -= 1
                self.dropped += 1
                return


# --------------------------------------------------------------------------- bridge


class SignalBridge(QObject):
    """Re-emit a manager's (and its monitor's) blinker signals as Qt signals on the GUI thread.

    Create it on the GUI thread (it must live there: that is where its signals
    are emitted). ``manager`` may be ``None`` when only ``monitor`` is of
    interest (``network_changed``); ``monitor`` defaults to ``manager.monitor``.

    Every Qt signal carries one frozen payload object (see the ``*Event``
    classes of this module). ``flushed`` is emitted after each batch, once per
    event-loop turn at most: connect a view's ``refresh`` to it.

    Example::

        bridge = SignalBridge(mgr, parent=window)
        bridge.retry_scheduled.connect(lambda e: log.info("retry %d in %.1f s", e.attempt, e.delay))
        bridge.flushed.connect(status_label.refresh)
    """

    state_changed = Signal(object)
    retry_scheduled = Signal(object)
    request_finished = Signal(object)
    request_failed = Signal(object)
    rate_limited = Signal(object)
    network_changed = Signal(object)
    outbox_changed = Signal(object)
    flushed = Signal()

    def __init__(
        self,
        manager: Any = None,
        *,
        monitor: Any = None,
        parent: QObject | None = None,
        max_pending_ends: int = 1024,
    ) -> None:
        super().__init__(parent)
        if isinstance(max_pending_ends, bool) or max_pending_ends < 1:
            raise ValueError(f"max_pending_ends must be an int >= 1, got {max_pending_ends!r}")
        app = QCoreApplication.instance()
        if app is not None and QThread.currentThread() != app.thread():
            logger.warning("SignalBridge created outside the GUI thread; its signals follow it")
        self._manager = manager
        self._monitor = monitor if monitor is not None else getattr(manager, "monitor", None)
        clock = getattr(manager, "clock", None) or SYSTEM_CLOCK
        self._clock: Clock = clock
        self._inbox = _Inbox(self, clock, max_pending_ends)
        self._connect_all()
        # A plain object's method, not the bridge's: it must still be callable
        # while the C++ object is being destroyed.
        self.destroyed.connect(self._inbox.close)

    # -- public ----------------------------------------------------------------------

    @property
    def manager(self) -> Any:
        """The manager whose signals are bridged (or ``None``)."""
        return self._manager

    @property
    def monitor(self) -> Any:
        """The network monitor whose ``network_changed`` is bridged (or ``None``)."""
        return self._monitor

    @property
    def clock(self) -> Clock:
        """The manager's clock (``RetryScheduledEvent.due_at`` is on its scale)."""
        return self._clock

    @property
    def received(self) -> int:
        """Signals received from connmgr since creation."""
        return self._inbox.received

    @property
    def coalesced(self) -> int:
        """Signals merged into a newer one of the same key before the GUI saw them."""
        return self._inbox.coalesced

    @property
    def dropped(self) -> int:
        """Ends of untracked requests dropped because more than ``max_pending_ends`` queued."""
        return self._inbox.dropped

    def close(self) -> None:
        """Disconnect from connmgr's signals; nothing is emitted afterwards. Idempotent."""
        self._inbox.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` ran (or the bridge was destroyed)."""
        return self._inbox.closed

    def post_network(self, online: bool, status: Any = None) -> None:
        """Deliver a network status as if the monitor had sent it (any thread).

        Used by :class:`~connmgr.qt.NetworkStatusIndicator` to hand back the
        result of a check it ran on a worker thread.
        """
        self._inbox.put_network(NetworkChangedEvent(online=online, status=status))

    def watch_outbox(self, outbox: Any) -> None:
        """Bridge ``outbox_changed`` from ``outbox`` too (any number of outboxes; idempotent).

        The outbox sends from its delivery thread; :attr:`outbox_changed`
        carries an :class:`OutboxChangedEvent` on the GUI thread.
        """
        if outbox is None:
            raise TypeError("outbox must be an Outbox, got None")
        if any(sender is outbox for _, _, sender in self._inbox.connections):
            return
        inbox = self._inbox

        def on_outbox(sender: object, **kw: Any) -> None:
            inbox.put_outbox(
                OutboxChangedEvent(
                    outbox=sender,
                    entry=kw.get("entry"),
                    state=str(kw.get("state", "")),
                    pending=int(kw.get("pending") or 0),
                )
            )

        inbox.connect(signals.outbox_changed, on_outbox, outbox)

    def flush(self) -> None:
        """Deliver what is pending now (GUI thread; normally the event loop does it)."""
        batch = self._inbox.take()
        if batch.network is not None:
            self.network_changed.emit(batch.network)
        for state_event in batch.states.values():
            self.state_changed.emit(state_event)
        for rate_event in batch.rate_limited.values():
            self.rate_limited.emit(rate_event)
        for retry_event in batch.retries.values():
            self.retry_scheduled.emit(retry_event)
        for end in batch.ends:
            if isinstance(end, RequestFailedEvent):
                self.request_failed.emit(end)
            else:
                self.request_finished.emit(end)
        for outbox_event in batch.outbox.values():
            self.outbox_changed.emit(outbox_event)
        self.flushed.emit()

    # -- Qt --------------------------------------------------------------------------

    def customEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        """Run the pending flush (posted by a worker thread)."""
        if event.type() == _FLUSH_EVENT:
            if not self._inbox.closed:
                self.flush()
            return
        super().customEvent(event)

    # -- blinker side (worker threads) -----------------------------------------------

    def _connect_all(self) -> None:
        inbox = self._inbox
        manager = self._manager

        def on_state(sender: object, **kw: Any) -> None:
            inbox.put_state(
                StateChangedEvent(
                    origin=str(kw.get("origin", "")),
                    old=kw["old"],
                    new=kw["new"],
                    reason=str(kw.get("reason", "")),
                    snapshot=kw.get("snapshot"),
                )
            )

        def on_retry(sender: object, **kw: Any) -> None:
            inbox.put_retry(kw)

        def on_finished(sender: object, **kw: Any) -> None:
            inbox.put_end(
                RequestFinishedEvent(
                    request_id=int(kw["request_id"]),
                    outcome=str(kw.get("outcome", "")),
                    url=str(kw.get("url", "")),
                    method=str(kw.get("method", "")),
                    operation=str(kw.get("operation", "")),
                    status=kw.get("status"),
                    elapsed=float(kw.get("elapsed") or 0.0),
                    attempts=int(kw.get("attempts") or 0),
                    stale_age=_seconds_or_none(kw.get("stale_age")),
                )
            )

        def on_failed(sender: object, **kw: Any) -> None:
            inbox.put_end(
                RequestFailedEvent(
                    request_id=int(kw["request_id"]),
                    error=kw.get("error"),
                    url=str(kw.get("url", "")),
                    operation=str(kw.get("operation", "")),
                )
            )

        def on_rate_limited(sender: object, **kw: Any) -> None:
            inbox.put_rate_limited(
                RateLimitedEvent(
                    origin=str(kw.get("origin", "")),
                    resume_at=float(kw.get("resume_at") or 0.0),
                    wait=float(kw.get("wait") or 0.0),
                )
            )

        def on_network(sender: object, **kw: Any) -> None:
            inbox.put_network(
                NetworkChangedEvent(online=bool(kw.get("online")), status=kw.get("status"))
            )

        if manager is not None:
            for signal, receiver in (
                (signals.state_changed, on_state),
                (signals.retry_scheduled, on_retry),
                (signals.request_finished, on_finished),
                (signals.request_failed, on_failed),
                (signals.rate_limited, on_rate_limited),
            ):
                inbox.connect(signal, receiver, manager)
        if self._monitor is not None:
            inbox.connect(signals.network_changed, on_network, self._monitor)

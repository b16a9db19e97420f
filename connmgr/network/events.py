"""What a monitor tells its receivers, and the ordered delivery outside its lock.

Two signals (documented in :mod:`connmgr.signals`):

* ``network_changed``: the status changed; with ``online``, ``status``,
  ``reason`` and ``epoch``;
* ``network_epoch_changed``: a new network epoch began (a status change, an
  OS change hint, a resume from sleep); with ``epoch``, ``cause``
  (:class:`EpochCause`), ``reason``, ``slept`` and ``status``.

Events are queued while the monitor holds its lock and sent afterwards, in
order, by one thread at a time; each receiver is called on its own, so one
that raises is logged and cannot keep the others from hearing.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections import deque
from dataclasses import dataclass

from connmgr import signals
from connmgr.frozen import explain_frozen
from connmgr.network.status import NetworkStatus

__all__ = ["EpochCause", "EpochEvent", "EventQueue", "StatusEvent"]

logger = logging.getLogger("connmgr.network")


class EpochCause(enum.Enum):
    """Why a new network epoch began."""

    #: The status changed (e.g. offline -> online).
    STATUS = "status"
    #: The operating system reported a change (netlink, ``QNetworkInformation``).
    OS_EVENT = "os_event"
    #: The machine resumed from sleep.
    RESUME = "resume"


@explain_frozen
@dataclass(frozen=True, slots=True)
class StatusEvent:
    """``network_changed``: the status moved from ``old`` to ``new``."""

    old: NetworkStatus
    new: NetworkStatus
    reason: str
    epoch: int


@explain_frozen
@dataclass(frozen=True, slots=True)
class EpochEvent:
    """``network_epoch_changed``: epoch ``epoch`` began for ``cause``."""

    epoch: int
    cause: EpochCause
    reason: str
    slept: float
    status: NetworkStatus


class EventQueue:
    """Events in the order they happened, sent by one thread at a time, never under a lock."""

    __slots__ = ("_emitting", "_lock", "_pending", "_sender")

    def __init__(self, sender: object) -> None:
        self._sender = sender
        self._lock = threading.Lock()
        self._pending: deque[StatusEvent | EpochEvent] = deque()
        self._emitting = False

    def push(self, event: StatusEvent | EpochEvent) -> None:
        """Queue an event (cheap; callable under the sender's own lock)."""
        with self._lock:
            self._pending.append(event)

    def drain(self) -> None:
        """Send the queued events in order; a thread that finds another sending leaves it to it."""
        with self._lock:
            if self._emitting:
                return
            self._emitting = True
        try:
            while True:
                with self._lock:
                    if not self._pending:
                        self._emitting = False
                        return
                    event = self._pending.popleft()
                self._send(event)
        except BaseException:
            with self._lock:
                self._emitting = False
            raise

    def _send(self, event: StatusEvent | EpochEvent) -> None:
        # blinker's send() stops at the first receiver that raises; call each one
        # here so a faulty status widget cannot keep the manager from hearing it.
        if isinstance(event, StatusEvent):
            logger.info(
                "network: %s -> %s (%s; epoch %d)",
                event.old.value,
                event.new.value,
                event.reason,
                event.epoch,
            )
            signal = signals.network_changed
            kwargs: dict[str, object] = {
                "online": event.new.online,
                "status": event.new,
                "reason": event.reason,
                "epoch": event.epoch,
            }
        else:
            logger.debug("network epoch %d (%s: %s)", event.epoch, event.cause.value, event.reason)
            signal = signals.network_epoch_changed
            kwargs = {
                "epoch": event.epoch,
                "cause": event.cause,
                "reason": event.reason,
                "slept": event.slept,
                "status": event.status,
            }
        if signal.is_muted:
            return
        for receiver in signal.receivers_for(self._sender):
            try:
                receiver(self._sender, **kwargs)
            except Exception:
                logger.exception("a %s receiver raised", signal.name)

"""The replaceable default monitor behind the plan's static ``NetworkState`` names."""

from __future__ import annotations

import threading

from connmgr import forksafe
from connmgr.network.monitor import NetworkMonitor

__all__ = ["get_default_monitor", "set_default_monitor"]


class _DefaultMonitor:
    """The module-level holder of the default monitor (created lazily, replaceable)."""

    __slots__ = ("__weakref__", "_lock", "_monitor")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._monitor: NetworkMonitor | None = None
        forksafe.register(self)

    def _after_fork(self) -> None:
        # A lock a parent's thread held at the fork stays held in the child.
        self._lock = threading.Lock()

    def get(self) -> NetworkMonitor:
        monitor = self._monitor
        if monitor is None:
            with self._lock:
                if self._monitor is None:
                    self._monitor = NetworkMonitor()
                monitor = self._monitor
        return monitor

    def set(self, monitor: NetworkMonitor | None) -> NetworkMonitor | None:
        if monitor is not None and not isinstance(monitor, NetworkMonitor):
            raise ValueError(f"monitor must be a NetworkMonitor or None, got {monitor!r}")
        with self._lock:
            previous, self._monitor = self._monitor, monitor
        return previous


_DEFAULT = _DefaultMonitor()


def get_default_monitor() -> NetworkMonitor:
    """The monitor behind :class:`NetworkState` (a default one is created on first use)."""
    return _DEFAULT.get()


def set_default_monitor(monitor: NetworkMonitor | None) -> NetworkMonitor | None:
    """Replace the monitor behind :class:`NetworkState`; return the previous one.

    ``None`` goes back to a lazily created default monitor. Tests use it to point
    the plan's static names at loopback probes.

    Example::

        previous = set_default_monitor(NetworkMonitor(probes=[TcpProbe("127.0.0.1", port)]))
        try:
            assert get_default_monitor().is_online()
        finally:
            set_default_monitor(previous)
    """
    return _DEFAULT.set(monitor)

"""NetworkState: the original plan's static names, delegating to the default monitor."""

from __future__ import annotations

from connmgr.network.default import get_default_monitor, set_default_monitor
from connmgr.network.monitor import NetworkMonitor

__all__ = ["NetworkState"]


class NetworkState:
    """The original plan's static names, delegating to the default monitor.

    No state lives on the class: the monitor comes from :func:`get_default_monitor`,
    which an application (or a test) can replace with :func:`set_default_monitor`.

    Example::

        if NetworkState.is_online():
            ...
        NetworkState.check_specific_host("api.example.com", 443, timeout=2.0)
    """

    __slots__ = ()

    @staticmethod
    def is_online(force_check: bool = False) -> bool:
        """:meth:`NetworkMonitor.is_online` on the default monitor."""
        return get_default_monitor().is_online(force_check)

    @staticmethod
    def check_specific_host(host: str, port: int = 80, timeout: float = 3.0) -> bool:
        """:meth:`NetworkMonitor.check_specific_host` on the default monitor."""
        return get_default_monitor().check_specific_host(host, port, timeout)

    @staticmethod
    def get_default_monitor() -> NetworkMonitor:
        """See :func:`get_default_monitor`."""
        return get_default_monitor()

    @staticmethod
    def set_default_monitor(monitor: NetworkMonitor | None) -> NetworkMonitor | None:
        """See :func:`set_default_monitor`."""
        return set_default_monitor(monitor)
